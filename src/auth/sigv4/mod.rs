//! Server-side verification of AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the
//! `Authorization` header) for the awsJson 1.1 API.
//!
//! Pure functions, no I/O. See `security.md` §1 for the sources behind each rule. In short:
//!
//! * canonical request as a non-S3 service builds it (aws-sigv4 `SigningSettings::default()`):
//!   the path is normalised (RFC 3986 dot segments, empty segments dropped) and percent-encoded
//!   once more ("double" encoding), the query is decoded and re-encoded then sorted, the canonical
//!   headers are exactly the headers the client named in `SignedHeaders`, and the payload hash is
//!   always the SHA-256 of the body bytes as received;
//! * `host`, `x-amz-date` and `x-amz-target` must be signed (an unsigned target would let a
//!   captured `GetPersonalAccessTokenMetadata` be replayed as `DeletePersonalAccessToken`, whose
//!   bodies are identical), and so must `x-amz-security-token` when it is sent;
//! * signatures are compared in constant time;
//! * error types and messages follow what real awsJson services answer (`security.md` §1.4).
//!
//! Header values are handled as bytes throughout, so non-UTF-8 values cannot make anything panic;
//! they simply take part in the canonical request as sent.
//!
//! Whitespace in header values: leading/trailing spaces and tabs are trimmed and inner runs of
//! spaces/tabs become one space. That is what botocore (`' '.join(value.split())`) and the Java
//! SDKs do; aws-sigv4 (the Rust SDK) only collapses spaces, so a Rust client that puts a tab inside
//! a *signed* header value would not verify. No SDK signs such a header for this API.
//!
//! The files: `authorization.rs` parses the header; `verify.rs` checks a request against it (scope, signed
//! headers, `X-Amz-Date` and the clock window, payload hash, signature); `canonical.rs` builds the canonical
//! request, the string to sign, the signing key and the signature; `cache.rs` keeps derived signing keys;
//! `tests.rs` holds the known-answer vectors and the cross-checks against the `aws-sigv4` signer.

mod authorization;
mod cache;
mod canonical;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use axum::http::HeaderName;

pub use authorization::{Authorization, parse_authorization};
pub use cache::SigningSecret;
pub use verify::{RequestToVerify, verify, verify_secret};

/// The only algorithm accepted in the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Default clock window (minio, s3s and the AWS common-errors page all use 15 minutes).
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Message AWS sends when the recomputed signature differs from the client's.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Message AWS sends when no authentication is present at all.
pub const MISSING_TOKEN_MESSAGE: &str = "Request is missing Authentication Token";

/// Headers that must appear in `SignedHeaders` for this API (see module docs for why the target
/// is in the list). `x-amz-security-token` is added when the request carries one.
pub const REQUIRED_SIGNED_HEADERS: &[&str] = &["host", "x-amz-date", "x-amz-target"];

const SECURITY_TOKEN: &str = "x-amz-security-token";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_DATE: &str = "x-amz-date";
// The same names ready for lookups: a `&str` key is parsed and validated at every lookup (issue 14).
const SECURITY_TOKEN_NAME: HeaderName = HeaderName::from_static(SECURITY_TOKEN);
const CONTENT_SHA256_NAME: HeaderName = HeaderName::from_static(CONTENT_SHA256);
const X_AMZ_DATE_NAME: HeaderName = HeaderName::from_static(X_AMZ_DATE);

/// Echoed client input is cut to this many characters so that a huge header cannot blow up an
/// error body or a log line.
const MAX_ECHO_CHARS: usize = 256;

/// Why a request failed authentication. Every variant maps to HTTP 400 in the awsJson protocol
/// (real AWS answers these with 400, and SDKs do not retry them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No `Authorization` header: `MissingAuthenticationTokenException`.
    Missing,
    /// The header or the request lacks something SigV4 needs: `IncompleteSignatureException`.
    Incomplete(String),
    /// Scope, clock, payload hash or the signature itself is wrong: `InvalidSignatureException`.
    /// A plain signature mismatch carries [`SIGNATURE_MISMATCH_MESSAGE`].
    InvalidSignature(String),
}

impl SigV4Error {
    /// The awsJson `__type` to send.
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The `message` to send. Never contains the secret key.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::Missing => MISSING_TOKEN_MESSAGE.to_string(),
            SigV4Error::Incomplete(m) | SigV4Error::InvalidSignature(m) => m.clone(),
        }
    }

    /// HTTP status for the awsJson error response (always 400, see `security.md` §1.4).
    pub fn http_status(&self) -> u16 {
        400
    }

    /// True when everything was well formed but the recomputed signature differed (wrong secret
    /// or tampered request). Useful for counting failures per access key.
    pub fn is_signature_mismatch(&self) -> bool {
        matches!(self, SigV4Error::InvalidSignature(m) if m == SIGNATURE_MISMATCH_MESSAGE)
    }
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.aws_code(), self.message())
    }
}

impl std::error::Error for SigV4Error {}

fn incomplete(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::Incomplete(msg.into())
}

fn invalid(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::InvalidSignature(msg.into())
}

/// Client input quoted back in a message: lossy UTF-8, control characters replaced, truncated.
fn echo(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX_ECHO_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_ECHO_CHARS).is_some() {
        out.push_str("...");
    }
    out
}
