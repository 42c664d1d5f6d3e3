//! What state a vehicle, a driver, a job or a dispatch is in. The API reads and documents them
//! from here, the table checks the same lists, and availability for dispatch is decided by
//! them. A dispatch's legal transitions live here too, so the store, the API's 409 and the
//! tests share one state machine.

use std::fmt;
use std::str::FromStr;

/// A string enum: the wire spelling of each variant, parsing, and the list of all of them.
macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident, $error:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {} {:?}: expected one of {}", $what, .0, $name::NAMES.join(", "))]
        pub struct $error(String);

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire spellings, in the order of `ALL`.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = $error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($error(other.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use status_enum;

status_enum! {
    /// Only `active` vehicles are offered for dispatch.
    VehicleStatus, VehicleStatusError, "vehicle status" {
        Active = "active",
        Maintenance = "maintenance",
        Inactive = "inactive",
        Retired = "retired",
    }
}

status_enum! {
    /// Only `available` drivers are offered for dispatch; new drivers start `off_duty`.
    DriverStatus, DriverStatusError, "driver status" {
        Available = "available",
        OnJob = "on_job",
        OnBreak = "on_break",
        OffDuty = "off_duty",
        Inactive = "inactive",
    }
}

status_enum! {
    /// `pending` until dispatched, `queued` while nobody fits, `dispatched` while a dispatch is
    /// active, then `completed` or `cancelled`.
    JobStatus, JobStatusError, "job status" {
        Pending = "pending",
        Queued = "queued",
        Dispatched = "dispatched",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// `dispatched → en_route → on_site → (returning →) completed`; `cancelled` or `recalled`
    /// from any active state. Completed, cancelled and recalled are final.
    DispatchStatus, DispatchStatusError, "dispatch status" {
        Dispatched = "dispatched",
        EnRoute = "en_route",
        OnSite = "on_site",
        Returning = "returning",
        Completed = "completed",
        Cancelled = "cancelled",
        Recalled = "recalled",
    }
}

impl DispatchStatus {
    /// The states that hold a driver, a vehicle and a job (the partial unique indexes of
    /// `dispatches` list exactly these).
    pub const ACTIVE: &'static [DispatchStatus] = &[
        DispatchStatus::Dispatched,
        DispatchStatus::EnRoute,
        DispatchStatus::OnSite,
        DispatchStatus::Returning,
    ];

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// Where a dispatch may go from here (empty once it is over).
    pub fn allowed_next(self) -> &'static [DispatchStatus] {
        use DispatchStatus::*;
        match self {
            Dispatched => &[EnRoute, Cancelled, Recalled],
            EnRoute => &[OnSite, Cancelled, Recalled],
            OnSite => &[Returning, Completed, Cancelled, Recalled],
            Returning => &[Completed, Cancelled, Recalled],
            Completed | Cancelled | Recalled => &[],
        }
    }

    pub fn can_become(self, next: DispatchStatus) -> bool {
        self.allowed_next().contains(&next)
    }

    /// The `dispatches` column holding when this state was reached.
    pub fn reached_at_column(self) -> &'static str {
        match self {
            DispatchStatus::Dispatched => "dispatched_at",
            DispatchStatus::EnRoute => "en_route_at",
            DispatchStatus::OnSite => "on_site_at",
            DispatchStatus::Returning => "returning_at",
            DispatchStatus::Completed => "completed_at",
            DispatchStatus::Cancelled => "cancelled_at",
            DispatchStatus::Recalled => "recalled_at",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_round_trip_and_reject_others() {
        for s in VehicleStatus::ALL {
            assert_eq!(s.as_str().parse::<VehicleStatus>(), Ok(*s));
        }
        for s in DriverStatus::ALL {
            assert_eq!(s.as_str().parse::<DriverStatus>(), Ok(*s));
        }
        assert_eq!(VehicleStatus::NAMES.len(), VehicleStatus::ALL.len());
        assert!("Active".parse::<VehicleStatus>().is_err());
        assert!("available".parse::<VehicleStatus>().is_err());
        let e = "busy".parse::<DriverStatus>().unwrap_err().to_string();
        assert!(e.contains("on_job") && e.contains("\"busy\""), "{e}");
    }

    #[test]
    fn dispatch_transitions_follow_the_seed_model() {
        use DispatchStatus::*;
        let path = [Dispatched, EnRoute, OnSite, Returning, Completed];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
        assert!(OnSite.can_become(Completed), "returning is optional");
        for s in DispatchStatus::ACTIVE {
            assert!(s.can_become(Cancelled) && s.can_become(Recalled), "{s}");
            assert!(!s.can_become(*s), "{s} -> itself is no transition");
        }
        for done in [Completed, Cancelled, Recalled] {
            assert!(
                !done.is_active() && done.allowed_next().is_empty(),
                "{done} is final"
            );
        }
        assert!(!Dispatched.can_become(OnSite), "no skipping en_route");
        assert!(!Returning.can_become(OnSite), "no going back");
        let columns: std::collections::HashSet<_> = DispatchStatus::ALL
            .iter()
            .map(|s| s.reached_at_column())
            .collect();
        assert_eq!(columns.len(), DispatchStatus::ALL.len());
    }

    #[test]
    fn the_schema_lists_the_same_statuses() {
        let schema = include_str!("../../migrations/V6__dispatch_core.sql");
        let quoted = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let active: Vec<&str> = DispatchStatus::ACTIVE.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            schema
                .matches(&format!("status IN ({})", quoted(&active)))
                .count(),
            4,
            "three partial unique indexes and the availability view use the active list"
        );
        assert!(schema.contains(&format!("status IN ({})", quoted(JobStatus::NAMES))));
        let all = DispatchStatus::NAMES;
        let check = format!(
            "CHECK (status IN ({},\n                                    {}))",
            quoted(&all[..4]),
            quoted(&all[4..])
        );
        assert!(
            schema.contains(&check),
            "the dispatches CHECK lists every status"
        );
        for s in DispatchStatus::ALL {
            assert!(
                schema.contains(s.reached_at_column()),
                "{}",
                s.reached_at_column()
            );
        }
    }
}
