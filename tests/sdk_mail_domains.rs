//! Mail domains and addresses (issue 15) through the official aws-sdk-workmail crate: the happy path of each of the
//! nine operations, its paginators, and the typed errors the SDK models for them.

mod common;

use aws_sdk_workmail::types::DnsRecordVerificationStatus;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn domains_and_aliases_happy_paths() {
    let server = Server::start();
    let client = server.client();
    let org = create_org(&client, "sdkdomains").await;
    let test_domain = domain_of("sdkdomains");
    let domain = "sdk-mail.example.com";

    // The test domain exists from creation and is the default.
    let listed = ok(client
        .list_mail_domains()
        .organization_id(&org)
        .send()
        .await);
    let names: Vec<_> = listed
        .mail_domains()
        .iter()
        .map(|d| (d.domain_name().unwrap().to_string(), d.default_domain()))
        .collect();
    assert_eq!(names, vec![(test_domain.clone(), true)]);

    ok(client
        .register_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .client_token("sdk-token-1")
        .send()
        .await);
    // A retry with the same ClientToken answers like the first call.
    ok(client
        .register_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .client_token("sdk-token-1")
        .send()
        .await);
    let got = ok(client
        .get_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .send()
        .await);
    assert_eq!(
        got.ownership_verification_status(),
        Some(&DnsRecordVerificationStatus::Verified)
    );
    assert_eq!(
        got.dkim_verification_status(),
        Some(&DnsRecordVerificationStatus::Verified)
    );
    assert!(!got.is_test_domain() && !got.is_default());
    assert_eq!(got.records().len(), 6);
    assert!(
        got.records().iter().any(|r| r.r#type() == Some("TXT")
            && r.hostname() == Some("_amazonses.sdk-mail.example.com."))
    );

    ok(client
        .update_default_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .send()
        .await);
    let described = ok(client
        .describe_organization()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(described.default_mail_domain(), Some(domain));

    // A user registered in the new domain, with aliases; the paginator walks them.
    let uid = ok(client
        .create_user()
        .organization_id(&org)
        .name("dora")
        .display_name("Dora")
        .password(PASSWORD)
        .send()
        .await)
    .user_id()
    .unwrap()
    .to_string();
    ok(client
        .register_to_work_mail()
        .organization_id(&org)
        .entity_id(&uid)
        .email(format!("dora@{domain}"))
        .send()
        .await);
    for i in 0..5 {
        ok(client
            .create_alias()
            .organization_id(&org)
            .entity_id(&uid)
            .alias(format!("d{i}@{domain}"))
            .send()
            .await);
    }
    let mut pages = client
        .list_aliases()
        .organization_id(&org)
        .entity_id(&uid)
        .max_results(2)
        .into_paginator()
        .send();
    let mut aliases = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        page_count += 1;
        aliases.extend(page.aliases().iter().cloned());
    }
    assert_eq!(page_count, 3);
    assert_eq!(
        aliases,
        (0..5).map(|i| format!("d{i}@{domain}")).collect::<Vec<_>>()
    );
    ok(client
        .delete_alias()
        .organization_id(&org)
        .entity_id(&uid)
        .alias(format!("d0@{domain}"))
        .send()
        .await);

    // A new primary address: the old one stays as an alias.
    ok(client
        .update_primary_email_address()
        .organization_id(&org)
        .entity_id(&uid)
        .email(format!("d1@{domain}"))
        .send()
        .await);
    let user = ok(client
        .describe_user()
        .organization_id(&org)
        .user_id(&uid)
        .send()
        .await);
    assert_eq!(user.email(), Some(format!("d1@{domain}").as_str()));
    let out = ok(client
        .list_aliases()
        .organization_id(&org)
        .entity_id(&uid)
        .send()
        .await);
    assert!(out.aliases().contains(&format!("dora@{domain}")));

    // Typed errors.
    let e = client
        .deregister_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|s| s.is_mail_domain_in_use_exception()),
        "{}",
        show(&e)
    );
    let e = client
        .get_mail_domain()
        .organization_id(&org)
        .domain_name("nowhere.example.com")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|s| s.is_mail_domain_not_found_exception()),
        "{}",
        show(&e)
    );

    // Back to the test domain, the user gone: the domain can be deregistered.
    ok(client
        .update_default_mail_domain()
        .organization_id(&org)
        .domain_name(&test_domain)
        .send()
        .await);
    ok(client
        .deregister_from_work_mail()
        .organization_id(&org)
        .entity_id(&uid)
        .send()
        .await);
    ok(client
        .deregister_mail_domain()
        .organization_id(&org)
        .domain_name(domain)
        .send()
        .await);
    let listed = ok(client
        .list_mail_domains()
        .organization_id(&org)
        .send()
        .await);
    assert_eq!(listed.mail_domains().len(), 1);
}
