//! `spawn_app()` and friends: a fresh database with a random name (cloned from a migrated
//! template, so each test pays milliseconds instead of a PostGIS install), the app on port 0,
//! a unique MQTT client id and topic prefix, and helpers to publish and query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian::app::Application;
use meridian::config::Settings;
use meridian::ingest::ack::Acker;
use meridian::live::Live;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::OnceCell;
use tokio_postgres::Client;
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

pub fn mqtt_url() -> String {
    std::env::var("MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1884".into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, tail) = url.split_at(scheme_end);
    let (authority, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{head}{authority}/{name}{query}")
}

pub async fn connect(url: &str) -> Client {
    meridian::store::connect(url)
        .await
        .expect("database reachable (run via scripts/test.sh)")
}

/// A migrated template database, built once per schema version (keyed by a hash of the
/// migrations) under an advisory lock, so parallel test processes build it once.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("meridian_tpl_{:x}", schema_hash());
            let admin = connect(&admin_url()).await;
            admin
                .execute("SELECT pg_advisory_lock(7242)", &[])
                .await
                .unwrap();
            drop_stale_test_databases(&admin).await;
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .unwrap();
            if exists.is_none() {
                let building = format!("{name}_build");
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
                    .await
                    .unwrap();
                admin
                    .batch_execute(&format!("CREATE DATABASE {building}"))
                    .await
                    .unwrap();
                let mut client = connect(&with_database(&admin_url(), &building)).await;
                meridian::store::migrate::run(&mut client)
                    .await
                    .expect("migrations apply");
                drop(client);
                tokio::time::sleep(Duration::from_millis(100)).await;
                admin
                    .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .unwrap();
            }
            admin
                .execute("SELECT pg_advisory_unlock(7242)", &[])
                .await
                .unwrap();
            name
        })
        .await
}

fn schema_hash() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        std::fs::read_to_string(f).unwrap().hash(&mut hasher);
    }
    hasher.finish()
}

/// Test databases are named `meridian_test_<unix secs>_<random>`; drop those over an hour old
/// (left behind by panicked tests) so a developer machine does not fill up.
async fn drop_stale_test_databases(admin: &Client) {
    let cutoff = chrono::Utc::now().timestamp() - 3600;
    let rows = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'meridian_test_%'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        let created: i64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MAX);
        if created < cutoff {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// A fresh, migrated database for one test.
pub async fn fresh_database() -> (String, String) {
    let template = template().await;
    let name = format!(
        "meridian_test_{}_{}",
        chrono::Utc::now().timestamp(),
        Uuid::new_v4().simple()
    );
    let admin = connect(&admin_url()).await;
    let mut attempt = 0;
    loop {
        match admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
        {
            Ok(()) => break,
            // Two CREATE DATABASE from one template at the same instant can collide; retry.
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!(error = %e, "retrying CREATE DATABASE");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot create test database: {e}"),
        }
    }
    (name.clone(), with_database(&admin_url(), &name))
}

pub struct TestApp {
    pub port: u16,
    pub db: Client,
    pub db_url: String,
    pub prefix: String,
    pub acker: Acker,
    pub publisher: Publisher,
    pub http: reqwest::Client,
    pub live: Arc<Live>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Environment-style settings every test node gets; `overrides` win.
pub fn test_env(
    db_url: &str,
    prefix: &str,
    client_id: &str,
    overrides: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", db_url),
        ("MQTT_URL", &mqtt_url()),
        ("MERIDIAN_HTTP_ADDR", "127.0.0.1:0"),
        ("MQTT_CLIENT_ID", client_id),
        ("MQTT_TOPIC_PREFIX", prefix),
        ("MQTT_SESSION_EXPIRY_S", "300"),
        ("MERIDIAN_BATCH_AGE_MS", "20"),
        ("MERIDIAN_UNKNOWN_VEHICLE_TTL_MS", "200"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let (_, db_url) = fresh_database().await;
    let id = Uuid::new_v4().simple().to_string();
    spawn_node(&db_url, &format!("t{}/", &id[..12]), overrides).await
}

/// A node on an existing database and topic prefix (a second node for scale-out tests).
pub async fn spawn_node(db_url: &str, prefix: &str, overrides: &[(&str, &str)]) -> TestApp {
    let test = start_node(db_url, prefix, overrides).await;
    // Ready means the broker granted every filter: publishing from here on is consumed.
    test.wait_until("broker subscription", || async {
        test.get("/readyz").await.0 == 200
    })
    .await;
    test
}

/// A node started without waiting for it to become ready (tests of why it is not).
pub async fn start_node(db_url: &str, prefix: &str, overrides: &[(&str, &str)]) -> TestApp {
    let id = Uuid::new_v4().simple().to_string();
    let client_id = format!("meridian-test-{}", &id[..12]);
    let env = test_env(db_url, prefix, &client_id, overrides);
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("valid test settings");
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let acker = app.acker().expect("ingest enabled");
    let live = app.live();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        port,
        db: connect(db_url).await,
        db_url: db_url.to_owned(),
        publisher: Publisher::connect(&env["MQTT_URL"], &format!("pub-{}", &id[..12]), prefix)
            .await,
        prefix: prefix.to_owned(),
        acker,
        http: reqwest::Client::new(),
        live,
    }
}

impl TestApp {
    pub async fn register(&self, external_ids: &[&str]) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for e in external_ids {
            let row = self
                .db
                .query_one(
                    "INSERT INTO vehicles (external_id) VALUES ($1) RETURNING id",
                    &[e],
                )
                .await
                .unwrap();
            ids.push(row.get(0));
        }
        ids
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.db.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// The first column of every row `sql` returns.
    pub async fn column<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        let rows = self.db.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Waits until `n` messages in total were committed and acknowledged by the app.
    pub async fn wait_settled(&self, n: u64) {
        self.publisher.flush().await;
        let acker = self.acker.clone();
        self.wait_until(&format!("{n} messages settled"), || {
            let a = acker.clone();
            async move { a.settled() >= n }
        })
        .await;
        assert_eq!(
            self.acker.settled(),
            n,
            "more messages settled than published"
        );
    }

    pub async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        wait_until(what, check).await
    }
}

pub async fn wait_until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An MQTT 3.1.1 publisher (devices are mostly 3.1.1) that can wait for the broker's acks.
#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
    prefix: String,
    sent: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
}

impl Publisher {
    pub async fn connect(url: &str, client_id: &str, prefix: &str) -> Self {
        let (host, port) = meridian::config::parse_mqtt_url(url).unwrap();
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_max_packet_size(2 << 20, 2 << 20)
            .set_inflight(500)
            .set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        let acked = Arc::new(AtomicU64::new(0));
        let counter = acked.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            prefix: prefix.to_owned(),
            sent: Arc::default(),
            acked,
        }
    }

    /// Publishes QoS 1 to `{prefix}{topic}`.
    pub async fn publish(&self, topic: &str, payload: impl Into<Bytes>) {
        self.client
            .publish_bytes(
                format!("{}{topic}", self.prefix),
                QoS::AtLeastOnce,
                false,
                payload.into(),
            )
            .await
            .unwrap();
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn telemetry(&self, external_id: &str, payload: impl Into<Bytes>) {
        self.publish(&format!("fleet/{external_id}/telemetry"), payload)
            .await
    }

    /// Publishes `payload(i)` for `i in 0..n` in the background, round-robin over `vehicles`,
    /// pausing `pause` after every `every` messages: a stream a fault can land in the middle of.
    pub fn paced(
        &self,
        vehicles: &[String],
        n: i64,
        (every, pause): (i64, Duration),
        payload: impl Fn(i64) -> String + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let (publisher, ids) = (self.clone(), vehicles.to_vec());
        tokio::spawn(async move {
            for i in 0..n {
                let id = &ids[i as usize % ids.len()];
                publisher.telemetry(id, payload(i)).await;
                if i % every == every - 1 {
                    tokio::time::sleep(pause).await;
                }
            }
        })
    }

    /// Waits until the broker acknowledged everything published so far.
    pub async fn flush(&self) {
        let (sent, acked) = (self.sent.clone(), self.acked.clone());
        wait_until("broker acks", || {
            let (s, a) = (sent.clone(), acked.clone());
            async move { a.load(Ordering::Relaxed) >= s.load(Ordering::Relaxed) }
        })
        .await;
    }
}

/// A canonical point as JSON text.
pub fn point(ts_ms: i64, lat: f64, lon: f64) -> String {
    format!(
        r#"{{"ts":{ts_ms},"lat":{lat},"lon":{lon},"speed_kmh":30.5,"heading_deg":90,"fuel_pct":50,"accuracy_m":4,"engine":{{"rpm":1800}}}}"#
    )
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
