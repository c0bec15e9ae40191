//! Operator and test-support endpoints: health (also at LocalStack's path), Prometheus metrics (to loopback
//! clients, or on the `--metrics-listen` listener), and — only with `--enable-test-api` on a loopback listener,
//! behind [`crate::guard`] — state reset (also at moto's and LocalStack's paths), a controllable clock and seedable
//! ids.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::context::Shared;
use crate::domain::Partition;

/// Routes always served.
pub fn routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/_workmail-pat/health", get(health))
        .route("/_localstack/health", get(localstack_health))
        .route("/metrics", get(local_metrics))
}

/// Routes of the `--metrics-listen` listener: metrics for whoever reaches it, and health.
pub fn metrics_routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/_workmail-pat/health", get(health))
        .route("/_localstack/health", get(localstack_health))
        .route("/metrics", get(metrics))
}

/// Routes served only with `--enable-test-api`.
pub fn test_routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/_workmail-pat/reset", post(reset))
        .route("/moto-api/reset", post(reset))
        .route("/_localstack/state/reset", post(reset))
        .route("/_workmail-pat/clock", get(get_clock).post(set_clock))
        .route("/_workmail-pat/seed", post(seed_ids))
        .route("/_workmail-pat/domains/verify", post(verify_domain))
        .route("/moto-api/seed", post(moto_seed_ids))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"__type": "InvalidParameterException", "Message": message})),
    )
        .into_response()
}

/// Whether the database answers: a cheap read through the store.
async fn database_ready(shared: &Shared) -> Result<(), String> {
    shared
        .app
        .store
        .find_organization("m-00000000000000000000000000000000")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Health<'a> {
    status: &'a str,
    database: &'a str,
    version: &'a str,
}

/// `GET /_workmail-pat/health`: 200 when the process is alive and the database answers, else 503.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    match database_ready(&shared).await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "ok",
                version: env!("CARGO_PKG_VERSION"),
            }),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    database: "unavailable",
                    version: env!("CARGO_PKG_VERSION"),
                }),
            )
                .into_response()
        }
    }
}

/// `GET /_localstack/health` in LocalStack's shape, so existing fixtures that poll it keep working.
async fn localstack_health(State(shared): State<Arc<Shared>>) -> Response {
    let state = if database_ready(&shared).await.is_ok() {
        "running"
    } else {
        "error"
    };
    Json(serde_json::json!({
        "services": {"workmail": state},
        "edition": "community",
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `GET /metrics` on the main listener: request counts by operation and outcome tell an outsider how the service
/// is used, so they are only for a local scraper. Anyone else, and every client once `--metrics-listen` gives
/// metrics their own listener, sees what an unknown path looks like.
async fn local_metrics(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let peer_is_loopback = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| c.0.ip().to_canonical().is_loopback());
    // A reverse proxy on this host makes every client's connection come from loopback; the forwarding headers it
    // adds show the request is not a local scraper's.
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| request.headers().contains_key(*h));
    if shared.metrics_listener || !peer_is_loopback || forwarded {
        return crate::context::not_found().await.into_response();
    }
    metrics(State(shared)).await
}

/// `GET /metrics` in the Prometheus text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.metrics {
        Some(handle) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ResetInput {
    account: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyDomainInput {
    organization_id: String,
    domain_name: String,
}

/// `POST /_workmail-pat/domains/verify` `{"OrganizationId": "...", "DomainName": "..."}`: marks a registered mail
/// domain VERIFIED (what `workmail-pat domain verify` does; for `--domain-verification manual`).
async fn verify_domain(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes =
        match crate::context::read_body(body, &parts.headers, shared.limits.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
        };
    let Ok(input) = serde_json::from_slice::<VerifyDomainInput>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The body must be {\"OrganizationId\", \"DomainName\"}",
        );
    };
    let store = &*shared.app.store;
    match crate::ops::mark_domain_verified(store, &input.organization_id, &input.domain_name).await
    {
        Ok(domain) => {
            tracing::info!(event = "mail_domain_verified", organization_id = %input.organization_id, domain = %domain);
            Json(serde_json::json!({
                "OrganizationId": input.organization_id,
                "DomainName": domain,
                "OwnershipVerificationStatus": "VERIFIED",
                "DkimVerificationStatus": "VERIFIED",
            }))
            .into_response()
        }
        Err(message) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"__type": "MailDomainNotFoundException", "Message": message})),
        )
            .into_response(),
    }
}

/// `POST /_workmail-pat/reset` (also `/moto-api/reset`, `/_localstack/state/reset`): all state, or one
/// account/region with `{"Account": "...", "Region": "..."}`.
async fn reset(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes =
        match crate::context::read_body(body, &parts.headers, shared.limits.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
        };
    let input: ResetInput = if bytes.iter().all(u8::is_ascii_whitespace) {
        ResetInput::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(i) => i,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "The body must be {\"Account\", \"Region\"} or empty",
                );
            }
        }
    };
    let partition = match (input.account, input.region) {
        (None, None) => None,
        (Some(account), Some(region)) => Some(Partition { account, region }),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Give both Account and Region, or neither",
            );
        }
    };
    match shared.app.store.reset(partition.as_ref()).await {
        Ok(()) => {
            tracing::info!(event = "state_reset", account = ?partition.as_ref().map(|p| &p.account), region = ?partition.as_ref().map(|p| &p.region));
            Json(serde_json::json!({"Reset": true})).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reset failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "The reset failed")
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClockOutput {
    now: crate::domain::EpochSeconds,
}

fn clock_now(shared: &Shared) -> Response {
    Json(ClockOutput {
        now: crate::domain::EpochSeconds(shared.app.clock.now_ms()),
    })
    .into_response()
}

/// `GET /_workmail-pat/clock` → `{"Now": <epoch seconds>}`.
async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    clock_now(&shared)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ClockInput {
    advance_seconds: Option<f64>,
    now: Option<f64>,
}

/// `POST /_workmail-pat/clock` with `{"AdvanceSeconds": N}` or `{"Now": <epoch seconds>}`: moves server time
/// (expiry, DateLastUsed, NextToken and session expiry follow it; SigV4 clock checks keep real time).
async fn set_clock(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes =
        match crate::context::read_body(body, &parts.headers, shared.limits.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
        };
    let Ok(input) = serde_json::from_slice::<ClockInput>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Expected {\"AdvanceSeconds\": N} or {\"Now\": <epoch seconds>}",
        );
    };
    // Bounded so the arithmetic on milliseconds can never overflow.
    const LIMIT_S: f64 = 1.0e11;
    match (input.advance_seconds, input.now) {
        (Some(d), None) if d.is_finite() && d.abs() < LIMIT_S => {
            shared.app.clock.advance_ms((d * 1000.0).round() as i64)
        }
        (None, Some(t)) if t.is_finite() && (0.0..LIMIT_S).contains(&t) => {
            shared.app.clock.set_now_ms((t * 1000.0).round() as i64)
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Give exactly one of AdvanceSeconds or Now, as finite numbers",
            );
        }
    }
    tracing::info!(event = "clock_moved", now_ms = shared.app.clock.now_ms());
    clock_now(&shared)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SeedInput {
    seed: u64,
}

/// `POST /_workmail-pat/seed` `{"Seed": N}`: ids are deterministic from now on.
async fn seed_ids(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes =
        match crate::context::read_body(body, &parts.headers, shared.limits.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.message()),
        };
    let Ok(input) = serde_json::from_slice::<SeedInput>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Expected {\"Seed\": <non-negative integer>}",
        );
    };
    shared.app.ids.reseed(input.seed);
    Json(serde_json::json!({"Seed": input.seed})).into_response()
}

#[derive(Deserialize)]
struct MotoSeed {
    a: u64,
}

/// `POST /moto-api/seed?a=N`, moto's form of the same.
async fn moto_seed_ids(State(shared): State<Arc<Shared>>, Query(q): Query<MotoSeed>) -> Response {
    shared.app.ids.reseed(q.a);
    Json(serde_json::json!({"Seed": q.a})).into_response()
}
