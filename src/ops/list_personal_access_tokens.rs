//! ListPersonalAccessTokens: the organization's tokens, or one user's, in (DateCreated, PersonalAccessTokenId)
//! order. Keyset pagination with `limit + 1` rows: a page costs the same at any depth and in any store size, and a
//! token that exists for the whole walk is returned exactly once whatever is created or deleted meanwhile.
//! Expired tokens are listed until deleted, and the PAT status does not affect this admin API (spec D4).

use serde::Deserialize;

use super::{Ctx, RawJson, Reply, check_active_org, resolve_live_user_id, store_error, validate};
use crate::error::ServiceError;
use crate::pagination::TokenScope;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    user_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Bytes of a summary, about (a page's answer is sized once for `limit` of them).
const SUMMARY_BYTES: usize = 320;
const HEAD: &[u8] = b"{\"PersonalAccessTokenSummaries\":[";

pub async fn run(ctx: &Ctx<'_>, input: Input) -> Result<RawJson, ServiceError> {
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
    let after = token
        .map(|t| ctx.app.sealer.open(&scope, t, now))
        .transpose()?;
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
    if let (true, Some(last)) = (page.has_more, &page.last) {
        body.extend_from_slice(b",\"NextToken\":");
        serde_json::to_writer(&mut body, &ctx.app.sealer.seal(&scope, last, now))
            .map_err(ServiceError::internal)?;
    }
    body.push(b'}');
    Ok(RawJson(body))
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    run(ctx, input).await.map(RawJson::into_body)
}
