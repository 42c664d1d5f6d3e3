//! One error type for the HTTP layer, mapped to a response once: 4xx carry a message the
//! client can act on; 5xx carry a generic message while the cause is logged.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::schema::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A 409 with a machine-readable reason (and, for a status change, where it may go).
    #[error("{message}")]
    Refused {
        message: String,
        reason: &'static str,
        allowed_next: Option<Vec<&'static str>>,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Invalid(String),
    /// A 422 with its own code, for refusals a client handles apart from a bad field
    /// (`range_too_large`, `beyond_retention`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Constraint violations are the client's business (409/422) and say which constraint;
/// everything else from the store is internal.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use tokio_postgres::error::SqlState;
        let detail = || match &e {
            crate::store::StoreError::Db(db) => db
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        match e.sqlstate() {
            Some(s) if *s == SqlState::UNIQUE_VIOLATION || *s == SqlState::EXCLUSION_VIOLATION => {
                ApiError::Conflict(detail())
            }
            Some(s) if *s == SqlState::FOREIGN_KEY_VIOLATION || *s == SqlState::CHECK_VIOLATION => {
                ApiError::Invalid(detail())
            }
            _ => ApiError::Internal(e.into()),
        }
    }
}

impl From<crate::dispatch::DispatchError> for ApiError {
    fn from(e: crate::dispatch::DispatchError) -> Self {
        use crate::dispatch::DispatchError as E;
        let message = e.to_string();
        match e {
            E::NoJob(_) => ApiError::NotFound(message),
            E::NoDriver(id) => ApiError::Invalid(format!("driver_id: no driver {id}")),
            E::JobNotOpen { .. } => ApiError::Refused {
                message,
                reason: "job_not_open",
                allowed_next: None,
            },
            E::DriverUnavailable { reason, .. } => ApiError::Refused {
                message,
                reason: reason.as_str(),
                allowed_next: None,
            },
            E::IndexUnavailable => ApiError::Unavailable(message),
            E::Store(e) => e.into(),
            E::Pool(e) => e.into(),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized(m) => {
                let www = [(header::WWW_AUTHENTICATE, "Bearer")];
                return (StatusCode::UNAUTHORIZED, www, body("unauthorized", m)).into_response();
            }
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::Refused {
                message,
                reason,
                allowed_next,
            } => {
                let detail = ErrorDetail {
                    code: "conflict",
                    message,
                    reason: Some(reason),
                    allowed_next,
                };
                let body = Json(ErrorBody { error: detail });
                return (StatusCode::CONFLICT, body).into_response();
            }
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            ApiError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            ApiError::Unprocessable { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        (status, body(code, message)).into_response()
    }
}

fn body(code: &'static str, message: String) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: ErrorDetail {
            code,
            message,
            reason: None,
            allowed_next: None,
        },
    })
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}
