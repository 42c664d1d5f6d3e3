//! `Authorization: Bearer <key>` → the calling key and its role. Handlers take a `Caller`
//! and state which roles they serve; a missing, unknown or revoked key is 401, a key whose
//! role is not served is 403. Known keys are answered from this node's cache (see
//! `live::keys` for why revocation stays prompt).

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{ApiKeyList, ApiKeyView};
use super::{ApiError, AppState};
use crate::domain::Role;
use crate::store::api_keys::{self, ApiKey};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(list_keys))
}

pub struct Caller(pub ApiKey);

impl Caller {
    /// Admin may call everything; other roles only endpoints that name them.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if self.0.role.is_allowed(allowed) {
            return Ok(());
        }
        let mut names = vec!["admin"];
        names.extend(allowed.iter().map(|r| r.as_str()));
        Err(ApiError::Forbidden(format!(
            "role {} may not call this endpoint (allowed: {})",
            self.0.role,
            names.join(", ")
        )))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <api key>".into())
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("Authorization must be \"Bearer <api key>\"".into())
            })?;
        let hash = api_keys::hash(key);
        if let Some(known) = state.live.keys.get(&hash) {
            return Ok(Caller(known));
        }
        let generation = state.live.keys.generation();
        let client = state.pool.get().await?;
        let found = api_keys::find_active_by_hash(&**client, &hash)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked api key".into()))?;
        state.live.keys.insert(hash, found.clone(), generation);
        Ok(Caller(found))
    }
}

/// Which key is calling, with which role (any role).
#[utoipa::path(get, path = "/v1/whoami", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The calling key", body = ApiKeyView)))]
pub async fn whoami(caller: Caller) -> Json<ApiKeyView> {
    Json(caller.0.into())
}

/// Every API key, without secrets (admin).
#[utoipa::path(get, path = "/v1/apikeys", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Every key, oldest first", body = ApiKeyList)))]
pub async fn list_keys(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ApiKeyList>, ApiError> {
    caller.require(Role::ADMINS)?;
    let client = state.pool.get().await?;
    let items = api_keys::list(&**client)
        .await?
        .into_iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(Json(ApiKeyList { items }))
}
