//! The per-user index kept in step with the keyspace, and the `session:expired` /
//! `session:deleted` messages.
//!
//! The index (`session_core::users::UserIndex`) lives in module memory, one per server: the
//! sessions are the truth (each holds its `user`) and the index is derived from them, so it is
//! never saved. It follows the keyspace through:
//! - the type's `unlink` callback: Redis calls it whenever a session leaves a key (deleted,
//!   expired, evicted, overwritten, renamed or moved away), so the key leaves the index at once,
//!   and (db, key, user) is remembered until the keyspace notification that follows says why;
//! - the module's own subscription to keyspace events, which Redis delivers to modules whatever
//!   `notify-keyspace-events` says: `expired`, `del`, `evicted`, ... publish the message;
//!   `rename_to`, `move_to`, `copy_to` and `restore` list the session that arrived;
//! - server events: FLUSHDB/FLUSHALL and SWAPDB, and the end of every load (RDB at startup,
//!   `DEBUG RELOAD`, full resync, AOF), after which the index is rebuilt from the sessions;
//! - `SESSION.TOUCH ... USER` (`commands/users.rs`), which lists the session it touched.
//!
//! A notification callback must not write to the keyspace: when a session that arrived puts its
//! user over `session.max-sessions-per-user`, the evictions run in a post-notification job where
//! the server has them (Redis 7.2+, Valkey); on Redis 7.0 the next TOUCH of that user applies
//! the maximum.
//!
//! Lock discipline: neither lock below is held across a Redis call, since any call may delete a
//! key, which re-enters `unlink`.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use redis_module::raw;
use redis_module::RedisError;
use session_core::users::{gone_message, Gone, UserIndex};
use session_core::Session;

use crate::config;
use crate::datatype::session_type;
use crate::errors;
use crate::ffi::{self, api, Key, KeyValue};

static INDEX: Mutex<UserIndex> = Mutex::new(UserIndex::new());

/// The per-user index. Never hold it across a Redis call.
pub fn index() -> MutexGuard<'static, UserIndex> {
    INDEX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A session that left a key, waiting for the notification that says why.
struct Unlinked {
    db: i32,
    key: Box<[u8]>,
    user: Option<Box<[u8]>>,
}

/// Sessions unlinked and not yet explained. A notification follows each unlink within the same
/// command (two unlinks precede the notifications of a `RENAME` onto an existing key), so this
/// stays tiny; the bound only matters for unlinks that no notification we hear of follows.
static UNLINKED: Mutex<Vec<Unlinked>> = Mutex::new(Vec::new());
const UNLINKED_MAX: usize = 16;

fn unlinked() -> MutexGuard<'static, Vec<Unlinked>> {
    UNLINKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The reason the module itself is deleting a key (REVOKE, the per-user maximum), read by the
/// `del` notification that the deletion fires. 0 = none.
static DELETING_AS: AtomicU8 = AtomicU8::new(0);

fn reason_code(why: Option<Gone>) -> u8 {
    match why {
        Some(Gone::Revoked) => 1,
        Some(Gone::Limit) => 2,
        _ => 0,
    }
}

fn reason_of(code: u8) -> Option<Gone> {
    match code {
        1 => Some(Gone::Revoked),
        2 => Some(Gone::Limit),
        _ => None,
    }
}

/// Runs `f` (a deletion by the module) with `why` as the reason its messages give.
pub fn deleting_as<R>(why: Gone, f: impl FnOnce() -> R) -> R {
    DELETING_AS.store(reason_code(Some(why)), Ordering::Relaxed);
    let r = f();
    DELETING_AS.store(0, Ordering::Relaxed);
    r
}

fn guarded<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The database a context has selected.
pub fn selected_db(ctx: *mut raw::RedisModuleCtx) -> i32 {
    match unsafe { raw::RedisModule_GetSelectedDb } {
        // SAFETY: a valid context.
        Some(f) => unsafe { f(ctx) },
        None => 0,
    }
}

fn context_flags(ctx: *mut raw::RedisModuleCtx) -> u32 {
    match unsafe { raw::RedisModule_GetContextFlags } {
        // SAFETY: a valid context.
        Some(f) => unsafe { f(ctx) as u32 },
        None => 0,
    }
}

/// True when this server may evict on its own: a primary that is not loading. Replicas and AOF
/// replay apply the primary's evictions, which reach them as `DEL`.
pub fn may_evict(ctx: *mut raw::RedisModuleCtx) -> bool {
    let flags = context_flags(ctx);
    flags & (raw::REDISMODULE_CTX_FLAGS_LOADING | raw::REDISMODULE_CTX_FLAGS_SLAVE) == 0
}

// ---------------------------------------------------------------------------------------------
// The type's unlink callback

/// `unlink2` of the session type: a session left a key.
pub unsafe extern "C" fn unlink(ctx: *mut raw::RedisModuleKeyOptCtx, value: *const c_void) {
    guarded((), || {
        let (Some(name_of), Some(db_of)) = (
            raw::RedisModule_GetKeyNameFromOptCtx,
            raw::RedisModule_GetDbIdFromOptCtx,
        ) else {
            return;
        };
        let (name, db) = (name_of(ctx), db_of(ctx));
        if name.is_null() {
            return;
        }
        let key = ffi::string_bytes(name);
        let user = value
            .cast::<Session>()
            .as_ref()
            .and_then(|s| s.user.clone());
        if user.is_some() {
            index().unregister(db, key);
        }
        let mut pending = unlinked();
        if pending.len() >= UNLINKED_MAX {
            pending.remove(0);
        }
        pending.push(Unlinked {
            db,
            key: Box::from(key),
            user,
        });
    })
}

/// Takes the remembered unlink of (db, key), if any.
fn take(db: i32, key: &[u8]) -> Option<Unlinked> {
    let mut pending = unlinked();
    let at = pending.iter().rposition(|u| u.db == db && *u.key == *key)?;
    Some(pending.remove(at))
}

// ---------------------------------------------------------------------------------------------
// Keyspace notifications

/// The classes the module listens to: generic events (del, rename, move, copy, restore, expire,
/// ...), expiry and eviction. Not the classes of commands that could overwrite a session with
/// another type (`SET`, `SORT ... STORE`, `SUNIONSTORE`, ...): listening to them costs every such
/// write in the server ~10% of its time, for a misuse. Such an overwrite still drops the session
/// from the index at once (through `unlink`); only its `session:deleted` message is left out (or
/// is given when that key is next deleted or expires).
const SUBSCRIBED: c_int = (raw::REDISMODULE_NOTIFY_GENERIC
    | raw::REDISMODULE_NOTIFY_EXPIRED
    | raw::REDISMODULE_NOTIFY_EVICTED) as c_int;

unsafe extern "C" fn on_keyspace_event(
    ctx: *mut raw::RedisModuleCtx,
    _class: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    guarded((), || {
        if event.is_null() || key.is_null() {
            return;
        }
        keyspace_event(ctx, CStr::from_ptr(event).to_bytes(), key);
    });
    raw::REDISMODULE_OK as c_int
}

fn keyspace_event(ctx: *mut raw::RedisModuleCtx, event: &[u8], key: *mut raw::RedisModuleString) {
    let arrives = matches!(event, b"rename_to" | b"move_to" | b"copy_to" | b"restore");
    let leaves = matches!(event, b"rename_from" | b"move_from");
    // Fast path: most events concern keys that held no session.
    if !arrives && !leaves && unlinked().is_empty() {
        return;
    }
    let db = selected_db(ctx);
    // SAFETY: Redis passes a valid key name for the duration of the callback.
    let name = unsafe { ffi::string_bytes(key) };
    if let Some(gone) = take(db, name) {
        let why = match event {
            b"expired" => Some(Gone::Expired),
            b"evicted" => Some(Gone::Evicted),
            b"del" => Some(reason_of(DELETING_AS.load(Ordering::Relaxed)).unwrap_or(Gone::Deleted)),
            // renamed or moved away: the session lives on under its new name
            _ if leaves => None,
            // anything else that unlinked a session replaced it
            _ => Some(Gone::Overwritten),
        };
        if let Some(why) = why {
            publish(ctx, &gone, why);
        }
    }
    if !leaves {
        // Whatever was unlinked before and never explained will not be (e.g. a deletion made
        // while this callback ran, which Redis does not notify us of).
        unlinked().clear();
    }
    if arrives {
        arrived(ctx, db, key);
    }
    restore_client_db(ctx, event, db);
}

/// The database of the last `move_from` (the source of a MOVE), or -1.
static MOVED_FROM: AtomicI32 = AtomicI32::new(-1);

/// Valkey 8.1 runs keyspace callbacks on the client executing the command and selects the
/// event's database on it without restoring it (fixed upstream in valkey-io/valkey#4024), so a
/// `MOVE` would leave that client on the destination database. The source is known from the
/// `move_from` that precedes `move_to`: select it back. (On Redis the callback's client is a
/// temporary one and this changes nothing.)
fn restore_client_db(ctx: *mut raw::RedisModuleCtx, event: &[u8], db: i32) {
    match event {
        b"move_from" => MOVED_FROM.store(db, Ordering::Relaxed),
        b"move_to" => {
            let source = MOVED_FROM.swap(-1, Ordering::Relaxed);
            if source >= 0 && source != db {
                if let Some(select) = unsafe { raw::RedisModule_SelectDb } {
                    // SAFETY: a valid context; the database exists (the key came from it).
                    unsafe { select(ctx, source) };
                }
            }
        }
        _ => {}
    }
}

/// Publishes the message of a session that left the keyspace (not while loading: no client
/// listens, and the events are replayed history).
fn publish(ctx: *mut raw::RedisModuleCtx, gone: &Unlinked, why: Gone) {
    if context_flags(ctx) & raw::REDISMODULE_CTX_FLAGS_LOADING != 0 {
        return;
    }
    let message = gone_message(&gone.key, gone.user.as_deref(), gone.db, why);
    ffi::publish(ctx, why.channel(), message.as_bytes());
}

/// A value arrived at `key` by RENAME, MOVE, COPY or RESTORE: list it when it is a session with a
/// user, and schedule the per-user maximum.
fn arrived(ctx: *mut raw::RedisModuleCtx, db: i32, key: *mut raw::RedisModuleString) {
    // Only looking: the key's idle time, LFU counter and the hit counters stay as the command
    // that moved the value left them (RESTORE ... IDLETIME/FREQ sets them on purpose).
    let user = match Key::peek_written(ctx, key) {
        Ok(mut k) => match k.value::<Session>(session_type()) {
            Ok(KeyValue::Ours(session)) => session
                .user
                .clone()
                .map(|user| (user, session.last_seen_ms)),
            _ => None,
        },
        Err(_) => None,
    };
    // SAFETY: as above.
    let name = unsafe { ffi::string_bytes(key) };
    // Opening it may have found it expired and deleted it: Redis does not notify a module of
    // what happens while its own callback runs, so the expiry is published here.
    if let Some(gone) = take(db, name) {
        publish(ctx, &gone, Gone::Expired);
    }
    let Some((user, last_seen_ms)) = user else {
        return;
    };
    let count = {
        let mut ix = index();
        ix.register(db, name, &user, last_seen_ms);
        ix.count(db, &user)
    };
    let max = config::max_sessions_per_user();
    if max > 0 && count > max && may_evict(ctx) {
        schedule_limit(ctx, db, name, &user);
    }
}

/// The per-user maximum to apply after a notification (a post-notification job).
struct LimitJob {
    db: i32,
    key: Box<[u8]>,
    user: Box<[u8]>,
}

fn schedule_limit(ctx: *mut raw::RedisModuleCtx, db: i32, key: &[u8], user: &[u8]) {
    // Redis 7.0 has no post-notification jobs: the user's next TOUCH applies the maximum.
    let Some(add_job) = (unsafe { raw::RedisModule_AddPostNotificationJob }) else {
        return;
    };
    let job = Box::into_raw(Box::new(LimitJob {
        db,
        key: Box::from(key),
        user: Box::from(user),
    }));
    // SAFETY: Redis runs the job once after the notification and then frees `pd` with
    // `free_limit_job`; if it refuses the job, it is freed here.
    let status = unsafe { add_job(ctx, Some(limit_job), job.cast(), Some(free_limit_job)) };
    if status != raw::REDISMODULE_OK as c_int {
        drop(unsafe { Box::from_raw(job) });
    }
}

unsafe extern "C" fn limit_job(ctx: *mut raw::RedisModuleCtx, pd: *mut c_void) {
    guarded((), || {
        let Some(job) = pd.cast::<LimitJob>().as_ref() else {
            return;
        };
        if !may_evict(ctx) {
            return;
        }
        if let Some(select) = raw::RedisModule_SelectDb {
            if select(ctx, job.db) != raw::REDISMODULE_OK as c_int {
                return;
            }
        }
        crate::commands::enforce_limit(ctx, job.db, &job.key, &job.user);
    })
}

unsafe extern "C" fn free_limit_job(pd: *mut c_void) {
    guarded((), || {
        if !pd.is_null() {
            drop(Box::from_raw(pd.cast::<LimitJob>()));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Server events

/// `RedisModuleSwapDbInfo` (version 1), which the bindings do not export.
#[repr(C)]
struct SwapDbInfo {
    version: u64,
    first: i32,
    second: i32,
}

unsafe extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    guarded((), || {
        if subevent != raw::REDISMODULE_SUBEVENT_FLUSHDB_START {
            return;
        }
        let db = data
            .cast::<raw::RedisModuleFlushInfo>()
            .as_ref()
            .map_or(-1, |info| info.dbnum);
        index().flush((db >= 0).then_some(db));
        unlinked().clear();
        // FLUSHALL clears the registry too: catalogs and notifications are data. FLUSHALL reaches
        // replicas and the AOF as itself, so they clear theirs at the same point of the stream.
        // FLUSHDB leaves it (the registry is server-wide, not one database's).
        if db < 0 {
            crate::registry::clear();
        }
    })
}

unsafe extern "C" fn on_swapdb(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _subevent: u64,
    data: *mut c_void,
) {
    guarded((), || {
        if let Some(info) = data.cast::<SwapDbInfo>().as_ref() {
            index().swap(info.first, info.second);
        }
        unlinked().clear();
    })
}

unsafe extern "C" fn on_loading(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    guarded((), || match subevent {
        raw::REDISMODULE_SUBEVENT_LOADING_ENDED | raw::REDISMODULE_SUBEVENT_LOADING_FAILED => {
            rebuild(ctx)
        }
        // An async load (`repl-diskless-load swapdb`) loads into databases of its own while the
        // old ones keep serving: the index goes on following the old ones; the end of the load
        // (after the swap, or after an abort) rebuilds it from whatever is live then.
        _ if crate::registry::async_loading() => {}
        _ => {
            // A load starts: whatever it brings replaces the index at its end.
            index().flush(None);
            unlinked().clear();
        }
    })
}

/// `repl-diskless-load swapdb` (the module declares REDISMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD).
/// Redis fires STARTED before the load's LOADING start, and at the end either swaps the loaded
/// databases in, fires COMPLETED and then LOADING ended, or fires LOADING failed and then ABORTED.
/// The registry: staged during the load, swapped in at COMPLETED, dropped at ABORTED. The index:
/// left as it is until LOADING ended/failed rebuilds it from the live databases.
unsafe extern "C" fn on_async_load(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    guarded((), || match subevent {
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_STARTED => crate::registry::async_load_started(),
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_COMPLETED => {
            crate::registry::async_load_completed()
        }
        raw::REDISMODULE_SUBEVENT_REPL_ASYNC_LOAD_ABORTED => crate::registry::async_load_aborted(),
        _ => {}
    })
}

/// The sessions of one database that have a user: (key, user, last seen).
type Owned = Vec<(Box<[u8]>, Box<[u8]>, i64)>;

/// Rebuilds the whole index from the sessions of every database (after a load).
fn rebuild(ctx: *mut raw::RedisModuleCtx) {
    let (Some(select), Some(scan), Some(create), Some(destroy)) = (unsafe {
        (
            raw::RedisModule_SelectDb,
            raw::RedisModule_Scan,
            raw::RedisModule_ScanCursorCreate,
            raw::RedisModule_ScanCursorDestroy,
        )
    }) else {
        return;
    };
    let original = selected_db(ctx);
    let mut found: Vec<(i32, Owned)> = Vec::new();
    let mut db = 0;
    // SAFETY: selecting a database that does not exist fails and changes nothing; the cursor is
    // created and destroyed here; `collect` only reads.
    unsafe {
        while select(ctx, db) == raw::REDISMODULE_OK as c_int {
            let mut sessions: Owned = Vec::new();
            let cursor = create();
            if !cursor.is_null() {
                let out: *mut Owned = &mut sessions;
                while scan(ctx, cursor, Some(collect), out.cast()) != 0 {}
                destroy(cursor);
            }
            if !sessions.is_empty() {
                found.push((db, sessions));
            }
            db += 1;
        }
        select(ctx, original);
    }
    let mut ix = index();
    ix.flush(None);
    for (db, sessions) in found {
        ix.rebuild(db, sessions);
    }
    drop(ix);
    unlinked().clear();
}

unsafe extern "C" fn collect(
    _ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
    out: *mut c_void,
) {
    guarded((), || {
        let (Some(out), Some(key_type), Some(get_type), Some(get_value)) = (
            out.cast::<Owned>().as_mut(),
            raw::RedisModule_KeyType,
            raw::RedisModule_ModuleTypeGetType,
            raw::RedisModule_ModuleTypeGetValue,
        ) else {
            return;
        };
        if key.is_null() || name.is_null() {
            return;
        }
        if key_type(key) != raw::REDISMODULE_KEYTYPE_MODULE as c_int
            || get_type(key) != session_type()
        {
            return;
        }
        if let Some(session) = get_value(key).cast::<Session>().as_ref() {
            if let Some(user) = &session.user {
                out.push((
                    Box::from(ffi::string_bytes(name)),
                    user.clone(),
                    session.last_seen_ms,
                ));
            }
        }
    })
}

/// Subscribes to the keyspace and server events above (from the module's OnLoad).
pub fn subscribe(ctx: *mut raw::RedisModuleCtx) -> Result<(), RedisError> {
    let keyspace = api!(RedisModule_SubscribeToKeyspaceEvents)?;
    let server = api!(RedisModule_SubscribeToServerEvent)?;
    // SAFETY: called from OnLoad with the module's context; the callbacks never unwind.
    unsafe {
        if keyspace(ctx, SUBSCRIBED, Some(on_keyspace_event)) != raw::REDISMODULE_OK as c_int {
            return Err(errors::subscribe_failed("keyspace events"));
        }
        let events: [(u64, raw::RedisModuleEventCallback, bool); 4] = [
            (raw::REDISMODULE_EVENT_FLUSHDB, Some(on_flush), true),
            (raw::REDISMODULE_EVENT_SWAPDB, Some(on_swapdb), true),
            (raw::REDISMODULE_EVENT_LOADING, Some(on_loading), true),
            (
                raw::REDISMODULE_EVENT_REPL_ASYNC_LOAD,
                Some(on_async_load),
                // required: the module declares it handles async loads (lib.rs)
                true,
            ),
        ];
        for (id, callback, required) in events {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            if server(ctx, event, callback) != raw::REDISMODULE_OK as c_int && required {
                return Err(errors::subscribe_failed(&format!("server event {id}")));
            }
        }
    }
    Ok(())
}

/// (sessions, users) in the per-user index when it is free; None while it is locked (INFO can
/// be asked for during a crash report).
pub fn try_index_sizes() -> Option<(usize, usize)> {
    let index = match INDEX.try_lock() {
        Ok(i) => i,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    Some((index.len(), index.users()))
}
