//! The web page at `/webapp/`: server-rendered HTML forms (they work without JavaScript; `app.js` only adds the
//! Copy button and the revoke confirmation dialog), authenticated by an `HttpOnly` session cookie, every
//! state-changing form carrying the session's CSRF token.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use crate::context::Shared;
use crate::context::{BodyError, read_body};
use crate::redact;
use crate::throttle::Limited;
use crate::tokens::{self, Outcome, SelfServiceError, SessionUser};

use super::session::{self, CSRF_FIELD};
use super::views::{self, Dashboard, Viewer};

/// Scopes always offered as checkboxes besides the configured defaults (the ones mail servers check today).
const COMMON_SCOPES: &[&str] = &["IMAP", "SMTP", "POP3", "EWS"];

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/favicon.svg");

fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    session::page_headers(response.headers_mut());
    response
}

fn see_other(location: &'static str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    session::page_headers(response.headers_mut());
    response
}

/// Why a page request ends before its page; each becomes its answer in `into_response` and nowhere else, so
/// handlers use `?`.
#[derive(Debug)]
pub enum PageError {
    /// Anything the user cannot fix (a store failure, a broken invariant): logged, a generic 500 page.
    Internal(String),
    /// A request the page cannot read (not a form, too large, unreadable).
    BadRequest { status: StatusCode, text: String },
    /// A cross-site post or a missing/stale CSRF token: nothing was changed.
    Refused(&'static str),
    /// No live session: back to the sign-in form.
    SessionEnded,
}

impl PageError {
    fn internal(detail: impl std::fmt::Display) -> Self {
        PageError::Internal(detail.to_string())
    }
}

impl From<SelfServiceError> for PageError {
    fn from(e: SelfServiceError) -> Self {
        match e {
            SelfServiceError::SessionEnded => PageError::SessionEnded,
            SelfServiceError::Internal(e) => PageError::internal(e),
            other => PageError::internal(format!("{other:?}")),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Internal(detail) => {
                tracing::error!(%detail, "internal error in web page");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    views::message(
                        "Something went wrong",
                        "An internal error occurred. Please try again.",
                    ),
                )
            }
            PageError::BadRequest { status, text } => page(
                status,
                views::message("The request was not understood", &text),
            ),
            PageError::Refused(text) => page(
                StatusCode::FORBIDDEN,
                views::message("Request refused", text),
            ),
            PageError::SessionEnded => see_other("/webapp/?notice=expired"),
        }
    }
}

/// `GET /`: the people who open the server in a browser want the page (`POST /` stays the AWS API).
pub async fn root() -> Response {
    see_other("/webapp/")
}

pub async fn asset_css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

pub async fn asset_js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

pub async fn asset_icon() -> Response {
    asset(ICON, "image/svg+xml")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Revalidate each time: the files are tiny and must change together with the binary.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A signed-in browser: the session token (needed for its CSRF token) and who it belongs to.
struct Browser {
    token: String,
    session: SessionUser,
}

impl Browser {
    fn csrf(&self, shared: &Shared) -> String {
        session::csrf_token(&shared.app.pepper, &self.token)
    }

    fn display(&self) -> &str {
        self.session
            .user
            .email
            .as_deref()
            .unwrap_or(&self.session.user.name)
    }
}

async fn browser(shared: &Shared, headers: &HeaderMap) -> Result<Option<Browser>, PageError> {
    let https = session::is_https(headers, shared.app.settings.secure_cookies);
    let Some(token) = session::cookie_session(headers, https) else {
        return Ok(None);
    };
    let session = tokens::session_user(&shared.app, &token).await?;
    Ok(session.map(|session| Browser { token, session }))
}

#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    notice: Option<String>,
}

/// Fixed notices selected by the query string (never free text from the URL, which anyone could link to).
fn notice_text(q: &PageQuery) -> Option<&'static str> {
    match q.notice.as_deref()? {
        "signed-out" => Some("You have signed out."),
        "expired" => Some("Your session has ended. Sign in again."),
        "revoked" => Some("The token was revoked. Apps using it can no longer sign in."),
        _ => None,
    }
}

/// `GET /webapp/`: the sign-in form, or the signed-in user's tokens.
pub async fn index(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let notice = notice_text(&q);
    match browser(&shared, &headers).await? {
        None => Ok(page(StatusCode::OK, views::sign_in(None, notice, "", ""))),
        Some(b) => {
            dashboard(
                &shared,
                &b,
                StatusCode::OK,
                DashExtras {
                    notice,
                    ..DashExtras::default()
                },
            )
            .await
        }
    }
}

#[derive(Default)]
struct DashExtras<'a> {
    created: Option<views::Created<'a>>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    name_value: &'a str,
    checked: Option<&'a [String]>,
}

async fn dashboard(
    shared: &Shared,
    b: &Browser,
    status: StatusCode,
    x: DashExtras<'_>,
) -> Result<Response, PageError> {
    let availability =
        match tokens::ensure_self_service(&shared.app, &b.session.org, &b.session.user).await {
            Ok(()) => Ok(()),
            Err(SelfServiceError::Forbidden(m)) => Err(m),
            Err(other) => return Err(other.into()),
        };
    let tokens = if availability.is_ok() {
        tokens::list_own_tokens(&shared.app, &b.session).await?
    } else {
        Vec::new()
    };
    let defaults = &shared.app.settings.default_scopes;
    let mut offered: Vec<String> = defaults.clone();
    for s in COMMON_SCOPES {
        if !offered.iter().any(|o| o == s) {
            offered.push((*s).to_string());
        }
    }
    let csrf = b.csrf(shared);
    let view = Dashboard {
        viewer: Viewer {
            display: b.display(),
            csrf: &csrf,
        },
        availability: availability.as_ref().map(|_| ()).map_err(|m| m.as_str()),
        tokens: &tokens,
        now_ms: shared.app.clock.now_ms(),
        offered_scopes: &offered,
        checked_scopes: x.checked.unwrap_or(defaults),
        created: x.created,
        error: x.error,
        notice: x.notice,
        name_value: x.name_value,
        reauthenticate: tokens::needs_reauthentication(
            &shared.app,
            &b.session,
            shared.app.clock.now_ms(),
        ),
    };
    Ok(page(status, views::dashboard(&view)))
}

/// A parsed `application/x-www-form-urlencoded` body (repeated keys kept, for the scope checkboxes).
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Reads a bounded form body. Refuses cross-site posts and other content types with a clear page.
async fn read_form(shared: &Shared, request: Request) -> Result<(HeaderMap, Form), PageError> {
    let (parts, body) = request.into_parts();
    if session::is_cross_site(&parts.headers) {
        return Err(PageError::Refused(
            "This form was sent from another site. Open the page and try again.",
        ));
    }
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(PageError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            text: "Expected a form (application/x-www-form-urlencoded).".to_string(),
        });
    }
    let bytes = read_body(body, &parts.headers, shared.limits.max_body_bytes)
        .await
        .map_err(|e| PageError::BadRequest {
            status: match e {
                BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Unreadable => StatusCode::BAD_REQUEST,
            },
            text: e.message(),
        })?;
    let pairs = form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok((parts.headers, Form(pairs)))
}

/// The signed-in browser of a state-changing form, after checking its CSRF token. Without a live session the
/// browser is sent to sign in; with a wrong or missing token the request is refused and nothing changes.
async fn authorized_form(
    shared: &Shared,
    request: Request,
) -> Result<(HeaderMap, Form, Browser), PageError> {
    let (headers, form) = read_form(shared, request).await?;
    let Some(b) = browser(shared, &headers).await? else {
        return Err(PageError::SessionEnded);
    };
    if !session::csrf_ok(&shared.app.pepper, &b.token, form.get(CSRF_FIELD)) {
        tracing::warn!(event = "csrf_refused", organization_id = %b.session.org.id, user_id = %b.session.user.id);
        return Err(PageError::Refused(
            "The form's security token is missing or out of date, so nothing was changed. Reload the page and try \
             again.",
        ));
    }
    Ok((headers, form, b))
}

/// `POST /webapp/sign-in`
pub async fn sign_in(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, PageError> {
    let client = super::client_ip(&request);
    let (headers, form) = read_form(&shared, request).await?;
    let org_id = form.get("organization_id").unwrap_or("").trim().to_string();
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = zeroize::Zeroizing::new(form.get("password").unwrap_or("").to_string());
    // The same refusal for every cause (like the JSON API), so the form reveals nothing about which part was wrong.
    let refuse = |org_id: &str, username: &str| {
        page(
            StatusCode::UNAUTHORIZED,
            views::sign_in(
                Some("Invalid organization, username or password."),
                None,
                // Oversized values are not echoed back.
                if org_id.len() <= 64 { org_id } else { "" },
                if username.len() <= 256 { username } else { "" },
            ),
        )
    };
    // The organization is asked for only with a username; an email address's verified domain names it.
    if username.is_empty() || password.is_empty() {
        return Ok(refuse(&org_id, &username));
    }
    let named_org = Some(org_id.as_str()).filter(|o| !o.is_empty());
    let response = match tokens::sign_in(&shared.app, named_org, &username, &password, client).await
    {
        Ok(Outcome::Done(s)) => {
            tracing::info!(event = "sign_in", via = "page", organization_id = %s.org_id, user_id = %s.user_id, outcome = "success");
            let https = session::is_https(&headers, shared.app.settings.secure_cookies);
            let max_age = (s.expires_ms - shared.app.clock.now_ms()) / 1000;
            let mut response = see_other("/webapp/");
            let cookie = session::set_cookie(&s.session_token, max_age, https)
                .ok_or_else(|| PageError::internal("session token is not a valid cookie value"))?;
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Ok(Outcome::Refused) => {
            tracing::info!(event = "sign_in", via = "page", organization_id = %redact::identifier(&org_id), outcome = "failure");
            refuse(&org_id, &username)
        }
        Ok(Outcome::Limited(l)) => {
            tracing::warn!(event = "sign_in", via = "page", organization_id = %redact::identifier(&org_id), outcome = "throttled");
            throttled(
                l,
                views::sign_in(
                    Some("Too many failed attempts. Wait a few minutes and try again."),
                    None,
                    "",
                    "",
                ),
            )
        }
        Err(crate::store::StoreError::Unavailable(detail)) => {
            // Database unreachable or password queue full: the same answer whether or not the user exists.
            tracing::warn!(%detail, event = "sign_in", via = "page", outcome = "unavailable");
            let mut response = page(
                StatusCode::SERVICE_UNAVAILABLE,
                views::message(
                    "Busy",
                    "The service is busy right now. Please try again in a moment.",
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(e) => return Err(e.into()),
    };
    Ok(response)
}

/// `POST /webapp/sign-out`: ends the session server-side and deletes the cookie.
pub async fn sign_out(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, PageError> {
    let (headers, _form, b) = authorized_form(&shared, request).await?;
    tokens::sign_out(&shared.app, &b.token).await?;
    let mut response = see_other("/webapp/?notice=signed-out");
    for c in session::clear_cookies(session::is_https(
        &headers,
        shared.app.settings.secure_cookies,
    )) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// `POST /webapp/tokens`: creates a token and shows its secret in this one response (never in a URL or a
/// redirect target, never stored in the browser).
pub async fn create(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, PageError> {
    let client = super::client_ip(&request);
    let (_headers, form, mut b) = authorized_form(&shared, request).await?;
    let name = form.get("name").unwrap_or("").trim().to_string();
    let scopes = form.all("scope");
    if name.is_empty() {
        return create_refused(&shared, &b, "Enter a name for the token.", &name, &scopes).await;
    }
    if scopes.is_empty() {
        return create_refused(&shared, &b, "Choose at least one scope.", &name, &scopes).await;
    }
    if tokens::needs_reauthentication(&shared.app, &b.session, shared.app.clock.now_ms()) {
        let password = zeroize::Zeroizing::new(form.get("password").unwrap_or("").to_string());
        if password.is_empty() || password.len() > 1024 {
            let message = "Enter your password to create a token.";
            return create_refused(&shared, &b, message, &name, &scopes).await;
        }
        match tokens::reauthenticate(&shared.app, &b.session, &password, client).await {
            Ok(Outcome::Done(())) => b.session.authenticated_ms = shared.app.clock.now_ms(),
            Ok(Outcome::Refused) => {
                let message = "The password is not correct. The token was not created.";
                return create_refused(&shared, &b, message, &name, &scopes).await;
            }
            Ok(Outcome::Limited(l)) => {
                let message = "Too many failed attempts. Wait a few minutes and try again.";
                let refused = create_refused(&shared, &b, message, &name, &scopes).await?;
                return Ok(with_retry_after(refused, StatusCode::TOO_MANY_REQUESTS, l));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let requester = tokens::Requester::Session(&b.session);
    let (org, user) = (&b.session.org, &b.session.user);
    match tokens::create_token(
        &shared.app,
        org,
        user,
        requester,
        &name,
        Some(scopes.clone()),
    )
    .await
    {
        Ok(created) => {
            dashboard(
                &shared,
                &b,
                StatusCode::OK,
                DashExtras {
                    created: Some(views::Created {
                        name: &created.token.name,
                        secret: created.secret.expose(),
                    }),
                    ..DashExtras::default()
                },
            )
            .await
        }
        Err(SelfServiceError::Invalid(m)) => {
            let message = format!("The token was not created: {m}");
            create_refused(&shared, &b, &message, &name, &scopes).await
        }
        Err(SelfServiceError::Forbidden(_)) => {
            // The availability box explains why.
            dashboard(&shared, &b, StatusCode::FORBIDDEN, DashExtras::default()).await
        }
        Err(SelfServiceError::ReauthenticationRequired) => {
            let message = "Enter your password to create a token.";
            create_refused(&shared, &b, message, &name, &scopes).await
        }
        Err(SelfServiceError::Limited(l)) => Ok(with_retry_after(
            create_refused(&shared, &b, "Too many attempts.", &name, &scopes).await?,
            StatusCode::TOO_MANY_REQUESTS,
            l,
        )),
        Err(other) => Err(other.into()),
    }
}

/// A throttled page: 429 with the real time until an attempt can succeed again.
fn throttled(limited: Limited, markup: Markup) -> Response {
    with_retry_after(
        page(StatusCode::OK, markup),
        StatusCode::TOO_MANY_REQUESTS,
        limited,
    )
}

fn with_retry_after(mut response: Response, status: StatusCode, limited: Limited) -> Response {
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limited.retry_after_secs()),
    );
    response
}

/// The page again after a refused create, with the user's input kept and the reason shown.
async fn create_refused(
    shared: &Shared,
    b: &Browser,
    message: &str,
    name: &str,
    scopes: &[String],
) -> Result<Response, PageError> {
    dashboard(
        shared,
        b,
        StatusCode::BAD_REQUEST,
        DashExtras {
            error: Some(message),
            name_value: if name.len() <= 64 { name } else { "" },
            checked: Some(scopes),
            ..DashExtras::default()
        },
    )
    .await
}

/// `POST /webapp/tokens/{id}/revoke`: without `confirmed=yes` (no JavaScript, so no dialog) it asks first.
pub async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, PageError> {
    let (_headers, form, b) = authorized_form(&shared, request).await?;
    let token = match tokens::own_token(&shared.app, &b.session, &id).await {
        Ok(t) => t,
        Err(SelfServiceError::Forbidden(_)) => {
            return dashboard(&shared, &b, StatusCode::FORBIDDEN, DashExtras::default()).await;
        }
        Err(SelfServiceError::NotFound(_)) => {
            return dashboard(
                &shared,
                &b,
                StatusCode::NOT_FOUND,
                DashExtras {
                    error: Some("That token does not exist (it may already have been revoked)."),
                    ..DashExtras::default()
                },
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    if form.get("confirmed") != Some("yes") {
        let csrf = b.csrf(&shared);
        let viewer = Viewer {
            display: b.display(),
            csrf: &csrf,
        };
        return Ok(page(StatusCode::OK, views::confirm_revoke(&viewer, &token)));
    }
    tokens::revoke_own_token(&shared.app, &b.session, &token, "page").await?;
    Ok(see_other("/webapp/?notice=revoked"))
}
