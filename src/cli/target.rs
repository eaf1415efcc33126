//! Where an operator command goes: a server's admin API over HTTPS (`--server`), or the same router in process on
//! this machine's database (and, for the actions that need it, its token).

use super::Context;
use anyhow::{Context as _, Result, bail};
use castellan_authority::{Actor, Operator};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one admin request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach a running server instead of the local database.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// Operate through a running server's admin API (https://host:port) instead of this machine's database.
    #[arg(long, global = true, env = "CASTELLAN_SERVER")]
    pub server: Option<String>,
    /// An admin API token (cst_…), for --server.
    #[arg(long, global = true, env = "CASTELLAN_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A client certificate chain (PEM) whose SAN is spiffe://castellan/admin/<name>, for --server instead of a
    /// token; with --client-key.
    #[arg(long, global = true, env = "CASTELLAN_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, env = "CASTELLAN_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// The CA root to trust for --server (default: the data directory's ca/root.pem).
    #[arg(long, global = true, env = "CASTELLAN_SERVER_CA")]
    pub server_ca: Option<PathBuf>,
}

pub enum Target {
    Local(axum::Router),
    Remote(RemoteApi),
}

impl Target {
    /// The server `--server` names, else the local database (opening the CA's token when `needs_token`).
    pub async fn open(context: &Context, needs_token: bool) -> Result<Target> {
        if context.remote.server.is_some() {
            return Ok(Target::Remote(RemoteApi::new(context)?));
        }
        let settings = &context.settings;
        let store = crate::open_store(settings, &context.clock).await?;
        let operator = if needs_token {
            let hsm = crate::open_hsm(settings)?;
            let ca = crate::CaContext { settings, store: &store, hsm: &hsm };
            Operator::with_authority(ca.authority(&context.clock).await?)
        } else {
            Operator::new(store)
        };
        let operator = operator.with_default_policy(settings.acme.default_policy.clone());
        Ok(Target::Local(castellan_admin::local_router(operator, Actor::cli_user())))
    }

    /// `method` `path` (under /admin, with any query), with an optional JSON body; the answer's JSON, or an error
    /// carrying the API's detail.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, answer) = match self {
            Target::Local(router) => local(router, method, path, body).await?,
            Target::Remote(api) => tokio::time::timeout(TIMEOUT, api.call(method, path, body))
                .await
                .context("the admin API did not answer in time")??,
        };
        if !(200..300).contains(&status) {
            let detail = answer["detail"].as_str().map(str::to_owned).unwrap_or_else(|| answer.to_string());
            bail!("{method} /admin{path}: HTTP {status}: {detail}");
        }
        Ok(answer)
    }
}

fn request(method: &str, uri: &str, body: Option<Value>) -> Result<hyper::Request<Full<Bytes>>> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    Ok(hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))?)
}

fn parse(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
}

async fn local(router: &axum::Router, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let request = request(method, &format!("{}{path}", castellan_admin::PREFIX), body)?.map(axum::body::Body::new);
    let response = tower::ServiceExt::oneshot(router.clone(), request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, parse(&bytes)))
}

/// One request per command over rustls (ring), trusting the CA's root, with a token or a client certificate.
pub struct RemoteApi {
    base: hyper::Uri,
    token: Option<String>,
    tls: Arc<rustls::ClientConfig>,
}

impl RemoteApi {
    fn new(context: &Context) -> Result<RemoteApi> {
        let remote = &context.remote;
        let url = remote.server.as_deref().unwrap_or_default();
        let base: hyper::Uri = url.parse().with_context(|| format!("--server {url:?}"))?;
        if base.scheme_str() != Some("https") {
            bail!("--server must be an https:// URL, not {url:?}");
        }
        let root_pem = remote.server_ca.clone().unwrap_or_else(|| context.settings.ca_dir().join("root.pem"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&root_pem)
            .with_context(|| format!("reading the CA root {} (--server-ca)", root_pem.display()))?
        {
            roots.add(cert.context("a certificate in the root file")?).context("a root the TLS library refuses")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let tls = match (&remote.client_cert, &remote.client_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .with_context(|| format!("reading {}", cert.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
                let key =
                    PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the key {}", key.display()))?;
                builder.with_client_auth_cert(chain, key).context("the client certificate and key")?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => bail!("--client-cert and --client-key go together"),
        };
        if remote.token.is_none() && remote.client_cert.is_none() {
            bail!("--server needs a credential: --token (CASTELLAN_ADMIN_TOKEN) or --client-cert and --client-key");
        }
        Ok(RemoteApi { base, token: remote.token.clone(), tls: Arc::new(tls) })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        // As written in the URL ("[::1]" bracketed), for the Host header; bare for connecting and for SNI.
        let written = self.base.host().context("the server URL has no host")?;
        let host = written.trim_matches(['[', ']']).to_owned();
        let port = self.base.port_u16().unwrap_or(443);
        let tcp =
            TcpStream::connect((host.as_str(), port)).await.with_context(|| format!("connecting to {host}:{port}"))?;
        let name = ServerName::try_from(host.clone()).context("server name")?;
        let tls = TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp).await.context("TLS handshake")?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        let mut request = request(method, &format!("{}{path}", castellan_admin::PREFIX), body)?;
        let headers = request.headers_mut();
        headers.insert(hyper::header::HOST, format!("{written}:{port}").parse()?);
        if let Some(token) = &self.token {
            headers.insert(hyper::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
        }
        let response = sender.send_request(request).await.context("sending the request")?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, parse(&bytes)))
    }
}
