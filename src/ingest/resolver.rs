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
        let misses: Vec<&str> = {
            let cache = self.cache.lock().expect("resolver cache poisoned");
            let now = Instant::now();
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
        };
        if !misses.is_empty() {
            let found = vehicles::ids_by_external_id(client, &misses).await?;
            self.learn(&misses, found);
        }
        let cache = self.cache.lock().expect("resolver cache poisoned");
        Ok(ids.iter().map(|id| cache.known.get(*id).copied()).collect())
    }

    fn learn(&self, asked: &[&str], found: Vec<(String, Uuid)>) {
        let mut cache = self.cache.lock().expect("resolver cache poisoned");
        let now = Instant::now();
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
