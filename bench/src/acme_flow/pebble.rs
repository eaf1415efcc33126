//! Pebble (Let's Encrypt's test ACME server, Debian's /usr/bin/pebble) as the peer, with pebble-challtestsrv as its
//! DNS: every name resolves to 127.0.0.1, so Pebble's http-01 validation reaches this program's responder.
//!
//! Pebble's test-only behaviours that would distort a throughput number are switched off: no random validation
//! sleep (PEBBLE_VA_NOSLEEP), no deliberately rejected nonces (PEBBLE_WFE_NONCEREJECT=0), no authorization reuse
//! (PEBBLE_AUTHZREUSE=0; every flow validates).

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use der::EncodePem;
use der::pem::LineEnding;
use p256::pkcs8::EncodePrivateKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use crate::http::{Trust, tls_config};
use crate::peer::{Server, StopGuard, free_tcp_port, free_udp_tcp_port, wait_for_directory, wait_for_port};

const PEBBLE: &str = "/usr/bin/pebble";
const CHALLTESTSRV: &str = "/usr/bin/pebble-challtestsrv";
const ENV: [(&str, &str); 3] =
    [("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0"), ("PEBBLE_AUTHZREUSE", "0")];

/// Starts pebble-challtestsrv (DNS only) and Pebble validating http-01 on `http01_port`; returns once the
/// directory answers.
pub async fn start(http01_port: u16) -> Result<Server> {
    let mut guard = StopGuard::with_dir(tempfile::tempdir()?);
    let dir = guard.dir()?.to_owned();

    // Pebble's WFE speaks only HTTPS and the Debian package ships no test certificate: make one.
    let (cert_pem, key_pem) = self_signed_localhost()?;
    std::fs::write(dir.join("cert.pem"), cert_pem)?;
    std::fs::write(dir.join("key.pem"), key_pem)?;

    let (dns_port, dns_pid) = start_dns(&mut guard).await?;

    let listen_port = free_tcp_port()?;
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{listen_port}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_tcp_port()?),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": http01_port,
            // Unused: the benchmark answers http-01 only. Pointed at a port nothing listens on.
            "tlsPort": free_tcp_port()?,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.join("pebble-config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    let mut pebble = Command::new(PEBBLE);
    pebble.arg("-config").arg(&config_path).args(["-dnsserver", &format!("127.0.0.1:{dns_port}")]).envs(ENV);
    let pid = guard.spawn("pebble", pebble)?;

    let directory = format!("https://127.0.0.1:{listen_port}/dir");
    let tls = tls_config(&Trust::AnyCertificate)?;
    wait_for_directory(&mut guard, &directory, &tls, Duration::from_secs(30))
        .await
        .context("waiting for Pebble's directory")?;

    let env: Vec<String> = ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(Server {
        label: format!("Pebble {}", package_version("pebble")),
        directory,
        pid: Some(pid),
        helpers: vec![("pebble-challtestsrv (DNS)".into(), dns_pid)],
        trust: Some(Trust::AnyCertificate),
        notes: vec![
            format!("pebble {} with {}; http-01 on port {http01_port}", config_path.display(), env.join(" ")),
            format!("pebble-challtestsrv DNS on 127.0.0.1:{dns_port}, every name → 127.0.0.1"),
        ],
        guard,
    })
}

/// pebble-challtestsrv as a DNS server only, answering 127.0.0.1 for every name; returns (port, pid).
pub async fn start_dns(guard: &mut StopGuard) -> Result<(u16, u32)> {
    let dns_port = free_udp_tcp_port()?;
    let mut dns = Command::new(CHALLTESTSRV);
    dns.args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
        .args(["-management", &format!("127.0.0.1:{}", free_tcp_port()?)])
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
    let dns_pid = guard.spawn("pebble-challtestsrv", dns)?;
    // It serves DNS over TCP on the same port as UDP; TCP is the one we can probe without a DNS client.
    wait_for_port(guard, dns_port, Duration::from_secs(20)).await?;
    Ok((dns_port, dns_pid))
}

/// The installed Debian package's version, for the report.
pub fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(version unknown)".into())
}

/// A self-signed P-256 certificate for localhost and 127.0.0.1, and its PKCS#8 key, both PEM.
fn self_signed_localhost() -> Result<(String, String)> {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())?;
    let mut builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::new(&[1])?,
        Validity::from_now(Duration::from_secs(7 * 86400))?,
        "CN=pebble bench".parse()?,
        spki,
        &key,
    )?;
    builder.add_extension(&SubjectAltName(vec![
        GeneralName::DnsName(der::asn1::Ia5String::new("localhost")?),
        GeneralName::IpAddress(der::asn1::OctetString::new(vec![127, 0, 0, 1])?),
    ]))?;
    let cert = builder.build::<p256::ecdsa::DerSignature>()?;
    Ok((cert.to_pem(LineEnding::LF)?, key.to_pkcs8_pem(LineEnding::LF)?.to_string()))
}
