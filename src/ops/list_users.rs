//! ListUsers: every user of the organization (DELETED ones included until the organization is deleted), with at
//! most one filter, in (creation time, id) order.

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, store_error, validate};
use crate::domain::{EpochSeconds, UserFilter, UserState};
use crate::error::ServiceError;
use crate::pagination::{TokenScope, page};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Filters {
    pub username_prefix: Option<String>,
    pub display_name_prefix: Option<String>,
    pub primary_email_prefix: Option<String>,
    pub state: Option<String>,
    pub identity_provider_user_id_prefix: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filters: Option<Filters>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub name: String,
    pub display_name: String,
    pub state: &'static str,
    pub user_role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider_user_id: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub users: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

fn parse_filter(filters: Option<&Filters>) -> Result<UserFilter, ServiceError> {
    let Some(f) = filters else {
        return Ok(UserFilter::None);
    };
    let mut chosen = Vec::new();
    if let Some(p) = &f.username_prefix {
        validate::length(p, "Filters.UsernamePrefix", 0, 256)?;
        chosen.push(UserFilter::UsernamePrefix(p.clone()));
    }
    if let Some(p) = &f.display_name_prefix {
        validate::length(p, "Filters.DisplayNamePrefix", 0, 256)?;
        chosen.push(UserFilter::DisplayNamePrefix(p.clone()));
    }
    if let Some(p) = &f.primary_email_prefix {
        validate::length(p, "Filters.PrimaryEmailPrefix", 0, 256)?;
        chosen.push(UserFilter::PrimaryEmailPrefix(p.clone()));
    }
    if let Some(s) = &f.state {
        validate::one_of(s, "Filters.State", &["ENABLED", "DISABLED", "DELETED"])?;
        chosen.push(UserFilter::State(
            UserState::parse(s).unwrap_or(UserState::Disabled),
        ));
    }
    if let Some(p) = &f.identity_provider_user_id_prefix {
        validate::length(p, "Filters.IdentityProviderUserIdPrefix", 1, 47)?;
        if !p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(ServiceError::invalid_parameter(
                "1 validation error detected: Value at 'Filters.IdentityProviderUserIdPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Fa-f0-9-]+$",
            ));
        }
        chosen.push(UserFilter::IdentityProviderUserIdPrefix(p.clone()));
    }
    match chosen.len() {
        0 => Ok(UserFilter::None),
        1 => Ok(chosen.remove(0)),
        _ => Err(ServiceError::invalid_parameter(
            "Only one filter may be given per ListUsers request",
        )),
    }
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    let filter = parse_filter(input.filters.as_ref())?;
    active_org(ctx, org_id).await?;
    let canonical = filter.canonical();
    let scope = TokenScope {
        operation: "ListUsers",
        account: &ctx.partition.account,
        region: &ctx.partition.region,
        organization: org_id,
        filter: &canonical,
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
                .list_users(org_id, &filter, after, n)
                .await
                .map_err(store_error)
        },
    )
    .await?;
    Ok(Output {
        users: rows
            .into_iter()
            .map(|u| Summary {
                id: u.id,
                email: u.email,
                name: u.name,
                display_name: u.profile.display_name,
                state: u.state.as_str(),
                user_role: u.role,
                enabled_date: u.enabled_ms.map(EpochSeconds),
                disabled_date: u.disabled_ms.map(EpochSeconds),
                identity_provider_user_id: u.identity_provider_user_id,
            })
            .collect(),
        next_token,
    })
}
