//! A pool of logged-in sessions on one token.
//!
//! A PKCS#11 session may be used by one thread at a time, and opening one costs a round trip to the token, so
//! sessions are kept and lent out. The login state belongs to the application, not the session: a new session
//! on a token we are logged in to is logged in too. When an operation fails because its session broke, the pool
//! recovers according to what broke and retries the operation once: a lost login is restored on the same session
//! (every session lost it); a failed or removed device takes every idle session with it, so they are all closed
//! and the retry runs on a newly opened session; a single closed or invalid session is thrown away and the retry
//! runs on another.

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

    /// Runs `op` on a pooled session; if the session turns out broken, recovers as the error says and retries
    /// once.
    pub(crate) fn with_session<T>(&self, mut op: impl FnMut(&Session) -> Result<T>) -> Result<T> {
        let lease = self.take()?;
        match op(&lease.session) {
            // Login state belongs to the application, so whatever logged us out (token reset, idle timeout, a
            // C_Logout) logged out every session: another idle session would fail the same way. Log in again on
            // this one and retry. A token that lost our login hides private objects, so the symptom may also be
            // an invalid key handle rather than CKR_USER_NOT_LOGGED_IN.
            Err(e) if e.login_is_lost() || (e.handle_is_stale() && !is_logged_in(&lease.session)) => {
                tracing::warn!(error = %e, "PKCS#11 login was lost; logging in again");
                let result = login(&lease.session, &self.pin).and_then(|()| op(&lease.session));
                self.give_back(lease, &result);
                result
            }
            // The device went away or failed: the idle sessions died with it. Close them all and retry on a
            // session opened (and logged in) after the failure.
            Err(e) if e.device_is_lost() => {
                tracing::warn!(error = %e, "PKCS#11 device failed; closing idle sessions and retrying on a new one");
                drop(lease);
                self.discard_idle();
                let fresh = self.take_fresh()?;
                let result = op(&fresh.session);
                self.give_back(fresh, &result);
                result
            }
            // This session alone is gone (closed, handle invalidated): throw it away and retry on another.
            Err(e) if e.session_is_broken() => {
                tracing::warn!(error = %e, "PKCS#11 session broke; retrying on another");
                drop(lease);
                let other = self.take()?;
                let result = op(&other.session);
                self.give_back(other, &result);
                result
            }
            result => {
                self.give_back(lease, &result);
                result
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is a list and a counter, consistent at every await-free step: a panic elsewhere cannot
        // leave it half-updated, so a poisoned lock is safe to use.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'s>(&self, state: std::sync::MutexGuard<'s, PoolState>) -> std::sync::MutexGuard<'s, PoolState> {
        self.returned.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle session, or a new one if the pool has room; otherwise waits for one to come back.
    fn take(&self) -> Result<Lease<'_>> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(Lease { session, place: Place { pool: self } });
            }
            if state.open < self.capacity {
                state.open += 1;
                drop(state);
                return self.open_in_place();
            }
            state = self.wait(state);
        }
    }

    /// A newly opened session, never an idle one (after a device failure those may be dead too). When the pool
    /// is full, an idle session is closed to make room.
    fn take_fresh(&self) -> Result<Lease<'_>> {
        let mut state = self.lock();
        let evicted = loop {
            if state.open < self.capacity {
                state.open += 1;
                break None;
            }
            // The new session takes the evicted one's place, so `open` stays as it is.
            if let Some(session) = state.idle.pop() {
                break Some(session);
            }
            state = self.wait(state);
        };
        drop(state);
        // Closed before the new one opens, so the token never sees more sessions than the pool's capacity.
        drop(evicted);
        self.open_in_place()
    }

    /// Opens a session into a place already counted in `open`. If opening or logging in fails, dropping the
    /// place gives it back and wakes a waiter, which would otherwise wait for a session that never comes.
    fn open_in_place(&self) -> Result<Lease<'_>> {
        let place = Place { pool: self };
        let session = self.open_logged_in()?;
        Ok(Lease { session, place })
    }

    /// Puts the session back in the pool, or closes it if `result` says it is broken.
    fn give_back<T>(&self, lease: Lease<'_>, result: &Result<T>) {
        if matches!(result, Err(e) if e.session_is_broken()) {
            drop(lease);
            return;
        }
        let Lease { session, place } = lease;
        self.lock().idle.push(session);
        place.keep();
        self.returned.notify_one();
    }

    /// Closes every idle session and frees their places.
    fn discard_idle(&self) {
        let idle = std::mem::take(&mut self.lock().idle);
        let closed = idle.len();
        // C_CloseSession for each, outside the lock; the places are freed only once they are closed.
        drop(idle);
        self.lock().open -= closed;
        self.returned.notify_all();
    }

    fn open_logged_in(&self) -> Result<Session> {
        let session = self.ctx.open_rw_session(self.slot).map_err(HsmError::pkcs11("C_OpenSession"))?;
        login(&session, &self.pin)?;
        Ok(session)
    }
}

/// A session lent out of the pool. Dropping it without `give_back` closes the session and frees its place: so
/// a session lost on an error path, or to a panic in the caller's operation, never shrinks the pool.
struct Lease<'p> {
    // Fields drop in order: the session is closed before its place is freed.
    session: Session,
    place: Place<'p>,
}

/// One unit of `PoolState::open`. Dropping it frees the place and wakes a waiter, unless it is kept.
struct Place<'p> {
    pool: &'p SessionPool,
}

impl Place<'_> {
    /// The session goes back to the idle list and keeps its place.
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.pool.lock().open -= 1;
        self.pool.returned.notify_one();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    /// The module's context and the slot of the test token labelled `label`.
    fn token(label: &str) -> (Arc<Pkcs11>, Slot) {
        let token = testkit::shared();
        let ctx = crate::context::context_for(&token.config.module).expect("module");
        let slot = ctx
            .get_slots_with_initialized_token()
            .expect("slots")
            .into_iter()
            .find(|slot| ctx.get_token_info(*slot).is_ok_and(|info| info.label().trim_end() == label))
            .expect("test token");
        (ctx, slot)
    }

    /// A pool of `capacity` sessions on the test token labelled `label`.
    fn pool(label: &str, capacity: usize) -> Arc<SessionPool> {
        let (ctx, slot) = token(label);
        let pin = Zeroizing::new(testkit::USER_PIN.to_owned());
        Arc::new(SessionPool::new(ctx, slot, pin, capacity).expect("pool"))
    }

    /// Runs `work` on another thread and fails the test if it has not finished within ten seconds, so that a
    /// pool that lost its places fails instead of hanging.
    fn within_ten_seconds<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(work()));
        result.recv_timeout(Duration::from_secs(10)).expect("the pool must not block")
    }

    #[test]
    fn a_panicking_operation_does_not_shrink_the_pool() {
        let pool = pool(testkit::TOKEN_LABEL, 1);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.with_session(|_| -> Result<()> { panic!("the operation panicked") })
        }));
        assert!(caught.is_err());
        assert_eq!(pool.lock().open, 0, "the panicked session's place is free again");
        // With its only place leaked, this would wait for ever.
        let info = within_ten_seconds(move || pool.with_session(|s| Ok(s.get_session_info().is_ok())));
        assert!(matches!(info, Ok(true)));
    }

    #[test]
    fn a_session_that_fails_to_open_frees_its_place_and_wakes_a_waiter() {
        // The spare token, which this process never logs in to, with a wrong PIN: every open fails at C_Login.
        let (ctx, slot) = token(testkit::SPARE_TOKEN_LABEL);
        let pool = Arc::new(SessionPool {
            ctx,
            slot,
            pin: Zeroizing::new("not-the-pin".to_owned()),
            capacity: 1,
            state: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
        });
        // One caller has reserved the only place and is opening a session...
        pool.lock().open = 1;
        // ...while another waits for a place.
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.take().map(|_| ()))
        };
        std::thread::sleep(Duration::from_millis(200));
        // The open fails: the place is freed and the waiter must be woken to try for itself.
        assert!(matches!(pool.open_in_place().map(|_| ()), Err(HsmError::WrongPin)));
        let waited = within_ten_seconds(move || waiter.join());
        assert!(matches!(waited, Ok(Err(HsmError::WrongPin))), "the waiter was woken and tried: {waited:?}");
        assert_eq!(pool.lock().open, 0, "no place is leaked by the failed opens");
    }

    #[test]
    fn a_lost_login_is_restored_even_with_other_idle_sessions() {
        let pool = pool(testkit::RELOGIN_TOKEN_LABEL, 2);
        // Fill the pool with two idle sessions: two operations that hold their sessions at the same time.
        let both = Arc::new(Barrier::new(2));
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (pool, both) = (Arc::clone(&pool), Arc::clone(&both));
                std::thread::spawn(move || {
                    pool.with_session(|_| {
                        both.wait();
                        Ok(())
                    })
                })
            })
            .collect();
        for holder in holders {
            assert!(matches!(holder.join(), Ok(Ok(()))));
        }
        assert_eq!(pool.lock().idle.len(), 2);

        // Log the application out: every session loses the login. A private session object can only be made
        // while logged in, so the first attempt meets CKR_USER_NOT_LOGGED_IN; another idle session would too.
        pool.with_session(|s| s.logout().map_err(HsmError::pkcs11("C_Logout"))).expect("log out");
        let template = [Attribute::Token(false), Attribute::Private(true), Attribute::ValueLen(32.into())];
        let key = pool.with_session(|s| {
            s.generate_key(&Mechanism::AesKeyGen, &template).map_err(HsmError::pkcs11("C_GenerateKey"))
        });
        assert!(key.is_ok(), "the pool logs in again and retries: {key:?}");
    }
}
