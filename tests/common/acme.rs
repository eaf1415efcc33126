//! A raw ACME client for protocol tests: JWS built with acme-proto, sent with curl, so a test can send exactly
//! the wrong thing it means to and read the answer byte for byte.

use castellan_acme_proto::{JwsSigner, KeyRef, ProtectedHeader, SignatureAlgorithm, sign_flattened};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Server, run, text, write};
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP response as curl saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names; repeated headers joined with "\n".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The problem type's suffix ("badNonce"), asserting the body is an RFC 7807 problem document.
    pub fn problem(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "not a problem: {self:?}");
        let kind = self.json()["type"].as_str().unwrap_or_default().to_owned();
        kind.strip_prefix("urn:ietf:params:acme:error:").unwrap_or(&kind).to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Http {
    ca: PathBuf,
}

impl Http {
    pub fn new(ca: &Path) -> Http {
        Http { ca: ca.to_owned() }
    }

    /// Sends a request; `body` goes through a file so any bytes can be sent.
    pub fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = dir.path().join("head");
        let out = dir.path().join("body");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "--cacert"]).arg(&self.ca).arg("-D").arg(&head).arg("-o").arg(&out);
        if method == "HEAD" {
            cmd.arg("-I");
        } else {
            cmd.args(["-X", method]);
        }
        for (name, value) in headers {
            cmd.arg("-H").arg(format!("{name}: {value}"));
        }
        if let Some(body) = body {
            let file = dir.path().join("request");
            std::fs::write(&file, body).expect("write body");
            cmd.arg("--data-binary").arg(format!("@{}", file.display()));
        }
        let result = run(cmd.arg(url));
        assert!(result.status.success(), "curl {url} failed: {}", text(&result.stderr));
        let head = std::fs::read_to_string(&head).unwrap_or_default();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let entry = headers.entry(name.trim().to_ascii_lowercase()).or_default();
                if !entry.is_empty() {
                    entry.push('\n');
                }
                entry.push_str(value.trim());
            }
        }
        Reply { status, headers, body: std::fs::read(&out).unwrap_or_default() }
    }
}

/// An ACME account key and what the server told us about it.
pub struct RawClient {
    pub http: Http,
    pub directory: Value,
    pub key: p256::ecdsa::SigningKey,
    pub kid: Option<String>,
}

impl RawClient {
    pub fn new(directory_url: &str, ca: &Path) -> RawClient {
        let http = Http::new(ca);
        let directory = http.send("GET", directory_url, &[], None).json();
        RawClient { http, directory, key: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng), kid: None }
    }

    pub fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap_or_else(|| panic!("directory has no {name}")).to_owned()
    }

    pub fn nonce(&self) -> String {
        let reply = self.http.send("HEAD", &self.url("newNonce"), &[], None);
        reply.header("replay-nonce").expect("a Replay-Nonce").to_owned()
    }

    /// A flattened JWS over `payload` (None: POST-as-GET), signed by `signer`, with the given key reference.
    pub fn jws(
        &self,
        signer: &dyn JwsSigner,
        key: KeyRef,
        url: &str,
        nonce: Option<String>,
        payload: Option<&Value>,
    ) -> Vec<u8> {
        let header = ProtectedHeader {
            alg: SignatureAlgorithm::Es256,
            key,
            nonce,
            url: url.to_owned(),
            extra: Default::default(),
        };
        let payload = payload.map(|p| p.to_string().into_bytes()).unwrap_or_default();
        serde_json::to_vec(&sign_flattened(&header, &payload, signer).expect("sign")).expect("json")
    }

    pub fn key_ref(&self) -> KeyRef {
        match &self.kid {
            Some(kid) => KeyRef::Kid(kid.clone()),
            None => KeyRef::Jwk(self.key.public_jwk().expect("jwk")),
        }
    }

    /// POSTs a correctly signed request with a fresh nonce.
    pub fn post(&self, url: &str, payload: Option<&Value>) -> Reply {
        let body = self.jws(&self.key, self.key_ref(), url, Some(self.nonce()), payload);
        self.post_raw(url, &body)
    }

    pub fn post_raw(&self, url: &str, body: &[u8]) -> Reply {
        self.http.send("POST", url, &[("Content-Type", "application/jose+json")], Some(body))
    }

    /// newAccount; remembers the account URL.
    pub fn register(&mut self) -> Reply {
        let reply = self.post(&self.url("newAccount"), Some(&serde_json::json!({"termsOfServiceAgreed": true})));
        assert!(reply.status == 201 || reply.status == 200, "newAccount: {reply:?}");
        self.kid = Some(reply.header("location").expect("account Location").to_owned());
        reply
    }
}

/// A minimal http-01 responder: serves key authorizations registered by the test.
pub struct Responder {
    pub port: u16,
    answers: Arc<Mutex<HashMap<String, String>>>,
}

impl Responder {
    pub fn start() -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind responder");
        let port = listener.local_addr().expect("addr").port();
        let answers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let shared = Arc::clone(&answers);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let answers = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let token = path.strip_prefix("/.well-known/acme-challenge/").unwrap_or("");
                    let answer = answers.lock().map(|a| a.get(token).cloned()).unwrap_or(None);
                    let mut stream = &stream;
                    let _ = match answer {
                        Some(body) => write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => {
                            write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        }
                    };
                });
            }
        });
        Responder { port, answers }
    }

    pub fn serve(&self, token: &str, key_authorization: &str) {
        self.answers.lock().expect("lock").insert(token.to_owned(), key_authorization.to_owned());
    }
}

/// The default group's policy in ACME tests that are not about policy: every name and address.
pub const ALLOW_ALL_POLICY: &str =
    "[acme.default_policy]\ndns = { allow = [\".\"], wildcards = true }\nip = { allow = [\"0.0.0.0/0\", \"::/0\"] }\n";

/// A `castellan serve` set up for ACME tests: validation may reach loopback, http-01 goes to our responder.
pub struct Acme {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub ca: PathBuf,
    pub responder: Responder,
    /// The file that shifts the server's clock, for servers started with one.
    pub clock: Option<PathBuf>,
}

impl Acme {
    pub fn start(extra_config: &str) -> Acme {
        Acme::start_with("", extra_config)
    }

    /// A server whose clock the test moves with [`Acme::advance_clock`] instead of waiting.
    pub fn start_with_fake_clock(extra_config: &str) -> Acme {
        Acme::start_full("", extra_config, true)
    }

    /// `top_level` goes before any section (e.g. database_url); `extra_config` into [acme].
    pub fn start_with(top_level: &str, extra_config: &str) -> Acme {
        Acme::start_full(top_level, extra_config, false)
    }

    /// `top_level` before any section, `extra_config` into [acme], and a clock the test moves when `fake_clock`.
    pub fn start_full(top_level: &str, extra_config: &str, fake_clock: bool) -> Acme {
        let dir = tempfile::tempdir().expect("tempdir");
        let responder = Responder::start();
        // Long enough that fast validations and signatures answer in one round trip, unless the test says.
        let wait = if extra_config.contains("wait_for_outcome_ms") { "" } else { "wait_for_outcome_ms = 3000\n" };
        // Tests about policy bring their own; the others may have anything.
        let policy = if extra_config.contains("default_policy") { "" } else { ALLOW_ALL_POLICY };
        let config = write(
            dir.path(),
            "castellan.toml",
            format!(
                "{top_level}\n[acme]\n{wait}{extra_config}\n{policy}[acme.validation]\nhttp01_port = {}\n\
                 denied_networks = []\ntimeout_secs = 5\n",
                responder.port
            ),
        );
        let data = dir.path().join("var");
        let clock = fake_clock.then(|| write(dir.path(), "clock", "0"));
        let server = Server::start_with(&data, Some(&config), clock.as_deref());
        let ca = data.join("ca/root.pem");
        Acme { dir, server, ca, responder, clock }
    }

    /// Moves the server's clock forward (it reads the file on every look at the time).
    pub fn advance_clock(&self, seconds: u64) {
        let file = self.clock.as_deref().expect("the server was started with a fake clock");
        let now: u64 = std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        write(self.dir.path(), "clock", (now + seconds).to_string());
    }

    /// Another `castellan serve` on the same data directory, configuration and clock: a replica.
    pub fn replica(&self) -> Server {
        let (data, config) = (self.dir.path().join("var"), self.dir.path().join("castellan.toml"));
        Server::start_with(&data, Some(&config), self.clock.as_deref())
    }

    pub fn client(&self) -> RawClient {
        RawClient::new(&self.server.url("/acme/directory"), &self.ca)
    }

    pub fn registered(&self) -> RawClient {
        let mut client = self.client();
        client.register();
        client
    }

    /// newOrder for 127.0.0.1, http-01 answered, validated: returns the order URL and its JSON (ready).
    pub fn ready_order(&self, client: &RawClient) -> (String, Value) {
        let order =
            client.post(&client.url("newOrder"), Some(&json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})));
        assert_eq!(order.status, 201, "{}", order.text());
        let order_url = order.header("location").expect("order Location").to_owned();
        let authz_url = order.json()["authorizations"][0].as_str().expect("an authorization").to_owned();
        let authz = client.post(&authz_url, None).json();
        let challenge = authz["challenges"]
            .as_array()
            .expect("challenges")
            .iter()
            .find(|c| c["type"] == "http-01")
            .expect("an http-01 challenge")
            .clone();
        let token = challenge["token"].as_str().expect("token");
        let thumbprint = client.key.public_jwk().expect("jwk").thumbprint();
        self.responder.serve(token, &format!("{token}.{thumbprint}"));
        let answered = client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
        assert_eq!(answered.status, 200, "{}", answered.text());
        assert!(answered.header("link").is_some_and(|l| l.contains("rel=\"up\"")), "{answered:?}");
        let order = poll(client, &order_url, |o| o["status"] != "pending");
        assert_eq!(order["status"], "ready", "{order}");
        (order_url, order)
    }
}

/// POST-as-GET `url` until `done` holds (or 30 s pass); returns the last JSON.
pub fn poll(client: &RawClient, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = client.post(url, None).json();
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A CSR signed by `key` for the given IP and DNS names.
pub fn csr(key: &p256::ecdsa::SigningKey, ips: &[&str], dns: &[&str]) -> String {
    use x509_cert::builder::{Builder, RequestBuilder};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let mut names: Vec<GeneralName> =
        dns.iter().map(|d| GeneralName::DnsName(der::asn1::Ia5String::new(d).expect("ia5"))).collect();
    for ip in ips {
        let ip: std::net::IpAddr = ip.parse().expect("ip");
        let octets = match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        names.push(GeneralName::IpAddress(der::asn1::OctetString::new(octets).expect("octets")));
    }
    let subject = x509_cert::name::Name::default();
    let mut builder = RequestBuilder::new(subject, key).expect("builder");
    builder.add_extension(&SubjectAltName(names)).expect("san");
    let request = builder.build::<p256::ecdsa::DerSignature>().expect("csr");
    castellan_acme_proto::b64::encode(der::Encode::to_der(&request).expect("der"))
}
