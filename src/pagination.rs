//! Keyset pagination and the sealed, opaque `NextToken`.
//!
//! A NextToken carries the sort key `(created_ms, id)` of the last row of the previous page and the time it was
//! issued, encrypted and authenticated with XChaCha20-Poly1305 under the server's NextToken key. The operation,
//! account, region, organization and resolved filter are bound as associated data and never stored in the token:
//! a token replayed against any other request fails the tag check. Every failure answers the same
//! `InvalidParameterException`, so a client learns nothing from the difference (spec D4, security.md §2.3).

use base64::Engine;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::clock::Millis;
use crate::domain::{Cursor, Organization, PersonalAccessToken, User};
use crate::error::ServiceError;
use crate::mail::{EmailAddress, MailDomain};
use crate::secrets::Key32;

/// `MaxResults` range and default (spec D4).
pub const MAX_PAGE_SIZE: i64 = 100;
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// A NextToken is accepted for 24 hours after it was issued (the AWS convention).
pub const TOKEN_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;
/// The one message for every bad NextToken.
pub const INVALID_TOKEN_MESSAGE: &str = "The NextToken is invalid or has expired.";

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What the associated data starts with.
const AD_PREFIX: &[u8] = b"wm/next/v1";
/// The longest NextToken opened (API limit; a real one is about 110 characters).
const MAX_TOKEN_LEN: usize = 1024;
/// The longest id we ever page by (a GUID is 36).
const MAX_ID_LEN: usize = 64;

/// What a NextToken is bound to. Every member must be recomputed from the request, never read from the token.
#[derive(Debug, Clone, Copy)]
pub struct TokenScope<'a> {
    pub operation: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub organization: &'a str,
    /// The canonical, resolved filter (e.g. the canonical user id for ListPersonalAccessTokens).
    pub filter: &'a str,
}

impl TokenScope<'_> {
    /// Calls `f` with the [`associated_data`](Self::associated_data), written on the stack when it fits (it
    /// always does for real ids; longer parts take the allocating path).
    fn with_associated_data<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        const STACK: usize = 256;
        let parts = [
            self.operation,
            self.account,
            self.region,
            self.organization,
            self.filter,
        ];
        let len = AD_PREFIX.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
        if len > STACK {
            return f(&self.associated_data());
        }
        let mut ad = [0u8; STACK];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            ad[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(AD_PREFIX);
        for part in parts {
            put(&(part.len() as u32).to_be_bytes());
            put(part.as_bytes());
        }
        f(&ad[..len])
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(96);
        ad.extend_from_slice(AD_PREFIX);
        for part in [
            self.operation,
            self.account,
            self.region,
            self.organization,
            self.filter,
        ] {
            // Length prefixes make the encoding injective: ("ab","c") and ("a","bc") differ.
            ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

/// Seals and opens NextTokens with one key (shared by every replica of the service).
#[derive(Clone)]
pub struct TokenSealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(<redacted>)")
    }
}

impl TokenSealer {
    pub fn new(key: &Key32) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.expose().into()),
        }
    }

    /// Makes the NextToken that continues after `last`.
    pub fn seal(&self, scope: &TokenScope<'_>, last: &Cursor, now_ms: Millis) -> String {
        let mut out = Vec::new();
        self.seal_into(scope, last, now_ms, &mut out);
        // base64url is ASCII.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the NextToken that continues after `last` to `out` (a response being written: issue 14).
    ///
    /// The token is `VERSION || nonce || ciphertext || tag`, encrypted in place in one buffer (on the stack unless
    /// the position's id is long) and encoded straight into `out`.
    pub fn seal_into(
        &self,
        scope: &TokenScope<'_>,
        last: &Cursor,
        now_ms: Millis,
        out: &mut Vec<u8>,
    ) {
        // A random 192-bit nonce from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS): no system call
        // per token, and no realistic chance of a repeat.
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let start = 1 + NONCE_LEN;
        let end = start + 16 + last.id.len();
        let len = end + TAG_LEN;
        let mut stack = [0u8; 256];
        let mut heap;
        let raw: &mut [u8] = match stack.get_mut(..len) {
            Some(raw) => raw,
            None => {
                heap = vec![0u8; len];
                &mut heap
            }
        };
        raw[0] = VERSION;
        raw[1..start].copy_from_slice(&nonce);
        raw[start..start + 8].copy_from_slice(&now_ms.to_be_bytes());
        raw[start + 8..start + 16].copy_from_slice(&last.created_ms.to_be_bytes());
        raw[start + 16..end].copy_from_slice(last.id.as_bytes());
        let tag = scope
            .with_associated_data(|ad| {
                self.cipher.encrypt_in_place_detached(
                    XNonce::from_slice(&nonce),
                    ad,
                    &mut raw[start..end],
                )
            })
            .expect("XChaCha20-Poly1305 encryption of a short message cannot fail");
        raw[end..].copy_from_slice(&tag);
        let engine = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let at = out.len();
        out.resize(at + base64::encoded_len(len, false).unwrap_or(0), 0);
        let written = engine.encode_slice(&*raw, &mut out[at..]).unwrap_or(0);
        out.truncate(at + written);
    }

    /// Opens a NextToken presented with a request of `scope`; any failure is the one InvalidParameterException.
    pub fn open(
        &self,
        scope: &TokenScope<'_>,
        token: &str,
        now_ms: Millis,
    ) -> Result<Cursor, ServiceError> {
        self.try_open(scope, token, now_ms)
            .ok_or_else(|| ServiceError::invalid_parameter(INVALID_TOKEN_MESSAGE))
    }

    fn try_open(&self, scope: &TokenScope<'_>, token: &str, now_ms: Millis) -> Option<Cursor> {
        // Bound the work before decoding: a real token is far shorter than this.
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        // Decoded and decrypted in place on the stack, like `seal_into` (issue 14: every list page after the first
        // opens one).
        let mut buffer = [0u8; MAX_TOKEN_LEN / 4 * 3];
        let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(token, &mut buffer)
            .ok()?;
        let raw = &mut buffer[..len];
        if raw.len() < 1 + NONCE_LEN + TAG_LEN + 16 || raw[0] != VERSION {
            return None;
        }
        let (head, rest) = raw.split_at_mut(1 + NONCE_LEN);
        let (plain, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        scope
            .with_associated_data(|ad| {
                self.cipher.decrypt_in_place_detached(
                    XNonce::from_slice(&head[1..]),
                    ad,
                    plain,
                    Tag::from_slice(tag),
                )
            })
            .ok()?;
        if plain.len() < 16 || plain.len() > 16 + MAX_ID_LEN {
            return None;
        }
        let issued = i64::from_be_bytes(plain[0..8].try_into().ok()?);
        let created_ms = i64::from_be_bytes(plain[8..16].try_into().ok()?);
        let id = std::str::from_utf8(&plain[16..]).ok()?.to_owned();
        // Expired, or issued in the (server's) future: both are refused.
        if now_ms.saturating_sub(issued) > TOKEN_LIFETIME_MS || issued > now_ms + 60_000 {
            return None;
        }
        Some(Cursor { created_ms, id })
    }
}

/// A listed row's position in its list: the sort key `(created_ms, id)` every list pages by.
pub trait Keyed {
    fn cursor(&self) -> Cursor;
}

macro_rules! keyed {
    ($($ty:ty),+) => {$(
        impl Keyed for $ty {
            fn cursor(&self) -> Cursor {
                Cursor {
                    created_ms: self.created_ms,
                    id: self.id.clone(),
                }
            }
        }
    )+};
}
keyed!(Organization, User, PersonalAccessToken);

/// Mail domains page by (registration time, name).
impl Keyed for MailDomain {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_ms: self.created_ms,
            id: self.domain.clone(),
        }
    }
}

/// Aliases page by (time added, normalised address).
impl Keyed for EmailAddress {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_ms: self.created_ms,
            id: self.key(),
        }
    }
}

/// One page of a list operation, the only place NextTokens are opened and sealed: opens the caller's NextToken
/// against `scope`, fetches `limit + 1` rows after its cursor, and, when the extra row exists, seals the cursor of
/// the page's last item. The extra row only says that another page exists, so the last page never carries a
/// NextToken and no page with a NextToken is empty.
pub async fn page<T: Keyed, Fetch, Rows>(
    sealer: &TokenSealer,
    scope: &TokenScope<'_>,
    now_ms: Millis,
    next_token: Option<&str>,
    limit: usize,
    fetch: Fetch,
) -> Result<(Vec<T>, Option<String>), ServiceError>
where
    Fetch: FnOnce(Option<Cursor>, usize) -> Rows,
    Rows: Future<Output = Result<Vec<T>, ServiceError>>,
{
    let after = open_cursor(sealer, scope, now_ms, next_token)?;
    let mut rows = fetch(after, limit + 1).await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let last = rows.last().map(Keyed::cursor);
    let next = self::next_token(sealer, scope, now_ms, has_more, last.as_ref());
    Ok((rows, next))
}

/// The position a request's NextToken continues after (none for a first page); any bad token is the one
/// `InvalidParameterException`. [`page`] uses it; so does a list whose store writes the page itself.
pub fn open_cursor(
    sealer: &TokenSealer,
    scope: &TokenScope<'_>,
    now_ms: Millis,
    next_token: Option<&str>,
) -> Result<Option<Cursor>, ServiceError> {
    next_token
        .map(|t| sealer.open(scope, t, now_ms))
        .transpose()
}

/// The NextToken of a page: only when more rows exist after its last one, so the last page never carries one
/// and no page with one is empty.
pub fn next_token(
    sealer: &TokenSealer,
    scope: &TokenScope<'_>,
    now_ms: Millis,
    has_more: bool,
    last: Option<&Cursor>,
) -> Option<String> {
    match last {
        Some(last) if has_more => Some(sealer.seal(scope, last, now_ms)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, Payload};
    use proptest::prelude::*;

    fn scope<'a>(org: &'a str, filter: &'a str) -> TokenScope<'a> {
        TokenScope {
            operation: "ListPersonalAccessTokens",
            account: "000000000000",
            region: "us-east-1",
            organization: org,
            filter,
        }
    }

    fn cursor() -> Cursor {
        Cursor {
            created_ms: 1_700_000_000_123,
            id: "0b9c1a7e-1111-4222-8333-444455556666".into(),
        }
    }

    #[test]
    fn round_trip() {
        let sealer = TokenSealer::new(&Key32::random());
        let t = sealer.seal(&scope("m-1", "u"), &cursor(), 1000);
        assert!(t.len() < 200);
        assert_eq!(sealer.open(&scope("m-1", "u"), &t, 2000).unwrap(), cursor());
    }

    #[test]
    fn associated_data_on_the_stack_equals_the_allocated_form() {
        let long = "x".repeat(300);
        for s in [scope("m-1", "u"), scope(&long, "u"), scope("m-1", &long)] {
            s.with_associated_data(|ad| assert_eq!(ad, s.associated_data().as_slice()));
        }
        // A token sealed in the long-scope path opens too.
        let sealer = TokenSealer::new(&Key32::random());
        let t = sealer.seal(&scope(&long, "u"), &cursor(), 1000);
        assert_eq!(sealer.open(&scope(&long, "u"), &t, 2000).unwrap(), cursor());
    }

    #[test]
    fn tokens_sealed_by_the_buffered_form_still_open() {
        // What `seal` wrote before it encrypted in place: VERSION || nonce || Aead::encrypt(plain).
        let key = Key32::random();
        let sealer = TokenSealer::new(&key);
        let s = scope("m-1", "u");
        let c = cursor();
        let mut plain = Vec::new();
        plain.extend_from_slice(&1000i64.to_be_bytes());
        plain.extend_from_slice(&c.created_ms.to_be_bytes());
        plain.extend_from_slice(c.id.as_bytes());
        let nonce = [7u8; NONCE_LEN];
        let sealed = XChaCha20Poly1305::new(key.expose().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &s.associated_data(),
                },
            )
            .unwrap();
        let mut raw = vec![VERSION];
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(sealer.open(&s, &token, 2000).unwrap(), c);
        // And the new form has the same shape and length.
        assert_eq!(sealer.seal(&s, &c, 1000).len(), token.len());
    }

    #[test]
    fn foreign_scope_key_or_expiry_is_rejected_with_one_message() {
        let sealer = TokenSealer::new(&Key32::random());
        let t = sealer.seal(&scope("m-1", "u"), &cursor(), 1000);
        let other_key = TokenSealer::new(&Key32::random());
        let mut other_op = scope("m-1", "u");
        other_op.operation = "ListUsers";
        let mut other_account = scope("m-1", "u");
        other_account.account = "111111111111";
        let mut other_region = scope("m-1", "u");
        other_region.region = "eu-west-1";
        let failures = [
            sealer.open(&scope("m-2", "u"), &t, 1000),
            sealer.open(&scope("m-1", "v"), &t, 1000),
            sealer.open(&scope("m-1", ""), &t, 1000),
            sealer.open(&other_op, &t, 1000),
            sealer.open(&other_account, &t, 1000),
            sealer.open(&other_region, &t, 1000),
            other_key.open(&scope("m-1", "u"), &t, 1000),
            sealer.open(&scope("m-1", "u"), &t, 1000 + TOKEN_LIFETIME_MS + 1),
            sealer.open(&scope("m-1", "u"), "", 1000),
            sealer.open(&scope("m-1", "u"), "not a token", 1000),
        ];
        for f in failures {
            let e = f.unwrap_err();
            assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
            assert_eq!(e.code, crate::error::ErrorCode::InvalidParameterException);
        }
    }

    #[test]
    fn token_does_not_reveal_the_position() {
        let sealer = TokenSealer::new(&Key32::random());
        let t = sealer.seal(&scope("m-1", "u"), &cursor(), 1000);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .unwrap();
        let needle = cursor().id.into_bytes();
        assert!(!raw.windows(needle.len()).any(|w| w == needle.as_slice()));
    }

    /// Walks `rows` (sorted by id) through `page` as a list operation does.
    /// A row of a test list: its number is its sort key.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct N(i64);

    impl Keyed for N {
        fn cursor(&self) -> Cursor {
            Cursor {
                created_ms: self.0,
                id: self.0.to_string(),
            }
        }
    }

    async fn walk(sealer: &TokenSealer, rows: &[i64], limit: usize) -> Vec<Vec<i64>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (items, next) = page(
                sealer,
                &scope("m-1", ""),
                1000,
                token.as_deref(),
                limit,
                |after: Option<Cursor>, n| async move {
                    let from = after.map_or(i64::MIN, |c| c.created_ms);
                    Ok(rows
                        .iter()
                        .copied()
                        .filter(|r| *r > from)
                        .take(n)
                        .map(N)
                        .collect())
                },
            )
            .await
            .unwrap();
            pages.push(items.into_iter().map(|n: N| n.0).collect());
            match next {
                Some(t) => token = Some(t),
                None => return pages,
            }
        }
    }

    #[tokio::test]
    async fn pages_split_the_extra_row_off_and_never_end_empty() {
        let sealer = TokenSealer::new(&Key32::random());
        assert_eq!(
            walk(&sealer, &[1, 2, 3, 4, 5], 2).await,
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        // An exact multiple of the page size: the last full page carries no NextToken.
        assert_eq!(
            walk(&sealer, &[1, 2, 3, 4], 2).await,
            vec![vec![1, 2], vec![3, 4]]
        );
        assert_eq!(walk(&sealer, &[], 2).await, vec![Vec::<i64>::new()]);
    }

    #[tokio::test]
    async fn a_token_of_another_scope_is_refused_before_fetching() {
        let sealer = TokenSealer::new(&Key32::random());
        let foreign = sealer.seal(&scope("m-2", ""), &cursor(), 1000);
        let fetched = std::cell::Cell::new(false);
        let e = page(
            &sealer,
            &scope("m-1", ""),
            1000,
            Some(&foreign),
            10,
            |_, _| {
                fetched.set(true);
                async { Ok(Vec::<N>::new()) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
        assert!(
            !fetched.get(),
            "rows were read for a token of another scope"
        );
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_rejected(bit in 0usize..2000) {
            let sealer = TokenSealer::new(&Key32::from_bytes([7; 32]));
            let t = sealer.seal(&scope("m-1", "u"), &cursor(), 1000);
            let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t).unwrap();
            let bit = bit % (raw.len() * 8);
            raw[bit / 8] ^= 1 << (bit % 8);
            let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            prop_assert!(sealer.open(&scope("m-1", "u"), &tampered, 1000).is_err());
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,300}") {
            let sealer = TokenSealer::new(&Key32::from_bytes([7; 32]));
            prop_assert!(sealer.open(&scope("m-1", "u"), &s, 1000).is_err());
        }
    }
}
