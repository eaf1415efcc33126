//! Castellan's ACME server (RFC 8555, with RFC 8737, RFC 8738 and RFC 9773), cut along trust boundaries:
//!
//! - [`validation`] (the VA): the only part that reaches out to the network, to prove control of identifiers.
pub mod validation;
