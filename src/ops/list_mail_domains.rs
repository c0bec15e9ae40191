//! ListMailDomains: the organization's domains (its test domain first), in (registration time, name) order, paged
//! with sealed NextTokens.

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply, active_org, encode, store_error, validate};
use crate::domain::Cursor;
use crate::error::ServiceError;
use crate::pagination::{Page, TokenScope};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
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

pub async fn run(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
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
    let now = ctx.app.clock.now_ms();
    let after = token
        .map(|t| ctx.app.sealer.open(&scope, t, now))
        .transpose()?;
    let rows = ctx
        .app
        .store
        .list_mail_domains(org_id, after, limit + 1)
        .await
        .map_err(store_error)?;
    let page = Page::from_rows(rows, limit);
    let next_token = match (page.has_more, page.items.last()) {
        (true, Some(last)) => Some(ctx.app.sealer.seal(
            &scope,
            &Cursor {
                created_ms: last.created_ms,
                id: last.domain.clone(),
            },
            now,
        )),
        _ => None,
    };
    Ok(Output {
        mail_domains: page
            .items
            .into_iter()
            .map(|d| Summary {
                default_domain: org.default_mail_domain.eq_ignore_ascii_case(&d.domain),
                domain_name: d.domain,
            })
            .collect(),
        next_token,
    })
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    encode(&run(ctx, input).await?)
}
