//! The HTTP server: one listener carrying the AWS API (`POST /`), the web application's JSON API and the
//! mail-server verification endpoint.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;

use crate::context::{Limits, RequestId, RequestTimeout, Shared};
use crate::http1::Endpoint;
use crate::protocol;
use crate::touches;

/// The whole HTTP surface. Exposed so tests can drive it without a socket.
pub fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/", post(protocol::handle))
        .merge(crate::web::routes())
        .merge(crate::admin::routes());
    let router = if shared.test_api {
        // Every test-API route goes through the guard: JSON only, own origin only, loopback or allowed Host only.
        let guard = axum::middleware::from_fn_with_state(shared.clone(), crate::guard::test_api);
        router.merge(crate::admin::test_routes().route_layer(guard))
    } else {
        router
    };
    router
        .fallback(crate::context::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            request_context,
        ))
        .with_state(shared)
}

/// Gives every request an id and its client address ([`crate::client::ClientAddr`]: forwarding headers count
/// only from trusted proxies), runs it inside a tracing span carrying both (so every log line it causes names
/// them), and puts the id in `x-amzn-RequestId` on every response, including those no handler made (404, 405).
///
/// It also writes the request's one access-log record (target `workmail_pat::access`, DEBUG, or INFO with
/// `--access-log`): method, path (never the query string, which could carry anything), AWS operation, status, the
/// error's `__type`, duration and bytes in and out. Nothing else about the request is logged here: headers and
/// bodies carry passwords, tokens and signatures.
///
/// The two hot endpoints, the AWS API and `/auth/v1/verify`, get the same context from [`serve_direct`] without
/// going through the router ([`in_context`] is the one implementation).
async fn request_context(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let timeout = request
        .extensions()
        .get::<RequestTimeout>()
        .map_or(std::time::Duration::from_secs(30), |t| t.0);
    in_context(&shared, request, peer, timeout, |mut request, id, addr| {
        request
            .extensions_mut()
            .insert(RequestId(id.as_str().to_owned()));
        if let Some(addr) = addr {
            request.extensions_mut().insert(addr);
        }
        async move {
            let response = next.run(request).await;
            let operation = response
                .extensions()
                .get::<crate::protocol::OperationName>()
                .map(|o| o.0);
            (response, operation)
        }
    })
    .await
}

/// A request id (a v4 UUID, hyphenated, lower case) kept on the stack.
#[derive(Clone, Copy)]
struct RequestIdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl RequestIdText {
    fn new() -> Self {
        // From the thread's CSPRNG rather than `Uuid::new_v4` (a `getrandom` system call per request).
        let random: [u8; 16] = rand::Rng::r#gen(&mut rand::thread_rng());
        let id = uuid::Builder::from_random_bytes(random).into_uuid();
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text);
        Self(text)
    }

    fn as_str(&self) -> &str {
        // encode_lower writes ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// What [`request_context`] does, around `inner`, which gets the request, its id and its client address and
/// answers with the response and the AWS operation it served (if any).
async fn in_context<B, F, Fut>(
    shared: &Shared,
    request: axum::http::Request<B>,
    peer: Option<std::net::SocketAddr>,
    timeout: std::time::Duration,
    inner: F,
) -> axum::response::Response
where
    F: FnOnce(axum::http::Request<B>, RequestIdText, Option<crate::client::ClientAddr>) -> Fut,
    Fut: Future<Output = (axum::response::Response, Option<&'static str>)>,
{
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = RequestIdText::new();
    let addr = peer.map(|p| {
        crate::client::resolve(
            p.ip(),
            request.headers(),
            &shared.app.settings.trusted_proxies,
        )
    });
    let peer = crate::client::LoggedIp(addr.map(|a| a.client));
    let access_at_info = shared.app.settings.access_log;
    let access_enabled = if access_at_info {
        tracing::enabled!(target: "workmail_pat::access", tracing::Level::INFO)
    } else {
        tracing::enabled!(target: "workmail_pat::access", tracing::Level::DEBUG)
    };
    let method = access_enabled.then(|| request.method().clone());
    let path = access_enabled.then(|| request.uri().path().to_owned());
    let bytes_in = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Only the fields every line a request causes must carry (README): the fmt layer formats a span's fields into
    // a string when the span is made, ~1,100 instructions a field, for every request (issue 14); the method and the
    // path are in the request's access record.
    let span = tracing::info_span!("request", request_id = %id.as_str(), client_ip = %peer);
    let (mut response, operation) =
        match tokio::time::timeout(timeout, inner(request, id, addr).instrument(span)).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(request_id = %id.as_str(), client_ip = %peer, "request timed out");
                let response = crate::protocol::encode_error(
                    &crate::error::ServiceError::new(
                        crate::error::ErrorCode::RequestTimeoutException,
                        "The request was not completed in time",
                    ),
                    id.as_str(),
                );
                (response, None)
            }
        };
    if !response
        .headers()
        .contains_key(&protocol::X_AMZN_REQUEST_ID)
        && let Ok(v) = axum::http::HeaderValue::from_str(id.as_str())
    {
        response
            .headers_mut()
            .insert(protocol::X_AMZN_REQUEST_ID, v);
    }
    if !access_enabled {
        return response;
    }
    let error_type;
    (response, error_type) = error_type_of(response).await;
    let bytes_out = axum::body::HttpBody::size_hint(response.body()).exact();
    // One record, outside the request span, so the line stands alone (its id and address are fields of its own).
    macro_rules! access_record {
        ($level:expr) => {
            tracing::event!(
                target: "workmail_pat::access",
                $level,
                request_id = %id.as_str(),
                client_ip = %peer,
                method = %method.as_ref().map_or("", |m| m.as_str()),
                path = path.as_deref().unwrap_or(""),
                operation,
                status = response.status().as_u16(),
                error_type = error_type.as_deref(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                bytes_in,
                bytes_out,
                "request"
            )
        };
    }
    if access_at_info {
        access_record!(tracing::Level::INFO);
    } else {
        access_record!(tracing::Level::DEBUG);
    }
    response
}

/// The endpoints served without the router ([`Endpoint`]: the AWS API and `/auth/v1/verify`, the two whose
/// per-request cost issue 14 measures), for a request hyper parsed. The router maps the same requests to the same
/// handlers (tests drive it directly); here they skip its boxed services, route lookup and request extensions.
fn direct_endpoint<B>(request: &hyper::Request<B>) -> Option<Endpoint> {
    if request.method() != axum::http::Method::POST {
        return None;
    }
    Endpoint::of(request.uri().path())
}

/// Serves an [`Endpoint`] inside the same [`in_context`] as every routed request.
async fn serve_direct<B>(
    shared: Arc<Shared>,
    which: Endpoint,
    request: hyper::Request<B>,
    peer: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> axum::response::Response
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let state = shared.clone();
    in_context(
        &shared,
        request,
        Some(peer),
        timeout,
        move |request, id, addr| async move {
            match which {
                Endpoint::AwsApi => {
                    let client = addr.map(|a| a.client);
                    let (response, operation) =
                        protocol::serve(&state, request, id.as_str(), client).await;
                    (response, Some(operation))
                }
                Endpoint::Verify => {
                    let mut request = request.map(axum::body::Body::new);
                    if let Some(addr) = addr {
                        request.extensions_mut().insert(addr);
                    }
                    let response = crate::web::verify(axum::extract::State(state), request).await;
                    (response, None)
                }
            }
        },
    )
    .await
}

/// A connection of the main listener while [`crate::http1`] serves it: its requests go to [`serve_direct`], counted
/// busy like hyper's; it closes when idle and shed, or when the server stops.
struct HotConnection {
    shared: Arc<Shared>,
    state: Arc<crate::connections::ConnectionState>,
    stop: tokio::sync::watch::Receiver<bool>,
    peer: std::net::SocketAddr,
    timeout: std::time::Duration,
}

impl crate::http1::Service for HotConnection {
    fn serve(
        &self,
        endpoint: Endpoint,
        request: hyper::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> impl Future<Output = axum::response::Response> + Send {
        let busy = self.state.busy();
        let shared = self.shared.clone();
        let (peer, timeout) = (self.peer, self.timeout);
        async move {
            let _busy = busy;
            serve_direct(shared, endpoint, request, peer, timeout).await
        }
    }

    fn closing(&mut self) -> impl Future<Output = ()> + Send {
        let state = &self.state;
        let stop = &mut self.stop;
        async move {
            tokio::select! {
                () = state.shed_requested() => {},
                _ = stop.wait_for(|stop| *stop) => {},
            }
        }
    }

    fn should_close(&self) -> bool {
        *self.stop.borrow()
    }
}

/// The `__type` of an error response, for the access log: from `X-Amzn-ErrorType` (the AWS API), else from the
/// small JSON error body of the web, verification and test APIs, which is read and put back unchanged.
async fn error_type_of(
    response: axum::response::Response,
) -> (axum::response::Response, Option<String>) {
    const MAX_ERROR_BODY: u64 = 16 * 1024;
    if response.status().as_u16() < 400 {
        return (response, None);
    }
    if let Some(kind) = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
    {
        let kind = kind.split(':').next().unwrap_or(kind).to_owned();
        return (response, Some(kind));
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let small = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .is_some_and(|n| n <= MAX_ERROR_BODY);
    if !is_json || !small {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    // The size is known and small, and the body is already in memory: collecting it cannot wait on anyone.
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY as usize).await else {
        return (
            axum::response::Response::from_parts(parts, axum::body::Body::empty()),
            None,
        );
    };
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: String,
    }
    let kind = serde_json::from_slice::<ErrorBody>(&bytes)
        .ok()
        .map(|b| b.kind);
    (
        axum::response::Response::from_parts(parts, axum::body::Body::from(bytes)),
        kind,
    )
}

/// A listening socket whose backlog holds `backlog` connections (the kernel caps it at `net.core.somaxconn`).
///
/// `TcpListener::bind` listens with a backlog of 128: a burst of more clients than that at one instant (a sign-in
/// flood, a fleet of mail servers reconnecting after a restart) overflowed it, and the kernel dropped their SYNs or,
/// with SYN cookies, reset them. The server's own limits (`--max-connections`, per client, idle shedding) decide who
/// is served; the backlog is sized so that it is never the one deciding first.
pub fn listen(addr: std::net::SocketAddr, backlog: usize) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does: a restarted server can listen again while its old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(backlog).unwrap_or(u32::MAX))
}

/// While the server waits for a free connection slot, how often it looks again for idle connections to close.
const SHED_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish (for at most
/// `limits.shutdown_timeout`) and closes the store cleanly.
///
/// The connection loop is hyper's own rather than `axum::serve`, because the limits must be set on the HTTP/1
/// connection itself: header size and count, the header-read timeout, and the number of connections (in all and
/// per client, with idle connections shed near the cap: [`crate::connections`]).
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = shared.app.store.clone();
    let limits = shared.limits.clone();
    let (stop_flusher, stopped) = tokio::sync::oneshot::channel();
    let flusher = tokio::spawn(flush_touches(shared.clone(), stopped));
    serve_app(
        listener,
        router(shared.clone()),
        Some(shared.clone()),
        limits,
        shutdown,
    )
    .await;
    // The flusher finishes the write it may be in (never cut off mid-batch), then the last queued uses of tokens are
    // written before the store closes.
    let _ = stop_flusher.send(());
    let _ = flusher.await;
    if let Err(e) = touches_flush(&shared).await {
        tracing::error!(error = %e, "writing the last DateLastUsed updates failed");
    }
    // Always, even when the deadline cut requests off: for SQLite this is the WAL checkpoint.
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    Ok(())
}

/// Writes queued token uses (`DateLastUsed`) every [`touches::FLUSH_INTERVAL`] while the server runs.
async fn flush_touches(shared: Arc<Shared>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(touches::FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return,
        }
        if let Err(e) = touches_flush(&shared).await {
            // Queued again by `flush`; the next tick retries.
            tracing::warn!(error = %e, "writing DateLastUsed updates failed; retrying");
        }
    }
}

async fn touches_flush(shared: &Shared) -> Result<usize, crate::store::StoreError> {
    let app = &shared.app;
    app.touches
        .flush(app.store.as_ref(), app.settings.last_used_interval_ms)
        .await
}

/// The `--metrics-listen` listener: `/metrics` and health only, for whoever can reach it (the operator chose the
/// address), with the same connection limits as the main listener. It leaves the store open; the main listener
/// closes it.
pub async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = shared.limits.clone();
    let app = Router::new()
        .merge(crate::admin::metrics_routes())
        .fallback(crate::context::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            request_context,
        ))
        .with_state(shared);
    serve_app(listener, app, None, limits, shutdown).await;
}

/// The connection loop shared by both listeners: serves `app` until `shutdown` completes, then lets in-flight
/// requests finish for at most `limits.shutdown_timeout`. With `direct` (the main listener), the [`Endpoint`]s
/// endpoints are served without the router.
async fn serve_app(
    listener: TcpListener,
    app: Router,
    direct: Option<Arc<Shared>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let registry = crate::connections::Connections::new(
        limits.max_connections,
        limits.max_connections_per_ip,
        limits.uncapped_peers.clone(),
    );
    // Tells every connection to finish its request in progress and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut shutdown = std::pin::pin!(shutdown);
    'serve: loop {
        // At the cap, wait for a slot; meanwhile connections that turn idle are shed, so the wait stays short.
        let permit = loop {
            registry.shed_idle();
            tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => break 'serve,
                },
                () = tokio::time::sleep(SHED_RECHECK) => {},
                () = &mut shutdown => break 'serve,
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = registry.admit(&peer) else {
            // Over its client's cap: a short answer if the socket takes it now (it always can: nothing was
            // written yet), then close. Not logged one by one: a flood would flood the log.
            let _ = stream.try_write(crate::connections::OVER_CAP_RESPONSE);
            metrics::counter!("workmail_pat_connections_refused_total").increment(1);
            drop(permit);
            continue;
        };
        registry.shed_idle();
        let _ = stream.set_nodelay(true);
        let timeout = RequestTimeout(limits.request_timeout);
        let state = slot.state.clone();
        let app = app.clone();
        let direct = direct.clone();
        let direct_served = direct.clone();
        let service =
            tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                // Counted from the moment hyper hands the request over, so the shedder never sees it idle.
                let busy = state.busy();
                let fast = direct
                    .as_ref()
                    .and_then(|shared| Some((shared.clone(), direct_endpoint(&request)?)));
                let app = fast.is_none().then(|| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request.extensions_mut().insert(timeout);
                    app.clone()
                });
                async move {
                    let _busy = busy;
                    match (fast, app) {
                        (Some((shared, which)), _) => {
                            Ok(serve_direct(shared, which, request, peer, timeout.0).await)
                        }
                        (None, Some(app)) => app.oneshot(request).await,
                        // `app` is set whenever `fast` is not.
                        (None, None) => Ok(crate::context::not_found().await.into_response()),
                    }
                }
            });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let hot_limits = crate::http1::Limits {
            max_header_bytes: limits.max_header_bytes,
            max_headers: limits.max_headers,
            max_body_bytes: limits.max_body_bytes,
            idle_timeout: limits.header_read_timeout,
        };
        tokio::spawn(async move {
            let io = crate::batched_writes::BatchedWrites::new(stream);
            let handoff = match direct_served {
                Some(shared) => {
                    let mut hot = HotConnection {
                        shared,
                        state: slot.state.clone(),
                        stop: stop.clone(),
                        peer,
                        timeout: timeout.0,
                    };
                    match crate::http1::serve(io, hot_limits, &mut hot).await {
                        crate::http1::Ending::Closed => return,
                        crate::http1::Ending::Handoff(handoff) => handoff,
                    }
                }
                None => crate::http1::Handoff::new(io),
            };
            let connection = builder
                .serve_connection(TokioIo::new(crate::http1::Rewind::from(handoff)), service);
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = connection.as_mut() => break,
                    () = slot.state.shed_requested(), if !closing => {},
                    _ = stop.wait_for(|stop| *stop), if !closing => {},
                }
                // Asked to close. A connection that never handed over a request has no answer to lose: close it
                // now (hyper would otherwise wait for a first request). Otherwise hyper closes it at once if idle,
                // or after the response in progress.
                if !slot.state.ever_used() {
                    break;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection gives its permit back when it ends: holding all of them means all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => {},
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!("in-flight requests did not finish within the shutdown deadline");
        }
    }
}
