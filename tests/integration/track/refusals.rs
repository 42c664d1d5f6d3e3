//! Requests the track endpoint refuses, each with the right 4xx and a message a user can act
//! on; and who may read a track.

use chrono::{Duration, Utc};
use meridian::domain::Role;
use uuid::Uuid;

use super::{rfc3339, track_path};
use crate::client::code;
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn bad_requests_get_a_json_4xx_that_says_what_to_change() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["refuse-1"]).await[..] else {
        unreachable!()
    };
    let analyst = app.client(Role::Analyst).await;
    let now = Utc::now();
    let hour_ago = now - Duration::hours(1);
    let base = format!("/v1/vehicles/{vehicle}/track");
    let ok = track_path(vehicle, hour_ago, now, "");
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            format!("{base}?to={}", rfc3339(now)),
            400,
            "bad_request",
            "from",
        ),
        (
            format!("{base}?from={}", rfc3339(now)),
            400,
            "bad_request",
            "to",
        ),
        (
            format!("{base}?from=yesterday&to={}", rfc3339(now)),
            400,
            "bad_request",
            "from",
        ),
        (
            format!("{ok}&resolution=2m"),
            400,
            "bad_request",
            "resolution",
        ),
        (format!("{ok}&format=xml"), 400, "bad_request", "format"),
        (format!("{ok}&simplify_m=0"), 422, "invalid", "simplify_m"),
        (format!("{ok}&simplify_m=-5"), 422, "invalid", "simplify_m"),
        (format!("{ok}&simplify_m=NaN"), 422, "invalid", "simplify_m"),
        (format!("{ok}&simplify_m=inf"), 422, "invalid", "simplify_m"),
        (
            track_path(vehicle, now, hour_ago, ""),
            422,
            "invalid",
            "must be before",
        ),
        (
            track_path(vehicle, now, now, ""),
            422,
            "invalid",
            "must be before",
        ),
        (
            track_path(vehicle, now - Duration::days(10), now, ""),
            422,
            "range_too_large",
            "(at most 7 days); resolution 1m covers it",
        ),
        (
            track_path(vehicle, now - Duration::days(29), now, "&resolution=1m"),
            200,
            "",
            "",
        ),
        (
            track_path(
                vehicle,
                now - Duration::days(60),
                now - Duration::days(59),
                "&resolution=5m",
            ),
            422,
            "beyond_retention",
            "use 1h or 1d",
        ),
        (
            track_path(
                vehicle,
                now - Duration::days(400),
                now - Duration::days(399),
                "&resolution=1h",
            ),
            422,
            "beyond_retention",
            "use 1d",
        ),
        (
            track_path(
                vehicle,
                now - Duration::days(400),
                now - Duration::days(399),
                "&resolution=1d",
            ),
            200,
            "",
            "",
        ),
        (
            track_path(
                vehicle,
                now - Duration::days(365 * 60),
                now,
                "&resolution=1d",
            ),
            422,
            "range_too_large",
            "ask for a shorter range",
        ),
        // The ends of RFC 3339's years answer, not fail: the last bucket of 9999 ends in 9999.
        (
            format!("{base}?from=0001-01-01T00:00:00Z&to=0001-01-03T00:00:00Z&resolution=1d"),
            200,
            "",
            "",
        ),
        (
            format!("{base}?from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59Z&resolution=1h"),
            200,
            "",
            "",
        ),
        (
            track_path(Uuid::new_v4(), hour_ago, now, ""),
            404,
            "not_found",
            "no vehicle",
        ),
        (
            format!(
                "/v1/vehicles/nope/track?from={}&to={}",
                rfc3339(hour_ago),
                rfc3339(now)
            ),
            400,
            "bad_request",
            "",
        ),
    ];
    for (path, status, want_code, words) in cases {
        let (got, body) = analyst.get(&path).await;
        assert_eq!(got, status, "{path}: {body}");
        if status != 200 {
            assert_eq!(code(&body), want_code, "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(words),
                "{path}: {message:?} lacks {words:?}"
            );
        }
    }
}

#[tokio::test]
async fn raw_retention_follows_the_setting() {
    let app = spawn_app_with(&[("MERIDIAN_RETENTION_RAW_DAYS", "3")]).await;
    let [vehicle] = app.register(&["refuse-2"]).await[..] else {
        unreachable!()
    };
    let analyst = app.client(Role::Analyst).await;
    let now = Utc::now();
    let path = track_path(
        vehicle,
        now - Duration::days(4),
        now - Duration::days(3),
        "",
    );
    let (status, body) = analyst.get(&path).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(code(&body), "beyond_retention");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keeps 3 days"),
        "{body}"
    );
    let path = track_path(vehicle, now - Duration::days(2), now, "");
    assert_eq!(analyst.get(&path).await.0, 200);
}

#[tokio::test]
async fn readers_may_read_a_track_and_a_request_without_a_key_may_not() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["refuse-3"]).await[..] else {
        unreachable!()
    };
    let now = Utc::now();
    let path = track_path(vehicle, now - Duration::hours(1), now, "");
    for role in [Role::Admin, Role::Dispatcher, Role::Analyst] {
        let (status, body) = app.client(role).await.get(&path).await;
        assert_eq!(status, 200, "{role}: {body}");
        assert_eq!(body["points"], serde_json::json!([]));
    }
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 401, "{body}");
}
