//! Response bodies as types: what handlers return and what `/openapi.json` describes are
//! the same structs, so the document cannot drift from the wire.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::api_keys::ApiKey;

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthorized`, `forbidden`, `not_found`, `unavailable`, `internal`.
    pub code: &'static str,
    /// What went wrong, for a human.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: ReadinessChecks,
    /// Every part of the node that cannot do its job right now, with the reason.
    pub failing: Vec<FailingCheck>,
}

#[derive(Serialize, ToSchema)]
pub struct FailingCheck {
    /// Which part: e.g. `ingest_writer`, `mqtt_subscription`, `mqtt_session`.
    pub check: &'static str,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    pub database: bool,
    pub migrations: bool,
    /// `null` on a node with ingest switched off.
    pub broker: Option<bool>,
    /// The in-memory nearest-driver index is loaded and no older than its staleness limit.
    pub live_index: bool,
}

/// An API key as the API shows it: never the secret or its hash.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// `admin`, `dispatcher` or `analyst`.
    pub role: &'static str,
    /// The first characters of the key, to recognise it.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role.as_str(),
            key_prefix: k.key_prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}
