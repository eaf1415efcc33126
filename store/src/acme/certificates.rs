//! Certificates as ACME sees them: found by serial (revocation, RFC 9773 renewalInfo) and revoked (RFC 8555
//! §7.6).

use super::{Kind, audit, check_text};
use crate::Store;
use crate::error::{Result, StoreError};
use crate::ids::CertificateId;
use crate::inventory::CertificateRecord;
use crate::lifecycle::RenewalReason;
use crate::revocation::ReasonCode;
use crate::write::Durability;
use serde_json::json;

impl Store {
    /// The certificate with this serial (hex of the serial's content octets, either case) under the issuer whose
    /// key identifier is `issuer_key_id`, in any status.
    pub async fn certificate_by_serial(
        &self,
        issuer_key_id: &[u8],
        serial_hex: &str,
    ) -> Result<Option<CertificateRecord>> {
        let id: Option<CertificateId> =
            sqlx::query_scalar("SELECT id FROM certificates WHERE issuer_key_id = $1 AND serial = $2")
                .bind(issuer_key_id)
                .bind(serial_hex.to_ascii_lowercase())
                .fetch_optional(self.pool())
                .await?;
        match id {
            Some(id) => Ok(Some(self.certificate(id).await?)),
            None => Ok(None),
        }
    }

    /// Revokes an issued certificate: the revocations row (reason, when, by whom), status revoked, and
    /// `renewal_due_at` = now so RFC 9773 renewalInfo tells its client to renew at once. Conflict if already
    /// revoked; Invalid for a pending or failed row (nothing was issued) or a reason code RFC 5280 does not define.
    /// Audit "certificate.revoke".
    pub async fn revoke_certificate(
        &self,
        certificate_id: CertificateId,
        reason: ReasonCode,
        revoked_by: &str,
        actor: &str,
    ) -> Result<()> {
        check_text("revoked_by", revoked_by)?;
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let serial: Option<String> = sqlx::query_scalar(
            "UPDATE certificates SET status = 'revoked', renewal_due_at = $1, updated_at = $1 \
             WHERE id = $2 AND status NOT IN ('pending', 'failed', 'revoked') RETURNING serial",
        )
        .bind(now)
        .bind(certificate_id)
        .fetch_optional(&mut **tx)
        .await?;
        let already = || StoreError::Conflict { what: format!("revocation of certificate {certificate_id}") };
        let Some(serial) = serial else {
            return Err(match super::status_of(&mut tx, Kind::Certificate, certificate_id).await? {
                None => Kind::Certificate.not_found(certificate_id),
                Some(status) if status == "revoked" => already(),
                Some(status) => StoreError::Invalid {
                    what: "certificate state",
                    why: format!("certificate {certificate_id} is {status}: it was never issued"),
                },
            });
        };
        // Replicas learn of the revocation by this epoch (see crate::revocation); taken after the certificate row,
        // as the lock order says.
        let epoch = crate::revocation::next_epoch(&mut tx).await?;
        // The primary key catches a certificate revoked, set live again by an operator, and revoked once more.
        crate::revocation::insert_revocation(&mut tx, certificate_id, reason, now, revoked_by, epoch)
            .await
            .map_err(|e| if StoreError::is_unique_violation(&e) { already() } else { e.into() })?;
        crate::lifecycle::pull_renewal_in(&mut tx, self.backend(), certificate_id, RenewalReason::Revoked, now).await?;
        let details = json!({ "serial": serial, "reason": reason.get(), "revoked_by": revoked_by });
        audit(&mut tx, actor, "certificate.revoke", Kind::Certificate.subject(certificate_id), details).await?;
        tx.commit().await?;
        Ok(())
    }
}
