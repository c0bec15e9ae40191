//! What every router shares, below all of them: the application state and limits ([`Shared`]), the request's id
//! and time limit (request extensions set by the server), a protocol-neutral bounded body reader ([`read_body`],
//! whose [`BodyError`] each router maps to its own wire error) and the plain 404. Routers (`protocol`, `web`,
//! `admin`, `guard`) import from here, never from `server`, which imports the routers.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::auth::Authenticator;
use crate::state::AppState;

/// Default of `--max-connections-per-ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// Explicit limits; every one is configurable on the command line (README lists the defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (security.md §4: 64 KiB).
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Time a client has to send a request's headers (slow-loris protection).
    pub header_read_timeout: std::time::Duration,
    /// Time a request may take from its first byte to its answer, body included (a trickled body is cut off).
    pub request_timeout: std::time::Duration,
    /// Most connections served at once; further clients wait in the listen backlog. From 90 % of it on, idle
    /// connections are closed, longest idle first ([`crate::connections`]).
    pub max_connections: usize,
    /// Most connections one client address (an IPv6 client's /64) may hold; more are answered 429 and closed.
    pub max_connections_per_ip: usize,
    /// Peers exempt from `max_connections_per_ip` (the trusted proxies, which carry many clients).
    pub uncapped_peers: crate::client::TrustedProxies,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            uncapped_peers: crate::client::TrustedProxies::default(),
            shutdown_timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Shared {
    pub app: AppState,
    pub auth: Authenticator,
    pub limits: Limits,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Whether the test-support API (reset, clock, seed) is served.
    pub test_api: bool,
    /// Which `Host` names the test API and the accept-any AWS API answer (DNS-rebinding defence, [`crate::guard`]).
    pub host_policy: crate::client::HostPolicy,
    /// Whether `/metrics` has its own listener (`--metrics-listen`); the main listener then never serves it.
    pub metrics_listener: bool,
}

/// The per-request time limit, put into each request by the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub std::time::Duration);

/// The id of one request: in the `x-amzn-RequestId` header of its response and in every log line it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (announced by `Content-Length`, or found while reading).
    TooLarge { limit: usize },
    /// The connection failed or the body was malformed at the HTTP level.
    Unreadable,
}

impl BodyError {
    /// A message safe to show any client.
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge { limit } => format!("Request body is larger than {limit} bytes"),
            BodyError::Unreadable => "The request body could not be read".into(),
        }
    }
}

/// Reads the whole body, refusing early (on `Content-Length`) or as soon as it passes `limit` bytes. SigV4 signs
/// the body hash and every body here is small JSON, so bodies are buffered; the cap keeps that bounded.
pub async fn read_body<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, BodyError>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(BodyError::TooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, limit);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// The answer to an unknown path (also what `/metrics` looks like where it is not served).
pub async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"__type":"NotFoundException","Message":"No such resource"}"#,
    )
}
