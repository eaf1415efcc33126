//! `castellan serve`: the HTTPS front of the CA.

mod http;
mod routes;
mod tls;

use crate::authority::LoadedCa;
use crate::config::Settings;
use anyhow::{Context, Result};
use castellan_hsm::Hsm;
use castellan_store::Store;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 10_000;

/// Runs the server. `http_listener` is the plain-HTTP listener for revocation status, bound before the CA was
/// loaded (its address is in the CRL and OCSP URLs the CA puts in leaves).
pub async fn run(
    settings: Settings,
    hsm: Hsm,
    ca: LoadedCa,
    store: Store,
    http_listener: Option<std::net::TcpListener>,
) -> Result<()> {
    let ca = Arc::new(ca);
    let identity = tls::ServerIdentity::load_or_issue(
        hsm.clone(),
        store.clone(),
        Arc::clone(&ca),
        &settings.serve.tls_names,
        Duration::from_secs(settings.serve.tls_lifetime_secs),
        &settings.data_dir,
    )
    .await?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(tls::client_verifier(&ca, Arc::clone(&provider))?)
        .with_cert_resolver(identity.resolver());
    tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    tokio::spawn(identity.renew_forever());

    let validation = settings.acme.validation.to_config().map_err(anyhow::Error::msg).context("[acme.validation]")?;
    let validator = castellan_acme_server::validation::Validator::new(validation).context("starting validation")?;
    let issuing = Arc::new(ca.issuing());
    let status = castellan_acme_server::status::Status::start(castellan_acme_server::status::StatusSetup {
        store: store.clone(),
        ca: Arc::clone(&issuing),
        config: settings.revocation.clone(),
        state_dir: settings.data_dir.join("ocsp"),
        crl_url: settings.ca.crl_url.clone(),
        ocsp_url: settings.ca.ocsp_url.clone(),
    })
    .await
    .context("starting the CRL and OCSP service")?;
    settings.acme.validate().map_err(anyhow::Error::msg)?;
    let eab_keys =
        castellan_acme_server::ra::eab::EabKeys::open(hsm.clone()).await.context("the token's sealing key")?;
    let admin = castellan_acme_server::admin_router(store.clone(), Some(eab_keys.clone()));
    let acme = castellan_acme_server::router(store.clone(), issuing, validator, settings.acme.clone(), Some(eab_keys));
    let app = routes::router(routes::AppState {
        root_pem: ca.root_pem.clone(),
        chain_pem: ca.chain_pem.clone(),
        issuer: ca.intermediate.tbs_certificate.subject.to_string(),
        token: hsm.token_label().to_owned(),
    })
    .merge(acme)
    .merge(admin)
    .merge(status.router());
    tokio::spawn(purge_nonces(store.clone()));
    if let Some(listener) = http_listener {
        let listener = TcpListener::from_std(listener).context("the HTTP listener")?;
        let address = listener.local_addr()?;
        tokio::spawn(http::serve(listener, status.router()));
        tracing::info!(%address, "serving CRLs and OCSP over HTTP");
        // Printed before the https line, which scripts and tests wait for.
        println!("serving revocation status on http://{address}");
    }
    let listener = TcpListener::bind(settings.serve.listen)
        .await
        .with_context(|| format!("listening on {}", settings.serve.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "castellan is serving");
    // A line on stdout that scripts and tests wait for (the port is chosen by the OS when :0 is asked for).
    println!("listening on https://{address}");

    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            // Handlers that limit by client address (newAccount) find it here.
            let client = castellan_acme_server::wfe::ClientAddr(peer.ip());
            // The verified client certificate (leaf first), for the admin API's guard; most clients send none.
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| castellan_acme_server::admin::ClientCertificate { der: Arc::from(leaf.as_ref()) });
            let app = tower::ServiceExt::map_request(app, move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(client);
                if let Some(certificate) = &certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                request
            });
            let service = TowerToHyperService::new(app);
            let mut builder = ConnectionBuilder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(20));
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down");
    Ok(())
}

/// Expired nonces are deleted every minute, so the table stays as small as the nonces in flight.
async fn purge_nonces(store: Store) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        if let Err(e) = store.purge_expired_nonces().await {
            tracing::warn!(error = %e, "purging expired nonces failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
