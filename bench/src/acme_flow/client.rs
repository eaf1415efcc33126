//! One ACME account's view of the server: its key, its nonce, its connection, and signed POSTs with the badNonce
//! retry every real client needs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use castellan_acme_proto::key_authorization::key_authorization;
use castellan_acme_proto::types::{Directory, NewAccount, Problem};
use castellan_acme_proto::{Jwk, KeyRef, ProtectedHeader, SignatureAlgorithm, sign_flattened};
use hyper::body::Bytes;
use hyper::{Method, header};
use p256::ecdsa::SigningKey;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::http::{HttpClient, HttpResponse, RequestTimeout};

/// A client gives up after this many badNonce answers in a row to one request.
const BAD_NONCE_RETRIES: u32 = 5;

/// The request a failure happened in, for the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    NewNonce,
    NewAccount,
    NewOrder,
    Authorization,
    Challenge,
    PollAuthorization,
    Finalize,
    PollOrder,
    Certificate,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::NewNonce => "newNonce",
            Step::NewAccount => "newAccount",
            Step::NewOrder => "newOrder",
            Step::Authorization => "authorization",
            Step::Challenge => "challenge",
            Step::PollAuthorization => "poll authorization",
            Step::Finalize => "finalize",
            Step::PollOrder => "poll order",
            Step::Certificate => "certificate",
        })
    }
}

/// Why a request or a flow failed, sorted into the kinds the report counts.
#[derive(Debug)]
pub enum FlowError {
    /// The server answered with a problem document.
    Problem { step: Step, status: u16, problem: Box<Problem> },
    /// An error status without a problem document.
    Http { step: Step, status: u16, body: String },
    /// Connection, TLS or HTTP framing failure.
    Transport { step: Step, detail: String },
    /// A well-formed answer that does not fit the protocol (missing header, bad JSON, an object turned invalid).
    Protocol { step: Step, kind: String, detail: String },
    /// Polling gave up.
    Timeout { step: Step },
    /// One request got no response in time.
    RequestTimeout { step: Step, after: Duration },
}

impl FlowError {
    /// (step, kind) for the error table; ACME problem types lose their URN prefix.
    pub fn key(&self) -> (Step, String) {
        match self {
            FlowError::Problem { step, problem, .. } => (*step, short_type(&problem.kind)),
            FlowError::Http { step, status, .. } => (*step, format!("HTTP {status} (no problem document)")),
            FlowError::Transport { step, .. } => (*step, "transport".into()),
            FlowError::Protocol { step, kind, .. } => (*step, kind.clone()),
            FlowError::Timeout { step } => (*step, "polling timeout".into()),
            FlowError::RequestTimeout { step, .. } => (*step, "no response (request timeout)".into()),
        }
    }

    pub fn detail(&self) -> String {
        match self {
            FlowError::Problem { status, problem, .. } => {
                format!("{status}: {}", problem.detail.as_deref().unwrap_or(""))
            }
            FlowError::Http { body, .. } => body.chars().take(200).collect(),
            FlowError::Transport { detail, .. } | FlowError::Protocol { detail, .. } => detail.clone(),
            FlowError::Timeout { .. } => String::new(),
            FlowError::RequestTimeout { after, .. } => format!("nothing within {after:?}"),
        }
    }

    /// Whether the connection or nonce may be in an unknown state, so the client should start clean.
    pub fn is_transport(&self) -> bool {
        matches!(self, FlowError::Transport { .. } | FlowError::RequestTimeout { .. })
    }

    pub fn is_request_timeout(&self) -> bool {
        matches!(self, FlowError::RequestTimeout { .. })
    }

    pub fn protocol(step: Step, kind: &str, detail: impl Into<String>) -> FlowError {
        FlowError::Protocol { step, kind: kind.to_owned(), detail: detail.into() }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, kind) = self.key();
        write!(f, "{kind} at {step}: {}", self.detail())
    }
}

impl std::error::Error for FlowError {}

pub fn short_type(kind: &str) -> String {
    kind.strip_prefix(Problem::ACME_PREFIX).unwrap_or(kind).to_owned()
}

/// A successful answer to a signed request.
pub struct Reply {
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, step: Step) -> Result<T, FlowError> {
        serde_json::from_slice(&self.body).map_err(|e| FlowError::protocol(step, "unparseable body", e.to_string()))
    }
}

/// Counters one client keeps without locking; merged at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCounters {
    pub requests: u64,
    pub bad_nonce_retries: u64,
    pub nonce_fetches: u64,
}

pub struct AcmeClient {
    http: HttpClient,
    directory: Arc<Directory>,
    key: SigningKey,
    jwk: Jwk,
    account_url: Option<String>,
    nonce: Option<String>,
    pub counters: ClientCounters,
}

impl AcmeClient {
    pub fn new(http: HttpClient, directory: Arc<Directory>, key: SigningKey) -> anyhow::Result<Self> {
        use castellan_acme_proto::JwsSigner;
        let jwk = key.public_jwk()?;
        Ok(AcmeClient {
            http,
            directory,
            key,
            jwk,
            account_url: None,
            nonce: None,
            counters: ClientCounters::default(),
        })
    }

    pub fn connects(&self) -> u64 {
        self.http.connects
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The key authorization for a challenge token under this account's key.
    pub fn key_authorization(&self, token: &str) -> String {
        key_authorization(token, &self.jwk)
    }

    /// Forgets the nonce after a transport failure: the request it was spent on may or may not have arrived.
    pub fn reset(&mut self) {
        self.nonce = None;
    }

    /// Registers the account (once per client); later requests name it by "kid".
    pub async fn new_account(&mut self) -> Result<(), FlowError> {
        let payload = serde_json::to_value(NewAccount { terms_of_service_agreed: Some(true), ..Default::default() })
            .map_err(|e| FlowError::protocol(Step::NewAccount, "client", e.to_string()))?;
        let url = self.directory.new_account.clone();
        let reply = self.post(Step::NewAccount, &url, Some(&payload)).await?;
        let location = reply
            .location
            .ok_or_else(|| FlowError::protocol(Step::NewAccount, "missing Location", "newAccount without Location"))?;
        self.account_url = Some(location);
        Ok(())
    }

    /// A signed POST: `payload` None is POST-as-GET (empty payload). Reuses the last Replay-Nonce; fetches one
    /// from newNonce only when it has none; retries badNonce with the nonce that came with the error.
    pub async fn post(&mut self, step: Step, url: &str, payload: Option<&Value>) -> Result<Reply, FlowError> {
        let payload = match payload {
            Some(v) => serde_json::to_vec(v).map_err(|e| FlowError::protocol(step, "client", e.to_string()))?,
            None => Vec::new(),
        };
        let mut attempt = 0;
        loop {
            let nonce = match self.nonce.take() {
                Some(n) => n,
                None => self.fresh_nonce().await?,
            };
            let key = match &self.account_url {
                Some(kid) => KeyRef::Kid(kid.clone()),
                None => KeyRef::Jwk(self.jwk.clone()),
            };
            let header = ProtectedHeader {
                alg: SignatureAlgorithm::Es256,
                key,
                nonce: Some(nonce),
                url: url.into(),
                extra: Map::new(),
            };
            let jws = sign_flattened(&header, &payload, &self.key)
                .map_err(|e| FlowError::protocol(step, "client", e.to_string()))?;
            let body = serde_json::to_vec(&jws).map_err(|e| FlowError::protocol(step, "client", e.to_string()))?;
            let response = self.send(step, Method::POST, url, Some("application/jose+json"), body).await?;
            if response.status.is_success() {
                return Ok(Reply {
                    location: response.header(header::LOCATION).map(str::to_owned),
                    retry_after: retry_after(&response),
                    body: response.body,
                });
            }
            let error = error_from(step, &response);
            if let FlowError::Problem { problem, .. } = &error
                && problem.kind.ends_with(":badNonce")
                && attempt < BAD_NONCE_RETRIES
            {
                attempt += 1;
                self.counters.bad_nonce_retries += 1;
                continue;
            }
            return Err(error);
        }
    }

    async fn fresh_nonce(&mut self) -> Result<String, FlowError> {
        self.counters.nonce_fetches += 1;
        let url = self.directory.new_nonce.clone();
        let response = self.send(Step::NewNonce, Method::HEAD, &url, None, Vec::new()).await?;
        if !response.status.is_success() {
            return Err(error_from(Step::NewNonce, &response));
        }
        self.nonce.take().ok_or_else(|| FlowError::protocol(Step::NewNonce, "missing Replay-Nonce", "newNonce"))
    }

    /// Sends a request and keeps any Replay-Nonce it carries (error responses carry one too).
    async fn send(
        &mut self,
        step: Step,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, FlowError> {
        self.counters.requests += 1;
        let response = self.http.request(method, url, content_type, body).await.map_err(|e| {
            match e.downcast_ref::<RequestTimeout>() {
                Some(RequestTimeout(after)) => FlowError::RequestTimeout { step, after: *after },
                None => FlowError::Transport { step, detail: format!("{e:#}") },
            }
        })?;
        if let Some(nonce) = response.header(header::HeaderName::from_static("replay-nonce")) {
            self.nonce = Some(nonce.to_owned());
        }
        Ok(response)
    }
}

fn error_from(step: Step, response: &HttpResponse) -> FlowError {
    let status = response.status.as_u16();
    match serde_json::from_slice::<Problem>(&response.body) {
        Ok(problem) => FlowError::Problem { step, status, problem: Box::new(problem) },
        Err(_) => FlowError::Http { step, status, body: String::from_utf8_lossy(&response.body).into_owned() },
    }
}

/// Retry-After in delay-seconds form; the HTTP-date form is treated as absent (servers under test on loopback
/// use seconds, and the flow caps the sleep anyway).
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response.header(header::RETRY_AFTER)?.trim().parse::<u64>().ok().map(Duration::from_secs)
}
