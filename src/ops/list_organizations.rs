//! ListOrganizations: the caller's organizations (Deleted ones included, spec D1) in (creation time, id) order.

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply, encode, store_error, validate};
use crate::domain::Cursor;
use crate::pagination::{Page, TokenScope};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary<'a> {
    organization_id: &'a str,
    alias: &'a str,
    default_mail_domain: &'a str,
    state: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    organization_summaries: Vec<Summary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    let scope = TokenScope {
        operation: "ListOrganizations",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: "",
        filter: "",
    };
    let now = ctx.app.clock.now_ms();
    let after = token
        .map(|t| ctx.app.sealer.open(&scope, t, now))
        .transpose()?;
    let rows = ctx
        .app
        .store
        .list_organizations(&ctx.partition, after, limit + 1)
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
        organization_summaries: page
            .items
            .iter()
            .map(|o| Summary {
                organization_id: &o.id,
                alias: &o.alias,
                default_mail_domain: &o.default_mail_domain,
                state: &o.state,
            })
            .collect(),
        next_token,
    })
}
