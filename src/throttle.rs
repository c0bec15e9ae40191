//! Abuse limits, all in memory and all bounded in size:
//!
//! - **AWS API buckets.** A token bucket per access key, charged only once the key's signature has verified (so
//!   nobody can spend someone else's bucket with a forged key id), and a bucket per client address charged *before*
//!   signature work and refunded when the signature verifies: requests with unknown keys or bad signatures only
//!   ever spend their sender's own budget. Answered with `ThrottlingException`, which SDKs back off from and retry.
//! - **Attempts** (sign-in, re-authentication, token verification): [`Throttle::begin_attempt`] reserves an
//!   attempt *before* the password or token is checked and the reservation is settled afterwards, all under one
//!   lock, so concurrent guesses cannot all slip through between a check and a record. Failures are limited per
//!   (user, client address), so an attacker elsewhere cannot lock a user out from her own addresses; per user from
//!   every address with a much higher ceiling that only applies to addresses without a recent success for that
//!   user (a distributed guesser is slowed down, the user's own devices never are); and per client address across
//!   users. Windows slide: failures age out, there is no permanent lockout.
//!
//! Keys are stored as 64-bit keyed hashes (a per-process random key), so the memory of every tracker is bounded by
//! its entry cap whatever the length of what clients send.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Configuration of every limit (defaults in [`ThrottleSettings::default`], documented in the README and
/// docs/SECURITY.md).
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// `false` turns every limit off (`--no-throttle`, for benchmarks).
    pub enabled: bool,
    /// Sustained AWS API requests per second per verified access key.
    pub api_per_second: u32,
    /// Burst of AWS API requests per verified access key.
    pub api_burst: u32,
    /// Sustained AWS API requests per second per client address whose signature has not (yet) verified: unknown
    /// keys and bad signatures spend this; a request whose signature verifies is refunded.
    pub unverified_per_second: u32,
    pub unverified_burst: u32,
    /// Failed attempts per (user, client address) within `user_window`.
    pub user_failures: u32,
    pub user_window: Duration,
    /// Failed attempts per user from all addresses within `user_window`; addresses where the user succeeded in the
    /// last [`KNOWN_GOOD_FOR`] are exempt. Never below `user_failures`.
    pub user_ceiling: u32,
    /// Failed attempts per client address (all users) within `ip_window`.
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
            unverified_per_second: 50,
            unverified_burst: 100,
            user_failures: 10,
            user_window: Duration::from_secs(5 * 60),
            user_ceiling: 100,
            ip_failures: 100,
            ip_window: Duration::from_secs(60),
        }
    }
}

/// Most entries any one tracker holds. Entries are fixed-size (hashed keys), so this bounds memory too: about
/// 100 bytes an entry, a few MiB per tracker at worst.
pub const MAX_TRACKED_KEYS: usize = 50_000;

/// How long a success from an address exempts that address from the user's ceiling.
pub const KNOWN_GOOD_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why an attempt was refused, and when trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Until the oldest failure that holds the limit ages out (at least one second).
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> u64 {
        let ms = self.retry_after.as_millis() as u64;
        ms.div_ceil(1000).max(1)
    }
}

/// Failures and in-flight attempts of one key.
#[derive(Debug, Default)]
struct Track {
    failures: VecDeque<Instant>,
    pending: u32,
}

impl Track {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
    }

    fn is_idle(&self) -> bool {
        self.pending == 0 && self.failures.is_empty()
    }
}

/// A sliding window of failures per key, counting in-flight attempts as failures until they are settled.
#[derive(Debug)]
struct Window {
    limit: u32,
    window: Duration,
    tracks: HashMap<u64, Track>,
}

impl Window {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            tracks: HashMap::new(),
        }
    }

    /// `None` when `key` may try once more, else when it may.
    fn check(&mut self, key: u64, now: Instant) -> Option<Duration> {
        let track = self.tracks.get_mut(&key)?;
        track.prune(now, self.window);
        let used = track.failures.len() + track.pending as usize;
        if used < self.limit as usize {
            return None;
        }
        // Limited by failures: the oldest one that counts ages out first. Limited by attempts still in flight:
        // they settle within a request's time.
        Some(match track.failures.front() {
            Some(oldest) if track.failures.len() >= self.limit as usize => {
                (*oldest + self.window).saturating_duration_since(now)
            }
            _ => Duration::from_secs(1),
        })
    }

    fn reserve(&mut self, key: u64, now: Instant) {
        if self.tracks.len() >= MAX_TRACKED_KEYS && !self.tracks.contains_key(&key) {
            let window = self.window;
            self.tracks.retain(|_, t| {
                t.prune(now, window);
                !t.is_idle()
            });
            if self.tracks.len() >= MAX_TRACKED_KEYS {
                // Flooded with live keys: forget settled failures (never in-flight reservations) rather than grow.
                self.tracks.retain(|_, t| t.pending > 0);
            }
        }
        self.tracks.entry(key).or_default().pending += 1;
    }

    /// Settles one reserved attempt: a failure is remembered; `clear` forgets the key's failures (a success).
    fn settle(&mut self, key: u64, now: Instant, failed: bool, clear: bool) {
        let Some(track) = self.tracks.get_mut(&key) else {
            return;
        };
        track.pending = track.pending.saturating_sub(1);
        if failed {
            track.failures.push_back(now);
            // Only the newest `limit` failures can matter.
            while track.failures.len() > self.limit as usize {
                track.failures.pop_front();
            }
        } else if clear {
            track.failures.clear();
        }
        if track.is_idle() {
            self.tracks.remove(&key);
        }
    }
}

/// Everything the attempt limiter keeps, under one lock so that check-and-reserve is atomic across all windows.
#[derive(Debug)]
struct AttemptState {
    pairs: Window,
    users: Window,
    addresses: Window,
    /// (user, address) pairs with a recent success: exempt from the user's ceiling.
    known_good: HashMap<u64, Instant>,
}

/// A reserved attempt. Settle it with [`Attempt::succeeded`] or [`Attempt::failed`]; dropped unsettled (the
/// request was cancelled midway) it counts as a failure, so hanging up cannot be used to guess for free.
#[must_use = "an attempt must be settled"]
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: Option<&'a Throttle>,
    keys: AttemptKeys,
}

#[derive(Debug, Clone, Copy)]
struct AttemptKeys {
    pair: u64,
    user: u64,
    address: Option<u64>,
    /// Whether the user's ceiling was charged (not for known-good addresses).
    user_charged: bool,
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Succeeded,
    Failed,
    /// Neither: the check could not be made (a store error). The reservation is returned, nothing is recorded.
    Released,
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        if let Some(t) = self.throttle.take() {
            t.settle(self.keys, Settle::Succeeded);
        }
    }

    pub fn failed(mut self) {
        if let Some(t) = self.throttle.take() {
            t.settle(self.keys, Settle::Failed);
        }
    }

    pub fn released(mut self) {
        if let Some(t) = self.throttle.take() {
            t.settle(self.keys, Settle::Released);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.throttle.take() {
            t.settle(self.keys, Settle::Failed);
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per key, bounded in count.
#[derive(Debug)]
struct Buckets {
    per_second: f64,
    burst: f64,
    map: HashMap<u64, Bucket>,
}

impl Buckets {
    fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            map: HashMap::new(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
    }

    /// Takes one token; `false` when the bucket is empty.
    fn take(&mut self, key: u64, now: Instant) -> bool {
        if self.map.len() >= MAX_TRACKED_KEYS && !self.map.contains_key(&key) {
            // Full buckets carry no information: drop them first, then everything (a flood of distinct keys must
            // not grow memory; forgetting only ever gives buckets back).
            let (per_second, burst) = (self.per_second, self.burst);
            self.map.retain(|_, b| {
                b.tokens + now.duration_since(b.last).as_secs_f64() * per_second < burst
            });
            if self.map.len() >= MAX_TRACKED_KEYS {
                self.map.clear();
            }
        }
        let burst = self.burst;
        let mut bucket = *self.map.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        self.refill(&mut bucket, now);
        let ok = bucket.tokens >= 1.0;
        if ok {
            bucket.tokens -= 1.0;
        }
        self.map.insert(key, bucket);
        ok
    }

    /// Gives one token back (a request that turned out to be verified).
    fn refund(&mut self, key: u64) {
        if let Some(b) = self.map.get_mut(&key) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

/// All limits of one server.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    hasher: RandomState,
    api_keys: Mutex<Buckets>,
    api_addresses: Mutex<Buckets>,
    attempts: Mutex<AttemptState>,
}

/// A spent token of a client address's unverified budget; give it back with [`Throttle::refund_unverified`] once
/// the request's signature has verified.
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedCharge(Option<u64>);

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let ceiling = settings.user_ceiling.max(settings.user_failures);
        Self {
            api_keys: Mutex::new(Buckets::new(settings.api_per_second, settings.api_burst)),
            api_addresses: Mutex::new(Buckets::new(
                settings.unverified_per_second,
                settings.unverified_burst,
            )),
            attempts: Mutex::new(AttemptState {
                pairs: Window::new(settings.user_failures, settings.user_window),
                users: Window::new(ceiling, settings.user_window),
                addresses: Window::new(settings.ip_failures, settings.ip_window),
                known_good: HashMap::new(),
            }),
            hasher: RandomState::new(),
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

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    fn key(&self, value: impl Hash) -> u64 {
        self.hasher.hash_one(value)
    }

    /// Takes one AWS API request from the access key's bucket. Call it only for a key whose signature verified
    /// (or, in accept-any mode, for the key as presented); `false` means answer `ThrottlingException`.
    pub fn allow_api(&self, access_key_id: &str) -> bool {
        if !self.settings.enabled {
            return true;
        }
        let key = self.key(("key", access_key_id));
        self.api_keys
            .lock()
            .map(|mut b| b.take(key, Instant::now()))
            .unwrap_or(true)
    }

    /// Charges the client address's budget for a request whose signature is not verified yet. `Err` means answer
    /// `ThrottlingException` before doing any signature work.
    pub fn charge_unverified(&self, client: Option<IpAddr>) -> Result<UnverifiedCharge, Limited> {
        let (true, Some(ip)) = (self.settings.enabled, client) else {
            return Ok(UnverifiedCharge(None));
        };
        let key = self.key(("addr", address_key(ip)));
        let allowed = self
            .api_addresses
            .lock()
            .map(|mut b| b.take(key, Instant::now()))
            .unwrap_or(true);
        if allowed {
            Ok(UnverifiedCharge(Some(key)))
        } else {
            Err(Limited {
                retry_after: Duration::from_secs(1),
            })
        }
    }

    /// Gives back what [`Throttle::charge_unverified`] took: the request turned out to be properly signed.
    pub fn refund_unverified(&self, charge: UnverifiedCharge) {
        if let (Some(key), Ok(mut b)) = (charge.0, self.api_addresses.lock()) {
            b.refund(key);
        }
    }

    /// Reserves one sign-in or verification attempt for `subject` (the resolved user id, or the normalised
    /// identifier when no such user exists, so both look the same from outside) from `client`. The password or
    /// token must be checked only when this returns an [`Attempt`], and the attempt settled with the outcome.
    pub fn begin_attempt(
        &self,
        subject: &str,
        client: Option<IpAddr>,
    ) -> Result<Attempt<'_>, Limited> {
        self.begin_attempt_with(subject, client, None, true)
    }

    /// [`Throttle::begin_attempt`], with the user's ceiling left to someone else when `ceiling` is `false` (the
    /// store that shares attempts across replicas: only it knows every replica's failures and the user's
    /// known-good addresses, so a replica's own ceiling would refuse her from an address she used elsewhere).
    ///
    /// `pair_hint`: an address the caller reported but that cannot be believed (the `RemoteIp` of a mail server
    /// that is neither a trusted proxy nor holds the verifier key). It only splits the (user, address) pair, so
    /// that a stranger's bad logins relayed by the same mail server do not fill the user's own pair; every window
    /// that spans users still counts against `client`, the address that can be believed.
    pub fn begin_attempt_with(
        &self,
        subject: &str,
        client: Option<IpAddr>,
        pair_hint: Option<IpAddr>,
        ceiling: bool,
    ) -> Result<Attempt<'_>, Limited> {
        let address = client.map(address_key);
        let hint = pair_hint.map(address_key);
        let keys = AttemptKeys {
            pair: self.key(("pair", subject, address, hint)),
            user: self.key(("user", subject)),
            address: address.map(|a| self.key(("addr", a))),
            user_charged: true,
        };
        if !self.settings.enabled {
            return Ok(Attempt {
                throttle: None,
                keys,
            });
        }
        let now = Instant::now();
        let Ok(mut state) = self.attempts.lock() else {
            return Ok(Attempt {
                throttle: None,
                keys,
            });
        };
        let known_good = state
            .known_good
            .get(&keys.pair)
            .is_some_and(|t| now.duration_since(*t) < KNOWN_GOOD_FOR);
        let keys = AttemptKeys {
            user_charged: ceiling && !known_good,
            ..keys
        };
        let mut wait = state.pairs.check(keys.pair, now);
        if keys.user_charged {
            wait = wait.max(state.users.check(keys.user, now));
        }
        if let Some(a) = keys.address {
            wait = wait.max(state.addresses.check(a, now));
        }
        if let Some(retry_after) = wait {
            return Err(Limited {
                retry_after: retry_after.max(Duration::from_secs(1)),
            });
        }
        state.pairs.reserve(keys.pair, now);
        if keys.user_charged {
            state.users.reserve(keys.user, now);
        }
        if let Some(a) = keys.address {
            state.addresses.reserve(a, now);
        }
        Ok(Attempt {
            throttle: Some(self),
            keys,
        })
    }

    fn settle(&self, keys: AttemptKeys, outcome: Settle) {
        let failed = outcome == Settle::Failed;
        let now = Instant::now();
        let Ok(mut state) = self.attempts.lock() else {
            return;
        };
        // A success clears the failures of its (user, address) pair only: other addresses may still be guessing.
        state
            .pairs
            .settle(keys.pair, now, failed, outcome == Settle::Succeeded);
        if keys.user_charged {
            state.users.settle(keys.user, now, failed, false);
        }
        if let Some(a) = keys.address {
            state.addresses.settle(a, now, failed, false);
        }
        if outcome == Settle::Succeeded {
            if state.known_good.len() >= MAX_TRACKED_KEYS
                && !state.known_good.contains_key(&keys.pair)
            {
                state
                    .known_good
                    .retain(|_, t| now.duration_since(*t) < KNOWN_GOOD_FOR);
                if state.known_good.len() >= MAX_TRACKED_KEYS {
                    state.known_good.clear();
                }
            }
            state.known_good.insert(keys.pair, now);
        }
    }
}

/// The unit a client address is limited as: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation,
/// so rotating through a prefix buys nothing). IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            api_per_second: 1,
            api_burst: 3,
            unverified_per_second: 1,
            unverified_burst: 2,
            user_failures: 2,
            user_window: Duration::from_millis(300),
            user_ceiling: 4,
            ip_failures: 5,
            ip_window: Duration::from_millis(300),
            ..ThrottleSettings::default()
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
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
    fn unverified_budget_is_per_address_and_refunded() {
        let t = Throttle::new(settings());
        for _ in 0..10 {
            let c = t.charge_unverified(ip("192.0.2.1")).unwrap();
            t.refund_unverified(c);
        }
        assert!(t.charge_unverified(ip("192.0.2.1")).is_ok());
        assert!(t.charge_unverified(ip("192.0.2.1")).is_ok());
        assert!(t.charge_unverified(ip("192.0.2.1")).is_err());
        assert!(t.charge_unverified(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn concurrent_attempts_are_reserved_before_the_work() {
        let t = Throttle::new(settings());
        // Two attempts in flight use up the pair's two tries: the third is refused before any work.
        let a = t.begin_attempt("u1", ip("192.0.2.1")).unwrap();
        let b = t.begin_attempt("u1", ip("192.0.2.1")).unwrap();
        assert!(t.begin_attempt("u1", ip("192.0.2.1")).is_err());
        b.failed();
        a.succeeded();
        // The success cleared the pair's failures: two more tries.
        t.begin_attempt("u1", ip("192.0.2.1")).unwrap().failed();
        t.begin_attempt("u1", ip("192.0.2.1")).unwrap().failed();
        let limited = t.begin_attempt("u1", ip("192.0.2.1")).unwrap_err();
        // The window is 300 ms; Retry-After never says less than a second.
        assert_eq!(limited.retry_after, Duration::from_secs(1));
        assert_eq!(limited.retry_after_secs(), 1);
    }

    #[test]
    fn a_dropped_attempt_counts_as_a_failure() {
        let t = Throttle::new(settings());
        drop(t.begin_attempt("u1", ip("192.0.2.1")).unwrap());
        drop(t.begin_attempt("u1", ip("192.0.2.1")).unwrap());
        assert!(t.begin_attempt("u1", ip("192.0.2.1")).is_err());
    }

    #[test]
    fn an_attacker_elsewhere_cannot_lock_the_user_out_of_her_own_address() {
        let t = Throttle::new(settings());
        // The user signs in from home once.
        t.begin_attempt("u1", ip("198.51.100.7"))
            .unwrap()
            .succeeded();
        // Guessers from many addresses exhaust their pairs and then the user's ceiling.
        for n in 1..=4 {
            let from = ip(&format!("203.0.113.{n}"));
            if let Ok(a) = t.begin_attempt("u1", from) {
                a.failed();
            }
        }
        assert!(
            t.begin_attempt("u1", ip("203.0.113.99")).is_err(),
            "the ceiling slows the distributed guessing"
        );
        // Home still works: the ceiling does not apply to an address with a recent success.
        t.begin_attempt("u1", ip("198.51.100.7"))
            .unwrap()
            .succeeded();
        // Another user is unaffected.
        assert!(t.begin_attempt("u2", ip("203.0.113.99")).is_ok());
    }

    #[test]
    fn failures_age_out() {
        let t = Throttle::new(settings());
        for _ in 0..2 {
            t.begin_attempt("u1", ip("192.0.2.1")).unwrap().failed();
        }
        assert!(t.begin_attempt("u1", ip("192.0.2.1")).is_err());
        std::thread::sleep(Duration::from_millis(350));
        assert!(
            t.begin_attempt("u1", ip("192.0.2.1")).is_ok(),
            "no permanent lockout"
        );
    }

    #[test]
    fn the_address_limit_spans_users() {
        let t = Throttle::new(settings());
        for n in 0..5 {
            t.begin_attempt(&format!("user{n}"), ip("192.0.2.1"))
                .unwrap()
                .failed();
        }
        assert!(t.begin_attempt("user9", ip("192.0.2.1")).is_err());
        assert!(t.begin_attempt("user9", ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            address_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let t = Throttle::new(settings());
        for i in 0..(MAX_TRACKED_KEYS + 10) {
            t.begin_attempt(&format!("k{i}"), None).unwrap().failed();
            assert!(t.allow_api(&format!("key-{i}-{}", "x".repeat(1000))));
        }
        let s = t.attempts.lock().unwrap();
        assert!(s.pairs.tracks.len() <= MAX_TRACKED_KEYS);
        assert!(s.users.tracks.len() <= MAX_TRACKED_KEYS);
        assert!(t.api_keys.lock().unwrap().map.len() <= MAX_TRACKED_KEYS);
    }
}
