//! The renewal scheduler: one loop per `castellan serve` replica.
//!
//! Each pass claims due renewals from the store a batch at a time (a lease on each, so replicas never work on
//! the same one), issues them with at most `concurrency` in flight, and records each outcome: success commits
//! with the certificate (the issuer does it), failure counts and backs off. Every `sweep_secs` the pass also moves
//! certificates along by age. Time is the injected clock's, so tests move it instead of sleeping.

use crate::alerts::Alerter;
use crate::backoff::retry_delay;
use crate::config::SchedulerConfig;
use crate::issuers::Issuers;
use castellan_authority::metrics::Metrics;
use castellan_authority::{Actor, Authority, Clock};
use castellan_store::Store;
use castellan_store::lifecycle::Claim;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub claimed: usize,
    pub renewed: usize,
    pub failed: usize,
    pub expiring_soon: u64,
    pub expired: u64,
    pub alerts_fired: u64,
    pub alerts_resolved: u64,
}

/// When the scheduler last finished a pass, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct SchedulerHealth {
    last_pass_at: Arc<AtomicI64>,
    started_at: Arc<AtomicI64>,
}

impl SchedulerHealth {
    /// Unix seconds when the scheduler was made (a server that never finished a pass is starting until it is
    /// stale).
    pub fn started_at(&self) -> i64 {
        self.started_at.load(Ordering::Relaxed)
    }

    /// Unix seconds when the scheduler last showed it is alive (each step of a pass, and its end); 0 before.
    pub fn last_pass_at(&self) -> i64 {
        self.last_pass_at.load(Ordering::Relaxed)
    }
}

pub struct Scheduler {
    store: Store,
    clock: Clock,
    issuers: Issuers,
    config: SchedulerConfig,
    /// This replica's name in leases and rotations.
    replica: String,
    actor: Actor,
    health: SchedulerHealth,
    last_sweep: i64,
    metrics: Arc<Metrics>,
    alerter: Option<Arc<Alerter>>,
}

impl Scheduler {
    /// The store, clock and metrics are the authority's.
    pub fn new(authority: &Authority, issuers: Issuers, config: SchedulerConfig, replica: String) -> Scheduler {
        Scheduler {
            store: authority.store().clone(),
            clock: authority.clock().clone(),
            metrics: Arc::clone(authority.metrics()),
            issuers,
            config,
            replica,
            actor: Actor::castellan("scheduler"),
            health: SchedulerHealth {
                started_at: Arc::new(AtomicI64::new(authority.clock().unix())),
                ..Default::default()
            },
            last_sweep: i64::MIN,
            alerter: None,
        }
    }

    /// Alerts evaluated with every sweep (their delivery is `Alerter::deliver_forever`'s).
    pub fn with_alerts(mut self, alerter: Arc<Alerter>) -> Scheduler {
        self.alerter = Some(alerter);
        self
    }

    pub fn health(&self) -> SchedulerHealth {
        self.health.clone()
    }

    /// Passes for ever, `tick_secs` apart by the clock. A pass that fails (the store unreachable) is logged and
    /// tried again next tick: nothing is lost, the queue is in the store.
    pub async fn run(mut self) {
        tracing::info!(replica = %self.replica, "renewal scheduler started");
        loop {
            match self.pass().await {
                Ok(report) if report != PassReport::default() => tracing::info!(?report, "renewal pass"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "renewal pass failed; retrying next tick"),
            }
            self.clock.sleep(Duration::from_secs(self.config.tick_secs)).await;
        }
    }

    /// One pass: every renewal due now, then the state sweep and the alert evaluation when due.
    pub async fn pass(&mut self) -> Result<PassReport, castellan_store::StoreError> {
        let mut report = PassReport::default();
        let lease = i64::try_from(self.config.lease_secs).unwrap_or(i64::MAX);
        let mut running: JoinSet<(Claim, Result<(), String>)> = JoinSet::new();
        // A store error stops claiming but never drops the issuances in flight: a task cut off after the HSM
        // signed would leave a pending row for what may have been signed.
        let mut failure = None;
        loop {
            let room = self.config.concurrency.saturating_sub(running.len());
            // Claim in batches (a claim is a write transaction with several statements): once half the slots are
            // free, or when nothing runs, rather than one slot at a time.
            let worth_claiming = room > 0 && (room * 2 >= self.config.concurrency || running.is_empty());
            if worth_claiming && failure.is_none() {
                let limit = i64::try_from(room.min(self.config.batch)).unwrap_or(1);
                let claims = match self.store.claim_due_renewals(&self.replica, limit, lease).await {
                    Ok(claims) => claims,
                    Err(e) => {
                        failure = Some(e);
                        Vec::new()
                    }
                };
                report.claimed += claims.len();
                for claim in claims {
                    let (issuers, actor) = (self.issuers.clone(), self.actor.clone());
                    running.spawn(async move {
                        let outcome = match issuers.get(&claim.managed.issuer) {
                            Ok(issuer) => issuer.issue(&claim, &actor).await.map(|_| ()).map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        (claim, outcome)
                    });
                }
            }
            // Alive, however long the pass: /health tells a busy scheduler from a stuck one by this.
            self.health.last_pass_at.store(self.clock.unix(), Ordering::Relaxed);
            let Some(done) = running.join_next().await else { break };
            match done {
                Ok((claim, Ok(()))) => {
                    report.renewed += 1;
                    self.metrics.renewal("succeeded", &claim.managed.issuer);
                    tracing::info!(managed = %claim.managed.name, reason = %claim.rotation.reason, "renewed");
                }
                Ok((claim, Err(error))) => {
                    report.failed += 1;
                    self.metrics.renewal("failed", &claim.managed.issuer);
                    if let Err(e) = self.record_failure(&claim, &error).await {
                        // Its lease expires and the next claim retries it.
                        tracing::error!(managed = %claim.managed.name, error = %e, "recording a renewal failure");
                    }
                }
                // A panicking issuance leaves its lease to expire; the next claim abandons and retries it.
                Err(e) => tracing::error!(error = %e, "a renewal task failed"),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // After the renewals, so a certificate renewed at the last moment of its window is not first reported as
        // expiring. Delivery runs in its own task (`Alerter::deliver_forever`): a receiver that hangs never
        // delays a renewal.
        let now = self.clock.unix();
        if now.saturating_sub(self.last_sweep) >= i64::try_from(self.config.sweep_secs).unwrap_or(i64::MAX) {
            let swept = self.store.sweep_certificate_states().await?;
            (report.expiring_soon, report.expired) = (swept.expiring_soon, swept.expired);
            self.last_sweep = now;
            if let Some(alerter) = &self.alerter {
                let alerts = alerter.evaluate().await?;
                (report.alerts_fired, report.alerts_resolved) = (alerts.fired, alerts.resolved);
            }
        }
        self.health.last_pass_at.store(self.clock.unix(), Ordering::Relaxed);
        Ok(report)
    }

    async fn record_failure(&self, claim: &Claim, error: &str) -> Result<(), castellan_store::StoreError> {
        let delay = retry_delay(
            claim.managed.failures.saturating_add(1),
            Duration::from_secs(self.config.backoff_min_secs),
            Duration::from_secs(self.config.backoff_max_secs),
        );
        let retry_at = self.clock.unix().saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
        let failed = self.store.fail_rotation(claim, error, retry_at, self.actor.as_str()).await?;
        tracing::warn!(managed = %claim.managed.name, error, failures = ?failed.map(|f| f.failures),
            retry_in_secs = delay.as_secs(), "renewal failed");
        Ok(())
    }
}
