//! API keys: generation, hashing, and their table. A key is shown once, at creation;
//! only its SHA-256 is stored, with an 8-character prefix to recognise it in lists.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;
use crate::domain::Role;

const KEY_PREFIX: &str = "mrd_";

/// A key's stored facts (never the key itself).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `mrd_` + 64 hex digits of 256 random bits.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
    key.push_str(KEY_PREFIX);
    for b in bytes {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Creates a key and returns it in clear, the only time it is ever visible.
pub async fn create(
    client: &impl GenericClient,
    name: &str,
    role: Role,
) -> Result<(ApiKey, String), StoreError> {
    let key = generate();
    let prefix = key[..KEY_PREFIX.len() + 8].to_owned();
    let row = client
        .query_one(
            "INSERT INTO api_keys (name, role, key_hash, key_prefix) VALUES ($1, $2, $3, $4) \
             RETURNING id, name, role, key_prefix, created_at, revoked_at",
            &[&name, &role.as_str(), &hash(&key), &prefix],
        )
        .await?;
    Ok((from_row(&row), key))
}

/// The active (unrevoked) key whose SHA-256 is `hash`, if any.
pub async fn find_active_by_hash(
    client: &impl GenericClient,
    hash: &[u8],
) -> Result<Option<ApiKey>, StoreError> {
    let row = client
        .query_opt(
            "SELECT id, name, role, key_prefix, created_at, revoked_at FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL",
            &[&hash],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

pub async fn list(client: &impl GenericClient) -> Result<Vec<ApiKey>, StoreError> {
    let rows = client
        .query("SELECT id, name, role, key_prefix, created_at, revoked_at FROM api_keys ORDER BY created_at", &[])
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Revokes by id; returns whether an active key was revoked.
pub async fn revoke(client: &impl GenericClient, id: Uuid) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?;
    Ok(n == 1)
}

fn from_row(row: &tokio_postgres::Row) -> ApiKey {
    let role: String = row.get(2);
    ApiKey {
        id: row.get(0),
        name: row.get(1),
        // The CHECK constraint admits only the three roles.
        role: role.parse().unwrap_or(Role::Analyst),
        key_prefix: row.get(3),
        created_at: row.get(4),
        revoked_at: row.get(5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_hex_and_hash_to_32_bytes() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("mrd_") && a.len() == 68);
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash(&a).len(), 32);
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
    }
}
