//! Calling the HTTP API as a client would: with a key of a given role, JSON in and out.

use meridian::domain::Role;
use meridian::store::api_keys;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

pub struct Client<'a> {
    app: &'a TestApp,
    pub key: String,
}

impl TestApp {
    /// A client holding a fresh key with `role`.
    pub async fn client(&self, role: Role) -> Client<'_> {
        let (_, key) = api_keys::create(&self.db, &format!("{role} test"), role)
            .await
            .unwrap();
        Client { app: self, key }
    }
}

impl Client<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.app.port))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Sends raw bytes with a given content type (for malformed-input tests).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (u16, Value) {
        let res = self
            .app
            .http
            .post(format!("http://127.0.0.1:{}{path}", self.app.port))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// The error code of a JSON error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<not a JSON error>")
}
