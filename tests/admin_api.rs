//! The admin API on a real `castellan serve`: bearer tokens and scopes on every documented operation, groups and
//! policies that then govern ACME, EAB credentials made through the API that admit an ACME account, certificate
//! revocation, the audit trail each change leaves, and token revocation.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use castellan_acme_proto::{JwsSigner, MacAlgorithm, b64, sign_eab};
use common::acme::{Acme, Http, RawClient, Reply, poll};
use common::{castellan, run, text};
use serde_json::{Value, json};

struct Admin {
    http: Http,
    base: String,
}

impl Admin {
    fn new(acme: &Acme) -> Admin {
        Admin { http: Http::new(&acme.ca), base: acme.server.url("") }
    }

    fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        let body = body.map(|b| b.to_string().into_bytes());
        self.http.send(method, &format!("{}{path}", self.base), &headers, body.as_deref())
    }

    /// Sends and asserts the status; returns the JSON body (Null when empty).
    fn expect(&self, status: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let reply = self.send(method, path, Some(token), body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        if reply.body.is_empty() { Value::Null } else { reply.json() }
    }
}

fn bootstrap(acme: &Acme, extra: &[&str]) -> std::process::Output {
    run(castellan()
        .arg("--data-dir")
        .arg(acme.dir.path().join("var"))
        .args(["token", "bootstrap", "--json"])
        .args(extra))
}

/// A concrete path for a documented one.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s == "{id}" {
                "1"
            } else if s.starts_with('{') {
                "x"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every documented operation: (method, path, scope); the scope is None for the public ones.
fn operations(document: &Value) -> Vec<(String, String, Option<String>)> {
    let mut ops = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let scope = secured.then(|| op["x-castellan-scope"].as_str().expect("scope").to_owned());
            ops.push((method.to_ascii_uppercase(), path.clone(), scope));
        }
    }
    ops
}

/// A fresh P-256 key's CSR for 127.0.0.1.
fn p256_csr_for_localhost_ip() -> String {
    common::acme::csr(&p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng), &["127.0.0.1"], &[])
}

/// newAccount with an external account binding made from (key id, base64url HMAC key).
fn register_with_eab(client: &mut RawClient, kid: &str, hmac: &str) -> Reply {
    let url = client.url("newAccount");
    let jwk = client.key.public_jwk().expect("jwk");
    let hmac = b64::decode(hmac).expect("hmac key is base64url");
    let binding = sign_eab(MacAlgorithm::Hs256, kid, &url, &hmac, &jwk);
    let payload = json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding});
    let reply = client.post(&url, Some(&payload));
    if reply.status == 201 {
        client.kid = reply.header("location").map(str::to_owned);
    }
    reply
}

#[test]
fn admin_api_authenticates_every_operation_and_audits_every_change() {
    let acme = Acme::start("");
    let admin = Admin::new(&acme);

    // The first token comes from the CLI, once.
    let out = bootstrap(&acme, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let boot: Value = serde_json::from_slice(&out.stdout).expect("bootstrap JSON");
    let root = boot["token"].as_str().expect("token").to_owned();
    let actor = format!("admin-token:{}:bootstrap", boot["id"]);
    let again = bootstrap(&acme, &["--name", "second"]);
    assert!(!again.status.success(), "a second bootstrap must be refused");
    assert!(text(&again.stderr).contains("unrevoked API token exists"), "{}", text(&again.stderr));

    // The document is public; every operation it lists with security refuses a missing or wrong token.
    let document = admin.send("GET", "/admin/openapi.json", None, None);
    assert_eq!(document.status, 200, "{}", document.text());
    let document = document.json();
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.0")));
    let ops = operations(&document);
    assert_eq!(ops.len(), 33, "{ops:?}");
    let wrong = format!("cst_{}", "A".repeat(43));
    for (method, path, scope) in &ops {
        let path = concrete(path);
        if scope.is_none() {
            assert_eq!(admin.send(method, &path, None, None).status, 200, "{method} {path}");
            continue;
        }
        for token in [None, Some(wrong.as_str())] {
            let reply = admin.send(method, &path, token, Some(&json!({})));
            assert_eq!(reply.status, 401, "{method} {path} with {token:?}: {}", reply.text());
            assert!(reply.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{reply:?}");
            assert_eq!(reply.json()["status"], 401);
        }
    }

    // A read token may read, and is refused (403) on every operation that needs admin.
    let reader = admin.expect(201, "POST", "/admin/tokens", &root, Some(&json!({"name": "reader", "scope": "read"})));
    let read = reader["token"].as_str().expect("token").to_owned();
    for (method, path, scope) in &ops {
        if scope.as_deref() == Some("admin") {
            let reply = admin.send(method, &concrete(path), Some(&read), Some(&json!({})));
            assert_eq!(reply.status, 403, "{method} {path} with a read token: {}", reply.text());
        }
    }
    admin.expect(200, "GET", "/admin/groups", &read, None);

    // A group, its policy replaced through the API; an invalid document is refused and changes nothing.
    let apps = json!({"name": "apps", "policy": {"dns": {"allow": [".apps.castellan.test"]}}});
    admin.expect(201, "POST", "/admin/groups", &root, Some(&apps));
    let before = admin.expect(200, "GET", "/admin/groups/apps", &read, None);
    let bad =
        admin.send("PUT", "/admin/groups/apps/policy", Some(&root), Some(&json!({"ip": {"allow": ["not-a-cidr"]}})));
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.json()["detail"].as_str().is_some_and(|d| d.contains("not-a-cidr")), "{}", bad.text());
    assert_eq!(
        admin.expect(200, "GET", "/admin/groups/apps", &read, None),
        before,
        "an invalid policy changed the group"
    );
    let policy = json!({"ip": {"allow": ["127.0.0.1/32"]}, "dns": {"allow": [".apps.castellan.test"]}});
    let replaced = admin.expect(200, "PUT", "/admin/groups/apps/policy", &root, Some(&policy));
    assert_eq!(replaced["policy"]["ip"]["allow"][0], "127.0.0.1/32", "{replaced}");

    // An EAB credential made through the API admits an ACME account to the group, whose policy then governs it.
    let eab = admin.expect(201, "POST", "/admin/eab", &root, Some(&json!({"group": "apps"})));
    let (kid, hmac) = (eab["key_id"].as_str().expect("key_id"), eab["hmac_key"].as_str().expect("hmac_key"));
    let mut client = acme.client();
    let registered = register_with_eab(&mut client, kid, hmac);
    assert_eq!(registered.status, 201, "{}", registered.text());
    let outside = client
        .post(&client.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "www.other.test"}]})));
    assert_eq!(outside.problem(), "rejectedIdentifier", "the default group would allow it; apps does not");
    assert!(outside.text().contains("group \\\"apps\\\""), "{}", outside.text());
    let listed = admin.expect(200, "GET", "/admin/accounts?group=apps", &read, None);
    let account_id = listed["accounts"][0]["id"].as_i64().expect("the account is in apps");
    assert_eq!(listed["accounts"][0]["eab_key_id"], kid);
    let eabs = admin.expect(200, "GET", "/admin/eab", &read, None);
    assert!(eabs["credentials"][0]["used_by_account"] == account_id, "{eabs}");
    let reuse = register_with_eab(&mut acme.client(), kid, hmac);
    assert_eq!(reuse.status, 403, "a used credential: {}", reuse.text());

    // A certificate for that account, found and revoked through the API.
    let (order_url, ready) = acme.ready_order(&client);
    let finalized =
        client.post(ready["finalize"].as_str().expect("finalize"), Some(&json!({"csr": p256_csr_for_localhost_ip()})));
    assert_eq!(finalized.status, 200, "{}", finalized.text());
    let order = poll(&client, &order_url, |o| o["status"] != "processing");
    assert_eq!(order["status"], "valid", "{order}");
    let found = admin.expect(200, "GET", "/admin/certificates?name=127.0.0.1&status=active", &read, None);
    // The server's own TLS certificate may name 127.0.0.1 too: pick the account's.
    let cert_id = found["certificates"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["account_id"] == account_id))
        .and_then(|c| c["id"].as_i64())
        .unwrap_or_else(|| panic!("no certificate of account {account_id} in {found}"));
    let shown = admin.expect(200, "GET", &format!("/admin/certificates/{cert_id}"), &read, None);
    assert!(shown["pem"].as_str().is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")), "{shown}");
    assert_eq!(shown["account_id"], account_id);
    let revoke = format!("/admin/certificates/{cert_id}/revoke");
    let revoked = admin.expect(200, "POST", &revoke, &root, Some(&json!({"reason": "keyCompromise"})));
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    admin.expect(409, "POST", &revoke, &root, Some(&json!({"reason": "keyCompromise"})));
    admin.expect(
        400,
        "POST",
        &format!("/admin/certificates/{cert_id}/revoke"),
        &root,
        Some(&json!({"reason": "certificateHold"})),
    );

    // The account deactivated; the global deny list; a second credential and a group made and deleted.
    let deactivated = admin.expect(200, "POST", &format!("/admin/accounts/{account_id}/deactivate"), &root, None);
    assert_eq!(deactivated["status"], "deactivated");
    let deny = json!({"dns": ["forbidden.castellan.test"]});
    admin.expect(200, "PUT", "/admin/policy/global-deny", &root, Some(&deny));
    let shown = admin.expect(200, "GET", "/admin/policy/global-deny", &read, None);
    assert_eq!(shown["deny"]["dns"][0], "forbidden.castellan.test", "{shown}");
    admin.expect(400, "PUT", "/admin/policy/global-deny", &root, Some(&json!({"ip": ["nope"]})));
    admin.expect(201, "POST", "/admin/eab", &root, Some(&json!({"group": "apps", "key_id": "spare"})));
    admin.expect(204, "DELETE", "/admin/eab/spare", &root, None);
    admin.expect(404, "POST", "/admin/eab", &root, Some(&json!({"group": "nobody"})));
    admin.expect(201, "POST", "/admin/groups", &root, Some(&json!({"name": "tmp"})));
    admin.expect(204, "DELETE", "/admin/groups/tmp", &root, None);
    admin.expect(404, "GET", "/admin/groups/tmp", &read, None);

    // Revoking the read token makes it 401 from then on.
    admin.expect(200, "DELETE", &format!("/admin/tokens/{}", reader["id"]), &root, None);
    assert_eq!(admin.send("GET", "/admin/groups", Some(&read), None).status, 401);
    let tokens = admin.expect(200, "GET", "/admin/tokens", &root, None);
    assert!(
        tokens["tokens"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "reader" && !t["revoked_at"].is_null()))
    );

    // Every change is in the audit log with the token as actor; the refused policy left no entry.
    let audit = admin.expect(200, "GET", "/admin/audit?limit=1000", &root, None);
    let entries = audit["entries"].as_array().expect("entries");
    let by_token: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["actor"] == actor.as_str())
        .map(|e| (e["action"].as_str().unwrap_or_default(), e["subject"].as_str().unwrap_or_default()))
        .collect();
    for expected in [
        ("token.create", format!("token:{}", reader["id"])),
        ("group.create", "group:apps".to_owned()),
        ("group.policy", "group:apps".to_owned()),
        ("eab.create", format!("eab:{kid}")),
        ("certificate.revoke", String::new()),
        ("account.deactivate", String::new()),
        ("setting.set", "setting:policy.global_deny".to_owned()),
        ("eab.create", "eab:spare".to_owned()),
        ("eab.delete", "eab:spare".to_owned()),
        ("group.create", "group:tmp".to_owned()),
        ("group.delete", "group:tmp".to_owned()),
        ("token.revoke", format!("token:{}", reader["id"])),
    ] {
        assert!(
            by_token.iter().any(|(a, s)| *a == expected.0 && (expected.1.is_empty() || *s == expected.1)),
            "no {expected:?} by {actor} in {by_token:?}"
        );
    }
    assert_eq!(by_token.iter().filter(|(a, _)| *a == "group.policy").count(), 1, "{by_token:?}");
    assert_eq!(by_token.iter().filter(|(a, _)| *a == "setting.set").count(), 1, "{by_token:?}");
    let page = admin.expect(200, "GET", "/admin/audit?after_seq=1&limit=2", &root, None);
    assert_eq!(page["entries"][0]["seq"], 2, "{page}");
    assert_eq!(page["next_after_seq"], 3, "{page}");
}

/// One grammar, two ways: the same commands against a running server (`--server`, with a token) and on the CA's
/// own machine (in process, on its database), with the same answers.
#[test]
fn the_cli_drives_the_api_remotely_and_locally_with_tables_and_json() {
    let acme = Acme::start("");
    let out = bootstrap(&acme, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token =
        serde_json::from_slice::<Value>(&out.stdout).expect("json")["token"].as_str().expect("token").to_owned();
    let data = acme.dir.path().join("var");
    let remote = |args: &[&str]| {
        let out = run(castellan()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("CASTELLAN_SERVER", acme.server.url(""))
            .env("CASTELLAN_ADMIN_TOKEN", &token));
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let local = |args: &[&str]| {
        let out = run(castellan().arg("--data-dir").arg(&data).args(args));
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let policy = common::write(acme.dir.path(), "apps.json", r#"{"dns": {"allow": [".apps.castellan.test"]}}"#);
    let (ok, stdout, stderr) = remote(&["group", "create", "apps", "--policy", policy.to_str().expect("path")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created group apps"), "{stdout}");

    // A table for people, the same from the server and from the database...
    let (ok, table, stderr) = remote(&["group", "list"]);
    assert!(ok, "{stderr}");
    assert!(table.starts_with("NAME") && table.contains("apps") && table.contains(".apps.castellan.test"), "{table}");
    let (ok, local_table, stderr) = local(&["group", "list"]);
    assert!(ok, "{stderr}");
    assert_eq!(local_table, table, "one grammar, one answer");
    // ...JSON for scripts, with RFC 3339 times.
    let (ok, json, stderr) = remote(&["eab", "create", "--group", "apps", "--json"]);
    assert!(ok, "{stderr}");
    let eab: Value = serde_json::from_str(&json).expect("json");
    assert!(eab["key_id"].is_string() && eab["hmac_key"].is_string(), "{eab}");
    let (ok, raw, _) = remote(&["api", "GET", "/eab"]);
    assert!(ok && raw.contains(eab["key_id"].as_str().expect("key id")), "{raw}");
    let (ok, listed, _) = local(&["eab", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed).expect("json");
    assert!(ok && listed["credentials"][0]["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{listed}");

    // A refusal from the API is the command's error, with the API's detail, both ways.
    let bad = common::write(acme.dir.path(), "bad.json", r#"{"dns": {"allow": ["Bad..name"]}}"#);
    for run_it in [&remote as &dyn Fn(&[&str]) -> (bool, String, String), &local] {
        let (ok, _, stderr) = run_it(&["group", "set-policy", "apps", "--policy", bad.to_str().expect("path")]);
        assert!(!ok && stderr.contains("HTTP 400"), "{stderr}");
    }
    // And without a valid token nothing is done.
    let out = run(castellan().arg("--data-dir").arg(&data).args([
        "group",
        "list",
        "--server",
        &acme.server.url(""),
        "--token",
        "cst_wrong",
    ]));
    assert!(!out.status.success() && text(&out.stderr).contains("HTTP 401"), "{}", text(&out.stderr));
    // Changes are audited as their actor: the token remotely, the operator's login locally.
    let (ok, audit, _) = remote(&["audit", "page", "--limit", "500"]);
    assert!(ok && audit.contains("group.create") && audit.contains("admin-token:"), "{audit}");
    let (ok, _, stderr) = local(&["eab", "delete", eab["key_id"].as_str().expect("key id")]);
    assert!(ok, "{stderr}");
    let (_, audit, _) = local(&["audit", "tail", "-n", "1", "--json"]);
    let audit: Value = serde_json::from_str(&audit).expect("json");
    assert_eq!(audit["entries"][0]["action"], "eab.delete", "{audit}");
    assert!(audit["entries"][0]["actor"].as_str().is_some_and(|a| a.starts_with("cli:")), "{audit}");
}
