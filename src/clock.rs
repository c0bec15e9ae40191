//! Server time. Everything that stores or compares a date (creation, expiry, `DateLastUsed`, NextToken expiry,
//! sessions) reads it here, so that a test-support API can move it without touching SigV4, whose clock-skew check
//! must always use real time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A wall clock with an adjustable offset (zero unless a test moves it).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Real wall-clock time in milliseconds.
    pub fn real_now_ms() -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Server time in milliseconds.
    pub fn now_ms(&self) -> Millis {
        Self::real_now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves server time forward (or back, with a negative value).
    pub fn advance_ms(&self, delta: i64) {
        self.offset_ms.fetch_add(delta, Ordering::Relaxed);
    }

    /// Sets server time to `now`.
    pub fn set_now_ms(&self, now: Millis) {
        self.offset_ms
            .store(now - Self::real_now_ms(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_server_time_only() {
        let clock = Clock::new();
        let before = clock.now_ms();
        clock.advance_ms(86_400_000);
        let after = clock.now_ms();
        assert!(after - before >= 86_400_000);
        assert!(Clock::real_now_ms() < after - 86_000_000);
        clock.set_now_ms(1_000);
        assert!((clock.now_ms() - 1_000).abs() < 1_000);
    }
}
