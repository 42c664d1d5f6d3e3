//! `GET /v1/stream`: Server-Sent Events of geofence events (`event: geofence`, resumable with
//! `Last-Event-ID`) and, on request, of positions (`event: position`, throttled per vehicle),
//! filtered by a box, a fence or a vehicle. The base of the dispatcher console.
//!
//! Each client gets a task that feeds its response through a small bounded channel: a client
//! that stops reading stops its task (the send fails), and holds nothing of the node's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::Query;
use super::positions::decimal;
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::geofence::event::GeofenceEvent;
use crate::domain::geofence::LonLatBox;
use crate::domain::{LatLon, Role};
use crate::live::PositionRow;
use crate::store::prepared::Prepared;
use crate::store::stream::{self as source, Cursor};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Messages queued for one client before its task waits for it to read.
const CLIENT_QUEUE: usize = 256;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Geofence events (default true).
    #[param(example = true)]
    events: Option<bool>,
    /// Vehicle positions as they are committed (default false).
    #[param(example = false)]
    positions: Option<bool>,
    /// `west,south,east,north` in decimal degrees: only events and positions inside it.
    #[param(example = "10.6,59.85,10.9,59.97")]
    bbox: Option<String>,
    /// Only this fence's events, and positions inside it.
    #[param(example = json!(example::GEOFENCE_ID))]
    fence_id: Option<Uuid>,
    /// Only this vehicle.
    #[param(example = json!(example::VEHICLE_ID))]
    vehicle_id: Option<Uuid>,
    /// At most one position per vehicle per this many milliseconds (default 1000, 0–3600000).
    #[param(minimum = 0, maximum = 3_600_000, example = 1000)]
    min_interval_ms: Option<u32>,
}

/// What a client asked to see.
struct Filter {
    events: bool,
    positions: bool,
    bbox: Option<LonLatBox>,
    fence_id: Option<Uuid>,
    vehicle_id: Option<Uuid>,
    min_interval_us: i64,
}

/// A live stream of geofence events and, optionally, positions (`text/event-stream`).
///
/// Geofence events come as `event: geofence` with the event object as `data` and an `id` to
/// resume from: reconnect with `Last-Event-ID: <that id>` and the stream continues with the
/// next event, none skipped or repeated, however long the client was away (events are kept).
/// Positions come as `event: position` with `{"vehicle_id","lat","lon","ts","speed_kmh",
/// "heading_deg"}`, at most one per vehicle per `min_interval_ms`; they are not resumable.
/// A comment line every 15 s keeps idle connections open.
#[utoipa::path(get, path = "/v1/stream", operation_id = "stream", tag = "geofences", security(("bearer" = [])),
    params(StreamParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this geofence event (an `id` the stream sent)", example = "7891-42")),
    responses((status = 200, description = "Server-Sent Events", content_type = "text/event-stream"),
              (status = 400, description = "A malformed `bbox` or `Last-Event-ID`", body = ErrorBody),
              (status = 422, description = "A box out of range or inverted, or nothing asked for", body = ErrorBody)))]
pub async fn stream(
    caller: Caller,
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamParams>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Role::READERS)?;
    let filter = Filter {
        events: q.events.unwrap_or(true),
        positions: q.positions.unwrap_or(false),
        bbox: q.bbox.as_deref().map(parse_bbox).transpose()?,
        fence_id: q.fence_id,
        vehicle_id: q.vehicle_id,
        min_interval_us: i64::from(q.min_interval_ms.unwrap_or(1000).min(3_600_000)) * 1000,
    };
    if !filter.events && !filter.positions {
        return Err(ApiError::Invalid(
            "nothing to stream: events and positions are both false".into(),
        ));
    }
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<Cursor>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an id this stream sent".into())
                })?,
        ),
    };
    // Subscribed before anything is read, so nothing falls between the read and the live feed.
    let events = s.hub.events();
    let positions = filter
        .positions
        .then(|| (s.live.positions(), s.hub.watching_positions()));
    let (tx, rx) = mpsc::channel::<Event>(CLIENT_QUEUE);
    tokio::spawn(feed(s, filter, resume, events, positions, tx));
    let body =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One client's task: replays from the resume point, then follows the node's feeds.
async fn feed(
    s: AppState,
    filter: Filter,
    resume: Option<Cursor>,
    mut events: broadcast::Receiver<crate::stream::Item>,
    positions: Option<(
        broadcast::Receiver<Arc<Vec<PositionRow>>>,
        crate::stream::PositionClient,
    )>,
    tx: mpsc::Sender<Event>,
) {
    let mut last = resume;
    if let Some(from) = resume {
        if replay(&s, &filter, from, &mut last, &tx).await.is_err() {
            return;
        }
    }
    let (mut positions, _lease) = match positions {
        Some((rx, lease)) => (Some(rx), Some(lease)),
        None => (None, None),
    };
    let mut sent_at: HashMap<Uuid, i64> = HashMap::new();
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            item = events.recv(), if filter.events => match item {
                Ok(item) => {
                    let (cursor, event) = &*item;
                    if last.is_some_and(|l| *cursor <= l) {
                        continue; // already sent by the replay
                    }
                    last = Some(*cursor);
                    if wanted(&s, &filter, event) && tx.send(geofence(cursor, event)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the node's feed: read the missed ones from the table.
                    let from = last.unwrap_or_default();
                    if replay(&s, &filter, from, &mut last, &tx).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            rows = recv_positions(&mut positions) => match rows {
                Some(rows) => {
                    for r in rows.iter() {
                        if let Some(e) = position(&s, &filter, r, &mut sent_at) {
                            if tx.send(e).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                None => positions = None,
            },
        }
    }
}

/// The next batch of positions; `None` when the feed is gone for good (a lag just skips).
async fn recv_positions(
    rx: &mut Option<broadcast::Receiver<Arc<Vec<PositionRow>>>>,
) -> Option<Arc<Vec<PositionRow>>> {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(rows) => return Some(rows),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// Sends every committed event after `from` the client wants, reading the table.
async fn replay(
    s: &AppState,
    filter: &Filter,
    from: Cursor,
    last: &mut Option<Cursor>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), ()> {
    let mut at = from;
    loop {
        let read = match s.pool.get().await {
            // A pooled connection: prepared for this read only (as a text query would be).
            Ok(c) => source::events_after(&**c, &Prepared::default(), at, crate::stream::READ)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "stream replay failed; closing the stream");
                return Err(());
            }
        };
        let n = read.len() as i64;
        for (cursor, event) in &read {
            at = *cursor;
            *last = Some(*cursor);
            if wanted(s, filter, event) {
                tx.send(geofence(cursor, event)).await.map_err(|_| ())?;
            }
        }
        if n < crate::stream::READ {
            return Ok(());
        }
    }
}

fn wanted(s: &AppState, f: &Filter, e: &GeofenceEvent) -> bool {
    let _ = s;
    f.fence_id.is_none_or(|id| id == e.fence_id)
        && f.vehicle_id.is_none_or(|id| id == e.vehicle_id)
        && f.bbox.is_none_or(|b| b.contains(e.lon, e.lat))
}

fn geofence(cursor: &Cursor, e: &GeofenceEvent) -> Event {
    Event::default()
        .event("geofence")
        .id(cursor.to_string())
        .data(e.to_json())
}

fn position(
    s: &AppState,
    f: &Filter,
    r: &PositionRow,
    sent_at: &mut HashMap<Uuid, i64>,
) -> Option<Event> {
    let p = r.fix;
    if f.vehicle_id.is_some_and(|id| id != r.vehicle_id)
        || f.bbox.is_some_and(|b| !b.contains(p.lon, p.lat))
    {
        return None;
    }
    if let Some(fence) = f.fence_id {
        let pos = LatLon::new(p.lat, p.lon).ok()?;
        if !s
            .fences
            .read()
            .get(fence)
            .is_some_and(|e| e.fence.contains(pos))
        {
            return None;
        }
    }
    if let Some(at) = sent_at.get(&r.vehicle_id) {
        if p.ts_us < at + f.min_interval_us {
            return None;
        }
    }
    sent_at.insert(r.vehicle_id, p.ts_us);
    let ts = chrono::DateTime::from_timestamp_micros(p.ts_us)?;
    let body = json!({"vehicle_id": r.vehicle_id, "lat": p.lat, "lon": p.lon, "ts": ts,
        "speed_kmh": p.speed_kmh, "heading_deg": p.heading_deg});
    Some(Event::default().event("position").data(body.to_string()))
}

/// `west,south,east,north`: not four decimal numbers is 400; out of range or inverted, 422.
fn parse_bbox(raw: &str) -> Result<LonLatBox, ApiError> {
    let malformed =
        || ApiError::BadRequest("bbox must be four numbers: west,south,east,north".into());
    let n: Vec<f64> = raw
        .split(',')
        .map(|v| decimal(v).ok_or_else(malformed))
        .collect::<Result<_, _>>()?;
    let [west, south, east, north] = n[..] else {
        return Err(malformed());
    };
    let in_range = [west, east].iter().all(|x| (-180.0..=180.0).contains(x))
        && [south, north].iter().all(|y| (-90.0..=90.0).contains(y));
    if !in_range || west > east || south > north {
        return Err(ApiError::Invalid(
            "bbox: west ≤ east within [-180, 180], south ≤ north within [-90, 90]".into(),
        ));
    }
    Ok(LonLatBox {
        west,
        south,
        east,
        north,
    })
}
