//! Reading rollup rows for a fleet export as a stream: one statement, rows decoded as they
//! arrive, never collected. The stream owns the pooled connection for its whole life, and a
//! stream dropped before its end (the HTTP client went away) cancels its query on the server
//! before the connection goes back to the pool.
//!
//! Order is `(bucket, vehicle_id)`: the range predicate is on `bucket`, and the `bucket` index
//! returns rows in that order, so PostgreSQL only sorts each bucket's rows by vehicle (an
//! Incremental Sort over one fleet-hour at a time) and the first row leaves at once. The other
//! order, `(vehicle_id, bucket)`, is the primary key's, but over a time range it walks the
//! whole key (every vehicle, every hour ever) or sorts the whole range before the first row;
//! tests/integration/history_export checks the plan.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures_util::Stream;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, RowStream};
use uuid::Uuid;

use super::StoreError;
use crate::domain::export::{ExportRange, VehicleIds};

/// How long a cancelled export may take to end on the server before its connection is closed
/// instead of returned to the pool.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// One rollup row as exported: the columns and their order are the export's wire contract.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub vehicle_id: Uuid,
    pub bucket: DateTime<Utc>,
    pub points: i32,
    pub avg_speed_kmh: Option<f64>,
    pub max_speed_kmh: Option<f64>,
    pub avg_fuel_pct: Option<f64>,
    pub min_fuel_pct: Option<f64>,
    pub distance_m: f64,
    pub first_ts: DateTime<Utc>,
    pub last_ts: DateTime<Utc>,
    pub first_lon: f64,
    pub first_lat: f64,
    pub last_lon: f64,
    pub last_lat: f64,
}

/// The exported columns, in order.
pub const COLUMNS: [&str; 14] = [
    "vehicle_id",
    "bucket",
    "points",
    "avg_speed_kmh",
    "max_speed_kmh",
    "avg_fuel_pct",
    "min_fuel_pct",
    "distance_m",
    "first_ts",
    "last_ts",
    "first_lon",
    "first_lat",
    "last_lon",
    "last_lat",
];

fn rollup_row(r: &Row) -> Result<RollupRow, tokio_postgres::Error> {
    Ok(RollupRow {
        vehicle_id: r.try_get(0)?,
        bucket: r.try_get(1)?,
        points: r.try_get(2)?,
        avg_speed_kmh: r.try_get(3)?,
        max_speed_kmh: r.try_get(4)?,
        avg_fuel_pct: r.try_get(5)?,
        min_fuel_pct: r.try_get(6)?,
        distance_m: r.try_get(7)?,
        first_ts: r.try_get(8)?,
        last_ts: r.try_get(9)?,
        first_lon: r.try_get(10)?,
        first_lat: r.try_get(11)?,
        last_lon: r.try_get(12)?,
        last_lat: r.try_get(13)?,
    })
}

/// The export's statement: `$1`/`$2` the widened range, `$3` the vehicle ids when filtered.
/// Sent unnamed (never cached), so each export is planned with its own range: a generic plan
/// could not tell a week from a year.
pub fn statement(range: &ExportRange, filtered: bool) -> String {
    format!(
        "SELECT {} FROM {} WHERE bucket >= $1 AND bucket < $2{} ORDER BY bucket, vehicle_id",
        COLUMNS.join(", "),
        range.rollup.table(),
        if filtered {
            " AND vehicle_id = ANY($3)"
        } else {
            ""
        }
    )
}

/// The ids in `ids` that are no vehicle. Vehicles are retired, never deleted, so such an id is
/// a mistake (a driver's id, a typo), not a vehicle whose history outlived it.
pub async fn unknown_vehicles(client: &Object, ids: &VehicleIds) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "SELECT id FROM unnest($1::uuid[]) id \
             WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.id = id.id) ORDER BY id",
            &[&ids.as_slice()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How an abandoned export's statement ended after its cancel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The cancel landed (`57014 query_canceled`).
    QueryCanceled,
    /// The statement had completed before the cancel arrived.
    Completed,
    /// It ended with another error.
    Error,
    /// The cancel could not be sent or the statement did not end in time: the connection
    /// was closed instead of returned to the pool.
    ConnectionClosed,
}

/// Starts the export's query on `client` and returns its rows as a stream that owns `client`.
/// Errors in starting it (planning, binding) are returned here, before any row. `on_cancel`
/// hears how a cancelled statement ended (metrics live above this layer).
pub async fn rows(
    client: Object,
    range: &ExportRange,
    vehicles: Option<&VehicleIds>,
    on_cancel: fn(Cancelled),
) -> Result<RollupStream, StoreError> {
    let sql = statement(range, vehicles.is_some());
    let ids = vehicles.map(VehicleIds::as_slice);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&range.from, &range.to];
    if let Some(ids) = &ids {
        params.push(ids);
    }
    let rows = client.query_raw(sql.as_str(), params).await?;
    Ok(RollupStream {
        rows: Some(Box::pin(rows)),
        client: Some(client),
        finished: false,
        on_cancel,
    })
}

/// Rollup rows in export order. Dropping it before it ended cancels the query (see `Drop`).
pub struct RollupStream {
    rows: Option<Pin<Box<RowStream>>>,
    client: Option<Object>,
    /// The server ended the statement (last row or an error): nothing left to cancel.
    finished: bool,
    on_cancel: fn(Cancelled),
}

impl Stream for RollupStream {
    type Item = Result<RollupRow, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(rows) = self.rows.as_mut() else {
            return Poll::Ready(None);
        };
        let next = match rows.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(next) => next,
        };
        match next {
            Some(Ok(row)) => Poll::Ready(Some(rollup_row(&row).map_err(StoreError::from))),
            Some(Err(e)) => {
                self.finished = true;
                Poll::Ready(Some(Err(e.into())))
            }
            None => {
                self.finished = true;
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for RollupStream {
    /// A stream dropped before the server ended its statement: the client disconnected. Left
    /// alone, PostgreSQL would run the export to its end, into a connection that discards every
    /// row, and the pool would hand that busy connection to the next request. So a task sends
    /// a cancel request (a separate connection, to this backend's pid), reads until the server
    /// reports the statement over, and only then lets the connection return to the pool — a
    /// late cancel can then never hit another request's statement on it.
    fn drop(&mut self) {
        let (Some(rows), Some(client)) = (self.rows.take(), self.client.take()) else {
            return;
        };
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (the process is ending): close the connection, which ends the query.
            drop(Object::take(client));
            return;
        };
        runtime.spawn(cancel(client, rows, self.on_cancel));
    }
}

async fn cancel(client: Object, mut rows: Pin<Box<RowStream>>, on_cancel: fn(Cancelled)) {
    use futures_util::StreamExt;
    let token = client.cancel_token();
    let sent = token.cancel_query(NoTls).await;
    let ended = tokio::time::timeout(CANCEL_GRACE, async {
        while let Some(next) = rows.next().await {
            if let Err(e) = next {
                return match e.code() {
                    Some(c) if *c == SqlState::QUERY_CANCELED => Cancelled::QueryCanceled,
                    _ => Cancelled::Error,
                };
            }
        }
        Cancelled::Completed
    })
    .await;
    match (&sent, ended) {
        (Ok(()), Ok(how)) => on_cancel(how),
        (_, result) => {
            tracing::warn!(cancel = ?sent.err(), timed_out = result.is_err(),
                "an abandoned export did not end cleanly; closing its connection");
            drop(Object::take(client));
            on_cancel(Cancelled::ConnectionClosed);
        }
    }
}
