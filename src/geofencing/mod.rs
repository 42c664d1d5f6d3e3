//! Geofences in memory, for judging every incoming fix without a database round trip: each
//! fence compiled for exact containment (the same answers as PostGIS), distance to its boundary
//! and the length of a hop inside it; all of them in a box index.
//!
//! Only pure computation lives here (it imports `crate::domain` and `crate::live::geodesy`):
//! loading fences, keeping the index current and sharing it between tasks are the caller's.

mod compiled;
mod edges;
mod index;
mod metric;
#[cfg(test)]
mod tests;

pub use compiled::CompiledFence;
pub use index::FenceIndex;
