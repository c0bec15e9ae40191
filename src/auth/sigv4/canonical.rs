//! The signing computation shared by every SigV4 request: canonical request, string to sign, signing key and
//! signature.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ALGORITHM;

type HmacSha256 = Hmac<Sha256>;

/// Where the canonical request goes: a buffer ([`canonical_request`]) or straight into SHA-256
/// ([`canonical_request_hash`], what verification uses: the same bytes, never held in memory).
pub(super) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

#[cfg(test)] // The buffered reference form; verification streams (the tests check both agree).
/// The canonical request, as bytes because header values need not be UTF-8.
pub(super) fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + path.len() + query.map_or(0, str::len));
    write_canonical_request(
        &mut out,
        method,
        path,
        query,
        headers,
        signed_headers,
        payload_hash,
    );
    out
}

/// SHA-256 of the [`canonical_request`], hashed as it is written.
pub(super) fn canonical_request_hash(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    write_canonical_request(
        &mut hasher,
        method,
        path,
        query,
        headers,
        signed_headers,
        payload_hash,
    );
    hasher.finalize().into()
}

fn write_canonical_request(
    out: &mut impl Sink,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) {
    out.put(method.as_bytes());
    out.put(b"\n");
    if path.starts_with('/') && !(path.contains('.') || path.contains("//")) {
        // Already normal (what `normalize_path` would return unchanged): encode it as it is.
        put_encoded(out, path.as_bytes(), true);
    } else {
        out.put(canonical_uri(path).as_bytes());
    }
    out.put(b"\n");
    if query.is_some() {
        out.put(canonical_query(query).as_bytes());
    }
    out.put(b"\n");
    for name in signed_headers {
        let name = name.as_ref();
        out.put(name.as_bytes());
        out.put(b":");
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.put(b",");
            }
            put_canonical_value(out, value.as_bytes());
        }
        out.put(b"\n");
    }
    out.put(b"\n");
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.put(b";");
        }
        out.put(name.as_ref().as_bytes());
    }
    out.put(b"\n");
    out.put(payload_hash.as_bytes());
}

/// [`push_canonical_value`] into a sink; a value with nothing to trim or fold (the usual case) goes as it is.
fn put_canonical_value(out: &mut impl Sink, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let folds = value.first().is_some_and(is_ws)
        || value.last().is_some_and(is_ws)
        || value.contains(&b'\t')
        || value.windows(2).any(|w| w == b"  ");
    if folds {
        let mut folded = Vec::with_capacity(value.len());
        push_canonical_value(&mut folded, value);
        out.put(&folded);
    } else {
        out.put(value);
    }
}

/// Trim spaces/tabs at both ends and turn inner runs into one space.
pub(super) fn push_canonical_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let mut pending_space = false;
    let mut started = false;
    for b in value {
        if is_ws(b) {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(*b);
            started = true;
        }
    }
}

/// Canonical URI for non-S3 services: normalise, then percent-encode the (already encoded) path
/// once more, leaving only unreserved characters and '/' as they are.
pub(super) fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 16);
    push_encoded(&mut out, normalized.as_bytes(), true);
    out
}

/// RFC 3986 §5.2.4 dot-segment removal plus dropping empty segments, exactly as aws-sigv4's
/// `normalize_uri_path` (which the SDKs' signatures are built with).
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let absolute = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if !(absolute.contains('.') || absolute.contains("//")) {
        return absolute;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(absolute.len());
    out.push('/');
    out.push_str(&segments.join("/"));
    // "/a/b/." and "/a/.." keep their trailing slash (RFC 3986 §5.2.4 steps 2.B and 2.C).
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| absolute.ends_with(s));
    if ends_with_slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Canonical query string: split on '&', decode each name and value ('+' is a space, as
/// aws-sigv4 reads the query with `form_urlencoded`), re-encode, sort by name then value.
pub(super) fn canonical_query(query: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut enc_name = String::new();
            push_encoded(&mut enc_name, &form_decode(name), false);
            let mut enc_value = String::new();
            push_encoded(&mut enc_value, &form_decode(value), false);
            (enc_name, enc_value)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn form_decode(s: &str) -> Vec<u8> {
    let plus_as_space: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&plus_as_space).collect()
}

/// Percent-encode everything except RFC 3986 unreserved characters (and '/' when asked).
fn push_encoded(out: &mut String, bytes: &[u8], keep_slash: bool) {
    let mut buf = Vec::with_capacity(bytes.len());
    put_encoded(&mut buf, bytes, keep_slash);
    // Only ASCII was written.
    out.extend(buf.iter().copied().map(char::from));
}

/// [`push_encoded`] into a sink: runs of characters kept as they are go in one piece.
fn put_encoded(out: &mut impl Sink, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let keep = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !keep(b) {
            out.put(&bytes[start..i]);
            out.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
            start = i + 1;
        }
    }
    out.put(&bytes[start..]);
}

#[cfg(test)] // The buffered reference form; verification streams (the tests check both agree).
/// `AWS4-HMAC-SHA256\n<X-Amz-Date>\n<scope>\n<hex sha256(canonical request)>`.
pub(super) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; if it somehow did, an all-zero key
    // would simply not match any client's signature (fail closed) rather than panic.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(super) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
    let k_region = Zeroizing::new(hmac_sha256(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac_sha256(&*k_region, service.as_bytes()));
    hmac_sha256(&*k_service, b"aws4_request")
}

/// Lowercase hex HMAC of the string to sign (`AWS4-HMAC-SHA256\n<X-Amz-Date>\n<scope>\n<hex hash>`), the
/// string fed to the HMAC in pieces instead of being built: what [`string_to_sign`] and [`signature`] compute,
/// without an allocation.
pub(super) fn signature_of(
    signing_key: &[u8; 32],
    amz_date: &str,
    scope: [&str; 3],
    canonical_request_hash: &[u8; 32],
) -> [u8; 64] {
    let mut hash_hex = [0u8; 64];
    let mut out = [0u8; 64];
    let Ok(mut mac) = HmacSha256::new_from_slice(signing_key) else {
        // As in hmac_sha256: fail closed with a value no client's signature matches (not hex).
        return out;
    };
    let _ = hex::encode_to_slice(canonical_request_hash, &mut hash_hex);
    for piece in [
        ALGORITHM.as_bytes(),
        b"\n",
        amz_date.as_bytes(),
        b"\n",
        scope[0].as_bytes(),
        b"/",
        scope[1].as_bytes(),
        b"/",
        scope[2].as_bytes(),
        b"/aws4_request\n",
        &hash_hex,
    ] {
        mac.update(piece);
    }
    let _ = hex::encode_to_slice(mac.finalize().into_bytes(), &mut out);
    out
}

#[cfg(test)] // The buffered reference form; verification streams (the tests check both agree).
/// Lowercase hex HMAC of the string to sign.
pub(super) fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}
