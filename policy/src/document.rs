//! Policy documents: the JSON an operator writes, checked whole and compiled into the rules `Policy` evaluates.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

use crate::PolicyError;
use crate::dns::{DnsPattern, DnsPatterns};
use crate::uri::UriPrefix;

/// A certificate key as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    EcP256,
    EcP384,
    Ed25519,
    Rsa { bits: u32 },
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa { .. } => "rsa",
        }
    }

    fn parse(name: &str) -> Result<KeyType, PolicyError> {
        match name {
            "ec-p256" => Ok(KeyType::EcP256),
            "ec-p384" => Ok(KeyType::EcP384),
            "ed25519" => Ok(KeyType::Ed25519),
            "rsa" => Ok(KeyType::Rsa { bits: 0 }),
            other => Err(PolicyError::KeyType(other.to_owned())),
        }
    }

    pub(crate) fn same_kind(self, other: KeyType) -> bool {
        self.name() == other.name()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRules {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deny: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    wildcards: bool,
}

/// The document as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDocument {
    #[serde(default)]
    dns: NameRules,
    #[serde(default)]
    ip: NameRules,
    #[serde(default)]
    uri: NameRules,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profiles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rsa_min_bits: Option<u32>,
}

/// One group's rules, checked and compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    pub(crate) dns_allow: DnsPatterns,
    pub(crate) dns_deny: DnsPatterns,
    pub(crate) wildcards: bool,
    pub(crate) ip_allow: Vec<IpNet>,
    pub(crate) ip_deny: Vec<IpNet>,
    pub(crate) uri_allow: Vec<UriPrefix>,
    /// None: every profile.
    pub(crate) profiles: Option<Vec<String>>,
    pub(crate) max_lifetime_secs: Option<u64>,
    /// None: every key type the CA accepts.
    pub(crate) key_types: Option<Vec<KeyType>>,
    pub(crate) rsa_min_bits: Option<u32>,
    /// The document, normalized, for showing back.
    document: String,
}

fn parse_ip(text: &str) -> Result<IpNet, PolicyError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| PolicyError::IpRange { range: text.to_owned() })
}

fn dns_patterns(list: &[String]) -> Result<DnsPatterns, PolicyError> {
    list.iter().map(|p| DnsPattern::parse(p)).collect::<Result<Vec<_>, _>>().map(DnsPatterns)
}

fn contradiction(allow: &[String], deny: &[String], kind: &str) -> Result<(), PolicyError> {
    match allow.iter().find(|a| deny.contains(a)) {
        Some(both) => Err(PolicyError::Contradiction(format!("{kind} {both:?} is both allowed and denied"))),
        None => Ok(()),
    }
}

impl GroupPolicy {
    /// Parses and checks a whole document: any error refuses all of it.
    pub fn from_json(text: &str) -> Result<GroupPolicy, PolicyError> {
        let doc: GroupDocument = serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        contradiction(&doc.dns.allow, &doc.dns.deny, "dns pattern")?;
        contradiction(&doc.ip.allow, &doc.ip.deny, "ip range")?;
        if !doc.uri.deny.is_empty() || doc.uri.wildcards || doc.ip.wildcards {
            return Err(PolicyError::Invalid(
                "only dns takes \"wildcards\", and uri takes only \"allow\" (deny URIs in the global list)".into(),
            ));
        }
        if doc.dns.wildcards && doc.dns.allow.is_empty() {
            return Err(PolicyError::Contradiction("wildcards are allowed but no dns name is".into()));
        }
        if doc.max_lifetime_secs == Some(0) {
            return Err(PolicyError::Contradiction("max_lifetime_secs 0 allows no certificate at all".into()));
        }
        if doc.profiles.as_ref().is_some_and(Vec::is_empty) || doc.key_types.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError::Contradiction(
                "an empty profiles or key_types list allows nothing; leave it out to allow all".into(),
            ));
        }
        let key_types = doc
            .key_types
            .as_ref()
            .map(|list| list.iter().map(|k| KeyType::parse(k)).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        if let Some(bits) = doc.rsa_min_bits {
            if !(2048..=8192).contains(&bits) {
                return Err(PolicyError::Invalid(format!("rsa_min_bits {bits} is outside 2048..=8192")));
            }
            if key_types.as_ref().is_some_and(|k| !k.iter().any(|k| matches!(k, KeyType::Rsa { .. }))) {
                return Err(PolicyError::Contradiction(
                    "rsa_min_bits is set but rsa is not an allowed key type".into(),
                ));
            }
        }
        let document = serde_json::to_string(&doc).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        Ok(GroupPolicy {
            dns_allow: dns_patterns(&doc.dns.allow)?,
            dns_deny: dns_patterns(&doc.dns.deny)?,
            wildcards: doc.dns.wildcards,
            ip_allow: doc.ip.allow.iter().map(|s| parse_ip(s)).collect::<Result<_, _>>()?,
            ip_deny: doc.ip.deny.iter().map(|s| parse_ip(s)).collect::<Result<_, _>>()?,
            uri_allow: doc.uri.allow.iter().map(|s| UriPrefix::parse(s)).collect::<Result<_, _>>()?,
            profiles: doc.profiles,
            max_lifetime_secs: doc.max_lifetime_secs,
            key_types,
            rsa_min_bits: doc.rsa_min_bits,
            document,
        })
    }

    /// The policy of a group nobody configured: nothing is allowed.
    pub fn deny_all() -> GroupPolicy {
        GroupPolicy::from_json("{}").unwrap_or_else(|_| unreachable!("the empty document is valid"))
    }

    /// The document, normalized (compact JSON, empty parts left out).
    pub fn to_json(&self) -> &str {
        &self.document
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalDocument {
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    ip: Vec<String>,
    #[serde(default)]
    uri: Vec<String>,
}

/// What no group may have, whatever its own policy says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalDeny {
    pub(crate) dns: DnsPatterns,
    pub(crate) ip: Vec<IpNet>,
    pub(crate) uri: Vec<UriPrefix>,
    document: String,
}

impl GlobalDeny {
    /// `{"dns": [...], "ip": [...], "uri": [...]}`, each a deny list.
    pub fn from_json(text: &str) -> Result<GlobalDeny, PolicyError> {
        let doc: GlobalDocument = serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        Ok(GlobalDeny {
            dns: dns_patterns(&doc.dns)?,
            ip: doc.ip.iter().map(|s| parse_ip(s)).collect::<Result<_, _>>()?,
            uri: doc.uri.iter().map(|s| UriPrefix::parse(s)).collect::<Result<_, _>>()?,
            document: serde_json::to_string(&doc).map_err(|e| PolicyError::Syntax(e.to_string()))?,
        })
    }

    pub fn to_json(&self) -> &str {
        &self.document
    }
}
