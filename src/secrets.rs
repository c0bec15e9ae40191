//! Secrets: the server keys (NextToken key, token pepper), personal-access-token secrets, session tokens and
//! password hashes. Nothing here ever logs or `Debug`-prints a secret.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The recognisable prefix of every personal access token (document it for secret scanners:
/// `wmpat_[A-Za-z0-9]{46}`).
pub const PAT_PREFIX: &str = "wmpat_";
const PAT_RANDOM_LEN: usize = 40;
const PAT_CHECKSUM_LEN: usize = 6;
/// Total length of a PAT secret.
pub const PAT_LEN: usize = PAT_PREFIX.len() + PAT_RANDOM_LEN + PAT_CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 32 secret bytes: the NextToken sealing key or the token pepper. Redacted in `Debug`, zeroed on drop.
#[derive(Clone)]
pub struct Key32(Zeroizing<[u8; 32]>);

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

impl Key32 {
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Zeroizing::new(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex characters (surrounding white space allowed).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| "expected 64 hexadecimal characters (32 bytes)".to_string())?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads the key from `path`, or creates the file with a fresh random key (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                crate::private_files::warn_if_exposed(path, "key file");
                Self::from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                write_private(path, &format!("{}\n", hex::encode(key.expose())))
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                // Another process may have raced us; whatever is on disk now wins.
                Self::load(path)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Reads an existing key file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Writes a new file readable only by its owner; fails if it already exists (so two racing processes never
/// overwrite each other's key).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// HMAC-SHA-256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A personal-access-token secret as the user sees it once. Redacted in `Debug`, zeroed on drop.
pub struct PatSecret(Zeroizing<String>);

impl fmt::Debug for PatSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatSecret(<redacted>)")
    }
}

impl PatSecret {
    /// A fresh secret: prefix, 40 base62 characters (about 238 bits) and a 6-character base62 CRC32 checksum.
    pub fn generate() -> Self {
        let mut s = String::with_capacity(PAT_LEN);
        s.push_str(PAT_PREFIX);
        // One read from the OS generator per 64 bytes (not per character): bulk seeding makes millions.
        let mut pool = Zeroizing::new([0u8; 64]);
        let mut used = pool.len();
        while s.len() < PAT_PREFIX.len() + PAT_RANDOM_LEN {
            if used == pool.len() {
                rand::rngs::OsRng.fill_bytes(&mut pool[..]);
                used = 0;
            }
            let b = pool[used];
            used += 1;
            // Rejection sampling keeps every base62 digit uniformly likely (248 = 4 * 62).
            if b < 248 {
                s.push(BASE62[(b % 62) as usize] as char);
            }
        }
        let checksum = base62_fixed(crc32fast::hash(s.as_bytes()));
        s.push_str(&checksum);
        Self(Zeroizing::new(s))
    }

    /// Checks the shape and checksum of a presented secret without touching the database, so junk is rejected
    /// cheaply.
    pub fn parse(text: &str) -> Option<Self> {
        Self::check(text).ok()
    }

    /// [`PatSecret::parse`] saying what is wrong, for operators writing fixed secrets into seed files (a client
    /// presenting a token never learns more than "invalid").
    pub fn check(text: &str) -> Result<Self, SecretError> {
        if !text.starts_with(PAT_PREFIX) {
            return Err(SecretError::Prefix);
        }
        if text.len() != PAT_LEN {
            return Err(SecretError::Length(text.chars().count()));
        }
        let body = &text[PAT_PREFIX.len()..];
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SecretError::Alphabet);
        }
        let (payload, checksum) = text.split_at(PAT_LEN - PAT_CHECKSUM_LEN);
        let expected = base62_fixed(crc32fast::hash(payload.as_bytes()));
        if expected.as_bytes().ct_eq(checksum.as_bytes()).into() {
            Ok(Self(Zeroizing::new(text.to_string())))
        } else {
            Err(SecretError::Checksum)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The keyed hash stored in the database (HMAC-SHA-256 with the server pepper).
    pub fn digest(&self, pepper: &Key32) -> [u8; 32] {
        hmac_sha256(pepper.expose(), self.0.as_bytes())
    }
}

/// Why a text is not a personal-access-token secret. Never carries the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// It does not start with `wmpat_`.
    Prefix,
    /// It has this many characters instead of [`PAT_LEN`].
    Length(usize),
    /// Something after the prefix is not a base62 character (`A-Z`, `a-z`, `0-9`).
    Alphabet,
    /// The last 6 characters are not the checksum of the rest (a typo, or a made-up secret).
    Checksum,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prefix => write!(f, "it does not start with {PAT_PREFIX}"),
            Self::Length(n) => write!(
                f,
                "it has {n} characters, a secret has {PAT_LEN} ({PAT_PREFIX} and {} base62 characters)",
                PAT_RANDOM_LEN + PAT_CHECKSUM_LEN
            ),
            Self::Alphabet => write!(
                f,
                "after {PAT_PREFIX} only the base62 characters A-Z, a-z and 0-9 may follow"
            ),
            Self::Checksum => write!(
                f,
                "its last {PAT_CHECKSUM_LEN} characters are not the checksum of the rest (a typo, or a made-up secret)"
            ),
        }
    }
}

fn base62_fixed(mut n: u32) -> String {
    let mut out = [b'0'; PAT_CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// A random web session token (256 bits, URL-safe base64) and its keyed hash for storage.
pub fn new_session_token(pepper: &Key32) -> (Zeroizing<String>, [u8; 32]) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let digest = session_digest(pepper, &token);
    (token, digest)
}

/// The stored form of a session token. Domain-separated from PAT digests.
pub fn session_digest(pepper: &Key32, token: &str) -> [u8; 32] {
    let mut data = Vec::with_capacity(8 + token.len());
    data.extend_from_slice(b"session\0");
    data.extend_from_slice(token.as_bytes());
    hmac_sha256(pepper.expose(), &data)
}

/// Runs Argon2id into `out`, reusing this thread's memory block: allocating and freeing 19 MiB per hash makes the
/// allocator hold ever more of them (measured: RSS grew by 19 MiB per sign-in up to about 160 MiB per thread).
fn argon2id_into(
    password: &[u8],
    salt: &[u8],
    params: argon2::Params,
    out: &mut [u8],
) -> Result<(), String> {
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let needed = params.block_count();
        if memory.len() < needed {
            memory.resize(needed, argon2::Block::default());
        }
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
            .map_err(|e| e.to_string())
    })
}

/// Argon2id hash of a password, as a PHC string (default parameters: 19 MiB, 2 passes). CPU-heavy: call it through
/// [`crate::hashing::on_password_thread`].
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let params = argon2::Params::default();
    let mut out = Zeroizing::new([0u8; 32]);
    argon2id_into(password.as_bytes(), salt_raw, params.clone(), &mut out[..])?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out[..]).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// A fixed hash verified against when the user does not exist, so sign-in takes the same time either way.
fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("dummy-password-for-timing").unwrap_or_default())
}

/// Verifies a password against a stored Argon2id PHC string (constant-time comparison). `None` still does the
/// same work against a dummy hash and answers `false`.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    use argon2::password_hash::{Output, PasswordHash};
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy_password_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let (Ok(params), Some(salt), Some(expected)) =
        (argon2::Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    if argon2id_into(password.as_bytes(), salt_raw, params, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    let ok = Output::new(&out).is_ok_and(|computed| computed == expected);
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_use_only_the_safe_alphabet() {
        for _ in 0..200 {
            let s = PatSecret::generate();
            assert_eq!(s.expose().len(), PAT_LEN);
            assert!(s.expose().starts_with("wmpat_"));
            assert!(
                s.expose()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            );
            assert!(PatSecret::parse(s.expose()).is_some());
        }
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let s = PatSecret::generate();
        let text = s.expose().to_string();
        for i in PAT_PREFIX.len()..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(PatSecret::parse(&changed).is_none(), "position {i}");
        }
        assert!(PatSecret::parse("").is_none());
        assert!(PatSecret::parse("wmpat_").is_none());
        assert!(PatSecret::parse(&text[..text.len() - 1]).is_none());
    }

    #[test]
    fn check_says_what_is_wrong() {
        let good = PatSecret::generate().expose().to_string();
        assert!(PatSecret::check(&good).is_ok());
        assert_eq!(
            PatSecret::check("wmpat_...").err(),
            Some(SecretError::Length(9))
        );
        assert_eq!(PatSecret::check("ghp_abc").err(), Some(SecretError::Prefix));
        let dashed = format!("{}-{}", &good[..20], &good[21..]);
        assert_eq!(PatSecret::check(&dashed).err(), Some(SecretError::Alphabet));
        let mut typo = good.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(PatSecret::check(&typo).err(), Some(SecretError::Checksum));
        // The explanation never repeats the text.
        assert!(!SecretError::Checksum.to_string().contains(&typo));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = PatSecret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
        let k = Key32::random();
        assert!(!format!("{k:?}").contains(&hex::encode(k.expose())));
    }

    #[test]
    fn digests_depend_on_the_pepper() {
        let s = PatSecret::generate();
        assert_ne!(s.digest(&Key32::random()), s.digest(&Key32::random()));
        let p = Key32::random();
        assert_eq!(s.digest(&p), s.digest(&p));
    }

    #[test]
    fn key_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = Key32::load_or_create(&path).unwrap();
        let b = Key32::load_or_create(&path).unwrap();
        assert_eq!(a.expose(), b.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        assert!(Key32::from_hex("zz").is_err());
    }

    #[test]
    fn password_hashes_are_standard_phc_strings() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        // Ours verifies with the argon2 crate's own verifier, and the crate's hashes verify with ours.
        let ours = hash_password("Correct-Horse-7").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"Correct-Horse-7", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = argon2::Argon2::default()
            .hash_password(b"Another-Pass-9", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("Another-Pass-9", Some(&theirs)));
        assert!(!verify_password("another-pass-9", Some(&theirs)));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("Correct-Horse-7").unwrap();
        assert!(verify_password("Correct-Horse-7", Some(&h)));
        assert!(!verify_password("correct-horse-7", Some(&h)));
        assert!(!verify_password("Correct-Horse-7", None));
        assert!(!h.contains("Correct-Horse-7"));
    }
}
