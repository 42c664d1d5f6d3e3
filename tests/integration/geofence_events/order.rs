//! A step between two fixes over a fence smaller than the step raises enter and exit (a
//! cross); late and shuffled points are judged in their own time order and never flap a state
//! that newer points decided.

use serde_json::json;

use super::{events_of, fix, kinds, send, square};
use crate::helpers::{now_ms, spawn_app};

#[tokio::test]
async fn a_step_over_a_small_fence_raises_enter_then_exit() {
    let app = spawn_app().await;
    let kiosk = square(&app, "kiosk", (1000.0, -20.0, 1040.0, 20.0), json!({})).await;
    let vehicle = app.register(&["van-1"]).await[0];
    let t0 = now_ms() - 600_000;
    // 30 s apart, 600 m: the van was inside the 40 m kiosk for about 2 s, between fixes.
    send(&app, "van-1", &[fix(t0, 0, 700.0, 0.0)]).await;
    send(&app, "van-1", &[fix(t0, 30, 1300.0, 5.0)]).await;
    // A step that passes north of it raises nothing.
    send(&app, "van-1", &[fix(t0, 60, 700.0, 200.0)]).await;
    app.wait_settled(3).await;
    let events = events_of(&app, vehicle).await;
    assert_eq!(kinds(&events), ["enter", "exit"], "{events:?}");
    assert!(events
        .iter()
        .all(|e| e["fence_id"] == json!(kiosk.to_string())));
    // Dated halfway along the step.
    assert_eq!(events[0]["ts"], events[1]["ts"]);
    let mid = chrono::DateTime::from_timestamp_millis(t0 + 15_000).unwrap();
    assert_eq!(
        events[0]["ts"],
        json!(mid.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
}

#[tokio::test]
async fn late_and_shuffled_points_do_not_flap_the_state() {
    let app = spawn_app().await;
    square(&app, "depot", (0.0, 0.0, 1000.0, 1000.0), json!({})).await;
    let vehicle = app.register(&["van-2"]).await[0];
    let t0 = now_ms() - 600_000;

    // Shuffled within a message: judged in time order, so the enter is dated by the earliest.
    send(
        &app,
        "van-2",
        &[
            fix(t0, 12, 500.0, 500.0),
            fix(t0, 10, 500.0, 500.0),
            fix(t0, 11, 500.0, 500.0),
        ],
    )
    .await;
    app.wait_settled(1).await;
    // Late: older points from outside, in a later message. Stored, but they change nothing.
    send(
        &app,
        "van-2",
        &[
            fix(t0, 1, -500.0, 500.0),
            fix(t0, 2, -500.0, 500.0),
            fix(t0, 3, -500.0, 500.0),
        ],
    )
    .await;
    // Newer points inside keep it inside.
    send(&app, "van-2", &[fix(t0, 20, 500.0, 500.0)]).await;
    app.wait_settled(3).await;
    let events = events_of(&app, vehicle).await;
    assert_eq!(kinds(&events), ["enter"], "{events:?}");
    let first = chrono::DateTime::from_timestamp_millis(t0 + 10_000).unwrap();
    assert_eq!(
        events[0]["ts"],
        json!(first.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vehicle_telemetry WHERE vehicle_id = '{vehicle}'"
        ))
        .await,
        7,
        "late points are stored all the same"
    );
    // Redelivery of the same message raises nothing again.
    send(
        &app,
        "van-2",
        &[
            fix(t0, 12, 500.0, 500.0),
            fix(t0, 10, 500.0, 500.0),
            fix(t0, 11, 500.0, 500.0),
        ],
    )
    .await;
    app.wait_settled(4).await;
    assert_eq!(events_of(&app, vehicle).await.len(), 1);
}
