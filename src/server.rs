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

/// Explicit request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (security.md §4: 64 KiB).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
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
}

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
        router.merge(crate::admin::test_routes())
    } else {
        router
    };
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(request_context))
        .with_state(shared)
}

/// Gives every request an id, runs it inside a tracing span carrying that id (so every log line it causes names
/// it), and puts the id in `x-amzn-RequestId` on every response, including those no handler made (404, 405).
async fn request_context(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    if !response.headers().contains_key("x-amzn-requestid")
        && let Ok(v) = axum::http::HeaderValue::from_str(&id)
    {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        r#"{"__type":"NotFoundException","Message":"No such resource"}"#,
    )
}

/// Serves until `shutdown` completes, then lets in-flight requests finish and closes the store cleanly.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = shared.app.store.clone();
    let app = router(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    Ok(())
}
