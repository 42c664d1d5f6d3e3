//! Drivers: register, read, list, change (status changes drive availability for dispatch).
//! Dispatchers write, analysts read; admin does both.

use axum::extract::State;
use axum::http::StatusCode;
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
use crate::domain::{DriverStatus, Role};
use crate::store::fleet::{self, Driver};

/// Longest name or licence number, in characters.
const MAX_TEXT: usize = 200;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_driver, list_drivers))
        .routes(routes!(get_driver, update_driver))
}

/// A driver as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct DriverBody {
    id: Uuid,
    name: String,
    license_number: Option<String>,
    status: DriverStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Driver> for DriverBody {
    fn from(d: Driver) -> Self {
        Self {
            id: d.id,
            name: d.name,
            license_number: d.license_number,
            status: d.status,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A new driver.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Maria Garcia", "license_number": "NY-842-571-306", "status": "off_duty"})))]
pub struct NewDriver {
    /// 1–200 characters, not only whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    name: String,
    /// Unique among drivers.
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    license_number: Option<String>,
    /// `off_duty` if absent.
    status: Option<DriverStatus>,
}

/// A driver's changes; absent (or `null`) fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "available"})))]
pub struct DriverChanges {
    /// 1–200 characters, not only whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    name: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    license_number: Option<String>,
    status: Option<DriverStatus>,
}

/// A name as stored: trimmed, not blank, at most `MAX_TEXT` characters as sent.
fn name(raw: &str) -> Result<&str, ApiError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ApiError::Invalid("name: must not be empty".into()));
    }
    if raw.chars().count() > MAX_TEXT {
        return Err(ApiError::Invalid(format!(
            "name: at most {MAX_TEXT} characters"
        )));
    }
    Ok(trimmed)
}

fn license(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    if raw.is_some_and(|l| l.chars().count() > MAX_TEXT) {
        return Err(ApiError::Invalid(format!(
            "license_number: at most {MAX_TEXT} characters"
        )));
    }
    Ok(raw)
}

/// Register a driver (`name` required).
#[utoipa::path(post, path = "/v1/drivers", tag = "fleet", security(("bearer" = [])), request_body = NewDriver,
    responses((status = 201, description = "Registered", body = DriverBody),
              (status = 409, description = "`license_number` belongs to another driver", body = ErrorBody)))]
pub async fn create_driver(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewDriver>,
) -> Result<(StatusCode, axum::Json<DriverBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let name = name(&body.name)?;
    let license = license(body.license_number.as_deref())?;
    let driver = fleet::create_driver(&**s.pool.get().await?, name, license, body.status).await?;
    Ok((StatusCode::CREATED, axum::Json(driver.into())))
}

/// One driver.
#[utoipa::path(get, path = "/v1/drivers/{id}", tag = "fleet", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The driver's id", example = json!(example::DRIVER_ID))),
    responses((status = 200, description = "The driver", body = DriverBody),
              (status = 404, description = "No such driver", body = ErrorBody)))]
pub async fn get_driver(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<DriverBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = fleet::get_driver(&**s.pool.get().await?, id).await?;
    found
        .map(|d| axum::Json(d.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no driver {id}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(example = "available")]
    status: Option<DriverStatus>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::DRIVER_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Drivers, filtered by status, in pages.
#[utoipa::path(get, path = "/v1/drivers", tag = "fleet", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of drivers, by id", body = Page<DriverBody>)))]
pub async fn list_drivers(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<DriverBody>>, ApiError> {
    caller.require(Role::READERS)?;
    let limit = q.limit.unwrap_or_default();
    let rows = fleet::list_drivers(&**s.pool.get().await?, q.status, q.after, limit.get()).await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |d| d.id,
        DriverBody::from,
    )))
}

/// Change a driver's name, licence or status (e.g. `{"status": "available"}`).
#[utoipa::path(patch, path = "/v1/drivers/{id}", tag = "fleet", security(("bearer" = [])), request_body = DriverChanges,
    params(("id" = Uuid, Path, description = "The driver's id", example = json!(example::DRIVER_ID))),
    responses((status = 200, description = "The changed driver", body = DriverBody),
              (status = 404, description = "No such driver", body = ErrorBody),
              (status = 409, description = "`license_number` belongs to another driver", body = ErrorBody)))]
pub async fn update_driver(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<DriverChanges>,
) -> Result<axum::Json<DriverBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let name = body.name.as_deref().map(name).transpose()?;
    let license = license(body.license_number.as_deref())?;
    let found =
        fleet::update_driver(&**s.pool.get().await?, id, name, license, body.status).await?;
    s.live.availability_changed().await;
    found
        .map(|d| axum::Json(d.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no driver {id}")))
}
