//! NextToken is opaque, tamper-proof and bound to account, region, operation, organization and the resolved
//! UserId filter: every misuse is an InvalidParameterException with one fixed message.

mod common;

use std::collections::BTreeSet;

use aws_sdk_workmail::Client;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;

/// Outcome of one ListPersonalAccessTokens call: Ok(ids) or Err((code, message)).
type Outcome = Result<Vec<String>, (String, String)>;

async fn list_pats(
    client: &Client,
    org: &str,
    user: Option<&str>,
    token: Option<&str>,
    max: i32,
) -> Outcome {
    let r = client
        .list_personal_access_tokens()
        .organization_id(org)
        .set_user_id(user.map(str::to_string))
        .set_next_token(token.map(str::to_string))
        .max_results(max)
        .send()
        .await;
    match r {
        Ok(o) => Ok(o
            .personal_access_token_summaries()
            .iter()
            .map(|s| s.personal_access_token_id().unwrap().to_string())
            .collect()),
        Err(e) => Err((
            code_of(&e).unwrap_or_else(|| format!("no code: {}", show(&e))),
            message_of(&e).unwrap_or_default(),
        )),
    }
}

async fn first_token(client: &Client, org: &str, user: Option<&str>) -> String {
    let o = ok(client
        .list_personal_access_tokens()
        .organization_id(org)
        .set_user_id(user.map(str::to_string))
        .max_results(2)
        .send()
        .await);
    o.next_token()
        .expect("NextToken on a partial page")
        .to_string()
}

/// Assert `outcome` is InvalidParameterException; return its message.
#[track_caller]
fn invalid(outcome: Outcome, what: &str) -> String {
    match outcome {
        Ok(ids) => panic!("{what}: accepted, returned {ids:?}"),
        Err((code, msg)) => {
            assert_eq!(code, "InvalidParameterException", "{what}: {msg}");
            msg
        }
    }
}

struct Fx {
    server: Server,
    client: Client,
    org: Org,
    bob: User,
    org2: Org,
}

/// Org 1: alice with 6 tokens, bob with 6 tokens. Org 2 (same account/region): alice with 6 tokens.
async fn fixture() -> Fx {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "tok1", Some(30)).await;
    let bob = create_enabled_user(&client, &org.id, "tok1", "bob").await;
    let org2 = setup_org(&client, "tok2", Some(30)).await;
    let sa = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let sb = web.sign_in(&org.id, &bob.name, PASSWORD).await;
    let s2 = web.sign_in(&org2.id, &org2.user.name, PASSWORD).await;
    create_pats(&web, &sa, "a", 6).await;
    create_pats(&web, &sb, "b", 6).await;
    create_pats(&web, &s2, "c", 6).await;
    Fx {
        server,
        client,
        org,
        bob,
        org2,
    }
}

/// Which standard encoding the token uses (round-trips exactly), if any.
fn detect_encoding(token: &str) -> Option<(&'static str, Vec<u8>)> {
    let engines: [(&str, &base64::engine::GeneralPurpose); 4] = [
        ("base64url", &URL_SAFE_NO_PAD),
        ("base64url-pad", &URL_SAFE),
        ("base64", &STANDARD),
        ("base64-nopad", &STANDARD_NO_PAD),
    ];
    for (name, e) in engines {
        if let Ok(bytes) = e.decode(token)
            && e.encode(&bytes) == token
        {
            return Some((name, bytes));
        }
    }
    if let Ok(bytes) = hex::decode(token)
        && hex::encode(&bytes) == token
    {
        return Some(("hex", bytes));
    }
    None
}

fn encode_as(kind: &str, bytes: &[u8]) -> String {
    match kind {
        "base64url" => URL_SAFE_NO_PAD.encode(bytes),
        "base64url-pad" => URL_SAFE.encode(bytes),
        "base64" => STANDARD.encode(bytes),
        "base64-nopad" => STANDARD_NO_PAD.encode(bytes),
        _ => hex::encode(bytes),
    }
}

/// Every decoding we can think of, for the opacity check.
fn all_decodings(token: &str) -> Vec<Vec<u8>> {
    let mut out = vec![token.as_bytes().to_vec()];
    for e in [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD] {
        if let Ok(b) = e.decode(token) {
            out.push(b);
        }
        if let Ok(b) = e.decode(token.trim_end_matches('=')) {
            out.push(b);
        }
    }
    if let Ok(b) = hex::decode(token) {
        out.push(b);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_tokens_are_rejected_with_one_message() {
    let fx = fixture().await;
    let (c, org) = (&fx.client, fx.org.id.as_str());
    let token = first_token(c, org, None).await;
    assert!(
        token.len() <= 1024,
        "NextToken longer than the model's 1024: {}",
        token.len()
    );
    // The genuine token works.
    let genuine = list_pats(c, org, None, Some(&token), 2)
        .await
        .expect("genuine token accepted");
    assert_eq!(genuine.len(), 2);

    let mut messages = BTreeSet::new();
    let mut tried = 0;
    match detect_encoding(&token) {
        Some((kind, bytes)) => {
            eprintln!("NextToken is {kind}, {} bytes: {token}", bytes.len());
            // Flip every bit of the decoded token (the whole token is a few hundred bits).
            for i in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[i / 8] ^= 1 << (i % 8);
                let t = encode_as(kind, &b);
                messages.insert(invalid(
                    list_pats(c, org, None, Some(&t), 2).await,
                    &format!("bit {i} flipped ({kind})"),
                ));
                tried += 1;
            }
            // Truncated and extended byte strings.
            for t in [
                encode_as(kind, &bytes[..bytes.len() - 1]),
                encode_as(kind, &bytes[..bytes.len() / 2]),
                encode_as(kind, &bytes[..1]),
                encode_as(kind, &[bytes.as_slice(), &[0u8]].concat()),
                encode_as(kind, &[]),
            ] {
                if t.is_empty() {
                    continue;
                }
                messages.insert(invalid(
                    list_pats(c, org, None, Some(&t), 2).await,
                    &format!("resized token {t}"),
                ));
                tried += 1;
            }
        }
        None => {
            // Unknown alphabet: substitute every character but the last (which may only carry padding bits).
            let chars: Vec<char> = token.chars().collect();
            for i in 0..chars.len().saturating_sub(1) {
                let mut t = chars.clone();
                t[i] = if t[i] == 'A' { 'B' } else { 'A' };
                let t: String = t.into_iter().collect();
                messages.insert(invalid(
                    list_pats(c, org, None, Some(&t), 2).await,
                    &format!("char {i} replaced"),
                ));
                tried += 1;
            }
        }
    }
    assert!(tried >= 100, "only {tried} tamperings tried");
    // Malformed strings.
    for (what, t) in [
        (
            "truncated by one char",
            token[..token.len() - 1].to_string(),
        ),
        ("half", token[..token.len() / 2].to_string()),
        ("extra char", format!("{token}A")),
        ("garbage", "!!!not a token!!!".to_string()),
        ("unicode", "ééé—∆".to_string()),
        ("one char", "A".to_string()),
        ("1024 chars", "A".repeat(1024)),
        ("whitespace", " ".to_string()),
    ] {
        messages.insert(invalid(list_pats(c, org, None, Some(&t), 2).await, what));
    }
    // Model-constraint violations (length 1..1024) are InvalidParameterException too, but may name the field.
    invalid(
        list_pats(c, org, None, Some(&"A".repeat(1025)), 2).await,
        "1025 chars",
    );
    invalid(
        list_pats(c, org, None, Some(""), 2).await,
        "empty NextToken",
    );
    assert_eq!(
        messages.len(),
        1,
        "bad NextTokens must all get one fixed message, got {messages:?}"
    );
    let msg = messages.into_iter().next().unwrap();
    assert!(
        !msg.contains(org),
        "message leaks the organization id: {msg}"
    );

    // The genuine token still works afterwards (no lock-out), and works twice.
    assert_eq!(
        list_pats(c, org, None, Some(&token), 2).await.unwrap(),
        genuine
    );
    assert_eq!(
        list_pats(c, org, None, Some(&token), 2).await.unwrap(),
        genuine
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_bound_to_their_request() {
    let fx = fixture().await;
    let c = &fx.client;
    let org = fx.org.id.as_str();
    let alice = &fx.org.user;

    let t_org = first_token(c, org, None).await;
    let t_alice = first_token(c, org, Some(&alice.id)).await;
    let mut messages = BTreeSet::new();

    // Another organization of the same account and region.
    messages.insert(invalid(
        list_pats(c, &fx.org2.id, None, Some(&t_org), 2).await,
        "whole-org token on org2",
    ));
    messages.insert(invalid(
        list_pats(c, &fx.org2.id, Some(&fx.org2.user.id), Some(&t_alice), 2).await,
        "user token on org2",
    ));
    // Another UserId filter (including none vs some).
    messages.insert(invalid(
        list_pats(c, org, Some(&alice.id), Some(&t_org), 2).await,
        "org token with UserId",
    ));
    messages.insert(invalid(
        list_pats(c, org, None, Some(&t_alice), 2).await,
        "user token without UserId",
    ));
    messages.insert(invalid(
        list_pats(c, org, Some(&fx.bob.id), Some(&t_alice), 2).await,
        "alice token for bob",
    ));
    messages.insert(invalid(
        list_pats(c, org, Some(&fx.bob.email), Some(&t_alice), 2).await,
        "alice token for bob's email",
    ));

    // The filter is bound after resolution: alice's id, name and email are the same filter.
    let by_id = list_pats(c, org, Some(&alice.id), Some(&t_alice), 2)
        .await
        .expect("same user by id");
    let by_name = list_pats(c, org, Some(&alice.name), Some(&t_alice), 2)
        .await
        .expect("same user by name");
    let by_email = list_pats(c, org, Some(&alice.email), Some(&t_alice), 2)
        .await
        .expect("same user by email");
    assert_eq!(by_id, by_name);
    assert_eq!(by_id, by_email);
    // MaxResults is not part of the binding.
    let three = list_pats(c, org, Some(&alice.name), Some(&t_alice), 3)
        .await
        .expect("other MaxResults");
    assert_eq!(three.len(), 3);
    assert_eq!(three[..2], by_id[..]);

    // Another operation: ListUsers <-> ListPersonalAccessTokens, ListOrganizations -> either.
    let lu = ok(c
        .list_users()
        .organization_id(org)
        .max_results(1)
        .send()
        .await);
    let t_users = lu.next_token().expect("ListUsers NextToken").to_string();
    messages.insert(invalid(
        list_pats(c, org, None, Some(&t_users), 2).await,
        "ListUsers token on ListPersonalAccessTokens",
    ));
    let e = c
        .list_users()
        .organization_id(org)
        .next_token(&t_org)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("InvalidParameterException"),
        "{}",
        show(&e)
    );
    messages.insert(message_of(&e).unwrap_or_default());
    let lo = ok(c.list_organizations().max_results(1).send().await);
    let t_orgs = lo
        .next_token()
        .expect("ListOrganizations NextToken")
        .to_string();
    messages.insert(invalid(
        list_pats(c, org, None, Some(&t_orgs), 2).await,
        "ListOrganizations token on ListPersonalAccessTokens",
    ));
    let e = c
        .list_organizations()
        .next_token(&t_org)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("InvalidParameterException"),
        "{}",
        show(&e)
    );
    messages.insert(message_of(&e).unwrap_or_default());
    let e = c
        .list_users()
        .organization_id(org)
        .next_token(&t_orgs)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("InvalidParameterException"),
        "{}",
        show(&e)
    );
    messages.insert(message_of(&e).unwrap_or_default());
    // ListUsers tokens are bound to the filter too.
    let e = c
        .list_users()
        .organization_id(org)
        .filters(
            aws_sdk_workmail::types::ListUsersFilters::builder()
                .username_prefix("a")
                .build(),
        )
        .next_token(&t_users)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("InvalidParameterException"),
        "ListUsers token with a new filter: {}",
        show(&e)
    );
    messages.insert(message_of(&e).unwrap_or_default());
    // The genuine ListUsers token works.
    ok(c.list_users()
        .organization_id(org)
        .next_token(&t_users)
        .send()
        .await);

    // A garbage token, for the reference message.
    messages.insert(invalid(
        list_pats(c, org, None, Some("garbage"), 2).await,
        "garbage",
    ));
    assert_eq!(
        messages.len(),
        1,
        "every bad NextToken must get one identical message: {messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_bound_to_account_and_region() {
    let server = Server::start();
    let web = server.web();
    let a = server.client_for("111111111111", "us-east-1");
    let b = server.client_for("222222222222", "us-east-1");
    let a_west = server.client_for("111111111111", "eu-west-1");
    let mut orgs = Vec::new();
    for (c, alias) in [(&a, "acct"), (&b, "acct"), (&a_west, "acct")] {
        let o = setup_org(c, alias, Some(30)).await;
        let s = web.sign_in(&o.id, &o.user.name, PASSWORD).await;
        create_pats(&web, &s, "t", 5).await;
        orgs.push(o);
    }
    let t_a = first_token(&a, &orgs[0].id, None).await;
    let t_b = first_token(&b, &orgs[1].id, None).await;
    let t_west = first_token(&a_west, &orgs[2].id, None).await;
    let reference = invalid(
        list_pats(&a, &orgs[0].id, None, Some("garbage"), 2).await,
        "garbage",
    );

    // Each token used by the other partitions, on their own orgs.
    for (what, client, org, token) in [
        ("account A token in account B", &b, &orgs[1].id, &t_a),
        ("account B token in account A", &a, &orgs[0].id, &t_b),
        ("us-east-1 token in eu-west-1", &a_west, &orgs[2].id, &t_a),
        ("eu-west-1 token in us-east-1", &a, &orgs[0].id, &t_west),
    ] {
        let msg = invalid(list_pats(client, org, None, Some(token), 2).await, what);
        assert_eq!(msg, reference, "{what}: message differs from the fixed one");
    }
    // On the foreign org itself the caller cannot see the org at all, whatever the token.
    for (what, client, org, token) in [
        ("B on A's org with A's token", &b, &orgs[0].id, &t_a),
        ("west on A's org with A's token", &a_west, &orgs[0].id, &t_a),
    ] {
        match list_pats(client, org, None, Some(token), 2).await {
            Ok(ids) => panic!("{what}: accepted, returned {ids:?}"),
            Err((code, _)) => assert!(
                code == "OrganizationNotFoundException" || code == "InvalidParameterException",
                "{what}: {code}"
            ),
        }
    }
    // The genuine tokens work.
    list_pats(&a, &orgs[0].id, None, Some(&t_a), 2)
        .await
        .unwrap();
    list_pats(&b, &orgs[1].id, None, Some(&t_b), 2)
        .await
        .unwrap();
    list_pats(&a_west, &orgs[2].id, None, Some(&t_west), 2)
        .await
        .unwrap();

    // ListOrganizations tokens across accounts and regions.
    for c in [&a, &b] {
        create_org(c, "extra1").await;
        create_org(c, "extra2").await;
    }
    let lo_a = ok(a.list_organizations().max_results(1).send().await)
        .next_token()
        .unwrap()
        .to_string();
    let e = b
        .list_organizations()
        .next_token(&lo_a)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "ListOrganizations token of A in B"
    );
    let e = a_west
        .list_organizations()
        .next_token(&lo_a)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "ListOrganizations token of us-east-1 in eu-west-1"
    );
    ok(a.list_organizations().next_token(&lo_a).send().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_do_not_reveal_their_contents() {
    let fx = fixture().await;
    let c = &fx.client;
    let org = fx.org.id.as_str();
    let alice = &fx.org.user;
    let first = ok(c
        .list_personal_access_tokens()
        .organization_id(org)
        .user_id(&alice.id)
        .max_results(2)
        .send()
        .await);
    let last_pat = first.personal_access_token_summaries()[1]
        .personal_access_token_id()
        .unwrap()
        .to_string();
    let t_user = first.next_token().unwrap().to_string();
    let t_org = first_token(c, org, None).await;
    let t_users = ok(c
        .list_users()
        .organization_id(org)
        .max_results(1)
        .send()
        .await)
    .next_token()
    .unwrap()
    .to_string();

    let org_hex = &org[2..];
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("org id".into(), org.as_bytes().to_vec()),
        ("org id hex part".into(), org_hex.as_bytes().to_vec()),
        ("org id raw bytes".into(), hex::decode(org_hex).unwrap()),
        ("user id".into(), alice.id.as_bytes().to_vec()),
        (
            "user id raw bytes".into(),
            hex::decode(alice.id.replace('-', "")).unwrap(),
        ),
        ("user name".into(), alice.name.as_bytes().to_vec()),
        ("account".into(), ACCOUNT.as_bytes().to_vec()),
        ("region".into(), REGION.as_bytes().to_vec()),
        (
            "last PAT id (position)".into(),
            last_pat.as_bytes().to_vec(),
        ),
        ("operation".into(), b"ListPersonalAccessTokens".to_vec()),
    ];
    if let Ok(raw) = hex::decode(&last_pat) {
        needles.push(("last PAT id raw bytes".into(), raw));
    }
    for (which, token) in [
        ("user-filtered", &t_user),
        ("whole-org", &t_org),
        ("ListUsers", &t_users),
    ] {
        for decoded in all_decodings(token) {
            for (what, needle) in &needles {
                // Ignore needles too short to be meaningful in random bytes.
                if needle.len() < 6 {
                    continue;
                }
                assert!(
                    !contains(&decoded, needle),
                    "{which} NextToken {token} reveals the {what}"
                );
            }
        }
    }
    // Encrypted with a fresh nonce or not, a token must not be the same for different positions/filters.
    assert_ne!(t_user, t_org);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_survive_restart_and_replicas_share_them() {
    let mut fx = fixture().await;
    let org = fx.org.id.clone();
    let token = first_token(&fx.client, &org, None).await;
    let expected = list_pats(&fx.client, &org, None, Some(&token), 2)
        .await
        .unwrap();

    // A replica on the same database (keys generated beside the SQLite file) accepts the token.
    let replica = fx.server.replica(&[]);
    assert_eq!(
        list_pats(&replica.client(), &org, None, Some(&token), 2)
            .await
            .unwrap(),
        expected
    );
    // A replica with a different token key rejects it.
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("other.key");
    std::fs::write(&key_file, "ab".repeat(32)).unwrap();
    let stranger = fx
        .server
        .replica(&["--token-key-file", key_file.to_str().unwrap()]);
    invalid(
        list_pats(&stranger.client(), &org, None, Some(&token), 2).await,
        "token sealed with another key",
    );
    drop(stranger);
    drop(replica);

    // After a restart of the only server the token still works.
    fx.server.stop();
    let restarted = fx.server.replica(&[]);
    assert_eq!(
        list_pats(&restarted.client(), &org, None, Some(&token), 2)
            .await
            .unwrap(),
        expected
    );
}
