//! The server's own TLS certificate: a key in the token, a certificate from our own CA, renewed after two
//! thirds of its life and swapped in without a restart.
//!
//! rustls signs handshakes through `HsmTlsKey`, so the TLS private key never leaves the token either. The
//! signature is a blocking call on the connection's task; on SoftHSM it takes ~50 µs, about what a software
//! ECDSA signature costs, so it is not moved to the blocking pool.

use crate::authority::LoadedCa;
use crate::records::{Actor, issue_recorded};
use anyhow::{Context, Result};
use castellan_ca::{IssuanceRequest, SanName};
use castellan_hsm::{Hsm, HsmSignature, HsmSigner, KeySpec};
use castellan_store::Store;
use castellan_store::inventory::CertificateSource;
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, Signer as TlsSigner, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// An HSM key as a rustls signing key (ECDSA P-256 with SHA-256).
#[derive(Debug)]
struct HsmTlsKey(Arc<HsmSigner>);

impl SigningKey for HsmTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn TlsSigner>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(HsmTlsSigner(Arc::clone(&self.0))) as Box<dyn TlsSigner>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct HsmTlsSigner(Arc<HsmSigner>);

impl TlsSigner for HsmTlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0.sign(message).map(|s| s.0).map_err(|e| rustls::Error::General(format!("HSM signature: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Hands every handshake the current certificate; renewal replaces it.
#[derive(Debug)]
pub struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner())))
    }
}

/// The served certificate as remembered across restarts (public data only: the key stays in the token).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Remembered {
    key_label: String,
    chain_pem: String,
    not_before_unix: u64,
    not_after_unix: u64,
}

impl Remembered {
    /// Two thirds into the certificate's life. Saturating: a corrupted state file means "renew now", not a panic.
    fn renew_at(&self) -> SystemTime {
        let life = self.not_after_unix.saturating_sub(self.not_before_unix);
        let at = self.not_before_unix.saturating_add(life / 3 * 2);
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(at)).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

pub struct ServerIdentity {
    hsm: Hsm,
    store: Store,
    ca: Arc<LoadedCa>,
    names: Vec<SanName>,
    lifetime: Duration,
    state_file: PathBuf,
    current: Arc<CurrentCertificate>,
    remembered: Remembered,
}

impl ServerIdentity {
    /// Reuses the remembered certificate when it is from this CA, its key is in the token and it is not yet due
    /// for renewal; otherwise issues a new one.
    pub async fn load_or_issue(
        hsm: Hsm,
        store: Store,
        ca: Arc<LoadedCa>,
        names: &[String],
        lifetime: Duration,
        data_dir: &std::path::Path,
    ) -> Result<ServerIdentity> {
        let names = names.iter().map(|n| parse_name(n)).collect::<Result<Vec<_>>>()?;
        let state_file = data_dir.join("tls").join("server.json");
        let previous =
            std::fs::read_to_string(&state_file).ok().and_then(|text| serde_json::from_str::<Remembered>(&text).ok());
        let key_present = match &previous {
            Some(r) => {
                let label = r.key_label.clone();
                hsm.run(move |hsm| hsm.key_exists(&label)).await.unwrap_or(false)
            }
            None => false,
        };
        let reusable = previous.clone().filter(|r| {
            key_present && SystemTime::now() < r.renew_at() && r.chain_pem.ends_with(ca.issuer.chain_pem())
        });
        let remembered = match reusable {
            Some(r) => {
                tracing::info!(key = %r.key_label, "reusing the server's TLS certificate");
                r
            }
            None => {
                let fresh = issue(&hsm, &store, &ca, &names, lifetime).await?;
                if let Some(old) = previous {
                    let hsm = hsm.clone();
                    tokio::task::spawn_blocking(move || retire_key(&hsm, &old.key_label)).await?;
                }
                fresh
            }
        };
        let certified = {
            let (hsm, remembered) = (hsm.clone(), remembered.clone());
            tokio::task::spawn_blocking(move || certified_key(&hsm, &remembered)).await??
        };
        let identity = ServerIdentity {
            store,
            current: Arc::new(CurrentCertificate(RwLock::new(certified))),
            hsm,
            ca,
            names,
            lifetime,
            state_file,
            remembered,
        };
        identity.save()?;
        Ok(identity)
    }

    pub fn resolver(&self) -> Arc<CurrentCertificate> {
        Arc::clone(&self.current)
    }

    fn save(&self) -> Result<()> {
        crate::authority::write_atomic(&self.state_file, &serde_json::to_vec_pretty(&self.remembered)?)
    }

    /// Renews whenever the certificate is two thirds through its life; runs until the process ends.
    pub async fn renew_forever(mut self) {
        loop {
            let wait = self.remembered.renew_at().duration_since(SystemTime::now()).unwrap_or_default();
            // Wake at least every minute, so a suspended machine or a changed clock is noticed soon.
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            if SystemTime::now() < self.remembered.renew_at() {
                continue;
            }
            match self.renew().await {
                Ok(()) => tracing::info!(key = %self.remembered.key_label, "renewed the server's TLS certificate"),
                Err(e) => {
                    tracing::error!(error = %e, "renewing the server's TLS certificate failed; retrying in 30s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        }
    }

    async fn renew(&mut self) -> Result<()> {
        let fresh = issue(&self.hsm, &self.store, &self.ca, &self.names, self.lifetime).await?;
        // Token calls stay off the runtime's worker threads.
        let hsm = self.hsm.clone();
        let for_key = fresh.clone();
        let certified = tokio::task::spawn_blocking(move || {
            certified_key(&hsm, &for_key).inspect_err(|_| retire_key(&hsm, &for_key.key_label))
        })
        .await??;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = certified;
        let old = std::mem::replace(&mut self.remembered, fresh);
        self.save()?;
        // Handshakes already under way hold the old key's Arc; give them time before the key goes.
        let hsm = self.hsm.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let _ = tokio::task::spawn_blocking(move || retire_key(&hsm, &old.key_label)).await;
        });
        Ok(())
    }
}

fn parse_name(name: &str) -> Result<SanName> {
    Ok(match name.parse::<std::net::IpAddr>() {
        Ok(ip) => SanName::Ip(ip),
        Err(_) => SanName::Dns(name.to_ascii_lowercase()),
    })
}

/// Removes a TLS key the server no longer uses; a failure only leaves an unused key behind, so it is logged.
fn retire_key(hsm: &Hsm, label: &str) {
    if let Err(e) = hsm.destroy_key_pair(label) {
        tracing::warn!(key = label, error = %e, "could not remove a retired TLS key from the token");
    }
}

/// A new key in the token, a CSR signed by it, and a tls-server certificate from our CA, recorded in the
/// inventory and the audit log like any other. If anything after the key's creation fails, the key is removed
/// again, so failing renewals cannot fill the token.
async fn issue(
    hsm: &Hsm,
    store: &Store,
    ca: &Arc<LoadedCa>,
    names: &[SanName],
    lifetime: Duration,
) -> Result<Remembered> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    let label = format!("castellan-tls-{}-{}", now.as_secs(), now.subsec_nanos());
    let csr = {
        let (hsm, label, names) = (hsm.clone(), label.clone(), names.to_vec());
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let key = hsm.generate_key_pair(&label, KeySpec::EcP256)?;
            server_csr(&hsm.signer(key), &names)
                .context("building the server's CSR")
                .inspect_err(|_| retire_key(&hsm, &label))
        })
        .await??
    };
    let request = IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: Some(lifetime) };
    let actor = Actor("castellan:serve".into());
    let issued = match issue_recorded(store, ca, request, CertificateSource::ManagedInternal, &actor).await {
        Ok(issued) => issued,
        Err(e) => {
            let (hsm, label) = (hsm.clone(), label.clone());
            tokio::task::spawn_blocking(move || retire_key(&hsm, &label)).await?;
            return Err(e.context("issuing the server's TLS certificate"));
        }
    };
    let unix = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    tracing::info!(serial = %issued.serial_hex, key = %label, "issued the server's TLS certificate");
    Ok(Remembered {
        key_label: label,
        chain_pem: issued.chain_pem,
        not_before_unix: unix(issued.not_before),
        not_after_unix: unix(issued.not_after),
    })
}

fn server_csr(signer: &HsmSigner, names: &[SanName]) -> Result<Vec<u8>> {
    let subject = x509_cert::name::Name::default();
    let mut builder = RequestBuilder::new(subject, signer)?;
    let sans = names
        .iter()
        .map(|n| {
            Ok(match n {
                SanName::Dns(d) => GeneralName::DnsName(Ia5String::new(d)?),
                SanName::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
                SanName::Ip(std::net::IpAddr::V4(v4)) => GeneralName::IpAddress(OctetString::new(v4.octets())?),
                SanName::Ip(std::net::IpAddr::V6(v6)) => GeneralName::IpAddress(OctetString::new(v6.octets())?),
            })
        })
        .collect::<Result<Vec<_>, der::Error>>()?;
    builder.add_extension(&SubjectAltName(sans))?;
    Ok(builder.build::<HsmSignature>()?.to_der()?)
}

fn certified_key(hsm: &Hsm, remembered: &Remembered) -> Result<Arc<CertifiedKey>> {
    let key = hsm.find_key_pair(&remembered.key_label)?;
    let chain = pem_certificates(&remembered.chain_pem)?;
    let signing_key: Arc<dyn SigningKey> = Arc::new(HsmTlsKey(Arc::new(hsm.signer(key))));
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// Asks every client for a certificate and verifies any it sends (chain to this CA, validity, clientAuth EKU),
/// but lets clients without one in: ACME clients have none, and the admin API decides what a certificate is
/// worth. The intermediate is an anchor too, so a client that sends only its leaf is verified like one that
/// sends leaf and intermediate.
pub fn client_verifier(
    ca: &LoadedCa,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for (what, certificate) in [("root", &ca.root), ("intermediate", &ca.intermediate)] {
        let der = certificate.to_der().with_context(|| format!("encoding the CA's {what}"))?;
        roots.add(CertificateDer::from(der)).with_context(|| format!("the CA's {what} as a client trust anchor"))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .context("the client certificate verifier")
}

fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let mut out = Vec::new();
    for block in pem.split_inclusive("-----END CERTIFICATE-----\n") {
        if block.trim().is_empty() {
            continue;
        }
        let (_, der) = der::pem::decode_vec(block.trim_start().as_bytes())
            .map_err(|e| anyhow::anyhow!("server chain PEM: {e}"))?;
        out.push(CertificateDer::from(der));
    }
    Ok(out)
}
