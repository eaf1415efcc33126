//! Store records → RFC 8555 resources, as clients see them.

use castellan_acme_proto::types::{
    Account, AccountStatus, Authorization, AuthorizationStatus, Challenge, ChallengeStatus, Identifier, Order,
    OrderStatus, Problem,
};
use castellan_store::acme as store;

use super::urls::BaseUrl;
use crate::ra::identifiers::OrderIdentifier;
use crate::ra::renewal_info::rfc3339;

fn problem(value: &Option<serde_json::Value>) -> Option<Problem> {
    value.as_ref().and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn wire_identifier(stored: &store::StoredIdentifier) -> Identifier {
    OrderIdentifier::from_stored(stored).map(|i| i.to_wire()).unwrap_or_else(|| Identifier::dns(stored.value.clone()))
}

pub fn account(base: &BaseUrl, record: &store::AccountRecord) -> Account {
    Account {
        status: match record.status {
            store::AccountStatus::Valid => AccountStatus::Valid,
            store::AccountStatus::Deactivated => AccountStatus::Deactivated,
            store::AccountStatus::Revoked => AccountStatus::Revoked,
        },
        contact: Some(record.contacts.clone()),
        terms_of_service_agreed: record.terms_agreed.then_some(true),
        external_account_binding: None,
        orders: Some(base.account_orders(record.id)),
    }
}

pub fn order(base: &BaseUrl, record: &store::OrderRecord) -> Order {
    let status = match record.status {
        store::OrderStatus::Pending => OrderStatus::Pending,
        store::OrderStatus::Ready => OrderStatus::Ready,
        store::OrderStatus::Processing => OrderStatus::Processing,
        store::OrderStatus::Valid => OrderStatus::Valid,
        store::OrderStatus::Invalid => OrderStatus::Invalid,
    };
    Order {
        status,
        expires: Some(rfc3339(record.expires_at)),
        identifiers: record.identifiers.iter().map(wire_identifier).collect(),
        profile: record.profile.clone(),
        not_before: record.not_before.map(rfc3339),
        not_after: record.not_after.map(rfc3339),
        error: problem(&record.error),
        authorizations: record.authorization_ids.iter().map(|id| base.authorization(*id)).collect(),
        finalize: base.finalize(record.id),
        certificate: match (status, record.certificate_id) {
            (OrderStatus::Valid, Some(id)) => Some(base.certificate(id)),
            _ => None,
        },
        replaces: record.replaces.clone(),
    }
}

pub fn challenge(base: &BaseUrl, record: &store::ChallengeRecord) -> Challenge {
    Challenge {
        kind: record.kind.as_str().to_owned(),
        url: base.challenge(record.id),
        status: match record.status {
            store::ChallengeStatus::Pending => ChallengeStatus::Pending,
            store::ChallengeStatus::Processing => ChallengeStatus::Processing,
            store::ChallengeStatus::Valid => ChallengeStatus::Valid,
            store::ChallengeStatus::Invalid => ChallengeStatus::Invalid,
        },
        token: Some(record.token.clone()),
        validated: record.validated_at.map(rfc3339),
        error: problem(&record.error),
    }
}

/// An authorization as of `now`: one whose time ran out shows as expired (RFC 8555 §7.1.6).
pub fn authorization(base: &BaseUrl, record: &store::AuthorizationRecord, now: i64) -> Authorization {
    let status = match record.status {
        store::AuthorizationStatus::Pending | store::AuthorizationStatus::Valid if record.expires_at < now => {
            AuthorizationStatus::Expired
        }
        store::AuthorizationStatus::Pending => AuthorizationStatus::Pending,
        store::AuthorizationStatus::Valid => AuthorizationStatus::Valid,
        store::AuthorizationStatus::Invalid => AuthorizationStatus::Invalid,
        store::AuthorizationStatus::Deactivated => AuthorizationStatus::Deactivated,
        store::AuthorizationStatus::Expired => AuthorizationStatus::Expired,
        store::AuthorizationStatus::Revoked => AuthorizationStatus::Revoked,
    };
    Authorization {
        // RFC 8555 §7.1.4: the identifier without "*.", with "wildcard": true.
        identifier: match record.identifier.kind.as_str() {
            "ip" => Identifier::ip(record.identifier.value.clone()),
            _ => Identifier::dns(record.identifier.value.clone()),
        },
        status,
        expires: Some(rfc3339(record.expires_at)),
        challenges: record.challenges.iter().map(|c| challenge(base, c)).collect(),
        wildcard: record.wildcard.then_some(true),
    }
}
