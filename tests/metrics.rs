//! `/admin/metrics` scraped by a real Prometheus (Debian's `prometheus`, started here on a loopback port) over
//! HTTPS with a read-scope API token: the managed certificate's notAfter arrives as `x509_cert_not_after` (the
//! x509-certificate-exporter convention), with renewals by outcome, ACME requests and the renewal queue, and
//! Prometheus's own query API gives them back.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::acme::{Acme, Http};
use common::peers::{Daemon, free_port};
use common::{castellan, ok, run, text, write};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// Prometheus's instant query, through its HTTP API.
fn query(port: u16, promql: &str) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let out = ok(Command::new("curl")
        .args(["-sS", "--max-time", "5", "--data-urlencode"])
        .arg(format!("query={promql}"))
        .arg(&url));
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["status"], "success", "{answer}");
    answer["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn prometheus_scrapes_certificate_expiry_renewals_and_acme_requests() {
    let acme = Acme::start("");
    let data = acme.dir.path().join("var");
    let boot = run(castellan().arg("--data-dir").arg(&data).args(["token", "bootstrap", "--json"]));
    assert!(boot.status.success(), "{}", text(&boot.stderr));
    let admin_token = serde_json::from_slice::<Value>(&boot.stdout).unwrap()["token"].as_str().unwrap().to_owned();
    let http = Http::new(&acme.ca);
    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string().into_bytes());
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        http.send(method, &acme.server.url(&format!("/admin{path}")), &headers, body.as_deref())
    };
    let scrape = call("POST", "/tokens", &admin_token, Some(json!({"name": "prometheus", "scope": "read"})));
    assert_eq!(scrape.status, 201, "{}", scrape.text());
    let scrape_token = scrape.json()["token"].as_str().unwrap().to_owned();
    let added = call("POST", "/domains", &admin_token, Some(json!({"domain": "metrics.castellan.test"})));
    assert_eq!(added.status, 201, "{}", added.text());
    // Some ACME traffic to count.
    assert_eq!(http.send("GET", &acme.server.url("/acme/directory"), &[], None).status, 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    let certificate = loop {
        let view = call("GET", "/domains/metrics.castellan.test/certificate", &scrape_token, None).json();
        if !view["certificate"].is_null() {
            break view["certificate"].clone();
        }
        assert!(Instant::now() < deadline, "never issued: {view}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // What Prometheus will parse, straight from the server first.
    let exposition = call("GET", "/metrics", &scrape_token, None);
    assert_eq!(exposition.status, 200);
    assert!(exposition.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text")));
    let body = exposition.text();
    assert!(body.ends_with("# EOF\n") && body.matches("# EOF").count() == 1, "{body}");
    assert_eq!(call("GET", "/metrics", "cst_nothing", None).status, 401, "metrics need a token");

    let dir = acme.dir.path();
    write(dir, "scrape.token", &scrape_token);
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: castellan\n    scheme: https\n    \
         metrics_path: /admin/metrics\n    authorization:\n      credentials_file: {token}\n    tls_config:\n      \
         ca_file: {ca}\n    static_configs:\n      - targets: ['{target}']\n",
        token = dir.join("scrape.token").display(),
        ca = acme.ca.display(),
        target = acme.server.address,
    );
    let config = write(dir, "prometheus.yml", config);
    let mut prometheus = Daemon::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
    );
    prometheus
        .wait_ready(Duration::from_secs(30), |log| log.contains("Server is ready to receive web requests"))
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        let found = query(port, "x509_cert_not_after{managed=\"metrics.castellan.test\"}");
        if !found.is_empty() {
            break found;
        }
        let targets = ok(Command::new("curl").arg("-sS").arg(format!("http://127.0.0.1:{port}/api/v1/targets")));
        assert!(Instant::now() < deadline, "no series scraped; targets: {targets}\n{}", prometheus.log());
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(series.len(), 1, "{series:?}");
    let labels = &series[0]["metric"];
    assert_eq!(labels["serial_number"], certificate["serial"]);
    assert_eq!(labels["subject_CN"], "metrics.castellan.test");
    assert_eq!(labels["issuer_CN"], "Castellan Intermediate CA");
    let value: i64 = series[0]["value"][1].as_str().unwrap().parse().unwrap();
    let not_after = time::OffsetDateTime::parse(
        certificate["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert_eq!(value, not_after);

    // An alert rule of x509-certificate-exporter's kind works as written.
    let soon = query(port, "(x509_cert_not_after - time()) / 86400 < 400");
    assert!(!soon.is_empty(), "the rule sees the certificate");
    let renewals = query(port, "castellan_renewals_total{outcome=\"succeeded\",issuer=\"internal\"}");
    assert_eq!(renewals.first().map(|r| r["value"][1].clone()), Some(json!("1")), "{renewals:?}");
    let directory = query(port, "castellan_acme_requests_total{endpoint=\"/directory\",status=\"200\"}");
    assert!(!directory.is_empty(), "ACME requests are counted");
    let managed = query(port, "castellan_managed_certificates");
    assert_eq!(managed.first().map(|r| r["value"][1].clone()), Some(json!("1")));
    assert!(!query(port, "castellan_hsm_signature_seconds_count{purpose=\"certificate\"}").is_empty());
}
