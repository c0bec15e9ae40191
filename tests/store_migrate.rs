//! `workmail-pat migrate --from sqlite:FILE --to postgres://...` (issue 3): a SQLite store with more than 10,000
//! tokens moves into an empty PostgreSQL database, and a PostgreSQL-backed server started with the same key and
//! pepper files lists the same things, continues the same NextTokens and accepts the same secrets, passwords and
//! sessions.

mod common;

use std::process::Command;

use aws_sdk_workmail::Client;
use common::postgres::TestDb;
use common::*;
use workmail_pat::domain::{PersonalAccessToken, new_guid};
use workmail_pat::secrets::{Key32, PatSecret};

const BULK_TOKENS: usize = 10_000;

/// A temporary directory, in memory when the machine has /dev/shm (bulk SQLite writes then skip the disk's fsync).
fn fast_tempdir() -> tempfile::TempDir {
    if std::path::Path::new("/dev/shm").is_dir()
        && let Ok(d) = tempfile::tempdir_in("/dev/shm")
    {
        return d;
    }
    tempfile::tempdir().expect("tempdir")
}

async fn all_pats(
    client: &Client,
    org: &str,
) -> Vec<aws_sdk_workmail::types::PersonalAccessTokenSummary> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = ok(client
            .list_personal_access_tokens()
            .organization_id(org)
            .max_results(100)
            .set_next_token(next)
            .send()
            .await);
        out.extend(page.personal_access_token_summaries().iter().cloned());
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Everything the API shows about the store (organizations, users, configurations, tokens), as text.
async fn snapshot(client: &Client) -> (String, Vec<usize>) {
    let orgs = ok(client.list_organizations().max_results(100).send().await);
    let mut text = format!("{:?}\n", orgs.organization_summaries());
    let mut token_counts = Vec::new();
    for o in orgs.organization_summaries() {
        let id = o.organization_id().unwrap();
        let d = ok(client
            .describe_organization()
            .organization_id(id)
            .send()
            .await);
        text.push_str(&format!("{d:?}\n"));
        if o.state() != Some("Active") {
            continue;
        }
        let users = ok(client
            .list_users()
            .organization_id(id)
            .max_results(100)
            .send()
            .await);
        text.push_str(&format!("{:?}\n", users.users()));
        // Mail domains and every registered user's aliases (issue 15).
        let domains = ok(client.list_mail_domains().organization_id(id).send().await);
        text.push_str(&format!("{:?}\n", domains.mail_domains()));
        for u in users.users() {
            if u.state() == Some(&aws_sdk_workmail::types::EntityState::Enabled) {
                let aliases = ok(client
                    .list_aliases()
                    .organization_id(id)
                    .entity_id(u.id().unwrap())
                    .send()
                    .await);
                text.push_str(&format!("{:?}\n", aliases.aliases()));
            }
        }
        let idp = client
            .describe_identity_provider_configuration()
            .organization_id(id)
            .send()
            .await;
        match idp {
            Ok(c) => text.push_str(&format!("{c:?}\n")),
            Err(e) => text.push_str(&format!("no configuration: {:?}\n", code_of(&e))),
        }
        let pats = all_pats(client, id).await;
        token_counts.push(pats.len());
        text.push_str(&format!("{pats:?}\n"));
    }
    // The request ids differ between calls; everything else must match.
    let text = regex_lite_strip_request_ids(&text);
    (text, token_counts)
}

fn regex_lite_strip_request_ids(text: &str) -> String {
    let re = regex::Regex::new(r#"_request_id: Some\("[^"]*"\)"#).unwrap();
    re.replace_all(text, "_request_id: _").into_owned()
}

fn migrate(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_workmail-pat"))
        .args(["migrate", "--from", from, "--to", to])
        .env_remove("WORKMAIL_PAT_DATABASE")
        .output()
        .expect("run migrate")
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_store_with_ten_thousand_tokens_moves_to_postgres_intact() {
    let db = TestDb::create("migrate");
    let dir = fast_tempdir();
    let db_path = dir.path().join("wm.db");
    let sqlite_url = format!("sqlite:{}", db_path.display());
    let key_file = dir.path().join("wm.db.token-key");
    let pepper_file = dir.path().join("wm.db.pepper");

    // Through the API on SQLite: two organizations (one by ClientToken, one deleted), users in every state, a
    // PAT configuration, real tokens (secrets known) and a web session.
    let mut sqlite = Server::start_on(dir, sqlite_url.clone(), &[]);
    let client = sqlite.client();
    let org = setup_org(&client, "moving", Some(30)).await;
    let bob = create_enabled_user(&client, &org.id, "moving", "bob").await;
    ok(client
        .register_mail_domain()
        .organization_id(&org.id)
        .domain_name("moving.example.com")
        .send()
        .await);
    ok(client
        .create_alias()
        .organization_id(&org.id)
        .entity_id(&bob.id)
        .alias("robert@moving.example.com")
        .send()
        .await);
    ok(client
        .create_user()
        .organization_id(&org.id)
        .name("dora")
        .display_name("Dora Disabled")
        .password(PASSWORD)
        .send()
        .await);
    let by_token = ok(client
        .create_organization()
        .alias("idem")
        .client_token("ct-migrate")
        .send()
        .await)
    .organization_id
    .unwrap();
    let gone = create_org(&client, "gone").await;
    ok(client
        .delete_organization()
        .organization_id(&gone)
        .delete_directory(true)
        .force_delete(true)
        .send()
        .await);
    let web = sqlite.web();
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let mut secrets = Vec::new();
    for i in 0..3 {
        let pat = web.create_pat(&session, &format!("real-{i}"), None).await;
        secrets.push(pat["Token"].as_str().unwrap().to_string());
    }
    // One token used once, so DateLastUsed must survive too.
    assert_eq!(
        web.verify(&org.id, &org.user.name, &secrets[0], None)
            .await
            .status,
        200
    );
    sqlite.stop();

    // Bulk tokens straight through the Store trait (with the server stopped): known secrets for a sample.
    let pepper = Key32::load(&pepper_file).unwrap();
    let store = workmail_pat::store::open(&sqlite_url).unwrap();
    let base_ms = 1_700_000_000_000i64;
    let mut sampled = Vec::new();
    for i in 0..BULK_TOKENS {
        let secret = PatSecret::generate();
        let owner = if i % 2 == 0 { &org.user.id } else { &bob.id };
        let token = PersonalAccessToken {
            id: new_guid(),
            org_id: org.id.clone(),
            user_id: owner.clone(),
            name: format!("bulk-{i}"),
            scopes: vec!["IMAP".into()],
            // Many tokens share a creation time, so the id breaks ties in the order.
            created_ms: base_ms + (i as i64 / 7),
            last_used_ms: (i % 3 == 0).then_some(base_ms + 5_000 + i as i64),
            expires_ms: 4_000_000_000_000,
        };
        store
            .insert_personal_access_token(token, secret.digest(&pepper))
            .await
            .unwrap();
        if i % 997 == 0 && i % 2 == 0 {
            sampled.push(secret.expose().to_string());
        }
    }
    store.close().await.unwrap();
    drop(store);

    // What SQLite shows, and a NextToken minted by the SQLite server.
    let sqlite = sqlite.replica(&[]);
    let (before, counts) = snapshot(&sqlite.client()).await;
    assert_eq!(counts, vec![BULK_TOKENS + 3, 0], "tokens per organization");
    let first_page = ok(sqlite
        .client()
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .max_results(50)
        .send()
        .await);
    let next_token = first_page.next_token().unwrap().to_string();
    let second_page = ok(sqlite
        .client()
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .max_results(50)
        .next_token(&next_token)
        .send()
        .await);
    drop(sqlite);

    // Migrate.
    let out = migrate(&sqlite_url, &db.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "migrate failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{} personal_access_tokens", BULK_TOKENS + 3)),
        "{stdout}"
    );
    // A second run refuses to merge into a non-empty database, and changes nothing.
    let again = migrate(&sqlite_url, &db.url);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A PostgreSQL server with the same key and pepper files.
    let pg = Server::start_on(
        tempfile::tempdir().unwrap(),
        db.url.clone(),
        &[
            "--token-key-file",
            key_file.to_str().unwrap(),
            "--pepper-file",
            pepper_file.to_str().unwrap(),
        ],
    );
    let client = pg.client();
    let (after, _) = snapshot(&client).await;
    // Compared line by line (one line per call) so a failure names what differs without dumping 10,000 tokens.
    assert_eq!(after.lines().count(), before.lines().count());
    for (n, (a, b)) in after.lines().zip(before.lines()).enumerate() {
        if a != b {
            let at = a
                .char_indices()
                .zip(b.chars())
                .find(|((_, x), y)| x != y)
                .map(|((i, _), _)| i)
                .unwrap_or(0);
            let from = at.saturating_sub(200);
            panic!(
                "line {n} differs after migration at byte {at}:\n  sqlite:   ...{}\n  postgres: ...{}",
                b.get(from..(at + 200).min(b.len())).unwrap_or(b),
                a.get(from..(at + 200).min(a.len())).unwrap_or(a)
            );
        }
    }

    // A NextToken from the SQLite server continues on PostgreSQL.
    let continued = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .max_results(50)
        .next_token(&next_token)
        .send()
        .await);
    assert_eq!(
        continued.personal_access_token_summaries(),
        second_page.personal_access_token_summaries()
    );

    // Old secrets, passwords and sessions still work.
    let web = pg.web();
    for s in secrets.iter().chain(&sampled) {
        let v = web.verify(&org.id, &org.user.name, s, None).await;
        assert_eq!(v.status, 200, "a migrated secret must verify: {v:?}");
    }
    assert!(sampled.len() >= 5);
    assert_eq!(
        web.verify(&org.id, &bob.name, &secrets[1], None)
            .await
            .status,
        401,
        "a secret still belongs to its owner only"
    );
    assert_eq!(web.list_pats(&session).await.status, 200, "web session");
    web.sign_in(&org.id, &bob.name, PASSWORD).await;
    assert_eq!(
        web.sign_in_raw(&org.id, &bob.name, "Wrong-Password-1")
            .await
            .status,
        401
    );

    // The remembered ClientToken replays; the deleted organization's alias is free, the live one's is not.
    let replay = ok(client
        .create_organization()
        .alias("idem")
        .client_token("ct-migrate")
        .send()
        .await);
    assert_eq!(replay.organization_id(), Some(by_token.as_str()));
    create_org(&client, "gone").await;
    expect_code(
        client.create_organization().alias("moving").send().await,
        "NameAvailabilityException",
    );
}

#[test]
fn migrate_refuses_bad_sources_and_targets() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite:{}", dir.path().join("nope.db").display());
    let out = migrate(&missing, "postgres://postgres@127.0.0.1:5432/postgres");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = migrate("postgres://x@127.0.0.1/y", "postgres://x@127.0.0.1/z");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from must be sqlite:FILE"));
    std::fs::write(dir.path().join("x.db"), b"").unwrap();
    let file = format!("sqlite:{}", dir.path().join("x.db").display());
    let out = migrate(&file, "sqlite:other.db");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to must be a postgres://"));
}

/// The table list `migrate` copies (`store::sql::TABLES`) is the migrated SQLite schema exactly: every table, every
/// column, none missing and none extra. A migration that adds a column without adding it there fails here.
#[test]
fn copied_tables_match_the_sqlite_schema() {
    let dir = fast_tempdir();
    let path = dir.path().join("schema.db");
    workmail_pat::store::open(&format!("sqlite:{}", path.display())).expect("open sqlite store");
    let conn = rusqlite::Connection::open(&path).expect("open file");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations') ORDER BY name")
        .unwrap();
    let mut tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut listed: Vec<String> = workmail_pat::store::sql::TABLES
        .iter()
        .map(|(t, _)| t.to_string())
        .collect();
    tables.sort();
    listed.sort();
    assert_eq!(listed, tables, "store::sql::TABLES names every table");
    for (table, columns) in workmail_pat::store::sql::TABLES {
        let mut info = conn
            .prepare(&format!(
                "SELECT name, \"notnull\" FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .unwrap();
        let actual: Vec<(String, bool)> = info
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Copies name their columns, so the order may differ (ALTER TABLE appends).
        let mut names: Vec<&str> = actual.iter().map(|(name, _)| name.as_str()).collect();
        let mut listed: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        listed.sort_unstable();
        assert_eq!(names, listed, "{table}: columns");
        for (name, not_null) in &actual {
            use workmail_pat::store::sql::Kind::*;
            let kind = columns.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
            let optional = matches!(kind, Some(OptText | OptInt));
            assert!(
                !(optional && *not_null),
                "{table}.{name} is NOT NULL but listed as {kind:?}"
            );
        }
    }
}
