//! Authentication of admin callers, run before every handler that needs a scope: a bearer API token (RFC 6750),
//! or a TLS client certificate from this CA whose SPIFFE ID names an admin role.
//!
//! The TLS layer has already verified the certificate's chain to our root, its validity period and its clientAuth
//! EKU before the request exists; here it must also be in our inventory, issued under the `tls-client` profile and
//! not revoked (a revocation takes effect on the next request, even on a connection that is already open).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use castellan_authority::Actor;
use castellan_store::admin::{TokenRecord, TokenScope};
use castellan_store::inventory::{CertificateRecord, CertificateStatus};
use der::Decode;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::{AdminError, AdminState};

/// The SPIFFE ID prefixes that give a client certificate a role: `spiffe://castellan/admin/<name>` and
/// `spiffe://castellan/read/<name>`.
const ADMIN_ID_PREFIX: &str = "spiffe://castellan/admin/";
const READ_ID_PREFIX: &str = "spiffe://castellan/read/";
/// The only profile whose certificates are admin credentials (clientAuth only: a server's certificate never is).
const CLIENT_PROFILE: &str = "tls-client";

/// The TLS client certificate (the leaf, DER) the connection's peer presented and the TLS layer verified to this
/// CA's root. The server puts it in each request's extensions; absent when the client sent none.
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    pub der: Arc<[u8]>,
}

/// What a route's guard needs: the store, and the scope the route demands.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) state: Arc<AdminState>,
    pub(crate) scope: TokenScope,
}

/// How a caller proved who it is.
#[derive(Clone, Debug)]
pub enum Credential {
    Token(TokenRecord),
    /// A client certificate: the `<name>` of its SPIFFE ID and its serial (lower-case hex).
    Certificate {
        name: String,
        serial_hex: String,
    },
    /// The CLI on the CA's own machine, in process: whoever can run it there holds the database and the token.
    Local(Actor),
}

/// The authenticated caller, in the request's extensions for the handler.
#[derive(Clone, Debug)]
pub struct Caller {
    pub credential: Credential,
    pub scope: TokenScope,
}

impl Caller {
    /// The audit log's actor for changes this caller makes.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Token(token) => Actor::admin_token(token.id.get(), &token.name),
            Credential::Certificate { name, serial_hex } => Actor::admin_certificate(name, serial_hex),
            Credential::Local(actor) => actor.clone(),
        }
    }
}

pub(crate) async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    if let Some(actor) = &guard.state.local {
        request
            .extensions_mut()
            .insert(Caller { credential: Credential::Local(actor.clone()), scope: TokenScope::Admin });
        return next.run(request).await;
    }
    // Owned, so the request (whose body is not Sync) is not borrowed across the store's await.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let certificate = request.extensions().get::<ClientCertificate>().cloned();
    let authenticated = match (authorization, certificate) {
        // A token given is the credential, even on a connection with a certificate: a wrong token is an error to
        // report, not something to paper over with another identity.
        (Some(authorization), _) => authenticate_token(&guard, authorization).await,
        (None, Some(certificate)) => authenticate_certificate(&guard, &certificate).await,
        (None, None) => Err(AdminError::unauthenticated(
            "an API token (Authorization: Bearer cst_…) or an admin client certificate is required",
            false,
        )),
    };
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if !caller.scope.allows(guard.scope) {
        return AdminError::forbidden(format!(
            "{} has scope {}; this operation needs {}",
            caller.actor(),
            caller.scope.as_str(),
            guard.scope.as_str()
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn authenticate_token(guard: &Guard, authorization: HeaderValue) -> Result<Caller, AdminError> {
    let text =
        authorization.to_str().ok().and_then(bearer).ok_or_else(|| {
            AdminError::unauthenticated("the Authorization header is not \"Bearer <API token>\"", true)
        })?;
    let token = guard
        .state
        .operator
        .store()
        .authenticate_token(text)
        .await?
        .ok_or_else(|| AdminError::unauthenticated("unknown or revoked API token", true))?;
    Ok(Caller { scope: token.scope, credential: Credential::Token(token) })
}

async fn authenticate_certificate(guard: &Guard, presented: &ClientCertificate) -> Result<Caller, AdminError> {
    let refused = |why: &str| AdminError::unauthenticated(format!("client certificate refused: {why}"), true);
    let certificate = x509_cert::Certificate::from_der(&presented.der).map_err(|_| refused("not a certificate"))?;
    let serial_hex = hex::encode(certificate.tbs_certificate.serial_number.as_bytes());
    let fingerprint = Sha256::digest(&presented.der[..]).to_vec();
    let store = guard.state.operator.store();
    let records = store.certificates_with_serial(&serial_hex).await?;
    // The exact certificate, not merely one with its serial: the inventory row is what revocation changes.
    let record = records
        .iter()
        .find(|r| r.cert_sha256.as_deref() == Some(&fingerprint[..]))
        .ok_or_else(|| refused("not in this CA's inventory"))?;
    check_usable(record, store.now()).map_err(|why| refused(&why))?;
    if record.profile.as_deref() != Some(CLIENT_PROFILE) {
        return Err(AdminError::forbidden(format!(
            "client certificate {serial_hex} was not issued under the {CLIENT_PROFILE} profile"
        )));
    }
    let (scope, name) = role(&certificate).ok_or_else(|| {
        AdminError::forbidden(format!(
            "client certificate {serial_hex} has no admin role: it needs exactly one URI SAN \
             {ADMIN_ID_PREFIX}<name> or {READ_ID_PREFIX}<name>"
        ))
    })?;
    Ok(Caller { scope, credential: Credential::Certificate { name, serial_hex } })
}

/// Refuses an inventory row that is not a live certificate: revoked, expired, or never issued.
fn check_usable(record: &CertificateRecord, now: i64) -> Result<(), String> {
    match record.status {
        CertificateStatus::Active
        | CertificateStatus::ExpiringSoon
        | CertificateStatus::Renewing
        | CertificateStatus::Superseded => {}
        other => return Err(format!("it is {}", other.as_str())),
    }
    // The handshake checked the dates, but a connection can outlive its certificate.
    if now > record.not_after {
        return Err("it has expired".into());
    }
    Ok(())
}

/// The scope and name a certificate's SPIFFE ID gives it; None unless exactly one of its SANs is a role ID.
fn role(certificate: &x509_cert::Certificate) -> Option<(TokenScope, String)> {
    let (_, san) = certificate.tbs_certificate.get::<SubjectAltName>().ok()??;
    let mut roles = san.0.iter().filter_map(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => role_of_id(uri.as_str()),
        _ => None,
    });
    let first = roles.next()?;
    // Two role IDs in one certificate are ambiguous; refusing is safer than picking one.
    roles.next().is_none().then_some(first)
}

fn role_of_id(id: &str) -> Option<(TokenScope, String)> {
    let (scope, name) = if let Some(name) = id.strip_prefix(ADMIN_ID_PREFIX) {
        (TokenScope::Admin, name)
    } else {
        (TokenScope::Read, id.strip_prefix(READ_ID_PREFIX)?)
    };
    // One path segment: the name goes into audit actors, where `:` is the separator.
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    valid.then(|| (scope, name.to_owned()))
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim()).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod unit {
    use super::{TokenScope, bearer, role_of_id};

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer("Bearer cst_abc"), Some("cst_abc"));
        assert_eq!(bearer("bearer  cst_abc "), Some("cst_abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn spiffe_roles() {
        assert_eq!(role_of_id("spiffe://castellan/admin/alice"), Some((TokenScope::Admin, "alice".into())));
        assert_eq!(role_of_id("spiffe://castellan/read/ci-bot_2"), Some((TokenScope::Read, "ci-bot_2".into())));
        for refused in [
            "spiffe://castellan/admin/",
            "spiffe://castellan/admin/a/b",
            "spiffe://castellan/admin/..",
            "spiffe://castellan/root/alice",
            "spiffe://other/admin/alice",
            "spiffe://castellan/admin/a:b",
        ] {
            assert_eq!(role_of_id(refused), None, "{refused}");
        }
    }
}
