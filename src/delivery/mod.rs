//! Delivers committed geofence events to where they are wanted, each at least once with the
//! event id as the idempotency key: the outbox worker (`outbox`) publishes them to MQTT
//! (`mqtt`) and records one delivery per matching webhook; the webhook worker (`webhooks`)
//! sends those.

pub mod mqtt;
pub mod outbox;
pub mod webhooks;
