//! DescribeOrganization: works for Deleted organizations too (spec D1).

use serde::{Deserialize, Serialize};

use super::{Ctx, validate, visible_org};
use crate::domain::EpochSeconds;
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub organization_id: String,
    pub alias: String,
    pub state: String,
    pub directory_id: String,
    pub directory_type: String,
    pub default_mail_domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_date: Option<EpochSeconds>,
    #[serde(rename = "ARN")]
    pub arn: String,
    pub interoperability_enabled: bool,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let org = visible_org(ctx, org_id).await?;
    let arn = org.arn();
    Ok(Output {
        organization_id: org.id,
        alias: org.alias,
        state: org.state,
        directory_id: org.directory_id,
        directory_type: org.directory_type,
        default_mail_domain: org.default_mail_domain,
        completed_date: org.completed_ms.map(EpochSeconds),
        arn,
        interoperability_enabled: org.interoperability_enabled,
    })
}
