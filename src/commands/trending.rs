//! Site-wide analytics (`session_core::registry::analytics`): kept by TOUCH events (`record`),
//! read by `SESSION.TRENDING catalog [COUNT n] [CATEGORY c] [WITHSCORES] [AT ms]` and
//! `SESSION.STATS [AT ms]`; `SESSION.TRENDPARAMS top-k half-life AT ms` (reserved for the primary
//! and the AOF) carries a sizing change, so replicas never size the analytics by their own
//! configuration.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::{Args, MAX_AT_MS, MAX_SURFACE_COUNT};
use session_core::registry::analytics::ACTIVE_MINUTES;
use session_core::surface::trending::{TrendParams, HALF_LIFE_S, TOP_K};
use session_core::Error;

use crate::command::Invocation;
use crate::config;
use crate::errors::{self, from_core};
use crate::ffi::{self, Reply};
use crate::registry;

/// Default COUNT of TRENDING.
const DEFAULT_COUNT: usize = 10;

/// TOUCH's hook: one event of session `key` for `item` at `now` (the touch's effective time).
/// On the primary, a configured sizing that differs from the analytics' own is applied first and
/// replicated as `SESSION.TRENDPARAMS` ahead of the TOUCH effect. O(log K).
pub fn record(inv: &Invocation, key: &[u8], item: &[u8], now: i64) {
    let mut registry = registry::lock();
    let analytics = &mut registry.analytics;
    if !inv.trusted() && analytics.set_params(config::trend_params(), now) {
        let p = analytics.trending.params();
        let (k, hl, at) = (
            p.top_k.to_string(),
            p.half_life_s.to_string(),
            now.to_string(),
        );
        inv.replicate(
            "SESSION.TRENDPARAMS",
            &[k.as_bytes(), hl.as_bytes(), b"AT", at.as_bytes()],
        );
    }
    // Only an item some catalog holds can trend (TRENDING and BOOST read catalog items): a
    // lookup per catalog, and no top-K churn for the rest.
    let surfaceable = registry
        .catalogs
        .values()
        .any(|c| c.slot_of(item).is_some());
    registry.analytics.record(key, item, now, surfaceable);
}

/// `SESSION.TRENDPARAMS top-k half-life-s AT ms`: the primary's sizing change.
pub fn trendparams(inv: &Invocation) -> RedisResult {
    if !inv.trusted() {
        return Err(errors::reserved("SESSION.TRENDPARAMS"));
    }
    let mut args = Args::new(&inv.args[1..]);
    let top_k = args
        .next_int("top-k", i64::from(TOP_K.0), i64::from(TOP_K.1))
        .map_err(from_core)? as u32;
    let half_life_s = args
        .next_int(
            "half-life",
            i64::from(HALF_LIFE_S.0),
            i64::from(HALF_LIFE_S.1),
        )
        .map_err(from_core)? as u32;
    let at = parse_at(&mut args)?.ok_or(RedisError::WrongArity)?;
    registry::lock()
        .analytics
        .set_params(TrendParams { top_k, half_life_s }, at);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

fn parse_at(args: &mut Args) -> Result<Option<i64>, RedisError> {
    let mut at = None;
    while !args.is_empty() {
        if args.eat("AT") && at.is_none() {
            at = Some(args.next_int("AT", 0, MAX_AT_MS).map_err(from_core)?);
        } else {
            return Err(from_core(Error::Syntax));
        }
    }
    Ok(at)
}

/// `SESSION.TRENDING catalog [COUNT n] [CATEGORY c] [WITHSCORES] [AT ms]`: the catalog's live
/// items among the site-wide trending ones, most trending first; scores are decayed to `AT`
/// (default now). O(K) at worst (the tracked list), never O(catalog).
pub fn trending(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let name = inv.args[1];
    let mut args = Args::new(&inv.args[2..]);
    let (mut count, mut category, mut with_scores, mut at) = (None, None, false, None);
    while !args.is_empty() {
        if count.is_none() && args.eat("COUNT") {
            count = Some(
                args.next_int("COUNT", 1, MAX_SURFACE_COUNT)
                    .map_err(from_core)? as usize,
            );
        } else if category.is_none() && args.eat("CATEGORY") {
            category = Some(args.next_arg().map_err(from_core)?);
        } else if !with_scores && args.eat("WITHSCORES") {
            with_scores = true;
        } else if at.is_none() && args.eat("AT") {
            at = Some(args.next_int("AT", 0, MAX_AT_MS).map_err(from_core)?);
        } else {
            return Err(from_core(Error::Syntax));
        }
    }
    crate::acl::require_read_name(inv.ctx, name)?;
    let count = count.unwrap_or(DEFAULT_COUNT);
    let now = at.unwrap_or_else(ffi::wall_ms);
    let registry = registry::lock();
    let catalog = registry
        .catalogs
        .get(name)
        .ok_or_else(errors::no_such_catalog)?;
    let filter = match category {
        Some(c) => match catalog.category_id(c) {
            Some(id) => Some(id),
            None => {
                Reply::new(inv.ctx).array(0);
                return Ok(RedisValue::NoReply);
            }
        },
        None => None,
    };
    let trending = &registry.analytics.trending;
    let factor = trending.factor(now);
    let chosen: Vec<(&[u8], f64)> = trending
        .iter()
        .filter(|(id, _)| {
            catalog
                .slot_of(id)
                .and_then(|s| catalog.item(s))
                .is_some_and(|item| {
                    item.live(now)
                        && filter.is_none_or(|f| item.categories.binary_search(&f).is_ok())
                })
        })
        .take(count)
        .map(|(id, c)| (id, c * factor))
        .collect();
    let r = Reply::new(inv.ctx);
    r.array(chosen.len() * if with_scores { 2 } else { 1 });
    for (id, score) in chosen {
        r.bulk(id);
        if with_scores {
            r.double(score);
        }
    }
    Ok(RedisValue::NoReply)
}

/// `SESSION.STATS [AT ms]`: a map of `events` (total TOUCH events), `active` (distinct sessions
/// with an event in the last 5 minutes, a HyperLogLog estimate), `views_per_minute` (60 counts,
/// the oldest minute first, the current minute last), `trending_tracked`, `trend_top_k`,
/// `trend_half_life`.
pub fn stats(inv: &Invocation) -> RedisResult {
    let mut args = Args::new(&inv.args[1..]);
    let now = parse_at(&mut args)?.unwrap_or_else(ffi::wall_ms);
    let registry = registry::lock();
    let a = &registry.analytics;
    let views = a.views_per_minute(now);
    let r = Reply::new(inv.ctx);
    r.map(7);
    r.entry_int("events", a.events.min(i64::MAX as u64) as i64);
    r.entry_int("active", a.active(now) as i64);
    r.entry_int("active_window_minutes", ACTIVE_MINUTES as i64);
    r.bulk(b"views_per_minute");
    r.array(views.len());
    for v in views {
        r.int(v.min(i64::MAX as u64) as i64);
    }
    r.entry_int("trending_tracked", a.trending.len() as i64);
    let p = a.trending.params();
    r.entry_int("trend_top_k", i64::from(p.top_k));
    r.entry_int("trend_half_life", i64::from(p.half_life_s));
    Ok(RedisValue::NoReply)
}
