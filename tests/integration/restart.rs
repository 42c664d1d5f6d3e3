//! A real PostgreSQL restart mid-ingest (`pg_ctl restart -m fast` on a cluster of the test's
//! own, not only killed connections): nothing lost, nothing doubled, `/readyz` failing during
//! the outage and ready again after, and the recovery time printed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::helpers::{connect, now_ms, point, spawn_node, wait_until};

/// One `/readyz` answer: when (since the probe started), its status, its body.
type Probe = (Duration, u16, String);

/// Polls `/readyz` every 20 ms until stopped; keeps every answer that differs from the last.
struct ReadyzProbe {
    started: Instant,
    seen: Arc<Mutex<Vec<Probe>>>,
    task: JoinHandle<()>,
}

impl ReadyzProbe {
    fn start(port: u16) -> Self {
        let started = Instant::now();
        let seen: Arc<Mutex<Vec<Probe>>> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let url = format!("http://127.0.0.1:{port}/readyz");
            loop {
                let (status, body) = match http.get(&url).send().await {
                    Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                {
                    let mut log = log.lock().unwrap();
                    if log
                        .last()
                        .is_none_or(|(_, s, b)| (*s, b) != (status, &body))
                    {
                        log.push((started.elapsed(), status, body));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self {
            started,
            seen,
            task,
        }
    }

    fn since_start(&self, at: Instant) -> Duration {
        at.duration_since(self.started)
    }

    fn answers(&self) -> Vec<Probe> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ReadyzProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn postgres_restarted_mid_ingest_loses_nothing_doubles_nothing_and_readiness_follows() {
    const N: i64 = 5000;
    let cluster = Cluster::start().await;
    let prefix = format!("r{}/", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let app = spawn_node(&cluster.url(), &prefix, &[("MERIDIAN_BATCH_ROWS", "100")]).await;
    let vehicles: Vec<String> = (0..10).map(|i| format!("restart-{i}")).collect();
    app.register(&vehicles.iter().map(String::as_str).collect::<Vec<_>>())
        .await;

    // ~1,000 messages/s for ~5 s: the restart (about a second) lands well inside the stream.
    let t0 = now_ms() - 120_000;
    let pace = (10, Duration::from_millis(10));
    let publishing = app
        .publisher
        .paced(&vehicles, N, pace, move |i| point(t0 + i, 48.0, 11.0));
    let probe = ReadyzProbe::start(app.port);
    let monitor = connect(&cluster.url()).await;
    let count = "SELECT count(*) FROM vehicle_telemetry";
    wait_until("ingest under way", || async {
        monitor
            .query_one(count, &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            >= 500
    })
    .await;

    let restart_began = Instant::now();
    let restart_began_ms = now_ms();
    cluster.restart_fast().await;
    let server_back = restart_began.elapsed();
    assert!(
        !publishing.is_finished(),
        "the restart must land mid-stream: publishing already ended"
    );

    publishing.await.unwrap();
    // Every message acked exactly once: `wait_settled` fails if more than N were settled.
    app.wait_settled(N as u64).await;
    wait_until("/readyz 200 again", || async {
        probe.answers().last().is_some_and(|(_, s, _)| *s == 200)
    })
    .await;

    // 0 lost, 0 doubled, point by point: exactly the published (vehicle, ts, position).
    let db = connect(&cluster.url()).await;
    let stored: Vec<(String, i64, f64)> = db
        .query(
            "SELECT v.external_id, (extract(epoch from t.ts) * 1000)::bigint, ST_Y(t.location) \
             FROM vehicle_telemetry t JOIN vehicles v ON v.id = t.vehicle_id ORDER BY t.ts, v.external_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(String, i64, f64)> = (0..N)
        .map(|i| (vehicles[(i % 10) as usize].clone(), t0 + i, 48.0))
        .collect();
    assert_eq!(stored.len(), expected.len(), "stored vs published");
    assert!(
        stored == expected,
        "stored points differ from the published ones"
    );
    let dead: i64 = db
        .query_one("SELECT count(*) FROM dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dead, 0);

    // Commits on both sides of the restart, timed by the server (track_commit_timestamp).
    let row = db
        .query_one(
            "WITH c AS (SELECT (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000)::bigint AS at \
                        FROM vehicle_telemetry), \
                  up AS (SELECT (extract(epoch from pg_postmaster_start_time()) * 1000)::bigint AS at) \
             SELECT count(*) FILTER (WHERE c.at < up.at), count(*) FILTER (WHERE c.at >= up.at), \
                    min(c.at) FILTER (WHERE c.at >= up.at), min(up.at) FROM c, up",
            &[],
        )
        .await
        .unwrap();
    let (before, after): (i64, i64) = (row.get(0), row.get(1));
    let (first_commit_ms, postmaster_up_ms): (i64, i64) = (row.get(2), row.get(3));
    assert!(
        before > 0 && after > 0,
        "rows committed before ({before}) and after ({after}) the restart"
    );

    // /readyz: ready before, 503 naming the database during the outage, 200 after it.
    let answers = probe.answers();
    let began = probe.since_start(restart_began);
    let outage = answers
        .iter()
        .find(|(at, status, _)| *at >= began && *status == 503)
        .unwrap_or_else(|| panic!("no 503 from /readyz after the restart began: {answers:?}"));
    assert!(
        outage.2.contains("\"database\":false"),
        "503 names the database: {}",
        outage.2
    );
    let back = answers
        .iter()
        .find(|(at, status, _)| *at > outage.0 && *status == 200)
        .unwrap_or_else(|| panic!("/readyz never 200 after the outage: {answers:?}"));
    assert!(
        answers
            .iter()
            .filter(|(at, _, _)| *at < began)
            .all(|(_, status, _)| *status == 200),
        "ready before the restart: {answers:?}"
    );
    eprintln!(
        "PostgreSQL restart (pg_ctl restart -m fast) mid-ingest: {N} published, {N} stored once \
         ({before} committed before, {after} after); server back after {} ms; first commit {} ms \
         after the restart began ({} ms after the new postmaster started); /readyz 503 from +{} ms, \
         200 again {} ms after the restart began",
        server_back.as_millis(),
        first_commit_ms - restart_began_ms,
        first_commit_ms - postmaster_up_ms,
        outage.0.saturating_sub(began).as_millis(),
        back.0.saturating_sub(began).as_millis(),
    );
}
