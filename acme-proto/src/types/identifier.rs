use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An identifier type (RFC 8555 §9.7.7). Unknown types are kept, so the server can answer `unsupportedIdentifier`
/// rather than `malformed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentifierType {
    Dns,
    /// RFC 8738.
    Ip,
    Other(String),
}

impl IdentifierType {
    pub fn as_str(&self) -> &str {
        match self {
            IdentifierType::Dns => "dns",
            IdentifierType::Ip => "ip",
            IdentifierType::Other(s) => s,
        }
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IdentifierType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdentifierType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(match s.as_str() {
            "dns" => IdentifierType::Dns,
            "ip" => IdentifierType::Ip,
            _ => IdentifierType::Other(s),
        })
    }
}

/// An identifier the client wants a certificate for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    pub value: String,
}

impl Identifier {
    pub fn dns(value: impl Into<String>) -> Self {
        Identifier { kind: IdentifierType::Dns, value: value.into() }
    }

    pub fn ip(value: impl Into<String>) -> Self {
        Identifier { kind: IdentifierType::Ip, value: value.into() }
    }
}
