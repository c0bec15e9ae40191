//! RegisterMailDomain: registers a domain to the organization, PENDING until verified (at once with
//! `--domain-verification auto`, the default). A domain belongs to at most one live organization of the (account,
//! region); a `ClientToken` makes a retry answer like the first call.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::mail_rules::domain_name;
use super::{Ctx, active_org, store_error, validate};
use crate::error::{ErrorCode, ServiceError};
use crate::mail::{MailDomain, VerificationMode};
use crate::store::{Conflict, Idempotency, StoreError};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub client_token: Option<String>,
    pub organization_id: Option<String>,
    pub domain_name: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Output {}

const OPERATION: &str = "RegisterMailDomain";

fn in_use(domain: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MailDomainInUseException,
        format!("Mail domain {domain} is already registered"),
    )
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let client_token = validate::client_token(&input.client_token)?;
    let org_id = validate::organization_id(&input.organization_id)?;
    let domain = domain_name(&input.domain_name)?;
    let org = active_org(ctx, org_id).await?;
    if domain.ends_with(".awsapps.com") && domain != org.default_mail_domain {
        // Test domains are AWS's: each organization has exactly its own.
        let taken = ctx.app.store.get_mail_domain(org_id, &domain).await;
        if taken.map_err(store_error)?.is_none() {
            return Err(ServiceError::invalid_parameter(format!(
                "Domains under awsapps.com cannot be registered: {domain}"
            )));
        }
    }
    let now = ctx.app.clock.now_ms();
    // The token is remembered with the registration, in one transaction: a retry finds it and answers like the
    // first call (a racing retry waits for the first call's row and then finds its token).
    let idempotency = client_token.map(|token| Idempotency {
        operation: OPERATION,
        token: token.to_string(),
        request_hash: Sha256::digest(format!("{org_id}\0{domain}").as_bytes()).into(),
        result: String::new(),
        now_ms: now,
    });
    if let Some(i) = &idempotency
        && replayed(ctx, i).await?
    {
        return Ok(Output {});
    }
    let verified = ctx.app.settings.domain_verification == VerificationMode::Auto;
    let row = MailDomain::new(&org, &domain, false, verified, now);
    match ctx
        .app
        .store
        .insert_mail_domain(row, idempotency.clone())
        .await
    {
        Ok(()) => Ok(Output {}),
        Err(StoreError::Conflict(Conflict::MailDomain)) => match &idempotency {
            Some(i) if replayed(ctx, i).await? => Ok(Output {}),
            _ => Err(in_use(&domain)),
        },
        Err(e) => Err(store_error(e)),
    }
}

/// Whether this ClientToken already registered this domain; an error if it came with other parameters.
async fn replayed(ctx: &Ctx<'_>, i: &Idempotency) -> Result<bool, ServiceError> {
    let held = ctx
        .app
        .store
        .get_client_token(&ctx.partition, OPERATION, &i.token, i.now_ms)
        .await
        .map_err(store_error)?;
    match held {
        Some(r) if r.request_hash == i.request_hash => Ok(true),
        Some(_) => Err(ServiceError::invalid_parameter(
            "The ClientToken was already used with different parameters",
        )),
        None => Ok(false),
    }
}
