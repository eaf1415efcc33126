//! One PKCS#11 context per module per process.
//!
//! PKCS#11 forbids a second C_Initialize in the same process (CKR_CRYPTOKI_ALREADY_INITIALIZED), and some
//! modules misbehave when loaded twice, so every `Hsm` opened on the same module shares one context.

use crate::error::{HsmError, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

static CONTEXTS: Mutex<Vec<(PathBuf, Arc<Pkcs11>)>> = Mutex::new(Vec::new());

/// The process's context for `module`, loading and initialising it the first time.
pub(crate) fn context_for(module: &Path) -> Result<Arc<Pkcs11>> {
    if !module.exists() {
        return Err(HsmError::ModuleNotFound { path: module.to_owned() });
    }
    let key = module.canonicalize().unwrap_or_else(|_| module.to_owned());
    // A poisoned lock only means another thread panicked while holding it; the list itself stays valid.
    let mut contexts = CONTEXTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, ctx)) = contexts.iter().find(|(path, _)| *path == key) {
        return Ok(Arc::clone(ctx));
    }
    let load_error = |source| HsmError::ModuleLoad { path: module.to_owned(), source };
    let ctx = Pkcs11::new(&key).map_err(load_error)?;
    // OS locking: sessions are used from many threads (one at a time each).
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(load_error)?;
    let ctx = Arc::new(ctx);
    contexts.push((key, Arc::clone(&ctx)));
    Ok(ctx)
}
