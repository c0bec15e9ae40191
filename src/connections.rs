//! Who holds the server's connections: a cap per client address, and shedding of idle connections when the global
//! cap is near (issue 12, defect 8).
//!
//! Without these, one client could open `--max-connections` idle sockets and every other client would wait in the
//! listen backlog until those timed out. Now:
//!
//! - **Per-client cap.** A client address ([`client_key`]: the IPv4 address, or the /64 of an IPv6 address, since
//!   one IPv6 host usually controls a whole /64) holds at most `--max-connections-per-ip` connections; a connection
//!   beyond that is answered `429` with `Connection: close` at once, without reading from it.
//! - **Idle shedding.** When the server holds 90 % of `--max-connections`, the connections that are idle (no
//!   request in progress: fresh connections that have not sent a request yet, keep-alive connections between
//!   requests) are closed, longest idle first, until it holds 80 %. Requests in progress are never cut.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The answer to a connection beyond its client's cap: small enough to fit any socket buffer, so it is written
/// without waiting.
pub const OVER_CAP_RESPONSE: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 83\r\n\
\r\n\
{\"__type\":\"ThrottlingException\",\"Message\":\"Too many connections from this address\"}";

/// The key connections are counted under. Kept in one place so that a trusted reverse proxy can be exempted here
/// later.
pub fn client_key(peer: &SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The live connections of one server.
#[derive(Debug)]
pub struct Connections {
    max_per_client: usize,
    uncapped: crate::client::TrustedProxies,
    /// Shedding starts at this many connections...
    shed_at: usize,
    /// ... and closes idle ones until at most this many remain.
    shed_to: usize,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    per_client: HashMap<IpAddr, usize>,
    live: HashMap<u64, Arc<ConnectionState>>,
    next_id: u64,
}

/// What the registry knows about one connection.
#[derive(Debug)]
pub struct ConnectionState {
    /// Requests handed to the service and not yet answered.
    in_flight: AtomicUsize,
    /// Requests ever handed to the service on this connection.
    started: AtomicU64,
    /// Milliseconds (since the registry's epoch) when the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Set once the connection has been asked to close.
    shedding: AtomicBool,
    shed: tokio::sync::Notify,
    epoch: Instant,
}

impl ConnectionState {
    /// Whether a request was ever handed to the service (if not, closing the socket loses no answer).
    pub fn ever_used(&self) -> bool {
        self.started.load(Ordering::Acquire) > 0
    }

    /// Marks a request as in progress until the returned guard is dropped (call it when the request is handed to
    /// the service, so that a connection is never seen idle while hyper holds a request of it).
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
        Busy {
            state: self.clone(),
        }
    }

    /// Completes when the registry asks this connection to close because it is idle.
    pub async fn shed_requested(&self) {
        self.shed.notified().await;
    }
}

/// Counts one request as in progress on its connection until dropped.
#[derive(Debug)]
pub struct Busy {
    state: Arc<ConnectionState>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = self.state.epoch.elapsed().as_millis() as u64;
        self.state.idle_since_ms.store(ms, Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One admitted connection; unregisters itself when dropped.
#[derive(Debug)]
pub struct Slot {
    registry: Arc<Connections>,
    id: u64,
    client: IpAddr,
    pub state: Arc<ConnectionState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.live.remove(&self.id);
        if let Some(n) = inner.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                inner.per_client.remove(&self.client);
            }
        }
    }
}

impl Connections {
    /// `uncapped`: peers exempt from the per-client cap (the `--trusted-proxy` list: a reverse proxy carries
    /// many clients over its connections; they still count towards the global cap).
    pub fn new(
        max_total: usize,
        max_per_client: usize,
        uncapped: crate::client::TrustedProxies,
    ) -> Arc<Self> {
        let max_total = max_total.max(1);
        Arc::new(Self {
            max_per_client: max_per_client.max(1),
            uncapped,
            shed_at: (max_total * 9 / 10).max(1),
            shed_to: max_total * 8 / 10,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot panic halfway; a poisoned lock still holds consistent counts.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection from `peer`, or `None` when its client already holds its cap.
    pub fn admit(self: &Arc<Self>, peer: &SocketAddr) -> Option<Slot> {
        let client = client_key(peer);
        let mut inner = self.lock();
        let capped = !self.uncapped.contains(peer.ip());
        let count = inner.per_client.entry(client).or_insert(0);
        if capped && *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnectionState {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            shedding: AtomicBool::new(false),
            shed: tokio::sync::Notify::new(),
            epoch: self.epoch,
        });
        inner.live.insert(id, state.clone());
        Some(Slot {
            registry: self.clone(),
            id,
            client,
            state,
        })
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the server holds at least 90 % of its cap, asks the longest-idle connections to close until 80 % would
    /// remain. Returns how many were asked.
    pub fn shed_idle(&self) -> usize {
        let inner = self.lock();
        let live = inner.live.len();
        if live < self.shed_at {
            return 0;
        }
        let already = inner
            .live
            .values()
            .filter(|c| c.shedding.load(Ordering::Acquire))
            .count();
        let wanted = live.saturating_sub(already).saturating_sub(self.shed_to);
        if wanted == 0 {
            return 0;
        }
        let mut idle: Vec<(u64, &Arc<ConnectionState>)> = inner
            .live
            .values()
            .filter(|c| {
                !c.shedding.load(Ordering::Acquire) && c.in_flight.load(Ordering::Acquire) == 0
            })
            .map(|c| (c.idle_since_ms.load(Ordering::Acquire), c))
            .collect();
        idle.sort_unstable_by_key(|(since, _)| *since);
        let mut asked = 0;
        for (_, c) in idle.into_iter().take(wanted) {
            c.shedding.store(true, Ordering::Release);
            c.shed.notify_one();
            asked += 1;
        }
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_as_v4() {
        assert_eq!(
            client_key(&addr("[2001:db8:1:2:3:4:5:6]:1")),
            client_key(&addr("[2001:db8:1:2:ffff::1]:2"))
        );
        assert_ne!(
            client_key(&addr("[2001:db8:1:2::1]:1")),
            client_key(&addr("[2001:db8:1:3::1]:1"))
        );
        assert_eq!(
            client_key(&addr("[::ffff:10.0.0.1]:1")),
            client_key(&addr("10.0.0.1:9"))
        );
        assert_ne!(
            client_key(&addr("10.0.0.1:1")),
            client_key(&addr("10.0.0.2:1"))
        );
    }

    #[test]
    fn the_over_cap_answer_has_a_correct_length() {
        let text = std::str::from_utf8(OVER_CAP_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    #[test]
    fn a_client_is_capped_and_its_slots_come_back() {
        let c = Connections::new(100, 2, Default::default());
        let a = c.admit(&addr("10.0.0.1:1")).unwrap();
        let _b = c.admit(&addr("10.0.0.1:2")).unwrap();
        assert!(c.admit(&addr("10.0.0.1:3")).is_none());
        assert!(c.admit(&addr("10.0.0.2:3")).is_some());
        drop(a);
        assert!(c.admit(&addr("10.0.0.1:4")).is_some());
    }

    #[test]
    fn shedding_picks_idle_connections_oldest_first_and_never_busy_ones() {
        let c = Connections::new(10, 10, Default::default());
        let slots: Vec<Slot> = (0..9)
            .map(|i| c.admit(&addr(&format!("10.0.0.{i}:1"))).unwrap())
            .collect();
        for (i, s) in slots.iter().enumerate() {
            s.state
                .idle_since_ms
                .store(100 - i as u64, Ordering::Release);
        }
        // The oldest idle one (the last) is busy and must be passed over.
        let _busy = slots[8].state.busy();
        // 9 of 10 held: shed down to 8, i.e. one connection, the longest idle that is not busy.
        assert_eq!(c.shed_idle(), 1);
        assert!(slots[7].state.shedding.load(Ordering::Acquire));
        assert!(!slots[8].state.shedding.load(Ordering::Acquire));
        // Asking again does not ask more while the first is still closing.
        assert_eq!(c.shed_idle(), 0);
    }
}
