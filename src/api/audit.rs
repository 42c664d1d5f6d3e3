//! The audit trail over HTTP: who did what, when — read by analysts and admins (not
//! dispatchers: the trail is about them). Also the one way handlers write an operation with
//! its audit row: `begin`, the operation on the transaction, `write_audit`, `commit`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::Query;
use super::page::{AtCursor, Limit};
use super::schema::{example, ErrorBody, JsonValue};
use super::{ApiError, AppState, Caller};
use crate::domain::Role;
use crate::store::audit::{self, AuditRow, Entity, Filter};
use crate::store::StoreError;

/// Longest `action` (the table's CHECK).
const MAX_ACTION: usize = 100;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// A transaction for one operation and its audit row.
pub(super) async fn begin(client: &mut Object) -> Result<Transaction<'_>, ApiError> {
    Ok(client.transaction().await.map_err(StoreError::from)?)
}

pub(super) async fn commit(tx: Transaction<'_>) -> Result<(), ApiError> {
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The operation's audit row, in its transaction: `before` and `after` are the API bodies, so
/// the trail shows exactly what clients were shown. The actor is the calling key.
pub(super) async fn write_audit<T: Serialize>(
    tx: &Transaction<'_>,
    caller: &Caller,
    entity: Entity,
    entity_id: Uuid,
    action: &str,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<(), ApiError> {
    let json = |body: &T| serde_json::to_value(body).expect("API bodies serialize");
    audit::record(
        &**tx,
        entity,
        entity_id,
        action,
        Some(caller.0.id),
        before.map(json).as_ref(),
        after.map(json).as_ref(),
    )
    .await?;
    Ok(())
}

/// One audit row.
#[derive(Serialize, ToSchema)]
pub struct AuditItem {
    id: Uuid,
    entity: Entity,
    entity_id: Uuid,
    /// What was done: `open`, `close`, `raise`, `resolve`, `dispatch`, …
    action: String,
    /// The API key that acted; `null` when the node acted on its own (queue drain, expiry).
    actor: Option<Uuid>,
    /// The entity as the API showed it before; `null` when it was created.
    #[schema(value_type = JsonValue)]
    before: Option<Box<RawValue>>,
    /// The entity as the API showed it after; `null` when it was removed.
    #[schema(value_type = JsonValue)]
    after: Option<Box<RawValue>>,
    at: DateTime<Utc>,
}

impl From<AuditRow> for AuditItem {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            entity: r.entity,
            entity_id: r.entity_id,
            action: r.action,
            actor: r.actor,
            before: r.before,
            after: r.after,
            at: r.at,
        }
    }
}

/// A page of the trail in `(at, id)` order, oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditItem>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<AtCursor>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(example = "maintenance")]
    entity: Option<Entity>,
    /// The entity's id (with or without `entity`).
    #[param(example = json!(example::MAINTENANCE_ID))]
    entity_id: Option<Uuid>,
    /// Exact match.
    #[param(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*$",
        example = "open"
    )]
    action: Option<String>,
    /// Rows at or after this instant.
    #[param(example = "2026-11-01T00:00:00Z")]
    from: Option<DateTime<Utc>>,
    /// Rows before this instant (exclusive); not before `from`.
    #[param(example = "2026-12-01T00:00:00Z")]
    to: Option<DateTime<Utc>>,
    /// The previous page's `next_after`.
    #[param(example = "1767225600123456_0b7e4c1a-2f3d-4e5a-8b6c-7d8e9f0a1b2c")]
    after: Option<AtCursor>,
    #[param(example = 100)]
    limit: Option<Limit>,
}

/// The audit trail, oldest first, filtered by entity, id, action and time; in pages.
#[utoipa::path(get, path = "/v1/audit", operation_id = "list_audit", tag = "audit", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of audit rows in (at, id) order", body = AuditPage),
              (status = 422, description = "`from` after `to`, or an empty or over-long `action`", body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    caller.require(&[Role::Analyst])?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from > to {
            return Err(ApiError::Invalid(format!(
                "from ({from}) must not be after to ({to})"
            )));
        }
    }
    if let Some(action) = &q.action {
        let n = action.chars().count();
        if n == 0 || n > MAX_ACTION {
            return Err(ApiError::Invalid(format!(
                "action: 1 to {MAX_ACTION} characters"
            )));
        }
    }
    let limit = q.limit.unwrap_or_default();
    let filter = Filter {
        entity: q.entity,
        entity_id: q.entity_id,
        action: q.action,
        from: q.from,
        to: q.to,
        after: q.after.map(|c| (c.at, c.id)),
        limit: limit.get(),
    };
    let rows = audit::list(&**s.pool.get().await?, &filter).await?;
    let next_after = AtCursor::next(&rows, limit, |r| (r.at, r.id));
    Ok(axum::Json(AuditPage {
        items: rows.into_iter().map(AuditItem::from).collect(),
        next_after,
    }))
}
