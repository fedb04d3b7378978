//! `SESSION.TOUCH key [IDLE s] [MAXAGE s] [XX] [USER u] [SET n f v ...] [DEL n f ...]
//!  [EVENT item [CATEGORIES n c ...]] [AT ms]`

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::args::{parse_touch, touch_effect_args};
use session_core::session::effective_time;
use session_core::{Session, TouchOutcome};

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::from_core;
use crate::ffi::{self, Key, KeyValue, Reply};
use crate::stats;

pub fn touch(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let touch = parse_touch(&inv.args[2..]).map_err(from_core)?;
    let trusted = inv.trusted();
    let wall = ffi::wall_ms();
    let now = effective_time(touch.at_ms, wall, trusted).map_err(from_core)?;
    let settings = if trusted {
        config::trusted_settings()
    } else {
        config::settings()
    };

    let mut key = Key::open(inv.ctx, inv.argv[1], true)?;
    let (outcome, facts) = match key.value::<Session>(session_type())? {
        KeyValue::Ours(session) => {
            session.check_touch(&touch, &settings).map_err(from_core)?;
            let outcome = session.apply_touch(&touch, now, false, &settings.sketch);
            (outcome, Facts::of(session, false))
        }
        KeyValue::Empty if touch.xx => return Ok(RedisValue::Null),
        KeyValue::Empty => {
            let mut session = Session::for_touch(&touch, now, &settings);
            session.check_touch(&touch, &settings).map_err(from_core)?;
            let outcome = session.apply_touch(&touch, now, true, &settings.sketch);
            let facts = Facts::of(&session, true);
            key.set_value(session_type(), session)?;
            (outcome, facts)
        }
    };
    key.set_abs_expire(outcome.deadline_ms)?;
    let mut facts = facts;
    if let KeyValue::Ours(session) = key.value::<Session>(session_type())? {
        facts.pending = crate::commands::pending_count(session, now);
    }

    // Effects, not the request: explicit lifetimes, sketch sizing and time, so that a replica or
    // an AOF replay builds the same value whatever its own configuration and clock.
    let effect = touch_effect_args(
        &touch,
        facts.idle_s,
        facts.maxage_s,
        outcome.created_activity.as_ref(),
        now,
    );
    let mut replicated: Vec<&[u8]> = Vec::with_capacity(effect.len() + 1);
    replicated.push(inv.args[1]);
    replicated.extend(effect.iter().map(Vec::as_slice));
    inv.replicate("SESSION.TOUCH", &replicated);
    ffi::notify(inv.ctx, c"session.touch", inv.argv[1]);

    stats::add(&stats::SESSIONS_CREATED, u64::from(facts.is_new));
    stats::add(&stats::EVENTS, u64::from(touch.event.is_some()));
    reply(inv, &outcome, &facts, wall);
    Ok(RedisValue::NoReply)
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
    fn of(session: &Session, is_new: bool) -> Facts {
        Facts {
            is_new,
            idle_s: session.idle_s,
            maxage_s: session.maxage_s,
            events: session.events(),
            unique: session.unique(),
            pending: 0,
        }
    }
}

fn reply(inv: &Invocation, outcome: &TouchOutcome, facts: &Facts, wall: i64) {
    let r = Reply::new(inv.ctx);
    r.map(7);
    r.entry_int("new", i64::from(facts.is_new));
    r.entry_int("events", facts.events as i64);
    r.entry_int("unique", facts.unique as i64);
    r.entry_int("seen_before", i64::from(outcome.seen_before));
    r.entry_int("idle_ms", outcome.idle_ms);
    r.entry_int("ttl_ms", (outcome.deadline_ms - wall).max(0));
    r.entry_int("pending", facts.pending as i64);
}
