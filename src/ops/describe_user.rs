//! DescribeUser: any state, DELETED included (spec §6); the user may be named by id, username or email.

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply, active_org, encode, resolve_user, validate};
use crate::domain::EpochSeconds;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    user_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    user_id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    display_name: &'a str,
    state: &'a str,
    user_role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mailbox_provisioned_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mailbox_deprovisioned_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    hidden_from_global_address_list: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    initials: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    telephone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    street: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zip_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    office: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_provider_user_id: Option<&'a str>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.user_id, "UserId")?;
    active_org(ctx, org_id).await?;
    let u = resolve_user(ctx, org_id, ident).await?;
    let p = &u.profile;
    encode(&Output {
        user_id: &u.id,
        name: &u.name,
        email: u.email.as_deref(),
        display_name: &p.display_name,
        state: u.state.as_str(),
        user_role: &u.role,
        enabled_date: u.enabled_ms.map(EpochSeconds),
        disabled_date: u.disabled_ms.map(EpochSeconds),
        mailbox_provisioned_date: u.mailbox_provisioned_ms.map(EpochSeconds),
        mailbox_deprovisioned_date: u.mailbox_deprovisioned_ms.map(EpochSeconds),
        first_name: p.first_name.as_deref(),
        last_name: p.last_name.as_deref(),
        hidden_from_global_address_list: p.hidden_from_global_address_list,
        initials: p.initials.as_deref(),
        telephone: p.telephone.as_deref(),
        street: p.street.as_deref(),
        job_title: p.job_title.as_deref(),
        city: p.city.as_deref(),
        company: p.company.as_deref(),
        zip_code: p.zip_code.as_deref(),
        department: p.department.as_deref(),
        country: p.country.as_deref(),
        office: p.office.as_deref(),
        identity_provider_user_id: u.identity_provider_user_id.as_deref(),
    })
}
