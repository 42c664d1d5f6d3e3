//! external_id → vehicle id, cached. Known ids are cached for good (a vehicle's id never
//! changes); unknown ids are remembered for a short TTL, so a flood of messages from
//! unregistered devices costs at most one batched lookup per id per TTL, while a vehicle
//! registered after start is found within one TTL, without a restart.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use uuid::Uuid;

use crate::store::{vehicles, StoreError};

/// Bound on remembered unknown ids; past it, expired entries go, then everything.
const MAX_UNKNOWN: usize = 100_000;

pub struct Resolver {
    ttl: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    known: HashMap<Box<str>, Uuid>,
    unknown: HashMap<Box<str>, Instant>,
}

impl Resolver {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cache: Mutex::default(),
        }
    }

    /// Resolves `ids` (in order) with at most one query, for the ids the cache cannot answer.
    pub async fn resolve(
        &self,
        client: &Client,
        ids: &[&str],
    ) -> Result<Vec<Option<Uuid>>, StoreError> {
        let misses = self.misses(ids, Instant::now());
        if !misses.is_empty() {
            let found = vehicles::ids_by_external_id(client, &misses).await?;
            self.learn(&misses, found, Instant::now());
        }
        let cache = self.cache.lock().expect("resolver cache poisoned");
        Ok(ids.iter().map(|id| cache.known.get(*id).copied()).collect())
    }

    /// The distinct ids the database must be asked about: neither known nor recently found unknown.
    fn misses<'a>(&self, ids: &[&'a str], now: Instant) -> Vec<&'a str> {
        let cache = self.cache.lock().expect("resolver cache poisoned");
        let mut seen = HashSet::new();
        ids.iter()
            .copied()
            .filter(|id| !cache.known.contains_key(*id))
            .filter(|id| {
                cache
                    .unknown
                    .get(*id)
                    .is_none_or(|at| now.duration_since(*at) >= self.ttl)
            })
            .filter(|id| seen.insert(*id))
            .collect()
    }

    fn learn(&self, asked: &[&str], found: Vec<(String, Uuid)>, now: Instant) {
        let mut cache = self.cache.lock().expect("resolver cache poisoned");
        for (external_id, id) in found {
            cache.unknown.remove(external_id.as_str());
            cache.known.insert(external_id.into_boxed_str(), id);
        }
        for id in asked {
            if !cache.known.contains_key(*id) {
                cache.unknown.insert((*id).into(), now);
            }
        }
        if cache.unknown.len() > MAX_UNKNOWN {
            let ttl = self.ttl;
            cache.unknown.retain(|_, at| now.duration_since(*at) < ttl);
            if cache.unknown.len() > MAX_UNKNOWN {
                cache.unknown.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_unknown_ids_is_asked_about_once_per_ttl() {
        let resolver = Resolver::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let flood = ["ghost"; 1000];
        assert_eq!(
            resolver.misses(&flood, t0),
            ["ghost"],
            "one question for a thousand messages"
        );
        resolver.learn(&["ghost"], Vec::new(), t0);
        assert!(
            resolver
                .misses(&flood, t0 + Duration::from_secs(4))
                .is_empty(),
            "remembered as unknown"
        );
        assert_eq!(
            resolver.misses(&flood, t0 + Duration::from_secs(5)),
            ["ghost"],
            "asked again after the TTL"
        );
    }

    #[test]
    fn known_ids_are_never_asked_again_and_late_registration_is_learned() {
        let resolver = Resolver::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let id = Uuid::new_v4();
        resolver.learn(&["a", "b"], vec![("a".to_owned(), id)], t0);
        assert!(resolver
            .misses(&["a"], t0 + Duration::from_secs(3600))
            .is_empty());
        // "b" registered later: found on the first ask after its TTL.
        resolver.learn(
            &["b"],
            vec![("b".to_owned(), id)],
            t0 + Duration::from_secs(6),
        );
        assert!(resolver
            .misses(&["b"], t0 + Duration::from_secs(7))
            .is_empty());
    }

    #[test]
    fn the_unknown_set_stays_bounded() {
        let resolver = Resolver::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let ids: Vec<String> = (0..MAX_UNKNOWN + 10)
            .map(|i| format!("ghost-{i}"))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        resolver.learn(&refs, Vec::new(), t0);
        assert!(resolver.cache.lock().unwrap().unknown.len() <= MAX_UNKNOWN);
    }
}
