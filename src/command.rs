//! Command dispatch: every SESSION command enters through `dispatch`, which turns the raw argv into
//! byte slices (arguments are binary, never assumed UTF-8), runs the handler under `catch_unwind`
//! so that no panic can cross into Redis, and writes the reply.

use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, Status};
use smallvec::SmallVec;

use crate::errors;
use crate::ffi::{self, api};
use crate::stats;

/// One command call: the raw arguments and their bytes.
pub struct Invocation<'a> {
    pub ctx: *mut raw::RedisModuleCtx,
    pub argv: &'a [*mut raw::RedisModuleString],
    pub args: SmallVec<[&'a [u8]; 16]>,
}

impl Invocation<'_> {
    pub fn context(&self) -> Context {
        Context::new(self.ctx)
    }

    /// True when the command comes from the primary or the AOF: its effects were already accepted
    /// once and must be applied as they are, whatever this server's clock and limits say.
    pub fn trusted(&self) -> bool {
        self.context()
            .get_flags()
            .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
    }

    /// True while the server loads the AOF or an RDB (no live clients to publish to).
    pub fn loading(&self) -> bool {
        self.context().get_flags().contains(ContextFlags::LOADING)
    }

    /// Replicates `command` with `args` (bytes) to replicas and the AOF. While nothing can
    /// receive it, only counts the change (see `crate::propagation`).
    pub fn replicate(&self, command: &str, args: &[&[u8]]) {
        // In cluster mode a registry command's changes replicate as `SESSION.SYNC APPLY` of its
        // versioned entries (`cluster::sync::after_command`), so replicas hold the same versions.
        if crate::cluster::sync::on() && is_registry_write(command) {
            return;
        }
        if crate::propagation::needed() {
            self.context().replicate(command, args);
        } else {
            crate::ffi::count_change(self.ctx);
        }
    }

    /// Replicates the call as it came.
    pub fn replicate_verbatim(&self) {
        if crate::propagation::needed() {
            self.context().replicate_verbatim();
        } else {
            crate::ffi::count_change(self.ctx);
        }
    }
}

/// The registry commands whose effects are versioned entries in cluster mode.
fn is_registry_write(command: &str) -> bool {
    ["SESSION.CATALOG", "SESSION.NOTIFYGROUP", "SESSION.GROUP"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(command))
}

pub type Handler = fn(&Invocation) -> RedisResult;

/// Runs `handler` for one call and replies. Never unwinds.
pub fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let argv: &[*mut raw::RedisModuleString] = if argv.is_null() || argc <= 0 {
            &[]
        } else {
            // SAFETY: Redis passes argc valid strings that live for the whole call.
            unsafe { std::slice::from_raw_parts(argv, argc as usize) }
        };
        // SAFETY: as above.
        let args = argv
            .iter()
            .map(|&s| unsafe { ffi::string_bytes(s) })
            .collect();
        let result = handler(&Invocation { ctx, argv, args });
        // a registry command's versioned changes (cluster mode only; O(1) otherwise)
        if crate::registry::has_outbox() {
            crate::cluster::sync::after_command(ctx);
        }
        result
    }))
    .unwrap_or_else(|_| Err(errors::internal_panic()));
    stats::add(&stats::COMMANDS, 1);
    if result.is_err() {
        stats::add(&stats::ERRORS, 1);
    }
    let context = Context::new(ctx);
    catch_unwind(AssertUnwindSafe(|| context.reply(result) as c_int))
        .unwrap_or(Status::Err as c_int)
}

/// Produces an `extern "C"` entry point for a handler.
macro_rules! entry {
    ($handler:path) => {{
        extern "C" fn entry(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::os::raw::c_int,
        ) -> std::os::raw::c_int {
            $crate::command::dispatch(ctx, argv, argc, $handler)
        }
        entry
            as extern "C" fn(
                *mut redis_module::raw::RedisModuleCtx,
                *mut *mut redis_module::raw::RedisModuleString,
                std::os::raw::c_int,
            ) -> std::os::raw::c_int
    }};
}
pub(crate) use entry;

pub type Entry = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

/// A command's registration: name, entry point, flags and legacy key positions. With `parent`,
/// `name` is a subcommand of that container (`session.catalog|add`); a container has no `entry`.
pub struct Spec {
    pub name: &'static str,
    pub parent: Option<&'static str>,
    pub entry: Option<Entry>,
    pub flags: &'static str,
    pub first_key: c_int,
    pub last_key: c_int,
    pub step: c_int,
}

pub fn register(ctx: *mut raw::RedisModuleCtx, spec: &Spec) -> Result<(), RedisError> {
    let cstring = |s: &str| CString::new(s).map_err(|_| RedisError::Str("ERR bad command name"));
    let (name, flags) = (cstring(spec.name)?, cstring(spec.flags)?);
    let status = match spec.parent {
        None => {
            let create = api!(RedisModule_CreateCommand)?;
            // SAFETY: called from OnLoad with the module's context.
            unsafe {
                create(
                    ctx,
                    name.as_ptr(),
                    spec.entry,
                    flags.as_ptr(),
                    spec.first_key,
                    spec.last_key,
                    spec.step,
                )
            }
        }
        Some(parent) => {
            let get = api!(RedisModule_GetCommand)?;
            let create = api!(RedisModule_CreateSubcommand)?;
            let parent_name = cstring(parent)?;
            // SAFETY: as above; the parent was registered earlier in the table.
            let parent = unsafe { get(ctx, parent_name.as_ptr()) };
            if parent.is_null() {
                return Err(RedisError::String(format!(
                    "ERR no parent for {}",
                    spec.name
                )));
            }
            unsafe {
                create(
                    parent,
                    name.as_ptr(),
                    spec.entry,
                    flags.as_ptr(),
                    spec.first_key,
                    spec.last_key,
                    spec.step,
                )
            }
        }
    };
    if status == raw::REDISMODULE_OK as c_int {
        describe(ctx, spec)
    } else {
        Err(RedisError::String(format!(
            "ERR could not register {}",
            spec.name
        )))
    }
}

/// Attaches `COMMAND DOCS`/`COMMAND INFO` to a registered command. A command without an entry
/// in `docs::DOCS` still works; the gap is logged (and a test requires every command to have one).
fn describe(ctx: *mut raw::RedisModuleCtx, spec: &Spec) -> Result<(), RedisError> {
    let full = match spec.parent {
        Some(parent) => format!("{parent}|{}", spec.name),
        None => spec.name.to_string(),
    };
    let get = api!(RedisModule_GetCommand)?;
    let name = CString::new(full.as_str()).map_err(|_| RedisError::Str("ERR bad command name"))?;
    // SAFETY: called from OnLoad; the command was just registered.
    let command = unsafe { get(ctx, name.as_ptr()) };
    if command.is_null() {
        return Err(RedisError::String(format!(
            "ERR cannot find {full} after registering it"
        )));
    }
    if let Err(e) = crate::docs::describe(command, &full) {
        redis_module::logging::log_warning(format!("session: {e}"));
    }
    // Containers take no categories of their own; their subcommands do.
    if spec.entry.is_some() {
        crate::acl::set_categories(command, &full, spec.flags)?;
    }
    Ok(())
}
