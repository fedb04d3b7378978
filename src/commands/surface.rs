//! `SESSION.SURFACE`: unseen content, best first; `SESSION.SURFACE_RO`: the same with `NOMARK`
//! forced (a read-only command, for replicas); `SESSION.IMPRESS`: record impressions (the
//! replicated effect of SURFACE, also usable on its own for content shown by other means).

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::parse_f64;
use session_core::codec::args::{parse_impress, parse_surface, SurfaceSource};
use session_core::surface::{
    filter_items, has_interests, surface_boosted, Boost, Profile, Ranking,
};
use session_core::Session;

use crate::command::Invocation;
use crate::config;
use crate::datatype::session_type;
use crate::errors::{self, from_core};
use crate::ffi::{self, KeyValue, Reply};
use crate::registry;
use crate::stats;

/// Default COUNT.
const DEFAULT_COUNT: usize = 10;
/// Largest `BOOST TRENDING` weight.
pub const MAX_BOOST: f64 = 1000.0;

/// Takes `BOOST TRENDING w` out of a `FROM` call's arguments (walking the option grammar, so a
/// CATEGORY named "BOOST" stays a category); the rest goes to `parse_surface`.
fn split_boost<'a>(args: &[&'a [u8]]) -> Result<(Vec<&'a [u8]>, Option<f64>), RedisError> {
    let is = |a: &[u8], w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    if !args.first().is_some_and(|a| is(a, "FROM")) {
        return Ok((args.to_vec(), None));
    }
    let (mut rest, mut boost) = (Vec::with_capacity(args.len()), None);
    let mut i = 0;
    while let Some(&a) = args.get(i) {
        if is(a, "BOOST") {
            let (Some(what), Some(w)) = (args.get(i + 1), args.get(i + 2)) else {
                return Err(from_core(session_core::Error::Syntax));
            };
            if !is(what, "TRENDING") || boost.is_some() {
                return Err(from_core(session_core::Error::Syntax));
            }
            match parse_f64(w) {
                Some(v) if (0.0..=MAX_BOOST).contains(&v) => boost = Some(v),
                Some(_) => {
                    return Err(from_core(session_core::Error::OutOfRangeFloat {
                        what: "BOOST TRENDING",
                        min: 0.0,
                        max: MAX_BOOST,
                    }))
                }
                None => return Err(from_core(session_core::Error::NotFloat)),
            }
            i += 3;
            continue;
        }
        let takes_value = ["FROM", "COUNT", "CATEGORY", "EXPLORE", "MAXIMPRESSIONS"]
            .iter()
            .any(|w| is(a, w));
        rest.push(a);
        if takes_value {
            if let Some(&v) = args.get(i + 1) {
                rest.push(v);
            }
            i += 1;
        }
        i += 1;
    }
    Ok((rest, boost))
}

pub fn surface(inv: &Invocation) -> RedisResult {
    run(inv, false)
}

/// `SESSION.SURFACE_RO`: SURFACE's arguments and answer, with `NOMARK` forced: the session is
/// opened for reading only, no impression is recorded, nothing is written or replicated (so it
/// runs on a read-only replica). `NOMARK` is accepted (redundant); SURFACE has no other option
/// that writes. A session past its max age reads as missing, as GET does.
pub fn surface_ro(inv: &Invocation) -> RedisResult {
    run(inv, true)
}

fn run(inv: &Invocation, read_only: bool) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    let (args, boost) = split_boost(&inv.args[2..])?;
    let mut req = parse_surface(&args).map_err(from_core)?;
    if read_only {
        req.nomark = true;
    }
    let mut key = super::open_session(inv, 1, !read_only)?;
    let mut session = match key.value::<Session>(session_type())? {
        KeyValue::Ours(s) => Some(s),
        KeyValue::Empty => None,
    };
    let profile = Profile {
        activity: session.as_ref().and_then(|s| s.activity.as_ref()),
        impressions: session.as_ref().and_then(|s| s.impressions.as_deref()),
    };

    let chosen: Vec<(Box<[u8]>, f64)> = match &req.source {
        SurfaceSource::Catalog(name) => {
            crate::acl::require_read_name(inv.ctx, name)?;
            let registry = registry::lock();
            let catalog = registry
                .catalogs
                .get(*name)
                .ok_or_else(errors::no_such_catalog)?;
            let ranking = Ranking {
                count: req.count.unwrap_or(DEFAULT_COUNT),
                category: req.category,
                explore: req.explore,
                max_impressions: req.max_impressions,
            };
            // Trend: as asked, or by default for a cold start.
            let weight = boost.unwrap_or(if has_interests(catalog, profile) {
                0.0
            } else {
                config::COLD_START_TREND.value()
            });
            let boost = Some(Boost {
                trending: &registry.analytics.trending,
                weight,
            });
            let picks = surface_boosted(
                catalog,
                profile,
                &ranking,
                boost,
                ffi::wall_ms(),
                &mut rand::thread_rng(),
            );
            picks
                .iter()
                .filter_map(|p| catalog.item(p.slot).map(|item| (item.id.clone(), p.rank)))
                .collect()
        }
        SurfaceSource::Items(items) => {
            let count = req.count.unwrap_or(items.len());
            filter_items(items, profile, count, req.max_impressions)
                .into_iter()
                .map(|id| (Box::from(id), 0.0))
                .collect()
        }
    };

    if let Some(session) = session.as_mut() {
        if !req.nomark && !chosen.is_empty() {
            let ids: Vec<&[u8]> = chosen.iter().map(|(id, _)| &**id).collect();
            let created = session.record_impressions(&ids, config::impressions_width());
            replicate_impressions(inv, &ids, created);
            ffi::notify(inv.ctx, c"session.surface", inv.argv[1]);
        }
    }
    stats::add(&stats::SURFACED_ITEMS, chosen.len() as u64);

    let r = Reply::new(inv.ctx);
    r.array(chosen.len() * if req.with_scores { 2 } else { 1 });
    for (id, score) in &chosen {
        r.bulk(id);
        if req.with_scores {
            r.double(*score);
        }
    }
    Ok(RedisValue::NoReply)
}

fn replicate_impressions(inv: &Invocation, ids: &[&[u8]], created_width: Option<u32>) {
    let count = ids.len().to_string();
    let width = created_width.map(|w| w.to_string());
    let mut effect: Vec<&[u8]> = vec![inv.args[1], count.as_bytes()];
    effect.extend_from_slice(ids);
    if let Some(w) = &width {
        effect.push(b"WIDTH");
        effect.push(w.as_bytes());
    }
    inv.replicate("SESSION.IMPRESS", &effect);
}

/// `SESSION.IMPRESS key count item ... [WIDTH w]`: records one impression per item; replies the
/// number recorded (0 for a missing session, which is not created).
pub fn impress(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    let (items, width) = parse_impress(&inv.args[2..]).map_err(from_core)?;
    let mut key = super::open_session(inv, 1, true)?;
    let KeyValue::Ours(session) = key.value::<Session>(session_type())? else {
        return Ok(RedisValue::Integer(0));
    };
    let created =
        session.record_impressions(&items, width.unwrap_or_else(config::impressions_width));
    replicate_impressions(inv, &items, created);
    ffi::notify(inv.ctx, c"session.surface", inv.argv[1]);
    Ok(RedisValue::Integer(items.len() as i64))
}
