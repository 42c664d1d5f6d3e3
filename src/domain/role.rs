//! What an API key may do. Admin may do everything; the others only what names them.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Dispatcher,
    Analyst,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, dispatcher or analyst")]
pub struct RoleError(String);

/// Who may call what, defined once: every endpoint names one of these sets (admin is always
/// allowed, see `Role::is_allowed`).
impl Role {
    /// Changes fleet, shifts and geofences, and asks for dispatch decisions.
    pub const WRITERS: &'static [Role] = &[Role::Dispatcher];
    /// Reads fleet, shifts, positions and geofences.
    pub const READERS: &'static [Role] = &[Role::Dispatcher, Role::Analyst];
    /// Reads history in bulk (fleet exports): analysts, not the dispatch desk.
    pub const ANALYSTS: &'static [Role] = &[Role::Analyst];
    /// Administration (API keys): admin only.
    pub const ADMINS: &'static [Role] = &[];

    pub const ALL: &'static [Role] = &[Role::Admin, Role::Dispatcher, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Analyst => "analyst",
        }
    }

    /// Whether a caller with this role may call an endpoint open to `allowed`.
    pub fn is_allowed(self, allowed: &[Role]) -> bool {
        self == Role::Admin || allowed.contains(&self)
    }
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "dispatcher" => Ok(Role::Dispatcher),
            "analyst" => Ok(Role::Analyst),
            other => Err(RoleError(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_round_trip_and_rejects_others() {
        for role in [Role::Admin, Role::Dispatcher, Role::Analyst] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn admin_may_do_everything_others_only_what_names_them() {
        assert!(Role::Admin.is_allowed(&[Role::Analyst]));
        assert!(Role::Dispatcher.is_allowed(&[Role::Dispatcher, Role::Analyst]));
        assert!(!Role::Analyst.is_allowed(&[Role::Dispatcher]));
        assert!(!Role::Dispatcher.is_allowed(&[]));
    }
}
