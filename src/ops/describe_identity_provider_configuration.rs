//! DescribeIdentityProviderConfiguration: ResourceNotFoundException when nothing is configured (spec D6).

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply, active_org, encode, store_error, validate};
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityCenter<'a> {
    instance_arn: &'a str,
    application_arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PatConfiguration<'a> {
    status: &'a str,
    lifetime_in_days: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    authentication_mode: &'a str,
    identity_center_configuration: IdentityCenter<'a>,
    personal_access_token_configuration: PatConfiguration<'a>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
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
    encode(&Output {
        authentication_mode: &c.authentication_mode,
        identity_center_configuration: IdentityCenter {
            instance_arn: &c.instance_arn,
            application_arn: &c.application_arn,
        },
        personal_access_token_configuration: PatConfiguration {
            status: c.pat_status.as_str(),
            lifetime_in_days: c.pat_lifetime_days,
        },
    })
}
