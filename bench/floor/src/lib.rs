//! The floor under `SESSION.TOUCH`: a module command, `FLOOR.TOUCH key ...`, that takes the same
//! arguments and writes the same reply (a 7-entry map of names and integers, names replayed as
//! the session module does) and does only what any write command of a module must do through
//! the Redis 7.0 module API: open the key for writing, change its value, set its absolute expiry,
//! fire a keyspace notification, mark the call for replication, close the key. It keeps no
//! session, parses nothing, reads no clock beyond Redis's own.
//!
//! The benchmark measures it beside TOUCH and HSET in the same rounds: its throughput against
//! HSET is the best ratio any implementation of TOUCH's contract could reach through this API
//! on the machine of the run. Never shipped; built and loaded only by `make bench`.

use std::os::raw::{c_char, c_int};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::{raw, redis_module, Context, RedisString, Status};

const NAMES: [&std::ffi::CStr; 7] = [
    c"new",
    c"events",
    c"unique",
    c"seen_before",
    c"idle_ms",
    c"ttl_ms",
    c"pending",
];

static ENCODED: [AtomicPtr<raw::RedisModuleCallReply>; 7] =
    [const { AtomicPtr::new(null_mut()) }; 7];

/// One byte of state per key, changed by every call so that each call is a real write.
const VALUE: &[u8] = b"0";

extern "C" fn floor_touch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: the API pointers are set by RedisModule_Init before any command runs; argv holds
    // argc strings for the duration of the call.
    unsafe {
        let (
            Some(open),
            Some(key_type),
            Some(string_set),
            Some(dma),
            Some(expire),
            Some(close),
            Some(notify),
            Some(verbatim),
            Some(map),
            Some(call_reply),
            Some(int),
            Some(create),
            Some(free),
            Some(error),
        ) = (
            raw::RedisModule_OpenKey,
            raw::RedisModule_KeyType,
            raw::RedisModule_StringSet,
            raw::RedisModule_StringDMA,
            raw::RedisModule_SetAbsExpire,
            raw::RedisModule_CloseKey,
            raw::RedisModule_NotifyKeyspaceEvent,
            raw::RedisModule_ReplicateVerbatim,
            raw::RedisModule_ReplyWithMap,
            raw::RedisModule_ReplyWithCallReply,
            raw::RedisModule_ReplyWithLongLong,
            raw::RedisModule_CreateString,
            raw::RedisModule_FreeString,
            raw::RedisModule_ReplyWithError,
        )
        else {
            return raw::REDISMODULE_ERR as c_int;
        };
        if argc < 2 {
            error(ctx, c"ERR wrong number of arguments".as_ptr());
            return raw::REDISMODULE_OK as c_int;
        }
        let name = *argv.add(1);
        let key = open(
            ctx,
            name,
            (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int,
        )
        .cast::<raw::RedisModuleKey>();
        let is_new = key_type(key) == raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
        if is_new {
            let s = create(ctx, VALUE.as_ptr().cast::<c_char>(), VALUE.len());
            string_set(key, s);
            free(ctx, s);
        }
        let mut len = 0usize;
        let p = dma(key, &mut len, raw::REDISMODULE_WRITE as c_int);
        let events = if p.is_null() || len == 0 {
            0
        } else {
            let b = p.cast::<u8>();
            *b = b'0' + (*b).wrapping_sub(b'0').wrapping_add(1) % 10;
            i64::from(*b - b'0')
        };
        let now = raw::RedisModule_Milliseconds.map_or(0, |f| f());
        expire(key, now + 1_800_000);
        close(key);
        notify(
            ctx,
            raw::REDISMODULE_NOTIFY_MODULE as c_int,
            c"floor.touch".as_ptr(),
            name,
        );
        verbatim(ctx);
        map(ctx, 7);
        let values = [i64::from(is_new), events, events, 0, 0, 1_800_000, 0];
        for (i, v) in values.into_iter().enumerate() {
            let encoded = ENCODED[i].load(Ordering::Relaxed);
            if encoded.is_null() {
                raw::RedisModule_ReplyWithStringBuffer.map(|f| {
                    let n = NAMES[i].to_bytes();
                    f(ctx, n.as_ptr().cast(), n.len())
                });
            } else {
                call_reply(ctx, encoded);
            }
            int(ctx, v);
        }
        raw::REDISMODULE_OK as c_int
    }
}

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    // SAFETY: called from OnLoad with the module's context.
    unsafe {
        let (Some(create), Some(call)) = (raw::RedisModule_CreateCommand, raw::RedisModule_Call)
        else {
            return Status::Err;
        };
        if create(
            ctx.ctx,
            c"floor.touch".as_ptr(),
            Some(floor_touch),
            c"write deny-oom fast".as_ptr(),
            1,
            1,
            1,
        ) != raw::REDISMODULE_OK as c_int
        {
            return Status::Err;
        }
        for (i, name) in NAMES.iter().enumerate() {
            let reply = call(ctx.ctx, c"ECHO".as_ptr(), c"c".as_ptr(), name.as_ptr());
            ENCODED[i].store(reply, Ordering::Relaxed);
        }
    }
    Status::Ok
}

redis_module! {
    name: "sessionfloor",
    version: 1,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [],
    init: init,
    commands: [],
}
