//! Identifier generation. Random by default; a test can seed it (`POST /_workmail-pat/seed`, like moto's
//! `/moto-api/seed`) so that organization, directory, user and token ids repeat from run to run. Token *secrets*
//! never come from here: they are always drawn from the operating system's generator.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

#[derive(Debug, Default)]
pub struct Ids {
    seeded: Mutex<Option<StdRng>>,
}

impl Ids {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, ids come from a generator seeded with `seed`.
    pub fn reseed(&self, seed: u64) {
        if let Ok(mut g) = self.seeded.lock() {
            *g = Some(StdRng::seed_from_u64(seed));
        }
    }

    fn bytes16(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        match self
            .seeded
            .lock()
            .ok()
            .as_deref_mut()
            .and_then(Option::as_mut)
        {
            Some(rng) => rng.fill_bytes(&mut b),
            None => rand::rngs::OsRng.fill_bytes(&mut b),
        }
        b
    }

    /// A lowercase version-4 GUID (user ids, PAT ids).
    pub fn guid(&self) -> String {
        uuid::Builder::from_random_bytes(self.bytes16())
            .into_uuid()
            .to_string()
    }

    /// `m-` + 32 lowercase hex characters.
    pub fn organization_id(&self) -> String {
        format!("m-{}", hex::encode(self.bytes16()))
    }

    /// `d-` + 10 lowercase hex characters.
    pub fn directory_id(&self) -> String {
        format!("d-{}", &hex::encode(self.bytes16())[..10])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_and_random_ids_do_not() {
        let a = Ids::new();
        let b = Ids::new();
        assert_ne!(a.guid(), b.guid());
        a.reseed(42);
        b.reseed(42);
        assert_eq!(a.guid(), b.guid());
        assert_eq!(a.organization_id(), b.organization_id());
        let org = a.organization_id();
        assert_eq!(org.len(), 34);
        assert!(org.starts_with("m-"));
        let dir = a.directory_id();
        assert_eq!(dir.len(), 12);
        let g = a.guid();
        assert_eq!(uuid::Uuid::parse_str(&g).unwrap().get_version_num(), 4);
    }
}
