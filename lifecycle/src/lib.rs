//! The lifecycle engine: Castellan renews the certificates it manages itself.
//!
//! - [`scheduler`]: runs inside `castellan serve`; claims due renewals from the store's queue (a lease per
//!   managed certificate, so with several replicas on one PostgreSQL each renewal is done by exactly one), issues
//!   them with bounded concurrency, backs failures off exponentially, and moves every certificate in the inventory
//!   along by age (`active → expiring_soon → expired`);
//! - [`issuers`]: where a managed certificate's certificates come from — this CA (`internal`) today, an external
//!   ACME CA with the client tier — behind one trait, so the scheduler does not care which;
//! - [`alerts`]: certificates about to expire and renewals that keep failing, fired once each and delivered to
//!   webhooks and Alertmanager with retries;
//! - [`backoff`]: how long a failing renewal (or an alert delivery) waits before its next attempt.
//!
//! All state is in the store (`castellan_store::lifecycle`): a replica killed at any point leaves nothing the next
//! pass cannot finish.

pub mod alerts;
pub mod backoff;
pub mod config;
pub mod issuers;
pub mod scheduler;

pub use alerts::{Alerter, AlertsConfig};
pub use config::SchedulerConfig;
pub use issuers::{InternalIssuer, IssueError, Issuer, Issuers};
pub use scheduler::{PassReport, Scheduler, SchedulerHealth};
