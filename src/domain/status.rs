//! What state a vehicle or a driver is in. The API reads and documents them from here, the
//! table checks the same lists, and availability for dispatch is decided by them.

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
}
