//! Revocation as relying parties see it: what goes on a CRL, what an OCSP responder answers, and the operator's
//! ways to revoke (by serial, by name, by account) or to ask for re-issuance (RFC 9773's renewal window).
//!
//! Every revocation transaction advances the one-row `revocation_epoch` counter and stamps its `revocations` rows
//! with the new value. Replicas poll the counter ([`Store::revocation_epoch`]) and read exactly the rows of the
//! epochs they have not seen ([`Store::revoked_in_epochs`]), so a revocation made anywhere — ACME on another
//! replica, the CLI — reaches every replica's OCSP cache and CRL without relying on clocks agreeing. The counter
//! row is locked after the certificate rows and before the audit head (the order `acme` documents).

use crate::Store;
use crate::acme::{audit as audit_in, check_text};
use crate::error::{Result, StoreError};
use crate::ids::{AccountId, CertificateId, IssuerId};
use crate::inventory::{CERTIFICATE_COLUMNS, CertificateRecord, certificate_from_row, index_name};
use crate::lifecycle::RenewalReason;
use crate::write::Durability;
use serde_json::json;
use sqlx::{Any, Transaction};

/// RFC 5280 §5.3.1 CRLReason codes; 7 is unassigned.
const REASON_CODES: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10];

/// A CRLReason code RFC 5280 defines (§5.3.1), as a revocation is stored. Which reasons a revoker may give is the
/// authority's rule; the store only refuses codes that mean nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReasonCode(u8);

impl ReasonCode {
    pub fn new(code: u8) -> Result<ReasonCode> {
        if REASON_CODES.contains(&code) {
            Ok(ReasonCode(code))
        } else {
            Err(StoreError::Invalid { what: "revocation reason", why: format!("{code} is not a CRLReason") })
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// Certificates revoked per transaction by the bulk paths: large enough that revoking every certificate of a big
/// account is quick, small enough that one transaction never holds the revocation counter for long.
const BULK_CHUNK: usize = 500;

/// One entry of a CRL: which certificate, and when and why it was revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub certificate_id: i64,
    /// Lower-case hex of the serial's content octets.
    pub serial: String,
    /// RFC 5280 CRLReason code.
    pub reason: i64,
    pub revoked_at: i64,
}

/// A page of [`Store::revoked_entries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedPage {
    pub entries: Vec<RevokedEntry>,
    /// Where the next page starts (pass it as `after_id`); None when the revocations table has no more rows.
    pub next_after: Option<i64>,
}

/// A revocation a replica learns of by polling: the issuer (its key identifier) and the serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedSerial {
    pub issuer_key_id: Vec<u8>,
    pub serial: String,
}

/// What an OCSP responder answers for one (issuer, serial).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialStatus {
    /// Issued, not revoked (expired certificates included: RFC 6960 leaves their status to the responder).
    Good,
    Revoked {
        reason: i64,
        revoked_at: i64,
    },
    /// Reserved and possibly being signed right now: the answer may change within seconds, so it is not cached.
    Pending,
    /// Never issued by this issuer (no row, or signing failed).
    Unknown,
}

/// Which certificates an operator revokes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationTarget {
    /// Every certificate of ours with this serial (hex; there is one unless two of our issuers reused it).
    Serial(String),
    /// Every unexpired certificate of ours that names this DNS name, IP address or URI.
    Name(String),
    /// Every unexpired certificate of ours an ACME account obtained.
    Account(AccountId),
}

/// What a bulk revocation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationReport {
    /// Revoked now: (certificate id, serial).
    pub revoked: Vec<(CertificateId, String)>,
    /// Matched but left as they were: already revoked, or never issued (pending, failed).
    pub unchanged: Vec<CertificateId>,
}

/// Advances the revocation counter inside the caller's transaction and returns the new epoch.
pub(crate) async fn next_epoch(tx: &mut Transaction<'_, Any>) -> Result<i64> {
    let epoch: Option<i64> =
        sqlx::query_scalar("UPDATE revocation_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")
            .fetch_optional(&mut **tx)
            .await?;
    epoch.ok_or_else(|| StoreError::Corrupt("the revocation_epoch row is missing".to_owned()))
}

impl Store {
    /// The revocation counter: it changes whenever anything is revoked, on any replica.
    pub async fn revocation_epoch(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT epoch FROM revocation_epoch WHERE id = 1").fetch_one(self.pool()).await?)
    }

    /// The certificates revoked in epochs `after + 1 ..= up_to`. Epochs commit in order (each revocation holds
    /// the counter row until it commits), so once a poller has read `up_to`, every row up to it is visible.
    pub async fn revoked_in_epochs(&self, after: i64, up_to: i64) -> Result<Vec<RevokedSerial>> {
        let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT c.issuer_key_id, c.serial FROM revocations r JOIN certificates c ON c.id = r.certificate_id \
             WHERE r.epoch > $1 AND r.epoch <= $2",
        )
        .bind(after)
        .bind(up_to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(issuer_key_id, serial)| RevokedSerial { issuer_key_id, serial }).collect())
    }

    /// One page of an issuer's CRL, walking the revocations table in certificate-id order: the revoked
    /// certificates among the next `limit` revocations after `after_id` that are this issuer's and whose notAfter
    /// is not before `not_after_from` (an entry may leave the CRL once it has been listed after the certificate
    /// expired, RFC 5280 §3.3). Keyset pagination, so a million rows are read page by page.
    ///
    /// The page is cut from the revocations table before the join, so neither SQLite nor PostgreSQL can choose to
    /// walk every certificate of the issuer (a million, at scale) by the (issuer_key_id, serial) index and sort;
    /// a subquery with LIMIT is never flattened. Rows of other issuers or long expired are skipped here instead.
    pub async fn revoked_entries(
        &self,
        issuer_key_id: &[u8],
        not_after_from: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<RevokedPage> {
        crate::acme::check_limit(limit)?;
        let rows: Vec<(i64, String, i64, i64, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT p.certificate_id, c.serial, p.reason, p.revoked_at, c.issuer_key_id, c.not_after FROM \
             (SELECT certificate_id, reason, revoked_at FROM revocations WHERE certificate_id > $1 \
              ORDER BY certificate_id LIMIT $2) p \
             JOIN certificates c ON c.id = p.certificate_id ORDER BY p.certificate_id",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next_after = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.0)).flatten();
        let entries = rows
            .into_iter()
            .filter(|row| row.4 == issuer_key_id && row.5 >= not_after_from)
            .map(|(certificate_id, serial, reason, revoked_at, _, _)| RevokedEntry {
                certificate_id,
                serial,
                reason,
                revoked_at,
            })
            .collect();
        Ok(RevokedPage { entries, next_after })
    }

    /// The next CRL number for (issuer, shard), for a CRL built from revocations up to `epoch`. None when a CRL
    /// already numbered was built from a newer epoch: the caller re-reads the revocations and asks again, so CRL
    /// numbers increase with their contents across replicas (RFC 5280 §5.2.3: monotonically increasing).
    pub async fn next_crl_number(&self, issuer_id: IssuerId, shard: i64, epoch: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO crl_numbers (issuer_id, shard, last_number, epoch) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (issuer_id, shard) DO UPDATE \
             SET last_number = crl_numbers.last_number + 1, epoch = excluded.epoch \
             WHERE crl_numbers.epoch <= excluded.epoch RETURNING last_number",
        )
        .bind(issuer_id)
        .bind(shard)
        .bind(epoch)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The last CRL number handed out for (issuer, shard), if any.
    pub async fn last_crl_number(&self, issuer_id: IssuerId, shard: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT last_number FROM crl_numbers WHERE issuer_id = $1 AND shard = $2")
            .bind(issuer_id)
            .bind(shard)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The status of the certificate with this serial under the issuer whose key identifier is `issuer_key_id`.
    /// A revocations row makes a certificate revoked whatever its status column says: revocation is final.
    pub async fn serial_status(&self, issuer_key_id: &[u8], serial_hex: &str) -> Result<SerialStatus> {
        let row: Option<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT c.status, r.reason, r.revoked_at FROM certificates c \
             LEFT JOIN revocations r ON r.certificate_id = c.id WHERE c.issuer_key_id = $1 AND c.serial = $2",
        )
        .bind(issuer_key_id)
        .bind(serial_hex.to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => SerialStatus::Unknown,
            Some((_, Some(reason), Some(revoked_at))) => SerialStatus::Revoked { reason, revoked_at },
            Some((status, _, _)) if status == "pending" => SerialStatus::Pending,
            Some((status, _, _)) if status == "failed" => SerialStatus::Unknown,
            Some(_) => SerialStatus::Good,
        })
    }

    /// Every certificate of ours (issued by one of our issuers) with this serial, in any status. The serial is
    /// hex, any case, with or without colons.
    pub async fn certificates_with_serial(&self, serial_hex: &str) -> Result<Vec<CertificateRecord>> {
        let serial = normalize_serial(serial_hex)?;
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE serial = $1 AND issuer_id IS NOT NULL ORDER BY id"
        ))
        .bind(serial)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// The ids of the certificates `target` names, oldest first.
    pub async fn revocation_candidates(&self, target: &RevocationTarget) -> Result<Vec<CertificateId>> {
        let now = self.now();
        let ids: Vec<CertificateId> =
            match target {
                RevocationTarget::Serial(serial) => {
                    sqlx::query_scalar(
                        "SELECT id FROM certificates WHERE serial = $1 AND issuer_id IS NOT NULL ORDER BY id",
                    )
                    .bind(normalize_serial(serial)?)
                    .fetch_all(self.pool())
                    .await?
                }
                RevocationTarget::Name(name) => {
                    check_text("name", name)?;
                    let (value, _) = index_name(name);
                    sqlx::query_scalar(
                        "SELECT c.id FROM certificate_names n JOIN certificates c ON c.id = n.certificate_id \
                     WHERE n.name = $1 AND c.issuer_id IS NOT NULL AND c.not_after >= $2 ORDER BY c.id",
                    )
                    .bind(value)
                    .bind(now)
                    .fetch_all(self.pool())
                    .await?
                }
                RevocationTarget::Account(account_id) => sqlx::query_scalar(
                    "SELECT id FROM certificates WHERE account_id = $1 AND issuer_id IS NOT NULL AND not_after >= $2 \
                     ORDER BY id",
                )
                .bind(account_id)
                .bind(now)
                .fetch_all(self.pool())
                .await?,
            };
        Ok(ids)
    }

    /// Revokes every certificate `target` names (see [`Store::revoke_certificates`]).
    pub async fn revoke_matching(
        &self,
        target: &RevocationTarget,
        reason: ReasonCode,
        revoked_by: &str,
        actor: &str,
    ) -> Result<RevocationReport> {
        let ids = self.revocation_candidates(target).await?;
        self.revoke_certificates(&ids, reason, revoked_by, actor).await
    }

    /// Revokes these certificates with one reason, in transactions of up to 500: each certificate gets its
    /// revocations row, status revoked, `renewal_due_at` = now (RFC 9773: renew at once) and its own
    /// "certificate.revoke" audit entry; each transaction advances the revocation epoch once. Certificates that
    /// are already revoked, or were never issued, are left alone and reported as unchanged.
    pub async fn revoke_certificates(
        &self,
        ids: &[CertificateId],
        reason: ReasonCode,
        revoked_by: &str,
        actor: &str,
    ) -> Result<RevocationReport> {
        check_text("revoked_by", revoked_by)?;
        let mut report = RevocationReport::default();
        for chunk in ids.chunks(BULK_CHUNK) {
            let now = self.now();
            let mut tx = self.begin_write(Durability::Durable).await?;
            let mut revoked = Vec::with_capacity(chunk.len());
            // Certificate rows first (the lock order), each only if it is issued and has never been revoked.
            for &id in chunk {
                let serial: Option<String> = sqlx::query_scalar(
                    "UPDATE certificates SET status = 'revoked', renewal_due_at = $1, updated_at = $1 \
                     WHERE id = $2 AND status NOT IN ('pending', 'failed', 'revoked') \
                     AND NOT EXISTS (SELECT 1 FROM revocations WHERE certificate_id = $2) RETURNING serial",
                )
                .bind(now)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
                match serial {
                    Some(serial) => revoked.push((id, serial)),
                    None => report.unchanged.push(id),
                }
            }
            if revoked.is_empty() {
                tx.commit().await?;
                continue;
            }
            let epoch = next_epoch(&mut tx).await?;
            for (id, _) in &revoked {
                insert_revocation(&mut tx, *id, reason, now, revoked_by, epoch).await?;
                crate::lifecycle::pull_renewal_in(&mut tx, self.backend(), *id, RenewalReason::Revoked, now).await?;
            }
            for (id, serial) in &revoked {
                let details = json!({ "serial": serial, "reason": reason.get(), "revoked_by": revoked_by });
                audit_in(&mut tx, actor, "certificate.revoke", format!("certificate:{id}"), details).await?;
            }
            tx.commit().await?;
            report.revoked.extend(revoked);
        }
        Ok(report)
    }

    /// Marks an issued certificate for re-issuance now (an incident): RFC 9773 renewalInfo then answers with a
    /// window in the past, so ARI-aware clients replace it at once. Audit "certificate.renewal_due".
    pub async fn mark_renewal_due(&self, certificate_id: CertificateId, actor: &str) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let serial: Option<String> = sqlx::query_scalar(
            "UPDATE certificates SET renewal_due_at = $1, updated_at = $1 \
             WHERE id = $2 AND status NOT IN ('pending', 'failed') RETURNING serial",
        )
        .bind(now)
        .bind(certificate_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(serial) = serial else {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM certificates WHERE id = $1")
                .bind(certificate_id)
                .fetch_optional(&mut **tx)
                .await?;
            return Err(match status {
                None => StoreError::NotFound { what: format!("certificate {certificate_id}") },
                Some(status) => StoreError::Invalid {
                    what: "certificate state",
                    why: format!("certificate {certificate_id} is {status}: it was never issued"),
                },
            });
        };
        crate::lifecycle::pull_renewal_in(&mut tx, self.backend(), certificate_id, RenewalReason::Ari, now).await?;
        let details = json!({ "serial": serial, "renewal_due_at": now });
        audit_in(&mut tx, actor, "certificate.renewal_due", format!("certificate:{certificate_id}"), details).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The revocations row, stamped with the epoch of the transaction that writes it.
pub(crate) async fn insert_revocation(
    tx: &mut Transaction<'_, Any>,
    certificate_id: CertificateId,
    reason: ReasonCode,
    revoked_at: i64,
    revoked_by: &str,
    epoch: i64,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revocations (certificate_id, reason, revoked_at, revoked_by, epoch) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(certificate_id)
    .bind(i64::from(reason.get()))
    .bind(revoked_at)
    .bind(revoked_by)
    .bind(epoch)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// "01:AB:cd", "0x01abcd" or "01ABCD" → "01abcd"; anything else is refused rather than matching nothing.
pub fn normalize_serial(serial: &str) -> Result<String> {
    let trimmed = serial.trim();
    let trimmed = trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")).unwrap_or(trimmed);
    let hex: String = trimmed.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid {
            what: "serial",
            why: format!("{serial:?} is not an even number of hex digits"),
        });
    }
    Ok(hex)
}

#[cfg(test)]
mod tests;
