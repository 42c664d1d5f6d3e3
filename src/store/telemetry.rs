//! Writes one batch in one transaction: telemetry rows, latest positions, dead letters.
//!
//! Fast path: a plain binary COPY into the partitioned parent. Redelivery is normal (the
//! broker resends whatever was unacked when we crashed or reconnected), so if the COPY hits
//! the `(vehicle_id, ts)` key we redo the batch through a staging table with
//! `ON CONFLICT DO NOTHING`: exactly-once effect over at-least-once delivery.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use futures_util::{pin_mut, SinkExt};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::copy::COLUMNS;
use super::dead_letters::{self, DeadLetter};
use super::geofence_state::{self, Judging, Prior};
use super::positions::{self, Latest};
use super::prepared::{Prepared, Session};
use super::rollups;
use super::StoreError;
use crate::domain::geofence::judge::Fix;

/// A batch turned into what the database needs, built once and retried as is.
#[derive(Default)]
pub struct PreparedBatch {
    /// A finished binary COPY stream, or `None` when the batch holds no storable point.
    pub copy: Option<Bytes>,
    pub rows: u64,
    pub latest: Latest,
    /// `latest`, as NOTIFY payloads for the live index (watched vehicles only).
    pub notices: Vec<String>,
    pub dead_letters: Vec<DeadLetter>,
    /// UTC days (since the epoch) the rows fall in: their partitions must exist first.
    pub days: BTreeSet<i64>,
    /// (vehicle, hour) of rows whose hour may have closed for the rollup job: the transaction
    /// marks those it finds closed by the database's clock (`rollups::mark_late`).
    pub maybe_late: BTreeSet<(uuid::Uuid, chrono::DateTime<chrono::Utc>)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub stored: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Geofence events the batch raised.
    pub events: u64,
}

#[derive(Clone, Copy)]
enum Path {
    Copy,
    Staging,
}

/// Writes the batch; with `judging`, also judges its points against the geofences (see
/// `geofence_state`) in the same transaction, before the latest positions move.
pub async fn write(
    session: &mut Session,
    batch: &PreparedBatch,
    judging: Option<Judging<'_>>,
) -> Result<Written, StoreError> {
    match attempt(session, batch, Path::Copy, judging).await {
        Err(e) if e.is_unique_violation() => {
            tracing::debug!("batch overlaps stored rows, retrying through staging");
            attempt(session, batch, Path::Staging, judging).await
        }
        other => other,
    }
}

async fn attempt(
    session: &mut Session,
    batch: &PreparedBatch,
    path: Path,
    judging: Option<Judging<'_>>,
) -> Result<Written, StoreError> {
    let Session { client, prepared } = session;
    let prepared = &*prepared;
    let tx = client.transaction().await?;
    let stored = match (&batch.copy, path) {
        (None, _) => 0,
        (Some(data), Path::Copy) => {
            let sql = format!("COPY vehicle_telemetry ({COLUMNS}) FROM STDIN (FORMAT binary)");
            copy_in(&tx, &sql, data.clone()).await?
        }
        (Some(data), Path::Staging) => {
            // A temp table per connection, emptied at commit; created lazily since this path is rare.
            tx.batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging \
                 (LIKE vehicle_telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
            )
            .await?;
            let sql = format!("COPY telemetry_staging ({COLUMNS}) FROM STDIN (FORMAT binary)");
            copy_in(&tx, &sql, data.clone()).await?;
            let sql = format!(
                "INSERT INTO vehicle_telemetry ({COLUMNS}) SELECT {COLUMNS} FROM telemetry_staging \
                 ON CONFLICT (vehicle_id, ts) DO NOTHING"
            );
            tx.execute(sql.as_str(), &[]).await?
        }
    };
    let (events, remember) = match judging {
        None => {
            positions::upsert(&tx, prepared, &batch.latest, &batch.notices, false).await?;
            (0, Vec::new())
        }
        Some(judging) => {
            let prior = prior(&tx, prepared, batch, judging).await?;
            let decided = (judging.judge)(&prior);
            let events = geofence_state::write(&tx, prepared, &decided).await?;
            let at = |v| batch.latest.fix(v);
            (events, geofence_state::after(prior, decided, at))
        }
    };
    if !batch.maybe_late.is_empty() {
        let pairs: Vec<_> = batch.maybe_late.iter().copied().collect();
        rollups::mark_late(&tx, &pairs).await?;
    }
    let dead = dead_letters::insert(&tx, &batch.dead_letters).await?;
    tx.commit().await?;
    if let Some(judging) = judging {
        judging.known.remember(remember);
    }
    Ok(Written {
        stored,
        duplicates: batch.rows - stored,
        dead_letters: dead,
        events,
    })
}

/// What judging starts from: the moved vehicles' previous points, and their states — from the
/// node's memory where the row still held the point remembered, otherwise read. One round
/// trip: the upsert locks the vehicles' rows and says where each was, the states of vehicles
/// not remembered are read behind it; a second only for remembered vehicles another node (or
/// a lost commit) moved since.
async fn prior(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    batch: &PreparedBatch,
    judging: Judging<'_>,
) -> Result<Prior, StoreError> {
    let vehicles = batch.latest.vehicles();
    let (mut known, unknown) = judging.known.recall(&vehicles);
    let (moved, mut states) = futures_util::future::try_join(
        positions::upsert(tx, prepared, &batch.latest, &batch.notices, true),
        geofence_state::read(tx, prepared, &unknown),
    )
    .await?;
    let moved: HashMap<Uuid, Option<Fix>> = moved.into_iter().collect();
    let mut stale = Vec::new();
    for (v, prev) in &moved {
        match known.remove(v) {
            Some((at, held)) if Some(at) == *prev => {
                states.insert(*v, held);
            }
            Some(_) => stale.push(*v),
            None => {}
        }
    }
    if !stale.is_empty() {
        states.extend(geofence_state::read(tx, prepared, &stale).await?);
    }
    states.retain(|_, held| !held.is_empty());
    Ok(Prior { moved, states })
}

async fn copy_in(tx: &Transaction<'_>, sql: &str, data: Bytes) -> Result<u64, StoreError> {
    let sink = tx.copy_in::<_, Bytes>(sql).await?;
    pin_mut!(sink);
    sink.send(data).await?;
    Ok(sink.finish().await?)
}
