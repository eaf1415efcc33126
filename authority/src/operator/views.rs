//! What operator actions answer: one shape for the admin API's JSON and the CLI's `--json`. Hashes and key ids
//! are lower-case hex, times RFC 3339 (UTC), ids numbers.

use crate::clock::rfc3339;
use castellan_store::acme::AccountRecord;
use castellan_store::admin::{EabRecord, GroupRecord, TokenRecord};
use castellan_store::audit::{AuditEntry, AuditVerification};
use castellan_store::inventory::CertificateRecord;
use castellan_store::lifecycle::{Expiring, ManagedRecord, RotationRecord, RotationStatus};
use castellan_store::{AccountId, CertificateId, GroupId, ManagedId, RotationId, TokenId};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

fn time(unix: i64) -> String {
    rfc3339(unix)
}

fn maybe_time(unix: Option<i64>) -> Option<String> {
    unix.map(rfc3339)
}

#[derive(Clone, Debug, Serialize)]
pub struct CertificateView {
    pub id: CertificateId,
    pub serial: String,
    pub status: &'static str,
    pub source: &'static str,
    pub profile: Option<String>,
    pub subject: String,
    pub names: Vec<String>,
    pub issuer_dn: String,
    pub issuer_key_id: String,
    pub cert_sha256: Option<String>,
    pub spki_sha256: String,
    pub not_before: String,
    pub not_after: String,
    pub account_id: Option<AccountId>,
    pub owner: Option<String>,
    pub replaces_id: Option<CertificateId>,
    pub replaced_by_id: Option<CertificateId>,
    pub renewal_due_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The certificate itself, when one was asked for by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

impl CertificateView {
    pub fn of(c: &CertificateRecord) -> CertificateView {
        CertificateView {
            id: c.id,
            serial: c.serial.clone(),
            status: c.status.as_str(),
            source: c.source.as_str(),
            profile: c.profile.clone(),
            subject: c.subject.clone(),
            names: c.names.clone(),
            issuer_dn: c.issuer_dn.clone(),
            issuer_key_id: hex::encode(&c.issuer_key_id),
            cert_sha256: c.cert_sha256.as_ref().map(hex::encode),
            spki_sha256: hex::encode(&c.spki_sha256),
            not_before: time(c.not_before),
            not_after: time(c.not_after),
            account_id: c.account_id,
            owner: c.owner.clone(),
            replaces_id: c.replaces_id,
            replaced_by_id: c.replaced_by_id,
            renewal_due_at: maybe_time(c.renewal_due_at),
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
            pem: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CertificatePage {
    pub certificates: Vec<CertificateView>,
    pub next_cursor: Option<String>,
}

/// A certificate an operator issued from a CSR.
#[derive(Clone, Debug, Serialize)]
pub struct IssuedView {
    pub certificate: CertificateView,
    /// Leaf, intermediate, root.
    pub chain_pem: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RevokedView {
    pub id: CertificateId,
    pub serial: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RevocationView {
    pub reason: &'static str,
    pub revoked: Vec<RevokedView>,
    /// Matched, but already revoked or never issued.
    pub unchanged: Vec<CertificateId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RenewalView {
    /// Marked due now: ACME renewal information tells their clients to renew at once.
    pub due: Vec<CertificateView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub policy: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl GroupView {
    pub fn of(group: &GroupRecord) -> GroupView {
        // Stored documents were checked on the way in; should one not parse, show its text rather than fail.
        let policy =
            serde_json::from_str(&group.policy_json).unwrap_or_else(|_| Value::String(group.policy_json.clone()));
        GroupView {
            id: group.id,
            name: group.name.clone(),
            policy,
            created_at: time(group.created_at),
            updated_at: time(group.updated_at),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupList {
    pub groups: Vec<GroupView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DenyListView {
    pub deny: Value,
    pub updated_at: Option<String>,
}

impl DenyListView {
    pub fn of(text: &str, updated_at: Option<i64>) -> DenyListView {
        let deny = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        DenyListView { deny, updated_at: maybe_time(updated_at) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EabView {
    pub key_id: String,
    pub group: String,
    pub created_at: String,
    pub used_at: Option<String>,
    pub used_by_account: Option<AccountId>,
}

impl EabView {
    pub fn of(record: &EabRecord) -> EabView {
        EabView {
            key_id: record.key_id.clone(),
            group: record.group_name.clone(),
            created_at: time(record.created_at),
            used_at: maybe_time(record.used_at),
            used_by_account: record.used_by_account,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EabList {
    pub credentials: Vec<EabView>,
}

/// A new EAB credential: the only time its HMAC key is shown.
#[derive(Clone, Debug, Serialize)]
pub struct NewEabView {
    pub key_id: String,
    /// base64url, as ACME clients take it.
    pub hmac_key: String,
    pub group: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AccountView {
    pub id: AccountId,
    pub status: &'static str,
    pub contacts: Vec<String>,
    pub group: Option<String>,
    pub group_id: Option<GroupId>,
    pub eab_key_id: Option<String>,
    pub jwk_thumbprint: String,
    pub created_at: String,
    pub updated_at: String,
}

impl AccountView {
    pub fn of(account: &AccountRecord, groups: &HashMap<GroupId, String>) -> AccountView {
        AccountView {
            id: account.id,
            status: account.status.as_str(),
            contacts: account.contacts.clone(),
            group: account.group_id.and_then(|id| groups.get(&id).cloned()),
            group_id: account.group_id,
            eab_key_id: account.eab_key_id.clone(),
            jwk_thumbprint: account.jwk_thumbprint.clone(),
            created_at: time(account.created_at),
            updated_at: time(account.updated_at),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AccountPage {
    pub accounts: Vec<AccountView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<AccountId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
    pub hash: String,
}

impl AuditEntryView {
    pub fn of(e: &AuditEntry) -> AuditEntryView {
        AuditEntryView {
            seq: e.seq,
            at: time(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            details: e.details.clone(),
            hash: hex::encode(e.hash),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after_seq` for the next page; null on the last.
    pub next_after_seq: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokenLinkView {
    pub seq: i64,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditVerificationView {
    pub entries: i64,
    pub head_hash: String,
    pub intact: bool,
    pub first_broken: Option<BrokenLinkView>,
}

impl AuditVerificationView {
    pub fn of(v: &AuditVerification) -> AuditVerificationView {
        AuditVerificationView {
            entries: v.entries,
            head_hash: hex::encode(v.head_hash),
            intact: v.first_broken.is_none(),
            first_broken: v.first_broken.as_ref().map(|b| BrokenLinkView { seq: b.seq, reason: b.reason.clone() }),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub scope: &'static str,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The token itself: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenView {
    pub fn of(token: &TokenRecord) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name.clone(),
            scope: token.scope.as_str(),
            created_at: time(token.created_at),
            last_used_at: maybe_time(token.last_used_at),
            revoked_at: maybe_time(token.revoked_at),
            token: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// A managed certificate and its renewal state.
#[derive(Clone, Debug, Serialize)]
pub struct DomainView {
    pub id: ManagedId,
    pub domain: String,
    pub names: Vec<String>,
    pub issuer: String,
    pub profile: String,
    pub key_type: String,
    pub group: String,
    pub lifetime_secs: Option<i64>,
    /// active, or removed (no longer managed).
    pub status: &'static str,
    pub current_certificate_id: Option<CertificateId>,
    pub renewal: DomainRenewalView,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DomainRenewalView {
    /// When the scheduler next acts (None once removed).
    pub next_attempt_at: Option<String>,
    /// Why it will: initial, scheduled, ari, manual, revoked or reissue.
    pub reason: Option<&'static str>,
    /// Consecutive failed attempts; 0 after a success.
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The rotation queued or running now, if any.
    pub in_flight: Option<RotationView>,
}

impl DomainView {
    /// `latest` is the newest rotation, shown as in flight when it is queued or running.
    pub fn of(m: &ManagedRecord, latest: Option<&RotationRecord>) -> DomainView {
        let in_flight = latest
            .filter(|r| matches!(r.status, RotationStatus::Queued | RotationStatus::Running))
            .map(RotationView::of);
        DomainView {
            id: m.id,
            domain: m.name.clone(),
            names: m.names.clone(),
            issuer: m.issuer.clone(),
            profile: m.profile.clone(),
            key_type: m.key_type.clone(),
            group: m.group_name.clone(),
            lifetime_secs: m.lifetime_secs,
            status: m.status.as_str(),
            current_certificate_id: m.current_certificate_id,
            renewal: DomainRenewalView {
                next_attempt_at: maybe_time(m.next_renewal_at),
                reason: m.renewal_reason.map(|r| r.as_str()),
                failures: m.failures,
                last_error: m.last_error.clone(),
                last_attempt_at: maybe_time(m.last_attempt_at),
                in_flight,
            },
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DomainPage {
    pub domains: Vec<DomainView>,
    pub next_cursor: Option<String>,
}

/// `GET /admin/domains/{domain}/certificate`: the managed certificate, its current certificate and chain, and
/// its recent rotations, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct DomainCertificateView {
    pub domain: DomainView,
    pub certificate: Option<CertificateView>,
    /// Leaf then intermediate, as a server sends them.
    pub chain_pem: Option<String>,
    pub rotations: Vec<RotationView>,
}

/// One attempt to give a managed certificate a new certificate.
#[derive(Clone, Debug, Serialize)]
pub struct RotationView {
    pub id: RotationId,
    pub reason: &'static str,
    /// queued, running, succeeded, failed or abandoned.
    pub status: &'static str,
    pub old_certificate_id: Option<CertificateId>,
    pub new_certificate_id: Option<CertificateId>,
    pub replica: Option<String>,
    pub error: Option<String>,
    pub triggered_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

impl RotationView {
    pub fn of(r: &RotationRecord) -> RotationView {
        RotationView {
            id: r.id,
            reason: r.reason.as_str(),
            status: r.status.as_str(),
            old_certificate_id: r.old_certificate_id,
            new_certificate_id: r.new_certificate_id,
            replica: r.replica.clone(),
            error: r.error.clone(),
            triggered_at: time(r.triggered_at),
            started_at: maybe_time(r.started_at),
            completed_at: maybe_time(r.completed_at),
        }
    }
}

/// A certificate expiring soon and, when Castellan manages it, its renewal state.
#[derive(Clone, Debug, Serialize)]
pub struct ExpiringView {
    pub certificate: CertificateView,
    /// The managed certificate it is the current certificate of; None when Castellan does not renew it.
    pub managed: Option<ExpiringRenewalView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExpiringRenewalView {
    pub domain: String,
    pub next_attempt_at: Option<String>,
    pub failures: i64,
    pub last_error: Option<String>,
}

impl ExpiringView {
    pub fn of(e: &Expiring) -> ExpiringView {
        ExpiringView {
            certificate: CertificateView::of(&e.certificate),
            managed: e.managed.as_ref().map(|m| ExpiringRenewalView {
                domain: m.name.clone(),
                next_attempt_at: maybe_time(m.next_renewal_at),
                failures: m.failures,
                last_error: m.last_error.clone(),
            }),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ExpiringPage {
    pub days: u64,
    pub certificates: Vec<ExpiringView>,
    pub next_cursor: Option<String>,
}
