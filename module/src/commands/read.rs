//! Read-only commands: `SESSION.GET key [field ...]` and `SESSION.INFO key`. Neither renews the TTL.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::{info, Session};

use crate::command::Invocation;
use crate::datatype::session_type;
use crate::ffi::{Key, KeyValue, Reply};

pub fn get(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let key = Key::open(inv.ctx, inv.argv[1], false)?;
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
        for name in wanted {
            match session.fields.get(name) {
                Some(value) => r.bulk(value),
                None => r.null(),
            }
        }
    }
    Ok(RedisValue::NoReply)
}

pub fn info(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = Key::open(inv.ctx, inv.argv[1], false)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Null);
    };
    let doc = info::session_info(session).to_string();
    Ok(RedisValue::StringBuffer(doc.into_bytes()))
}
