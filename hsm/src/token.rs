//! `Hsm`: a logged-in handle on one token, cheap to clone and safe to share between threads.

use crate::config::{HsmConfig, TokenSelector};
use crate::context::context_for;
use crate::error::{HsmError, Result};
use crate::pool::SessionPool;
use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::{Limit, Slot};
use std::sync::Arc;

#[derive(Clone)]
pub struct Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    token_label: String,
    pool: SessionPool,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("token", &self.inner.token_label)
            .field("sessions", &self.inner.pool.capacity())
            .finish()
    }
}

impl Hsm {
    /// Loads the module (once per process), finds the token, reads the PIN and logs in.
    pub fn open(config: &HsmConfig) -> Result<Hsm> {
        let ctx = context_for(&config.module)?;
        let (slot, token_label, limit) = find_token(&ctx, &config.token)?;
        let pin = config.pin.read()?;
        let capacity = pool_capacity(limit);
        let pool = SessionPool::new(ctx, slot, pin, capacity)?;
        tracing::debug!(token = %token_label, sessions = capacity, "logged in to PKCS#11 token");
        Ok(Hsm { inner: Arc::new(Inner { token_label, pool }) })
    }

    pub fn token_label(&self) -> &str {
        &self.inner.token_label
    }

    /// Whether a session of the pool is logged in as the user (what `/health` reports about the token).
    pub fn logged_in(&self) -> Result<bool> {
        use cryptoki::session::SessionState;
        self.with_session(|session| {
            let info = session.get_session_info().map_err(HsmError::pkcs11("C_GetSessionInfo"))?;
            Ok(matches!(info.session_state(), SessionState::RoUser | SessionState::RwUser))
        })
    }

    /// How many sessions the pool may open at once.
    pub fn session_capacity(&self) -> usize {
        self.inner.pool.capacity()
    }

    /// Logs the application out of the token, as a token reset or an idle timeout would: every session loses
    /// its login. Only for tests of the pool's recovery.
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn log_out_for_tests(&self) -> Result<()> {
        self.with_session(|session| session.logout().map_err(HsmError::pkcs11("C_Logout")))
    }

    pub(crate) fn with_session<T>(&self, op: impl FnMut(&Session) -> Result<T>) -> Result<T> {
        self.inner.pool.with_session(op)
    }

    /// Runs blocking token work on tokio's blocking pool, so an async caller never stalls its runtime on the HSM.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&Hsm) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let hsm = self.clone();
        tokio::task::spawn_blocking(move || work(&hsm)).await.map_err(|e| HsmError::Worker(e.to_string()))?
    }
}

fn find_token(ctx: &Pkcs11, wanted: &TokenSelector) -> Result<(Slot, String, Limit)> {
    let slots = ctx.get_slots_with_initialized_token().map_err(HsmError::pkcs11("C_GetSlotList"))?;
    let mut present = Vec::new();
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(HsmError::pkcs11("C_GetTokenInfo"))?;
        let label = info.label().trim_end().to_owned();
        let serial = info.serial_number().trim_end().to_owned();
        let matches = match wanted {
            TokenSelector::Label(l) => *l == label,
            TokenSelector::Serial(s) => *s == serial,
        };
        if matches {
            let limit = tighter(info.max_session_count(), info.max_rw_session_count());
            return Ok((slot, label, limit));
        }
        present.push(format!("{label:?} (serial {serial})"));
    }
    Err(HsmError::TokenNotFound {
        wanted: wanted.to_string(),
        present: if present.is_empty() { "none".into() } else { present.join(", ") },
    })
}

fn tighter(a: Limit, b: Limit) -> Limit {
    match (a, b) {
        (Limit::Max(x), Limit::Max(y)) => Limit::Max(x.min(y)),
        (Limit::Max(x), _) | (_, Limit::Max(x)) => Limit::Max(x),
        (Limit::Infinite, Limit::Infinite) => Limit::Infinite,
        _ => Limit::Unavailable,
    }
}

/// Two sessions per CPU keeps every core busy while some sessions wait on the token; never more than the token
/// allows, leaving one for other applications (an admin tool) where the token states a limit.
fn pool_capacity(limit: Limit) -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let wanted = cpus * 2;
    match limit {
        Limit::Max(max) => wanted.min(usize::try_from(max.saturating_sub(1)).unwrap_or(usize::MAX)).max(1),
        Limit::Infinite | Limit::Unavailable => wanted,
    }
}
