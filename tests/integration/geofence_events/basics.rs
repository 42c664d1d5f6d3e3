//! Enter, dwell and exit from real ingest, each event once, with the contract's fields, in the
//! API and on `meridian/events/geofence/{fence_id}`.

use serde_json::json;

use super::{events_of, fix, kinds, send, square, Listener};
use crate::helpers::{now_ms, spawn_app};

#[tokio::test]
async fn a_vehicle_entering_dwelling_and_leaving_raises_each_event_once_in_the_api_and_on_mqtt() {
    let app = spawn_app().await;
    let depot = square(
        &app,
        "depot",
        (0.0, 0.0, 1000.0, 1000.0),
        json!({"dwell_s": 60}),
    )
    .await;
    let vehicle = app.register(&["truck-1"]).await[0];
    let listener = Listener::start(&app.prefix).await;
    let t0 = now_ms() - 600_000;

    // Outside, then three fixes 500 m inside (confirming at the third), a minute and more
    // inside (dwell), then three fixes 400 m west of the fence (exit).
    let mut points = vec![fix(t0, 0, -500.0, 500.0), fix(t0, 10, -300.0, 500.0)];
    points.extend((20..23).map(|s| fix(t0, s, 500.0, 500.0)));
    points.push(fix(t0, 50, 500.0, 510.0));
    points.push(fix(t0, 85, 500.0, 520.0));
    points.extend((100..103).map(|s| fix(t0, s, -400.0, 500.0)));
    // In three messages, so the judging crosses batch boundaries.
    send(&app, "truck-1", &points[..3]).await;
    send(&app, "truck-1", &points[3..7]).await;
    send(&app, "truck-1", &points[7..]).await;
    app.wait_settled(3).await;

    let events = events_of(&app, vehicle).await;
    assert_eq!(kinds(&events), ["enter", "dwell", "exit"], "{events:?}");
    let enter = &events[0];
    assert_eq!(enter["fence_id"], json!(depot.to_string()));
    assert_eq!(enter["external_id"], "truck-1");
    assert_eq!(
        enter["ts"],
        points[2]["ts"].as_i64().map(ms_to_rfc3339).unwrap()
    );
    assert_eq!(enter["lat"], points[2]["lat"]);
    assert_eq!(
        events[1]["ts"],
        points[6]["ts"].as_i64().map(ms_to_rfc3339).unwrap()
    );
    assert_eq!(
        events[2]["ts"],
        points[7]["ts"].as_i64().map(ms_to_rfc3339).unwrap()
    );
    let mut keys: Vec<&String> = enter.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "external_id",
            "fence_id",
            "id",
            "lat",
            "lon",
            "recorded_at",
            "ts",
            "type",
            "vehicle_id"
        ]
    );

    let published = listener.wait_for(3).await;
    for e in &events {
        let (topic, body) = &published[&e["id"].as_i64().unwrap()];
        assert_eq!(
            topic,
            &format!("{}meridian/events/geofence/{depot}", app.prefix)
        );
        assert_eq!(body, e, "the MQTT body is the event itself");
    }
    // Delivered: nothing left in the outbox.
    app.wait_until("outbox empty", || async {
        app.count("SELECT count(*) FROM geofence_outbox").await == 0
    })
    .await;
}

fn ms_to_rfc3339(ms: i64) -> serde_json::Value {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}
