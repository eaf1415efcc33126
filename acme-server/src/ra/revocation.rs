//! revokeCert (RFC 8555 §7.6): by the account that obtained the certificate, or by whoever holds its key.

use castellan_acme_proto::Jwk;
use castellan_acme_proto::types::Revocation;
use castellan_authority::AuthorityError;
use castellan_authority::revocation::{self as authority_revocation, Revoker as Subscriber};
use castellan_store::acme::AccountRecord;
use castellan_store::inventory::CertificateStatus;
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::Ra;
use crate::problem::{AcmeError, ProblemType};

/// Who is asking.
pub enum Revoker<'a> {
    Account(&'a AccountRecord),
    /// The request was signed with this key (a "jwk" header).
    CertificateKey(&'a Jwk),
}

impl Ra {
    pub async fn revoke(&self, revoker: Revoker<'_>, request: &Revocation) -> Result<(), AcmeError> {
        let reason = authority_revocation::reason_code(request.reason.unwrap_or(0), Subscriber::Subscriber).map_err(
            |refused| AcmeError::new(ProblemType::BadRevocationReason, format!("{refused} (RFC 5280 §5.3.1)")),
        )?;
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
            .store()
            .certificate_by_serial(&self.authority.ca().issuer_key_id, &serial)
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
                ("certificate-key".to_owned(), castellan_authority::Actor::acme("certificate-key"))
            }
        };
        if record.status == CertificateStatus::Revoked {
            return Err(AcmeError::new(ProblemType::AlreadyRevoked, "the certificate is already revoked"));
        }
        match authority_revocation::revoke_one(self.store(), record.id, reason, &revoked_by, &actor).await {
            Ok(()) => Ok(()),
            Err(AuthorityError::Conflict(_)) => {
                Err(AcmeError::new(ProblemType::AlreadyRevoked, "the certificate is already revoked"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
