//! The password-hashing lanes: where every Argon2id hash and verification runs.
//!
//! Each hash takes about 19 MiB and a core for tens of milliseconds, so they run on a few long-lived threads
//! (instead of tokio's growing blocking pool, where every thread's allocator arena would keep its own 19 MiB), which
//! bounds the memory and CPU a flood of sign-ins can take. Three further rules keep such a flood from hurting
//! anyone else (issue 12, defect 9):
//!
//! - **Two lanes.** Sign-in (and other self-service work) and administration (CreateUser, ResetPassword, seeding)
//!   each have their own threads and their own queue, so a sign-in flood cannot starve an administrator.
//! - **Bounded queues.** A lane holds at most `--password-queue` waiting jobs; beyond that the caller gets
//!   [`HashingError::Busy`] at once (answered 503 `ServiceUnavailable`, which clients retry) instead of waiting
//!   behind hundreds of others until its request times out.
//! - **Abandoned jobs are skipped.** A job whose caller has gone (its request timed out or its client went away,
//!   so the result's receiver was dropped) is dropped when a thread picks it up, without hashing.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

/// Threads of the sign-in lane.
pub const SIGN_IN_THREADS: usize = 2;
/// Threads of the administration lane.
pub const ADMIN_THREADS: usize = 1;
/// Waiting jobs per lane unless [`configure`] says otherwise (`--password-queue`).
pub const DEFAULT_QUEUE: usize = 32;

/// Which lane a job runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Sign-in and anything else an unauthenticated or self-service client can cause.
    SignIn,
    /// Administrative operations (CreateUser, ResetPassword) and seeding.
    Admin,
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::SignIn => "sign-in",
            Lane::Admin => "admin",
        }
    }
}

/// Why password work did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashingError {
    /// The lane's queue is full: answer "busy, retry later" rather than queue without bound.
    #[error("the password-hashing queue is full")]
    Busy,
    /// The lane's threads are gone (they never are in normal operation).
    #[error("the password-hashing threads are gone")]
    Gone,
}

impl HashingError {
    /// For callers that report through [`crate::store::StoreError`] (sign-in): a full queue is `Unavailable`, which
    /// every API answers with a retryable 503.
    pub fn into_store_error(self) -> crate::store::StoreError {
        match self {
            HashingError::Busy => crate::store::StoreError::Unavailable(self.to_string()),
            HashingError::Gone => crate::store::StoreError::Backend(self.to_string()),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

static QUEUE_BOUND: OnceLock<usize> = OnceLock::new();

/// Sets the queue bound of each lane. Only the first call before any password work counts (the server calls it
/// once at start); returns whether it took effect.
pub fn configure(queue: usize) -> bool {
    QUEUE_BOUND.set(queue.max(1)).is_ok()
}

fn sender(lane: Lane) -> &'static SyncSender<Job> {
    static SIGN_IN: OnceLock<SyncSender<Job>> = OnceLock::new();
    static ADMIN: OnceLock<SyncSender<Job>> = OnceLock::new();
    let (cell, threads) = match lane {
        Lane::SignIn => (&SIGN_IN, SIGN_IN_THREADS),
        Lane::Admin => (&ADMIN, ADMIN_THREADS),
    };
    cell.get_or_init(|| {
        let bound = *QUEUE_BOUND.get_or_init(|| DEFAULT_QUEUE);
        start(lane, threads, bound)
    })
}

fn start(lane: Lane, threads: usize, bound: usize) -> SyncSender<Job> {
    let (tx, rx) = mpsc::sync_channel::<Job>(bound);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = rx.clone();
        let _ = std::thread::Builder::new()
            .name(format!("password-{}-{i}", lane.name()))
            .spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
    }
    tx
}

/// Runs `work` (password hashing or verification) on one of `lane`'s threads, or answers
/// [`HashingError::Busy`] at once when that lane's queue is full.
pub async fn on_password_thread<T: Send + 'static>(
    lane: Lane,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashingError> {
    run_on(sender(lane), lane, work).await
}

async fn run_on<T: Send + 'static>(
    queue: &SyncSender<Job>,
    lane: Lane,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashingError> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller gave up while the job waited (request timeout, client gone): nobody wants the answer.
        if done_tx.is_closed() {
            metrics::counter!("workmail_pat_password_jobs_total", "lane" => lane.name(), "outcome" => "abandoned")
                .increment(1);
            return;
        }
        let _ = done_tx.send(work());
    });
    match queue.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            metrics::counter!("workmail_pat_password_jobs_total", "lane" => lane.name(), "outcome" => "busy")
                .increment(1);
            return Err(HashingError::Busy);
        }
        Err(TrySendError::Disconnected(_)) => return Err(HashingError::Gone),
    }
    done_rx.await.map_err(|_| HashingError::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn jobs_run_and_return_their_result() {
        assert_eq!(on_password_thread(Lane::Admin, || 6 * 7).await, Ok(42));
        assert_eq!(on_password_thread(Lane::SignIn, || "ok").await, Ok("ok"));
    }

    #[tokio::test]
    async fn a_full_lane_refuses_at_once_and_abandoned_jobs_are_skipped() {
        // A private lane: two threads, four waiting jobs. Block both threads, fill the queue with jobs whose
        // callers then leave, check that more are refused and that the abandoned jobs never run.
        const BOUND: usize = 4;
        let queue = start(Lane::SignIn, 2, BOUND);
        let gate = Arc::new(std::sync::Barrier::new(3));
        let mut blockers = Vec::new();
        for _ in 0..2 {
            let gate = gate.clone();
            let queue = queue.clone();
            blockers.push(tokio::spawn(async move {
                run_on(&queue, Lane::SignIn, move || {
                    gate.wait();
                })
                .await
            }));
        }
        // Let the blockers reach the threads (bounded wait).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let mut refused = 0;
        for _ in 0..BOUND + 5 {
            let ran = ran.clone();
            let job = run_on(&queue, Lane::SignIn, move || {
                ran.fetch_add(1, Ordering::SeqCst);
            });
            // Polled once (it is queued or refused), then dropped: the caller has gone.
            match tokio::time::timeout(std::time::Duration::from_millis(1), job).await {
                Ok(Err(HashingError::Busy)) => refused += 1,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => {}
            }
        }
        assert_eq!(refused, 5);
        // Another lane is not affected.
        assert_eq!(on_password_thread(Lane::Admin, || 1).await, Ok(1));
        gate.wait();
        for b in blockers {
            b.await.unwrap().unwrap();
        }
        // The lane drains (its threads skip the abandoned jobs, which takes a moment on a loaded machine: until
        // then the queue is still full and refuses); none of the abandoned jobs did its work.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let drained = loop {
            match run_on(&queue, Lane::SignIn, || 2).await {
                Err(HashingError::Busy) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => break other,
            }
        };
        assert_eq!(drained, Ok(2));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
