//! GetMailDomain: a registered domain's verification state and the DNS records its owner publishes.

use serde::{Deserialize, Serialize};

use super::mail_rules::{domain_name, domain_not_found};
use super::{Ctx, active_org, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub domain_name: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    #[serde(rename = "Type")]
    pub kind: String,
    pub hostname: String,
    pub value: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub records: Vec<Record>,
    pub is_test_domain: bool,
    pub is_default: bool,
    pub ownership_verification_status: String,
    pub dkim_verification_status: String,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let domain = domain_name(&input.domain_name)?;
    let org = active_org(ctx, org_id).await?;
    let found = ctx
        .app
        .store
        .get_mail_domain(org_id, &domain)
        .await
        .map_err(store_error)?
        .ok_or_else(|| domain_not_found(&domain))?;
    Ok(Output {
        records: found
            .records()
            .into_iter()
            .map(|r| Record {
                kind: r.kind.to_string(),
                hostname: r.hostname,
                value: r.value,
            })
            .collect(),
        is_test_domain: found.is_test_domain,
        is_default: org.default_mail_domain.eq_ignore_ascii_case(&found.domain),
        ownership_verification_status: found.ownership.as_str().to_string(),
        dkim_verification_status: found.dkim.as_str().to_string(),
    })
}
