//! Log lines reach stderr in batches (issue 14).
//!
//! Every `/auth/v1/verify` writes an audit line (`token_used`, security.md item 21). tracing-appender's writer
//! thread wrote each line with its own `write` system call and slept between lines, so under load every line also
//! cost a futex wake-up and two context switches on the server's core. Here a request only appends its line to a
//! shared buffer; the writer thread is woken when the buffer turns non-empty, lets lines gather for
//! [`GATHER`], and writes them with one system call.
//!
//! As before, a slow terminal or a full pipe never stalls a request: past [`MAX_BUFFERED`] bytes, lines are
//! dropped (and counted in a line of their own) rather than waited for. Lines are at most [`GATHER`] late, and
//! dropping the [`Guard`] writes what is buffered.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the writer lets lines gather after the first one arrives.
pub const GATHER: Duration = Duration::from_millis(5);

/// Most bytes waiting to be written; lines beyond are dropped.
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves only bytes behind: keep logging.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the log subscriber writes (a [`tracing_subscriber::fmt::MakeWriter`]).
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes what is buffered and stops the writer thread when dropped.
#[must_use = "dropping the guard stops the log writer"]
#[derive(Debug)]
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A writer to `out` and the guard of its thread.
pub fn batched(out: impl Write + Send + 'static) -> (LogWriter, Guard) {
    let shared = Arc::new(Shared::default());
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_batches(&for_thread, out))
        .ok();
    (
        LogWriter {
            shared: shared.clone(),
        },
        Guard { shared, thread },
    )
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closed {
            pending = shared
                .arrived
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if !pending.closed {
            drop(pending);
            std::thread::sleep(GATHER);
            pending = shared.lock();
        }
        std::mem::swap(&mut batch, &mut pending.bytes);
        let dropped = std::mem::take(&mut pending.dropped);
        let closed = pending.closed;
        drop(pending);
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "{dropped} log lines were dropped: the log output was not keeping up"
            );
        }
        // Nowhere to report a failed write to: the next batch tries again.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        if closed {
            return;
        }
    }
}

/// How long dropping the [`Guard`] waits for the last lines to be written: stderr may be a pipe nobody reads any
/// more (a supervisor gone), and a command must still end.
pub const LAST_WRITE: Duration = Duration::from_secs(1);

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.arrived.notify_one();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + LAST_WRITE;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                // Left behind, blocked in its write: the process ends without it.
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = thread.join();
    }
}

/// One log line's writer: the line is appended to the shared buffer as it is written.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.closed {
            // The writer thread has gone (the command is ending): write through.
            drop(pending);
            return std::io::stderr().write(line);
        }
        let was_empty = pending.bytes.is_empty() && pending.dropped == 0;
        if pending.bytes.len() + line.len() > MAX_BUFFERED {
            pending.dropped += 1;
        } else {
            pending.bytes.extend_from_slice(line);
        }
        drop(pending);
        if was_empty {
            self.shared.arrived.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// A `Write` whose calls and bytes the test can see.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(usize, Vec<u8>)>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut r = self.0.lock().unwrap();
            r.0 += 1;
            r.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_written_together_leave_in_one_write_and_in_order() {
        let out = Recorder::default();
        let (writer, guard) = batched(out.clone());
        for i in 0..100 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        std::thread::sleep(GATHER * 10);
        let (writes, bytes) = out.0.lock().unwrap().clone();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        // One write when the 100 lines arrive within GATHER (the usual case); a preempted test thread on a loaded
        // machine may split them over a few, never over anything like one per line.
        assert!(writes <= 3, "{writes} writes for 100 lines");
        drop(guard);
    }

    #[test]
    fn dropping_the_guard_writes_what_is_buffered() {
        let out = Recorder::default();
        let (writer, guard) = batched(out.clone());
        writer.make_writer().write_all(b"last words\n").unwrap();
        drop(guard);
        assert_eq!(out.0.lock().unwrap().1, b"last words\n");
    }

    /// A `Write` that never returns, like a pipe nobody reads.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            loop {
                std::thread::park();
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_the_guard_does_not_wait_for_a_stuck_output_forever() {
        let (writer, guard) = batched(Stuck);
        writer.make_writer().write_all(b"never read\n").unwrap();
        // Let the writer thread take the line and block in the write.
        std::thread::sleep(GATHER * 4);
        let started = std::time::Instant::now();
        drop(guard);
        let waited = started.elapsed();
        assert!(
            waited >= LAST_WRITE && waited < LAST_WRITE * 3,
            "waited {waited:?}"
        );
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_so() {
        let shared = Shared::default();
        let mut line = LineWriter { shared: &shared };
        let big = vec![b'x'; MAX_BUFFERED / 2 + 1];
        line.write_all(&big).unwrap();
        // The second does not fit: dropped, counted, and the request is not kept waiting.
        assert_eq!(line.write(&big).unwrap(), big.len());
        let pending = shared.lock();
        assert_eq!((pending.bytes.len(), pending.dropped), (big.len(), 1));
        drop(pending);
        let out = Recorder::default();
        shared.lock().closed = true;
        write_batches(&shared, out.clone());
        let written = String::from_utf8(out.0.lock().unwrap().1.clone()).unwrap();
        assert!(written.ends_with("1 log lines were dropped: the log output was not keeping up\n"));
    }
}
