//! The server under test: either one already running (directory URL, optional pid) or one this program starts and
//! stops. A starter returns a [`Server`]; its [`StopGuard`] kills what was started when the run ends.
//!
//! To add a peer (e.g. castellan itself): write `async fn start(http01_port: u16) -> Result<Server>` that spawns the
//! processes through [`StopGuard::spawn`], calls [`wait_for_directory`], and fills in the pid to measure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use castellan_acme_proto::types::Directory;
use hyper::Method;
use rustls::ClientConfig;

use crate::http::{HttpClient, Trust};

pub struct Server {
    /// Name and version, printed with the numbers.
    pub label: String,
    pub directory: String,
    /// The process whose CPU time is the server's cost (with its descendants).
    pub pid: Option<u32>,
    /// Processes the server needs that are not the server (a DNS stub), measured separately.
    pub helpers: Vec<(String, u32)>,
    /// The trust a started server needs (its certificate is made up on the spot); None means the command line's.
    pub trust: Option<Trust>,
    /// How the server was configured, one line each, printed with the numbers.
    pub notes: Vec<String>,
    pub guard: StopGuard,
}

impl Server {
    /// A server someone else started.
    pub fn external(directory: String, pid: Option<u32>) -> Server {
        let label = match pid {
            Some(pid) => format!("external server ({})", process_name(pid).unwrap_or_else(|| "?".into())),
            None => "external server".into(),
        };
        Server {
            label,
            directory,
            pid,
            helpers: Vec::new(),
            trust: None,
            notes: Vec::new(),
            guard: StopGuard::default(),
        }
    }

    /// Stops whatever this program started for the server (nothing, for an external one).
    pub fn stop(self) {
        drop(self.guard);
    }
}

/// The name of a running process, from /proc.
fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_owned())
}

/// Processes this program started (killed on drop) and the directory holding their files and logs.
#[derive(Default)]
pub struct StopGuard {
    children: Vec<(String, Child, PathBuf)>,
    dir: Option<tempfile::TempDir>,
    keep_dir: bool,
}

impl StopGuard {
    pub fn with_dir(dir: tempfile::TempDir) -> StopGuard {
        StopGuard { children: Vec::new(), dir: Some(dir), keep_dir: false }
    }

    /// Leaves the working directory (configuration, logs) in place after the run, to look into a failure.
    pub fn keep_dir(&mut self) {
        self.keep_dir = true;
    }

    pub fn dir(&self) -> Result<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path()).ok_or_else(|| anyhow!("no working directory"))
    }

    /// Starts `command` with stdout and stderr in `<dir>/<name>.log`; returns its pid.
    pub fn spawn(&mut self, name: &str, mut command: Command) -> Result<u32> {
        let log_path = self.dir()?.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child, log_path));
        Ok(pid)
    }

    /// Fails, with the end of its log, if a started process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for (name, child, log) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!("{name} exited ({status}); last log lines:\n{}", tail.join("\n"));
            }
        }
        Ok(())
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.keep_dir
            && let Some(dir) = self.dir.take()
        {
            eprintln!("peer files kept in {}", dir.keep().display());
        }
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_tcp_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A port free for both UDP and TCP (a DNS server binds both).
pub fn free_udp_tcp_port() -> Result<u16> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}

/// Waits until `port` accepts TCP connections, while the started processes stay up.
pub async fn wait_for_port(guard: &mut StopGuard, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        guard.check_alive()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listening on 127.0.0.1:{port} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the directory answers, while the started processes stay up.
pub async fn wait_for_directory(
    guard: &mut StopGuard,
    url: &str,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Directory> {
    let deadline = Instant::now() + timeout;
    loop {
        guard.check_alive()?;
        match fetch_directory(url, tls).await {
            Ok(directory) => return Ok(directory),
            Err(e) if Instant::now() > deadline => return Err(e.context(format!("no directory after {timeout:?}"))),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub async fn fetch_directory(url: &str, tls: &Arc<ClientConfig>) -> Result<Directory> {
    let response =
        HttpClient::new(Arc::clone(tls), Duration::from_secs(10)).request(Method::GET, url, None, Vec::new()).await?;
    if !response.status.is_success() {
        bail!("directory {url}: HTTP {}", response.status);
    }
    serde_json::from_slice(&response.body).with_context(|| format!("directory {url}"))
}
