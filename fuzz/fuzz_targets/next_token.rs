//! `pagination::TokenSealer::open` on arbitrary NextTokens, and on real tokens presented with another scope or
//! after tampering: never panics; every failure is the one `InvalidParameterException`; only an untouched token in
//! its own scope opens, to exactly the cursor sealed into it.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use workmail_pat::domain::Cursor;
use workmail_pat::error::ErrorCode;
use workmail_pat::pagination::{INVALID_TOKEN_MESSAGE, TokenScope, TokenSealer};
use workmail_pat::secrets::Key32;

const NOW: i64 = 1_760_000_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    token: String,
    scope: [String; 5],
    cursor_ms: i64,
    cursor_id: String,
    age_ms: u32,
    flip: Option<(u16, u8)>,
}

fn sealer() -> TokenSealer {
    TokenSealer::new(&Key32::from_bytes([7u8; 32]))
}

fn scope(parts: &[String; 5]) -> TokenScope<'_> {
    TokenScope {
        operation: &parts[0],
        account: &parts[1],
        region: &parts[2],
        organization: &parts[3],
        filter: &parts[4],
    }
}

fn refused(r: Result<Cursor, workmail_pat::error::ServiceError>) {
    let e = r.expect_err("must be refused");
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
}

fuzz_target!(|input: Input| {
    let sealer = sealer();
    let own = scope(&input.scope);
    // 1. Arbitrary text.
    if let Err(e) = sealer.open(&own, &input.token, NOW) {
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
    }
    // 2. A real token: opens in its own scope (ids up to 64 bytes), never in another, never once tampered with.
    let cursor = Cursor {
        created_ms: input.cursor_ms,
        id: input.cursor_id.clone(),
    };
    let issued = NOW - i64::from(input.age_ms % (48 * 3600 * 1000));
    let token = sealer.seal(&own, &cursor, issued);
    let opened = sealer.open(&own, &token, NOW);
    let fresh = NOW - issued <= 24 * 3600 * 1000;
    if fresh && !cursor.id.is_empty() && cursor.id.len() <= 64 {
        let c = opened.expect("own token in own scope");
        assert_eq!(c.created_ms, cursor.created_ms);
        assert_eq!(c.id, cursor.id);
    } else if !fresh {
        refused(opened);
    }
    for i in 0..5 {
        let mut other = input.scope.clone();
        other[i].push('x');
        refused(sealer.open(&scope(&other), &token, NOW));
    }
    if let Some((pos, bit)) = input.flip {
        let mut bytes = token.clone().into_bytes();
        let i = usize::from(pos) % bytes.len();
        bytes[i] ^= 1 << (bit % 7);
        if let Ok(tampered) = String::from_utf8(bytes) {
            // Flipping a low bit of the last base64 character can leave the decoded bytes unchanged.
            if tampered != token && i + 1 != token.len() {
                refused(sealer.open(&own, &tampered, NOW));
            }
        }
    }
});
