//! HTTP/1.1 for the two endpoints whose per-request cost issue 14 measures, without hyper (issue 14).
//!
//! A connection starts here. A request is served here when it is simple: `POST /` or `POST /auth/v1/verify`,
//! HTTP/1.1, its head and its whole body (sized by one `Content-Length`) already read, no `Transfer-Encoding`,
//! `Expect`, `Upgrade` or `Connection` other than `keep-alive`, within the head, header-count and body limits.
//! Anything else (another path, a chunked or trickled request, a head split across reads, bytes this parser does
//! not accept) hands the connection to hyper for the rest of its life, with the bytes read so far ([`Handoff`]), so
//! every rule hyper applies (errors, `100 Continue`, chunked bodies, timeouts, `Connection: close`) still holds
//! unchanged for those requests. What this path saves is hyper's dispatcher around every request: its state
//! machine, the body channel, the header-read timer re-armed per request, and the response's trip back through it
//! (natively ~15 % of a 10-per-page list's time, `perf record`: docs/PERFORMANCE.md).
//!
//! Parsing is `httparse`'s, the parser hyper itself uses; header values become slices of the request's one buffer
//! (no copy), as in hyper. Answers are encoded here (status line, the handler's headers, `date` and
//! `content-length`) and written through [`crate::batched_writes`] like hyper's.
//!
//! A connection idle for the header-read timeout is closed (hyper's rule: its timer runs from the moment it waits
//! for a head). A request's own time is the handler's business (the request context's timeout).

use std::future::Future;
use std::time::{Duration, Instant};

use axum::http::{self, HeaderName, HeaderValue, Method, Request, Uri, Version};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The endpoints served here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /`: the AWS API.
    AwsApi,
    /// `POST /auth/v1/verify`: token verification for mail servers.
    Verify,
}

impl Endpoint {
    /// The endpoint a request path names, if it is one of these.
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/" => Some(Endpoint::AwsApi),
            "/auth/v1/verify" => Some(Endpoint::Verify),
            _ => None,
        }
    }

    fn uri(self) -> Uri {
        match self {
            Endpoint::AwsApi => Uri::from_static("/"),
            Endpoint::Verify => Uri::from_static("/auth/v1/verify"),
        }
    }
}

/// The limits a request must be within to be served here (hyper applies them, with its answers, to the rest).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// An idle connection is closed after this long.
    pub idle_timeout: Duration,
}

/// Most headers parsed here; a request with more goes to hyper, which applies `--max-headers`.
const MAX_PARSED_HEADERS: usize = 64;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// How a connection left this loop.
pub enum Ending<IO> {
    /// Closed: by the client, by an error, idle, shed or stopping. Nothing is left to answer.
    Closed,
    /// The rest of the connection is hyper's.
    Handoff(Handoff<IO>),
}

/// A connection given to hyper: its IO, and the bytes already read from it, which hyper reads first.
pub struct Handoff<IO> {
    io: IO,
    read: Bytes,
}

impl<IO> Handoff<IO> {
    /// A connection nothing was read from yet.
    pub fn new(io: IO) -> Self {
        Self {
            io,
            read: Bytes::new(),
        }
    }
}

/// What the loop serves requests with, and what tells it to close.
pub trait Service {
    /// Answers a simple request to `endpoint`.
    fn serve(
        &self,
        endpoint: Endpoint,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = axum::response::Response> + Send;
    /// Completes when the connection should close once idle (closing an idle connection loses no answer).
    fn closing(&mut self) -> impl Future<Output = ()> + Send;
    /// Whether the connection should close now (asked after each answer).
    fn should_close(&self) -> bool;
}

/// Serves the connection's simple requests with `service` until it closes or a request is not simple (then
/// [`Ending::Handoff`]).
pub async fn serve<IO, S>(mut io: IO, limits: Limits, service: &mut S) -> Ending<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // The answer's head (its body is written from its own buffer).
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut at = header_slots();
    let mut last_active = Instant::now();
    // One timer for the connection's life, re-armed only when it fires: re-arming it per request costs a timer-wheel
    // update each time (hyper's header-read timer does that).
    let idle = tokio::time::sleep(limits.idle_timeout);
    let mut idle = std::pin::pin!(idle);
    loop {
        if buf.is_empty() {
            buf.reserve(READ_CHUNK);
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return close(io).await,
                    Ok(_) => {}
                },
                () = service.closing() => return close(io).await,
                () = &mut idle => {
                    let deadline = last_active + limits.idle_timeout;
                    if Instant::now() >= deadline {
                        return close(io).await;
                    }
                    idle.as_mut().reset(tokio::time::Instant::from_std(deadline));
                    continue;
                }
            }
        }
        let parsed = match parse(&buf, &limits, &mut at) {
            Parse::Simple(parsed) => parsed,
            Parse::Other => {
                return Ending::Handoff(Handoff {
                    io,
                    read: buf.freeze(),
                });
            }
        };
        let bytes = buf.split_to(parsed.head_len + parsed.body_len).freeze();
        let request = match parsed.request(&bytes, &at) {
            Some(request) => request,
            None => {
                // Header bytes `http` refuses (hyper would too, with its own answer): all of it goes to hyper.
                let mut read = BytesMut::with_capacity(bytes.len() + buf.len());
                read.extend_from_slice(&bytes);
                read.extend_from_slice(&buf);
                return Ending::Handoff(Handoff {
                    io,
                    read: read.freeze(),
                });
            }
        };
        drop(bytes);
        let response = service.serve(parsed.endpoint, request).await;
        out.clear();
        let encoded = encode(response, &mut out).await;
        if write_all(&mut io, &out, &encoded.body).await.is_err() || io.flush().await.is_err() {
            return Ending::Closed;
        }
        last_active = Instant::now();
        if encoded.close || service.should_close() {
            return close(io).await;
        }
    }
}

async fn close<IO: AsyncWrite + Unpin>(mut io: IO) -> Ending<IO> {
    let _ = io.shutdown().await;
    Ending::Closed
}

enum Parse {
    Simple(Parsed),
    Other,
}

/// A simple request found at the start of the buffer: where its parts are.
struct Parsed {
    endpoint: Endpoint,
    head_len: usize,
    body_len: usize,
    header_count: usize,
}

/// Where a parsed header's name and value are in the buffer.
type HeaderAt = (std::ops::Range<usize>, std::ops::Range<usize>);

/// Room for the positions of a request's headers, kept for the connection's life.
fn header_slots() -> [HeaderAt; MAX_PARSED_HEADERS] {
    std::array::from_fn(|_| (0..0, 0..0))
}

/// Finds a simple request at the start of `buf` (see the module's note), or says it is not one (or not whole); its
/// headers' positions go to `at`.
fn parse(buf: &[u8], limits: &Limits, at: &mut [HeaderAt; MAX_PARSED_HEADERS]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_PARSED_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) | Err(_) => return Parse::Other,
    };
    if head_len > limits.max_header_bytes
        || request.headers.len() > limits.max_headers
        || request.method != Some("POST")
        || request.version != Some(1)
    {
        return Parse::Other;
    }
    let Some(endpoint) = request.path.and_then(Endpoint::of) else {
        return Parse::Other;
    };
    let mut body_len = None;
    let base = buf.as_ptr() as usize;
    let offset = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        start..start + part.len()
    };
    let mut parsed = Parsed {
        endpoint,
        head_len,
        body_len: 0,
        header_count: request.headers.len(),
    };
    for (slot, header) in at.iter_mut().zip(request.headers.iter()) {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if body_len.is_some() {
                return Parse::Other;
            }
            body_len = Some(match decimal(header.value) {
                Some(n) if n <= limits.max_body_bytes => n,
                _ => return Parse::Other,
            });
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
            || (name.eq_ignore_ascii_case("connection")
                && !header.value.eq_ignore_ascii_case(b"keep-alive"))
        {
            return Parse::Other;
        }
        *slot = (offset(name.as_bytes()), offset(header.value));
    }
    let Some(body_len) = body_len else {
        return Parse::Other;
    };
    if buf.len() - head_len < body_len {
        return Parse::Other;
    }
    parsed.body_len = body_len;
    Parse::Simple(parsed)
}

/// A `Content-Length` value: ASCII digits only, as hyper requires.
fn decimal(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |n, d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

impl Parsed {
    /// The request, its header values and body slices of `bytes` (the head and body this was parsed from); `None`
    /// if `http` refuses a header name or value.
    fn request(&self, bytes: &Bytes, at: &[HeaderAt]) -> Option<Request<Full<Bytes>>> {
        let mut request = Request::new(Full::new(bytes.slice(self.head_len..)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.endpoint.uri();
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        headers.reserve(self.header_count);
        for (name, value) in &at[..self.header_count] {
            let name = header_name(&bytes[name.clone()])?;
            let value = HeaderValue::from_maybe_shared(bytes.slice(value.clone())).ok()?;
            headers.append(name, value);
        }
        Some(request)
    }
}

/// An answer encoded by [`encode`]: its head (and any body but a single buffer) is in the caller's buffer.
struct Encoded {
    /// The body when it is one buffer (written after the head without being copied).
    body: Bytes,
    /// Whether the connection must close after this answer.
    close: bool,
}

/// Writes `head` then `body`, in one system call when the socket takes both.
async fn write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    head: &[u8],
    body: &[u8],
) -> std::io::Result<()> {
    let total = head.len() + body.len();
    let mut written = 0;
    while written < total {
        let n = if written < head.len() {
            let parts = [
                std::io::IoSlice::new(&head[written..]),
                std::io::IoSlice::new(body),
            ];
            io.write_vectored(&parts).await?
        } else {
            io.write(&body[written - head.len()..]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    Ok(())
}

/// The names of the headers every AWS SDK request carries that `http` does not know as standard: made from these
/// constants rather than allocated per request (one allocation a name otherwise).
const SDK_HEADERS: [HeaderName; 7] = [
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-target"),
    HeaderName::from_static("x-amz-content-sha256"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static("x-amz-user-agent"),
    HeaderName::from_static("amz-sdk-invocation-id"),
    HeaderName::from_static("amz-sdk-request"),
];

/// A header name from the request's bytes (`None` if `http` refuses it).
fn header_name(name: &[u8]) -> Option<HeaderName> {
    if let Some(known) = SDK_HEADERS
        .iter()
        .find(|known| known.as_str().as_bytes().eq_ignore_ascii_case(name))
    {
        return Some(known.clone());
    }
    HeaderName::from_bytes(name).ok()
}

/// Encodes `response`: its head into `out`, and its body into `out` too unless it is one buffer.
async fn encode(response: axum::response::Response, out: &mut Vec<u8>) -> Encoded {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut close = false;
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        if name == http::header::CONNECTION {
            close |= value.as_bytes().eq_ignore_ascii_case(b"close");
        }
        has_date |= name == http::header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        date::write(out);
        out.extend_from_slice(b"\r\n");
    }
    // 1xx, 204 and 304 have no body and no length (RFC 9112 §6.3).
    let bodyless = status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    if bodyless {
        out.extend_from_slice(b"\r\n");
        return Encoded {
            body: Bytes::new(),
            close,
        };
    }
    // Every answer of these endpoints is in memory: reading it waits on nothing. It is one buffer in practice, kept
    // as it is (collecting it into a list first was an allocation per answer).
    let mut body = std::pin::pin!(body);
    let mut data = Bytes::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // A body that fails: the client gets an empty answer and the connection closes (hyper would cut it off).
            write_length(out, 0);
            return Encoded {
                body: Bytes::new(),
                close: true,
            };
        };
        if let Ok(more) = frame.into_data() {
            if data.is_empty() {
                data = more;
            } else {
                let mut joined = BytesMut::with_capacity(data.len() + more.len());
                joined.extend_from_slice(&data);
                joined.extend_from_slice(&more);
                data = joined.freeze();
            }
        }
    }
    write_length(out, data.len() as u64);
    Encoded { body: data, close }
}

fn write_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// The `date` header's value, formatted once a second per thread (as hyper does).
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }

    pub(super) fn write(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != second {
                *cached = (second, httpdate::fmt_http_date(now));
            }
            out.extend_from_slice(cached.1.as_bytes());
        });
    }
}

/// A connection's IO with the bytes already read from it put back in front, for hyper ([`Handoff`]).
pub struct Rewind<IO> {
    read: Bytes,
    io: IO,
}

impl<IO> From<Handoff<IO>> for Rewind<IO> {
    fn from(handoff: Handoff<IO>) -> Self {
        Self {
            read: handoff.read,
            io: handoff.io,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 16 * 1024,
        max_headers: 64,
        max_body_bytes: 64 * 1024,
        idle_timeout: Duration::from_secs(30),
    };

    fn request(path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
        let mut text = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        text.into_bytes()
    }

    fn simple(buf: &[u8]) -> Option<Parsed> {
        simple_at(buf).map(|(parsed, _)| parsed)
    }

    fn simple_at(buf: &[u8]) -> Option<(Parsed, [HeaderAt; MAX_PARSED_HEADERS])> {
        let mut at = header_slots();
        match parse(buf, &LIMITS, &mut at) {
            Parse::Simple(parsed) => Some((parsed, at)),
            Parse::Other => None,
        }
    }

    #[test]
    fn a_whole_post_to_either_endpoint_is_simple_and_its_parts_are_found() {
        let body = r#"{"OrganizationId":"m-1"}"#;
        let bytes = request(
            "/",
            &[
                ("Content-Length", &body.len().to_string()),
                ("X-Amz-Target", "WorkMailService.ListOrganizations"),
            ],
            body,
        );
        let (parsed, at) = simple_at(&bytes).expect("simple");
        assert_eq!(parsed.endpoint, Endpoint::AwsApi);
        assert_eq!(parsed.head_len + parsed.body_len, bytes.len());
        let request = parsed.request(&Bytes::from(bytes), &at).expect("request");
        assert_eq!(request.uri(), "/");
        assert_eq!(
            request.headers()["x-amz-target"],
            "WorkMailService.ListOrganizations"
        );
        assert_eq!(request.headers()["host"], "localhost");
        assert_eq!(
            hyper::body::Body::size_hint(request.body()).exact(),
            Some(body.len() as u64)
        );

        let verify = request_bytes_for("/auth/v1/verify");
        assert_eq!(simple(&verify).expect("simple").endpoint, Endpoint::Verify);
    }

    fn request_bytes_for(path: &str) -> Vec<u8> {
        request(path, &[("Content-Length", "2")], "{}")
    }

    #[test]
    fn a_pipelined_request_behind_the_first_is_left_in_the_buffer() {
        let mut bytes = request_bytes_for("/");
        let first = bytes.len();
        bytes.extend_from_slice(&request_bytes_for("/auth/v1/verify"));
        let parsed = simple(&bytes).expect("simple");
        assert_eq!(parsed.head_len + parsed.body_len, first);
    }

    #[test]
    fn what_is_not_simple_goes_to_hyper() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("another path", request_bytes_for("/healthz")),
            ("a query string", request_bytes_for("/?x=1")),
            ("an absolute target", request_bytes_for("http://localhost/")),
            (
                "GET",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ),
            (
                "HTTP/1.0",
                b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ),
            ("no length", request("/", &[], "")),
            (
                "two lengths",
                request(
                    "/",
                    &[("Content-Length", "2"), ("Content-Length", "2")],
                    "{}",
                ),
            ),
            (
                "a signed length",
                request("/", &[("Content-Length", "+2")], "{}"),
            ),
            (
                "a length past usize",
                request("/", &[("Content-Length", "99999999999999999999")], ""),
            ),
            (
                "a body over the limit",
                request("/", &[("Content-Length", "65537")], ""),
            ),
            (
                "chunked",
                request(
                    "/",
                    &[("Content-Length", "2"), ("Transfer-Encoding", "chunked")],
                    "{}",
                ),
            ),
            (
                "Expect",
                request(
                    "/",
                    &[("Content-Length", "2"), ("Expect", "100-continue")],
                    "{}",
                ),
            ),
            (
                "Upgrade",
                request("/", &[("Content-Length", "2"), ("Upgrade", "h2c")], "{}"),
            ),
            (
                "Connection: close",
                request(
                    "/",
                    &[("Content-Length", "2"), ("Connection", "close")],
                    "{}",
                ),
            ),
            (
                "a body not read yet",
                request("/", &[("Content-Length", "3")], "{}"),
            ),
            (
                "a head not read yet",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Len".to_vec(),
            ),
            ("garbage", b"\x00\x01 / HTTP/1.1\r\n\r\n".to_vec()),
            (
                "a head over the limit",
                request(
                    "/",
                    &[("Content-Length", "0"), ("X-Big", &"a".repeat(16 * 1024))],
                    "",
                ),
            ),
            (
                "more headers than parsed here",
                request("/", &vec![("X-A", "1"); MAX_PARSED_HEADERS + 1], ""),
            ),
        ];
        for (what, bytes) in cases {
            assert!(simple(&bytes).is_none(), "{what} was taken as simple");
        }
        let keep_alive = request(
            "/",
            &[("Content-Length", "2"), ("Connection", "Keep-Alive")],
            "{}",
        );
        assert!(
            simple(&keep_alive).is_some(),
            "Connection: keep-alive is simple"
        );
    }

    #[test]
    fn more_headers_than_the_limit_go_to_hyper() {
        let limits = Limits {
            max_headers: 3,
            ..LIMITS
        };
        let bytes = request(
            "/",
            &[("Content-Length", "2"), ("X-A", "1"), ("X-B", "1")],
            "{}",
        );
        assert!(matches!(
            parse(&bytes, &limits, &mut header_slots()),
            Parse::Other
        ));
        let bytes = request("/", &[("Content-Length", "2"), ("X-A", "1")], "{}");
        assert!(matches!(
            parse(&bytes, &limits, &mut header_slots()),
            Parse::Simple(_)
        ));
    }

    #[tokio::test]
    async fn an_answer_has_its_status_headers_date_and_length() {
        let response = axum::response::Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .header("content-length", "999")
            .body(axum::body::Body::from("{\"__type\":\"X\"}"))
            .unwrap();
        let mut out = Vec::new();
        let encoded = encode(response, &mut out).await;
        let head = String::from_utf8(out).unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/x-amz-json-1.1\r\n"));
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(head.ends_with("content-length: 14\r\n\r\n"), "{head}");
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
        assert_eq!(&encoded.body[..], b"{\"__type\":\"X\"}");
        assert!(!encoded.close);

        let empty = axum::response::Response::builder()
            .status(204)
            .header("connection", "close")
            .body(axum::body::Body::empty())
            .unwrap();
        let mut out = Vec::new();
        let encoded = encode(empty, &mut out).await;
        let head = String::from_utf8(out).unwrap();
        assert!(!head.contains("content-length"), "{head}");
        assert!(encoded.close);
    }

    proptest::proptest! {
        /// Whatever the bytes (a valid request with some bytes changed, dropped or added, or anything at all), the
        /// parse never panics, and a request it takes as simple lies within the bytes read and builds (or is
        /// refused) without panicking.
        #[test]
        fn any_bytes_parse_without_panic_and_a_simple_request_stays_within_them(
            edits in proptest::collection::vec((0usize..400, 0u8..3, proptest::num::u8::ANY), 0..6),
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut bytes = request("/", &[("Content-Length", "2"), ("X-Amz-Target", "A.B")], "{}");
            for (at, kind, byte) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            bytes.extend_from_slice(&junk);
            for candidate in [&bytes[..], &junk[..]] {
                if let Some((parsed, at)) = simple_at(candidate) {
                    proptest::prop_assert!(parsed.head_len + parsed.body_len <= candidate.len());
                    let _ = parsed.request(&Bytes::copy_from_slice(candidate), &at);
                }
            }
        }
    }
}
