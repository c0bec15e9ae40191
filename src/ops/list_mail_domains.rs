//! ListMailDomains: the organization's domains (its test domain first), in (registration time, name) order, paged
//! with sealed NextTokens.

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, store_error, validate};
use crate::error::ServiceError;
use crate::pagination::{TokenScope, page};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub domain_name: String,
    pub default_domain: bool,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub mail_domains: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    let org = active_org(ctx, org_id).await?;
    let scope = TokenScope {
        operation: "ListMailDomains",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: org_id,
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
                .list_mail_domains(org_id, after, n)
                .await
                .map_err(store_error)
        },
    )
    .await?;
    Ok(Output {
        mail_domains: rows
            .into_iter()
            .map(|d| Summary {
                default_domain: org.default_mail_domain.eq_ignore_ascii_case(&d.domain),
                domain_name: d.domain,
            })
            .collect(),
        next_token,
    })
}
