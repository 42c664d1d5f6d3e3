//! What an alert is about and how bad it is. The `alerts` table's CHECKs list the same names.

use std::fmt;
use std::str::FromStr;

use super::status::status_enum;

status_enum! {
    /// The kind of thing an alert is raised on; `entity_id` is that thing's id.
    AlertSubject, AlertSubjectError, "alert entity" {
        Vehicle = "vehicle",
        Driver = "driver",
        Job = "job",
        Dispatch = "dispatch",
        Geofence = "geofence",
        Customer = "customer",
    }
}

status_enum! {
    /// How urgently someone should look.
    Severity, SeverityError, "severity" {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_lists_the_same_subjects_and_severities() {
        let schema = include_str!("../../migrations/V6__dispatch_core.sql");
        let quoted = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert!(schema.contains(&format!("entity IN ({})", quoted(AlertSubject::NAMES))));
        assert!(schema.contains(&format!("severity IN ({})", quoted(Severity::NAMES))));
        assert_eq!("critical".parse::<Severity>(), Ok(Severity::Critical));
        assert!("fatal".parse::<Severity>().is_err());
    }
}
