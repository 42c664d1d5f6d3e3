//! Jobs and dispatching them: create a job, dispatch it to the nearest fitting driver (or a
//! named one), read it with its dispatch history, cancel it while nobody is on it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dispatches::DispatchBody;
use super::extract::{self, Json, Path};
use super::schema::{example, ErrorBody, JsonObject, LonLat};
use super::{ApiError, AppState, Caller};
use crate::dispatch::Outcome;
use crate::domain::{LatLon, Role};
use crate::store::dispatches;
use crate::store::jobs::{self, Job, NewJob};

/// Farther than any two points on Earth are apart (half the equator, a bit over).
const MAX_RADIUS_M: f64 = 20_037_508.0;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get))
        .routes(routes!(dispatch))
        .routes(routes!(cancel))
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Earliest pickup; omit for "now".
    start: Option<DateTime<Utc>>,
    /// Latest pickup: a job still queued at this instant is cancelled.
    end: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "reference": "ORD-2026-0001", "pickup": [-73.9857, 40.7484], "dropoff": [-73.9680, 40.7851],
    "priority": 7, "vehicle_type": "van", "max_radius_m": 15000,
    "time_window": {"start": "2026-12-02T09:00:00Z", "end": "2026-12-02T11:00:00Z"},
    "notes": "Loading dock B", "metadata": {"weight_kg": 120}
})))]
pub struct NewJobBody {
    /// Your unique reference for the job (1–200 characters).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00]*$")]
    reference: String,
    customer_id: Option<Uuid>,
    #[schema(value_type = LonLat)]
    pickup: [f64; 2],
    #[schema(value_type = Option<LonLat>)]
    dropoff: Option<[f64; 2]>,
    /// 0–9, 9 most urgent; default 5.
    #[schema(minimum = 0, maximum = 9, default = 5)]
    priority: Option<i16>,
    /// The kind of vehicle the job needs (matched exactly against vehicles' `vehicle_type`).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00]*$")]
    vehicle_type: String,
    time_window: Option<TimeWindow>,
    /// Automatic dispatch offers only drivers within this geodesic distance of the pickup.
    #[schema(exclusive_minimum = 0, maximum = 20037508)]
    max_radius_m: Option<f64>,
    #[schema(max_length = 10000, pattern = r"^[^\x00]*$")]
    notes: Option<String>,
    #[schema(value_type = Option<JsonObject>)]
    metadata: Option<Value>,
}

/// A job with its dispatch history (oldest first).
#[derive(Serialize, ToSchema)]
pub struct JobBody {
    id: Uuid,
    reference: String,
    customer_id: Option<Uuid>,
    /// `pending`, `queued`, `dispatched`, `completed` or `cancelled`.
    status: String,
    priority: i16,
    #[schema(value_type = LonLat)]
    pickup: [f64; 2],
    #[schema(value_type = Option<LonLat>)]
    dropoff: Option<[f64; 2]>,
    vehicle_type: String,
    time_window: Option<TimeWindow>,
    max_radius_m: Option<f64>,
    notes: Option<String>,
    #[schema(value_type = JsonObject)]
    metadata: Value,
    requested_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    dispatches: Vec<DispatchBody>,
}

impl JobBody {
    fn new(j: Job, dispatches: Vec<dispatches::Dispatch>) -> Self {
        let time_window =
            (j.window_start.is_some() || j.window_end.is_some()).then_some(TimeWindow {
                start: j.window_start,
                end: j.window_end,
            });
        Self {
            id: j.id,
            reference: j.reference,
            customer_id: j.customer_id,
            status: j.status,
            priority: j.priority,
            pickup: [j.pickup.0, j.pickup.1],
            dropoff: j.dropoff.map(|(lon, lat)| [lon, lat]),
            vehicle_type: j.vehicle_type,
            time_window,
            max_radius_m: j.max_radius_m,
            notes: j.notes,
            metadata: j.metadata,
            requested_at: j.requested_at,
            created_at: j.created_at,
            updated_at: j.updated_at,
            dispatches: dispatches.into_iter().map(DispatchBody::from).collect(),
        }
    }
}

fn point(field: &str, [lon, lat]: [f64; 2]) -> Result<(f64, f64), ApiError> {
    LatLon::new(lat, lon)
        .map(|p| (p.lon(), p.lat()))
        .map_err(|e| ApiError::Invalid(format!("{field}: {e}")))
}

fn validate(b: NewJobBody) -> Result<NewJob, ApiError> {
    let text = |field: &str, s: &str, max: usize| {
        let n = s.chars().count();
        if n == 0 || n > max || s.trim().is_empty() {
            return Err(ApiError::Invalid(format!(
                "{field} must be 1–{max} characters, not blank"
            )));
        }
        Ok(())
    };
    text("reference", &b.reference, 200)?;
    text("vehicle_type", &b.vehicle_type, 200)?;
    if b.notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
        return Err(ApiError::Invalid("notes: at most 10000 characters".into()));
    }
    let priority = b.priority.unwrap_or(5);
    if !(0..=9).contains(&priority) {
        return Err(ApiError::Invalid("priority must be 0–9".into()));
    }
    if let Some(r) = b.max_radius_m {
        if !(r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M) {
            return Err(ApiError::Invalid(format!(
                "max_radius_m must be above 0 and at most {MAX_RADIUS_M}"
            )));
        }
    }
    let (window_start, window_end) = match b.time_window {
        None => (None, None),
        Some(w) => {
            if let (Some(s), Some(e)) = (w.start, w.end) {
                if e <= s {
                    return Err(ApiError::Invalid(
                        "time_window.end must be after time_window.start".into(),
                    ));
                }
            }
            if w.end.is_some_and(|e| e <= Utc::now()) {
                return Err(ApiError::Invalid("time_window.end is in the past".into()));
            }
            (w.start, w.end)
        }
    };
    let metadata = b
        .metadata
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !metadata.is_object() {
        return Err(ApiError::Invalid("metadata must be a JSON object".into()));
    }
    Ok(NewJob {
        reference: b.reference,
        customer_id: b.customer_id,
        pickup: point("pickup", b.pickup)?,
        dropoff: b.dropoff.map(|p| point("dropoff", p)).transpose()?,
        priority,
        vehicle_type: b.vehicle_type,
        window_start,
        window_end,
        max_radius_m: b.max_radius_m,
        notes: b.notes,
        metadata,
    })
}

/// Create a job (pending until dispatched).
#[utoipa::path(post, path = "/v1/jobs", operation_id = "create_job", tag = "dispatch", security(("bearer" = [])), request_body = NewJobBody,
    responses((status = 201, description = "The job", body = JobBody),
              (status = 409, description = "A job with this reference exists", body = ErrorBody),
              (status = 422, description = "Invalid field, or no such customer", body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewJobBody>,
) -> Result<(StatusCode, axum::Json<JobBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let new = validate(body)?;
    let mut client = s.pool.get().await?;
    let job =
        jobs::create(&mut client, &new, caller.0.id)
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::Conflict(_) => {
                    ApiError::Conflict(format!("a job with reference {:?} exists", new.reference))
                }
                ApiError::Invalid(m) if m.contains("foreign key") => ApiError::Invalid(format!(
                    "customer_id: no customer {}",
                    new.customer_id.unwrap_or_default()
                )),
                other => other,
            })?;
    Ok((StatusCode::CREATED, axum::Json(JobBody::new(job, vec![]))))
}

/// A job with its dispatch history.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "get_job", tag = "dispatch", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job's id", example = json!(example::JOB_ID))),
    responses((status = 200, description = "The job", body = JobBody),
              (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobBody>, ApiError> {
    caller.require(Role::READERS)?;
    let client = s.pool.get().await?;
    let job = jobs::get(&client, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    let history = dispatches::of_job(&**client, id).await?;
    Ok(axum::Json(JobBody::new(job, history)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"driver_id": example::DRIVER_ID})))]
pub struct DispatchRequest {
    /// This driver; omit (or send no body) for the nearest fitting driver.
    driver_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Dispatched {
    dispatch: DispatchBody,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// Always `true`.
    queued: bool,
    /// 1-based place in the queue (priority, then age).
    position: i64,
}

/// Dispatch a job: to `driver_id`, or (no body) to the nearest available driver that fits
/// (vehicle type, fresh position, within the job's `max_radius_m`), chosen, re-checked and
/// assigned in one transaction. When nobody fits the job is queued (202) and offered to the
/// next driver who becomes available.
#[utoipa::path(post, path = "/v1/jobs/{id}/dispatch", operation_id = "dispatch_job", tag = "dispatch", security(("bearer" = [])),
    request_body(content = Option<DispatchRequest>, description = "Optional: no body means the nearest fitting driver"),
    params(("id" = Uuid, Path, description = "The job's id", example = json!(example::JOB_ID))),
    responses((status = 201, description = "Dispatched", body = Dispatched),
              (status = 202, description = "Nobody fits now: queued", body = Queued),
              (status = 404, description = "No such job", body = ErrorBody),
              (status = 409, description = "The named driver cannot take the job (`reason` says why), or the job is not pending or queued", body = ErrorBody),
              (status = 422, description = "No such driver", body = ErrorBody),
              (status = 503, description = "This node's live index is not loaded", body = ErrorBody)))]
pub async fn dispatch(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::WRITERS)?;
    let request: DispatchRequest = extract::optional_json(&body)?;
    let actor = caller.0.id;
    let outcome = match request.driver_id {
        Some(driver) => Outcome::Dispatched(s.desk.dispatch_to(id, driver, actor).await?),
        None => s.desk.dispatch_nearest(id, actor).await?,
    };
    Ok(match outcome {
        Outcome::Dispatched(d) => {
            let body = Dispatched { dispatch: d.into() };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Outcome::Queued { position } => {
            let body = Queued {
                queued: true,
                position,
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
    })
}

/// Cancel a job nobody is on yet (pending or queued); a dispatched job is cancelled through
/// its dispatch (`PATCH /v1/dispatches/{id}`).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "cancel_job", tag = "dispatch", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The job's id", example = json!(example::JOB_ID))),
    responses((status = 200, description = "The cancelled job", body = JobBody),
              (status = 404, description = "No such job", body = ErrorBody),
              (status = 409, description = "The job is not pending or queued", body = ErrorBody)))]
pub async fn cancel(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let mut client = s.pool.get().await?;
    match jobs::cancel(&mut client, id, caller.0.id).await? {
        None => Err(ApiError::NotFound(format!("no job {id}"))),
        Some((job, false)) => Err(ApiError::Refused {
            message: format!(
                "job {id} is {}: only pending or queued jobs can be cancelled",
                job.status
            ),
            reason: "job_not_open",
            allowed_next: None,
        }),
        Some((job, true)) => {
            let history = dispatches::of_job(&**client, id).await?;
            Ok(axum::Json(JobBody::new(job, history)))
        }
    }
}
