//! Which organization and user a typed login name means, for the web sign-in and `/auth/v1/verify` (issue 15).
//!
//! With an `OrganizationId` the name is the user's id, username, primary address or an alias in that organization.
//! Without one, the name must be an email address: its domain (case-insensitive, IDNA domains in their ASCII form)
//! names the one live organization with that verified domain. No such organization, or several (the same domain in
//! several accounts), resolves to nobody, which every caller answers exactly like a wrong password: the same
//! lookups run either way and the password is still hashed against the dummy hash.

use crate::domain::User;
use crate::mail::normalise_address;
use crate::state::AppState;
use crate::store::StoreError;

/// What a login name resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The organization named, or found by the address's domain.
    pub org_id: Option<String>,
    /// The user the name means in that organization (any state: callers check it).
    pub user: Option<User>,
    /// What an unknown name's attempts are limited under: the organization, or the domain typed.
    pub scope: String,
}

/// Resolves `login` in `org_id`, or by its domain when no organization is given (`None` or empty).
pub async fn resolve(
    app: &AppState,
    org_id: Option<&str>,
    login: &str,
) -> Result<Resolved, StoreError> {
    let address = normalise_address(login);
    let (org_id, scope) = match org_id.filter(|o| !o.is_empty()) {
        Some(o) => (Some(o.to_string()), o.to_string()),
        None => {
            let orgs = match &address {
                Some((_, domain)) => app.store.organizations_with_domain(domain, 2).await?,
                None => Vec::new(),
            };
            let scope = match &address {
                Some((_, domain)) => format!("domain:{domain}"),
                None => "domain:".to_string(),
            };
            match orgs.as_slice() {
                [one] => (Some(one.clone()), one.clone()),
                _ => (None, scope),
            }
        }
    };
    // The same reads whether or not an organization was found (no organization has an empty id).
    let in_org = org_id.as_deref().unwrap_or("");
    let mut user = app.store.find_user(in_org, login).await?;
    if user.is_none()
        && let Some((key, _)) = &address
    {
        user = app.store.find_user_by_address(in_org, key).await?;
    }
    Ok(Resolved {
        org_id,
        user,
        scope,
    })
}

/// Whether `login` is one of `user_id`'s addresses (an alias, or an address typed with a Unicode domain).
pub async fn is_address_of(app: &AppState, user_id: &str, login: &str) -> Result<bool, StoreError> {
    match normalise_address(login) {
        Some((key, _)) => app.store.user_has_address(user_id, &key).await,
        None => Ok(false),
    }
}
