//! Alerts on a real `castellan serve` whose clock the test moves: a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on a loopback port) receives the 30-, 7- and 1-day alerts of a
//! certificate nobody renews, once each; a managed certificate whose issuer keeps refusing backs off, alerts
//! through a JSON webhook (retried when the webhook fails), and resolves once a renewal succeeds.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::acme::{Acme, Http};
use common::peers::{Daemon, free_port};
use common::{castellan, ok, openssl_p256_csr, run, text, write};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DAY: u64 = 86_400;

/// A JSON webhook on a loopback port that records what it is sent and fails the first `fail_first` requests.
struct Webhook {
    port: u16,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    fn start(fail_first: usize) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen += 1;
                let status = if seen <= fail_first { "503 Service Unavailable" } else { "200 OK" };
                if seen > fail_first {
                    sink.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                }
                let _ = write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Webhook { port, received }
    }

    fn wait_for(&self, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(hit) = self.received.lock().unwrap().iter().find(|v| found(v)) {
                return hit.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the webhook never received {what}: {:?}",
                self.received.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

struct Admin<'a> {
    acme: &'a Acme,
    http: Http,
    token: String,
}

impl Admin<'_> {
    fn new(acme: &Acme) -> Admin<'_> {
        let data = acme.dir.path().join("var");
        let config = acme.dir.path().join("castellan.toml");
        let out = run(castellan().arg("--data-dir").arg(&data).arg("--config").arg(config).args([
            "token",
            "bootstrap",
            "--json",
        ]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"].as_str().unwrap().to_owned();
        Admin { acme, http: Http::new(&acme.ca), token }
    }

    fn expect(&self, status: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let body = body.map(|b| b.to_string().into_bytes());
        let reply = self.http.send(method, &self.acme.server.url(&format!("/admin{path}")), &headers, body.as_deref());
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        if reply.body.is_empty() { Value::Null } else { reply.json() }
    }
}

/// Alertmanager's active alerts, through its API v2.
fn alertmanager_alerts(port: u16) -> Vec<Value> {
    let out =
        ok(Command::new("curl").args(["-sS", "--max-time", "5"]).arg(format!("http://127.0.0.1:{port}/api/v2/alerts")));
    serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}")).as_array().cloned().unwrap_or_default()
}

#[test]
fn alertmanager_receives_the_30_7_and_1_day_alerts_once_each() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let am_config = write(dir.path(), "alertmanager.yml", "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n");
    let mut alertmanager = Daemon::spawn(
        "alertmanager",
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", dir.path().join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
    );
    alertmanager.wait_ready(Duration::from_secs(30), |log| log.contains("Listening")).unwrap();

    let top = format!(
        "[lifecycle]\nsweep_secs = 1\n[alerts]\nreceivers = [{{ name = \"am\", kind = \"alertmanager\", url = \"http://127.0.0.1:{port}\" }}]\n"
    );
    let acme = Acme::start_full(&top, "", true);
    let admin = Admin::new(&acme);
    // A certificate nobody renews: issued from a CSR, 40 days.
    let csr = openssl_p256_csr(
        acme.dir.path(),
        "lonely",
        "/CN=lonely.castellan.test",
        &["-addext", "subjectAltName=DNS:lonely.castellan.test"],
    );
    let csr = std::fs::read_to_string(csr).unwrap();
    let issued = admin.expect(201, "POST", "/certificates", Some(json!({"csr": csr, "lifetime_secs": 40 * DAY})));
    let serial = issued["certificate"]["serial"].as_str().unwrap().to_owned();

    let wait_for_kind = |kind: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let alerts = alertmanager_alerts(port);
            let mine: Vec<&Value> = alerts
                .iter()
                .filter(|a| a["labels"]["serial_number"] == serial && a["labels"]["kind"] == kind)
                .collect();
            if let [alert] = mine.as_slice() {
                return (*alert).clone();
            }
            assert!(mine.len() <= 1, "{kind} delivered more than once: {mine:?}");
            assert!(Instant::now() < deadline, "no {kind} alert in Alertmanager: {alerts:#?}\n{}", acme.server.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert!(alertmanager_alerts(port).is_empty(), "nothing expires within 30 days yet");
    for (advance_days, kind, severity) in
        [(11, "expiry_30d", "warning"), (23, "expiry_7d", "warning"), (5, "expiry_1d", "critical")]
    {
        acme.advance_clock(advance_days * DAY);
        let alert = wait_for_kind(kind);
        assert_eq!(alert["labels"]["alertname"], "CertificateExpiringSoon");
        assert_eq!(alert["labels"]["severity"], severity);
        assert_eq!(alert["labels"]["subject_CN"], "lonely.castellan.test");
        assert!(alert["annotations"]["summary"].as_str().unwrap().contains(&serial), "{alert}");
    }
    // Once per threshold: the store remembers, whatever the number of passes since. (The server itself is not
    // asked: its TLS certificate, renewed by the shifted clock, is not valid yet by this machine's.)
    let kinds: Vec<String> = alertmanager_alerts(port)
        .iter()
        .filter(|a| a["labels"]["serial_number"] == serial)
        .map(|a| a["labels"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn a_failing_renewal_backs_off_alerts_through_the_webhook_and_resolves() {
    let webhook = Webhook::start(1);
    let top = format!(
        "[lifecycle]\nsweep_secs = 1\n[alerts]\nrenewal_failures = 2\nreceivers = [{{ name = \"hook\", kind = \"webhook\", url = \"http://127.0.0.1:{}/castellan\" }}]\n",
        webhook.port
    );
    let acme = Acme::start_full(&top, "", true);
    let admin = Admin::new(&acme);
    // Added while its group allows it; then the group stops allowing it, so every issuance is refused.
    admin.expect(
        201,
        "POST",
        "/groups",
        Some(json!({"name": "open", "policy": {"dns": {"allow": [".castellan.test"]}}})),
    );
    admin.expect(201, "POST", "/domains", Some(json!({"domain": "stuck.castellan.test", "group": "open"})));
    admin.expect(200, "PUT", "/groups/open/policy", Some(json!({"dns": {"allow": [".other.test"]}})));
    let wait_view = |what: &str, done: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = admin.expect(200, "GET", "/domains/stuck.castellan.test/certificate", None);
            if done(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "{what}: {view:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The first issuance may have raced the policy change; asking for a renewal now makes a refusal certain (it
    // returns the first attempt if that is still in flight).
    admin.expect(202, "POST", "/domains/stuck.castellan.test/renew", None);
    let view = wait_view("a failure", &|v| v["domain"]["renewal"]["failures"].as_i64().unwrap_or(0) >= 1);
    assert!(view["domain"]["renewal"]["last_error"].as_str().unwrap().contains("not allowed"), "{view}");
    // Backing off a minute: nothing happens until the clock says so.
    acme.advance_clock(61);
    let view = wait_view("the second failure", &|v| v["domain"]["renewal"]["failures"] == 2);
    assert_eq!(view["rotations"][0]["status"], "failed");

    // The webhook failed the first delivery; it is retried (30 s later by the clock).
    acme.advance_clock(31);
    let firing = webhook.wait_for("the firing alert", |v| v["status"] == "firing");
    assert_eq!(firing["alert"]["kind"], "renewal_failing");
    assert_eq!(firing["alert"]["managed"]["domain"], "stuck.castellan.test");
    assert!(firing["alert"]["summary"].as_str().unwrap().contains("not allowed"), "{firing}");

    // Fixed: the policy allows it again and the renewal succeeds; the alert resolves.
    admin.expect(200, "PUT", "/groups/open/policy", Some(json!({"dns": {"allow": [".castellan.test"]}})));
    admin.expect(202, "POST", "/domains/stuck.castellan.test/renew", None);
    wait_view("the renewal", &|v| {
        v["domain"]["renewal"]["failures"] == 0 && v["rotations"][0]["status"] == "succeeded"
    });
    let resolved = webhook.wait_for("the resolution", |v| v["status"] == "resolved");
    assert_eq!(resolved["alert"]["id"], firing["alert"]["id"]);
    let firing_count = webhook.received.lock().unwrap().iter().filter(|v| v["status"] == "firing").count();
    assert_eq!(firing_count, 1, "fired once");
}
