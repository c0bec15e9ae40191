//! Answers written in batches across connections (issue 14).
//!
//! When the server is the busy side, every response written at once wakes its client, which then sleeps again until
//! the next one: one cross-CPU wake-up per answer, a fifth of the server's time for a 10-per-page list under load
//! (`perf record`: `sock_def_readable` in `writev`). [`BatchedWrites`] holds the first write after a request arrived
//! back for one turn of the scheduler: the connection's task is queued again behind the tasks already runnable, so
//! the requests that arrived together are all answered before the first answer goes out, and the answers then go
//! out back to back, waking their clients once rather than once each.
//!
//! The hold costs one extra poll of the connection's task and nothing else; an idle server answers as before (its
//! queue is empty, so the task runs again at once). A write is held at most once per request that arrived, so a
//! client that pipelines cannot keep its answers waiting.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where a connection stands between reading a request and writing its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Nothing read since the last write: writes go out at once.
    Off,
    /// Bytes arrived: the next write is held for one turn.
    Armed,
    /// A write was held: the next one goes out, whatever arrives meanwhile.
    Held,
}

/// A connection whose first write after each read waits for one turn of the scheduler.
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

    /// Whether this write waits: the first after a read does, once.
    fn holds(&mut self, cx: &mut Context<'_>) -> bool {
        match self.hold {
            Hold::Armed => {
                self.hold = Hold::Held;
                // Queued again behind the tasks already runnable (a task that wakes itself while it is polled goes
                // to the back of the run queue, not to the front).
                cx.waker().wake_by_ref();
                true
            }
            Hold::Held | Hold::Off => {
                self.hold = Hold::Off;
                false
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
}
