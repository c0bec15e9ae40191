//! ListPersonalAccessTokens: the organization's tokens, or one user's, in (DateCreated, PersonalAccessTokenId)
//! order. Keyset pagination with `limit + 1` rows: a page costs the same at any depth and in any store size, and a
//! token that exists for the whole walk is returned exactly once whatever is created or deleted meanwhile.
//! Expired tokens are listed until deleted, and the PAT status does not affect this admin API (spec D4).

use serde::{Deserialize, Serialize};

use super::{Ctx, PatSummary, Reply, active_org, encode, resolve_live_user, store_error, validate};
use crate::domain::Cursor;
use crate::pagination::{Page, TokenScope};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    user_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    personal_access_token_summaries: Vec<PatSummary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let org_id = validate::organization_id(&input.organization_id)?;
    let user_ident = match &input.user_id {
        Some(_) => Some(validate::entity_identifier(&input.user_id, "UserId")?),
        None => None,
    };
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    active_org(ctx, org_id).await?;
    // The filter is resolved to the canonical user id before it is bound into the NextToken, so a walk started
    // with a username continues with the id and vice versa.
    let user_id = match user_ident {
        Some(ident) => Some(resolve_live_user(ctx, org_id, ident).await?.id),
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
    let rows = ctx
        .app
        .store
        .list_personal_access_tokens(org_id, user_id.as_deref(), after, limit + 1)
        .await
        .map_err(store_error)?;
    let page = Page::from_rows(rows, limit);
    let next_token = match (page.has_more, page.items.last()) {
        (true, Some(last)) => Some(ctx.app.sealer.seal(
            &scope,
            &Cursor {
                created_ms: last.created_ms,
                id: last.id.clone(),
            },
            now,
        )),
        _ => None,
    };
    encode(&Output {
        personal_access_token_summaries: page.items.iter().map(PatSummary::from).collect(),
        next_token,
    })
}
