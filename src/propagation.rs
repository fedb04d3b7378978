//! Whether anything can receive what this server propagates, so that a write can skip building
//! its effect form when nothing would read it.
//!
//! Redis itself drops a propagated command when the server has no AOF, no replication backlog
//! and no replica (`shouldPropagate`), but a module pays before that check: `RedisModule_Replicate`
//! looks the command up by name and builds an argument vector on every call (a quarter of a
//! plain TOUCH's instructions). When nothing listens, the module calls
//! `RedisModule_ReplicateVerbatim` instead, which keeps Redis's change counter (`save` rules)
//! exact and which Redis drops just the same.
//!
//! The state is read from INFO once a second and assumed "needed" the moment anything could
//! change it:
//! - every fork (`FORK_CHILD`): a replica's full sync and an AOF rewrite both start with a fork,
//!   and everything written after the fork must reach them. Writes before the fork are in the
//!   snapshot, so the window between a replica's PSYNC and its fork needs nothing;
//! - a replication role change or a replica connecting or leaving;
//! - module load, and any INFO field that cannot be read.
//!
//! It returns to "not needed" only when a later INFO shows AOF off, no backlog and no replica.
//! When the fork event cannot be subscribed to, it stays "needed" for good.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::raw;

/// Anything may receive propagated commands (the safe default).
static NEEDED: AtomicBool = AtomicBool::new(true);
/// The events that raise `NEEDED` are subscribed; without them it never drops.
static WATCHED: AtomicBool = AtomicBool::new(false);

/// True unless this server has, for certain, no AOF, no backlog and no replica.
#[inline]
pub fn needed() -> bool {
    NEEDED.load(Ordering::Relaxed)
}

fn raise() {
    NEEDED.store(true, Ordering::Relaxed);
}

unsafe extern "C" fn on_change(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    raise();
}

/// Subscribes to the events that raise the flag (from OnLoad).
pub fn watch(ctx: *mut raw::RedisModuleCtx) {
    let Some(subscribe) = (unsafe { raw::RedisModule_SubscribeToServerEvent }) else {
        return;
    };
    let mut all = true;
    for id in [
        raw::REDISMODULE_EVENT_FORK_CHILD,
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        raw::REDISMODULE_EVENT_REPLICA_CHANGE,
    ] {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: called from OnLoad; the callback only stores to an atomic.
        all &= unsafe { subscribe(ctx, event, Some(on_change)) } == raw::REDISMODULE_OK as c_int;
    }
    WATCHED.store(all, Ordering::Relaxed);
    raise();
}

/// Re-reads the server's state (from the once-a-second timer).
pub fn refresh(ctx: *mut raw::RedisModuleCtx) {
    let listening = !WATCHED.load(Ordering::Relaxed) || listeners(ctx).is_none_or(|l| l);
    NEEDED.store(listening, Ordering::Relaxed);
}

/// Some(true) when the AOF is on, a backlog exists or a replica is connected; None when INFO
/// could not say.
fn listeners(ctx: *mut raw::RedisModuleCtx) -> Option<bool> {
    let [aof] = info_fields(ctx, c"persistence", [c"aof_enabled"])?;
    let [backlog, replicas] = info_fields(
        ctx,
        c"replication",
        [c"repl_backlog_active", c"connected_slaves"],
    )?;
    Some(aof != 0 || backlog != 0 || replicas != 0)
}

/// Unsigned `fields` of one INFO `section` (read once); None when any is missing.
fn info_fields<const N: usize>(
    ctx: *mut raw::RedisModuleCtx,
    section: &std::ffi::CStr,
    fields: [&std::ffi::CStr; N],
) -> Option<[u64; N]> {
    // SAFETY: main thread, valid context; the info data is freed before returning.
    unsafe {
        let get = raw::RedisModule_GetServerInfo?;
        let read = raw::RedisModule_ServerInfoGetFieldUnsigned?;
        let free = raw::RedisModule_FreeServerInfo?;
        let data = get(ctx, section.as_ptr());
        if data.is_null() {
            return None;
        }
        let mut values = [0u64; N];
        let mut ok = true;
        for (value, field) in values.iter_mut().zip(fields) {
            let mut err: c_int = 0;
            *value = read(data, field.as_ptr(), &mut err);
            ok &= err == 0;
        }
        free(ctx, data);
        ok.then_some(values)
    }
}
