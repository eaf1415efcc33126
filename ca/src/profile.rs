//! Certificate profiles: what a leaf certificate is for, and what it may contain.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use serde::Deserialize;
use std::time::Duration;

const DAY: u64 = 24 * 60 * 60;

/// The leaf profiles this CA issues under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileKind {
    /// A TLS server: serverAuth; DNS and IP SANs.
    TlsServer,
    /// A TLS client for mTLS: clientAuth; DNS, IP or SPIFFE URI SANs.
    TlsClient,
    /// A service identity (SPIFFE X.509-SVID): serverAuth and clientAuth, exactly one SPIFFE URI SAN.
    Service,
}

impl ProfileKind {
    pub const ALL: [ProfileKind; 3] = [ProfileKind::TlsServer, ProfileKind::TlsClient, ProfileKind::Service];

    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::TlsServer => "tls-server",
            ProfileKind::TlsClient => "tls-client",
            ProfileKind::Service => "service",
        }
    }

    pub fn from_name(name: &str) -> Option<ProfileKind> {
        ProfileKind::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn extended_key_usages(self) -> Vec<ObjectIdentifier> {
        match self {
            ProfileKind::TlsServer => vec![ID_KP_SERVER_AUTH],
            ProfileKind::TlsClient => vec![ID_KP_CLIENT_AUTH],
            ProfileKind::Service => vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
        }
    }

    pub fn allows_uri_sans(self) -> bool {
        !matches!(self, ProfileKind::TlsServer)
    }

    pub fn requires_uri_san(self) -> bool {
        matches!(self, ProfileKind::Service)
    }

    /// Defaults: 90 days for servers (what ACME clients expect), 30 days for mTLS clients, one day for service
    /// identities, which are meant to be short-lived and renewed automatically.
    fn default_max_lifetime(self) -> Duration {
        match self {
            ProfileKind::TlsServer => Duration::from_secs(90 * DAY),
            ProfileKind::TlsClient => Duration::from_secs(30 * DAY),
            ProfileKind::Service => Duration::from_secs(DAY),
        }
    }
}

impl std::fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile with its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub kind: ProfileKind,
    /// The longest validity period this profile issues, backdating included, counted inclusively as RFC 5280 and
    /// the CA/B Forum BRs do: notAfter − notBefore + 1s.
    pub max_lifetime: Duration,
}

/// The CA's profiles, looked up by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles {
            profiles: ProfileKind::ALL
                .into_iter()
                .map(|kind| Profile { kind, max_lifetime: kind.default_max_lifetime() })
                .collect(),
        }
    }
}

impl Profiles {
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.kind.name() == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.profiles.iter().map(|p| p.kind.name()).collect()
    }

    /// Overrides a profile's maximum lifetime (from configuration).
    pub fn set_max_lifetime(&mut self, kind: ProfileKind, max_lifetime: Duration) {
        for profile in &mut self.profiles {
            if profile.kind == kind {
                profile.max_lifetime = max_lifetime;
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }
}
