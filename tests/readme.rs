//! The README's examples, run as a newcomer pastes them, one after the other in one shell: curl for the root,
//! certbot and lego for `app.localhost` against a CA running the development configuration, then the command line,
//! groups and EAB, and the admin API. Only the addresses change: the test's server listens on free ports instead of
//! 8443 and 5002, so tests can run side by side. (The key ceremony's block is left out: the server made the CA.)

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peers::free_port;
use common::{Server, run, text, write};
use std::process::Command;

/// The shell blocks of the README section headed `heading`, each command whole (continuation lines joined), with
/// comments dropped.
fn commands_of(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).unwrap_or_else(|| panic!("the README has no {heading:?}"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut out = Vec::new();
    for block in section.split("```sh\n").skip(1) {
        let block = &block[..block.find("```").expect("a closed block")];
        let mut command = String::new();
        for line in block.lines() {
            let line = line.split("  #").next().unwrap_or(line).trim_end();
            match line.strip_suffix('\\') {
                Some(part) => command.push_str(part),
                None => {
                    command.push_str(line);
                    if !command.trim().is_empty() {
                        out.push(command.trim().to_owned());
                    }
                    command.clear();
                }
            }
        }
    }
    out
}

#[test]
fn the_readme_examples_work_as_pasted() {
    let readme = include_str!("../README.md");
    let mut commands = Vec::new();
    let headings = [
        "## Trying it",
        "## The command line",
        "## Certificates Castellan renews",
        "## Who may have which names",
        "## The admin API",
    ];
    for heading in headings {
        commands.extend(commands_of(readme, heading).into_iter().filter(|c| !c.starts_with("castellan ca ")));
    }
    assert!(commands.iter().any(|c| c.starts_with("REQUESTS_CA_BUNDLE") && c.contains("certbot certonly")));
    assert!(commands.iter().any(|c| c.starts_with("LEGO_CA_CERTIFICATES") && c.contains("lego ")));

    let dir = tempfile::tempdir().expect("tempdir");
    let (http01, alpn) = (free_port(), free_port());
    let dev = include_str!("../scripts/dev-castellan.toml");
    assert!(dev.contains("http01_port = 5002") && dev.contains("tls_alpn01_port = 5001"), "{dev}");
    let config = dev
        .replace("http01_port = 5002", &format!("http01_port = {http01}"))
        .replace("tls_alpn01_port = 5001", &format!("tls_alpn01_port = {alpn}"));
    let config = write(dir.path(), "castellan.toml", config);
    let server = Server::start(&dir.path().join("var"), Some(&config));
    // One shell, so what one command exports the next sees; `castellan` on the PATH as the README says.
    let binary_dir = std::path::Path::new(env!("CARGO_BIN_EXE_castellan")).parent().expect("target dir");
    let path = format!("{}:{}", binary_dir.display(), std::env::var("PATH").unwrap_or_default());
    let script: Vec<String> = commands
        .iter()
        .map(|c| c.replace("https://127.0.0.1:8443", &server.url("")).replace("5002", &http01.to_string()))
        .map(|c| format!("echo '$ {}' >&2\n{c}", c.replace('\'', "'\\''")))
        .collect();
    let out = run(Command::new("sh")
        .arg("-ec")
        .arg(script.join("\n"))
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("CASTELLAN_CONFIG"));
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}\nserver:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created group payments") && stdout.contains("hmac key:"), "{stdout}");
    // What the clients got chains to the root, for the name they asked for, and says where its status is.
    for leaf in ["var/certbot/live/app.localhost/cert.pem", "var/lego/certificates/app.localhost.crt"] {
        let shown = run(Command::new("openssl").current_dir(dir.path()).args(["x509", "-noout", "-text", "-in", leaf]));
        let shown = text(&shown.stdout);
        assert!(
            shown.contains("DNS:app.localhost") && shown.contains("OCSP - URI:http://127.0.0.1:"),
            "{leaf}: {shown}"
        );
    }
    let verified = run(Command::new("openssl").current_dir(dir.path()).args([
        "verify",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "var/certbot/live/app.localhost/chain.pem",
        "var/certbot/live/app.localhost/cert.pem",
    ]));
    assert!(verified.status.success(), "{}{}", text(&verified.stdout), text(&verified.stderr));
}
