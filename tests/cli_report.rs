//! `workmail-pat report`, run as the real binary against a SQLite file seeded through the `Store` trait with tokens
//! at known distances from now.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use workmail_pat::clock::Clock;
use workmail_pat::domain::{
    Organization, PersonalAccessToken, User, UserProfile, UserState, new_directory_id, new_guid,
    new_org_id, org_state,
};
use workmail_pat::store;

const DAY: i64 = 86_400_000;

fn org(alias: &str, now: i64) -> Organization {
    Organization {
        id: new_org_id(),
        account: "000000000000".into(),
        region: "us-east-1".into(),
        alias: alias.into(),
        state: org_state::ACTIVE.into(),
        directory_id: new_directory_id(),
        directory_type: "VpcDirectory".into(),
        default_mail_domain: format!("{alias}.awsapps.com"),
        domains: vec![],
        kms_key_arn: None,
        interoperability_enabled: false,
        created_ms: now - 500 * DAY,
        completed_ms: Some(now - 500 * DAY),
    }
}

fn user(org_id: &str, name: &str, now: i64) -> User {
    User {
        id: new_guid(),
        org_id: org_id.into(),
        name: name.into(),
        email: None,
        state: UserState::Enabled,
        role: "USER".into(),
        profile: UserProfile::default(),
        identity_provider_user_id: None,
        enabled_ms: None,
        disabled_ms: None,
        mailbox_provisioned_ms: None,
        mailbox_deprovisioned_ms: None,
        created_ms: now - 500 * DAY,
        password_hash: None,
    }
}

/// A token created `created` days ago, last used `used` days ago, expiring in `expires` days (negative: past).
fn pat(
    org: &str,
    user: &str,
    name: &str,
    now: i64,
    created: i64,
    used: Option<i64>,
    expires: i64,
) -> PersonalAccessToken {
    PersonalAccessToken {
        id: new_guid(),
        org_id: org.into(),
        user_id: user.into(),
        name: name.into(),
        scopes: vec!["IMAP".into(), "SMTP".into()],
        created_ms: now - created * DAY,
        last_used_ms: used.map(|u| now - u * DAY),
        expires_ms: now + expires * DAY,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    org: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("report.db").display());
    let store = store::open(&url).unwrap();
    let now = Clock::real_now_ms();
    let acme = org("acme", now);
    let other = org("other", now);
    store.create_organization(acme.clone(), None).await.unwrap();
    store
        .create_organization(other.clone(), None)
        .await
        .unwrap();
    let alice = user(&acme.id, "alice", now);
    let bob = user(&other.id, "bob", now);
    store.create_user(alice.clone()).await.unwrap();
    store.create_user(bob.clone()).await.unwrap();
    let tokens = [
        pat(&acme.id, &alice.id, "fresh", now, 1, None, 300),
        pat(&acme.id, &alice.id, "soon", now, 100, Some(1), 10),
        pat(
            &acme.id,
            &alice.id,
            "=stale, \"old\"",
            now,
            200,
            Some(120),
            100,
        ),
        pat(&acme.id, &alice.id, "never-used", now, 95, None, 200),
        pat(&acme.id, &alice.id, "expired", now, 400, Some(2), -5),
        pat(&other.id, &bob.id, "other-org", now, 400, None, -5),
    ];
    for (n, t) in tokens.into_iter().enumerate() {
        store
            .insert_personal_access_token(t, [n as u8 + 1; 32])
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    Fixture {
        _dir: dir,
        url,
        org: acme.id,
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workmail-pat"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

fn json_names(f: &Fixture, extra: &[&str]) -> (BTreeSet<String>, serde_json::Value) {
    let mut args = vec![
        "--database",
        &f.url,
        "--organization-id",
        &f.org,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = v["PersonalAccessTokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Name"].as_str().unwrap().to_string())
        .collect();
    (names, v)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn criteria_select_the_right_tokens() {
    let f = fixture().await;
    let (all, v) = json_names(&f, &[]);
    assert_eq!(
        all,
        set(&["fresh", "soon", "=stale, \"old\"", "never-used", "expired"]),
        "no criteria: the whole organization, never another one"
    );
    assert_eq!(v["OrganizationId"], f.org.as_str());

    let (expiring, v) = json_names(&f, &["--expiring-within", "30"]);
    assert_eq!(expiring, set(&["soon", "expired"]));
    let soon = v["PersonalAccessTokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Name"] == "soon")
        .unwrap();
    assert_eq!(soon["Reasons"], serde_json::json!(["EXPIRING"]));
    assert_eq!(soon["Username"], "alice");
    assert!((9..=10).contains(&soon["ExpiresInDays"].as_i64().unwrap()));
    assert!(soon["DateLastUsed"].as_str().unwrap().ends_with('Z'));

    let (unused, _) = json_names(&f, &["--unused-for", "90"]);
    assert_eq!(unused, set(&["=stale, \"old\"", "never-used"]));

    let (either, _) = json_names(&f, &["--unused-for", "90", "--expiring-within", "30"]);
    assert_eq!(
        either,
        set(&["soon", "expired", "=stale, \"old\"", "never-used"])
    );
}

#[tokio::test]
async fn table_and_csv_formats() {
    let f = fixture().await;
    let out = run(&[
        "--database",
        &f.url,
        "--organization-id",
        &f.org,
        "--expiring-within",
        "30",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("TOKEN ID  "));
    assert!(text.contains("EXPIRED") && text.contains("EXPIRING"));
    assert!(text.trim_end().ends_with("2 token(s)"), "{text}");

    let out = run(&[
        "--database",
        &f.url,
        "--organization-id",
        &f.org,
        "--unused-for",
        "90",
        "--format",
        "csv",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("token_id,user_id,username,name,scopes,"));
    // A user-chosen name is quoted and cannot run as a spreadsheet formula.
    assert!(text.contains(r#","'=stale, ""old""","#), "{text}");
    assert!(text.contains(",never,"));
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    let f = fixture().await;
    let out = run(&[
        "--database",
        &f.url,
        "--organization-id",
        "m-00000000000000000000000000000000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let url = format!("sqlite:{}", missing.display());
    let out = run(&["--database", &url, "--organization-id", &f.org]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!missing.exists(), "a report never creates a database");

    for bad in [
        vec!["--format", "xml"],
        vec!["--expiring-within", "-1"],
        vec!["--unused-for", "soon"],
        vec!["--unused-for", "99999999"],
    ] {
        let mut args = vec!["--database", &f.url, "--organization-id", &f.org];
        args.extend(bad.iter().copied());
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn html_report_is_one_self_contained_file() {
    let f = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.html");
    let out = run(&[
        "--database",
        &f.url,
        "--organization-id",
        &f.org,
        "--format",
        "html",
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--output writes the file only");
    let html = std::fs::read_to_string(&path).unwrap();
    let lower = html.to_ascii_lowercase();
    assert!(lower.starts_with("<!doctype html>"));
    // Nothing to fetch and nothing to run: no URL at all, no script, no external style sheet or image.
    for banned in [
        "http://", "https://", "<script", "<link", "<img", "src=", "@import", "url(http",
    ] {
        assert!(!lower.contains(banned), "{banned} in the report");
    }
    assert!(html.contains("Content-Security-Policy"));
    // Three accessible charts, drawn inline.
    assert_eq!(html.matches("<svg").count(), 3);
    assert_eq!(html.matches("role=\"img\"").count(), 3);
    assert_eq!(html.matches("aria-labelledby=").count(), 3);
    // Without criteria the table uses --expiring-within 30 --unused-for 90: the same tokens as the JSON report.
    let (either, _) = json_names(&f, &["--unused-for", "90", "--expiring-within", "30"]);
    assert!(html.contains(&format!("data-rows=\"{}\"", either.len())));
    assert_eq!(html.matches("<tr>").count(), either.len() + 1);
    // The user-chosen name is escaped, the expired token counted and hatched, and never-used tokens counted.
    assert!(html.contains("=stale, &quot;old&quot;"));
    assert!(html.contains(r#"data-label="Expired" data-value="1" data-fill="hatched""#));
    assert!(html.contains(r#"data-label="Never used" data-value="2" data-fill="dotted""#));
    assert!(html.contains(r#"data-label="alice" data-value="5""#));
}
