//! `SESSION.TOUCH key [IDLE s] [MAXAGE s] [XX] [USER u] [SET n f v ...] [DEL n f ...] [AT ms]`

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::args::{parse_touch, touch_effect_args};
use session_core::session::effective_time;
use session_core::{Session, TouchOutcome};

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::from_core;
use crate::ffi::{self, Key, KeyValue, Reply};

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

    let key = Key::open(inv.ctx, inv.argv[1], true)?;
    let (outcome, is_new, idle_s, maxage_s, events) = match key.value::<Session>(session_type())? {
        KeyValue::Ours(session) => {
            session.check_touch(&touch, &settings).map_err(from_core)?;
            let outcome = session.apply_touch(&touch, now, false);
            (
                outcome,
                false,
                session.idle_s,
                session.maxage_s,
                session.activity.events,
            )
        }
        KeyValue::Empty if touch.xx => return Ok(RedisValue::Null),
        KeyValue::Empty => {
            let mut session = Session::for_touch(&touch, now, &settings);
            session.check_touch(&touch, &settings).map_err(from_core)?;
            let outcome = session.apply_touch(&touch, now, true);
            let facts = (
                outcome,
                true,
                session.idle_s,
                session.maxage_s,
                session.activity.events,
            );
            key.set_value(session_type(), session)?;
            facts
        }
    };
    key.set_abs_expire(outcome.deadline_ms)?;

    let effect = touch_effect_args(&touch, idle_s, maxage_s, now);
    let mut replicated: Vec<&[u8]> = Vec::with_capacity(effect.len() + 1);
    replicated.push(inv.args[1]);
    replicated.extend(effect.iter().map(Vec::as_slice));
    inv.replicate("SESSION.TOUCH", &replicated);
    ffi::notify(inv.ctx, c"session.touch", inv.argv[1]);

    reply(inv, &outcome, is_new, events, wall);
    Ok(RedisValue::NoReply)
}

fn reply(inv: &Invocation, outcome: &TouchOutcome, is_new: bool, events: u64, wall: i64) {
    let r = Reply::new(inv.ctx);
    r.map(7);
    r.entry_int("new", i64::from(is_new));
    r.entry_int("events", events as i64);
    r.entry_int("unique", 0);
    r.entry_int("seen_before", 0);
    r.entry_int("idle_ms", outcome.idle_ms);
    r.entry_int("ttl_ms", (outcome.deadline_ms - wall).max(0));
    r.entry_int("pending", 0);
}
