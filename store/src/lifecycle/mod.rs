//! The lifecycle engine's state: managed certificates, their renewal queue and rotations, sealed keys, and
//! certificate states by age. The engine that acts on it is the `lifecycle/` crate; everything it needs to survive
//! restarts and replicas lives here.

mod alerts;
mod expiry;
mod gauges;
mod managed;
mod model;
mod queue;

#[cfg(test)]
mod tests;

pub use alerts::{AlertRecord, AlertReport, Delivery};
pub use gauges::{LiveCertificate, QueueState};
pub use managed::{ManagedQuery, ReissueProgress, SealedKey};
pub use model::{
    Claim, Expiring, ManagedCompletion, ManagedRecord, ManagedStatus, NewManaged, RenewalReason, RotationRecord,
    RotationStatus, SweepReport,
};
pub use queue::FailedRotation;

pub(crate) use queue::pull_renewal_in;
