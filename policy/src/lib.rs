//! Issuance policy: which DNS names, IP addresses, SPIFFE URIs, profiles, lifetimes and key types an account group
//! may obtain. Pure logic — no I/O — so every rule is tested here and the RA only asks.
//!
//! A group's policy is a JSON document ([`GroupPolicy::from_json`]); a global deny list ([`GlobalDeny`]) applies
//! to every group. Deny wins over allow, and nothing is allowed that no allow rule names: the default group,
//! without a policy, may have nothing ([`GroupPolicy::deny_all`]).
//!
//! ```json
//! {
//!   "dns":  { "allow": ["api.corp.example", ".payments.corp.example"], "deny": [".prod.payments.corp.example"],
//!             "wildcards": true },
//!   "ip":   { "allow": ["10.20.0.0/16"], "deny": ["10.20.99.0/24"] },
//!   "uri":  { "allow": ["spiffe://corp.example/ns/payments/"] },
//!   "profiles": ["tls-server", "tls-client"],
//!   "max_lifetime_secs": 2592000,
//!   "key_types": ["ec-p256", "ec-p384", "ed25519", "rsa"],
//!   "rsa_min_bits": 3072
//! }
//! ```
//!
//! DNS patterns: `name.example` is that name only; `.name.example` is every name below it (not the name itself);
//! `.` is every name.
//! A wildcard identifier `*.x.example` needs `"wildcards": true` and a pattern that covers every name it would
//! match: `*.x.example` itself, or a subtree at or above `x.example`. A deny pattern refuses a wildcard when any
//! name the wildcard matches would be refused.
//!
//! Every refusal names the subject and the rule ([`Refusal`]), so an operator reading a `rejectedIdentifier`
//! knows which line of which policy to change.

mod dns;
mod document;
mod error;
mod uri;

pub use document::{GlobalDeny, GroupPolicy, KeyType};
pub use error::PolicyError;

use std::net::IpAddr;

/// What is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A DNS name, possibly a wildcard ("*.corp.example"); lower-case.
    Dns(&'a str),
    Ip(IpAddr),
    /// A URI SAN (SPIFFE ID).
    Uri(&'a str),
}

impl std::fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Dns(name) => write!(f, "DNS name {name}"),
            Subject::Ip(ip) => write!(f, "IP address {ip}"),
            Subject::Uri(uri) => write!(f, "URI {uri}"),
        }
    }
}

/// A refusal, naming what was refused and the rule that refused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{subject} is not allowed: {rule}")]
pub struct Refusal {
    pub subject: String,
    pub rule: String,
}

/// A group's policy together with the global deny list, as one decision-maker.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    pub group_name: &'a str,
    pub group: &'a GroupPolicy,
    pub global: &'a GlobalDeny,
}

impl Policy<'_> {
    fn refuse(&self, subject: impl std::fmt::Display, rule: String) -> Refusal {
        Refusal { subject: subject.to_string(), rule }
    }

    /// A name, address or URI: global deny, then the group's deny, then the group's allow.
    pub fn check_subject(&self, subject: Subject<'_>) -> Result<(), Refusal> {
        let group = self.group_name;
        match subject {
            Subject::Dns(name) => {
                if let Some(pattern) = self.global.dns.denying(name) {
                    return Err(self.refuse(subject, format!("the global deny list has dns pattern {pattern:?}")));
                }
                if let Some(pattern) = self.group.dns_deny.denying(name) {
                    return Err(self.refuse(subject, format!("group {group:?} denies dns pattern {pattern:?}")));
                }
                if name.starts_with("*.") && !self.group.wildcards {
                    return Err(self.refuse(subject, format!("group {group:?} does not allow wildcards")));
                }
                if self.group.dns_allow.allowing(name).is_none() {
                    return Err(self.refuse(subject, format!("no dns.allow pattern of group {group:?} covers it")));
                }
                Ok(())
            }
            Subject::Ip(ip) => {
                if let Some(net) = self.global.ip.iter().find(|n| n.contains(&ip)) {
                    return Err(self.refuse(subject, format!("the global deny list has ip range {net}")));
                }
                if let Some(net) = self.group.ip_deny.iter().find(|n| n.contains(&ip)) {
                    return Err(self.refuse(subject, format!("group {group:?} denies ip range {net}")));
                }
                if !self.group.ip_allow.iter().any(|n| n.contains(&ip)) {
                    return Err(self.refuse(subject, format!("no ip.allow range of group {group:?} contains it")));
                }
                Ok(())
            }
            Subject::Uri(uri) => {
                if let Some(pattern) = self.global.uri.iter().find(|p| p.matches(uri)) {
                    return Err(
                        self.refuse(subject, format!("the global deny list has uri prefix {:?}", pattern.text()))
                    );
                }
                if !self.group.uri_allow.iter().any(|p| p.matches(uri)) {
                    return Err(self.refuse(subject, format!("no uri.allow prefix of group {group:?} matches it")));
                }
                Ok(())
            }
        }
    }

    pub fn check_profile(&self, profile: &str) -> Result<(), Refusal> {
        match &self.group.profiles {
            Some(allowed) if !allowed.iter().any(|p| p == profile) => Err(self.refuse(
                format!("profile {profile:?}"),
                format!("group {:?} allows only profiles {allowed:?}", self.group_name),
            )),
            _ => Ok(()),
        }
    }

    /// The lifetime a certificate would get, in seconds.
    pub fn check_lifetime(&self, seconds: u64) -> Result<(), Refusal> {
        match self.group.max_lifetime_secs {
            Some(max) if seconds > max => Err(self.refuse(
                format!("a lifetime of {seconds} s"),
                format!("group {:?} allows at most {max} s", self.group_name),
            )),
            _ => Ok(()),
        }
    }

    /// The most a certificate of this group may live, if the group limits it.
    pub fn max_lifetime_secs(&self) -> Option<u64> {
        self.group.max_lifetime_secs
    }

    pub fn check_key(&self, key: KeyType) -> Result<(), Refusal> {
        let group = self.group_name;
        if let Some(allowed) = &self.group.key_types
            && !allowed.iter().any(|k| k.same_kind(key))
        {
            let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
            return Err(self.refuse(format!("a {} key", key.name()), format!("group {group:?} allows only {names:?}")));
        }
        if let (KeyType::Rsa { bits }, Some(min)) = (key, self.group.rsa_min_bits)
            && bits < min
        {
            return Err(
                self.refuse(format!("an RSA-{bits} key"), format!("group {group:?} needs RSA of {min} bits or more"))
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
