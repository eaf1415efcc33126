//! tls-alpn-01 (RFC 8737; IP identifiers RFC 8738 §6).
//!
//! A TLS handshake with `<identifier>:<tls_alpn01_port>` offering only the ALPN protocol "acme-tls/1", with SNI the
//! identifier (for an IP identifier, its reverse-DNS name). The server must negotiate "acme-tls/1" and present a
//! certificate with exactly one subjectAltName, the identifier, and a critical acmeIdentifier extension holding
//! SHA-256 of the key authorization. The certificate is self-signed by design, so no chain is checked; the handshake
//! signature is (see [`super::tls`]).

use std::fmt::Write as _;
use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
use der::Decode;
use der::asn1::OctetString;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::connect;
use super::{Host, Inner, ValidationError, ValidationRecord};

/// The ALPN protocol of RFC 8737 §6.2.
pub(super) const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// id-pe-acmeIdentifier (RFC 8737 §6.1).
const ID_PE_ACME_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

pub(super) async fn validate(
    inner: &Inner,
    identifier: &Host,
    key_authorization: &str,
) -> Result<ValidationRecord, ValidationError> {
    let port = inner.config.tls_alpn01_port;
    let addresses = connect::addresses(inner, identifier).await?;
    let (stream, address) =
        connect::connect(inner, &addresses, port).await.map_err(|err| err.for_host(identifier, port))?;
    let sni = match identifier {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => reverse_dns_name(*ip),
    };
    let server_name = ServerName::try_from(sni.clone()).map_err(|err| ValidationError::Tls {
        host: identifier.to_string(),
        address,
        detail: format!("{sni:?} is not usable as SNI: {err}"),
    })?;
    let tls = tokio_rustls::TlsConnector::from(inner.tls_alpn.clone())
        .connect(server_name, stream)
        .await
        .map_err(|err| ValidationError::Tls { host: identifier.to_string(), address, detail: err.to_string() })?;
    let (_, connection) = tls.get_ref();
    let response_error =
        |detail: String| ValidationError::TlsAlpnResponse { identifier: identifier.to_string(), address, detail };
    if connection.alpn_protocol() != Some(ACME_TLS_1) {
        let negotiated = connection.alpn_protocol().map(String::from_utf8_lossy);
        return Err(response_error(format!(
            "the server did not negotiate the ALPN protocol \"acme-tls/1\" (negotiated: {})",
            negotiated.map_or_else(|| "none".to_owned(), |p| format!("{p:?}"))
        )));
    }
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| response_error("the server presented no certificate".to_owned()))?;
    check_certificate(leaf.as_ref(), identifier, key_authorization).map_err(response_error)?;
    let mut record = ValidationRecord::new(identifier);
    record.port = Some(port);
    record.addresses_resolved = addresses;
    record.address_used = Some(address.ip());
    Ok(record)
}

/// The reverse-DNS name of `ip` (RFC 8738 §6): `4.3.2.1.in-addr.arpa`, or 32 nibbles then `ip6.arpa`.
fn reverse_dns_name(ip: IpAddr) -> String {
    let mut name = String::new();
    match ip {
        IpAddr::V4(v4) => {
            for octet in v4.octets().iter().rev() {
                let _ = write!(name, "{octet}.");
            }
            name.push_str("in-addr.arpa");
        }
        IpAddr::V6(v6) => {
            for octet in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", octet & 0xf, octet >> 4);
            }
            name.push_str("ip6.arpa");
        }
    }
    name
}

/// Checks the leaf certificate against RFC 8737 §3; the error is the detail for the ACME client.
fn check_certificate(der: &[u8], identifier: &Host, key_authorization: &str) -> Result<(), String> {
    let cert = Certificate::from_der(der).map_err(|err| format!("the certificate cannot be parsed: {err}"))?;
    let extensions = cert.tbs_certificate.extensions.as_deref().unwrap_or_default();

    let mut sans = extensions.iter().filter(|ext| ext.extn_id == ID_CE_SUBJECT_ALT_NAME);
    let san = match (sans.next(), sans.next()) {
        (None, _) => return Err(format!("the certificate has no subjectAltName; it must name only {identifier}")),
        (Some(_), Some(_)) => return Err("the certificate has more than one subjectAltName extension".to_owned()),
        (Some(san), None) => san,
    };
    let SubjectAltName(names) = SubjectAltName::from_der(san.extn_value.as_bytes())
        .map_err(|err| format!("the certificate's subjectAltName cannot be parsed: {err}"))?;
    match names.as_slice() {
        [name] if names_identifier(name, identifier) => {}
        [name] => return Err(format!("the certificate names {}, not {identifier}", describe(name))),
        names => {
            let listed: Vec<String> = names.iter().map(describe).collect();
            return Err(format!(
                "the certificate must name exactly one identifier, {identifier}, but names {} ({})",
                names.len(),
                listed.join(", ")
            ));
        }
    }

    let mut acme = extensions.iter().filter(|ext| ext.extn_id == ID_PE_ACME_IDENTIFIER);
    let acme = match (acme.next(), acme.next()) {
        (None, _) => return Err("the certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)".to_owned()),
        (Some(_), Some(_)) => return Err("the certificate has more than one acmeIdentifier extension".to_owned()),
        (Some(ext), None) => ext,
    };
    if !acme.critical {
        return Err("the acmeIdentifier extension is not marked critical (RFC 8737 §3 requires it)".to_owned());
    }
    let digest = OctetString::from_der(acme.extn_value.as_bytes())
        .map_err(|_| "the acmeIdentifier extension's value is not a DER OCTET STRING".to_owned())?;
    let expected = Sha256::digest(key_authorization.as_bytes());
    if digest.as_bytes() != &expected[..] {
        return Err(format!(
            "the acmeIdentifier extension holds {}, expected SHA-256 of the key authorization {key_authorization:?}, {}",
            hex::encode(digest.as_bytes()),
            hex::encode(expected)
        ));
    }
    Ok(())
}

/// Whether `name` is exactly `identifier`: a dNSName (case-insensitively) or an iPAddress of the same family.
fn names_identifier(name: &GeneralName, identifier: &Host) -> bool {
    match (name, identifier) {
        (GeneralName::DnsName(dns), Host::Name(expected)) => dns.as_str().eq_ignore_ascii_case(expected),
        (GeneralName::IpAddress(octets), Host::Ip(IpAddr::V4(v4))) => octets.as_bytes() == v4.octets(),
        (GeneralName::IpAddress(octets), Host::Ip(IpAddr::V6(v6))) => octets.as_bytes() == v6.octets(),
        _ => false,
    }
}

fn describe(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(dns) => format!("DNS:{}", dns.as_str()),
        GeneralName::IpAddress(octets) => match octets.as_bytes() {
            &[a, b, c, d] => format!("IP:{}", IpAddr::from([a, b, c, d])),
            bytes => match <[u8; 16]>::try_from(bytes) {
                Ok(v6) => format!("IP:{}", IpAddr::from(v6)),
                Err(_) => format!("IP:<{} bytes>", bytes.len()),
            },
        },
        GeneralName::Rfc822Name(email) => format!("email:{}", email.as_str()),
        GeneralName::UniformResourceIdentifier(uri) => format!("URI:{}", uri.as_str()),
        _ => "a non-DNS, non-IP name".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use castellan_acme_proto::types::Identifier;
    use der::Encode;
    use der::asn1::OctetString;
    use x509_cert::ext::pkix::name::GeneralName;

    use super::super::testutil::*;
    use super::super::{ChallengeKind, ValidationConfig, Validator};
    use super::*;

    const KA_TOKEN: &str = "tok-1";

    fn good_extensions(identifier: GeneralName) -> Vec<x509_cert::ext::Extension> {
        vec![san_extension(vec![identifier]), acme_extension(&key_authorization(KA_TOKEN), true)]
    }

    async fn run_with(
        server: rustls::ServerConfig,
        identifier: Identifier,
    ) -> (Result<ValidationRecord, ValidationError>, TestTls) {
        let dns = TestDns::start(&[("web.va.test", TestRecord::A(Ipv4Addr::LOCALHOST))]).await;
        let tls = TestTls::start(server).await;
        let config = ValidationConfig { tls_alpn01_port: tls.port, ..test_config(dns.addr) };
        let result =
            Validator::new(config).unwrap().validate(&request(ChallengeKind::TlsAlpn01, identifier, KA_TOKEN)).await;
        (result, tls)
    }

    fn alpn_server(cert: &TestCert) -> rustls::ServerConfig {
        let mut config = server_config(cert);
        config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
        config
    }

    async fn run(extensions: Vec<x509_cert::ext::Extension>) -> Result<ValidationRecord, ValidationError> {
        run_with(alpn_server(&self_signed(extensions)), Identifier::dns("web.va.test")).await.0
    }

    fn assert_unauthorized(result: Result<ValidationRecord, ValidationError>, detail: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized", "{err}");
        let text = err.to_string();
        assert!(text.starts_with("tls-alpn-01 for web.va.test at 127.0.0.1:"), "{text}");
        assert!(text.ends_with(detail), "{text}\n  does not end with\n{detail}");
    }

    #[tokio::test]
    async fn valid_certificate_over_tls13_and_tls12() {
        let cert = self_signed(good_extensions(dns_name("web.va.test")));
        let (result, server) = run_with(alpn_server(&cert), Identifier::dns("web.va.test")).await;
        let record = result.unwrap();
        assert_eq!(record.hostname, "web.va.test");
        assert_eq!(record.port, Some(server.port));
        assert_eq!(record.address_used, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(server.sni(), vec![Some("web.va.test".to_owned())]);

        // TLS 1.2 exercises the VA's own TLS 1.2 signature check.
        let mut tls12 = server_config_with_versions(&cert, &[&rustls::version::TLS12]);
        tls12.alpn_protocols = vec![ACME_TLS_1.to_vec()];
        run_with(tls12, Identifier::dns("web.va.test")).await.0.unwrap();
    }

    #[tokio::test]
    async fn handshake_signature_is_checked() {
        // Any certificate is accepted, but the server must hold its key: TLS 1.3 and TLS 1.2 alike.
        let impostor = self_signed(good_extensions(dns_name("web.va.test"))).with_wrong_key();
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let mut config = server_config_with_versions(&impostor, versions);
            config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
            let (result, _) = run_with(config, Identifier::dns("web.va.test")).await;
            let err = result.unwrap_err();
            assert_eq!(err.problem_type(), "tls", "{err}");
            assert!(err.to_string().contains("BadSignature"), "{err}");
        }
    }

    #[tokio::test]
    async fn ip_identifier_uses_reverse_dns_sni_and_an_ip_san() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let cert = self_signed(good_extensions(GeneralName::from(ip)));
        let (result, server) = run_with(alpn_server(&cert), Identifier::ip("127.0.0.1")).await;
        result.unwrap();
        assert_eq!(server.sni(), vec![Some("1.0.0.127.in-addr.arpa".to_owned())]);
    }

    #[tokio::test]
    async fn no_alpn_is_unauthorized() {
        let cert = self_signed(good_extensions(dns_name("web.va.test")));
        let (result, _) = run_with(server_config(&cert), Identifier::dns("web.va.test")).await;
        assert_unauthorized(result, "the server did not negotiate the ALPN protocol \"acme-tls/1\" (negotiated: none)");
    }

    #[tokio::test]
    async fn missing_extension() {
        let result = run(vec![san_extension(vec![dns_name("web.va.test")])]).await;
        assert_unauthorized(result, "the certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)");
    }

    #[tokio::test]
    async fn non_critical_extension() {
        let result = run(vec![
            san_extension(vec![dns_name("web.va.test")]),
            acme_extension(&key_authorization(KA_TOKEN), false),
        ])
        .await;
        assert_unauthorized(result, "the acmeIdentifier extension is not marked critical (RFC 8737 §3 requires it)");
    }

    #[tokio::test]
    async fn wrong_hash() {
        let result = run(vec![san_extension(vec![dns_name("web.va.test")]), acme_extension("other.ka", true)]).await;
        let expected = hex::encode(Sha256::digest(key_authorization(KA_TOKEN).as_bytes()));
        let got = hex::encode(Sha256::digest(b"other.ka"));
        assert_unauthorized(
            result,
            &format!(
                "the acmeIdentifier extension holds {got}, expected SHA-256 of the key authorization \"tok-1.{THUMBPRINT}\", {expected}"
            ),
        );
    }

    #[tokio::test]
    async fn extension_not_an_octet_string() {
        // The raw digest, without the OCTET STRING wrapping RFC 8737 §3 specifies.
        let digest = Sha256::digest(key_authorization(KA_TOKEN).as_bytes()).to_vec();
        let result = run(vec![san_extension(vec![dns_name("web.va.test")]), acme_extension_raw(digest, true)]).await;
        assert_unauthorized(result, "the acmeIdentifier extension's value is not a DER OCTET STRING");
    }

    #[tokio::test]
    async fn wrong_san() {
        let result = run(good_extensions(dns_name("other.va.test"))).await;
        assert_unauthorized(result, "the certificate names DNS:other.va.test, not web.va.test");
    }

    #[tokio::test]
    async fn extra_san() {
        let result = run(vec![
            san_extension(vec![dns_name("web.va.test"), dns_name("other.va.test")]),
            acme_extension(&key_authorization(KA_TOKEN), true),
        ])
        .await;
        assert_unauthorized(
            result,
            "the certificate must name exactly one identifier, web.va.test, but names 2 (DNS:web.va.test, DNS:other.va.test)",
        );
    }

    #[tokio::test]
    async fn no_san() {
        let result = run(vec![acme_extension(&key_authorization(KA_TOKEN), true)]).await;
        assert_unauthorized(result, "the certificate has no subjectAltName; it must name only web.va.test");
    }

    #[tokio::test]
    async fn handshake_failure_is_a_tls_problem() {
        // A server that speaks no TLS: it answers the ClientHello with plain text.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _server = spawn_abort_on_drop(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let dns = TestDns::start(&[("web.va.test", TestRecord::A(Ipv4Addr::LOCALHOST))]).await;
        let config = ValidationConfig { tls_alpn01_port: port, ..test_config(dns.addr) };
        let err = Validator::new(config)
            .unwrap()
            .validate(&request(ChallengeKind::TlsAlpn01, Identifier::dns("web.va.test"), KA_TOKEN))
            .await
            .unwrap_err();
        assert_eq!(err.problem_type(), "tls");
        assert!(err.to_string().starts_with(&format!("TLS handshake with web.va.test (127.0.0.1:{port}) failed: ")));
    }

    #[test]
    fn certificate_checks_without_a_handshake() {
        let ka = key_authorization(KA_TOKEN);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let cert = self_signed(good_extensions(GeneralName::from(v6)));
        check_certificate(cert.cert.as_ref(), &Host::Ip(v6), &ka).unwrap();
        // An IPv4 SAN does not match an IPv6 identifier, nor a DNS name an IP.
        let err = check_certificate(cert.cert.as_ref(), &Host::Ip("127.0.0.1".parse().unwrap()), &ka).unwrap_err();
        assert_eq!(err, "the certificate names IP:2001:db8::1, not 127.0.0.1");
        let err = check_certificate(cert.cert.as_ref(), &Host::Name("web.va.test".into()), &ka).unwrap_err();
        assert_eq!(err, "the certificate names IP:2001:db8::1, not web.va.test");
        // Case-insensitive DNS names.
        let cert = self_signed(good_extensions(dns_name("WEB.va.test")));
        check_certificate(cert.cert.as_ref(), &Host::Name("web.va.test".into()), &ka).unwrap();
        // A 20-byte digest.
        let short = OctetString::new(vec![0u8; 20]).unwrap().to_der().unwrap();
        let cert = self_signed(vec![san_extension(vec![dns_name("web.va.test")]), acme_extension_raw(short, true)]);
        let err = check_certificate(cert.cert.as_ref(), &Host::Name("web.va.test".into()), &ka).unwrap_err();
        assert!(err.starts_with("the acmeIdentifier extension holds 0000"), "{err}");
        // Garbage.
        let err = check_certificate(b"\x30\x03\x02\x01\x01", &Host::Name("web.va.test".into()), &ka).unwrap_err();
        assert!(err.starts_with("the certificate cannot be parsed"), "{err}");
    }

    #[test]
    fn reverse_dns_names() {
        assert_eq!(reverse_dns_name("192.0.2.1".parse().unwrap()), "1.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_dns_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
