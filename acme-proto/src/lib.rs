//! RFC 8555 (ACME) wire types, JWS and JWK, shared by Castellan's ACME server and ACME client.
//!
//! - [`jwk`]: public JWKs (EC P-256/P-384, RSA 2048..=8192, Ed25519) and RFC 7638 thumbprints.
//! - [`jws`]: parsing and verifying flattened JWS request bodies; [`sign`]: producing them.
//! - [`eab`]: external account binding (RFC 8555 §7.3.4).
//! - [`key_change`]: checks on keyChange's inner JWS (RFC 8555 §7.3.5).
//! - [`key_authorization`]: key authorizations and the dns-01 TXT value.
//! - [`types`]: the JSON resources of RFC 8555 §7.
//!
//! Nothing here panics on input: every refusal is a typed error, and [`JwsError::problem_type`] names the ACME
//! problem type to answer with.

pub mod alg;
pub mod b64;
pub mod eab;
pub mod error;
pub mod jwk;
pub mod jws;
pub mod key_authorization;
pub mod key_change;
pub mod sign;
pub mod types;

pub use alg::{MacAlgorithm, SignatureAlgorithm};
pub use eab::{EabJws, sign_eab};
pub use error::{JwsError, SignError};
pub use jwk::{Jwk, JwkError, KeyKind};
pub use jws::{Jws, KeyRef, ProtectedHeader, VerifiedJws};
pub use key_change::{VerifiedKeyChange, verify_key_change};
pub use sign::{FlattenedJws, JwsSigner, sign_flattened};
