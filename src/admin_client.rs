//! A small HTTPS client for `castellan admin …`: one request per command over rustls (ring), trusting the CA's
//! root, with the API token as a bearer credential.

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one admin request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct AdminClient {
    base: hyper::Uri,
    token: String,
    tls: Arc<rustls::ClientConfig>,
}

/// A response: status and JSON body (null when empty).
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl AdminClient {
    pub fn new(url: &str, token: String, root_pem: &Path) -> Result<AdminClient> {
        let base: hyper::Uri = url.parse().with_context(|| format!("admin URL {url:?}"))?;
        if base.scheme_str() != Some("https") {
            bail!("the admin URL must be https://, not {url:?}");
        }
        let pem = std::fs::read(root_pem).with_context(|| format!("reading the CA root {}", root_pem.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert: rustls::pki_types::CertificateDer<'static> = cert.context("a certificate in the root file")?;
            roots.add(cert).context("a root the TLS library refuses")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(AdminClient { base, token, tls: Arc::new(tls) })
    }

    /// `method` `path` (under /admin, with any query), with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<Answer> {
        tokio::time::timeout(TIMEOUT, self.call_inner(method, path, body))
            .await
            .context("the admin API did not answer in time")?
    }

    async fn call_inner(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<Answer> {
        let host = self.base.host().context("the admin URL has no host")?.to_owned();
        let port = self.base.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).context("server name")?;
        let tls = TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp).await.context("TLS handshake")?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("/admin{path}"))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))?;
        let response = sender.send_request(request).await.context("sending the request")?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok(Answer { status, body })
    }
}
