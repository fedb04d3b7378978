//! `SESSION.CATALOG ADD | DEL | DROP | INFO | LIST`: the registry's content catalogs.
//! Registered as subcommands, so each has honest flags and ACL rules can name them
//! (`+session.catalog|info`, `-session.catalog|add`). Catalog names are checked as if they were
//! keys (`crate::acl`): ADD/DEL/DROP need write permission, INFO read permission, LIST shows only
//! the names the caller may read.

use redis_module::{RedisError, RedisResult, RedisValue};
use session_core::codec::args::parse_catalog_add;
use session_core::Error;

use crate::acl::{self, Caller};
use crate::command::Invocation;
use crate::config;
use crate::errors::{self, from_core};
use crate::ffi::{self, Reply};
use crate::registry;

/// Expired items a write purges from its catalog at most (bounded work per command).
const PURGE_BATCH: usize = 256;

pub fn add(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    let add = parse_catalog_add(&inv.args[2..]).map_err(from_core)?;
    acl::require_write_name(inv.ctx, add.catalog)?;
    let trusted = inv.trusted();
    let now = ffi::wall_ms();
    if !trusted {
        let settings = config::settings();
        if add.categories.len() > settings.max_categories {
            return Err(from_core(Error::TooManyCategories {
                limit: settings.max_categories,
            }));
        }
        let too_big = |b: &[u8]| b.len() > settings.max_field_size;
        if too_big(add.catalog) || too_big(add.item) || add.categories.iter().any(|c| too_big(c)) {
            return Err(from_core(Error::FieldTooLarge {
                limit: settings.max_field_size,
            }));
        }
    }
    let expires_ms = add.expire_at_ms.or(add.ttl_s.map(|s| now + s * 1000));

    let mut registry = registry::lock();
    let limit = config::max_catalog_items();
    let (held, len) = registry
        .catalogs
        .get(add.catalog)
        .map_or((false, 0), |c| (c.slot_of(add.item).is_some(), c.len()));
    if !trusted && !held && len >= limit {
        return Err(errors::catalog_full(limit));
    }
    // The primary purges and replicates its purges as DEL; a replica or the AOF never purges by
    // its own clock. A purge is expiry: no tombstone, no sync entry.
    let purged = match registry.catalogs.get_mut(add.catalog) {
        Some(catalog) if !trusted => {
            let purged = catalog.expired(now, PURGE_BATCH);
            for id in &purged {
                catalog.remove(id);
            }
            purged
        }
        _ => Vec::new(),
    };
    let is_new = registry.add_item(
        add.catalog,
        add.item,
        add.score,
        &add.categories,
        expires_ms,
        now,
    );
    drop(registry);

    if !purged.is_empty() {
        let mut del: Vec<&[u8]> = vec![b"DEL", add.catalog];
        del.extend(purged.iter().map(|id| &**id));
        inv.replicate("SESSION.CATALOG", &del);
    }
    // Replicated with the absolute expiry and the exact score, never the relative TTL.
    let score = session_core::error::float_text(add.score);
    let count = add.categories.len().to_string();
    let expiry = expires_ms.map(|at| at.to_string());
    let mut effect: Vec<&[u8]> = vec![b"ADD", add.catalog, add.item, b"SCORE", score.as_bytes()];
    if !add.categories.is_empty() {
        effect.push(b"CATEGORIES");
        effect.push(count.as_bytes());
        effect.extend(add.categories.iter().copied());
    }
    if let Some(at) = &expiry {
        effect.push(b"EXPIREAT");
        effect.push(at.as_bytes());
    }
    inv.replicate("SESSION.CATALOG", &effect);
    Ok(RedisValue::Integer(i64::from(is_new)))
}

pub fn del(inv: &Invocation) -> RedisResult {
    if inv.args.len() < 4 {
        return Err(RedisError::WrongArity);
    }
    acl::require_write_name(inv.ctx, inv.args[2])?;
    // An emptied catalog disappears (see `Registry::del_items`).
    let removed = registry::lock().del_items(inv.args[2], &inv.args[3..], ffi::wall_ms());
    if removed > 0 {
        inv.replicate("SESSION.CATALOG", &inv.args[1..]);
    }
    Ok(RedisValue::Integer(removed as i64))
}

pub fn drop_catalog(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    acl::require_write_name(inv.ctx, inv.args[2])?;
    let dropped = registry::lock().drop_catalog(inv.args[2], ffi::wall_ms());
    if dropped {
        inv.replicate("SESSION.CATALOG", &inv.args[1..]);
    }
    Ok(RedisValue::Integer(i64::from(dropped)))
}

pub fn info(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 3 {
        return Err(RedisError::WrongArity);
    }
    acl::require_read_name(inv.ctx, inv.args[2])?;
    let registry = registry::lock();
    let Some(catalog) = registry.catalogs.get(inv.args[2]) else {
        return Err(errors::no_such_catalog());
    };
    let r = Reply::new(inv.ctx);
    r.map(3);
    r.entry_int("items", catalog.len() as i64);
    r.entry_int("categories", catalog.category_count() as i64);
    r.entry_int("memory", catalog.memory() as i64);
    Ok(RedisValue::NoReply)
}

pub fn list(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let registry = registry::lock();
    // Only the names the caller may read, as if they were keys.
    let caller = Caller::current(inv.ctx);
    let names: Vec<&[u8]> = registry
        .catalogs
        .keys()
        .map(|name| &**name)
        .filter(|name| caller.may_read(inv.ctx, name))
        .collect();
    let r = Reply::new(inv.ctx);
    r.array(names.len());
    for name in names {
        r.bulk(name);
    }
    Ok(RedisValue::NoReply)
}

/// `SESSION.CATALOG HELP`.
pub fn help(inv: &Invocation) -> RedisResult {
    if inv.args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    Ok(super::notify::help(&[
        "SESSION.CATALOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ADD <catalog> <item> [SCORE <score>] [CATEGORIES <count> <category> ...] [TTL <seconds> | EXPIREAT <unix-time-milliseconds>]",
        "    Add an item to a catalog, or replace it.",
        "DEL <catalog> <item> [<item> ...]",
        "    Remove items (an emptied catalog disappears).",
        "DROP <catalog>",
        "    Remove a whole catalog.",
        "INFO <catalog>",
        "    Return the catalog's items, categories and memory.",
        "LIST",
        "    Return the catalogs' names.",
        "HELP",
        "    Print this help.",
    ]))
}
