//! Settings from the environment, with defaults that work on a developer machine
//! set up by `scripts/deps.sh`. Every knob is validated here, once, at start.

use std::{net::SocketAddr, time::Duration};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub http_addr: SocketAddr,
    pub mqtt: MqttSettings,
    pub ingest: IngestSettings,
    pub retention: RetentionSettings,
    /// Lets a node specialise: an HTTP-only node runs with ingest off.
    pub ingest_enabled: bool,
    pub shutdown_timeout: Duration,
    /// How often the live index is rebuilt from the positions it has heard: about the most a
    /// nearest-driver answer lags behind a commit.
    pub live_refresh: Duration,
    pub dispatch: DispatchSettings,
    pub rollup: RollupSettings,
    pub webhooks: WebhookSettings,
}

/// Webhook delivery (`delivery::webhooks`). Production defaults: 5 s timeout, backoff from 1 s
/// doubling to at most 1 h, retries for 24 h; tests shrink the backoff and the horizon.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether this node runs delivery workers (any number of nodes may: they share the work).
    pub enabled: bool,
    /// Where webhooks may deliver; `None` (unset): anywhere. Checked at delivery time against
    /// every address the host resolves to.
    pub allow: Option<crate::domain::webhook::Allowlist>,
    /// One request, connect to last byte.
    pub timeout: Duration,
    /// The first retry's delay; each further one doubles, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a delivery is retried before it is marked failed; also how long a webhook may
    /// go without a success before it is disabled.
    pub retry_horizon: Duration,
}

#[derive(Debug, Clone)]
pub struct RollupSettings {
    /// Whether this node runs the rollup job (any number of nodes may: they share the work).
    pub enabled: bool,
    /// How often the job looks for an hour to close and for late marks to fold in.
    pub interval: Duration,
    /// Late marks folded per transaction.
    pub fold_marks: i64,
    /// Whether ingest marks late points for the job. Off only to measure what marking costs
    /// ingest (the rollup benchmark): late points then never reach the rollups.
    pub track_late: bool,
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// A driver whose vehicle has not reported for this long is not where the map says: not
    /// offered by automatic dispatch, and refused (409 `stale_position`) when named.
    pub max_age: Duration,
    /// How often each node walks the queue even when it heard of no newly available driver
    /// (a shift that starts on its own, a job enqueued while a drain was running).
    pub drain_interval: Duration,
    /// Database connections this node dispatches over: at most this many assignments run at
    /// once, the rest wait their turn in the node. Every assignment commits a NOTIFY, and
    /// PostgreSQL lets notifying commits through one at a time; past a few at once they queue
    /// on that lock and throughput falls (pgbench, same statement: 600 tx/s at 2–4 clients,
    /// 325 at 16).
    pub connections: usize,
}

#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// Prepended to every subscription and stripped when parsing topics (tests use it for isolation).
    pub topic_prefix: String,
    /// MQTT v5 shared-subscription group: several nodes then split one stream.
    pub share_group: Option<String>,
    /// Announced to the broker as receive-maximum; also the capacity of the channel out of the
    /// event loop (see `ingest::mqtt`). It must cover the batches in flight (writers + queue + the
    /// open one), but no more: Mosquitto finds each PUBACK by walking its in-flight list, and in the
    /// ingest benchmark a 65k window cost more broker CPU than it gained (16.7k vs 43k msg/s).
    pub receive_maximum: u16,
    pub session_expiry: Duration,
    pub keep_alive: Duration,
    /// Bytes of deliveries held beyond receive-maximum before the source drops and reconnects
    /// (`ingest::mqtt::overflow`). In bytes, not messages, so it bounds memory whatever the
    /// payload size; generous, because Mosquitto 2.0.11 over-sends by tens of thousands of
    /// messages under a full-speed load, and every trip to the bound costs a reconnect.
    pub overflow_max_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub batch_rows: usize,
    pub batch_age: Duration,
    pub writers: usize,
    pub max_payload_bytes: usize,
    pub max_future_skew: Duration,
    /// How long an unknown external id is remembered as unknown before the database is asked again.
    pub unknown_vehicle_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub raw_days: i64,
    /// Hourly rollups older than this are deleted; daily rollups are kept forever.
    pub hourly_days: i64,
    /// Geofence events (by their `ts`) and finished webhook deliveries older than this are
    /// deleted; an event still to publish or with a delivery pending stays.
    pub events_days: i64,
    pub partitions_ahead_days: i64,
    pub maintenance_interval: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds settings from any key lookup, so tests can configure without touching the process env.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let (host, port) = parse_mqtt_url(&env.string("MQTT_URL", "mqtt://127.0.0.1:1884"))?;
        let settings = Settings {
            database_url: env.string(
                "DATABASE_URL",
                "postgres://postgres:postgres@127.0.0.1:5432/meridian",
            ),
            http_addr: env.parse("MERIDIAN_HTTP_ADDR", "127.0.0.1:8080")?,
            mqtt: MqttSettings {
                host,
                port,
                client_id: env.string("MQTT_CLIENT_ID", "meridian-ingest"),
                topic_prefix: env.string("MQTT_TOPIC_PREFIX", ""),
                share_group: get("MQTT_SHARE_GROUP").filter(|g| !g.is_empty()),
                receive_maximum: env.parse("MQTT_RECEIVE_MAXIMUM", "16000")?,
                session_expiry: Duration::from_secs(env.parse("MQTT_SESSION_EXPIRY_S", "604800")?),
                keep_alive: Duration::from_secs(env.parse("MQTT_KEEP_ALIVE_S", "30")?),
                overflow_max_bytes: env.parse("MQTT_OVERFLOW_MAX_BYTES", "268435456")?,
            },
            ingest: IngestSettings {
                batch_rows: env.parse("MERIDIAN_BATCH_ROWS", "4000")?,
                batch_age: Duration::from_millis(env.parse("MERIDIAN_BATCH_AGE_MS", "200")?),
                writers: env.parse("MERIDIAN_WRITERS", "3")?,
                max_payload_bytes: env.parse("MERIDIAN_MAX_PAYLOAD_BYTES", "262144")?,
                max_future_skew: Duration::from_secs(env.parse("MERIDIAN_MAX_FUTURE_S", "300")?),
                unknown_vehicle_ttl: Duration::from_millis(
                    env.parse("MERIDIAN_UNKNOWN_VEHICLE_TTL_MS", "5000")?,
                ),
            },
            retention: RetentionSettings {
                raw_days: env.parse("MERIDIAN_RETENTION_RAW_DAYS", "30")?,
                hourly_days: env.parse("MERIDIAN_RETENTION_HOURLY_DAYS", "365")?,
                events_days: env.parse("MERIDIAN_RETENTION_EVENTS_DAYS", "365")?,
                partitions_ahead_days: env.parse("MERIDIAN_PARTITIONS_AHEAD_DAYS", "3")?,
                maintenance_interval: Duration::from_secs(
                    env.parse("MERIDIAN_MAINTENANCE_INTERVAL_S", "3600")?,
                ),
            },
            ingest_enabled: env.parse("MERIDIAN_INGEST", "true")?,
            shutdown_timeout: Duration::from_secs(env.parse("MERIDIAN_SHUTDOWN_TIMEOUT_S", "30")?),
            live_refresh: Duration::from_millis(env.parse("MERIDIAN_LIVE_REFRESH_MS", "100")?),
            dispatch: DispatchSettings {
                max_age: Duration::from_secs(env.parse("MERIDIAN_DISPATCH_MAX_AGE_S", "300")?),
                drain_interval: Duration::from_millis(
                    env.parse("MERIDIAN_QUEUE_DRAIN_MS", "1000")?,
                ),
                connections: env.parse("MERIDIAN_DISPATCH_CONNECTIONS", "4")?,
            },
            rollup: RollupSettings {
                enabled: env.parse("MERIDIAN_ROLLUP", "true")?,
                interval: Duration::from_millis(env.parse("MERIDIAN_ROLLUP_INTERVAL_MS", "1000")?),
                fold_marks: env.parse("MERIDIAN_ROLLUP_FOLD_MARKS", "5000")?,
                track_late: env.parse("MERIDIAN_ROLLUP_TRACK_LATE", "true")?,
            },
            webhooks: WebhookSettings {
                enabled: env.parse("MERIDIAN_DELIVERY", "true")?,
                allow: get("MERIDIAN_WEBHOOK_ALLOW")
                    .filter(|a| !a.trim().is_empty())
                    .map(|a| a.parse())
                    .transpose()
                    .map_err(
                        |e: crate::domain::webhook::AllowlistError| ConfigError::Invalid {
                            name: "MERIDIAN_WEBHOOK_ALLOW",
                            message: e.to_string(),
                        },
                    )?,
                timeout: Duration::from_millis(env.parse("MERIDIAN_WEBHOOK_TIMEOUT_MS", "5000")?),
                backoff_base: Duration::from_millis(
                    env.parse("MERIDIAN_WEBHOOK_BACKOFF_BASE_MS", "1000")?,
                ),
                backoff_max: Duration::from_millis(
                    env.parse("MERIDIAN_WEBHOOK_BACKOFF_MAX_MS", "3600000")?,
                ),
                retry_horizon: hours(env.parse("MERIDIAN_WEBHOOK_RETRY_HOURS", "24")?).ok_or_else(
                    || ConfigError::Invalid {
                        name: "MERIDIAN_WEBHOOK_RETRY_HOURS",
                        message: "must be a positive number of hours".into(),
                    },
                )?,
            },
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, message: &str| {
            Err(ConfigError::Invalid {
                name,
                message: message.to_owned(),
            })
        };
        let i = &self.ingest;
        if i.batch_rows == 0 || i.writers == 0 {
            return invalid(
                "MERIDIAN_BATCH_ROWS",
                "batch rows and writers must be at least 1",
            );
        }
        // Every unacked message sits somewhere in the pipeline; if the broker may hand us fewer
        // than one full batch per stage, batches only ever close on age and throughput collapses.
        if (self.mqtt.receive_maximum as usize) < i.batch_rows {
            return invalid(
                "MQTT_RECEIVE_MAXIMUM",
                "must be at least MERIDIAN_BATCH_ROWS",
            );
        }
        if self.live_refresh.is_zero() {
            return invalid("MERIDIAN_LIVE_REFRESH_MS", "must be at least 1");
        }
        if self.dispatch.max_age.is_zero() {
            return invalid("MERIDIAN_DISPATCH_MAX_AGE_S", "must be at least 1");
        }
        if self.dispatch.connections == 0 {
            return invalid("MERIDIAN_DISPATCH_CONNECTIONS", "must be at least 1");
        }
        if self.dispatch.drain_interval.is_zero() {
            return invalid("MERIDIAN_QUEUE_DRAIN_MS", "must be at least 1");
        }
        if self.rollup.interval.is_zero() {
            return invalid("MERIDIAN_ROLLUP_INTERVAL_MS", "must be at least 1");
        }
        if self.rollup.fold_marks < 1 {
            return invalid("MERIDIAN_ROLLUP_FOLD_MARKS", "must be at least 1");
        }
        if self.retention.raw_days < 1 {
            return invalid("MERIDIAN_RETENTION_RAW_DAYS", "must be at least 1");
        }
        if self.retention.events_days < 1 {
            return invalid("MERIDIAN_RETENTION_EVENTS_DAYS", "must be at least 1");
        }
        // A day's raw points leave only once its hours are rolled up; hourly rows must outlive
        // them, or a 1h track would find neither.
        if self.retention.hourly_days < self.retention.raw_days {
            return invalid(
                "MERIDIAN_RETENTION_HOURLY_DAYS",
                "must be at least MERIDIAN_RETENTION_RAW_DAYS",
            );
        }
        let w = &self.webhooks;
        if w.timeout.is_zero() {
            return invalid("MERIDIAN_WEBHOOK_TIMEOUT_MS", "must be at least 1");
        }
        if w.backoff_base.is_zero() {
            return invalid("MERIDIAN_WEBHOOK_BACKOFF_BASE_MS", "must be at least 1");
        }
        if w.backoff_max < w.backoff_base {
            return invalid(
                "MERIDIAN_WEBHOOK_BACKOFF_MAX_MS",
                "must be at least MERIDIAN_WEBHOOK_BACKOFF_BASE_MS",
            );
        }
        Ok(())
    }
}

/// Fractional hours (`0.01` is 36 s, for tests) as a duration; `None` unless positive and finite.
fn hours(h: f64) -> Option<Duration> {
    (h.is_finite() && h > 0.0 && h < 1e6).then(|| Duration::from_secs_f64(h * 3600.0))
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn string(&self, name: &str, default: &str) -> String {
        (self.0)(name).unwrap_or_else(|| default.to_owned())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.string(name, default);
        raw.trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                message: format!("{raw:?}: {e}"),
            })
    }
}

/// `mqtt://host:port`, `tcp://host:port` or `host:port` (port defaults to 1883; IPv6 in brackets).
/// The one parser for broker URLs: `meridian serve`, the simulator and the tests all use it.
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        name: "MQTT_URL",
        message,
    };
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some((scheme, _)) => {
            return Err(invalid(format!(
                "unsupported scheme {scheme:?} (TLS is not built in); use mqtt://host:port"
            )))
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host,
            port.parse()
                .map_err(|_| invalid(format!("bad port in {url:?}")))?,
        ),
        _ => (rest, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid(format!("no host in {url:?}")));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_valid_and_point_at_the_project_broker() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.mqtt.host.as_str(), s.mqtt.port), ("127.0.0.1", 1884));
        assert_eq!(s.retention.raw_days, 30);
        assert_eq!(s.retention.events_days, 365);
        assert!(settings(&[("MERIDIAN_RETENTION_EVENTS_DAYS", "0")]).is_err());
    }

    #[test]
    fn mqtt_url_forms() {
        assert_eq!(
            parse_mqtt_url("mqtt://broker:1999").unwrap(),
            ("broker".into(), 1999)
        );
        assert_eq!(
            parse_mqtt_url("mqtt://broker").unwrap(),
            ("broker".into(), 1883)
        );
        assert!(parse_mqtt_url("http://broker").is_err());
    }

    #[test]
    fn rejects_nonsense_knobs() {
        assert!(settings(&[("MERIDIAN_BATCH_ROWS", "0")]).is_err());
        assert!(settings(&[("MERIDIAN_BATCH_ROWS", "lots")]).is_err());
        assert!(settings(&[("MQTT_RECEIVE_MAXIMUM", "10")]).is_err());
    }

    #[test]
    fn webhook_defaults_and_refusals() {
        let w = settings(&[]).unwrap().webhooks;
        assert!(w.enabled && w.allow.is_none());
        assert_eq!(w.timeout, Duration::from_secs(5));
        assert_eq!(w.backoff_max, Duration::from_secs(3600));
        assert_eq!(w.retry_horizon, Duration::from_secs(24 * 3600));
        let short = settings(&[("MERIDIAN_WEBHOOK_RETRY_HOURS", "0.001")]).unwrap();
        assert_eq!(short.webhooks.retry_horizon, Duration::from_millis(3600));
        for (name, value) in [
            ("MERIDIAN_WEBHOOK_RETRY_HOURS", "0"),
            ("MERIDIAN_WEBHOOK_RETRY_HOURS", "NaN"),
            ("MERIDIAN_WEBHOOK_TIMEOUT_MS", "0"),
            ("MERIDIAN_WEBHOOK_BACKOFF_MAX_MS", "10"),
            ("MERIDIAN_WEBHOOK_ALLOW", "10.0.0.0/33"),
            ("MERIDIAN_WEBHOOK_ALLOW", "bad host!"),
            ("MERIDIAN_DELIVERY", "sometimes"),
        ] {
            assert!(settings(&[(name, value)]).is_err(), "{name}={value}");
        }
        let allow = settings(&[("MERIDIAN_WEBHOOK_ALLOW", "hooks.example.com, 10.0.0.0/8")])
            .unwrap()
            .webhooks
            .allow
            .unwrap();
        assert!(allow.allows_ip("10.1.2.3".parse().unwrap()));
    }
}
