//! One conformance suite for the `Store` trait, run against every backend (a real SQLite file, a PostgreSQL
//! database) as one test per case and backend. A new backend passes this suite before it is wired in, so orders,
//! uniqueness rules and lifecycles agree to the row.

use std::sync::Arc;

use workmail_pat::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PatStatus, PersonalAccessToken,
    Session, User, UserFilter, UserProfile, UserState, UserUpdate, new_directory_id, new_guid,
    new_org_id, org_state,
};
use workmail_pat::store::{self, Conflict, Idempotency, Idempotent, Store, StoreError};

#[path = "common/postgres.rs"]
mod pg;

/// What keeps a backend's storage alive for one test: a SQLite file's directory, or a throw-away PostgreSQL
/// database (dropped with it).
#[allow(dead_code)]
enum Storage {
    Dir(tempfile::TempDir),
    Postgres(pg::TestDb),
}

/// A fresh, empty store on a new SQLite file.
fn sqlite() -> (String, Arc<dyn Store>, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("conformance.db").display());
    let store = store::open(&url).unwrap();
    (url, store, Storage::Dir(dir))
}

/// A fresh, empty store on a new database of the test PostgreSQL server (see tests/common/postgres.rs), or `None`
/// with a visible skip notice when `WORKMAIL_PAT_TEST_POSTGRES` is not set (scripts/test.sh sets it; a set but
/// unreachable server fails the test).
fn postgres(case: &str) -> Option<(String, Arc<dyn Store>, Storage)> {
    if std::env::var_os("WORKMAIL_PAT_TEST_POSTGRES").is_none() {
        // Straight to stderr, past the test harness' capture, so the skip shows in every run.
        let notice = format!(
            "SKIPPED postgres::{case}: set WORKMAIL_PAT_TEST_POSTGRES=postgres://USER@HOST:PORT to run it\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
        return None;
    }
    let db = pg::TestDb::create("conf");
    let store = store::open(&db.url).unwrap();
    Some((db.url.clone(), store, Storage::Postgres(db)))
}

/// One `#[tokio::test]` per case and backend, `sqlite::<case>` and `postgres::<case>`, each on its own fresh store.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $case() {
                let (url, store, _storage) = super::sqlite();
                super::$case(url, store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $case() {
                if let Some((url, store, _storage)) = super::postgres(stringify!($case)) {
                    super::$case(url, store).await;
                }
            })*
        }
    };
}

conformance!(
    organizations_are_partitioned_ordered_and_unique_by_alias,
    client_tokens_replay_or_refuse,
    users_resolve_by_id_name_or_email_and_stay_unique,
    tokens_page_by_created_then_id_and_follow_their_owners,
    digests_find_tokens_and_sessions_expire_with_their_owner,
    identity_provider_configuration_round_trips,
    verify_lookup_joins_owner_organization_and_configuration,
    test_defect_10_nul_in_lookup_keys_matches_nothing,
    mail_domains_and_addresses_are_unique_and_released,
    stored_summaries_are_the_wire_form_of_their_tokens,
    stored_summaries_are_read_only_for_an_active_organization_and_a_live_user_id,
    imported_organizations_keep_their_domains_and_addresses,
    import_records_and_updates_of_imported_entities,
);

fn partition(account: &str) -> Partition {
    Partition {
        account: account.into(),
        region: "us-east-1".into(),
    }
}

fn org(p: &Partition, alias: &str, created_ms: i64) -> Organization {
    Organization {
        id: new_org_id(),
        account: p.account.clone(),
        region: p.region.clone(),
        alias: alias.into(),
        state: org_state::ACTIVE.into(),
        directory_id: new_directory_id(),
        directory_type: "VpcDirectory".into(),
        default_mail_domain: format!("{alias}.awsapps.com"),
        // Each organization its own extra domain: a domain belongs to one live organization per partition.
        domains: vec![format!("{}.example.com", alias.to_ascii_lowercase())],
        kms_key_arn: None,
        interoperability_enabled: false,
        created_ms,
        completed_ms: Some(created_ms),
    }
}

fn user(org_id: &str, name: &str, created_ms: i64) -> User {
    User {
        id: new_guid(),
        org_id: org_id.into(),
        name: name.into(),
        email: None,
        state: UserState::Disabled,
        role: "USER".into(),
        profile: UserProfile {
            display_name: format!("{name} display"),
            ..UserProfile::default()
        },
        identity_provider_user_id: None,
        enabled_ms: None,
        disabled_ms: None,
        mailbox_provisioned_ms: None,
        mailbox_deprovisioned_ms: None,
        created_ms,
        password_hash: Some("$argon2id$placeholder".into()),
    }
}

fn pat(org_id: &str, user_id: &str, created_ms: i64) -> PersonalAccessToken {
    PersonalAccessToken {
        id: new_guid(),
        org_id: org_id.into(),
        user_id: user_id.into(),
        name: format!("token {created_ms}"),
        scopes: vec!["IMAP".into(), "SMTP".into()],
        created_ms,
        last_used_ms: None,
        expires_ms: created_ms + 86_400_000,
    }
}

/// Every token of an organization (or of one user), walked page by page with `list_personal_access_tokens`.
async fn walk_tokens(
    s: &dyn Store,
    org_id: &str,
    user_id: Option<&str>,
    page_size: usize,
) -> Vec<PersonalAccessToken> {
    let (mut walked, mut after) = (Vec::new(), None);
    loop {
        let rows = s
            .list_personal_access_tokens(org_id, user_id, after, page_size)
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        after = Some(Cursor {
            created_ms: last.created_ms,
            id: last.id.clone(),
        });
        walked.extend(rows);
    }
    walked
}

fn digest(n: u8) -> [u8; 32] {
    [n; 32]
}

async fn organizations_are_partitioned_ordered_and_unique_by_alias(url: String, s: Arc<dyn Store>) {
    let a = partition("111111111111");
    let b = partition("222222222222");
    let o1 = org(&a, "acme", 1000);
    let o2 = org(&a, "beta", 1000);
    let o3 = org(&b, "acme", 500);
    for o in [&o1, &o2, &o3] {
        assert_eq!(
            s.create_organization(o.clone(), None).await.unwrap(),
            Idempotent::Done,
            "{url}"
        );
    }
    // Same alias in the same partition (any case) conflicts; in another partition it does not.
    let dup = org(&a, "ACME", 2000);
    assert!(matches!(
        s.create_organization(dup, None).await,
        Err(StoreError::Conflict(Conflict::Alias))
    ));
    assert_eq!(
        s.get_organization(&a, &o1.id).await.unwrap().as_ref(),
        Some(&o1)
    );
    assert_eq!(
        s.get_organization(&b, &o1.id).await.unwrap(),
        None,
        "{url}: partitions leak"
    );
    assert_eq!(
        s.find_organization(&o1.id).await.unwrap().as_ref(),
        Some(&o1)
    );

    let listed = s.list_organizations(&a, None, 10).await.unwrap();
    let mut expected = vec![o1.clone(), o2.clone()];
    expected.sort_by(|x, y| (x.created_ms, &x.id).cmp(&(y.created_ms, &y.id)));
    assert_eq!(listed, expected, "{url}");
    let after_first = s
        .list_organizations(
            &a,
            Some(Cursor {
                created_ms: expected[0].created_ms,
                id: expected[0].id.clone(),
            }),
            10,
        )
        .await
        .unwrap();
    assert_eq!(after_first, expected[1..].to_vec());

    // A Deleted organization frees its alias but stays visible.
    s.delete_organization(&o1.id).await.unwrap();
    let deleted = s.get_organization(&a, &o1.id).await.unwrap().unwrap();
    assert_eq!(deleted.state, org_state::DELETED);
    let again = org(&a, "acme", 3000);
    assert_eq!(
        s.create_organization(again, None).await.unwrap(),
        Idempotent::Done
    );
}

async fn client_tokens_replay_or_refuse(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let first = org(&p, "idem", 1000);
    let idem = |result: &str, hash: u8| Idempotency {
        operation: "CreateOrganization",
        token: "token-1".into(),
        request_hash: [hash; 32],
        result: result.into(),
        now_ms: 1000,
    };
    assert_eq!(
        s.create_organization(first.clone(), Some(idem(&first.id, 1)))
            .await
            .unwrap(),
        Idempotent::Done
    );
    let retry = org(&p, "idem", 1001);
    assert_eq!(
        s.create_organization(retry.clone(), Some(idem(&retry.id, 1)))
            .await
            .unwrap(),
        Idempotent::Replay(first.id.clone()),
        "{url}"
    );
    assert_eq!(
        s.create_organization(org(&p, "other", 1002), Some(idem("x", 2)))
            .await
            .unwrap(),
        Idempotent::Mismatch
    );
    // Only the first organization exists.
    assert_eq!(s.list_organizations(&p, None, 10).await.unwrap().len(), 1);
    // Remembered per partition and operation.
    let rec = s
        .get_client_token(&p, "CreateOrganization", "token-1", 2000)
        .await
        .unwrap();
    assert_eq!(rec.unwrap().result, first.id);
    assert!(
        s.get_client_token(
            &partition("111111111111"),
            "CreateOrganization",
            "token-1",
            2000
        )
        .await
        .unwrap()
        .is_none()
    );
    assert!(
        s.get_client_token(&p, "DeleteOrganization", "token-1", 2000)
            .await
            .unwrap()
            .is_none()
    );
    // Forgotten after 24 hours.
    assert!(
        s.get_client_token(&p, "CreateOrganization", "token-1", 1000 + 86_400_001)
            .await
            .unwrap()
            .is_none()
    );
}

async fn users_resolve_by_id_name_or_email_and_stay_unique(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "people", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    let alice = user(&o.id, "Alice", 10);
    s.create_user(alice.clone()).await.unwrap();
    assert!(
        matches!(
            s.create_user(user(&o.id, "alice", 11)).await,
            Err(StoreError::Conflict(Conflict::UserName))
        ),
        "{url}"
    );
    s.register_user(&alice.id, "alice@people.awsapps.com", 20)
        .await
        .unwrap();
    for ident in [
        alice.id.as_str(),
        "alice",
        "ALICE",
        "Alice@People.awsapps.com",
    ] {
        let found = s.find_user(&o.id, ident).await.unwrap().unwrap();
        assert_eq!(found.id, alice.id, "{url}: {ident}");
        assert_eq!(found.state, UserState::Enabled);
        assert_eq!(found.email.as_deref(), Some("alice@people.awsapps.com"));
        assert_eq!(found.enabled_ms, Some(20));
    }
    let bob = user(&o.id, "bob", 12);
    s.create_user(bob.clone()).await.unwrap();
    assert!(matches!(
        s.register_user(&bob.id, "ALICE@people.awsapps.com", 21)
            .await,
        Err(StoreError::Conflict(Conflict::Email))
    ));
    assert_eq!(s.count_enabled_users(&o.id).await.unwrap(), 1);

    // Deregistering releases the email; deleting frees the name, and a live user wins over the deleted one.
    s.deregister_user(&alice.id, 30).await.unwrap();
    s.register_user(&bob.id, "alice@people.awsapps.com", 31)
        .await
        .unwrap();
    s.deregister_user(&bob.id, 32).await.unwrap();
    s.delete_user(&alice.id, 40).await.unwrap();
    let alice2 = user(&o.id, "alice", 50);
    s.create_user(alice2.clone()).await.unwrap();
    assert_eq!(
        s.find_user(&o.id, "alice").await.unwrap().unwrap().id,
        alice2.id
    );
    assert_eq!(
        s.find_user(&o.id, &alice.id).await.unwrap().unwrap().state,
        UserState::Deleted
    );
    // The id-and-state lookup (verification, list filters) resolves exactly as the full one.
    for ident in [
        "alice",
        "ALICE",
        alice.id.as_str(),
        alice2.id.as_str(),
        "bob",
        bob.id.as_str(),
        "nobody",
    ] {
        let full = s.find_user(&o.id, ident).await.unwrap();
        assert_eq!(
            s.find_user_key(&o.id, ident).await.unwrap(),
            full.map(|u| (u.id, u.state)),
            "{url}: {ident}"
        );
    }

    // Updates change only what is given.
    s.update_user(
        &bob.id,
        UserUpdate {
            display_name: Some("Robert".into()),
            city: Some("Paris".into()),
            hidden_from_global_address_list: Some(true),
            identity_provider_user_id: Some(Some("12345678-1234-1234-1234-123456789012".into())),
            ..UserUpdate::default()
        },
    )
    .await
    .unwrap();
    let b = s.find_user(&o.id, "bob").await.unwrap().unwrap();
    assert_eq!(b.profile.display_name, "Robert");
    assert_eq!(b.profile.city.as_deref(), Some("Paris"));
    assert!(b.profile.hidden_from_global_address_list);
    assert_eq!(b.profile.first_name, None);
    s.update_user(
        &bob.id,
        UserUpdate {
            identity_provider_user_id: Some(None),
            ..UserUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.find_user(&o.id, "bob")
            .await
            .unwrap()
            .unwrap()
            .identity_provider_user_id,
        None
    );

    // Listing: (created, id) order, filters, DELETED users included.
    let all = s
        .list_users(&o.id, &UserFilter::None, None, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![alice.id.clone(), bob.id.clone(), alice2.id.clone()]
    );
    let deleted = s
        .list_users(&o.id, &UserFilter::State(UserState::Deleted), None, 100)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    let prefixed = s
        .list_users(&o.id, &UserFilter::UsernamePrefix("b".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(prefixed.len(), 1);
    let literal = s
        .list_users(&o.id, &UserFilter::UsernamePrefix("%".into()), None, 100)
        .await
        .unwrap();
    assert!(literal.is_empty(), "{url}: LIKE wildcards must be escaped");
    let display = s
        .list_users(
            &o.id,
            &UserFilter::DisplayNamePrefix("Rob".into()),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(display.len(), 1);
    let page = s
        .list_users(
            &o.id,
            &UserFilter::None,
            Some(Cursor {
                created_ms: 10,
                id: alice.id.clone(),
            }),
            1,
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, bob.id);
}

async fn tokens_page_by_created_then_id_and_follow_their_owners(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "tokens", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    let u1 = user(&o.id, "u1", 1);
    let u2 = user(&o.id, "u2", 2);
    s.create_user(u1.clone()).await.unwrap();
    s.create_user(u2.clone()).await.unwrap();
    let mut all = Vec::new();
    for i in 0..30u8 {
        // Many tokens share a creation time, so the id decides the order.
        let owner = if i % 3 == 0 { &u2 } else { &u1 };
        let t = pat(&o.id, &owner.id, 1000 + i64::from(i / 4));
        s.insert_personal_access_token(t.clone(), digest(i))
            .await
            .unwrap();
        all.push(t);
    }
    assert!(
        matches!(
            s.insert_personal_access_token(pat(&o.id, &u1.id, 5), digest(0))
                .await,
            Err(StoreError::Conflict(Conflict::TokenId))
        ),
        "{url}: digests are unique"
    );
    all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));

    for page_size in [1usize, 4, 7, 30, 100] {
        let walked = walk_tokens(s.as_ref(), &o.id, None, page_size).await;
        assert_eq!(walked, all, "{url}: page size {page_size}");
    }
    let of_u2: Vec<_> = all.iter().filter(|t| t.user_id == u2.id).cloned().collect();
    assert_eq!(
        s.list_personal_access_tokens(&o.id, Some(&u2.id), None, 100)
            .await
            .unwrap(),
        of_u2
    );

    let one = &all[5];
    assert_eq!(
        s.get_personal_access_token(&o.id, &one.id)
            .await
            .unwrap()
            .as_ref(),
        Some(one)
    );
    assert_eq!(
        s.get_personal_access_token("m-00000000000000000000000000000000", &one.id)
            .await
            .unwrap(),
        None
    );

    // DateLastUsed: first use written, then at most once per interval, never moved back.
    s.touch_personal_access_token(one, 10_000, 60_000)
        .await
        .unwrap();
    s.touch_personal_access_token(one, 20_000, 60_000)
        .await
        .unwrap();
    assert_eq!(
        s.get_personal_access_token(&o.id, &one.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_ms,
        Some(10_000)
    );
    s.touch_personal_access_token(one, 70_000, 60_000)
        .await
        .unwrap();
    s.touch_personal_access_token(one, 5_000, 60_000)
        .await
        .unwrap();
    assert_eq!(
        s.get_personal_access_token(&o.id, &one.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_ms,
        Some(70_000)
    );

    assert!(
        s.delete_personal_access_token(&o.id, &one.id)
            .await
            .unwrap()
    );
    assert!(
        !s.delete_personal_access_token(&o.id, &one.id)
            .await
            .unwrap()
    );

    // Deleting a user removes their tokens; deleting the organization removes the rest.
    s.delete_user(&u2.id, 99).await.unwrap();
    assert!(
        s.list_personal_access_tokens(&o.id, Some(&u2.id), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !s.list_personal_access_tokens(&o.id, None, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    s.delete_organization(&o.id).await.unwrap();
    assert!(
        s.list_personal_access_tokens(&o.id, None, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.find_personal_access_token_by_digest(digest(1))
            .await
            .unwrap(),
        None
    );
}

async fn digests_find_tokens_and_sessions_expire_with_their_owner(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "sess", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    let u = user(&o.id, "carol", 1);
    s.create_user(u.clone()).await.unwrap();
    s.register_user(&u.id, "carol@sess.awsapps.com", 2)
        .await
        .unwrap();
    let t = pat(&o.id, &u.id, 5);
    s.insert_personal_access_token(t.clone(), digest(42))
        .await
        .unwrap();
    assert_eq!(
        s.find_personal_access_token_by_digest(digest(42))
            .await
            .unwrap(),
        Some(t),
        "{url}"
    );
    assert_eq!(
        s.find_personal_access_token_by_digest(digest(43))
            .await
            .unwrap(),
        None
    );

    let session = Session {
        org_id: o.id.clone(),
        user_id: u.id.clone(),
        expires_ms: 99,
        authenticated_ms: 5,
    };
    let hash = "$argon2id$placeholder";
    assert!(
        !s.create_session(digest(6), session.clone(), "$argon2id$other")
            .await
            .unwrap(),
        "{url}: a session is only created against the user's current password hash"
    );
    assert_eq!(s.get_session(digest(6)).await.unwrap(), None);
    assert!(
        s.create_session(digest(7), session.clone(), hash)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_session(digest(7)).await.unwrap(),
        Some(session.clone())
    );
    // Re-authentication moves the session's password-entry time, only with the current hash.
    assert!(
        !s.reauthenticate_session(digest(7), "$argon2id$other", 50)
            .await
            .unwrap()
    );
    assert!(s.reauthenticate_session(digest(7), hash, 50).await.unwrap());
    assert_eq!(
        s.get_session(digest(7))
            .await
            .unwrap()
            .unwrap()
            .authenticated_ms,
        50
    );
    // Tokens created through a session need that session to be live.
    let via_session = pat(&o.id, &u.id, 6);
    assert!(
        s.insert_personal_access_token_for_session(via_session.clone(), digest(60), digest(7))
            .await
            .unwrap()
    );
    s.set_password(&u.id, "$argon2id$new").await.unwrap();
    assert_eq!(
        s.get_session(digest(7)).await.unwrap(),
        None,
        "{url}: a new password ends sessions"
    );
    assert!(
        !s.insert_personal_access_token_for_session(pat(&o.id, &u.id, 7), digest(61), digest(7))
            .await
            .unwrap(),
        "{url}: an ended session creates no token"
    );
    assert_eq!(
        s.find_personal_access_token_by_digest(digest(61))
            .await
            .unwrap(),
        None
    );
    assert!(
        !s.create_session(digest(8), session.clone(), hash)
            .await
            .unwrap(),
        "{url}: the old hash no longer creates sessions"
    );
    assert!(
        s.create_session(digest(8), session.clone(), "$argon2id$new")
            .await
            .unwrap()
    );
    s.delete_session(digest(8)).await.unwrap();
    assert_eq!(s.get_session(digest(8)).await.unwrap(), None);
    // Deregistration and re-registration end sessions even though the hash is unchanged.
    assert!(
        s.create_session(digest(9), session.clone(), "$argon2id$new")
            .await
            .unwrap()
    );
    s.deregister_user(&u.id, 60).await.unwrap();
    assert!(
        !s.create_session(digest(10), session.clone(), "$argon2id$new")
            .await
            .unwrap(),
        "{url}: no session for a DISABLED user"
    );
    s.register_user(&u.id, "carol@sess.awsapps.com", 61)
        .await
        .unwrap();
    assert_eq!(s.get_session(digest(9)).await.unwrap(), None);
    assert_eq!(
        s.find_user(&o.id, "carol")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$new")
    );
}

async fn identity_provider_configuration_round_trips(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "idp", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    assert_eq!(
        s.get_identity_provider_configuration(&o.id).await.unwrap(),
        None
    );
    let mut c = IdentityProviderConfiguration {
        authentication_mode: "IDENTITY_PROVIDER_AND_DIRECTORY".into(),
        instance_arn: "arn:aws:sso:::instance/ssoins-1111111111111111".into(),
        application_arn:
            "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"
                .into(),
        pat_status: PatStatus::Active,
        pat_lifetime_days: 30,
    };
    s.put_identity_provider_configuration(&o.id, c.clone())
        .await
        .unwrap();
    c.pat_status = PatStatus::Inactive;
    c.pat_lifetime_days = 7;
    s.put_identity_provider_configuration(&o.id, c.clone())
        .await
        .unwrap();
    assert_eq!(
        s.get_identity_provider_configuration(&o.id).await.unwrap(),
        Some(c),
        "{url}"
    );
    s.delete_identity_provider_configuration(&o.id)
        .await
        .unwrap();
    s.delete_identity_provider_configuration(&o.id)
        .await
        .unwrap();
    assert_eq!(
        s.get_identity_provider_configuration(&o.id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn sqlite_keeps_acknowledged_writes_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("durable.db").display());
    let p = partition("000000000000");
    let o = org(&p, "durable", 1);
    let u = user(&o.id, "dave", 2);
    let t = pat(&o.id, &u.id, 3);
    {
        let s = store::open(&url).unwrap();
        s.create_organization(o.clone(), None).await.unwrap();
        s.create_user(u.clone()).await.unwrap();
        s.insert_personal_access_token(t.clone(), digest(9))
            .await
            .unwrap();
        // No close(): as after a crash.
    }
    let s = store::open(&url).unwrap();
    assert_eq!(s.get_organization(&p, &o.id).await.unwrap(), Some(o));
    assert_eq!(
        s.list_personal_access_tokens(&t.org_id, None, None, 10)
            .await
            .unwrap(),
        vec![t]
    );
    s.close().await.unwrap();
}

async fn verify_lookup_joins_owner_organization_and_configuration(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "verify", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    let u = user(&o.id, "Erin", 1);
    s.create_user(u.clone()).await.unwrap();
    s.register_user(&u.id, "Erin@verify.awsapps.com", 2)
        .await
        .unwrap();
    let t = pat(&o.id, &u.id, 5);
    s.insert_personal_access_token(t.clone(), digest(77))
        .await
        .unwrap();
    assert!(
        s.verify_lookup(digest(78)).await.unwrap().is_none(),
        "{url}"
    );

    let r = s.verify_lookup(digest(77)).await.unwrap().unwrap();
    assert_eq!(r.token, t, "{url}");
    assert_eq!(r.user_id, u.id);
    assert_eq!(r.user_name_key, "erin");
    assert_eq!(r.user_email_key.as_deref(), Some("erin@verify.awsapps.com"));
    assert_eq!(r.user_state, UserState::Enabled);
    assert_eq!(r.org_state, org_state::ACTIVE);
    assert_eq!(r.pat_status, None, "{url}: no configuration yet");

    s.put_identity_provider_configuration(
        &o.id,
        IdentityProviderConfiguration {
            authentication_mode: "IDENTITY_PROVIDER_ONLY".into(),
            instance_arn: "arn:aws:sso:::instance/ssoins-1111111111111111".into(),
            application_arn:
                "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"
                    .into(),
            pat_status: PatStatus::Inactive,
            pat_lifetime_days: 30,
        },
    )
    .await
    .unwrap();
    s.deregister_user(&u.id, 9).await.unwrap();
    let r = s.verify_lookup(digest(77)).await.unwrap().unwrap();
    assert_eq!(r.pat_status, Some(PatStatus::Inactive), "{url}");
    assert_eq!(r.user_state, UserState::Disabled);
    assert_eq!(r.user_email_key, None);
    s.delete_organization(&o.id).await.unwrap();
    assert!(
        s.verify_lookup(digest(77)).await.unwrap().is_none(),
        "{url}: deleting the org removes its tokens"
    );
}

/// Issue 12, defect 10: a lookup key holding U+0000 (which PostgreSQL `text` cannot even be bound with) matches
/// nothing on every backend, instead of failing on one of them (a 500 for a sign-in with `"Username": "a\u0000"`).
async fn test_defect_10_nul_in_lookup_keys_matches_nothing(url: String, s: Arc<dyn Store>) {
    let p = partition("111111111111");
    let o = org(&p, "nul", 1000);
    s.create_organization(o.clone(), None).await.unwrap();
    let u = user(&o.id, "alice", 1000);
    s.create_user(u.clone()).await.unwrap();
    let t = pat(&o.id, &u.id, 1000);
    s.insert_personal_access_token(t.clone(), digest(7))
        .await
        .unwrap();
    let nul_org = format!("{}\0", o.id);
    let nul_partition = Partition {
        account: "111111111111\0".into(),
        region: p.region.clone(),
    };
    assert!(
        s.find_organization(&nul_org).await.unwrap().is_none(),
        "{url}"
    );
    assert!(s.find_organization("\0").await.unwrap().is_none(), "{url}");
    assert!(
        s.get_organization(&p, &nul_org).await.unwrap().is_none(),
        "{url}"
    );
    assert!(
        s.get_organization(&nul_partition, &o.id)
            .await
            .unwrap()
            .is_none(),
        "{url}"
    );
    assert!(
        s.list_organizations(&nul_partition, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "{url}"
    );
    assert_eq!(s.count_enabled_users(&nul_org).await.unwrap(), 0, "{url}");
    for ident in ["alice\0", "\0alice", "\0", &format!("{}\0", u.id)] {
        assert!(
            s.find_user(&o.id, ident).await.unwrap().is_none(),
            "{url} {ident:?}"
        );
    }
    assert!(
        s.find_user(&nul_org, "alice").await.unwrap().is_none(),
        "{url}"
    );
    for filter in [
        UserFilter::UsernamePrefix("al\0".into()),
        UserFilter::DisplayNamePrefix("\0".into()),
        UserFilter::PrimaryEmailPrefix("a\0b".into()),
        UserFilter::IdentityProviderUserIdPrefix("\0".into()),
    ] {
        assert!(
            s.list_users(&o.id, &filter, None, 10)
                .await
                .unwrap()
                .is_empty(),
            "{url} {filter:?}"
        );
    }
    assert!(
        s.list_users(&nul_org, &UserFilter::None, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "{url}"
    );
    assert!(
        s.get_identity_provider_configuration(&nul_org)
            .await
            .unwrap()
            .is_none(),
        "{url}"
    );
    assert!(
        s.list_personal_access_tokens(&o.id, Some("\0"), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "{url}"
    );
    let nul_pat = format!("{}\0", t.id);
    assert!(
        s.get_personal_access_token(&o.id, &nul_pat)
            .await
            .unwrap()
            .is_none(),
        "{url}"
    );
    assert!(
        !s.delete_personal_access_token(&o.id, &nul_pat)
            .await
            .unwrap(),
        "{url}"
    );
    assert!(
        s.get_client_token(&p, "CreateOrganization", "tok\0", 1000)
            .await
            .unwrap()
            .is_none(),
        "{url}"
    );
    // The real keys still resolve (the guard refuses only what cannot match).
    assert!(
        s.find_user(&o.id, "alice").await.unwrap().is_some(),
        "{url}"
    );
    assert!(
        s.get_personal_access_token(&o.id, &t.id)
            .await
            .unwrap()
            .is_some(),
        "{url}"
    );
}

async fn mail_domains_and_addresses_are_unique_and_released(url: String, s: Arc<dyn Store>) {
    use workmail_pat::mail::{EmailAddress, MailDomain, Verification};
    use workmail_pat::store::mail::Deregistered;
    let p = partition("333333333333");
    let o = org(&p, "mail", 10);
    s.create_organization(o.clone(), None).await.unwrap();
    // The test domain and the creation domain exist, verified, in (created, name) order.
    let listed = s.list_mail_domains(&o.id, None, 10).await.unwrap();
    let names: Vec<_> = listed.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["mail.awsapps.com", "mail.example.com"], "{url}");
    assert!(listed[0].is_test_domain && listed.iter().all(MailDomain::is_verified));
    // A new domain, pending; the same name in another organization of the partition conflicts.
    let pending = MailDomain::new(&o, "Fresh.example.net", false, false, 20);
    s.insert_mail_domain(pending.clone(), None).await.unwrap();
    let other = org(&p, "other", 11);
    s.create_organization(other.clone(), None).await.unwrap();
    let clash = MailDomain::new(&other, "fresh.example.net", false, true, 21);
    assert!(
        matches!(
            s.insert_mail_domain(clash, None).await,
            Err(StoreError::Conflict(Conflict::MailDomain))
        ),
        "{url}"
    );
    let got = s
        .get_mail_domain(&o.id, "FRESH.example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.ownership, got.dkim_tokens.len()),
        (Verification::Pending, 3),
        "{url}"
    );
    assert!(
        s.organizations_with_domain("fresh.example.net", 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.verify_mail_domain(&o.id, "fresh.example.net")
            .await
            .unwrap()
    );
    assert_eq!(
        s.organizations_with_domain("fresh.example.net", 2)
            .await
            .unwrap(),
        std::slice::from_ref(&o.id)
    );
    // Addresses: unique in the organization, only in registered domains, at most `max` aliases.
    let u = user(&o.id, "ann", 30);
    s.create_user(u.clone()).await.unwrap();
    s.register_user(&u.id, "ann@mail.awsapps.com", 31)
        .await
        .unwrap();
    let alias = |addr: &str, at: i64| EmailAddress {
        org_id: o.id.clone(),
        entity_id: u.id.clone(),
        address: addr.into(),
        is_primary: false,
        created_ms: at,
    };
    assert!(
        s.create_alias(alias("a1@fresh.example.net", 40), 2)
            .await
            .unwrap()
    );
    assert!(
        matches!(
            s.create_alias(alias("A1@FRESH.example.net", 41), 2).await,
            Err(StoreError::Conflict(Conflict::Email))
        ),
        "{url}"
    );
    assert!(
        matches!(
            s.create_alias(alias("ann@mail.awsapps.com", 41), 2).await,
            Err(StoreError::Conflict(Conflict::Email))
        ),
        "{url}"
    );
    assert!(
        matches!(
            s.create_alias(alias("a@nowhere.example.org", 41), 2).await,
            Err(StoreError::Conflict(Conflict::Reference))
        ),
        "{url}"
    );
    assert!(
        s.create_alias(alias("a2@mail.awsapps.com", 42), 2)
            .await
            .unwrap()
    );
    assert!(
        !s.create_alias(alias("a3@mail.awsapps.com", 43), 2)
            .await
            .unwrap(),
        "{url}: limit"
    );
    let found = s
        .find_user_by_address(&o.id, "a1@fresh.example.net")
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.id), Some(u.id.clone()));
    // A domain with addresses, or the default one, stays.
    assert!(
        matches!(
            s.deregister_mail_domain(&o.id, "fresh.example.net").await,
            Err(StoreError::Conflict(Conflict::Reference))
        ),
        "{url}"
    );
    assert_eq!(
        s.deregister_mail_domain(&o.id, "mail.awsapps.com")
            .await
            .unwrap(),
        Deregistered::Default
    );
    // A new primary address keeps the old one as an alias.
    s.set_primary_address(EmailAddress {
        is_primary: true,
        ..alias("a1@fresh.example.net", 50)
    })
    .await
    .unwrap();
    let aliases: Vec<_> = s
        .list_aliases(&u.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(
        aliases,
        ["ann@mail.awsapps.com", "a2@mail.awsapps.com"],
        "{url}"
    );
    let now = s.find_user(&o.id, &u.id).await.unwrap().unwrap();
    assert_eq!(now.email.as_deref(), Some("a1@fresh.example.net"));
    // Deregistration releases every address; then the domain can go.
    s.deregister_user(&u.id, 60).await.unwrap();
    assert!(s.list_aliases(&u.id, None, 10).await.unwrap().is_empty());
    assert!(
        s.find_address(&o.id, "a1@fresh.example.net")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.deregister_mail_domain(&o.id, "fresh.example.net")
            .await
            .unwrap(),
        Deregistered::Done
    );
    assert_eq!(
        s.deregister_mail_domain(&o.id, "fresh.example.net")
            .await
            .unwrap(),
        Deregistered::NotRegistered
    );
    // Deleting the organization frees its domains for the partition.
    s.delete_organization(&o.id).await.unwrap();
    let again = MailDomain::new(&other, "mail.example.com", false, true, 70);
    s.insert_mail_domain(again, None).await.unwrap();
}

/// Issue 14: pages and metadata are answered with each token's stored summary. Whatever was written (creation, a
/// first use, a later use, names and scopes that need escaping, times with and without milliseconds), the stored
/// bytes are exactly what the domain value encodes to, and a page of them walks like the decoded pages.
async fn stored_summaries_are_the_wire_form_of_their_tokens(url: String, s: Arc<dyn Store>) {
    let p = partition("000000000000");
    let o = org(&p, "summaries", 1);
    s.create_organization(o.clone(), None).await.unwrap();
    let u1 = user(&o.id, "u1", 1);
    let u2 = user(&o.id, "u2", 2);
    s.create_user(u1.clone()).await.unwrap();
    s.create_user(u2.clone()).await.unwrap();
    let names = [
        "plain",
        "quote \" and 'apostrophe'",
        "unicode \u{e9}\u{1f600} \u{2028}",
        "slash / and & ampersand",
    ];
    for i in 0..13u8 {
        let owner = if i % 3 == 0 { &u2 } else { &u1 };
        // Whole seconds, milliseconds, and shared creation times.
        let created = 1_700_000_000_000 + i64::from(i / 2) * 1_500 + i64::from(i % 2) * 7;
        let mut t = pat(&o.id, &owner.id, created);
        t.name = format!("{} {i}", names[usize::from(i) % names.len()]);
        t.scopes = vec!["IMAP".into(), format!("x\"{i}\\")];
        s.insert_personal_access_token(t, digest(100 + i))
            .await
            .unwrap();
    }
    let all = s
        .list_personal_access_tokens(&o.id, None, None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 13);
    // DateLastUsed moves for some: the summary moves with it (and does not when the interval has not passed).
    s.touch_personal_access_token(&all[0], 1_700_000_100_000, 60_000)
        .await
        .unwrap();
    s.touch_personal_access_token(&all[1], 1_700_000_100_123, 60_000)
        .await
        .unwrap();
    s.touch_personal_access_token(&all[1], 1_700_000_100_999, 60_000)
        .await
        .unwrap();
    let all = s
        .list_personal_access_tokens(&o.id, None, None, 100)
        .await
        .unwrap();
    assert_eq!(all[0].last_used_ms, Some(1_700_000_100_000), "{url}");
    assert_eq!(all[1].last_used_ms, Some(1_700_000_100_123), "{url}");
    for t in &all {
        let stored = s
            .get_personal_access_token_summary(&p, &o.id, &t.id)
            .await
            .unwrap();
        assert_eq!(stored.as_deref(), Some(t.summary_json().as_str()), "{url}");
    }
    assert_eq!(
        s.get_personal_access_token_summary(&p, "m-00000000000000000000000000000000", &all[0].id)
            .await
            .unwrap(),
        None
    );
    for user_id in [None, Some(u1.id.as_str()), Some(u2.id.as_str())] {
        let expected: Vec<&PersonalAccessToken> = all
            .iter()
            .filter(|t| user_id.is_none_or(|u| t.user_id == u))
            .collect();
        for page_size in [1usize, 3, 5, 13, 100] {
            let mut after = None;
            let mut walked = Vec::new();
            loop {
                let page = s
                    .list_personal_access_token_summaries(
                        &p,
                        &o.id,
                        user_id,
                        after.clone(),
                        page_size,
                        b"[".to_vec(),
                    )
                    .await
                    .unwrap();
                let mut body = page.body;
                body.push(b']');
                let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                assert_eq!(items.len(), page.count, "{url}");
                let done = walked.len() + page.count;
                let rest = expected.len() - done;
                assert_eq!(page.has_more, rest > 0, "{url}: page size {page_size}");
                let text = String::from_utf8(body).unwrap();
                let want: Vec<String> = expected[walked.len()..done]
                    .iter()
                    .map(|t| t.summary_json())
                    .collect();
                assert_eq!(text, format!("[{}]", want.join(",")), "{url}");
                walked.extend(expected[walked.len()..done].iter().copied());
                // A full page names its last row (where the next page starts); a shorter one has no next page.
                if let Some(last) = walked.last() {
                    assert_eq!(
                        page.last,
                        (page.count == page_size).then(|| Cursor {
                            created_ms: last.created_ms,
                            id: last.id.clone(),
                        })
                    );
                }
                if !page.has_more {
                    break;
                }
                after = page.last;
            }
            assert_eq!(walked, expected, "{url}: page size {page_size}");
        }
    }
}

/// Issue 14: the one read of a page or of a token's metadata also checks the organization's state in its
/// partition and, for a filtered page, that the filter is the id of a user that is not DELETED. When a check fails
/// the store answers nothing (the operation then finds out why); it never answers another partition's tokens or
/// those of an organization that is not Active.
async fn stored_summaries_are_read_only_for_an_active_organization_and_a_live_user_id(
    url: String,
    s: Arc<dyn Store>,
) {
    let p = partition("000000000000");
    let elsewhere = Partition {
        account: "000000000000".into(),
        region: "eu-west-1".into(),
    };
    let mut leaving = org(&p, "leaving", 1);
    leaving.state = org_state::DELETING.into();
    let active = org(&p, "staying", 2);
    for (i, o) in [&leaving, &active].into_iter().enumerate() {
        s.create_organization(o.clone(), None).await.unwrap();
        let mut u = user(&o.id, "ursula", 3);
        u.email = Some(format!("ursula@{}", o.domains[0]));
        s.create_user(u.clone()).await.unwrap();
        let t = pat(&o.id, &u.id, 4);
        s.insert_personal_access_token(t.clone(), digest(200 + i as u8))
            .await
            .unwrap();
        let is_active = o.state == org_state::ACTIVE;
        let page = |p: Partition, user: Option<String>| {
            let s = s.clone();
            let org_id = o.id.clone();
            async move {
                s.list_personal_access_token_summaries(
                    &p,
                    &org_id,
                    user.as_deref(),
                    None,
                    10,
                    Vec::new(),
                )
                .await
                .unwrap()
                .count
            }
        };
        let want = usize::from(is_active);
        assert_eq!(page(p.clone(), None).await, want, "{url}: {}", o.state);
        assert_eq!(page(p.clone(), Some(u.id.clone())).await, want, "{url}");
        // Only an id: a name or an address is resolved by the operation first.
        assert_eq!(page(p.clone(), Some("ursula".into())).await, 0, "{url}");
        assert_eq!(page(p.clone(), u.email.clone()).await, 0, "{url}");
        assert_eq!(page(elsewhere.clone(), None).await, 0, "{url}");
        assert_eq!(
            page(elsewhere.clone(), Some(u.id.clone())).await,
            0,
            "{url}"
        );
        let summary = |p: Partition| {
            let s = s.clone();
            let (org_id, id) = (o.id.clone(), t.id.clone());
            async move {
                s.get_personal_access_token_summary(&p, &org_id, &id)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            summary(p.clone()).await,
            is_active.then(|| t.summary_json()),
            "{url}: {}",
            o.state
        );
        assert_eq!(summary(elsewhere.clone()).await, None, "{url}");
    }
}

/// Version 7 moved SQLite's tokens into a table keyed by page order (issue 14): a store written before keeps every
/// token, findable by id and by digest, in the same pages.
#[tokio::test]
async fn sqlite_keeps_every_token_when_its_table_takes_the_page_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    let url = format!("sqlite:{}", path.display());
    let p = partition("000000000000");
    let (a, b) = (org(&p, "a", 1), org(&p, "b", 2));
    let (ua, ub) = (user(&a.id, "ann", 3), user(&b.id, "bob", 4));
    let mut tokens = Vec::new();
    {
        let s = store::open(&url).unwrap();
        for (o, u) in [(&a, &ua), (&b, &ub)] {
            s.create_organization(o.clone(), None).await.unwrap();
            s.create_user(u.clone()).await.unwrap();
        }
        // Same creation times across both organizations and within one, so the id breaks ties.
        for i in 0..40u8 {
            let (o, u) = if i % 3 == 0 { (&a, &ua) } else { (&b, &ub) };
            let t = pat(&o.id, &u.id, 1_700_000_000_000 + i64::from(i / 4));
            s.insert_personal_access_token(t.clone(), digest(i))
                .await
                .unwrap();
            tokens.push((t, digest(i)));
        }
        s.close().await.unwrap();
    }
    {
        // The table as version 6 had it: rowids, the summary last, pages from pats_org_page.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE pats_v6 (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES organizations (id), \
             user_id TEXT NOT NULL REFERENCES users (id), name TEXT NOT NULL, scopes TEXT NOT NULL, \
             created_ms INTEGER NOT NULL, last_used_ms INTEGER, expires_ms INTEGER NOT NULL, \
             secret_hash BLOB NOT NULL UNIQUE, summary TEXT NOT NULL DEFAULT ''); \
             INSERT INTO pats_v6 SELECT id, org_id, user_id, name, scopes, created_ms, last_used_ms, expires_ms, \
             secret_hash, summary FROM personal_access_tokens ORDER BY id; \
             DROP TABLE personal_access_tokens; ALTER TABLE pats_v6 RENAME TO personal_access_tokens; \
             CREATE INDEX pats_org_page ON personal_access_tokens (org_id, created_ms, id); \
             CREATE INDEX pats_user_page ON personal_access_tokens (org_id, user_id, created_ms, id); \
             DELETE FROM schema_migrations WHERE version >= 7;",
        )
        .unwrap();
    }
    let s = store::open(&url).unwrap();
    for (t, d) in &tokens {
        assert_eq!(
            s.find_personal_access_token_by_digest(*d)
                .await
                .unwrap()
                .as_ref(),
            Some(t)
        );
        assert_eq!(
            s.get_personal_access_token_summary(&p, &t.org_id, &t.id)
                .await
                .unwrap(),
            Some(t.summary_json())
        );
    }
    for (o, u) in [
        (&a, None),
        (&b, None),
        (&a, Some(&ua.id)),
        (&b, Some(&ub.id)),
    ] {
        let mut expected: Vec<_> = tokens
            .iter()
            .map(|(t, _)| t)
            .filter(|t| t.org_id == o.id && u.is_none_or(|u| *u == t.user_id))
            .cloned()
            .collect();
        expected.sort_by(|x, y| (x.created_ms, &x.id).cmp(&(y.created_ms, &y.id)));
        let walked = walk_tokens(s.as_ref(), &o.id, u.map(String::as_str), 7).await;
        assert_eq!(walked, expected);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (table, org_page): (String, i64) = conn
        .query_row(
            "SELECT (SELECT sql FROM sqlite_master WHERE name = 'personal_access_tokens'), \
                    (SELECT count(*) FROM sqlite_master WHERE name = 'pats_org_page')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(table.ends_with("WITHOUT ROWID"), "{table}");
    assert_eq!(org_page, 0);
    s.close().await.unwrap();
}

/// Tokens written before summaries were stored (schema version 3) get theirs when the store is opened.
#[tokio::test]
async fn sqlite_fills_the_summaries_of_tokens_written_before_they_were_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let p = partition("000000000000");
    let o = org(&p, "old", 1);
    let u = user(&o.id, "olga", 2);
    let mut t = pat(&o.id, &u.id, 1_700_000_000_123);
    t.last_used_ms = Some(1_700_000_001_000);
    t.name = "old \"one\"".into();
    {
        let s = store::open(&format!("sqlite:{}", path.display())).unwrap();
        s.create_organization(o.clone(), None).await.unwrap();
        s.create_user(u.clone()).await.unwrap();
        s.close().await.unwrap();
    }
    {
        // The token as version 4 wrote it: no summary column yet.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE pats_v4 AS SELECT id, org_id, user_id, name, scopes, created_ms, last_used_ms, \
             expires_ms, secret_hash FROM personal_access_tokens; \
             DROP TABLE personal_access_tokens; ALTER TABLE pats_v4 RENAME TO personal_access_tokens; \
             DROP TABLE import_records; DELETE FROM schema_migrations WHERE version >= 5;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO personal_access_tokens VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                t.id,
                t.org_id,
                t.user_id,
                t.name,
                serde_json::to_string(&t.scopes).unwrap(),
                t.created_ms,
                t.last_used_ms,
                t.expires_ms,
                vec![7u8; 32]
            ],
        )
        .unwrap();
    }
    let s = store::open(&format!("sqlite:{}", path.display())).unwrap();
    assert_eq!(
        s.get_personal_access_token_summary(&p, &o.id, &t.id)
            .await
            .unwrap(),
        Some(t.summary_json())
    );
    s.close().await.unwrap();
}

async fn imported_organizations_keep_their_domains_and_addresses(url: String, s: Arc<dyn Store>) {
    use workmail_pat::mail::{EmailAddress, MailDomain, Verification};
    let p = partition("444444444444");
    let mut o = org(&p, "imp", 10);
    o.domains.clear();
    o.default_mail_domain = "chosen.example.org".into();
    let test = MailDomain::new(&o, "imp.awsapps.com", true, true, 10);
    let chosen = MailDomain::new(&o, "chosen.example.org", false, true, 11);
    let pending = MailDomain::new(&o, "later.example.org", false, false, 11);
    let rows = vec![test.clone(), chosen.clone(), pending.clone()];
    s.create_organization_with_domains(o.clone(), rows.clone())
        .await
        .unwrap();
    // Exactly the given rows, with their states and DNS values, in (created, name) order.
    assert_eq!(
        s.list_mail_domains(&o.id, None, 10).await.unwrap(),
        rows,
        "{url}"
    );
    let held = s
        .mail_domain_in_partition(&p.account, &p.region, "LATER.example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.org_id.as_str(), held.ownership),
        (o.id.as_str(), Verification::Pending)
    );
    assert!(
        s.mail_domain_in_partition(&p.account, "eu-west-1", "later.example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Another organization of the partition with one of these domains: refused whole.
    let mut other = org(&p, "imp2", 12);
    other.domains.clear();
    let clash = vec![
        MailDomain::new(&other, "imp2.awsapps.com", true, true, 12),
        MailDomain::new(&other, "later.example.org", false, true, 12),
    ];
    assert!(
        matches!(
            s.create_organization_with_domains(other.clone(), clash)
                .await,
            Err(StoreError::Conflict(Conflict::MailDomain))
        ),
        "{url}"
    );
    assert!(s.find_organization(&other.id).await.unwrap().is_none());
    // Users and their aliases in bulk; the aliases list in the order of their times.
    let mut ann = user(&o.id, "ann", 20);
    ann.state = UserState::Enabled;
    ann.email = Some("ann@chosen.example.org".into());
    let alias = |addr: &str, at: i64| EmailAddress {
        org_id: o.id.clone(),
        entity_id: ann.id.clone(),
        address: addr.into(),
        is_primary: false,
        created_ms: at,
    };
    let batch = store::ImportBatch {
        users: vec![ann.clone()],
        addresses: vec![
            alias("z@imp.awsapps.com", 30),
            alias("a@later.example.org", 31),
        ],
        ..store::ImportBatch::default()
    };
    s.import(batch).await.unwrap();
    let aliases: Vec<_> = s
        .list_aliases(&ann.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(
        aliases,
        ["z@imp.awsapps.com", "a@later.example.org"],
        "{url}"
    );
    assert!(
        s.find_address(&o.id, "ANN@chosen.example.org")
            .await
            .unwrap()
            .is_some_and(|a| a.is_primary && a.entity_id == ann.id)
    );
    // An import's lookups: by id, lower-cased name or lower-cased email, in this organization only.
    let ids_of = |found: Vec<User>| {
        let mut ids: Vec<String> = found.into_iter().map(|u| u.id).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let keys = ["ann".to_string(), "ann@chosen.example.org".to_string()];
    for (ids, keys) in [
        (vec![ann.id.clone()], vec![]),
        (vec![], vec![keys[0].clone()]),
        (vec![], vec![keys[1].clone(), "nobody\0".to_string()]),
    ] {
        let found = s.users_by_keys(&o.id, &ids, &keys).await.unwrap();
        assert_eq!(ids_of(found), [ann.id.clone()], "{url}");
    }
    assert!(
        s.users_by_keys(&other.id, &[ann.id.clone()], &keys)
            .await
            .unwrap()
            .is_empty()
    );
    // An alias in a domain the organization has not registered is refused.
    let batch = store::ImportBatch {
        addresses: vec![alias("b@nowhere.example.org", 32)],
        ..store::ImportBatch::default()
    };
    assert!(
        matches!(
            s.import(batch).await,
            Err(StoreError::Conflict(Conflict::Reference))
        ),
        "{url}"
    );
    // A Deleted organization holds no domains, and its users no addresses.
    let mut gone = org(&p, "gone", 13);
    gone.state = org_state::DELETED.into();
    s.create_organization_with_domains(gone.clone(), Vec::new())
        .await
        .unwrap();
    let mut gus = user(&gone.id, "gus", 21);
    gus.state = UserState::Enabled;
    gus.email = Some("gus@gone.awsapps.com".into());
    let batch = store::ImportBatch {
        users: vec![gus],
        ..store::ImportBatch::default()
    };
    s.import(batch).await.unwrap();
    assert!(
        s.find_address(&gone.id, "gus@gone.awsapps.com")
            .await
            .unwrap()
            .is_none(),
        "{url}"
    );
}

/// Issue 16: import records are replaced per entity; an imported user takes the source's content, a disabled one
/// losing her addresses and sessions' generation, a new primary address replacing the old; a domain takes its new
/// verification state.
async fn import_records_and_updates_of_imported_entities(url: String, s: Arc<dyn Store>) {
    use workmail_pat::mail::{EmailAddress, MailDomain, Verification};
    use workmail_pat::store::ImportRecord;
    let p = partition("555555555555");
    let mut o = org(&p, "rec", 10);
    o.domains.clear();
    let test = MailDomain::new(&o, "rec.awsapps.com", true, true, 10);
    let pending = MailDomain::new(&o, "rec.example.org", false, false, 11);
    s.create_organization_with_domains(o.clone(), vec![test, pending.clone()])
        .await
        .unwrap();
    let record = |kind: &str, id: &str, fingerprint: &str| ImportRecord {
        kind: kind.into(),
        org_id: o.id.clone(),
        entity_id: id.into(),
        fingerprint: fingerprint.into(),
        imported_ms: 5,
    };
    s.put_import_records(vec![
        record("User", "u1", "a"),
        record("MailDomain", "d", "b"),
    ])
    .await
    .unwrap();
    s.put_import_records(vec![record("User", "u1", "c")])
        .await
        .unwrap();
    let mut got = s.import_records(&o.id).await.unwrap();
    got.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(
        got,
        vec![record("MailDomain", "d", "b"), record("User", "u1", "c")],
        "{url}"
    );
    assert!(s.import_records("m-none").await.unwrap().is_empty());

    let mut before = user(&o.id, "ann", 20);
    before.state = UserState::Enabled;
    before.email = Some("ann@rec.awsapps.com".into());
    // Written with her primary address, as an import writes her.
    s.create_user(before.clone()).await.unwrap();
    let alias = EmailAddress {
        org_id: o.id.clone(),
        entity_id: before.id.clone(),
        address: "ann2@rec.awsapps.com".into(),
        is_primary: false,
        created_ms: 21,
    };
    assert!(s.create_alias(alias, 100).await.unwrap());
    // A new display name and a former alias as primary address.
    let mut after = before.clone();
    after.profile.display_name = "Ann at the source".into();
    after.email = Some("ann2@rec.awsapps.com".into());
    s.update_imported_user(&before, &after).await.unwrap();
    let now = s.find_user(&o.id, &before.id).await.unwrap().unwrap();
    assert_eq!(
        (now.profile.display_name.as_str(), now.email.as_deref()),
        ("Ann at the source", Some("ann2@rec.awsapps.com")),
        "{url}"
    );
    let primary = s
        .find_address(&o.id, "ann2@rec.awsapps.com")
        .await
        .unwrap()
        .unwrap();
    assert!(primary.is_primary, "{url}");
    assert!(
        s.find_address(&o.id, "ann@rec.awsapps.com")
            .await
            .unwrap()
            .is_none()
    );
    // Disabled at the source: no email, no address.
    let mut disabled = now.clone();
    disabled.state = UserState::Disabled;
    disabled.email = None;
    disabled.disabled_ms = Some(30);
    s.update_imported_user(&now, &disabled).await.unwrap();
    let now = s.find_user(&o.id, &before.id).await.unwrap().unwrap();
    assert_eq!((now.state, now.email), (UserState::Disabled, None), "{url}");
    assert!(
        s.find_address(&o.id, "ann2@rec.awsapps.com")
            .await
            .unwrap()
            .is_none()
    );

    let mut verified = pending.clone();
    verified.ownership = Verification::Verified;
    verified.dkim = Verification::Verified;
    s.update_imported_mail_domain(&verified).await.unwrap();
    assert_eq!(
        s.get_mail_domain(&o.id, "rec.example.org").await.unwrap(),
        Some(verified),
        "{url}"
    );
    let mut renamed = o.clone();
    renamed.alias = "rec-renamed".into();
    s.update_imported_organization(&renamed).await.unwrap();
    let found = s.find_organization(&o.id).await.unwrap().unwrap();
    assert_eq!(found.alias, "rec-renamed", "{url}");
}
