//! MQTT-source faults that used to stall ingest silently: a refused subscription, two nodes
//! sharing a client id, and the redelivery path. Each runs against a real Mosquitto — a
//! private one on its own port where the test needs to change the broker (an ACL) or read
//! its log (who connected when).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectProperties, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{
    fresh_database, now_ms, point, spawn_node, start_node, wait_until, Publisher, TestApp,
};

/// A throwaway Mosquitto on a free port, logging to a file the test can read.
struct PrivateBroker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// Dynamic-security admin, for changing what anonymous clients (ours) may do at run time.
const ADMIN: [&str; 2] = ["admin", "admin-pw"];

impl PrivateBroker {
    /// With `deny_subscribe`, anonymous clients (Meridian and its test publisher) may publish
    /// and receive but every SUBSCRIBE is refused (SUBACK 0x87), until
    /// [`PrivateBroker::allow_subscribe`]. Mosquitto 2.0's plain `acl_file` cannot do this:
    /// it grants every subscription and filters deliveries instead.
    async fn start(deny_subscribe: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("meridian-mqtt-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // Mosquitto drops privileges to `mosquitto` and saves the dynamic-security file here.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The log goes to stderr, which C does not buffer: a line is in the file once logged.
        let mut conf = format!(
            "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
             log_type information\nconnection_messages true\n"
        );
        if deny_subscribe {
            let file = dir.join("dynsec.json");
            write_dynsec_config(&file).await;
            conf.push_str(&format!(
                "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n\
                 plugin_opt_config_file {}\n",
                file.display()
            ));
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        // Opened by us, so Mosquitto needs no write access to it after dropping privileges.
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child =
            crate::broker::spawn_broker(&dir.join("mosquitto.conf"), port, Stdio::from(log)).await;
        Self { child, port, dir }
    }

    /// Lets anonymous clients subscribe from now on (the broker-side fix of a refusal).
    async fn allow_subscribe(&self) {
        let port = self.port.to_string();
        let status = Command::new("mosquitto_ctrl")
            .args(["-p", &port, "-u", ADMIN[0], "-P", ADMIN[1], "dynsec"])
            .args(["addRoleACL", "anonymous", "subscribePattern", "#", "allow"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "mosquitto_ctrl failed");
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Connections the broker accepted from `client_id` so far.
    fn connects(&self, client_id: &str) -> usize {
        let needle = format!(" as {client_id} (");
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("New client connected") && l.contains(&needle))
            .count()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A dynamic-security config (admin made by `mosquitto_ctrl dynsec init`) whose anonymous
/// group may publish and receive anything but subscribe to nothing.
async fn write_dynsec_config(file: &std::path::Path) {
    let status = Command::new("mosquitto_ctrl")
        .args(["dynsec", "init"])
        .arg(file)
        .args(ADMIN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("mosquitto_ctrl installed (package mosquitto)");
    assert!(status.success(), "mosquitto_ctrl dynsec init failed");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    config["anonymousGroup"] = "anonymous".into();
    config["groups"] = serde_json::json!([
        {"groupname": "anonymous", "roles": [{"rolename": "anonymous"}], "clients": []}
    ]);
    config["roles"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "rolename": "anonymous",
            "acls": [
                {"acltype": "publishClientSend", "topic": "#", "allow": true},
                {"acltype": "publishClientReceive", "topic": "#", "allow": true}
            ]
        }));
    std::fs::write(file, config.to_string()).unwrap();
    std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let (status, body) = app.get("/readyz").await;
    (status, serde_json::from_str(&body).unwrap())
}

fn counter(name: &str) -> u64 {
    meridian::observability::metrics_handle()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_refused_subscription_keeps_the_node_unready_until_the_broker_grants_it() {
    let broker = PrivateBroker::start(true).await;
    let (_, db_url) = fresh_database().await;
    let prefix = unique("t") + "/";
    let app = start_node(&db_url, &prefix, &[("MQTT_URL", &broker.url())]).await;

    // Connected, but consuming nothing: not ready, and /readyz says why.
    wait_until("the refusal in /readyz", || async {
        let (status, body) = app.get("/readyz").await;
        status == 503 && body.contains("not_authorized")
    })
    .await;
    let (_, ready) = readiness(&app).await;
    assert_eq!(ready["checks"]["broker"], true, "{ready}");
    assert_eq!(ready["failing"][0]["check"], "mqtt_subscription", "{ready}");
    assert!(
        ready["failing"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{}fleet/+/telemetry", app.prefix)),
        "the refused filter is named: {ready}"
    );

    // Fixed on the broker while the node runs: the retry is granted, the node becomes ready
    // and consumes.
    broker.allow_subscribe().await;
    wait_until("ready after a retried subscription", || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
    app.register(&["acl-1"]).await;
    app.publisher
        .telemetry("acl-1", point(now_ms(), 1.0, 1.0))
        .await;
    app.wait_settled(1).await;
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 1);
}

#[tokio::test]
async fn nodes_sharing_a_client_id_say_so_and_stop_flapping() {
    let broker = PrivateBroker::start(false).await;
    let client_id = unique("meridian-twin-");
    let overrides = [
        ("MQTT_URL", broker.url()),
        ("MQTT_CLIENT_ID", client_id.clone()),
    ];
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, db_url) = fresh_database().await;
    let prefix = unique("t") + "/";
    let first = spawn_node(&db_url, &prefix, &overrides).await;
    let second = spawn_node(&db_url, &prefix, &overrides).await;
    let at_start = broker.connects(&client_id);
    let started = tokio::time::Instant::now();

    // One of the two reports the misconfiguration by name.
    let named = || async {
        for app in [&first, &second] {
            let (status, ready) = readiness(app).await;
            let failing = ready["failing"].as_array().unwrap();
            if status == 503
                && failing.iter().any(|f| {
                    f["check"] == "mqtt_session"
                        && f["reason"].as_str().unwrap().contains(&client_id)
                })
            {
                return true;
            }
        }
        false
    };
    wait_until("mqtt_session named in /readyz", named).await;

    // The pair flaps at the ordinary reconnect pace at first, then backs off: connects over
    // the first 4 s against connects over 10 s later on.
    tokio::time::sleep_until(started + Duration::from_secs(4)).await;
    let early = broker.connects(&client_id) - at_start;
    tokio::time::sleep_until(started + Duration::from_secs(14)).await;
    let late_from = broker.connects(&client_id);
    tokio::time::sleep_until(started + Duration::from_secs(24)).await;
    let late = broker.connects(&client_id) - late_from;
    assert!(early >= 3, "the pair flapped at first: {early} connects");
    let (early_rate, late_rate) = (early as f64 / 4.0, late as f64 / 10.0);
    assert!(
        late_rate < early_rate / 2.0,
        "reconnect rate must fall: {early} connects in the first 4 s, {late} in 10 s later on"
    );
    let (_, metrics) = first.get("/metrics").await;
    assert!(metrics.contains("meridian_mqtt_closed_by_broker_total{"));
}

#[tokio::test]
async fn messages_left_unacked_by_an_earlier_connection_are_counted_as_redelivered() {
    let (_, db_url) = fresh_database().await;
    let prefix = unique("t") + "/";
    let client_id = unique("meridian-redeliver-");
    let url = crate::helpers::mqtt_url();
    let (host, port) = meridian::config::parse_mqtt_url(&url).unwrap();

    // An earlier connection with the node's client id takes three messages and never acks.
    let mut options = MqttOptions::new(client_id.clone(), host, port);
    let mut props = ConnectProperties::new();
    props.session_expiry_interval = Some(300);
    options
        .set_clean_start(false)
        .set_connect_properties(props)
        .set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    client
        .subscribe(format!("{prefix}fleet/+/telemetry"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let publisher = Publisher::connect(&url, &unique("pub-"), &prefix).await;
    let t = now_ms() - 10_000;
    let mut received = 0;
    while received < 3 {
        match tokio::time::timeout(Duration::from_secs(30), eventloop.poll())
            .await
            .expect("the earlier connection receives")
            .unwrap()
        {
            Event::Incoming(Packet::SubAck(_)) => {
                for i in 0..3 {
                    publisher.telemetry("redo-1", point(t + i, 1.0, 1.0)).await;
                }
            }
            Event::Incoming(Packet::Publish(_)) => received += 1,
            _ => {}
        }
    }
    drop((client, eventloop)); // gone without acking: the session keeps them in flight

    crate::helpers::connect(&db_url)
        .await
        .execute("INSERT INTO vehicles (external_id) VALUES ('redo-1')", &[])
        .await
        .unwrap();
    let before = counter(meridian::observability::MESSAGES_REDELIVERED);
    let app = spawn_node(&db_url, &prefix, &[("MQTT_CLIENT_ID", &client_id)]).await;
    app.wait_until("the three stored", || async {
        app.count("SELECT count(*) FROM vehicle_telemetry").await == 3
    })
    .await;
    assert!(
        counter(meridian::observability::MESSAGES_REDELIVERED) >= before + 3,
        "redeliveries (DUP set) are counted"
    );
}

/// Mosquitto 2.0.11 sends far beyond a small receive-maximum (measured: thousands unacked
/// against 10), so the overflow queue reaches its bound: deliveries are dropped unacked and
/// redelivered after a reconnect, and every message is still stored exactly once.
#[tokio::test]
async fn a_broker_exceeding_receive_maximum_loses_nothing_at_the_overflow_bound() {
    let app = crate::helpers::spawn_app_with(&[
        ("MQTT_RECEIVE_MAXIMUM", "10"),
        // About ten deliveries' worth: the bound is reached as soon as the broker over-sends.
        ("MQTT_OVERFLOW_MAX_BYTES", "2000"),
        ("MERIDIAN_BATCH_ROWS", "5"),
        ("MERIDIAN_WRITERS", "1"),
    ])
    .await;
    app.register(&["flood-1"]).await;
    let dropped_before = counter(meridian::observability::DELIVERY_OVERFLOW_DROPPED);
    let t = now_ms() - 100_000;
    for i in 0..300 {
        app.publisher
            .telemetry("flood-1", point(t + i, 1.0, 1.0))
            .await;
    }
    app.wait_until("all 300 stored", || async {
        app.count("SELECT count(*) FROM vehicle_telemetry").await == 300
    })
    .await;
    assert!(
        counter(meridian::observability::DELIVERY_OVERFLOW_DROPPED) > dropped_before,
        "the bound was reached (else this test proves nothing)"
    );
}
