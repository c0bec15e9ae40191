//! `secrets::PatSecret::parse` on arbitrary text: never panics; anything it accepts is exactly a well-formed
//! `wmpat_` secret of the fixed length, returned unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workmail_pat::secrets::{PAT_LEN, PAT_PREFIX, PatSecret};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(secret) = PatSecret::parse(&text) {
        assert_eq!(secret.expose(), &*text);
        assert_eq!(text.len(), PAT_LEN);
        assert!(text.starts_with(PAT_PREFIX));
        assert!(
            text[PAT_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
    }
    // A freshly generated secret with one character changed must never parse (CRC-32 catches every 1-symbol
    // substitution) unless the change is a no-op.
    if let Some(&b) = data.first() {
        let good = PatSecret::generate();
        let mut bytes = good.expose().as_bytes().to_vec();
        let i = PAT_PREFIX.len() + usize::from(b) % (PAT_LEN - PAT_PREFIX.len());
        let replacement = data.get(1).copied().unwrap_or(b'A');
        if replacement.is_ascii_alphanumeric() && replacement != bytes[i] {
            bytes[i] = replacement;
            let changed = String::from_utf8(bytes).expect("ASCII");
            assert!(PatSecret::parse(&changed).is_none(), "{changed}");
        }
    }
});
