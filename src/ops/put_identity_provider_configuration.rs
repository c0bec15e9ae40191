//! PutIdentityProviderConfiguration: stores the IAM Identity Center link and the organization's PAT settings
//! (status and lifetime, 365 days when omitted). Any ARNs matching the model's patterns are accepted (spec D11).

use serde::Deserialize;

use super::{Ctx, Empty, active_org, store_error, validate};
use crate::domain::{IdentityProviderConfiguration, PatStatus};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityCenterConfiguration {
    pub instance_arn: Option<String>,
    pub application_arn: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct PersonalAccessTokenConfiguration {
    pub status: Option<String>,
    pub lifetime_in_days: Option<i64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub authentication_mode: Option<String>,
    pub identity_center_configuration: Option<IdentityCenterConfiguration>,
    pub personal_access_token_configuration: Option<PersonalAccessTokenConfiguration>,
}

pub type Output = Empty;

/// `LifetimeInDays` when omitted (the admin guide's default).
pub const DEFAULT_LIFETIME_DAYS: i64 = 365;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let mode = validate::required(&input.authentication_mode, "AuthenticationMode")?;
    validate::one_of(
        mode,
        "AuthenticationMode",
        &["IDENTITY_PROVIDER_ONLY", "IDENTITY_PROVIDER_AND_DIRECTORY"],
    )?;
    let idc = validate::required(
        &input.identity_center_configuration,
        "IdentityCenterConfiguration",
    )?;
    let instance_arn =
        validate::required(&idc.instance_arn, "IdentityCenterConfiguration.InstanceArn")?;
    validate::instance_arn(instance_arn)?;
    let application_arn = validate::required(
        &idc.application_arn,
        "IdentityCenterConfiguration.ApplicationArn",
    )?;
    validate::application_arn(application_arn)?;
    let pat = validate::required(
        &input.personal_access_token_configuration,
        "PersonalAccessTokenConfiguration",
    )?;
    let status = validate::required(&pat.status, "PersonalAccessTokenConfiguration.Status")?;
    validate::one_of(
        status,
        "PersonalAccessTokenConfiguration.Status",
        &["ACTIVE", "INACTIVE"],
    )?;
    let lifetime = pat.lifetime_in_days.unwrap_or(DEFAULT_LIFETIME_DAYS);
    validate::range(
        lifetime,
        "PersonalAccessTokenConfiguration.LifetimeInDays",
        1,
        3653,
    )?;
    active_org(ctx, org_id).await?;
    ctx.app
        .store
        .put_identity_provider_configuration(
            org_id,
            IdentityProviderConfiguration {
                authentication_mode: mode.clone(),
                instance_arn: instance_arn.clone(),
                application_arn: application_arn.clone(),
                pat_status: PatStatus::parse(status).unwrap_or(PatStatus::Inactive),
                pat_lifetime_days: lifetime,
            },
        )
        .await
        .map_err(store_error)?;
    Ok(Empty {})
}
