//! Delivering geofence events: the outbox worker publishes them to MQTT and records webhook
//! deliveries; the webhook worker sends those.

pub mod mqtt;
pub mod outbox;
