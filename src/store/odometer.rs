//! A vehicle's distance per UTC day, from the rollups: a closed day's daily row, or for a day
//! still open the sum of its closed hours.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct OdometerDay {
    pub day: DateTime<Utc>,
    pub distance_m: f64,
    pub points: i64,
    /// The whole day is rolled up (a daily row); otherwise only its closed hours count so far.
    pub closed: bool,
}

/// Days with points in `[from, to)` (whole UTC days), oldest first.
pub async fn days(
    c: &impl GenericClient,
    vehicle: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<OdometerDay>, StoreError> {
    let rows = c
        .query(
            "SELECT bucket, distance_m, points::bigint, true FROM telemetry_daily
             WHERE vehicle_id = $1 AND bucket >= $2 AND bucket < $3
             UNION ALL
             SELECT date_trunc('day', h.bucket, 'UTC') AS day, sum(h.distance_m), sum(h.points)::bigint, false
             FROM telemetry_hourly h
             WHERE h.vehicle_id = $1 AND h.bucket >= $2 AND h.bucket < $3
               AND NOT EXISTS (SELECT 1 FROM telemetry_daily d WHERE d.vehicle_id = $1
                               AND d.bucket = date_trunc('day', h.bucket, 'UTC'))
             GROUP BY 1
             ORDER BY 1",
            &[&vehicle, &from, &to],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| OdometerDay {
            day: r.get(0),
            distance_m: r.get(1),
            points: r.get(2),
            closed: r.get(3),
        })
        .collect())
}
