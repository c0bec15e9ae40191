//! `workmail-pat health --url URL`: asks a running server's `GET /_workmail-pat/health` and exits 0 only on a 200.
//! It exists for the container image's `HEALTHCHECK` (a `FROM scratch` image has no curl or wget), so it is a
//! minimal plain-HTTP client: one request, `Connection: close`, a deadline on the whole exchange.

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/_workmail-pat/health";
/// Enough for the status line; the body is not needed.
const MAX_HEAD: usize = 1024;

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The server's base URL (`http://HOST[:PORT]`; a path, if any, is ignored).
    #[arg(
        long,
        env = "WORKMAIL_PAT_HEALTH_URL",
        default_value = "http://127.0.0.1:4610"
    )]
    pub url: String,
    /// Seconds the whole check may take (resolve, connect, answer).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

pub async fn run(args: HealthArgs) -> Result<(), String> {
    let authority = authority(&args.url)?;
    let status = tokio::time::timeout(Duration::from_secs(args.timeout), get(&authority))
        .await
        .map_err(|_| format!("{}: no answer within {} s", args.url, args.timeout))??;
    if status == 200 {
        println!(
            "healthy: {}{PATH} answered 200",
            args.url.trim_end_matches('/')
        );
        Ok(())
    } else {
        Err(format!(
            "{}{PATH} answered {status}",
            args.url.trim_end_matches('/')
        ))
    }
}

/// `HOST:PORT` of an `http://` URL (port 80 when none is given).
fn authority(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "--url {url:?}: only http:// URLs are supported (the health check speaks plain HTTP)"
        )
    })?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host_port.is_empty() || host_port.contains('@') {
        return Err(format!("--url {url:?} has no host"));
    }
    let has_port = match host_port.rsplit_once(':') {
        // `[v6]` alone has colons inside the brackets only.
        Some((_, port)) => !port.ends_with(']'),
        None => false,
    };
    Ok(if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    })
}

/// Sends the request and returns the answer's status code.
async fn get(authority: &str) -> Result<u16, String> {
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let request = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send to {authority}: {e}"))?;
    let mut head = Vec::with_capacity(MAX_HEAD);
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_HEAD {
        let mut buf = [0u8; 256];
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("cannot read from {authority}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| format!("{authority} did not answer HTTP"))
}

/// The status of an `HTTP/1.x NNN …` status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    let code = parts.next()?;
    (code.len() == 3).then_some(())?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority("http://wmpat:4610").unwrap(), "wmpat:4610");
        assert_eq!(
            authority("http://127.0.0.1:4610/").unwrap(),
            "127.0.0.1:4610"
        );
        assert_eq!(authority("http://localhost").unwrap(), "localhost:80");
        assert_eq!(authority("http://[::1]:4610/x").unwrap(), "[::1]:4610");
        assert_eq!(authority("http://[::1]").unwrap(), "[::1]:80");
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://").is_err());
        assert!(authority("http://user@x:1").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
