//! The hot endpoints' own HTTP/1.1 path (`src/http1.rs`) over real sockets against the real binary: simple requests
//! are answered by it, in order when pipelined; whatever it does not serve (split, chunked, `Expect`, other paths,
//! garbage, `Connection: close`, HTTP/1.0) is handed to hyper with the bytes already read and answered as before, on
//! the same connection; an idle connection is closed after the header-read timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use common::*;

/// A signed `POST /` for `operation`, as the bytes a client sends (`extra` headers added after the signed ones).
fn signed(server: &Server, operation: &str, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let req = sign_request(
        &server.host,
        operation,
        body.as_bytes(),
        ACCOUNT,
        "x",
        REGION,
        SystemTime::now(),
    );
    let mut text = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in &req.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        text.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    if extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        bytes.extend_from_slice(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes());
    } else {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// One answer read from `stream`: status, lower-cased headers, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one answer (framed by `content-length`), or `None` at end of stream.
fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).expect("utf-8 head");
            let mut lines = head.split("\r\n");
            let status: u16 = lines.next().expect("status line")[9..12]
                .parse()
                .expect("status");
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').expect("header line");
                    (n.trim().to_ascii_lowercase(), v.trim().to_owned())
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().expect("length"));
            let total = end + 4 + length;
            while pending.len() < total {
                let mut chunk = [0u8; 65536];
                let n = stream.read(&mut chunk).expect("read body");
                assert!(n > 0, "connection closed inside a body");
                pending.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8(pending[end + 4..total].to_vec()).expect("utf-8 body");
            pending.drain(..total);
            return Some(Answer {
                status,
                headers,
                body,
            });
        }
        let mut chunk = [0u8; 65536];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(&server.host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// The aliases in a ListOrganizations answer.
fn aliases(answer: &Answer) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let mut aliases: Vec<String> = body["OrganizationSummaries"]
        .as_array()
        .expect("summaries")
        .iter()
        .map(|o| o["Alias"].as_str().expect("alias").to_owned())
        .collect();
    aliases.sort();
    aliases
}

async fn server_with_orgs(extra: &[&str]) -> (Server, Vec<String>) {
    let server = Server::start_with(extra);
    let client = server.client();
    let mut made = Vec::new();
    for _ in 0..2 {
        let alias = unique("h1");
        create_org(&client, &alias).await;
        made.push(alias);
    }
    made.sort();
    (server, made)
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_simple_requests_are_answered_in_order_with_date_and_length() {
    let (server, orgs) = server_with_orgs(&[]).await;
    let mut stream = connect(&server);
    let mut bytes = signed(&server, "ListOrganizations", "{}", &[]);
    bytes.extend(signed(
        &server,
        "DescribeOrganization",
        r#"{"OrganizationId":"m-00000000000000000000000000000000"}"#,
        &[],
    ));
    bytes.extend(signed(
        &server,
        "ListOrganizations",
        r#"{"MaxResults":1}"#,
        &[],
    ));
    stream.write_all(&bytes).expect("send");
    let mut pending = Vec::new();
    let first = read_answer(&mut stream, &mut pending).expect("first");
    let second = read_answer(&mut stream, &mut pending).expect("second");
    let third = read_answer(&mut stream, &mut pending).expect("third");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(aliases(&first), orgs);
    assert_eq!(second.status, 400, "{second:?}");
    assert_eq!(
        second
            .header("x-amzn-errortype")
            .map(|t| t.split(':').next().unwrap_or(t)),
        Some("OrganizationNotFoundException"),
        "{second:?}"
    );
    assert_eq!(third.status, 200, "{third:?}");
    assert_eq!(aliases(&third).len(), 1);
    for answer in [&first, &second, &third] {
        assert!(answer.header("date").is_some(), "{answer:?}");
        assert!(answer.header("x-amzn-requestid").is_some(), "{answer:?}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
    }
    let ids: std::collections::HashSet<_> = [&first, &second, &third]
        .iter()
        .map(|a| a.header("x-amzn-requestid").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "request ids repeat");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_split_anywhere_is_answered_and_the_connection_goes_on() {
    let (server, orgs) = server_with_orgs(&[]).await;
    let whole = signed(&server, "ListOrganizations", "{}", &[]);
    let head_len = whole.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    for split in [
        1,
        20,
        head_len - 3,
        head_len - 1,
        head_len,
        head_len + 1,
        whole.len() - 1,
    ] {
        let mut stream = connect(&server);
        let mut pending = Vec::new();
        // One simple request first, so the split one arrives on a connection the fast path has been serving.
        stream.write_all(&whole).expect("send");
        let before = read_answer(&mut stream, &mut pending).expect("answer before the split");
        assert_eq!(aliases(&before), orgs);
        stream.write_all(&whole[..split]).expect("send part");
        std::thread::sleep(Duration::from_millis(30));
        stream.write_all(&whole[split..]).expect("send rest");
        let split_answer =
            read_answer(&mut stream, &mut pending).expect("answer to the split request");
        assert_eq!(
            split_answer.status, 200,
            "split at {split}: {split_answer:?}"
        );
        assert_eq!(aliases(&split_answer), orgs, "split at {split}");
        // And the connection still serves whole requests afterwards (now through hyper).
        stream.write_all(&whole).expect("send after");
        let after = read_answer(&mut stream, &mut pending).expect("answer after the split");
        assert_eq!(aliases(&after), orgs, "after a split at {split}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hyper_answers_what_the_fast_path_does_not_serve_on_the_same_connection() {
    let (server, orgs) = server_with_orgs(&[]).await;
    let mut stream = connect(&server);
    let mut pending = Vec::new();
    let simple = signed(&server, "ListOrganizations", "{}", &[]);
    stream.write_all(&simple).expect("send");
    assert_eq!(
        aliases(&read_answer(&mut stream, &mut pending).unwrap()),
        orgs
    );

    // Expect: 100-continue, with the body sent only after the interim answer.
    let expecting = signed(
        &server,
        "ListOrganizations",
        "{}",
        &[("expect", "100-continue")],
    );
    let head_len = expecting.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    stream.write_all(&expecting[..head_len]).expect("send head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(&expecting[head_len..]).expect("send body");
    assert_eq!(
        aliases(&read_answer(&mut stream, &mut pending).unwrap()),
        orgs
    );

    // A chunked body.
    let chunked = signed(
        &server,
        "ListOrganizations",
        "{}",
        &[("transfer-encoding", "chunked")],
    );
    stream.write_all(&chunked).expect("send chunked");
    assert_eq!(
        aliases(&read_answer(&mut stream, &mut pending).unwrap()),
        orgs
    );

    // Another path.
    stream
        .write_all(
            format!(
                "GET /_workmail-pat/health HTTP/1.1\r\nhost: {}\r\n\r\n",
                server.host
            )
            .as_bytes(),
        )
        .expect("send health");
    assert_eq!(read_answer(&mut stream, &mut pending).unwrap().status, 200);

    // Connection: close is honoured: answered, then the end of the stream.
    let closing = signed(
        &server,
        "ListOrganizations",
        "{}",
        &[("connection", "close")],
    );
    stream.write_all(&closing).expect("send close");
    assert_eq!(
        aliases(&read_answer(&mut stream, &mut pending).unwrap()),
        orgs
    );
    assert!(
        read_answer(&mut stream, &mut pending).is_none(),
        "still open after Connection: close"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_1_0_and_garbage_get_hyper_s_answers() {
    let (server, orgs) = server_with_orgs(&[]).await;
    let mut old = signed(&server, "ListOrganizations", "{}", &[]);
    old.splice(0..17, b"POST / HTTP/1.0\r\n".iter().copied());
    let mut stream = connect(&server);
    let mut pending = Vec::new();
    stream.write_all(&old).expect("send 1.0");
    let answer = read_answer(&mut stream, &mut pending).expect("answer to HTTP/1.0");
    assert_eq!(aliases(&answer), orgs);
    assert!(
        read_answer(&mut stream, &mut pending).is_none(),
        "HTTP/1.0 kept alive"
    );

    let mut stream = connect(&server);
    let mut pending = Vec::new();
    stream
        .write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .expect("send garbage");
    let answer = read_answer(&mut stream, &mut pending).expect("an answer to garbage");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        read_answer(&mut stream, &mut pending).is_none(),
        "open after garbage"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_after_the_header_read_timeout() {
    let (server, orgs) = server_with_orgs(&["--header-read-timeout", "1"]).await;
    let mut stream = connect(&server);
    let mut pending = Vec::new();
    stream
        .write_all(&signed(&server, "ListOrganizations", "{}", &[]))
        .expect("send");
    assert_eq!(
        aliases(&read_answer(&mut stream, &mut pending).unwrap()),
        orgs
    );
    let started = std::time::Instant::now();
    assert!(
        read_answer(&mut stream, &mut pending).is_none(),
        "an answer nobody asked for"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mutated_requests_never_get_a_5xx_or_a_hang() {
    use rand::{Rng, SeedableRng};
    let (server, _) = server_with_orgs(&[]).await;
    let whole = signed(&server, "ListOrganizations", "{}", &[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    for round in 0..150 {
        let mut bytes = whole.clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = rng.r#gen(),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.r#gen()),
            }
        }
        let mut stream = connect(&server);
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        stream.write_all(&bytes).expect("send");
        // A request whose length grew waits for more: end the sending side, as a client giving up would.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(
            read.is_ok(),
            "round {round}: no end within 3 s ({read:?}) for {:?}",
            String::from_utf8_lossy(&bytes)
        );
        if answer.is_empty() {
            continue;
        }
        let status: u16 = String::from_utf8_lossy(&answer[9..12]).parse().unwrap_or(0);
        assert!(
            (100..500).contains(&status),
            "round {round}: {:?} for {:?}",
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&bytes)
        );
    }
}
