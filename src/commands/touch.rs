//! `SESSION.TOUCH key [IDLE s] [MAXAGE s] [XX] [USER u] [SET n f v ...] [DEL n f ...]
//!  [EVENT item [CATEGORIES n c ...]] [AT ms]`

use redis_module::raw;
use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::{params_args, parse_touch};
use session_core::mem::hints;
use session_core::session::effective_time;
use session_core::{Session, SketchParams, Touch, TouchOutcome};
use smallvec::SmallVec;

use super::users;
use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::{self, from_core};
use crate::ffi::{self, KeyValue, Name, OwnedString, Reply};
use crate::stats;

pub fn touch(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let touch = parse_touch(&inv.args[2..]).map_err(from_core)?;
    let trusted = inv.trusted();
    if touch.params.is_some() && !trusted {
        return Err(errors::reserved("PARAMS"));
    }
    let wall = ffi::wall_ms();
    let now = effective_time(touch.at_ms, wall, trusted).map_err(from_core)?;
    let settings = if trusted {
        config::trusted_settings()
    } else {
        config::settings()
    };

    // Where this session lived at its last touch: its lines load while Redis finds the key.
    let hint = hints::tag(inv.args[1]);
    hints::prefetch(hint);
    let mut key = super::open_session(inv, 1, true)?;
    let index_user;
    let fields;
    let (value, expiry) = key.value_and_expiry::<Session>(session_type())?;
    let (outcome, facts) = match value {
        KeyValue::Ours(session) => {
            session.prefetch();
            let prep = session.prepare_event(&touch);
            session.check_touch(&touch, &settings).map_err(from_core)?;
            // Redis updates the expiry while the sketch lines requested above arrive.
            expiry.set_abs(session.deadline_after(&touch, now))?;
            let outcome = session.apply_touch_prepared(&touch, now, false, &settings.sketch, prep);
            index_user = users::index_user(touch.user, session);
            hints::remember(hint, &session.hot_spans());
            fields = with_fields(&touch, session, trusted);
            (outcome, Facts::of(inv, session, false, now))
        }
        KeyValue::Empty if touch.xx => return Ok(RedisValue::Null),
        KeyValue::Empty => {
            let mut session = Session::for_touch(&touch, now, &settings);
            session.check_touch(&touch, &settings).map_err(from_core)?;
            let outcome = session.apply_touch(&touch, now, true, &settings.sketch);
            let facts = Facts::of(inv, &session, true, now);
            index_user = users::index_user(touch.user, &session);
            fields = with_fields(&touch, &session, trusted);
            key.set_value(session_type(), session)?;
            // a new value has no expiry yet
            key.set_abs_expire(outcome.deadline_ms)?;
            (outcome, facts)
        }
    };

    // Site-wide analytics (before the effect: a sizing change replicates ahead of the TOUCH).
    if let Some(item) = touch.event {
        super::record_analytics(inv, inv.args[1], item, now);
    }
    // Effects, not the request: explicit lifetimes, sketch sizing and time, so that a replica or
    // an AOF replay builds the same value whatever its own configuration and clock.
    replicate_effect(inv, &touch, &facts, outcome.created_activity.as_ref(), now);
    ffi::notify(inv.ctx, c"session.touch", inv.argv[1]);
    // The per-user index, and the per-user maximum (whose evictions replicate after the touch).
    if let Some((user, last_seen_ms)) = index_user {
        users::touched(inv, &user, last_seen_ms);
    }

    stats::add(&stats::SESSIONS_CREATED, u64::from(facts.is_new));
    stats::add(&stats::EVENTS, u64::from(touch.event.is_some()));
    reply(inv, &outcome, &facts, wall, fields.as_deref());
    Ok(RedisValue::NoReply)
}

/// Replicates the touch as its effects: the call's own arguments (by reference) plus whatever
/// it left to this server's configuration or clock: `IDLE` and `MAXAGE` when it created the
/// session, `PARAMS` when it created the sketches, and `AT`. Replicas and the AOF then rebuild
/// exactly this value. The common case adds two strings, one of them a shared constant.
fn replicate_effect(
    inv: &Invocation,
    touch: &Touch,
    facts: &Facts,
    created: Option<&SketchParams>,
    now: i64,
) {
    let ctx = inv.ctx;
    if !crate::propagation::needed() {
        ffi::count_change(ctx);
        return;
    }
    // A session keeps the IDLE and MAXAGE it was created with, so only a creating touch has to
    // spell out what it took from this server's configuration.
    let mut extra: Vec<Option<OwnedString>> = Vec::new();
    if facts.is_new && touch.idle_s.is_none() {
        extra.push(OwnedString::new(ctx, b"IDLE"));
        extra.push(OwnedString::from_i64(ctx, i64::from(facts.idle_s)));
    }
    if facts.is_new && touch.maxage_s.is_none() {
        extra.push(OwnedString::new(ctx, b"MAXAGE"));
        extra.push(OwnedString::from_i64(ctx, i64::from(facts.maxage_s)));
    }
    if let Some(p) = created {
        // `created` is only set from the configuration when the touch named no PARAMS.
        extra.push(OwnedString::new(ctx, b"PARAMS"));
        for value in params_args(p) {
            extra.push(OwnedString::new(ctx, value.as_bytes()));
        }
    }
    let at = match touch.at_ms {
        Some(_) => None,
        None => match OwnedString::from_i64(ctx, now) {
            Some(s) => Some(s),
            None => return, // out of memory creating a string: Redis is failing anyway
        },
    };
    let mut argv: SmallVec<[*mut raw::RedisModuleString; 24]> = SmallVec::new();
    argv.extend_from_slice(&inv.argv[1..]);
    for s in &extra {
        match s {
            Some(s) => argv.push(s.ptr()),
            None => return,
        }
    }
    if let Some(at) = &at {
        argv.push(ffi::keyword_at());
        argv.push(at.ptr());
    }
    ffi::replicate_strings(ctx, c"SESSION.TOUCH", &argv);
}

/// What the reply and the replicated effect need from the session after the touch.
struct Facts {
    is_new: bool,
    idle_s: u32,
    maxage_s: u32,
    events: u64,
    unique: u64,
    pending: usize,
}

impl Facts {
    fn of(inv: &Invocation, session: &Session, is_new: bool, now: i64) -> Facts {
        Facts {
            is_new,
            idle_s: session.idle_s,
            maxage_s: session.maxage_s,
            events: session.events(),
            unique: session.unique(),
            pending: crate::commands::pending_count(inv.ctx, inv.args[1], session, now),
        }
    }
}

fn reply(
    inv: &Invocation,
    outcome: &TouchOutcome,
    facts: &Facts,
    wall: i64,
    fields: Option<&[Option<Vec<u8>>]>,
) {
    let r = Reply::new(inv.ctx);
    r.map(if fields.is_some() { 8 } else { 7 });
    r.named_int(Name::New, i64::from(facts.is_new));
    r.named_int(Name::Events, facts.events as i64);
    r.named_int(Name::Unique, facts.unique as i64);
    r.named_int(Name::SeenBefore, i64::from(outcome.seen_before));
    r.named_int(Name::IdleMs, outcome.idle_ms);
    r.named_int(Name::TtlMs, (outcome.deadline_ms - wall).max(0));
    r.named_int(Name::Pending, facts.pending as i64);
    if let Some(fields) = fields {
        // A flat array in both protocols (RESP3 would otherwise be a map that clients turn into an
        // object keyed by field name): `name value ...` for all fields, `value ...` (nil where
        // missing) for named ones.
        r.bulk(b"fields");
        r.array(fields.len());
        for item in fields {
            match item {
                Some(bytes) => r.bulk(bytes),
                None => r.null(),
            }
        }
    }
}

/// The fields `WITHFIELDS` asks for, after the touch: `name, value, ...` for all of them, one
/// value (or nil) per named field. None without `WITHFIELDS`, and for the primary's or the AOF's
/// touches, whose reply nobody reads.
fn with_fields(touch: &Touch, session: &Session, trusted: bool) -> Option<Vec<Option<Vec<u8>>>> {
    let names = touch.with_fields?;
    if trusted {
        return Some(Vec::new());
    }
    Some(if names.is_empty() {
        session
            .fields
            .iter()
            .flat_map(|(n, v)| [Some(n.to_vec()), Some(v.to_vec())])
            .collect()
    } else {
        names
            .iter()
            .map(|n| session.fields.get(n).map(<[u8]>::to_vec))
            .collect()
    })
}
