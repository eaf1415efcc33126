//! TLS client configuration for the VA: any certificate is accepted, but the handshake signature is checked.
//!
//! tls-alpn-01 certificates are self-signed by design (RFC 8737 §3), and https redirect hops in http-01 are not
//! certificate-checked either (like Boulder: the key authorization in the body is the proof). The handshake
//! signature is still verified against the presented certificate's key with the ring provider, so the peer holds
//! the key of the certificate the VA then inspects.
//!
//! The check uses the key alone (`verify_tls13_signature_with_raw_key`, and its TLS 1.2 equivalent below) rather
//! than rustls' `verify_tls12_signature`/`verify_tls13_signature`: those parse the certificate with webpki, which
//! rejects unknown critical extensions, and a tls-alpn-01 certificate carries a critical acmeIdentifier extension.

use std::sync::Arc;

use der::asn1::AnyRef;
use der::{Decode, Encode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, PeerMisbehaved, SignatureScheme};
use x509_cert::Certificate;

/// A client configuration offering `alpn`, with no session resumption (every validation sees a full handshake and
/// the server's current certificate).
pub(super) fn client_config(alpn: Vec<Vec<u8>>) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate { algorithms: provider.signature_verification_algorithms });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        // As rustls' verify_tls12_signature: any algorithm mapped to the scheme whose key type matches the key.
        let spki = spki_der(cert)?;
        let key = spki::SubjectPublicKeyInfoRef::from_der(&spki).map_err(|_| bad_encoding())?;
        let key_algorithm = key.algorithm.to_der().map_err(|_| bad_encoding())?;
        let key_algorithm = AnyRef::from_der(&key_algorithm).map_err(|_| bad_encoding())?;
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let algorithm = candidates
            .iter()
            .find(|algorithm| algorithm.public_key_alg_id().as_ref() == key_algorithm.value())
            .ok_or(Error::InvalidCertificate(CertificateError::BadSignature))?;
        algorithm
            .verify_signature(key.subject_public_key.raw_bytes(), message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let spki = spki_der(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The DER SubjectPublicKeyInfo of `cert` (any extensions, critical or not).
fn spki_der(cert: &CertificateDer<'_>) -> Result<Vec<u8>, Error> {
    let parsed = Certificate::from_der(cert.as_ref()).map_err(|_| bad_encoding())?;
    parsed.tbs_certificate.subject_public_key_info.to_der().map_err(|_| bad_encoding())
}

fn bad_encoding() -> Error {
    Error::InvalidCertificate(CertificateError::BadEncoding)
}
