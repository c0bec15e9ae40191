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
//! for 100 of its ticks. A runtime without the hook (tests) writes every answer at once. A pipelining client cannot
//! keep its answers waiting: what it asks for meanwhile joins the batch already held.
//!
//! A held answer of at most [`MAX_COPIED`] bytes is not a write the task waits on: its bytes are copied into the
//! connection's [`Outgoing`] queue, hyper is told they were written (and flushed), and the release writes them to the
//! socket itself. Holding by answering `Pending` cost every request a second poll of its connection (a wake-up,
//! hyper's dispatcher and the write path again): callgrind 133,932 -> 131,459 instructions for a page of 10, 119,374
//! -> 116,746 for metadata, 99,961 -> 97,334 for verify; natively 47,567 -> 51,012 pages of 10 a second (medians of
//! three alternated `workmail-pat-bench --tokens 100000 --seconds 4` runs each). A larger answer (a page of 100) still
//! waits: copying it cost more than the second poll. Only when the socket does not take everything (its send buffer
//! is full) does the release wake the task, which then writes the rest like any write, waiting for the socket to be
//! writable. A connection whose task ended keeps its queue in the held list until the release has written it, so no
//! answer hyper was told about is lost.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How old a batch may be when another answer joins it: that answer releases the batch instead (see the module's note).
pub const MAX_HOLD: Duration = Duration::from_millis(1);
/// How often the watchdog looks whether held answers saw a release (see the module's note).
pub const WATCHDOG_TICK: Duration = Duration::from_millis(5);
/// The most answers held at once: the one that would make more releases them all.
pub const MAX_HELD: usize = 256;

/// The connections whose answers wait for the next release.
static HELD: Mutex<Vec<Arc<Outgoing>>> = Mutex::new(Vec::new());
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
    static SPARE: Cell<Vec<Arc<Outgoing>>> = const { Cell::new(Vec::new()) };
}

/// Marks the calling thread as a worker of a runtime that calls [`release`] whenever it is about to park (go
/// idle): [`crate::runtime::on_runtime`] runs it on every thread the runtime starts.
pub fn on_thread_start() {
    RELEASES_ON_PARK.with(|on| on.set(true));
}

/// Writes every held answer to its socket. The list is taken under its lock and written after it is let go, from a
/// vector kept per thread so that a release allocates nothing.
pub fn release() {
    let mut held = SPARE.take();
    {
        let mut list = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !list.is_empty() {
            RELEASES.fetch_add(1, Ordering::AcqRel);
            std::mem::swap(&mut *list, &mut held);
        }
    }
    for outgoing in held.drain(..) {
        outgoing.released();
    }
    SPARE.set(held);
}

/// The write side of a connection, shared by its task and the list of held answers.
#[derive(Debug)]
struct Outgoing {
    socket: OwnedWriteHalf,
    queue: Mutex<Queue>,
}

/// What waits to be written on one connection.
#[derive(Debug, Default)]
struct Queue {
    /// Bytes hyper was told were written, in order.
    bytes: Vec<u8>,
    /// Whether the connection is in [`HELD`]: the next release writes `bytes`.
    held: bool,
    /// Whether the task waits for the release to write its answer itself ([`Held::Waiting`]).
    waiting: bool,
    /// The connection's task, woken when a release leaves bytes (or an error) behind.
    task: Option<Waker>,
    /// A write of the release failed: the task's next read or write reports it.
    failed: Option<io::ErrorKind>,
}

impl Outgoing {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes as much of the queue as the socket takes now, without waiting.
    fn write_queued(&self, queue: &mut Queue) {
        let mut written = 0;
        while written < queue.bytes.len() {
            match self.socket.try_write(&queue.bytes[written..]) {
                Ok(0) => {
                    queue.failed = Some(io::ErrorKind::WriteZero);
                    written = queue.bytes.len();
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    queue.failed = Some(e.kind());
                    written = queue.bytes.len();
                }
            }
        }
        queue.bytes.drain(..written);
    }

    /// A release's part: write the queue; what the socket did not take is left to the task, woken for it, like a
    /// task waiting to write.
    fn released(&self) {
        let task = {
            let mut queue = self.lock();
            queue.held = false;
            let waiting = std::mem::take(&mut queue.waiting);
            self.write_queued(&mut queue);
            if waiting || !queue.bytes.is_empty() || queue.failed.is_some() {
                queue.task.take()
            } else {
                None
            }
        };
        if let Some(task) = task {
            task.wake();
        }
    }

    /// The task's part: write whatever is queued and not held, waiting for the socket to take it. Ready once
    /// nothing is left but a held batch (the release writes it).
    fn poll_unqueued(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut queue = self.lock();
                if let Some(kind) = queue.failed.take() {
                    return Poll::Ready(Err(kind.into()));
                }
                if queue.held || queue.bytes.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                self.write_queued(&mut queue);
                if queue.bytes.is_empty() {
                    continue;
                }
            }
            std::task::ready!(self.socket.as_ref().poll_write_ready(cx))?;
        }
    }
}

/// A connection whose answer to each request it read waits for the next release (see the module's note).
#[derive(Debug)]
pub struct BatchedWrites {
    read: OwnedReadHalf,
    out: Arc<Outgoing>,
    /// Bytes arrived since the last answer: the next write is held.
    armed: bool,
}

impl BatchedWrites {
    pub fn new(stream: TcpStream) -> Self {
        let (read, socket) = stream.into_split();
        Self {
            read,
            out: Arc::new(Outgoing {
                socket,
                queue: Mutex::new(Queue::default()),
            }),
            armed: false,
        }
    }

    /// Holds `bufs` for the next release if this write is the answer to a request just read and the batch has
    /// room: copied into the queue when small ([`Held::Copied`]), else by waiting for the release ([`Held::Waiting`]).
    /// `None` when the write is to go out as usual.
    fn hold(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Option<Held> {
        let mut queue = self.out.lock();
        let size: usize = bufs.iter().map(|b| b.len()).sum();
        if queue.held {
            if queue.waiting || queue.bytes.len() + size > MAX_COPIED {
                // Still waiting, or more than the queue may hold (a client pipelining requests for large answers
                // must not make the server copy them all before a release): this write waits for the release. A
                // request read meanwhile does not hold it once more.
                queue.waiting = true;
                self.armed = false;
                remember_task(&mut queue, cx);
                return Some(Held::Waiting);
            }
            // The rest of an answer already held, or the answer to a request pipelined behind it: it goes with it.
            append(&mut queue, bufs, size);
            return Some(Held::Copied(size));
        }
        if !std::mem::take(&mut self.armed)
            || !queue.bytes.is_empty()
            || !RELEASES_ON_PARK.with(Cell::get)
        {
            return None;
        }
        let now = since_start();
        let joined = {
            let mut held = HELD
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.is_empty() {
                BATCH_STARTED.store(now, Ordering::Relaxed);
            }
            let age = now.saturating_sub(BATCH_STARTED.load(Ordering::Relaxed));
            // Full or old: this answer goes now, with the batch.
            let joins = held.len() + 1 < MAX_HELD && age < MAX_HOLD.as_nanos() as u64;
            if joins {
                held.push(self.out.clone());
            }
            joins
        };
        if !joined {
            drop(queue);
            release();
            return None;
        }
        queue.held = true;
        remember_task(&mut queue, cx);
        let held = if size <= MAX_COPIED {
            append(&mut queue, bufs, size);
            Held::Copied(size)
        } else {
            queue.waiting = true;
            Held::Waiting
        };
        drop(queue);
        watchdog::wake();
        Some(held)
    }
}

/// How a write was held.
enum Held {
    /// Copied into the queue: written, as far as the task knows (this many bytes).
    Copied(usize),
    /// The task waits for the release and then writes it itself.
    Waiting,
}

/// The most bytes a connection's queue takes to be held; an answer that would make it more makes its task wait for
/// the release instead. Copying a page of 100 tokens (~25 KiB) cost more than the second poll of its connection that
/// waiting costs (list 100: 28,000 -> 24,000 pages a second copied; callgrind +19,000 instructions a request), while
/// answers of a few KiB gain.
pub const MAX_COPIED: usize = 16 * 1024;

/// Keeps the task's waker in the queue (a clone only when it changed).
fn remember_task(queue: &mut Queue, cx: &Context<'_>) {
    if !queue.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
        queue.task = Some(cx.waker().clone());
    }
}

/// Appends `bufs`, `size` bytes in all, to the queue.
fn append(queue: &mut Queue, bufs: &[io::IoSlice<'_>], size: usize) {
    queue.bytes.reserve(size);
    for buf in bufs {
        queue.bytes.extend_from_slice(buf);
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

impl AsyncRead for BatchedWrites {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Bytes a release left behind go before anything else; waiting for the socket to take them must not keep the
        // next request from being read, so only an error stops the read.
        if let Poll::Ready(Err(e)) = this.out.poll_unqueued(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.read).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.armed = true;
        }
        read
    }
}

impl AsyncWrite for BatchedWrites {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.hold(cx, bufs) {
            Some(Held::Copied(n)) => return Poll::Ready(Ok(n)),
            Some(Held::Waiting) => return Poll::Pending,
            None => {}
        }
        std::task::ready!(this.out.poll_unqueued(cx))?;
        loop {
            std::task::ready!(this.out.socket.as_ref().poll_write_ready(cx))?;
            match this.out.socket.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Ready when nothing is left but a held batch: hyper counts a held answer as flushed, which is what lets it
    /// go on to the next request without a second poll.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().out.poll_unqueued(cx)
    }

    /// Writes everything queued, held or not, then shuts the socket's writing side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        {
            let mut queue = this.out.lock();
            queue.held = false;
            queue.waiting = false;
        }
        std::task::ready!(this.out.poll_unqueued(cx))?;
        Poll::Ready(
            socket2::SockRef::from(this.out.socket.as_ref()).shutdown(std::net::Shutdown::Write),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Held answers are process-wide: the tests that hold them run one at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connected pair over loopback: the server's side (to wrap) and the client's. Made inside the runtime that
    /// will drive the server's side (its socket registers with that runtime's driver).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

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

    /// The server's side of a pair, made on `runtime`, and the client's as a std socket for another thread.
    fn pair_on(runtime: &tokio::runtime::Runtime) -> (TcpStream, std::net::TcpStream) {
        runtime.block_on(async {
            let (server, client) = pair().await;
            (server, client.into_std().unwrap())
        })
    }

    /// A client on its own thread: sends `request`, then reads `n` bytes of answer; the answer and when it arrived.
    async fn ask(client: std::net::TcpStream, request: &[u8], n: usize) -> (Vec<u8>, Instant) {
        let mut client = TcpStream::from_std(client).unwrap();
        client.write_all(request).await.unwrap();
        let mut answer = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut answer))
            .await
            .expect("the answer arrived within 5 s")
            .unwrap();
        (answer, Instant::now())
    }

    #[tokio::test]
    async fn without_the_release_hook_every_answer_goes_out_at_once() {
        let (server, mut client) = pair().await;
        let mut io = BatchedWrites::new(server);
        client.write_all(b"request").await.unwrap();
        let mut request = [0u8; 7];
        io.read_exact(&mut request).await.unwrap();
        io.write_all(b"answer").await.unwrap();
        assert!(
            !io.out.lock().held,
            "a runtime without the hook held an answer"
        );
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
    }

    /// Runs `test` with a connected pair on a current-thread runtime whose thread counts as a releasing worker (it
    /// never parks here: only the test's [`release`] calls and the watchdog release).
    fn on_a_releasing_thread<T, F: std::future::Future<Output = T>>(
        test: impl FnOnce(TcpStream, TcpStream) -> F,
    ) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (server, client) = runtime.block_on(pair());
        on_thread_start();
        let outcome = runtime.block_on(test(server, client));
        RELEASES_ON_PARK.with(|on| on.set(false));
        outcome
    }

    /// The client sends a request and the server's side reads it: its next write is an answer.
    async fn requested(io: &mut BatchedWrites, client: &mut TcpStream) {
        client.write_all(b"request").await.unwrap();
        let mut request = [0u8; 7];
        io.read_exact(&mut request).await.unwrap();
    }

    /// The held answer is counted as written and flushed at once (hyper goes on without a second poll), and the
    /// release, not the task, puts it on the wire, in order with what the same answer wrote after it.
    #[test]
    fn a_held_answer_is_written_by_the_release_without_its_task() {
        let _one = one_at_a_time();
        let (held, nothing_yet, answer) = on_a_releasing_thread(|server, mut client| async move {
            let mut io = BatchedWrites::new(server);
            requested(&mut io, &mut client).await;
            let before = RELEASES.load(Ordering::Acquire);
            io.write_all(b"head ").await.unwrap();
            io.write_all(b"body").await.unwrap();
            io.flush().await.unwrap();
            let held = io.out.lock().held;
            // Loopback delivers during the sending system call: a written answer would be readable now. (The
            // watchdog may have released meanwhile: then the answer may be there.)
            let mut early = [0u8; 1];
            let nothing_yet = matches!(client.try_read(&mut early), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                || RELEASES.load(Ordering::Acquire) != before;
            release();
            let mut answer = [0u8; 9];
            client.read_exact(&mut answer).await.unwrap();
            (held, nothing_yet, answer)
        });
        assert!(held, "the answer to a request just read was not held");
        assert!(
            nothing_yet,
            "a held answer reached the client before the release"
        );
        assert_eq!(&answer, b"head body");
    }

    /// Once the first write after a read went out, the next ones are not held: only answers are.
    #[test]
    fn only_the_first_write_after_a_read_is_held() {
        let _one = one_at_a_time();
        let got = on_a_releasing_thread(|server, mut client| async move {
            let mut io = BatchedWrites::new(server);
            // Nothing read yet: a write goes out at once.
            io.write_all(b"hello").await.unwrap();
            let mut greeting = [0u8; 5];
            client.read_exact(&mut greeting).await.unwrap();
            requested(&mut io, &mut client).await;
            io.write_all(b"answer").await.unwrap();
            release();
            io.write_all(b", more").await.unwrap();
            let mut answer = [0u8; 12];
            client.read_exact(&mut answer).await.unwrap();
            answer
        });
        assert_eq!(&got, b"answer, more");
    }

    /// Answers to pipelined requests join the held one only while the queue stays within [`MAX_COPIED`]: the one
    /// that would make it more waits for the release (the server does not copy a flood of answers), then goes out
    /// after the held ones.
    #[test]
    fn a_held_queue_takes_no_more_than_max_copied() {
        let _one = one_at_a_time();
        let big = vec![b'b'; MAX_COPIED];
        let expected: Vec<u8> = [&b"small"[..], &big[..]].concat();
        let (waited, queued, got) = on_a_releasing_thread(|server, mut client| async move {
            let mut io = BatchedWrites::new(server);
            requested(&mut io, &mut client).await;
            io.write_all(b"small").await.unwrap();
            let first =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut io).poll_write(cx, &big)))
                    .await;
            let queued = io.out.lock().bytes.len();
            release();
            io.write_all(&big).await.unwrap();
            let mut got = vec![0u8; 5 + MAX_COPIED];
            client.read_exact(&mut got).await.unwrap();
            (first.is_pending(), queued, got)
        });
        assert!(
            waited,
            "a write past MAX_COPIED was taken into the held queue"
        );
        assert_eq!(queued, 5, "the queue grew past what was held");
        assert!(
            got == expected,
            "the answers arrived out of order or changed"
        );
    }

    /// The task may end (hyper drops the connection) before the release: the answer still goes out.
    #[test]
    fn an_answer_held_when_its_task_ends_still_goes_out() {
        let _one = one_at_a_time();
        let got = on_a_releasing_thread(|server, mut client| async move {
            let mut io = BatchedWrites::new(server);
            requested(&mut io, &mut client).await;
            io.write_all(b"answer").await.unwrap();
            drop(io);
            release();
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        assert_eq!(got, b"answer", "the answer and then the end of the stream");
    }

    /// Shutting down writes what is held first: a `Connection: close` answer is not cut off.
    #[test]
    fn shutdown_writes_the_held_answer_first() {
        let _one = one_at_a_time();
        let got = on_a_releasing_thread(|server, mut client| async move {
            let mut io = BatchedWrites::new(server);
            requested(&mut io, &mut client).await;
            io.write_all(b"answer").await.unwrap();
            io.shutdown().await.unwrap();
            // Not released, and the task still holds its connection: the bytes and the end of the stream came
            // from the shutdown.
            let mut all = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut all))
                .await
                .expect("the stream ended")
                .unwrap();
            drop(io);
            release();
            all
        });
        assert_eq!(got, b"answer");
    }

    /// An answer larger than [`MAX_COPIED`] (and than the socket takes at once): its task waits for the release,
    /// then writes it as the socket drains; nothing is lost or reordered.
    #[test]
    fn a_large_answer_waits_for_the_release_and_is_written_by_its_task() {
        let _one = one_at_a_time();
        let runtime = releasing_runtime();
        let (server, client) = pair_on(&runtime);
        // Far more than a loopback socket's buffers hold.
        let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let served = runtime.spawn(async move {
            let mut io = BatchedWrites::new(server);
            let mut request = [0u8; 7];
            io.read_exact(&mut request).await.unwrap();
            io.write_all(&big).await.unwrap();
            io.write_all(b"end").await.unwrap();
            io.flush().await.unwrap();
            // Keeps the connection open until the client has everything.
            let mut bye = [0u8; 3];
            io.read_exact(&mut bye).await.unwrap();
        });
        let got = on_a_thread_of_its_own(async move {
            let mut client = TcpStream::from_std(client).unwrap();
            client.write_all(b"request").await.unwrap();
            let mut got = vec![0u8; expected.len() + 3];
            tokio::time::timeout(Duration::from_secs(20), client.read_exact(&mut got))
                .await
                .expect("the whole answer arrived")
                .unwrap();
            client.write_all(b"bye").await.unwrap();
            (
                got[..expected.len()] == expected[..],
                got[expected.len()..].to_vec(),
            )
        });
        runtime.block_on(served).unwrap();
        assert!(got.0, "the large answer arrived changed");
        assert_eq!(got.1, b"end");
    }

    /// The release writes a copied answer into a socket that takes none of it (the client reads nothing yet): the
    /// task is woken, writes it once the socket drains, and the client gets everything, in order.
    #[test]
    fn an_answer_the_release_could_not_write_is_finished_by_its_task() {
        let _one = one_at_a_time();
        let runtime = releasing_runtime();
        let (server, client) = pair_on(&runtime);
        let (filled_tx, filled_rx) = std::sync::mpsc::channel::<usize>();
        runtime.spawn(async move {
            let mut io = BatchedWrites::new(server);
            // Fill the socket's buffers (nothing read yet, so nothing of this is held).
            let filler = [7u8; 64 * 1024];
            let mut filled = 0;
            loop {
                match io.out.socket.try_write(&filler) {
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("filling: {e}"),
                }
            }
            filled_tx.send(filled).unwrap();
            let mut request = [0u8; 7];
            io.read_exact(&mut request).await.unwrap();
            io.write_all(b"the answer").await.unwrap();
            io.flush().await.unwrap();
            let mut bye = [0u8; 3];
            io.read_exact(&mut bye).await.unwrap();
        });
        let filled = filled_rx.recv().unwrap();
        let tail = on_a_thread_of_its_own(async move {
            let mut client = TcpStream::from_std(client).unwrap();
            client.write_all(b"request").await.unwrap();
            // Long enough for the worker to park and release into the full socket.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut got = vec![0u8; filled + 10];
            tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
                .await
                .expect("everything arrived")
                .unwrap();
            client.write_all(b"bye").await.unwrap();
            assert!(
                got[..filled].iter().all(|b| *b == 7),
                "the filler arrived changed"
            );
            got[filled..].to_vec()
        });
        assert_eq!(tail, b"the answer");
    }

    #[test]
    fn an_answer_waits_until_the_worker_has_nothing_else_to_run() {
        let _one = one_at_a_time();
        let runtime = releasing_runtime();
        let (server, client) = pair_on(&runtime);
        let other_done = Arc::new(std::sync::Mutex::new(None::<Instant>));
        runtime.spawn({
            let other_done = other_done.clone();
            async move {
                let mut io = BatchedWrites::new(server);
                let mut request = [0u8; 7];
                io.read_exact(&mut request).await.unwrap();
                // Other work becomes runnable before the answer is written: a task that needs many turns.
                tokio::spawn(async move {
                    for _ in 0..100 {
                        tokio::task::yield_now().await;
                    }
                    *other_done.lock().unwrap() = Some(Instant::now());
                });
                io.write_all(b"answer").await.unwrap();
                io.flush().await.unwrap();
                let mut bye = [0u8; 1];
                let _ = io.read(&mut bye).await;
            }
        });
        let (answer, answered) = on_a_thread_of_its_own(ask(client, b"request", 6));
        assert_eq!(&answer, b"answer");
        let other_done = other_done
            .lock()
            .unwrap()
            .expect("the other task ended before the answer arrived");
        // The answer left only when the worker ran out of work: after the other task's hundredth turn.
        assert!(
            answered > other_done,
            "the answer arrived while other work was runnable"
        );
    }

    #[test]
    fn a_worker_that_never_goes_idle_holds_an_answer_at_most_max_hold() {
        let _one = one_at_a_time();
        let runtime = releasing_runtime();
        let (server, client) = pair_on(&runtime);
        let stop = Arc::new(AtomicBool::new(false));
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
            let mut io = BatchedWrites::new(server);
            let mut request = [0u8; 7];
            io.read_exact(&mut request).await.unwrap();
            io.write_all(b"answer").await.unwrap();
            let mut bye = [0u8; 1];
            let _ = io.read(&mut bye).await;
        });
        let sent = Instant::now();
        let (answer, answered) = on_a_thread_of_its_own(ask(client, b"request", 6));
        stop.store(true, Ordering::SeqCst);
        runtime.block_on(busy).unwrap();
        assert_eq!(&answer, b"answer");
        let waited = answered - sent;
        assert!(
            waited < Duration::from_millis(250),
            "the answer waited {waited:?} for a worker that never went idle"
        );
    }

    /// A worker that keeps answering without ever parking: an answer held when its batch is older than
    /// [`MAX_HOLD`] lets the whole batch go at once, without waiting for the watchdog.
    #[test]
    fn an_answer_joining_a_batch_older_than_max_hold_releases_it() {
        let _one = one_at_a_time();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        on_thread_start();
        // The watchdog may release between the two holds (it ticks every WATCHDOG_TICK, longer than the wait
        // here); a try it interfered with is not counted.
        for _ in 0..20 {
            let outcome = runtime.block_on(async {
                let ((a, mut client_a), (b, mut client_b)) = (pair().await, pair().await);
                let (mut a, mut b) = (BatchedWrites::new(a), BatchedWrites::new(b));
                client_a.write_all(b"request").await.unwrap();
                client_b.write_all(b"request").await.unwrap();
                let mut request = [0u8; 7];
                a.read_exact(&mut request).await.unwrap();
                b.read_exact(&mut request).await.unwrap();
                release();
                let before = RELEASES.load(Ordering::Acquire);
                a.write_all(b"answer").await.unwrap();
                std::thread::sleep(MAX_HOLD * 2);
                if RELEASES.load(Ordering::Acquire) != before {
                    return None;
                }
                // The batch is older than MAX_HOLD: b's answer goes out now, and a's is released with it.
                b.write_all(b"answer").await.unwrap();
                let released = RELEASES.load(Ordering::Acquire) == before + 1;
                let b_held = b.out.lock().held;
                let mut answer = [0u8; 6];
                client_a.read_exact(&mut answer).await.unwrap();
                client_b.read_exact(&mut answer).await.unwrap();
                Some((released, b_held))
            });
            let Some((released, b_held)) = outcome else {
                continue;
            };
            RELEASES_ON_PARK.with(|on| on.set(false));
            assert!(released, "the old batch was not released");
            assert!(
                !b_held,
                "the answer joined a batch older than MAX_HOLD and was held"
            );
            return;
        }
        RELEASES_ON_PARK.with(|on| on.set(false));
        panic!("the watchdog released during every try");
    }
}
