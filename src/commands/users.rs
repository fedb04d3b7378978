//! Sessions by user: `SESSION.SESSIONS user`, `SESSION.REVOKE user`, `SESSION.ROTATE key newkey`,
//! and what `SESSION.TOUCH ... USER` does to the per-user index (listing, per-user maximum).
//!
//! The index (`events::index`) only says where to look: every key it lists is checked against the
//! session it holds before it is replied or deleted, and entries found stale are dropped. Deletions
//! go through `DEL` (replicated as `DEL` of each key, with its keyspace notification) and the
//! rotation through `RENAME` (replicated as `RENAME`), so replicas and the AOF apply exactly what
//! the primary did, and the same keyspace events keep their indexes in step.

use std::borrow::Cow;
use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::raw;
use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::parse_rotate;
use session_core::users::Gone;
use session_core::Session;

use crate::acl::Caller;
use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::{self, from_core};
use crate::events::{self, deleting_as, selected_db};
use crate::ffi::{api, Key, KeyValue, OwnedString, Reply};

/// Keys one `CURSOR`/`COUNT` call lists or revokes at most.
const MAX_PAGE: i64 = 10_000;

/// (cursor given, the key to start after, count).
type Page<'a> = (bool, Option<&'a [u8]>, Option<usize>);

/// `[CURSOR c] [COUNT n]` of SESSIONS and REVOKE: (cursor given, the key to start after, count).
/// A cursor is `0` (start) or `k<key>` (after that key), as the previous reply gave it.
fn page_args<'a>(rest: &'a [&'a [u8]]) -> Result<Page<'a>, RedisError> {
    let mut args = session_core::codec::args::Args::new(rest);
    let (mut cursor, mut after, mut count) = (false, None, None);
    while !args.is_empty() {
        let token = args.next_arg().map_err(from_core)?;
        if token.eq_ignore_ascii_case(b"CURSOR") && !cursor {
            cursor = true;
            let c = args.next_arg().map_err(from_core)?;
            after = match c.split_first() {
                Some((b'k', key)) => Some(key),
                _ if c == b"0" => None,
                _ => return Err(RedisError::Str("ERR invalid cursor")),
            };
        } else if token.eq_ignore_ascii_case(b"COUNT") && count.is_none() {
            count = Some(args.next_int("COUNT", 1, MAX_PAGE).map_err(from_core)? as usize);
        } else {
            return Err(from_core(session_core::Error::Syntax));
        }
    }
    Ok((cursor, after, count))
}

fn next_cursor(more: bool, last: Option<&[u8]>) -> Vec<u8> {
    match (more, last) {
        (true, Some(key)) => [b"k", key].concat(),
        _ => b"0".to_vec(),
    }
}

/// `SESSION.SESSIONS user [CURSOR c] [COUNT n]`: the user's live session keys (sorted), in the
/// current database. Without `CURSOR`, all of them (refused past `session.max-unpaged-sessions`);
/// with it, a page of at most `COUNT` (default
/// 100) as `[next-cursor, keys]`, `0` when done: O(log n + COUNT).
pub fn sessions(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let user = inv.args[1];
    let (paged, after, count) = page_args(&inv.args[2..])?;
    let db = selected_db(inv.ctx);
    // Only the keys the caller may read (the index spans every tenant).
    let caller = Caller::current(inv.ctx);
    let r = Reply::new(inv.ctx);
    if !paged && count.is_none() {
        // Like KEYS against SCAN: a whole listing is answered only up to a bound, checked before
        // any work (the index's count, O(1)); past it the client pages.
        unpaged_within_limit(db, user, "use SESSION.SESSIONS <user> CURSOR 0 COUNT <n>")?;
        // In a cluster: every primary's part, over the bus (the client blocks until all came).
        if crate::cluster::enabled(inv.ctx) {
            return crate::cluster::fanout::start(inv, crate::cluster::fanout::Kind::Sessions, db);
        }
        let listed = events::index().sessions(db, user);
        let mut live = live_sessions(inv.ctx, db, user, listed)?;
        live.retain(|(key, _)| caller.may_read(inv.ctx, key));
        r.array(live.len());
        for (key, _) in &live {
            r.bulk(key);
        }
        return Ok(RedisValue::NoReply);
    }
    let (listed, more) = events::index().sessions_after(db, user, after, count.unwrap_or(100));
    let next = next_cursor(more, listed.last().map(|k| &**k));
    let mut live = live_sessions(inv.ctx, db, user, listed)?;
    live.retain(|(key, _)| caller.may_read(inv.ctx, key));
    r.array(2);
    r.bulk(&next);
    r.array(live.len());
    for (key, _) in &live {
        r.bulk(key);
    }
    Ok(RedisValue::NoReply)
}

/// `SESSION.REVOKE user [COUNT n]`: deletes the user's sessions ("log out everywhere") that the
/// caller may write. Without
/// `COUNT`, all of them, replying how many (refused past `session.max-unpaged-sessions`); with it, at most `n` (the first in key order) per call,
/// replying `[deleted, remaining]` so a client repeats until `remaining` is 0: each call is
/// O(n log N) and never holds the event loop for the whole user. Each deletion is a `DEL`
/// (replicated, notified, published on `session:deleted` with reason `revoked`).
pub fn revoke(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let user = inv.args[1];
    let (paged, _, count) = page_args(&inv.args[2..])?;
    if paged {
        return Err(from_core(session_core::Error::Syntax));
    }
    let db = selected_db(inv.ctx);
    let caller = Caller::current(inv.ctx);
    let Some(n) = count else {
        // A whole revoke is done at once only up to a bound, checked before any work; past it
        // the client deletes in bounded steps (as Redis's lazyfree bounds a big deletion).
        unpaged_within_limit(
            db,
            user,
            "use SESSION.REVOKE <user> COUNT <n> until it replies 0 remaining",
        )?;
        if crate::cluster::enabled(inv.ctx) {
            return crate::cluster::fanout::start(inv, crate::cluster::fanout::Kind::Revoke, db);
        }
        let listed = events::index().sessions(db, user);
        let mut live = live_sessions(inv.ctx, db, user, listed)?;
        live.retain(|(key, _)| caller.may_write(inv.ctx, key));
        let mut deleted = 0;
        for (key, _) in &live {
            deleted += delete(inv.ctx, key, Gone::Revoked)?;
        }
        return Ok(RedisValue::Integer(deleted));
    };
    // With COUNT: the first `n` sessions in key order the caller may write. The walk opens only
    // the keys it deletes (and stale entries it drops); keys the caller may not write cost an ACL
    // pattern check each, no key open.
    let everything = may_write_all_keys(inv.ctx, &caller, events::index().count(db, user));
    let mut deleted = 0;
    let mut after: Option<Box<[u8]>> = None;
    'walk: while (deleted as usize) < n {
        let (page, more) = events::index().sessions_after(db, user, after.as_deref(), n);
        for key in page {
            after = Some(key.clone());
            if !everything && !caller.may_write(inv.ctx, &key) {
                continue;
            }
            match live_one(inv.ctx, &key, user)? {
                Some(_) => deleted += delete(inv.ctx, &key, Gone::Revoked)?,
                None => {
                    events::index().unregister_if(db, &key, user);
                }
            }
            if deleted as usize >= n {
                break 'walk;
            }
        }
        if !more {
            break;
        }
    }
    // What this caller can still revoke: the index's count (entries not yet met as stale are
    // dropped by the next call) when it may write every key, else an ACL pattern check per
    // listed key (O(S) checks, no key opened), so `remaining` reaches 0 for a tenant too.
    let remaining = {
        let ix = events::index();
        if everything {
            ix.count(db, user)
        } else {
            ix.sessions(db, user)
                .iter()
                .filter(|k| caller.may_write(inv.ctx, k))
                .count()
        }
    };
    Ok(RedisValue::Array(vec![
        RedisValue::Integer(deleted),
        RedisValue::Integer(remaining as i64),
    ]))
}

/// This node's part of a cluster-wide `SESSIONS`/`REVOKE` of `user` in `db`: the keys here that
/// hold a live session of `user` (sorted, no ACL filter: the origin filters with its caller's
/// user), refused past `session.max-unpaged-sessions` before any work.
pub fn local_part(
    ctx: *mut raw::RedisModuleCtx,
    db: i32,
    user: &[u8],
) -> Result<Vec<Box<[u8]>>, RedisError> {
    unpaged_within_limit(db, user, "page per primary with CURSOR/COUNT")?;
    let listed = events::index().sessions(db, user);
    Ok(live_sessions(ctx, db, user, listed)?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// Deletes each of `keys` that holds a live session of `user` here (a `DEL` each, replicated,
/// reason `revoked`); returns how many were deleted. A key that is not (or no longer) here, or
/// not `user`'s, is left alone.
pub fn revoke_listed(ctx: *mut raw::RedisModuleCtx, user: &[u8], keys: &[Box<[u8]>]) -> i64 {
    let mut deleted = 0;
    for key in keys {
        if let Ok(Some(_)) = live_one(ctx, key, user) {
            deleted += delete(ctx, key, Gone::Revoked).unwrap_or(0);
        }
    }
    deleted
}

/// Refuses a whole-user SESSIONS or REVOKE when the index lists more of the user's sessions
/// than `session.max-unpaged-sessions` (before any work: the count is O(1)).
fn unpaged_within_limit(db: i32, user: &[u8], hint: &str) -> Result<(), RedisError> {
    let limit = config::max_unpaged_sessions();
    let listed = events::index().count(db, user);
    if listed > limit {
        return Err(RedisError::String(format!(
            "ERR the user has {listed} sessions, more than session.max-unpaged-sessions ({limit}): {hint}"
        )));
    }
    Ok(())
}

/// May `caller` write every key? True for a trusted context and for a user whose key patterns
/// include `~*` (allkeys) with write access (`ACL GETUSER`, one call, O(1) in the sessions): then
/// no per-name check is needed. False otherwise, also when it cannot tell (the per-name checks
/// then decide, exactly as before).
///
/// `ACL GETUSER` costs about 200 us (it describes every command rule), as much as ~2000 pattern
/// checks, so it is asked only when the user lists more than `ALLKEYS_PROBE_ABOVE` sessions;
/// below that the per-name checks are the cheaper exact answer.
fn may_write_all_keys(ctx: *mut raw::RedisModuleCtx, caller: &Caller, listed: usize) -> bool {
    match caller {
        Caller::Trusted => true,
        Caller::Nobody => false,
        Caller::User(_) if listed <= ALLKEYS_PROBE_ABOVE => false,
        Caller::User(_) => crate::acl::current_user_name(ctx)
            .and_then(|name| acl_keys(ctx, &name))
            .is_some_and(|keys| {
                keys.split(|b| *b == b' ')
                    .any(|t| matches!(t, b"~*" | b"%RW~*" | b"%WR~*" | b"%W~*" | b"allkeys"))
            }),
    }
}

/// Sessions of one user above which `may_write_all_keys` asks `ACL GETUSER`.
const ALLKEYS_PROBE_ABOVE: usize = 2048;

/// The `keys` field of `ACL GETUSER name` (Redis 7+, Valkey: the root selector's key patterns).
fn acl_keys(ctx: *mut raw::RedisModuleCtx, name: &[u8]) -> Option<Vec<u8>> {
    let call = unsafe { raw::RedisModule_Call }?;
    let len = unsafe { raw::RedisModule_CallReplyLength }?;
    let element = unsafe { raw::RedisModule_CallReplyArrayElement }?;
    let string = unsafe { raw::RedisModule_CallReplyStringPtr }?;
    let user = OwnedString::new(ctx, name)?;
    // SAFETY: the format names exactly the arguments passed; not replicated (no `!`).
    let reply = unsafe {
        call(
            ctx,
            c"ACL".as_ptr(),
            c"cs".as_ptr(),
            c"GETUSER".as_ptr(),
            user.ptr(),
        )
    };
    if reply.is_null() {
        return None;
    }
    let reply = CallReply(reply);
    if reply.kind() != raw::REDISMODULE_REPLY_ARRAY as c_int {
        return None;
    }
    let text = |r: *mut raw::RedisModuleCallReply| -> Option<Vec<u8>> {
        if r.is_null() {
            return None;
        }
        let mut n: usize = 0;
        // SAFETY: a live reply element; the pointer is valid for `n` bytes while the reply lives.
        let p = unsafe { string(r, &mut n) };
        if p.is_null() {
            return None;
        }
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec())
    };
    // SAFETY: a live array reply.
    let items = unsafe { len(reply.0) };
    let mut i = 0;
    while i + 1 < items {
        // SAFETY: indexes within the array.
        let (k, v) = unsafe { (element(reply.0, i), element(reply.0, i + 1)) };
        if text(k).as_deref() == Some(b"keys") {
            return text(v);
        }
        i += 2;
    }
    None
}

/// `SESSION.ROTATE key newkey`: moves the session to a new key with all its state, its expiry and
/// its index entry (against session fixation). Refuses to overwrite any existing key. Nil when
/// there is no session at `key`. Replicated as `RENAME key newkey`.
pub fn rotate(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let clear_fields = parse_rotate(&inv.args[3..]).map_err(errors::from_core)?;
    {
        let mut source = super::open_session(inv, 1, true)?;
        if let KeyValue::Empty = source.value::<Session>(session_type())? {
            return Ok(RedisValue::Null);
        }
    }
    if inv.args[1] == inv.args[2] {
        return Err(errors::target_exists());
    }
    {
        let mut target = Key::open(inv.ctx, inv.argv[2], false)?;
        match target.value::<Session>(session_type()) {
            Ok(KeyValue::Empty) => {}
            Ok(KeyValue::Ours(_)) | Err(_) => return Err(errors::target_exists()),
        }
    }
    // Both keys are closed: RENAME moves the value itself (O(1), expiry included), fires
    // rename_from/rename_to (which move the index entry) and is replicated as it is.
    let reply = call(inv.ctx, c"RENAME", &[inv.argv[1], inv.argv[2]])?;
    if reply.is_error() {
        return Err(errors::write_failed());
    }
    if clear_fields {
        clear_rotated_fields(inv)?;
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// `ROTATE ... CLEARFIELDS` (login): the moved session keeps its lifecycle, activity, user and
/// groups and loses its fields. Replicated after the `RENAME` as `SESSION.TOUCH newkey XX
/// REPLACE 0 AT <last seen>`, which changes nothing else (same last-seen time, same expiry).
fn clear_rotated_fields(inv: &Invocation) -> Result<(), RedisError> {
    let mut key = Key::open(inv.ctx, inv.argv[2], true)?;
    let last_seen = match key.value::<Session>(session_type())? {
        KeyValue::Ours(session) if !session.fields.is_empty() => {
            session.fields = session_core::session::fields::Fields::default();
            session.last_seen_ms
        }
        _ => return Ok(()),
    };
    drop(key);
    let words = [&b"XX"[..], b"REPLACE", b"0", b"AT"];
    let mut owned: Vec<OwnedString> = Vec::with_capacity(5);
    for w in words {
        owned.push(OwnedString::new(inv.ctx, w).ok_or_else(errors::write_failed)?);
    }
    owned.push(OwnedString::from_i64(inv.ctx, last_seen).ok_or_else(errors::write_failed)?);
    let mut argv = vec![inv.argv[2]];
    argv.extend(owned.iter().map(OwnedString::ptr));
    crate::ffi::replicate_strings(inv.ctx, c"SESSION.TOUCH", &argv);
    Ok(())
}

/// After `SESSION.TOUCH` left a session of `user` at `key`, last seen at `last_seen_ms`: lists it
/// under `user` (moving it from another user, or to its new place in the user's activity order),
/// then applies the per-user maximum unless the touch comes from the primary or the AOF (their
/// evictions follow as `DEL`). Never fails: the touch is already applied.
pub fn touched(inv: &Invocation, user: &[u8], last_seen_ms: i64) {
    let db = selected_db(inv.ctx);
    let key = inv.args[1];
    let count = {
        let mut ix = events::index();
        ix.register(db, key, user, last_seen_ms);
        ix.count(db, user)
    };
    let max = config::max_sessions_per_user();
    if max > 0 && count > max && !inv.trusted() && events::may_evict(inv.ctx) {
        enforce_limit(inv.ctx, db, key, user);
    }
}

/// The user whose index entry a touch must update, with the session's last-seen time: the user
/// it names, or (only when a per-user maximum is set, which a touch without USER must still
/// apply) the one the session holds. A touch without USER while no maximum is set leaves the
/// index's time behind the session's (a lower bound: last seen only grows); `evict_oldest`
/// corrects such entries as it meets them.
pub fn index_user<'a>(given: Option<&'a [u8]>, session: &Session) -> Option<(Cow<'a, [u8]>, i64)> {
    let user = match given {
        Some(user) => Cow::Borrowed(user),
        None if config::max_sessions_per_user() > 0 => {
            Cow::Owned(session.user.as_deref()?.to_vec())
        }
        None => return None,
    };
    Some((user, session.last_seen_ms))
}

/// Evicts the least recently seen sessions of `user` (never `keep`) until the user holds at most
/// `session.max-sessions-per-user`, choosing only among sessions the caller (the toucher) may
/// write: another tenant's sessions of the same user name neither count nor are evicted, so the
/// maximum holds per tenant. Each eviction is a `DEL` (reason `limit`).
pub fn enforce_limit(ctx: *mut raw::RedisModuleCtx, db: i32, keep: &[u8], user: &[u8]) {
    let max = config::max_sessions_per_user();
    if max == 0 {
        return;
    }
    let caller = Caller::current(ctx);
    // Only the sessions the toucher may write count and can be chosen: another tenant's sessions
    // of the same user name neither count against this tenant nor get evicted by it. Counting
    // them is a pass of ACL pattern checks over the listed names (no key is opened), skipped for
    // a trusted context, which may write them all.
    // A caller that may write every key (trusted, or `~*`) counts from the index: O(1), and
    // evicts oldest first with no per-name check: O(log n) per eviction. A confined tenant
    // counts with one ACL pattern check per listed name (no key is opened): O(S) checks.
    let everything = may_write_all_keys(ctx, &caller, events::index().count(db, user));
    let others = {
        let ix = events::index();
        if everything {
            ix.count(db, user)
                .saturating_sub(usize::from(ix.user_of(db, keep) == Some(user)))
        } else {
            ix.oldest(db, user)
                .filter(|(_, k)| **k != *keep && caller.may_write(ctx, k))
                .count()
        }
    };
    let kept = matches!(live_one(ctx, keep, user), Ok(Some(_)));
    // the kept session counts as one of the maximum; without it, the user may keep one more
    let target = if kept { max.saturating_sub(1) } else { max };
    evict_oldest(ctx, db, keep, user, others, target, |k| {
        everything || caller.may_write(ctx, k)
    });
}

/// Candidates `evict_oldest` takes from the index at a time (it releases the index between
/// them: a deletion re-enters it).
const EVICTION_BATCH: usize = 16;

/// Deletes sessions of `user` least recently seen first (ties by key: deterministic), never
/// `keep` nor a key `accept` rejects, until at most `target` of the `others` accepted sessions
/// (an upper bound: stale entries met on the way are subtracted) are left. Each accepted
/// candidate is checked against its key: a stale entry is dropped, an entry whose time is
/// behind its session's is moved to its place (met again later in the walk), so the choice is
/// exactly the oldest of the accepted live sessions. O(log n) per candidate inspected, never a
/// read of all the user's sessions.
pub fn evict_oldest(
    ctx: *mut raw::RedisModuleCtx,
    db: i32,
    keep: &[u8],
    user: &[u8],
    mut others: usize,
    target: usize,
    mut accept: impl FnMut(&[u8]) -> bool,
) {
    let mut after: Option<(i64, Box<[u8]>)> = None;
    while others > target {
        let batch = events::index().oldest_after(
            db,
            user,
            after.as_ref().map(|(t, k)| (*t, &**k)),
            EVICTION_BATCH,
        );
        if batch.is_empty() {
            return;
        }
        for (listed, key) in batch {
            after = Some((listed, key.clone()));
            if *key == *keep || !accept(&key) {
                continue;
            }
            let Ok(seen) = live_one(ctx, &key, user) else {
                return;
            };
            match seen {
                None => {
                    events::index().unregister_if(db, &key, user);
                    others = others.saturating_sub(1);
                    continue;
                }
                Some(actual) if actual != listed => {
                    events::index().register(db, &key, user, actual);
                    if actual < listed {
                        // moved before the walk's position (never expected: last seen only
                        // grows): start over so it is not missed
                        after = None;
                        break;
                    }
                    continue;
                }
                Some(_) => {}
            }
            if others <= target {
                return;
            }
            others -= 1;
            if let Err(e) = delete(ctx, &key, Gone::Limit) {
                redis_module::logging::log_warning(format!(
                    "session: could not evict a session over the per-user maximum: {e}"
                ));
            }
        }
    }
}

/// The last-seen time of the session at `key` when it really holds a session of `user` now.
/// Reading a key the server finds expired deletes it (on a primary), which also drops it.
fn live_one(
    ctx: *mut raw::RedisModuleCtx,
    key: &[u8],
    user: &[u8],
) -> Result<Option<i64>, RedisError> {
    let name = OwnedString::new(ctx, key).ok_or_else(errors::write_failed)?;
    // a key the client did not name: looked at, not accessed (no LRU/LFU, no stats)
    let mut k = Key::peek(ctx, name.ptr())?;
    Ok(match k.value::<Session>(session_type()) {
        Ok(KeyValue::Ours(s))
            if s.user.as_deref() == Some(user) && !s.past_maxage(crate::ffi::wall_ms()) =>
        {
            Some(s.last_seen_ms)
        }
        _ => None,
    })
}

/// Session keys with their last-seen time (ms).
type Seen = Vec<(Box<[u8]>, i64)>;

/// The keys listed under `user` that really hold a session of `user` now, with their last-seen
/// time; entries found stale are dropped from the index. Reading a key the server finds expired
/// deletes it (on a primary), which also drops it.
fn live_sessions(
    ctx: *mut raw::RedisModuleCtx,
    db: i32,
    user: &[u8],
    listed: Vec<Box<[u8]>>,
) -> Result<Seen, RedisError> {
    let mut live = Vec::with_capacity(listed.len());
    let mut stale = Vec::new();
    for key in listed {
        let name = OwnedString::new(ctx, &key).ok_or_else(errors::write_failed)?;
        let last_seen = {
            // keys the client did not name: looked at, not accessed (no LRU/LFU, no stats)
            let mut k = Key::peek(ctx, name.ptr())?;
            match k.value::<Session>(session_type()) {
                Ok(KeyValue::Ours(s))
                    if s.user.as_deref() == Some(user) && !s.past_maxage(crate::ffi::wall_ms()) =>
                {
                    Some(s.last_seen_ms)
                }
                _ => None,
            }
        };
        match last_seen {
            Some(t) => live.push((key, t)),
            None => stale.push(key),
        }
    }
    if !stale.is_empty() {
        let mut ix = events::index();
        for key in stale {
            ix.unregister_if(db, &key, user);
        }
    }
    Ok(live)
}

/// Deletes `key` as `DEL` would (notified, replicated as `DEL`), with `why` as the reason its
/// `session:deleted` message gives. Returns 1 when a key was deleted.
fn delete(ctx: *mut raw::RedisModuleCtx, key: &[u8], why: Gone) -> Result<i64, RedisError> {
    let name = OwnedString::new(ctx, key).ok_or_else(errors::write_failed)?;
    let reply = deleting_as(why, || call(ctx, c"DEL", &[name.ptr()]))?;
    Ok(reply.integer())
}

/// A reply of `RedisModule_Call`, freed on drop.
struct CallReply(*mut raw::RedisModuleCallReply);

impl CallReply {
    fn kind(&self) -> c_int {
        match unsafe { raw::RedisModule_CallReplyType } {
            // SAFETY: a live reply.
            Some(ty) => unsafe { ty(self.0) },
            None => raw::REDISMODULE_REPLY_ERROR as c_int,
        }
    }

    fn is_error(&self) -> bool {
        self.kind() == raw::REDISMODULE_REPLY_ERROR as c_int
    }

    fn integer(&self) -> i64 {
        let int = unsafe { raw::RedisModule_CallReplyInteger };
        match int {
            // SAFETY: a live integer reply.
            Some(int) if self.kind() == raw::REDISMODULE_REPLY_INTEGER as c_int => unsafe {
                int(self.0)
            },
            _ => 0,
        }
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeCallReply } {
            // SAFETY: returned by RedisModule_Call, freed once.
            unsafe { free(self.0) };
        }
    }
}

/// Runs a Redis command on two or one key arguments, replicated as it is (the `!` flag), with
/// its own keyspace notifications.
fn call(
    ctx: *mut raw::RedisModuleCtx,
    command: &CStr,
    args: &[*mut raw::RedisModuleString],
) -> Result<CallReply, RedisError> {
    let call = api!(RedisModule_Call)?;
    // SAFETY: the format names exactly the strings passed; Redis copies what it keeps.
    let reply = unsafe {
        match args {
            [a] => call(ctx, command.as_ptr(), c"!s".as_ptr(), *a),
            [a, b] => call(ctx, command.as_ptr(), c"!ss".as_ptr(), *a, *b),
            _ => std::ptr::null_mut(),
        }
    };
    if reply.is_null() {
        Err(errors::write_failed())
    } else {
        Ok(CallReply(reply))
    }
}
