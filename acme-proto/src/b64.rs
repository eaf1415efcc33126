//! Strict base64url (RFC 7515 §2, RFC 4648 §5): URL-safe alphabet, no padding, no whitespace, canonical trailing
//! bits. Every base64url value in a JWS or JWK goes through here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A value that is not strict base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum B64Error {
    #[error("contains padding '='")]
    Padding,
    #[error("invalid base64url: {0}")]
    Invalid(String),
}

/// Decodes strict base64url. `""` decodes to an empty vector.
pub fn decode(input: &str) -> Result<Vec<u8>, B64Error> {
    if input.contains('=') {
        return Err(B64Error::Padding);
    }
    // The engine rejects '+', '/', whitespace, impossible lengths and non-zero trailing bits.
    URL_SAFE_NO_PAD.decode(input).map_err(|e| B64Error::Invalid(e.to_string()))
}

/// Encodes as base64url without padding.
pub fn encode(input: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty() {
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(encode([0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn rejects_padding_standard_alphabet_whitespace_and_trailing_bits() {
        assert_eq!(decode("-_8="), Err(B64Error::Padding));
        assert!(matches!(decode("+/8"), Err(B64Error::Invalid(_))));
        assert!(matches!(decode("-_ 8"), Err(B64Error::Invalid(_))));
        assert!(matches!(decode("A"), Err(B64Error::Invalid(_))));
        // "-_9" has non-zero trailing bits: another encoding of the same bytes.
        assert!(matches!(decode("-_9"), Err(B64Error::Invalid(_))));
    }
}
