//! DeregisterMailDomain: removes a domain from the organization. Refused (`MailDomainInUseException`) while it is
//! the default domain or any address (primary or alias) uses it; a domain that is not registered is no error.

use serde::{Deserialize, Serialize};

use super::mail_rules::domain_name;
use super::{Ctx, active_org, store_error, validate};
use crate::error::{ErrorCode, ServiceError};
use crate::store::mail::Deregistered;
use crate::store::{Conflict, StoreError};

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
    let existing = store
        .get_mail_domain(org_id, &domain)
        .await
        .map_err(store_error)?;
    let Some(existing) = existing else {
        return Ok(Output {});
    };
    let in_use = |why: &str| {
        ServiceError::new(
            ErrorCode::MailDomainInUseException,
            format!("Mail domain {domain} {why}"),
        )
    };
    if existing.is_test_domain {
        // The organization keeps its <alias>.awsapps.com domain for its whole life (as in WorkMail).
        if existing.domain == store_default(ctx, org_id).await? {
            return Err(in_use("is the default domain"));
        }
        return Err(ServiceError::invalid_parameter(format!(
            "The test domain {domain} cannot be deregistered"
        )));
    }
    match store.deregister_mail_domain(org_id, &domain).await {
        Ok(Deregistered::Done | Deregistered::NotRegistered) => {}
        Ok(Deregistered::Default) => return Err(in_use("is the default domain")),
        Err(StoreError::Conflict(Conflict::Reference)) => {
            return Err(in_use("is used by email addresses"));
        }
        Err(e) => return Err(store_error(e)),
    }
    Ok(Output {})
}

async fn store_default(ctx: &Ctx<'_>, org_id: &str) -> Result<String, ServiceError> {
    Ok(active_org(ctx, org_id)
        .await?
        .default_mail_domain
        .to_ascii_lowercase())
}
