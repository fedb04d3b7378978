//! Tenancy: the ACL checks for everything a SESSION command reaches without naming it as a key.
//!
//! Key specs already confine a user to its key patterns for the keys it names. What the module
//! finds itself is checked here, against the same patterns:
//! - keys from the per-user index (SESSIONS lists only keys the caller may read, REVOKE and the
//!   per-user maximum delete only keys the caller may write);
//! - registry names (catalogs, groups), checked as if they were keys (`~a:*` confines a tenant to
//!   catalogs and groups named `a:*`);
//! - notifications: publishing needs publish permission on `session:notify:<group>`, and a
//!   notification reaches a session only if its publisher (the ACL user recorded with it) may write
//!   that session's key.
//!
//! A context without a user (the primary's stream, the AOF, timers, server events) is trusted:
//! what it applies was checked when it was first accepted. The default user with `~* &*` passes
//! every check, so a single-tenant server behaves as before.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr::NonNull;

use redis_module::{raw, RedisError};

use crate::ffi::OwnedString;

/// Who a check is for.
pub enum Caller {
    /// No ACL user: the primary, the AOF, a timer. Everything is allowed.
    Trusted,
    /// An ACL user, freed on drop.
    User(NonNull<raw::RedisModuleUser>),
    /// A user that no longer exists (or cannot be resolved): nothing is allowed.
    Nobody,
}

impl Caller {
    /// The user the current command runs as (`Trusted` for the primary's stream and the AOF).
    pub fn current(ctx: *mut raw::RedisModuleCtx) -> Caller {
        if trusted_context(ctx) {
            return Caller::Trusted;
        }
        match current_user_name(ctx) {
            Some(name) => Caller::named(ctx, &name),
            None => Caller::Trusted,
        }
    }

    /// The ACL user called `name` as it is configured now; `Nobody` when it does not exist.
    pub fn named(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> Caller {
        let Some(get) = (unsafe { raw::RedisModule_GetModuleUserFromUserName }) else {
            return Caller::Trusted; // Redis without module ACL calls has no ACL users to honour
        };
        let Some(s) = OwnedString::new(ctx, name) else {
            return Caller::Nobody;
        };
        // SAFETY: a valid string; the user returned is ours to free.
        match NonNull::new(unsafe { get(s.ptr()) }) {
            Some(user) => Caller::User(user),
            None => Caller::Nobody,
        }
    }

    /// May the caller read the key (or registry name) `name`?
    pub fn may_read(&self, ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> bool {
        self.check_key(ctx, name, raw::REDISMODULE_CMD_KEY_ACCESS as c_int)
    }

    /// May the caller write (update or delete) the key (or registry name) `name`?
    pub fn may_write(&self, ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> bool {
        self.check_key(
            ctx,
            name,
            (raw::REDISMODULE_CMD_KEY_UPDATE | raw::REDISMODULE_CMD_KEY_DELETE) as c_int,
        )
    }

    /// May the caller publish on `channel`?
    pub fn may_publish(&self, ctx: *mut raw::RedisModuleCtx, channel: &[u8]) -> bool {
        match self {
            Caller::Trusted => true,
            Caller::Nobody => false,
            Caller::User(user) => {
                let Some(check) = (unsafe { raw::RedisModule_ACLCheckChannelPermissions }) else {
                    return true;
                };
                let Some(s) = OwnedString::new(ctx, channel) else {
                    return false;
                };
                // SAFETY: a live user and string.
                let status = unsafe {
                    check(
                        user.as_ptr(),
                        s.ptr(),
                        raw::REDISMODULE_CMD_CHANNEL_PUBLISH as c_int,
                    )
                };
                status == raw::REDISMODULE_OK as c_int
            }
        }
    }

    fn check_key(&self, ctx: *mut raw::RedisModuleCtx, name: &[u8], flags: c_int) -> bool {
        match self {
            Caller::Trusted => true,
            Caller::Nobody => false,
            Caller::User(user) => {
                let Some(check) = (unsafe { raw::RedisModule_ACLCheckKeyPermissions }) else {
                    return true;
                };
                let Some(s) = OwnedString::new(ctx, name) else {
                    return false;
                };
                // SAFETY: a live user and string.
                unsafe { check(user.as_ptr(), s.ptr(), flags) == raw::REDISMODULE_OK as c_int }
            }
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Caller::User(user) = self {
            if let Some(free) = unsafe { raw::RedisModule_FreeModuleUser } {
                // SAFETY: returned by GetModuleUserFromUserName, freed once.
                unsafe { free(user.as_ptr()) };
            }
        }
    }
}

/// True when the command comes from the primary or the AOF (no client to check).
fn trusted_context(ctx: *mut raw::RedisModuleCtx) -> bool {
    let Some(flags) = (unsafe { raw::RedisModule_GetContextFlags }) else {
        return true;
    };
    // SAFETY: a valid context.
    let flags = unsafe { flags(ctx) } as u32;
    flags & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0
}

/// The ACL user name of the client running the current command; `None` without a client user
/// (the primary's stream, the AOF, timers, server events).
pub fn current_user_name(ctx: *mut raw::RedisModuleCtx) -> Option<Vec<u8>> {
    if ctx.is_null() || trusted_context(ctx) {
        return None;
    }
    let get = unsafe { raw::RedisModule_GetCurrentUserName }?;
    // SAFETY: a valid context; the returned string is ours to free.
    let name = unsafe { get(ctx) };
    if name.is_null() {
        return None;
    }
    // SAFETY: a live string, copied before it is freed.
    let bytes = unsafe { crate::ffi::string_bytes(name) }.to_vec();
    if let Some(free) = unsafe { raw::RedisModule_FreeString } {
        // SAFETY: created by GetCurrentUserName, freed once.
        unsafe { free(ctx, name) };
    }
    Some(bytes)
}

/// May the current caller read the registry name (catalog, group) `name`, as if it were a key?
/// For listings (`CATALOG LIST`, `GROUP LIST`) and read commands on a named catalog or group.
pub fn may_read_name(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> bool {
    Caller::current(ctx).may_read(ctx, name)
}

/// May the current caller write the registry name `name` (add to, delete from, drop)?
pub fn may_write_name(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> bool {
    Caller::current(ctx).may_write(ctx, name)
}

/// Fails with `NOPERM` unless the current caller may read the registry name `name`.
pub fn require_read_name(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> Result<(), RedisError> {
    if may_read_name(ctx, name) {
        Ok(())
    } else {
        Err(no_perm_name())
    }
}

/// Fails with `NOPERM` unless the current caller may write the registry name `name`.
pub fn require_write_name(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> Result<(), RedisError> {
    if may_write_name(ctx, name) {
        Ok(())
    } else {
        Err(no_perm_name())
    }
}

pub fn no_perm_name() -> RedisError {
    RedisError::Str("NOPERM this user has no permissions to access that name (checked as a key)")
}

pub fn no_perm_channel() -> RedisError {
    RedisError::Str("NOPERM this user has no permissions to publish on that group's channel")
}

/// Which notification publishers may write one session's key: each publisher's ACL user is
/// resolved and checked once per call (INBOX, TOUCH's `pending`), however many notifications it
/// published. A notification without a publisher (published by the primary's stream, the AOF or
/// an older saved form) reaches every member, as before.
pub struct Publishers<'k> {
    ctx: *mut raw::RedisModuleCtx,
    key: &'k [u8],
    checked: HashMap<Box<[u8]>, bool>,
}

impl<'k> Publishers<'k> {
    pub fn new(ctx: *mut raw::RedisModuleCtx, key: &'k [u8]) -> Self {
        Publishers {
            ctx,
            key,
            checked: HashMap::new(),
        }
    }

    /// May a notification published by `publisher` reach the session at the key?
    pub fn reaches(&mut self, publisher: Option<&[u8]>) -> bool {
        let Some(name) = publisher else {
            return true;
        };
        if let Some(&ok) = self.checked.get(name) {
            return ok;
        }
        let ok = Caller::named(self.ctx, name).may_write(self.ctx, self.key);
        self.checked.insert(name.into(), ok);
        ok
    }
}

/// The ACL categories of a command (Redis 7.2+): what its flags say (`write` -> `@write`,
/// `readonly` -> `@read`, `fast` -> `@fast`, else `@slow`) plus the extras this table names.
/// `SESSION.PURGE` is `@admin` (registry-wide maintenance); `SESSION.LOAD` is like `RESTORE`
/// (`@keyspace @dangerous`); `SESSION.REVOKE` deletes many keys (`@keyspace @dangerous`).
pub fn categories(full_name: &str, flags: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    if has("write") {
        out.push("write");
    }
    if has("readonly") {
        out.push("read");
    }
    out.push(if has("fast") { "fast" } else { "slow" });
    let extra: &[&str] = match full_name {
        "session.sessions" | "session.rotate" => &["keyspace"],
        "session.revoke" | "session.load" => &["keyspace", "dangerous"],
        "session.notifygroup" => &["pubsub"],
        "session.purge" => &["admin", "dangerous"],
        _ => &[],
    };
    out.extend_from_slice(extra);
    out.join(" ")
}

/// Sets a registered command's ACL categories where the server supports it (Redis 7.2+, Valkey);
/// on 7.0 the API is absent and commands stay outside categories (skipped silently).
pub fn set_categories(
    command: *mut raw::RedisModuleCommand,
    full_name: &str,
    flags: &str,
) -> Result<(), RedisError> {
    let Some(set) = (unsafe { raw::RedisModule_SetCommandACLCategories }) else {
        return Ok(());
    };
    let cats = categories(full_name, flags);
    let cats = CString::new(cats).map_err(|_| RedisError::Str("ERR bad ACL categories"))?;
    // SAFETY: called from OnLoad with a registered command.
    let status = unsafe { set(command, cats.as_ptr()) };
    if status == raw::REDISMODULE_OK as c_int {
        Ok(())
    } else {
        Err(RedisError::String(format!(
            "ERR could not set the ACL categories of {full_name}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::categories;

    #[test]
    fn categories_follow_flags_and_the_table() {
        assert_eq!(categories("session.get", "readonly fast"), "read fast");
        assert_eq!(
            categories("session.touch", "write deny-oom fast"),
            "write fast"
        );
        assert_eq!(
            categories("session.revoke", "write"),
            "write slow keyspace dangerous"
        );
        assert_eq!(
            categories("session.notifygroup", "write deny-oom fast"),
            "write fast pubsub"
        );
        assert_eq!(
            categories("session.purge", "write"),
            "write slow admin dangerous"
        );
    }
}
