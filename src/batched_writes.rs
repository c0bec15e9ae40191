//! Answers written in batches across connections (issue 14).
//!
//! When the server is the busy side, every response written at once wakes its client, which then sleeps again until
//! the next one: one cross-CPU wake-up per answer, a fifth of the server's time under load (`perf record`:
//! `sock_def_readable` in `writev`; `perf stat -e sched:sched_wakeup` on the clients' core: one wake-up per answer).
//! [`BatchedWrites`] holds the first write after a request arrived until the worker thread has nothing else to run,
//! like Redis writes its replies before its event loop sleeps: the requests that arrived meanwhile are all answered
//! first, and the answers then go out back to back, waking their clients once rather than once each. Holding for
//! only one turn of the scheduler was not enough: once answers leave one by one, requests come back one by one, so
//! there is never more than one to batch.
//!
//! The worker releases the held answers when it is about to park ([`crate::runtime::on_runtime`] installs the hook;
//! with several workers, any one going idle releases them all). A worker that never goes idle still lets them go:
//! the answer held when the batch is already [`MAX_HOLD`] old releases it (so does the [`MAX_HELD`]th held answer),
//! and for a worker busy with other work, a watchdog thread, awake while answers are being held, releases every held
//! answer that saw no release for one [`WATCHDOG_TICK`] (so no answer waits more than about twice that). It is a
//! thread rather than a timer per connection because re-arming a tokio timer while the worker runs wakes the worker's
//! driver (an `eventfd` write): one system call per answer, 0.46 a request under load (`strace -c`). Its tick is
//! longer than [`MAX_HOLD`] because every tick preempts the worker on a loaded core (ticking every millisecond was
//! ~2 % of the server's time under the metadata load, `perf record`). The watchdog sleeps once no answer was held
//! for 100 of its ticks. A runtime without the hook (tests) holds each answer for one
//! turn of the scheduler instead. A write is held at most once per request that arrived, so a pipelining client
//! cannot keep its answers waiting.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How old a batch may be when another answer joins it: that answer releases the batch instead (see the module's note).
pub const MAX_HOLD: Duration = Duration::from_millis(1);
/// How often the watchdog looks whether held answers saw a release (see the module's note).
pub const WATCHDOG_TICK: Duration = Duration::from_millis(5);
/// The most answers held at once: the one that would make more releases them all.
pub const MAX_HELD: usize = 256;

/// The tasks of the held answers.
static HELD: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
/// How many times held answers were released: an answer held before a release may go out.
static RELEASES: AtomicU64 = AtomicU64::new(0);
/// When the oldest held answer was held ([`since_start`]), valid while [`HELD`] is not empty.
static BATCH_STARTED: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since the first call: a clock for [`BATCH_STARTED`].
fn since_start() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

thread_local! {
    /// Whether this thread belongs to a runtime that releases held answers when it parks.
    static RELEASES_ON_PARK: Cell<bool> = const { Cell::new(false) };
    /// An empty vector with room, swapped with [`HELD`] by [`release`].
    static SPARE: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
}

/// Marks the calling thread as a worker of a runtime that calls [`release`] whenever it is about to park (go
/// idle): [`crate::runtime::on_runtime`] runs it on every thread the runtime starts.
pub fn on_thread_start() {
    RELEASES_ON_PARK.with(|on| on.set(true));
}

/// Lets every held answer go out. The tasks are woken after the lock is let go (each wake may take the scheduler's
/// own lock and unpark a worker), from a vector kept per thread so that a release allocates nothing.
pub fn release() {
    let mut wakers = SPARE.take();
    {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.is_empty() {
            RELEASES.fetch_add(1, Ordering::AcqRel);
            std::mem::swap(&mut *held, &mut wakers);
        }
    }
    for waker in wakers.drain(..) {
        waker.wake();
    }
    SPARE.set(wakers);
}

/// Where a connection stands between reading a request and writing its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Nothing read since the last write: writes go out at once.
    Off,
    /// Bytes arrived: the next write is held.
    Armed,
    /// A write is held until a release after the one counted here (or [`MAX_HOLD`]).
    Waiting(u64),
    /// A write was held for one turn (a runtime without the release hook): the next one goes out.
    Turned,
}

/// A connection whose first write after each read waits for its batch.
#[derive(Debug)]
pub struct BatchedWrites<S> {
    inner: S,
    hold: Hold,
}

impl<S> BatchedWrites<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            hold: Hold::Off,
        }
    }

    /// Whether this write waits: the first after a read does, until its batch is released.
    fn holds(&mut self, cx: &mut Context<'_>) -> bool {
        match self.hold {
            Hold::Off => false,
            Hold::Turned => {
                self.hold = Hold::Off;
                false
            }
            Hold::Armed if !RELEASES_ON_PARK.with(Cell::get) => {
                self.hold = Hold::Turned;
                // Queued again behind the tasks already runnable (a task that wakes itself while it is polled goes
                // to the back of the run queue, not to the front).
                cx.waker().wake_by_ref();
                true
            }
            Hold::Armed => {
                let now = since_start();
                let released = {
                    let mut held = HELD
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if held.is_empty() {
                        BATCH_STARTED.store(now, Ordering::Relaxed);
                    }
                    let age = now.saturating_sub(BATCH_STARTED.load(Ordering::Relaxed));
                    // Full or old: this answer goes now, with the batch.
                    (held.len() + 1 < MAX_HELD && age < MAX_HOLD.as_nanos() as u64).then(|| {
                        held.push(cx.waker().clone());
                        RELEASES.load(Ordering::Acquire)
                    })
                };
                let Some(released) = released else {
                    release();
                    self.hold = Hold::Off;
                    return false;
                };
                self.hold = Hold::Waiting(released);
                watchdog::wake();
                self.still_waiting(released)
            }
            Hold::Waiting(released) => self.still_waiting(released),
        }
    }

    /// Whether a held write still waits: no release since it was held.
    fn still_waiting(&mut self, released: u64) -> bool {
        if RELEASES.load(Ordering::Acquire) == released {
            return true;
        }
        self.hold = Hold::Off;
        false
    }
}

/// The thread that releases the answers a worker too busy to park holds for longer than [`WATCHDOG_TICK`].
mod watchdog {
    use super::*;

    /// Whether the watchdog is awake (or being woken).
    static AWAKE: AtomicBool = AtomicBool::new(false);
    static LOCK: Mutex<()> = Mutex::new(());
    static WAKE: Condvar = Condvar::new();
    static START: Once = Once::new();

    /// Ticks without a held answer after which the watchdog sleeps.
    const IDLE_TICKS: u32 = 100;

    /// Wakes the watchdog if it sleeps (an answer is held now); starts it the first time.
    pub(super) fn wake() {
        if AWAKE.load(Ordering::SeqCst) || AWAKE.swap(true, Ordering::SeqCst) {
            return;
        }
        START.call_once(|| {
            // Without its thread, held answers still go when a worker parks and at the MAX_HELDth answer.
            let _ = std::thread::Builder::new()
                .name("batched-writes-watchdog".into())
                .spawn(run);
        });
        let _lock = LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        WAKE.notify_one();
    }

    fn holding() -> bool {
        !HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    fn run() {
        loop {
            {
                let mut lock = LOCK
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !AWAKE.load(Ordering::SeqCst) {
                    lock = WAKE
                        .wait(lock)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            let mut idle = 0;
            while idle < IDLE_TICKS {
                let seen = RELEASES.load(Ordering::Acquire);
                let held = holding();
                std::thread::sleep(WATCHDOG_TICK);
                if held && RELEASES.load(Ordering::Acquire) == seen {
                    // Held for a whole tick without a release: the worker never went idle.
                    release();
                }
                idle = if held || holding() { 0 } else { idle + 1 };
            }
            AWAKE.store(false, Ordering::SeqCst);
            // An answer held just before: it saw the watchdog awake and did not wake it.
            if holding() {
                AWAKE.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BatchedWrites<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && this.hold == Hold::Off
        {
            this.hold = Hold::Armed;
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BatchedWrites<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_write<S: AsyncWrite + Unpin>(
        io: &mut BatchedWrites<S>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(io).poll_write(cx, bytes)
    }

    fn poll_read<S: AsyncRead + Unpin>(io: &mut BatchedWrites<S>, cx: &mut Context<'_>) -> usize {
        let mut space = [0u8; 64];
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => buf.filled().len(),
            other => panic!("read: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_first_write_after_a_read_waits_one_turn_and_wakes_its_task() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut io = BatchedWrites::new(ours);
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);

        // Nothing read yet: a write goes out at once.
        assert!(matches!(
            poll_write(&mut io, &mut cx, b"a"),
            Poll::Ready(Ok(1))
        ));
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);

        theirs.write_all(b"request").await.unwrap();
        assert_eq!(poll_read(&mut io, &mut cx), 7);
        // The answer is held once, and the task is queued again so that it is not lost...
        assert!(poll_write(&mut io, &mut cx, b"b").is_pending());
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        // ... and goes out on the next turn.
        assert!(matches!(
            poll_write(&mut io, &mut cx, b"b"),
            Poll::Ready(Ok(1))
        ));
        // The rest of the same answer is not held again.
        assert!(matches!(
            poll_write(&mut io, &mut cx, b"c"),
            Poll::Ready(Ok(1))
        ));
        let mut got = [0u8; 3];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abc");
    }

    #[tokio::test]
    async fn a_pipelining_client_cannot_keep_its_answers_waiting() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut io = BatchedWrites::new(ours);
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);

        theirs.write_all(b"first").await.unwrap();
        assert_eq!(poll_read(&mut io, &mut cx), 5);
        assert!(poll_write(&mut io, &mut cx, b"1").is_pending());
        // More arrives while the answer is held: the held answer still goes out on the next write.
        theirs.write_all(b"second").await.unwrap();
        assert_eq!(poll_read(&mut io, &mut cx), 6);
        assert!(matches!(
            poll_write(&mut io, &mut cx, b"1"),
            Poll::Ready(Ok(1))
        ));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    }

    /// A worker that keeps answering without ever parking: an answer held when its batch is older than
    /// [`MAX_HOLD`] lets the whole batch go at once, without waiting for the watchdog.
    #[test]
    fn an_answer_joining_a_batch_older_than_max_hold_releases_it() {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // This thread counts as a worker whose park hook releases (it never parks here).
        on_thread_start();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        // The watchdog may release between the two holds (it ticks every WATCHDOG_TICK, longer than the wait
        // here); a try it interfered with is not counted.
        for _ in 0..20 {
            let (a, mut client_a) = tokio::io::duplex(1024);
            let (b, mut client_b) = tokio::io::duplex(1024);
            let (mut a, mut b) = (BatchedWrites::new(a), BatchedWrites::new(b));
            runtime.block_on(async {
                client_a.write_all(b"request").await.unwrap();
                client_b.write_all(b"request").await.unwrap();
            });
            assert_eq!(poll_read(&mut a, &mut cx), 7);
            assert_eq!(poll_read(&mut b, &mut cx), 7);
            release();
            let before = RELEASES.load(Ordering::Acquire);
            let woken = counter.0.load(Ordering::SeqCst);
            assert!(poll_write(&mut a, &mut cx, b"answer").is_pending());
            std::thread::sleep(MAX_HOLD * 2);
            if RELEASES.load(Ordering::Acquire) != before {
                continue;
            }
            // The batch is older than MAX_HOLD: b's answer goes out now, and a's is released with it.
            assert!(
                matches!(poll_write(&mut b, &mut cx, b"answer"), Poll::Ready(Ok(6))),
                "the answer joined a batch older than MAX_HOLD and was held"
            );
            assert_eq!(RELEASES.load(Ordering::Acquire), before + 1);
            assert_eq!(counter.0.load(Ordering::SeqCst), woken + 1);
            assert!(matches!(
                poll_write(&mut a, &mut cx, b"answer"),
                Poll::Ready(Ok(6))
            ));
            RELEASES_ON_PARK.with(|on| on.set(false));
            return;
        }
        panic!("the watchdog released during every try");
    }

    /// Held answers are process-wide: the tests that hold them run one at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A runtime of one worker thread that releases held answers when it parks, like the server's.
    fn releasing_runtime() -> tokio::runtime::Runtime {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        crate::runtime::on_runtime(builder.worker_threads(1).enable_all())
            .build()
            .unwrap()
    }

    /// Runs a client on a thread and runtime of its own: its timers must not wait for a worker kept busy.
    fn on_a_thread_of_its_own<T: Send + 'static>(
        client: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(client)
        })
        .join()
        .unwrap()
    }

    /// Reads one answer, or fails the test after 5 s (a held answer that never leaves).
    async fn answer(client: &mut tokio::io::DuplexStream) {
        let mut answer = [0u8; 6];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_exact(&mut answer),
        )
        .await
        .expect("the answer left within 5 s")
        .unwrap();
    }

    /// Shared between tasks: when something happened.
    type When = Arc<std::sync::Mutex<Option<std::time::Instant>>>;

    fn when(at: &When) -> Option<std::time::Instant> {
        *at.lock().unwrap()
    }

    #[test]
    fn an_answer_waits_until_the_worker_has_nothing_else_to_run() {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let runtime = releasing_runtime();
        let (a, mut client_a) = tokio::io::duplex(1024);
        let (written, other_done) = (When::default(), When::default());
        runtime.spawn({
            let (written, other_done) = (written.clone(), other_done.clone());
            async move {
                let mut io = BatchedWrites::new(a);
                let mut request = [0u8; 7];
                io.read_exact(&mut request).await.unwrap();
                // Other work becomes runnable before the answer is written: a task that needs many turns.
                tokio::spawn(async move {
                    for _ in 0..100 {
                        tokio::task::yield_now().await;
                    }
                    *other_done.lock().unwrap() = Some(std::time::Instant::now());
                });
                io.write_all(b"answer").await.unwrap();
                *written.lock().unwrap() = Some(std::time::Instant::now());
            }
        });
        on_a_thread_of_its_own(async move {
            client_a.write_all(b"request").await.unwrap();
            answer(&mut client_a).await;
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while (when(&other_done).is_none() || when(&written).is_none())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Both instants are taken on the one worker thread. Held for one turn only, the answer left after the other
        // task's first turn, long before its hundredth.
        let written = when(&written).expect("the answer was written");
        let other_done = when(&other_done).expect("the other task ended");
        assert!(
            written > other_done,
            "the answer was written while other work was runnable"
        );
    }

    #[test]
    fn a_worker_that_never_goes_idle_holds_an_answer_at_most_max_hold() {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let runtime = releasing_runtime();
        let (a, mut client_a) = tokio::io::duplex(1024);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Always runnable: the worker never parks while this runs.
        let busy = runtime.spawn({
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::SeqCst) {
                    tokio::task::yield_now().await;
                }
            }
        });
        runtime.spawn(async move {
            let mut io = BatchedWrites::new(a);
            let mut request = [0u8; 7];
            io.read_exact(&mut request).await.unwrap();
            io.write_all(b"answer").await.unwrap();
        });
        let waited = on_a_thread_of_its_own(async move {
            let sent = std::time::Instant::now();
            client_a.write_all(b"request").await.unwrap();
            let mut answer = [0u8; 6];
            let answered = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client_a.read_exact(&mut answer),
            )
            .await;
            (answered.is_ok(), sent.elapsed())
        });
        stop.store(true, Ordering::SeqCst);
        runtime.block_on(busy).unwrap();
        assert!(waited.0, "the answer never left while the worker was busy");
        assert!(
            waited.1 < std::time::Duration::from_millis(250),
            "the answer waited {:?} for a worker that never went idle",
            waited.1
        );
    }
}
