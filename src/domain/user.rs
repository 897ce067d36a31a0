//! Who may call the service: roles within a tenant.

use std::fmt;
use std::str::FromStr;

/// What a user may do within its tenant (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in its tenant, including user management.
    Admin,
    /// Every row of its tenant.
    Dispatcher,
    /// Only rows with its own `user_id`.
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Technician => "technician",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "dispatcher" => Ok(Role::Dispatcher),
            "technician" => Ok(Role::Technician),
            other => Err(format!(
                "unknown role '{other}' (expected admin, dispatcher or technician)"
            )),
        }
    }
}

/// The authenticated caller of a request, as the rules and the store see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: i64,
    pub domain: String,
    pub username: String,
    pub role: Role,
    /// The technician's `user_id` in dispatch rows (all zeros for other roles).
    pub user_id: uuid::Uuid,
}

impl Principal {
    pub fn is_technician(&self) -> bool {
        self.role == Role::Technician
    }

    /// `username@domain`, as history records the actor.
    pub fn actor(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }
}
