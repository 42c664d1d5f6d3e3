//! API keys already seen, so that authenticating a request costs a hash and a map lookup
//! instead of a database round trip.
//!
//! Revocation stays prompt because the cache is only trusted while this node's LISTEN
//! connection is up: a change to `api_keys` on any node notifies every node, which clears its
//! cache. While the connection is down every request goes to the database. A generation
//! counter stops a lookup that raced with a clear from re-inserting what was just revoked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use crate::store::api_keys::ApiKey;

/// Enough for every key a deployment has; past it the cache starts over (keys are few).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<Vec<u8>, ApiKey>>,
    generation: AtomicU64,
    trusted: AtomicBool,
}

impl KeyCache {
    pub fn get(&self, hash: &[u8]) -> Option<ApiKey> {
        if !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        self.entries.read().ok()?.get(hash).cloned()
    }

    /// Call before asking the database; pass the result to `insert` with the answer.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers an active key found in the database, unless the cache was cleared since
    /// `generation` was read (the key may have been revoked in between).
    pub fn insert(&self, hash: Vec<u8>, key: ApiKey, generation: u64) {
        if !self.trusted.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, key);
    }

    /// Something in `api_keys` changed (or may have): forget everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }

    /// Whether change notifications are arriving; when they are not, nothing is cached.
    pub fn set_trusted(&self, trusted: bool) {
        self.clear();
        self.trusted.store(trusted, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn key() -> ApiKey {
        ApiKey {
            id: uuid::Uuid::nil(),
            name: "k".into(),
            role: Role::Dispatcher,
            key_prefix: "mrd_0000".into(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn caches_only_while_trusted() {
        let cache = KeyCache::default();
        cache.insert(vec![1], key(), cache.generation());
        assert!(cache.get(&[1]).is_none(), "untrusted: nothing kept");
        cache.set_trusted(true);
        cache.insert(vec![1], key(), cache.generation());
        assert!(cache.get(&[1]).is_some());
        cache.set_trusted(false);
        assert!(
            cache.get(&[1]).is_none(),
            "losing the listener forgets everything"
        );
    }

    #[test]
    fn a_lookup_that_raced_with_a_clear_is_not_kept() {
        let cache = KeyCache::default();
        cache.set_trusted(true);
        let before = cache.generation();
        cache.clear(); // a revocation notified while the lookup was in flight
        cache.insert(vec![1], key(), before);
        assert!(cache.get(&[1]).is_none());
    }
}
