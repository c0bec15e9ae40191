//! The server process seen from an SDK user: state and secrets survive a restart, `token create` works
//! beside a running server, secrets never reach the database or the log, SIGTERM exits cleanly, and
//! accept-any refuses non-loopback addresses.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn read_all_db_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("wm.db") && !name.ends_with(".token-key") && !name.ends_with(".pepper")
        {
            out.push((name, std::fs::read(&p).unwrap_or_default()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn state_and_secrets_survive_restart() {
    let mut server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "keep", Some(30)).await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let pat = web.create_pat(&session, "persist", None).await;
    let secret = pat["Token"].as_str().unwrap().to_string();
    let first = ok(client
        .create_organization()
        .alias("idem")
        .client_token("ct-restart")
        .send()
        .await);

    server.stop();
    let again = server.replica(&[]);
    let client = again.client();
    let web = again.web();
    let d = ok(client
        .describe_organization()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(d.state(), Some("Active"));
    let v = web.verify(&org.id, &org.user.name, &secret, None).await;
    assert_eq!(
        v.status, 200,
        "a PAT must still verify after a restart (pepper persisted): {v:?}"
    );
    web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    // ClientToken records live in the database.
    let replay = ok(client
        .create_organization()
        .alias("idem")
        .client_token("ct-restart")
        .send()
        .await);
    assert_eq!(replay.organization_id(), first.organization_id());
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(l.personal_access_token_summaries().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_cli_beside_running_server() {
    let server = Server::start();
    let client = server.client();
    let org = setup_org(&client, "cli", Some(12)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_workmail-pat"))
        .args([
            "token",
            "create",
            "--database",
            &server.db_url,
            "--organization-id",
            &org.id,
        ])
        .args([
            "--user",
            &org.user.email,
            "--name",
            "seeded",
            "--scope",
            "IMAP",
            "--scope",
            "CALDAV",
        ])
        .env_remove("WORKMAIL_PAT_DATABASE")
        .env_remove("WORKMAIL_PAT_TOKEN_KEY_FILE")
        .env_remove("WORKMAIL_PAT_PEPPER_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run token create");
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("token create prints JSON");
    let id = body["PersonalAccessTokenId"]
        .as_str()
        .expect("PersonalAccessTokenId");
    let secret = body["Token"].as_str().expect("Token");
    assert_eq!(body["Name"].as_str(), Some("seeded"));
    assert_eq!(body["Scopes"], serde_json::json!(["IMAP", "CALDAV"]));
    let created = body["DateCreated"].as_f64().unwrap();
    assert!((body["ExpiresTime"].as_f64().unwrap() - created - 12.0 * 86400.0).abs() < 0.01);

    // The running server sees it and verifies it.
    let g = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await);
    assert_eq!(g.user_id(), Some(org.user.id.as_str()));
    assert_eq!(g.scopes(), ["IMAP", "CALDAV"]);
    let v = server
        .web()
        .verify(&org.id, &org.user.name, secret, Some("CALDAV"))
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(
        server
            .web()
            .verify(&org.id, &org.user.name, secret, Some("SMTP"))
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_database_or_the_log() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "leak", Some(30)).await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let pat = web.create_pat(&session, "secretive", None).await;
    let secret = pat["Token"].as_str().unwrap().to_string();
    assert_eq!(
        web.verify(&org.id, &org.user.name, &secret, None)
            .await
            .status,
        200
    );
    assert_eq!(
        web.verify(&org.id, &org.user.name, &format!("{secret}0"), None)
            .await
            .status,
        401
    );
    ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);

    let files = read_all_db_files(server.dir.path());
    assert!(
        !files.is_empty(),
        "no database files found in {:?}",
        server.dir.path()
    );
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "PAT secret stored in {name}"
        );
        assert!(
            !contains(bytes, PASSWORD.as_bytes()),
            "password stored in clear in {name}"
        );
        assert!(
            !contains(bytes, session.as_bytes()),
            "session token stored in clear in {name}"
        );
    }
    let log = server.log();
    assert!(!log.contains(&secret), "PAT secret in the server log");
    assert!(!log.contains(PASSWORD), "password in the server log");
    assert!(!log.contains(&session), "session token in the server log");
}

#[test]
fn sigterm_exits_cleanly() {
    let mut server = Server::start();
    let pid = server.pid().expect("running");
    let t0 = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = server
        .wait_exit(Duration::from_secs(20))
        .expect("server did not exit within 20 s of SIGTERM");
    assert!(code.success(), "exit status after SIGTERM: {code:?}");
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn accept_any_refuses_non_loopback_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("wm.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_workmail-pat"))
        .args(["serve", "--listen", "0.0.0.0:0", "--database", &db])
        .env_remove("WORKMAIL_PAT_AUTH")
        .env_remove("WORKMAIL_PAT_LISTEN")
        .env_remove("WORKMAIL_PAT_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "accept-any server kept running on 0.0.0.0 without --allow-insecure-any-credentials"
        );
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "must exit with an error");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "printed a listening line"
    );

    // With the explicit flag it starts.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = format!("sqlite:{}", dir2.path().join("wm.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_workmail-pat"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--database",
            &db2,
            "--allow-insecure-any-credentials",
        ])
        .env_remove("WORKMAIL_PAT_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("no listening line with --allow-insecure-any-credentials");
    assert!(line.starts_with("listening on http://"), "{line}");
    assert!(!line.ends_with(":0"), "{line}");
}
