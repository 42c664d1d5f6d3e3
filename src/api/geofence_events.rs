//! Geofence events over HTTP: what the ingest path raised, filtered by fence, vehicle, type
//! and time, in id order. The same objects go out over MQTT, webhooks and the live stream.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::Query;
use super::page::Limit;
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::geofence::event::GeofenceEvent;
use crate::domain::Role;
use crate::store::geofence_events::{self, Filter};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Whether a vehicle entered a fence, left it, or has stayed in it for the fence's `dwell_s`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Enter,
    Exit,
    Dwell,
}

impl From<EventType> for crate::domain::geofence::event::EventKind {
    fn from(t: EventType) -> Self {
        use crate::domain::geofence::event::EventKind as K;
        match t {
            EventType::Enter => K::Enter,
            EventType::Exit => K::Exit,
            EventType::Dwell => K::Dwell,
        }
    }
}

/// A geofence event. `id` is its idempotency key: MQTT messages, webhook calls
/// (`Meridian-Event-Id`) and the live stream carry the same id for the same event.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    #[schema(example = 42)]
    id: i64,
    fence_id: Uuid,
    vehicle_id: Uuid,
    external_id: String,
    #[serde(rename = "type")]
    kind: EventType,
    /// The time of the point that decided it (the device's clock).
    ts: DateTime<Utc>,
    lon: f64,
    lat: f64,
    /// When Meridian committed it.
    recorded_at: DateTime<Utc>,
}

impl From<GeofenceEvent> for EventBody {
    fn from(e: GeofenceEvent) -> Self {
        use crate::domain::geofence::event::EventKind as K;
        Self {
            id: e.id,
            fence_id: e.fence_id,
            vehicle_id: e.vehicle_id,
            external_id: e.external_id,
            kind: match e.kind {
                K::Enter => EventType::Enter,
                K::Exit => EventType::Exit,
                K::Dwell => EventType::Dwell,
            },
            ts: e.ts,
            lon: e.lon,
            lat: e.lat,
            recorded_at: e.recorded_at,
        }
    }
}

/// A page of events by id.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    items: Vec<EventBody>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(example = json!(example::GEOFENCE_ID))]
    fence_id: Option<Uuid>,
    #[param(example = json!(example::VEHICLE_ID))]
    vehicle_id: Option<Uuid>,
    #[param(inline, example = "enter")]
    r#type: Option<EventType>,
    /// Only events at or after this time (RFC 3339, the event's `ts`).
    #[param(example = "2026-12-01T00:00:00Z")]
    from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339, exclusive).
    #[param(example = "2026-12-02T00:00:00Z")]
    to: Option<DateTime<Utc>>,
    /// Return events after this id (the previous page's `next_after`).
    #[param(minimum = 0, example = 41)]
    after: Option<i64>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Geofence events by id, in pages; filtered by fence, vehicle, type and time.
#[utoipa::path(get, path = "/v1/geofence-events", operation_id = "list_geofence_events", tag = "geofences", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of events, by id", body = EventPage),
              (status = 422, description = "`from` not before `to`, or a negative `after`", body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<EventPage>, ApiError> {
    caller.require(Role::READERS)?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError::Invalid("from must be before to".into()));
        }
    }
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::Invalid("after must not be negative".into()));
    }
    let limit = q.limit.unwrap_or_default();
    let filter = Filter {
        fence_id: q.fence_id,
        vehicle_id: q.vehicle_id,
        kind: q.r#type.map(Into::into),
        from: q.from,
        to: q.to,
    };
    let rows = geofence_events::list(&**s.pool.get().await?, &filter, q.after, limit.get()).await?;
    let next_after = (rows.len() as i64 == limit.get())
        .then(|| rows.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(EventPage {
        items: rows.into_iter().map(EventBody::from).collect(),
        next_after,
    }))
}
