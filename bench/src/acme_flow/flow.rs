//! One certificate, start to finish: newOrder → authorization → http-01 challenge → poll → finalize with a fresh
//! CSR → poll → download.

use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan_acme_proto::b64;
use castellan_acme_proto::types::{
    Authorization, AuthorizationStatus, ChallengeStatus, Finalize, Identifier, NewOrder, Order, OrderStatus,
};
use der::Encode;
use serde_json::json;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::client::{AcmeClient, FlowError, Reply, Step};
use crate::responder::Tokens;

/// How a flow waits for the server.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    /// Sleep between polls when the server gives no Retry-After.
    pub interval: Duration,
    /// Upper bound on any sleep: Retry-After is honored up to this, so a server asking for seconds does not turn
    /// the benchmark into a measurement of its Retry-After value.
    pub cap: Duration,
    /// A flow polling longer than this fails with a timeout.
    pub timeout: Duration,
}

impl PollPolicy {
    fn sleep_for(&self, retry_after: Option<Duration>) -> Duration {
        retry_after.unwrap_or(self.interval).min(self.cap)
    }
}

/// What one successful flow cost.
pub struct FlowOutcome {
    pub polls: u32,
}

pub async fn run(
    client: &mut AcmeClient,
    tokens: &Arc<Tokens>,
    name: &str,
    poll: &PollPolicy,
) -> Result<FlowOutcome, FlowError> {
    let start = Instant::now();
    let mut polls = 0;

    let new_order = NewOrder {
        identifiers: vec![Identifier::dns(name)],
        not_before: None,
        not_after: None,
        profile: None,
        replaces: None,
    };
    let new_order =
        serde_json::to_value(new_order).map_err(|e| FlowError::protocol(Step::NewOrder, "client", e.to_string()))?;
    let url = client.directory().new_order.clone();
    let reply = client.post(Step::NewOrder, &url, Some(&new_order)).await?;
    let order_url = reply
        .location
        .clone()
        .ok_or_else(|| FlowError::protocol(Step::NewOrder, "missing Location", "newOrder without Location"))?;
    let order: Order = reply.json(Step::NewOrder)?;
    let [authz_url] = order.authorizations.as_slice() else {
        return Err(FlowError::protocol(
            Step::NewOrder,
            "unexpected authorizations",
            format!("{} authorizations for one identifier", order.authorizations.len()),
        ));
    };

    let authz: Authorization = client.post(Step::Authorization, authz_url, None).await?.json(Step::Authorization)?;
    // Held until the authorization is decided; dropping it unpublishes the token on every path.
    let mut published = None;
    if authz.status == AuthorizationStatus::Pending {
        let challenge = authz.challenges.iter().find(|c| c.kind == "http-01").ok_or_else(|| {
            FlowError::protocol(Step::Authorization, "no http-01 challenge", format!("{:?}", authz.challenges))
        })?;
        let token = challenge.token.as_deref().ok_or_else(|| {
            FlowError::protocol(Step::Authorization, "challenge without token", challenge.url.clone())
        })?;
        published = Some(tokens.publish(token, client.key_authorization(token)));
        let challenge_url = challenge.url.clone();
        let reply = client.post(Step::Challenge, &challenge_url, Some(&json!({}))).await?;
        let answered: castellan_acme_proto::types::Challenge = reply.json(Step::Challenge)?;
        if answered.status != ChallengeStatus::Valid {
            let mut wait = poll.sleep_for(reply.retry_after);
            loop {
                tokio::time::sleep(wait).await;
                check_timeout(start, poll, Step::PollAuthorization)?;
                polls += 1;
                let reply = client.post(Step::PollAuthorization, authz_url, None).await?;
                let authz: Authorization = reply.json(Step::PollAuthorization)?;
                match authz.status {
                    AuthorizationStatus::Valid => break,
                    AuthorizationStatus::Pending => wait = poll.sleep_for(reply.retry_after),
                    status => return Err(authorization_failed(&authz, status)),
                }
            }
        }
    } else if authz.status != AuthorizationStatus::Valid {
        return Err(authorization_failed(&authz, authz.status));
    }
    drop(published);

    let csr = csr_for(name).map_err(|e| FlowError::protocol(Step::Finalize, "client", e.to_string()))?;
    let finalize = serde_json::to_value(Finalize { csr: b64::encode(csr) })
        .map_err(|e| FlowError::protocol(Step::Finalize, "client", e.to_string()))?;
    let reply = match client.post(Step::Finalize, &order.finalize, Some(&finalize)).await {
        // A server that updates the order after the authorization asynchronously may not be ready yet.
        Err(FlowError::Problem { problem, .. }) if problem.kind.ends_with(":orderNotReady") => {
            wait_for_order(client, &order_url, OrderStatus::Ready, start, poll, &mut polls).await?;
            client.post(Step::Finalize, &order.finalize, Some(&finalize)).await?
        }
        other => other?,
    };
    let mut order: Order = reply.json(Step::Finalize)?;
    if order.status != OrderStatus::Valid {
        tokio::time::sleep(poll.sleep_for(reply.retry_after)).await;
        order = wait_for_order(client, &order_url, OrderStatus::Valid, start, poll, &mut polls).await?;
    }
    let certificate_url = order
        .certificate
        .ok_or_else(|| FlowError::protocol(Step::PollOrder, "valid order without certificate", order_url.clone()))?;

    let reply = client.post(Step::Certificate, &certificate_url, None).await?;
    if !reply.body.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(FlowError::protocol(Step::Certificate, "not a PEM chain", String::from_utf8_lossy(&reply.body)));
    }
    Ok(FlowOutcome { polls })
}

/// Polls the order until it reaches `target`; an invalid order fails with its error's problem type.
async fn wait_for_order(
    client: &mut AcmeClient,
    order_url: &str,
    target: OrderStatus,
    start: Instant,
    poll: &PollPolicy,
    polls: &mut u32,
) -> Result<Order, FlowError> {
    loop {
        check_timeout(start, poll, Step::PollOrder)?;
        *polls += 1;
        let reply: Reply = client.post(Step::PollOrder, order_url, None).await?;
        let order: Order = reply.json(Step::PollOrder)?;
        if order.status == target {
            return Ok(order);
        }
        match order.status {
            OrderStatus::Invalid => {
                let kind = order.error.as_ref().map(|p| crate::client::short_type(&p.kind)).unwrap_or_default();
                return Err(FlowError::protocol(
                    Step::PollOrder,
                    &format!("order invalid ({kind})"),
                    order.error.and_then(|p| p.detail).unwrap_or_default(),
                ));
            }
            OrderStatus::Valid if target == OrderStatus::Ready => return Ok(order),
            _ => tokio::time::sleep(poll.sleep_for(reply.retry_after)).await,
        }
    }
}

fn authorization_failed(authz: &Authorization, status: AuthorizationStatus) -> FlowError {
    let problem = authz.challenges.iter().find_map(|c| c.error.as_ref());
    let kind = problem.map(|p| crate::client::short_type(&p.kind)).unwrap_or_default();
    FlowError::protocol(
        Step::PollAuthorization,
        &format!("authorization {status:?} ({kind})").to_lowercase(),
        problem.and_then(|p| p.detail.clone()).unwrap_or_default(),
    )
}

fn check_timeout(start: Instant, poll: &PollPolicy, step: Step) -> Result<(), FlowError> {
    if start.elapsed() > poll.timeout { Err(FlowError::Timeout { step }) } else { Ok(()) }
}

/// A PKCS#10 request for `name` under a fresh P-256 key, as an ACME client makes for each certificate.
fn csr_for(name: &str) -> anyhow::Result<Vec<u8>> {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let mut builder = RequestBuilder::new(format!("CN={name}").parse()?, &key)?;
    builder.add_extension(&SubjectAltName(vec![GeneralName::DnsName(der::asn1::Ia5String::new(name)?)]))?;
    Ok(builder.build::<p256::ecdsa::DerSignature>()?.to_der()?)
}
