//! Command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

pub const USAGE: &str = "\
usage: acme_flow (--peer castellan,pebble | --directory URL [--server-pid PID]) [options]

  --peer LIST            start each peer in turn and measure it with the same load (castellan, pebble,
                         castellan=PATH): castellan serve (the release build beside this program, or the
                         binary at PATH, e.g. an older build to compare with) on SQLite + SoftHSM2, or
                         Pebble; all resolve through pebble-challtestsrv's DNS
  --directory URL        measure an ACME server already running
  --server-pid PID       its process, for CPU seconds (with its descendants)
  --insecure             accept any TLS certificate from the server
  --ca-file PEM          trust these roots instead (when not --insecure)
  --clients N            concurrent clients, one account each (default 16)
  --duration SECONDS     start flows for this long (default 20)
  --flows N              or: run exactly N flows in total
  --http01-listen ADDR   http-01 responder address (default 127.0.0.1:5002, or a free port with --peer)
  --domain SUFFIX        names are f<N>.<SUFFIX> (default bench.test)
  --poll-ms MS           poll interval without Retry-After (default 10)
  --poll-cap-ms MS       cap on any poll sleep, Retry-After included (default 20)
  --timeout SECONDS      a flow polling longer than this fails (default 60)
  --keep-peer-dir        keep a started peer's configuration and logs after the run
  --request-timeout SECONDS  a request without a response by then fails (default 15)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The castellan binary beside this program, or the one at this path.
    Castellan(Option<PathBuf>),
    Pebble,
}

pub struct Args {
    /// Measured one after the other, in this order, in one run.
    pub peers: Vec<Peer>,
    pub directory: Option<String>,
    pub server_pid: Option<u32>,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub clients: usize,
    pub duration: Duration,
    pub flows: Option<u64>,
    /// None: 127.0.0.1:5002 for an external server, a free port for a started one.
    pub http01_listen: Option<SocketAddr>,
    pub domain: String,
    pub poll_interval: Duration,
    pub poll_cap: Duration,
    pub timeout: Duration,
    pub request_timeout: Duration,
    pub keep_peer_dir: bool,
}

impl Args {
    pub fn http01_listen(&self) -> SocketAddr {
        let port = if self.peers.is_empty() { 5002 } else { 0 };
        self.http01_listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args> {
        let mut args = Args {
            peers: Vec::new(),
            directory: None,
            server_pid: None,
            insecure: false,
            ca_file: None,
            clients: 16,
            duration: Duration::from_secs(20),
            flows: None,
            http01_listen: None,
            domain: "bench.test".into(),
            poll_interval: Duration::from_millis(10),
            poll_cap: Duration::from_millis(20),
            timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
            keep_peer_dir: false,
        };
        while let Some(flag) = argv.next() {
            let mut value = || argv.next().ok_or_else(|| anyhow!("{flag} needs a value"));
            match flag.as_str() {
                "--peer" => {
                    for name in value()?.split(',') {
                        args.peers.push(match name.split_once('=') {
                            None if name == "castellan" => Peer::Castellan(None),
                            None if name == "pebble" => Peer::Pebble,
                            Some(("castellan", path)) => Peer::Castellan(Some(path.into())),
                            _ => bail!("unknown peer {name:?} (known: castellan, castellan=PATH, pebble)"),
                        });
                    }
                }
                "--directory" => args.directory = Some(value()?),
                "--server-pid" => args.server_pid = Some(number(&flag, &value()?)?),
                "--insecure" => args.insecure = true,
                "--keep-peer-dir" => args.keep_peer_dir = true,
                "--ca-file" => args.ca_file = Some(value()?.into()),
                "--clients" => args.clients = number(&flag, &value()?)?,
                "--duration" => args.duration = Duration::from_secs_f64(number(&flag, &value()?)?),
                "--flows" => args.flows = Some(number(&flag, &value()?)?),
                "--http01-listen" => args.http01_listen = Some(number(&flag, &value()?)?),
                "--domain" => args.domain = value()?,
                "--poll-ms" => args.poll_interval = Duration::from_millis(number(&flag, &value()?)?),
                "--poll-cap-ms" => args.poll_cap = Duration::from_millis(number(&flag, &value()?)?),
                "--timeout" => args.timeout = Duration::from_secs_f64(number(&flag, &value()?)?),
                "--request-timeout" => args.request_timeout = Duration::from_secs_f64(number(&flag, &value()?)?),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        match (args.peers.is_empty(), &args.directory) {
            (true, None) => bail!("give --peer castellan,pebble or --directory URL\n{USAGE}"),
            (false, Some(_)) => bail!("--peer starts its own servers; drop --directory"),
            _ => {}
        }
        if args.clients == 0 {
            bail!("--clients must be at least 1");
        }
        Ok(args)
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse().with_context(|| format!("{flag} {text:?}"))
}
