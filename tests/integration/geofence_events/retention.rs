//! Retention: events past it go, unless still to publish or with a delivery pending; finished
//! deliveries past it go; the rest stays.

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn events_and_finished_deliveries_past_retention_are_deleted_and_pending_ones_kept() {
    let app = spawn_app().await;
    let (vehicle, fence) = (Uuid::new_v4(), Uuid::new_v4());
    let hook: Uuid = app
        .db
        .query_one(
            "INSERT INTO webhooks (url, secret) VALUES ('https://example.test/h', 'a-secret-of-16-chars+') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let old = Utc::now() - TimeDelta::days(400);
    let recent = Utc::now() - TimeDelta::days(2);
    // (event time, in the outbox, its delivery: status and when it was created)
    let cases = [
        ("old, nothing pending", old, false, None),
        ("old, still in the outbox", old, true, None),
        ("old, delivery pending", old, false, Some(("pending", old))),
        ("old, delivered", old, false, Some(("delivered", old))),
        ("old, delivery failed", old, false, Some(("failed", old))),
        (
            "recent, delivered",
            recent,
            false,
            Some(("delivered", recent)),
        ),
    ];
    let mut ids = Vec::new();
    for (name, ts, outbox, delivery) in cases {
        let id: i64 = app
            .db
            .query_one(
                "INSERT INTO geofence_events (vehicle_id, fence_id, external_id, type, ts, lon, lat)
                 VALUES ($1, $2, $3, 'enter', $4, 10.75, 59.91) RETURNING id",
                &[&vehicle, &fence, &name, &ts],
            )
            .await
            .unwrap()
            .get(0);
        if outbox {
            app.db
                .execute(
                    "INSERT INTO geofence_outbox (vehicle_id, event_id) VALUES ($1, $2)",
                    &[&vehicle, &id],
                )
                .await
                .unwrap();
        }
        if let Some((status, created)) = delivery {
            app.db
                .execute(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, vehicle_id, status, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&hook, &id, &vehicle, &status, &created],
                )
                .await
                .unwrap();
        }
        ids.push(id);
    }

    let before = Utc::now() - TimeDelta::days(365);
    let pruned = meridian::store::geofence_events::prune(&app.db, before)
        .await
        .unwrap();
    assert_eq!(pruned, (3, 2), "(events, deliveries) deleted");
    let kept: Vec<String> = app
        .column("SELECT external_id FROM geofence_events ORDER BY id")
        .await;
    assert_eq!(
        kept,
        [
            "old, still in the outbox",
            "old, delivery pending",
            "recent, delivered"
        ]
    );
    let deliveries: Vec<i64> = app
        .column("SELECT event_id FROM webhook_deliveries ORDER BY event_id")
        .await;
    assert_eq!(
        deliveries,
        [ids[2], ids[5]],
        "the pending and the recent one"
    );

    let again = meridian::store::geofence_events::prune(&app.db, before)
        .await
        .unwrap();
    assert_eq!(again, (0, 0), "nothing more to delete");
}
