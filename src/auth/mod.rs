//! Who calls the AWS API: access keys and their accounts ([`Authenticator`]) and SigV4 verification
//! ([`sigv4`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::domain::Partition;
use crate::error::{ErrorCode, ServiceError};
use axum::http::HeaderMap;

pub mod sigv4;

/// The account of every access key that is not a 12-digit account id in accept-any mode (LocalStack convention).
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// One access key known to a `sigv4`-mode server.
#[derive(Clone)]
pub struct KeyEntry {
    pub secret: sigv4::SigningSecret,
    pub account: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("secret", &"<redacted>")
            .field("account", &self.account)
            .finish()
    }
}

/// How callers of the AWS API are authenticated.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Any well-formed SigV4 `Authorization` header is accepted without checking the signature (moto, LocalStack).
    AcceptAny,
    /// Every signature is verified against these access keys.
    SigV4(HashMap<String, KeyEntry>),
}

#[derive(Debug, Clone)]
pub struct Authenticator {
    pub mode: AuthMode,
    pub max_skew: Duration,
}

impl Authenticator {
    /// Authenticates a request and returns the partition it acts in (spec D11).
    pub fn identify(
        &self,
        method: &str,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Partition, ServiceError> {
        let auth = sigv4::parse_authorization(headers).map_err(sigv4_error)?;
        self.identify_parsed(auth, method, uri, headers, body)
    }

    /// [`Authenticator::identify`] with the `Authorization` header already parsed.
    pub fn identify_parsed(
        &self,
        auth: sigv4::Authorization<'_>,
        method: &str,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Partition, ServiceError> {
        match &self.mode {
            AuthMode::AcceptAny => {
                let account = if auth.access_key_id.len() == 12
                    && auth.access_key_id.bytes().all(|b| b.is_ascii_digit())
                {
                    auth.access_key_id.to_owned()
                } else {
                    DEFAULT_ACCOUNT.to_string()
                };
                Ok(Partition {
                    account,
                    region: auth.region.to_owned(),
                })
            }
            AuthMode::SigV4(keys) => {
                let Some(entry) = keys.get(auth.access_key_id) else {
                    tracing::warn!(event = "signature_failure", access_key_id = %crate::redact::identifier(auth.access_key_id), reason = "unknown key");
                    return Err(ServiceError::new(
                        ErrorCode::UnrecognizedClientException,
                        "The security token included in the request is invalid.",
                    ));
                };
                let request = sigv4::RequestToVerify {
                    method,
                    path: uri.path(),
                    query: uri.query(),
                    headers,
                    body,
                };
                sigv4::verify_secret(
                    &request,
                    &auth,
                    &entry.secret,
                    "workmail",
                    SystemTime::now(),
                    self.max_skew,
                )
                .map_err(|e| {
                    tracing::warn!(event = "signature_failure", access_key_id = %crate::redact::identifier(auth.access_key_id), reason = %e.aws_code());
                    sigv4_error(e)
                })?;
                Ok(Partition {
                    account: entry.account.clone(),
                    region: auth.region.to_owned(),
                })
            }
        }
    }
}

/// A SigV4 failure as the AWS protocol names it.
pub fn sigv4_error(e: sigv4::SigV4Error) -> ServiceError {
    let code = match e {
        sigv4::SigV4Error::Missing => ErrorCode::MissingAuthenticationTokenException,
        sigv4::SigV4Error::Incomplete(_) => ErrorCode::IncompleteSignatureException,
        sigv4::SigV4Error::InvalidSignature(_) => ErrorCode::InvalidSignatureException,
    };
    ServiceError::new(code, e.message())
}
