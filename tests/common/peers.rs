//! Real ACME clients (certbot, lego) pointed at any ACME directory, and the child-process plumbing they and the
//! test DNS server share: every child runs with a deadline, its output is kept for the failure message, and daemons
//! are killed when their handle is dropped.
//!
//! The clients are parameterized only by a directory URL and the CA bundle that signs the server's TLS certificate,
//! so the same runners drive Pebble today and `castellan serve` tomorrow.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use der::{Decode, DecodePem, oid::AssociatedOid};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::dns::{TestDns, install_hook};

/// How long one client command may run before it is killed; generous, because the machine is shared and slow.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Proxies would send the clients' loopback traffic elsewhere.
const PROXY_VARS: [&str; 6] = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];

// ---------------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------------

/// A free port on 127.0.0.1 for both TCP and UDP (named needs both). Never hands out the same port twice in one
/// test process, so parallel tests cannot be given each other's ports; another process may still race us for it,
/// which is why the daemons that take these ports retry on a failed start.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP socket on 127.0.0.1");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// What a finished (or killed) child left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The child outlived its deadline and was killed.
    pub timed_out: bool,
}

impl Finished {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// Status line plus the tails of both streams, for failure messages.
    pub fn describe(&self, lines: usize) -> String {
        let status = if self.timed_out { "killed after its deadline".to_owned() } else { self.status.to_string() };
        format!(
            "{status}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            tail(&self.stdout, lines),
            tail(&self.stderr, lines)
        )
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` to completion with `stdin` as its input, killing it after `limit`.
pub fn run_limited(cmd: &mut Command, stdin: Option<&str>, limit: Duration) -> Finished {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_owned();
        // A writer thread, so a child that never reads cannot block us past the deadline.
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait for a killed child"), true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("cannot wait for {cmd:?}: {e}"),
        }
    };
    Finished { status, stdout: received(stdout), stderr: received(stderr), timed_out }
}

/// Reads a pipe to its end on a thread of its own.
fn collect(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
    }
    rx
}

/// A grandchild that inherited the pipe could keep it open forever; give up on that stream after a short wait.
fn received(rx: Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
}

/// A long-running child (named, Pebble, …) whose output is collected as it runs; killed when dropped.
pub struct Daemon {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e} (is it installed?)"));
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
        let stderr = child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>);
        for pipe in [stdout, stderr].into_iter().flatten() {
            let sink = log.clone();
            // Drains the pipe for the daemon's whole life (a full pipe would stall it), bytes not lines, so invalid
            // UTF-8 cannot stop the draining.
            thread::spawn(move || {
                let mut pipe = std::io::BufReader::new(pipe);
                let mut line = Vec::new();
                while matches!(std::io::BufRead::read_until(&mut pipe, b'\n', &mut line), Ok(n) if n > 0) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            });
        }
        Daemon { name: name.to_owned(), child, log }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The exit status, if the daemon has already stopped.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `ready` (given the log so far) until it holds; `Err` with the daemon's log if the daemon exits or
    /// `limit` passes first.
    pub fn wait_ready(&mut self, limit: Duration, mut ready: impl FnMut(&str) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("{} exited ({status}) before it was ready:\n{}", self.name, tail(&self.log(), 60)));
            }
            if ready(&self.log()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{} not ready after {limit:?}:\n{}", self.name, tail(&self.log(), 60)));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Certificates the clients obtained
// ---------------------------------------------------------------------------------------------------------------

/// A certificate a client saved: the leaf followed by its chain, and its private key. The files are read when asked,
/// so after a renewal (which rewrites them in place) they show the new certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// certbot's lineage name, or lego's file stem.
    pub name: String,
    pub fullchain: PathBuf,
    pub key: PathBuf,
    /// The client's directory lives as long as any certificate in it, so a dropped runner cannot pull the files
    /// away from a test still reading them.
    _files: Arc<tempfile::TempDir>,
}

impl Issued {
    pub fn fullchain_pem(&self) -> String {
        std::fs::read_to_string(&self.fullchain).unwrap_or_else(|e| panic!("read {}: {e}", self.fullchain.display()))
    }

    pub fn leaf_pem(&self) -> String {
        super::split_leaf(&self.fullchain_pem()).0.to_owned()
    }

    pub fn leaf(&self) -> Certificate {
        parse_pem(&self.leaf_pem())
    }

    /// The leaf's dNSName SANs, sorted.
    pub fn dns_names(&self) -> Vec<String> {
        dns_names(&self.leaf())
    }

    /// The leaf's serial as lowercase hex without leading zeros (the form Pebble's management API wants).
    pub fn serial_hex(&self) -> String {
        serial_hex(&self.leaf())
    }

    /// Asserts the leaf names exactly `expected` (order-insensitive).
    pub fn assert_names(&self, expected: &[&str]) {
        let mut want: Vec<String> = expected.iter().map(|s| s.to_ascii_lowercase()).collect();
        want.sort();
        want.dedup();
        assert_eq!(self.dns_names(), want, "SANs of {}", self.fullchain.display());
    }
}

pub fn parse_pem(pem: &str) -> Certificate {
    Certificate::from_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("not a PEM certificate ({e}):\n{pem}"))
}

pub fn dns_names(cert: &Certificate) -> Vec<String> {
    let mut names = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id != SubjectAltName::OID {
            continue;
        }
        let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).expect("a well-formed SAN extension");
        for name in san.0 {
            if let GeneralName::DnsName(dns) = name {
                names.push(dns.as_str().to_ascii_lowercase());
            }
        }
    }
    names.sort();
    names
}

pub fn serial_hex(cert: &Certificate) -> String {
    let hex = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() }
}

/// A file name for a lineage: wildcards keep their meaning but lose the `*` (as lego does).
fn lineage_name(domains: &[&str]) -> String {
    let first = domains.first().expect("at least one domain");
    first.replace('*', "_")
}

fn strip_proxies(cmd: &mut Command) {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
}

fn hook_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The hook as certbot wants it: certbot finds the program by splitting on whitespace, before any shell quoting
/// applies, so the path must be free of it (tempdirs are).
fn hook_command(path: &Path, action: &str) -> String {
    let path = path.display().to_string();
    assert!(!path.contains(char::is_whitespace), "hook path {path} contains whitespace");
    format!("{path} {action}")
}

// ---------------------------------------------------------------------------------------------------------------
// certbot
// ---------------------------------------------------------------------------------------------------------------

/// certbot (2.x) with its config, work and logs directories in a tempdir of its own, trusting only `ca_bundle`
/// for the ACME server's TLS (REQUESTS_CA_BUNDLE).
pub struct Certbot {
    dir: Arc<tempfile::TempDir>,
    server: String,
    ca_bundle: PathBuf,
    hook: PathBuf,
    /// Deadline for each certbot command.
    pub timeout: Duration,
}

impl Certbot {
    pub fn new(directory_url: &str, ca_bundle: &Path) -> Certbot {
        let dir = Arc::new(tempfile::tempdir().expect("certbot tempdir"));
        let hook = install_hook(dir.path());
        for sub in ["config", "work", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("certbot dirs");
        }
        Certbot { dir, server: directory_url.to_owned(), ca_bundle: ca_bundle.to_owned(), hook, timeout: CHILD_TIMEOUT }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn hook_log(&self) -> PathBuf {
        self.logs_dir().join("dns-hook.log")
    }

    /// `certbot <subcommand> -n` with this runner's directories, server and trust; add arguments and run it with
    /// [`Certbot::attempt`] or [`Certbot::ok`].
    pub fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new("certbot");
        cmd.arg(subcommand)
            .arg("--non-interactive")
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg("--work-dir")
            .arg(self.dir.path().join("work"))
            .arg("--logs-dir")
            .arg(self.logs_dir())
            .arg("--server")
            .arg(&self.server)
            .env("REQUESTS_CA_BUNDLE", &self.ca_bundle)
            .env("TEST_DNS_HOOK_LOG", self.hook_log());
        strip_proxies(&mut cmd);
        cmd
    }

    /// Runs a certbot command under the deadline, whatever its outcome.
    pub fn attempt(&self, cmd: &mut Command) -> Finished {
        run_limited(cmd, None, self.timeout)
    }

    /// Runs a certbot command and panics, with certbot's own log tail, unless it succeeds.
    pub fn ok(&self, cmd: &mut Command) -> Finished {
        let done = self.attempt(cmd);
        if !done.success() {
            panic!("{cmd:?} failed: {}\n{}", done.describe(40), self.diagnostics());
        }
        done
    }

    /// certbot's log tail and the DNS hook's calls.
    pub fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(self.logs_dir().join("letsencrypt.log")).unwrap_or_default();
        let hook = std::fs::read_to_string(self.hook_log()).unwrap_or_default();
        format!("--- letsencrypt.log (tail) ---\n{}\n--- dns hook calls ---\n{hook}", tail(&log, 80))
    }

    /// The dns-01 hook's calls so far, one `present|cleanup FQDN VALUE` line each, in order.
    pub fn hook_calls(&self) -> Vec<String> {
        hook_calls(&self.hook_log())
    }

    pub fn register(&self, email: &str) {
        self.ok(self.command("register").args(["--agree-tos", "--no-eff-email", "-m", email]));
    }

    /// Deactivates the account (and forgets it locally).
    pub fn unregister(&self) {
        self.ok(&mut self.command("unregister"));
    }

    /// `certonly` for `domains`, answering http-01 with certbot's own server on 127.0.0.1:`http_port`.
    pub fn certonly_standalone(&self, domains: &[&str], http_port: u16) -> Issued {
        let name = lineage_name(domains);
        let mut cmd = self.certonly(&name, domains);
        cmd.args(["--standalone", "--preferred-challenges", "http-01", "--http-01-address", "127.0.0.1"])
            .arg("--http-01-port")
            .arg(http_port.to_string());
        self.ok(&mut cmd);
        self.issued(&name)
    }

    /// `certonly` for `domains` (wildcards allowed), answering dns-01 through the manual plugin's hooks, which write
    /// TXT records into `dns`.
    pub fn certonly_dns(&self, domains: &[&str], dns: &TestDns) -> Issued {
        let name = lineage_name(domains);
        let mut cmd = self.certonly(&name, domains);
        cmd.args(["--manual", "--preferred-challenges", "dns-01"])
            .arg("--manual-auth-hook")
            .arg(hook_command(&self.hook, "present"))
            .arg("--manual-cleanup-hook")
            .arg(hook_command(&self.hook, "cleanup"))
            .envs(dns.hook_env());
        self.ok(&mut cmd);
        self.issued(&name)
    }

    fn certonly(&self, name: &str, domains: &[&str]) -> Command {
        let mut cmd = self.command("certonly");
        // Registers on first use; ignored once an account exists.
        cmd.args(["--agree-tos", "--register-unsafely-without-email", "--cert-name", name]);
        for domain in domains {
            cmd.arg("-d").arg(domain);
        }
        cmd
    }

    /// Renews lineage `name` now, with the authenticator it was obtained with (pass the DNS server again if that
    /// was dns-01: the hooks read it from the environment).
    pub fn renew(&self, name: &str, dns: Option<&TestDns>) -> Issued {
        let mut cmd = self.command("renew");
        cmd.args(["--cert-name", name, "--force-renewal", "--no-random-sleep-on-renew"]);
        if let Some(dns) = dns {
            cmd.envs(dns.hook_env());
        }
        self.ok(&mut cmd);
        self.issued(name)
    }

    /// Revokes `issued` with `reason` (unspecified, keycompromise, affiliationchanged, superseded,
    /// cessationofoperation), signed by the account key, or by the certificate's own key when `by_key`.
    pub fn revoke(&self, issued: &Issued, reason: &str, by_key: bool) {
        let mut cmd = self.command("revoke");
        cmd.arg("--cert-path").arg(&issued.fullchain).args(["--reason", reason, "--no-delete-after-revoke"]);
        if by_key {
            cmd.arg("--key-path").arg(&issued.key);
        }
        self.ok(&mut cmd);
    }

    pub fn live_dir(&self, name: &str) -> PathBuf {
        self.config_dir().join("live").join(name)
    }

    /// The leaf alone (certbot's cert.pem).
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.live_dir(name).join("cert.pem")
    }

    pub fn issued(&self, name: &str) -> Issued {
        let live = self.live_dir(name);
        Issued {
            name: name.to_owned(),
            fullchain: live.join("fullchain.pem"),
            key: live.join("privkey.pem"),
            _files: self.dir.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// lego
// ---------------------------------------------------------------------------------------------------------------

/// How lego proves control of the names.
#[derive(Clone, Copy)]
pub enum Challenge<'a> {
    /// http-01 from lego's own server on 127.0.0.1:port.
    Http(u16),
    /// tls-alpn-01 from lego's own server on 127.0.0.1:port.
    TlsAlpn(u16),
    /// dns-01 through the `exec` provider, which writes TXT records into this server.
    Dns(&'a TestDns),
}

/// lego (4.x) with its --path in a tempdir of its own, trusting only `ca_bundle` for the ACME server's TLS
/// (LEGO_CA_CERTIFICATES).
pub struct Lego {
    dir: Arc<tempfile::TempDir>,
    server: String,
    ca_bundle: PathBuf,
    hook: PathBuf,
    /// lego insists on an account email.
    pub email: String,
    /// Deadline for each lego command.
    pub timeout: Duration,
}

impl Lego {
    pub fn new(directory_url: &str, ca_bundle: &Path) -> Lego {
        let dir = Arc::new(tempfile::tempdir().expect("lego tempdir"));
        let hook = install_hook(dir.path());
        Lego {
            dir,
            server: directory_url.to_owned(),
            ca_bundle: ca_bundle.to_owned(),
            hook,
            email: "ops@castellan.test".to_owned(),
            timeout: CHILD_TIMEOUT,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn hook_log(&self) -> PathBuf {
        self.dir.path().join("dns-hook.log")
    }

    /// `lego` with this runner's global flags, `domains` and `challenge` (if the subcommand needs one); add the subcommand and its flags, then run
    /// it with [`Lego::attempt`] or [`Lego::ok`].
    pub fn command(&self, domains: &[&str], challenge: Option<Challenge<'_>>) -> Command {
        let mut cmd = Command::new("lego");
        cmd.arg("--server")
            .arg(&self.server)
            .arg("--path")
            .arg(self.dir.path())
            .args(["--accept-tos", "--email", &self.email])
            .env("LEGO_CA_CERTIFICATES", &self.ca_bundle)
            .env("TEST_DNS_HOOK_LOG", self.hook_log());
        strip_proxies(&mut cmd);
        for domain in domains {
            cmd.arg("--domains").arg(domain);
        }
        match challenge {
            None => &mut cmd,
            Some(Challenge::Http(port)) => cmd.arg("--http").arg("--http.port").arg(format!("127.0.0.1:{port}")),
            Some(Challenge::TlsAlpn(port)) => cmd.arg("--tls").arg("--tls.port").arg(format!("127.0.0.1:{port}")),
            Some(Challenge::Dns(dns)) => cmd
                .args(["--dns", "exec", "--dns.resolvers"])
                .arg(dns.addr().to_string())
                // Only the recursive lookup through --dns.resolvers; the full check would ask the zone's NS
                // (ns.castellan.test) on port 53, where nothing listens.
                .arg("--dns.disable-cp")
                .env("EXEC_PATH", &self.hook)
                .env("EXEC_PROPAGATION_TIMEOUT", "30")
                .env("EXEC_POLLING_INTERVAL", "1")
                // The exec provider solves authorizations one at a time with this pause between them (60 s by
                // default).
                .env("EXEC_SEQUENCE_INTERVAL", "1")
                .envs(dns.hook_env()),
        };
        cmd
    }

    pub fn attempt(&self, cmd: &mut Command) -> Finished {
        run_limited(cmd, None, self.timeout)
    }

    /// Runs a lego command and panics, with lego's log (it logs to stderr), unless it succeeds.
    pub fn ok(&self, cmd: &mut Command) -> Finished {
        let done = self.attempt(cmd);
        if !done.success() {
            let hook = std::fs::read_to_string(self.hook_log()).unwrap_or_default();
            panic!("{cmd:?} failed: {}\n--- dns hook calls ---\n{hook}", done.describe(80));
        }
        done
    }

    /// The dns-01 hook's calls so far, one `present|cleanup FQDN VALUE` line each, in order.
    pub fn hook_calls(&self) -> Vec<String> {
        hook_calls(&self.hook_log())
    }

    /// `lego run`: registers if needed and obtains a certificate for `domains`.
    pub fn run(&self, domains: &[&str], challenge: Challenge<'_>) -> Issued {
        let done = self.ok(self.command(domains, Some(challenge)).arg("run"));
        self.saved(domains, &done)
    }

    /// The certificate lego just saved for `domains`; panics with lego's output if it is not where expected.
    fn saved(&self, domains: &[&str], done: &Finished) -> Issued {
        let issued = self.issued(domains);
        if !issued.fullchain.is_file() {
            let listing: Vec<String> = std::fs::read_dir(self.dir.path().join("certificates"))
                .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            panic!(
                "lego succeeded but saved no {}; certificates/ has {listing:?}\n{}",
                issued.fullchain.display(),
                done.describe(40)
            );
        }
        issued
    }

    pub fn run_http(&self, domains: &[&str], port: u16) -> Issued {
        self.run(domains, Challenge::Http(port))
    }

    pub fn run_tls_alpn(&self, domains: &[&str], port: u16) -> Issued {
        self.run(domains, Challenge::TlsAlpn(port))
    }

    pub fn run_dns(&self, domains: &[&str], dns: &TestDns) -> Issued {
        self.run(domains, Challenge::Dns(dns))
    }

    /// Whether this lego can ask the server for renewal information (RFC 9773 ARI). Debian bookworm's lego 4.9.1
    /// cannot; newer ones have `--ari-enable` (4.13+) or ARI on by default with `--ari-disable` (4.22+).
    pub fn supports_ari() -> bool {
        let help = run_limited(Command::new("lego").args(["renew", "--help"]), None, Duration::from_secs(30));
        help.stdout.contains("--ari-")
    }

    /// `lego renew` now (whatever the expiry), optionally consulting ARI; panics if `ari` is asked of a lego
    /// without ARI support (check [`Lego::supports_ari`] first).
    pub fn renew(&self, domains: &[&str], challenge: Challenge<'_>, ari: bool) -> Issued {
        let help = run_limited(Command::new("lego").args(["renew", "--help"]), None, Duration::from_secs(30)).stdout;
        let mut cmd = self.command(domains, Some(challenge));
        // Far beyond any test certificate's lifetime, so the renewal always happens.
        cmd.args(["renew", "--days", "100000", "--no-random-sleep"]);
        match (ari, help.contains("--ari-disable"), help.contains("--ari-enable")) {
            (true, true, _) | (false, false, _) => {}
            (true, false, true) => {
                cmd.arg("--ari-enable");
            }
            (false, true, _) => {
                cmd.arg("--ari-disable");
            }
            (true, false, false) => panic!("this lego has no ARI support (lego renew --help):\n{help}"),
        }
        let done = self.ok(&mut cmd);
        self.saved(domains, &done)
    }

    /// `lego revoke` of the certificate for `domains` with an RFC 5280 reason code, signed by the account key. The
    /// files are kept in place.
    pub fn revoke(&self, domains: &[&str], reason: u8) {
        let mut cmd = self.command(domains, None);
        cmd.args(["revoke", "--keep", "--reason", &reason.to_string()]);
        self.ok(&mut cmd);
    }

    /// Where lego keeps the certificate for `domains` (named after the first, `*` → `_`).
    pub fn issued(&self, domains: &[&str]) -> Issued {
        let name = lineage_name(domains);
        let dir = self.dir.path().join("certificates");
        Issued {
            fullchain: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            name,
            _files: self.dir.clone(),
        }
    }
}
