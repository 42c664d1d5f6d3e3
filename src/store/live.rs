//! What the live index reads and hears: the `driver_availability` view (whole at start, after
//! a lost connection and on admin changes; for named drivers and vehicles otherwise) and the
//! positions of the vehicles it names, and a LISTEN connection on which every node hears
//! committed positions (`meridian_positions`, sent by the ingest writer inside its
//! transaction), availability changes (which drivers and vehicles, or "everything") and
//! API-key changes (triggers).

use std::collections::HashSet;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, Client, Config, GenericClient, NoTls, Statement};
use uuid::Uuid;

use super::StoreError;

pub const POSITIONS_CHANNEL: &str = "meridian_positions";
pub const AVAILABILITY_CHANNEL: &str = "meridian_availability";
pub const API_KEYS_CHANNEL: &str = "meridian_api_keys";

/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; stay clear of it.
const MAX_PAYLOAD: usize = 7_900;

/// The vehicles whose positions the index needs: those with a not-yet-ended shift of an
/// available driver. Ingest writers announce only these vehicles' positions
/// (`Latest::notices`) (NOTIFY is not free:
/// announcing every position cost ~10 % of 1-point/message ingest), and a vehicle that joins the
/// set has its position re-read from the table by the reload that added it.
#[derive(Clone, Default)]
pub struct Watched(Arc<RwLock<Arc<HashSet<Uuid>>>>, Arc<AtomicBool>);

impl Watched {
    /// Whether every position is to be announced: some node streams positions to a client
    /// (`store::stream`'s leases), and it must hear the positions every node commits.
    pub fn everything(&self) -> bool {
        self.1.load(Ordering::Acquire)
    }

    pub fn set_everything(&self, on: bool) {
        self.1.store(on, Ordering::Release);
    }

    pub fn get(&self) -> Arc<HashSet<Uuid>> {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaced whole by the live feed after each full availability reload.
    pub fn set(&self, vehicles: HashSet<Uuid>) {
        match self.0.write() {
            Ok(mut s) => *s = Arc::new(vehicles),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(vehicles),
        }
    }

    /// Grown by a per-driver update that brought in new vehicles (it never shrinks the set:
    /// a vehicle announced for nothing costs one line of a payload; re-reading its position
    /// when its driver comes back costs a query).
    pub fn add(&self, vehicles: &[Uuid]) {
        let mut guard = match self.0.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::make_mut(&mut guard).extend(vehicles.iter().copied());
    }
}

/// What a `meridian_availability` notification asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum AvailabilityChange {
    /// `drivers <uuid> ...` (the dispatches trigger): these drivers' shifts.
    Drivers(Vec<Uuid>),
    /// `vehicles <uuid> ...` (dispatches and maintenance triggers): the shifts on these vehicles.
    Vehicles(Vec<Uuid>),
    /// A bare table name (drivers, shifts, vehicles; any TRUNCATE): reload everything.
    Everything,
}

impl AvailabilityChange {
    /// A payload this code does not know (or an id it cannot read) asks for a full reload:
    /// safe, only slower.
    pub fn decode(payload: &str) -> Self {
        let Some((kind, ids)) = payload.split_once(' ') else {
            return Self::Everything;
        };
        let ids: Option<Vec<Uuid>> = ids.split(' ').map(|id| Uuid::try_parse(id).ok()).collect();
        match (kind, ids) {
            ("drivers", Some(ids)) => Self::Drivers(ids),
            ("vehicles", Some(ids)) => Self::Vehicles(ids),
            _ => Self::Everything,
        }
    }
}

/// A vehicle's latest fix, as the live index holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lat: f64,
    pub lon: f64,
    /// Unix microseconds, the device's time of the point.
    pub ts_us: i64,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionRow {
    pub vehicle_id: Uuid,
    pub fix: Fix,
}

/// Positions as NOTIFY payloads: one line per position, `<uuid hex> <lat> <lon> <ts µs>
/// <speed|-> <heading|->`. Floats print their shortest exact form, so they read back equal.
pub fn encode_positions(rows: impl Iterator<Item = PositionRow>) -> Vec<String> {
    use std::fmt::Write;
    let mut payloads = Vec::new();
    let mut current = String::with_capacity(MAX_PAYLOAD + 128);
    let mut line = String::with_capacity(128);
    for r in rows {
        line.clear();
        let f = r.fix;
        let _ = write!(
            line,
            "{} {} {} {} ",
            r.vehicle_id.simple(),
            f.lat,
            f.lon,
            f.ts_us
        );
        for v in [f.speed_kmh, f.heading_deg] {
            let _ = match v {
                Some(v) => write!(line, "{v} "),
                None => write!(line, "- "),
            };
        }
        line.pop();
        line.push('\n');
        if current.len() + line.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// Reads a payload back; a malformed line (never written by this code) is skipped.
pub fn decode_positions(payload: &str) -> impl Iterator<Item = PositionRow> + '_ {
    let opt = |s: &str| match s {
        "-" => Some(None),
        v => v.parse().ok().map(Some),
    };
    payload.lines().filter_map(move |line| {
        let mut f = line.split(' ');
        let row = PositionRow {
            vehicle_id: Uuid::try_parse(f.next()?).ok()?,
            fix: Fix {
                lat: f.next()?.parse().ok()?,
                lon: f.next()?.parse().ok()?,
                ts_us: f.next()?.parse().ok()?,
                speed_kmh: opt(f.next()?)?,
                heading_deg: opt(f.next()?)?,
            },
        };
        Some(row)
    })
}

const POSITION_COLUMNS: &str =
    "SELECT vehicle_id, ST_Y(location), ST_X(location), ts, speed_kmh, heading_deg FROM vehicle_positions";

/// The feed's per-driver statements, prepared once per connection. Planning the
/// `driver_availability` join takes about 3 ms, longer than running it for a few drivers, and a
/// per-driver refresh runs on every node for every dispatch: unprepared, the planner was the
/// largest cost of a dispatch.
pub struct Prepared {
    shifts_of: Statement,
    positions_of: Statement,
}

impl Prepared {
    pub async fn new(client: &Client) -> Result<Self, StoreError> {
        let shifts_of =
            format!("{AVAILABILITY_COLUMNS} WHERE driver_id = ANY($1) OR vehicle_id = ANY($2)");
        let positions_of = format!("{POSITION_COLUMNS} WHERE vehicle_id = ANY($1)");
        Ok(Self {
            shifts_of: client.prepare(&shifts_of).await?,
            positions_of: client.prepare(&positions_of).await?,
        })
    }

    /// These vehicles' latest positions (by primary key).
    pub async fn positions_of(
        &self,
        client: &Client,
        ids: &[Uuid],
    ) -> Result<Vec<PositionRow>, StoreError> {
        Ok(position_rows(
            client.query(&self.positions_of, &[&ids]).await?,
        ))
    }

    /// The available shifts of these drivers, or on these vehicles: what replaces everything
    /// the index holds for them.
    pub async fn available_shifts_of(
        &self,
        client: &Client,
        drivers: &[Uuid],
        vehicles: &[Uuid],
    ) -> Result<Vec<AvailableShift>, StoreError> {
        let rows = client
            .query(&self.shifts_of, &[&drivers, &vehicles])
            .await?;
        Ok(shift_rows(rows))
    }
}

fn position_rows(rows: Vec<tokio_postgres::Row>) -> Vec<PositionRow> {
    rows.iter()
        .map(|r| PositionRow {
            vehicle_id: r.get(0),
            fix: Fix {
                lat: r.get(1),
                lon: r.get(2),
                ts_us: r.get::<_, DateTime<Utc>>(3).timestamp_micros(),
                speed_kmh: r.get(4),
                heading_deg: r.get(5),
            },
        })
        .collect()
}

pub struct AvailableShift {
    pub shift_id: Uuid,
    pub driver_id: Uuid,
    pub vehicle_id: Uuid,
    pub external_id: String,
    pub vehicle_type: Option<String>,
    pub starts: DateTime<Utc>,
    /// `None`: open-ended.
    pub ends: Option<DateTime<Utc>>,
}

const AVAILABILITY_COLUMNS: &str = "SELECT shift_id, driver_id, vehicle_id, external_id, \
     vehicle_type, lower(during), upper(during) FROM driver_availability";

/// Every not-yet-ended shift of an available driver on an active vehicle.
pub async fn available_shifts(
    client: &impl GenericClient,
) -> Result<Vec<AvailableShift>, StoreError> {
    Ok(shift_rows(client.query(AVAILABILITY_COLUMNS, &[]).await?))
}

fn shift_rows(rows: Vec<tokio_postgres::Row>) -> Vec<AvailableShift> {
    rows.iter()
        .map(|r| AvailableShift {
            shift_id: r.get(0),
            driver_id: r.get(1),
            vehicle_id: r.get(2),
            external_id: r.get(3),
            vehicle_type: r.get(4),
            starts: r.get(5),
            ends: r.get(6),
        })
        .collect()
}

/// A connection listening on all three channels. `on_notify(channel, payload)` runs for each
/// notification, in commit order; the returned future ends when the connection does (the caller
/// then reconnects and, since notifications sent meanwhile are lost, reloads everything). The
/// client answers heartbeats: once a query on it returns, every notification committed before
/// the query ran has been handed to `on_notify`.
pub async fn listen(
    url: &str,
    channels: &[&str],
    on_notify: impl Fn(&str, &str) + Send + 'static,
) -> Result<(Client, impl Future<Output = ()>), StoreError> {
    let config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    let (client, mut connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        let mut messages =
            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => on_notify(n.channel(), n.payload()),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listen connection lost");
                    break;
                }
            }
        }
    });
    let listens: Vec<String> = channels.iter().map(|c| format!("LISTEN {c};")).collect();
    client.batch_execute(&listens.concat()).await?;
    let closed = async move {
        let _ = driver.await;
    };
    Ok((client, closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_the_payload_exactly_and_payloads_stay_under_the_limit() {
        let rows: Vec<PositionRow> = (0..500u128)
            .map(|i| PositionRow {
                vehicle_id: Uuid::from_u128(i * 0x1234_5678_9abc_def1),
                fix: Fix {
                    lat: -17.8 + i as f64 * 1e-7,
                    lon: if i % 2 == 0 { 179.999_999_9 } else { -180.0 },
                    ts_us: 1_800_000_000_123_456 + i as i64,
                    speed_kmh: (i % 3 != 0).then_some(31.25),
                    heading_deg: (i % 5 != 0).then_some(0.1 + 0.2),
                },
            })
            .collect();
        let payloads = encode_positions(rows.iter().copied());
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() < 8000));
        let back: Vec<PositionRow> = payloads.iter().flat_map(|p| decode_positions(p)).collect();
        assert_eq!(back, rows);
        assert_eq!(decode_positions("garbage\n").count(), 0);
    }

    #[test]
    fn availability_payloads_name_drivers_or_vehicles_and_anything_else_reloads() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            AvailabilityChange::decode(&format!("drivers {a} {b}")),
            AvailabilityChange::Drivers(vec![a, b])
        );
        assert_eq!(
            AvailabilityChange::decode(&format!("vehicles {b}")),
            AvailabilityChange::Vehicles(vec![b])
        );
        for full in [
            "drivers",
            "shifts",
            "dispatches",
            "drivers x",
            "jobs {a}",
            "",
        ] {
            assert_eq!(
                AvailabilityChange::decode(full),
                AvailabilityChange::Everything,
                "{full}"
            );
        }
    }
}
