//! DescribeUser: any state, DELETED included (spec §6); the user may be named by id, username or email.

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, resolve_user, validate};
use crate::domain::EpochSeconds;
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub user_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub display_name: String,
    pub state: String,
    pub user_role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox_provisioned_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox_deprovisioned_date: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    pub hidden_from_global_address_list: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider_user_id: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.user_id, "UserId")?;
    active_org(ctx, org_id).await?;
    let u = resolve_user(ctx, org_id, ident).await?;
    let p = u.profile;
    Ok(Output {
        user_id: u.id,
        name: u.name,
        email: u.email,
        display_name: p.display_name,
        state: u.state.as_str().to_string(),
        user_role: u.role,
        enabled_date: u.enabled_ms.map(EpochSeconds),
        disabled_date: u.disabled_ms.map(EpochSeconds),
        mailbox_provisioned_date: u.mailbox_provisioned_ms.map(EpochSeconds),
        mailbox_deprovisioned_date: u.mailbox_deprovisioned_ms.map(EpochSeconds),
        first_name: p.first_name,
        last_name: p.last_name,
        hidden_from_global_address_list: p.hidden_from_global_address_list,
        initials: p.initials,
        telephone: p.telephone,
        street: p.street,
        job_title: p.job_title,
        city: p.city,
        company: p.company,
        zip_code: p.zip_code,
        department: p.department,
        country: p.country,
        office: p.office,
        identity_provider_user_id: u.identity_provider_user_id,
    })
}
