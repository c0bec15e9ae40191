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
}

/// The whole HTTP surface. Exposed so tests can drive it without a socket.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(protocol::handle))
        .merge(crate::web::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(ensure_request_id))
        .with_state(shared)
}

/// Every response carries `x-amzn-RequestId`, including those no handler made (405, 404).
async fn ensure_request_id(mut response: axum::response::Response) -> axum::response::Response {
    if !response.headers().contains_key("x-amzn-requestid")
        && let Ok(v) = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
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
