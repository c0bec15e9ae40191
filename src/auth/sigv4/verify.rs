//! Checking a request against its parsed `Authorization` header, in the order AWS reports problems.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Date, Month, Time, UtcDateTime};
use zeroize::Zeroizing;

use super::cache::{KeyRef, SIGNING_KEY_CACHE, SigningSecret};
use super::canonical::{canonical_request_hash, signature_of, signing_key};
use super::{
    Authorization, CONTENT_SHA256_NAME, REQUIRED_SIGNED_HEADERS, SECURITY_TOKEN,
    SECURITY_TOKEN_NAME, SIGNATURE_MISMATCH_MESSAGE, SigV4Error, X_AMZ_DATE_NAME, echo, incomplete,
    invalid,
};

/// Everything needed to verify one request.
#[derive(Clone, Copy)]
pub struct RequestToVerify<'a> {
    pub method: &'a str,
    /// Raw path as it came on the wire (still percent-encoded), e.g. "/".
    pub path: &'a str,
    /// Raw query string without the '?', if any.
    pub query: Option<&'a str>,
    /// All request headers. For HTTP/2 the caller must add `host` from `:authority`.
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Verifies the signature of `req` against `secret_access_key`.
///
/// `expected_service` is "workmail"; `now` is wall-clock time; `max_skew` is usually
/// [`DEFAULT_MAX_SKEW`](super::DEFAULT_MAX_SKEW). Checks, in order (first failure wins):
///
/// 1. scope service == `expected_service`, else `InvalidSignatureException`
///    "Credential should be scoped to correct service: 'workmail'. ";
/// 2. `SignedHeaders` contains `host`, `x-amz-date`, `x-amz-target`, and `x-amz-security-token`
///    when that header is present, else `InvalidSignatureException`
///    "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization." (DynamoDB answers an
///    unsigned host with exactly this type and wording: aws/aws-sdk-php#2469);
/// 3. every signed header exists, else `IncompleteSignatureException`
///    "'x' is named as a SignedHeader, but it does not exist in the HTTP request.";
/// 4. exactly one `X-Amz-Date` in `YYYYMMDDTHHMMSSZ`, else `IncompleteSignatureException`;
/// 5. its date equals the scope date, else `InvalidSignatureException`;
/// 6. |now - X-Amz-Date| <= `max_skew`, else `InvalidSignatureException` "Signature expired: …" /
///    "Signature not yet current: …";
/// 7. `X-Amz-Content-SHA256`, if sent, equals the body hash (UNSIGNED-PAYLOAD and STREAMING-* are
///    refused), else `InvalidSignatureException`;
/// 8. the recomputed signature matches, else `InvalidSignatureException`
///    [`SIGNATURE_MISMATCH_MESSAGE`].
///
/// Never panics.
pub fn verify(
    req: &RequestToVerify<'_>,
    auth: &Authorization<'_>,
    secret_access_key: &str,
    expected_service: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    verify_secret(
        req,
        auth,
        &SigningSecret::new(secret_access_key),
        expected_service,
        now,
        max_skew,
    )
}

/// [`verify`] with the secret loaded once ([`SigningSecret`]: its cache fingerprint is not recomputed per request).
pub fn verify_secret(
    req: &RequestToVerify<'_>,
    auth: &Authorization<'_>,
    secret: &SigningSecret,
    expected_service: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    check(
        req,
        auth,
        secret,
        expected_service,
        now,
        max_skew,
        REQUIRED_SIGNED_HEADERS,
    )
}

/// [`verify`] with a custom list of headers that must be signed. The test vectors sign only
/// `host;x-amz-date`, so they need this; production code uses [`verify`].
#[cfg(test)]
pub(super) fn verify_with_required(
    req: &RequestToVerify<'_>,
    auth: &Authorization<'_>,
    secret_access_key: &str,
    expected_service: &str,
    now: SystemTime,
    max_skew: Duration,
    required_signed: &[&str],
) -> Result<(), SigV4Error> {
    check(
        req,
        auth,
        &SigningSecret::new(secret_access_key),
        expected_service,
        now,
        max_skew,
        required_signed,
    )
}

fn check(
    req: &RequestToVerify<'_>,
    auth: &Authorization<'_>,
    secret: &SigningSecret,
    expected_service: &str,
    now: SystemTime,
    max_skew: Duration,
    required_signed: &[&str],
) -> Result<(), SigV4Error> {
    // 1. Service in scope.
    if auth.service != expected_service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{expected_service}'. "
        )));
    }

    // 2. Headers that must be covered by the signature.
    let is_signed = |name: &str| auth.signed_headers.iter().any(|h| h.as_ref() == name);
    let token_present = req.headers.contains_key(&SECURITY_TOKEN_NAME);
    let extra = if token_present {
        Some(SECURITY_TOKEN)
    } else {
        None
    };
    for name in required_signed.iter().copied().chain(extra) {
        if !is_signed(name) {
            return Err(invalid(format!(
                "{} must be a 'SignedHeader' in the AWS Authorization.",
                display_header_name(name)
            )));
        }
    }

    // 3. Every signed header must exist, or the client signed something we cannot see.
    for name in &auth.signed_headers {
        if req.headers.get_all(name.as_ref()).iter().next().is_none() {
            return Err(incomplete(format!(
                "'{}' is named as a SignedHeader, but it does not exist in the HTTP request.",
                echo(name.as_bytes())
            )));
        }
    }

    // 4. X-Amz-Date: exactly one, basic ISO 8601.
    let mut dates = req.headers.get_all(&X_AMZ_DATE_NAME).iter();
    let Some(date_value) = dates.next() else {
        return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    if dates.next().is_some() {
        return Err(incomplete(
            "Only one 'X-Amz-Date' header is allowed, but the request has more than one.",
        ));
    }
    let date_bytes = date_value.as_bytes();
    let Some(request_secs) = parse_amz_date(date_bytes) else {
        return Err(incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            echo(date_bytes)
        )));
    };
    // parse_amz_date accepted it, so it is 16 ASCII bytes.
    let amz_date = std::str::from_utf8(date_bytes).unwrap_or_default();

    // 5. Scope date must be the day of X-Amz-Date.
    if amz_date.get(..8) != Some(auth.date) {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            echo(auth.date.as_bytes()),
            amz_date.get(..8).unwrap_or_default(),
            amz_date
        )));
    }

    // 6. Clock window.
    check_skew(request_secs, amz_date, now, max_skew)?;

    // 7. Payload hash. We always sign the hash we compute ourselves; a declared hash must agree.
    let mut payload_hash = [0u8; 64];
    let _ = hex::encode_to_slice(Sha256::digest(req.body), &mut payload_hash);
    // Hex digits are ASCII.
    let payload_hash = std::str::from_utf8(&payload_hash).unwrap_or_default();
    let mut declared = req.headers.get_all(&CONTENT_SHA256_NAME).iter();
    if let Some(value) = declared.next() {
        if declared.next().is_some() {
            return Err(incomplete(
                "Only one 'X-Amz-Content-SHA256' header is allowed, but the request has more than one.",
            ));
        }
        let value = value.as_bytes();
        if value == b"UNSIGNED-PAYLOAD" || value.starts_with(b"STREAMING-") {
            return Err(invalid(format!(
                "'X-Amz-Content-SHA256' value '{}' is not supported by this service: the payload must be signed.",
                echo(value)
            )));
        }
        if !value.eq_ignore_ascii_case(payload_hash.as_bytes()) {
            return Err(invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }

    // 8. Recompute and compare.
    let creq_hash = canonical_request_hash(
        req.method,
        req.path,
        req.query,
        req.headers,
        &auth.signed_headers,
        payload_hash,
    );
    let cache_key = KeyRef::new(auth, secret.fingerprint());
    let cached = SIGNING_KEY_CACHE.get_ref(cache_key);
    let key = match cached.clone() {
        Some(k) => k,
        None => Zeroizing::new(signing_key(
            secret.expose(),
            auth.date,
            auth.region,
            auth.service,
        )),
    };
    let computed = signature_of(
        &key,
        amz_date,
        [auth.date, auth.region, auth.service],
        &creq_hash,
    );
    // Lengths may differ if a caller built `Authorization` by hand; ct_eq then returns false.
    if bool::from(computed.as_slice().ct_eq(auth.signature.as_bytes())) {
        // Only keys that produced a valid signature are cached, so unauthenticated clients cannot
        // fill (and keep clearing) the cache with made-up regions or dates.
        if cached.is_none() {
            SIGNING_KEY_CACHE.insert(cache_key.into_owned(), key);
        }
        Ok(())
    } else {
        Err(invalid(SIGNATURE_MISMATCH_MESSAGE))
    }
}

fn display_header_name(name: &str) -> String {
    match name {
        "host" => "'Host' or ':authority'".to_string(),
        "x-amz-date" => "'X-Amz-Date'".to_string(),
        "x-amz-target" => "'X-Amz-Target'".to_string(),
        "x-amz-security-token" => "'X-Amz-Security-Token'".to_string(),
        other => format!("'{}'", echo(other.as_bytes())),
    }
}

fn check_skew(
    request_secs: i64,
    amz_date: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs())
            .map(|s| -s)
            .unwrap_or(i64::MIN),
    };
    let skew = i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX);
    // Only an error message needs it: built there, not on every request.
    let skew_text = || {
        if skew % 60 == 0 {
            format!("{} min", skew / 60)
        } else {
            format!("{skew} sec")
        }
    };
    if request_secs < now_secs.saturating_sub(skew) {
        return Err(invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {}.)",
            format_amz_date(now_secs.saturating_sub(skew)),
            format_amz_date(now_secs),
            skew_text()
        )));
    }
    if request_secs > now_secs.saturating_add(skew) {
        return Err(invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {}.)",
            format_amz_date(now_secs.saturating_add(skew)),
            format_amz_date(now_secs),
            skew_text()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// X-Amz-Date: basic ISO 8601 in UTC, `YYYYMMDDTHHMMSSZ`
// ---------------------------------------------------------------------------------------------

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds; `time` refuses days a month does not have, hours past 23 and
/// minutes or seconds past 59.
pub(super) fn parse_amz_date(s: &[u8]) -> Option<i64> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    // Digits only: no sign, no spaces (what `str::parse` would let through).
    let num = |range: std::ops::Range<usize>| -> Option<u16> {
        s[range].iter().try_fold(0u16, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u16::from(b - b'0'))
        })
    };
    let two = |range| u8::try_from(num(range)?).ok();
    let month = Month::try_from(two(4..6)?).ok()?;
    let date = Date::from_calendar_date(i32::from(num(0..4)?), month, two(6..8)?).ok()?;
    let time = Time::from_hms(two(9..11)?, two(11..13)?, two(13..15)?).ok()?;
    Some(UtcDateTime::new(date, time).unix_timestamp())
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`. A time outside the years -9999..=9999 (only an absurd clock or
/// window gets there) is shown as the nearest end of that range, so messages built from odd clocks cannot panic.
pub(super) fn format_amz_date(secs: i64) -> String {
    let t = UtcDateTime::from_unix_timestamp(secs).unwrap_or(if secs < 0 {
        UtcDateTime::MIN
    } else {
        UtcDateTime::MAX
    });
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
