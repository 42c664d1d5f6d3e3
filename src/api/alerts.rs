//! Alerts over HTTP: raise one on a vehicle, driver, job, dispatch, geofence or customer;
//! resolve it; read and list them. Each write and its audit row commit together.
//! Dispatchers write, analysts read; admin does both.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::{begin, commit, write_audit};
use super::extract::{Json, Path, Query};
use super::page::{Limit, Page};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::alert::{AlertSubject, Severity};
use crate::domain::Role;
use crate::store::alerts::{self, Alert, Filter, NewAlert};
use crate::store::audit::Entity;

/// Longest `kind`, in characters (the table's CHECK).
const MAX_KIND: usize = 200;
/// Longest `message`, in characters (the table's CHECK).
const MAX_MESSAGE: usize = 10_000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(raise, list))
        .routes(routes!(get))
        .routes(routes!(resolve))
}

/// An alert as the API shows it (and as its audit rows hold it).
#[derive(Serialize, ToSchema)]
pub struct AlertBody {
    id: Uuid,
    entity: AlertSubject,
    entity_id: Uuid,
    /// What happened: `harsh_braking`, `geofence_exit`, `late_pickup`, …
    kind: String,
    severity: Severity,
    message: Option<String>,
    /// `null` while open.
    resolved_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Alert> for AlertBody {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            entity: a.entity,
            entity_id: a.entity_id,
            kind: a.kind,
            severity: a.severity,
            message: a.message,
            resolved_at: a.resolved_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// An alert to raise.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "entity": "vehicle", "entity_id": example::VEHICLE_ID, "kind": "harsh_braking",
    "severity": "warning", "message": "−0.62 g at 07:41 on I-278"
})))]
pub struct NewAlertBody {
    entity: AlertSubject,
    /// The id of an existing `entity`.
    entity_id: Uuid,
    /// 1–200 characters, not only whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    kind: String,
    severity: Severity,
    #[schema(max_length = 10000, pattern = r"^[^\x00]*$")]
    message: Option<String>,
}

impl NewAlertBody {
    fn validate(&self) -> Result<NewAlert<'_>, ApiError> {
        let kind = self.kind.trim();
        if kind.is_empty() {
            return Err(ApiError::Invalid("kind: must not be empty".into()));
        }
        if self.kind.chars().count() > MAX_KIND {
            return Err(ApiError::Invalid(format!(
                "kind: at most {MAX_KIND} characters"
            )));
        }
        if self
            .message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE)
        {
            return Err(ApiError::Invalid(format!(
                "message: at most {MAX_MESSAGE} characters"
            )));
        }
        Ok(NewAlert {
            entity: self.entity,
            entity_id: self.entity_id,
            kind,
            severity: self.severity,
            message: self.message.as_deref(),
        })
    }
}

fn no_alert(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no alert {id}"))
}

/// Raise an alert on an existing vehicle, driver, job, dispatch, geofence or customer.
#[utoipa::path(post, path = "/v1/alerts", operation_id = "raise_alert", tag = "alerts", security(("bearer" = [])), request_body = NewAlertBody,
    responses((status = 201, description = "The open alert", body = AlertBody),
              (status = 422, description = "No such `entity` with `entity_id`, or a field out of range; the message names it", body = ErrorBody)))]
pub async fn raise(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewAlertBody>,
) -> Result<(StatusCode, axum::Json<AlertBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let new = body.validate()?;
    let mut client = s.pool.get().await?;
    let tx = begin(&mut client).await?;
    if !alerts::subject_exists(&*tx, new.entity, new.entity_id).await? {
        return Err(ApiError::Invalid(format!(
            "entity_id: no {} {}",
            new.entity, new.entity_id
        )));
    }
    let raised = AlertBody::from(alerts::raise(&*tx, &new).await?);
    write_audit(
        &tx,
        &caller,
        Entity::Alert,
        raised.id,
        "raise",
        None,
        Some(&raised),
    )
    .await?;
    commit(tx).await?;
    Ok((StatusCode::CREATED, axum::Json(raised)))
}

/// Resolve an open alert.
#[utoipa::path(post, path = "/v1/alerts/{id}/resolve", operation_id = "resolve_alert", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert's id", example = json!(example::ALERT_ID))),
    responses((status = 200, description = "The resolved alert", body = AlertBody),
              (status = 404, description = "No such alert", body = ErrorBody),
              (status = 409, description = "The alert is already resolved", body = ErrorBody)))]
pub async fn resolve(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<AlertBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let mut client = s.pool.get().await?;
    let tx = begin(&mut client).await?;
    let before = alerts::lock(&*tx, id)
        .await?
        .map(AlertBody::from)
        .ok_or_else(|| no_alert(id))?;
    if let Some(at) = before.resolved_at {
        return Err(ApiError::Conflict(format!(
            "alert {id} was already resolved at {at}"
        )));
    }
    let resolved = AlertBody::from(alerts::resolve(&*tx, id).await?);
    write_audit(
        &tx,
        &caller,
        Entity::Alert,
        id,
        "resolve",
        Some(&before),
        Some(&resolved),
    )
    .await?;
    commit(tx).await?;
    Ok(axum::Json(resolved))
}

/// One alert.
#[utoipa::path(get, path = "/v1/alerts/{id}", operation_id = "get_alert", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The alert's id", example = json!(example::ALERT_ID))),
    responses((status = 200, description = "The alert", body = AlertBody),
              (status = 404, description = "No such alert", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<AlertBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = alerts::get(&**s.pool.get().await?, id).await?;
    found
        .map(|a| axum::Json(a.into()))
        .ok_or_else(|| no_alert(id))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(example = "vehicle")]
    entity: Option<AlertSubject>,
    #[param(example = json!(example::VEHICLE_ID))]
    entity_id: Option<Uuid>,
    #[param(example = "critical")]
    severity: Option<Severity>,
    /// `true`: only open alerts; `false`: only resolved ones.
    #[param(example = true)]
    open: Option<bool>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::ALERT_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Alerts by id, in pages; filtered by what they are about, severity, open or resolved.
#[utoipa::path(get, path = "/v1/alerts", operation_id = "list_alerts", tag = "alerts", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of alerts, by id", body = Page<AlertBody>)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<AlertBody>>, ApiError> {
    caller.require(Role::READERS)?;
    let limit = q.limit.unwrap_or_default();
    let filter = Filter {
        entity: q.entity,
        entity_id: q.entity_id,
        severity: q.severity,
        open: q.open,
    };
    let rows = alerts::list(&**s.pool.get().await?, &filter, q.after, limit.get()).await?;
    Ok(axum::Json(Page::of(rows, limit, |a| a.id, AlertBody::from)))
}
