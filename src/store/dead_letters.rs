//! Dead letters: what could not be stored, written in the same transaction as the batch
//! it arrived with, so a message is acknowledged only once its dead letter is durable.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::StoreError;
use crate::domain::Reason;
use crate::domain::Timestamp;

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub received_at: Timestamp,
    pub topic: String,
    pub payload: bytes::Bytes,
    pub reason: Reason,
    pub detail: String,
}

const INSERT: &str = "\
INSERT INTO dead_letters (received_at, topic, payload, reason, detail)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[])";

pub async fn insert(
    client: &impl GenericClient,
    letters: &[DeadLetter],
) -> Result<u64, StoreError> {
    if letters.is_empty() {
        return Ok(0);
    }
    let received: Vec<DateTime<Utc>> = letters
        .iter()
        .map(|d| d.received_at.to_datetime())
        .collect();
    let topics: Vec<&str> = letters.iter().map(|d| d.topic.as_str()).collect();
    let payloads: Vec<&[u8]> = letters.iter().map(|d| &d.payload[..]).collect();
    let reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    let details: Vec<&str> = letters.iter().map(|d| d.detail.as_str()).collect();
    Ok(client
        .execute(INSERT, &[&received, &topics, &payloads, &reasons, &details])
        .await?)
}
