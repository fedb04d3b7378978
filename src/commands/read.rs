//! Read-only commands: `SESSION.GET key [field ...]` and `SESSION.INFO key`. Neither renews the TTL.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::info;
use session_core::Session;

use crate::command::Invocation;
use crate::datatype::session_type;
use crate::ffi::{self, KeyValue, Reply};

pub fn get(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let mut key = super::open_session(inv, 1, false)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Null);
    };
    let r = Reply::new(inv.ctx);
    let wanted = &inv.args[2..];
    if wanted.is_empty() {
        r.map(session.fields.len());
        for (name, value) in session.fields.iter() {
            r.bulk(name);
            r.bulk(value);
        }
    } else {
        r.array(wanted.len());
        for value in session.fields.get_many(wanted) {
            match value {
                Some(value) => r.bulk(value),
                None => r.null(),
            }
        }
    }
    Ok(RedisValue::NoReply)
}

/// `SESSION.SEEN key item [item ...]`: 1 = probably seen, 0 = certainly not.
pub fn seen(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let mut key = super::open_session(inv, 1, false)?;
    let activity = match key.value::<Session>(session_type())? {
        KeyValue::Ours(session) => session.activity.as_ref(),
        KeyValue::Empty => None,
    };
    let items = &inv.args[2..];
    let r = Reply::new(inv.ctx);
    r.array(items.len());
    for item in items {
        r.int(i64::from(activity.is_some_and(|a| a.has_seen(item))));
    }
    Ok(RedisValue::NoReply)
}

pub fn info(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let mut key = super::open_session(inv, 1, false)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Null);
    };
    let doc = info::session_info(session, ffi::wall_ms()).to_string();
    Ok(RedisValue::StringBuffer(doc.into_bytes()))
}
