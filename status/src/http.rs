//! The HTTP side of revocation status: the CRL as `application/pkix-crl`, and OCSP over POST and GET (RFC 6960
//! Appendix A, RFC 5019 §5 for caching headers). OCSP problems are OCSP error responses with status 200, as the RFC
//! asks, never an HTTP error: a client always gets something `openssl ocsp` can read.

use super::Status;
use super::ocsp::{OcspReply, Validity};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use castellan_ca::ocsp::{OcspErrorStatus, error_response};
use std::time::{Duration, SystemTime};

pub const PKIX_CRL: &str = "application/pkix-crl";
pub const OCSP_RESPONSE: &str = "application/ocsp-response";

/// An OCSP request is a few hundred bytes; anything much larger is not one.
const MAX_REQUEST: usize = 16 * 1024;

pub(super) fn router(status: Status, crl_paths: &[String], ocsp_paths: &[String]) -> Router {
    let mut router = Router::new();
    for path in crl_paths.iter().filter(|p| routable(p)) {
        router = router.route(path, get(crl));
    }
    for path in ocsp_paths.iter().filter(|p| routable(p)) {
        let prefix = format!("{path}/");
        let get_prefix = prefix.clone();
        router = router.route(path, get(ocsp_get_without_request).post(ocsp_post)).route(
            &format!("{prefix}{{*request}}"),
            get(move |state: State<Status>, uri: Uri| ocsp_get(state, uri, get_prefix.clone())),
        );
    }
    router.with_state(status)
}

/// A configured URL's path is routed only when axum would take it literally and it is not one of the server's
/// other routes (merging overlapping routers would panic).
fn routable(path: &str) -> bool {
    let taken = ["/acme", "/ca/", "/health"].iter().any(|prefix| path.starts_with(prefix));
    path.starts_with('/') && !path.contains(['{', '}', '*']) && !path.ends_with('/') && !taken
}

async fn crl(State(status): State<Status>, headers: HeaderMap) -> Response {
    let crl = status.current_crl();
    let etag = format!("\"{}\"", crl.number);
    let now = status.clock().now();
    let remaining = crl.next_update.duration_since(now).unwrap_or_default();
    let max_age = remaining.min(Duration::from_secs(status.crl.max_age_secs()));
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, PKIX_CRL)], crl.der.clone()).into_response()
    };
    let h = response.headers_mut();
    insert(h, header::CACHE_CONTROL, &format!("public, max-age={}, no-transform", max_age.as_secs()));
    insert(h, header::ETAG, &etag);
    insert(h, header::LAST_MODIFIED, &http_date(crl.this_update));
    insert(h, header::EXPIRES, &http_date(now + max_age));
    response
}

async fn ocsp_post(State(status): State<Status>, body: Body) -> Response {
    match axum::body::to_bytes(body, MAX_REQUEST).await {
        Ok(request) => ocsp_response(status.answer_ocsp(&request).await, status.clock().now()),
        Err(_) => malformed(),
    }
}

async fn ocsp_get_without_request() -> Response {
    malformed()
}

/// GET {url}/{url-encoding of base64 encoding of the DER OCSPRequest} (RFC 6960 A.1). The raw path is decoded
/// here rather than by a path extractor, so a bad escape is a malformedRequest, not an HTTP 400.
async fn ocsp_get(State(status): State<Status>, uri: Uri, prefix: String) -> Response {
    let Some(encoded) = uri.path().strip_prefix(&prefix) else { return malformed() };
    let Some(request) = percent_decode(encoded).and_then(|b64| base64_decode(&b64)) else {
        return malformed();
    };
    ocsp_response(status.answer_ocsp(&request).await, status.clock().now())
}

fn malformed() -> Response {
    let der = error_response(OcspErrorStatus::MalformedRequest);
    ([(header::CONTENT_TYPE, OCSP_RESPONSE), (header::CACHE_CONTROL, "no-store")], der).into_response()
}

fn ocsp_response(reply: OcspReply, now: SystemTime) -> Response {
    let mut response = ([(header::CONTENT_TYPE, OCSP_RESPONSE)], reply.der.clone()).into_response();
    let h = response.headers_mut();
    match reply.cache {
        // RFC 5019 §6.2: a pre-signed response may be cached until Castellan re-signs it (never past nextUpdate).
        Some(Validity { this_update, next_update, refresh_at }) => {
            let until = refresh_at.min(next_update);
            let max_age = until.duration_since(now).unwrap_or_default().as_secs();
            insert(h, header::CACHE_CONTROL, &format!("public, max-age={max_age}, no-transform, must-revalidate"));
            insert(h, header::LAST_MODIFIED, &http_date(this_update));
            insert(h, header::EXPIRES, &http_date(until));
            let etag = ring::digest::digest(&ring::digest::SHA256, &reply.der);
            insert(h, header::ETAG, &format!("\"{}\"", hex::encode(&etag.as_ref()[..16])));
        }
        // Nonce responses and errors are for one request only.
        None => insert(h, header::CACHE_CONTROL, "no-store"),
    }
    response
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// RFC 9110 §5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
pub fn http_date(at: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from(at).format(&format).unwrap_or_default()
}

/// %XX escapes decoded; None for a broken escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Standard base64 as the RFC asks, padded or not; the URL-safe alphabet is accepted too, since some clients send
/// it (the two alphabets differ only in `+/` versus `-_`, so no text means different things in each).
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    if text.iter().any(|b| *b == b'-' || *b == b'_') { url_safe.decode(text).ok() } else { standard.decode(text).ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_get_requests_as_clients_encode_them() {
        assert_eq!(percent_decode("MEIw%2BQ%3D%3D").as_deref(), Some(&b"MEIw+Q=="[..]));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(base64_decode(b"AQID").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(base64_decode(b"+/8=").as_deref(), Some(&[0xfbu8, 0xff][..]));
        assert_eq!(base64_decode(b"-_8").as_deref(), Some(&[0xfbu8, 0xff][..]));
        assert_eq!(base64_decode(b"!!"), None);
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn only_literal_paths_are_routed() {
        assert!(routable("/crl/1.crl") && routable("/status"));
        assert!(!routable("/crl/{x}") && !routable("crl") && !routable("/ocsp/"));
        assert!(!routable("/acme/ocsp") && !routable("/health") && !routable("/ca/roots.pem"));
    }
}
