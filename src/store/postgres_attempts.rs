//! Attempt accounting shared by every replica on PostgreSQL ([`super::Store::reserve_attempt`]). Each window's
//! check-and-reserve runs in one transaction under transaction-scoped advisory locks on its keys (taken in key
//! order, so two attempts never deadlock), so concurrent attempts on any number of replicas are counted one by one.

use super::{
    ATTEMPT_KNOWN_GOOD_MS, ATTEMPT_PENDING_TTL_MS, AttemptRequest, AttemptWindow, SharedAttempt,
};

const PENDING: i16 = 0;
const FAILURE: i16 = 1;
const SUCCESS: i16 = 2;

/// The advisory-lock id of a key (its first eight bytes).
fn lock_id(key: &[u8; 16]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    i64::from_be_bytes(b)
}

/// The windows an attempt is counted in, with whether each is the user's ceiling.
fn windows(request: &AttemptRequest) -> Vec<(AttemptWindow, bool)> {
    let mut w = vec![(request.pair, false), (request.user, true)];
    if let Some(a) = request.address {
        w.push((a, false));
    }
    w
}

pub(super) async fn reserve(
    client: &mut deadpool_postgres::Client,
    request: &AttemptRequest,
) -> Result<SharedAttempt, tokio_postgres::Error> {
    let now = request.now_ms;
    let tx = client.transaction().await?;
    let mut ids: Vec<i64> = windows(request)
        .iter()
        .map(|(w, _)| lock_id(&w.key))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[id])
            .await?;
    }
    let known_good = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM attempt_events WHERE key = $1 AND kind = $2 AND at_ms > $3)",
            &[
                &request.pair.key.as_slice(),
                &SUCCESS,
                &(now - ATTEMPT_KNOWN_GOOD_MS),
            ],
        )
        .await?
        .get::<_, bool>(0);
    let mut reserve_in = Vec::new();
    let mut wait: Option<i64> = None;
    for (w, is_ceiling) in windows(request) {
        if is_ceiling && known_good {
            continue;
        }
        let row = tx
            .query_one(
                "SELECT COUNT(*), MIN(at_ms) FILTER (WHERE kind = $2) FROM attempt_events \
                 WHERE key = $1 AND ((kind = $2 AND at_ms > $3) OR (kind = $4 AND at_ms > $5))",
                &[
                    &w.key.as_slice(),
                    &FAILURE,
                    &(now - w.window_ms),
                    &PENDING,
                    &(now - ATTEMPT_PENDING_TTL_MS),
                ],
            )
            .await?;
        let used: i64 = row.get(0);
        if used >= i64::from(w.limit) {
            // Limited by failures: the oldest ages out first; by attempts in flight only: they settle soon.
            let oldest: Option<i64> = row.get(1);
            let after = oldest.map_or(1000, |t| t + w.window_ms - now).max(1000);
            wait = Some(wait.map_or(after, |x| x.max(after)));
        }
        reserve_in.push(w);
    }
    if let Some(retry_after_ms) = wait {
        tx.rollback().await?;
        return Ok(SharedAttempt::Limited { retry_after_ms });
    }
    let mut pending = Vec::with_capacity(reserve_in.len());
    for w in reserve_in {
        let row = tx
            .query_one(
                "INSERT INTO attempt_events (key, kind, at_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&w.key.as_slice(), &PENDING, &now],
            )
            .await?;
        pending.push(row.get::<_, i64>(0));
    }
    tx.commit().await?;
    Ok(SharedAttempt::Reserved(pending))
}

pub(super) async fn settle(
    client: &mut deadpool_postgres::Client,
    request: &AttemptRequest,
    reserved: &[i64],
    failed: bool,
) -> Result<(), tokio_postgres::Error> {
    let now = request.now_ms;
    let tx = client.transaction().await?;
    // The pending rows say which windows this attempt was counted in (the ceiling is skipped for known-good
    // addresses); a failure replaces each with a failure row of the same key.
    let keys: Vec<Vec<u8>> = tx
        .query(
            "DELETE FROM attempt_events WHERE id = ANY($1) AND kind = $2 RETURNING key",
            &[&reserved, &PENDING],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    if failed {
        for key in &keys {
            tx.execute(
                "INSERT INTO attempt_events (key, kind, at_ms) VALUES ($1, $2, $3)",
                &[key, &FAILURE, &now],
            )
            .await?;
        }
    } else {
        let pair = request.pair.key.as_slice();
        tx.execute(
            "DELETE FROM attempt_events WHERE key = $1 AND kind IN ($2, $3)",
            &[&pair, &FAILURE, &SUCCESS],
        )
        .await?;
        tx.execute(
            "INSERT INTO attempt_events (key, kind, at_ms) VALUES ($1, $2, $3)",
            &[&pair, &SUCCESS, &now],
        )
        .await?;
    }
    // Sweep what has aged out of every window now and then (about one settle in 64), so the table stays small.
    if reserved.first().is_some_and(|id| id % 64 == 0) {
        let longest = windows(request)
            .iter()
            .map(|(w, _)| w.window_ms)
            .max()
            .unwrap_or(0);
        tx.execute(
            "DELETE FROM attempt_events WHERE (kind = $1 AND at_ms < $2) OR (kind = $3 AND at_ms < $4) \
             OR (kind = $5 AND at_ms < $6)",
            &[
                &FAILURE,
                &(now - longest),
                &PENDING,
                &(now - ATTEMPT_PENDING_TTL_MS),
                &SUCCESS,
                &(now - ATTEMPT_KNOWN_GOOD_MS),
            ],
        )
        .await?;
    }
    tx.commit().await
}
