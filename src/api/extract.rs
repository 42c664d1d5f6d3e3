//! Extractors whose rejections are `ApiError`s, so a malformed body, query or path gets the
//! same JSON error shape as everything else: syntax errors 400, well-formed but wrong 422.
//!
//! This is also the one place that refuses U+0000: PostgreSQL text and jsonb cannot hold it
//! ("invalid byte sequence for encoding UTF8: 0x00"), so a NUL anywhere in a JSON body (values
//! or keys, however deeply nested) or in a query value is a 422 naming the field, before any
//! handler runs. The document states the same rule as a `pattern` on every string.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// A JSON body, checked for NUL and read into `T` with the failing field's path in the message.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        from_value(value).map(Json)
    }
}

/// A parsed JSON body as `T`: NUL anywhere is refused first, then serde names the field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if let Some(at) = nul_at(&value, "") {
        return Err(nul_error(&at));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => ApiError::Invalid(e.into_inner().to_string()),
            _ => ApiError::Invalid(format!("{path}: {}", e.into_inner())),
        }
    })
}

fn nul_error(field: &str) -> ApiError {
    ApiError::Invalid(format!("{field}: text must not contain U+0000 (NUL)"))
}

/// The path (`specs.a[2]`, `items[0].external_id`) of the first string or key holding a NUL.
fn nul_at(v: &Value, path: &str) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, &format!("{}[{i}]", here()))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(format!("{} (a key)", here()))
            } else {
                nul_at(item, &field)
            }
        }),
        _ => None,
    }
}

/// A query string: NUL in a value (`%00`) is refused naming the parameter, then axum's parser.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Every `%` starts an escape, so `%00` can only be an encoded NUL (`%2500` is "%00").
        let raw = parts.uri.query().unwrap_or_default();
        if let Some(pair) = raw.split('&').find(|p| p.contains("%00")) {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            return Err(nul_error(&key.replace("%00", "")));
        }
        let axum::extract::Query(q) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(q))
    }
}

/// An optional JSON body, read from the raw bytes: empty (or only whitespace, or `null`) is
/// `T::default()`; anything else is read like `Json`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
    Ok(from_value::<Option<T>>(value)?.unwrap_or_default())
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Invalid(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => {
                ApiError::UnsupportedMediaType(e.body_text())
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_nul_anywhere_is_found_with_its_path() {
        assert_eq!(
            nul_at(&json!({"a": "ok", "b": [1, {"c": "x\u{0}"}]}), ""),
            Some("b[1].c".into())
        );
        assert_eq!(
            nul_at(&json!({"specs": {"k\u{0}": 1}}), ""),
            Some("specs (a key)".into())
        );
        assert_eq!(nul_at(&json!("\u{0}"), ""), Some("body".into()));
        assert_eq!(nul_at(&json!({"a": "\\u0000 is six characters"}), ""), None);
    }
}
