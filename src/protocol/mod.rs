//! AWS JSON 1.1 on the wire: `POST /` with `X-Amz-Target: WorkMailService.<Operation>`.
//!
//! This module only decodes (HTTP + SigV4 → caller partition, operation, body bytes) and encodes (response body
//! or [`ServiceError`] → HTTP response). [`encode_error`] is the one place where an API error becomes a response.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthMode, sigv4, sigv4_error};
use crate::context::{BodyError, Shared, read_body};
use crate::domain::Partition;
use crate::error::{ErrorCode, ServiceError};
use crate::ops::{self, Ctx, Operation};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "WorkMailService.";
/// Header names used on every request, ready for lookups (a `&str` key is parsed and validated at each one).
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
pub const X_AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// Maps the `X-Amz-Target` header to an operation. Every other target, WorkMail's other operations included, is an
/// `UnknownOperationException` (HTTP 400, so SDKs do not retry it).
pub fn parse_target(headers: &HeaderMap) -> Result<Operation, ServiceError> {
    let mut values = headers.get_all(&X_AMZ_TARGET).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ServiceError::new(
            ErrorCode::UnknownOperationException,
            "Missing or repeated X-Amz-Target header",
        ));
    };
    let target = value.to_str().unwrap_or("");
    match target.strip_prefix(TARGET_PREFIX) {
        Some(name) => Operation::from_name(name).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::UnknownOperationException,
                format!(
                    "Operation {} is not supported by this server",
                    truncate(name)
                ),
            )
        }),
        None => Err(ServiceError::new(
            ErrorCode::UnknownOperationException,
            format!("Unknown operation {}", truncate(target)),
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

/// The AWS API endpoint (`POST /`) as the router serves it: the request id and client address come from the
/// request's extensions, the operation goes into the response's ([`OperationName`]).
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request_id = request
        .extensions()
        .get::<crate::context::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let client = request
        .extensions()
        .get::<crate::client::ClientAddr>()
        .map(|c| c.client);
    let (mut response, operation) = serve(&shared, request, &request_id, client).await;
    response.extensions_mut().insert(OperationName(operation));
    response
}

/// Serves one AWS API request; answers with the response and the operation's name (`"unknown"` when the target
/// was missing or unknown).
pub async fn serve<B>(
    shared: &Shared,
    request: axum::http::Request<B>,
    request_id: &str,
    client: Option<std::net::IpAddr>,
) -> (Response, &'static str)
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    // Accept-any checks no signature, so nothing else would stop a DNS-rebound page (crate::guard); refused before
    // the body is read. SigV4 mode needs no such check: the signature covers `Host`.
    if matches!(shared.auth.mode, AuthMode::AcceptAny)
        && shared.host_policy.checks_aws()
        && !shared.host_policy.allows(&parts.headers, &parts.uri)
    {
        tracing::warn!(event = "host_refused", host = ?parts.headers.get(header::HOST));
        let outcome = ErrorCode::AccessDeniedException.as_str();
        metrics::counter!("workmail_pat_requests_total", "operation" => "unknown", "outcome" => outcome)
            .increment(1);
        let response = encode_error(
            &ServiceError::new(
                ErrorCode::AccessDeniedException,
                "The Host header is not a loopback name or an --allowed-host",
            ),
            request_id,
        );
        return (response, "unknown");
    }
    let bytes = match read_body(body, &parts.headers, shared.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return (encode_error(&body_error(e), request_id), "unknown"),
    };
    let mut operation = None;
    let result = async {
        // The cheap parse first, so throttling happens before any secret lookup or HMAC work.
        let auth = sigv4::parse_authorization(&parts.headers).map_err(sigv4_error)?;
        let partition = authenticate_throttled(shared, auth, client, &parts, &bytes)?;
        let op = parse_target(&parts.headers)?;
        operation = Some(op);
        let ctx = Ctx {
            app: &shared.app,
            partition,
        };
        ops::dispatch(op, &ctx, &bytes).await
    }
    .await;
    let name = operation.map_or("unknown", Operation::name);
    let elapsed = started.elapsed().as_secs_f64();
    match (operation, &result) {
        (Some(op), Ok(_)) => {
            let (ok, duration) = op_metrics(op);
            ok.increment(1);
            duration.record(elapsed);
        }
        (_, result) => {
            let outcome = match result {
                Ok(_) => "ok",
                Err(e) => e.code.as_str(),
            };
            metrics::counter!("workmail_pat_requests_total", "operation" => name, "outcome" => outcome)
                .increment(1);
            metrics::histogram!("workmail_pat_request_duration_seconds", "operation" => name)
                .record(elapsed);
        }
    }
    let response = match result {
        Ok(body) => encode_ok(body, request_id),
        Err(e) => encode_error(&e, request_id),
    };
    (response, name)
}

/// The handles of an operation's successful requests (`workmail_pat_requests_total{operation, outcome="ok"}`) and
/// of its latency histogram, registered once: the `counter!`/`histogram!` macros build their key and look it up in
/// the recorder's registry on every call. (The recorder is installed before the server starts.)
fn op_metrics(op: Operation) -> &'static (metrics::Counter, metrics::Histogram) {
    static HANDLES: std::sync::OnceLock<Vec<(metrics::Counter, metrics::Histogram)>> =
        std::sync::OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        Operation::ALL
            .iter()
            .map(|op| {
                let name = op.name();
                (
                    metrics::counter!("workmail_pat_requests_total", "operation" => name, "outcome" => "ok"),
                    metrics::histogram!("workmail_pat_request_duration_seconds", "operation" => name),
                )
            })
            .collect()
    });
    let index = Operation::ALL.iter().position(|o| *o == op).unwrap_or(0);
    &handles[index]
}

/// The AWS operation a response answered (`"unknown"` when the target was missing or unknown), for the access log
/// written by [`crate::server`]'s request middleware.
#[derive(Debug, Clone, Copy)]
pub struct OperationName(pub &'static str);

fn throttled() -> ServiceError {
    ServiceError::new(ErrorCode::ThrottlingException, "Rate exceeded")
}

/// Authenticates a request within the API rate limits. A verified key's bucket is charged only after its
/// signature verified, so a forged key id cannot spend its owner's budget; until then the request spends its
/// client address's budget for unverified requests (refunded once the signature verifies), so unknown keys and
/// bad signatures are limited where they come from. In accept-any mode nothing is verified, and the presented
/// key's bucket is charged.
fn authenticate_throttled(
    shared: &Shared,
    auth: sigv4::Authorization<'_>,
    client: Option<std::net::IpAddr>,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Partition, ServiceError> {
    let throttle = &shared.app.throttle;
    let identify = |auth| {
        shared.auth.identify_parsed(
            auth,
            parts.method.as_str(),
            &parts.uri,
            &parts.headers,
            body,
        )
    };
    match shared.auth.mode {
        AuthMode::AcceptAny => {
            if !throttle.allow_api(auth.access_key_id) {
                return Err(throttled());
            }
            identify(auth)
        }
        AuthMode::SigV4(_) => {
            let charge = throttle
                .charge_unverified(client)
                .map_err(|_| throttled())?;
            let key_id = auth.access_key_id;
            let partition = identify(auth)?;
            throttle.refund_unverified(charge);
            if !throttle.allow_api(key_id) {
                return Err(throttled());
            }
            Ok(partition)
        }
    }
}

/// A body that could not be read, as the AWS protocol says it.
fn body_error(e: BodyError) -> ServiceError {
    let code = match e {
        BodyError::TooLarge { .. } => ErrorCode::RequestEntityTooLargeException,
        BodyError::Unreadable => ErrorCode::SerializationException,
    };
    ServiceError::new(code, e.message())
}

fn base_headers(response: &mut Response, request_id: &str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_AMZN_REQUEST_ID, v);
    }
}

fn encode_ok(body: Vec<u8>, request_id: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    base_headers(&mut response, request_id);
    response
}

#[derive(serde::Serialize)]
struct ModelledErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
}

#[derive(serde::Serialize)]
struct FrameworkErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

/// The one place where an API error becomes a response: `{"__type", "Message"}` for modelled WorkMail errors,
/// `{"__type", "message"}` for framework errors, the same name in `X-Amzn-ErrorType`, and the request id.
pub fn encode_error(e: &ServiceError, request_id: &str) -> Response {
    let kind = e.code.as_str();
    let body = if e.code.is_modelled() {
        serde_json::to_vec(&ModelledErrorBody {
            kind,
            message: &e.message,
        })
    } else {
        serde_json::to_vec(&FrameworkErrorBody {
            kind,
            message: &e.message,
        })
    }
    .unwrap_or_default();
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, body).into_response();
    base_headers(&mut response, request_id);
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    tracing::debug!(request_id, error = kind, "request failed");
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::auth::{Authenticator, DEFAULT_ACCOUNT};

    fn headers(target: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        h
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target(&headers("WorkMailService.ListPersonalAccessTokens")).unwrap(),
            Operation::ListPersonalAccessTokens
        );
        for bad in [
            "WorkMailService.CreateGroup",
            "Foo.Bar",
            "",
            "WorkMailService.",
        ] {
            let e = parse_target(&headers(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnknownOperationException, "{bad}");
        }
        let e = parse_target(&HeaderMap::new()).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOperationException);
        assert!(
            parse_target(&headers("WorkMailService.CreateGroup"))
                .unwrap_err()
                .message
                .contains("CreateGroup")
        );
    }

    fn auth_header(akid: &str, region: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential={akid}/20250101/{region}/workmail/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
                "0".repeat(64)
            ))
            .unwrap(),
        );
        h
    }

    #[test]
    fn accept_any_maps_keys_to_accounts() {
        let a = Authenticator {
            mode: AuthMode::AcceptAny,
            max_skew: Duration::from_secs(900),
        };
        let uri: axum::http::Uri = "/".parse().unwrap();
        let p = a
            .identify(
                "POST",
                &uri,
                &auth_header("111122223333", "eu-west-1"),
                b"{}",
            )
            .unwrap();
        assert_eq!(p.account, "111122223333");
        assert_eq!(p.region, "eu-west-1");
        let p = a
            .identify(
                "POST",
                &uri,
                &auth_header("AKIDEXAMPLE", "us-east-1"),
                b"{}",
            )
            .unwrap();
        assert_eq!(p.account, DEFAULT_ACCOUNT);
        let e = a
            .identify("POST", &uri, &HeaderMap::new(), b"{}")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingAuthenticationTokenException);
    }

    #[test]
    fn sigv4_mode_refuses_unknown_keys() {
        let a = Authenticator {
            mode: AuthMode::SigV4(HashMap::new()),
            max_skew: Duration::from_secs(900),
        };
        let uri: axum::http::Uri = "/".parse().unwrap();
        let e = a
            .identify(
                "POST",
                &uri,
                &auth_header("AKIDEXAMPLE", "us-east-1"),
                b"{}",
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnrecognizedClientException);
    }
}
