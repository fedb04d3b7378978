//! The module-global registry (catalogs): one instance per server, guarded by a mutex (commands run
//! on Redis's main thread, so the lock is never contended; it is there to make the static sound),
//! saved in the RDB as the session type's aux data and replaced wholesale when an RDB is loaded
//! (at the swap, for an async load: see `STAGED`).

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use redis_module::raw;
use session_core::codec::registry::{self as saved, REGISTRY_VERSION};
use session_core::registry::Registry;

static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

/// The registry an async load (`repl-diskless-load swapdb`) brings: the replica keeps serving
/// the old dataset, with the old registry, until the loaded databases are swapped in; then this
/// one replaces it (`async_load_completed`), or is dropped with the databases on an abort.
/// `Some` exactly while such a load runs (REPL_ASYNC_LOAD started, not yet completed/aborted).
static STAGED: Mutex<Option<Registry>> = Mutex::new(None);

fn staged() -> MutexGuard<'static, Option<Registry>> {
    STAGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An async load started: what it loads goes aside. Empty until its aux data arrives, so that an
/// RDB without the module's aux data (a primary without the module) ends with an empty registry,
/// as a full resync into the live databases does.
pub fn async_load_started() {
    *staged() = Some(Registry::new());
}

/// The loaded databases were swapped in: so is the loaded registry.
pub fn async_load_completed() {
    if let Some(registry) = staged().take() {
        lock().replace_with(registry);
    }
}

/// The async load failed: the old databases stay, and so does the old registry.
pub fn async_load_aborted() {
    staged().take();
}

/// True while an async load runs (its aux data goes to the staged registry).
pub fn async_loading() -> bool {
    staged().is_some()
}

/// Whether the registry holds any group, as of the last guard released: lets the hot path
/// (TOUCH's `pending` count) skip the lock on a server without notifications.
static HAS_GROUPS: AtomicBool = AtomicBool::new(false);

/// Cluster mode: local changes are versioned with this node and go to the outbox.
static CLUSTER: AtomicBool = AtomicBool::new(false);
/// Whether the outbox holds changes, as of the last guard released (lets every command but a
/// changing registry command skip the lock after it ran).
static HAS_OUTBOX: AtomicBool = AtomicBool::new(false);

/// Turns cluster mode on (at load). The node id is read from Redis at each lock (CLUSTER RESET
/// HARD may change it).
pub fn set_cluster(on: bool) {
    CLUSTER.store(on, Ordering::Relaxed);
}

/// True when a registry command left changes to replicate and send.
pub fn has_outbox() -> bool {
    HAS_OUTBOX.load(Ordering::Relaxed)
}

/// The registry's digest when it is free (INFO).
pub fn try_digest() -> Option<session_core::registry::sync::Digest> {
    match REGISTRY.try_lock() {
        Ok(r) => Some(r.digest()),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner().digest()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The registry, locked for the duration of one command.
pub struct Guard(MutexGuard<'static, Registry>);

impl std::ops::Deref for Guard {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        HAS_GROUPS.store(!self.0.groups.is_empty(), Ordering::Relaxed);
        HAS_OUTBOX.store(self.0.has_outbox(), Ordering::Relaxed);
    }
}

/// The registry, for the duration of one command.
pub fn lock() -> Guard {
    let mut guard = Guard(
        REGISTRY
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    // A loaded or swapped-in registry takes this node's identity (set here, not at load, so no
    // replacement path can miss it).
    if CLUSTER.load(Ordering::Relaxed) && !guard.track {
        guard.track = true;
        guard.node = crate::cluster::my_id().map_or(0, |id| session_core::version::node_hash(&id));
    }
    guard
}

/// Empties the registry (FLUSHALL). The sequence survives, so cursors never hide a notification
/// published after the flush.
pub fn clear() {
    lock().clear();
}

/// False when the registry certainly holds no group (every change goes through `lock`).
pub fn has_groups() -> bool {
    HAS_GROUPS.load(Ordering::Relaxed)
}

/// Saves the registry before the keyspace (every RDB carries it, empty or not, so that loading
/// any RDB written by this module replaces the registry entirely).
pub unsafe extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if when == raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
            raw::save_slice(rdb, &saved::encode(&lock()));
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
        match saved::decode(buffer.as_ref()) {
            Ok(registry) => {
                let mut staged = staged();
                match staged.as_mut() {
                    // an async load: the live registry goes on serving the old dataset
                    Some(slot) => *slot = registry,
                    None => {
                        drop(staged);
                        // the node's sync settings (node id, tracking, tombstone TTL) stay
                        lock().replace_with(registry);
                    }
                }
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

/// (catalogs, items, groups, notifications, memory, group memory) when the registry is free; None
/// when locked.
pub fn try_sizes() -> Option<(usize, usize, usize, usize, usize, usize)> {
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
        registry.group_memory(),
    ))
}

/// Set in the AOF-rewrite child once the registry went into the new AOF. The child is a fresh
/// fork of a parent that never sets it, so every rewrite starts with `false`.
static EMITTED_IN_REWRITE: AtomicBool = AtomicBool::new(false);

/// Writes the registry into an AOF rewrite as the commands that rebuild it (catalog items with
/// absolute expiry, notifications with their time, expiry, sequence number and publisher).
///
/// Redis gives modules no rewrite hook for data outside the keyspace, so the registry rides along
/// with the first session the rewrite visits. With the default `aof-use-rdb-preamble yes` the
/// rewrite is an RDB and carries the registry as aux data instead; this path matters only with the
/// preamble off, and a dataset without any session cannot carry the registry there.
pub fn emit_into_rewrite(aof: *mut raw::RedisModuleIO) {
    if EMITTED_IN_REWRITE.swap(true, Ordering::Relaxed) {
        return;
    }
    let registry = lock();
    // In a cluster the registry's versions and tombstones must survive the rewrite: it is
    // written as the versioned entries a primary replicates (`SESSION.SYNC APPLY`).
    if crate::cluster::sync::on() {
        let entries = registry.snapshot(crate::ffi::wall_ms());
        for blob in session_core::codec::registry::chunk_entries(
            &entries,
            crate::cluster::sync::CHUNK_BYTES,
        ) {
            emit(aof, c"SESSION.SYNC", &[b"APPLY", &blob]);
        }
        return;
    }
    for (name, catalog) in &registry.catalogs {
        for item in catalog.items() {
            let score = item.score.to_string();
            let count = item.categories.len().to_string();
            let expiry = item.expires_ms.map(|e| e.to_string());
            let mut args: Vec<&[u8]> = vec![b"ADD", name, &item.id, b"SCORE", score.as_bytes()];
            if !item.categories.is_empty() {
                args.push(b"CATEGORIES");
                args.push(count.as_bytes());
                args.extend(item.categories.iter().map(|&c| catalog.category_name(c)));
            }
            if let Some(e) = &expiry {
                args.push(b"EXPIREAT");
                args.push(e.as_bytes());
            }
            emit(aof, c"SESSION.CATALOG", &args);
        }
    }
    for (group, g) in &registry.groups {
        for n in g.notifications() {
            let (expires, at, seq) = (
                n.expires_ms.to_string(),
                n.published_ms.to_string(),
                n.seq.to_string(),
            );
            let mut args: Vec<&[u8]> = vec![
                group,
                &n.id,
                &n.payload,
                b"EXPIREAT",
                expires.as_bytes(),
                b"MAXLEN",
                b"100000",
                b"AT",
                at.as_bytes(),
                b"SEQ",
                seq.as_bytes(),
            ];
            if let Some(p) = &n.publisher {
                args.push(b"PUBLISHER");
                args.push(p);
            }
            let (after, before) = (n.joined.after.to_string(), n.joined.before.to_string());
            if n.joined.after != session_core::notify::JoinWindow::ANY.after {
                args.extend([&b"JOINEDAFTER"[..], after.as_bytes()]);
            }
            if n.joined.before != session_core::notify::JoinWindow::ANY.before {
                args.extend([&b"JOINEDBEFORE"[..], before.as_bytes()]);
            }
            emit(aof, c"SESSION.NOTIFYGROUP", &args);
        }
    }
}

fn emit(aof: *mut raw::RedisModuleIO, command: &std::ffi::CStr, args: &[&[u8]]) {
    // SAFETY: strings created without a context are ours to free; EmitAOF copies what it needs.
    unsafe {
        let (Some(create), Some(free), Some(emit)) = (
            raw::RedisModule_CreateString,
            raw::RedisModule_FreeString,
            raw::RedisModule_EmitAOF,
        ) else {
            return;
        };
        let argv: Vec<*mut raw::RedisModuleString> = args
            .iter()
            .map(|a| create(std::ptr::null_mut(), a.as_ptr().cast(), a.len()))
            .collect();
        if argv.iter().all(|s| !s.is_null()) {
            emit(
                aof,
                command.as_ptr(),
                c"v".as_ptr(),
                argv.as_ptr(),
                argv.len(),
            );
        }
        for s in argv.into_iter().filter(|s| !s.is_null()) {
            free(std::ptr::null_mut(), s);
        }
    }
}
