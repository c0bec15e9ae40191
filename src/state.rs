//! The state every request handler shares.

use std::sync::Arc;

use crate::clock::Clock;
use crate::ids::Ids;
use crate::pagination::TokenSealer;
use crate::secrets::Key32;
use crate::store::Store;

/// Behaviour settings that are not secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Scopes given to a new PAT when the request names none (spec: `["IMAP", "SMTP"]`).
    pub default_scopes: Vec<String>,
    /// How long a web session lasts.
    pub session_ttl_ms: i64,
    /// `DateLastUsed` moves at most once per this interval (the first use is always written).
    pub last_used_interval_ms: i64,
    /// Mark the web page's session cookie `Secure` even when no proxy says `X-Forwarded-Proto: https` (for TLS
    /// terminators that do not send it).
    pub secure_cookies: bool,
    /// Reverse proxies and mail servers whose word about the client's address is believed (`--trusted-proxy`).
    pub trusted_proxies: crate::client::TrustedProxies,
    /// The secret mail servers present to `/auth/v1/verify` (`--verifier-key-file`); when set, verification
    /// without it is refused, and a caller with it may report the mail client's address (`RemoteIp`).
    pub verifier_key: Option<zeroize::Zeroizing<String>>,
    /// `/auth/v1/verify` requires a `Scope` (default); `false` (`--verify-allow-missing-scope`) accepts a token of
    /// any scope when none is named, for old mail-server configurations.
    pub verify_require_scope: bool,
    /// When a newly registered mail domain becomes VERIFIED (`--domain-verification`).
    pub domain_verification: crate::mail::VerificationMode,
    /// A session whose password was entered longer ago than this must re-enter it before creating a token.
    pub reauth_after_ms: i64,
    /// Log each request's record at INFO (`--access-log`) rather than DEBUG.
    pub access_log: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_scopes: vec!["IMAP".into(), "SMTP".into()],
            session_ttl_ms: 8 * 60 * 60 * 1000,
            last_used_interval_ms: 60 * 1000,
            secure_cookies: false,
            trusted_proxies: crate::client::TrustedProxies::default(),
            verifier_key: None,
            verify_require_scope: true,
            domain_verification: crate::mail::VerificationMode::Auto,
            reauth_after_ms: 15 * 60 * 1000,
            access_log: false,
        }
    }
}

#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Seals and opens NextTokens.
    pub sealer: TokenSealer,
    /// Keys the stored hashes of PAT secrets and session tokens.
    pub pepper: Key32,
    pub clock: Arc<Clock>,
    /// Where new ids come from (seedable for tests).
    pub ids: Ids,
    /// Request-rate and failure limits.
    pub throttle: crate::throttle::Throttle,
    pub settings: Settings,
    /// Uses of tokens whose `DateLastUsed` waits to be written (`touches`).
    pub touches: crate::touches::Touches,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        token_key: &Key32,
        pepper: Key32,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            sealer: TokenSealer::new(token_key),
            pepper,
            clock: Arc::new(Clock::new()),
            ids: Ids::new(),
            throttle: crate::throttle::Throttle::new(crate::throttle::ThrottleSettings::default()),
            settings,
            touches: crate::touches::Touches::default(),
        }
    }
}
