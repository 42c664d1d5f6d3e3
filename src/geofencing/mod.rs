//! Geofences in memory, for judging every incoming fix without a database round trip: each
//! fence compiled for exact containment (the same answers as PostGIS), distance to its boundary
//! and the length of a hop inside it; all of them in a box index (`FenceIndex`). `shared` holds
//! a node's set for its writers and API, `feed` keeps it current from the database.
//!
//! The geometry (`compiled`, `edges`, `index`, `metric`) is pure computation: it imports only
//! `crate::domain` and `crate::live::geodesy`.

mod compiled;
mod edges;
pub mod feed;
mod index;
mod metric;
mod shared;
#[cfg(test)]
mod tests;

pub use compiled::CompiledFence;
pub use index::FenceIndex;
pub use shared::{Entry, Geofences, Set};
