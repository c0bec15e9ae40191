//! `DateLastUsed` off the request path. A token's first use is written by the verification itself (the spec wants
//! it visible at once); later moves (at most one per token per `last_used_interval_ms`) are queued here and written
//! together, in one transaction, at least once a second and when the server stops. A token queued twice before a
//! flush is written once, with its first time (the interval rule would refuse the second anyway).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Millis;
use crate::domain::PersonalAccessToken;
use crate::store::{Store, StoreError};

/// How often queued uses are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Most queued uses; beyond it a use is written at once by its verification (a flood of distinct tokens cannot
/// grow the queue without bound).
pub const MAX_PENDING: usize = 100_000;

/// Uses of tokens waiting to be written, by token id.
#[derive(Debug, Default)]
pub struct Touches {
    pending: Mutex<HashMap<String, PersonalAccessToken>>,
}

impl Touches {
    /// Queues a use of `token` at `now_ms`; `false` when the queue is full (the caller writes it itself).
    pub fn record(&self, token: &PersonalAccessToken, now_ms: Millis) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains_key(&token.id) {
            return true;
        }
        if pending.len() >= MAX_PENDING {
            return false;
        }
        let touched = PersonalAccessToken {
            last_used_ms: Some(now_ms),
            ..token.clone()
        };
        pending.insert(token.id.clone(), touched);
        true
    }

    /// How many uses wait.
    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every queued use in one transaction. On failure they are queued again (unless newer uses of the same
    /// tokens arrived meanwhile), so a store outage delays them rather than losing them.
    pub async fn flush(
        &self,
        store: &dyn Store,
        min_interval_ms: Millis,
    ) -> Result<usize, StoreError> {
        let batch: Vec<PersonalAccessToken> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.drain().map(|(_, t)| t).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        match store
            .touch_personal_access_tokens(batch.clone(), min_interval_ms)
            .await
        {
            Ok(()) => Ok(n),
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for t in batch {
                    pending.entry(t.id.clone()).or_insert(t);
                }
                Err(e)
            }
        }
    }
}
