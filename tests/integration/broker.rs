//! Broker failures: a private Mosquitto on its own port is killed and restarted without
//! persistence, so the session (and our subscriptions) are gone; ingest must reconnect,
//! notice there is no session, resubscribe, and keep storing.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::{now_ms, point, spawn_app_with, wait_until};

async fn start_broker(port: u16, dir: &std::path::Path) -> Child {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n"),
    )
    .unwrap();
    spawn_broker(&conf, port, Stdio::null()).await
}

/// A throwaway Mosquitto with config `conf`, once it listens on `port`; killed when dropped.
pub async fn spawn_broker(conf: &std::path::Path, port: u16, stderr: Stdio) -> Child {
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto installed (scripts/deps.sh)");
    wait_until("private broker listening", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    child
}

#[tokio::test]
async fn ingest_reconnects_and_resubscribes_when_the_broker_loses_the_session() {
    let dir =
        std::env::temp_dir().join(format!("meridian-broker-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = start_broker(port, &dir).await;
    let app = spawn_app_with(&[("MQTT_URL", &format!("mqtt://127.0.0.1:{port}"))]).await;
    app.register(&["phoenix"]).await;
    let t = now_ms() - 10_000;
    app.publisher.telemetry("phoenix", point(t, 1.0, 1.0)).await;
    app.wait_settled(1).await;

    broker.kill().await.unwrap();
    wait_until("app notices the broker is gone", || async {
        app.get("/readyz").await.0 == 503
    })
    .await;
    let _broker = start_broker(port, &dir).await;
    wait_until("app reconnected", || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the resubscription's SUBACK, and the publisher's reconnect

    app.publisher
        .telemetry("phoenix", point(t + 1, 2.0, 2.0))
        .await;
    app.wait_settled(2).await;
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        2,
        "stored after the broker came back without our session"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
