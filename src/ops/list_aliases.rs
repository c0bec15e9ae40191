//! ListAliases: a user's aliases (not the primary address), in the order they were added, paged with sealed
//! NextTokens bound to the user.

use serde::{Deserialize, Serialize};

use super::mail_rules::require_enabled;
use super::{Ctx, active_org, resolve_user, store_error, validate};
use crate::error::ServiceError;
use crate::pagination::{TokenScope, page};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub entity_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
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
    let user_id = user.id.as_str();
    let (rows, next_token) = page(
        &ctx.app.sealer,
        &scope,
        ctx.app.clock.now_ms(),
        token,
        limit,
        |after, n| async move {
            ctx.app
                .store
                .list_aliases(user_id, after, n)
                .await
                .map_err(store_error)
        },
    )
    .await?;
    Ok(Output {
        aliases: rows.into_iter().map(|a| a.address).collect(),
        next_token,
    })
}
