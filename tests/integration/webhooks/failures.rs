//! When webhook endpoints misbehave: a receiver down for a while loses nothing; 500s are
//! retried with growing delays; an endpoint failing past the retry horizon is disabled and its
//! given-up deliveries are listed as failed; the allowlist refuses other destinations before
//! any connection; a redirect is a failure, never followed.

use std::collections::BTreeSet;
use std::time::Duration;

use meridian::domain::Role;
use serde_json::{json, Value};

use super::receiver::{Mode, Receiver};
use super::{fast_app, fence, raise, register, verifies, wait_delivered, SECRET};
use crate::helpers::wait_until;

/// The webhook's deliveries as the API lists them.
async fn deliveries(admin: &crate::client::Client<'_>, id: &str, query: &str) -> Vec<Value> {
    let (status, page) = admin
        .get(&format!("/v1/webhooks/{id}/deliveries{query}"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_receiver_down_for_a_while_then_up_gets_every_event_none_lost() {
    let app = fast_app(&[]).await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicles = app.register(&["v-1", "v-2"]).await;
    let mut receiver = Receiver::start("127.0.0.1").await;
    let id = register(
        &admin,
        json!({"url": receiver.url("/hook"), "secret": SECRET}),
    )
    .await;

    // Down: connection refused. Events keep coming meanwhile.
    receiver.stop().await;
    let mut ids = Vec::new();
    for round in 0..5 {
        for v in &vehicles {
            let kind = if round % 2 == 0 { "enter" } else { "exit" };
            ids.extend(raise(&app, *v, &[(fence_id, kind)]).await.0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // "Minutes" compressed: several backoff rounds (50 ms doubling to 400 ms) go by refused.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = deliveries(&admin, &id, "?status=pending").await;
    assert_eq!(pending.len(), ids.len(), "{pending:?}");
    let first = &pending[0];
    assert!(first["attempts"].as_i64().unwrap() >= 3, "{first}");
    assert!(
        first["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{first}"
    );
    assert_eq!(first["last_status"], Value::Null);

    receiver.restart().await;
    wait_delivered(&receiver, &ids).await;
    let hits = receiver.hits();
    // Every event arrived; anything seen twice is the same event under the same id.
    let want: BTreeSet<String> = ids.iter().map(i64::to_string).collect();
    let got: BTreeSet<String> = hits.iter().map(|h| h.event_id.clone()).collect();
    assert_eq!(got, want);
    for hit in &hits {
        assert!(verifies(SECRET, &hit.body, &hit.signature));
        let body: Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(body["id"].to_string(), hit.event_id);
    }
    wait_until("deliveries recorded", || async {
        deliveries(&admin, &id, "?status=delivered").await.len() == ids.len()
    })
    .await;
    let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        w["deliveries"],
        json!({"pending": 0, "delivered": ids.len(), "failed": 0})
    );
    assert_eq!(
        (w["consecutive_failures"].as_i64(), &w["failing_since"]),
        (Some(0), &Value::Null)
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_growing_delays_until_accepted() {
    let app = fast_app(&[
        ("MERIDIAN_WEBHOOK_BACKOFF_BASE_MS", "200"),
        ("MERIDIAN_WEBHOOK_BACKOFF_MAX_MS", "5000"),
    ])
    .await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicle = app.register(&["v-1"]).await[0];
    let receiver = Receiver::start("127.0.0.1").await;
    receiver.fail_next(5);
    let id = register(
        &admin,
        json!({"url": receiver.url("/hook"), "secret": SECRET}),
    )
    .await;
    let (ids, _) = raise(&app, vehicle, &[(fence_id, "enter")]).await;
    wait_delivered(&receiver, &ids).await;

    let hits = receiver.hits();
    let answered: Vec<u16> = hits.iter().map(|h| h.answered).collect();
    assert_eq!(answered, [500, 500, 500, 500, 500, 204]);
    assert!(hits.iter().all(|h| h.event_id == ids[0].to_string()));
    // 200 ms doubling (each drawn from 75–100 % of its nominal value, plus up to one 200 ms
    // poll): every gap is longer than the one two before it, and the last the longest.
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1].at - w[0].at).collect();
    for i in 2..gaps.len() {
        assert!(gaps[i] > gaps[i - 2], "{gaps:?}");
    }
    assert_eq!(gaps.iter().max(), gaps.last(), "{gaps:?}");
    assert!(gaps[4] >= Duration::from_millis(2400), "{gaps:?}");
    wait_until("delivery recorded", || async {
        deliveries(&admin, &id, "").await[0]["status"] == "delivered"
    })
    .await;
    let d = &deliveries(&admin, &id, "").await[0];
    assert_eq!(
        (d["attempts"].as_i64(), d["last_status"].as_i64()),
        (Some(6), Some(204))
    );
}

#[tokio::test]
async fn an_endpoint_failing_past_the_horizon_is_disabled_and_its_deliveries_listed_failed() {
    // A retry horizon of 3.6 s stands in for the production 24 h.
    let app = fast_app(&[
        ("MERIDIAN_WEBHOOK_RETRY_HOURS", "0.001"),
        ("MERIDIAN_WEBHOOK_BACKOFF_MAX_MS", "200"),
    ])
    .await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicle = app.register(&["v-1"]).await[0];
    let receiver = Receiver::start("127.0.0.1").await;
    receiver.set_mode(Mode::Status(503));
    let id = register(
        &admin,
        json!({"url": receiver.url("/hook"), "secret": SECRET}),
    )
    .await;
    let (ids, _) = raise(&app, vehicle, &[(fence_id, "enter"), (fence_id, "exit")]).await;

    wait_until("webhook disabled", || async {
        admin.get(&format!("/v1/webhooks/{id}")).await.1["enabled"] == false
    })
    .await;
    let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
    let reason = w["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("no successful delivery since") && reason.contains("HTTP 503"),
        "{reason}"
    );
    assert!(w["consecutive_failures"].as_i64().unwrap() >= 10, "{w}");
    assert!(w["failing_since"].is_string(), "{w}");
    let failed = deliveries(&admin, &id, "?status=failed").await;
    assert!(!failed.is_empty(), "{w}");
    for d in &failed {
        assert!(ids.contains(&d["event_id"].as_i64().unwrap()));
        assert_eq!(d["last_status"], 503);
        assert_eq!(d["last_error"], "HTTP 503 Service Unavailable");
    }
    assert_eq!(
        w["deliveries"]["failed"].as_i64(),
        Some(failed.len() as i64),
        "{w}"
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("meridian_webhook_deliveries_failed_total"),
        "{metrics}"
    );
    assert!(metrics.contains("meridian_webhook_disabled_total"));
    assert!(metrics.contains(r#"meridian_webhook_attempts_total{outcome="rejected"}"#));

    // Disabled: nothing more is sent, and new events make no deliveries for it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = receiver.hits().len();
    assert_eq!(raise(&app, vehicle, &[(fence_id, "enter")]).await.1, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits().len(), sent);

    // Fixed and re-enabled: counters cleared, what was still pending goes out.
    receiver.set_mode(Mode::Ok);
    let (status, w) = admin
        .post(&format!("/v1/webhooks/{id}/enable"), json!(null))
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(
        (w["enabled"].as_bool(), w["consecutive_failures"].as_i64()),
        (Some(true), Some(0))
    );
    assert_eq!(
        (&w["disabled_reason"], &w["failing_since"]),
        (&Value::Null, &Value::Null)
    );
    wait_until("nothing pending", || async {
        admin.get(&format!("/v1/webhooks/{id}")).await.1["deliveries"]["pending"] == 0
    })
    .await;
}

#[tokio::test]
async fn outside_the_allowlist_nothing_is_sent_and_the_reason_is_recorded() {
    // Documentation range: nothing on this machine is in it.
    let app = fast_app(&[("MERIDIAN_WEBHOOK_ALLOW", "192.0.2.0/24, hooks.example.com")]).await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicle = app.register(&["v-1"]).await[0];
    let receiver = Receiver::start("127.0.0.1").await;
    let by_address = register(&admin, json!({"url": receiver.url("/a"), "secret": SECRET})).await;
    let by_name = register(
        &admin,
        json!({"url": format!("http://localhost:{}/b", receiver.addr.port()), "secret": SECRET}),
    )
    .await;
    raise(&app, vehicle, &[(fence_id, "enter")]).await;

    for (id, reason) in [
        (
            &by_address,
            "127.0.0.1 is not in MERIDIAN_WEBHOOK_ALLOW".to_owned(),
        ),
        (&by_name, "localhost resolves to ".to_owned()),
    ] {
        wait_until("a refused try recorded", || async {
            deliveries(&admin, id, "").await[0]["attempts"].as_i64() >= Some(2)
        })
        .await;
        let d = &deliveries(&admin, id, "").await[0];
        let error = d["last_error"].as_str().unwrap();
        assert!(
            error.contains(&reason) && error.contains("MERIDIAN_WEBHOOK_ALLOW"),
            "{error}"
        );
        assert_eq!(
            (&d["status"], &d["last_status"]),
            (&json!("pending"), &Value::Null)
        );
    }
    assert!(receiver.hits().is_empty(), "{:?}", receiver.hits());
    let (_, metrics) = app.get("/metrics").await;
    assert!(metrics.contains(r#"meridian_webhook_attempts_total{outcome="forbidden"}"#));
}

#[tokio::test]
async fn a_redirect_is_a_failure_naming_its_location_and_is_not_followed() {
    let app = fast_app(&[("MERIDIAN_WEBHOOK_ALLOW", "127.0.0.1/32")]).await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicle = app.register(&["v-1"]).await[0];
    // Another loopback address, outside the allowlist: where the redirect points.
    let trap = Receiver::start("127.0.0.2").await;
    let receiver = Receiver::start("127.0.0.1").await;
    let location = trap.url("/trap");
    receiver.set_mode(Mode::Redirect(location.clone()));
    let id = register(
        &admin,
        json!({"url": receiver.url("/hook"), "secret": SECRET}),
    )
    .await;
    raise(&app, vehicle, &[(fence_id, "enter")]).await;

    wait_until("two redirects answered", || async {
        receiver.hits().len() >= 2
    })
    .await;
    wait_until("the redirect recorded", || async {
        deliveries(&admin, &id, "").await[0]["last_status"] == 302
    })
    .await;
    let d = &deliveries(&admin, &id, "").await[0];
    assert_eq!(
        d["last_error"],
        format!("HTTP 302: redirect to {location} not followed")
    );
    assert_eq!(d["status"], "pending");
    assert!(trap.hits().is_empty());
    let (_, w) = admin.get(&format!("/v1/webhooks/{id}")).await;
    assert!(w["consecutive_failures"].as_i64().unwrap() >= 1, "{w}");
}
