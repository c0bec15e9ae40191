//! Abuse limits: a token bucket per access key on the AWS API (answered with `ThrottlingException`, which SDKs
//! back off from and retry), and failure windows per user and per client IP on sign-in and token verification.
//!
//! The failure windows are keyed by what the client *presented* (organization and username as typed, IP), never by
//! whether the user exists, so a throttled answer reveals nothing about which users exist. They slow an attacker
//! down without locking a real user out for good: a window forgets failures as they age.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Configuration of every limit (defaults in [`ThrottleSettings::default`], documented in the README).
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// `false` turns every limit off (`--no-throttle`, for benchmarks).
    pub enabled: bool,
    /// Sustained AWS API requests per second per access key.
    pub api_per_second: u32,
    /// Burst of AWS API requests per access key.
    pub api_burst: u32,
    /// Failed sign-ins or verifications per user within `user_window` before slowing down.
    pub user_failures: u32,
    pub user_window: Duration,
    /// Failed sign-ins or verifications per client IP within `ip_window` before slowing down.
    pub ip_failures: u32,
    pub ip_window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            // Generous enough for any test suite; an abuse limit, not a quota.
            api_per_second: 1000,
            api_burst: 2000,
            user_failures: 10,
            user_window: Duration::from_secs(5 * 60),
            ip_failures: 100,
            ip_window: Duration::from_secs(60),
        }
    }
}

/// Most keys a failure window tracks; past this, keys whose failures have all aged out are dropped first.
const MAX_TRACKED_KEYS: usize = 100_000;

/// Recent failures per key, within a sliding window.
#[derive(Debug)]
struct FailureWindow {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureWindow {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has reached its limit of failures within the window.
    fn is_limited(&self, key: &str, now: Instant) -> bool {
        let Ok(mut map) = self.failures.lock() else {
            return false;
        };
        let Some(q) = map.get_mut(key) else {
            return false;
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            q.pop_front();
        }
        q.len() >= self.limit as usize
    }

    fn record(&self, key: &str, now: Instant) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED_KEYS && !map.contains_key(key) {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
            if map.len() >= MAX_TRACKED_KEYS {
                // Flooded with distinct keys: forget everything rather than grow without bound.
                map.clear();
            }
        }
        let q = map.entry(key.to_string()).or_default();
        q.push_back(now);
        // Only the newest `limit` failures matter.
        while q.len() > self.limit as usize {
            q.pop_front();
        }
    }
}

/// All limits of one server.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    api: DefaultKeyedRateLimiter<String>,
    users: FailureWindow,
    ips: FailureWindow,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let per_second = NonZeroU32::new(settings.api_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.api_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            api: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            users: FailureWindow::new(settings.user_failures.max(1), settings.user_window),
            ips: FailureWindow::new(settings.ip_failures.max(1), settings.ip_window),
            settings,
        }
    }

    /// Every limit off.
    pub fn disabled() -> Self {
        Self::new(ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        })
    }

    /// Takes one AWS API request from the access key's bucket; `false` means answer `ThrottlingException`.
    pub fn allow_api(&self, access_key_id: &str) -> bool {
        if !self.settings.enabled {
            return true;
        }
        // Bounded memory: the keyed store only grows with distinct keys, and governor's shrink drops idle ones.
        if self.api.len() > MAX_TRACKED_KEYS {
            self.api.retain_recent();
        }
        self.api.check_key(&access_key_id.to_string()).is_ok()
    }

    fn user_key(organization_id: &str, username: &str) -> String {
        format!("{}\0{}", organization_id, username.to_ascii_lowercase())
    }

    /// Whether sign-in or verification attempts for this user or from this IP must slow down now.
    pub fn login_limited(&self, organization_id: &str, username: &str, ip: Option<IpAddr>) -> bool {
        if !self.settings.enabled {
            return false;
        }
        let now = Instant::now();
        self.users
            .is_limited(&Self::user_key(organization_id, username), now)
            || ip.is_some_and(|ip| self.ips.is_limited(&ip.to_string(), now))
    }

    /// Counts one failed sign-in or verification.
    pub fn record_login_failure(&self, organization_id: &str, username: &str, ip: Option<IpAddr>) {
        if !self.settings.enabled {
            return;
        }
        let now = Instant::now();
        self.users
            .record(&Self::user_key(organization_id, username), now);
        if let Some(ip) = ip {
            self.ips.record(&ip.to_string(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            api_per_second: 1,
            api_burst: 3,
            user_failures: 2,
            user_window: Duration::from_millis(200),
            ip_failures: 3,
            ip_window: Duration::from_millis(200),
            ..ThrottleSettings::default()
        }
    }

    #[test]
    fn api_bucket_is_per_key() {
        let t = Throttle::new(settings());
        assert!((0..3).all(|_| t.allow_api("A")));
        assert!(!t.allow_api("A"));
        assert!(t.allow_api("B"));
        assert!(Throttle::disabled().allow_api("A"));
    }

    #[test]
    fn failures_slow_down_then_age_out() {
        let t = Throttle::new(settings());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!t.login_limited("m-1", "alice", Some(ip)));
        t.record_login_failure("m-1", "Alice", Some(ip));
        t.record_login_failure("m-1", "alice", Some(ip));
        // Same user, any case; the IP has one failure left.
        assert!(t.login_limited("m-1", "ALICE", None));
        assert!(!t.login_limited("m-1", "bob", Some(ip)));
        t.record_login_failure("m-1", "bob", Some(ip));
        assert!(
            t.login_limited("m-1", "carol", Some(ip)),
            "the IP is now limited"
        );
        assert!(!t.login_limited("m-1", "carol", Some("192.0.2.2".parse().unwrap())));
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !t.login_limited("m-1", "alice", Some(ip)),
            "no permanent lockout"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let w = FailureWindow::new(2, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_KEYS + 10) {
            w.record(&format!("k{i}"), now);
        }
        assert!(w.failures.lock().unwrap().len() <= MAX_TRACKED_KEYS);
    }
}
