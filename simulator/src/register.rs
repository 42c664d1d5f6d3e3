//! Registers the simulated fleet in PostgreSQL's `vehicles` table, so its telemetry is not
//! dead-lettered as "unknown vehicle". Idempotent: existing external ids are left alone.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use meridian::domain::ExternalId;
use tokio_postgres::NoTls;

use crate::cli::{DatabaseArgs, FleetArgs};

/// One array parameter per statement: a round trip per 50k ids keeps 100k vehicles at about a
/// second, while the array (a few MB) stays far below any message size limit.
const CHUNK: usize = 50_000;

/// Set-based insert; `unnest` turns the id array into rows without a statement per vehicle.
const INSERT_VEHICLES: &str = "INSERT INTO vehicles (external_id, vehicle_type) \
     SELECT x, $2 FROM unnest($1::text[]) AS x ON CONFLICT (external_id) DO NOTHING";

#[derive(Debug, Clone, Copy)]
pub struct Registered {
    pub total: u64,
    pub inserted: u64,
    pub elapsed: Duration,
}

/// `{prefix}{index:06}`, validated by the same rule the server applies to topics.
pub fn external_id(prefix: &str, index: u32) -> Result<ExternalId> {
    let raw = format!("{prefix}{index:06}");
    ExternalId::parse(&raw)
        .with_context(|| format!("--id-prefix gives an invalid external id {raw:?}"))
}

pub async fn register(fleet: &FleetArgs, db: &DatabaseArgs) -> Result<Registered> {
    let started = Instant::now();
    let ids = (0..fleet.vehicles)
        .map(|i| external_id(&fleet.id_prefix, i).map(|id| id.as_str().to_owned()))
        .collect::<Result<Vec<_>>>()?;

    let (client, connection) = tokio_postgres::connect(&db.database_url, NoTls)
        .await
        .with_context(|| format!("connecting to {}", redact(&db.database_url)))?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    });

    let statement = client
        .prepare(INSERT_VEHICLES)
        .await
        .context("preparing the vehicles insert")?;
    let mut inserted = 0;
    for chunk in ids.chunks(CHUNK) {
        inserted += client
            .execute(&statement, &[&chunk, &db.vehicle_type])
            .await
            .context("inserting vehicles (is the database migrated?)")?;
    }
    drop(client);
    let _ = conn_task.await;
    Ok(Registered {
        total: ids.len() as u64,
        inserted,
        elapsed: started.elapsed(),
    })
}

/// Command `register`.
pub async fn run(fleet: FleetArgs, db: DatabaseArgs) -> Result<()> {
    let r = register(&fleet, &db).await?;
    println!(
        "registered {} vehicles ({} new) in {:.2}s",
        r.total,
        r.inserted,
        r.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Connection URLs may carry a password; error messages must not.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_zero_padded_and_validated() {
        assert_eq!(external_id("sim-", 42).unwrap().as_str(), "sim-000042");
        assert_eq!(
            external_id("t9-", 1_234_567).unwrap().as_str(),
            "t9-1234567"
        );
        assert!(
            external_id("bad prefix ", 0).is_err(),
            "whitespace is not allowed in ids"
        );
        assert!(
            external_id("a+", 0).is_err(),
            "MQTT wildcards are not allowed in ids"
        );
    }

    #[test]
    fn redacts_passwords_from_urls() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/m"),
            "postgres://…@db:5432/m"
        );
        assert_eq!(redact("postgres://db/m"), "postgres://db/m");
    }
}
