//! Every supported operation through the official aws-sdk-workmail crate: happy paths, modelled errors
//! (typed), and the binding Decisions D1-D11 of the spec.

mod common;

use aws_sdk_workmail::Client;
use aws_sdk_workmail::operation::RequestId;
use aws_sdk_workmail::types::{
    Domain, EntityState, IdentityCenterConfiguration, IdentityProviderAuthenticationMode,
    ListUsersFilters, PersonalAccessTokenConfiguration, PersonalAccessTokenConfigurationStatus,
    UserRole,
};
use common::*;
use serde_json::json;

const UNKNOWN_ORG: &str = "m-0123456789abcdef0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

/// Run every organization-scoped operation against `org` (user reference `user`, PAT id `pat`) and return
/// (operation, error code or "OK").
async fn org_scoped_codes(
    client: &Client,
    org: &str,
    user: &str,
    pat: &str,
) -> Vec<(&'static str, String)> {
    fn c<T, E: aws_sdk_workmail::error::ProvideErrorMetadata, R>(
        r: Result<T, aws_sdk_workmail::error::SdkError<E, R>>,
    ) -> String {
        match r {
            Ok(_) => "OK".to_string(),
            Err(e) => code_of(&e).unwrap_or_else(|| "NO-CODE".into()),
        }
    }
    let icc = IdentityCenterConfiguration::builder()
        .instance_arn(INSTANCE_ARN)
        .application_arn(APPLICATION_ARN)
        .build()
        .unwrap();
    let patc = PersonalAccessTokenConfiguration::builder()
        .status(PersonalAccessTokenConfigurationStatus::Active)
        .lifetime_in_days(30)
        .build()
        .unwrap();
    vec![
        (
            "CreateUser",
            c(client
                .create_user()
                .organization_id(org)
                .name("zed")
                .display_name("Zed")
                .password(PASSWORD)
                .send()
                .await),
        ),
        (
            "DescribeUser",
            c(client
                .describe_user()
                .organization_id(org)
                .user_id(user)
                .send()
                .await),
        ),
        (
            "ListUsers",
            c(client.list_users().organization_id(org).send().await),
        ),
        (
            "UpdateUser",
            c(client
                .update_user()
                .organization_id(org)
                .user_id(user)
                .display_name("x")
                .send()
                .await),
        ),
        (
            "DeleteUser",
            c(client
                .delete_user()
                .organization_id(org)
                .user_id(user)
                .send()
                .await),
        ),
        (
            "RegisterToWorkMail",
            c(client
                .register_to_work_mail()
                .organization_id(org)
                .entity_id(user)
                .email("someone@example.com")
                .send()
                .await),
        ),
        (
            "DeregisterFromWorkMail",
            c(client
                .deregister_from_work_mail()
                .organization_id(org)
                .entity_id(user)
                .send()
                .await),
        ),
        (
            "ResetPassword",
            c(client
                .reset_password()
                .organization_id(org)
                .user_id("012345678901234567890")
                .password("Another-Pass-1")
                .send()
                .await),
        ),
        (
            "PutIdentityProviderConfiguration",
            c(client
                .put_identity_provider_configuration()
                .organization_id(org)
                .authentication_mode(
                    IdentityProviderAuthenticationMode::IdentityProviderAndDirectory,
                )
                .identity_center_configuration(icc)
                .personal_access_token_configuration(patc)
                .send()
                .await),
        ),
        (
            "DescribeIdentityProviderConfiguration",
            c(client
                .describe_identity_provider_configuration()
                .organization_id(org)
                .send()
                .await),
        ),
        (
            "DeleteIdentityProviderConfiguration",
            c(client
                .delete_identity_provider_configuration()
                .organization_id(org)
                .send()
                .await),
        ),
        (
            "ListPersonalAccessTokens",
            c(client
                .list_personal_access_tokens()
                .organization_id(org)
                .send()
                .await),
        ),
        (
            "GetPersonalAccessTokenMetadata",
            c(client
                .get_personal_access_token_metadata()
                .organization_id(org)
                .personal_access_token_id(pat)
                .send()
                .await),
        ),
        (
            "DeletePersonalAccessToken",
            c(client
                .delete_personal_access_token()
                .organization_id(org)
                .personal_access_token_id(pat)
                .send()
                .await),
        ),
    ]
}

fn assert_all(codes: &[(&'static str, String)], expected: &str) {
    let wrong: Vec<_> = codes.iter().filter(|(_, c)| c != expected).collect();
    assert!(
        wrong.is_empty(),
        "expected {expected} from every operation, these differ: {wrong:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Organizations

#[tokio::test(flavor = "multi_thread")]
async fn organization_create_describe_list() {
    let server = Server::start();
    let client = server.client();
    let before = ok(client.list_organizations().send().await);
    assert!(before.organization_summaries().is_empty());
    assert!(before.next_token().is_none());

    let id = create_org(&client, "acme").await;
    // x-amzn-RequestId reaches the SDK on successes and errors.
    let out = ok(client
        .describe_organization()
        .organization_id(&id)
        .send()
        .await);
    assert!(
        out.request_id().is_some_and(|r| !r.is_empty()),
        "no request id on a success"
    );
    let e = client
        .describe_organization()
        .organization_id(UNKNOWN_ORG)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.request_id().is_some_and(|r| !r.is_empty()),
        "no request id on an error"
    );
    assert!(
        is_org_id(&id),
        "OrganizationId must match ^m-[0-9a-f]{{32}}$: {id}"
    );

    let d = ok(client
        .describe_organization()
        .organization_id(&id)
        .send()
        .await);
    assert_eq!(d.organization_id(), Some(id.as_str()));
    assert_eq!(d.alias(), Some("acme"));
    assert_eq!(d.state(), Some("Active"));
    assert_eq!(d.default_mail_domain(), Some("acme.awsapps.com"));
    assert_eq!(
        d.arn(),
        Some(format!("arn:aws:workmail:{REGION}:{ACCOUNT}:organization/{id}").as_str())
    );
    assert!(d.error_message().is_none());
    let completed = d.completed_date().expect("CompletedDate set at once (D1)");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (completed.as_secs_f64() - now).abs() < 120.0,
        "CompletedDate {completed:?} is not now"
    );

    let list = ok(client.list_organizations().send().await);
    let s = list.organization_summaries();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].organization_id(), Some(id.as_str()));
    assert_eq!(s[0].alias(), Some("acme"));
    assert_eq!(s[0].state(), Some("Active"));
    assert_eq!(s[0].default_mail_domain(), Some("acme.awsapps.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_errors() {
    let server = Server::start();
    let client = server.client();

    let e = client
        .describe_organization()
        .organization_id(UNKNOWN_ORG)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
    let e = client
        .describe_organization()
        .organization_id("not-an-org-id")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    let e = client
        .delete_organization()
        .organization_id(UNKNOWN_ORG)
        .delete_directory(false)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());

    // Alias pattern and length.
    for bad in ["d-abcdef", "-leading", &"a".repeat(63)] {
        let e = client
            .create_organization()
            .alias(bad)
            .send()
            .await
            .unwrap_err();
        assert!(
            code_of(&e).as_deref() == Some("InvalidParameterException"),
            "alias {bad:?}: {}",
            show(&e)
        );
        assert!(e.into_service_error().is_invalid_parameter_exception());
    }
    // MaxResults out of range (the Rust SDK does not check ranges client-side).
    for n in [0, 101] {
        let e = client
            .list_organizations()
            .max_results(n)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_invalid_parameter_exception(),
            "MaxResults {n}"
        );
    }
    let e = client
        .list_organizations()
        .next_token("")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "empty NextToken"
    );

    // Alias in use by a non-Deleted org of this account and region.
    let id = create_org(&client, "dup").await;
    let e = client
        .create_organization()
        .alias("dup")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_name_availability_exception());
    // ... but free in another account and in another region.
    create_org(&server.client_for("210987654321", REGION), "dup").await;
    create_org(&server.client_for(ACCOUNT, "eu-west-1"), "dup").await;
    // ... and free again once the org is Deleted.
    ok(client
        .delete_organization()
        .organization_id(&id)
        .delete_directory(true)
        .send()
        .await);
    let id2 = create_org(&client, "dup").await;
    assert_ne!(id, id2);
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_with_domains_is_verified() {
    let server = Server::start();
    let client = server.client();
    let out = ok(client
        .create_organization()
        .alias("dom")
        .domains(
            Domain::builder()
                .domain_name("mail.example.org")
                .build()
                .unwrap(),
        )
        .send()
        .await);
    let org = out.organization_id().unwrap().to_string();
    let d = ok(client
        .describe_organization()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(d.default_mail_domain(), Some("dom.awsapps.com"));
    let u = ok(client
        .create_user()
        .organization_id(&org)
        .name("bob")
        .display_name("Bob")
        .password(PASSWORD)
        .send()
        .await);
    // A domain passed to CreateOrganization is treated as verified (D1).
    ok(client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(u.user_id().unwrap())
        .email("bob@mail.example.org")
        .send()
        .await);
    let du = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id("bob@mail.example.org")
        .send()
        .await);
    assert_eq!(du.user_id(), u.user_id());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_token_replay() {
    let server = Server::start();
    let client = server.client();
    let a = ok(client
        .create_organization()
        .alias("idem")
        .client_token("tok-1")
        .send()
        .await);
    let b = ok(client
        .create_organization()
        .alias("idem")
        .client_token("tok-1")
        .send()
        .await);
    assert_eq!(
        a.organization_id(),
        b.organization_id(),
        "same ClientToken + same params replays (D3)"
    );
    let list = ok(client.list_organizations().send().await);
    assert_eq!(
        list.organization_summaries().len(),
        1,
        "replay must not create a second org"
    );

    let e = client
        .create_organization()
        .alias("other")
        .client_token("tok-1")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "same ClientToken + different params -> InvalidParameterException (D3)"
    );

    // Tokens are remembered per (account, region): another account with the same token creates its own org.
    let other = server.client_for("210987654321", REGION);
    let c = ok(other
        .create_organization()
        .alias("idem")
        .client_token("tok-1")
        .send()
        .await);
    assert_ne!(a.organization_id(), c.organization_id());
    let c2 = ok(server
        .client_for(ACCOUNT, "ap-south-1")
        .create_organization()
        .alias("idem")
        .client_token("tok-1")
        .send()
        .await);
    assert_ne!(a.organization_id(), c2.organization_id());

    // DeleteOrganization replay answers the first answer (State Deleting); a new delete the current state.
    let org = a.organization_id().unwrap();
    let d1 = ok(client
        .delete_organization()
        .organization_id(org)
        .delete_directory(true)
        .client_token("del-1")
        .send()
        .await);
    assert_eq!(d1.state(), Some("Deleting"));
    assert_eq!(d1.organization_id(), Some(org));
    let d2 = ok(client
        .delete_organization()
        .organization_id(org)
        .delete_directory(true)
        .client_token("del-1")
        .send()
        .await);
    assert_eq!(
        d2.state(),
        Some("Deleting"),
        "replayed DeleteOrganization must repeat the first answer"
    );
    let d3 = ok(client
        .delete_organization()
        .organization_id(org)
        .delete_directory(true)
        .client_token("del-2")
        .send()
        .await);
    assert_eq!(
        d3.state(),
        Some("Deleted"),
        "a new DeleteOrganization of a Deleted org answers its state (D2)"
    );
    // Same token across operations is independent (per operation): CreateOrganization with "del-1" works.
    ok(client
        .create_organization()
        .alias("fresh")
        .client_token("del-1")
        .send()
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_and_region_isolation() {
    let server = Server::start();
    let a = server.client_for("111111111111", "us-east-1");
    let b = server.client_for("222222222222", "us-east-1");
    let a_west = server.client_for("111111111111", "eu-west-1");
    let org = setup_org(&a, "iso", Some(30)).await;

    for (who, c) in [("other account", &b), ("other region", &a_west)] {
        let e = c
            .describe_organization()
            .organization_id(&org.id)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_organization_not_found_exception(),
            "{who}"
        );
        let e = c
            .list_users()
            .organization_id(&org.id)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_organization_not_found_exception(),
            "{who}"
        );
        let e = c
            .list_personal_access_tokens()
            .organization_id(&org.id)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_organization_not_found_exception(),
            "{who}"
        );
        let e = c
            .delete_organization()
            .organization_id(&org.id)
            .delete_directory(true)
            .force_delete(true)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_organization_not_found_exception(),
            "{who}"
        );
        let codes = org_scoped_codes(c, &org.id, &org.user.id, "abc").await;
        assert_all(&codes, "OrganizationNotFoundException");
        let l = ok(c.list_organizations().send().await);
        assert!(
            l.organization_summaries().is_empty(),
            "{who} sees {:?}",
            l.organization_summaries()
        );
    }
    // The owner still sees it intact.
    let d = ok(a
        .describe_organization()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(d.state(), Some("Active"));
    assert!(d.arn().unwrap().contains(":111111111111:"), "{:?}", d.arn());
    let du = ok(a
        .describe_user()
        .organization_id(&org.id)
        .user_id(&org.user.id)
        .send()
        .await);
    assert_eq!(du.state(), Some(&EntityState::Enabled));

    // Non-12-digit keys all map to account 000000000000.
    let k1 = server.client_for("AKIDNOTDIGITS", "us-east-1");
    let k2 = server.client_for("000000000000", "us-east-1");
    let k3 = server.client_for("12345", "us-east-1");
    let id = create_org(&k1, "anon").await;
    let d = ok(k2.describe_organization().organization_id(&id).send().await);
    assert_eq!(
        d.arn(),
        Some(format!("arn:aws:workmail:us-east-1:000000000000:organization/{id}").as_str())
    );
    ok(k3.describe_organization().organization_id(&id).send().await);
    let e = a
        .describe_organization()
        .organization_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_organization_behaviour() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "gone", Some(30)).await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let pat = web.create_pat(&session, "laptop", None).await;
    let pat_id = pat["PersonalAccessTokenId"].as_str().unwrap().to_string();
    let secret = pat["Token"].as_str().unwrap().to_string();
    assert_eq!(
        web.verify(&org.id, &org.user.name, &secret, None)
            .await
            .status,
        200
    );

    // ENABLED users and no ForceDelete -> OrganizationStateException (D2).
    let e = client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(true)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_state_exception());
    let e = client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(true)
        .force_delete(false)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_state_exception());
    assert_eq!(
        ok(client
            .describe_organization()
            .organization_id(&org.id)
            .send()
            .await)
        .state(),
        Some("Active")
    );

    let d = ok(client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(true)
        .force_delete(true)
        .send()
        .await);
    assert_eq!(d.state(), Some("Deleting"));
    assert_eq!(d.organization_id(), Some(org.id.as_str()));

    // Still visible to Describe and List, as Deleted.
    let desc = ok(client
        .describe_organization()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(desc.state(), Some("Deleted"));
    let list = ok(client.list_organizations().send().await);
    let s = list
        .organization_summaries()
        .iter()
        .find(|s| s.organization_id() == Some(org.id.as_str()));
    assert_eq!(
        s.expect("Deleted org still listed").state(),
        Some("Deleted")
    );
    // Deleting again: 200 with the current state.
    let again = ok(client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(true)
        .send()
        .await);
    assert_eq!(again.state(), Some("Deleted"));

    // The org's PATs stop verifying at once.
    let v = web.verify(&org.id, &org.user.name, &secret, None).await;
    assert_eq!(v.status, 401, "PAT of a deleted org still verifies: {v:?}");
    // Sign-in fails too.
    assert_eq!(
        web.sign_in_raw(&org.id, &org.user.name, PASSWORD)
            .await
            .status,
        401
    );

    // Every other operation: OrganizationStateException "... is not Active, state: Deleted".
    let codes = org_scoped_codes(&client, &org.id, &org.user.id, &pat_id).await;
    assert_all(&codes, "OrganizationStateException");
    let e = client
        .list_users()
        .organization_id(&org.id)
        .send()
        .await
        .unwrap_err();
    let msg = message_of(&e).unwrap_or_default();
    assert!(
        msg.contains(&org.id) && msg.contains("is not Active, state: Deleted"),
        "message should be 'Organization {} is not Active, state: Deleted', got {msg:?}",
        org.id
    );
    assert!(e.into_service_error().is_organization_state_exception());
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(&pat_id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_state_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_organization_for_every_operation() {
    let server = Server::start();
    let client = server.client();
    let codes = org_scoped_codes(&client, UNKNOWN_ORG, "alice", "abc").await;
    assert_all(&codes, "OrganizationNotFoundException");
    let e = client
        .list_personal_access_tokens()
        .organization_id(UNKNOWN_ORG)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
    let e = client
        .describe_user()
        .organization_id(UNKNOWN_ORG)
        .user_id("alice")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
    // Malformed org id is a constraint violation.
    let codes = org_scoped_codes(&client, "m-NOTHEX", "alice", "abc").await;
    assert_all(&codes, "InvalidParameterException");
}

// ---------------------------------------------------------------------------------------------------------
// Users

#[tokio::test(flavor = "multi_thread")]
async fn user_lifecycle_and_identifiers() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "corp").await;
    let created = ok(client
        .create_user()
        .organization_id(&org)
        .name("carol")
        .display_name("Carol C")
        .first_name("Carol")
        .last_name("Cole")
        .password(PASSWORD)
        .send()
        .await);
    let id = created.user_id().unwrap().to_string();
    assert!(
        is_lower_guid(&id),
        "user id must be a lowercase GUID (D7): {id}"
    );

    // New users are DISABLED with no email.
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await);
    assert_eq!(d.user_id(), Some(id.as_str()));
    assert_eq!(d.name(), Some("carol"));
    assert_eq!(d.display_name(), Some("Carol C"));
    assert_eq!(d.first_name(), Some("Carol"));
    assert_eq!(d.last_name(), Some("Cole"));
    assert_eq!(d.state(), Some(&EntityState::Disabled));
    assert_eq!(d.user_role(), Some(&UserRole::User));
    assert!(d.email().is_none());
    assert!(d.enabled_date().is_none());

    // A DISABLED user cannot sign in to the web application.
    assert_eq!(
        server
            .web()
            .sign_in_raw(&org, "carol", PASSWORD)
            .await
            .status,
        401
    );

    let email = "carol@corp.awsapps.com";
    // RegisterToWorkMail by name.
    ok(client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id("carol")
        .email(email)
        .send()
        .await);
    for key in [id.as_str(), "carol", email] {
        let d = ok(client
            .describe_user()
            .organization_id(&org)
            .user_id(key)
            .send()
            .await);
        assert_eq!(d.user_id(), Some(id.as_str()), "DescribeUser({key})");
        assert_eq!(d.state(), Some(&EntityState::Enabled));
        assert_eq!(d.email(), Some(email));
        assert!(d.enabled_date().is_some());
    }
    // Same email again: no-op. Different email: EntityAlreadyRegisteredException (D5).
    ok(client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(&id)
        .email(email)
        .send()
        .await);
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(&id)
        .email("carol2@corp.awsapps.com")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error()
            .is_entity_already_registered_exception()
    );

    // Sign-in works with username and with email.
    let web = server.web();
    let s1 = web.sign_in_raw(&org, "carol", PASSWORD).await;
    assert_eq!(s1.status, 200, "{s1:?}");
    assert_eq!(s1.body["UserId"].as_str(), Some(id.as_str()));
    assert_eq!(web.sign_in_raw(&org, email, PASSWORD).await.status, 200);

    // DeleteUser on an ENABLED user: EntityStateException.
    let e = client
        .delete_user()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_state_exception());

    // Deregister by email -> DISABLED; twice is a no-op.
    ok(client
        .deregister_from_work_mail()
        .organization_id(&org)
        .entity_id(email)
        .send()
        .await);
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await);
    assert_eq!(d.state(), Some(&EntityState::Disabled));
    assert!(d.disabled_date().is_some());
    ok(client
        .deregister_from_work_mail()
        .organization_id(&org)
        .entity_id(&id)
        .send()
        .await);

    // Delete by name; DELETED still described and listed; deleting again is 200 (D6).
    ok(client
        .delete_user()
        .organization_id(&org)
        .user_id("carol")
        .send()
        .await);
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await);
    assert_eq!(d.state(), Some(&EntityState::Deleted));
    ok(client
        .delete_user()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await);
    let l = ok(client.list_users().organization_id(&org).send().await);
    let u = l
        .users()
        .iter()
        .find(|u| u.id() == Some(id.as_str()))
        .expect("DELETED user still listed");
    assert_eq!(u.state(), Some(&EntityState::Deleted));

    // Operations that need a live user: EntityStateException (D5, D7).
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(&id)
        .email(email)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_state_exception());
    let e = client
        .update_user()
        .organization_id(&org)
        .user_id(&id)
        .display_name("x")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_state_exception());
    let e = client
        .reset_password()
        .organization_id(&org)
        .user_id(&id)
        .password("Another-Pass-1")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_state_exception());
    let e = client
        .list_personal_access_tokens()
        .organization_id(&org)
        .user_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_state_exception());

    // Unknown user everywhere: EntityNotFoundException (DeleteUser's is not modelled: raw code).
    let ghost = "ghost-user-1";
    let e = client
        .describe_user()
        .organization_id(&org)
        .user_id(ghost)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
    let e = client
        .update_user()
        .organization_id(&org)
        .user_id(ghost)
        .display_name("x")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
    expect_code(
        client
            .delete_user()
            .organization_id(&org)
            .user_id(ghost)
            .send()
            .await,
        "EntityNotFoundException",
    );
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(ghost)
        .email("ghost@corp.awsapps.com")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
    let e = client
        .deregister_from_work_mail()
        .organization_id(&org)
        .entity_id(ghost)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
    let e = client
        .reset_password()
        .organization_id(&org)
        .user_id("00000000-0000-0000-0000-000000000000")
        .password("Another-Pass-1")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
    let e = client
        .list_personal_access_tokens()
        .organization_id(&org)
        .user_id(ghost)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_entity_not_found_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn create_user_errors() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "rules").await;
    let mk = |name: &str, pw: &str| {
        client
            .create_user()
            .organization_id(&org)
            .name(name)
            .display_name("D")
            .password(pw)
    };
    ok(mk("dave", PASSWORD).send().await);
    let e = mk("dave", PASSWORD).send().await.unwrap_err();
    assert!(e.into_service_error().is_name_availability_exception());

    for reserved in [
        "administrator",
        "admin",
        "root",
        "postmaster",
        "abuse",
        "hostmaster",
        "webmaster",
        "mailer-daemon",
    ] {
        let e = mk(reserved, PASSWORD).send().await.unwrap_err();
        assert!(
            code_of(&e).as_deref() == Some("ReservedNameException"),
            "{reserved}: {}",
            show(&e)
        );
        assert!(e.into_service_error().is_reserved_name_exception());
    }
    // Password policy (D8): >= 8 chars and 3 of 4 classes.
    for weak in [
        "Ab1!",
        "Abcdef1",
        "abcdefgh",
        "abcdefg1",
        "ABCDEFG!",
        "12345678!",
    ] {
        let e = mk("erin", weak).send().await.unwrap_err();
        assert!(
            e.into_service_error().is_invalid_password_exception(),
            "password {weak:?} accepted"
        );
    }
    for good in ["Abcdefg1", "abcdefg1!", "ABCDEF1!"] {
        let name = unique("ok");
        ok(mk(&name, good).send().await);
    }
    // Model constraints.
    let e = mk("bad name", PASSWORD).send().await.unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "space in Name"
    );
    let e = mk(&"n".repeat(65), PASSWORD).send().await.unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "Name longer than 64"
    );
    let e = client
        .create_user()
        .organization_id(&org)
        .name("frank")
        .display_name("F")
        .password(PASSWORD)
        .role(UserRole::SystemUser)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "Role SYSTEM_USER"
    );
    let e = client
        .create_user()
        .organization_id(&org)
        .name("frank")
        .display_name("F")
        .password(PASSWORD)
        .role(UserRole::Resource)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "Role RESOURCE"
    );
    let e = client
        .create_user()
        .organization_id(UNKNOWN_ORG)
        .name("frank")
        .display_name("F")
        .password(PASSWORD)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
    // DisplayName "" is legal (no min length).
    ok(client
        .create_user()
        .organization_id(&org)
        .name("gina")
        .display_name("")
        .password(PASSWORD)
        .send()
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_users_and_filters() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "lst").await;
    let mut ids = Vec::new();
    for n in ["ua", "ub", "uc", "vd"] {
        let out = ok(client
            .create_user()
            .organization_id(&org)
            .name(n)
            .display_name(format!("Disp {n}"))
            .password(PASSWORD)
            .send()
            .await);
        ids.push(out.user_id().unwrap().to_string());
    }
    ok(client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id("ua")
        .email("ua@lst.awsapps.com")
        .send()
        .await);
    ok(client
        .delete_user()
        .organization_id(&org)
        .user_id("ub")
        .send()
        .await);

    let all = ok(client.list_users().organization_id(&org).send().await);
    let got: Vec<_> = all
        .users()
        .iter()
        .map(|u| u.id().unwrap().to_string())
        .collect();
    assert_eq!(
        got, ids,
        "ListUsers returns all users, DELETED included, in creation order"
    );
    assert!(all.next_token().is_none());
    let ua = &all.users()[0];
    assert_eq!(ua.name(), Some("ua"));
    assert_eq!(ua.email(), Some("ua@lst.awsapps.com"));
    assert_eq!(ua.display_name(), Some("Disp ua"));
    assert_eq!(ua.state(), Some(&EntityState::Enabled));
    assert!(ua.enabled_date().is_some());

    let f = |filters: ListUsersFilters| client.list_users().organization_id(&org).filters(filters);
    let ids_of = |o: &aws_sdk_workmail::operation::list_users::ListUsersOutput| {
        o.users()
            .iter()
            .map(|u| u.name().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let r = ok(f(ListUsersFilters::builder().username_prefix("u").build())
        .send()
        .await);
    assert_eq!(ids_of(&r), ["ua", "ub", "uc"]);
    let r = ok(f(ListUsersFilters::builder()
        .state(EntityState::Deleted)
        .build())
    .send()
    .await);
    assert_eq!(ids_of(&r), ["ub"]);
    let r = ok(f(ListUsersFilters::builder()
        .state(EntityState::Disabled)
        .build())
    .send()
    .await);
    assert_eq!(ids_of(&r), ["uc", "vd"]);
    let r = ok(f(ListUsersFilters::builder()
        .state(EntityState::Enabled)
        .build())
    .send()
    .await);
    assert_eq!(ids_of(&r), ["ua"]);
    let r = ok(f(ListUsersFilters::builder()
        .display_name_prefix("Disp v")
        .build())
    .send()
    .await);
    assert_eq!(ids_of(&r), ["vd"]);
    let r = ok(f(ListUsersFilters::builder()
        .primary_email_prefix("ua@")
        .build())
    .send()
    .await);
    assert_eq!(ids_of(&r), ["ua"]);

    // Only one filter per request.
    let e = f(ListUsersFilters::builder()
        .username_prefix("u")
        .state(EntityState::Enabled)
        .build())
    .send()
    .await
    .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "two filters"
    );
    for n in [0, 101] {
        let e = client
            .list_users()
            .organization_id(&org)
            .max_results(n)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_invalid_parameter_exception(),
            "MaxResults {n}"
        );
    }
    let e = client
        .list_users()
        .organization_id(&org)
        .next_token("")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "empty NextToken"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn update_user() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "upd").await;
    let u = create_enabled_user(&client, &org, "upd", "henry").await;
    ok(client
        .update_user()
        .organization_id(&org)
        .user_id(&u.email)
        .display_name("Henry H")
        .first_name("Henry")
        .job_title("Plumber")
        .city("Oslo")
        .send()
        .await);
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id("henry")
        .send()
        .await);
    assert_eq!(d.display_name(), Some("Henry H"));
    assert_eq!(d.first_name(), Some("Henry"));
    assert_eq!(d.job_title(), Some("Plumber"));
    assert_eq!(d.city(), Some("Oslo"));
    // Omitted members are unchanged.
    ok(client
        .update_user()
        .organization_id(&org)
        .user_id(&u.id)
        .last_name("Hall")
        .send()
        .await);
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&u.id)
        .send()
        .await);
    assert_eq!(d.display_name(), Some("Henry H"));
    assert_eq!(d.job_title(), Some("Plumber"));
    assert_eq!(d.last_name(), Some("Hall"));
    assert_eq!(d.state(), Some(&EntityState::Enabled));

    let e = client
        .update_user()
        .organization_id(&org)
        .user_id(&u.id)
        .role(UserRole::SystemUser)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    let e = client
        .update_user()
        .organization_id(&org)
        .user_id(&u.id)
        .city("x".repeat(257))
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "City longer than 256"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn register_errors() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "reg").await;
    create_enabled_user(&client, &org, "reg", "ivy").await;
    let j = ok(client
        .create_user()
        .organization_id(&org)
        .name("jack")
        .display_name("J")
        .password(PASSWORD)
        .send()
        .await);
    let jid = j.user_id().unwrap();
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(jid)
        .email("jack@not-our-domain.com")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_mail_domain_not_found_exception());
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(jid)
        .email("ivy@reg.awsapps.com")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_email_address_in_use_exception());
    let e = client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(jid)
        .email("not an email")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    // Still DISABLED after the failures.
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(jid)
        .send()
        .await);
    assert_eq!(d.state(), Some(&EntityState::Disabled));
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_password() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = create_org(&client, "pw").await;
    let u = create_enabled_user(&client, &org, "pw", "kate").await;
    assert_eq!(web.sign_in_raw(&org, "kate", PASSWORD).await.status, 200);

    let e = client
        .reset_password()
        .organization_id(&org)
        .user_id(&u.id)
        .password("weakweak")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_password_exception());
    assert_eq!(
        web.sign_in_raw(&org, "kate", PASSWORD).await.status,
        200,
        "failed reset changed the password"
    );

    ok(client
        .reset_password()
        .organization_id(&org)
        .user_id(&u.id)
        .password("Brand-New-Pass-2")
        .send()
        .await);
    let old = web.sign_in_raw(&org, "kate", PASSWORD).await;
    assert_eq!(old.status, 401);
    assert_eq!(
        old.body,
        json!({"__type": "UnauthorizedException", "Message": "Invalid organization, username or password"})
    );
    assert_eq!(
        web.sign_in_raw(&org, "kate", "Brand-New-Pass-2")
            .await
            .status,
        200
    );
    // By email (D7: any identifier form).
    ok(client
        .reset_password()
        .organization_id(&org)
        .user_id(&u.email)
        .password("Third-Pass-33")
        .send()
        .await);
    assert_eq!(
        web.sign_in_raw(&org, &u.email, "Third-Pass-33")
            .await
            .status,
        200
    );

    // Uniform 401 for unknown user / wrong org.
    let r = web.sign_in_raw(&org, "nobody", "Third-Pass-33").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, old.body);
    let r = web.sign_in_raw(UNKNOWN_ORG, "kate", "Third-Pass-33").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, old.body);
}

// ---------------------------------------------------------------------------------------------------------
// Identity provider configuration

#[tokio::test(flavor = "multi_thread")]
async fn identity_provider_configuration() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = create_org(&client, "idp").await;
    let user = create_enabled_user(&client, &org, "idp", "leo").await;

    let e = client
        .describe_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_resource_not_found_exception(),
        "nothing configured (D6)"
    );
    ok(client
        .delete_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await);

    // No configuration: the user cannot create PATs.
    let session = web.sign_in(&org, "leo", PASSWORD).await;
    let r = web.create_pat_raw(&session, json!({"Name": "n"})).await;
    assert_eq!(r.status, 403, "{r:?}");

    put_pat_config(&client, &org, true, Some(42)).await;
    let d = ok(client
        .describe_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(
        d.authentication_mode(),
        Some(&IdentityProviderAuthenticationMode::IdentityProviderAndDirectory)
    );
    let icc = d
        .identity_center_configuration()
        .expect("IdentityCenterConfiguration");
    assert_eq!(icc.instance_arn(), INSTANCE_ARN);
    assert_eq!(icc.application_arn(), APPLICATION_ARN);
    let p = d
        .personal_access_token_configuration()
        .expect("PersonalAccessTokenConfiguration");
    assert_eq!(p.status(), &PersonalAccessTokenConfigurationStatus::Active);
    assert_eq!(p.lifetime_in_days(), Some(42));
    let t = web.create_pat(&session, "n42", None).await;
    let created = t["DateCreated"].as_f64().unwrap();
    let expires = t["ExpiresTime"].as_f64().unwrap();
    assert!(
        ((expires - created) - 42.0 * 86400.0).abs() < 0.01,
        "ExpiresTime = DateCreated + 42d: {t}"
    );

    // LifetimeInDays omitted means 365 (D9).
    put_pat_config(&client, &org, true, None).await;
    let t = web.create_pat(&session, "n365", None).await;
    let created = t["DateCreated"].as_f64().unwrap();
    let expires = t["ExpiresTime"].as_f64().unwrap();
    assert!(
        ((expires - created) - 365.0 * 86400.0).abs() < 0.01,
        "default lifetime 365 d: {t}"
    );
    let d = ok(client
        .describe_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await);
    let lid = d
        .personal_access_token_configuration()
        .unwrap()
        .lifetime_in_days();
    assert!(lid.is_none() || lid == Some(365), "LifetimeInDays {lid:?}");

    // Model constraints.
    let put =
        |mode: IdentityProviderAuthenticationMode, inst: &str, app: &str, days: Option<i32>| {
            client
                .put_identity_provider_configuration()
                .organization_id(&org)
                .authentication_mode(mode)
                .identity_center_configuration(
                    IdentityCenterConfiguration::builder()
                        .instance_arn(inst)
                        .application_arn(app)
                        .build()
                        .unwrap(),
                )
                .personal_access_token_configuration(
                    PersonalAccessTokenConfiguration::builder()
                        .status(PersonalAccessTokenConfigurationStatus::Active)
                        .set_lifetime_in_days(days)
                        .build()
                        .unwrap(),
                )
        };
    let mode = IdentityProviderAuthenticationMode::IdentityProviderOnly;
    for (what, req) in [
        (
            "bad instance ARN",
            put(
                mode.clone(),
                "arn:aws:sso:::instance/nope",
                APPLICATION_ARN,
                Some(5),
            ),
        ),
        (
            "bad application ARN",
            put(
                mode.clone(),
                INSTANCE_ARN,
                "arn:aws:sso::1:application/x",
                Some(5),
            ),
        ),
        (
            "LifetimeInDays 0",
            put(mode.clone(), INSTANCE_ARN, APPLICATION_ARN, Some(0)),
        ),
        (
            "LifetimeInDays 3654",
            put(mode.clone(), INSTANCE_ARN, APPLICATION_ARN, Some(3654)),
        ),
        (
            "unknown IdentityProviderAuthenticationMode",
            put(
                "SOMETHING_ELSE".into(),
                INSTANCE_ARN,
                APPLICATION_ARN,
                Some(5),
            ),
        ),
    ] {
        let e = req.send().await.unwrap_err();
        assert!(
            code_of(&e).as_deref() == Some("InvalidParameterException"),
            "{what}: {}",
            show(&e)
        );
    }
    ok(put(mode.clone(), INSTANCE_ARN, APPLICATION_ARN, Some(3653))
        .send()
        .await);
    let d = ok(client
        .describe_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(
        d.authentication_mode(),
        Some(&IdentityProviderAuthenticationMode::IdentityProviderOnly)
    );
    assert_eq!(
        d.personal_access_token_configuration()
            .unwrap()
            .lifetime_in_days(),
        Some(3653)
    );

    // Sign-in still uses the directory password whatever the mode (D11).
    web.sign_in(&org, &user.name, PASSWORD).await;

    ok(client
        .delete_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await);
    let e = client
        .describe_identity_provider_configuration()
        .organization_id(&org)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let r = web
        .create_pat_raw(&session, json!({"Name": "after-delete"}))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    // Admin APIs still list the earlier tokens.
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(l.personal_access_token_summaries().len(), 2);
}

// ---------------------------------------------------------------------------------------------------------
// Personal access tokens

#[tokio::test(flavor = "multi_thread")]
async fn personal_access_tokens_admin_apis() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "pats", Some(30)).await;
    let bob = create_enabled_user(&client, &org.id, "pats", "bob").await;
    let s_alice = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let s_bob = web.sign_in(&org.id, &bob.email, PASSWORD).await;

    let t1 = web.create_pat(&s_alice, "alice laptop", None).await;
    let t2 = web
        .create_pat(&s_alice, "alice phone", Some(&["IMAP"]))
        .await;
    let t3 = web
        .create_pat(
            &s_bob,
            "bob desktop",
            Some(&["SMTP", "IMAP", "custom-scope"]),
        )
        .await;
    for t in [&t1, &t2, &t3] {
        let id = t["PersonalAccessTokenId"].as_str().unwrap();
        assert!(
            is_pat_id(id),
            "PAT id must match [a-zA-Z0-9_-]{{1,64}}: {id}"
        );
        let secret = t["Token"].as_str().unwrap();
        assert!(secret.starts_with("wmpat_"), "{secret}");
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{secret}"
        );
        assert!(
            secret.len() >= 6 + 22,
            "too short for 128 bits of base62: {secret}"
        );
    }
    assert_eq!(t1["Scopes"], json!(["IMAP", "SMTP"]), "default scopes");
    let id1 = t1["PersonalAccessTokenId"].as_str().unwrap();
    let id2 = t2["PersonalAccessTokenId"].as_str().unwrap();
    let id3 = t3["PersonalAccessTokenId"].as_str().unwrap();

    // Whole org.
    let all = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    assert!(all.next_token().is_none());
    let ids: Vec<_> = all
        .personal_access_token_summaries()
        .iter()
        .map(|s| s.personal_access_token_id().unwrap())
        .collect();
    assert_eq!(
        ids,
        [id1, id2, id3],
        "ordered by (DateCreated, PersonalAccessTokenId)"
    );
    let debug = format!("{all:?}");
    for t in [&t1, &t2, &t3] {
        assert!(
            !debug.contains(t["Token"].as_str().unwrap()),
            "secret leaked through the admin API"
        );
    }
    let s1 = &all.personal_access_token_summaries()[0];
    assert_eq!(s1.user_id(), Some(org.user.id.as_str()));
    assert_eq!(s1.name(), Some("alice laptop"));
    assert_eq!(s1.scopes(), ["IMAP", "SMTP"]);
    assert!(
        s1.date_last_used().is_none(),
        "DateLastUsed absent until first use (D9)"
    );
    let created = millis(s1.date_created().unwrap());
    let expires = millis(s1.expires_time().unwrap());
    assert!(
        (expires - created - 30 * DAY_MS).abs() <= 2,
        "ExpiresTime = DateCreated + 30 d"
    );
    assert!((created as f64 / 1000.0 - t1["DateCreated"].as_f64().unwrap()).abs() < 0.002);
    assert_eq!(
        all.personal_access_token_summaries()[2].scopes(),
        ["SMTP", "IMAP", "custom-scope"]
    );

    // Per user: id, username and email all resolve (D7).
    for key in [
        org.user.id.as_str(),
        org.user.name.as_str(),
        org.user.email.as_str(),
    ] {
        let l = ok(client
            .list_personal_access_tokens()
            .organization_id(&org.id)
            .user_id(key)
            .send()
            .await);
        let ids: Vec<_> = l
            .personal_access_token_summaries()
            .iter()
            .map(|s| s.personal_access_token_id().unwrap())
            .collect();
        assert_eq!(ids, [id1, id2], "UserId={key}");
    }
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .user_id("bob")
        .send()
        .await);
    assert_eq!(l.personal_access_token_summaries().len(), 1);
    assert_eq!(
        l.personal_access_token_summaries()[0].user_id(),
        Some(bob.id.as_str())
    );

    // Get metadata = the summary.
    let g = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id1)
        .send()
        .await);
    assert_eq!(g.personal_access_token_id(), Some(id1));
    assert_eq!(g.user_id(), Some(org.user.id.as_str()));
    assert_eq!(g.name(), Some("alice laptop"));
    assert_eq!(g.date_created(), s1.date_created());
    assert_eq!(g.expires_time(), s1.expires_time());
    assert!(g.date_last_used().is_none());
    assert_eq!(g.scopes(), ["IMAP", "SMTP"]);

    // Web listing shows only the caller's own tokens.
    let wl = web.list_pats(&s_bob).await;
    assert_eq!(wl.status, 200);
    let wl_ids: Vec<_> = wl.body["PersonalAccessTokenSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["PersonalAccessTokenId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(wl_ids, [id3]);
    assert!(!wl.body.to_string().contains(t3["Token"].as_str().unwrap()));

    // Unknown token id: ResourceNotFoundException (D6); malformed id: InvalidParameterException.
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id("doesnotexist")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id("bad id!")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    let e = client
        .delete_personal_access_token()
        .organization_id(&org.id)
        .personal_access_token_id("x".repeat(65))
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    // A token id of another org is unknown here.
    let other = setup_org(&client, "other", Some(30)).await;
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&other.id)
        .personal_access_token_id(id1)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    ok(client
        .delete_personal_access_token()
        .organization_id(&other.id)
        .personal_access_token_id(id1)
        .send()
        .await);
    ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id1)
        .send()
        .await);

    // Delete: gone from Get and List, stops verifying, deleting again is 200.
    let secret1 = t1["Token"].as_str().unwrap();
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret1, None)
            .await
            .status,
        200
    );
    ok(client
        .delete_personal_access_token()
        .organization_id(&org.id)
        .personal_access_token_id(id1)
        .send()
        .await);
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id1)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret1, None)
            .await
            .status,
        401
    );
    ok(client
        .delete_personal_access_token()
        .organization_id(&org.id)
        .personal_access_token_id(id1)
        .send()
        .await);
    ok(client
        .delete_personal_access_token()
        .organization_id(&org.id)
        .personal_access_token_id("neverexisted")
        .send()
        .await);
    let all = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    let ids: Vec<_> = all
        .personal_access_token_summaries()
        .iter()
        .map(|s| s.personal_access_token_id().unwrap())
        .collect();
    assert_eq!(ids, [id2, id3]);

    // A user of another org is unknown here.
    let e = client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .user_id(&other.user.id)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_entity_not_found_exception(),
        "user of another org"
    );

    // Parameter errors.
    for n in [0, 101] {
        let e = client
            .list_personal_access_tokens()
            .organization_id(&org.id)
            .max_results(n)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_invalid_parameter_exception(),
            "MaxResults {n}"
        );
    }
    let e = client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .next_token("")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "empty NextToken"
    );
    let e = client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .user_id("bad user!")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "UserId pattern"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn date_last_used_after_verify() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "use", Some(7)).await;
    let bob = create_enabled_user(&client, &org.id, "use", "bob").await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let t = web.create_pat(&session, "mail", None).await;
    let id = t["PersonalAccessTokenId"].as_str().unwrap();
    let secret = t["Token"].as_str().unwrap();

    // Failures first: none of them may set DateLastUsed.
    let uniform = web.verify(&org.id, &bob.name, secret, None).await;
    assert_eq!(
        uniform.status, 401,
        "another user's name must not verify: {uniform:?}"
    );
    assert_eq!(
        uniform.body,
        json!({"__type": "UnauthorizedException", "Message": "Invalid credentials"})
    );
    for (what, r) in [
        (
            "unknown scope",
            web.verify(&org.id, &org.user.name, secret, Some("POP3"))
                .await,
        ),
        (
            "wrong org",
            web.verify(UNKNOWN_ORG, &org.user.name, secret, None).await,
        ),
        (
            "tampered secret",
            web.verify(&org.id, &org.user.name, &format!("{secret}x"), None)
                .await,
        ),
        (
            "empty secret",
            web.verify(&org.id, &org.user.name, "", None).await,
        ),
    ] {
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_eq!(r.body, uniform.body, "{what}: not the uniform body");
    }
    let g = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await);
    assert!(
        g.date_last_used().is_none(),
        "failed attempts set DateLastUsed"
    );

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let v = web
        .verify(&org.id, &org.user.name, secret, Some("IMAP"))
        .await;
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(v.body["UserId"].as_str(), Some(org.user.id.as_str()));
    assert_eq!(v.body["PersonalAccessTokenId"].as_str(), Some(id));
    // Visible at once.
    let g = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await);
    let used = g
        .date_last_used()
        .expect("DateLastUsed set after the first successful use")
        .as_secs_f64();
    assert!(
        used >= before - 2.0 && used <= before + 60.0,
        "DateLastUsed {used} vs now {before}"
    );
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(
        l.personal_access_token_summaries()[0].date_last_used(),
        g.date_last_used()
    );
    // A second use within the minute does not move DateLastUsed.
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret, None)
            .await
            .status,
        200
    );
    let g2 = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await);
    assert_eq!(
        g2.date_last_used(),
        g.date_last_used(),
        "DateLastUsed written at most once a minute"
    );
    // Email works as username, SMTP is granted by default.
    assert_eq!(
        web.verify(&org.id, &org.user.email, secret, Some("SMTP"))
            .await
            .status,
        200
    );

    // INACTIVE configuration: admin APIs still work, creation and use do not (D9).
    put_pat_config(&client, &org.id, false, Some(7)).await;
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret, None)
            .await
            .status,
        401
    );
    assert_eq!(
        web.create_pat_raw(&session, json!({"Name": "blocked"}))
            .await
            .status,
        403
    );
    assert_eq!(web.list_pats(&session).await.status, 403);
    assert_eq!(web.delete_pat(&session, id).await.status, 403);
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    assert_eq!(l.personal_access_token_summaries().len(), 1);
    put_pat_config(&client, &org.id, true, Some(7)).await;
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret, None)
            .await
            .status,
        200
    );

    // A DISABLED user's token stops verifying; the admin list keeps it.
    ok(client
        .deregister_from_work_mail()
        .organization_id(&org.id)
        .entity_id(&org.user.id)
        .send()
        .await);
    assert_eq!(
        web.verify(&org.id, &org.user.name, secret, None)
            .await
            .status,
        401
    );
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .user_id(&org.user.id)
        .send()
        .await);
    assert_eq!(l.personal_access_token_summaries().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifetime_change_leaves_existing_tokens() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "life", Some(30)).await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let a = web.create_pat(&session, "a", None).await;
    put_pat_config(&client, &org.id, true, Some(10)).await;
    let b = web.create_pat(&session, "b", None).await;
    let l = ok(client
        .list_personal_access_tokens()
        .organization_id(&org.id)
        .send()
        .await);
    let s = l.personal_access_token_summaries();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0].personal_access_token_id(),
        a["PersonalAccessTokenId"].as_str()
    );
    assert_eq!(
        s[1].personal_access_token_id(),
        b["PersonalAccessTokenId"].as_str()
    );
    let d0 = millis(s[0].expires_time().unwrap()) - millis(s[0].date_created().unwrap());
    let d1 = millis(s[1].expires_time().unwrap()) - millis(s[1].date_created().unwrap());
    assert!(
        (d0 - 30 * DAY_MS).abs() <= 2,
        "existing token changed: {d0}"
    );
    assert!(
        (d1 - 10 * DAY_MS).abs() <= 2,
        "new token ignores the new lifetime: {d1}"
    );

    // Web API constraints on Name and Scopes.
    for (what, body) in [
        ("empty name", json!({"Name": ""})),
        ("name with <", json!({"Name": "a<b"})),
        ("name with backslash", json!({"Name": "a\\b"})),
        ("name with control char", json!({"Name": "a\u{7}b"})),
        ("name 65 chars", json!({"Name": "n".repeat(65)})),
        (
            "11 scopes",
            json!({"Name": "s", "Scopes": (0..11).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
        ),
        ("empty scopes", json!({"Name": "s", "Scopes": []})),
        ("scope with >", json!({"Name": "s", "Scopes": ["a>b"]})),
    ] {
        let r = web.create_pat_raw(&session, body).await;
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert_eq!(
            r.body["__type"].as_str(),
            Some("InvalidParameterException"),
            "{what}"
        );
    }
    // 64 Unicode characters (more bytes) are fine.
    let r = web
        .create_pat_raw(&session, json!({"Name": "é".repeat(64)}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // Web sessions are required.
    assert_eq!(
        web.create_pat_raw("not-a-session", json!({"Name": "x"}))
            .await
            .status,
        401
    );
    assert_eq!(web.delete_pat(&session, "doesnotexist").await.status, 404);
}

// ---------------------------------------------------------------------------------------------------------
// Protocol details visible through raw requests

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_and_unsupported_operations() {
    let server = Server::start();
    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "ListGroups",
            &json!({"OrganizationId": UNKNOWN_ORG}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.error_type().as_deref(),
        Some("UnknownOperationException"),
        "{r:?}"
    );
    assert!(
        r.message().unwrap_or_default().contains("ListGroups"),
        "names the operation: {r:?}"
    );
    assert!(
        r.headers.contains_key("x-amzn-requestid"),
        "x-amzn-RequestId on errors"
    );

    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "DescribeOrganization",
            &json!({"OrganizationId": UNKNOWN_ORG}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["__type"].as_str(),
        Some("OrganizationNotFoundException")
    );
    assert!(
        r.json()["Message"].is_string(),
        "modelled errors use Message: {r:?}"
    );
    assert_eq!(
        r.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(':').next().unwrap()),
        Some("OrganizationNotFoundException")
    );

    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "ListOrganizations",
            &json!({"MaxResults": "ten"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_type().as_deref(),
        Some("SerializationException"),
        "{r:?}"
    );
    for body in [json!([1, 2]), json!("x"), json!(5)] {
        let r = server
            .raw_call(ACCOUNT, REGION, "ListOrganizations", &body)
            .await;
        assert_eq!(
            r.error_type().as_deref(),
            Some("SerializationException"),
            "body {body}: {r:?}"
        );
    }

    let r = server
        .raw_call(ACCOUNT, REGION, "ListOrganizations", &json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-amz-json-1.1")
    );
    assert!(r.headers.contains_key("x-amzn-requestid"));
    assert!(
        !r.text.contains("null"),
        "absent members must be omitted, not null: {}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_organization_without_enabled_users_needs_no_force() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "quiet").await;
    ok(client
        .create_user()
        .organization_id(&org)
        .name("dormant")
        .display_name("D")
        .password(PASSWORD)
        .send()
        .await);
    let d = ok(client
        .delete_organization()
        .organization_id(&org)
        .delete_directory(false)
        .send()
        .await);
    assert_eq!(d.state(), Some("Deleting"));
    let desc = ok(client
        .describe_organization()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(desc.state(), Some("Deleted"));
    // Users of a Deleted org cannot be described any more (OrganizationStateException).
    let e = client
        .describe_user()
        .organization_id(&org)
        .user_id("dormant")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_state_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn model_constraints_name_the_field() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "cons").await;
    let user = create_enabled_user(&client, &org, "cons", "mia").await;

    let e = client
        .list_users()
        .organization_id(&org)
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    let msg = message_of(&e).unwrap_or_default();
    assert!(
        msg.contains("MaxResults"),
        "InvalidParameterException must name the field: {msg:?}"
    );

    // ClientToken: 1..128 printable ASCII without spaces.
    for (what, tok) in [
        ("space", "has space".to_string()),
        ("129 chars", "t".repeat(129)),
    ] {
        let e = client
            .create_organization()
            .alias("ct")
            .client_token(tok)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_invalid_parameter_exception(),
            "ClientToken {what}"
        );
    }
    // Domains: at most 5, DomainName 3..255 of [a-zA-Z0-9.-].
    let six: Vec<Domain> = (0..6)
        .map(|i| {
            Domain::builder()
                .domain_name(format!("d{i}.example.com"))
                .build()
                .unwrap()
        })
        .collect();
    let e = client
        .create_organization()
        .alias("six")
        .set_domains(Some(six))
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "6 domains"
    );
    let e = client
        .create_organization()
        .alias("baddom")
        .domains(
            Domain::builder()
                .domain_name("bad_domain!.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "DomainName pattern"
    );
    let e = client
        .create_organization()
        .alias("kms")
        .kms_key_arn("not-an-arn")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "KmsKeyArn pattern"
    );
    assert_eq!(
        ok(client.list_organizations().send().await)
            .organization_summaries()
            .len(),
        1
    );

    // Lengths count characters: 256 two-byte characters fit, 257 do not.
    ok(client
        .update_user()
        .organization_id(&org)
        .user_id(&user.id)
        .city("é".repeat(256))
        .send()
        .await);
    let e = client
        .update_user()
        .organization_id(&org)
        .user_id(&user.id)
        .city("é".repeat(257))
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_parameter_exception());
    ok(client
        .update_user()
        .organization_id(&org)
        .user_id(&user.id)
        .hidden_from_global_address_list(true)
        .send()
        .await);
    let d = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&user.id)
        .send()
        .await);
    assert!(d.hidden_from_global_address_list());
    assert_eq!(d.city().map(|c| c.chars().count()), Some(256));

    let e = client
        .list_users()
        .organization_id(&org)
        .filters(
            ListUsersFilters::builder()
                .identity_provider_user_id_prefix("xyz")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "IdentityProviderUserIdPrefix pattern"
    );

    // Required members missing (raw: the SDK would not send these).
    for (op, body) in [
        ("DescribeOrganization", json!({})),
        ("DeleteOrganization", json!({"OrganizationId": org})),
        (
            "CreateUser",
            json!({"OrganizationId": org, "Name": "nodisplay"}),
        ),
        ("ListPersonalAccessTokens", json!({})),
        (
            "GetPersonalAccessTokenMetadata",
            json!({"OrganizationId": org}),
        ),
        (
            "ResetPassword",
            json!({"OrganizationId": org, "UserId": user.id}),
        ),
    ] {
        let r = server.raw_call(ACCOUNT, REGION, op, &body).await;
        assert_eq!(r.status, 400, "{op} {body}: {r:?}");
        assert_eq!(
            r.error_type().as_deref(),
            Some("InvalidParameterException"),
            "{op} {body}: {r:?}"
        );
    }
    // The org was not deleted by the DeleteOrganization without DeleteDirectory.
    let d = ok(client
        .describe_organization()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(d.state(), Some("Active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_raw_requests_never_get_5xx() {
    let server = Server::start();
    // An empty body is accepted for an operation without required input.
    let req = sign_request(
        &server.host,
        "ListOrganizations",
        b"",
        ACCOUNT,
        "x",
        REGION,
        std::time::SystemTime::now(),
    );
    let r = send_signed(&server.base_url, &req).await;
    assert_eq!(r.status, 200, "empty body: {r:?}");

    for (what, op, body) in [
        ("not JSON", "ListOrganizations", b"{not json".to_vec()),
        (
            "invalid UTF-8",
            "ListOrganizations",
            b"{\"NextToken\": \"\xff\xfe\"}".to_vec(),
        ),
        (
            "nested garbage",
            "DescribeOrganization",
            b"{\"OrganizationId\": {\"a\": [1, 2]}}".to_vec(),
        ),
        (
            "huge number",
            "ListOrganizations",
            b"{\"MaxResults\": 1e400}".to_vec(),
        ),
        (
            "negative",
            "ListOrganizations",
            b"{\"MaxResults\": -1}".to_vec(),
        ),
        (
            "float",
            "ListOrganizations",
            b"{\"MaxResults\": 1.5}".to_vec(),
        ),
        ("big body", "ListOrganizations", vec![b' '; 1 << 20]),
        ("other service", "X", b"{}".to_vec()),
    ] {
        let mut req = sign_request(
            &server.host,
            op,
            &body,
            ACCOUNT,
            "x",
            REGION,
            std::time::SystemTime::now(),
        );
        if what == "other service" {
            req.set_header("x-amz-target", "DynamoDB_20120810.ListTables");
        }
        let r = send_signed(&server.base_url, &req).await;
        assert!(
            (400..500).contains(&r.status),
            "{what}: HTTP {} {r:?}",
            r.status
        );
        assert!(r.error_type().is_some(), "{what}: no error type: {r:?}");
    }
    let r = server
        .raw_call(ACCOUNT, REGION, "NotAnOperation", &json!({}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type().as_deref(), Some("UnknownOperationException"));
    // Still alive.
    ok(server.client().list_organizations().send().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_api_ownership_and_user_state() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "own", Some(30)).await;
    let bob = create_enabled_user(&client, &org.id, "own", "bob").await;
    let sa = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let sb = web.sign_in(&org.id, &bob.name, PASSWORD).await;
    let t = web.create_pat(&sa, "mine", None).await;
    let id = t["PersonalAccessTokenId"].as_str().unwrap();

    // Bob cannot delete Alice's token.
    let r = web.delete_pat(&sb, id).await;
    assert_eq!(r.status, 404, "{r:?}");
    ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await);
    // Web listing carries the 7 summary fields and never the secret.
    let l = web.list_pats(&sa).await;
    let s = &l.body["PersonalAccessTokenSummaries"][0];
    for f in [
        "PersonalAccessTokenId",
        "UserId",
        "Name",
        "DateCreated",
        "ExpiresTime",
        "Scopes",
    ] {
        assert!(!s[f].is_null(), "web summary lacks {f}: {s}");
    }
    assert!(
        s.get("Token").is_none(),
        "web listing returns the secret: {s}"
    );

    // A user who is no longer ENABLED cannot create tokens with an old session.
    ok(client
        .deregister_from_work_mail()
        .organization_id(&org.id)
        .entity_id(&bob.id)
        .send()
        .await);
    let r = web.create_pat_raw(&sb, json!({"Name": "late"})).await;
    assert!(
        r.status == 403 || r.status == 401,
        "disabled user created a PAT: {r:?}"
    );
    assert_eq!(
        web.sign_in_raw(&org.id, &bob.name, PASSWORD).await.status,
        401
    );

    // Owner deletes through the web API: 204, then gone everywhere.
    let r = web.delete_pat(&sa, id).await;
    assert_eq!(r.status, 204, "{r:?}");
    let e = client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    // Name with DEL is rejected.
    let r = web.create_pat_raw(&sa, json!({"Name": "a\u{7f}b"})).await;
    assert_eq!(r.status, 400, "DEL in Name: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writes_are_consistent() {
    let server = Server::start();
    let client = server.client();

    // Same ClientToken, same parameters, in parallel: one org, one id.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let c = client.clone();
        handles.push(tokio::spawn(async move {
            c.create_organization()
                .alias("race")
                .client_token("race-token")
                .send()
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for h in handles {
        let out = ok(h.await.unwrap());
        ids.insert(out.organization_id().unwrap().to_string());
    }
    assert_eq!(
        ids.len(),
        1,
        "concurrent replays created several orgs: {ids:?}"
    );
    let org = ids.into_iter().next().unwrap();

    // Same alias, different tokens: exactly one wins, the others get NameAvailabilityException.
    let mut handles = Vec::new();
    for i in 0..8 {
        let c = client.clone();
        handles.push(tokio::spawn(async move {
            c.create_organization()
                .alias("contended")
                .client_token(format!("t{i}"))
                .send()
                .await
        }));
    }
    let mut wins = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert!(
                e.into_service_error().is_name_availability_exception(),
                "loser must get NameAvailabilityException"
            ),
        }
    }
    assert_eq!(wins, 1, "exactly one CreateOrganization per alias may win");

    // Same user name in parallel: one user.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let c = client.clone();
        let org = org.clone();
        handles.push(tokio::spawn(async move {
            c.create_user()
                .organization_id(org)
                .name("twin")
                .display_name("Twin")
                .send()
                .await
        }));
    }
    let mut wins = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert!(e.into_service_error().is_name_availability_exception()),
        }
    }
    assert_eq!(wins, 1, "exactly one CreateUser per name may win");

    // Two users racing for one email: one wins, the other gets EmailAddressInUseException.
    let mut uids = Vec::new();
    for n in ["racer1", "racer2", "racer3", "racer4"] {
        let out = ok(client
            .create_user()
            .organization_id(&org)
            .name(n)
            .display_name(n)
            .send()
            .await);
        uids.push(out.user_id().unwrap().to_string());
    }
    let mut handles = Vec::new();
    for uid in uids {
        let c = client.clone();
        let org = org.clone();
        handles.push(tokio::spawn(async move {
            c.register_to_work_mail()
                .organization_id(org)
                .entity_id(uid)
                .email("prize@race.awsapps.com")
                .send()
                .await
        }));
    }
    let mut wins = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert!(e.into_service_error().is_email_address_in_use_exception()),
        }
    }
    assert_eq!(wins, 1, "exactly one user may hold an email");
    let enabled = ok(client
        .list_users()
        .organization_id(&org)
        .filters(
            ListUsersFilters::builder()
                .state(EntityState::Enabled)
                .build(),
        )
        .send()
        .await);
    assert_eq!(enabled.users().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wire_format_of_outputs() {
    let server = Server::start();
    let client = server.client();
    let web = server.web();
    let org = setup_org(&client, "wire", Some(30)).await;
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    web.create_pat(&session, "w", None).await;

    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "ListPersonalAccessTokens",
            &json!({"OrganizationId": org.id}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.text.contains("null"),
        "absent members must be omitted: {}",
        r.text
    );
    let s = &r.json()["PersonalAccessTokenSummaries"][0];
    assert!(s.get("DateLastUsed").is_none(), "{s}");
    assert!(r.json().get("NextToken").is_none(), "{}", r.text);
    for f in ["DateCreated", "ExpiresTime"] {
        assert!(
            s[f].is_number(),
            "{f} must be a JSON number of epoch seconds: {s}"
        );
        let text = s[f].to_string();
        let decimals = text.split('.').nth(1).map_or(0, str::len);
        assert!(
            decimals <= 3,
            "{f} has more than millisecond precision: {text}"
        );
        let v = s[f].as_f64().unwrap();
        assert!(v > 1.6e9 && v < 1e11, "{f} is not in seconds: {v}");
    }
    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "DescribeOrganization",
            &json!({"OrganizationId": org.id}),
        )
        .await;
    assert!(r.json()["CompletedDate"].is_number(), "{}", r.text);
    assert!(!r.text.contains("null"), "{}", r.text);
    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "DescribeUser",
            &json!({"OrganizationId": org.id, "UserId": org.user.id}),
        )
        .await;
    assert!(r.json()["EnabledDate"].is_number(), "{}", r.text);
    assert!(!r.text.contains("null"), "{}", r.text);
    // Operations without output answer 200 with an empty body or {}.
    let r = server
        .raw_call(
            ACCOUNT,
            REGION,
            "DeletePersonalAccessToken",
            &json!({"OrganizationId": org.id, "PersonalAccessTokenId": "nothere"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.is_empty() || r.text == "{}", "{}", r.text);

    // DeleteOrganization ClientToken with different parameters -> InvalidParameterException (D3).
    ok(client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(true)
        .force_delete(true)
        .client_token("d-tok")
        .send()
        .await);
    let e = client
        .delete_organization()
        .organization_id(&org.id)
        .delete_directory(false)
        .force_delete(true)
        .client_token("d-tok")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.into_service_error().is_invalid_parameter_exception(),
        "same ClientToken, other DeleteDirectory"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_user_name_reuse_resolves_to_the_live_user() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "reuse").await;
    let old = ok(client
        .create_user()
        .organization_id(&org)
        .name("sam")
        .display_name("Old Sam")
        .send()
        .await);
    let old_id = old.user_id().unwrap().to_string();
    ok(client
        .delete_user()
        .organization_id(&org)
        .user_id(&old_id)
        .send()
        .await);
    // Whether a DELETED user's name may be reused is not specified; if it may, names must resolve to the
    // live user, and the old one stays reachable by id.
    match client
        .create_user()
        .organization_id(&org)
        .name("sam")
        .display_name("New Sam")
        .password(PASSWORD)
        .send()
        .await
    {
        Ok(new) => {
            let new_id = new.user_id().unwrap().to_string();
            assert_ne!(new_id, old_id);
            let d = ok(client
                .describe_user()
                .organization_id(&org)
                .user_id("sam")
                .send()
                .await);
            assert_eq!(
                d.user_id(),
                Some(new_id.as_str()),
                "name resolves to the DELETED user"
            );
            ok(client
                .register_to_work_mail()
                .organization_id(&org)
                .entity_id("sam")
                .email("sam@reuse.awsapps.com")
                .send()
                .await);
            ok(client
                .list_personal_access_tokens()
                .organization_id(&org)
                .user_id("sam")
                .send()
                .await);
            let d = ok(client
                .describe_user()
                .organization_id(&org)
                .user_id(&old_id)
                .send()
                .await);
            assert_eq!(d.state(), Some(&EntityState::Deleted));
        }
        Err(e) => assert!(e.into_service_error().is_name_availability_exception()),
    }
}
