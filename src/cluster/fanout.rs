//! Cluster-wide `SESSION.SESSIONS user` and `SESSION.REVOKE user` (the unpaged forms).
//!
//! The node the client asked (the origin) blocks the client, sends a request with a fresh id to
//! every other primary over the cluster bus, and answers once every part arrived:
//!
//! - `SESSIONS`: each primary replies the names of the user's live sessions it holds (its own
//!   slots' keys, no ACL filter), in parts of at most [`CHUNK`] bytes; the origin filters all of
//!   them (its own included) with the caller's ACL user, as on one node, and replies them sorted.
//! - `REVOKE`: the same first round; then the origin deletes its own permitted keys and asks each
//!   owner to delete only the names the caller may write; each owner deletes them as `DEL` (its
//!   replicas and AOF get them as today) and replies how many; the origin replies the total.
//!
//! Every request carries an id; a reply is matched by id and sender, and a reply for an id that
//! is no longer waiting (answered, timed out, client gone) is ignored. When a primary does not
//! answer within `session.cluster-timeout` ms, or is marked failing, or cannot be sent to, the
//! client gets an error naming it: never a partial answer. A replica as origin stands in for its
//! own primary (it holds its keys) and asks the other primaries.
//!
//! Message types (the fan-out's range 16..=31 of `cluster::msg`), little-endian:
//! - `SESSIONS_REQ` id:u64 db:i32 user
//! - `SESSIONS_REP` id:u64 part:u32 flags:u8 (1 = last, 2 = error: the rest is the message)
//!   then names, each len:u32 bytes
//! - `REVOKE_REQ` id:u64 db:i32 part:u32 last:u8 user-len:u32 user, then names as above
//! - `REVOKE_REP` id:u64 part:u32 last:u8 deleted:i64

use std::collections::{BTreeMap, HashMap};
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisValue};

use super::{msg, NodeId};
use crate::acl::Caller;
use crate::command::Invocation;
use crate::config;
use crate::ffi::api;

pub const SESSIONS_REQ: u8 = msg::FANOUT_FIRST;
pub const SESSIONS_REP: u8 = msg::FANOUT_FIRST + 1;
pub const REVOKE_REQ: u8 = msg::FANOUT_FIRST + 2;
pub const REVOKE_REP: u8 = msg::FANOUT_FIRST + 3;

/// Largest payload of one message's names (bus messages stay small; a big part is split).
const CHUNK: usize = 64 * 1024;

const LAST: u8 = 1;
const ERROR: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Sessions,
    Revoke,
}

/// Registers the fan-out's receivers (cluster mode only; called from `cluster::init`).
pub fn register(ctx: *mut raw::RedisModuleCtx) {
    super::register(ctx, SESSIONS_REQ, on_sessions_req);
    super::register(ctx, SESSIONS_REP, on_sessions_rep);
    super::register(ctx, REVOKE_REQ, on_revoke_req);
    super::register(ctx, REVOKE_REP, on_revoke_rep);
}

/// A blocked client handle (only touched on the main thread).
struct Blocked(*mut raw::RedisModuleBlockedClient);
// SAFETY: the handle is used only on the main thread, under the PENDING lock.
unsafe impl Send for Blocked {}

/// One node's share of a request still to come.
struct Waiting {
    /// The next part expected from it.
    next_part: u32,
    /// Shown in errors.
    label: String,
}

struct Pending {
    id: u64,
    bc: Blocked,
    kind: Kind,
    db: i32,
    user: Vec<u8>,
    /// The caller's ACL user name (`None`: a trusted context, which may do everything).
    caller: Option<Vec<u8>>,
    /// Second round of REVOKE: deletions asked of the owners.
    deleting: bool,
    waiting: BTreeMap<NodeId, Waiting>,
    /// How every asked node is shown in errors.
    labels: BTreeMap<NodeId, String>,
    /// Names collected so far, with the node holding them (`None`: this node).
    names: Vec<(Option<NodeId>, Box<[u8]>)>,
    deleted: i64,
    /// An error a node answered (its part over the limit): the reply once every part is in.
    error: Option<String>,
    /// The first round's request (re-sent to a node that has sent no part yet).
    request: Vec<u8>,
    /// The second round's messages, by owner.
    revokes: BTreeMap<NodeId, Vec<Vec<u8>>>,
}

static PENDING: Mutex<Option<HashMap<u64, Pending>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn with_pending<R>(f: impl FnOnce(&mut HashMap<u64, Pending>) -> R) -> R {
    let mut guard = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// What the blocked client is answered.
enum Outcome {
    Names(Vec<Box<[u8]>>),
    Count(i64),
    Error(String),
}

fn label(node: &super::Node) -> String {
    let id = String::from_utf8_lossy(&node.id).into_owned();
    format!("{id} ({}:{})", node.ip, node.port)
}

fn name_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Sessions => "SESSIONS",
        Kind::Revoke => "REVOKE",
    }
}

/// Starts a cluster-wide `SESSIONS user` / `REVOKE user` for `inv` (user = argv[1], in `db`).
pub fn start(inv: &Invocation, kind: Kind, db: i32) -> RedisResult {
    let ctx = inv.ctx;
    let user = inv.args.get(1).copied().ok_or(RedisError::WrongArity)?;
    let flags = Context::new(ctx).get_flags();
    if flags.intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING) {
        return Err(RedisError::String(format!(
            "ERR a cluster-wide SESSION.{} waits for every primary and cannot run inside MULTI or a script: call it on its own, or page per primary with CURSOR/COUNT",
            name_of(kind)
        )));
    }
    let local = crate::commands::local_part(ctx, db, user)?;
    let nodes = super::nodes(ctx);
    let my_primary = nodes.iter().find(|n| n.myself).and_then(|n| n.primary_id);
    let targets: Vec<&super::Node> = nodes
        .iter()
        .filter(|n| n.primary && !n.myself && Some(n.id) != my_primary)
        .collect();
    let failing: Vec<String> = targets
        .iter()
        .filter(|n| n.failing)
        .map(|n| label(n))
        .collect();
    if !failing.is_empty() {
        return Err(unavailable(kind, "marked failing", &failing));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut pending = Pending {
        id,
        labels: targets.iter().map(|n| (n.id, label(n))).collect(),
        bc: Blocked(std::ptr::null_mut()),
        kind,
        db,
        user: user.to_vec(),
        caller: crate::acl::current_user_name(ctx),
        deleting: false,
        waiting: BTreeMap::new(),
        names: local.into_iter().map(|k| (None, k)).collect(),
        deleted: 0,
        error: None,
        request: Vec::new(),
        revokes: BTreeMap::new(),
    };
    if targets.is_empty() {
        // a cluster of one primary: nothing to wait for
        return match finish_round(ctx, &mut pending) {
            Some(Outcome::Names(names)) => Ok(RedisValue::Array(
                names
                    .into_iter()
                    .map(|n| RedisValue::StringBuffer(n.into_vec()))
                    .collect(),
            )),
            Some(Outcome::Count(n)) => Ok(RedisValue::Integer(n)),
            Some(Outcome::Error(e)) => Err(RedisError::String(e)),
            None => Err(RedisError::Str("ERR internal: nothing to wait for")),
        };
    }
    let mut req = Vec::with_capacity(12 + user.len());
    req.extend_from_slice(&id.to_le_bytes());
    req.extend_from_slice(&db.to_le_bytes());
    req.extend_from_slice(user);
    let mut unsent = Vec::new();
    for node in &targets {
        if super::send(ctx, Some(&node.id), SESSIONS_REQ, &req) {
            pending.waiting.insert(
                node.id,
                Waiting {
                    next_part: 0,
                    label: label(node),
                },
            );
        } else {
            unsent.push(label(node));
        }
    }
    if !unsent.is_empty() {
        // replies to what was sent find no request and are ignored
        return Err(unavailable(kind, "unreachable", &unsent));
    }
    let block = api!(RedisModule_BlockClient)?;
    // SAFETY: a command context on the main thread; the callbacks are guarded.
    let bc = unsafe {
        block(
            ctx,
            Some(reply_callback),
            Some(timeout_callback),
            Some(free_privdata),
            config::cluster_timeout_ms(),
        )
    };
    if bc.is_null() {
        return Err(RedisError::Str("ERR could not block the client"));
    }
    if let Some(set) = unsafe { raw::RedisModule_SetDisconnectCallback } {
        // SAFETY: a live handle.
        unsafe { set(bc, Some(disconnected)) };
    }
    pending.bc = Blocked(bc);
    pending.request = req;
    with_pending(|p| p.insert(id, pending));
    arm_resend(ctx, id);
    Ok(RedisValue::NoReply)
}

fn unavailable(kind: Kind, why: &str, nodes: &[String]) -> RedisError {
    RedisError::String(format!(
        "ERR cluster-wide SESSION.{} incomplete: primaries {why}: {} (no partial answer; retry, or page per primary with CURSOR/COUNT)",
        name_of(kind),
        nodes.join(", ")
    ))
}

/// Every part of the current round is in: the outcome, or `None` when a second round
/// (REVOKE's deletions) was started and is awaited.
fn finish_round(ctx: *mut raw::RedisModuleCtx, p: &mut Pending) -> Option<Outcome> {
    if let Some(e) = p.error.take() {
        return Some(Outcome::Error(e));
    }
    if p.deleting {
        return Some(Outcome::Count(p.deleted));
    }
    let caller = match &p.caller {
        Some(name) => Caller::named(ctx, name),
        None => Caller::Trusted,
    };
    let mut names = std::mem::take(&mut p.names);
    match p.kind {
        Kind::Sessions => {
            names.retain(|(_, k)| caller.may_read(ctx, k));
            let mut keys: Vec<Box<[u8]>> = names.into_iter().map(|(_, k)| k).collect();
            keys.sort();
            keys.dedup();
            Some(Outcome::Names(keys))
        }
        Kind::Revoke => {
            names.retain(|(_, k)| caller.may_write(ctx, k));
            let mut by_owner: BTreeMap<NodeId, Vec<Box<[u8]>>> = BTreeMap::new();
            let mut local = Vec::new();
            for (owner, key) in names {
                match owner {
                    Some(node) => by_owner.entry(node).or_default().push(key),
                    None => local.push(key),
                }
            }
            select_db(ctx, p.db);
            p.deleted += crate::commands::revoke_listed(ctx, &p.user, &local);
            p.deleting = true;
            for (node, keys) in by_owner {
                let label = p
                    .labels
                    .get(&node)
                    .cloned()
                    .unwrap_or_else(|| String::from_utf8_lossy(&node).into_owned());
                let parts = revoke_messages(p.id, p.db, &p.user, &keys);
                let sent = parts
                    .iter()
                    .all(|m| super::send(ctx, Some(&node), REVOKE_REQ, m));
                p.revokes.insert(node, parts);
                if !sent {
                    p.error.get_or_insert_with(|| {
                        format!(
                            "{} ({} sessions were deleted on the others)",
                            unavailable(p.kind, "unreachable", std::slice::from_ref(&label)),
                            p.deleted
                        )
                    });
                }
                p.waiting.insert(
                    node,
                    Waiting {
                        next_part: 0,
                        label,
                    },
                );
            }
            if p.waiting.is_empty() || p.error.is_some() {
                p.error
                    .take()
                    .map(Outcome::Error)
                    .or(Some(Outcome::Count(p.deleted)))
            } else {
                None
            }
        }
    }
}

/// How often a request is sent again to the nodes that have sent nothing yet: the bus may lose
/// a message (a link being re-established: Valkey drops a module message that arrives on a link
/// not yet tied to its node). Listing is idempotent, and so is deleting (a key already gone is
/// not deleted twice).
fn resend_every_ms() -> i64 {
    (config::cluster_timeout_ms() / 4).max(20)
}

fn arm_resend(ctx: *mut raw::RedisModuleCtx, id: u64) {
    if let Some(create) = unsafe { raw::RedisModule_CreateTimer } {
        // SAFETY: main thread; the data is the request id, not a pointer.
        unsafe {
            create(
                ctx,
                resend_every_ms(),
                Some(resend),
                id as usize as *mut c_void,
            )
        };
    }
}

extern "C" fn resend(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let id = data as usize as u64;
        let alive = with_pending(|all| {
            let Some(p) = all.get(&id) else {
                return false;
            };
            for (node, w) in &p.waiting {
                if w.next_part != 0 {
                    continue; // its answer is arriving
                }
                if p.deleting {
                    for m in p.revokes.get(node).into_iter().flatten() {
                        super::send(ctx, Some(node), REVOKE_REQ, m);
                    }
                } else {
                    super::send(ctx, Some(node), SESSIONS_REQ, &p.request);
                }
            }
            true
        });
        if alive {
            arm_resend(ctx, id);
        }
    });
}

/// `names` split into payloads of at most `CHUNK` bytes of names each (one empty part for none).
fn chunks(names: &[Box<[u8]>]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for name in names {
        let fits = out
            .last()
            .is_some_and(|c| c.len() + 4 + name.len() <= CHUNK);
        if !fits && out.last().is_some_and(|c| !c.is_empty()) {
            out.push(Vec::new());
        }
        if let Some(c) = out.last_mut() {
            c.extend_from_slice(&(name.len() as u32).to_le_bytes());
            c.extend_from_slice(name);
        }
    }
    out
}

fn revoke_messages(id: u64, db: i32, user: &[u8], keys: &[Box<[u8]>]) -> Vec<Vec<u8>> {
    let parts = chunks(keys);
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, names)| {
            let mut m = Vec::with_capacity(21 + user.len() + names.len());
            m.extend_from_slice(&id.to_le_bytes());
            m.extend_from_slice(&db.to_le_bytes());
            m.extend_from_slice(&(i as u32).to_le_bytes());
            m.push(if i + 1 == n { LAST } else { 0 });
            m.extend_from_slice(&(user.len() as u32).to_le_bytes());
            m.extend_from_slice(user);
            m.extend_from_slice(&names);
            m
        })
        .collect()
}

/// A bounds-checked reader of a message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(*self.bytes(1)?.first()?)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    /// The names up to the end; `None` when malformed.
    fn names(&mut self) -> Option<Vec<Box<[u8]>>> {
        let mut out = Vec::new();
        while !self.0.is_empty() {
            let n = self.u32()? as usize;
            out.push(Box::from(self.bytes(n)?));
        }
        Some(out)
    }
}

fn select_db(ctx: *mut raw::RedisModuleCtx, db: i32) -> bool {
    match unsafe { raw::RedisModule_SelectDb } {
        // SAFETY: a valid context with a client (command or bus receiver).
        Some(select) => (unsafe { select(ctx, db) }) == raw::REDISMODULE_OK as c_int,
        None => db == 0,
    }
}

/// A primary asked for its part of a user's sessions: the names, in parts.
fn on_sessions_req(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    let mut r = Reader(payload);
    let (Some(id), Some(db)) = (r.u64(), r.i32()) else {
        return;
    };
    let user = r.rest();
    let head = |part: u32, flags: u8| {
        let mut m = Vec::with_capacity(13);
        m.extend_from_slice(&id.to_le_bytes());
        m.extend_from_slice(&part.to_le_bytes());
        m.push(flags);
        m
    };
    let part = if select_db(ctx, db) {
        crate::commands::local_part(ctx, db, user).map_err(|e| e.to_string())
    } else {
        Err(format!("ERR this node has no database {db}"))
    };
    match part {
        Ok(names) => {
            let parts = chunks(&names);
            let n = parts.len();
            for (i, names) in parts.into_iter().enumerate() {
                let mut m = head(i as u32, if i + 1 == n { LAST } else { 0 });
                m.extend_from_slice(&names);
                super::send(ctx, Some(sender), SESSIONS_REP, &m);
            }
        }
        Err(e) => {
            let mut m = head(0, LAST | ERROR);
            let my = super::my_id().map(|i| String::from_utf8_lossy(&i).into_owned());
            m.extend_from_slice(format!("{e} (on {})", my.unwrap_or_default()).as_bytes());
            super::send(ctx, Some(sender), SESSIONS_REP, &m);
        }
    }
}

/// An owner asked to delete the permitted names of a user: deletes them, replies the count.
fn on_revoke_req(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    let mut r = Reader(payload);
    let (Some(id), Some(db), Some(part), Some(last)) = (r.u64(), r.i32(), r.u32(), r.u8()) else {
        return;
    };
    let Some(user) = r.u32().and_then(|n| r.bytes(n as usize)) else {
        return;
    };
    let Some(names) = r.names() else {
        return;
    };
    // only a primary deletes (a replica's keys follow its primary)
    let deleted = if super::is_primary(ctx) && select_db(ctx, db) {
        crate::commands::revoke_listed(ctx, user, &names)
    } else {
        0
    };
    let mut m = Vec::with_capacity(21);
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&part.to_le_bytes());
    m.push(last & LAST);
    m.extend_from_slice(&deleted.to_le_bytes());
    super::send(ctx, Some(sender), REVOKE_REP, &m);
}

/// Takes one part from `sender` for request `id`: `None` when nothing waits for it (late, or a
/// part out of order, which fails the request); `Some(last)` otherwise.
fn accept_part(p: &mut Pending, sender: &NodeId, part: u32, last: bool) -> Option<bool> {
    let w = p.waiting.get_mut(sender)?;
    if w.next_part != part {
        let label = w.label.clone();
        p.error.get_or_insert_with(|| {
            format!(
                "ERR cluster-wide SESSION.{}: parts from {label} arrived out of order",
                name_of(p.kind)
            )
        });
        p.waiting.remove(sender);
        return Some(true);
    }
    w.next_part += 1;
    if last {
        p.waiting.remove(sender);
    }
    Some(last)
}

fn on_sessions_rep(ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    let mut r = Reader(payload);
    let (Some(id), Some(part), Some(flags)) = (r.u64(), r.u32(), r.u8()) else {
        return;
    };
    let body = r.rest();
    let done = with_pending(|all| {
        let p = all.get_mut(&id)?;
        if p.deleting {
            return None;
        }
        accept_part(p, sender, part, flags & LAST != 0)?;
        if flags & ERROR != 0 {
            p.error
                .get_or_insert_with(|| String::from_utf8_lossy(body).into_owned());
        } else {
            match Reader(body).names() {
                Some(names) => p
                    .names
                    .extend(names.into_iter().map(|n| (Some(*sender), n))),
                None => {
                    p.error.get_or_insert_with(|| {
                        "ERR a malformed part arrived over the cluster bus".to_owned()
                    });
                }
            }
        }
        if !p.waiting.is_empty() {
            return None;
        }
        let outcome = finish_round(ctx, p)?;
        let p = all.remove(&id)?;
        Some((p.bc, outcome))
    });
    if let Some((bc, outcome)) = done {
        unblock(bc, outcome);
    }
}

fn on_revoke_rep(_ctx: *mut raw::RedisModuleCtx, sender: &NodeId, payload: &[u8]) {
    let mut r = Reader(payload);
    let (Some(id), Some(part), Some(last), Some(deleted)) = (r.u64(), r.u32(), r.u8(), r.i64())
    else {
        return;
    };
    let done = with_pending(|all| {
        let p = all.get_mut(&id)?;
        if !p.deleting {
            return None;
        }
        accept_part(p, sender, part, last & LAST != 0)?;
        p.deleted = p.deleted.saturating_add(deleted.max(0));
        if !p.waiting.is_empty() {
            return None;
        }
        let p = all.remove(&id)?;
        let outcome = match p.error {
            Some(e) => Outcome::Error(e),
            None => Outcome::Count(p.deleted),
        };
        Some((p.bc, outcome))
    });
    if let Some((bc, outcome)) = done {
        unblock(bc, outcome);
    }
}

fn unblock(bc: Blocked, outcome: Outcome) {
    if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
        let data = Box::into_raw(Box::new(outcome)).cast::<c_void>();
        // SAFETY: a live handle, unblocked once (its request was removed from PENDING).
        unsafe { unblock(bc.0, data) };
    }
}

/// Removes the request of `bc` (timed out or disconnected): late replies are then ignored.
fn forget(bc: *mut raw::RedisModuleBlockedClient) -> Option<Pending> {
    with_pending(|all| {
        let id = all.iter().find(|(_, p)| p.bc.0 == bc).map(|(id, _)| *id)?;
        all.remove(&id)
    })
}

extern "C" fn reply_callback(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        let Some(get) = (unsafe { raw::RedisModule_GetBlockedClientPrivateData }) else {
            return;
        };
        // SAFETY: the private data is the `Outcome` `unblock` boxed (freed by free_privdata).
        let outcome = unsafe { get(ctx).cast::<Outcome>().as_ref() };
        let reply = match outcome {
            Some(Outcome::Names(names)) => Ok(RedisValue::Array(
                names
                    .iter()
                    .map(|n| RedisValue::StringBuffer(n.to_vec()))
                    .collect(),
            )),
            Some(Outcome::Count(n)) => Ok(RedisValue::Integer(*n)),
            Some(Outcome::Error(e)) => Err(RedisError::String(e.clone())),
            None => Err(RedisError::Str("ERR internal: no outcome")),
        };
        Context::new(ctx).reply(reply);
    });
    raw::REDISMODULE_OK as c_int
}

extern "C" fn timeout_callback(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        let Some(handle) = (unsafe { raw::RedisModule_GetBlockedClientHandle }) else {
            return;
        };
        // SAFETY: a timeout callback's context.
        let bc = unsafe { handle(ctx) };
        let reply = match forget(bc) {
            Some(p) => {
                let missing: Vec<String> = p.waiting.values().map(|w| w.label.clone()).collect();
                let mut e = unavailable(
                    p.kind,
                    &format!(
                        "that did not answer within session.cluster-timeout ({} ms)",
                        config::cluster_timeout_ms()
                    ),
                    &missing,
                )
                .to_string();
                if p.deleting {
                    e.push_str(&format!(
                        " ({} sessions were deleted on the nodes that answered)",
                        p.deleted
                    ));
                }
                e
            }
            None => "ERR cluster-wide request timed out".to_owned(),
        };
        Context::new(ctx).reply(Err(RedisError::String(reply)));
        if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
            // SAFETY: Redis expects one unblock per blocked client, also after a timeout.
            unsafe { unblock(bc, std::ptr::null_mut()) };
        }
    });
    raw::REDISMODULE_OK as c_int
}

extern "C" fn disconnected(_ctx: *mut raw::RedisModuleCtx, bc: *mut raw::RedisModuleBlockedClient) {
    let _ = std::panic::catch_unwind(|| {
        if forget(bc).is_some() {
            if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
                // SAFETY: the request is forgotten, so this is the only unblock.
                unsafe { unblock(bc, std::ptr::null_mut()) };
            }
        }
    });
}

extern "C" fn free_privdata(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    if !data.is_null() {
        // SAFETY: boxed by `unblock`, freed once by Redis's call.
        drop(unsafe { Box::from_raw(data.cast::<Outcome>()) });
    }
}
