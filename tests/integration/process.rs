//! The real binary under real signals: SIGKILL mid-stream loses and doubles nothing;
//! SIGTERM commits and acks everything it took from the broker before exiting.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectProperties, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{connect, fresh_database, mqtt_url, now_ms, test_env, wait_until, Publisher};

struct Node {
    env: HashMap<String, String>,
    addr: String,
}

impl Node {
    fn new(db_url: &str, prefix: &str, client_id: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let env = test_env(
            db_url,
            prefix,
            client_id,
            &[
                ("MERIDIAN_HTTP_ADDR", &addr),
                ("MERIDIAN_BATCH_ROWS", "200"),
            ],
        );
        Self { env, addr }
    }

    async fn start(&self) -> Child {
        self.start_with(Stdio::inherit()).await
    }

    async fn start_with(&self, stderr: Stdio) -> Child {
        let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("serve")
            .envs(&self.env)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("meridian binary starts");
        let url = format!("http://{}/readyz", self.addr);
        wait_until("node ready", || {
            let url = url.clone();
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await; // ready implies the SUBACK granted every filter
        child
    }
}

struct Setup {
    db: tokio_postgres::Client,
    node: Node,
    publisher: Publisher,
    client_id: String,
    vehicles: Vec<String>,
}

async fn setup() -> Setup {
    let (_, db_url) = fresh_database().await;
    let db = connect(&db_url).await;
    let id = Uuid::new_v4().simple().to_string();
    let prefix = format!("p{}/", &id[..12]);
    let client_id = format!("meridian-proc-{}", &id[..12]);
    let vehicles: Vec<String> = (0..10).map(|i| format!("proc-{i}")).collect();
    db.execute(
        "INSERT INTO vehicles (external_id) SELECT unnest($1::text[])",
        &[&vehicles],
    )
    .await
    .unwrap();
    let publisher = Publisher::connect(&mqtt_url(), &format!("pub-{}", &id[..12]), &prefix).await;
    Setup {
        db,
        node: Node::new(&db_url, &prefix, &client_id),
        publisher,
        client_id,
        vehicles,
    }
}

impl Setup {
    /// Publishes messages `0..n` in the background at a pace that keeps ingest busy for a
    /// second or two, so a signal can land mid-stream.
    fn publish_paced(&self, t0: i64, n: i64) -> tokio::task::JoinHandle<()> {
        let pace = (20, Duration::from_millis(10));
        self.publisher
            .paced(&self.vehicles, n, pace, move |i| message(t0, i))
    }
}

async fn count(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM vehicle_telemetry", &[])
        .await
        .unwrap()
        .get(0)
}

/// Message `i` carries one point with a unique timestamp, so rows identify messages.
fn message(t0: i64, i: i64) -> String {
    format!(
        r#"{{"ts":{},"lat":{},"lon":13.4}}"#,
        t0 + i,
        52.0 + (i % 1000) as f64 / 10_000.0
    )
}

/// Holds the writers' COMMITs at the database, so a kill lands between commit and ack on
/// purpose rather than by luck (that window is a millisecond wide). A deferred constraint
/// trigger on the test's own database takes a shared advisory lock when a transaction that
/// wrote telemetry commits; while the test holds that lock exclusively, every such COMMIT
/// waits inside the server, its batch not yet acked.
const COMMIT_GATE: i64 = 7_243_001;

async fn install_commit_gate(db: &tokio_postgres::Client) {
    db.batch_execute(&format!(
        "CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_advisory_xact_lock_shared({COMMIT_GATE}); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON vehicle_telemetry \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_commit_gate();"
    ))
    .await
    .unwrap();
}

async fn scalar(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

/// A counter from a node's `/metrics` (0 before its first increment).
async fn metric(addr: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn sigkill_between_commit_and_ack_is_redelivered_absorbed_and_nothing_is_lost() {
    const N: i64 = 4000;
    let s = setup().await;
    install_commit_gate(&s.db).await;
    let mut node = s.node.start().await;
    let t0 = now_ms() - 120_000;
    let publishing = s.publish_paced(t0, N);
    wait_until("some rows committed", || async {
        count(&s.db).await >= 500
    })
    .await;

    // Close the gate, wait until a writer's COMMIT is held there, then SIGKILL: no drain,
    // no final acks.
    s.db.execute("SELECT pg_advisory_lock($1)", &[&COMMIT_GATE])
        .await
        .unwrap();
    wait_until("a COMMIT held at the gate", || async {
        let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        scalar(&s.db, waiting).await > 0
    })
    .await;
    node.start_kill().unwrap();
    node.wait().await.unwrap();
    let at_kill = count(&s.db).await;

    // Open it: the held COMMITs complete on the server after their client died. Those rows
    // are committed and were never acked; the broker still holds their messages.
    s.db.execute("SELECT pg_advisory_unlock($1)", &[&COMMIT_GATE])
        .await
        .unwrap();
    wait_until("the killed node's sessions ended", || async {
        let others = "SELECT count(*) FROM pg_stat_activity \
                      WHERE datname = current_database() AND pid <> pg_backend_pid()";
        scalar(&s.db, others).await == 0
    })
    .await;
    let committed = count(&s.db).await;
    let committed_unacked = committed - at_kill;
    assert!(
        committed_unacked > 0,
        "the kill left rows committed but never acked ({at_kill} before the gate opened, {committed} after)"
    );
    assert!(
        committed < N,
        "the kill must land mid-stream ({committed} of {N})"
    );
    s.db.batch_execute("DROP TRIGGER test_commit_gate ON vehicle_telemetry")
        .await
        .unwrap();

    let mut node = s.node.start().await;
    publishing.await.unwrap();
    s.publisher.flush().await;
    let addr = s.node.addr.as_str();
    let (received, stored, duplicates) = (
        "meridian_ingest_messages_received_total",
        "meridian_ingest_points_stored_total",
        "meridian_ingest_points_duplicate_total",
    );
    // Settled: the second node stored exactly what was missing and counted everything else
    // it received (the redelivered, already committed messages) as duplicates.
    wait_until("the second node settled", || async {
        let r = metric(addr, received).await;
        count(&s.db).await >= N
            && metric(addr, stored).await + metric(addr, duplicates).await == r
            && metric(addr, "meridian_ingest_messages_acked_total").await == r
    })
    .await;
    let (r, st, dup, redelivered) = (
        metric(addr, received).await,
        metric(addr, stored).await,
        metric(addr, duplicates).await,
        metric(addr, "meridian_ingest_messages_redelivered_total").await,
    );
    assert!(
        redelivered >= committed_unacked as u64,
        "the broker resent (DUP set) at least the {committed_unacked} committed-but-unacked \
         messages: {redelivered} redelivered"
    );
    assert!(
        dup >= committed_unacked as u64,
        "the {committed_unacked} committed-but-unacked messages came back and were absorbed: \
         {dup} duplicates counted"
    );
    assert_eq!(
        st,
        (N - committed) as u64,
        "the second node stored exactly what was missing"
    );

    // 0 lost, 0 doubled: exactly the published timestamps, one row each.
    let mut stored_ts: Vec<i64> =
        s.db.query(
            "SELECT (extract(epoch from ts) * 1000)::bigint - $1 FROM vehicle_telemetry",
            &[&t0],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    stored_ts.sort_unstable();
    assert!(
        stored_ts == (0..N).collect::<Vec<_>>(),
        "stored set differs from published"
    );
    assert_eq!(scalar(&s.db, "SELECT count(*) FROM dead_letters").await, 0);
    eprintln!(
        "SIGKILL with {committed_unacked} messages committed but unacked ({at_kill} rows before, \
         {committed} after the held COMMITs completed); second node received {r}, stored {st}, \
         absorbed {dup} duplicates; all {N} stored once"
    );
    node.start_kill().unwrap();
}

#[tokio::test]
async fn sigterm_commits_and_acks_everything_received_before_exit() {
    const N: i64 = 3000;
    let s = setup().await;
    let node = s.node.start().await;
    let t0 = now_ms() - 120_000;
    let publishing = s.publish_paced(t0, N);
    wait_until("ingest under way", || async { count(&s.db).await >= 500 }).await;
    let pid = node.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), node.wait_with_output())
        .await
        .expect("exits in time")
        .unwrap();
    assert!(status.status.success(), "clean exit on SIGTERM: {status:?}");
    publishing.await.unwrap();
    s.publisher.flush().await;

    let stored: HashSet<i64> =
        s.db.query(
            "SELECT (extract(epoch from ts) * 1000)::bigint FROM vehicle_telemetry",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0) - t0)
        .collect();
    // Whatever the broker still holds for the session is what was NOT acked.
    let redelivered = drain_session(&s.client_id, t0).await;
    eprintln!(
        "SIGTERM: {} committed and acked, {} left with the broker",
        stored.len(),
        redelivered.len()
    );
    let overlap: Vec<_> = stored.intersection(&redelivered).collect();
    assert!(
        overlap.is_empty(),
        "committed but not acked: {} messages",
        overlap.len()
    );
    assert_eq!(
        stored.len() as i64 + redelivered.len() as i64,
        N,
        "acked but not committed, or lost"
    );
    assert!(
        !stored.is_empty() && !redelivered.is_empty(),
        "SIGTERM must land mid-stream"
    );
}

#[tokio::test]
async fn a_background_task_dying_ends_the_process_with_a_failure_status() {
    let s = setup().await;
    let node = s.node.start_with(Stdio::piped()).await;
    // A bad migration: the availability view now yields a row the live feed cannot read
    // (external_id NULL), and the next availability change makes the feed read it.
    s.db.batch_execute(
        "DROP VIEW driver_availability;
         CREATE VIEW driver_availability AS
         SELECT gen_random_uuid() AS shift_id, gen_random_uuid() AS driver_id,
                gen_random_uuid() AS vehicle_id, tstzrange(now(), NULL) AS during,
                NULL::text AS external_id, NULL::text AS vehicle_type;
         SELECT pg_notify('meridian_availability', 'drivers');",
    )
    .await
    .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), node.wait_with_output())
        .await
        .expect("the node exits instead of serving without its live feed")
        .unwrap();
    let log = String::from_utf8_lossy(&ended.stderr);
    assert!(!ended.status.success(), "non-zero exit: {:?}", ended.status);
    assert!(
        log.contains("live feed panicked"),
        "the log names the task and how it ended:\n{log}"
    );
}

/// Resumes the node's session as a plain subscriber and collects what the broker redelivers.
async fn drain_session(client_id: &str, t0: i64) -> HashSet<i64> {
    let (host, port) = meridian::config::parse_mqtt_url(&mqtt_url()).unwrap();
    let mut options = MqttOptions::new(client_id, host, port);
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = Some(0); // end the session when we leave
    props.max_packet_size = Some(4 << 20);
    options.set_clean_start(false).set_connect_properties(props);
    let (_client, mut eventloop) = AsyncClient::new(options, 100);
    let mut seen = HashSet::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await {
            Err(_) => break, // quiet for 2 s: the session is drained
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                seen.insert(v["ts"].as_i64().unwrap() - t0);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("subscriber connection failed: {e}"),
        }
    }
    seen
}
