//! Maintenance records over HTTP: open, close, read, list. An open record keeps its vehicle out
//! of dispatch (the database decides that; this node's live index is reloaded before the
//! answer, so the next nearest query here already agrees). Each write and its audit row
//! commit together. Dispatchers write, analysts read; admin does both.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::{begin, commit, write_audit};
use super::extract::{optional_json, Json, Path, Query};
use super::page::{Limit, Page};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::{Money, Role};
use crate::store::audit::Entity;
use crate::store::maintenance::{self, NewRecord, Record};

/// Longest `kind` and `provider`, in characters (the table's CHECKs).
const MAX_TEXT: usize = 200;
/// Longest `notes`, in characters (the table's CHECK).
const MAX_NOTES: usize = 10_000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open, list))
        .routes(routes!(get))
        .routes(routes!(close))
}

/// A maintenance record as the API shows it (and as its audit rows hold it).
#[derive(Serialize, ToSchema)]
pub struct MaintenanceBody {
    id: Uuid,
    vehicle_id: Uuid,
    /// What is being done: `brakes`, `inspection`, `tyres`, …
    kind: String,
    opened_at: DateTime<Utc>,
    /// `null` while open: the vehicle is not dispatched until then.
    closed_at: Option<DateTime<Utc>>,
    cost: Option<Money>,
    provider: Option<String>,
    notes: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Record> for MaintenanceBody {
    fn from(r: Record) -> Self {
        Self {
            id: r.id,
            vehicle_id: r.vehicle_id,
            kind: r.kind,
            opened_at: r.opened_at,
            closed_at: r.closed_at,
            cost: r.cost,
            provider: r.provider,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A vehicle going into maintenance.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "vehicle_id": example::VEHICLE_ID, "kind": "brakes", "opened_at": "2026-11-30T07:30:00Z",
    "cost": "1249.90", "provider": "Midtown Truck Service", "notes": "front pads and discs"
})))]
pub struct NewMaintenance {
    vehicle_id: Uuid,
    /// 1–200 characters, not only whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    kind: String,
    /// When the vehicle went in; default now, never in the future.
    opened_at: Option<DateTime<Utc>>,
    /// The estimate so far (closing can set the final amount).
    cost: Option<Money>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    provider: Option<String>,
    #[schema(max_length = 10000, pattern = r"^[^\x00]*$")]
    notes: Option<String>,
}

impl NewMaintenance {
    fn validate(&self) -> Result<NewRecord<'_>, ApiError> {
        let kind = self.kind.trim();
        if kind.is_empty() {
            return Err(ApiError::Invalid("kind: must not be empty".into()));
        }
        at_most("kind", Some(&self.kind), MAX_TEXT)?;
        at_most("provider", self.provider.as_deref(), MAX_TEXT)?;
        at_most("notes", self.notes.as_deref(), MAX_NOTES)?;
        if let Some(at) = self.opened_at {
            not_future("opened_at", at)?;
        }
        Ok(NewRecord {
            vehicle_id: self.vehicle_id,
            kind,
            opened_at: self.opened_at,
            cost: self.cost,
            provider: self.provider.as_deref(),
            notes: self.notes.as_deref(),
        })
    }
}

fn at_most(field: &str, text: Option<&str>, max: usize) -> Result<(), ApiError> {
    match text {
        Some(t) if t.chars().count() > max => Err(ApiError::Invalid(format!(
            "{field}: at most {max} characters"
        ))),
        _ => Ok(()),
    }
}

/// A record dated in the future would keep the vehicle out of dispatch before it is due (or,
/// closed in the future, let it back in early): the view reads `closed_at IS NULL`, not times.
fn not_future(field: &str, at: DateTime<Utc>) -> Result<(), ApiError> {
    if at > Utc::now() {
        return Err(ApiError::Invalid(format!("{field}: {at} is in the future")));
    }
    Ok(())
}

fn no_record(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no maintenance record {id}"))
}

/// Open a maintenance record: from now (or `opened_at`) until closed, the vehicle is not
/// offered for dispatch and cannot be dispatched.
#[utoipa::path(post, path = "/v1/maintenance", operation_id = "open_maintenance", tag = "maintenance", security(("bearer" = [])), request_body = NewMaintenance,
    responses((status = 201, description = "The open record", body = MaintenanceBody),
              (status = 422, description = "No such vehicle, `opened_at` in the future, or a field out of range; the message names it", body = ErrorBody)))]
pub async fn open(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewMaintenance>,
) -> Result<(StatusCode, axum::Json<MaintenanceBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let new = body.validate()?;
    let mut client = s.pool.get().await?;
    let tx = begin(&mut client).await?;
    // The table's one foreign key is the vehicle's.
    let record = maintenance::open(&*tx, &new).await.map_err(|e| {
        if e.sqlstate() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
            ApiError::Invalid(format!("vehicle_id: no vehicle {}", new.vehicle_id))
        } else {
            e.into()
        }
    })?;
    let opened = MaintenanceBody::from(record);
    write_audit(
        &tx,
        &caller,
        Entity::Maintenance,
        opened.id,
        "open",
        None,
        Some(&opened),
    )
    .await?;
    commit(tx).await?;
    // The vehicle's driver is no longer available: this node's index must know before we answer.
    s.live.vehicles_changed(&[opened.vehicle_id]).await;
    Ok((StatusCode::CREATED, axum::Json(opened)))
}

/// Closing a record: both fields optional, so is the body.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"closed_at": "2026-11-30T15:45:00Z", "cost": "1312.40"})))]
pub struct CloseMaintenance {
    /// When the vehicle came back; default now. Not before `opened_at`, never in the future.
    closed_at: Option<DateTime<Utc>>,
    /// The final amount; absent keeps the estimate.
    cost: Option<Money>,
}

/// Close a maintenance record: the vehicle may be dispatched again (if nothing else holds it).
#[utoipa::path(post, path = "/v1/maintenance/{id}/close", operation_id = "close_maintenance", tag = "maintenance", security(("bearer" = [])),
    request_body(content = Option<CloseMaintenance>, description = "Optional: no body closes it now, keeping the cost"),
    params(("id" = Uuid, Path, description = "The record's id", example = json!(example::MAINTENANCE_ID))),
    responses((status = 200, description = "The closed record", body = MaintenanceBody),
              (status = 404, description = "No such record", body = ErrorBody),
              (status = 409, description = "The record is already closed", body = ErrorBody),
              (status = 422, description = "`closed_at` before `opened_at` or in the future, or a malformed cost", body = ErrorBody)))]
pub async fn close(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<axum::Json<MaintenanceBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let request: CloseMaintenance = optional_json(&body)?;
    if let Some(at) = request.closed_at {
        not_future("closed_at", at)?;
    }
    let mut client = s.pool.get().await?;
    let tx = begin(&mut client).await?;
    let before = maintenance::lock(&*tx, id)
        .await?
        .map(MaintenanceBody::from)
        .ok_or_else(|| no_record(id))?;
    if let Some(at) = before.closed_at {
        return Err(ApiError::Conflict(format!(
            "maintenance record {id} was already closed at {at}"
        )));
    }
    if let Some(at) = request.closed_at.filter(|at| *at < before.opened_at) {
        return Err(ApiError::Invalid(format!(
            "closed_at: {at} is before opened_at {}",
            before.opened_at
        )));
    }
    let record = maintenance::close(&*tx, id, request.closed_at, request.cost).await?;
    let closed = MaintenanceBody::from(record);
    write_audit(
        &tx,
        &caller,
        Entity::Maintenance,
        id,
        "close",
        Some(&before),
        Some(&closed),
    )
    .await?;
    commit(tx).await?;
    // The vehicle can be dispatched again: this node's index, and its queue drain, learn it now.
    s.live.vehicles_changed(&[closed.vehicle_id]).await;
    s.desk.availability_grew();
    Ok(axum::Json(closed))
}

/// One maintenance record.
#[utoipa::path(get, path = "/v1/maintenance/{id}", operation_id = "get_maintenance", tag = "maintenance", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The record's id", example = json!(example::MAINTENANCE_ID))),
    responses((status = 200, description = "The record", body = MaintenanceBody),
              (status = 404, description = "No such record", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MaintenanceBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = maintenance::get(&**s.pool.get().await?, id).await?;
    found
        .map(|r| axum::Json(r.into()))
        .ok_or_else(|| no_record(id))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this vehicle's records.
    #[param(example = json!(example::VEHICLE_ID))]
    vehicle_id: Option<Uuid>,
    /// `true`: only open records (vehicles in the shop now); `false`: only closed ones.
    #[param(example = true)]
    open: Option<bool>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::MAINTENANCE_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Maintenance records by id, in pages; of one vehicle, open or closed.
#[utoipa::path(get, path = "/v1/maintenance", operation_id = "list_maintenance", tag = "maintenance", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of records, by id", body = Page<MaintenanceBody>)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<MaintenanceBody>>, ApiError> {
    caller.require(Role::READERS)?;
    let limit = q.limit.unwrap_or_default();
    let rows = maintenance::list(
        &**s.pool.get().await?,
        q.vehicle_id,
        q.open,
        q.after,
        limit.get(),
    )
    .await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |r| r.id,
        MaintenanceBody::from,
    )))
}
