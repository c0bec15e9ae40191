//! Who the client of a request is. The socket peer is the only address we know for sure; what a request *says*
//! about its client (`X-Forwarded-For`, the `RemoteIp` a mail server reports) is believed only from callers the
//! operator configured as trusted (`--trusted-proxy CIDR`, or a mail server holding the `--verifier-key-file`
//! secret). Everything else would let any caller pick the address its failures are counted against. Likewise the
//! `Host` a request names is only a loopback name or an operator's `--allowed-host` when [`HostPolicy`] says so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::{HeaderMap, Uri, header};

/// One `ADDRESS/PREFIX` block (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 clients) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A client address as log lines show it: empty when unknown. Formatted only when a line is written.
#[derive(Debug, Clone, Copy)]
pub struct LoggedIp(pub Option<IpAddr>);

impl std::fmt::Display for LoggedIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => Ok(()),
        }
    }
}

/// The reverse proxies (and mail servers) whose word about the client's address is believed. Empty by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client's address, as a request extension set once per request by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The socket peer.
    pub peer: IpAddr,
    /// The client as far as it can be trusted: the peer, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub client: IpAddr,
}

impl ClientAddr {
    /// Whether the socket peer is a configured trusted proxy.
    pub fn peer_trusted(&self, trusted: &TrustedProxies) -> bool {
        trusted.contains(self.peer)
    }
}

/// Longest `X-Forwarded-For` chain walked; a longer one is cut at this many hops from our side.
const MAX_FORWARDED_HOPS: usize = 16;

/// Resolves the client of a request from its socket peer and, only when that peer is trusted, its
/// `X-Forwarded-For` header(s). The chain is read from the right (the hop nearest to us) and trusted proxies are
/// skipped; the first address that is not a trusted proxy is the client. Anything unparsable stops the walk at
/// the last hop that could be believed, so a client cannot smuggle an address past the proxy that appended it.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
    let peer = canonical(peer);
    let mut client = peer;
    if trusted.contains(peer) {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !trusted.contains(ip) {
                break;
            }
        }
    }
    ClientAddr { peer, client }
}

/// One `X-Forwarded-For` element: an address, optionally bracketed (IPv6) and with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(canonical)
}

/// Which `Host` names may reach the guarded endpoints.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Names given with `--allowed-host`: lower case, without port or trailing dot.
    allowed: Vec<String>,
    /// Whether the accept-any AWS API checks `Host`: always on a loopback listener; on a network listener (which
    /// needs `--allow-insecure-any-credentials`) only once the operator names the hosts clients use.
    check_aws: bool,
}

impl HostPolicy {
    /// The policy of a listener on `listener_is_loopback` with these `--allowed-host` values; an invalid name is an
    /// error for the command line.
    pub fn new(listener_is_loopback: bool, allowed_hosts: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::with_capacity(allowed_hosts.len());
        for given in allowed_hosts {
            let name = host_name(given.trim())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    format!("--allowed-host {given:?} is not a host name (NAME or NAME:PORT)")
                })?;
            allowed.push(name);
        }
        Ok(Self {
            check_aws: listener_is_loopback || !allowed.is_empty(),
            allowed,
        })
    }

    /// Whether accept-any AWS API requests have their `Host` checked.
    pub fn checks_aws(&self) -> bool {
        self.check_aws
    }

    /// Whether every name the request carries (its `Host` headers and an absolute-form target's authority) is a
    /// loopback name or an allowed host. A request naming no host at all is refused: every HTTP/1.1 client sends
    /// one, and a name we cannot see is a name we cannot trust.
    pub fn allows(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let mut seen = false;
        for value in headers.get_all(header::HOST) {
            seen = true;
            let Ok(text) = value.to_str() else {
                return false;
            };
            if !self.allows_name(text) {
                return false;
            }
        }
        if let Some(authority) = uri.authority() {
            seen = true;
            if !self.allows_name(authority.as_str()) {
                return false;
            }
        }
        seen
    }

    fn allows_name(&self, host_header: &str) -> bool {
        match host_name(host_header.trim()) {
            Some(name) => is_loopback_name(&name) || self.allowed.contains(&name),
            None => false,
        }
    }
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`), lower case and without a trailing
/// dot; `None` when it is not of that shape.
fn host_name(value: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        (
            &value[..inside.len() + 2],
            after
                .strip_prefix(':')
                .or_else(|| after.is_empty().then_some(""))?,
        )
    } else {
        match value.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, p),
            Some(_) => return None,
            None => (value, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// `localhost`, any `127.0.0.0/8` address, or `[::1]`: names DNS cannot point elsewhere.
fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
    }
    name.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        for bad in ["", "10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_are_ignored_from_untrusted_peers() {
        let trusted = TrustedProxies::default();
        let c = resolve(ip("203.0.113.9"), &xff(&["198.51.100.1"]), &trusted);
        assert_eq!(c.client, ip("203.0.113.9"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // The client forged the first element; the proxy appended the address it saw.
        let h = xff(&["1.2.3.4, 198.51.100.7", "10.0.0.3"]);
        let c = resolve(ip("10.0.0.2"), &h, &trusted);
        assert_eq!(c.client, ip("198.51.100.7"));
        assert_eq!(c.peer, ip("10.0.0.2"));
        // Garbage stops the walk at the last believable hop.
        let c = resolve(ip("10.0.0.2"), &xff(&["198.51.100.7, junk"]), &trusted);
        assert_eq!(c.client, ip("10.0.0.2"));
        // No header: the proxy itself.
        let c = resolve(ip("10.0.0.2"), &HeaderMap::new(), &trusted);
        assert_eq!(c.client, ip("10.0.0.2"));
        // Ports and brackets.
        let c = resolve(ip("10.0.0.2"), &xff(&["[2001:db8::1]:443"]), &trusted);
        assert_eq!(c.client, ip("2001:db8::1"));
    }
}
