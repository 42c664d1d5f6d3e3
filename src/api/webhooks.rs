//! Webhooks over HTTP: register an endpoint for geofence events (which fences, which event
//! types), list, read with its delivery counts, delete, re-enable after persistent failure, and
//! list its deliveries (the failed ones included). Admin only, reading too: a webhook is a way
//! out of the network, and its URL says where fleet data goes. The secret is taken once and
//! never shown again.

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
use crate::domain::geofence::event::EventKind;
use crate::domain::webhook::{check_secret, WebhookUrl};
use crate::domain::Role;
use crate::store::webhooks::{self, Counts, Delivery, NewWebhook, Webhook};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, delete))
        .routes(routes!(enable))
        .routes(routes!(deliveries))
}

/// A geofence event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Enter,
    Exit,
    Dwell,
}

impl From<EventType> for EventKind {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Enter => EventKind::Enter,
            EventType::Exit => EventKind::Exit,
            EventType::Dwell => EventKind::Dwell,
        }
    }
}

impl From<EventKind> for EventType {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Enter => EventType::Enter,
            EventKind::Exit => EventType::Exit,
            EventKind::Dwell => EventType::Dwell,
        }
    }
}

/// A webhook to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "url": "https://hooks.example.com/meridian", "secret": "s3cr3t-shared-with-the-receiver",
    "fence_ids": [example::GEOFENCE_ID], "event_types": ["enter", "exit"]
})))]
pub struct NewWebhookBody {
    /// Where events are POSTed: `http` or `https`, with a host, without `user:password@`, at
    /// most 2,000 characters.
    #[schema(max_length = 2000, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]+$")]
    url: String,
    /// Signs every body (`Meridian-Signature`: hex HMAC-SHA256); 16–200 characters. Never
    /// shown again.
    #[schema(min_length = 16, max_length = 200, pattern = r"^[^\x00]*$")]
    secret: String,
    /// Only events of these fences (existing ones); omitted or `null`: every fence.
    #[schema(min_items = 1, max_items = 1000)]
    fence_ids: Option<Vec<Uuid>>,
    /// Only these event types; omitted or `null`: all three.
    #[schema(min_items = 1, max_items = 3)]
    event_types: Option<Vec<EventType>>,
}

/// A webhook as the API shows it (never its secret).
#[derive(Serialize, ToSchema)]
pub struct WebhookBody {
    id: Uuid,
    url: String,
    /// `null`: every fence.
    fence_ids: Option<Vec<Uuid>>,
    event_types: Vec<EventType>,
    /// `false` once disabled after persistent failure (see `disabled_reason`); nothing is sent
    /// and no new deliveries are made until it is re-enabled.
    enabled: bool,
    disabled_reason: Option<String>,
    /// Failed tries since the last success.
    consecutive_failures: i32,
    /// The first failure since the last success; `null` while healthy.
    failing_since: Option<DateTime<Utc>>,
    /// Deliveries by status; only on `GET /v1/webhooks/{id}` (`null` elsewhere).
    deliveries: Option<DeliveryCounts>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryCounts {
    /// Waiting for a first try or a retry.
    pending: i64,
    delivered: i64,
    /// Given up on after the retry horizon.
    failed: i64,
}

impl WebhookBody {
    fn of(w: Webhook, counts: Option<Counts>) -> Self {
        Self {
            id: w.id,
            url: w.url,
            fence_ids: w.fence_ids,
            event_types: w.event_types.into_iter().map(EventType::from).collect(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            consecutive_failures: w.consecutive_failures,
            failing_since: w.failing_since,
            deliveries: counts.map(|c| DeliveryCounts {
                pending: c.pending,
                delivered: c.delivered,
                failed: c.failed,
            }),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

impl From<Webhook> for WebhookBody {
    fn from(w: Webhook) -> Self {
        Self::of(w, None)
    }
}

/// A delivery's status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One event's delivery to one webhook.
#[derive(Serialize, ToSchema)]
pub struct DeliveryBody {
    /// The geofence event's id (sent as `Meridian-Event-Id`).
    event_id: i64,
    vehicle_id: Uuid,
    status: DeliveryStatus,
    /// Tries so far.
    attempts: i32,
    /// When a pending delivery is tried next.
    next_at: DateTime<Utc>,
    /// The HTTP status of the last try, if the endpoint answered.
    last_status: Option<i32>,
    /// Why the last try failed.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        let status = match d.status.as_str() {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        };
        Self {
            event_id: d.event_id,
            vehicle_id: d.vehicle_id,
            status,
            attempts: d.attempts,
            next_at: d.next_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of deliveries, by event id.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    items: Vec<DeliveryBody>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<i64>,
}

/// Most fences and event types one webhook may name (the schema's `maxItems`).
const MAX_FENCES: usize = 1000;
const MAX_TYPES: usize = 3;

fn no_webhook(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no webhook {id}"))
}

const INVALID_WEBHOOK: &str = "A URL that is not http/https, has credentials or no host, or is \
    over 2,000 characters; a secret under 16 characters; an unknown event type; fence ids that \
    name no geofence; the message says which";

/// Register a webhook for geofence events (admin).
#[utoipa::path(post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks", security(("bearer" = [])), request_body = NewWebhookBody,
    responses((status = 201, description = "The webhook (without its secret)", body = WebhookBody),
              (status = 422, description = INVALID_WEBHOOK, body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewWebhookBody>,
) -> Result<(StatusCode, axum::Json<WebhookBody>), ApiError> {
    caller.require(Role::ADMINS)?;
    let url = WebhookUrl::parse(&body.url).map_err(|e| ApiError::Invalid(format!("url: {e}")))?;
    check_secret(&body.secret).map_err(|e| ApiError::Invalid(format!("secret: {e}")))?;
    let mut types: Vec<EventKind> = match &body.event_types {
        Some(t) if t.is_empty() || t.len() > MAX_TYPES => {
            return Err(ApiError::Invalid(format!(
                "event_types: name 1 to {MAX_TYPES}, or leave it out for all"
            )))
        }
        Some(t) => t.iter().map(|t| EventKind::from(*t)).collect(),
        None => EventKind::ALL.to_vec(),
    };
    types.sort();
    types.dedup();
    let client = s.pool.get().await?;
    if let Some(ids) = &body.fence_ids {
        if ids.is_empty() || ids.len() > MAX_FENCES {
            return Err(ApiError::Invalid(format!(
                "fence_ids: name 1 to {MAX_FENCES}, or leave it out for every fence"
            )));
        }
        let unknown = webhooks::unknown_fences(&**client, ids).await?;
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(Uuid::to_string).collect();
            return Err(ApiError::Invalid(format!(
                "fence_ids: no geofence {}",
                names.join(", ")
            )));
        }
    }
    let new = NewWebhook {
        url: url.as_str(),
        secret: &body.secret,
        fence_ids: body.fence_ids.as_deref(),
        event_types: &types,
    };
    let created = webhooks::create(&**client, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// One webhook, with its deliveries by status (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id", example = json!(example::WEBHOOK_ID))),
    responses((status = 200, description = "The webhook", body = WebhookBody),
              (status = 404, description = "No such webhook", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    caller.require(Role::ADMINS)?;
    let found = webhooks::get(&**s.pool.get().await?, id).await?;
    found
        .map(|(w, counts)| axum::Json(WebhookBody::of(w, Some(counts))))
        .ok_or_else(|| no_webhook(id))
}

/// Delete a webhook and its deliveries (admin).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id", example = json!(example::WEBHOOK_ID))),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such webhook", body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::ADMINS)?;
    if webhooks::delete(&**s.pool.get().await?, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook(id))
    }
}

/// Re-enable a webhook (after fixing its endpoint): clears its failure record and makes its
/// pending deliveries due now. Failed deliveries stay failed (admin).
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", operation_id = "enable_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id", example = json!(example::WEBHOOK_ID))),
    responses((status = 200, description = "The webhook, enabled", body = WebhookBody),
              (status = 404, description = "No such webhook", body = ErrorBody)))]
pub async fn enable(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    caller.require(Role::ADMINS)?;
    let found = webhooks::enable(&**s.pool.get().await?, id).await?;
    found
        .map(|w| axum::Json(w.into()))
        .ok_or_else(|| no_webhook(id))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::WEBHOOK_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Webhooks by id, in pages (admin).
#[utoipa::path(get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of webhooks, by id", body = Page<WebhookBody>)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<WebhookBody>>, ApiError> {
    caller.require(Role::ADMINS)?;
    let limit = q.limit.unwrap_or_default();
    let rows = webhooks::list(&**s.pool.get().await?, q.after, limit.get()).await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |w| w.id,
        WebhookBody::from,
    )))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    /// Only deliveries in this status (`failed`: given up on after the retry horizon).
    #[param(example = "failed")]
    status: Option<DeliveryStatus>,
    /// Return deliveries after this event id (the previous page's `next_after`).
    #[param(minimum = 0, example = 1)]
    after: Option<i64>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// A webhook's deliveries by event id, in pages; `status=failed` lists what was given up on
/// (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "webhook_deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id", example = json!(example::WEBHOOK_ID)), DeliveriesParams),
    responses((status = 200, description = "A page of deliveries, by event id", body = DeliveryPage),
              (status = 404, description = "No such webhook", body = ErrorBody)))]
pub async fn deliveries(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveriesParams>,
) -> Result<axum::Json<DeliveryPage>, ApiError> {
    caller.require(Role::ADMINS)?;
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::BadRequest(
            "after must be an event id (0 or more)".into(),
        ));
    }
    let limit = q.limit.unwrap_or_default();
    let status = q.status.map(DeliveryStatus::as_str);
    let rows = webhooks::deliveries(&**s.pool.get().await?, id, status, q.after, limit.get())
        .await?
        .ok_or_else(|| no_webhook(id))?;
    let next_after = (rows.len() as i64 == limit.get())
        .then(|| rows.last().map(|d| d.event_id))
        .flatten();
    Ok(axum::Json(DeliveryPage {
        items: rows.into_iter().map(DeliveryBody::from).collect(),
        next_after,
    }))
}
