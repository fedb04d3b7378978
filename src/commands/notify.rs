//! Group notifications: `SESSION.NOTIFYGROUP` publishes once to a group in the registry (O(1) in
//! the number of members); `SESSION.INBOX` delivers a session's pending ones exactly once.
//!
//! Tenancy (`crate::acl`): NOTIFYGROUP needs publish permission on `session:notify:<group>` and
//! records its ACL user with the notification; INBOX and TOUCH's `pending` count only
//! notifications whose publisher may write the session's key.

use redis_module::{RedisError, RedisResult, RedisValue};
use serde_json::json;
use session_core::codec::args::{parse_ack, parse_inbox, parse_notify, thresholds_args};
use session_core::json::bytes_value;
use session_core::notify::{
    self, acknowledge, pending_count_where, pending_where, unread_where, AckTarget, Delivery,
    JoinWindow,
};
use session_core::registry::Published;
use session_core::session::effective_time;
use session_core::Session;

use crate::acl;
use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::{self, from_core};
use crate::ffi::{self, KeyValue, Reply};
use crate::registry;
use crate::stats;

pub fn notifygroup(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    let n = parse_notify(&inv.args[1..]).map_err(from_core)?;
    let trusted = inv.trusted();
    if n.seq.is_some() && !trusted {
        return Err(errors::reserved("SEQ"));
    }
    if n.publisher.is_some() && !trusted {
        return Err(errors::reserved("PUBLISHER"));
    }
    let mut channel = b"session:notify:".to_vec();
    channel.extend_from_slice(n.group);
    // Tenancy: publishing into a group is publishing on its channel; the publisher is recorded so
    // that the notification reaches only sessions it may write (derived segments included).
    let publisher = match n.publisher {
        Some(p) => Some(p.to_vec()),
        None => acl::current_user_name(inv.ctx),
    };
    if !acl::Caller::current(inv.ctx).may_publish(inv.ctx, &channel) {
        return Err(acl::no_perm_channel());
    }
    let now = effective_time(n.at_ms, ffi::wall_ms(), trusted).map_err(from_core)?;
    // The join restriction, NOW resolved to the publication's time; an empty one is refused here,
    // before anything changes.
    let window = n.window(now).map_err(from_core)?;
    let expires = n
        .expire_at_ms
        .unwrap_or_else(|| now + n.ttl_s.unwrap_or_else(config::notify_ttl) * 1000);
    let max_len = n.max_len.unwrap_or_else(config::max_notifications);
    if !trusted {
        let limit = config::settings().max_field_size;
        if [n.group, n.id, n.payload].iter().any(|b| b.len() > limit) {
            return Err(from_core(session_core::Error::FieldTooLarge { limit }));
        }
    }
    // What the primary or the AOF published is applied whatever this server's limits say.
    let limits = if trusted {
        session_core::registry::Limits::NONE
    } else {
        config::registry_limits()
    };
    let mut registry = registry::lock();
    let published = registry
        .publish(
            n.group, n.id, n.payload, now, expires, max_len, n.seq, limits,
        )
        .map_err(from_core)?;
    let seq = n.seq.unwrap_or(registry.last_seq);
    if published != Published::Duplicate {
        registry.set_publisher(n.group, seq, publisher.as_deref());
        if window.is_restricted() {
            registry.set_window(n.group, seq, window);
        }
    }
    drop(registry);
    if published == Published::Duplicate {
        return Ok(RedisValue::Integer(0));
    }

    // Effects: absolute expiry, the bound and the time, so replicas purge and trim identically.
    let (expires, max_len, now_text) = (expires.to_string(), max_len.to_string(), now.to_string());
    let seq = seq.to_string();
    let mut effect: Vec<&[u8]> = vec![
        n.group,
        n.id,
        n.payload,
        b"EXPIREAT",
        expires.as_bytes(),
        b"MAXLEN",
        max_len.as_bytes(),
        b"AT",
        now_text.as_bytes(),
        b"SEQ",
        seq.as_bytes(),
    ];
    if let Some(p) = &publisher {
        effect.push(b"PUBLISHER");
        effect.push(p);
    }
    // the restriction as absolute times (NOW is the publication's `AT`)
    let (after, before) = (window.after.to_string(), window.before.to_string());
    if window.after != JoinWindow::ANY.after {
        effect.extend([&b"JOINEDAFTER"[..], after.as_bytes()]);
    }
    if window.before != JoinWindow::ANY.before {
        effect.extend([&b"JOINEDBEFORE"[..], before.as_bytes()]);
    }
    inv.replicate("SESSION.NOTIFYGROUP", &effect);
    if !inv.loading() {
        let message = json!({
            "group": bytes_value(n.group),
            "id": bytes_value(n.id),
            "payload": bytes_value(n.payload),
        });
        ffi::publish(inv.ctx, &channel, message.to_string().as_bytes());
    }
    stats::add(&stats::NOTIFICATIONS_PUBLISHED, 1);
    Ok(RedisValue::Integer(1))
}

pub fn inbox(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let req = parse_inbox(&inv.args[2..]).map_err(from_core)?;
    if req.thresholds.is_some() && !inv.trusted() {
        return Err(errors::reserved("THRESHOLDS"));
    }
    let now = effective_time(req.at_ms, ffi::wall_ms(), inv.trusted()).map_err(from_core)?;
    // Segment membership follows the session's current activity under these rules; the primary's
    // rules travel with the replicated form, so a replica delivers the same notifications.
    let rules = req.thresholds.unwrap_or_else(config::thresholds);
    let mut key = super::open_session(inv, 1, !req.unread)?;
    let r = Reply::new(inv.ctx);
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        r.array(0);
        return Ok(RedisValue::NoReply);
    };
    let registry = registry::lock();
    let limit = req.count.unwrap_or(usize::MAX);
    // Tenancy: only what a publisher allowed to write this session's key published is delivered.
    let mut publishers = acl::Publishers::new(inv.ctx, inv.args[1]);
    if req.unread {
        let unread = unread_where(session, &registry.groups, now, &rules, limit, |n| {
            publishers.reaches(n.publisher.as_deref())
        });
        r.array(unread.len());
        for (d, delivered) in &unread {
            write_notification(&r, d, Some(*delivered));
        }
        return Ok(RedisValue::NoReply);
    }
    // Stops at COUNT; work follows the session's own groups, never the registry's size.
    let due = pending_where(session, &registry.groups, now, &rules, limit, |n| {
        publishers.reaches(n.publisher.as_deref())
    });

    r.array(due.len());
    for d in &due {
        write_notification(&r, d, None);
    }
    let acknowledged = acknowledge(session, &due);
    let delivered = due.len();
    drop(due);
    drop(registry);
    if acknowledged {
        let count = delivered.to_string();
        let now_text = now.to_string();
        let t = thresholds_args(&rules);
        inv.replicate(
            "SESSION.INBOX",
            &[
                inv.args[1],
                b"COUNT",
                count.as_bytes(),
                b"AT",
                now_text.as_bytes(),
                b"THRESHOLDS",
                t[0].as_bytes(),
                t[1].as_bytes(),
                t[2].as_bytes(),
                t[3].as_bytes(),
            ],
        );
        ffi::notify(inv.ctx, c"session.inbox", inv.argv[1]);
        stats::add(&stats::NOTIFICATIONS_DELIVERED, delivered as u64);
    }
    Ok(RedisValue::NoReply)
}

/// One notification of an INBOX reply (a map; PEEK / UNREAD adds whether it was delivered).
fn write_notification(r: &Reply, d: &Delivery, delivered: Option<bool>) {
    let n = d.notification;
    r.map(if delivered.is_some() { 5 } else { 4 });
    r.bulk(b"group");
    r.bulk(d.group);
    r.bulk(b"id");
    r.bulk(&n.id);
    r.bulk(b"payload");
    r.bulk(&n.payload);
    r.entry_int("published_ms", n.published_ms);
    if let Some(delivered) = delivered {
        r.entry_int("delivered", i64::from(delivered));
    }
}

/// `SESSION.ACK key group (UPTO id | IDS n id ...) [AT ms]`: marks delivered notifications read
/// (XACK's rule: ids not delivered to the session, unknown or expired are ignored). Replicated as
/// itself (`IDS`: only the ids it marked) with the time, after a real change only.
pub fn ack(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 5 {
        return Err(RedisError::WrongArity);
    }
    let req = parse_ack(&inv.args[2..]).map_err(from_core)?;
    let now = effective_time(req.at_ms, ffi::wall_ms(), inv.trusted()).map_err(from_core)?;
    let mut key = super::open_session(inv, 1, true)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Integer(0));
    };
    let registry = registry::lock();
    let Some(group) = registry.groups.get(req.group) else {
        return Ok(RedisValue::Integer(0));
    };
    let mut publishers = acl::Publishers::new(inv.ctx, inv.args[1]);
    let marked = notify::ack(session, req.group, group, &req.targets, now, |n| {
        publishers.reaches(n.publisher.as_deref())
    });
    let marked: Vec<Vec<u8>> = marked.into_iter().map(<[u8]>::to_vec).collect();
    drop(registry);
    if marked.is_empty() {
        return Ok(RedisValue::Integer(0));
    }
    let count = marked.len().to_string();
    let now_text = now.to_string();
    let mut effect: Vec<&[u8]> = Vec::with_capacity(marked.len() + 6);
    effect.extend([inv.args[1], req.group]);
    match req.targets.first() {
        // UPTO moves the mark itself (not only the ids it counted): replicated as given.
        Some(AckTarget::Upto(id)) => effect.extend([&b"UPTO"[..], id]),
        _ => {
            effect.extend([&b"IDS"[..], count.as_bytes()]);
            effect.extend(marked.iter().map(Vec::as_slice));
        }
    }
    effect.extend([&b"AT"[..], now_text.as_bytes()]);
    let n = marked.len();
    inv.replicate("SESSION.ACK", &effect);
    ffi::notify(inv.ctx, c"session.ack", inv.argv[1]);
    Ok(RedisValue::Integer(n as i64))
}

/// Undelivered live notifications of `session` at `key` that reach it (the `pending` field of
/// TOUCH's reply): a lookup per group of the session (explicit ones, and the segments its current
/// activity qualifies for under the configured rules), whatever the registry holds, and one binary
/// search per distinct publisher of each such group; each publisher's ACL user is checked once
/// per call (`acl::Publishers` caches it), however many notifications it published. Read state
/// does not enter: only delivered notifications can be acknowledged, so every undelivered one is
/// unread.
pub fn pending_count(
    ctx: *mut redis_module::raw::RedisModuleCtx,
    key: &[u8],
    session: &Session,
    now_ms: i64,
) -> usize {
    if !registry::has_groups() {
        return 0;
    }
    let rules = config::thresholds();
    let registry = registry::lock();
    let mut publishers = acl::Publishers::new(ctx, key);
    pending_count_where(session, &registry.groups, now_ms, &rules, |p| {
        publishers.reaches(p)
    })
}

/// `SESSION.GROUP LIST`: the groups' names (a group exists while it holds a notification).
pub fn group_list(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let registry = registry::lock();
    // Only the names the caller may read, as if they were keys.
    let caller = acl::Caller::current(inv.ctx);
    let names: Vec<&[u8]> = registry
        .groups
        .keys()
        .map(|name| &**name)
        .filter(|name| caller.may_read(inv.ctx, name))
        .collect();
    let r = Reply::new(inv.ctx);
    r.array(names.len());
    for name in names {
        r.bulk(name);
    }
    Ok(RedisValue::NoReply)
}

/// `SESSION.GROUP INFO group`: its live notifications, memory and sequence range. O(1) apart
/// from the memory sum, O(notifications of the group).
pub fn group_info(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    acl::require_read_name(inv.ctx, inv.args[2])?;
    let registry = registry::lock();
    let Some(g) = registry.groups.get(inv.args[2]) else {
        return Err(errors::no_such_group());
    };
    let (first, last) = match (g.notifications().front(), g.notifications().back()) {
        (Some(f), Some(l)) => (f.seq, l.seq),
        _ => (0, 0),
    };
    let r = Reply::new(inv.ctx);
    r.map(4);
    r.entry_int("notifications", g.notifications().len() as i64);
    r.entry_int("memory", g.memory() as i64);
    r.entry_int("first_seq", i64::try_from(first).unwrap_or(i64::MAX));
    r.entry_int("last_seq", i64::try_from(last).unwrap_or(i64::MAX));
    Ok(RedisValue::NoReply)
}

/// `SESSION.GROUP DROP group`: removes the group and its notifications (replicated as itself).
/// Members keep their cursors: sequence numbers only grow, so a group published to again later
/// delivers its new notifications, and never an old one twice.
pub fn group_drop(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    acl::require_write_name(inv.ctx, inv.args[2])?;
    let dropped = registry::lock().drop_group(inv.args[2], ffi::wall_ms());
    if dropped {
        inv.replicate("SESSION.GROUP", &inv.args[1..]);
    }
    Ok(RedisValue::Integer(i64::from(dropped)))
}

/// `SESSION.GROUP HELP`.
pub fn group_help(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    Ok(help(&[
        "SESSION.GROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LIST",
        "    Return the names of the groups that hold live notifications.",
        "INFO <group>",
        "    Return the group's notification count, memory and first and last sequence numbers.",
        "DROP <group>",
        "    Remove the group and all its notifications.",
        "HELP",
        "    Print this help.",
    ]))
}

/// A HELP reply: one simple string a line, as Redis's own containers (`OBJECT HELP`) answer.
pub fn help(lines: &[&str]) -> RedisValue {
    RedisValue::Array(
        lines
            .iter()
            .map(|l| RedisValue::SimpleString((*l).to_string()))
            .collect(),
    )
}
