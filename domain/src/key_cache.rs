//! A short-lived cache of API key identities in front of the `api_keys` table.
//!
//! Listeners take thousands of requests a second with the same few keys; a database
//! read for each (on SQLite, two thread hops through the connection's worker) cost
//! more than everything else the request did. An identity is reused for at most
//! [`TTL`]; revoking or rotating a key clears this process's cache at once, so the
//! key stops working here immediately and on other replicas within [`TTL`].

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::key_identity::KeyIdentity;
use crate::recent::Recent;

/// How long another replica may still accept a key revoked elsewhere.
pub const TTL: Duration = Duration::from_secs(1);

/// Beyond this many keys the cache starts over (a bound, not an expected size).
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    identity: KeyIdentity,
    /// The end of a rotated key's grace period (ms).
    expires_at: Option<i64>,
    fetched: Instant,
}

#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<Entries>,
    /// Hashes of keys the database does not know. A key cannot be presented before it
    /// exists (its secret is random and made with its row), so "unknown" stays true
    /// unless someone guessed a key; [`MISS_TTL`] bounds even that.
    misses: Recent<String, ()>,
}

/// How long an unknown key is believed unknown.
pub const MISS_TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Entry>,
    /// Bumped by every clear, so a read that started before a revocation cannot put
    /// the revoked key back.
    generation: u64,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl KeyCache {
    /// The identity of the key with this hash, if read from the database recently.
    pub fn get(&self, key_hash: &str, now_ms: i64) -> Option<KeyIdentity> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.by_hash.get(key_hash)?;
        let fresh = entry.fetched.elapsed() < TTL && entry.expires_at.is_none_or(|t| t > now_ms);
        fresh.then(|| entry.identity.clone())
    }

    /// The generation to hand back to [`KeyCache::put`] after reading the database.
    pub fn generation(&self) -> u64 {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// Remembers a key read in `generation`, unless the cache was cleared since.
    pub fn put(
        &self,
        generation: u64,
        key_hash: String,
        identity: KeyIdentity,
        expires_at: Option<i64>,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            return;
        }
        if entries.by_hash.len() >= MAX_ENTRIES {
            entries.by_hash.clear();
        }
        let entry = Entry {
            identity,
            expires_at,
            fetched: Instant::now(),
        };
        entries.by_hash.insert(key_hash, entry);
    }

    /// Keeps a remembered key's "last used" in step with the database after a note.
    pub fn noted(&self, key_id: &str, at_ms: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for entry in entries.by_hash.values_mut() {
            if entry.identity.key_id == key_id {
                entry.identity.last_used_at = Some(at_ms);
            }
        }
    }

    /// Whether the database recently did not know the key with this hash.
    pub fn missed(&self, key_hash: &str) -> bool {
        self.misses.get(key_hash).is_some()
    }

    /// Remembers that the database does not know the key with this hash.
    pub fn miss(&self, key_hash: String) {
        self.misses.put(key_hash, (), MISS_TTL);
    }

    /// Forgets every key: called when one is revoked or rotated.
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.by_hash.clear();
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> KeyIdentity {
        KeyIdentity {
            key_id: "key_1".into(),
            name: "n".into(),
            tenant_id: "t".into(),
            scopes: vec![],
            last_used_at: None,
        }
    }

    #[test]
    fn entries_end_with_their_grace_period_and_when_cleared() {
        let cache = KeyCache::default();
        cache.put(0, "h".into(), identity(), Some(1_000));
        assert_eq!(cache.get("h", 999), Some(identity()));
        assert_eq!(
            cache.get("h", 1_000),
            None,
            "past the rotation's grace period"
        );
        cache.put(0, "h".into(), identity(), None);
        assert!(cache.get("h", 5_000).is_some());
        cache.clear();
        assert_eq!(cache.get("h", 5_000), None);
        assert_eq!(cache.get("other", 0), None);
    }

    #[test]
    fn a_read_from_before_a_revocation_is_not_remembered() {
        let cache = KeyCache::default();
        let before = cache.generation();
        cache.clear();
        cache.put(before, "h".into(), identity(), None);
        assert_eq!(cache.get("h", 0), None);
        cache.put(cache.generation(), "h".into(), identity(), None);
        assert!(cache.get("h", 0).is_some());
        cache.noted("key_1", 42);
        assert_eq!(cache.get("h", 0).unwrap().last_used_at, Some(42));
    }
}
