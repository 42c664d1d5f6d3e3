//! Requests the export refuses, each a JSON 4xx naming what to change; and who may export.

use chrono::{Duration, Utc};
use meridian::domain::Role;
use serde_json::Value;
use uuid::Uuid;

use super::{fetch, history_path, key};
use crate::helpers::spawn_app;
use crate::track::rfc3339;

#[tokio::test]
async fn bad_requests_get_a_json_4xx_that_says_what_to_change() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["export-refuse"]).await[..] else {
        unreachable!()
    };
    let analyst = key(&app, Role::Analyst).await;
    let now = Utc::now();
    let day_ago = now - Duration::days(1);
    let ok = history_path(day_ago, now, "");
    let stranger = Uuid::new_v4();
    let too_many = vec![vehicle.to_string(); 1001].join(",");
    let cases: Vec<(String, u16, &str, String)> = vec![
        (
            format!("/v1/history?to={}", rfc3339(now)),
            400,
            "bad_request",
            "from".into(),
        ),
        (
            format!("/v1/history?from={}", rfc3339(now)),
            400,
            "bad_request",
            "to".into(),
        ),
        (
            format!("/v1/history?from=yesterday&to={}", rfc3339(now)),
            400,
            "bad_request",
            "from".into(),
        ),
        (
            format!("{ok}&resolution=1m"),
            400,
            "bad_request",
            "resolution".into(),
        ),
        (
            format!("{ok}&format=xlsx"),
            400,
            "bad_request",
            "format".into(),
        ),
        (
            format!("{ok}&vehicle_ids={vehicle},truck-17"),
            400,
            "bad_request",
            "\"truck-17\" is not a UUID".into(),
        ),
        (
            format!("{ok}&vehicle_ids={vehicle},%20{vehicle}"),
            400,
            "bad_request",
            "is not a UUID".into(),
        ),
        (
            format!("{ok}&vehicle_ids="),
            400,
            "bad_request",
            "empty".into(),
        ),
        (
            format!("{ok}&vehicle_ids={too_many}"),
            422,
            "invalid",
            "at most 1000".into(),
        ),
        (
            format!("{ok}&vehicle_ids={vehicle},{stranger}"),
            404,
            "not_found",
            format!("no vehicle {stranger}"),
        ),
        (
            history_path(now, day_ago, ""),
            422,
            "invalid",
            "must be before".into(),
        ),
        (
            history_path(now, now, ""),
            422,
            "invalid",
            "must be before".into(),
        ),
        (
            history_path(now - Duration::days(401), now, ""),
            422,
            "range_too_large",
            "(at most 400 days); resolution 1d covers it".into(),
        ),
        (
            history_path(now - Duration::days(399), now, ""),
            200,
            "",
            String::new(),
        ),
        (
            history_path(now - Duration::days(365 * 51), now, "&resolution=1d"),
            422,
            "range_too_large",
            "ask for a shorter range".into(),
        ),
        (
            history_path(now - Duration::days(365 * 49), now, "&resolution=1d"),
            200,
            "",
            String::new(),
        ),
        (
            format!("{ok}&vehicle_ids={vehicle},{vehicle}"),
            200,
            "",
            String::new(),
        ),
    ];
    for (path, status, want_code, words) in cases {
        let res = fetch(&app, &analyst, &path, false).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "{path}: {text}");
        if status != 200 {
            let body: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
            assert_eq!(body["error"]["code"], want_code, "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&words),
                "{path}: {message:?} lacks {words:?}"
            );
        }
    }
}

#[tokio::test]
async fn analysts_and_admins_export_dispatchers_and_strangers_may_not() {
    let app = spawn_app().await;
    let now = Utc::now();
    let path = history_path(now - Duration::hours(2), now, "");
    for (role, status) in [
        (Role::Analyst, 200),
        (Role::Admin, 200),
        (Role::Dispatcher, 403),
    ] {
        let res = fetch(&app, &key(&app, role).await, &path, false).await;
        assert_eq!(res.status().as_u16(), status, "{role}");
        let text = res.text().await.unwrap();
        if status == 403 {
            assert!(text.contains("\"forbidden\""), "{text}");
        }
    }
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 401, "{body}");
}
