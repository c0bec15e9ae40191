//! Crash safety (issue 5): the real server on a SQLite file, several concurrent clients creating and deleting
//! (users and organizations through the AWS API, personal access tokens through the web API), SIGKILLed at random
//! moments, restarted on the same file. After every restart:
//!
//! - every acknowledged write is present (a token listed with all its members and its secret still verifies; a
//!   user or organization still described) and every acknowledged delete is absent (the token is gone and its
//!   secret fails; the user is DELETED);
//! - nothing unacknowledged is half-applied: a create whose answer was lost is either fully there (listed, described
//!   and verifiable through every path) or not at all, and nothing appears that nobody asked for;
//! - pagination over the result is exact (page size 7: no duplicate, no gap, the same set as the web list);
//!
//! and at the end `PRAGMA integrity_check` on the file (opened read-only after the server stopped) says `ok`.
//!
//! The seed comes from `WORKMAIL_PAT_CRASH_SEED` (default: time-based, printed) and the number of cycles from
//! `WORKMAIL_PAT_CRASH_CYCLES` (default 24).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The server answered success.
    Acked,
    /// The request was sent but no answer came back (killed mid-flight): either outcome is allowed, not a half one.
    Unknown,
}

#[derive(Default)]
struct Ledger {
    /// Token id -> (name, secret) for acknowledged creates.
    tokens: BTreeMap<String, (String, String)>,
    /// Names of token creates whose answer was lost.
    unknown_token_names: BTreeSet<String>,
    /// Token id -> secret of acknowledged deletes.
    deleted_tokens: BTreeMap<String, String>,
    /// Token ids whose delete answer was lost.
    unknown_deletes: BTreeSet<String>,
    /// Token ids a client is deleting right now (no two clients delete the same token at once).
    deleting: BTreeSet<String>,
    /// User name -> (id, fate of its delete if any).
    users: BTreeMap<String, (String, Option<Fate>)>,
    unknown_user_names: BTreeSet<String>,
    /// Organization alias -> id.
    orgs: BTreeMap<String, String>,
    unknown_org_aliases: BTreeSet<String>,
    writes_acked: usize,
    writes_unknown: usize,
}

struct Fixture {
    org: String,
    alias: String,
    session: String,
    username: String,
}

fn sigkill(server: &mut Server) {
    let pid = server.pid().expect("running");
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    server
        .wait_exit(Duration::from_secs(10))
        .expect("server did not die after SIGKILL");
}

fn start(db_url: &str) -> Server {
    Server::start_on(
        tempfile::tempdir().expect("tempdir"),
        db_url.to_string(),
        &[],
    )
}

/// One client's loop until `stop`: a random mix of PAT creates/deletes (web) and user/org creates/deletes (AWS).
struct ClientCtx {
    n: usize,
    server_url: String,
    client: aws_sdk_workmail::Client,
    web: Web,
    fx: Arc<Fixture>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
}

async fn client_loop(c: ClientCtx) {
    let ClientCtx {
        n,
        server_url,
        client,
        web,
        fx,
        ledger,
        stop,
        seed,
    } = c;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut i = 0usize;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        i += 1;
        let roll: u32 = rng.gen_range(0..100);
        if roll < 55 {
            let name = format!("c{n}-{seed}-{i}");
            let r = web
                .http
                .post(format!("{server_url}/webapp/api/personal-access-tokens"))
                .bearer_auth(&fx.session)
                .json(&json!({"Name": name}))
                .send()
                .await;
            let mut l = ledger.lock().unwrap();
            match r {
                Ok(resp) if resp.status().as_u16() == 201 => {
                    drop(l);
                    match resp.json::<Value>().await {
                        Ok(body) => {
                            let mut l = ledger.lock().unwrap();
                            let id = body["PersonalAccessTokenId"].as_str().unwrap().to_string();
                            let secret = body["Token"].as_str().unwrap().to_string();
                            l.tokens.insert(id, (name, secret));
                            l.writes_acked += 1;
                        }
                        Err(_) => {
                            let mut l = ledger.lock().unwrap();
                            l.unknown_token_names.insert(name);
                            l.writes_unknown += 1;
                        }
                    }
                }
                Ok(resp) => panic!("create PAT answered {}", resp.status()),
                Err(_) => {
                    l.unknown_token_names.insert(name);
                    l.writes_unknown += 1;
                }
            }
        } else if roll < 80 {
            let victim = {
                let mut l = ledger.lock().unwrap();
                let ids: Vec<&String> = l
                    .tokens
                    .keys()
                    .filter(|id| !l.deleting.contains(*id))
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let victim = ids[rng.gen_range(0..ids.len())].clone();
                l.deleting.insert(victim.clone());
                victim
            };
            let r = web
                .http
                .delete(format!(
                    "{server_url}/webapp/api/personal-access-tokens/{victim}"
                ))
                .bearer_auth(&fx.session)
                .send()
                .await;
            let mut l = ledger.lock().unwrap();
            l.deleting.remove(&victim);
            match r.map(|r| r.status().as_u16()) {
                Ok(204) => {
                    if let Some((_, secret)) = l.tokens.remove(&victim) {
                        l.deleted_tokens.insert(victim.clone(), secret);
                        l.writes_acked += 1;
                    }
                    l.unknown_deletes.remove(&victim);
                }
                // Only an earlier delete whose answer was lost may have removed it.
                Ok(404) => {
                    assert!(
                        l.unknown_deletes.contains(&victim),
                        "acknowledged token {victim} was not found by its delete"
                    );
                    if let Some((_, secret)) = l.tokens.remove(&victim) {
                        l.deleted_tokens.insert(victim.clone(), secret);
                    }
                    l.unknown_deletes.remove(&victim);
                }
                Ok(s) => panic!("delete PAT answered {s}"),
                Err(_) => {
                    l.unknown_deletes.insert(victim);
                    l.writes_unknown += 1;
                }
            }
        } else if roll < 95 {
            // A user: CreateUser, then (half the time) DeleteUser right away (new users are DISABLED).
            let name = format!("u{n}x{seed}x{i}");
            let r = client
                .create_user()
                .organization_id(&fx.org)
                .name(&name)
                .display_name(&name)
                .password(PASSWORD)
                .send()
                .await;
            let id = match r {
                Ok(out) => {
                    let id = out.user_id().unwrap().to_string();
                    let mut l = ledger.lock().unwrap();
                    l.users.insert(name.clone(), (id.clone(), None));
                    l.writes_acked += 1;
                    id
                }
                Err(e) if code_of(&e).is_none() => {
                    let mut l = ledger.lock().unwrap();
                    l.unknown_user_names.insert(name);
                    l.writes_unknown += 1;
                    continue;
                }
                Err(e) => panic!("CreateUser: {}", show(&e)),
            };
            if rng.gen_bool(0.5) {
                let r = client
                    .delete_user()
                    .organization_id(&fx.org)
                    .user_id(&id)
                    .send()
                    .await;
                let fate = match r {
                    Ok(_) => Fate::Acked,
                    Err(e) if code_of(&e).is_none() => Fate::Unknown,
                    Err(e) => panic!("DeleteUser: {}", show(&e)),
                };
                let mut l = ledger.lock().unwrap();
                l.users.get_mut(&name).unwrap().1 = Some(fate);
                match fate {
                    Fate::Acked => l.writes_acked += 1,
                    Fate::Unknown => l.writes_unknown += 1,
                }
            }
        } else {
            let alias = format!("o{n}x{seed}x{i}");
            match client.create_organization().alias(&alias).send().await {
                Ok(out) => {
                    let mut l = ledger.lock().unwrap();
                    l.orgs
                        .insert(alias, out.organization_id().unwrap().to_string());
                    l.writes_acked += 1;
                }
                Err(e) if code_of(&e).is_none() => {
                    let mut l = ledger.lock().unwrap();
                    l.unknown_org_aliases.insert(alias);
                    l.writes_unknown += 1;
                }
                Err(e) => panic!("CreateOrganization: {}", show(&e)),
            }
        }
    }
}

/// Every page of ListPersonalAccessTokens at page size 7: (id, name, user) in order, checking that no id repeats.
async fn list_all_tokens(client: &aws_sdk_workmail::Client, org: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut next: Option<String> = None;
    loop {
        let page = ok(client
            .list_personal_access_tokens()
            .organization_id(org)
            .max_results(7)
            .set_next_token(next.clone())
            .send()
            .await);
        let items = page.personal_access_token_summaries();
        assert!(items.len() <= 7);
        for t in items {
            let id = t.personal_access_token_id().expect("id").to_string();
            assert!(seen.insert(id.clone()), "token {id} listed twice");
            assert!(
                t.user_id().is_some() && t.date_created().is_some() && t.expires_time().is_some()
            );
            assert!(!t.scopes().is_empty(), "token {id} has no scopes");
            out.push((id, t.name().expect("name").to_string()));
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
        assert!(!items.is_empty(), "a page with a NextToken is empty");
    }
    out
}

/// What the web list shows at most (`workmail_pat::tokens::MAX_OWN_TOKENS`).
const MAX_OWN_TOKENS: usize = workmail_pat::tokens::MAX_OWN_TOKENS;

/// Checks the ledger against the server's state. Returns how many writes it checked.
async fn check(server: &Server, fx: &Fixture, ledger: &Mutex<Ledger>) -> usize {
    let client = server.client();
    let web = server.web();
    let listed = list_all_tokens(&client, &fx.org).await;
    let web_list = web.list_pats(&fx.session).await;
    assert_eq!(web_list.status, 200, "{web_list:?}");
    let web_ids: BTreeSet<String> = web_list.body["PersonalAccessTokenSummaries"]
        .as_array()
        .or_else(|| web_list.body.as_array())
        .unwrap_or_else(|| panic!("web list shape: {}", web_list.body))
        .iter()
        .map(|t| t["PersonalAccessTokenId"].as_str().unwrap().to_string())
        .collect();
    // The web list shows a user's oldest MAX_OWN_TOKENS (1,000) tokens; a fast server creates more than that in
    // some runs. Both lists are in (DateCreated, id) order, so the web list is the head of the AWS walk.
    let listed_ids: BTreeSet<String> = listed.iter().map(|(id, _)| id.clone()).collect();
    let head_ids: BTreeSet<String> = listed
        .iter()
        .take(MAX_OWN_TOKENS)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        head_ids, web_ids,
        "AWS pagination and the web list disagree"
    );

    let mut checked = 0;
    let listed_by_name: BTreeMap<&str, &str> = listed
        .iter()
        .map(|(id, n)| (n.as_str(), id.as_str()))
        .collect();
    let (tokens, deleted, unknown_names, unknown_deletes) = {
        let l = ledger.lock().unwrap();
        for (id, name) in &listed {
            if let Some((n, _)) = l.tokens.get(id) {
                assert_eq!(n, name, "token {id} changed name");
            } else {
                assert!(
                    l.unknown_token_names.contains(name) || l.unknown_deletes.contains(id),
                    "token {id} ({name}) is listed but was never created, or its acknowledged delete was lost"
                );
            }
            assert!(
                !l.deleted_tokens.contains_key(id),
                "acknowledged delete of {id} lost"
            );
        }
        let tokens: Vec<(String, (String, String))> = l
            .tokens
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let deleted: Vec<(String, String)> = l
            .deleted_tokens
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let unknown_names: Vec<String> = l.unknown_token_names.iter().cloned().collect();
        let unknown_deletes: Vec<String> = l.unknown_deletes.iter().cloned().collect();
        (tokens, deleted, unknown_names, unknown_deletes)
    };
    for name in &unknown_names {
        if let Some(id) = listed_by_name.get(name.as_str()) {
            // A create whose answer was lost but which committed: it must be whole (metadata readable).
            let meta = client
                .get_personal_access_token_metadata()
                .organization_id(&fx.org)
                .personal_access_token_id(*id)
                .send()
                .await;
            let meta = ok(meta);
            assert_eq!(meta.name(), Some(name.as_str()));
            assert!(meta.expires_time().is_some() && !meta.scopes().is_empty());
        }
    }
    for (id, (name, secret)) in &tokens {
        if unknown_deletes.contains(id) && !listed_ids.contains(id) {
            continue; // its delete (answer lost) went through
        }
        assert!(
            listed_ids.contains(id),
            "acknowledged token {id} ({name}) lost"
        );
        let v = web.verify(&fx.org, &fx.username, secret, None).await;
        assert_eq!(
            v.status, 200,
            "acknowledged token {id} no longer verifies: {v:?}"
        );
        assert_eq!(v.body["PersonalAccessTokenId"], json!(id));
        checked += 1;
    }
    for (id, secret) in &deleted {
        let v = web.verify(&fx.org, &fx.username, secret, None).await;
        assert_eq!(v.status, 401, "deleted token {id} still verifies: {v:?}");
        checked += 1;
    }
    let (users, orgs) = {
        let l = ledger.lock().unwrap();
        let users: Vec<(String, (String, Option<Fate>))> = l
            .users
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let orgs: Vec<(String, String)> =
            l.orgs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        (users, orgs)
    };
    for (name, (id, delete)) in &users {
        let out = ok(client
            .describe_user()
            .organization_id(&fx.org)
            .user_id(id)
            .send()
            .await);
        assert_eq!(out.name(), Some(name.as_str()), "user {id}");
        let state = out.state().map(|s| s.as_str().to_string());
        match delete {
            Some(Fate::Acked) => assert_eq!(state.as_deref(), Some("DELETED"), "user {name}"),
            Some(Fate::Unknown) => {
                assert!(matches!(state.as_deref(), Some("DELETED" | "DISABLED")))
            }
            None => assert_eq!(state.as_deref(), Some("DISABLED"), "user {name}"),
        }
        checked += 1;
    }
    for (alias, id) in &orgs {
        let out = ok(client
            .describe_organization()
            .organization_id(id)
            .send()
            .await);
        assert_eq!(out.alias(), Some(alias.as_str()));
        checked += 1;
    }
    // Nothing half-created: every organization listed is one we asked for (or the fixture).
    let mut all_orgs = Vec::new();
    let mut next = None;
    loop {
        let page = ok(client
            .list_organizations()
            .max_results(5)
            .set_next_token(next)
            .send()
            .await);
        for o in page.organization_summaries() {
            all_orgs.push(o.alias().unwrap_or_default().to_string());
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    let unique: BTreeSet<&String> = all_orgs.iter().collect();
    assert_eq!(unique.len(), all_orgs.len(), "an organization listed twice");
    let l = ledger.lock().unwrap();
    for alias in &all_orgs {
        assert!(
            *alias == fx.alias
                || l.orgs.contains_key(alias)
                || l.unknown_org_aliases.contains(alias),
            "organization {alias} appeared from nowhere"
        );
    }
    for alias in l.orgs.keys() {
        assert!(
            all_orgs.contains(alias),
            "acknowledged organization {alias} not listed"
        );
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let seed: u64 = std::env::var("WORKMAIL_PAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let cycles: usize = std::env::var("WORKMAIL_PAT_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    eprintln!("crash safety: seed {seed}, {cycles} cycles (WORKMAIL_PAT_CRASH_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("crash.db");
    let db_url = format!("sqlite:{}", db_path.display());

    let fx = {
        let server = start(&db_url);
        let client = server.client();
        let alias = unique("crash");
        let org = setup_org(&client, &alias, Some(30)).await;
        let session = server.web().sign_in(&org.id, "alice", PASSWORD).await;
        Arc::new(Fixture {
            org: org.id,
            alias,
            session,
            username: "alice".into(),
        })
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let mut checked_total = 0;
    let mut server = start(&db_url);
    for cycle in 0..cycles {
        checked_total += check(&server, &fx, &ledger).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for n in 0..4 {
            tasks.push(tokio::spawn(client_loop(ClientCtx {
                n,
                server_url: server.base_url.clone(),
                client: server.client(),
                web: server.web(),
                fx: fx.clone(),
                ledger: ledger.clone(),
                stop: stop.clone(),
                seed: rng.r#gen(),
            })));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..600))).await;
        // Clients stop starting requests; those in flight are cut off by the kill.
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sigkill(&mut server);
        for t in tasks {
            t.await.expect("client task panicked");
        }
        if cycle == cycles / 2 {
            // The file as the crash left it (WAL not checkpointed) is already consistent.
            integrity_check(&db_path);
        }
        server = start(&db_url);
    }
    checked_total += check(&server, &fx, &ledger).await;
    server.stop();
    integrity_check(&db_path);
    let l = ledger.lock().unwrap();
    eprintln!(
        "crash safety: {cycles} SIGKILL cycles in {:.1?}; {} writes acknowledged, {} unanswered; {} tokens live, \
         {} deleted, {} users, {} organizations; {checked_total} write checks",
        started.elapsed(),
        l.writes_acked,
        l.writes_unknown,
        l.tokens.len(),
        l.deleted_tokens.len(),
        l.users.len(),
        l.orgs.len()
    );
    assert!(
        l.writes_acked >= cycles,
        "too little load: {} acknowledged writes",
        l.writes_acked
    );
}

fn integrity_check(path: &std::path::Path) {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open read-only");
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec!["ok".to_string()],
        "integrity_check on {}",
        path.display()
    );
    let fk: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0, "foreign key violations");
}
