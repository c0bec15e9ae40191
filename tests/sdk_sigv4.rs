//! `--auth sigv4`: real SDK requests and raw aws-sigv4-signed requests against a server that verifies
//! signatures.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use serde_json::json;

const AKID: &str = "AKIDEXAMPLE1";
const SECRET: &str = "secret1";
const KEY_ACCOUNT: &str = "111111111111";
const SIGNATURE_ERRORS: [&str; 2] = ["InvalidSignatureException", "IncompleteSignatureException"];

fn sigv4_server() -> Server {
    Server::start_with(&[
        "--auth",
        "sigv4",
        "--access-key",
        &format!("{AKID}:{SECRET}:{KEY_ACCOUNT}"),
    ])
}

fn body_of(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[track_caller]
fn assert_error(r: &RawResponse, expected: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: HTTP status {} ({r:?})", r.status);
    assert_eq!(r.error_type().as_deref(), Some(expected), "{what}: {r:?}");
    assert!(
        r.headers.contains_key("x-amzn-requestid"),
        "{what}: no x-amzn-RequestId"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_with_right_key_passes_and_key_selects_account() {
    let server = sigv4_server();
    let client = server.client_with_secret(AKID, SECRET, "us-east-1");
    let id = create_org(&client, "signed").await;
    let d = ok(client
        .describe_organization()
        .organization_id(&id)
        .send()
        .await);
    assert_eq!(
        d.arn(),
        Some(format!("arn:aws:workmail:us-east-1:{KEY_ACCOUNT}:organization/{id}").as_str()),
        "the account is the key's configured account"
    );
    // Non-ASCII body bytes are hashed as sent.
    let u = ok(client
        .create_user()
        .organization_id(&id)
        .name("zoe")
        .display_name("Zoë Ünïcødé ✓")
        .password(PASSWORD)
        .send()
        .await);
    let du = ok(client
        .describe_user()
        .organization_id(&id)
        .user_id(u.user_id().unwrap())
        .send()
        .await);
    assert_eq!(du.display_name(), Some("Zoë Ünïcødé ✓"));
    // Every list and paginator call verifies too.
    let l = ok(client.list_organizations().send().await);
    assert_eq!(l.organization_summaries().len(), 1);
    // Another region with the same key is another partition.
    let west = server.client_with_secret(AKID, SECRET, "eu-west-1");
    let e = west
        .describe_organization()
        .organization_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_wrong_secret_and_unknown_key() {
    let server = sigv4_server();
    let wrong = server.client_with_secret(AKID, "not-the-secret", "us-east-1");
    let e = expect_code(
        wrong.list_organizations().send().await,
        "InvalidSignatureException",
    );
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    expect_code(
        wrong.create_organization().alias("nope").send().await,
        "InvalidSignatureException",
    );

    let unknown = server.client_with_secret("AKIDUNKNOWN9", SECRET, "us-east-1");
    let e = expect_code(
        unknown.list_organizations().send().await,
        "UnrecognizedClientException",
    );
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    // A 12-digit key is not an account in sigv4 mode: it is just an unknown key.
    let digits = server.client_with_secret(KEY_ACCOUNT, SECRET, "us-east-1");
    expect_code(
        digits.list_organizations().send().await,
        "UnrecognizedClientException",
    );

    // Nothing was created by the rejected calls.
    let good = server.client_with_secret(AKID, SECRET, "us-east-1");
    assert!(
        ok(good.list_organizations().send().await)
            .organization_summaries()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_signed_requests() {
    let server = sigv4_server();
    let now = SystemTime::now();
    let list = body_of(json!({}));

    // Sanity: the raw signer produces requests the server accepts.
    let ok_req = sign_request(
        &server.host,
        "ListOrganizations",
        &list,
        AKID,
        SECRET,
        "us-east-1",
        now,
    );
    let r = send_signed(&server.base_url, &ok_req).await;
    assert_eq!(
        r.status, 200,
        "correctly signed raw request rejected: {r:?}"
    );

    // Clock skew beyond 15 minutes, both ways; within it, accepted.
    for (what, t) in [
        ("20 min in the past", now - Duration::from_secs(20 * 60)),
        ("20 min in the future", now + Duration::from_secs(20 * 60)),
        ("1 day in the past", now - Duration::from_secs(86_400)),
    ] {
        let req = sign_request(
            &server.host,
            "ListOrganizations",
            &list,
            AKID,
            SECRET,
            "us-east-1",
            t,
        );
        assert_error(
            &send_signed(&server.base_url, &req).await,
            "InvalidSignatureException",
            what,
        );
    }
    for (what, t) in [
        ("10 min in the past", now - Duration::from_secs(10 * 60)),
        ("10 min in the future", now + Duration::from_secs(10 * 60)),
    ] {
        let req = sign_request(
            &server.host,
            "ListOrganizations",
            &list,
            AKID,
            SECRET,
            "us-east-1",
            t,
        );
        let r = send_signed(&server.base_url, &req).await;
        assert_eq!(
            r.status, 200,
            "{what} is inside the 15-minute window: {r:?}"
        );
    }

    // Set up an org and a token to attack.
    let client = server.client_with_secret(AKID, SECRET, "us-east-1");
    let org = setup_org(&client, "raw", Some(30)).await;
    let web = server.web();
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let pat = web.create_pat(&session, "victim", None).await;
    let pat_id = pat["PersonalAccessTokenId"].as_str().unwrap();
    let get_body = body_of(json!({"OrganizationId": org.id, "PersonalAccessTokenId": pat_id}));

    let get = sign_request(
        &server.host,
        "GetPersonalAccessTokenMetadata",
        &get_body,
        AKID,
        SECRET,
        "us-east-1",
        now,
    );
    let r = send_signed(&server.base_url, &get).await;
    assert_eq!(r.status, 200, "{r:?}");

    // x-amz-target altered after signing: a captured Get replayed as a Delete.
    let mut as_delete = get.clone();
    as_delete.set_header("x-amz-target", "WorkMailService.DeletePersonalAccessToken");
    assert_error(
        &send_signed(&server.base_url, &as_delete).await,
        "InvalidSignatureException",
        "target altered",
    );

    // Body altered after signing (same length and different length).
    let mut altered = get.clone();
    altered.body =
        body_of(json!({"OrganizationId": org.id, "PersonalAccessTokenId": "zzzzzzzzzzzzzzzz"}));
    assert_error(
        &send_signed(&server.base_url, &altered).await,
        "InvalidSignatureException",
        "body altered",
    );
    let mut flipped = get.clone();
    let last = flipped.body.len() - 3;
    flipped.body[last] ^= 0x01;
    assert_error(
        &send_signed(&server.base_url, &flipped).await,
        "InvalidSignatureException",
        "one body bit flipped",
    );
    let mut extended = get.clone();
    extended.body.push(b' ');
    assert_error(
        &send_signed(&server.base_url, &extended).await,
        "InvalidSignatureException",
        "body extended",
    );

    // X-Amz-Date altered after signing.
    let mut redated = get.clone();
    let later = sign_request(
        &server.host,
        "ListOrganizations",
        &list,
        AKID,
        SECRET,
        "us-east-1",
        now + Duration::from_secs(60),
    );
    let later_date = later
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-date"))
        .unwrap()
        .1
        .clone();
    redated.set_header("x-amz-date", &later_date);
    assert_error(
        &send_signed(&server.base_url, &redated).await,
        "InvalidSignatureException",
        "x-amz-date altered",
    );

    // Signed for another region than the scope claims? Signed by another service name.
    let auth = get
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1
        .clone();
    let mut wrong_service = get.clone();
    wrong_service.set_header(
        "authorization",
        &auth.replace("/workmail/aws4_request", "/s3/aws4_request"),
    );
    assert_error(
        &send_signed(&server.base_url, &wrong_service).await,
        "InvalidSignatureException",
        "scope service s3",
    );
    let mut wrong_region = get.clone();
    wrong_region.set_header("authorization", &auth.replace("/us-east-1/", "/us-west-2/"));
    assert_error(
        &send_signed(&server.base_url, &wrong_region).await,
        "InvalidSignatureException",
        "scope region changed",
    );

    // The token survived every attack.
    let g = ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(pat_id)
        .send()
        .await);
    assert_eq!(g.name(), Some("victim"));

    // x-amz-target not among the signed headers: must be refused (security.md §5.4).
    let unsigned_target = {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_smithy_runtime_api::client::identity::Identity;
        let identity: Identity =
            aws_credential_types::Credentials::new(AKID, SECRET, None, None, "raw").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("workmail")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", server.host.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            format!("http://{}/", server.host),
            headers.iter().copied(),
            SignableBody::Bytes(&get_body),
        )
        .unwrap();
        let (instr, _) = sign(signable, &params).unwrap().into_parts();
        let mut h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        h.extend(instr.headers().map(|(k, v)| (k.to_string(), v.to_string())));
        h.push((
            "x-amz-target".into(),
            "WorkMailService.DeletePersonalAccessToken".into(),
        ));
        SignedRequest {
            headers: h,
            body: get_body.clone(),
        }
    };
    let r = send_signed(&server.base_url, &unsigned_target).await;
    assert_eq!(r.status, 400, "unsigned x-amz-target accepted: {r:?}");
    assert!(
        SIGNATURE_ERRORS.contains(&r.error_type().unwrap_or_default().as_str()),
        "unsigned x-amz-target: {r:?}"
    );
    ok(client
        .get_personal_access_token_metadata()
        .organization_id(&org.id)
        .personal_access_token_id(pat_id)
        .send()
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_malformed_authorization() {
    for server in [sigv4_server(), Server::start()] {
        let http = reqwest::Client::new();
        let post = |auth: Option<&str>| {
            let mut rb = http
                .post(format!("{}/", server.base_url))
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", "WorkMailService.ListOrganizations")
                .header("x-amz-date", "20260101T000000Z")
                .body("{}");
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            rb.send()
        };
        let to_raw = |resp: reqwest::Response| async move {
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            RawResponse {
                status,
                headers,
                text: resp.text().await.unwrap(),
            }
        };
        let r = to_raw(post(None).await.unwrap()).await;
        assert_error(
            &r,
            "MissingAuthenticationTokenException",
            "no Authorization",
        );
        assert!(
            r.json()["message"].is_string(),
            "framework errors use lowercase message: {r:?}"
        );
        for bad in [
            "garbage",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abcd",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE1/20260101/us-east-1/workmail/aws4_request, Signature=abcd",
        ] {
            let r = to_raw(post(Some(bad)).await.unwrap()).await;
            assert_error(
                &r,
                "IncompleteSignatureException",
                &format!("Authorization {bad:?}"),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn several_keys_and_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("creds");
    std::fs::write(
        &file,
        "# test keys\nAKIDFILE1:fsecret1:333333333333\n\nAKIDFILE2:fsecret2:444444444444\n",
    )
    .unwrap();
    let server = Server::start_with(&[
        "--auth",
        "sigv4",
        "--access-key",
        "AKIDONE:s-one:555555555555",
        "--access-key",
        "AKIDTWO:s-two:555555555555",
        "--credentials-file",
        file.to_str().unwrap(),
    ]);
    let one = server.client_with_secret("AKIDONE", "s-one", "us-east-1");
    let two = server.client_with_secret("AKIDTWO", "s-two", "us-east-1");
    let f1 = server.client_with_secret("AKIDFILE1", "fsecret1", "us-east-1");
    let f2 = server.client_with_secret("AKIDFILE2", "fsecret2", "us-east-1");

    let id = create_org(&one, "shared").await;
    // Two keys of one account share its state.
    let d = ok(two
        .describe_organization()
        .organization_id(&id)
        .send()
        .await);
    assert!(d.arn().unwrap().contains(":555555555555:"), "{:?}", d.arn());
    // Keys of other accounts do not.
    let e = f1
        .describe_organization()
        .organization_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_organization_not_found_exception());
    let fid = create_org(&f1, "fromfile").await;
    let d = ok(f1
        .describe_organization()
        .organization_id(&fid)
        .send()
        .await);
    assert!(d.arn().unwrap().contains(":333333333333:"), "{:?}", d.arn());
    assert!(
        ok(f2.list_organizations().send().await)
            .organization_summaries()
            .is_empty()
    );
    // The comment line is not a key.
    let comment = server.client_with_secret("# test keys", "x", "us-east-1");
    assert!(comment.list_organizations().send().await.is_err());
    // A key's secret is its own.
    expect_code(
        server
            .client_with_secret("AKIDFILE1", "fsecret2", "us-east-1")
            .list_organizations()
            .send()
            .await,
        "InvalidSignatureException",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_hash_header_cannot_unauthenticate_the_body() {
    let server = sigv4_server();
    let client = server.client_with_secret(AKID, SECRET, "us-east-1");
    let org = setup_org(&client, "hash", Some(30)).await;
    let web = server.web();
    let session = web.sign_in(&org.id, &org.user.name, PASSWORD).await;
    let a = web.create_pat(&session, "a", None).await;
    let b = web.create_pat(&session, "b", None).await;
    let a_id = a["PersonalAccessTokenId"].as_str().unwrap();
    let b_id = b["PersonalAccessTokenId"].as_str().unwrap();
    let body_a = body_of(json!({"OrganizationId": org.id, "PersonalAccessTokenId": a_id}));
    let body_b = body_of(json!({"OrganizationId": org.id, "PersonalAccessTokenId": b_id}));
    let now = SystemTime::now();

    // Sanity: an x-amz-content-sha256 header that matches the body is fine.
    let honest = sign_request_with(
        &server.host,
        "GetPersonalAccessTokenMetadata",
        &body_a,
        Payload::Claimed(sha256_hex(&body_a)),
        AKID,
        SECRET,
        "us-east-1",
        now,
    );
    let r = send_signed(&server.base_url, &honest).await;
    assert_eq!(
        r.status, 200,
        "matching x-amz-content-sha256 rejected: {r:?}"
    );

    // A Delete signed over the hash of body A, sent with body B: the server must hash what it received.
    let mut swapped = sign_request_with(
        &server.host,
        "DeletePersonalAccessToken",
        &body_a,
        Payload::Claimed(sha256_hex(&body_a)),
        AKID,
        SECRET,
        "us-east-1",
        now,
    );
    swapped.body = body_b.clone();
    let r = send_signed(&server.base_url, &swapped).await;
    assert_eq!(
        r.status, 400,
        "body swapped under a signed x-amz-content-sha256 accepted: {r:?}"
    );
    // UNSIGNED-PAYLOAD would leave the body unauthenticated: refused.
    let unsigned = sign_request_with(
        &server.host,
        "DeletePersonalAccessToken",
        &body_b,
        Payload::Unsigned,
        AKID,
        SECRET,
        "us-east-1",
        now,
    );
    let r = send_signed(&server.base_url, &unsigned).await;
    assert_eq!(r.status, 400, "UNSIGNED-PAYLOAD accepted: {r:?}");

    // Both tokens survived.
    for id in [a_id, b_id] {
        ok(client
            .get_personal_access_token_metadata()
            .organization_id(&org.id)
            .personal_access_token_id(id)
            .send()
            .await);
    }
}

/// A clock that runs `offset` seconds ahead of (or, negative, behind) real time.
#[derive(Debug)]
struct Skewed(i64);

impl aws_smithy_async::time::TimeSource for Skewed {
    fn now(&self) -> SystemTime {
        let d = Duration::from_secs(self.0.unsigned_abs());
        if self.0 > 0 {
            SystemTime::now() + d
        } else {
            SystemTime::now() - d
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_with_a_skewed_clock_is_refused_beyond_the_window() {
    let server = sigv4_server();
    for offset in [1200, -1200] {
        let client = aws_sdk_workmail::Client::from_conf(
            server
                .config_builder(AKID, SECRET, "us-east-1")
                .time_source(Skewed(offset))
                .build(),
        );
        let e = expect_code(
            client.list_organizations().send().await,
            "InvalidSignatureException",
        );
        assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    }
    // Inside the 15-minute window the same SDK is accepted.
    let client = aws_sdk_workmail::Client::from_conf(
        server
            .config_builder(AKID, SECRET, "us-east-1")
            .time_source(Skewed(600))
            .build(),
    );
    ok(client.list_organizations().send().await);
}
