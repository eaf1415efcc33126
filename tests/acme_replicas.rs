//! Two `castellan serve` replicas on one PostgreSQL store, behind one external URL: a nonce from one replica is
//! good on the other, and a request replayed to both at once succeeds on exactly one of them.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use castellan_acme_proto::{JwsSigner, KeyRef};
use common::acme::{Acme, RawClient, Reply};
use serde_json::json;

/// The external URL both replicas answer for, as a load balancer in front of them would be.
const EXTERNAL: &str = "https://ca.castellan.test";

/// Where a URL of the external origin really goes on `server`.
fn on(server: &common::Server, url: &str) -> String {
    server.url(url.strip_prefix(EXTERNAL).unwrap_or_else(|| panic!("{url} is not under {EXTERNAL}")))
}

fn nonce_from(client: &RawClient, server: &common::Server) -> String {
    let reply = client.http.send("HEAD", &on(server, &client.url("newNonce")), &[], None);
    reply.header("replay-nonce").expect("nonce").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_nonces_and_a_replay_succeeds_once() {
    let Some(pg) = castellan_store::testkit::postgres().await else { return };
    let acme = Acme::start_with(&format!("database_url = \"{}\"", pg.url), &format!("external_url = \"{EXTERNAL}\""));
    let replica = acme.replica();
    let first = &acme.server;

    let mut client = RawClient::new(&first.url("/acme/directory"), &acme.ca);
    assert!(client.url("newAccount").starts_with(EXTERNAL), "{}", client.directory);

    // newAccount on the first replica with a nonce the second one issued.
    let jwk = KeyRef::Jwk(client.key.public_jwk().expect("jwk"));
    let new_account = client.url("newAccount");
    let body = client.jws(&client.key, jwk, &new_account, Some(nonce_from(&client, &replica)), Some(&json!({})));
    let created = client.post_raw(&on(first, &new_account), &body);
    assert_eq!(created.status, 201, "{}", created.text());
    client.kid = Some(created.header("location").expect("location").to_owned());

    // The same signed newOrder sent to both replicas at once, several times: one 201 and one badNonce each time.
    let new_order = client.url("newOrder");
    for round in 0..5 {
        let payload = json!({"identifiers": [{"type": "dns", "value": format!("r{round}.castellan.test")}]});
        let body =
            client.jws(&client.key, client.key_ref(), &new_order, Some(nonce_from(&client, first)), Some(&payload));
        let replies: Vec<Reply> = std::thread::scope(|scope| {
            let sends: Vec<_> = [first, &replica]
                .into_iter()
                .map(|server| {
                    let (client, body, url) = (&client, &body, on(server, &new_order));
                    scope.spawn(move || client.post_raw(&url, body))
                })
                .collect();
            sends.into_iter().map(|s| s.join().expect("send")).collect()
        });
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        statuses.sort();
        assert_eq!(statuses, [201, 400], "round {round}: {replies:?}");
        let refused = replies.iter().find(|r| r.status == 400).expect("refused");
        assert_eq!(refused.problem(), "badNonce");
    }

    // Both replicas appended to one intact audit chain.
    let report = pg.store.audit_verify().await.expect("verify");
    assert!(report.first_broken.is_none(), "{report:?}");
    let log = replica.stop();
    assert!(!log.contains("panicked"), "{log}");
}
