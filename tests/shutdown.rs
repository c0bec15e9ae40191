//! Graceful shutdown of the real binary on SIGTERM (issue 13, item 7): one deadline, `--shutdown-timeout`, governs
//! how long in-flight requests get, and the SQLite store is always closed afterwards, so the WAL is checkpointed
//! into the main file (the `-wal` file is left empty or removed).
//!
//! A request stays in flight by sending its head and only part of its body; the server then waits for the rest
//! until `--request-timeout` and answers 408.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A SQLite server (this is about the SQLite WAL, whatever backend the other suites run on) with one write done,
/// so that its WAL holds frames to checkpoint.
async fn sqlite_server_with_a_write(extra: &[&str]) -> (Server, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wm.db");
    let server = Server::start_on(dir, format!("sqlite:{}", db.display()), extra);
    ok(server
        .client()
        .create_organization()
        .alias(unique("shutdown"))
        .send()
        .await);
    let wal = wal_path(&db);
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_len > 0, "the write left nothing in {}", wal.display());
    (server, db)
}

fn wal_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// Sends a request head announcing a 100-byte body and only 10 bytes of it.
fn partial_request(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(&server.host).expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: WorkMailService.ListOrganizations\r\nContent-Length: 100\r\n\r\n{{\"MaxResul",
        server.host
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream
}

fn sigterm(server: &Server) {
    let pid = server.pid().expect("running");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn assert_checkpointed(db: &std::path::Path) {
    let wal = wal_path(db);
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        left,
        0,
        "{} still holds {left} bytes: the store was not closed",
        wal.display()
    );
}

/// The old code cut every shutdown at a fixed 15 s, whatever `--shutdown-timeout` said, and skipped the store's
/// close when it did. Here a request in flight is answered (408, at `--request-timeout` 17 s) after those 15 s, within
/// the 20 s deadline, and the WAL is checkpointed.
#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_longer_than_15_s_is_honoured_and_the_store_closed() {
    let (mut server, db) =
        sqlite_server_with_a_write(&["--shutdown-timeout", "20", "--request-timeout", "17"]).await;
    let mut stream = partial_request(&server);
    // Let the server see the request before the signal.
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    sigterm(&server);
    stream
        .set_read_timeout(Some(Duration::from_secs(25)))
        .expect("read timeout");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "the in-flight request was not answered (after {:?}): {answer:?}",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(15),
        "answered too early ({:?}): the test no longer shows anything",
        t0.elapsed()
    );
    let code = server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit after its last request");
    assert!(code.success(), "exit status after SIGTERM: {code:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert_checkpointed(&db);
}

/// A short deadline is not stretched by a request that will not finish (its body never comes and
/// `--request-timeout` is a minute): the process exits soon after `--shutdown-timeout` 1 s, and still checkpoints.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_deadline_cuts_a_stuck_request_and_the_store_is_still_closed() {
    let (mut server, db) =
        sqlite_server_with_a_write(&["--shutdown-timeout", "1", "--request-timeout", "60"]).await;
    let _stream = partial_request(&server);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    sigterm(&server);
    let code = server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit within 10 s of SIGTERM with --shutdown-timeout 1");
    assert!(code.success(), "exit status after SIGTERM: {code:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "exited after {:?}, before the deadline, with a request in flight",
        t0.elapsed()
    );
    assert_checkpointed(&db);
}
