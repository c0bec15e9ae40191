//! Proptest equivalents of the cargo-fuzz targets in `fuzz/` (issue 5), run by `cargo test` on every CI run:
//! arbitrary bytes and strings into each entry point an attacker reaches. None may panic, and every failure must be
//! one of the documented client errors:
//!
//! - the request decoder of every operation (`ops::dispatch` on an in-memory store): a 400 error, never
//!   `InternalFailure`;
//! - the NextToken opener (`TokenSealer::open`): only ever `InvalidParameterException` with the one fixed message;
//!   a token opens only in the exact scope it was sealed for and only untouched;
//! - the SigV4 parser and verifier: `MissingAuthenticationTokenException`, `IncompleteSignatureException` or
//!   `InvalidSignatureException`, HTTP 400; a random signature never verifies; error messages never echo the secret;
//! - the token-secret parser (`PatSecret::parse`): accepts only well-formed `wmpat_` secrets, rejects every
//!   one-character change of a real one.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::{Value, json};
use workmail_pat::auth::sigv4::{self, RequestToVerify, SigV4Error};
use workmail_pat::domain::{Cursor, Partition};
use workmail_pat::error::{ErrorCode, ServiceError};
use workmail_pat::ops::{self, Ctx, Operation};
use workmail_pat::pagination::{INVALID_TOKEN_MESSAGE, TokenScope, TokenSealer};
use workmail_pat::secrets::{Key32, PAT_LEN, PAT_PREFIX, PatSecret};
use workmail_pat::state::{AppState, Settings};

// ---------------------------------------------------------------------------------------------------------
// Request decoder: every operation through ops::dispatch

struct World {
    rt: tokio::runtime::Runtime,
    app: AppState,
    /// An Active organization with one user, so structured bodies can reach past "organization not found".
    org: String,
    user: String,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = workmail_pat::store::open("sqlite::memory:").expect("in-memory store");
        let app = AppState::new(
            store,
            &Key32::from_bytes([1; 32]),
            Key32::from_bytes([2; 32]),
            Settings::default(),
        );
        let (org, user) = rt.block_on(async {
            let ctx = ctx(&app);
            let out = ops::dispatch(
                Operation::CreateOrganization,
                &ctx,
                br#"{"Alias":"fuzz-equivalents"}"#,
            )
            .await
            .expect("CreateOrganization");
            let org = serde_json::from_slice::<Value>(&out).unwrap()["OrganizationId"]
                .as_str()
                .unwrap()
                .to_string();
            let body = json!({"OrganizationId": org, "Name": "alice", "DisplayName": "Alice",
                              "Password": "Correct-Horse-9"});
            let out = ops::dispatch(Operation::CreateUser, &ctx, body.to_string().as_bytes())
                .await
                .expect("CreateUser");
            let user = serde_json::from_slice::<Value>(&out).unwrap()["UserId"]
                .as_str()
                .unwrap()
                .to_string();
            (org, user)
        });
        World { rt, app, org, user }
    })
}

fn ctx(app: &AppState) -> Ctx<'_> {
    Ctx {
        app,
        partition: Partition {
            account: "123456789012".into(),
            region: "us-east-1".into(),
        },
    }
}

/// Runs one operation; panics (failing the property) on `InternalFailure`, a non-400 error or a non-object reply.
fn run(op: Operation, body: &[u8]) -> Result<(), TestCaseError> {
    let w = world();
    let ctx = ctx(&w.app);
    match w.rt.block_on(ops::dispatch(op, &ctx, body)) {
        Ok(reply) => {
            let v: Value = serde_json::from_slice(&reply)
                .map_err(|e| TestCaseError::fail(format!("{op:?}: reply is not JSON: {e}")))?;
            prop_assert!(v.is_object(), "{op:?}: reply {v} is not an object");
        }
        Err(e) => {
            prop_assert_ne!(
                e.code,
                ErrorCode::InternalFailure,
                "{:?} on {:?}: {}",
                op,
                String::from_utf8_lossy(body),
                e.message
            );
            prop_assert_eq!(e.code.status(), 400, "{:?}: {:?}", op, e.code);
        }
    }
    Ok(())
}

fn any_op() -> impl Strategy<Value = Operation> {
    (0..Operation::ALL.len()).prop_map(|i| Operation::ALL[i])
}

/// Member names of WorkMail inputs (and a few near misses), so generated objects hit real fields.
const MEMBERS: &[&str] = &[
    "OrganizationId",
    "Alias",
    "Name",
    "DisplayName",
    "Password",
    "UserId",
    "EntityId",
    "Email",
    "MaxResults",
    "NextToken",
    "ClientToken",
    "PersonalAccessTokenId",
    "AuthenticationMode",
    "IdentityCenterConfiguration",
    "PersonalAccessTokenConfiguration",
    "Status",
    "LifetimeInDays",
    "InstanceArn",
    "ApplicationArn",
    "Filters",
    "UsernamePrefix",
    "State",
    "Role",
    "FirstName",
    "DeleteDirectory",
    "ForceDelete",
    "Domains",
    "DirectoryId",
    "organizationId",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    let w = world();
    let org = w.org.clone();
    let user = w.user.clone();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-zA-Z0-9_.@-]{0,12}".prop_map(Value::String),
        Just(Value::String(org)),
        Just(Value::String(user)),
        Just(Value::String("alice".into())),
        Just(Value::String("ACTIVE".into())),
        Just(Value::String("x".repeat(5000))),
        (-3i64..200).prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(MEMBERS), inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn request_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(MEMBERS), json_value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoder_survives_arbitrary_bytes(op in any_op(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        run(op, &body)?;
    }

    #[test]
    fn decoder_survives_json_like_text(op in any_op(), body in r#"[{}\[\]":,0-9a-zA-Z\\ \-.eE]{0,120}"#) {
        run(op, body.as_bytes())?;
    }

    #[test]
    fn decoder_survives_structured_objects(op in any_op(), body in request_object()) {
        run(op, body.to_string().as_bytes())?;
    }

    #[test]
    fn decoder_answers_serialization_exception_for_non_objects(
        op in any_op(),
        body in prop_oneof![
            Just("[]".to_string()), Just("null".to_string()), Just("\"x\"".to_string()),
            any::<i64>().prop_map(|n| n.to_string()), "\\[[0-9,]{0,20}\\]",
        ],
    ) {
        let w = world();
        let ctx = ctx(&w.app);
        let e = w.rt.block_on(ops::dispatch(op, &ctx, body.as_bytes())).expect_err("non-object body accepted");
        prop_assert_eq!(e.code, ErrorCode::SerializationException);
    }
}

#[test]
fn decoder_survives_deep_nesting() {
    for op in Operation::ALL {
        for depth in [64, 127, 128, 129, 1000, 20_000] {
            let body = format!(
                "{{\"OrganizationId\":{}1{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            run(*op, body.as_bytes()).unwrap();
            let body = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            run(*op, body.as_bytes()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// NextToken opener

const NOW: i64 = 1_760_000_000_000;

fn sealer() -> TokenSealer {
    TokenSealer::new(&Key32::from_bytes([7; 32]))
}

fn scope(p: &[String; 5]) -> TokenScope<'_> {
    TokenScope {
        operation: &p[0],
        account: &p[1],
        region: &p[2],
        organization: &p[3],
        filter: &p[4],
    }
}

fn assert_refused(r: Result<Cursor, ServiceError>) -> Result<(), TestCaseError> {
    match r {
        Ok(c) => Err(TestCaseError::fail(format!(
            "token opened to {c:?}, expected refusal"
        ))),
        Err(e) => {
            prop_assert_eq!(e.code, ErrorCode::InvalidParameterException);
            prop_assert_eq!(&*e.message, INVALID_TOKEN_MESSAGE);
            Ok(())
        }
    }
}

fn scope_parts() -> impl Strategy<Value = [String; 5]> {
    [".{0,12}", ".{0,12}", ".{0,12}", ".{0,40}", ".{0,40}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn next_token_arbitrary_text_is_refused(parts in scope_parts(), token in prop_oneof![
        ".{0,200}", "[A-Za-z0-9_-]{0,200}", "[A-Za-z0-9_-]{1500,1600}",
    ]) {
        assert_refused(sealer().open(&scope(&parts), &token, NOW))?;
    }

    #[test]
    fn next_token_opens_only_in_its_scope_and_untouched(
        parts in scope_parts(),
        created_ms in any::<i64>(),
        id in "[a-zA-Z0-9-]{1,64}",
        age in 0i64..(48 * 3600 * 1000),
        which in 0usize..5,
        flip in (any::<prop::sample::Index>(), 0u8..6),
    ) {
        let s = sealer();
        let cursor = Cursor { created_ms, id };
        let token = s.seal(&scope(&parts), &cursor, NOW - age);
        let opened = s.open(&scope(&parts), &token, NOW);
        if age <= 24 * 3600 * 1000 {
            let c = opened.map_err(|e| TestCaseError::fail(format!("own token refused: {}", e.message)))?;
            prop_assert_eq!(c.created_ms, cursor.created_ms);
            prop_assert_eq!(c.id, cursor.id);
        } else {
            assert_refused(opened)?;
        }
        let mut other = parts.clone();
        other[which].push('x');
        assert_refused(s.open(&scope(&other), &token, NOW))?;
        // Another key (another deployment) never opens it.
        assert_refused(TokenSealer::new(&Key32::from_bytes([8; 32])).open(&scope(&parts), &token, NOW))?;
        // Flip one bit of one character (not the last, whose low bits may be padding).
        let mut bytes = token.clone().into_bytes();
        let i = flip.0.index(bytes.len() - 1);
        bytes[i] ^= 1 << flip.1;
        if let Ok(tampered) = String::from_utf8(bytes) {
            assert_refused(s.open(&scope(&parts), &tampered, NOW))?;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// SigV4 parser and verifier

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn check_sigv4_error(e: &SigV4Error) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            e.aws_code(),
            "MissingAuthenticationTokenException"
                | "IncompleteSignatureException"
                | "InvalidSignatureException"
        ),
        "{}",
        e.aws_code()
    );
    prop_assert_eq!(e.http_status(), 400);
    let m = e.message();
    prop_assert!(!m.contains(SECRET), "message echoes the secret: {m}");
    prop_assert!(
        m.chars().count() < 2048,
        "message too long: {} chars",
        m.len()
    );
    Ok(())
}

fn header_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"authorization".to_vec()),
        Just(b"x-amz-date".to_vec()),
        Just(b"x-amz-target".to_vec()),
        Just(b"host".to_vec()),
        Just(b"x-amz-content-sha256".to_vec()),
        Just(b"x-amz-security-token".to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ]
}

fn auth_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop_oneof![Just("AWS4-HMAC-SHA256".to_string()), ".{0,20}"],
            prop_oneof![
                "[A-Z0-9]{0,20}/[0-9]{8}/[a-z0-9-]{0,12}/workmail/aws4_request",
                ".{0,60}"
            ],
            prop_oneof![
                "(host|x-amz-date|x-amz-target)(;(host|x-amz-date|x-amz-target|x-y))*",
                ".{0,30}"
            ],
            prop_oneof!["[0-9a-fA-F]{64}", ".{0,70}"],
            prop_oneof![Just(", "), Just(","), Just(" "), Just("\t"), Just(",,")],
        )
            .prop_map(|(alg, cred, signed, sig, sep)| {
                format!("{alg} Credential={cred}{sep}SignedHeaders={signed}{sep}Signature={sig}")
                    .into_bytes()
            }),
    ]
}

fn headers_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            header_name(),
            prop_oneof![
                auth_value(),
                "[0-9]{8}T[0-9]{6}Z".prop_map(String::into_bytes),
                Just(b"20251009T085320Z".to_vec()),
                Just(b"WorkMailService.ListOrganizations".to_vec()),
            ],
        ),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sigv4_never_panics_and_never_verifies_a_forgery(
        raw in headers_strategy(),
        method in prop_oneof![Just("POST".to_string()), ".{0,8}"],
        path in prop_oneof![Just("/".to_string()), ".{0,30}"],
        query in proptest::option::of(".{0,30}"),
        body in prop::collection::vec(any::<u8>(), 0..64),
        skew in 0u64..100_000,
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in &raw {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(n, v);
            }
        }
        let auth = match sigv4::parse_authorization(&headers) {
            Ok(a) => a,
            Err(e) => return check_sigv4_error(&e),
        };
        prop_assert_eq!(auth.signature.len(), 64);
        prop_assert_eq!(headers.get_all("authorization").iter().count(), 1);
        let req = RequestToVerify { method: &method, path: &path, query: query.as_deref(), headers: &headers, body: &body };
        let now = UNIX_EPOCH + Duration::from_secs(1_760_000_000);
        let e = sigv4::verify(&req, &auth, SECRET, "workmail", now, Duration::from_secs(skew))
            .expect_err("a random signature verified");
        check_sigv4_error(&e)?;
    }

    #[test]
    fn sigv4_two_authorization_headers_are_refused(a in auth_value(), b in auth_value()) {
        let mut headers = HeaderMap::new();
        for v in [a, b] {
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                headers.append("authorization", v);
            }
        }
        if headers.get_all("authorization").iter().count() == 2 {
            let e = sigv4::parse_authorization(&headers).expect_err("two Authorization headers accepted");
            prop_assert_eq!(e.aws_code(), "IncompleteSignatureException");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Token-secret parser

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pat_secret_accepts_only_well_formed(text in prop_oneof![
        ".{0,80}",
        "wmpat_[A-Za-z0-9]{0,60}",
        "wmpat_.{30,50}",
        prop::collection::vec(any::<char>(), PAT_LEN - PAT_PREFIX.len()..=PAT_LEN - PAT_PREFIX.len())
            .prop_map(|c| format!("{PAT_PREFIX}{}", c.into_iter().collect::<String>())),
    ]) {
        if let Some(s) = PatSecret::parse(&text) {
            prop_assert_eq!(s.expose(), text.as_str());
            prop_assert_eq!(text.len(), PAT_LEN);
            prop_assert!(text[PAT_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn pat_secret_rejects_every_single_character_change(
        pos in PAT_PREFIX.len()..PAT_LEN,
        replacement in prop_oneof![prop::char::range('0', '9'), prop::char::range('a', 'z'), prop::char::range('A', 'Z'), any::<char>()],
    ) {
        let good = PatSecret::generate();
        prop_assert!(PatSecret::parse(good.expose()).is_some());
        let mut chars: Vec<char> = good.expose().chars().collect();
        prop_assume!(chars[pos] != replacement);
        chars[pos] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(PatSecret::parse(&changed).is_none(), "{changed} accepted");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Regression inputs (crashes and near misses found by fuzzing are pinned here).

#[test]
fn regression_next_token_boundaries() {
    let s = sealer();
    let parts: [String; 5] = Default::default();
    for token in [
        "",
        "A",
        "AQ",
        &"A".repeat(1024),
        &"A".repeat(1025),
        "ÿ",
        "\u{0}",
    ] {
        assert_refused(s.open(&scope(&parts), token, NOW)).unwrap();
    }
    // An id longer than the 64 bytes a token may carry is sealed but refused when opened.
    let long = Cursor {
        created_ms: 1,
        id: "x".repeat(65),
    };
    let token = s.seal(&scope(&parts), &long, NOW);
    assert_refused(s.open(&scope(&parts), &token, NOW)).unwrap();
    // Issued more than a minute in the future.
    let future = s.seal(
        &scope(&parts),
        &Cursor {
            created_ms: 1,
            id: "a".into(),
        },
        NOW + 61_000,
    );
    assert_refused(s.open(&scope(&parts), &future, NOW)).unwrap();
}

#[test]
fn regression_pat_secret_multibyte_at_prefix_boundary() {
    // Same byte length as a real secret, but a multi-byte character straddles where the checksum starts.
    let mut t = String::from(PAT_PREFIX);
    while t.len() < PAT_LEN - 7 {
        t.push('a');
    }
    t.push('é');
    while t.len() < PAT_LEN {
        t.push('b');
    }
    assert_eq!(t.len(), PAT_LEN);
    assert!(PatSecret::parse(&t).is_none());
    assert!(PatSecret::parse("wmpat").is_none());
    assert!(PatSecret::parse("").is_none());
}
