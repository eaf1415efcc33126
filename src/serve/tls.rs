//! The HTTPS listener's TLS: the server's identity is a `castellan_authority` token identity (a key in the token,
//! a certificate from our CA, renewed at two thirds of its life); this adapts it to rustls and swaps it in without
//! a restart.
//!
//! rustls signs handshakes through `HsmTlsKey`, so the TLS private key never leaves the token either. The
//! signature is a blocking call on the connection's task; on SoftHSM it takes ~50 µs, about what a software
//! ECDSA signature costs, so it is not moved to the blocking pool.

use anyhow::{Context, Result};
use castellan_authority::IssuingCa;
use castellan_authority::token_identity::{Identity, TokenIdentity};
use castellan_hsm::HsmSigner;
use der::Encode;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, Signer as TlsSigner, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use std::sync::{Arc, RwLock};

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

/// Hands every handshake the current certificate; a renewal replaces it.
#[derive(Debug)]
pub struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner())))
    }
}

fn certified_key(identity: &Identity) -> Arc<CertifiedKey> {
    let chain = identity.chain_der.iter().map(|der| CertificateDer::from(der.clone())).collect();
    let signing_key: Arc<dyn SigningKey> = Arc::new(HsmTlsKey(Arc::clone(&identity.signer)));
    Arc::new(CertifiedKey::new(chain, signing_key))
}

/// A resolver serving `identity`'s current certificate, following its renewals. Call within a Tokio runtime.
pub fn resolver(identity: &TokenIdentity) -> Arc<CurrentCertificate> {
    let current = Arc::new(CurrentCertificate(RwLock::new(certified_key(&identity.current()))));
    let mut renewals = identity.subscribe();
    let swap = Arc::clone(&current);
    tokio::spawn(async move {
        while renewals.changed().await.is_ok() {
            let identity = Arc::clone(&renewals.borrow_and_update());
            *swap.0.write().unwrap_or_else(|p| p.into_inner()) = certified_key(&identity);
            tracing::info!(key = %identity.key_label, "serving the renewed TLS certificate");
        }
    });
    current
}

/// Asks every client for a certificate and verifies any it sends (chain to this CA, validity, clientAuth EKU),
/// but lets clients without one in: ACME clients have none, and the admin API decides what a certificate is
/// worth. The intermediate is an anchor too, so a client that sends only its leaf is verified like one that
/// sends leaf and intermediate.
pub fn client_verifier(
    ca: &IssuingCa,
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
