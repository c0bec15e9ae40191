//! ListOrganizations: the caller's organizations (Deleted ones included, spec D1) in (creation time, id) order.

use serde::{Deserialize, Serialize};

use super::{Ctx, store_error, validate};
use crate::error::ServiceError;
use crate::pagination::{TokenScope, page};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub organization_id: String,
    pub alias: String,
    pub default_mail_domain: String,
    pub state: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub organization_summaries: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    let scope = TokenScope {
        operation: "ListOrganizations",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: "",
        filter: "",
    };
    let (rows, next_token) = page(
        &ctx.app.sealer,
        &scope,
        ctx.app.clock.now_ms(),
        token,
        limit,
        |after, n| async move {
            ctx.app
                .store
                .list_organizations(&ctx.partition, after, n)
                .await
                .map_err(store_error)
        },
    )
    .await?;
    Ok(Output {
        organization_summaries: rows
            .into_iter()
            .map(|o| Summary {
                organization_id: o.id,
                alias: o.alias,
                default_mail_domain: o.default_mail_domain,
                state: o.state,
            })
            .collect(),
        next_token,
    })
}
