//! The issuing CA as everything above the lower crates uses it: the issuer (its key in the token), its chain, and
//! how the inventory names it.

use crate::clock::unix_seconds;
use crate::error::Result;
use castellan_ca::{Issuer, PreparedCertificate, PreparedResponder, certificate_pem};
use castellan_hsm::{Hsm, HsmSigner};
use castellan_store::inventory::{CertificateSource, NewCertificate, NewIssuer};
use castellan_store::{AccountId, IssuerId, Store};
use der::Encode;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::SystemTime;
use x509_cert::Certificate;

pub struct IssuingCa {
    pub issuer: Arc<Issuer<HsmSigner>>,
    /// The intermediate's row in the store's issuers table.
    pub issuer_id: IssuerId,
    /// The intermediate's key identifier and subject, as every inventory row names its issuer: computed once.
    pub issuer_key_id: Vec<u8>,
    pub issuer_dn: String,
    pub root: Certificate,
    pub intermediate: Certificate,
    pub root_pem: String,
    /// Intermediate then root.
    pub chain_pem: String,
}

impl IssuingCa {
    /// The token the issuing key is in.
    pub fn hsm(&self) -> &Hsm {
        self.issuer.signer().hsm()
    }

    /// The `pending` row reserved for a prepared certificate (serial, TBS hash, names) before it is signed.
    pub fn pending_row(&self, prepared: &Prepared, requester: &Requester) -> NewCertificate {
        let facts = prepared.facts();
        NewCertificate {
            issuer_id: Some(self.issuer_id),
            issuer_key_id: self.issuer_key_id.clone(),
            issuer_dn: self.issuer_dn.clone(),
            serial: facts.serial_hex.to_owned(),
            source: requester.source,
            profile: Some(requester.profile.clone().unwrap_or_else(|| prepared.profile_name().to_owned())),
            subject: facts.subject.to_owned(),
            names: facts.names,
            tbs_sha256: facts.tbs_sha256.to_vec(),
            spki_sha256: Sha256::digest(facts.spki_der).to_vec(),
            not_before: unix_seconds(facts.not_before),
            not_after: unix_seconds(facts.not_after),
            account_id: requester.account_id,
            owner: requester.owner.clone(),
            replaces_id: None,
        }
    }
}

/// A certificate decided, encoded and linted by `ca/`, waiting for the HSM: a leaf from a CSR, or a delegated
/// OCSP responder's certificate for a token key.
#[derive(Clone, Debug)]
pub enum Prepared {
    Leaf(PreparedCertificate),
    OcspResponder(PreparedResponder),
}

/// What the inventory needs of a prepared certificate, whichever kind.
pub(crate) struct Facts<'a> {
    pub serial_hex: &'a str,
    pub subject: &'a str,
    /// "DNS:…", "IP:…", "URI:…": SanName's Display is the inventory's typed form.
    pub names: Vec<String>,
    pub tbs_sha256: &'a [u8; 32],
    pub spki_der: &'a [u8],
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Prepared {
    pub(crate) fn facts(&self) -> Facts<'_> {
        match self {
            Prepared::Leaf(p) => Facts {
                serial_hex: &p.serial_hex,
                subject: &p.subject,
                names: p.names.iter().map(ToString::to_string).collect(),
                tbs_sha256: &p.tbs_sha256,
                spki_der: &p.spki_der,
                not_before: p.not_before,
                not_after: p.not_after,
            },
            Prepared::OcspResponder(p) => Facts {
                serial_hex: &p.serial_hex,
                subject: &p.subject,
                names: Vec::new(),
                tbs_sha256: &p.tbs_sha256,
                spki_der: &p.spki_der,
                not_before: p.not_before,
                not_after: p.not_after,
            },
        }
    }

    pub fn serial_hex(&self) -> &str {
        self.facts().serial_hex
    }

    /// The profile name the certificate is filed under when the requester names none.
    pub(crate) fn profile_name(&self) -> &'static str {
        match self {
            Prepared::Leaf(p) => p.profile.name(),
            Prepared::OcspResponder(_) => castellan_ca::RESPONDER_PROFILE,
        }
    }
}

/// Who asked for a certificate, as the inventory records it.
#[derive(Clone, Debug)]
pub struct Requester {
    pub source: CertificateSource,
    /// The profile name to file it under (an ACME profile, a CA profile, …); the CA profile when None.
    pub profile: Option<String>,
    pub account_id: Option<AccountId>,
    pub owner: Option<String>,
}

impl Requester {
    /// Castellan itself (its TLS identity, its OCSP responder), or an operator: `owner` says which.
    pub fn castellan(owner: &str) -> Requester {
        Requester {
            source: CertificateSource::ManagedInternal,
            profile: None,
            account_id: None,
            owner: Some(owner.into()),
        }
    }
}

/// The name an issuer is filed under: its role and the start of its fingerprint, stable across restarts.
fn issuer_name(role: &str, der: &[u8]) -> String {
    format!("{role}-{}", &hex::encode(Sha256::digest(der))[..16])
}

/// Files the CA's certificates in the store (idempotent); returns the intermediate's issuer id.
pub(crate) async fn register_issuers(
    store: &Store,
    root: &Certificate,
    root_key: Option<&str>,
    intermediate: &Certificate,
    intermediate_key: &str,
    token: &str,
) -> Result<IssuerId> {
    let record = |role: &str, cert: &Certificate, key: Option<&str>| -> Result<NewIssuer> {
        let der = cert.to_der()?;
        let tbs = &cert.tbs_certificate;
        Ok(NewIssuer {
            name: issuer_name(role, &der),
            role: role.to_owned(),
            subject: tbs.subject.to_string(),
            spki_sha256: Sha256::digest(tbs.subject_public_key_info.to_der()?).to_vec(),
            key_id: castellan_ca::extensions::issuer_key_id(cert)?,
            token_label: key.map(|_| token.to_owned()),
            key_label: key.map(str::to_owned),
            not_before: unix_seconds(tbs.validity.not_before.to_system_time()),
            not_after: unix_seconds(tbs.validity.not_after.to_system_time()),
            certificate_der: der,
        })
    };
    store.register_issuer(&record("root", root, root_key)?).await?;
    let intermediate = store.register_issuer(&record("intermediate", intermediate, Some(intermediate_key))?).await?;
    Ok(intermediate.id)
}

/// PEM of one certificate, as `ca/` writes it.
pub fn pem(der: &[u8]) -> Result<String> {
    Ok(certificate_pem(der)?)
}
