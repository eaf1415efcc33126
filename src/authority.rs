//! The CA on disk and in the token: the key ceremony, the enterprise import, and loading the issuer at start.
//!
//! Keys live only in the token; `ca/` under the data directory holds what is public (certificates, the CSR) and
//! `state.json`, which names the token keys. Nothing here is secret.

use crate::config::Settings;
use anyhow::{Context, Result, bail};
use castellan_acme_server::status;
use castellan_ca::{
    AuthorityUrls, Issuer, NameConstraintSpec, ProfileKind, Profiles, certificate_pem, fingerprint_sha256,
};
use castellan_hsm::{Hsm, HsmSignature, HsmSigner, KeySpec};
use der::{Decode, DecodePem, Encode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::name::Name;

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

struct CaFiles {
    dir: PathBuf,
}

impl CaFiles {
    fn new(settings: &Settings) -> Self {
        CaFiles { dir: settings.ca_dir() }
    }
    fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    fn root(&self) -> PathBuf {
        self.dir.join("root.pem")
    }
    fn intermediate(&self) -> PathBuf {
        self.dir.join("intermediate.pem")
    }
    fn csr(&self) -> PathBuf {
        self.dir.join("intermediate.csr")
    }

    fn exists(&self) -> bool {
        self.state().exists()
    }

    fn load_state(&self) -> Result<CaState> {
        let text = std::fs::read_to_string(self.state())
            .with_context(|| format!("no CA in {} (run `castellan ca init`)", self.dir.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", self.state().display()))
    }

    fn save_state(&self, state: &CaState) -> Result<()> {
        write_atomic(&self.state(), serde_json::to_string_pretty(state)?.as_bytes())
    }
}

/// Writes through a synced temporary file and a rename, so a crash leaves the old file or the new one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    crate::files::replace_durably(path, contents, 0o644).with_context(|| format!("writing {}", path.display()))
}

pub fn ca_exists(settings: &Settings) -> bool {
    CaFiles::new(settings).exists()
}

fn key_spec(name: &str) -> Result<KeySpec> {
    Ok(KeySpec::from_str(name)?)
}

fn name(subject: &str) -> Result<Name> {
    Name::from_str(subject).with_context(|| format!("{subject:?} is not a distinguished name (CN=...,O=...)"))
}

fn days(n: u64) -> Result<Duration> {
    n.checked_mul(24 * 3600).map(Duration::from_secs).with_context(|| format!("{n} days is too long a lifetime"))
}

/// Key labels carry the creation time so that a second ceremony (after the first one's files were removed)
/// never collides with keys an earlier one left in the token.
fn key_label(role: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("castellan-{role}-{}", now.unix_timestamp())
}

/// The key ceremony. Refuses to run where a CA exists.
pub fn init(settings: &Settings, hsm: &Hsm, options: &InitOptions) -> Result<Vec<CertificateSummary>> {
    let files = CaFiles::new(settings);
    if files.exists() {
        bail!(
            "a CA already exists in {} — refusing to overwrite it (remove that directory to start over; \
             its keys stay in the token)",
            files.dir.display()
        );
    }
    let ca = &settings.ca;
    let intermediate_subject = name(options.intermediate_subject.as_deref().unwrap_or(&ca.intermediate_subject))?;
    let intermediate_spec = key_spec(options.intermediate_key.as_deref().unwrap_or(&ca.intermediate_key))?;
    let intermediate_label = key_label("intermediate");

    if let Some(csr_path) = &options.intermediate_csr {
        let key = hsm.generate_key_pair(&intermediate_label, intermediate_spec)?;
        let signer = hsm.signer(key);
        let csr = castellan_ca::intermediate_csr::<_, HsmSignature>(&signer, intermediate_subject)?;
        let pem = castellan_ca::authority::csr_pem(&csr)?;
        write_atomic(&files.csr(), pem.as_bytes())?;
        write_atomic(csr_path, pem.as_bytes())?;
        files.save_state(&CaState {
            status: CaStatus::AwaitingIntermediateCertificate,
            root_key: None,
            intermediate_key: intermediate_label,
        })?;
        return Ok(Vec::new());
    }

    let root_subject = name(options.root_subject.as_deref().unwrap_or(&ca.root_subject))?;
    let root_spec = key_spec(options.root_key.as_deref().unwrap_or(&ca.root_key))?;
    let root_label = key_label("root");
    let root_key = hsm.generate_key_pair(&root_label, root_spec)?;
    let root_signer = hsm.signer(root_key);
    let root = castellan_ca::self_signed_root::<_, HsmSignature>(
        &root_signer,
        root_subject,
        days(options.root_lifetime_days.unwrap_or(ca.root_lifetime_days))?,
    )?;
    let intermediate_key = hsm.generate_key_pair(&intermediate_label, intermediate_spec)?;
    let intermediate = castellan_ca::sign_intermediate::<_, HsmSignature>(
        &root_signer,
        &root,
        &intermediate_key.public_key,
        intermediate_subject,
        days(options.intermediate_lifetime_days.unwrap_or(ca.intermediate_lifetime_days))?,
        &options.constraints,
    )?;
    write_atomic(&files.root(), certificate_pem(&root.to_der()?)?.as_bytes())?;
    write_atomic(&files.intermediate(), certificate_pem(&intermediate.to_der()?)?.as_bytes())?;
    files.save_state(&CaState {
        status: CaStatus::Ready,
        root_key: Some(root_label.clone()),
        intermediate_key: intermediate_label.clone(),
    })?;
    Ok(vec![summary("root", &root, &root_label)?, summary("intermediate", &intermediate, &intermediate_label)?])
}

/// Enterprise path, second half: install the intermediate certificate an external root signed.
pub fn import(settings: &Settings, hsm: &Hsm, cert_path: &Path, root_path: &Path) -> Result<Vec<CertificateSummary>> {
    let files = CaFiles::new(settings);
    let mut state = files.load_state()?;
    if state.status != CaStatus::AwaitingIntermediateCertificate {
        bail!("this CA is not waiting for an intermediate certificate (it was not created with --intermediate-csr)");
    }
    let intermediate = read_certificate(cert_path)?;
    let root = read_certificate(root_path)?;
    let key = hsm.find_key_pair(&state.intermediate_key)?;
    castellan_ca::check_imported_intermediate(&intermediate, &key.public_key, &root)?;
    write_atomic(&files.root(), certificate_pem(&root.to_der()?)?.as_bytes())?;
    write_atomic(&files.intermediate(), certificate_pem(&intermediate.to_der()?)?.as_bytes())?;
    state.status = CaStatus::Ready;
    files.save_state(&state)?;
    Ok(vec![summary("root", &root, "(external)")?, summary("intermediate", &intermediate, &state.intermediate_key)?])
}

/// Accepts PEM or DER.
pub fn read_certificate(path: &Path) -> Result<Certificate> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let cert =
        if bytes.starts_with(b"-----BEGIN") { Certificate::from_pem(&bytes) } else { Certificate::from_der(&bytes) };
    cert.with_context(|| format!("{} is not an X.509 certificate", path.display()))
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

/// The loaded CA: the issuer with its HSM signer, and the PEM the server publishes.
pub struct LoadedCa {
    /// Shared with the ACME server's RA, which signs through it too.
    pub issuer: std::sync::Arc<Issuer<HsmSigner>>,
    /// The intermediate's row in the store's issuers table (set once it is filed there).
    pub issuer_id: i64,
    /// The intermediate's key identifier and subject, as every inventory row names its issuer: computed once.
    pub issuer_key_id: Vec<u8>,
    pub issuer_dn: String,
    pub root: Certificate,
    pub intermediate: Certificate,
    pub root_pem: String,
    /// Intermediate then root.
    pub chain_pem: String,
}

impl LoadedCa {
    /// The issuer and how the inventory names it, for the ACME server, the status service and `records`.
    pub fn issuing(&self) -> castellan_acme_server::IssuingCa {
        castellan_acme_server::IssuingCa {
            issuer: std::sync::Arc::clone(&self.issuer),
            issuer_id: self.issuer_id,
            issuer_key_id: self.issuer_key_id.clone(),
            issuer_dn: self.issuer_dn.clone(),
        }
    }
}

pub fn load(settings: &Settings, hsm: &Hsm) -> Result<LoadedCa> {
    let files = CaFiles::new(settings);
    let state = files.load_state()?;
    if state.status != CaStatus::Ready {
        bail!(
            "the CA is waiting for its intermediate certificate: have {} signed, then `castellan ca import`",
            files.csr().display()
        );
    }
    let root = read_certificate(&files.root())?;
    let intermediate = read_certificate(&files.intermediate())?;
    let key = hsm.find_key_pair(&state.intermediate_key)?;
    let issuer_key_id = castellan_ca::extensions::issuer_key_id(&intermediate)?;
    // Unset URLs point at this server's plain-HTTP listener, when there is one, so a dev CA publishes revocation
    // status without configuration.
    let base = settings.status_base();
    let base = base.as_deref();
    let urls = AuthorityUrls {
        crl: settings.ca.crl_url.clone().or_else(|| base.map(|b| format!("{b}{}", status::crl_path(&issuer_key_id)))),
        ocsp: settings.ca.ocsp_url.clone().or_else(|| base.map(|b| format!("{b}{}", status::OCSP_PATH))),
        ca_issuers: settings.ca.ca_issuers_url.clone(),
    };
    let mut profiles = Profiles::default();
    for (profile, secs) in &settings.ca.max_lifetime_secs {
        let kind = ProfileKind::from_name(profile)
            .with_context(|| format!("ca.max_lifetime_secs names unknown profile {profile:?}"))?;
        profiles.set_max_lifetime(kind, Duration::from_secs(*secs));
    }
    let issuer = Issuer::new::<HsmSignature>(hsm.signer(key), vec![intermediate.clone()], &urls, profiles)?;
    let root_pem = certificate_pem(&root.to_der()?)?;
    let chain_pem = format!("{}{}", certificate_pem(&intermediate.to_der()?)?, root_pem);
    let issuer_dn = intermediate.tbs_certificate.subject.to_string();
    Ok(LoadedCa {
        issuer: std::sync::Arc::new(issuer),
        issuer_id: 0,
        issuer_key_id,
        issuer_dn,
        root,
        intermediate,
        root_pem,
        chain_pem,
    })
}

/// Which token keys the CA uses.
pub fn state(settings: &Settings) -> Result<CaState> {
    CaFiles::new(settings).load_state()
}

pub fn show(settings: &Settings, hsm: &Hsm) -> Result<Vec<CertificateSummary>> {
    let ca = load(settings, hsm)?;
    let state = CaFiles::new(settings).load_state()?;
    Ok(vec![
        summary("root", &ca.root, state.root_key.as_deref().unwrap_or("(external)"))?,
        summary("intermediate", &ca.intermediate, &state.intermediate_key)?,
    ])
}
