//! `auth::sigv4::parse_authorization` and `verify` on arbitrary requests: arbitrary header lists (bytes, repeats,
//! non-UTF-8 values) plus a half-structured `Authorization` value so the fuzzer gets past the algorithm check.
//! Never panics; every error is one of the three SigV4 error types with HTTP 400; a random signature never verifies.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use workmail_pat::auth::sigv4::{self, RequestToVerify, SigV4Error};

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// When set, an `Authorization` built as `AWS4-HMAC-SHA256 Credential=<c>, SignedHeaders=<h>, Signature=<s>`.
    structured: Option<(String, String, String)>,
    x_amz_date: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    body: Vec<u8>,
    secret: String,
    skew_s: u16,
}

fn check(e: &SigV4Error) {
    assert!(matches!(
        e.aws_code(),
        "MissingAuthenticationTokenException"
            | "IncompleteSignatureException"
            | "InvalidSignatureException"
    ));
    assert_eq!(e.http_status(), 400);
    let _ = e.message();
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    if let Some((cred, signed, sig)) = &input.structured {
        let text =
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature={sig}");
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append(http::header::AUTHORIZATION, v);
        }
    }
    if let Some(d) = &input.x_amz_date
        && let Ok(v) = HeaderValue::from_str(d)
    {
        headers.append("x-amz-date", v);
    }
    let auth = match sigv4::parse_authorization(&headers) {
        Ok(a) => a,
        Err(e) => return check(&e),
    };
    assert_eq!(auth.signature.len(), 64);
    assert!(!auth.access_key_id.is_empty() && !auth.region.is_empty());
    let _ = auth.scope();
    let req = RequestToVerify {
        method: &input.method,
        path: &input.path,
        query: input.query.as_deref(),
        headers: &headers,
        body: &input.body,
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_760_000_000);
    let r = sigv4::verify(
        &req,
        &auth,
        &input.secret,
        "workmail",
        now,
        Duration::from_secs(u64::from(input.skew_s)),
    );
    // A fuzzer cannot forge HMAC-SHA-256: a pass would mean verify accepts an unchecked signature.
    let e = r.expect_err("random signature verified");
    check(&e);
    let _ = SystemTime::now();
});
