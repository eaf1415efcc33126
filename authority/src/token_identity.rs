//! A certificate Castellan holds for itself, with a key it generated in the token (sensitive, non-extractable):
//! the HTTPS listener's TLS identity and the delegated OCSP signing certificate are both one of these.
//!
//! It is issued through [`Authority::issue`] like any certificate (inventory row, audit entry), remembered across
//! restarts in a state file of public data only (the key's label and the chain, written durably), and renewed at
//! two thirds of its life without a restart. Subscribers ([`TokenIdentity::subscribe`]) hear of each new identity:
//! the TLS listener swaps its certificate, the OCSP responder drops responses signed with the old key.
//!
//! Replicas that share a data directory converge on the newest identity the state file names; replicas with their
//! own directories each keep their own, which is as valid as any other certificate of the CA. A replaced key stays
//! in the token for `retire_after` (signatures under way finish, replicas sharing the file move first), then goes.

use crate::Authority;
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use crate::files::replace_durably;
use crate::issuing::{Prepared, Requester};
use castellan_ca::SanName;
use castellan_hsm::{Hsm, HsmKey, HsmSignature, HsmSigner, KeySpec};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

/// How often the state file is read for a newer identity another replica issued.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// After a failed renewal, the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(30);
const RESPONDER_SUBJECT: &str = "CN=Castellan OCSP Responder,O=Castellan";

/// What kind of certificate the identity is.
#[derive(Clone, Debug)]
pub enum IdentityKind {
    /// A tls-server certificate for these names (the HTTPS listener).
    TlsServer { names: Vec<SanName> },
    /// The delegated OCSP signing certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).
    OcspResponder,
}

/// Everything that sets one identity apart from another.
#[derive(Clone, Debug)]
pub struct IdentitySpec {
    pub kind: IdentityKind,
    /// Token key labels start with this ("castellan-tls", "castellan-ocsp") and go on with the creation time.
    pub label_prefix: &'static str,
    pub lifetime: Duration,
    pub state_file: PathBuf,
    pub retire_after: Duration,
    /// Who issues it, for the audit log and the inventory's owner ("castellan:serve", "castellan:ocsp").
    pub actor: Actor,
    /// What it is, for the log: "the server's TLS certificate", "the OCSP signing certificate".
    pub name: &'static str,
}

/// One certificate and its token key.
pub struct Identity {
    pub key_label: String,
    pub signer: Arc<HsmSigner>,
    pub certificate: Certificate,
    /// DER, leaf first, then the issuing chain.
    pub chain_der: Vec<Vec<u8>>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Identity {
    /// Two thirds into the certificate's life.
    pub fn renew_at(&self) -> SystemTime {
        let life = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_before + life / 3 * 2
    }
}

/// The state file: public data only.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Remembered {
    key_label: String,
    /// Leaf first. (`certificate_pem`: the name the OCSP responder's file used before it was one of these.)
    #[serde(alias = "certificate_pem")]
    chain_pem: String,
}

pub struct TokenIdentity {
    authority: Authority,
    spec: IdentitySpec,
    current: watch::Sender<Arc<Identity>>,
}

impl TokenIdentity {
    /// Reuses the remembered identity when it is this CA's, its key is in the token and it is not yet due for
    /// renewal; otherwise issues a new one.
    pub async fn load_or_issue(authority: Authority, spec: IdentitySpec) -> Result<Arc<TokenIdentity>> {
        let identity = match remembered(&authority, &spec.state_file).await {
            Some(identity) if authority.clock().now() < identity.renew_at() => {
                tracing::info!(key = %identity.key_label, "reusing {}", spec.name);
                identity
            }
            previous => {
                let fresh = issue(&authority, &spec).await?;
                save(&spec.state_file, &fresh)?;
                if let Some(previous) = previous {
                    retire_later(&previous, spec.retire_after);
                }
                fresh
            }
        };
        let (current, _) = watch::channel(Arc::new(identity));
        Ok(Arc::new(TokenIdentity { authority, spec, current }))
    }

    pub fn current(&self) -> Arc<Identity> {
        Arc::clone(&self.current.borrow())
    }

    /// Hears of every new identity.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Identity>> {
        self.current.subscribe()
    }

    /// Renews at two thirds of the life (by the authority's clock), or adopts a newer identity another replica
    /// sharing the state file issued. Runs until the process ends.
    pub async fn renew_forever(self: Arc<Self>) {
        let clock = self.authority.clock().clone();
        loop {
            let renew_at = self.current().renew_at();
            tokio::select! {
                () = clock.sleep_until(renew_at) => {}
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "renewing {} failed; retrying in 30 s", self.spec.name);
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }

    /// One look: adopt a newer shared identity, or renew when due. True when the identity changed.
    pub async fn step(&self) -> Result<bool> {
        let current = self.current();
        let shared = remembered(&self.authority, &self.spec.state_file).await;
        let next = match shared {
            Some(shared) if shared.key_label != current.key_label && shared.not_after > current.not_after => {
                tracing::info!(key = %shared.key_label, "using {} another replica issued", self.spec.name);
                shared
            }
            _ if self.authority.clock().now() >= current.renew_at() => {
                let fresh = issue(&self.authority, &self.spec).await?;
                save(&self.spec.state_file, &fresh)?;
                tracing::info!(key = %fresh.key_label, "renewed {}", self.spec.name);
                fresh
            }
            _ => return Ok(false),
        };
        self.current.send_replace(Arc::new(next));
        retire_later(&current, self.spec.retire_after);
        Ok(true)
    }
}

/// The identity the state file names, if it is usable: this CA's certificate, not expired, its key in the token.
async fn remembered(authority: &Authority, state_file: &Path) -> Option<Identity> {
    let text = std::fs::read_to_string(state_file).ok()?;
    let remembered: Remembered = serde_json::from_str(&text).ok()?;
    let chain_der = pem_chain(&remembered.chain_pem).ok()?;
    let certificate = Certificate::from_der(chain_der.first()?).ok()?;
    let issuer = authority.ca().issuer.certificate();
    let ours = certificate.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && castellan_ca::key::verify_signature(
            &issuer.tbs_certificate.subject_public_key_info,
            &certificate.signature_algorithm,
            &certificate.tbs_certificate.to_der().ok()?,
            certificate.signature.as_bytes()?,
        )
        .is_ok();
    let not_after = certificate.tbs_certificate.validity.not_after.to_system_time();
    if !ours || authority.clock().now() >= not_after {
        return None;
    }
    let hsm = authority.ca().hsm().clone();
    let label = remembered.key_label.clone();
    let key = hsm.run(move |hsm| hsm.find_key_pair(&label)).await.ok()?;
    if key.public_key != certificate.tbs_certificate.subject_public_key_info {
        return None;
    }
    Some(Identity {
        not_before: certificate.tbs_certificate.validity.not_before.to_system_time(),
        not_after,
        signer: Arc::new(hsm.signer(key)),
        key_label: remembered.key_label,
        certificate,
        chain_der,
    })
}

fn save(state_file: &Path, identity: &Identity) -> Result<()> {
    let mut chain_pem = String::new();
    for der in &identity.chain_der {
        chain_pem.push_str(&crate::issuing::pem(der)?);
    }
    let remembered = Remembered { key_label: identity.key_label.clone(), chain_pem };
    let json = serde_json::to_vec_pretty(&remembered)
        .map_err(|e| AuthorityError::File { path: state_file.to_owned(), source: std::io::Error::other(e) })?;
    replace_durably(state_file, &json, 0o644)
        .map_err(|source| AuthorityError::File { path: state_file.to_owned(), source })
}

/// Removes a replaced identity's key from the token after `after`; a failure only leaves an unused key behind.
fn retire_later(identity: &Identity, after: Duration) {
    let (hsm, label) = (identity.signer.hsm().clone(), identity.key_label.clone());
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tokio::task::spawn_blocking(move || retire_key(&hsm, &label)).await;
    });
}

fn retire_key(hsm: &Hsm, label: &str) {
    if let Err(e) = hsm.destroy_key_pair(label) {
        tracing::warn!(key = label, error = %e, "could not remove a retired key from the token");
    }
}

/// A new key in the token and its certificate, issued and recorded like any other. If anything fails after the
/// key exists, the key goes, so failing renewals cannot fill the token.
async fn issue(authority: &Authority, spec: &IdentitySpec) -> Result<Identity> {
    let hsm = authority.ca().hsm().clone();
    let label = key_label(spec.label_prefix, authority.clock().now());
    let key = {
        let label = label.clone();
        hsm.run(move |hsm| hsm.generate_key_pair(&label, KeySpec::EcP256)).await?
    };
    match certify(authority, spec, &hsm, &key, &label).await {
        Ok(identity) => Ok(identity),
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || retire_key(&hsm, &label)).await;
            Err(e)
        }
    }
}

async fn certify(authority: &Authority, spec: &IdentitySpec, hsm: &Hsm, key: &HsmKey, label: &str) -> Result<Identity> {
    let prepared = match &spec.kind {
        IdentityKind::TlsServer { names } => {
            let csr = {
                let (signer, names) = (hsm.signer(key.clone()), names.clone());
                tokio::task::spawn_blocking(move || server_csr(&signer, &names)).await??
            };
            authority.prepare_leaf(csr, "tls-server", Some(spec.lifetime)).await?
        }
        IdentityKind::OcspResponder => {
            let subject = Name::from_str(RESPONDER_SUBJECT).map_err(castellan_ca::CaError::from)?;
            let now = authority.clock().now();
            Prepared::OcspResponder(authority.ca().issuer.prepare_ocsp_responder(
                &key.public_key,
                subject,
                spec.lifetime,
                now,
            )?)
        }
    };
    let requester = Requester::castellan(spec.actor.as_str());
    let issued = authority.issue(prepared, requester, &spec.actor).await?;
    tracing::info!(serial = %issued.serial_hex, key = label, "issued {}", spec.name);
    Ok(Identity {
        key_label: label.to_owned(),
        signer: Arc::new(hsm.signer(key.clone())),
        chain_der: pem_chain(&issued.chain_pem)?,
        certificate: issued.certificate,
        not_before: issued.not_before,
        not_after: issued.not_after,
    })
}

/// Key labels carry the creation time (and a random tail, since a test's clock may stand still), so a new key
/// never collides with one an earlier run left in the token.
fn key_label(prefix: &str, now: SystemTime) -> String {
    let since = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{prefix}-{}-{:08x}", since.as_secs(), rand::random::<u32>())
}

/// A CSR for the server's names, signed by its token key (proof of possession, as any CSR).
fn server_csr(signer: &HsmSigner, names: &[SanName]) -> Result<Vec<u8>> {
    let build = || -> std::result::Result<Vec<u8>, castellan_ca::CaError> {
        let mut builder = RequestBuilder::new(Name::default(), signer)?;
        let sans = crate::keys::general_names(names)?;
        builder.add_extension(&SubjectAltName(sans))?;
        Ok(builder.build::<HsmSignature>()?.to_der()?)
    };
    Ok(build()?)
}

/// The DER certificates of a PEM chain, in order.
pub fn pem_chain(pem: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for block in pem.split_inclusive("-----END CERTIFICATE-----") {
        let block = block.trim_start();
        if !block.starts_with("-----BEGIN") {
            continue;
        }
        let (_, der) = der::pem::decode_vec(block.as_bytes())
            .map_err(|e| AuthorityError::invalid(format!("a certificate chain's PEM: {e}")))?;
        out.push(der);
    }
    Ok(out)
}

/// A name for the TLS identity from configuration: an IP address, else a DNS name.
pub fn san_name(name: &str) -> SanName {
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => SanName::Ip(ip),
        Err(_) => SanName::Dns(name.to_ascii_lowercase()),
    }
}
