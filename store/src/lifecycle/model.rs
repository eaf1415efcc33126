//! Managed certificates and their rotations as Rust values.

use crate::error::{Result, StoreError};
use crate::ids::{CertificateId, ManagedId, RotationId};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Whether Castellan still looks after a managed certificate.
    ManagedStatus { Active = "active", Removed = "removed" }
}

text_enum! {
    /// Why a rotation happens.
    RenewalReason {
        /// The first certificate of a newly managed name.
        Initial = "initial",
        /// Its renewal window came.
        Scheduled = "scheduled",
        /// The issuer's renewal information (RFC 9773) asked for it early.
        Ari = "ari",
        /// An operator asked (`POST /admin/domains/{name}/renew`).
        Manual = "manual",
        /// Its certificate was revoked.
        Revoked = "revoked",
        /// A mass re-issue (`castellan reissue`).
        Reissue = "reissue",
    }
}

text_enum! {
    /// Where a rotation stands.
    RotationStatus {
        /// Asked for; the scheduler has not picked it up yet.
        Queued = "queued",
        /// A replica holds the managed certificate's lease and is issuing.
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Its replica's lease ran out (it died, or the name stopped being managed) before it finished.
        Abandoned = "abandoned",
    }
}

/// What an operator asks Castellan to manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewManaged {
    /// The name it is addressed by; also the first of `names`.
    pub name: String,
    /// Typed names, "DNS:…" or "IP:…".
    pub names: Vec<String>,
    pub issuer: String,
    pub profile: String,
    pub key_type: String,
    pub group_name: String,
    pub lifetime_secs: Option<i64>,
}

/// A managed certificate and its renewal state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManagedRecord {
    pub id: ManagedId,
    pub name: String,
    pub names: Vec<String>,
    pub issuer: String,
    pub profile: String,
    pub key_type: String,
    pub group_name: String,
    pub lifetime_secs: Option<i64>,
    pub status: ManagedStatus,
    pub current_certificate_id: Option<CertificateId>,
    pub next_renewal_at: Option<i64>,
    pub renewal_reason: Option<RenewalReason>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const MANAGED_COLUMNS: &str = "id, name, names_json, issuer, profile, key_type, group_name, \
    lifetime_secs, status, current_certificate_id, next_renewal_at, renewal_reason, lease_owner, lease_expires_at, \
    failures, last_error, last_attempt_at, created_at, updated_at";

fn parsed<T>(what: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {text:?}")))
}

pub(crate) fn managed_from_row(row: &AnyRow) -> Result<ManagedRecord> {
    let names: String = row.try_get("names_json")?;
    let status: String = row.try_get("status")?;
    let reason: Option<String> = row.try_get("renewal_reason")?;
    Ok(ManagedRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        names: serde_json::from_str(&names).map_err(|e| StoreError::Corrupt(format!("names_json: {e}")))?,
        issuer: row.try_get("issuer")?,
        profile: row.try_get("profile")?,
        key_type: row.try_get("key_type")?,
        group_name: row.try_get("group_name")?,
        lifetime_secs: row.try_get("lifetime_secs")?,
        status: parsed("managed status", &status, ManagedStatus::parse)?,
        current_certificate_id: row.try_get("current_certificate_id")?,
        next_renewal_at: row.try_get("next_renewal_at")?,
        renewal_reason: reason.map(|r| parsed("renewal reason", &r, RenewalReason::parse)).transpose()?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        failures: row.try_get("failures")?,
        last_error: row.try_get("last_error")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One attempt to give a managed certificate a new certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RotationRecord {
    pub id: RotationId,
    pub managed_id: ManagedId,
    pub reason: RenewalReason,
    pub status: RotationStatus,
    pub old_certificate_id: Option<CertificateId>,
    pub new_certificate_id: Option<CertificateId>,
    pub replica: Option<String>,
    pub error: Option<String>,
    pub triggered_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

pub(crate) const ROTATION_COLUMNS: &str = "id, managed_id, reason, status, old_certificate_id, new_certificate_id, \
    replica, error, triggered_at, started_at, completed_at";

pub(crate) fn rotation_from_row(row: &AnyRow) -> Result<RotationRecord> {
    let reason: String = row.try_get("reason")?;
    let status: String = row.try_get("status")?;
    Ok(RotationRecord {
        id: row.try_get("id")?,
        managed_id: row.try_get("managed_id")?,
        reason: parsed("rotation reason", &reason, RenewalReason::parse)?,
        status: parsed("rotation status", &status, RotationStatus::parse)?,
        old_certificate_id: row.try_get("old_certificate_id")?,
        new_certificate_id: row.try_get("new_certificate_id")?,
        replica: row.try_get("replica")?,
        error: row.try_get("error")?,
        triggered_at: row.try_get("triggered_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

/// A renewal this replica now holds the lease on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub managed: ManagedRecord,
    pub rotation: RotationRecord,
    /// Whoever holds the lease; completing or failing the rotation names it again.
    pub lease_owner: String,
}

/// What commits with a managed certificate's new certificate.
#[derive(Clone, Debug)]
pub struct ManagedCompletion {
    pub managed_id: ManagedId,
    pub rotation_id: RotationId,
    /// The lease the issuing replica holds.
    pub lease_owner: String,
    /// The renewal after this one.
    pub next_renewal_at: i64,
    /// The new key, sealed under `kek_label` with the certificate named in its additional data.
    pub sealed_key: Vec<u8>,
    pub kek_label: String,
    pub key_type: String,
}

/// A certificate expiring soon, with the renewal state of the managed certificate it belongs to (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiring {
    pub certificate: crate::inventory::CertificateRecord,
    pub managed: Option<ManagedRecord>,
}

/// How many certificates a state sweep moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expiring_soon: u64,
    pub expired: u64,
}
