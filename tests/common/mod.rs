//! Driving the real `castellan` binary and the real tools (curl, openssl) from tests.
#![allow(dead_code)]

pub mod acme;
pub mod dns;
pub mod peers;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn castellan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castellan"));
    cmd.env("RUST_LOG", "info").env_remove("SOFTHSM2_CONF").env_remove("CASTELLAN_CONFIG");
    cmd
}

/// Runs a command and returns its output, failing the test if it cannot start at all.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed? scripts/install-deps test)"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and asserts success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed:\nstdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// A running `castellan serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    /// The plain-HTTP listener for CRLs and OCSP, when `serve.http_listen` is configured.
    pub http_address: Option<String>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::start_with(data_dir, config, None)
    }

    /// Started with its clock shifted by the seconds written in `fake_clock` (`CASTELLAN_FAKE_CLOCK`), which the
    /// test moves instead of waiting.
    pub fn start_with(data_dir: &Path, config: Option<&Path>, fake_clock: Option<&Path>) -> Server {
        let mut cmd = castellan();
        if let Some(file) = fake_clock {
            cmd.env("CASTELLAN_FAKE_CLOCK", file);
        }
        cmd.arg("serve").arg("--data-dir").arg(data_dir).arg("--listen").arg("127.0.0.1:0");
        // A free port for CRLs and OCSP too (the default, 8080, would be shared by tests running at once).
        cmd.arg("--http-listen").arg("127.0.0.1:0");
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start castellan serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The http line, when there is one, comes before the https line.
            let mut http = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("serving revocation status on http://") {
                    http = Some(address.to_owned());
                }
                if let Some(address) = line.strip_prefix("listening on https://") {
                    let _ = tx.send((address.to_owned(), http.take()));
                }
            }
        });
        let (address, http_address) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addresses) => addresses,
            Err(_) => {
                let _ = child.kill();
                panic!("castellan serve did not start:\n{}", log.lock().map(|l| l.clone()).unwrap_or_default());
            }
        };
        Server { child, address, http_address, stderr: log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.address, path)
    }

    /// A URL on the plain-HTTP listener; panics when the server has none.
    pub fn http_url(&self, path: &str) -> String {
        let address = self.http_address.as_deref().expect("the server was started with serve.http_listen");
        format!("http://{address}{path}")
    }

    pub fn log(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET with curl, trusting `ca` (or nothing, with -k); returns (status line headers + body).
pub fn curl(url: &str, ca: Option<&Path>) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-i"]);
    match ca {
        Some(ca) => cmd.arg("--cacert").arg(ca),
        None => cmd.arg("-k"),
    };
    run(cmd.arg(url))
}

/// The serial of the certificate a TLS server presents, as openssl prints it.
pub fn served_serial(address: &str) -> String {
    let out = run(Command::new("openssl").args(["s_client", "-connect", address]).stdin(Stdio::null()));
    let pem = text(&out.stdout);
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(pem.as_bytes()).expect("write");
    text(&child.wait_with_output().expect("openssl").stdout).trim().to_owned()
}

pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

/// Has openssl make a P-256 key and a CSR in `dir` (`<stem>.key`, `<stem>.csr`) for `subject`, with any extra
/// `openssl req` arguments (e.g. `-addext subjectAltName=…`). Returns the CSR's path.
pub fn openssl_p256_csr(dir: &Path, stem: &str, subject: &str, extra: &[&str]) -> PathBuf {
    let (key, csr) = (format!("{stem}.key"), format!("{stem}.csr"));
    ok(Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", &key, "-subj", subject, "-out", &csr])
        .args(extra));
    dir.join(csr)
}

/// Splits a PEM chain into its first certificate (the leaf) and the rest.
pub fn split_leaf(chain: &str) -> (&str, &str) {
    const END: &str = "-----END CERTIFICATE-----\n";
    let leaf_end = chain.find(END).map(|i| i + END.len()).unwrap_or(chain.len());
    chain.split_at(leaf_end)
}

/// Now, in Unix seconds, by this machine's clock (the server under test runs on it too).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
