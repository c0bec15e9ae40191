//! The HTTP server: one listener carrying the AWS API (`POST /`), the web application's JSON API and the
//! mail-server verification endpoint.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;

use crate::protocol::{self, Authenticator};
use crate::state::AppState;

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
    /// Most connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
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
    pub host_policy: crate::guard::HostPolicy,
    /// Whether `/metrics` has its own listener (`--metrics-listen`); the main listener then never serves it.
    pub metrics_listener: bool,
}

/// The per-request time limit, put into each request by the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub std::time::Duration);

/// The id of one request: in the `x-amzn-RequestId` header of its response and in every log line it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The whole HTTP surface. Exposed so tests can drive it without a socket.
pub fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/", post(protocol::handle))
        .merge(crate::web::routes())
        .merge(crate::admin::routes());
    let router = if shared.test_api {
        // Every test-API route goes through the guard: JSON only, own origin only, loopback or allowed Host only.
        let guard = axum::middleware::from_fn_with_state(shared.clone(), crate::guard::test_api);
        router.merge(crate::admin::test_routes().route_layer(guard))
    } else {
        router
    };
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            request_context,
        ))
        .with_state(shared)
}

/// Gives every request an id and its client address ([`crate::client::ClientAddr`]: forwarding headers count
/// only from trusted proxies), runs it inside a tracing span carrying both (so every log line it causes names
/// them), and puts the id in `x-amzn-RequestId` on every response, including those no handler made (404, 405).
async fn request_context(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| {
            crate::client::resolve(
                c.0.ip(),
                request.headers(),
                &shared.app.settings.trusted_proxies,
            )
        });
    let peer = addr.map(|a| a.client.to_string()).unwrap_or_default();
    if let Some(addr) = addr {
        request.extensions_mut().insert(addr);
    }
    let timeout = request
        .extensions()
        .get::<RequestTimeout>()
        .map_or(std::time::Duration::from_secs(30), |t| t.0);
    let span = tracing::info_span!("request", request_id = %id, client_ip = %peer, method = %request.method(), path = %request.uri().path());
    let mut response = match tokio::time::timeout(timeout, next.run(request).instrument(span)).await
    {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(request_id = %id, client_ip = %peer, "request timed out");
            crate::protocol::encode_error(
                &crate::error::ServiceError::new(
                    crate::error::ErrorCode::RequestTimeoutException,
                    "The request was not completed in time",
                ),
                &id,
            )
        }
    };
    if !response.headers().contains_key("x-amzn-requestid")
        && let Ok(v) = axum::http::HeaderValue::from_str(&id)
    {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

/// The answer to an unknown path (also what `/metrics` looks like where it is not served).
pub(crate) async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"__type":"NotFoundException","Message":"No such resource"}"#,
    )
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish (for at most
/// `limits.shutdown_timeout`) and closes the store cleanly.
///
/// The connection loop is hyper's own rather than `axum::serve`, because the limits must be set on the HTTP/1
/// connection itself: header size and count, the header-read timeout, and the number of connections.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = shared.app.store.clone();
    let limits = shared.limits.clone();
    serve_app(listener, router(shared), limits, shutdown).await;
    // Always, even when the deadline cut requests off: for SQLite this is the WAL checkpoint.
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    Ok(())
}

/// The `--metrics-listen` listener: `/metrics` and health only, for whoever can reach it (the operator chose the
/// address), with the same connection limits as the main listener. It leaves the store open; the main listener
/// closes it.
pub async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = shared.limits.clone();
    let app = Router::new()
        .merge(crate::admin::metrics_routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            request_context,
        ))
        .with_state(shared);
    serve_app(listener, app, limits, shutdown).await;
}

/// The connection loop shared by both listeners: serves `app` until `shutdown` completes, then lets in-flight
/// requests finish for at most `limits.shutdown_timeout`.
async fn serve_app(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let timeout = RequestTimeout(limits.request_timeout);
        let service =
            app.clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request.extensions_mut().insert(timeout);
                    request
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!("in-flight requests did not finish within the shutdown deadline");
        }
    }
}
