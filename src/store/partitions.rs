//! Daily partitions of `vehicle_telemetry`: created ahead of time by maintenance, on demand
//! by writers for late points, and dropped once a whole day is past raw retention.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{Duration, NaiveDate};
use tokio_postgres::Client;

use super::StoreError;

const PARENT: &str = "vehicle_telemetry";
/// Serialises creation of one day's partition across writers and nodes.
const PARTITION_LOCK_CLASS: i32 = 0x6d72; // "mr"
/// Key of the sealing lock in that class (creation keys are days since the epoch, never this).
const SEAL_LOCK_KEY: i32 = i32::MIN;

/// Days (since the Unix epoch) whose partition is known to exist, so the hot path asks
/// the database only when a batch touches a day it has not seen before.
#[derive(Default)]
pub struct Partitions {
    known: Mutex<HashSet<i64>>,
}

impl Partitions {
    pub async fn ensure(
        &self,
        client: &mut Client,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.known.lock().expect("partition cache poisoned");
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        for day in missing {
            create(client, day).await?;
            self.known
                .lock()
                .expect("partition cache poisoned")
                .insert(day);
        }
        Ok(())
    }

    /// Drops partitions whose whole day is older than `oldest_day` and wholly rolled up (every
    /// hour closed, no late mark waiting: raw points are never dropped before they are in the
    /// hourly and daily rows); returns their names.
    pub async fn drop_before(
        &self,
        client: &mut Client,
        oldest_day: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut dropped = Vec::new();
        for Day { name, day, pending } in days(&*client).await? {
            if day >= oldest_day {
                continue;
            }
            if !super::rollups::day_is_rolled_up(&*client, midnight(day)).await? {
                tracing::warn!(partition = %name, "past raw retention but not rolled up yet; kept");
                continue;
            }
            // Never stall ingest. Dropping a partition outright takes ACCESS EXCLUSIVE on the
            // parent: it would wait behind any reader (a rollup, an analyst's query) and every
            // writer's COPY would queue behind it. Detaching CONCURRENTLY takes SHARE UPDATE
            // EXCLUSIVE, which COPY and readers pass; it waits (only this task waits) until no
            // snapshot can see the partition. Then the detached table is dropped, alone. A detach
            // interrupted halfway is left pending and finished here next time.
            let detach = if pending { "FINALIZE" } else { "CONCURRENTLY" };
            client
                .batch_execute(&format!(
                    "ALTER TABLE {PARENT} DETACH PARTITION {name} {detach}"
                ))
                .await?;
            client
                .batch_execute(&format!(
                    "SET lock_timeout = '5s'; DROP TABLE IF EXISTS {name}; RESET lock_timeout"
                ))
                .await?;
            self.known
                .lock()
                .expect("partition cache poisoned")
                .remove(&day);
            dropped.push(name);
        }
        Ok(dropped)
    }
}

/// Read-optimises the partitions of days before `before_day` (the past no longer takes
/// current points): a covering index `(vehicle_id, ts) INCLUDE (location, speed_kmh,
/// fuel_pct)` built CONCURRENTLY (writers of late points are not blocked), then a VACUUM so the
/// visibility map lets a track read that index alone. A vehicle's day is then ~100 index pages
/// instead of one heap page per point (rows arrive in time order, so one vehicle's points lie
/// on as many heap pages as it has points): a 24 h track at 1 minute went from 8,700 page reads
/// to about a hundred. The day being written keeps only its lean unique key, so ingest pays
/// nothing. Returns the partitions sealed.
pub async fn seal_before(client: &Client, before_day: i64) -> Result<Vec<String>, StoreError> {
    // One node seals at a time: another node's build in progress looks like an invalid index,
    // which would otherwise be dropped and built again. The others skip this round.
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&PARTITION_LOCK_CLASS, &SEAL_LOCK_KEY],
        )
        .await?
        .get(0);
    if !got {
        return Ok(Vec::new());
    }
    let sealed = seal_each(client, before_day).await;
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&PARTITION_LOCK_CLASS, &SEAL_LOCK_KEY],
        )
        .await?;
    sealed
}

async fn seal_each(client: &Client, before_day: i64) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT c.relname, x.indisvalid FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             LEFT JOIN pg_class t ON t.relname = c.relname || '_track'
             LEFT JOIN pg_index x ON x.indexrelid = t.oid
             WHERE i.inhparent = $1::text::regclass AND NOT i.inhdetachpending
               AND x.indisvalid IS DISTINCT FROM true
             ORDER BY 1",
            &[&PARENT],
        )
        .await?;
    let mut sealed = Vec::new();
    for row in rows {
        let (name, valid): (String, Option<bool>) = (row.get(0), row.get(1));
        if day_of(&name).is_none_or(|day| day >= before_day) {
            continue;
        }
        if valid == Some(false) {
            // A build interrupted halfway leaves an invalid index behind: start again.
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}_track"))
                .await?;
        }
        client
            .batch_execute(&format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name}_track ON {name} \
                 (vehicle_id, ts) INCLUDE (location, speed_kmh, fuel_pct)"
            ))
            .await?;
        client
            .batch_execute(&format!("VACUUM (ANALYZE) {name}"))
            .await?;
        sealed.push(name);
    }
    Ok(sealed)
}

/// Midnight (UTC) of the oldest day that has a partition, if any.
pub async fn oldest_day(
    c: &impl tokio_postgres::GenericClient,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    Ok(days(c).await?.iter().map(|d| d.day).min().map(midnight))
}

/// A day's partition, as `pg_inherits` lists it.
struct Day {
    name: String,
    day: i64,
    /// A `DETACH … CONCURRENTLY` was interrupted: the partition awaits `FINALIZE`.
    pending: bool,
}

/// Every day partition of the parent, oldest first (other children are ignored).
async fn days(c: &impl tokio_postgres::GenericClient) -> Result<Vec<Day>, StoreError> {
    let rows = c
        .query(
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&PARENT],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let day = day_of(&name)?;
            Some(Day {
                name,
                day,
                pending: r.get(1),
            })
        })
        .collect())
}

fn midnight(day: i64) -> chrono::DateTime<chrono::Utc> {
    date_of(day).and_time(chrono::NaiveTime::MIN).and_utc()
}

pub fn name_of(day: i64) -> String {
    format!("{PARENT}_p{}", date_of(day).format("%Y%m%d"))
}

fn date_of(day: i64) -> NaiveDate {
    NaiveDate::default() + Duration::days(day)
}

fn day_of(name: &str) -> Option<i64> {
    let digits = name.strip_prefix(PARENT)?.strip_prefix("_p")?;
    let date = NaiveDate::parse_from_str(digits, "%Y%m%d").ok()?;
    Some((date - NaiveDate::default()).num_days())
}

async fn create(client: &mut Client, day: i64) -> Result<(), StoreError> {
    let (from, to) = (date_of(day), date_of(day + 1));
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&PARTITION_LOCK_CLASS, &(day as i32)],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {PARENT} \
         FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')",
        name_of(day)
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_days() {
        let day =
            (NaiveDate::from_ymd_opt(2026, 11, 21).unwrap() - NaiveDate::default()).num_days();
        assert_eq!(name_of(day), "vehicle_telemetry_p20261121");
        assert_eq!(day_of(&name_of(day)), Some(day));
        assert_eq!(day_of("vehicle_telemetry_staging"), None);
        assert_eq!(day_of("vehicles_p20261121"), None);
    }
}
