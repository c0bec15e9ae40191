//! The web application: its page at `/webapp/` (`page`, `views`), its JSON API (sign-in, a user's own tokens)
//! and the mail-server verification endpoint. These are not AWS APIs: the JSON API answers plain JSON with HTTP
//! status codes, errors as `{"__type", "Message"}`; [`WebError::into_response`] is the one place where its errors
//! become responses.
//!
//! Authentication: API clients send `Authorization: Bearer <SessionToken>`; the page's browser sends the
//! `HttpOnly` session cookie ([`session`]). A cookie is sent by the browser on its own, so every state-changing
//! request authenticated by cookie must also carry the session's CSRF token (form field or `X-CSRF-Token`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::client::ClientAddr;
use crate::context::Shared;
use crate::context::{BodyError, read_body};
use crate::domain::EpochSeconds;
use crate::model::{CreatedTokenOutput, PatSummary};
use crate::redact;
use crate::throttle::Limited;
use crate::tokens::{self, Outcome, SelfServiceError, SessionUser};

mod page;
pub mod session;
pub mod views;

/// The routes of the web application and of mail-server verification.
pub fn routes() -> axum::Router<Arc<Shared>> {
    use axum::routing::{delete, get, post};
    axum::Router::new()
        // Only GET: `POST /` is the AWS API (registered by the server; axum merges the two methods).
        .route("/", get(page::root))
        .route("/webapp", get(page::root))
        .route("/webapp/", get(page::index))
        .route("/webapp/sign-in", post(page::sign_in))
        .route("/webapp/sign-out", post(page::sign_out))
        .route("/webapp/tokens", post(page::create))
        .route("/webapp/tokens/{id}/revoke", post(page::revoke))
        .route("/webapp/static/app.css", get(page::asset_css))
        .route("/webapp/static/app.js", get(page::asset_js))
        .route("/webapp/static/favicon.svg", get(page::asset_icon))
        .route(
            "/webapp/api/sessions",
            post(create_session).delete(delete_session),
        )
        .route(
            "/webapp/api/personal-access-tokens",
            post(create_token).get(list_tokens),
        )
        .route(
            "/webapp/api/personal-access-tokens/{id}",
            delete(delete_token),
        )
        .route("/auth/v1/verify", post(verify))
}

/// A refused web request.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    /// `Retry-After` seconds (throttled answers).
    retry_after: Option<u64>,
}

impl WebError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The answer while a user or address must slow down: the same for existing and unknown users, with the
    /// real time until an attempt can succeed again.
    pub(crate) fn throttled(limited: Limited) -> Self {
        Self {
            retry_after: Some(limited.retry_after_secs()),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many failed attempts; try again later",
            )
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UnauthorizedException", message)
    }

    #[track_caller]
    fn internal(detail: impl std::fmt::Display) -> Self {
        let location = std::panic::Location::caller();
        tracing::error!(%detail, %location, "internal error in web API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error occurred. Please retry.",
        )
    }
}

impl From<SelfServiceError> for WebError {
    fn from(e: SelfServiceError) -> Self {
        match e {
            SelfServiceError::Invalid(m) => WebError::invalid(m),
            SelfServiceError::Forbidden(m) => {
                WebError::new(StatusCode::FORBIDDEN, "ForbiddenException", m)
            }
            SelfServiceError::NotFound(m) => {
                WebError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", m)
            }
            SelfServiceError::ReauthenticationRequired => WebError::new(
                StatusCode::UNAUTHORIZED,
                "ReauthenticationRequiredException",
                "Enter your password again (field Password) to create a token",
            ),
            SelfServiceError::SessionEnded => {
                WebError::unauthorized("The session is invalid or has expired")
            }
            SelfServiceError::Limited(l) => WebError::throttled(l),
            SelfServiceError::Internal(e) => WebError::from(e),
        }
    }
}

impl From<crate::store::StoreError> for WebError {
    #[track_caller]
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // The database is unreachable right now: a retryable 503 rather than an internal error.
            crate::store::StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                WebError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Please retry.",
                )
            }
            other => WebError::internal(other),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                kind: self.kind,
                message: &self.message,
            }),
        )
            .into_response();
        no_store(response.headers_mut());
        // A throttled answer says when to come back; every 503 here is momentary (database unreachable, password
        // queue full).
        let retry_after = self
            .retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(1));
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Responses of this API may carry secrets (a PAT shown once, a session token): never cache them.
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, Json(body)).into_response();
    no_store(response.headers_mut());
    response
}

/// Reads a bounded JSON object body; anything else is a 400.
async fn json_body<T: serde::de::DeserializeOwned>(
    shared: &Shared,
    request: Request,
) -> Result<T, WebError> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, shared.limits.max_body_bytes)
        .await
        .map_err(|e| {
            let status = match e {
                BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Unreadable => StatusCode::BAD_REQUEST,
            };
            WebError::new(status, "InvalidParameterException", e.message())
        })?;
    crate::ops::decode::<T>(&bytes).map_err(|e| WebError::invalid(e.message))
}

/// The bearer session token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    // Two Authorization headers are ambiguous: refuse rather than pick one.
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let value = value.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// Whether a request changes state, and so needs the CSRF token when it is authenticated by cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Intent {
    Read,
    Change,
}

/// The session token of a request: the bearer token, else the page's cookie. A cookie-authenticated change without
/// the session's `X-CSRF-Token` is refused (403) before anything happens.
fn session_token(
    shared: &Shared,
    headers: &HeaderMap,
    intent: Intent,
) -> Result<Option<String>, WebError> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(WebError::unauthorized("Conflicting Authorization headers"));
    }
    if let Some(token) = bearer(headers) {
        return Ok(Some(token.to_string()));
    }
    let https = session::is_https(headers, shared.app.settings.secure_cookies);
    let Some(token) = session::cookie_session(headers, https) else {
        return Ok(None);
    };
    if intent == Intent::Change {
        let presented = headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !session::csrf_ok(&shared.app.pepper, &token, presented) {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "ForbiddenException",
                "Missing or invalid X-CSRF-Token for a cookie session",
            ));
        }
    }
    Ok(Some(token))
}

/// The signed-in user of a request, or 401.
async fn signed_in(
    shared: &Shared,
    headers: &HeaderMap,
    intent: Intent,
) -> Result<SessionUser, WebError> {
    let Some(token) = session_token(shared, headers, intent)? else {
        return Err(WebError::unauthorized("Sign in first"));
    };
    tokens::session_user(&shared.app, &token)
        .await?
        .ok_or_else(|| WebError::unauthorized("The session is invalid or has expired"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignInInput {
    organization_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignInOutput<'a> {
    session_token: &'a str,
    organization_id: &'a str,
    user_id: &'a str,
    expires_time: EpochSeconds,
}

const SIGN_IN_FAILED: &str = "Invalid organization, username or password";
const REAUTH_FAILED: &str = "The password is not correct";

/// `POST /webapp/api/sessions`: every failure is the same 401.
pub async fn create_session(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let client = client_ip(&request);
    let input: SignInInput = match json_body(&shared, request).await {
        Ok(i) => i,
        Err(_) => return WebError::unauthorized(SIGN_IN_FAILED).into_response(),
    };
    // The organization is optional when the username is an email address (its verified domain names it).
    let (org_id, Some(username), Some(password)) =
        (input.organization_id, input.username, input.password)
    else {
        return WebError::unauthorized(SIGN_IN_FAILED).into_response();
    };
    let org_log = redact::identifier(org_id.as_deref().unwrap_or(""));
    match tokens::sign_in(&shared.app, org_id.as_deref(), &username, &password, client).await {
        Ok(Outcome::Done(s)) => {
            tracing::info!(event = "sign_in", organization_id = %s.org_id, user_id = %s.user_id, outcome = "success");
            json_response(
                StatusCode::OK,
                &SignInOutput {
                    session_token: &s.session_token,
                    organization_id: &s.org_id,
                    user_id: &s.user_id,
                    expires_time: EpochSeconds(s.expires_ms),
                },
            )
        }
        Ok(Outcome::Refused) => {
            tracing::info!(event = "sign_in", organization_id = %org_log, outcome = "failure");
            WebError::unauthorized(SIGN_IN_FAILED).into_response()
        }
        Ok(Outcome::Limited(l)) => {
            tracing::warn!(event = "sign_in", organization_id = %org_log, outcome = "throttled");
            WebError::throttled(l).into_response()
        }
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `DELETE /webapp/api/sessions`: signs out.
pub async fn delete_session(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = match session_token(&shared, &headers, Intent::Change) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if let Some(token) = token
        && let Err(e) = tokens::sign_out(&shared.app, &token).await
    {
        return WebError::from(e).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let https = session::is_https(&headers, shared.app.settings.secure_cookies);
    if bearer(&headers).is_none() && session::cookie_session(&headers, https).is_some() {
        for c in session::clear_cookies(https) {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateTokenInput {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    /// The user's password, needed when the session's last password entry is older than the re-authentication
    /// age (`ReauthenticationRequiredException` says so).
    password: Option<String>,
}

/// `POST /webapp/api/personal-access-tokens`
pub async fn create_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, WebError> {
    let client = client_ip(&request);
    let mut session = signed_in(&shared, request.headers(), Intent::Change).await?;
    let input: CreateTokenInput = json_body(&shared, request).await?;
    let name = input
        .name
        .ok_or_else(|| WebError::invalid("Name is required"))?;
    if let Some(password) = input.password.filter(|_| {
        tokens::needs_reauthentication(&shared.app, &session, shared.app.clock.now_ms())
    }) {
        if password.len() > 1024 {
            return Err(WebError::unauthorized(REAUTH_FAILED));
        }
        match tokens::reauthenticate(&shared.app, &session, &password, client).await? {
            Outcome::Done(()) => session.authenticated_ms = shared.app.clock.now_ms(),
            Outcome::Refused => return Err(WebError::unauthorized(REAUTH_FAILED)),
            Outcome::Limited(l) => return Err(WebError::throttled(l)),
        }
    }
    let created = tokens::create_token(
        &shared.app,
        &session.org,
        &session.user,
        tokens::Requester::Session(&session),
        &name,
        input.scopes,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &CreatedTokenOutput::new(&created.token, created.secret.expose()),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListOutput<'a> {
    personal_access_token_summaries: Vec<PatSummary<'a>>,
}

/// `GET /webapp/api/personal-access-tokens`: the signed-in user's own tokens.
pub async fn list_tokens(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = signed_in(&shared, &headers, Intent::Read).await?;
    let rows = tokens::list_own_tokens(&shared.app, &session).await?;
    Ok(json_response(
        StatusCode::OK,
        &ListOutput {
            personal_access_token_summaries: rows.iter().map(PatSummary::from).collect(),
        },
    ))
}

/// `DELETE /webapp/api/personal-access-tokens/{id}`: only the user's own token; anything else is a 404.
pub async fn delete_token(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = signed_in(&shared, &headers, Intent::Change).await?;
    tokens::delete_own_token(&shared.app, &session, &id, "api").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyInput {
    organization_id: Option<String>,
    username: Option<String>,
    token: Option<String>,
    scope: Option<String>,
    /// The mail client's address as the mail server saw it (for the per-address limits and the audit log).
    /// Believed only from a trusted proxy or a caller holding the verifier key.
    remote_ip: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyOutput<'a> {
    organization_id: &'a str,
    user_id: &'a str,
    personal_access_token_id: &'a str,
}

const VERIFY_FAILED: &str = "Invalid credentials";

/// The client's address as far as it can be trusted (see [`crate::client`]).
pub(crate) fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.client)
        .or_else(|| {
            request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())
        })
}

/// Whether the caller of `/auth/v1/verify` presented the configured verifier key (`Authorization: Bearer KEY`).
/// `None` when no key is configured.
fn verifier_authenticated(shared: &Shared, headers: &HeaderMap) -> Option<bool> {
    use subtle::ConstantTimeEq;
    let expected = shared.app.settings.verifier_key.as_ref()?;
    let presented = bearer(headers).unwrap_or("");
    Some(
        presented.len() == expected.len()
            && bool::from(presented.as_bytes().ct_eq(expected.as_bytes())),
    )
}

/// `POST /auth/v1/verify`: 200 for a valid token of that user, one uniform 401 for everything else.
pub async fn verify(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fail = || WebError::unauthorized(VERIFY_FAILED).into_response();
    let addr = request.extensions().get::<ClientAddr>().copied();
    let authenticated = verifier_authenticated(&shared, request.headers());
    if authenticated == Some(false) {
        // A misconfigured or foreign caller, not a wrong password: 403, which the Dovecot passdb reports as an
        // internal failure (a temporary error for the mail client) rather than as bad credentials.
        tracing::warn!(
            event = "token_verification_refused",
            reason = "missing or wrong verifier key"
        );
        return WebError::new(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "The verifier key is missing or wrong",
        )
        .into_response();
    }
    let Ok(input) = json_body::<VerifyInput>(&shared, request).await else {
        return fail();
    };
    // The organization is optional when the username is an email address (its verified domain names it).
    let (org_id, Some(username), Some(token)) =
        (input.organization_id, input.username, input.token)
    else {
        return fail();
    };
    if org_id.as_ref().is_some_and(|o| o.len() > 64)
        || username.len() > 256
        || token.len() > 256
        || input.scope.as_ref().is_some_and(|s| s.len() > 256)
    {
        return fail();
    }
    // The mail client's address as the mail server reports it, only from callers whose word counts; else the
    // client address of the request itself.
    // A trusted peer speaks for itself only: a request it forwards for a client that is not itself trusted (the
    // reverse proxy in front of the page, X-Forwarded-For naming a stranger) carries that stranger's RemoteIp.
    let trusted = &shared.app.settings.trusted_proxies;
    let reporter_trusted = authenticated == Some(true)
        || addr.is_some_and(|a| a.peer_trusted(trusted) && trusted.contains(a.client));
    let claimed = input
        .remote_ip
        .as_deref()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    let (believed, unverified) = if reporter_trusted {
        (claimed, None)
    } else {
        (None, claimed)
    };
    let client = believed.or(addr.map(|a| a.client));
    // Formatted only when a line is written, not into a `String` per request.
    let remote_ip = crate::client::LoggedIp(client);
    // Only failures log the organization as given (redacted): a success logs the verified one.
    let org_log = || redact::identifier(org_id.as_deref().unwrap_or(""));
    let request = tokens::VerifyRequest {
        org_id: org_id.as_deref(),
        username: &username,
        token: &token,
        scope: input.scope.as_deref(),
        client,
        reported: unverified,
    };
    match tokens::verify(&shared.app, &request).await {
        Ok(Outcome::Done(v)) => {
            tracing::info!(event = "token_used", organization_id = %v.org_id, user_id = %v.user_id, token_id = %v.token_id, remote_ip = %remote_ip);
            json_response(
                StatusCode::OK,
                &VerifyOutput {
                    organization_id: &v.org_id,
                    user_id: &v.user_id,
                    personal_access_token_id: &v.token_id,
                },
            )
        }
        Ok(Outcome::Refused) => {
            tracing::info!(event = "token_verification_failed", organization_id = %org_log(), remote_ip = %remote_ip);
            fail()
        }
        Ok(Outcome::Limited(l)) => {
            tracing::warn!(event = "token_verification_failed", organization_id = %org_log(), remote_ip = %remote_ip, reason = "throttled");
            WebError::throttled(l).into_response()
        }
        Err(e) => WebError::from(e).into_response(),
    }
}
