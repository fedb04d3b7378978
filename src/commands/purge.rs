//! `SESSION.PURGE`: drops what expired in the registry (notifications, groups left
//! empty, catalog items, catalogs left empty). Expired things are never delivered or surfaced
//! anyway; purging gives their memory back.
//!
//! The primary runs it on its own once a second (a module timer) and replicates it as
//! `SESSION.PURGE AT <its time>`, so replicas and the AOF drop exactly what the primary dropped
//! and never purge by their own clock (an INBOX replayed with the primary's `AT` must still find
//! what was live at that time).

use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisValue};
use session_core::codec::args::{Args, MAX_AT_MS};
use session_core::session::effective_time;

use crate::command::Invocation;
use crate::errors::from_core;
use crate::ffi::{self, api};
use crate::registry;

/// How often the primary purges on its own.
const PERIOD_MS: i64 = 1000;

pub fn purge(inv: &Invocation) -> RedisResult {
    let mut args = Args::new(&inv.args[1..]);
    let mut at = None;
    while !args.is_empty() {
        let token = args.next_arg().map_err(from_core)?;
        if token.eq_ignore_ascii_case(b"AT") && at.is_none() {
            at = Some(args.next_int("AT", 0, MAX_AT_MS).map_err(from_core)?);
        } else {
            return Err(from_core(session_core::Error::Syntax));
        }
    }
    // `AT` is the primary's clock in its replicated purge: a client could otherwise purge live
    // notifications and catalog items early (any time up to the allowed clock skew ahead).
    if at.is_some() && !inv.trusted() {
        return Err(crate::errors::reserved("AT"));
    }
    let now = effective_time(at, ffi::wall_ms(), inv.trusted()).map_err(from_core)?;
    let purged = run(&inv.context(), now);
    Ok(RedisValue::Integer(purged as i64))
}

/// Purges at `now` and replicates the purge when it dropped anything.
fn run(ctx: &Context, now: i64) -> usize {
    let purged = registry::lock().purge(now);
    if purged > 0 {
        let at = now.to_string();
        ctx.replicate("SESSION.PURGE", &[&b"AT"[..], at.as_bytes()][..]);
    }
    purged
}

unsafe extern "C" fn tick(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        crate::propagation::refresh(ctx);
        let context = Context::new(ctx);
        let flags = context.get_flags();
        // Only a writable primary decides; replicas and loading servers follow the stream.
        if flags.contains(ContextFlags::MASTER)
            && !flags.intersects(ContextFlags::LOADING | ContextFlags::READONLY)
        {
            run(&context, ffi::wall_ms());
        }
    }));
    let _ = schedule(ctx);
}

/// Arms the next purge (module timers fire once).
pub fn schedule(ctx: *mut raw::RedisModuleCtx) -> Result<(), RedisError> {
    let create = api!(RedisModule_CreateTimer)?;
    // SAFETY: called on the main thread with a valid context; the callback is guarded.
    unsafe { create(ctx, PERIOD_MS, Some(tick), std::ptr::null_mut()) };
    Ok(())
}
