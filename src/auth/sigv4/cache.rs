//! The process-wide cache of derived signing keys (four HMACs per key, day, region and service).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{LazyLock, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Authorization;

/// Capacity of the process-wide signing-key cache. The AWS Java SDK v1 keeps 300; one entry per
/// (key, day, region) is plenty for us.
const SIGNING_KEY_CACHE_CAPACITY: usize = 1024;

pub(super) static SIGNING_KEY_CACHE: LazyLock<SigningKeyCache> =
    LazyLock::new(|| SigningKeyCache::new(SIGNING_KEY_CACHE_CAPACITY));

/// A secret access key with the fingerprint that stands for it in the cache, computed once (when the key is
/// loaded) rather than on every request. No `Debug`, so it cannot end up in logs.
#[derive(Clone)]
pub struct SigningSecret {
    secret: Zeroizing<String>,
    fingerprint: [u8; 32],
}

impl SigningSecret {
    pub fn new(secret: &str) -> Self {
        SigningSecret {
            secret: Zeroizing::new(secret.to_owned()),
            fingerprint: fingerprint(secret),
        }
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    pub(super) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

/// The secret as the cache knows it: a domain-separated SHA-256, so that a rotated secret for the same access key
/// id can never hit the old entry, and the secret itself is not kept.
fn fingerprint(secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"workmail-pat/sigv4-signing-key-cache/v1\0");
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// Cache key. No `Debug`, so it cannot end up in logs.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct CacheKey {
    access_key_id: String,
    secret_fingerprint: [u8; 32],
    date: String,
    region: String,
    service: String,
}

/// A cache key made of borrowed parts: what a lookup needs, so a hit copies nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeyRef<'a> {
    access_key_id: &'a str,
    secret_fingerprint: &'a [u8; 32],
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> KeyRef<'a> {
    pub(super) fn new(auth: &Authorization<'a>, fingerprint: &'a [u8; 32]) -> Self {
        KeyRef {
            access_key_id: auth.access_key_id,
            secret_fingerprint: fingerprint,
            date: auth.date,
            region: auth.region,
            service: auth.service,
        }
    }

    pub(super) fn into_owned(self) -> CacheKey {
        CacheKey {
            access_key_id: self.access_key_id.to_owned(),
            secret_fingerprint: *self.secret_fingerprint,
            date: self.date.to_owned(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
        }
    }
}

impl CacheKey {
    #[cfg(test)]
    pub(super) fn new(auth: &Authorization<'_>, secret: &str) -> Self {
        KeyRef::new(auth, &fingerprint(secret)).into_owned()
    }

    fn borrow(&self) -> KeyRef<'_> {
        KeyRef {
            access_key_id: &self.access_key_id,
            secret_fingerprint: &self.secret_fingerprint,
            date: &self.date,
            region: &self.region,
            service: &self.service,
        }
    }
}

type Entry = (CacheKey, Zeroizing<[u8; 32]>);

/// A bounded map of derived keys. When full it is simply cleared: entries are cheap to rebuild
/// (4 HMACs) and a clear is easier to get right than LRU bookkeeping. Entries are found by a keyed 64-bit hash of
/// the borrowed key and then compared in full, so a lookup allocates nothing; two keys with the same hash share a
/// slot (the later replaces the earlier, which is then simply derived again).
pub(super) struct SigningKeyCache {
    capacity: usize,
    hasher: RandomState,
    map: Mutex<HashMap<u64, Entry>>,
}

impl SigningKeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        SigningKeyCache {
            capacity,
            hasher: RandomState::new(),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // Nothing panics while the lock is held, but a poisoned map is still a valid map.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get_ref(&self, key: KeyRef<'_>) -> Option<Zeroizing<[u8; 32]>> {
        let slot = self.hasher.hash_one(key);
        self.lock()
            .get(&slot)
            .filter(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v.clone())
    }

    #[cfg(test)]
    pub(super) fn get(&self, key: &CacheKey) -> Option<Zeroizing<[u8; 32]>> {
        self.get_ref(key.borrow())
    }

    pub(super) fn insert(&self, key: CacheKey, value: Zeroizing<[u8; 32]>) {
        let slot = self.hasher.hash_one(key.borrow());
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&slot) {
            map.clear();
        }
        map.insert(slot, (key, value));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}
