//! Shared harness for the aws-sdk-workmail integration tests.
//!
//! Spawns the real `workmail-pat` binary on a random loopback port with a throw-away SQLite file, builds
//! SDK clients against it, drives the self-service web API with reqwest and offers a raw SigV4-signed
//! requester for requests the SDK refuses to send.
//!
//! With `WORKMAIL_PAT_TEST_BACKEND=postgres` every server started by [`Server::start_with`] runs on its own
//! throw-away PostgreSQL database (with key files in its directory) instead, so the same suites test both stores.
#![allow(dead_code)]

pub mod postgres;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_workmail::Client;
use aws_sdk_workmail::config::retry::RetryConfig;
use aws_sdk_workmail::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_workmail::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_workmail::types::{
    IdentityCenterConfiguration, IdentityProviderAuthenticationMode,
    PersonalAccessTokenConfiguration, PersonalAccessTokenConfigurationStatus,
};
use serde_json::{Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PASSWORD: &str = "Correct-Horse-9";
pub const INSTANCE_ARN: &str = "arn:aws:sso:::instance/ssoins-1111111111111111";
pub const APPLICATION_ARN: &str =
    "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A process-unique suffix for names.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id())
}

/// A running `workmail-pat serve` process. Killed (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    child: Option<Child>,
    pub base_url: String,
    pub host: String,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    log_path: std::path::PathBuf,
    /// Arguments every process on this database needs (the key files, for PostgreSQL).
    pub shared_args: Vec<String>,
    /// The throw-away PostgreSQL database, dropped after the last server on it.
    pub pg: Option<std::sync::Arc<postgres::TestDb>>,
}

/// Whether the harness runs servers on PostgreSQL (`WORKMAIL_PAT_TEST_BACKEND=postgres`).
pub fn postgres_backend() -> bool {
    std::env::var("WORKMAIL_PAT_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl Server {
    /// Accept-any server on a fresh database.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        if postgres_backend() {
            let db = std::sync::Arc::new(postgres::TestDb::create("sdk"));
            let shared = key_file_args(dir.path());
            return Server::start_shared(dir, db, shared, extra);
        }
        let db_url = format!("sqlite:{}", dir.path().join("wm.db").display());
        Server::start_on(dir, db_url, extra)
    }

    /// A server on an existing PostgreSQL test database with the given shared arguments (key files).
    pub fn start_shared(
        dir: tempfile::TempDir,
        db: std::sync::Arc<postgres::TestDb>,
        shared: Vec<String>,
        extra: &[&str],
    ) -> Server {
        let mut args: Vec<&str> = shared
            .chunks(2)
            .filter(|pair| !extra.contains(&pair[0].as_str()))
            .flatten()
            .map(String::as_str)
            .collect();
        args.extend_from_slice(extra);
        let mut server = Server::start_on(dir, db.url.clone(), &args);
        server.shared_args = shared;
        server.pg = Some(db);
        server
    }

    /// Start a server on `db_url` (which may live in another server's directory: replicas share the
    /// database and the key files generated beside it). `dir` holds this server's log.
    pub fn start_on(dir: tempfile::TempDir, db_url: String, extra: &[&str]) -> Server {
        let log_path = dir.path().join(format!("server-{}.log", unique("")));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_workmail-pat"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database")
            .arg(&db_url)
            .args(extra);
        // These suites fail sign-ins and verifications on purpose, many times from 127.0.0.1; the failure limits
        // are tested on their own (tests/python/test_throttling.py), so they are out of the way here.
        if !extra
            .iter()
            .any(|a| a.starts_with("--user-failures") || a.starts_with("--ip-failures"))
        {
            cmd.args(["--user-failures", "1000000", "--ip-failures", "1000000"]);
        }
        // The SigV4 suites send many deliberately broken signatures from 127.0.0.1.
        if !extra.iter().any(|a| a.starts_with("--api-unverified")) {
            cmd.args([
                "--api-unverified-rate",
                "1000000",
                "--api-unverified-burst",
                "1000000",
            ]);
        }
        cmd.env_remove("WORKMAIL_PAT_LISTEN")
            .env_remove("WORKMAIL_PAT_DATABASE")
            .env_remove("WORKMAIL_PAT_AUTH")
            .env_remove("WORKMAIL_PAT_TOKEN_KEY_FILE")
            .env_remove("WORKMAIL_PAT_PEPPER_FILE")
            .env_remove("WORKMAIL_PAT_CREDENTIALS_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn workmail-pat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line.trim_end().to_string()).is_err() {
                            // Nobody listens any more; keep draining so the child never blocks.
                            let mut sink = Vec::new();
                            let _ = reader.read_to_end(&mut sink);
                            break;
                        }
                    }
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        let base_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening on ") {
                        break rest.trim().to_string();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!(
                        "server did not print `listening on http://HOST:PORT` within {STARTUP_TIMEOUT:?}; \
                         stdout: {seen:?}\nstderr:\n{log}"
                    );
                }
            }
        };
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "unexpected listening line: {base_url}"
        );
        let host = base_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let port: u16 = host.rsplit(':').next().unwrap().parse().expect("port");
        assert_ne!(port, 0, "server printed port 0");
        Server {
            child: Some(child),
            base_url,
            host,
            dir,
            db_url,
            log_path,
            shared_args: Vec::new(),
            pg: None,
        }
    }

    /// Another server process on the same database.
    pub fn replica(&self, extra: &[&str]) -> Server {
        if let Some(db) = &self.pg {
            return Server::start_shared(
                tempfile::tempdir().expect("tempdir"),
                db.clone(),
                self.shared_args.clone(),
                extra,
            );
        }
        Server::start_on(
            tempfile::tempdir().expect("tempdir"),
            self.db_url.clone(),
            extra,
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Wait for the process to exit on its own (after a signal sent by the test).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SDK client whose access key id is `access_key` (a 12-digit key selects that account in accept-any mode).
    pub fn client_for(&self, access_key: &str, region: &str) -> Client {
        self.client_with_secret(access_key, "not-checked-secret", region)
    }

    pub fn client_with_secret(&self, access_key: &str, secret: &str, region: &str) -> Client {
        Client::from_conf(self.config_builder(access_key, secret, region).build())
    }

    pub fn config_builder(
        &self,
        access_key: &str,
        secret: &str,
        region: &str,
    ) -> aws_sdk_workmail::config::Builder {
        aws_sdk_workmail::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.base_url.clone())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                access_key,
                secret,
                None,
                None,
                "workmail-pat-tests",
            ))
            .retry_config(RetryConfig::disabled())
    }

    /// Default client: account 123456789012, us-east-1.
    pub fn client(&self) -> Client {
        self.client_for(ACCOUNT, REGION)
    }

    pub fn web(&self) -> Web {
        Web {
            http: reqwest::Client::new(),
            base: self.base_url.clone(),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `--token-key-file` and `--pepper-file` in `dir` (created by the first server that starts with them): what
/// replicas on one PostgreSQL database share.
pub fn key_file_args(dir: &std::path::Path) -> Vec<String> {
    vec![
        "--token-key-file".into(),
        dir.join("token-key").display().to_string(),
        "--pepper-file".into(),
        dir.join("pepper").display().to_string(),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// SDK error helpers

/// The modelled or protocol error code of an SDK error (None for transport failures).
pub fn code_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    err.code().map(str::to_string)
}

pub fn message_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    err.message().map(str::to_string)
}

/// Render an SDK error with its whole source chain (for assertion messages).
pub fn show<E: std::error::Error + 'static, R: std::fmt::Debug>(err: &SdkError<E, R>) -> String {
    format!("{}", DisplayErrorContext(err))
}

/// Assert that `res` is an error with code `code`; returns the error for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug, E, R>(
    res: Result<T, SdkError<E, R>>,
    code: &str,
) -> SdkError<E, R>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match res {
        Ok(v) => panic!("expected {code}, got success: {v:?}"),
        Err(e) => {
            assert_eq!(
                code_of(&e).as_deref(),
                Some(code),
                "wrong error: {}",
                show(&e)
            );
            e
        }
    }
}

/// Unwrap an SDK result with a readable panic message.
#[track_caller]
pub fn ok<T, E, R>(res: Result<T, SdkError<E, R>>) -> T
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match res {
        Ok(v) => v,
        Err(e) => panic!("unexpected SDK error: {}", show(&e)),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures through the AWS API

pub async fn create_org(client: &Client, alias: &str) -> String {
    let out = ok(client.create_organization().alias(alias).send().await);
    out.organization_id().expect("OrganizationId").to_string()
}

pub fn domain_of(alias: &str) -> String {
    format!("{alias}.awsapps.com")
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// CreateUser + RegisterToWorkMail: an ENABLED user with a password.
pub async fn create_enabled_user(client: &Client, org: &str, alias: &str, name: &str) -> User {
    let out = ok(client
        .create_user()
        .organization_id(org)
        .name(name)
        .display_name(format!("{name} display"))
        .password(PASSWORD)
        .send()
        .await);
    let id = out.user_id().expect("UserId").to_string();
    let email = format!("{name}@{}", domain_of(alias));
    ok(client
        .register_to_work_mail()
        .organization_id(org)
        .entity_id(&id)
        .email(&email)
        .send()
        .await);
    User {
        id,
        name: name.to_string(),
        email,
        password: PASSWORD.to_string(),
    }
}

pub async fn put_pat_config(client: &Client, org: &str, active: bool, lifetime_days: Option<i32>) {
    let status = if active {
        PersonalAccessTokenConfigurationStatus::Active
    } else {
        PersonalAccessTokenConfigurationStatus::Inactive
    };
    let pat = PersonalAccessTokenConfiguration::builder()
        .status(status)
        .set_lifetime_in_days(lifetime_days)
        .build()
        .unwrap();
    ok(client
        .put_identity_provider_configuration()
        .organization_id(org)
        .authentication_mode(IdentityProviderAuthenticationMode::IdentityProviderAndDirectory)
        .identity_center_configuration(
            IdentityCenterConfiguration::builder()
                .instance_arn(INSTANCE_ARN)
                .application_arn(APPLICATION_ARN)
                .build()
                .unwrap(),
        )
        .personal_access_token_configuration(pat)
        .send()
        .await);
}

/// An Active org with one ENABLED user and an ACTIVE PAT configuration.
pub struct Org {
    pub id: String,
    pub alias: String,
    pub user: User,
}

pub async fn setup_org(client: &Client, alias: &str, lifetime_days: Option<i32>) -> Org {
    let id = create_org(client, alias).await;
    let user = create_enabled_user(client, &id, alias, "alice").await;
    put_pat_config(client, &id, true, lifetime_days).await;
    Org {
        id,
        alias: alias.to_string(),
        user,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Self-service web API

#[derive(Clone)]
pub struct Web {
    pub http: reqwest::Client,
    pub base: String,
}

#[derive(Debug)]
pub struct WebResponse {
    pub status: u16,
    pub body: Value,
}

impl Web {
    async fn finish(resp: reqwest::Response) -> WebResponse {
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        WebResponse { status, body }
    }

    pub async fn sign_in_raw(&self, org: &str, username: &str, password: &str) -> WebResponse {
        let resp = self
            .http
            .post(format!("{}/webapp/api/sessions", self.base))
            .json(&json!({"OrganizationId": org, "Username": username, "Password": password}))
            .send()
            .await
            .expect("sessions request");
        Web::finish(resp).await
    }

    /// Sign in and return the session token (panics unless 200).
    pub async fn sign_in(&self, org: &str, username: &str, password: &str) -> String {
        let r = self.sign_in_raw(org, username, password).await;
        assert_eq!(r.status, 200, "sign-in failed: {r:?}");
        r.body["SessionToken"]
            .as_str()
            .expect("SessionToken")
            .to_string()
    }

    pub async fn create_pat_raw(&self, session: &str, body: Value) -> WebResponse {
        let resp = self
            .http
            .post(format!("{}/webapp/api/personal-access-tokens", self.base))
            .bearer_auth(session)
            .json(&body)
            .send()
            .await
            .expect("create pat request");
        Web::finish(resp).await
    }

    /// Create a PAT (panics unless 201); returns the 201 body.
    pub async fn create_pat(&self, session: &str, name: &str, scopes: Option<&[&str]>) -> Value {
        let mut body = json!({"Name": name});
        if let Some(s) = scopes {
            body["Scopes"] = json!(s);
        }
        let r = self.create_pat_raw(session, body).await;
        assert_eq!(r.status, 201, "create PAT failed: {r:?}");
        r.body
    }

    pub async fn list_pats(&self, session: &str) -> WebResponse {
        let resp = self
            .http
            .get(format!("{}/webapp/api/personal-access-tokens", self.base))
            .bearer_auth(session)
            .send()
            .await
            .expect("list pats request");
        Web::finish(resp).await
    }

    pub async fn delete_pat(&self, session: &str, id: &str) -> WebResponse {
        let resp = self
            .http
            .delete(format!(
                "{}/webapp/api/personal-access-tokens/{id}",
                self.base
            ))
            .bearer_auth(session)
            .send()
            .await
            .expect("delete pat request");
        Web::finish(resp).await
    }

    pub async fn verify(
        &self,
        org: &str,
        username: &str,
        token: &str,
        scope: Option<&str>,
    ) -> WebResponse {
        // A mail server always names the service it verifies for (the server requires it); `None` asks for IMAP,
        // which every default token has.
        let body = json!({"OrganizationId": org, "Username": username, "Token": token,
                          "Scope": scope.unwrap_or("IMAP")});
        let resp = self
            .http
            .post(format!("{}/auth/v1/verify", self.base))
            .json(&body)
            .send()
            .await
            .expect("verify request");
        Web::finish(resp).await
    }
}

/// Create `n` PATs for one signed-in user; returns their ids in creation order.
pub async fn create_pats(web: &Web, session: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = web
            .create_pat(session, &format!("{prefix}-{i}"), None)
            .await;
        ids.push(
            body["PersonalAccessTokenId"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    ids
}

// ---------------------------------------------------------------------------------------------------------
// Raw SigV4-signed requests

#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedRequest {
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (n, v) in self.headers.iter_mut() {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_string();
                return;
            }
        }
        self.headers.push((name.to_string(), value.to_string()));
    }
}

/// Sign `POST /` for `WorkMailService.<operation>` exactly like an SDK: signed headers content-type, host,
/// x-amz-date, x-amz-target; payload hash of `body`; no x-amz-content-sha256 header.
pub fn sign_request(
    host: &str,
    operation: &str,
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
    time: SystemTime,
) -> SignedRequest {
    sign_request_with(
        host,
        operation,
        body,
        Payload::Body,
        access_key,
        secret,
        region,
        time,
    )
}

/// How the payload is represented in the signature.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Hash of the body, no x-amz-content-sha256 header (what SDKs do for WorkMail).
    Body,
    /// Signed, and sent as x-amz-content-sha256, this hex SHA-256 instead of the body's.
    Claimed(String),
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
    Unsigned,
}

#[allow(clippy::too_many_arguments)]
pub fn sign_request_with(
    host: &str,
    operation: &str,
    body: &[u8],
    payload: Payload,
    access_key: &str,
    secret: &str,
    region: &str,
    time: SystemTime,
) -> SignedRequest {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;

    let target = format!("WorkMailService.{operation}");
    let base_headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("host".into(), host.to_string()),
        ("x-amz-target".into(), target),
    ];
    let identity: Identity =
        aws_credential_types::Credentials::new(access_key, secret, None, None, "raw").into();
    let mut settings = SigningSettings::default();
    let signable_body = match &payload {
        Payload::Body => SignableBody::Bytes(body),
        Payload::Claimed(hash) => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::Precomputed(hash.clone())
        }
        Payload::Unsigned => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::UnsignedPayload
        }
    };
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("workmail")
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        uri,
        base_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        signable_body,
    )
    .expect("signable request");
    let (instructions, _sig) = sign(signable, &params).expect("sign").into_parts();
    let mut headers = base_headers.clone();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    SignedRequest {
        headers,
        body: body.to_vec(),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The error type from `__type` (namespace and `:` suffix stripped) or, failing that, X-Amzn-ErrorType.
    pub fn error_type(&self) -> Option<String> {
        let raw = self.json()["__type"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                self.headers
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })?;
        let raw = raw.split(':').next().unwrap_or("").to_string();
        Some(raw.rsplit('#').next().unwrap_or("").to_string())
    }

    /// `Message` or `message`.
    pub fn message(&self) -> Option<String> {
        let v = self.json();
        v["Message"]
            .as_str()
            .or_else(|| v["message"].as_str())
            .map(str::to_string)
    }
}

pub async fn send_signed(base_url: &str, req: &SignedRequest) -> RawResponse {
    let http = reqwest::Client::new();
    let mut rb = http.post(format!("{}/", base_url.trim_end_matches('/')));
    for (k, v) in &req.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let resp = rb.body(req.body.clone()).send().await.expect("raw request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("raw body");
    RawResponse {
        status,
        headers,
        text,
    }
}

impl Server {
    /// Raw signed JSON call with a 12-digit (or any) access key in accept-any mode.
    pub async fn raw_call(
        &self,
        access_key: &str,
        region: &str,
        operation: &str,
        body: &Value,
    ) -> RawResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        let req = sign_request(
            &self.host,
            operation,
            &bytes,
            access_key,
            "not-checked-secret",
            region,
            SystemTime::now(),
        );
        send_signed(&self.base_url, &req).await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Misc

/// Lowercase GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn is_lower_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| {
            p.len() == n
                && p.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

pub fn is_org_id(s: &str) -> bool {
    s.len() == 34
        && s.starts_with("m-")
        && s[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

pub fn is_pat_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Milliseconds since the epoch, rounded to the nearest millisecond: the wire carries float seconds
/// (e.g. `1796177231.349`), which the SDK parses to a value a hair below the intended millisecond.
pub fn millis(dt: &aws_sdk_workmail::primitives::DateTime) -> i64 {
    dt.secs() * 1000 + (i64::from(dt.subsec_nanos()) + 500_000) / 1_000_000
}
