//! `Authorization: Bearer <key>` → the calling key and its role. Handlers take a `Caller`
//! and state which roles they serve; a missing, unknown or revoked key is 401, a key whose
//! role is not served is 403.

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use crate::domain::Role;
use crate::store::api_keys::{self, ApiKey};

pub struct Caller(pub ApiKey);

impl Caller {
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if self.0.role.is_allowed(allowed) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "role {} may not call this endpoint (allowed: admin, {})",
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
        let client = state
            .pool
            .get()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let found = api_keys::find_active(&**client, key)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        found
            .map(Caller)
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked api key".into()))
    }
}

/// `GET /v1/whoami`: which key is calling, with which role (any role).
pub async fn whoami(caller: Caller) -> Json<Value> {
    let k = caller.0;
    Json(json!({ "id": k.id, "name": k.name, "role": k.role.as_str(), "key_prefix": k.key_prefix }))
}

/// `GET /v1/apikeys`: every key, without secrets (admin).
pub async fn list_keys(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[])?;
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let keys = api_keys::list(&**client)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(json!({ "items": keys })))
}
