//! `SESSION.UPGRADE key [FIELD name]`: turns a legacy string session (another store's document at
//! the same key, connect-redis's JSON say) into a native session holding it in one field, with
//! its remaining time to live, so a site switches stores without logging anyone out.
//!
//! Replies 1 when it upgraded, 0 when the key already holds a session, nil when it is missing;
//! `WRONGTYPE` for any other type. Replicated as `DEL key` + `SESSION.LOAD key payload` (the
//! exact value and absolute expiry), never as the request, whose result depends on the clock.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::parse_upgrade;
use session_core::session::MAX_LIFETIME_S;
use session_core::{codec, Error, Session};

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::{self, from_core};
use crate::ffi::{self, Key, KeyValue, OwnedString};

pub fn upgrade(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let field = parse_upgrade(&inv.args[2..]).map_err(from_core)?;
    let settings = config::settings();
    if field.len() > settings.max_field_size {
        return Err(from_core(Error::FieldTooLarge {
            limit: settings.max_field_size,
        }));
    }
    let mut key = Key::open(inv.ctx, inv.argv[1], true)?;
    match key.value::<Session>(session_type()) {
        Ok(KeyValue::Ours(_)) => return Ok(RedisValue::Integer(0)),
        Ok(KeyValue::Empty) => return Ok(RedisValue::Null),
        Err(_) => {}
    }
    let Some((value, ttl_ms)) = key.string_and_ttl()? else {
        return Err(RedisError::WrongType);
    };
    if field.len() + value.len() > settings.max_session_size {
        return Err(from_core(Error::SessionTooLarge {
            limit: settings.max_session_size,
        }));
    }
    let now = ffi::wall_ms();
    // The remaining TTL becomes the idle timeout (rounded up to the second a session stores), so
    // the session lives at least as long as the string would have; the maximum age never cuts it.
    let (idle_s, maxage_s) = match ttl_ms {
        Some(ms) => {
            let s = ((ms.max(1) + 999) / 1000).clamp(1, i64::from(MAX_LIFETIME_S)) as u32;
            (s, s.max(settings.default_maxage_s))
        }
        None => (settings.default_idle_s, settings.default_maxage_s),
    };
    let mut session = Session::new(now, idle_s, maxage_s);
    session.fields.set(field, &value);
    let payload = codec::encode(&session);
    let deadline = session.deadline_ms();
    key.set_value(session_type(), session)?;
    key.set_abs_expire(deadline)?;
    drop(key);
    let payload = OwnedString::new(inv.ctx, &payload).ok_or_else(errors::write_failed)?;
    ffi::replicate_strings(inv.ctx, c"DEL", &[inv.argv[1]]);
    ffi::replicate_strings(inv.ctx, c"SESSION.LOAD", &[inv.argv[1], payload.ptr()]);
    ffi::notify(inv.ctx, c"session.upgrade", inv.argv[1]);
    Ok(RedisValue::Integer(1))
}
