//! Locks that outlive a panic: a poisoned lock only means another thread panicked while holding it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A poisoned lock only means another test thread panicked; the data is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
