//! Browser sessions for the web page: the session cookie, the per-session CSRF token and the security headers
//! every page carries. API clients keep using `Authorization: Bearer`; only cookie-authenticated requests need
//! the CSRF token, because only cookies are attached by the browser on its own (ambient authority).

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

use crate::secrets::{Key32, hmac_sha256};

/// Cookie name over plain HTTP (local use).
pub const COOKIE_PLAIN: &str = "wmpat_session";
/// Cookie name when served over HTTPS: the `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so a sibling subdomain cannot plant or shadow it.
pub const COOKIE_SECURE: &str = "__Host-wmpat_session";

/// Form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Longest session token we bother to look up (ours are 43 characters).
const MAX_SESSION_TOKEN_LEN: usize = 256;

/// The session token from the request's cookie, if any.
///
/// Over HTTPS only `__Host-wmpat_session` counts: a sibling subdomain (`Domain=` cookie) or a network attacker
/// (a plain-HTTP response can set a non-`Secure` cookie the browser then also sends over HTTPS) can plant an
/// unprefixed `wmpat_session`, never a `__Host-` one. Over plain HTTP only `wmpat_session` counts, the name this
/// server sets there. When the counted name arrives more than once, the browser holds a planted cookie beside ours
/// and we cannot tell which is which (the order of the `Cookie` header is not a trust signal), so none is used.
pub fn cookie_session(headers: &HeaderMap, https: bool) -> Option<String> {
    let wanted = if https { COOKIE_SECURE } else { COOKIE_PLAIN }.as_bytes();
    let mut found: Option<&[u8]> = None;
    let mut count = 0usize;
    // Bytes, not text: another application's non-ASCII cookie (cookies on a host are shared by all its ports) must
    // neither hide ours nor be mistaken for it.
    for value in headers.get_all(header::COOKIE) {
        for pair in value.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].trim_ascii() == wanted {
                count += 1;
                found = Some(pair[eq + 1..].trim_ascii());
            }
        }
    }
    let value = found?;
    if count != 1
        || value.is_empty()
        || value.len() > MAX_SESSION_TOKEN_LEN
        || !value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    // Only ASCII letters, digits, `-` and `_` remain, so this is always valid UTF-8.
    String::from_utf8(value.to_vec()).ok()
}

/// Whether the browser reached us over HTTPS: a configured flag, or a TLS proxy's `X-Forwarded-Proto: https`.
/// Trusting the header can only add `Secure`, never remove it, so a forged header gains an attacker nothing.
pub fn is_https(headers: &HeaderMap, configured: bool) -> bool {
    configured
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session: `HttpOnly` (no script can read it), `SameSite=Strict` (never sent on
/// cross-site requests), `Secure` over HTTPS, and a lifetime equal to the server-side session's.
pub fn set_cookie(token: &str, max_age_secs: i64, https: bool) -> Option<HeaderValue> {
    let name = if https { COOKIE_SECURE } else { COOKIE_PLAIN };
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age_secs.max(0)
    ))
    .ok()
}

/// `Set-Cookie` values that delete the session cookie (both names, whichever was set).
pub fn clear_cookies(https: bool) -> [HeaderValue; 2] {
    let secure = if https { "; Secure" } else { "" };
    [
        HeaderValue::from_str(&format!(
            "{COOKIE_PLAIN}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("")),
        // `__Host-` cookies can only be set (or cleared) with `Secure`.
        HeaderValue::from_static(
            "__Host-wmpat_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure",
        ),
    ]
}

/// The CSRF token of a session: HMAC(pepper, "csrf\0" || session token). Derived rather than stored, so no schema
/// change is needed, it dies with the session, and it cannot be computed without the server's pepper.
pub fn csrf_token(pepper: &Key32, session_token: &str) -> String {
    let mut data = Vec::with_capacity(5 + session_token.len());
    data.extend_from_slice(b"csrf\0");
    data.extend_from_slice(session_token.as_bytes());
    hex::encode(hmac_sha256(pepper.expose(), &data))
}

/// Whether `presented` is the session's CSRF token (constant-time comparison).
pub fn csrf_ok(pepper: &Key32, session_token: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let expected = csrf_token(pepper, session_token);
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// A request a browser says came from another site. `SameSite=Strict` already keeps our cookie off such requests;
/// this also stops cross-site sign-in forms (login CSRF), which carry no cookie at all.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

/// The strict policy of every page: only our own scripts, styles and forms, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers of every HTML page. Pages carry CSRF tokens and sometimes a new secret, so none may be cached.
pub fn page_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookie_is_found_among_others_and_junk_is_ignored() {
        let h = headers(&[("cookie", "a=1; wmpat_session=abc-DEF_9; b=2")]);
        assert_eq!(cookie_session(&h, false).as_deref(), Some("abc-DEF_9"));
        let h = headers(&[("cookie", "__Host-wmpat_session=xyz")]);
        assert_eq!(cookie_session(&h, true).as_deref(), Some("xyz"));
        for junk in [
            "wmpat_session=",
            "wmpat_session=a b",
            "wmpat_session=\"x\"",
            "other=abc",
            "wmpat_sessionx=abc",
        ] {
            assert_eq!(
                cookie_session(&headers(&[("cookie", junk)]), false),
                None,
                "{junk}"
            );
        }
        let long = format!("wmpat_session={}", "a".repeat(300));
        assert_eq!(cookie_session(&headers(&[("cookie", &long)]), false), None);
    }

    #[test]
    fn each_scheme_takes_only_its_own_name_and_duplicates_are_refused() {
        // Over HTTPS a plantable unprefixed cookie is ignored, whether alone or beside ours.
        let h = headers(&[("cookie", "wmpat_session=planted")]);
        assert_eq!(cookie_session(&h, true), None);
        let h = headers(&[("cookie", "wmpat_session=planted; __Host-wmpat_session=ours")]);
        assert_eq!(cookie_session(&h, true).as_deref(), Some("ours"));
        // Over plain HTTP the browser never sends a `__Host-` cookie; one that arrives is not ours.
        let h = headers(&[("cookie", "__Host-wmpat_session=xyz")]);
        assert_eq!(cookie_session(&h, false), None);
        // Two of the counted name, in one header or in two, even if equal: none is used.
        for (https, pairs) in [
            (true, vec!["__Host-wmpat_session=a; __Host-wmpat_session=b"]),
            (
                true,
                vec!["__Host-wmpat_session=a", "__Host-wmpat_session=a"],
            ),
            (false, vec!["wmpat_session=a; x=1; wmpat_session=b"]),
            (false, vec!["wmpat_session=a; wmpat_session=bad value"]),
        ] {
            let mut h = HeaderMap::new();
            for p in &pairs {
                h.append(header::COOKIE, HeaderValue::from_str(p).unwrap());
            }
            assert_eq!(cookie_session(&h, https), None, "{pairs:?}");
        }
    }

    #[test]
    fn cookie_flags() {
        let plain = set_cookie("tok", 60, false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("wmpat_session=tok;"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let tls = set_cookie("tok", 60, true).unwrap();
        let tls = tls.to_str().unwrap();
        assert!(tls.starts_with("__Host-wmpat_session=tok;") && tls.ends_with("; Secure"));
    }

    #[test]
    fn https_detection() {
        assert!(is_https(&HeaderMap::new(), true));
        assert!(!is_https(&HeaderMap::new(), false));
        assert!(is_https(
            &headers(&[("x-forwarded-proto", "HTTPS, http")]),
            false
        ));
        assert!(!is_https(&headers(&[("x-forwarded-proto", "http")]), false));
    }

    #[test]
    fn csrf_tokens_are_per_session_and_checked_exactly() {
        let pepper = Key32::from_bytes([7; 32]);
        let t = csrf_token(&pepper, "session-a");
        assert_eq!(t.len(), 64);
        assert_ne!(t, csrf_token(&pepper, "session-b"));
        assert_ne!(t, csrf_token(&Key32::from_bytes([8; 32]), "session-a"));
        assert!(csrf_ok(&pepper, "session-a", Some(&t)));
        assert!(!csrf_ok(&pepper, "session-b", Some(&t)));
        assert!(!csrf_ok(&pepper, "session-a", None));
        assert!(!csrf_ok(&pepper, "session-a", Some("")));
        assert!(!csrf_ok(&pepper, "session-a", Some(&t[..63])));
    }
}
