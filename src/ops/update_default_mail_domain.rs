//! UpdateDefaultMailDomain: makes a registered, verified domain the organization's default (DescribeOrganization's
//! `DefaultMailDomain`); the test domain stops being the default.

use serde::{Deserialize, Serialize};

use super::mail_rules::{domain_name, domain_not_found, domain_not_verified};
use super::{Ctx, active_org, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub domain_name: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Output {}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let domain = domain_name(&input.domain_name)?;
    active_org(ctx, org_id).await?;
    let store = &ctx.app.store;
    let found = store
        .get_mail_domain(org_id, &domain)
        .await
        .map_err(store_error)?
        .ok_or_else(|| domain_not_found(&domain))?;
    if !found.is_verified() {
        return Err(domain_not_verified(&domain));
    }
    // Checked again in the write: a deregistration in between leaves the default unchanged.
    if !store
        .set_default_mail_domain(org_id, &domain)
        .await
        .map_err(store_error)?
    {
        return Err(domain_not_found(&domain));
    }
    Ok(Output {})
}
