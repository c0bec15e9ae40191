//! Making client-supplied identifiers safe to log. Anything a client sends (an access key id, an organization id,
//! a username) can be huge, contain control characters that forge log lines, or be somebody's secret pasted into
//! the wrong field; logs get a short prefix of plain characters and the length, never the whole value.

/// Longest prefix of a client-supplied identifier that is logged.
pub const MAX_LOGGED_CHARS: usize = 64;

/// A short, printable rendering of a client-supplied identifier: at most [`MAX_LOGGED_CHARS`] characters of
/// `[A-Za-z0-9._@+-]` (others become `?`), followed by `…(N bytes)` when it was cut.
pub fn identifier(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_LOGGED_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._@+-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().count() > MAX_LOGGED_CHARS {
        out.push_str(&format!("…({} bytes)", value.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_short_and_printable() {
        assert_eq!(identifier("AKIDEXAMPLE"), "AKIDEXAMPLE");
        assert_eq!(identifier("m-0123\n\u{1b}[31m"), "m-0123???31m");
        let org = "m-5104dd23eec1d44f87368e8752521ea9";
        assert_eq!(identifier(org), org, "real ids are logged whole");
        let long = "A".repeat(15_000);
        let logged = identifier(&long);
        assert!(logged.starts_with(&"A".repeat(MAX_LOGGED_CHARS)));
        assert!(logged.ends_with("…(15000 bytes)"));
        assert!(logged.len() < 90);
    }
}
