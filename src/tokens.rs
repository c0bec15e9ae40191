//! What makes tokens real outside the admin API: users signing in to the web application, creating their own
//! PATs, and mail servers verifying them. Shared by the web API, the web page and the CLI.
//!
//! Every attempt to prove a credential (sign-in, re-authentication, token verification) goes through
//! [`limited_attempt`]: the attempt is reserved with the throttle *before* the password or token is checked and
//! settled with the outcome, so no entry point can skip or race the limits.

use std::net::IpAddr;

use crate::clock::Millis;
use crate::domain::{Organization, PatStatus, PersonalAccessToken, Session, User, UserState};
use crate::ops::validate;
use crate::secrets::{self, PatSecret};
use crate::state::AppState;
use crate::store::{AttemptRequest, AttemptWindow, SharedAttempt, StoreError, VerifyRecord};
use crate::throttle::{Attempt, Limited};

/// Why a self-service request was refused.
#[derive(Debug)]
pub enum SelfServiceError {
    /// Bad input (400).
    Invalid(String),
    /// Not allowed in the organization's or user's current state (403).
    Forbidden(String),
    /// No such token of this user (404).
    NotFound(String),
    /// The session is older than the re-authentication age: the password must be entered again (401).
    ReauthenticationRequired,
    /// The session ended meanwhile (reset, deregistration, deletion, sign-out) (401).
    SessionEnded,
    /// Too many failed attempts (429).
    Limited(Limited),
    /// Store failure (500, detail logged only).
    Internal(StoreError),
}

impl From<StoreError> for SelfServiceError {
    fn from(e: StoreError) -> Self {
        SelfServiceError::Internal(e)
    }
}

/// How an attempt to prove a credential ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// Wrong or unknown credentials, or any state that forbids them: one uniform refusal.
    Refused,
    /// Too many failed attempts for this user or address: refused before checking anything.
    Limited(Limited),
}

/// The key an attempt is limited under: the resolved user's id when the user exists, else the identifier as
/// typed (normalised), so the username, the email and the id of one user share one budget while unknown names
/// are limited the same way (nothing reveals which names exist).
fn attempt_subject(org_id: &str, user_id: Option<&str>, typed: &str) -> String {
    match user_id {
        Some(id) => format!("user\0{id}"),
        // An unknown name and the same name with a domain share a budget, as a real user's username and email do,
        // so comparing the two reveals nothing about which names exist.
        None => {
            let local = typed.split('@').next().unwrap_or(typed);
            format!("name\0{org_id}\0{}", local.to_ascii_lowercase())
        }
    }
}

/// Whether an attempt is also accounted for in the store, across replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// Passwords (sign-in, re-authentication): guessable, so every replica counts against one budget.
    AcrossReplicas,
    /// Tokens (verification): 128-bit secrets nobody can guess; the limits only curb abuse, per replica, and the
    /// hot path of every mail login stays free of writes.
    PerReplica,
}

/// Runs `check` as one limited attempt: reserved first (in memory, and for passwords in the store too, so the
/// budget holds across replicas), settled with its result (a store error releases the reservation without
/// counting it).
async fn limited_attempt<T, F>(
    app: &AppState,
    subject: &str,
    client: Option<IpAddr>,
    pair_hint: Option<IpAddr>,
    sharing: Sharing,
    check: F,
) -> Result<Outcome<T>, StoreError>
where
    F: std::future::Future<Output = Result<Option<T>, StoreError>>,
{
    // On a store shared by replicas the user's ceiling is counted there, with every replica's failures and the
    // addresses she succeeded from on any replica; this replica's memory alone would lock her out of those.
    // Tokens cannot be guessed, so verification has no ceiling: it could only lock a user out.
    let memory_ceiling = match sharing {
        Sharing::AcrossReplicas => !app.store.shares_attempts(),
        Sharing::PerReplica => false,
    };
    let attempt = app
        .throttle
        .begin_attempt_with(subject, client, pair_hint, memory_ceiling);
    let attempt: Attempt<'_> = match attempt {
        Ok(a) => a,
        Err(limited) => return Ok(Outcome::Limited(limited)),
    };
    let shared = if sharing == Sharing::AcrossReplicas && app.throttle.enabled() {
        let request = shared_request(app, subject, client);
        match app.store.reserve_attempt(&request).await {
            Ok(SharedAttempt::Limited { retry_after_ms }) => {
                attempt.released();
                return Ok(Outcome::Limited(Limited {
                    retry_after: std::time::Duration::from_millis(retry_after_ms.max(0) as u64),
                }));
            }
            Ok(SharedAttempt::Reserved(ids)) => Some((request, ids)),
            Ok(SharedAttempt::NotShared) => None,
            Err(e) => {
                attempt.released();
                return Err(e);
            }
        }
    } else {
        None
    };
    let outcome = check.await;
    if let (Some((request, ids)), Ok(result)) = (&shared, &outcome)
        && let Err(e) = app
            .store
            .settle_attempt(request, ids, result.is_none())
            .await
    {
        // The pending rows age out on their own; the answer stands.
        tracing::warn!(error = %e, "settling a shared attempt failed");
    }
    match outcome {
        Ok(Some(v)) => {
            attempt.succeeded();
            Ok(Outcome::Done(v))
        }
        Ok(None) => {
            attempt.failed();
            Ok(Outcome::Refused)
        }
        Err(e) => {
            attempt.released();
            Err(e)
        }
    }
}

/// The store-side windows of an attempt: keyed hashes (with the pepper every replica shares) of the pair, the user
/// and the client address, and the same limits as the in-memory windows.
fn shared_request(app: &AppState, subject: &str, client: Option<IpAddr>) -> AttemptRequest {
    let settings = app.throttle.settings();
    let address = client.map(|ip| crate::throttle::address_key(ip).to_string());
    let key = |kind: &str, value: &str| {
        let mut data = Vec::with_capacity(16 + value.len());
        data.extend_from_slice(b"attempt\0");
        data.extend_from_slice(kind.as_bytes());
        data.push(0);
        data.extend_from_slice(value.as_bytes());
        let mac = secrets::hmac_sha256(app.pepper.expose(), &data);
        let mut k = [0u8; 16];
        k.copy_from_slice(&mac[..16]);
        k
    };
    let ms = |d: std::time::Duration| d.as_millis() as Millis;
    let pair_value = format!("{subject}\0{}", address.as_deref().unwrap_or(""));
    AttemptRequest {
        pair: AttemptWindow {
            key: key("pair", &pair_value),
            limit: settings.user_failures.max(1),
            window_ms: ms(settings.user_window),
        },
        user: AttemptWindow {
            key: key("user", subject),
            limit: settings.user_ceiling.max(settings.user_failures).max(1),
            window_ms: ms(settings.user_window),
        },
        address: address.as_deref().map(|a| AttemptWindow {
            key: key("addr", a),
            limit: settings.ip_failures.max(1),
            window_ms: ms(settings.ip_window),
        }),
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis),
    }
}

/// Checks a password against a stored Argon2id hash on the password-hashing threads. With no stored hash the same
/// work is done against a dummy, so timing does not reveal whether the user exists.
async fn password_matches(password: &str, stored: Option<String>) -> Result<bool, StoreError> {
    let password = zeroize::Zeroizing::new(password.to_string());
    crate::hashing::on_password_thread(crate::hashing::Lane::SignIn, move || {
        secrets::verify_password(&password, stored.as_deref())
    })
    .await
    .map_err(crate::hashing::HashingError::into_store_error)
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

/// A newly created token and its secret, which is shown to the user exactly once.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: PersonalAccessToken,
    pub secret: PatSecret,
}

/// Who asks for a new token.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// A signed-in user through the web page or its API: the token is created only while that session is live,
    /// and only if the password was entered recently enough.
    Session(&'a SessionUser),
    /// An operator with access to the database (`workmail-pat token create`).
    Operator,
}

/// Creates a PAT for `user`. `ExpiresTime` = `DateCreated` + the `LifetimeInDays` in force now (spec D9).
pub async fn create_token(
    app: &AppState,
    org: &Organization,
    user: &User,
    requester: Requester<'_>,
    name: &str,
    scopes: Option<Vec<String>>,
) -> Result<CreatedToken, SelfServiceError> {
    validate::safe_text(name, "Name", 1, 64)
        .map_err(|e| SelfServiceError::Invalid(e.to_string()))?;
    let scopes = scopes.unwrap_or_else(|| app.settings.default_scopes.clone());
    validate::scopes(&scopes, "Scopes").map_err(|e| SelfServiceError::Invalid(e.to_string()))?;
    let mut unique = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    let lifetime_days = self_service_allowed(app, org, user).await?;
    let now = app.clock.now_ms();
    if let Requester::Session(s) = requester
        && needs_reauthentication(app, s, now)
    {
        return Err(SelfServiceError::ReauthenticationRequired);
    }
    let secret = PatSecret::generate();
    let mut token = PersonalAccessToken {
        id: app.ids.guid(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        name: name.to_string(),
        scopes: unique,
        created_ms: now,
        last_used_ms: None,
        expires_ms: now + lifetime_days * 86_400_000,
    };
    let digest = secret.digest(&app.pepper);
    // The id can only collide when ids are seeded (test API); the secret is always fresh, so draw another id.
    let mut attempts = 0;
    loop {
        let inserted = match requester {
            Requester::Session(s) => {
                app.store
                    .insert_personal_access_token_for_session(token.clone(), digest, s.digest)
                    .await
            }
            Requester::Operator => app
                .store
                .insert_personal_access_token(token.clone(), digest)
                .await
                .map(|()| true),
        };
        match inserted {
            Ok(true) => break,
            Ok(false) => return Err(SelfServiceError::SessionEnded),
            Err(StoreError::Conflict(crate::store::Conflict::TokenId)) if attempts < 5 => {
                attempts += 1;
                token.id = app.ids.guid();
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(
        event = "token_created",
        organization_id = %org.id,
        user_id = %user.id,
        token_id = %token.id
    );
    Ok(CreatedToken { token, secret })
}

/// Whether a session must re-enter its password before a sensitive action.
pub fn needs_reauthentication(app: &AppState, session: &SessionUser, now: Millis) -> bool {
    now - session.authenticated_ms > app.settings.reauth_after_ms
}

/// What a mail server presents to `/auth/v1/verify`.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// Optional when the login name is an email address (its verified domain names the organization).
    pub org_id: Option<&'a str>,
    /// The login name: the user's id, username, email or an alias.
    pub username: &'a str,
    pub token: &'a str,
    pub scope: Option<&'a str>,
    /// The mail client's address, as far as it can be trusted.
    pub client: Option<IpAddr>,
    /// The mail client's address as an untrusted caller reported it (only separates one client's failures from
    /// another's for the same user: [`crate::throttle::Throttle::begin_attempt_with`]).
    pub reported: Option<IpAddr>,
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The organization the token belongs to (the one named, or found by the address's domain).
    pub org_id: String,
    pub user_id: String,
    pub token_id: String,
}

/// Verifies a token presented by a mail server. Every check of security.md §3.2 runs on every use: format and
/// checksum, existence, organization, owner == login user, expiry, user ENABLED, organization Active, PAT status
/// ACTIVE, scope (required unless `--verify-allow-missing-scope`). Limited per user and client address like a
/// sign-in. The first successful use sets `DateLastUsed` at once; later ones move it at most once per interval.
pub async fn verify(
    app: &AppState,
    request: &VerifyRequest<'_>,
) -> Result<Outcome<Verified>, StoreError> {
    let outcome = if request.scope.is_none() && app.settings.verify_require_scope {
        // A mail server always knows which service it asks for; without a scope any token would do.
        Ok(Outcome::Refused)
    } else {
        // One read: the token, its owner, its organization and the PAT configuration.
        let record = match PatSecret::parse(request.token) {
            Some(secret) => app.store.verify_lookup(secret.digest(&app.pepper)).await?,
            None => None,
        };
        let login = request.username.to_ascii_lowercase();
        // When the organization is named and the login is the token owner's id, name or email, the owner is the
        // user the login means (an id first, then names and emails: a token's owner is never DELETED), so the
        // attempt is counted under her without resolving the login again.
        let owner_named = record.as_ref().and_then(|r| {
            (request.org_id == Some(r.token.org_id.as_str())
                && names_owner(r, request.username, &login))
            .then_some(r)
        });
        let (subject, org_id, alias_owner) = match owner_named {
            Some(r) => (
                attempt_subject(&r.token.org_id, Some(&r.user_id), request.username),
                Some(r.token.org_id.clone()),
                None,
            ),
            None => {
                let resolved = crate::login::resolve(app, request.org_id, request.username).await?;
                let user_id = resolved.user.map(|u| u.id);
                let subject =
                    attempt_subject(&resolved.scope, user_id.as_deref(), request.username);
                (subject, resolved.org_id, user_id)
            }
        };
        limited_attempt(
            app,
            &subject,
            request.client,
            request.reported,
            Sharing::PerReplica,
            verify_token(app, request, &login, record, org_id, alias_owner),
        )
        .await
    };
    let result = match &outcome {
        Ok(Outcome::Done(_)) => "success",
        Ok(Outcome::Refused) => "failure",
        Ok(Outcome::Limited(_)) => "throttled",
        Err(_) => "error",
    };
    metrics::counter!("workmail_pat_token_verifications_total", "result" => result).increment(1);
    outcome
}

/// Whether the login (`lower`: lower-cased) is the token owner's id, name or email.
fn names_owner(record: &VerifyRecord, login: &str, lower: &str) -> bool {
    record.user_id == login
        || record.user_name_key == lower
        || record.user_email_key.as_deref() == Some(lower)
}

/// The checks of a use on the looked-up `record`, in the organization the login resolved to (`org_id`);
/// `alias_owner` is the user the login resolved to when it does not name the owner directly (an alias).
async fn verify_token(
    app: &AppState,
    request: &VerifyRequest<'_>,
    login: &str,
    record: Option<VerifyRecord>,
    org_id: Option<String>,
    alias_owner: Option<String>,
) -> Result<Option<Verified>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    let token = &record.token;
    let now: Millis = app.clock.now_ms();
    if org_id.as_deref() != Some(token.org_id.as_str()) || now >= token.expires_ms {
        return Ok(None);
    }
    if let Some(s) = request.scope
        && !token.scopes.iter().any(|t| t == s)
    {
        return Ok(None);
    }
    // The login name must be the owner's id, name or email: a valid token never logs in as someone else.
    // (An alias resolves to its owner too.)
    let owner = names_owner(&record, request.username, login)
        || (alias_owner.as_deref() == Some(record.user_id.as_str())
            && crate::login::is_address_of(app, &record.user_id, request.username).await?);
    if !owner
        || record.user_state != UserState::Enabled
        || record.org_state != crate::domain::org_state::ACTIVE
        || record.pat_status != Some(PatStatus::Active)
    {
        return Ok(None);
    }
    // Written only when stale, so a busy token costs no write. The first use is written here and now (visible at
    // once); later moves wait in `app.touches` for the next flush (at most a second), unless its queue is full.
    let interval = app.settings.last_used_interval_ms;
    match token.last_used_ms {
        None => {
            app.store
                .touch_personal_access_token(token, now, interval)
                .await?
        }
        Some(t) if now - t >= interval && !app.touches.record(token, now) => {
            app.store
                .touch_personal_access_token(token, now, interval)
                .await?
        }
        Some(_) => {}
    }
    Ok(Some(Verified {
        org_id: record.token.org_id,
        user_id: record.user_id,
        token_id: record.token.id,
    }))
}

/// A web-application sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub session_token: zeroize::Zeroizing<String>,
    /// The organization signed in to (the one named, or found by the address's domain).
    pub org_id: String,
    pub user_id: String,
    pub expires_ms: Millis,
}

/// Signs a user in with the directory password (spec D11). [`Outcome::Refused`] for every failure (unknown
/// organization or user, wrong password, user not ENABLED, a reset that raced with the sign-in); the Argon2 work is
/// done either way so timing does not reveal which.
pub async fn sign_in(
    app: &AppState,
    org_id: Option<&str>,
    username: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<Outcome<SignedIn>, StoreError> {
    // Nothing longer can match (ids are 34 characters, names and emails at most 256, passwords are capped): refused
    // before any lookup or hashing, the same for every entry point.
    if org_id.is_some_and(|o| o.len() > 64) || username.len() > 256 || password.len() > 1024 {
        return Ok(Outcome::Refused);
    }
    // Without an organization, an address's verified domain names it (crate::login); otherwise nobody.
    let resolved = crate::login::resolve(app, org_id, username).await?;
    let org_id = resolved.org_id.clone().unwrap_or_default();
    let org = app.store.find_organization(&org_id).await?;
    let user = match &org {
        Some(o) if o.is_active() => resolved.user.clone(),
        _ => None,
    };
    let subject = attempt_subject(
        &resolved.scope,
        user.as_ref().map(|u| u.id.as_str()),
        username,
    );
    limited_attempt(
        app,
        &subject,
        client,
        None,
        Sharing::AcrossReplicas,
        async {
            let stored = user
                .as_ref()
                .filter(|u| u.state == UserState::Enabled)
                .and_then(|u| u.password_hash.clone());
            if !password_matches(password, stored.clone()).await? {
                return Ok(None);
            }
            let (Some(user), Some(hash)) = (user, stored) else {
                return Ok(None);
            };
            let (session_token, digest) = secrets::new_session_token(&app.pepper);
            let now = app.clock.now_ms();
            let expires_ms = now + app.settings.session_ttl_ms;
            let session = Session {
                org_id: org_id.clone(),
                user_id: user.id.clone(),
                expires_ms,
                authenticated_ms: now,
            };
            // Bound to the hash just checked: if the password was reset meanwhile, no session is created.
            if !app.store.create_session(digest, session, &hash).await? {
                return Ok(None);
            }
            Ok(Some(SignedIn {
                session_token,
                org_id: org_id.clone(),
                user_id: user.id,
                expires_ms,
            }))
        },
    )
    .await
}

/// The signed-in user behind a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub org: Organization,
    pub user: User,
    /// The session's stored digest (binds token creation to this very session).
    pub digest: [u8; 32],
    /// When the password was last entered for this session.
    pub authenticated_ms: Millis,
}

/// The organization and user behind a session token, if the session is live: not expired, and bound to the
/// user's current credential generation (a password reset, deregistration or deletion ends it).
pub async fn session_user(
    app: &AppState,
    session_token: &str,
) -> Result<Option<SessionUser>, StoreError> {
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
    Ok(Some(SessionUser {
        org,
        user,
        digest,
        authenticated_ms: session.authenticated_ms,
    }))
}

/// Re-enters the password for a live session (before sensitive actions on an older session). Limited like a
/// sign-in, under the same user and address budget.
pub async fn reauthenticate(
    app: &AppState,
    session: &SessionUser,
    password: &str,
    client: Option<IpAddr>,
) -> Result<Outcome<()>, StoreError> {
    let subject = attempt_subject(&session.org.id, Some(&session.user.id), &session.user.id);
    limited_attempt(
        app,
        &subject,
        client,
        None,
        Sharing::AcrossReplicas,
        async {
            let stored = session.user.password_hash.clone();
            if !password_matches(password, stored.clone()).await? {
                return Ok(None);
            }
            let Some(hash) = stored else {
                return Ok(None);
            };
            let now = app.clock.now_ms();
            Ok(app
                .store
                .reauthenticate_session(session.digest, &hash, now)
                .await?
                .then_some(()))
        },
    )
    .await
}

/// The most tokens a user's own list shows (the page and the JSON API alike).
pub const MAX_OWN_TOKENS: usize = 1000;

/// The signed-in user's own tokens, oldest first (self-service must be allowed: spec D9).
pub async fn list_own_tokens(
    app: &AppState,
    session: &SessionUser,
) -> Result<Vec<PersonalAccessToken>, SelfServiceError> {
    ensure_self_service(app, &session.org, &session.user).await?;
    Ok(app
        .store
        .list_personal_access_tokens(
            &session.org.id,
            Some(&session.user.id),
            None,
            MAX_OWN_TOKENS,
        )
        .await?)
}

/// The signed-in user's own token with this id. Another user's token and an unknown or malformed id look the
/// same ([`SelfServiceError::NotFound`]), so nobody learns which ids exist.
pub async fn own_token(
    app: &AppState,
    session: &SessionUser,
    id: &str,
) -> Result<PersonalAccessToken, SelfServiceError> {
    ensure_self_service(app, &session.org, &session.user).await?;
    let not_found = || SelfServiceError::NotFound("No such token".into());
    if validate::personal_access_token_id(&Some(id.to_string())).is_err() {
        return Err(not_found());
    }
    match app
        .store
        .get_personal_access_token(&session.org.id, id)
        .await?
    {
        Some(t) if t.user_id == session.user.id => Ok(t),
        _ => Err(not_found()),
    }
}

/// Revokes one of the signed-in user's own tokens (as [`own_token`] finds it).
pub async fn delete_own_token(
    app: &AppState,
    session: &SessionUser,
    id: &str,
    via: &'static str,
) -> Result<(), SelfServiceError> {
    let token = own_token(app, session, id).await?;
    revoke_own_token(app, session, &token, via).await
}

/// Revokes a token [`own_token`] has already found (the page asks for confirmation in between).
pub async fn revoke_own_token(
    app: &AppState,
    session: &SessionUser,
    token: &PersonalAccessToken,
    via: &'static str,
) -> Result<(), SelfServiceError> {
    app.store
        .delete_personal_access_token(&session.org.id, &token.id)
        .await?;
    tracing::info!(event = "token_deleted", via, organization_id = %session.org.id, user_id = %session.user.id, token_id = %token.id);
    Ok(())
}

/// Ends a session.
pub async fn sign_out(app: &AppState, session_token: &str) -> Result<(), StoreError> {
    app.store
        .delete_session(secrets::session_digest(&app.pepper, session_token))
        .await
}
