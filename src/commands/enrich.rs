//! `SESSION.ENRICH key [ATTRS json] [JOIN n g ... [NEWONLY]] [LEAVE n g ...] [AT ms]`: computes and stores
//! the session's calculated data and replies with it as JSON. Nil for a missing session (nothing is
//! created); the TTL is not renewed (enrichment is not user activity).

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::{enrich_effect_args, parse_enrich};
use session_core::enrich;
use session_core::session::effective_time;
use session_core::Session;

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::from_core;
use crate::ffi::{self, KeyValue};
use crate::stats;

pub fn enrich(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let req = parse_enrich(&inv.args[2..]).map_err(from_core)?;
    // Joining a group reads its notifications: the caller must be able to read the group's name.
    if !req.join.is_empty() {
        let caller = crate::acl::Caller::current(inv.ctx);
        if req.join.iter().any(|g| !caller.may_read(inv.ctx, g)) {
            return Err(crate::acl::no_perm_name());
        }
    }
    let trusted = inv.trusted();
    let now = effective_time(req.at_ms, ffi::wall_ms(), trusted).map_err(from_core)?;
    let rules = req.thresholds.unwrap_or_else(config::thresholds);
    let (max_attrs, max_groups) = if trusted {
        (usize::MAX, usize::MAX)
    } else {
        (config::settings().max_field_size, config::max_groups())
    };

    let mut key = super::open_session(inv, 1, true)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Null);
    };
    let merged = enrich::plan(session, &req, max_attrs, max_groups).map_err(from_core)?;
    // NEWONLY: the groups joined now start after the registry's latest notification
    let fresh = if req.new_only {
        req.newly_joined(session)
    } else {
        Vec::new()
    };
    let document = enrich::apply(session, &req, merged, now, &rules);
    if !fresh.is_empty() {
        let latest = crate::registry::lock().last_seq;
        for group in &fresh {
            session_core::notify::start_after(session, group, latest);
        }
    }

    let effect = enrich_effect_args(&req, &rules, now);
    let mut replicated: Vec<&[u8]> = Vec::with_capacity(effect.len() + 1);
    replicated.push(inv.args[1]);
    replicated.extend(effect.iter().map(Vec::as_slice));
    inv.replicate("SESSION.ENRICH", &replicated);
    ffi::notify(inv.ctx, c"session.enrich", inv.argv[1]);
    stats::add(&stats::ENRICHED, 1);

    Ok(RedisValue::StringBuffer(document.to_string().into_bytes()))
}
