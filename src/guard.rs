//! What keeps a browser from being used against the endpoints that carry no credentials of their own: the
//! test-support API (reset, clock, seeded ids) and, in `--auth accept-any` mode, the AWS API.
//!
//! Two attacks reach a server listening on 127.0.0.1 from a web page the developer happens to visit:
//! - **Cross-site requests.** A page on any origin may send a "simple" request (`text/plain`, form encodings, no
//!   custom headers) without a CORS preflight; the browser only hides the answer, the side effect happens. So every
//!   state-changing test-API request must be `Content-Type: application/json` (which forces a preflight this server
//!   never grants), and any `Origin` (or `Sec-Fetch-Site`) that is not this server's own is refused.
//! - **DNS rebinding.** The page's own name (`evil.example`) is re-pointed at 127.0.0.1, so its requests are
//!   same-origin to the browser and no preflight happens. What gives it away is the `Host` header, which still
//!   says `evil.example`. So on a loopback listener only loopback names (`127.0.0.0/8`, `localhost`, `[::1]`,
//!   any port) and the operator's `--allowed-host` names are served.
//!
//! SigV4 mode is exempt from the `Host` check: a verified signature covers the `Host` header, and a page cannot
//! sign. The web page and `/auth/v1/verify` have their own defences (cookies, CSRF tokens, credentials).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::client::HostPolicy;
use crate::context::Shared;

/// The `__type` of every refusal: SDKs and retry policies treat a 403 `AccessDeniedException` as final (it is
/// neither a throttling, a transient nor a 5xx error), so a refused client fails at once instead of retrying.
pub const REFUSED_TYPE: &str = "AccessDeniedException";

/// Why a test-API request is refused, or `None` when it may go ahead.
pub fn test_api_refusal(
    policy: &HostPolicy,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<&'static str> {
    if !policy.allows(headers, uri) {
        return Some("The Host header is not a loopback name or an --allowed-host");
    }
    if !same_origin(headers) {
        return Some("Requests from another origin are refused");
    }
    // Reading the clock changes nothing, and a cross-origin page cannot read the answer; everything else must be
    // JSON, which no page can send to another origin without a preflight.
    if method != Method::GET && method != Method::HEAD && !is_json(headers) {
        return Some("The test-support API needs Content-Type: application/json");
    }
    None
}

/// Whether the browser-supplied provenance headers, when present, say the request comes from this server's own
/// origin (`Origin`'s host and port equal to `Host`'s; `Sec-Fetch-Site` `same-origin` or `none`).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let ok = site
            .to_str()
            .is_ok_and(|s| s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none"));
        if !ok {
            return false;
        }
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return true;
    };
    if origins.next().is_some() {
        return false;
    }
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        // `null` (sandboxed frames, file: pages, redirects) and anything else malformed.
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let normalize = |a: &str| {
        let a = a.trim().to_ascii_lowercase();
        match a.strip_suffix(&format!(":{default_port}")) {
            Some(bare) => bare.to_string(),
            None => a,
        }
    };
    normalize(authority) == normalize(host)
}

/// `Content-Type: application/json` (parameters such as `charset` allowed), given exactly once.
fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Middleware in front of every test-API route: refuses with 403 `{"__type": "AccessDeniedException"}` before
/// the handler sees the request.
pub async fn test_api(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(reason) = test_api_refusal(
        &shared.host_policy,
        request.method(),
        request.headers(),
        request.uri(),
    ) {
        tracing::warn!(event = "test_api_refused", reason, host = ?request.headers().get(header::HOST), origin = ?request.headers().get(header::ORIGIN));
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"__type": REFUSED_TYPE, "Message": reason})),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn root() -> Uri {
        "/".parse().unwrap()
    }

    #[test]
    fn loopback_names_pass_and_others_do_not() {
        let p = HostPolicy::new(true, &[]).unwrap();
        for ok in [
            "127.0.0.1",
            "127.0.0.1:4610",
            "127.9.8.7:1",
            "localhost",
            "LocalHost:4610",
            "localhost.:80",
            "[::1]",
            "[::1]:4610",
        ] {
            assert!(p.allows(&headers(&[("host", ok)]), &root()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4610",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "128.0.0.1",
            "[::2]:4610",
            "::1",
            "localhost:notaport",
            "",
            "local host",
        ] {
            assert!(!p.allows(&headers(&[("host", bad)]), &root()), "{bad}");
        }
        assert!(!p.allows(&HeaderMap::new(), &root()), "no Host at all");
        assert!(
            !p.allows(
                &headers(&[("host", "127.0.0.1"), ("host", "evil.example")]),
                &root()
            ),
            "every Host value must pass"
        );
        let absolute: Uri = "http://evil.example/".parse().unwrap();
        assert!(!p.allows(&headers(&[("host", "127.0.0.1")]), &absolute));
    }

    #[test]
    fn allowed_hosts_ignore_case_and_port() {
        let p = HostPolicy::new(true, &["Workmail".into(), "mail.internal:4610".into()]).unwrap();
        assert!(p.allows(&headers(&[("host", "workmail:4610")]), &root()));
        assert!(p.allows(&headers(&[("host", "WORKMAIL")]), &root()));
        assert!(p.allows(&headers(&[("host", "mail.internal:1")]), &root()));
        assert!(!p.allows(&headers(&[("host", "workmail.evil")]), &root()));
        assert!(HostPolicy::new(true, &["bad host".into()]).is_err());
        assert!(HostPolicy::new(true, &["".into()]).is_err());
        assert!(!HostPolicy::new(false, &[]).unwrap().checks_aws());
        assert!(HostPolicy::new(false, &["w".into()]).unwrap().checks_aws());
    }

    #[test]
    fn test_api_needs_json_and_own_origin() {
        let p = HostPolicy::new(true, &[]).unwrap();
        let post = Method::POST;
        let json = [
            ("host", "127.0.0.1:4610"),
            ("content-type", "application/json"),
        ];
        assert_eq!(test_api_refusal(&p, &post, &headers(&json), &root()), None);
        let json_charset = [
            ("host", "127.0.0.1:4610"),
            ("content-type", "Application/JSON; charset=utf-8"),
        ];
        assert_eq!(
            test_api_refusal(&p, &post, &headers(&json_charset), &root()),
            None
        );
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            let h = headers(&[("host", "127.0.0.1:4610"), ("content-type", ct)]);
            assert!(test_api_refusal(&p, &post, &h, &root()).is_some(), "{ct}");
        }
        assert!(test_api_refusal(&p, &post, &headers(&[("host", "127.0.0.1")]), &root()).is_some());
        // GET (the clock) needs no content type.
        assert_eq!(
            test_api_refusal(
                &p,
                &Method::GET,
                &headers(&[("host", "localhost")]),
                &root()
            ),
            None
        );
        let mut own = json.to_vec();
        own.push(("origin", "http://127.0.0.1:4610"));
        assert_eq!(test_api_refusal(&p, &post, &headers(&own), &root()), None);
        for foreign in [
            "http://evil.example",
            "http://127.0.0.1:4611",
            "http://localhost:4610",
            "null",
            "ftp://127.0.0.1:4610",
        ] {
            let mut h = json.to_vec();
            h.push(("origin", foreign));
            assert!(
                test_api_refusal(&p, &post, &headers(&h), &root()).is_some(),
                "{foreign}"
            );
            assert!(
                test_api_refusal(&p, &Method::GET, &headers(&h), &root()).is_some(),
                "GET {foreign}"
            );
        }
        let mut cross = json.to_vec();
        cross.push(("sec-fetch-site", "cross-site"));
        assert!(test_api_refusal(&p, &post, &headers(&cross), &root()).is_some());
        let default_port = [("host", "localhost"), ("origin", "http://localhost:80")];
        assert!(same_origin(&headers(&default_port)));
    }
}
