//! The certificate inventory at scale, on SQLite and PostgreSQL in one run on one machine.
//!
//! For each backend (SQLite: a file in a temporary directory; PostgreSQL: a fresh database on $DATABASE_URL's
//! server, skipped when it is unset), loads `count` certificates through `insert_certificates_bulk` in
//! transactions of 1,000 — 1–3 names each under 2,000 registered domains (a host is renewed ~4 times, so names
//! repeat), random serials, notAfter uniform over the next 400 days, 2.5% revoked and 2.5% expired — with a
//! random ~700-byte stand-in for the DER, then refreshes the planner's statistics. Then measures, 1,000 times each
//! after 20 warm-up runs: the first page (100) of "expiring within 30 days", an exact-name search, and a suffix
//! search on a registered domain (~0.05% of the inventory). Prints the machine, the backend versions and a
//! markdown table. The goal is the expiring query's p99 under 50 ms at 1,000,000 certificates.
//!
//! Usage: cargo run --release -p castellan-bench --bin inventory -- [count, default 1000000] [--keep]
//!        cargo run --release -p castellan-bench --bin inventory -- --existing <database URL>
//! `--keep` leaves the databases in place and prints their URLs; `--existing` measures only the queries, on a
//! database such a run kept (to try an index or a schema change on it, say).
#[path = "machine.rs"]
mod machine;

use anyhow::{Context, Result, bail};
use castellan_store::inventory::{CertificateQuery, CertificateSource, CertificateStatus, NameMatch, NewCertificate};
use castellan_store::testkit::{self, TestStore};
use castellan_store::{Backend, CertificateId, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
const DAY: i64 = 86_400;
/// Registered domains the hosts live under: a suffix search for one matches ~count / DOMAINS certificates.
const DOMAINS: u64 = 2000;
const TLDS: [&str; 4] = ["com", "net", "org", "internal"];
const RUNS: usize = 1000;
const WARMUP: usize = 20;

struct Results {
    backend: &'static str,
    version: String,
    certificates: i64,
    /// None when measuring a database loaded earlier (--existing).
    load: Option<Load>,
    queries: Queries,
    size_bytes: u64,
}

struct Load {
    insert_rate: f64,
    status_rate: f64,
}

struct Queries {
    expiring: Latency,
    expiring_rows: usize,
    exact: Latency,
    suffix: Latency,
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut count: usize = 1_000_000;
    let (mut keep, mut existing) = (false, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keep" => keep = true,
            "--existing" => existing = Some(args.next().context("--existing needs a database URL")?),
            n => count = n.parse().with_context(|| format!("count {n:?}"))?,
        }
    }
    if count == 0 {
        bail!("count must be at least 1");
    }
    print_machine();

    if let Some(url) = existing {
        // Queries only, on a database an earlier run kept (say, after trying a schema change on it).
        let store = Store::open(&url).await?;
        let results = measure_store(&store, &url, None).await?;
        print_table(&[results]);
        return Ok(());
    }
    let mut results = Vec::new();
    let sqlite = testkit::sqlite().await;
    results.push(run(&sqlite, count, keep).await?);
    if keep {
        // The temporary directory would go with it.
        std::mem::forget(sqlite);
    }
    match std::env::var("DATABASE_URL") {
        Ok(_) => {
            let pg = testkit::postgres().await.context("a fresh PostgreSQL database")?;
            results.push(run(&pg, count, keep).await?);
        }
        Err(_) => println!("DATABASE_URL is not set: PostgreSQL not measured"),
    }
    print_table(&results);
    Ok(())
}

async fn run(t: &TestStore, count: usize, keep: bool) -> Result<Results> {
    let load = load(&t.store, count).await?;
    let results = measure_store(&t.store, &t.url, Some(load)).await?;
    if keep {
        println!("  kept: {}", t.url);
    } else if t.store.backend() == Backend::Postgres {
        drop_postgres_database(t).await?;
    }
    Ok(results)
}

async fn load(store: &Store, count: usize) -> Result<Load> {
    println!("\n{} {}: loading {count} certificates", backend_name(store), backend_version(store).await?);
    let now = store.now();
    let mut rng = StdRng::seed_from_u64(0x0ca5_7e11);
    let hosts = (count as u64 / 4).max(1);
    let (mut insert_time, mut revoke, mut expire) = (Duration::ZERO, Vec::new(), Vec::new());
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let mut fates = Vec::with_capacity(n);
        let rows: Vec<_> = (0..n)
            .map(|_| {
                let fate = rng.gen_range(0..1000);
                fates.push(fate);
                let host = rng.gen_range(0..hosts);
                fake_certificate(&mut rng, now, host, fate)
            })
            .collect();
        let started = Instant::now();
        let ids = store.insert_certificates_bulk(&rows).await.context("bulk insert")?;
        insert_time += started.elapsed();
        for (id, fate) in ids.into_iter().zip(fates) {
            match fate {
                0..25 => revoke.push(CertificateId(id)),
                25..50 => expire.push(CertificateId(id)),
                _ => {}
            }
        }
        done += n;
        if done % 100_000 == 0 {
            eprintln!("  {done} ({:.0}/s)", done as f64 / insert_time.as_secs_f64());
        }
    }
    let insert_rate = count as f64 / insert_time.as_secs_f64();

    // Revoked and expired ones, through the ordinary one-row path, 16 at a time.
    let started = Instant::now();
    let changes: Vec<_> = revoke
        .into_iter()
        .map(|id| (id, CertificateStatus::Revoked))
        .chain(expire.into_iter().map(|id| (id, CertificateStatus::Expired)))
        .collect();
    let status_count = changes.len();
    let mut tasks = tokio::task::JoinSet::new();
    for part in changes.chunks(changes.len().div_ceil(16).max(1)) {
        let (store, part) = (store.clone(), part.to_vec());
        tasks.spawn(async move {
            for (id, status) in part {
                store.set_certificate_status(id, status).await?;
            }
            Ok::<_, castellan_store::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let status_rate = status_count as f64 / started.elapsed().as_secs_f64();
    println!("  inserted at {insert_rate:.0}/s; {status_count} status changes at {status_rate:.0}/s");

    let started = Instant::now();
    store.refresh_statistics().await?;
    println!("  statistics refreshed (ANALYZE) in {:.1} s", started.elapsed().as_secs_f64());
    Ok(Load { insert_rate, status_rate })
}

async fn measure_store(store: &Store, url: &str, load: Option<Load>) -> Result<Results> {
    let certificates = store.certificate_count().await?;
    if certificates == 0 {
        bail!("no certificates to search");
    }
    let expiring_q =
        CertificateQuery { expiring_within: Some(Duration::from_secs(30 * 86_400)), limit: 100, ..Default::default() };
    let expiring_rows = store.search_certificates(&expiring_q).await?.items.len();
    let expiring = measure(|_| {
        let q = expiring_q.clone();
        async move { store.search_certificates(&q).await.map(|p| p.items.len()) }
    })
    .await?;
    // Names that exist: those of random certificates (ids run from 1 in a database this program filled).
    let mut rng = StdRng::seed_from_u64(7);
    let mut names = Vec::with_capacity(WARMUP + RUNS);
    while names.len() < WARMUP + RUNS {
        let cert = store.certificate(CertificateId(rng.gen_range(1..=certificates))).await?;
        names.extend(cert.names.first().cloned());
    }
    let exact = measure(|i| {
        let q = CertificateQuery { name: Some(NameMatch::Exact(names[i].clone())), limit: 100, ..Default::default() };
        async move { store.search_certificates(&q).await.map(|p| p.items.len()) }
    })
    .await?;
    let suffix = measure(|_| {
        let domain = domain_name(rng.gen_range(0..DOMAINS.min(certificates as u64 / 4).max(1)));
        async move {
            let q = CertificateQuery { name: Some(NameMatch::Suffix(domain)), limit: 100, ..Default::default() };
            store.search_certificates(&q).await.map(|p| p.items.len())
        }
    })
    .await?;
    let size_bytes = database_size(store, url).await?;
    println!(
        "  {certificates} certificates: expiring p50 {} p99 {} ms ({expiring_rows} rows); exact {} / {}; \
         suffix {} / {}; {:.1} MiB",
        ms(expiring.p50),
        ms(expiring.p99),
        ms(exact.p50),
        ms(exact.p99),
        ms(suffix.p50),
        ms(suffix.p99),
        size_bytes as f64 / 1048576.0
    );
    Ok(Results {
        backend: backend_name(store),
        version: backend_version(store).await?,
        certificates,
        load,
        queries: Queries { expiring, expiring_rows, exact, suffix },
        size_bytes,
    })
}

fn backend_name(store: &Store) -> &'static str {
    match store.backend() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// A realistic inventory row for `host` (renewals share names): 1–3 names, random serial.
fn fake_certificate(rng: &mut StdRng, now: i64, host: u64, fate: u32) -> (NewCertificate, Vec<u8>, Vec<u8>) {
    let host = host_name(host);
    let mut names = vec![format!("DNS:{host}")];
    match rng.gen_range(0..3) {
        0 => {}
        1 => names.push(format!("DNS:www.{host}")),
        _ => names.extend([format!("DNS:www.{host}"), format!("DNS:api.{host}")]),
    }
    let not_after =
        if (25..50).contains(&fate) { now - rng.gen_range(DAY..90 * DAY) } else { now + rng.gen_range(0..400 * DAY) };
    let mut serial = [0u8; 16];
    rng.fill(&mut serial);
    serial[0] = serial[0] & 0x7f | 0x01;
    let mut der = vec![0u8; rng.gen_range(650..750)];
    rng.fill(&mut der[..]);
    let sha = Sha256::digest(&der).to_vec();
    let mut hash = || {
        let mut h = [0u8; 32];
        rng.fill(&mut h);
        h.to_vec()
    };
    let cert = NewCertificate {
        issuer_id: None,
        issuer_key_id: vec![0x42; 20],
        issuer_dn: "CN=Castellan Bench Intermediate,O=Castellan".into(),
        serial: hex_lower(&serial),
        source: CertificateSource::InternalAcme,
        profile: Some("tls-server".into()),
        subject: String::new(),
        names,
        tbs_sha256: hash(),
        spki_sha256: hash(),
        not_before: not_after - 90 * DAY,
        not_after,
        account_id: None,
        owner: None,
        replaces_id: None,
    };
    (cert, der, sha)
}

fn host_name(host: u64) -> String {
    format!("svc{host}.{}", domain_name(host % DOMAINS))
}

fn domain_name(domain: u64) -> String {
    format!("d{domain}.{}", TLDS[(domain % TLDS.len() as u64) as usize])
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// p50 and p99 of RUNS sequential runs, after WARMUP; every run must return at least one row.
async fn measure<F, Fut>(mut query: F) -> Result<Latency>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = castellan_store::Result<usize>>,
{
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let fut = query(i);
        let started = Instant::now();
        let rows = fut.await?;
        let took = started.elapsed();
        if rows == 0 {
            bail!("a benchmark query found nothing");
        }
        if i >= WARMUP {
            times.push(took);
        }
    }
    times.sort();
    let at = |p: usize| times[(times.len() * p).div_ceil(100) - 1];
    Ok(Latency { p50: at(50), p99: at(99) })
}

async fn backend_version(store: &Store) -> Result<String> {
    let pool = store.raw_pool_for_tests();
    Ok(match store.backend() {
        Backend::Sqlite => sqlx::query_scalar::<_, String>("SELECT sqlite_version()").fetch_one(pool).await?,
        Backend::Postgres => {
            let v: String = sqlx::query_scalar("SHOW server_version").fetch_one(pool).await?;
            v.split_whitespace().next().unwrap_or(&v).to_owned()
        }
    })
}

/// SQLite: the file and its WAL after a checkpoint. PostgreSQL: pg_database_size.
async fn database_size(store: &Store, url: &str) -> Result<u64> {
    let pool = store.raw_pool_for_tests();
    match store.backend() {
        Backend::Sqlite => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
            let path = url.strip_prefix("sqlite://").context("SQLite URL")?.split('?').next().unwrap_or("");
            let mut total = 0;
            for suffix in ["", "-wal"] {
                if let Ok(meta) = std::fs::metadata(format!("{path}{suffix}")) {
                    total += meta.len();
                }
            }
            Ok(total)
        }
        Backend::Postgres => {
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(pool).await?;
            Ok(size as u64)
        }
    }
}

async fn drop_postgres_database(t: &TestStore) -> Result<()> {
    t.store.close().await;
    let name = t.url.rsplit('/').next().unwrap_or("").split('?').next().unwrap_or("");
    if !name.starts_with("castellan_test_") {
        bail!("refusing to drop {name:?}");
    }
    let base = std::env::var("DATABASE_URL")?;
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await?;
    sqlx::Executor::execute(&mut admin, format!("DROP DATABASE {name}").as_str()).await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print_table(results: &[Results]) {
    let row = |label: &str, cell: &dyn Fn(&Results) -> String| {
        let cells: Vec<String> = results.iter().map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    let lat = |l: &Latency| format!("{} / {}", ms(l.p50), ms(l.p99));
    let load = |r: &Results, f: fn(&Load) -> f64| r.load.as_ref().map(|l| format!("{:.0}", f(l))).unwrap_or("—".into());
    println!("\nlatencies over {RUNS} sequential runs after {WARMUP} warm-up runs\n");
    row("measurement", &|r| format!("{} {}", r.backend, r.version));
    println!("|---|{}", "---|".repeat(results.len()));
    row("certificates", &|r| r.certificates.to_string());
    row("bulk insert, 1,000 per transaction (certs/s)", &|r| load(r, |l| l.insert_rate));
    row("status change, one row, 16 concurrent (rows/s)", &|r| load(r, |l| l.status_rate));
    row("expiring within 30 days, first 100: p50 / p99 (ms)", &|r| lat(&r.queries.expiring));
    row("exact name, first 100: p50 / p99 (ms)", &|r| lat(&r.queries.exact));
    row("suffix (one of 2,000 domains), first 100: p50 / p99 (ms)", &|r| lat(&r.queries.suffix));
    row("database size (MiB)", &|r| format!("{:.0}", r.size_bytes as f64 / 1048576.0));
    row("bytes per certificate", &|r| format!("{:.0}", r.size_bytes as f64 / r.certificates as f64));
    let at_scale = results.iter().all(|r| r.certificates >= 1_000_000);
    let met =
        results.iter().all(|r| r.queries.expiring.p99 < Duration::from_millis(50) && r.queries.expiring_rows == 100);
    println!(
        "\ngoal (expiring p99 < 50 ms at 1,000,000): {}",
        match (at_scale, met) {
            (false, _) => "not applicable below 1,000,000",
            (true, true) => "met",
            (true, false) => "NOT met",
        }
    );
}

fn print_machine() {
    println!("machine: {}; castellan {}", machine::describe(), env!("CARGO_PKG_VERSION"));
}
