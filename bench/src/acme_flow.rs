//! Complete ACME (RFC 8555) issuance flows against a server, with the server's CPU time measured in the same run.
//!
//! N concurrent clients, each with its own P-256 account key and connection, register once and then repeat:
//! newOrder (one dns identifier, unique per flow) → POST-as-GET the authorization → POST {} to its http-01
//! challenge → poll the authorization → finalize with a fresh P-256 CSR → poll the order → download the chain.
//! This program answers the http-01 validations itself; the server must resolve every name to 127.0.0.1.
//!
//! Usage:
//!   cargo run --release -p castellan-bench --bin acme_flow -- --peer pebble --clients 16 --duration 20
//!   cargo run --release -p castellan-bench --bin acme_flow -- --directory https://127.0.0.1:14000/dir \
//!       --insecure --server-pid 1234 --http01-listen 127.0.0.1:5002
#[path = "acme_flow/args.rs"]
mod args;
#[path = "acme_flow/castellan.rs"]
mod castellan;
#[path = "acme_flow/client.rs"]
mod client;
#[path = "acme_flow/cpu.rs"]
mod cpu;
#[path = "acme_flow/flow.rs"]
mod flow;
#[path = "acme_flow/http.rs"]
mod http;
#[path = "machine.rs"]
mod machine;
#[path = "acme_flow/pebble.rs"]
mod pebble;
#[path = "acme_flow/peer.rs"]
mod peer;
#[path = "acme_flow/responder.rs"]
mod responder;
#[path = "acme_flow/stats.rs"]
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use args::{Args, Peer};
use client::AcmeClient;
use flow::PollPolicy;
use http::{HttpClient, Trust};
use peer::Server;
use responder::Tokens;
use stats::{Recorder, ms, percentiles};

/// Width of the throughput time series (and of the progress lines).
const INTERVAL: Duration = Duration::from_secs(5);

fn main() -> Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // Dropping the run on a signal drops the server's stop guard, so a started peer does not outlive us.
        tokio::select! {
            result = run(args) => result,
            signal = interrupted() => bail!("stopped by {}", signal?),
        }
    })
}

async fn interrupted() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

async fn run(args: Args) -> Result<()> {
    let responder = responder::start(args.http01_listen()).await?;
    if let Some(directory) = &args.directory {
        return measure(&args, &responder, Server::external(directory.clone(), args.server_pid)).await;
    }
    // Each peer in turn, with the same load and the same responder: a same-run comparison.
    for peer in &args.peers {
        let server = match peer {
            Peer::Castellan(binary) => castellan::start(responder.addr.port(), binary.as_deref()).await?,
            Peer::Pebble => pebble::start(responder.addr.port()).await?,
        };
        measure(&args, &responder, server).await?;
    }
    Ok(())
}

async fn measure(args: &Args, responder: &responder::Responder, mut server: Server) -> Result<()> {
    if args.keep_peer_dir {
        server.guard.keep_dir();
    }
    let trust = match (&server.trust, args.insecure, &args.ca_file) {
        (Some(trust), _, _) => trust.clone(),
        (None, true, _) => Trust::AnyCertificate,
        (None, false, Some(path)) => Trust::Roots(path.clone()),
        (None, false, None) if server.directory.starts_with("https:") => {
            bail!("an https directory needs --insecure or --ca-file")
        }
        (None, false, None) => Trust::AnyCertificate,
    };
    let tls = http::tls_config(&trust)?;
    let directory = Arc::new(peer::fetch_directory(&server.directory, &tls).await?);

    let ticks = cpu::clock_ticks();
    let (accounts, account_latencies) = register(args, &tls, &directory).await?;

    let poll = PollPolicy { interval: args.poll_interval, cap: args.poll_cap, timeout: args.timeout };
    let cpu_before = CpuSample::take(&server, ticks)?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        tokens: Arc::clone(&responder.tokens),
        poll,
        domain: args.domain.clone(),
        start,
        next: AtomicU64::new(0),
        flows: args.flows,
        deadline: if args.flows.is_some() { None } else { Some(start + args.duration) },
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        stalled: AtomicBool::new(false),
    });

    let tasks: Vec<_> = accounts.into_iter().map(|c| tokio::spawn(client_loop(c, Arc::clone(&shared)))).collect();
    let progress = tokio::spawn(progress(Arc::clone(&shared), start));
    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(task.await?);
    }
    let elapsed = start.elapsed();
    let cpu_after = CpuSample::take(&server, ticks)?;
    progress.abort();

    report(args, &server, &recorder, &account_latencies, elapsed, &cpu_before, &cpu_after, &responder.tokens);
    server.stop();
    Ok(())
}

/// One client per account key, registered concurrently before the clock starts.
async fn register(
    args: &Args,
    tls: &Arc<rustls::ClientConfig>,
    directory: &Arc<castellan_acme_proto::types::Directory>,
) -> Result<(Vec<AcmeClient>, Vec<Duration>)> {
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let http = HttpClient::new(Arc::clone(tls), args.request_timeout);
            let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            let directory = Arc::clone(directory);
            tokio::spawn(async move {
                let mut client = AcmeClient::new(http, directory, key)?;
                let start = Instant::now();
                client.new_account().await.context("newAccount")?;
                Ok::<_, anyhow::Error>((client, start.elapsed()))
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut latencies = Vec::new();
    for task in tasks {
        let (client, latency) = task.await??;
        clients.push(client);
        latencies.push(latency);
    }
    Ok((clients, latencies))
}

struct Shared {
    tokens: Arc<Tokens>,
    poll: PollPolicy,
    domain: String,
    start: Instant,
    next: AtomicU64,
    flows: Option<u64>,
    /// None when the run is a number of flows rather than a duration.
    deadline: Option<Instant>,
    ok: AtomicU64,
    failed: AtomicU64,
    /// Set when a request got no response in time: a stalled server would otherwise take one request timeout per
    /// remaining flow to get through the run.
    stalled: AtomicBool,
}

impl Shared {
    /// The next flow number, or None once the run is over (no new flows start; running ones finish).
    fn next_flow(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) || self.stalled.load(Ordering::Relaxed) {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.flows {
            Some(max) if n >= max => None,
            _ => Some(n),
        }
    }
}

async fn client_loop(mut client: AcmeClient, shared: Arc<Shared>) -> Recorder {
    let mut recorder = Recorder::default();
    while let Some(n) = shared.next_flow() {
        let name = format!("f{n}.{}", shared.domain);
        let start = Instant::now();
        match flow::run(&mut client, &shared.tokens, &name, &shared.poll).await {
            Ok(outcome) => {
                recorder.success(start.elapsed(), shared.start.elapsed(), outcome.polls);
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if shared.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("flow {name} failed: {e}");
                }
                recorder.failure(&e);
                if e.is_request_timeout() {
                    shared.stalled.store(true, Ordering::Relaxed);
                }
                if e.is_transport() {
                    client.reset();
                    // A server that is down would otherwise be hammered in a tight loop.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    recorder.counters = client.counters;
    recorder.connects = client.connects();
    recorder
}

async fn progress(shared: Arc<Shared>, start: Instant) {
    loop {
        tokio::time::sleep(INTERVAL).await;
        eprintln!(
            "{:>5.0} s: {} certificates, {} failed flows",
            start.elapsed().as_secs_f64(),
            shared.ok.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed)
        );
    }
}

/// CPU seconds of the server, its helpers, and this process at one instant.
struct CpuSample {
    server: Option<f64>,
    helpers: Vec<f64>,
    own: f64,
}

impl CpuSample {
    fn take(server: &Server, ticks: f64) -> Result<CpuSample> {
        Ok(CpuSample {
            server: server.pid.map(|pid| cpu::tree_seconds(pid, ticks)).transpose()?,
            helpers: server.helpers.iter().map(|(_, pid)| cpu::tree_seconds(*pid, ticks)).collect::<Result<_>>()?,
            own: cpu::own_seconds(ticks)?,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    server: &Server,
    recorder: &Recorder,
    account_latencies: &[Duration],
    elapsed: Duration,
    before: &CpuSample,
    after: &CpuSample,
    tokens: &Tokens,
) {
    let certs = recorder.latencies.len() as u64;
    let wall = elapsed.as_secs_f64();
    let per_cert =
        |seconds: f64| if certs > 0 { format!("{:.2} ms", seconds * 1e3 / certs as f64) } else { "-".into() };
    let cpu_row = |label: &str, seconds: f64| {
        println!(
            "| {label} | {seconds:.2} s ({:.0}% of one core; {} per certificate) |",
            100.0 * seconds / wall,
            per_cert(seconds)
        );
    };

    println!("machine: {}; peer: {}; castellan-bench {}", machine::describe(), server.label, env!("CARGO_PKG_VERSION"));
    println!("directory: {}", server.directory);
    for note in &server.notes {
        println!("  {note}");
    }
    let stop = match args.flows {
        Some(n) => format!("{n} flows"),
        None => format!("{:.0} s of new flows", args.duration.as_secs_f64()),
    };
    println!(
        "{} clients (one P-256 account and one keep-alive connection each), {stop}; poll {} ms, sleeps capped at {} ms",
        args.clients,
        args.poll_interval.as_millis(),
        args.poll_cap.as_millis()
    );

    println!("\n| measurement | value |\n|---|---|");
    println!("| certificates issued | {certs} in {wall:.1} s |");
    println!("| **certificates/s** | **{:.1}** |", certs as f64 / wall);
    let stalled: u64 =
        recorder.errors.iter().filter(|((_, kind), _)| kind.starts_with("no response")).map(|(_, e)| e.count).sum();
    if let Some(last) = recorder.finished_at.iter().max().filter(|_| stalled > 0) {
        println!(
            "| certificates/s until the server stalled | {:.1} (until the last certificate, at {:.1} s) |",
            certs as f64 / last.as_secs_f64(),
            last.as_secs_f64()
        );
    }
    println!("| failed flows | {} |", recorder.failures());
    match percentiles(&recorder.latencies) {
        Some(p) => println!(
            "| flow latency p50 / p90 / p99 / max (ms) | {} / {} / {} / {} |",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        ),
        None => println!("| flow latency | no successful flow |"),
    }
    let intervals: Vec<String> =
        stats::per_interval(&recorder.finished_at, INTERVAL).iter().map(u64::to_string).collect();
    println!("| certificates per {} s interval | {} |", INTERVAL.as_secs(), intervals.join(", "));
    if let Some(p) = percentiles(account_latencies) {
        println!("| newAccount latency p50 / max (ms, before the clock) | {} / {} |", ms(p.p50), ms(p.max));
    }
    let flows = (certs + recorder.failures()).max(1);
    println!(
        "| HTTP requests per flow (newAccount included) / polls per certificate | {:.1} / {:.2} |",
        recorder.counters.requests as f64 / flows as f64,
        recorder.polls as f64 / certs.max(1) as f64
    );
    println!(
        "| newNonce requests / badNonce retries / connections opened | {} / {} / {} |",
        recorder.counters.nonce_fetches, recorder.counters.bad_nonce_retries, recorder.connects
    );
    println!(
        "| http-01 validations answered / unknown tokens | {} / {} |",
        tokens.hits.load(Ordering::Relaxed),
        tokens.misses.load(Ordering::Relaxed)
    );
    match (before.server, after.server, server.pid) {
        (Some(b), Some(a), Some(pid)) => cpu_row(&format!("**server CPU** (pid {pid} and descendants)"), a - b),
        _ => println!("| server CPU | not measured (give --server-pid) |"),
    }
    for (i, (name, pid)) in server.helpers.iter().enumerate() {
        if let (Some(b), Some(a)) = (before.helpers.get(i), after.helpers.get(i)) {
            cpu_row(&format!("{name} CPU (pid {pid})"), a - b);
        }
    }
    cpu_row("load generator CPU (this process: clients, CSRs, http-01 responder)", after.own - before.own);

    if stalled > 0 {
        println!(
            "\n{stalled} requests got no response within {:?}: the server stalled (deadlock or overload), no new \
             flows were started after that, and the numbers above include the stall; see the interval series.",
            args.request_timeout
        );
    }
    if !recorder.errors.is_empty() {
        println!("\n| failed step | error | count | first detail |\n|---|---|---|---|");
        for ((step, kind), error) in &recorder.errors {
            let detail: String = error.example.replace('|', "\\|").chars().take(160).collect();
            println!("| {step} | {kind} | {} | {detail} |", error.count);
        }
    }
}
