//! The few Redis Module API calls the `redis-module` crate does not wrap the way this module needs
//! (absolute expiry, raw keys, typed replies). Every function pointer is checked: a missing API
//! becomes an error, never a panic.

use std::ffi::CStr;
use std::os::raw::{c_int, c_long};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::raw;
use redis_module::RedisError;

use crate::errors;

/// Resolves an API function pointer, or fails with an error naming it.
macro_rules! api {
    ($name:ident) => {
        // SAFETY: the pointers are written once by RedisModule_Init before any command runs.
        match unsafe { raw::$name } {
            Some(f) => Ok(f),
            None => Err($crate::errors::missing_api(stringify!($name))),
        }
    };
}
pub(crate) use api;

/// Milliseconds since the Unix epoch from the system clock.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The bytes of a Redis string argument, borrowed for the duration of the command.
///
/// # Safety
/// `s` must be a valid `RedisModuleString` that outlives the returned slice.
pub unsafe fn string_bytes<'a>(s: *const raw::RedisModuleString) -> &'a [u8] {
    let Some(ptr_len) = raw::RedisModule_StringPtrLen else {
        return &[];
    };
    let mut len = 0usize;
    let p = ptr_len(s, &mut len);
    if p.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// `REDISMODULE_OPEN_KEY_NOTOUCH` (every supported server has it: Redis 6.2+).
const OPEN_KEY_NOTOUCH: u32 = 1 << 16;
/// `REDISMODULE_OPEN_KEY_NOSTATS` (Redis 7.2+), as the bundled header defines it.
const OPEN_KEY_NOSTATS: u32 = 1 << 18;

/// `REDISMODULE_OPEN_KEY_NOSTATS` when the running server supports it, else 0. Asked of the
/// server (`RedisModule_GetOpenKeyModesAll`, Redis 7.2+), never assumed from the header: Redis
/// 7.0 has neither the call nor the flag, and ignores mode bits it does not know.
pub fn nostats() -> u32 {
    static MODES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MODES.get_or_init(|| match unsafe { raw::RedisModule_GetOpenKeyModesAll } {
        // SAFETY: takes no arguments; available once RedisModule_Init ran.
        Some(all) => (unsafe { all() } as u32) & OPEN_KEY_NOSTATS,
        None => 0,
    })
}

/// A key opened for the duration of one command; closed on drop. `None` when Redis returned no
/// handle, which it does for a missing key opened read-only: that key is simply empty.
pub struct Key {
    key: Option<NonNull<raw::RedisModuleKey>>,
}

pub enum KeyValue<T> {
    Empty,
    Ours(T),
}

impl Key {
    /// Opens `name` for reading, or for reading and writing.
    pub fn open(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
        write: bool,
    ) -> Result<Key, RedisError> {
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        Key::open_mode(ctx, name, mode as c_int, write)
    }

    /// Opens `name` only to look at it: the key's access metadata (LRU idle time, LFU counter)
    /// and the server's `keyspace_hits`/`keyspace_misses` stay as they were. For keys the module
    /// reads without the client naming them (the index's listings, keyspace-event callbacks).
    /// The stats are left alone where the server has `REDISMODULE_OPEN_KEY_NOSTATS` (Redis 7.2+,
    /// Valkey); Redis 7.0 counts the lookup (see `peek_written` for the case it can avoid).
    pub fn peek(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
    ) -> Result<Key, RedisError> {
        let mode = raw::REDISMODULE_READ | OPEN_KEY_NOTOUCH | nostats();
        Key::open_mode(ctx, name, mode as c_int, false)
    }

    /// `peek` for a key the running command has just written (the `rename_to`, `move_to`,
    /// `copy_to` and `restore` callbacks). Where the server has no NOSTATS (Redis 7.0) the key is
    /// opened for writing, a lookup Redis does not count: the only other effect of a write
    /// handle, the modified-key signal at close (WATCH, client tracking), repeats the one the
    /// command itself just gave that key, and repeating it changes nothing. Nothing is written.
    pub fn peek_written(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
    ) -> Result<Key, RedisError> {
        let quiet = nostats();
        let mode = if quiet != 0 {
            raw::REDISMODULE_READ | OPEN_KEY_NOTOUCH | quiet
        } else {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE | OPEN_KEY_NOTOUCH
        };
        Key::open_mode(ctx, name, mode as c_int, false)
    }

    fn open_mode(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
        mode: c_int,
        must_open: bool,
    ) -> Result<Key, RedisError> {
        let open = api!(RedisModule_OpenKey)?;
        // SAFETY: ctx and name come from the command invocation (or the event callback).
        let key = unsafe { open(ctx, name, mode) };
        let key = NonNull::new(key.cast::<raw::RedisModuleKey>());
        if key.is_none() && must_open {
            return Err(errors::write_failed());
        }
        Ok(Key { key })
    }

    fn raw(&self) -> Result<*mut raw::RedisModuleKey, RedisError> {
        self.key
            .map(NonNull::as_ptr)
            .ok_or_else(errors::write_failed)
    }

    /// The module value held by the key when it is of type `ty`: `Empty` for a missing key,
    /// `WRONGTYPE` for any other type.
    pub fn value<T>(
        &mut self,
        ty: *mut raw::RedisModuleType,
    ) -> Result<KeyValue<&mut T>, RedisError> {
        let Some(key) = self.key.map(NonNull::as_ptr) else {
            return Ok(KeyValue::Empty);
        };
        let key_type = api!(RedisModule_KeyType)?;
        // SAFETY: the key is open.
        let kt = unsafe { key_type(key) };
        if kt == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            return Ok(KeyValue::Empty);
        }
        if kt != raw::REDISMODULE_KEYTYPE_MODULE as c_int {
            return Err(RedisError::WrongType);
        }
        let get_type = api!(RedisModule_ModuleTypeGetType)?;
        let get_value = api!(RedisModule_ModuleTypeGetValue)?;
        // SAFETY: the key holds a module value; when its type is ours the value is a `T`.
        unsafe {
            if get_type(key) != ty {
                return Err(RedisError::WrongType);
            }
            let v = get_value(key).cast::<T>();
            match v.as_mut() {
                Some(v) => Ok(KeyValue::Ours(v)),
                None => Ok(KeyValue::Empty),
            }
        }
    }

    /// Stores `value` in the key (replacing what it held; the key loses its expiry).
    pub fn set_value<T>(&self, ty: *mut raw::RedisModuleType, value: T) -> Result<(), RedisError> {
        let set = api!(RedisModule_ModuleTypeSetValue)?;
        let ptr = Box::into_raw(Box::new(value));
        // SAFETY: on success Redis owns the box and frees it through the type's free callback.
        let status = match self.raw() {
            Ok(key) => unsafe { set(key, ty, ptr.cast()) },
            Err(_) => raw::REDISMODULE_ERR as c_int,
        };
        if status == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            // SAFETY: Redis did not take the value; reclaim it.
            drop(unsafe { Box::from_raw(ptr) });
            Err(errors::write_failed())
        }
    }

    /// `value`, with a handle that sets the key's expiry while the value is borrowed (see
    /// `Expiry`); both borrow the key, so neither outlives it.
    pub fn value_and_expiry<T>(
        &mut self,
        ty: *mut raw::RedisModuleType,
    ) -> Result<(KeyValue<&mut T>, Expiry<'_>), RedisError> {
        let expiry = Expiry {
            key: self.key,
            _open: std::marker::PhantomData,
        };
        Ok((self.value(ty)?, expiry))
    }

    /// Deletes the key (open for writing); the handle stays open, on an empty key.
    pub fn delete(&self) -> Result<(), RedisError> {
        let delete = api!(RedisModule_DeleteKey)?;
        // SAFETY: the key is open for writing.
        if unsafe { delete(self.raw()?) } == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            Err(errors::write_failed())
        }
    }

    /// Closes the key; the handle then reads as a missing key.
    pub fn close(&mut self) {
        if let (Some(close), Some(key)) = (unsafe { raw::RedisModule_CloseKey }, self.key.take()) {
            // SAFETY: opened by `Key::open`, closed exactly once (the handle is taken).
            unsafe { close(key.as_ptr()) };
        }
    }

    /// Sets the key's absolute expiry in Unix milliseconds.
    pub fn set_abs_expire(&self, at_ms: i64) -> Result<(), RedisError> {
        let set = api!(RedisModule_SetAbsExpire)?;
        // SAFETY: the key is open for writing and not empty.
        if unsafe { set(self.raw()?, at_ms) } == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            Err(errors::write_failed())
        }
    }
}

/// Sets the expiry of an open key while a `&mut` to its value is out: the key's value and its
/// expiry live in different Redis structures, so one does not alias the other. Borrows the
/// `Key` (`Key::value_and_expiry`), so it cannot outlive the open key.
pub struct Expiry<'a> {
    key: Option<NonNull<raw::RedisModuleKey>>,
    _open: std::marker::PhantomData<&'a Key>,
}

impl Expiry<'_> {
    /// Sets the key's absolute expiry in Unix milliseconds.
    pub fn set_abs(&self, at_ms: i64) -> Result<(), RedisError> {
        let set = api!(RedisModule_SetAbsExpire)?;
        let key = self.key.ok_or_else(errors::write_failed)?;
        // SAFETY: the key is open for writing: the Expiry borrows the Key, which closes it on drop.
        if unsafe { set(key.as_ptr(), at_ms) } == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            Err(errors::write_failed())
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let (Some(close), Some(key)) = (unsafe { raw::RedisModule_CloseKey }, self.key) {
            // SAFETY: opened by `Key::open`, closed exactly once.
            unsafe { close(key.as_ptr()) };
        }
    }
}

/// Fires a keyspace notification of the module class (`d` in notify-keyspace-events).
pub fn notify(ctx: *mut raw::RedisModuleCtx, event: &CStr, key: *mut raw::RedisModuleString) {
    if let Some(f) = unsafe { raw::RedisModule_NotifyKeyspaceEvent } {
        // SAFETY: arguments valid for the duration of the command.
        unsafe {
            f(
                ctx,
                raw::REDISMODULE_NOTIFY_MODULE as c_int,
                event.as_ptr(),
                key,
            )
        };
    }
}

/// A Redis string this module created and frees on drop.
pub struct OwnedString {
    ctx: *mut raw::RedisModuleCtx,
    ptr: *mut raw::RedisModuleString,
}

impl OwnedString {
    pub fn new(ctx: *mut raw::RedisModuleCtx, bytes: &[u8]) -> Option<OwnedString> {
        let create = unsafe { raw::RedisModule_CreateString }?;
        // SAFETY: Redis copies `bytes`.
        let ptr = unsafe { create(ctx, bytes.as_ptr().cast(), bytes.len()) };
        (!ptr.is_null()).then_some(OwnedString { ctx, ptr })
    }

    pub fn from_i64(ctx: *mut raw::RedisModuleCtx, v: i64) -> Option<OwnedString> {
        let create = unsafe { raw::RedisModule_CreateStringFromLongLong }?;
        let ptr = unsafe { create(ctx, v) };
        (!ptr.is_null()).then_some(OwnedString { ctx, ptr })
    }

    pub fn ptr(&self) -> *mut raw::RedisModuleString {
        self.ptr
    }
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            // SAFETY: created by `OwnedString::new`, freed once; Redis keeps its own references.
            unsafe { free(self.ctx, self.ptr) };
        }
    }
}

/// The shared string `AT`, created once (replicated touches append it to almost every call).
pub fn keyword_at() -> *mut raw::RedisModuleString {
    static AT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *AT.get_or_init(|| match unsafe { raw::RedisModule_CreateString } {
        // SAFETY: a string without a context lives until freed, which it never is.
        Some(create) => (unsafe { create(std::ptr::null_mut(), c"AT".as_ptr(), 2) }) as usize,
        None => 0,
    }) as *mut raw::RedisModuleString
}

/// Replicates `command` with arguments that are Redis strings: the call's own arguments are
/// passed by reference (no copy), so a command that replicates what it was given plus a few
/// values costs a handful of allocations.
pub fn replicate_strings(
    ctx: *mut raw::RedisModuleCtx,
    command: &CStr,
    argv: &[*mut raw::RedisModuleString],
) {
    if let Some(replicate) = unsafe { raw::RedisModule_Replicate } {
        // SAFETY: format "v" takes an array of strings and its length.
        unsafe {
            replicate(
                ctx,
                command.as_ptr(),
                c"v".as_ptr(),
                argv.as_ptr(),
                argv.len(),
            )
        };
    }
}

/// Counts one change for Redis's `save` rules without building a replicated form: used instead
/// of a replicate call while nothing can receive propagation (`crate::propagation`), where
/// Redis drops this verbatim propagation unread.
pub fn count_change(ctx: *mut raw::RedisModuleCtx) {
    if let Some(verbatim) = unsafe { raw::RedisModule_ReplicateVerbatim } {
        // SAFETY: called from a command with its context.
        unsafe { verbatim(ctx) };
    }
}

/// Publishes `message` on Pub/Sub `channel` (binary-safe).
pub fn publish(ctx: *mut raw::RedisModuleCtx, channel: &[u8], message: &[u8]) {
    // SAFETY: strings created on ctx are freed with it (auto memory is not needed for two).
    unsafe {
        let (Some(create), Some(publish), Some(free)) = (
            raw::RedisModule_CreateString,
            raw::RedisModule_PublishMessage,
            raw::RedisModule_FreeString,
        ) else {
            return;
        };
        let ch = create(ctx, channel.as_ptr().cast(), channel.len());
        let msg = create(ctx, message.as_ptr().cast(), message.len());
        if !ch.is_null() && !msg.is_null() {
            publish(ctx, ch, msg);
        }
        if !ch.is_null() {
            free(ctx, ch);
        }
        if !msg.is_null() {
            free(ctx, msg);
        }
    }
}

/// Typed replies written straight to the client (RESP3 maps, flattened by Redis for RESP2).
pub struct Reply {
    ctx: *mut raw::RedisModuleCtx,
}

impl Reply {
    pub fn new(ctx: *mut raw::RedisModuleCtx) -> Self {
        Reply { ctx }
    }

    pub fn map(&self, len: usize) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithMap } {
            unsafe { f(self.ctx, len as c_long) };
        }
    }

    pub fn array(&self, len: usize) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithArray } {
            unsafe { f(self.ctx, len as c_long) };
        }
    }

    pub fn bulk(&self, b: &[u8]) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithStringBuffer } {
            unsafe { f(self.ctx, b.as_ptr().cast(), b.len()) };
        }
    }

    pub fn int(&self, v: i64) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithLongLong } {
            unsafe { f(self.ctx, v) };
        }
    }

    pub fn double(&self, v: f64) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithDouble } {
            unsafe { f(self.ctx, v) };
        }
    }

    pub fn null(&self) {
        if let Some(f) = unsafe { raw::RedisModule_ReplyWithNull } {
            unsafe { f(self.ctx) };
        }
    }

    /// A name/value pair inside a map.
    pub fn entry_int(&self, name: &str, v: i64) {
        self.bulk(name.as_bytes());
        self.int(v);
    }

    /// A fixed map name: replayed from its encoding by Redis when `encode_names` made one (one
    /// reply-buffer append), else written as a bulk string (three). The bytes are the same.
    pub fn name(&self, name: Name) {
        let encoded = ENCODED[name as usize].load(Ordering::Relaxed);
        let replayed = match unsafe { raw::RedisModule_ReplyWithCallReply } {
            // SAFETY: a kept reply lives as long as the module (see `encode_names`).
            Some(f) if !encoded.is_null() => {
                let status = unsafe { f(self.ctx, encoded) };
                status == raw::REDISMODULE_OK as c_int
            }
            _ => false,
        };
        if !replayed {
            self.bulk(name.text().to_bytes());
        }
    }

    /// A fixed name and an integer value inside a map.
    pub fn named_int(&self, name: Name, v: i64) {
        self.name(name);
        self.int(v);
    }
}

/// The fixed names of the TOUCH reply map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    New,
    Events,
    Unique,
    SeenBefore,
    IdleMs,
    TtlMs,
    Pending,
}

impl Name {
    pub const ALL: [Name; 7] = [
        Name::New,
        Name::Events,
        Name::Unique,
        Name::SeenBefore,
        Name::IdleMs,
        Name::TtlMs,
        Name::Pending,
    ];

    pub const fn text(self) -> &'static CStr {
        match self {
            Name::New => c"new",
            Name::Events => c"events",
            Name::Unique => c"unique",
            Name::SeenBefore => c"seen_before",
            Name::IdleMs => c"idle_ms",
            Name::TtlMs => c"ttl_ms",
            Name::Pending => c"pending",
        }
    }
}

/// Each name's bulk-string encoding as Redis wrote it (the reply of `ECHO name`), kept for the
/// module's lifetime; null until `encode_names` ran, or when it could not verify one.
static ENCODED: [AtomicPtr<raw::RedisModuleCallReply>; Name::ALL.len()] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; Name::ALL.len()];

/// Has Redis encode each reply name once, at load: `RM_ReplyWithCallReply` then copies that
/// encoding into a reply with one append, where a bulk string costs three (header, bytes, CRLF).
/// Each encoding is kept only if it is byte for byte the bulk string the fallback would write.
/// Returns how many names have an encoding.
pub fn encode_names(ctx: *mut raw::RedisModuleCtx) -> usize {
    let (Some(call), Some(proto), Some(free)) = (unsafe {
        (
            raw::RedisModule_Call,
            raw::RedisModule_CallReplyProto,
            raw::RedisModule_FreeCallReply,
        )
    }) else {
        return 0;
    };
    for name in Name::ALL {
        let text = name.text();
        let reply = unsafe { call(ctx, c"ECHO".as_ptr(), c"c".as_ptr(), text.as_ptr()) };
        if reply.is_null() {
            continue;
        }
        let mut len = 0usize;
        let ptr = unsafe { proto(reply, &mut len) };
        let expected = format!(
            "${}\r\n{}\r\n",
            text.to_bytes().len(),
            text.to_string_lossy()
        );
        let got = if ptr.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
        };
        // A kept reply is never freed (freeing reads the context of the load that made it,
        // gone by then); one already kept stays, and this one goes.
        let kept = got == expected.as_bytes()
            && ENCODED[name as usize]
                .compare_exchange(
                    std::ptr::null_mut(),
                    reply,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if !kept {
            unsafe { free(reply) };
        }
    }
    ENCODED
        .iter()
        .filter(|p| !p.load(Ordering::Relaxed).is_null())
        .count()
}

/// A string key's bytes and its remaining time to live in milliseconds (None without expiry).
pub type StringWithTtl = (Vec<u8>, Option<i64>);

impl Key {
    /// The bytes of a key holding a plain string and its remaining time to live in milliseconds
    /// (None without expiry); `Ok(None)` when the key holds no string.
    pub fn string_and_ttl(&self) -> Result<Option<StringWithTtl>, RedisError> {
        let Some(key) = self.key.map(NonNull::as_ptr) else {
            return Ok(None);
        };
        let key_type = api!(RedisModule_KeyType)?;
        // SAFETY: the key is open.
        if unsafe { key_type(key) } != raw::REDISMODULE_KEYTYPE_STRING as c_int {
            return Ok(None);
        }
        let dma = api!(RedisModule_StringDMA)?;
        let get_expire = api!(RedisModule_GetExpire)?;
        let mut len = 0usize;
        // SAFETY: a string key open for reading; the bytes are copied before the key changes.
        let bytes = unsafe {
            let p = dma(key, &mut len, raw::REDISMODULE_READ as c_int);
            if p.is_null() || len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
            }
        };
        // SAFETY: the key is open.
        let ttl = unsafe { get_expire(key) };
        Ok(Some((bytes, (ttl >= 0).then_some(ttl))))
    }
}
