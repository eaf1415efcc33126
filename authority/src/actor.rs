//! Who acted, as the audit log names them. One constructor per kind of actor, so the same actor is always spelled
//! the same way.

use castellan_store::AccountId;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// Castellan itself, doing a job of its own: "castellan:serve", "castellan:ocsp", "castellan:scheduler".
    pub fn castellan(job: &str) -> Actor {
        Actor(format!("castellan:{job}"))
    }

    /// An operator at the command line on the CA's own machine: "cli:alice".
    pub fn cli(user: &str) -> Actor {
        Actor(format!("cli:{user}"))
    }

    /// The operator running this process, from the environment (or the uid when it names nobody).
    pub fn cli_user() -> Actor {
        match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
            Ok(user) if !user.is_empty() => Actor::cli(&user),
            _ => Actor::cli(&format!("uid-{}", process_uid())),
        }
    }

    /// An admin API caller with a token: "admin-token:3:ops".
    pub fn admin_token(id: i64, name: &str) -> Actor {
        Actor(format!("admin-token:{id}:{name}"))
    }

    /// An admin API caller with a client certificate: "admin-cert:alice:0a1b…".
    pub fn admin_certificate(name: &str, serial_hex: &str) -> Actor {
        Actor(format!("admin-cert:{name}:{serial_hex}"))
    }

    /// An ACME account acting on its own resources: "acme:account:42".
    pub fn acme_account(id: AccountId) -> Actor {
        Actor(format!("acme:account:{id}"))
    }

    /// ACME work no account did itself: "acme:new-account", "acme:expiry", "acme:recovery", …
    pub fn acme(what: &str) -> Actor {
        Actor(format!("acme:{what}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The real user id, from the owner of this process's /proc entry.
fn process_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(u32::MAX)
}
