//! A real authoritative DNS server for the tests: BIND 9 (`named`) serving the zone `castellan.test` on a free
//! loopback port, changed through RFC 2136 dynamic updates (`nsupdate`). The CA's validator resolves through it and
//! the ACME clients' dns-01 hooks write to it, so a dns-01 test exercises real DNS on both sides.
//!
//! Every name in the zone resolves to 127.0.0.1 (apex and wildcard A records), so http-01 and tls-alpn-01 names
//! reach the client's challenge server on loopback. Caveat of DNS wildcards: once a record exists at
//! `x.sub.castellan.test`, `sub.castellan.test` exists too (empty) and no longer matches the wildcard; use
//! [`TestDns::set_a`] for such names.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::peers::{Daemon, free_port, run_limited, tail};

/// The zone the server is authoritative for.
pub const ZONE: &str = "castellan.test";

/// The dns-01 hook script for certbot and lego (see the script for its interface).
const HOOK: &str = include_str!("../fixtures/dns-hook.sh");

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `named`, killed when dropped.
pub struct TestDns {
    // Declared before `dir` so named is killed before its directory is removed.
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
}

impl TestDns {
    /// Starts named and waits until it answers for the zone. Runs as the current user (root or not): it needs no
    /// privileged port, writes only to its tempdir, and has no control channel.
    pub fn start() -> TestDns {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            // A fresh port each time: the usual reason for a failed start is another process taking ours.
            match TestDns::try_start(free_port()) {
                Ok(dns) => return dns,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("named did not start in {START_ATTEMPTS} attempts:\n{}", failures.join("\n\n"));
    }

    fn try_start(port: u16) -> Result<TestDns, String> {
        let dir = tempfile::tempdir().expect("named tempdir");
        let conf = write_config(dir.path(), port);
        // -g: foreground, log to stderr; -4: no IPv6 sockets; -n 1: one worker, the machine is small and shared.
        let mut daemon = Daemon::spawn("named", Command::new("named").args(["-g", "-4", "-n", "1", "-c"]).arg(&conf));
        // named keeps running when it cannot bind its port, and then dig could reach whoever holds the port.
        let mut in_use = false;
        daemon.wait_ready(READY_TIMEOUT, |log| {
            in_use = log.contains("address in use");
            in_use || (log.lines().any(|l| l.ends_with(" running")) && !dig(port, ZONE, "SOA", false).is_empty())
        })?;
        if in_use {
            return Err(format!("port {port} is taken:\n{}", tail(&daemon.log(), 20)));
        }
        Ok(TestDns { daemon, dir, port })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn zone(&self) -> &'static str {
        ZONE
    }

    /// `label.castellan.test`.
    pub fn name(&self, label: &str) -> String {
        format!("{label}.{ZONE}")
    }

    /// named's own log (stderr), for failure messages.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces all TXT records at `name` with `values`.
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let name = absolute(name);
        let mut lines = vec![format!("update delete {name} TXT")];
        lines.extend(values.iter().map(|value| format!("update add {name} 1 TXT {}", quote(value))));
        self.update(&lines);
    }

    /// Adds one TXT record at `name`, keeping the others.
    pub fn add_txt(&self, name: &str, value: &str) {
        self.update(&[format!("update add {} 1 TXT {}", absolute(name), quote(value))]);
    }

    /// Removes every TXT record at `name`.
    pub fn clear_txt(&self, name: &str) {
        self.update(&[format!("update delete {} TXT", absolute(name))]);
    }

    /// Points `name` at `ip` alone (replacing any A records there).
    pub fn set_a(&self, name: &str, ip: Ipv4Addr) {
        let name = absolute(name);
        self.update(&[format!("update delete {name} A"), format!("update add {name} 1 A {ip}")]);
    }

    /// The TXT values at `name` as the server answers them now, sorted.
    pub fn txt(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> =
            dig(self.port, name, "TXT", false).into_iter().map(|v| v.trim_matches('"').to_owned()).collect();
        values.sort();
        values
    }

    /// The answers for `name`/`rtype` (as `dig +short` prints them), over UDP or, with `tcp`, over TCP.
    pub fn query(&self, name: &str, rtype: &str, tcp: bool) -> Vec<String> {
        dig(self.port, name, rtype, tcp)
    }

    /// The environment tests/fixtures/dns-hook.sh needs to write to this server.
    pub fn hook_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TEST_DNS_SERVER", Ipv4Addr::LOCALHOST.to_string()),
            ("TEST_DNS_PORT", self.port.to_string()),
            ("TEST_DNS_ZONE", ZONE.to_owned()),
        ]
    }

    /// One dynamic update (all `lines` applied atomically); panics with nsupdate's and named's output on failure.
    fn update(&self, lines: &[String]) {
        let script = format!("server 127.0.0.1 {}\nzone {ZONE}\n{}\nsend\n", self.port, lines.join("\n"));
        let done = run_limited(Command::new("nsupdate").args(["-t", "10"]), Some(&script), TOOL_TIMEOUT);
        if !done.success() {
            panic!(
                "nsupdate failed: {}\n--- script ---\n{script}--- named ---\n{}",
                done.describe(20),
                tail(&self.log(), 30)
            );
        }
    }
}

/// Copies the dns-01 hook into `dir` as an executable and returns its path, so the clients never depend on the
/// checkout's file modes.
pub fn install_hook(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("dns-hook.sh");
    std::fs::write(&path, HOOK).expect("write the dns hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make the dns hook executable");
    path
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let d = dir.display();
    // TTLs and the negative-caching TTL are 1 s: nothing between the tests and this server should cache an answer
    // across an update.
    let zone = format!(
        "$TTL 1\n\
         @  IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 1\n\
         @  IN NS  ns.{ZONE}.\n\
         @  IN A   127.0.0.1\n\
         *  IN A   127.0.0.1\n\
         ns IN A   127.0.0.1\n"
    );
    std::fs::write(dir.join("zone.db"), zone).expect("write the zone file");
    // Everything named writes goes to the tempdir; `controls {}` turns off rndc, whose default port (953) would
    // clash between parallel tests; updates are allowed from loopback only.
    let conf = format!(
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    dump-file "{d}/cache_dump.db";
    statistics-file "{d}/named.stats";
    memstatistics-file "{d}/named.memstats";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "{ZONE}" {{
    type primary;
    file "{d}/zone.db";
    allow-update {{ 127.0.0.1; }};
}};
"#
    );
    let path = dir.join("named.conf");
    std::fs::write(&path, conf).expect("write named.conf");
    path
}

/// `dig +short` against the test server; empty on any failure (callers poll or compare).
fn dig(port: u16, name: &str, rtype: &str, tcp: bool) -> Vec<String> {
    let mut cmd = Command::new("dig");
    cmd.arg("@127.0.0.1").args(["-p", &port.to_string(), rtype, name, "+short", "+time=1", "+tries=1"]);
    if tcp {
        cmd.arg("+tcp");
    }
    let done = run_limited(&mut cmd, None, TOOL_TIMEOUT);
    if !done.success() {
        return Vec::new();
    }
    done.stdout.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(';')).map(str::to_owned).collect()
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

/// TXT data for nsupdate: quoted, so spaces and semicolons stay part of the value.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}
