//! The lifecycle engine at scale: 100,000 managed certificates (each with its current certificate in the
//! inventory, renewals spread over the next 60 days), on SQLite and PostgreSQL in one run on one machine.
//!
//! Another 10% of certificates from ACME clients expire within the next 30 days (found by `expiring?days=30`,
//! alerted on in the warm-up passes). Measures, per backend:
//! - the renewal scheduler's pass when nothing is due (the pass every replica makes every second: claim query,
//!   state sweep, alert evaluation): wall time and this process's CPU time (SQLite runs in-process, so that is the
//!   whole cost; PostgreSQL's own CPU is in its server and not counted), 20 passes after 3 warm-ups; the floor it
//!   is compared with is one full scan of the certificates table (`SELECT COUNT(*)` over every row) in the same run;
//! - `GET /admin/certificates/expiring?days=30` over HTTP (the admin router served on loopback, a bearer token,
//!   hyper as the client), 1,000 requests after 20 warm-ups, p50 and p99; compared with the inventory's newest-first
//!   page `GET /admin/certificates?limit=100` in the same run.
//!
//! With `--reissue`, measures instead `castellan reissue --all` of `count` managed certificates: each gets a new
//! key pair (P-256, generated and sealed under the token's KEK), a certificate signed by the SoftHSM2 test token,
//! recorded with its rotation — the scheduler's whole path at its default concurrency (8) — timed from the mark
//! to the last certificate, then checked: one successful re-issue rotation and one distinct new key per managed
//! certificate.
//!
//! Usage: cargo run --release -p castellan-bench --bin lifecycle -- [count, default 100000] [--reissue]
//! (`CONCURRENCY=n` sets the scheduler's concurrency for `--reissue`; default 8, as `castellan serve`).
#[path = "machine.rs"]
mod machine;

use anyhow::{Context, Result};
use castellan_authority::operator::Operator;
use castellan_authority::{Actor, Clock};
use castellan_lifecycle::{Issuers, Scheduler, SchedulerConfig};
use castellan_store::Store;
use castellan_store::inventory::{CertificateSource, NewCertificate};
use castellan_store::testkit::{self, TestStore};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;
const BATCH: usize = 1000;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reissue = args.iter().any(|a| a == "--reissue");
    let count: usize =
        args.iter().find(|a| !a.starts_with("--")).map(|n| n.parse()).transpose().context("count")?.unwrap_or(100_000);
    println!("machine: {}; castellan {}", machine::describe(), env!("CARGO_PKG_VERSION"));
    let mut stores = vec![("SQLite", testkit::sqlite().await)];
    if let Some(pg) = testkit::postgres().await {
        stores.push(("PostgreSQL", pg));
    }
    if reissue {
        println!("\n| backend | managed | re-issue wall | per second | new keys | re-issue rotations |");
        println!("|---|---|---|---|---|---|");
        for (name, store) in stores {
            let (wall, keys, rotations) = reissue_all(&store, count).await?;
            println!(
                "| {name} | {count} | {:.1} s | {:.0} | {keys} | {rotations} |",
                wall.as_secs_f64(),
                count as f64 / wall.as_secs_f64()
            );
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for (name, store) in stores {
        rows.push((name, run(&store, count).await?));
    }
    println!(
        "\n| backend | managed | pass wall p50 | pass CPU (this process) p50 | full scan (floor) | expiring?days=30 p50 / p99 | newest page p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in rows {
        println!(
            "| {name} | {count} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            ms(r.pass_wall),
            ms(r.pass_cpu),
            ms(r.scan),
            ms(r.expiring.0),
            ms(r.expiring.1),
            ms(r.newest.0),
            ms(r.newest.1)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Measured {
    pass_wall: Duration,
    pass_cpu: Duration,
    scan: Duration,
    expiring: (Duration, Duration),
    newest: (Duration, Duration),
}

async fn run(t: &TestStore, count: usize) -> Result<Measured> {
    let store = &t.store;
    load(store, count).await?;
    store.refresh_statistics().await?;

    // The scheduler over the real store, with no issuer needed: nothing is due.
    let clock = Clock::system();
    let test = castellan_authority::testkit::authority_on(testkit_clone(t), clock.clone()).await;
    let mut scheduler = Scheduler::new(
        &test.authority,
        Issuers::default(),
        SchedulerConfig { sweep_secs: 1, ..Default::default() },
        "bench".into(),
    );
    let alerter = castellan_lifecycle::Alerter::new(store.clone(), clock.clone(), Default::default(), "bench".into())
        .map_err(anyhow::Error::msg)?;
    scheduler = scheduler.with_alerts(std::sync::Arc::new(alerter));
    for _ in 0..3 {
        let report = scheduler.pass().await?;
        println!("  warm-up pass: {report:?}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        // A second apart, so every pass sweeps and evaluates alerts (the expensive kind).
        tokio::time::sleep(Duration::from_millis(1010)).await;
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let report = scheduler.pass().await?;
        walls.push(wall0.elapsed());
        cpus.push(cpu_time().saturating_sub(cpu0));
        anyhow::ensure!(report.claimed == 0, "nothing should be due: {report:?}");
    }
    walls.sort();
    cpus.sort();
    let started = Instant::now();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE length(serial) > 0")
        .fetch_one(store.raw_pool_for_tests())
        .await?;
    let scan = started.elapsed();

    // The admin API over HTTP on loopback.
    let operator = Operator::new(store.clone());
    let token = operator.bootstrap_token("bench", Some("read"), &Actor::cli("bench")).await?;
    let token = token.token.context("a new token's secret")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = castellan_admin::router(operator);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let expiring = latency(&client, &format!("http://{address}/admin/certificates/expiring?days=30"), &token).await?;
    let newest = latency(&client, &format!("http://{address}/admin/certificates?limit=100"), &token).await?;
    Ok(Measured { pass_wall: walls[walls.len() / 2], pass_cpu: cpus[cpus.len() / 2], scan, expiring, newest })
}

/// The store a second time, for the test authority (which files its issuers in it).
fn testkit_clone(t: &TestStore) -> TestStore {
    testkit::TestStore::sharing(t)
}

async fn latency(
    client: &hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
    token: &str,
) -> Result<(Duration, Duration)> {
    let mut times = Vec::new();
    for i in 0..1020 {
        let request = hyper::Request::get(url).header("authorization", format!("Bearer {token}")).body(Empty::new())?;
        let started = Instant::now();
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "{url}: {status}: {}", String::from_utf8_lossy(&body));
        if i >= 20 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() * 99 / 100]))
}

/// Loads `count` managed certificates, marks them all for re-issue and runs the scheduler until none is left.
async fn reissue_all(t: &TestStore, count: usize) -> Result<(Duration, i64, i64)> {
    let store = &t.store;
    load(store, count).await?;
    store.refresh_statistics().await?;
    let clock = Clock::system();
    let test = castellan_authority::testkit::authority_on(testkit_clone(t), clock).await;
    let policy = serde_json::json!({ "dns": { "allow": ["."] } });
    let internal = std::sync::Arc::new(castellan_lifecycle::InternalIssuer::new(test.authority.clone(), Some(policy)));
    let issuers = Issuers::default().with("internal", internal);
    let concurrency = std::env::var("CONCURRENCY").ok().and_then(|c| c.parse().ok()).unwrap_or(8);
    let config = SchedulerConfig { concurrency, ..Default::default() };
    let mut scheduler = Scheduler::new(&test.authority, issuers, config, "bench".into());
    let started = Instant::now();
    let marked = store.request_reissue(None, "bench").await?;
    anyhow::ensure!(marked == count as u64, "marked {marked} of {count}");
    loop {
        let report = scheduler.pass().await?;
        anyhow::ensure!(report.failed == 0, "failures: {report:?}");
        let progress = store.reissue_progress().await?;
        eprintln!("  {} left ({:.0} s)", progress.remaining, started.elapsed().as_secs_f64());
        if progress.remaining == 0 {
            break;
        }
    }
    let wall = started.elapsed();
    let pool = store.raw_pool_for_tests();
    let keys: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT c.spki_sha256) FROM managed_certificates m JOIN certificates c ON c.id = m.current_certificate_id",
    )
    .fetch_one(pool)
    .await?;
    let rotations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rotations WHERE reason = 'reissue' AND status = 'succeeded'")
            .fetch_one(pool)
            .await?;
    Ok((wall, keys, rotations))
}

/// User plus system CPU time of this process (SQLite works inside it).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the command's closing parenthesis: state is field 0, utime 11, stime 12 (clock ticks of 10 ms).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// `count` certificates, each the current certificate of a managed certificate; lifetimes of 90 days issued over
/// the last 55, so renewals fall over the next 5 to 60 days (none due: the steady state every pass meets).
async fn load(store: &Store, count: usize) -> Result<()> {
    let started = Instant::now();
    let now = store.now();
    let mut rng = StdRng::seed_from_u64(0x11fe);
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let rows: Vec<_> = (done..done + n)
            .map(|i| {
                let not_before = now - rng.gen_range(0..55 * DAY);
                let cert = NewCertificate {
                    issuer_id: None,
                    issuer_key_id: vec![1, 2, 3, 4],
                    issuer_dn: "CN=Bench Intermediate".into(),
                    serial: format!("{:032x}", rng.r#gen::<u128>()),
                    source: CertificateSource::ManagedInternal,
                    profile: Some("tls-server".into()),
                    subject: String::new(),
                    names: vec![format!("DNS:m{i}.bench.example")],
                    tbs_sha256: rng.r#gen::<[u8; 32]>().to_vec(),
                    spki_sha256: rng.r#gen::<[u8; 32]>().to_vec(),
                    not_before,
                    not_after: not_before + 90 * DAY,
                    account_id: None,
                    owner: Some(format!("managed:m{i}.bench.example")),
                    replaces_id: None,
                };
                let der: Vec<u8> = (0..700).map(|_| rng.r#gen()).collect();
                let sha = rng.r#gen::<[u8; 32]>().to_vec();
                (cert, der, sha)
            })
            .collect();
        store.insert_certificates_bulk(&rows).await?;
        done += n;
    }
    // A tenth as many certificates from ACME clients, 90 days long and expiring within the next 30: what
    // `expiring?days=30` finds, and what fires alerts (in the warm-up passes; the measured ones find them fired).
    let acme: Vec<_> = (0..count / 10)
        .map(|i| {
            let not_after = now + rng.gen_range(DAY..30 * DAY);
            let cert = NewCertificate {
                issuer_id: None,
                issuer_key_id: vec![1, 2, 3, 4],
                issuer_dn: "CN=Bench Intermediate".into(),
                serial: format!("{:032x}", rng.r#gen::<u128>()),
                source: CertificateSource::InternalAcme,
                profile: Some("tls-server".into()),
                subject: String::new(),
                names: vec![format!("DNS:a{i}.bench.example")],
                tbs_sha256: rng.r#gen::<[u8; 32]>().to_vec(),
                spki_sha256: rng.r#gen::<[u8; 32]>().to_vec(),
                not_before: not_after - 90 * DAY,
                not_after,
                account_id: None,
                owner: None,
                replaces_id: None,
            };
            (cert, (0..700).map(|_| rng.r#gen()).collect::<Vec<u8>>(), rng.r#gen::<[u8; 32]>().to_vec())
        })
        .collect();
    for chunk in acme.chunks(BATCH) {
        store.insert_certificates_bulk(chunk).await?;
    }
    // Their managed certificates, due at two thirds of each certificate's life.
    sqlx::query(
        "INSERT INTO managed_certificates (name, names_json, issuer, profile, key_type, group_name, status, \
         current_certificate_id, next_renewal_at, renewal_reason, failures, created_at, updated_at) \
         SELECT substr(owner, 9), sans_json, 'internal', 'tls-server', 'ec-p256', 'default', 'active', id, \
         not_before + (not_after - not_before) * 2 / 3, 'scheduled', 0, $1, $1 FROM certificates \
         WHERE owner LIKE 'managed:m%'",
    )
    .bind(now)
    .execute(store.raw_pool_for_tests())
    .await?;
    println!(
        "\nloaded {count} managed certificates and {} expiring ACME certificates in {:.1} s",
        count / 10,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
