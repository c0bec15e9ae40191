//! ListPersonalAccessTokens: the organization's tokens, or one user's, in (DateCreated, PersonalAccessTokenId)
//! order. Keyset pagination with `limit + 1` rows: a page costs the same at any depth and in any store size, and a
//! token that exists for the whole walk is returned exactly once whatever is created or deleted meanwhile.
//! Expired tokens are listed until deleted, and the PAT status does not affect this admin API (spec D4).

use serde::Deserialize;

use super::{Ctx, RawJson, check_active_org, resolve_live_user_id, store_error, validate};
use crate::error::ServiceError;
use crate::pagination::{TokenScope, next_token, open_cursor};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// The page as the answer's bytes: the stored summaries copied into one buffer with the envelope around them.
pub type Output = RawJson;

/// Bytes of a summary, about (a page's answer is sized once for `limit` of them).
const SUMMARY_BYTES: usize = 320;
const HEAD: &[u8] = b"{\"PersonalAccessTokenSummaries\":[";

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let user_ident = match &input.user_id {
        Some(_) => Some(validate::entity_identifier(&input.user_id, "UserId")?),
        None => None,
    };
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    check_active_org(ctx, org_id).await?;
    // The filter is resolved to the canonical user id before it is bound into the NextToken, so a walk started
    // with a username continues with the id and vice versa.
    let user_id = match user_ident {
        Some(ident) => Some(resolve_live_user_id(ctx, org_id, ident).await?),
        None => None,
    };
    let scope = TokenScope {
        operation: "ListPersonalAccessTokens",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: org_id,
        filter: user_id.as_deref().unwrap_or(""),
    };
    let now = ctx.app.clock.now_ms();
    let after = open_cursor(&ctx.app.sealer, &scope, now, token)?;
    // The answer is written once into one buffer: the stored summaries of the page are copied into it as they are.
    let mut body = Vec::with_capacity(HEAD.len() + limit * SUMMARY_BYTES + 256);
    body.extend_from_slice(HEAD);
    let page = ctx
        .app
        .store
        .list_personal_access_token_summaries(org_id, user_id.as_deref(), after, limit, body)
        .await
        .map_err(store_error)?;
    let mut body = page.body;
    body.push(b']');
    if let Some(token) = next_token(
        &ctx.app.sealer,
        &scope,
        now,
        page.has_more,
        page.last.as_ref(),
    ) {
        body.extend_from_slice(b",\"NextToken\":");
        serde_json::to_writer(&mut body, &token).map_err(ServiceError::internal)?;
    }
    body.push(b'}');
    Ok(RawJson(body))
}
