//! Dispatches: list them, read one, move one along its status machine
//! (`dispatched → en_route → on_site → (returning →) completed`; `cancelled` / `recalled`
//! from any active state).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::page::{Limit, Page};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::{DispatchStatus, Role};
use crate::store::dispatches::{self, Dispatch, Transition};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get, update))
}

#[derive(Serialize, ToSchema)]
pub struct DispatchBody {
    id: Uuid,
    job_id: Uuid,
    driver_id: Uuid,
    vehicle_id: Uuid,
    /// `dispatched`, `en_route`, `on_site`, `returning`, `completed`, `cancelled` or `recalled`.
    status: String,
    /// Geodesic distance from the vehicle's position to the pickup when dispatched, metres.
    distance_m: Option<f64>,
    dispatched_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Dispatch> for DispatchBody {
    fn from(d: Dispatch) -> Self {
        Self {
            id: d.id,
            job_id: d.job_id,
            driver_id: d.driver_id,
            vehicle_id: d.vehicle_id,
            status: d.status,
            distance_m: d.distance_m,
            dispatched_at: d.dispatched_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DispatchQuery {
    /// Only dispatches in this status.
    #[param(inline, value_type = Option<StatusName>, example = "en_route")]
    status: Option<String>,
    #[param(example = json!(example::DRIVER_ID))]
    driver_id: Option<Uuid>,
    #[param(example = json!(example::JOB_ID))]
    job_id: Option<Uuid>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::DISPATCH_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// A dispatch status (the schema of `status`).
#[derive(ToSchema)]
#[schema(as = DispatchStatusName)]
#[allow(dead_code)]
pub enum StatusName {
    #[schema(rename = "dispatched")]
    Dispatched,
    #[schema(rename = "en_route")]
    EnRoute,
    #[schema(rename = "on_site")]
    OnSite,
    #[schema(rename = "returning")]
    Returning,
    #[schema(rename = "completed")]
    Completed,
    #[schema(rename = "cancelled")]
    Cancelled,
    #[schema(rename = "recalled")]
    Recalled,
}

/// Dispatches by id, filtered by status, driver or job.
#[utoipa::path(get, path = "/v1/dispatches", operation_id = "list_dispatches", tag = "dispatch", security(("bearer" = [])), params(DispatchQuery),
    responses((status = 200, description = "A page of dispatches, by id", body = Page<DispatchBody>)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<DispatchQuery>,
) -> Result<axum::Json<Page<DispatchBody>>, ApiError> {
    caller.require(Role::READERS)?;
    if let Some(status) = q.status.as_deref() {
        status
            .parse::<DispatchStatus>()
            .map_err(|e| ApiError::Invalid(format!("status: {e}")))?;
    }
    let limit = q.limit.unwrap_or_default();
    let rows = dispatches::list(
        &**s.pool.get().await?,
        q.status.as_deref(),
        q.driver_id,
        q.job_id,
        q.after,
        limit.get(),
    )
    .await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |d| d.id,
        DispatchBody::from,
    )))
}

/// One dispatch.
#[utoipa::path(get, path = "/v1/dispatches/{id}", operation_id = "get_dispatch", tag = "dispatch", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The dispatch's id", example = json!(example::DISPATCH_ID))),
    responses((status = 200, description = "The dispatch", body = DispatchBody),
              (status = 404, description = "No such dispatch", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<DispatchBody>, ApiError> {
    caller.require(Role::READERS)?;
    dispatches::get(&**s.pool.get().await?, id)
        .await?
        .map(|d| axum::Json(d.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no dispatch {id}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "en_route"})))]
pub struct StatusChange {
    #[schema(value_type = StatusName)]
    status: String,
}

/// Move a dispatch to its next status. Completing or cancelling it completes or cancels its
/// job; recalling it puts the job back in the queue (keeping its age) for the next driver.
/// An illegal step is 409 with `allowed_next`.
#[utoipa::path(patch, path = "/v1/dispatches/{id}", operation_id = "update_dispatch", tag = "dispatch", security(("bearer" = [])), request_body = StatusChange,
    params(("id" = Uuid, Path, description = "The dispatch's id", example = json!(example::DISPATCH_ID))),
    responses((status = 200, description = "The dispatch in its new status", body = DispatchBody),
              (status = 404, description = "No such dispatch", body = ErrorBody),
              (status = 409, description = "Not allowed from the current status; `allowed_next` lists what is", body = ErrorBody)))]
pub async fn update(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<StatusChange>,
) -> Result<axum::Json<DispatchBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let next: DispatchStatus = body
        .status
        .parse()
        .map_err(|e| ApiError::Invalid(format!("status: {e}")))?;
    let mut client = s.pool.get().await?;
    match dispatches::transition(&mut client, id, next, caller.0.id).await? {
        Transition::NotFound => Err(ApiError::NotFound(format!("no dispatch {id}"))),
        Transition::Refused(current) => {
            let allowed: Vec<&'static str> = current
                .status
                .parse::<DispatchStatus>()
                .map(|c| c.allowed_next().iter().map(|s| s.as_str()).collect())
                .unwrap_or_default();
            let message = match allowed.is_empty() {
                true => format!("dispatch {id} is {}, which is final", current.status),
                false => format!(
                    "dispatch {id} is {}: it can become {}, not {next}",
                    current.status,
                    allowed.join(", ")
                ),
            };
            Err(ApiError::Refused {
                message,
                reason: "illegal_transition",
                allowed_next: Some(allowed),
            })
        }
        Transition::Done { after, .. } => {
            if !next.is_active() {
                // The driver is free again: this node's index and queue drain learn it now.
                s.live.drivers_changed(&[after.driver_id]).await;
                s.desk.availability_grew();
            }
            Ok(axum::Json(after.into()))
        }
    }
}
