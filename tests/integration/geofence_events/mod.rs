//! Geofence events end to end: telemetry published to the real broker, judged by the node's
//! ingest against fences created over HTTP, events read back from `/v1/geofence-events` and
//! from the MQTT topic they are published on. Each file is one property the issue names:
//! `basics` (enter, exit, dwell, the MQTT copy), `jitter` (an hour on an edge raises nothing),
//! `order` (a step over a small fence; late and shuffled points), `nodes` (a fence changed on
//! another node; a restart between two points; kill -9 between commit and delivery),
//! `retention` (what the maintenance round deletes).

mod basics;
mod jitter;
mod nodes;
mod order;
mod retention;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian::domain::Role;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{mqtt_url, wait_until, TestApp};

/// Oslo: metres to degrees near here.
pub const LAT0: f64 = 59.91;
pub const LON0: f64 = 10.75;
const M_PER_DEG_LAT: f64 = 111_412.0;

/// A position `x` metres east and `y` metres north of (LON0, LAT0).
pub fn at(x: f64, y: f64) -> (f64, f64) {
    let lon = LON0 + x / (M_PER_DEG_LAT * LAT0.to_radians().cos());
    (lon, LAT0 + y / M_PER_DEG_LAT)
}

/// A square fence `[x0, x1] × [y0, y1]` metres, with event settings `props`; its id.
pub async fn square(
    app: &TestApp,
    name: &str,
    (x0, y0, x1, y1): (f64, f64, f64, f64),
    props: Value,
) -> Uuid {
    let ring: Vec<[f64; 2]> = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        .iter()
        .map(|&(x, y)| {
            let (lon, lat) = at(x, y);
            [lon, lat]
        })
        .collect();
    let mut properties = props;
    properties["name"] = json!(name);
    let body = json!({"type": "Feature", "properties": properties,
        "geometry": {"type": "Polygon", "coordinates": [ring]}});
    let (status, f) = app
        .client(Role::Dispatcher)
        .await
        .post("/v1/geofences", body)
        .await;
    assert_eq!(status, 201, "{f}");
    f["id"].as_str().unwrap().parse().unwrap()
}

/// One point at `s` seconds after `t0_ms`, `x`/`y` metres from the origin.
pub fn fix(t0_ms: i64, s: i64, x: f64, y: f64) -> Value {
    let (lon, lat) = at(x, y);
    json!({"ts": t0_ms + s * 1000, "lat": lat, "lon": lon})
}

/// Publishes points as one array message.
pub async fn send(app: &TestApp, vehicle: &str, points: &[Value]) {
    app.publisher
        .telemetry(vehicle, Value::Array(points.to_vec()).to_string())
        .await;
}

/// Every event of a vehicle, by id, as the API lists them.
pub async fn events_of(app: &TestApp, vehicle: Uuid) -> Vec<Value> {
    let (status, page) = app
        .client(Role::Analyst)
        .await
        .get(&format!(
            "/v1/geofence-events?vehicle_id={vehicle}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

pub fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Subscribes to `meridian/events/geofence/#` under the app's prefix and keeps every message.
pub struct Listener {
    pub seen: Arc<Mutex<Vec<(String, Value)>>>,
    _client: AsyncClient,
}

impl Listener {
    pub async fn start(prefix: &str) -> Self {
        let (host, port) = meridian::config::parse_mqtt_url(&mqtt_url()).unwrap();
        let id = format!("events-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut options = MqttOptions::new(id, host, port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let (granted_tx, granted) = tokio::sync::oneshot::channel();
        let sink = seen.clone();
        tokio::spawn(async move {
            let mut granted_tx = Some(granted_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = granted_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let body = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        sink.lock().unwrap().push((topic, body));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        client
            .subscribe(
                format!("{prefix}meridian/events/geofence/#"),
                QoS::AtLeastOnce,
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), granted)
            .await
            .expect("subscription granted")
            .unwrap();
        Self {
            seen,
            _client: client,
        }
    }

    /// Waits until `n` messages arrived; returns them by event id (a redelivered id once).
    pub async fn wait_for(&self, n: usize) -> HashMap<i64, (String, Value)> {
        wait_until(&format!("{n} events over MQTT"), || async {
            self.by_id().len() >= n
        })
        .await;
        self.by_id()
    }

    fn by_id(&self) -> HashMap<i64, (String, Value)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(t, v)| (v["id"].as_i64().unwrap_or(-1), (t.clone(), v.clone())))
            .collect()
    }
}
