//! Geofences in memory, for judging every incoming fix without a database round trip: each
//! fence compiled for exact containment (the same answers as PostGIS), distance to its boundary
//! and the length of a hop inside it; all of them in a box index (`FenceIndex`). `shared` holds
//! a node's set for its writers and API, `feed` keeps it current from the database.
//!
//! "The same answers as PostGIS", precisely: areas use robust orientation (exact), where
//! PostGIS' point-in-polygon short-circuit computes the side of an edge in plain floating
//! point (`determineSide` in `lwgeom_functions_analytic.c`). The two agree whenever that
//! arithmetic is exact or the point is not within rounding of an edge: on vertices, on exactly
//! representable edge midpoints and on thousands of random and along-edge points
//! (`tests/integration/geofences/index_vs_postgis.rs`). Circles use Karney's geodesic on both
//! sides (PostGIS via GeographicLib), so they can differ only for a point within nanometres of
//! the circle.
//!
//! The geometry (`compiled`, `edges`, `index`, `metric`) is pure computation: it imports only
//! `crate::domain` and `crate::live::geodesy`.

mod compiled;
mod edges;
pub mod feed;
mod index;
mod metric;
mod pooled;
mod shared;
#[cfg(test)]
mod tests;

pub use compiled::CompiledFence;
pub use index::FenceIndex;
pub use pooled::{Neighbourhood, Neighbourhoods, Pooled};
pub use shared::{Entry, Fenced, Geofences, Set};
