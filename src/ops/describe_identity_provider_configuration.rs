//! DescribeIdentityProviderConfiguration: ResourceNotFoundException when nothing is configured (spec D6).

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, store_error, validate};
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityCenter {
    pub instance_arn: String,
    pub application_arn: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct PatConfiguration {
    pub status: &'static str,
    pub lifetime_in_days: i64,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub authentication_mode: String,
    pub identity_center_configuration: IdentityCenter,
    pub personal_access_token_configuration: PatConfiguration,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    active_org(ctx, org_id).await?;
    let c = ctx
        .app
        .store
        .get_identity_provider_configuration(org_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::ResourceNotFoundException,
                format!("No identity provider configuration exists for organization {org_id}"),
            )
        })?;
    Ok(Output {
        authentication_mode: c.authentication_mode,
        identity_center_configuration: IdentityCenter {
            instance_arn: c.instance_arn,
            application_arn: c.application_arn,
        },
        personal_access_token_configuration: PatConfiguration {
            status: c.pat_status.as_str(),
            lifetime_in_days: c.pat_lifetime_days,
        },
    })
}
