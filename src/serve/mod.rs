//! `castellan serve`: wiring only. What can fail cheaply (binding the listeners, checking the configuration) is
//! done before anything is created (the dev token, the key ceremony); then the authority is opened and the servers
//! (ACME, revocation status, the admin API) and their background work start on it.

mod http;
mod routes;
mod tls;

use crate::config::{Settings, http_base};
use crate::{CaContext, open_hsm};
use anyhow::{Context, Result};
use castellan_authority::ca_dir::{CaDirectory, InitOptions, audit_ceremony};
use castellan_authority::token_identity::{IdentityKind, IdentitySpec, TokenIdentity, san_name};
use castellan_authority::urls::record_status_base;
use castellan_authority::{Actor, Authority, Clock, Operator};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
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
/// A replaced TLS key stays in the token this long, for handshakes under way.
const RETIRE_TLS_KEY_AFTER: Duration = Duration::from_secs(30);

/// The listeners, bound before anything else happens.
struct Listeners {
    https: std::net::TcpListener,
    http: std::net::TcpListener,
}

fn bind(address: SocketAddr, what: &str) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address).with_context(|| format!("listening on {what}://{address}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(settings: Settings, clock: Clock) -> Result<()> {
    // Cheap checks first: an address in use or a bad setting must not leave a new token or CA behind.
    let listeners =
        Listeners { https: bind(settings.serve.listen, "https")?, http: bind(settings.serve.http_listen, "http")? };
    settings.acme.validate().map_err(anyhow::Error::msg).context("[acme]")?;
    settings.lifecycle.validate().map_err(anyhow::Error::msg).context("[lifecycle]")?;
    settings.alerts.validate().map_err(anyhow::Error::msg).context("[alerts]")?;
    settings.revocation.check().context("[revocation]")?;
    let validation = settings.acme.validation.to_config().map_err(anyhow::Error::msg).context("[acme.validation]")?;
    let tls_names = settings.serve.tls_names.iter().map(|n| san_name(n)).collect::<Vec<_>>();

    let store = crate::open_store(&settings, &clock).await?;
    let hsm = open_hsm(&settings)?;
    let dir = CaDirectory::new(settings.ca_dir());
    let actor = Actor::castellan("serve");
    if !dir.exists() {
        tracing::info!(dir = %dir.path().display(), "no CA yet: running the key ceremony (first start)");
        let created = dir.init(&settings.ca, &hsm, &InitOptions::default(), &clock)?;
        for cert in &created {
            tracing::info!(role = cert.role, subject = %cert.subject, sha256 = %cert.sha256_fingerprint, "created");
        }
        audit_ceremony(&store, &actor, "ca.init", &created).await?;
    }
    // Leaves point where this server publishes revocation status; recorded, so that every process issuing for
    // this CA (the CLI, a replica sharing the database) names the same place.
    let status_base = http_base(listeners.http.local_addr()?, &settings.serve.tls_names);
    record_status_base(&store, &status_base, &actor).await?;
    castellan_authority::policy::record_served_default_policy(&store, settings.acme.default_policy.as_ref(), &actor)
        .await?;
    let ca = CaContext { settings: &settings, store: &store, hsm: &hsm }.load_issuing_ca(Some(&status_base)).await?;
    let authority = Authority::new(store, clock.clone(), ca);
    tokio::spawn(clock.watch_shift());

    let identity = TokenIdentity::load_or_issue(
        authority.clone(),
        IdentitySpec {
            kind: IdentityKind::TlsServer { names: tls_names },
            label_prefix: "castellan-tls",
            lifetime: Duration::from_secs(settings.serve.tls_lifetime_secs),
            state_file: settings.data_dir.join("tls").join("server.json"),
            retire_after: RETIRE_TLS_KEY_AFTER,
            actor: actor.clone(),
            name: "the server's TLS certificate",
        },
    )
    .await
    .context("the server's TLS certificate")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(tls::client_verifier(authority.ca(), Arc::clone(&provider))?)
        .with_cert_resolver(tls::resolver(&identity));
    tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    tokio::spawn(Arc::clone(&identity).renew_forever());

    let status = castellan_status::Status::start(castellan_status::StatusSetup {
        authority: authority.clone(),
        config: settings.revocation.clone(),
        state_dir: settings.data_dir.join("ocsp"),
        crl_url: settings.ca.crl_url.clone(),
        ocsp_url: settings.ca.ocsp_url.clone(),
    })
    .await
    .context("starting the CRL and OCSP service")?;
    let validator = castellan_acme_server::validation::Validator::new(validation).context("starting validation")?;
    let default_policy = settings.acme.default_policy.clone();
    let operator = Operator::with_authority(authority.clone()).with_default_policy(default_policy.clone());
    let admin = castellan_admin::router(operator);
    let scheduler = lifecycle_scheduler(&authority, &settings, default_policy)?;
    let scheduler_health = scheduler.health();
    tokio::spawn(scheduler.run());
    let acme = castellan_acme_server::router(authority.clone(), validator, settings.acme.clone());
    let ca = authority.ca();
    let app = routes::router(routes::AppState {
        root_pem: ca.root_pem.clone(),
        chain_pem: ca.chain_pem.clone(),
        issuer: ca.issuer_dn.clone(),
        token: ca.hsm().token_label().to_owned(),
        authority: authority.clone(),
        scheduler: scheduler_health,
        // A pass renews everything due before it ends: allow a long one before calling the scheduler stuck.
        scheduler_stale_secs: i64::try_from(settings.lifecycle.tick_secs.saturating_mul(10).max(120)).unwrap_or(120),
    })
    .merge(acme)
    .merge(admin)
    .merge(status.router());

    let http_listener = TcpListener::from_std(listeners.http).context("the HTTP listener")?;
    let http_address = http_listener.local_addr()?;
    tokio::spawn(http::serve(http_listener, status.router()));
    tracing::info!(address = %http_address, "serving CRLs and OCSP over HTTP");
    // Printed before the https line, which scripts and tests wait for.
    println!("serving revocation status on http://{http_address}");
    let listener = TcpListener::from_std(listeners.https).context("the HTTPS listener")?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "castellan is serving");
    // A line on stdout that scripts and tests wait for (the port is chosen by the OS when :0 is asked for).
    println!("listening on https://{address}");
    serve_https(listener, acceptor, app).await;
    tracing::info!("shutting down");
    Ok(())
}

/// The renewal scheduler of this replica, with the issuers managed certificates may name.
fn lifecycle_scheduler(
    authority: &Authority,
    settings: &Settings,
    default_policy: Option<serde_json::Value>,
) -> Result<castellan_lifecycle::Scheduler> {
    use castellan_lifecycle::{Alerter, InternalIssuer, Issuers, Scheduler};
    let internal = Arc::new(InternalIssuer::new(authority.clone(), default_policy));
    let issuers = Issuers::default().with(castellan_authority::operator::INTERNAL_ISSUER, internal);
    // Names this replica in leases and rotations: which process held a renewal, should it die holding it.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let replica = format!("{}:{}:{:08x}", host.trim(), std::process::id(), rand::random::<u32>());
    let alerter =
        Alerter::new(authority.store().clone(), authority.clock().clone(), settings.alerts.clone(), replica.clone())
            .map_err(anyhow::Error::msg)
            .context("[alerts]")?;
    let alerter = Arc::new(alerter);
    tokio::spawn(Arc::clone(&alerter).deliver_forever(Duration::from_secs(settings.lifecycle.tick_secs)));
    Ok(Scheduler::new(authority, issuers, settings.lifecycle.clone(), replica).with_alerts(alerter))
}

async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, app: axum::Router) {
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
                .map(|leaf| castellan_admin::ClientCertificate { der: Arc::from(leaf.as_ref()) });
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
