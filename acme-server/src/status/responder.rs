//! The delegated OCSP signing certificate (RFC 6960 §4.2.2.2): a P-256 key generated in the HSM (sensitive,
//! non-extractable), certified by the issuing CA with id-kp-OCSPSigning and id-pkix-ocsp-nocheck, recorded in
//! the inventory and the audit log like any issuance, and renewed after two thirds of its life without a restart
//! (as the server's TLS certificate is).
//!
//! The certificate and the key's label are remembered in a state file (public data only). Replicas that share a
//! data directory converge on the newest certificate named there; replicas with their own directories each keep
//! their own responder certificate, which is as valid as any other issued by the CA.

use super::StatusError;
use crate::ra::IssuingCa;
use castellan_ca::{CaError, RESPONDER_PROFILE};
use castellan_hsm::{Hsm, HsmSignature, HsmSigner, KeySpec};
use castellan_store::Store;
use castellan_store::audit::AuditEvent;
use castellan_store::inventory::CertificateSource;

use crate::ra::issuing::Requester;
use der::{DecodePem, Encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::name::Name;

/// The audit log's name for this issuer of responder certificates.
const ACTOR: &str = "castellan:ocsp";
const SUBJECT: &str = "CN=Castellan OCSP Responder,O=Castellan";
/// A replaced key stays in the token this long: requests being signed with it finish, and replicas sharing the
/// state file (they look every minute) move to the new one first.
const RETIRE_AFTER: Duration = Duration::from_secs(5 * 60);
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The certificate and key OCSP responses are signed with.
pub struct SigningIdentity {
    pub certificate: Certificate,
    pub signer: Arc<HsmSigner>,
    pub key_label: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl SigningIdentity {
    /// Two thirds into the certificate's life.
    pub fn renew_at(&self) -> SystemTime {
        let life = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_before + life / 3 * 2
    }
}

/// The state file: public data only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Remembered {
    key_label: String,
    certificate_pem: String,
}

pub struct ResponderKeys {
    store: Store,
    ca: Arc<IssuingCa>,
    lifetime: Duration,
    state_file: PathBuf,
    current: RwLock<Arc<SigningIdentity>>,
}

impl ResponderKeys {
    /// Reuses the remembered certificate when it is this CA's, its key is in the token and it is not yet due for
    /// renewal; otherwise issues a new one.
    pub async fn load_or_issue(
        store: Store,
        ca: Arc<IssuingCa>,
        lifetime: Duration,
        state_file: PathBuf,
    ) -> Result<ResponderKeys, StatusError> {
        let identity = match remembered_identity(&ca, &state_file).await {
            Some(identity) if SystemTime::now() < identity.renew_at() => {
                tracing::info!(key = %identity.key_label, "reusing the OCSP signing certificate");
                identity
            }
            previous => {
                let identity = issue(&store, &ca, lifetime).await?;
                save(&state_file, &identity)?;
                if let Some(previous) = previous {
                    retire_later(&previous);
                }
                identity
            }
        };
        Ok(ResponderKeys { store, ca, lifetime, state_file, current: RwLock::new(Arc::new(identity)) })
    }

    pub fn current(&self) -> Arc<SigningIdentity> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Renews at two thirds of the certificate's life, or moves to a newer certificate another replica sharing the
    /// state file issued; `rotated` runs after each change. Runs until the process ends.
    pub(crate) async fn renew_forever(self: Arc<Self>, rotated: impl Fn() + Send + 'static) {
        loop {
            let current = self.current();
            let wait = current.renew_at().duration_since(SystemTime::now()).unwrap_or_default();
            tokio::time::sleep(wait.min(CHECK_EVERY)).await;
            match self.step(&current).await {
                Ok(false) => {}
                Ok(true) => rotated(),
                Err(e) => {
                    tracing::error!(error = %e, "renewing the OCSP signing certificate failed; retrying in 30s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        }
    }

    /// One look: adopt a newer shared certificate, or renew when due. True when the identity changed.
    pub(crate) async fn step(&self, current: &Arc<SigningIdentity>) -> Result<bool, StatusError> {
        let shared = remembered_identity(&self.ca, &self.state_file).await;
        let next = match shared {
            Some(shared) if shared.key_label != current.key_label && shared.not_after > current.not_after => {
                tracing::info!(key = %shared.key_label, "using the OCSP signing certificate another replica issued");
                shared
            }
            _ if SystemTime::now() >= current.renew_at() => {
                let fresh = issue(&self.store, &self.ca, self.lifetime).await?;
                save(&self.state_file, &fresh)?;
                tracing::info!(key = %fresh.key_label, "renewed the OCSP signing certificate");
                fresh
            }
            _ => return Ok(false),
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        retire_later(current);
        Ok(true)
    }
}

/// Removes a replaced identity's key from the token after [`RETIRE_AFTER`].
fn retire_later(identity: &SigningIdentity) {
    let (hsm, label) = (identity.signer.hsm().clone(), identity.key_label.clone());
    tokio::spawn(async move {
        tokio::time::sleep(RETIRE_AFTER).await;
        let _ = tokio::task::spawn_blocking(move || retire_key(&hsm, &label)).await;
    });
}

/// The identity the state file names, if it is usable: this CA's certificate, its key in the token.
async fn remembered_identity(ca: &IssuingCa, state_file: &std::path::Path) -> Option<SigningIdentity> {
    let text = std::fs::read_to_string(state_file).ok()?;
    let remembered: Remembered = serde_json::from_str(&text).ok()?;
    let certificate = Certificate::from_pem(remembered.certificate_pem.as_bytes()).ok()?;
    let issuer = ca.issuer.certificate();
    let ours = certificate.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && castellan_ca::key::verify_signature(
            &issuer.tbs_certificate.subject_public_key_info,
            &certificate.signature_algorithm,
            &certificate.tbs_certificate.to_der().ok()?,
            certificate.signature.as_bytes()?,
        )
        .is_ok();
    let not_after = certificate.tbs_certificate.validity.not_after.to_system_time();
    if !ours || SystemTime::now() >= not_after {
        return None;
    }
    let hsm = ca.issuer.signer().hsm().clone();
    let label = remembered.key_label.clone();
    let key = hsm.run(move |hsm| hsm.find_key_pair(&label)).await.ok()?;
    if key.public_key != certificate.tbs_certificate.subject_public_key_info {
        return None;
    }
    Some(SigningIdentity {
        not_before: certificate.tbs_certificate.validity.not_before.to_system_time(),
        not_after,
        signer: Arc::new(hsm.signer(key)),
        key_label: remembered.key_label,
        certificate,
    })
}

fn save(state_file: &std::path::Path, identity: &SigningIdentity) -> Result<(), StatusError> {
    let io = |source| StatusError::StateFile { path: state_file.to_owned(), source };
    let der = identity.certificate.to_der().map_err(CaError::from)?;
    let remembered =
        Remembered { key_label: identity.key_label.clone(), certificate_pem: castellan_ca::certificate_pem(&der)? };
    let json = serde_json::to_vec_pretty(&remembered).map_err(|e| io(std::io::Error::other(e)))?;
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Write then rename, so a crash (or a replica reading it) sees the old file or the new one.
    let tmp = state_file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, json).map_err(io)?;
    std::fs::rename(&tmp, state_file).map_err(io)
}

/// Removes a key no certificate of ours uses any more; a failure only leaves an unused key behind.
fn retire_key(hsm: &Hsm, label: &str) {
    if let Err(e) = hsm.destroy_key_pair(label) {
        tracing::warn!(key = label, error = %e, "could not remove a retired OCSP signing key from the token");
    }
}

/// A new key in the token and its responder certificate, recorded as issuance is: the serial and TBS hash before
/// the HSM signs, the certificate and its audit entry after. If anything fails after the key exists, the key goes.
async fn issue(store: &Store, ca: &Arc<IssuingCa>, lifetime: Duration) -> Result<SigningIdentity, StatusError> {
    let hsm = ca.issuer.signer().hsm().clone();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let label = format!("castellan-ocsp-{}-{}", now.as_secs(), now.subsec_nanos());
    let key = {
        let label = label.clone();
        hsm.run(move |hsm| hsm.generate_key_pair(&label, KeySpec::EcP256)).await?
    };
    match certify(store, ca, &key.public_key, lifetime, &label).await {
        Ok((certificate, not_before, not_after)) => Ok(SigningIdentity {
            certificate,
            signer: Arc::new(hsm.signer(key)),
            key_label: label,
            not_before,
            not_after,
        }),
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || retire_key(&hsm, &label)).await;
            Err(e)
        }
    }
}

async fn certify(
    store: &Store,
    ca: &Arc<IssuingCa>,
    public_key: &spki::SubjectPublicKeyInfoOwned,
    lifetime: Duration,
    key_label: &str,
) -> Result<(Certificate, SystemTime, SystemTime), StatusError> {
    let subject = Name::from_str(SUBJECT).map_err(CaError::from)?;
    let prepared = ca.issuer.prepare_ocsp_responder(public_key, subject, lifetime, SystemTime::now())?;
    let pending = ca.pending_row(
        &prepared,
        Requester {
            source: CertificateSource::ManagedInternal,
            profile: Some(RESPONDER_PROFILE.to_owned()),
            account_id: None,
            owner: Some(ACTOR.to_owned()),
        },
    );
    let id = store.reserve_certificate(&pending).await?;
    let signed = {
        let (ca, prepared) = (Arc::clone(ca), prepared.clone());
        tokio::task::spawn_blocking(move || ca.issuer.sign_prepared_responder::<HsmSignature>(&prepared)).await
    };
    let (certificate, der) = match signed {
        Ok(Ok(signed)) => signed,
        Ok(Err(e @ CaError::Signing(_))) => {
            store.fail_certificate(id).await?;
            return Err(e.into());
        }
        Ok(Err(e)) => {
            tracing::error!(inventory_id = id, error = %e, "responder issuance failed after signing; row left pending");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let sha256 = Sha256::digest(&der).to_vec();
    let event =
        AuditEvent::new(ACTOR, "certificate.issue", prepared.serial_hex.clone()).with_details(serde_json::json!({
            "inventory_id": id,
            "profile": RESPONDER_PROFILE,
            "key_label": key_label,
            "not_after": pending.not_after,
            "sha256": hex::encode(&sha256),
        }));
    store.complete_certificate_audited(id, &der, &sha256, &event).await?;
    tracing::info!(serial = %prepared.serial_hex, key = key_label, "issued the OCSP signing certificate");
    Ok((certificate, prepared.not_before, prepared.not_after))
}
