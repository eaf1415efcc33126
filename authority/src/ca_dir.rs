//! The CA on disk and in the token: the key ceremony, the enterprise import, and loading the issuing CA at start.
//!
//! Keys live only in the token; the CA directory (`<data dir>/ca`) holds what is public (certificates, the CSR)
//! and `state.json`, which names the token keys. Nothing here is secret.

use crate::clock::Clock;
use crate::error::{AuthorityError, Result};
use crate::files::replace_durably;
use crate::issuing::{IssuingCa, register_issuers};
use crate::urls::{OCSP_PATH, crl_path};
use castellan_ca::{
    AuthorityUrls, Issuer, NameConstraintSpec, ProfileKind, Profiles, certificate_pem, fingerprint_sha256,
};
use castellan_hsm::{Hsm, HsmSignature, KeySpec};
use castellan_store::Store;
use der::{Decode, DecodePem, Encode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::name::Name;

/// The CA's part of `castellan.toml` (`[ca]`): the ceremony's defaults, the URLs leaves carry, lifetimes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaSettings {
    pub root_subject: String,
    pub root_key: String,
    pub root_lifetime_days: u64,
    pub intermediate_subject: String,
    pub intermediate_key: String,
    pub intermediate_lifetime_days: u64,
    /// URLs embedded in leaf certificates (CRL distribution point, OCSP, caIssuers). Unset, leaves point at the
    /// CRL and OCSP responder where `castellan serve` publishes them (see [`crate::urls::STATUS_BASE_SETTING`]).
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub ca_issuers_url: Option<String>,
    /// Per-profile maximum lifetimes in seconds, e.g. `{ "tls-server" = 7776000 }`.
    pub max_lifetime_secs: std::collections::BTreeMap<String, u64>,
}

impl Default for CaSettings {
    fn default() -> Self {
        CaSettings {
            root_subject: "CN=Castellan Root CA,O=Castellan".into(),
            root_key: KeySpec::EcP384.name().into(),
            root_lifetime_days: 3650,
            intermediate_subject: "CN=Castellan Intermediate CA,O=Castellan".into(),
            intermediate_key: KeySpec::EcP256.name().into(),
            intermediate_lifetime_days: 1825,
            crl_url: None,
            ocsp_url: None,
            ca_issuers_url: None,
            max_lifetime_secs: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CaStatus {
    Ready,
    /// `ca init --intermediate-csr`: waiting for `ca import` of the certificate an external root signs.
    AwaitingIntermediateCertificate,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaState {
    pub status: CaStatus,
    pub root_key: Option<String>,
    pub intermediate_key: String,
}

/// What `ca init` accepts beyond the configuration file.
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    pub root_subject: Option<String>,
    pub root_key: Option<String>,
    pub root_lifetime_days: Option<u64>,
    pub intermediate_subject: Option<String>,
    pub intermediate_key: Option<String>,
    pub intermediate_lifetime_days: Option<u64>,
    pub constraints: NameConstraintSpec,
    /// Enterprise path: write a CSR for the intermediate here instead of creating a root.
    pub intermediate_csr: Option<PathBuf>,
}

/// Subjects and fingerprints, for the operator to record.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateSummary {
    pub role: &'static str,
    pub subject: String,
    pub sha256_fingerprint: String,
    pub not_after: String,
    pub key_label: String,
}

/// The CA directory: certificates, the CSR of the enterprise path, and `state.json`.
#[derive(Clone, Debug)]
pub struct CaDirectory {
    dir: PathBuf,
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuthorityError + '_ {
    move |source| AuthorityError::File { path: path.to_owned(), source }
}

impl CaDirectory {
    pub fn new(dir: PathBuf) -> CaDirectory {
        CaDirectory { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn root_file(&self) -> PathBuf {
        self.dir.join("root.pem")
    }
    fn intermediate_file(&self) -> PathBuf {
        self.dir.join("intermediate.pem")
    }
    fn csr_file(&self) -> PathBuf {
        self.dir.join("intermediate.csr")
    }

    /// Whether a ceremony has run here.
    pub fn exists(&self) -> bool {
        self.state_file().exists()
    }

    /// Which token keys the CA uses.
    pub fn state(&self) -> Result<CaState> {
        let path = self.state_file();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            AuthorityError::Unavailable(format!("no CA in {} (run `castellan ca init`)", self.dir.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| AuthorityError::File { path, source: std::io::Error::other(e) })
    }

    fn write_certificates(&self, root: &Certificate, intermediate: &Certificate) -> Result<()> {
        write_public(&self.root_file(), certificate_pem(&root.to_der()?)?.as_bytes())?;
        write_public(&self.intermediate_file(), certificate_pem(&intermediate.to_der()?)?.as_bytes())
    }

    fn save_state(&self, state: &CaState) -> Result<()> {
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| AuthorityError::File { path: self.state_file(), source: std::io::Error::other(e) })?;
        write_public(&self.state_file(), &json)
    }

    /// The key ceremony. Refuses to run where a CA exists.
    pub fn init(
        &self,
        settings: &CaSettings,
        hsm: &Hsm,
        options: &InitOptions,
        clock: &Clock,
    ) -> Result<Vec<CertificateSummary>> {
        if self.exists() {
            return Err(AuthorityError::Conflict(format!(
                "a CA already exists in {}: refusing to overwrite it (remove that directory to start over; \
                 its keys stay in the token)",
                self.dir.display()
            )));
        }
        let intermediate_subject =
            name(options.intermediate_subject.as_deref().unwrap_or(&settings.intermediate_subject))?;
        let intermediate_spec = key_spec(options.intermediate_key.as_deref().unwrap_or(&settings.intermediate_key))?;
        let intermediate_label = key_label("intermediate", clock);

        if let Some(csr_path) = &options.intermediate_csr {
            let key = hsm.generate_key_pair(&intermediate_label, intermediate_spec)?;
            let signer = hsm.signer(key);
            let csr = castellan_ca::intermediate_csr::<_, HsmSignature>(&signer, intermediate_subject)?;
            let pem = castellan_ca::authority::csr_pem(&csr)?;
            write_public(&self.csr_file(), pem.as_bytes())?;
            write_public(csr_path, pem.as_bytes())?;
            self.save_state(&CaState {
                status: CaStatus::AwaitingIntermediateCertificate,
                root_key: None,
                intermediate_key: intermediate_label,
            })?;
            return Ok(Vec::new());
        }

        let root_subject = name(options.root_subject.as_deref().unwrap_or(&settings.root_subject))?;
        let root_spec = key_spec(options.root_key.as_deref().unwrap_or(&settings.root_key))?;
        let root_label = key_label("root", clock);
        let root_key = hsm.generate_key_pair(&root_label, root_spec)?;
        let root_signer = hsm.signer(root_key);
        let root = castellan_ca::self_signed_root::<_, HsmSignature>(
            &root_signer,
            root_subject,
            days(options.root_lifetime_days.unwrap_or(settings.root_lifetime_days))?,
            clock.now(),
        )?;
        let intermediate_key = hsm.generate_key_pair(&intermediate_label, intermediate_spec)?;
        let intermediate = castellan_ca::sign_intermediate::<_, HsmSignature>(
            &root_signer,
            &root,
            &intermediate_key.public_key,
            intermediate_subject,
            days(options.intermediate_lifetime_days.unwrap_or(settings.intermediate_lifetime_days))?,
            &options.constraints,
            clock.now(),
        )?;
        self.write_certificates(&root, &intermediate)?;
        self.save_state(&CaState {
            status: CaStatus::Ready,
            root_key: Some(root_label.clone()),
            intermediate_key: intermediate_label.clone(),
        })?;
        Ok(vec![summary("root", &root, &root_label)?, summary("intermediate", &intermediate, &intermediate_label)?])
    }

    /// Enterprise path, second half: install the intermediate certificate an external root signed.
    pub fn import(
        &self,
        hsm: &Hsm,
        cert_path: &Path,
        root_path: &Path,
        clock: &Clock,
    ) -> Result<Vec<CertificateSummary>> {
        let mut state = self.state()?;
        if state.status != CaStatus::AwaitingIntermediateCertificate {
            return Err(AuthorityError::Conflict(
                "this CA is not waiting for an intermediate certificate (it was not created with --intermediate-csr)"
                    .into(),
            ));
        }
        let intermediate = read_certificate(cert_path)?;
        let root = read_certificate(root_path)?;
        let key = hsm.find_key_pair(&state.intermediate_key)?;
        castellan_ca::check_imported_intermediate(&intermediate, &key.public_key, &root, clock.now())?;
        self.write_certificates(&root, &intermediate)?;
        state.status = CaStatus::Ready;
        self.save_state(&state)?;
        Ok(vec![
            summary("root", &root, "(external)")?,
            summary("intermediate", &intermediate, &state.intermediate_key)?,
        ])
    }

    /// The CA's certificates, for the operator to compare fingerprints.
    pub fn show(&self) -> Result<Vec<CertificateSummary>> {
        let state = self.ready_state()?;
        let root = read_certificate(&self.root_file())?;
        let intermediate = read_certificate(&self.intermediate_file())?;
        Ok(vec![
            summary("root", &root, state.root_key.as_deref().unwrap_or("(external)"))?,
            summary("intermediate", &intermediate, &state.intermediate_key)?,
        ])
    }

    fn ready_state(&self) -> Result<CaState> {
        let state = self.state()?;
        if state.status != CaStatus::Ready {
            return Err(AuthorityError::Unavailable(format!(
                "the CA is waiting for its intermediate certificate: have {} signed, then `castellan ca import`",
                self.csr_file().display()
            )));
        }
        Ok(state)
    }

    /// Loads the issuing CA (its key found in the token) and files its certificates in the store. Leaves carry
    /// `settings`' URLs, or else URLs under `status_base` (where revocation status is published).
    pub async fn load(
        &self,
        settings: &CaSettings,
        hsm: &Hsm,
        store: &Store,
        status_base: Option<&str>,
    ) -> Result<IssuingCa> {
        let state = self.ready_state()?;
        let root = read_certificate(&self.root_file())?;
        let intermediate = read_certificate(&self.intermediate_file())?;
        let key = {
            let label = state.intermediate_key.clone();
            hsm.run(move |hsm| hsm.find_key_pair(&label)).await?
        };
        let issuer_key_id = castellan_ca::extensions::issuer_key_id(&intermediate)?;
        let urls = AuthorityUrls {
            crl: settings.crl_url.clone().or_else(|| status_base.map(|b| format!("{b}{}", crl_path(&issuer_key_id)))),
            ocsp: settings.ocsp_url.clone().or_else(|| status_base.map(|b| format!("{b}{OCSP_PATH}"))),
            ca_issuers: settings.ca_issuers_url.clone(),
        };
        if urls.crl.is_none() || urls.ocsp.is_none() {
            return Err(AuthorityError::Unavailable(
                "leaves must say where their revocation status is published, and nothing says where: start \
                 `castellan serve` once (it records its address), or set ca.crl_url and ca.ocsp_url"
                    .into(),
            ));
        }
        let mut profiles = Profiles::default();
        for (profile, secs) in &settings.max_lifetime_secs {
            let kind = ProfileKind::from_name(profile).ok_or_else(|| {
                AuthorityError::invalid(format!("ca.max_lifetime_secs names unknown profile {profile:?}"))
            })?;
            profiles.set_max_lifetime(kind, Duration::from_secs(*secs));
        }
        let issuer = Issuer::new::<HsmSignature>(hsm.signer(key), vec![intermediate.clone()], &urls, profiles)?;
        let root_pem = certificate_pem(&root.to_der()?)?;
        let chain_pem = format!("{}{}", certificate_pem(&intermediate.to_der()?)?, root_pem);
        let issuer_id = register_issuers(
            store,
            &root,
            state.root_key.as_deref(),
            &intermediate,
            &state.intermediate_key,
            hsm.token_label(),
        )
        .await?;
        Ok(IssuingCa {
            issuer: std::sync::Arc::new(issuer),
            issuer_id,
            issuer_key_id,
            issuer_dn: intermediate.tbs_certificate.subject.to_string(),
            root,
            intermediate,
            root_pem,
            chain_pem,
        })
    }
}

/// Public data (certificates, state) written through a synced temporary file and a rename, so a crash leaves the
/// old file or the new one.
fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    replace_durably(path, contents, 0o644).map_err(file_error(path))
}

fn key_spec(name: &str) -> Result<KeySpec> {
    KeySpec::from_str(name).map_err(|e| AuthorityError::invalid(e.to_string()))
}

fn name(subject: &str) -> Result<Name> {
    Name::from_str(subject)
        .map_err(|_| AuthorityError::invalid(format!("{subject:?} is not a distinguished name (CN=...,O=...)")))
}

fn days(n: u64) -> Result<Duration> {
    n.checked_mul(24 * 3600)
        .map(Duration::from_secs)
        .ok_or_else(|| AuthorityError::invalid(format!("{n} days is too long a lifetime")))
}

/// Key labels carry the creation time so that a second ceremony (after the first one's files were removed)
/// never collides with keys an earlier one left in the token.
fn key_label(role: &str, clock: &Clock) -> String {
    format!("castellan-{role}-{}", clock.unix())
}

/// Accepts PEM or DER.
pub fn read_certificate(path: &Path) -> Result<Certificate> {
    let bytes = std::fs::read(path).map_err(file_error(path))?;
    let cert =
        if bytes.starts_with(b"-----BEGIN") { Certificate::from_pem(&bytes) } else { Certificate::from_der(&bytes) };
    cert.map_err(|_| AuthorityError::invalid(format!("{} is not an X.509 certificate", path.display())))
}

pub fn summary(role: &'static str, cert: &Certificate, key_label: &str) -> Result<CertificateSummary> {
    Ok(CertificateSummary {
        role,
        subject: cert.tbs_certificate.subject.to_string(),
        sha256_fingerprint: fingerprint_sha256(&cert.to_der()?),
        not_after: cert.tbs_certificate.validity.not_after.to_string(),
        key_label: key_label.to_owned(),
    })
}

/// Appends the audit entry of a ceremony or an import (`ca.init`, `ca.import`): what was created, with its
/// fingerprints. Nothing when nothing was created (the enterprise path's first half audits its CSR instead).
pub async fn audit_ceremony(
    store: &Store,
    actor: &crate::Actor,
    action: &str,
    created: &[CertificateSummary],
) -> Result<()> {
    let Some(last) = created.last() else { return Ok(()) };
    let details = serde_json::to_value(created)
        .map_err(|e| AuthorityError::invalid(format!("describing the ceremony for the audit log: {e}")))?;
    let event =
        castellan_store::audit::AuditEvent::new(actor.as_str(), action, last.subject.clone()).with_details(details);
    store.audit_append(&event).await?;
    Ok(())
}

/// Appends the audit entry of the enterprise path's first half: an intermediate key and its CSR.
pub async fn audit_intermediate_csr(store: &Store, actor: &crate::Actor, csr_path: &Path) -> Result<()> {
    let event =
        castellan_store::audit::AuditEvent::new(actor.as_str(), "ca.intermediate_csr", csr_path.display().to_string());
    store.audit_append(&event).await?;
    Ok(())
}
