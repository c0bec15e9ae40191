//! Rules the mail-domain and address operations share (issue 15): domain-name validation, the verified-domain
//! check, the state an entity must be in to hold addresses, and how address conflicts are named.

use super::{Ctx, store_error, validate};
use crate::domain::{User, UserState};
use crate::error::{ErrorCode, ServiceError};
use crate::mail::{MailDomain, domain_of};
use crate::store::{Conflict, Store, StoreError};

/// WorkMailDomainName: 3..209, `[a-zA-Z0-9.-]+`; answered lower-cased.
pub fn domain_name(value: &Option<String>) -> Result<String, ServiceError> {
    let v = validate::required(value, "DomainName")?;
    validate::length(v, "DomainName", 3, 209)?;
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !ok {
        return Err(ServiceError::invalid_parameter(
            "1 validation error detected: Value at 'DomainName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9.-]+",
        ));
    }
    Ok(v.to_ascii_lowercase())
}

pub fn domain_not_found(domain: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MailDomainNotFoundException,
        format!("Mail domain {domain} is not registered to the organization"),
    )
}

pub fn domain_not_verified(domain: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MailDomainStateException,
        format!("Mail domain {domain} is not verified"),
    )
}

pub fn address_in_use() -> ServiceError {
    ServiceError::new(
        ErrorCode::EmailAddressInUseException,
        "The email address is already in use",
    )
}

/// The organization's domain of `address`, which must be registered and VERIFIED.
pub async fn verified_domain_of(
    ctx: &Ctx<'_>,
    org_id: &str,
    address: &str,
) -> Result<MailDomain, ServiceError> {
    let domain = domain_of(address).to_ascii_lowercase();
    let found = ctx
        .app
        .store
        .get_mail_domain(org_id, &domain)
        .await
        .map_err(store_error)?
        .ok_or_else(|| domain_not_found(&domain))?;
    if !found.is_verified() {
        return Err(domain_not_verified(&domain));
    }
    Ok(found)
}

/// Only a registered (ENABLED) user holds addresses: DELETED and unregistered users answer `EntityStateException`.
pub fn require_enabled(user: &User) -> Result<(), ServiceError> {
    if user.state == UserState::Enabled {
        return Ok(());
    }
    Err(ServiceError::new(
        ErrorCode::EntityStateException,
        format!("Entity {} is in state {}", user.id, user.state.as_str()),
    ))
}

/// Maps a failed address write: a taken address, or a domain deregistered meanwhile.
pub fn address_write_error(e: StoreError, address: &str) -> ServiceError {
    match e {
        StoreError::Conflict(Conflict::Email) => address_in_use(),
        StoreError::Conflict(Conflict::Reference) => {
            domain_not_found(&domain_of(address).to_ascii_lowercase())
        }
        other => store_error(other),
    }
}

/// Marks a registered domain VERIFIED (`workmail-pat domain verify`, `POST /_workmail-pat/domains/verify`);
/// answers the stored domain name, or why not.
pub async fn mark_domain_verified(
    store: &dyn Store,
    org_id: &str,
    domain: &str,
) -> Result<String, String> {
    let key = crate::mail::normalise_domain(domain)
        .ok_or_else(|| format!("{domain:?} is not a domain name"))?;
    match store.verify_mail_domain(org_id, &key).await {
        Ok(true) => Ok(key),
        Ok(false) => Err(format!(
            "mail domain {key} is not registered to organization {org_id}"
        )),
        Err(e) => Err(e.to_string()),
    }
}
