//! revokeCert (RFC 8555 §7.6): by the account that obtained the certificate, or by whoever holds its key.

use castellan_acme_proto::Jwk;
use castellan_acme_proto::types::Revocation;
use castellan_store::StoreError;
use castellan_store::acme::AccountRecord;
use castellan_store::inventory::CertificateStatus;
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::Ra;
use crate::problem::{AcmeError, ProblemType};

/// Reasons a subscriber may give (RFC 5280 §5.3.1): unspecified, keyCompromise, affiliationChanged, superseded,
/// cessationOfOperation, privilegeWithdrawn. caCompromise, certificateHold, removeFromCRL and aACompromise are not
/// for subscribers; 7 is unassigned.
const SUBSCRIBER_REASONS: [u8; 6] = [0, 1, 3, 4, 5, 9];

/// Who is asking.
pub enum Revoker<'a> {
    Account(&'a AccountRecord),
    /// The request was signed with this key (a "jwk" header).
    CertificateKey(&'a Jwk),
}

impl Ra {
    pub async fn revoke(&self, revoker: Revoker<'_>, request: &Revocation) -> Result<(), AcmeError> {
        let reason = request.reason.unwrap_or(0);
        if !SUBSCRIBER_REASONS.contains(&reason) {
            return Err(AcmeError::new(
                ProblemType::BadRevocationReason,
                format!("reason {reason} is not allowed; use one of {SUBSCRIBER_REASONS:?} (RFC 5280 §5.3.1)"),
            ));
        }
        let der = castellan_acme_proto::b64::decode(&request.certificate)
            .map_err(|e| AcmeError::malformed(format!("certificate is not base64url: {e}")))?;
        let certificate = Certificate::from_der(&der)
            .map_err(|e| AcmeError::malformed(format!("certificate is not a DER X.509 certificate: {e}")))?;
        let serial = hex::encode(certificate.tbs_certificate.serial_number.as_bytes());
        let not_ours = || {
            AcmeError::new(ProblemType::Malformed, "this server did not issue that certificate")
                .with_status(axum::http::StatusCode::NOT_FOUND)
        };
        let record = self
            .store
            .certificate_by_serial(&self.ca.issuer_key_id, &serial)
            .await?
            // The whole certificate must be the one we issued: a look-alike with our serial proves nothing.
            .filter(|r| r.certificate_der.as_deref() == Some(der.as_slice()))
            .ok_or_else(not_ours)?;
        let (revoked_by, actor) = match revoker {
            Revoker::Account(account) => {
                if record.account_id != Some(account.id) {
                    return Err(AcmeError::unauthorized(
                        "this account did not obtain that certificate; sign with the certificate's key instead",
                    ));
                }
                (format!("account:{}", account.id), super::account_actor(account.id))
            }
            Revoker::CertificateKey(jwk) => {
                let spki = certificate
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(|e| AcmeError::internal("encoding a key", &e))?;
                let matches = Jwk::from_spki_der(&spki).is_ok_and(|k| k.thumbprint() == jwk.thumbprint());
                if !matches {
                    return Err(AcmeError::unauthorized("the request is not signed with the certificate's key"));
                }
                ("certificate-key".to_owned(), "acme:certificate-key".to_owned())
            }
        };
        if record.status == CertificateStatus::Revoked {
            return Err(AcmeError::new(ProblemType::AlreadyRevoked, "the certificate is already revoked"));
        }
        match self.store.revoke_certificate(record.id, i64::from(reason), &revoked_by, &actor).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { .. }) => {
                Err(AcmeError::new(ProblemType::AlreadyRevoked, "the certificate is already revoked"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
