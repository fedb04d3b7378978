//! The module-global registry (catalogs): one instance per server, guarded by a mutex (commands run
//! on Redis's main thread, so the lock is never contended; it is there to make the static sound),
//! saved in the RDB as the session type's aux data and replaced wholesale when an RDB is loaded.

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use redis_module::raw;
use session_core::registry::{Registry, REGISTRY_VERSION};

static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

/// The registry, for the duration of one command.
pub fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Saves the registry before the keyspace (every RDB carries it, empty or not, so that loading
/// any RDB written by this module replaces the registry entirely).
pub unsafe extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
            raw::save_slice(rdb, &lock().encode());
        }
    }));
}

pub unsafe extern "C" fn aux_load(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
    when: c_int,
) -> c_int {
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int || encver < 1 {
            return false;
        }
        let Ok(buffer) = raw::load_string_buffer(rdb) else {
            return false;
        };
        match Registry::decode(buffer.as_ref()) {
            Ok(registry) => {
                *lock() = registry;
                true
            }
            Err(e) => {
                redis_module::logging::log_warning(format!(
                    "session: refusing the saved registry (format {REGISTRY_VERSION}): {e}"
                ));
                false
            }
        }
    }));
    if loaded.unwrap_or(false) {
        raw::REDISMODULE_OK as c_int
    } else {
        raw::REDISMODULE_ERR as c_int
    }
}

/// (catalogs, items, groups, notifications, memory) when the registry is free; None when locked.
pub fn try_sizes() -> Option<(usize, usize, usize, usize, usize)> {
    let registry = match REGISTRY.try_lock() {
        Ok(r) => r,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    Some((
        registry.catalogs.len(),
        registry.items(),
        registry.groups.len(),
        registry.notifications(),
        registry.memory(),
    ))
}
