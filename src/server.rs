//! The HTTP server: one listener carrying the AWS API (`POST /`), the web application's JSON API and the
//! mail-server verification endpoint.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, post};
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
        .route(
            "/webapp/api/sessions",
            post(crate::web::create_session).delete(crate::web::delete_session),
        )
        .route(
            "/webapp/api/personal-access-tokens",
            post(crate::web::create_token).get(crate::web::list_tokens),
        )
        .route(
            "/webapp/api/personal-access-tokens/{id}",
            delete(crate::web::delete_token),
        )
        .route("/auth/v1/verify", post(crate::web::verify))
        .fallback(not_found)
        .with_state(shared)
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
