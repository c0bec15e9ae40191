//! ListAliases: a user's aliases (not the primary address), in the order they were added, paged with sealed
//! NextTokens bound to the user.

use serde::{Deserialize, Serialize};

use super::mail_rules::require_enabled;
use super::{Ctx, Reply, active_org, encode, resolve_user, store_error, validate};
use crate::domain::Cursor;
use crate::error::ServiceError;
use crate::pagination::{Page, TokenScope};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    entity_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn run(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::workmail_identifier(&input.entity_id, "EntityId")?;
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    require_enabled(&user)?;
    let scope = TokenScope {
        operation: "ListAliases",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: org_id,
        filter: &user.id,
    };
    let now = ctx.app.clock.now_ms();
    let after = token
        .map(|t| ctx.app.sealer.open(&scope, t, now))
        .transpose()?;
    let rows = ctx
        .app
        .store
        .list_aliases(&user.id, after, limit + 1)
        .await
        .map_err(store_error)?;
    let page = Page::from_rows(rows, limit);
    let next_token = match (page.has_more, page.items.last()) {
        (true, Some(last)) => Some(ctx.app.sealer.seal(
            &scope,
            &Cursor {
                created_ms: last.created_ms,
                id: last.key(),
            },
            now,
        )),
        _ => None,
    };
    Ok(Output {
        aliases: page.items.into_iter().map(|a| a.address).collect(),
        next_token,
    })
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    encode(&run(ctx, input).await?)
}
