//! `castellan serve` as the peer: the release binary built beside this program, on its embedded defaults (SQLite
//! in a fresh data directory, a fresh SoftHSM2 dev token), resolving names through pebble-challtestsrv's DNS like
//! Pebble does, and validating http-01 on this program's responder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::http::{Trust, tls_config};
use crate::peer::{Server, StopGuard, free_tcp_port, wait_for_directory};

/// `given`, else the castellan binary of the same build profile as this benchmark.
fn binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => {
            let exe = std::env::current_exe().context("locating this program")?;
            exe.parent().map(|dir| dir.join("castellan")).context("this program has no directory")?
        }
    };
    if !path.exists() {
        bail!("{} is missing: build it with `cargo build --release -p castellan`", path.display());
    }
    Ok(path)
}

pub async fn start(http01_port: u16, given: Option<&Path>) -> Result<Server> {
    let binary = binary(given)?;
    let mut guard = StopGuard::with_dir(tempfile::tempdir()?);
    let dir = guard.dir()?.to_owned();
    let (dns_port, dns_pid) = crate::pebble::start_dns(&mut guard).await?;

    let config = format!(
        "[acme.default_policy]\ndns = {{ allow = [\".\"] }}\n\
         [acme.validation]\nhttp01_port = {http01_port}\ndns_resolver = \"127.0.0.1:{dns_port}\"\n\
         # The responder is on loopback.\ndenied_networks = []\n"
    );
    let config_path = dir.join("castellan.toml");
    std::fs::write(&config_path, config)?;
    let port = free_tcp_port()?;
    let mut serve = Command::new(&binary);
    serve
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("var"))
        .arg("--config")
        .arg(&config_path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--http-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    let pid = guard.spawn("castellan", serve)?;

    let directory = format!("https://127.0.0.1:{port}/acme/directory");
    let tls = tls_config(&Trust::AnyCertificate)?;
    // The first start runs the key ceremony in a fresh token.
    wait_for_directory(&mut guard, &directory, &tls, Duration::from_secs(60))
        .await
        .context("waiting for castellan's directory")?;
    Ok(Server {
        label: match given {
            Some(path) => format!(
                "castellan at {} (SQLite + SoftHSM2 {})",
                path.display(),
                crate::pebble::package_version("softhsm2")
            ),
            None => format!(
                "castellan {} (SQLite + SoftHSM2 {})",
                env!("CARGO_PKG_VERSION"),
                crate::pebble::package_version("softhsm2")
            ),
        },
        directory,
        pid: Some(pid),
        helpers: vec![("pebble-challtestsrv (DNS)".into(), dns_pid)],
        trust: Some(Trust::AnyCertificate),
        notes: vec![
            format!("{} serve, config {}", binary.display(), config_path.display()),
            format!("pebble-challtestsrv DNS on 127.0.0.1:{dns_port}, every name → 127.0.0.1"),
        ],
        guard,
    })
}
