//! Redis Cluster: the module's use of the cluster bus.
//!
//! Module-global state (the registry) and per-user questions span every primary, so the module
//! talks to its peers over the cluster bus (`RedisModule_SendClusterMessage`, 7.0+): registry
//! changes and digests (`sync`), and the per-user fan-out (`fanout`). This file is the thin, safe
//! wrapper over the bus API; a standalone server never registers a receiver nor sends anything.
#![allow(dead_code)] // parts used by `fanout` (the per-user fan-out)

use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use redis_module::{raw, Context, ContextFlags, RedisError};

pub mod sync;

/// At load: in cluster mode, registers the bus receivers and starts the sync timer.
pub fn init(ctx: *mut raw::RedisModuleCtx) -> Result<(), RedisError> {
    sync::init(ctx)
}

/// Length of a cluster node id (hex).
pub const ID_LEN: usize = 40;

/// A cluster node id.
pub type NodeId = [u8; ID_LEN];

/// Message type bytes (per module: other modules' types do not collide).
pub mod msg {
    /// Registry entries that changed on the sender (an `APPLY` blob).
    pub const APPLY: u8 = 1;
    /// The sender's registry digest (periodic).
    pub const DIGEST: u8 = 2;
    /// "Send me your registry": the receiver answers with `CHUNK`s.
    pub const SNAPSHOT_REQUEST: u8 = 3;
    /// One chunk of a snapshot.
    pub const CHUNK: u8 = 4;
    /// First type of the per-user fan-out's range (16..=31).
    pub const FANOUT_FIRST: u8 = 16;
    pub const FANOUT_LAST: u8 = 31;
}

/// What a receiver gets: the context, the sender's id and the payload.
pub type Handler = fn(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]);

static HANDLERS: Mutex<[Option<Handler>; 32]> = Mutex::new([None; 32]);

/// True when this server runs in cluster mode.
pub fn enabled(ctx: *mut raw::RedisModuleCtx) -> bool {
    Context::new(ctx)
        .get_flags()
        .contains(ContextFlags::CLUSTER)
}

/// This node's id, when in cluster mode.
pub fn my_id() -> Option<NodeId> {
    let get = unsafe { raw::RedisModule_GetMyClusterID }?;
    // SAFETY: Redis returns its own NUL-free 40-byte id (or NULL without cluster).
    let ptr = unsafe { get() };
    if ptr.is_null() {
        return None;
    }
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), ID_LEN) };
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(bytes);
    Some(id)
}

/// One node as the cluster sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub myself: bool,
    pub primary: bool,
    /// Marked failing (PFAIL or FAIL) by this node.
    pub failing: bool,
    /// The primary's id, for a replica.
    pub primary_id: Option<NodeId>,
    pub ip: String,
    pub port: i32,
}

/// Every node this node knows.
pub fn nodes(ctx: *mut raw::RedisModuleCtx) -> Vec<Node> {
    let (Some(list), Some(free), Some(info)) = (unsafe {
        (
            raw::RedisModule_GetClusterNodesList,
            raw::RedisModule_FreeClusterNodesList,
            raw::RedisModule_GetClusterNodeInfo,
        )
    }) else {
        return Vec::new();
    };
    let mut count = 0usize;
    // SAFETY: main thread, valid context; the list is freed below.
    let ids = unsafe { list(ctx, &mut count) };
    if ids.is_null() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `ids` holds `count` pointers to 40-byte ids.
        let ptr = unsafe { *ids.add(i) };
        if ptr.is_null() {
            continue;
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), ID_LEN) });
        // GetClusterNodeInfo looks the id up by strlen: pass it NUL-terminated (the list's ids
        // are exactly 40 bytes, not terminated).
        let mut cid = [0 as c_char; ID_LEN + 1];
        for (d, s) in cid.iter_mut().zip(id.iter()) {
            *d = *s as c_char;
        }
        let mut ip = [0 as c_char; 46];
        let mut primary = [0 as c_char; ID_LEN];
        let (mut port, mut flags) = (0, 0);
        // SAFETY: buffers of NET_IP_STR_LEN (46) and REDISMODULE_NODE_ID_LEN as documented.
        let ok = unsafe {
            info(
                ctx,
                cid.as_ptr(),
                ip.as_mut_ptr(),
                primary.as_mut_ptr(),
                &mut port,
                &mut flags,
            )
        };
        if ok != raw::REDISMODULE_OK as i32 {
            continue;
        }
        let flags = flags as u32;
        let is_primary = flags & raw::REDISMODULE_NODE_MASTER != 0;
        let primary_id = (!is_primary).then(|| {
            let mut p = [0u8; ID_LEN];
            for (d, s) in p.iter_mut().zip(primary.iter()) {
                *d = *s as u8;
            }
            p
        });
        let ip_end = ip.iter().position(|&c| c == 0).unwrap_or(ip.len());
        out.push(Node {
            id,
            myself: flags & raw::REDISMODULE_NODE_MYSELF != 0,
            primary: is_primary,
            failing: flags & (raw::REDISMODULE_NODE_PFAIL | raw::REDISMODULE_NODE_FAIL) != 0,
            primary_id,
            ip: ip[..ip_end].iter().map(|&c| c as u8 as char).collect(),
            port,
        });
    }
    // SAFETY: the list came from GetClusterNodesList.
    unsafe { free(ids) };
    out
}

/// The other primaries (not this node), failing ones included (callers decide).
pub fn other_primaries(ctx: *mut raw::RedisModuleCtx) -> Vec<Node> {
    nodes(ctx)
        .into_iter()
        .filter(|n| n.primary && !n.myself)
        .collect()
}

/// True when this node is a primary in cluster mode.
pub fn is_primary(ctx: *mut raw::RedisModuleCtx) -> bool {
    enabled(ctx) && Context::new(ctx).get_flags().contains(ContextFlags::MASTER)
}

/// Sends `payload` to `target` (None: every node). Returns whether Redis accepted it (the bus
/// may still lose it: every protocol on top converges without relying on delivery).
pub fn send(
    ctx: *mut raw::RedisModuleCtx,
    target: Option<&NodeId>,
    ty: u8,
    payload: &[u8],
) -> bool {
    let Some(send) = (unsafe { raw::RedisModule_SendClusterMessage }) else {
        return false;
    };
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    // The id is passed as a 40-byte buffer (Redis reads exactly REDISMODULE_NODE_ID_LEN bytes).
    let mut id = [0 as c_char; ID_LEN + 1];
    let target_ptr = match target {
        Some(t) => {
            for (d, s) in id.iter_mut().zip(t.iter()) {
                *d = *s as c_char;
            }
            id.as_ptr()
        }
        None => std::ptr::null(),
    };
    // SAFETY: main thread; the payload is copied by Redis before returning.
    let status = unsafe { send(ctx, target_ptr, ty, payload.as_ptr().cast(), len) };
    status == raw::REDISMODULE_OK as i32
}

extern "C" fn receive(
    ctx: *mut raw::RedisModuleCtx,
    sender: *const c_char,
    ty: u8,
    payload: *const u8,
    len: u32,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if sender.is_null() {
            return;
        }
        let handler = HANDLERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(usize::from(ty))
            .copied()
            .flatten();
        let Some(handler) = handler else {
            return;
        };
        let mut id = [0u8; ID_LEN];
        // SAFETY: Redis passes the sender's 40-byte id.
        id.copy_from_slice(unsafe { std::slice::from_raw_parts(sender.cast::<u8>(), ID_LEN) });
        let payload: &[u8] = if payload.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: `len` bytes valid for the call.
            unsafe { std::slice::from_raw_parts(payload, len as usize) }
        };
        handler(ctx, &id, payload);
    }));
}

/// Registers `handler` for message type `ty` (below 32). Call from OnLoad, cluster mode only.
pub fn register(ctx: *mut raw::RedisModuleCtx, ty: u8, handler: Handler) {
    let Some(register) = (unsafe { raw::RedisModule_RegisterClusterMessageReceiver }) else {
        return;
    };
    if let Some(slot) = HANDLERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(usize::from(ty))
    {
        *slot = Some(handler);
    } else {
        return;
    }
    // SAFETY: OnLoad, valid context; the callback is guarded.
    unsafe { register(ctx, ty, Some(receive)) };
}
