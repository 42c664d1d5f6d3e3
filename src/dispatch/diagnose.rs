//! Why a named driver cannot take a job: read after the assignment refused them, only to
//! say why (the decision was the assignment's).

use crate::store::dispatches::DriverState;

/// Why a named driver cannot take a job (the 409's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Busy,
    OffDuty,
    NoShift,
    VehicleUnavailable,
    WrongVehicleType,
    NoPosition,
    StalePosition,
}

impl Unavailable {
    pub const NAMES: &'static [&'static str] = &[
        "busy",
        "off_duty",
        "no_shift",
        "vehicle_unavailable",
        "wrong_vehicle_type",
        "no_position",
        "stale_position",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::Busy => "busy",
            Unavailable::OffDuty => "off_duty",
            Unavailable::NoShift => "no_shift",
            Unavailable::VehicleUnavailable => "vehicle_unavailable",
            Unavailable::WrongVehicleType => "wrong_vehicle_type",
            Unavailable::NoPosition => "no_position",
            Unavailable::StalePosition => "stale_position",
        }
    }
}

/// The first rule the driver breaks, in the order a dispatcher would fix them.
pub(super) fn diagnose(
    s: &DriverState,
    vehicle_type: &str,
    max_age_s: f64,
) -> (Unavailable, String) {
    if s.busy {
        return (Unavailable::Busy, "on another active dispatch".into());
    }
    if s.status != "available" {
        return (
            Unavailable::OffDuty,
            format!("driver status is {}", s.status),
        );
    }
    if !s.on_shift {
        return (Unavailable::NoShift, "no shift running now".into());
    }
    if !s.vehicle_active || s.vehicle_in_maintenance || s.vehicle_busy {
        let why = if s.vehicle_in_maintenance {
            "the shift's vehicle has an open maintenance record"
        } else if s.vehicle_busy {
            "the shift's vehicle is on another active dispatch"
        } else {
            "the shift's vehicle is not active"
        };
        return (Unavailable::VehicleUnavailable, why.into());
    }
    if s.vehicle_type.as_deref() != Some(vehicle_type) {
        return (
            Unavailable::WrongVehicleType,
            format!(
                "the job needs a {vehicle_type}, the shift's vehicle is a {}",
                s.vehicle_type
                    .as_deref()
                    .unwrap_or("vehicle without a type")
            ),
        );
    }
    match s.position_age_s {
        None => (
            Unavailable::NoPosition,
            "the shift's vehicle has never reported a position".into(),
        ),
        Some(age) if age > max_age_s => (
            Unavailable::StalePosition,
            format!("the vehicle's last position is {age:.0} s old (limit {max_age_s:.0} s)"),
        ),
        // Everything holds now: a concurrent dispatch took the driver or vehicle and ended.
        Some(_) => (Unavailable::Busy, "taken by a concurrent dispatch".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> DriverState {
        DriverState {
            status: "available".into(),
            busy: false,
            on_shift: true,
            vehicle_active: true,
            vehicle_in_maintenance: false,
            vehicle_busy: false,
            vehicle_type: Some("truck".into()),
            position_age_s: Some(10.0),
        }
    }

    #[test]
    fn diagnosis_names_the_first_broken_rule() {
        let reason = |s: DriverState| diagnose(&s, "truck", 300.0).0;
        assert_eq!(
            reason(DriverState {
                busy: true,
                status: "off_duty".into(),
                ..ready()
            }),
            Unavailable::Busy
        );
        assert_eq!(
            reason(DriverState {
                status: "off_duty".into(),
                ..ready()
            }),
            Unavailable::OffDuty
        );
        assert_eq!(
            reason(DriverState {
                on_shift: false,
                ..ready()
            }),
            Unavailable::NoShift
        );
        assert_eq!(
            reason(DriverState {
                vehicle_in_maintenance: true,
                ..ready()
            }),
            Unavailable::VehicleUnavailable
        );
        assert_eq!(
            reason(DriverState {
                vehicle_type: Some("van".into()),
                ..ready()
            }),
            Unavailable::WrongVehicleType
        );
        assert_eq!(
            reason(DriverState {
                position_age_s: None,
                ..ready()
            }),
            Unavailable::NoPosition
        );
        assert_eq!(
            reason(DriverState {
                position_age_s: Some(301.0),
                ..ready()
            }),
            Unavailable::StalePosition
        );
        assert_eq!(Unavailable::NAMES.len(), 7);
    }
}
