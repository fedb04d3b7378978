//! Registry sync over the cluster bus (issue 20): every primary holds the whole registry.
//!
//! - A registry command applies locally; in cluster mode its changes (the registry's outbox, as
//!   versioned entries) are replicated to this primary's replicas and AOF as
//!   `SESSION.SYNC APPLY <blob>` and broadcast to the other primaries as an `APPLY` message.
//! - A primary merges what it receives (last writer wins per entry, `session_core::registry::sync`)
//!   and replicates exactly what changed, again as `SESSION.SYNC APPLY`.
//! - Messages can be lost, so every primary broadcasts its registry digest once a second. A peer
//!   whose digest differed from ours twice in a row (one difference is normal while an `APPLY` is
//!   in flight) is asked for a snapshot, which arrives in chunks of at most `CHUNK_BYTES` and is
//!   merged as it comes. Both sides of a difference pull, so they meet at the union.

use std::collections::HashMap;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisValue};
use session_core::codec::registry::{chunk_entries, decode_entries};
use session_core::registry::sync::Digest;

use super::{msg, NodeId};
use crate::command::Invocation;
use crate::ffi::{self, api};
use crate::registry;

/// How often a primary announces its digest.
const PERIOD_MS: i64 = 1000;
/// The largest snapshot chunk (bus messages travel whole on the bus link: keep them small).
pub const CHUNK_BYTES: usize = 64 * 1024;
/// A snapshot request left unanswered this long may be sent again.
const REQUEST_RETRY_MS: i64 = 5000;
/// Version byte of the DIGEST and CHUNK message layouts.
const WIRE: u8 = 1;

/// Cluster mode with sync on (set once at load).
static ON: AtomicBool = AtomicBool::new(false);
/// When this node last found itself equal to a peer's digest, or merged a change (ms).
static LAST_SYNC_MS: AtomicI64 = AtomicI64::new(0);
static APPLIED: AtomicU64 = AtomicU64::new(0);
static SNAPSHOTS_PULLED: AtomicU64 = AtomicU64::new(0);
static SNAPSHOTS_SERVED: AtomicU64 = AtomicU64::new(0);
static MESSAGES_REFUSED: AtomicU64 = AtomicU64::new(0);
static PEERS_IN_SYNC: AtomicU64 = AtomicU64::new(0);

/// What this node knows of one peer primary.
#[derive(Default)]
struct Peer {
    /// The digest it last announced, and whether it differed from ours.
    last: Option<(Digest, bool)>,
    /// A snapshot request in flight: (request id, sent at ms).
    pending: Option<(u64, i64)>,
    /// When we last served it a snapshot (ms).
    served_ms: i64,
    /// Last time we heard its digest (ms).
    heard_ms: i64,
}

static PEERS: Mutex<Option<HashMap<NodeId, Peer>>> = Mutex::new(None);
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

fn with_peers<R>(f: impl FnOnce(&mut HashMap<NodeId, Peer>) -> R) -> R {
    let mut guard = PEERS.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// True in cluster mode: registry changes are versioned, replicated as `SESSION.SYNC APPLY` and
/// sent to the other primaries.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// At load: in cluster mode, registers the receivers and starts the digest timer.
pub fn init(ctx: *mut raw::RedisModuleCtx) -> Result<(), RedisError> {
    if !super::enabled(ctx) {
        return Ok(());
    }
    ON.store(true, Ordering::Relaxed);
    registry::set_cluster(true);
    super::register(ctx, msg::APPLY, on_apply);
    super::register(ctx, msg::DIGEST, on_digest);
    super::register(ctx, msg::SNAPSHOT_REQUEST, on_snapshot_request);
    super::register(ctx, msg::CHUNK, on_chunk);
    schedule(ctx)
}

fn schedule(ctx: *mut raw::RedisModuleCtx) -> Result<(), RedisError> {
    let create = api!(RedisModule_CreateTimer)?;
    // SAFETY: main thread, valid context; the callback is guarded.
    unsafe { create(ctx, PERIOD_MS, Some(tick), std::ptr::null_mut()) };
    Ok(())
}

/// Replicates `entries` to this node's replicas and AOF as `SESSION.SYNC APPLY <blob>`.
fn replicate(ctx: *mut raw::RedisModuleCtx, blob: &[u8]) {
    if crate::propagation::needed() {
        Context::new(ctx).replicate("SESSION.SYNC", &[&b"APPLY"[..], blob][..]);
    } else {
        ffi::count_change(ctx);
    }
}

/// After a registry command on this primary: replicates its changes and sends them to the other
/// primaries. Cheap when the command changed nothing (an empty outbox).
pub fn after_command(ctx: *mut raw::RedisModuleCtx) {
    if !on() {
        return;
    }
    let entries = registry::lock().take_outbox();
    let flags = Context::new(ctx).get_flags();
    // Loading (AOF/RDB) or following a primary: the changes are this node's own replay, not news.
    if entries.is_empty() || flags.intersects(ContextFlags::LOADING | ContextFlags::REPLICATED) {
        return;
    }
    LAST_SYNC_MS.store(ffi::wall_ms(), Ordering::Relaxed);
    for blob in chunk_entries(&entries, CHUNK_BYTES) {
        replicate(ctx, &blob);
        if super::is_primary(ctx) {
            for peer in super::other_primaries(ctx) {
                super::send(ctx, Some(&peer.id), msg::APPLY, &blob);
            }
        }
    }
}

/// Merges entries from a peer (or a snapshot chunk) and replicates what changed.
fn merge_blob(ctx: *mut raw::RedisModuleCtx, blob: &[u8]) {
    let entries = match decode_entries(blob) {
        Ok(entries) => entries,
        Err(e) => {
            stats_add(&MESSAGES_REFUSED);
            redis_module::logging::log_warning(format!(
                "session: refusing a registry message from the cluster bus: {e}"
            ));
            return;
        }
    };
    let changed = registry::lock().merge(entries, ffi::wall_ms());
    if changed.is_empty() {
        return;
    }
    crate::stats::add(&APPLIED, changed.len() as u64);
    LAST_SYNC_MS.store(ffi::wall_ms(), Ordering::Relaxed);
    for blob in chunk_entries(&changed, CHUNK_BYTES) {
        replicate(ctx, &blob);
    }
}

fn stats_add(counter: &AtomicU64) {
    crate::stats::add(counter, 1);
}

fn on_apply(ctx: *mut raw::RedisModuleCtx, _sender: &NodeId, payload: &[u8]) {
    if super::is_primary(ctx) {
        merge_blob(ctx, payload);
    }
}

fn encode_digest(d: &Digest) -> Vec<u8> {
    let mut out = Vec::with_capacity(25);
    out.push(WIRE);
    out.extend_from_slice(&d.hash.to_le_bytes());
    out.extend_from_slice(&d.entries.to_le_bytes());
    out.extend_from_slice(&d.clock.to_le_bytes());
    out
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

fn decode_digest(b: &[u8]) -> Option<Digest> {
    if b.len() != 25 || b.first() != Some(&WIRE) {
        return None;
    }
    Some(Digest {
        hash: u64_at(b, 1)?,
        entries: u64_at(b, 9)?,
        clock: u64_at(b, 17)?,
    })
}

fn on_digest(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    if !super::is_primary(ctx) {
        return;
    }
    let Some(theirs) = decode_digest(payload) else {
        stats_add(&MESSAGES_REFUSED);
        return;
    };
    let now = ffi::wall_ms();
    let ours = registry::lock().digest();
    let differs = ours.hash != theirs.hash || ours.entries != theirs.entries;
    let request = with_peers(|peers| {
        let peer = peers.entry(*sender).or_default();
        peer.heard_ms = now;
        // twice in a row: one difference is normal while a change is on its way
        let persistent = differs && peer.last.is_some_and(|(_, d)| d);
        peer.last = Some((theirs, differs));
        let free = peer
            .pending
            .is_none_or(|(_, at)| now.saturating_sub(at) >= REQUEST_RETRY_MS);
        if persistent && free {
            let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
            peer.pending = Some((id, now));
            Some(id)
        } else {
            None
        }
    });
    if !differs {
        LAST_SYNC_MS.store(now, Ordering::Relaxed);
    }
    if let Some(id) = request {
        let mut out = vec![WIRE];
        out.extend_from_slice(&id.to_le_bytes());
        super::send(ctx, Some(sender), msg::SNAPSHOT_REQUEST, &out);
    }
}

fn on_snapshot_request(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    if !super::is_primary(ctx) || payload.len() != 9 || payload.first() != Some(&WIRE) {
        return;
    }
    let Some(id) = u64_at(payload, 1) else {
        return;
    };
    let now = ffi::wall_ms();
    // at most one snapshot a second per peer: a misbehaving peer cannot make us walk the
    // registry on every message
    let allowed = with_peers(|peers| {
        let peer = peers.entry(*sender).or_default();
        if now.saturating_sub(peer.served_ms) < PERIOD_MS {
            false
        } else {
            peer.served_ms = now;
            true
        }
    });
    if !allowed {
        return;
    }
    let entries = registry::lock().snapshot(now);
    let chunks = chunk_entries(&entries, CHUNK_BYTES);
    let total = chunks.len() as u32;
    for (index, blob) in chunks.iter().enumerate() {
        let mut out = Vec::with_capacity(17 + blob.len());
        out.push(WIRE);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(index as u32).to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(blob);
        super::send(ctx, Some(sender), msg::CHUNK, &out);
    }
    stats_add(&SNAPSHOTS_SERVED);
}

fn on_chunk(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    if !super::is_primary(ctx) || payload.len() < 17 || payload.first() != Some(&WIRE) {
        return;
    }
    let (Some(id), Some(index), Some(total)) =
        (u64_at(payload, 1), u32_at(payload, 9), u32_at(payload, 13))
    else {
        return;
    };
    // Chunks merge as they come (each is a self-contained set of entries); any chunk of the
    // request we made is accepted, others are ignored.
    let expected = with_peers(|peers| {
        let peer = peers.entry(*sender).or_default();
        match peer.pending {
            Some((pending, _)) if pending == id => {
                if index.saturating_add(1) >= total {
                    peer.pending = None;
                }
                true
            }
            _ => false,
        }
    });
    if !expected {
        return;
    }
    if let Some(blob) = payload.get(17..) {
        merge_blob(ctx, blob);
    }
    if index.saturating_add(1) >= total {
        stats_add(&SNAPSHOTS_PULLED);
    }
}

unsafe extern "C" fn tick(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if super::is_primary(ctx) {
            let digest = registry::lock().digest();
            let payload = encode_digest(&digest);
            let peers = super::other_primaries(ctx);
            let now = ffi::wall_ms();
            let mut in_sync = 0;
            with_peers(|known| {
                // forget nodes that left the cluster
                known.retain(|id, _| peers.iter().any(|p| p.id == *id));
                for p in &peers {
                    if known.get(&p.id).is_some_and(|k| {
                        k.last.is_some_and(|(_, differs)| !differs)
                            && now.saturating_sub(k.heard_ms) < 3 * PERIOD_MS
                    }) {
                        in_sync += 1;
                    }
                }
            });
            PEERS_IN_SYNC.store(in_sync, Ordering::Relaxed);
            for peer in &peers {
                super::send(ctx, Some(&peer.id), msg::DIGEST, &payload);
            }
        }
    }));
    let _ = schedule(ctx);
}

/// `SESSION.SYNC APPLY blob`: merges registry entries. Reserved for replication and the AOF (a
/// primary writes it in cluster mode); a client gets an error.
pub fn command(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 || !inv.args[1].eq_ignore_ascii_case(b"APPLY") {
        return Err(RedisError::WrongArity);
    }
    if !inv.trusted() {
        return Err(crate::errors::reserved("SESSION.SYNC APPLY"));
    }
    let entries = decode_entries(inv.args[2]).map_err(crate::errors::from_core)?;
    let changed = registry::lock().merge(entries, ffi::wall_ms());
    if !changed.is_empty() {
        // a replica of a replica, and this replica's AOF, get the same
        inv.replicate_verbatim();
    }
    Ok(RedisValue::Integer(changed.len() as i64))
}

/// `INFO session` fields of the sync (cluster mode only).
pub fn info_fields() -> Option<Vec<(&'static str, String)>> {
    if !on() {
        return None;
    }
    let digest = registry::try_digest()?;
    Some(vec![
        ("registry_digest", format!("{:016x}", digest.hash)),
        ("registry_entries", digest.entries.to_string()),
        ("registry_clock", digest.clock.to_string()),
        (
            "registry_last_sync_ms",
            LAST_SYNC_MS.load(Ordering::Relaxed).to_string(),
        ),
        (
            "registry_peers_in_sync",
            PEERS_IN_SYNC.load(Ordering::Relaxed).to_string(),
        ),
        (
            "registry_entries_applied",
            APPLIED.load(Ordering::Relaxed).to_string(),
        ),
        (
            "registry_snapshots_pulled",
            SNAPSHOTS_PULLED.load(Ordering::Relaxed).to_string(),
        ),
        (
            "registry_snapshots_served",
            SNAPSHOTS_SERVED.load(Ordering::Relaxed).to_string(),
        ),
        (
            "registry_messages_refused",
            MESSAGES_REFUSED.load(Ordering::Relaxed).to_string(),
        ),
    ])
}
