//! What makes tokens real outside the admin API: users signing in to the web application, creating their own
//! PATs, and mail servers verifying them. Shared by the web API and the CLI.

use std::net::IpAddr;

use crate::clock::Millis;
use crate::domain::{Organization, PatStatus, PersonalAccessToken, Session, User, UserState};
use crate::ops::validate;
use crate::secrets::{self, PatSecret};
use crate::state::AppState;
use crate::store::StoreError;

/// Why a self-service request was refused.
#[derive(Debug)]
pub enum SelfServiceError {
    /// Bad input (400).
    Invalid(String),
    /// Not allowed in the organization's or user's current state (403).
    Forbidden(String),
    /// No such token of this user (404).
    NotFound(String),
    /// Store failure (500, detail logged only).
    Internal(StoreError),
}

impl From<StoreError> for SelfServiceError {
    fn from(e: StoreError) -> Self {
        SelfServiceError::Internal(e)
    }
}

/// A newly created token and its secret, which is shown to the user exactly once.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: PersonalAccessToken,
    pub secret: PatSecret,
}

/// Checks that the user may create, list or delete their own tokens (spec D9): an Active organization, an ENABLED
/// user and a PAT configuration with Status ACTIVE. Returns the PAT lifetime in days.
async fn self_service_allowed(
    app: &AppState,
    org: &Organization,
    user: &User,
) -> Result<i64, SelfServiceError> {
    if !org.is_active() {
        return Err(SelfServiceError::Forbidden(format!(
            "Organization {} is not Active",
            org.id
        )));
    }
    if user.state != UserState::Enabled {
        return Err(SelfServiceError::Forbidden(
            "The user is not enabled for WorkMail".into(),
        ));
    }
    match app
        .store
        .get_identity_provider_configuration(&org.id)
        .await?
    {
        Some(c) if c.pat_status == PatStatus::Active => Ok(c.pat_lifetime_days),
        Some(_) => Err(SelfServiceError::Forbidden(
            "Personal access tokens are INACTIVE for this organization".into(),
        )),
        None => Err(SelfServiceError::Forbidden(
            "Personal access tokens are not configured for this organization".into(),
        )),
    }
}

pub async fn ensure_self_service(
    app: &AppState,
    org: &Organization,
    user: &User,
) -> Result<(), SelfServiceError> {
    self_service_allowed(app, org, user).await.map(|_| ())
}

/// Creates a PAT for `user`. `ExpiresTime` = `DateCreated` + the `LifetimeInDays` in force now (spec D9).
pub async fn create_token(
    app: &AppState,
    org: &Organization,
    user: &User,
    name: &str,
    scopes: Option<Vec<String>>,
) -> Result<CreatedToken, SelfServiceError> {
    validate::safe_text(name, "Name", 1, 64)
        .map_err(|e| SelfServiceError::Invalid(e.message.into()))?;
    let scopes = scopes.unwrap_or_else(|| app.settings.default_scopes.clone());
    validate::scopes(&scopes, "Scopes").map_err(|e| SelfServiceError::Invalid(e.message.into()))?;
    let mut unique = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    let lifetime_days = self_service_allowed(app, org, user).await?;
    let now = app.clock.now_ms();
    let secret = PatSecret::generate();
    let token = PersonalAccessToken {
        id: app.ids.guid(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        name: name.to_string(),
        scopes: unique,
        created_ms: now,
        last_used_ms: None,
        expires_ms: now + lifetime_days * 86_400_000,
    };
    let mut token = token;
    let mut outcome = app
        .store
        .insert_personal_access_token(token.clone(), secret.digest(&app.pepper))
        .await;
    // The id can only collide when ids are seeded (test API); the secret is always fresh, so draw another id.
    for _ in 0..5 {
        if !matches!(
            outcome,
            Err(StoreError::Conflict(crate::store::Conflict::TokenId))
        ) {
            break;
        }
        token.id = app.ids.guid();
        outcome = app
            .store
            .insert_personal_access_token(token.clone(), secret.digest(&app.pepper))
            .await;
    }
    outcome?;
    tracing::info!(
        event = "token_created",
        organization_id = %org.id,
        user_id = %user.id,
        token_id = %token.id
    );
    Ok(CreatedToken { token, secret })
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: String,
    pub token_id: String,
}

/// Verifies a token presented by a mail server for `username` (id, username or email). Every check of
/// security.md §3.2 runs on every use: format and checksum, existence, organization, owner == login user, expiry,
/// user ENABLED, organization Active, PAT status ACTIVE, scope. `None` for any failure: callers answer one uniform
/// 401. The first successful use sets `DateLastUsed` at once; later ones move it at most once per interval.
pub async fn verify(
    app: &AppState,
    org_id: &str,
    username: &str,
    presented: &str,
    scope: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Option<Verified>, StoreError> {
    let outcome = verify_inner(app, org_id, username, presented, scope).await;
    if let Ok(None) = outcome {
        app.throttle.record_login_failure(org_id, username, ip);
    }
    let result = match &outcome {
        Ok(Some(_)) => "success",
        Ok(None) => "failure",
        Err(_) => "error",
    };
    metrics::counter!("workmail_pat_token_verifications_total", "result" => result).increment(1);
    outcome
}

async fn verify_inner(
    app: &AppState,
    org_id: &str,
    username: &str,
    presented: &str,
    scope: Option<&str>,
) -> Result<Option<Verified>, StoreError> {
    let Some(secret) = PatSecret::parse(presented) else {
        return Ok(None);
    };
    // One read: the token, its owner, its organization and the PAT configuration.
    let Some(record) = app.store.verify_lookup(secret.digest(&app.pepper)).await? else {
        return Ok(None);
    };
    let token = &record.token;
    let now: Millis = app.clock.now_ms();
    if token.org_id != org_id || now >= token.expires_ms {
        return Ok(None);
    }
    if let Some(s) = scope
        && !token.scopes.iter().any(|t| t == s)
    {
        return Ok(None);
    }
    // The login name must be the owner's id, name or email: a valid token never logs in as someone else.
    let login = username.to_ascii_lowercase();
    let owner = record.user_id == username
        || record.user_name_key == login
        || record.user_email_key.as_deref() == Some(login.as_str());
    if !owner
        || record.user_state != UserState::Enabled
        || record.org_state != crate::domain::org_state::ACTIVE
        || record.pat_status != Some(PatStatus::Active)
    {
        return Ok(None);
    }
    // Written only when stale, so a busy token costs no write (and the first use is visible at once).
    if token
        .last_used_ms
        .is_none_or(|t| now - t >= app.settings.last_used_interval_ms)
    {
        app.store
            .touch_personal_access_token(&token.id, now, app.settings.last_used_interval_ms)
            .await?;
    }
    Ok(Some(Verified {
        user_id: record.user_id,
        token_id: record.token.id,
    }))
}

/// A web-application sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub session_token: zeroize::Zeroizing<String>,
    pub user_id: String,
    pub expires_ms: Millis,
}

/// Signs a user in with the directory password (spec D11). `None` for every failure (unknown organization or user,
/// wrong password, user not ENABLED); the Argon2 work is done either way so timing does not reveal which.
pub async fn sign_in(
    app: &AppState,
    org_id: &str,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Option<SignedIn>, StoreError> {
    let outcome = sign_in_inner(app, org_id, username, password).await;
    if let Ok(None) = outcome {
        app.throttle.record_login_failure(org_id, username, ip);
    }
    outcome
}

/// Whether sign-in or verification attempts for this user, or from this IP, must slow down now (too many recent
/// failures). Callers answer 429 without trying, the same for existing and unknown users.
pub fn attempts_limited(app: &AppState, org_id: &str, username: &str, ip: Option<IpAddr>) -> bool {
    app.throttle.login_limited(org_id, username, ip)
}

async fn sign_in_inner(
    app: &AppState,
    org_id: &str,
    username: &str,
    password: &str,
) -> Result<Option<SignedIn>, StoreError> {
    let org = app.store.find_organization(org_id).await?;
    let user = match &org {
        Some(o) if o.is_active() => app.store.find_user(org_id, username).await?,
        _ => None,
    };
    let stored = user
        .as_ref()
        .filter(|u| u.state == UserState::Enabled)
        .and_then(|u| u.password_hash.clone());
    let password = zeroize::Zeroizing::new(password.to_string());
    let ok = crate::hashing::on_password_thread(crate::hashing::Lane::SignIn, move || {
        secrets::verify_password(&password, stored.as_deref())
    })
    .await
    .map_err(crate::hashing::HashingError::into_store_error)?;
    let Some(user) = user.filter(|_| ok) else {
        return Ok(None);
    };
    let (session_token, digest) = secrets::new_session_token(&app.pepper);
    let expires_ms = app.clock.now_ms() + app.settings.session_ttl_ms;
    app.store
        .create_session(
            digest,
            Session {
                org_id: org_id.to_string(),
                user_id: user.id.clone(),
                expires_ms,
            },
        )
        .await?;
    Ok(Some(SignedIn {
        session_token,
        user_id: user.id,
        expires_ms,
    }))
}

/// The organization and user behind a session token, if the session is live.
pub async fn session_user(
    app: &AppState,
    session_token: &str,
) -> Result<Option<(Organization, User)>, StoreError> {
    let digest = secrets::session_digest(&app.pepper, session_token);
    let Some(session) = app.store.get_session(digest).await? else {
        return Ok(None);
    };
    if app.clock.now_ms() >= session.expires_ms {
        app.store.delete_session(digest).await?;
        return Ok(None);
    }
    let Some(org) = app.store.find_organization(&session.org_id).await? else {
        return Ok(None);
    };
    let Some(user) = app
        .store
        .find_user(&session.org_id, &session.user_id)
        .await?
    else {
        return Ok(None);
    };
    if user.id != session.user_id {
        return Ok(None);
    }
    Ok(Some((org, user)))
}

/// Ends a session.
pub async fn sign_out(app: &AppState, session_token: &str) -> Result<(), StoreError> {
    app.store
        .delete_session(secrets::session_digest(&app.pepper, session_token))
        .await
}
