//! Key authorizations (RFC 8555 §8.1) and the dns-01 TXT record value (§8.4).

use sha2::{Digest, Sha256};

use crate::b64;
use crate::jwk::Jwk;

/// `token || '.' || base64url(Thumbprint(accountKey))`.
pub fn key_authorization(token: &str, account_key: &Jwk) -> String {
    format!("{token}.{}", account_key.thumbprint())
}

/// The "_acme-challenge" TXT value: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64::encode(Sha256::digest(key_authorization.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_authorization_and_dns01_value() {
        // RFC 7638 §3.1 key, whose thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = Jwk::from_value(&serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"})).unwrap();
        // Token from RFC 8555 §8.3's example challenge.
        let ka = key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &jwk);
        assert_eq!(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let hex: String = Sha256::digest(ka.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "653471d42925d7eb4cd39a39cda8b34d3034c94cb90067ab78c8123560ba2e5f");
        assert_eq!(dns01_txt_value(&ka), DNS01_EXPECTED);
    }

    /// base64url(SHA-256) of the key authorization above, computed independently with
    /// `printf %s "$KA" | openssl dgst -sha256 -binary | basenc --base64url | tr -d =`
    /// (hex 653471d42925d7eb4cd39a39cda8b34d3034c94cb90067ab78c8123560ba2e5f, also checked with sha256sum).
    const DNS01_EXPECTED: &str = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8";
}
