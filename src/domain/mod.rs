//! Domain types that cannot hold nonsense. The decoder, the store, the API and the
//! simulator all validate through these, so a rule lives in exactly one place.

pub mod alert;
pub mod export;
mod external_id;
pub mod geofence;
mod money;
mod point;
mod position;
mod reason;
mod role;
mod status;
mod timestamp;
pub mod track;
pub mod webhook;

pub use external_id::{ExternalId, ExternalIdError};
pub use money::{Money, MoneyError};
pub use point::Point;
pub use position::{LatLon, PositionError};
pub use reason::Reason;
pub use role::{Role, RoleError};
pub use status::{
    DispatchStatus, DispatchStatusError, DriverStatus, DriverStatusError, JobStatus,
    JobStatusError, VehicleStatus, VehicleStatusError,
};
pub use timestamp::{Timestamp, TimestampError};
