//! A pool of logged-in sessions on one token.
//!
//! A PKCS#11 session may be used by one thread at a time, and opening one costs a round trip to the token, so
//! sessions are kept and lent out. The login state belongs to the application, not the session: a new session
//! on a token we are logged in to is logged in too. A session that breaks (token removed, handle invalidated,
//! login lost) is thrown away and the caller's operation is retried once on a fresh, logged-in session.

use crate::error::{HsmError, Result};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::sync::{Condvar, Mutex};
use zeroize::Zeroizing;

pub(crate) struct SessionPool {
    ctx: std::sync::Arc<Pkcs11>,
    slot: Slot,
    pin: Zeroizing<String>,
    capacity: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    /// Sessions open, idle or lent out.
    open: usize,
}

impl SessionPool {
    /// Opens the first session and logs in, so that a wrong PIN is reported at start, not at the first signature.
    pub(crate) fn new(
        ctx: std::sync::Arc<Pkcs11>,
        slot: Slot,
        pin: Zeroizing<String>,
        capacity: usize,
    ) -> Result<Self> {
        let pool = SessionPool {
            ctx,
            slot,
            pin,
            capacity: capacity.max(1),
            state: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
        };
        let first = pool.open_logged_in()?;
        let mut state = pool.lock();
        state.idle.push(first);
        state.open = 1;
        drop(state);
        Ok(pool)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Runs `op` on a pooled session; if the session turns out broken, retries once on a new one.
    pub(crate) fn with_session<T>(&self, mut op: impl FnMut(&Session) -> Result<T>) -> Result<T> {
        let session = self.take()?;
        match op(&session) {
            Err(e) if e.session_is_broken() => {
                tracing::warn!(error = %e, "PKCS#11 session broke; opening a new one and retrying");
                self.discard(session);
                let fresh = self.take()?;
                let result = op(&fresh);
                self.give_back(fresh, &result);
                result
            }
            // A token that lost our login (reset, idle timeout) hides private objects, so the symptom is an
            // invalid key handle rather than CKR_USER_NOT_LOGGED_IN: log in again and retry once.
            Err(e) if e.handle_is_stale() && !is_logged_in(&session) => {
                tracing::warn!("PKCS#11 login was lost; logging in again");
                let result = login(&session, &self.pin).and_then(|()| op(&session));
                self.give_back(session, &result);
                result
            }
            result => {
                self.give_back(session, &result);
                result
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is a list and a counter, consistent at every await-free step: a panic elsewhere cannot
        // leave it half-updated, so a poisoned lock is safe to use.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self) -> Result<Session> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.open < self.capacity {
                state.open += 1;
                drop(state);
                return self.open_logged_in().inspect_err(|_| self.lock().open -= 1);
            }
            state = self.returned.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn give_back<T>(&self, session: Session, result: &Result<T>) {
        match result {
            Err(e) if e.session_is_broken() => self.discard(session),
            _ => {
                self.lock().idle.push(session);
                self.returned.notify_one();
            }
        }
    }

    fn discard(&self, session: Session) {
        drop(session);
        self.lock().open -= 1;
        self.returned.notify_one();
    }

    fn open_logged_in(&self) -> Result<Session> {
        let session = self.ctx.open_rw_session(self.slot).map_err(HsmError::pkcs11("C_OpenSession"))?;
        login(&session, &self.pin)?;
        Ok(session)
    }
}

fn is_logged_in(session: &Session) -> bool {
    use cryptoki::session::SessionState;
    match session.get_session_info() {
        Ok(info) => matches!(info.session_state(), SessionState::RoUser | SessionState::RwUser),
        Err(_) => false,
    }
}

/// Logs the user in; "already logged in" is success, because login state is shared by the application's sessions.
pub(crate) fn login(session: &Session, pin: &str) -> Result<()> {
    let auth = AuthPin::from(pin.to_owned());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) => Ok(()),
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(HsmError::WrongPin),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked),
        Err(e) => Err(HsmError::pkcs11("C_Login")(e)),
    }
}
