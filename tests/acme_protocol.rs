//! The ACME server's protocol rules, end to end against `castellan serve`: a full flow with a real http-01
//! validation, and each way a request can be wrong answered with its RFC 8555 problem type.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use castellan_acme_proto::{JwsSigner, KeyRef, b64};
use common::acme::{Acme, Reply, csr, poll};
use common::write;
use der::Decode;
use serde_json::{Value, json};

fn new_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)
}

#[test]
fn a_full_flow_issues_a_certificate_with_nonces_links_and_problem_documents() {
    let acme = Acme::start("");
    let mut client = acme.client();

    // Directory and newNonce.
    let directory = &client.directory;
    for field in ["newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"] {
        assert!(directory[field].as_str().is_some_and(|u| u.starts_with("https://")), "{field}: {directory}");
    }
    assert_eq!(directory["meta"]["externalAccountRequired"], false);
    assert!(directory["meta"]["profiles"]["tls-server"].is_string(), "{directory}");
    let head = client.http.send("HEAD", &client.url("newNonce"), &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("cache-control"), Some("no-store"));
    let get = client.http.send("GET", &client.url("newNonce"), &[], None);
    assert_eq!(get.status, 204);
    assert!(get.header("replay-nonce").is_some() && get.header("link").is_some_and(|l| l.contains("rel=\"index\"")));

    // onlyReturnExisting before the account exists.
    let missing = client.post(&client.url("newAccount"), Some(&json!({"onlyReturnExisting": true})));
    assert_eq!((missing.status, missing.problem().as_str()), (400, "accountDoesNotExist"));

    let created = client.register();
    assert_eq!(created.status, 201);
    assert!(created.header("replay-nonce").is_some());
    let jwk = KeyRef::Jwk(client.key.public_jwk().expect("jwk"));
    let body = client.jws(&client.key, jwk, &client.url("newAccount"), Some(client.nonce()), Some(&json!({})));
    let again = client.post_raw(&client.url("newAccount"), &body);
    assert_eq!(again.status, 200, "an existing key gets its account back");
    assert_eq!(again.header("location"), client.kid.as_deref());

    let (order_url, order) = acme.ready_order(&client);
    let finalize_url = order["finalize"].as_str().expect("finalize").to_owned();
    let cert_key = new_key();
    let finalized = client.post(&finalize_url, Some(&json!({"csr": csr(&cert_key, &["127.0.0.1"], &[])})));
    assert_eq!(finalized.status, 200, "{}", finalized.text());
    let order = poll(&client, &order_url, |o| o["status"] != "processing");
    assert_eq!(order["status"], "valid", "{order}");
    let cert = client.post(order["certificate"].as_str().expect("certificate URL"), None);
    assert_eq!(cert.status, 200);
    assert_eq!(cert.header("content-type"), Some("application/pem-certificate-chain"));
    let pem = cert.text();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "leaf and intermediate: {pem}");

    // The certificate verifies against the root with openssl, for the IP asked.
    let dir = tempfile::tempdir().expect("tempdir");
    let (leaf, chain) = common::split_leaf(&pem);
    let leaf_path = write(dir.path(), "leaf.pem", leaf);
    let chain_path = write(dir.path(), "chain.pem", chain);
    let verify = common::ok(
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&acme.ca)
            .arg("-untrusted")
            .arg(&chain_path)
            .args(["-verify_ip", "127.0.0.1"])
            .arg(&leaf_path),
    );
    assert!(verify.contains("OK"), "{verify}");

    // Finalizing again: the order is no longer ready.
    let twice = client.post(&finalize_url, Some(&json!({"csr": csr(&cert_key, &["127.0.0.1"], &[])})));
    assert_eq!((twice.status, twice.problem().as_str()), (403, "orderNotReady"));

    // The account's orders list names the order.
    let orders = client.post(&format!("{}/orders", client.kid.clone().expect("kid")), None).json();
    assert!(orders["orders"].as_array().is_some_and(|o| o.iter().any(|u| u == order_url.as_str())), "{orders}");

    // renewalInfo for the certificate: a window inside its lifetime, with Retry-After.
    let der_leaf = der::pem::decode_vec(leaf.as_bytes()).expect("pem").1;
    let parsed = x509_cert::Certificate::from_der(&der_leaf).expect("cert");
    let aki = castellan_ca::extensions::issuer_key_id(
        &x509_cert::Certificate::from_der(&der::pem::decode_vec(chain.as_bytes()).expect("pem").1).expect("issuer"),
    )
    .expect("aki");
    let cert_id = format!("{}.{}", b64::encode(aki), b64::encode(parsed.tbs_certificate.serial_number.as_bytes()));
    let info = client.http.send("GET", &format!("{}/{cert_id}", client.url("renewalInfo")), &[], None);
    assert_eq!(info.status, 200, "{}", info.text());
    assert!(info.header("retry-after").is_some());
    assert!(info.json()["suggestedWindow"]["start"].is_string());

    // Revocation by the account, then again: alreadyRevoked.
    let revoke = json!({"certificate": b64::encode(&der_leaf), "reason": 4});
    assert_eq!(client.post(&client.url("revokeCert"), Some(&revoke)).status, 200);
    let again = client.post(&client.url("revokeCert"), Some(&revoke));
    assert_eq!(again.problem(), "alreadyRevoked");
    let due = client.http.send("GET", &format!("{}/{cert_id}", client.url("renewalInfo")), &[], None).json();
    let end = due["suggestedWindow"]["end"].as_str().expect("end").to_owned();
    let end = time::OffsetDateTime::parse(&end, &time::format_description::well_known::Rfc3339).expect("time");
    assert!(end < time::OffsetDateTime::now_utc(), "a revoked certificate is due for renewal now: {due}");
}

/// Sends a JWS with a hand-written protected header and signature.
fn raw_jws(header: &Value, payload: &Value, signature: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "protected": b64::encode(header.to_string()),
        "payload": b64::encode(payload.to_string()),
        "signature": b64::encode(signature),
    }))
    .expect("json")
}

#[test]
fn bad_requests_get_the_problem_type_the_rfc_names() {
    let acme = Acme::start("");
    let client = acme.registered();
    let new_order = client.url("newOrder");
    let order_payload = json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]});

    // Content-Type other than application/jose+json: 415.
    let body = client.jws(&client.key, client.key_ref(), &new_order, Some(client.nonce()), Some(&order_payload));
    let wrong_type = client.http.send("POST", &new_order, &[("Content-Type", "application/json")], Some(&body));
    assert_eq!((wrong_type.status, wrong_type.problem().as_str()), (415, "malformed"));

    // A nonce used twice: badNonce, with a fresh nonce to retry with.
    let body = client.jws(&client.key, client.key_ref(), &new_order, Some(client.nonce()), Some(&order_payload));
    assert_eq!(client.post_raw(&new_order, &body).status, 201);
    let replay = client.post_raw(&new_order, &body);
    assert_eq!((replay.status, replay.problem().as_str()), (400, "badNonce"));
    assert!(replay.header("replay-nonce").is_some());
    let made_up = client.jws(&client.key, client.key_ref(), &new_order, Some("bm9wZQ".into()), Some(&order_payload));
    assert_eq!(client.post_raw(&new_order, &made_up).problem(), "badNonce");

    // "url" naming another resource than the one posted to.
    let body = client.jws(
        &client.key,
        client.key_ref(),
        &client.url("revokeCert"),
        Some(client.nonce()),
        Some(&order_payload),
    );
    assert_eq!(client.post_raw(&new_order, &body).problem(), "unauthorized");

    // A kid that is not an account of this server.
    let kid = format!("{}9999", client.kid.clone().expect("kid"));
    let body = client.jws(&client.key, KeyRef::Kid(kid), &new_order, Some(client.nonce()), Some(&order_payload));
    assert_eq!(client.post_raw(&new_order, &body).problem(), "accountDoesNotExist");

    // alg "none" and HS256.
    let jwk = client.key.public_jwk().expect("jwk").to_value();
    for alg in ["none", "HS256"] {
        let header = json!({"alg": alg, "jwk": jwk, "nonce": client.nonce(), "url": client.url("newAccount")});
        let reply = client.post_raw(&client.url("newAccount"), &raw_jws(&header, &json!({}), b"x"));
        assert_eq!(reply.problem(), "badSignatureAlgorithm", "alg {alg}");
        assert!(reply.json()["algorithms"].is_array());
    }

    // A body over the limit.
    let huge = json!({"identifiers": [{"type": "dns", "value": "a".repeat(70_000)}]});
    let body = client.jws(&client.key, client.key_ref(), &new_order, Some(client.nonce()), Some(&huge));
    let big = client.post_raw(&new_order, &body);
    assert_eq!((big.status, big.problem().as_str()), (413, "malformed"));

    // Malformed JSON, and malformed base64 inside a JWS.
    assert_eq!(client.post_raw(&new_order, b"{not json").problem(), "malformed");
    let bad_b64 = serde_json::to_vec(&json!({"protected": "***", "payload": "", "signature": ""})).expect("json");
    assert_eq!(client.post_raw(&new_order, &bad_b64).problem(), "malformed");

    // Unsupported identifier types, invalid names and unknown profiles.
    let odd = client.post(&new_order, Some(&json!({"identifiers": [{"type": "email", "value": "a@b.example"}]})));
    assert_eq!(odd.problem(), "unsupportedIdentifier");
    let bad = client.post(&new_order, Some(&json!({"identifiers": [{"type": "dns", "value": "-bad-.example"}]})));
    assert_eq!(bad.problem(), "rejectedIdentifier");
    assert_eq!(bad.json()["subproblems"][0]["identifier"]["value"], "-bad-.example");
    let profile =
        client.post(&new_order, Some(&json!({"identifiers": order_payload["identifiers"], "profile": "nope"})));
    assert_eq!(profile.problem(), "invalidProfile");

    // Finalize before the order is ready.
    let pending = client.post(&new_order, Some(&order_payload));
    let finalize = pending.json()["finalize"].as_str().expect("finalize").to_owned();
    let early = client.post(&finalize, Some(&json!({"csr": csr(&new_key(), &["127.0.0.1"], &[])})));
    assert_eq!((early.status, early.problem().as_str()), (403, "orderNotReady"));

    // Another account's order and authorization.
    let other = acme.registered();
    let order_url = pending.header("location").expect("location").to_owned();
    assert_eq!(other.post(&order_url, None).problem(), "unauthorized");
    let authz_url = pending.json()["authorizations"][0].as_str().expect("authz").to_owned();
    assert_eq!(other.post(&authz_url, None).problem(), "unauthorized");
    assert_eq!(other.post(&format!("{order_url}/finalize"), Some(&json!({"csr": "AA"}))).problem(), "unauthorized");

    // CSRs the order cannot accept.
    let (_, ready) = acme.ready_order(&client);
    let finalize = ready["finalize"].as_str().expect("finalize").to_owned();
    let extra = client.post(&finalize, Some(&json!({"csr": csr(&new_key(), &["127.0.0.1"], &["extra.example"])})));
    assert_eq!(extra.problem(), "badCSR");
    assert!(extra.json()["detail"].as_str().is_some_and(|d| d.contains("extra.example")));
    let missing = client.post(&finalize, Some(&json!({"csr": csr(&new_key(), &[], &["other.example"])})));
    assert_eq!(missing.problem(), "badCSR");
    let account_key = client.post(&finalize, Some(&json!({"csr": csr(&client.key, &["127.0.0.1"], &[])})));
    assert_eq!(account_key.problem(), "badCSR");
    assert!(account_key.json()["detail"].as_str().is_some_and(|d| d.contains("account key")));
    let dir = tempfile::tempdir().expect("tempdir");
    common::ok(std::process::Command::new("openssl").current_dir(dir.path()).args([
        "req",
        "-new",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        "weak.key",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-outform",
        "DER",
        "-out",
        "weak.csr",
    ]));
    let weak = std::fs::read(dir.path().join("weak.csr")).expect("csr");
    let weak = client.post(&finalize, Some(&json!({"csr": b64::encode(weak)})));
    assert_eq!(weak.problem(), "badCSR");
    let garbage = client.post(&finalize, Some(&json!({"csr": "!!!"})));
    assert_eq!(garbage.problem(), "badCSR");
    // After all those refusals the order is still ready and can be finalized properly.
    let good = client.post(&finalize, Some(&json!({"csr": csr(&new_key(), &["127.0.0.1"], &[])})));
    assert_eq!(good.status, 200, "{}", good.text());

    // Unknown resources and methods are problem documents too; nothing above made the server fail.
    let unknown = client.post(&acme.server.url("/acme/nothing-here"), None);
    assert_eq!((unknown.status, unknown.problem().as_str()), (404, "malformed"));
    let get_order = client.http.send("GET", &client.url("newOrder"), &[], None);
    assert_eq!((get_order.status, get_order.problem().as_str()), (405, "malformed"));
    let log = acme.server.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn accounts_roll_keys_deactivate_and_list_orders() {
    let acme = Acme::start("orders_page_size = 2");
    let mut client = acme.registered();
    let kid = client.kid.clone().expect("kid");

    // Contacts.
    let updated = client.post(&kid, Some(&json!({"contact": ["mailto:ops@castellan.test"]})));
    assert_eq!(updated.json()["contact"][0], "mailto:ops@castellan.test");
    assert_eq!(client.post(&kid, Some(&json!({"contact": ["tel:+1"]}))).problem(), "unsupportedContact");

    // Key rollover (RFC 8555 §7.3.5): inner JWS by the new key, with jwk, same url, no nonce.
    let new_key = new_key();
    let url = client.url("keyChange");
    let inner_payload = json!({"account": kid, "oldKey": client.key.public_jwk().expect("jwk").to_value()});
    let inner = client.jws(&new_key, KeyRef::Jwk(new_key.public_jwk().expect("jwk")), &url, None, Some(&inner_payload));
    let inner: Value = serde_json::from_slice(&inner).expect("inner");
    let rolled = client.post(&url, Some(&inner));
    assert_eq!(rolled.status, 200, "{}", rolled.text());
    // The old key no longer signs for the account; the new one does.
    assert_eq!(client.post(&kid, None).problem(), "malformed");
    client.key = new_key;
    assert_eq!(client.post(&kid, None).status, 200);

    // A key change to a key another account holds: 409 with that account's URL.
    let other = acme.registered();
    let inner_payload = json!({"account": kid, "oldKey": client.key.public_jwk().expect("jwk").to_value()});
    let inner =
        client.jws(&other.key, KeyRef::Jwk(other.key.public_jwk().expect("jwk")), &url, None, Some(&inner_payload));
    let inner: Value = serde_json::from_slice(&inner).expect("inner");
    let taken = client.post(&url, Some(&inner));
    assert_eq!(taken.status, 409, "{}", taken.text());
    assert_eq!(taken.header("location"), other.kid.as_deref());

    // Orders list, paginated two at a time.
    for _ in 0..3 {
        client.post(
            &client.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "list.castellan.test"}]})),
        );
    }
    let first = client.post(&format!("{kid}/orders"), None);
    assert_eq!(first.json()["orders"].as_array().map(Vec::len), Some(2));
    let next = first.header("link").and_then(|l| l.split('\n').find(|l| l.contains("rel=\"next\""))).expect("next");
    let next_url = next.trim_start_matches('<').split('>').next().expect("url").to_owned();
    let second = client.post(&next_url, None);
    assert_eq!(second.json()["orders"].as_array().map(Vec::len), Some(1));

    // Deactivation: afterwards the account can do nothing.
    let deactivated = client.post(&kid, Some(&json!({"status": "deactivated"})));
    assert_eq!(deactivated.json()["status"], "deactivated");
    let after = client
        .post(&client.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "x.castellan.test"}]})));
    assert_eq!(after.problem(), "unauthorized");
    let _ = Reply::text(&after);
}

#[test]
fn requests_do_not_wait_for_slow_outcomes_and_chunked_bodies_are_read() {
    // With no waiting at all, answers come back before validation and signing finish.
    let acme = Acme::start("wait_for_outcome_ms = 0");
    let client = acme.registered();

    // A chunked request body (no Content-Length) is accepted like any other.
    let payload = json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]});
    let body = client.jws(&client.key, client.key_ref(), &client.url("newOrder"), Some(client.nonce()), Some(&payload));
    let chunked = client.http.send(
        "POST",
        &client.url("newOrder"),
        &[("Content-Type", "application/jose+json"), ("Transfer-Encoding", "chunked")],
        Some(&body),
    );
    assert_eq!(chunked.status, 201, "{}", chunked.text());

    let order = chunked.json();
    let order_url = chunked.header("location").expect("location").to_owned();
    let authz = client.post(order["authorizations"][0].as_str().expect("authz"), None).json();
    let challenge = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == "http-01")
        .expect("http-01")
        .clone();
    let token = challenge["token"].as_str().expect("token");
    let thumbprint = client.key.public_jwk().expect("jwk").thumbprint();
    acme.responder.serve(token, &format!("{token}.{thumbprint}"));
    let started = client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
    assert_eq!(started.json()["status"], "processing", "{}", started.text());
    assert!(started.header("retry-after").is_some(), "{started:?}");
    // A second POST while it runs shows the same validation rather than starting another.
    let again = client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
    assert!(again.json()["status"] == "processing" || again.json()["status"] == "valid", "{}", again.text());

    let ready = poll(&client, &order_url, |o| o["status"] != "pending");
    assert_eq!(ready["status"], "ready", "{ready}");
    let finalized = client.post(
        ready["finalize"].as_str().expect("finalize"),
        Some(&json!({"csr": csr(&new_key(), &["127.0.0.1"], &[])})),
    );
    assert_eq!(finalized.json()["status"], "processing", "{}", finalized.text());
    assert_eq!(finalized.header("retry-after"), Some("1"));
    assert_eq!(finalized.header("location"), Some(order_url.as_str()));
    let valid = poll(&client, &order_url, |o| o["status"] != "processing");
    assert_eq!(valid["status"], "valid", "{valid}");
    assert!(valid["certificate"].is_string());
}

#[test]
fn work_a_dead_server_left_in_flight_is_closed_at_the_next_start() {
    let acme = Acme::start("");
    let client = acme.registered();
    let payload = json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]});
    let validating = client.post(&client.url("newOrder"), Some(&payload));
    let validating_url = validating.header("location").expect("location").to_owned();
    let (finalizing_url, _) = acme.ready_order(&client);
    let common::acme::Acme { dir, server, ca, responder: _responder, .. } = acme;
    server.stop();

    // As a replica that died mid-way would leave them: a validation and a finalization long in flight.
    let db = dir.path().join("var/castellan.db");
    let order_id = |url: &str| url.rsplit('/').next().expect("id").to_owned();
    let sql = format!(
        "UPDATE challenges SET status = 'processing', started_at = 1 WHERE id = (SELECT MIN(c.id) FROM challenges c \
           JOIN order_authorizations oa ON oa.authorization_id = c.authorization_id WHERE oa.order_id = {}); \
         UPDATE authorizations SET status = 'pending', expires_at = 4102444800 WHERE id IN (SELECT authorization_id \
           FROM order_authorizations WHERE order_id = {}); \
         UPDATE orders SET status = 'pending' WHERE id = {}; \
         UPDATE orders SET status = 'processing', updated_at = 1 WHERE id = {};",
        order_id(&validating_url),
        order_id(&validating_url),
        order_id(&validating_url),
        order_id(&finalizing_url),
    );
    common::ok(std::process::Command::new("sqlite3").arg(&db).arg(&sql));

    // The next start sweeps at once.
    let restarted = common::Server::start(&dir.path().join("var"), Some(&dir.path().join("castellan.toml")));
    let client = common::acme::RawClient { http: common::acme::Http::new(&ca), ..client };
    let rebase = |url: &str| {
        let path = &url[url.find("/acme/").expect("acme path")..];
        restarted.url(path)
    };
    let mut client = client;
    client.kid = client.kid.as_deref().map(rebase);
    client.directory = client.http.send("GET", &restarted.url("/acme/directory"), &[], None).json();
    let closed = poll(&client, &rebase(&finalizing_url), |o| o["status"] != "processing");
    assert_eq!(closed["status"], "invalid", "{closed}");
    assert_eq!(closed["error"]["type"], "urn:ietf:params:acme:error:serverInternal");
    let closed = poll(&client, &rebase(&validating_url), |o| o["status"] != "pending");
    assert_eq!(closed["status"], "invalid", "{closed}");
    assert!(closed["error"]["detail"].as_str().is_some_and(|d| d.contains("interrupted")), "{closed}");
    let log = restarted.stop();
    assert!(log.contains("closed work a server left unfinished"), "{log}");
}
