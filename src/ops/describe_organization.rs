//! DescribeOrganization: works for Deleted organizations too (spec D1).

use serde::{Deserialize, Serialize};

use super::{Ctx, Reply, encode, validate, visible_org};
use crate::domain::EpochSeconds;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Output<'a> {
    organization_id: &'a str,
    alias: &'a str,
    state: &'a str,
    directory_id: &'a str,
    directory_type: &'a str,
    default_mail_domain: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_date: Option<EpochSeconds>,
    #[serde(rename = "ARN")]
    arn: String,
    interoperability_enabled: bool,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let org_id = validate::organization_id(&input.organization_id)?;
    let org = visible_org(ctx, org_id).await?;
    encode(&Output {
        organization_id: &org.id,
        alias: &org.alias,
        state: &org.state,
        directory_id: &org.directory_id,
        directory_type: &org.directory_type,
        default_mail_domain: &org.default_mail_domain,
        completed_date: org.completed_ms.map(EpochSeconds),
        arn: org.arn(),
        interoperability_enabled: org.interoperability_enabled,
    })
}
