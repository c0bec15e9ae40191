//! The `Authorization` header: `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.

use std::borrow::Cow;

use axum::http::HeaderMap;

use super::{ALGORITHM, SigV4Error, echo, incomplete, invalid};

/// Parsed `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/workmail/aws4_request, SignedHeaders=a;b, Signature=hex`
///
/// It borrows from the header value: nothing is copied unless a name or the signature has to be lower-cased (SDKs
/// send both in lower case already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD` from the credential scope.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lowercase, in the order the client gave them.
    pub signed_headers: Vec<Cow<'a, str>>,
    /// Lowercase hex, 64 characters.
    pub signature: Cow<'a, str>,
}

/// `text` in lower case, copied only when it has an upper-case letter.
fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

impl Authorization<'_> {
    /// `date/region/service/aws4_request`, the credential scope as it appears in the string to sign.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// What separates the algorithm and the parameters of the header (AWS splits on commas and whitespace alike).
fn is_separator(b: u8) -> bool {
    matches!(b, b',' | b' ' | b'\t')
}

/// The non-empty pieces of `text` between separators. A byte scan: `str::split` with a set of characters decodes
/// every character, which made this parse a tenth of a small request's instructions. Every separator is ASCII, so
/// each piece is a `str` slice.
fn parameters(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() {
            let end = bytes[start..]
                .iter()
                .position(|b| is_separator(*b))
                .map_or(bytes.len(), |i| start + i);
            let piece = &text[start..end];
            start = end + 1;
            if !piece.is_empty() {
                return Some(piece);
            }
        }
        None
    })
}

/// The pieces of `text` between `separator`s, empty ones included (like `str::split` with one ASCII byte, without
/// its per-character searcher: a twentieth of a small request's instructions went to splitting this header).
fn split_at_byte(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == separator) {
            Some(i) => {
                rest = Some(&current[i + 1..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Parses the `Authorization` header of a request.
///
/// Errors: no header (or an empty one) gives [`SigV4Error::Missing`]; everything else that is
/// wrong with the header gives [`SigV4Error::Incomplete`] with an AWS-style message, except an
/// empty region, which AWS reports as `InvalidSignatureException`.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Authorization<'_>, SigV4Error> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(SigV4Error::Missing);
    };
    // Two headers would make it ambiguous which one we verified (s3s `get_unique`).
    if values.next().is_some() {
        return Err(incomplete(
            "Only one 'Authorization' header is allowed, but the request has more than one.",
        ));
    }
    let raw = value.as_bytes();
    if raw.iter().all(|b| *b == b' ' || *b == b'\t') {
        return Err(SigV4Error::Missing);
    }
    let Ok(text) = value.to_str() else {
        return Err(incomplete(
            "Authorization header contains characters that are not visible ASCII.",
        ));
    };
    let text = text.trim_matches([' ', '\t']);

    let (algorithm, rest) = match text.bytes().position(is_separator) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    if algorithm != ALGORITHM {
        // The header is not echoed here: it may be a bearer token (even one of our PATs sent to
        // the wrong endpoint) and error messages end up in logs.
        return Err(incomplete(format!(
            "Unsupported Authorization algorithm; only '{ALGORITHM}' is accepted by this service."
        )));
    }

    let mut credential: Option<&str> = None;
    let mut signed_headers: Option<&str> = None;
    let mut signature: Option<&str> = None;
    // AWS splits on both commas and whitespace: "Credential= AKID/..." is reported as
    // "'AKID/...' not a valid key=value pair (missing equal-sign)".
    for token in parameters(rest) {
        let Some((key, val)) = token
            .bytes()
            .position(|b| b == b'=')
            .map(|i| (&token[..i], &token[i + 1..]))
        else {
            return Err(incomplete(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                echo(token.as_bytes()),
                echo(text.as_bytes())
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(incomplete(format!(
                    "Unknown parameter '{}' in Authorization header: '{}'.",
                    echo(key.as_bytes()),
                    echo(text.as_bytes())
                )));
            }
        };
        if slot.is_some() {
            return Err(incomplete(format!(
                "Authorization header contains the '{key}' parameter more than once."
            )));
        }
        *slot = Some(val);
    }

    // An empty value counts as missing, as "Credential=" carries nothing to check.
    let credential = credential.filter(|v| !v.is_empty());
    let signed_headers = signed_headers.filter(|v| !v.is_empty());
    let signature = signature.filter(|v| !v.is_empty());
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        let mut msg = String::new();
        for (name, present) in [
            ("Credential", credential.is_some()),
            ("Signature", signature.is_some()),
            ("SignedHeaders", signed_headers.is_some()),
        ] {
            if !present {
                msg.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        msg.push_str(&format!("Authorization={}", echo(text.as_bytes())));
        return Err(incomplete(msg));
    };

    let mut parts = split_at_byte(credential, b'/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            echo(credential.as_bytes())
        )));
    };
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            echo(terminator.as_bytes())
        )));
    }
    if access_key_id.is_empty() {
        return Err(incomplete(
            "Credential must contain an access key id before the first '/'.",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential date must be in YYYYMMDD format, got '{}'.",
            echo(date.as_bytes())
        )));
    }
    if region.is_empty() {
        return Err(invalid(
            "Credential should be scoped to a valid region, not ''. ",
        ));
    }

    let mut names = Vec::with_capacity(signed_headers.bytes().filter(|b| *b == b';').count() + 1);
    for name in split_at_byte(signed_headers, b';') {
        if name.is_empty() {
            return Err(incomplete(format!(
                "SignedHeaders must be a ';'-separated list of header names, got '{}'.",
                echo(signed_headers.as_bytes())
            )));
        }
        names.push(lowercase(name));
    }

    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete(format!(
            "Signature must be 64 hexadecimal characters, got {} characters.",
            signature.chars().count()
        )));
    }

    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: names,
        signature: lowercase(signature),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{parameters, split_at_byte};

    proptest! {
        /// The byte scan splits exactly like `str::split` on the three separators, empty pieces dropped, for any
        /// text (non-ASCII included).
        #[test]
        fn parameters_split_like_str_split(text in "[ ,\t=a-zA-Z0-9/;é€]{0,40}") {
            let expected: Vec<&str> = text.split([',', ' ', '\t']).filter(|t| !t.is_empty()).collect();
            prop_assert_eq!(parameters(&text).collect::<Vec<_>>(), expected);
        }

        /// The byte split is `str::split` on one ASCII character, empty pieces kept.
        #[test]
        fn split_at_byte_splits_like_str_split(text in "[/;a-z0-9é€]{0,30}") {
            for separator in ['/', ';'] {
                let expected: Vec<&str> = text.split(separator).collect();
                prop_assert_eq!(split_at_byte(&text, separator as u8).collect::<Vec<_>>(), expected);
            }
        }
    }
}
