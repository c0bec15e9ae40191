//! ListPersonalAccessTokens: the organization's tokens, or one user's, in (DateCreated, PersonalAccessTokenId)
//! order. Keyset pagination with `limit + 1` rows: a page costs the same at any depth and in any store size, and a
//! token that exists for the whole walk is returned exactly once whatever is created or deleted meanwhile.
//! Expired tokens are listed until deleted, and the PAT status does not affect this admin API (spec D4).

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, resolve_live_user, store_error, validate};
use crate::error::ServiceError;
use crate::model::TokenSummary;
use crate::pagination::{TokenScope, page};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub personal_access_token_summaries: Vec<TokenSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
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
    let user_filter = user_id.as_deref();
    let (rows, next_token) = page(
        &ctx.app.sealer,
        &scope,
        ctx.app.clock.now_ms(),
        token,
        limit,
        |after, n| async move {
            ctx.app
                .store
                .list_personal_access_tokens(org_id, user_filter, after, n)
                .await
                .map_err(store_error)
        },
    )
    .await?;
    Ok(Output {
        personal_access_token_summaries: rows.into_iter().map(TokenSummary).collect(),
        next_token,
    })
}
