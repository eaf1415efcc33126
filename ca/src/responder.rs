//! Delegated OCSP responder certificates (RFC 6960 §4.2.2.2): issued by the CA whose certificates the responder
//! answers for, for a key that only signs OCSP responses.
//!
//! Not a leaf profile: a responder certificate names no DNS name, IP address or URI, so it has no SAN and none of
//! the leaf lints apply. It goes through the same steps as a leaf — decide and encode, lint the encoded TBS with
//! [`lint_ocsp_responder_tbs`], record, sign those exact bytes — so the inventory can record its serial before the
//! HSM signs.

use crate::error::CaError;
use crate::extensions::{authority_key_identifier, extension, subject_key_identifier};
use crate::issuer::{Issuer, validity};
use crate::lint::lint_ocsp_responder_tbs;
use crate::ocsp::responder_extensions;
use crate::serial::{random_serial, serial_hex};
use crate::sign::CaSigner;
use der::Encode;
use flagset::FlagSet;
use sha2::{Digest, Sha256};
use spki::{EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned};
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// The name the inventory files responder certificates under (its `profile` column).
pub const RESPONDER_PROFILE: &str = "ocsp-responder";

/// The longest a responder certificate may live. It carries id-pkix-ocsp-nocheck, so nobody can learn of its
/// revocation: its lifetime is the only limit on a stolen responder key (RFC 6960 §4.2.2.2.1 asks for a short one).
pub const MAX_RESPONDER_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// A responder certificate decided, encoded and linted, waiting for its signature.
#[derive(Clone, Debug)]
pub struct PreparedResponder {
    pub tbs_der: Vec<u8>,
    pub tbs_sha256: [u8; 32],
    pub serial: SerialNumber,
    pub serial_hex: String,
    pub subject: String,
    pub spki_der: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl<S> Issuer<S> {
    /// Builds and lints a responder certificate for `public_key`: EKU id-kp-OCSPSigning only, id-pkix-ocsp-nocheck,
    /// keyUsage digitalSignature, basicConstraints cA false, SKI and AKI. Backdated like leaves, cut at the issuer's
    /// notAfter.
    pub fn prepare_ocsp_responder(
        &self,
        public_key: &SubjectPublicKeyInfoOwned,
        subject: Name,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<PreparedResponder, CaError> {
        if lifetime > MAX_RESPONDER_LIFETIME || lifetime < Duration::from_secs(2) {
            return Err(CaError::LifetimeTooLong {
                profile: RESPONDER_PROFILE,
                requested_secs: lifetime.as_secs(),
                max_secs: MAX_RESPONDER_LIFETIME.as_secs(),
            });
        }
        crate::key::classify_and_check(public_key).map_err(CaError::BadKey)?;
        let issuer = self.certificate();
        let issuer_validity = &issuer.tbs_certificate.validity;
        let issuer_not_after = issuer_validity.not_after.to_system_time();
        if now < issuer_validity.not_before.to_system_time() || now > issuer_not_after {
            return Err(CaError::IssuerNotValid {
                not_before: issuer_validity.not_before.to_string(),
                not_after: issuer_validity.not_after.to_string(),
            });
        }
        let not_before = now.checked_sub(self.backdate().min(lifetime / 2)).unwrap_or(now);
        let not_after = not_before
            .checked_add(lifetime.saturating_sub(Duration::from_secs(1)))
            .ok_or(CaError::LifetimeOutOfRange { requested_secs: lifetime.as_secs() })?
            .min(issuer_not_after);
        let mut extensions = vec![
            extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
            extension(&KeyUsage(FlagSet::from(KeyUsages::DigitalSignature)), true)?,
        ];
        extensions.extend(responder_extensions(&subject).map_err(|e| CaError::Builder(e.to_string()))?);
        extensions.push(subject_key_identifier(public_key)?);
        extensions.push(authority_key_identifier(issuer)?);
        let serial = random_serial();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: serial.clone(),
            signature: self.signature_algorithm().clone(),
            issuer: issuer.tbs_certificate.subject.clone(),
            validity: validity(not_before, not_after)?,
            subject,
            subject_public_key_info: public_key.clone(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let tbs_der = tbs.to_der()?;
        lint_ocsp_responder_tbs(&tbs_der, MAX_RESPONDER_LIFETIME)?;
        Ok(PreparedResponder {
            tbs_sha256: Sha256::digest(&tbs_der).into(),
            serial_hex: serial_hex(&serial),
            serial,
            subject: tbs.subject.to_string(),
            spki_der: public_key.to_der()?,
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            tbs_der,
        })
    }

    /// Has the issuer sign exactly the prepared (and linted) responder TBS.
    pub fn sign_prepared_responder<Sig>(&self, prepared: &PreparedResponder) -> Result<(Certificate, Vec<u8>), CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        self.sign_exact(&prepared.tbs_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crl::test_support::{new_key, openssl, root, spki_of, write_pem};
    use crate::{AuthorityUrls, Profiles};
    use p256::ecdsa::DerSignature;
    use std::str::FromStr;

    #[test]
    fn responder_certificates_pass_openssl_as_delegated_responders() {
        let ca = root();
        let issuer = Issuer::new::<DerSignature>(
            ca.key.clone(),
            vec![ca.cert.clone()],
            &AuthorityUrls::default(),
            Profiles::default(),
        )
        .expect("issuer");
        let key = new_key();
        let subject = Name::from_str("CN=Castellan OCSP Responder").expect("name");
        let lifetime = Duration::from_secs(30 * 86_400);
        let prepared =
            issuer.prepare_ocsp_responder(&spki_of(&key), subject, lifetime, SystemTime::now()).expect("prepare");
        let life = prepared.not_after.duration_since(prepared.not_before).expect("positive");
        assert_eq!(life + Duration::from_secs(1), lifetime);
        let (cert, _) = issuer.sign_prepared_responder::<DerSignature>(&prepared).expect("sign");
        let dir = tempfile::tempdir().expect("tempdir");
        write_pem(dir.path(), "root.pem", &ca.cert);
        write_pem(dir.path(), "responder.pem", &cert);
        let (ok, text) = openssl(dir.path(), &["x509", "-in", "responder.pem", "-noout", "-text"]);
        assert!(ok && text.contains("OCSP Signing") && text.contains("OCSP No Check"), "{text}");
        assert!(text.contains("CA:FALSE") && text.contains("Digital Signature"), "{text}");
        let (ok, text) =
            openssl(dir.path(), &["verify", "-CAfile", "root.pem", "-purpose", "ocsphelper", "responder.pem"]);
        assert!(ok && text.contains("responder.pem: OK"), "{text}");

        let too_long = issuer.prepare_ocsp_responder(
            &spki_of(&key),
            Name::default(),
            MAX_RESPONDER_LIFETIME * 2,
            SystemTime::now(),
        );
        assert!(matches!(too_long, Err(CaError::LifetimeTooLong { .. })));
    }
}
