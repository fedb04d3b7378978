//! `SESSION.LOAD key payload`: stores a session from its saved form (the codec's bytes). The AOF
//! rewrite writes sessions this way; it also serves tools that copy sessions between servers. A
//! payload that does not decode is refused and changes nothing.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::{codec, Error, Session};

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::from_core;
use crate::ffi::{self, Key};

pub fn load(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    let session = codec::decode(inv.args[2]).map_err(from_core)?;
    if !inv.trusted() {
        check_limits(&session).map_err(from_core)?;
    }
    if !inv.trusted() && session.fields_bytes() > config::settings().max_session_size {
        return Err(from_core(Error::SessionTooLarge {
            limit: config::settings().max_session_size,
        }));
    }
    let deadline = session.deadline_ms();
    // A Vec, not the session's Option<Box<[u8]>>: dropping a `None` box slice lets the optimizer
    // test its (unwritten) length first, which valgrind reports as a use of uninitialised memory.
    let user: Option<Vec<u8>> = session.user.as_deref().map(<[u8]>::to_vec);
    let last_seen_ms = session.last_seen_ms;
    let mut key = Key::open(inv.ctx, inv.argv[1], true)?;
    key.value::<Session>(session_type())?; // WRONGTYPE on a key of another type
    key.set_value(session_type(), session)?;
    key.set_abs_expire(deadline)?;
    drop(key);
    if let Some(user) = &user {
        let db = crate::events::selected_db(inv.ctx);
        crate::events::index().register(db, inv.args[1], user, last_seen_ms);
    }
    inv.context().replicate_verbatim();
    ffi::notify(inv.ctx, c"session.load", inv.argv[1]);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// Every limit TOUCH and ENRICH enforce, on a whole session (a client's LOAD; the AOF and the
/// primary stay trusted). The saved form's hard ranges are the decoder's (`codec::decode`).
fn check_limits(session: &Session) -> Result<(), Error> {
    let settings = config::settings();
    let limit = settings.max_field_size;
    let too_big = |b: &[u8]| b.len() > limit;
    if session.fields.len() > settings.max_fields {
        return Err(Error::TooManyFields {
            limit: settings.max_fields,
        });
    }
    let mut interests = session
        .activity
        .iter()
        .flat_map(|a| a.interests.entries.iter().map(|e| &e.category[..]));
    // field names by the per-field limit; values by the session's total (max-session-size, below:
    // REPLACE writes values up to it)
    if session.fields.iter().any(|(n, _)| too_big(n))
        || session.user.as_deref().is_some_and(too_big)
        || session.groups.iter().any(|(g, _)| too_big(g))
        || interests.any(too_big)
    {
        return Err(Error::FieldTooLarge { limit });
    }
    if session
        .calculated
        .as_ref()
        .is_some_and(|c| too_big(&c.attrs))
    {
        return Err(Error::AttrsTooLarge { limit });
    }
    if session.groups.len() > config::max_groups() {
        return Err(Error::TooManyGroups {
            limit: config::max_groups(),
        });
    }
    Ok(())
}
