//! The process-wide cache of derived signing keys (four HMACs per key, day, region and service).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Authorization;

/// Capacity of the process-wide signing-key cache. The AWS Java SDK v1 keeps 300; one entry per
/// (key, day, region) is plenty for us.
const SIGNING_KEY_CACHE_CAPACITY: usize = 1024;

pub(super) static SIGNING_KEY_CACHE: LazyLock<SigningKeyCache> =
    LazyLock::new(|| SigningKeyCache::new(SIGNING_KEY_CACHE_CAPACITY));

/// Cache key. The secret is represented by a domain-separated SHA-256 so that a rotated secret
/// for the same access key id can never hit the old entry, and the secret itself is not kept.
/// No `Debug`, so it cannot end up in logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    access_key_id: String,
    secret_fingerprint: [u8; 32],
    date: String,
    region: String,
    service: String,
}

impl CacheKey {
    pub(super) fn new(auth: &Authorization, secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"workmail-pat/sigv4-signing-key-cache/v1\0");
        hasher.update(secret.as_bytes());
        CacheKey {
            access_key_id: auth.access_key_id.clone(),
            secret_fingerprint: hasher.finalize().into(),
            date: auth.date.clone(),
            region: auth.region.clone(),
            service: auth.service.clone(),
        }
    }
}

/// A bounded map of derived keys. When full it is simply cleared: entries are cheap to rebuild
/// (4 HMACs) and a clear is easier to get right than LRU bookkeeping.
pub(super) struct SigningKeyCache {
    capacity: usize,
    map: Mutex<HashMap<CacheKey, Zeroizing<[u8; 32]>>>,
}

impl SigningKeyCache {
    pub(super) fn new(capacity: usize) -> Self {
        SigningKeyCache {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Zeroizing<[u8; 32]>>> {
        // Nothing panics while the lock is held, but a poisoned map is still a valid map.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, key: &CacheKey) -> Option<Zeroizing<[u8; 32]>> {
        self.lock().get(key).cloned()
    }

    pub(super) fn insert(&self, key: CacheKey, value: Zeroizing<[u8; 32]>) {
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, value);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}
