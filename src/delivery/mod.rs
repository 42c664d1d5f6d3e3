//! Delivers committed geofence events to where they are wanted: the outbox → MQTT publication
//! and the webhooks (`webhooks`), each at least once, with the event id as the idempotency key.

pub mod webhooks;
