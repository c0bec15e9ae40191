//! aws-sdk-rust paginators against the server: every item exactly once, in (DateCreated,
//! PersonalAccessTokenId) order, for ListPersonalAccessTokens (whole org and per user), ListUsers and
//! ListOrganizations; a property test over page sizes; and a walk with concurrent creates and deletes.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_workmail::Client;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::Value;

/// (DateCreated in ms, PersonalAccessTokenId) from a 201 body of the web API.
fn key_of(body: &Value) -> (i64, String) {
    let secs = body["DateCreated"].as_f64().expect("DateCreated");
    (
        (secs * 1000.0).round() as i64,
        body["PersonalAccessTokenId"].as_str().unwrap().to_string(),
    )
}

struct Fixture {
    server: Server,
    client: Client,
    org: Org,
    bob: User,
    /// Expected whole-org order.
    all: Vec<String>,
    alice_ids: Vec<String>,
    bob_ids: Vec<String>,
}

/// An org with `n_alice` + `n_bob` tokens, created by 8 concurrent tasks so that many share a millisecond
/// (exercising the PersonalAccessTokenId tie-break).
async fn fixture(n_alice: usize, n_bob: usize) -> Fixture {
    let server = Server::start();
    let client = server.client();
    let org = setup_org(&client, "pages", Some(30)).await;
    let bob = create_enabled_user(&client, &org.id, "pages", "bob").await;
    let web = server.web();
    let s_alice = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let s_bob = web.sign_in(&org.id, &bob.name, PASSWORD).await;
    let mut jobs: Vec<(String, String)> = Vec::new();
    for i in 0..n_alice.max(n_bob) {
        if i < n_alice {
            jobs.push((s_alice.clone(), format!("alice-{i}")));
        }
        if i < n_bob {
            jobs.push((s_bob.clone(), format!("bob-{i}")));
        }
    }
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let mut handles = Vec::new();
    for _ in 0..8 {
        let jobs = jobs.clone();
        let web = web.clone();
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let job = jobs.lock().unwrap().pop();
                let Some((session, name)) = job else { break };
                let body = web.create_pat(&session, &name, None).await;
                out.push((name, body));
            }
            out
        }));
    }
    let mut created: Vec<(String, Value)> = Vec::new();
    for h in handles {
        created.extend(h.await.unwrap());
    }
    let mut keyed: Vec<((i64, String), bool)> = created
        .iter()
        .map(|(name, body)| (key_of(body), name.starts_with("alice")))
        .collect();
    keyed.sort();
    let ties = keyed.windows(2).filter(|w| w[0].0.0 == w[1].0.0).count();
    eprintln!(
        "fixture: {} tokens, {ties} neighbours share a DateCreated millisecond",
        keyed.len()
    );
    let all: Vec<String> = keyed.iter().map(|((_, id), _)| id.clone()).collect();
    let alice_ids = keyed
        .iter()
        .filter(|(_, a)| *a)
        .map(|((_, id), _)| id.clone())
        .collect();
    let bob_ids = keyed
        .iter()
        .filter(|(_, a)| !*a)
        .map(|((_, id), _)| id.clone())
        .collect();
    Fixture {
        server,
        client,
        org,
        bob,
        all,
        alice_ids,
        bob_ids,
    }
}

/// Walk with the SDK item paginator.
async fn walk_items(
    client: &Client,
    org: &str,
    user: Option<&str>,
    page_size: Option<i32>,
) -> Vec<String> {
    let mut p = client
        .list_personal_access_tokens()
        .organization_id(org)
        .set_user_id(user.map(str::to_string))
        .into_paginator();
    if let Some(n) = page_size {
        p = p.page_size(n);
    }
    let items = p.items().send().try_collect().await;
    let items = match items {
        Ok(v) => v,
        Err(e) => panic!("paginator failed: {}", show(&e)),
    };
    items
        .into_iter()
        .map(|s| s.personal_access_token_id().unwrap().to_string())
        .collect()
}

/// A page as seen by the SDK page paginator: (ids, (DateCreated ms, id) keys, NextToken).
type Page = (Vec<String>, Vec<(i64, String)>, Option<String>);

async fn walk_pages(client: &Client, org: &str, user: Option<&str>, page_size: i32) -> Vec<Page> {
    let mut stream = client
        .list_personal_access_tokens()
        .organization_id(org)
        .set_user_id(user.map(str::to_string))
        .into_paginator()
        .page_size(page_size)
        .send();
    let mut pages = Vec::new();
    while let Some(page) = stream.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => panic!("page failed: {}", show(&e)),
        };
        let ids = page
            .personal_access_token_summaries()
            .iter()
            .map(|s| s.personal_access_token_id().unwrap().to_string())
            .collect();
        let keys = page
            .personal_access_token_summaries()
            .iter()
            .map(|s| {
                (
                    millis(s.date_created().unwrap()),
                    s.personal_access_token_id().unwrap().to_string(),
                )
            })
            .collect();
        pages.push((ids, keys, page.next_token().map(str::to_string)));
    }
    pages
}

/// Structural checks of a finished walk; returns the concatenated ids.
fn check_pages(pages: &[Page], page_size: i32) -> Result<Vec<String>, String> {
    if pages.is_empty() {
        return Err("no page at all".into());
    }
    for (i, (ids, _, next)) in pages.iter().enumerate() {
        let last = i + 1 == pages.len();
        if ids.len() > page_size as usize {
            return Err(format!(
                "page {i} has {} items > MaxResults {page_size}",
                ids.len()
            ));
        }
        if next.is_some() && ids.is_empty() {
            return Err(format!("page {i} is empty but carries a NextToken"));
        }
        if last && next.is_some() {
            return Err("last page carries a NextToken".into());
        }
        if !last && next.is_none() {
            return Err(format!("page {i} has no NextToken but the SDK went on"));
        }
        if next.as_deref() == Some("") {
            return Err(format!("page {i} has an empty NextToken instead of none"));
        }
    }
    let keys: Vec<&(i64, String)> = pages.iter().flat_map(|(_, k, _)| k.iter()).collect();
    for w in keys.windows(2) {
        if w[0] >= w[1] {
            return Err(format!(
                "not strictly ordered by (DateCreated, PersonalAccessTokenId): {:?} then {:?}",
                w[0], w[1]
            ));
        }
    }
    Ok(pages
        .iter()
        .flat_map(|(ids, _, _)| ids.iter().cloned())
        .collect())
}

fn assert_no_duplicates(ids: &[String]) {
    let mut seen = HashSet::new();
    for id in ids {
        assert!(seen.insert(id), "{id} returned twice");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pat_walks_whole_org_and_per_user() {
    let fx = fixture(150, 70).await;
    assert_eq!(fx.all.len(), 220);
    let org = &fx.org.id;

    // Default MaxResults is 100.
    let first = ok(fx
        .client
        .list_personal_access_tokens()
        .organization_id(org)
        .send()
        .await);
    assert_eq!(
        first.personal_access_token_summaries().len(),
        100,
        "default MaxResults 100 (D4)"
    );
    assert!(first.next_token().is_some());

    for n in [None, Some(1), Some(7), Some(100)] {
        let got = walk_items(&fx.client, org, None, n).await;
        assert_no_duplicates(&got);
        assert_eq!(got, fx.all, "whole-org walk, page size {n:?}");
    }
    for n in [3, 100] {
        let pages = walk_pages(&fx.client, org, None, n).await;
        let ids = check_pages(&pages, n).unwrap_or_else(|e| panic!("page size {n}: {e}"));
        assert_eq!(ids, fx.all);
    }
    // Exactly-fitting last page: 220 = 2 * 110, 4 * 55 -> the last full page must not carry a NextToken.
    for n in [55, 44, 20] {
        let pages = walk_pages(&fx.client, org, None, n).await;
        assert_eq!(
            pages.len(),
            220 / n as usize,
            "page size {n}: an empty trailing page was produced"
        );
        assert_eq!(check_pages(&pages, n).unwrap(), fx.all);
    }

    for (who, key, expected) in [
        ("alice by id", fx.org.user.id.as_str(), &fx.alice_ids),
        ("alice by name", fx.org.user.name.as_str(), &fx.alice_ids),
        ("alice by email", fx.org.user.email.as_str(), &fx.alice_ids),
        ("bob by id", fx.bob.id.as_str(), &fx.bob_ids),
    ] {
        for n in [Some(4), Some(70)] {
            let got = walk_items(&fx.client, org, Some(key), n).await;
            assert_eq!(&got, expected, "{who}, page size {n:?}");
        }
    }
    let pages = walk_pages(&fx.client, org, Some(&fx.bob.email), 70).await;
    assert_eq!(
        pages.len(),
        1,
        "70 items with MaxResults 70 is one page without NextToken"
    );
    assert_eq!(check_pages(&pages, 70).unwrap(), fx.bob_ids);

    // An org without tokens: one empty page, no NextToken.
    let other = setup_org(&fx.client, "empty", Some(30)).await;
    let pages = walk_pages(&fx.client, &other.id, None, 5).await;
    assert_eq!(pages.len(), 1);
    assert!(pages[0].0.is_empty() && pages[0].2.is_none());
    drop(fx.server);
}

#[test]
fn proptest_page_sizes_concatenate_to_full_list() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = rt.block_on(fixture(160, 60));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(1i32..=100, 0u8..3), |(n, scope)| {
            let (user, expected) = match scope {
                0 => (None, &fx.all),
                1 => (Some(fx.org.user.name.as_str()), &fx.alice_ids),
                _ => (Some(fx.bob.id.as_str()), &fx.bob_ids),
            };
            let pages = rt.block_on(walk_pages(&fx.client, &fx.org.id, user, n));
            let ids = check_pages(&pages, n).map_err(TestCaseError::fail)?;
            let mut seen = HashSet::new();
            for id in &ids {
                prop_assert!(
                    seen.insert(id.clone()),
                    "duplicate {} (page size {})",
                    id,
                    n
                );
            }
            prop_assert_eq!(&ids, expected, "page size {}, user {:?}", n, user);
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn list_users_walk() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "people").await;
    let mut ids = Vec::new();
    for i in 0..23 {
        // No password: avoids Argon2 work, users need none to be listed.
        let out = ok(client
            .create_user()
            .organization_id(&org)
            .name(format!("user{i:02}"))
            .display_name(format!("User {i}"))
            .send()
            .await);
        ids.push(out.user_id().unwrap().to_string());
    }
    ok(client
        .delete_user()
        .organization_id(&org)
        .user_id("user05")
        .send()
        .await);
    for n in [1, 4, 23, 100] {
        // This SDK's ListUsers paginator has no items(): flatten the pages.
        let pages = client
            .list_users()
            .organization_id(&org)
            .into_paginator()
            .page_size(n)
            .send()
            .try_collect()
            .await;
        let pages = pages.unwrap_or_else(|e| panic!("ListUsers paginator: {}", show(&e)));
        let got: Vec<_> = pages
            .iter()
            .flat_map(|p| p.users())
            .map(|u| u.id().unwrap().to_string())
            .collect();
        assert_eq!(
            got, ids,
            "ListUsers walk with page size {n} (creation order, DELETED included)"
        );
    }
    // Pages: none empty with a token, last without.
    let mut stream = client
        .list_users()
        .organization_id(&org)
        .into_paginator()
        .page_size(5)
        .send();
    let mut pages = Vec::new();
    while let Some(p) = stream.next().await {
        let p = ok(p);
        pages.push((p.users().len(), p.next_token().map(str::to_string)));
    }
    assert_eq!(pages.len(), 5, "{pages:?}");
    assert!(
        pages[..4].iter().all(|(n, t)| *n > 0 && t.is_some()),
        "{pages:?}"
    );
    assert!(pages[4].1.is_none(), "{pages:?}");
    assert_eq!(pages.iter().map(|(n, _)| n).sum::<usize>(), 23);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_organizations_walk() {
    let server = Server::start();
    let client = server.client();
    let other = server.client_for("999999999999", REGION);
    create_org(&other, "foreign").await;
    let mut ids = Vec::new();
    for i in 0..21 {
        ids.push(create_org(&client, &format!("org{i}")).await);
    }
    ok(client
        .delete_organization()
        .organization_id(&ids[3])
        .delete_directory(true)
        .send()
        .await);
    for n in [1, 2, 20, 21, 100] {
        let pages = client
            .list_organizations()
            .into_paginator()
            .page_size(n)
            .send()
            .try_collect()
            .await;
        let pages = pages.unwrap_or_else(|e| panic!("ListOrganizations paginator: {}", show(&e)));
        let got: Vec<_> = pages
            .iter()
            .flat_map(|p| p.organization_summaries())
            .map(|o| o.organization_id().unwrap().to_string())
            .collect();
        assert_eq!(
            got, ids,
            "ListOrganizations walk with page size {n} (Deleted included, foreign excluded)"
        );
    }
    let mut stream = client
        .list_organizations()
        .into_paginator()
        .page_size(7)
        .send();
    let mut count = 0;
    let mut last_token = Some(String::new());
    while let Some(p) = stream.next().await {
        let p = ok(p);
        assert!(!p.organization_summaries().is_empty());
        count += 1;
        last_token = p.next_token().map(str::to_string);
    }
    assert_eq!(count, 3);
    assert!(last_token.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn walk_during_concurrent_creates_and_deletes() {
    const INITIAL: usize = 240;
    let fx = fixture(INITIAL, 0).await;
    let web = fx.server.web();
    let session = web.sign_in(&fx.org.id, &fx.org.user.name, PASSWORD).await;

    // Delete every third initial token during the walk; the others exist for the whole walk.
    let doomed: Vec<String> = fx
        .all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(_, id)| id.clone())
        .collect();
    let stable: Vec<String> = fx
        .all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 1)
        .map(|(_, id)| id.clone())
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let pages_done = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let deleted = Arc::new(AtomicUsize::new(0));

    // Creator: new tokens through the web API until the walk ends.
    let creator = {
        let (stop, created, web, session) =
            (stop.clone(), created.clone(), web.clone(), session.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let body = web.create_pat(&session, &format!("new-{i}"), None).await;
                ids.push(body["PersonalAccessTokenId"].as_str().unwrap().to_string());
                created.fetch_add(1, Ordering::SeqCst);
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            ids
        })
    };
    // Deleter: doomed tokens through DeletePersonalAccessToken, in a scattered order, paced by the walk.
    let deleter = {
        let (stop, deleted, pages_done) = (stop.clone(), deleted.clone(), pages_done.clone());
        let client = fx.client.clone();
        let org = fx.org.id.clone();
        let mut order = doomed.clone();
        // Interleave from both ends so deletions hit both walked and unwalked regions.
        let mut scattered = Vec::new();
        while !order.is_empty() {
            scattered.push(order.remove(0));
            if let Some(x) = order.pop() {
                scattered.push(x);
            }
        }
        tokio::spawn(async move {
            for id in scattered {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // Keep deleting while the walk runs; wait for the walk to start.
                while pages_done.load(Ordering::SeqCst) == 0 && !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                ok(client
                    .delete_personal_access_token()
                    .organization_id(&org)
                    .personal_access_token_id(&id)
                    .send()
                    .await);
                deleted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    // Walker: SDK page paginator, page size 6, with a short pause between pages.
    let mut stream = fx
        .client
        .list_personal_access_tokens()
        .organization_id(&fx.org.id)
        .into_paginator()
        .page_size(6)
        .send();
    let mut pages: Vec<Page> = Vec::new();
    let mut deleted_at_start = None;
    while let Some(p) = stream.next().await {
        let p = ok(p);
        let ids: Vec<String> = p
            .personal_access_token_summaries()
            .iter()
            .map(|s| s.personal_access_token_id().unwrap().to_string())
            .collect();
        let keys = p
            .personal_access_token_summaries()
            .iter()
            .map(|s| {
                (
                    millis(s.date_created().unwrap()),
                    s.personal_access_token_id().unwrap().to_string(),
                )
            })
            .collect();
        pages.push((ids, keys, p.next_token().map(str::to_string)));
        if pages_done.fetch_add(1, Ordering::SeqCst) == 0 {
            deleted_at_start = Some(deleted.load(Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    let deleted_during = deleted.load(Ordering::SeqCst) - deleted_at_start.unwrap_or(0);
    let created_during = created.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let new_ids = creator.await.unwrap();
    deleter.await.unwrap();

    eprintln!(
        "concurrent walk: {} pages, {deleted_during} deletions and {created_during} creations during the walk",
        pages.len()
    );
    assert!(
        deleted_during >= 10,
        "too few deletions overlapped the walk ({deleted_during}); test is not exercising concurrency"
    );
    assert!(
        created_during >= 10,
        "too few creations overlapped the walk ({created_during})"
    );

    let ids = check_pages(&pages, 6).unwrap_or_else(|e| panic!("{e}"));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "tokens returned more than once: {dups:?}");
    let missing: Vec<_> = stable
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} tokens that existed for the whole walk were skipped: {missing:?}",
        missing.len()
    );
    let known: HashSet<&str> = fx
        .all
        .iter()
        .chain(new_ids.iter())
        .map(String::as_str)
        .collect();
    let unknown: Vec<_> = ids
        .iter()
        .filter(|id| !known.contains(id.as_str()))
        .collect();
    assert!(unknown.is_empty(), "ids never created: {unknown:?}");

    // After the dust settles, a fresh walk is exactly stable + surviving new tokens, in order.
    let final_ids = walk_items(&fx.client, &fx.org.id, None, Some(50)).await;
    assert_no_duplicates(&final_ids);
    let doomed_left: Vec<_> = final_ids.iter().filter(|id| doomed.contains(id)).collect();
    let expected_doomed_left = doomed.len() - deleted.load(Ordering::SeqCst);
    assert_eq!(
        doomed_left.len(),
        expected_doomed_left,
        "deleted tokens still listed"
    );
    for id in &stable {
        assert!(final_ids.contains(id));
    }
    for id in &new_ids {
        assert!(
            final_ids.contains(id),
            "created token {id} missing from the final walk"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn default_page_size_is_100_for_users_and_organizations() {
    let server = Server::start();
    let client = server.client();
    let mut orgs = Vec::new();
    for i in 0..103 {
        orgs.push(create_org(&client, &format!("many{i}")).await);
    }
    let first = ok(client.list_organizations().send().await);
    assert_eq!(
        first.organization_summaries().len(),
        100,
        "default MaxResults 100 (D4)"
    );
    let token = first
        .next_token()
        .expect("NextToken after 100 of 103")
        .to_string();
    let second = ok(client.list_organizations().next_token(token).send().await);
    assert_eq!(second.organization_summaries().len(), 3);
    assert!(second.next_token().is_none());

    let org = &orgs[0];
    let mut users = Vec::new();
    for i in 0..101 {
        let out = ok(client
            .create_user()
            .organization_id(org)
            .name(format!("m{i:03}"))
            .display_name("M")
            .send()
            .await);
        users.push(out.user_id().unwrap().to_string());
    }
    let first = ok(client.list_users().organization_id(org).send().await);
    assert_eq!(first.users().len(), 100, "default MaxResults 100 (D4)");
    let second = ok(client
        .list_users()
        .organization_id(org)
        .next_token(first.next_token().expect("NextToken"))
        .send()
        .await);
    let got: Vec<_> = first
        .users()
        .iter()
        .chain(second.users())
        .map(|u| u.id().unwrap().to_string())
        .collect();
    assert_eq!(got, users);
    assert!(second.next_token().is_none());
}
