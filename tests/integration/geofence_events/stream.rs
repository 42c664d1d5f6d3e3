//! `GET /v1/stream`: geofence events as Server-Sent Events, resumed after a disconnect from
//! `Last-Event-ID` with nothing skipped or repeated; positions on request, filtered by box and
//! throttled per vehicle.

use std::time::Duration;

use meridian::domain::Role;
use serde_json::{json, Value};

use super::{at, fix, send, square};
use crate::helpers::{now_ms, spawn_app, wait_until, TestApp};

/// One SSE message.
#[derive(Debug, Clone)]
struct Message {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A client reading `/v1/stream`.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Self {
        let key = app.client(Role::Analyst).await.key.clone();
        let mut req = app
            .http
            .get(format!("http://127.0.0.1:{}/v1/stream?{query}", app.port))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message (comments skipped), or `None` if none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(Message {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout(wait, self.response.chunk())
                .await
                .ok()?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()?));
        }
    }

    async fn take(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::new();
        while out.len() < n {
            let m = self
                .next(Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("only {} of {n} messages came", out.len()));
            out.push(m);
        }
        out
    }
}

/// Drives vehicle `name` into the depot (an enter) and out again (an exit).
async fn in_and_out(app: &TestApp, name: &str, t0: i64) {
    let mut points: Vec<Value> = (0..3).map(|s| fix(t0, s, 500.0, 500.0)).collect();
    points.extend((10..13).map(|s| fix(t0, s, -500.0, 500.0)));
    send(app, name, &points).await;
}

async fn all_event_ids(app: &TestApp) -> Vec<i64> {
    let (_, page) = app
        .client(Role::Analyst)
        .await
        .get("/v1/geofence-events?limit=1000")
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_event_stream_resumes_from_last_event_id_without_gaps_or_repeats() {
    let app = spawn_app().await;
    square(&app, "depot", (0.0, 0.0, 1000.0, 1000.0), json!({})).await;
    let names: Vec<String> = (0..12).map(|i| format!("s-{i}")).collect();
    app.register(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let t0 = now_ms() - 600_000;

    let mut first = Stream::open(&app, "events=true", None).await;
    for name in &names[..6] {
        in_and_out(&app, name, t0).await;
    }
    let seen = first.take(12).await;
    assert!(seen.iter().all(|m| m.event == "geofence" && m.id.is_some()));
    // Disconnected after the 7th; the rest of the first half and a second half happen meanwhile.
    let resume_at = seen[6].id.clone().unwrap();
    drop(first);
    for name in &names[6..] {
        in_and_out(&app, name, t0).await;
    }
    app.wait_settled(12).await;
    wait_until("24 events stored", || async {
        all_event_ids(&app).await.len() == 24
    })
    .await;

    let mut resumed = Stream::open(&app, "events=true", Some(&resume_at)).await;
    let rest = resumed.take(17).await;
    let mut ids: Vec<i64> = seen[..7]
        .iter()
        .chain(rest.iter())
        .map(|m| m.data["id"].as_i64().unwrap())
        .collect();
    assert!(
        resumed.next(Duration::from_millis(500)).await.is_none(),
        "nothing more"
    );
    ids.sort_unstable();
    let mut want = all_event_ids(&app).await;
    want.sort_unstable();
    assert_eq!(ids, want, "every event once across the reconnect");
    // The stream's data is the event object, as the API gives it.
    assert_eq!(
        rest[0].data.as_object().unwrap().len(),
        9,
        "{:?}",
        rest[0].data
    );
    // A resume id the stream never sent is refused.
    let key = app.client(Role::Analyst).await.key.clone();
    let bad = app
        .http
        .get(format!("http://127.0.0.1:{}/v1/stream", app.port))
        .bearer_auth(key)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn positions_stream_inside_the_box_throttled_per_vehicle() {
    let app = spawn_app().await;
    app.register(&["p-in", "p-out"]).await;
    let (w, s) = at(-1000.0, -1000.0);
    let (e, n) = at(1000.0, 1000.0);
    let mut stream = Stream::open(
        &app,
        &format!("events=false&positions=true&bbox={w},{s},{e},{n}&min_interval_ms=5000"),
        None,
    )
    .await;
    let t0 = now_ms() - 60_000;
    // Until the writers have heard of the lease (≤ 1 s), positions are not announced: keep
    // publishing a fresh point a second until one comes through.
    let mut second = 0;
    let first = loop {
        send(&app, "p-in", &[fix(t0, second, 0.0, 0.0)]).await;
        send(&app, "p-out", &[fix(t0, second, 5000.0, 0.0)]).await;
        second += 1;
        if let Some(m) = stream.next(Duration::from_millis(1000)).await {
            break m;
        }
        assert!(second < 20, "no position streamed");
    };
    assert_eq!(first.event, "position");
    // Then 10 points 1 s apart, each committed on its own (a commit announces a vehicle's
    // latest point only): 5 s throttling lets two through, and none of p-out.
    let mut published = 2 * second as u64;
    for k in 0..10 {
        send(&app, "p-in", &[fix(t0, second + 100 + k, 10.0, 0.0)]).await;
        send(&app, "p-out", &[fix(t0, second + 100 + k, 5000.0, 0.0)]).await;
        published += 2;
        app.wait_settled(published).await;
    }
    let mut more = Vec::new();
    while let Some(m) = stream.next(Duration::from_millis(1500)).await {
        more.push(m);
    }
    assert_eq!(more.len(), 2, "{more:?}");
    let ids: Vec<_> = more.iter().map(|m| m.data["vehicle_id"].clone()).collect();
    assert!(
        ids.iter().all(|v| *v == first.data["vehicle_id"]),
        "{more:?}"
    );
}
