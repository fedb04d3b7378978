//! `SESSION.SURFACE`: unseen content, best first; `SESSION.IMPRESS`: record impressions (the
//! replicated effect of SURFACE, also usable on its own for content shown by other means).

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::{parse_impress, parse_surface, SurfaceSource};
use session_core::surface::{filter_items, surface as rank, Profile, Ranking};
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

pub fn surface(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    let req = parse_surface(&inv.args[2..]).map_err(from_core)?;
    let mut key = super::open_session(inv, 1, true)?;
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
            let picks = rank(
                catalog,
                profile,
                &ranking,
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
