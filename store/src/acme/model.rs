//! ACME rows as Rust values, and the mapping from rows.

use crate::error::{Result, StoreError};
use crate::ids::{AccountId, AuthorizationId, CertificateId, ChallengeId, GroupId, OrderId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A status column's values: `ALL`, `as_str` (what the schema's CHECK allows) and `parse`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

text_enum! {
    /// RFC 8555 §7.1.6 account states.
    AccountStatus { Valid = "valid", Deactivated = "deactivated", Revoked = "revoked" }
}

text_enum! {
    /// RFC 8555 §7.1.6 order states.
    OrderStatus { Pending = "pending", Ready = "ready", Processing = "processing", Valid = "valid", Invalid = "invalid" }
}

text_enum! {
    /// RFC 8555 §7.1.6 authorization states.
    AuthorizationStatus {
        Pending = "pending",
        Valid = "valid",
        Invalid = "invalid",
        Deactivated = "deactivated",
        Expired = "expired",
        Revoked = "revoked",
    }
}

text_enum! {
    /// RFC 8555 §7.1.6 challenge states.
    ChallengeStatus { Pending = "pending", Processing = "processing", Valid = "valid", Invalid = "invalid" }
}

text_enum! {
    /// RFC 8555 §8.3 and §8.4, RFC 8737.
    ChallengeType { Http01 = "http-01", Dns01 = "dns-01", TlsAlpn01 = "tls-alpn-01" }
}

/// An identifier as RFC 8555 writes it: `{"type": "dns", "value": "www.example.com"}`. In an authorization the
/// value has no `*.` (the wildcard flag says so, §7.1.4); in an order it is as the client asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredIdentifier {
    /// "dns" or "ip" (RFC 8738).
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl StoredIdentifier {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> StoredIdentifier {
        StoredIdentifier { kind: kind.into(), value: value.into() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.kind != "dns" && self.kind != "ip" {
            return Err(StoreError::Invalid {
                what: "identifier",
                why: format!("type {:?} is not dns or ip", self.kind),
            });
        }
        if self.value.is_empty() {
            return Err(StoreError::Invalid { what: "identifier", why: "empty value".to_owned() });
        }
        super::check_text("identifier", &self.value)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub jwk_json: String,
    /// RFC 7638, base64url: one account per key.
    pub jwk_thumbprint: String,
    pub status: AccountStatus,
    pub contacts: Vec<String>,
    pub group_id: Option<GroupId>,
    pub eab_key_id: Option<String>,
    pub terms_agreed: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub jwk_json: String,
    pub jwk_thumbprint: String,
    pub contacts: Vec<String>,
    pub terms_agreed: bool,
    pub group_id: Option<GroupId>,
    /// The external account binding's key id (RFC 8555 §7.3.4); the key is bound to this account alone.
    pub eab_key_id: Option<String>,
}

/// What `create_account` found: a new account, or the one this key already has (RFC 8555 §7.3.1: 200 with its
/// Location instead of 201).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountCreation {
    Created(AccountRecord),
    Existing(AccountRecord),
}

impl AccountCreation {
    pub fn record(&self) -> &AccountRecord {
        match self {
            AccountCreation::Created(a) | AccountCreation::Existing(a) => a,
        }
    }

    pub fn into_record(self) -> AccountRecord {
        match self {
            AccountCreation::Created(a) | AccountCreation::Existing(a) => a,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChallengeRecord {
    pub id: ChallengeId,
    pub authorization_id: AuthorizationId,
    pub kind: ChallengeType,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated_at: Option<i64>,
    /// An RFC 7807 problem document, when the challenge is invalid.
    pub error: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizationRecord {
    pub id: AuthorizationId,
    pub account_id: AccountId,
    pub identifier: StoredIdentifier,
    pub wildcard: bool,
    pub status: AuthorizationStatus,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Ordered by id.
    pub challenges: Vec<ChallengeRecord>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub account_id: AccountId,
    pub status: OrderStatus,
    pub identifiers: Vec<StoredIdentifier>,
    pub profile: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// RFC 9773 certID of the certificate this order replaces.
    pub replaces: Option<String>,
    /// The inventory row reserved at finalization (pending until signed).
    pub certificate_id: Option<CertificateId>,
    pub error: Option<Value>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// In the order `NewOrder::authorizations` listed them.
    pub authorization_ids: Vec<AuthorizationId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChallenge {
    pub kind: ChallengeType,
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuthorization {
    pub identifier: StoredIdentifier,
    pub wildcard: bool,
    pub expires_at: i64,
    pub challenges: Vec<NewChallenge>,
}

/// For each authorization an order needs: an existing one of the same account, or a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationPlan {
    Reuse(AuthorizationId),
    Create(NewAuthorization),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub account_id: AccountId,
    pub identifiers: Vec<StoredIdentifier>,
    pub profile: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub replaces: Option<String>,
    pub expires_at: i64,
    pub authorizations: Vec<AuthorizationPlan>,
}

/// What the VA found.
#[derive(Clone, Debug, PartialEq)]
pub enum ChallengeOutcome {
    /// `record` (what was fetched or resolved, and from where) goes to the audit log.
    Valid { validated_at: i64, authorization_expires_at: i64, record: Value },
    /// `error` is the RFC 7807 problem stored on the challenge and on the orders it invalidates.
    Invalid { error: Value },
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, jwk_json, jwk_thumbprint, status, contacts_json, group_id, eab_key_id, \
    terms_agreed, created_at, updated_at";

pub(crate) const AUTHORIZATION_COLUMNS: &str =
    "id, account_id, identifier_type, identifier_value, wildcard, status, expires_at, created_at, updated_at";

pub(crate) const CHALLENGE_COLUMNS: &str = "id, authorization_id, type, token, status, validated_at, error_json";

pub(crate) const ORDER_COLUMNS: &str = "id, account_id, status, identifiers_json, profile, not_before, not_after, \
    replaces, certificate_id, error_json, expires_at, created_at, updated_at";

fn parse_status<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {text:?}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn optional_json(row: &AnyRow, column: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse_json(&t, column)).transpose()
}

pub(crate) fn account_from_row(row: &AnyRow) -> Result<AccountRecord> {
    let contacts: String = row.try_get("contacts_json")?;
    let terms_agreed: i64 = row.try_get("terms_agreed")?;
    Ok(AccountRecord {
        id: row.try_get("id")?,
        jwk_json: row.try_get("jwk_json")?,
        jwk_thumbprint: row.try_get("jwk_thumbprint")?,
        status: parse_status(row, "status", AccountStatus::parse, "account status")?,
        contacts: parse_json(&contacts, "contacts_json")?,
        group_id: row.try_get("group_id")?,
        eab_key_id: row.try_get("eab_key_id")?,
        terms_agreed: terms_agreed != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The authorization without its challenges (the caller adds them).
pub(crate) fn authorization_from_row(row: &AnyRow) -> Result<AuthorizationRecord> {
    let wildcard: i64 = row.try_get("wildcard")?;
    Ok(AuthorizationRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        identifier: StoredIdentifier { kind: row.try_get("identifier_type")?, value: row.try_get("identifier_value")? },
        wildcard: wildcard != 0,
        status: parse_status(row, "status", AuthorizationStatus::parse, "authorization status")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        challenges: Vec::new(),
    })
}

pub(crate) fn challenge_from_row(row: &AnyRow) -> Result<ChallengeRecord> {
    Ok(ChallengeRecord {
        id: row.try_get("id")?,
        authorization_id: row.try_get("authorization_id")?,
        kind: parse_status(row, "type", ChallengeType::parse, "challenge type")?,
        token: row.try_get("token")?,
        status: parse_status(row, "status", ChallengeStatus::parse, "challenge status")?,
        validated_at: row.try_get("validated_at")?,
        error: optional_json(row, "error_json")?,
    })
}

/// The order without its authorization ids (the caller adds them).
pub(crate) fn order_from_row(row: &AnyRow) -> Result<OrderRecord> {
    let identifiers: String = row.try_get("identifiers_json")?;
    Ok(OrderRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        status: parse_status(row, "status", OrderStatus::parse, "order status")?,
        identifiers: parse_json(&identifiers, "identifiers_json")?,
        profile: row.try_get("profile")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        replaces: row.try_get("replaces")?,
        certificate_id: row.try_get("certificate_id")?,
        error: optional_json(row, "error_json")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        authorization_ids: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_match_the_schema() {
        for s in AccountStatus::ALL {
            assert_eq!(AccountStatus::parse(s.as_str()), Some(*s));
        }
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
        }
        for s in AuthorizationStatus::ALL {
            assert_eq!(AuthorizationStatus::parse(s.as_str()), Some(*s));
        }
        for s in ChallengeStatus::ALL {
            assert_eq!(ChallengeStatus::parse(s.as_str()), Some(*s));
        }
        let types: Vec<&str> = ChallengeType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(types, ["http-01", "dns-01", "tls-alpn-01"]);
        assert_eq!(ChallengeType::parse("http-01"), Some(ChallengeType::Http01));
        assert_eq!(ChallengeType::parse("HTTP-01"), None);
        assert_eq!(serde_json::to_value(ChallengeType::TlsAlpn01).unwrap(), "tls-alpn-01");
        assert_eq!(serde_json::to_value(OrderStatus::Ready).unwrap(), "ready");
    }

    #[test]
    fn identifiers_use_the_rfc_json_form() {
        let id = StoredIdentifier::new("dns", "www.example.com");
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, r#"{"type":"dns","value":"www.example.com"}"#);
        assert_eq!(serde_json::from_str::<StoredIdentifier>(&text).unwrap(), id);
        assert!(id.validate().is_ok());
        assert!(StoredIdentifier::new("email", "a@b").validate().is_err());
        assert!(StoredIdentifier::new("dns", "").validate().is_err());
        assert!(StoredIdentifier::new("dns", "a\0b").validate().is_err());
    }
}
