//! The SESSION commands, one file per family, and the table that registers them.

mod catalog;
mod enrich;
mod load;
mod notify;
mod purge;
mod read;
mod surface;
mod touch;
mod trending;
mod upgrade;
mod users;

pub use notify::pending_count;
pub use purge::schedule as schedule_purge;
pub use trending::record as record_analytics;
pub use users::enforce_limit;

use redis_module::{raw, RedisError};
use session_core::Session;

use crate::command::{entry, Invocation, Spec};
use crate::datatype::session_type;
use crate::ffi::{self, Key, KeyValue};

/// Opens the session key `argv[index]`. A session past `created + maxage` is gone, whatever its
/// key's TTL says (a `PERSIST` or a later `EXPIRE` cannot extend it): opened for writing, the key
/// is deleted and `DEL` replicated; opened for reading, it reads as missing (a replica, like Redis
/// with an expired key, leaves the deletion to its primary). Commands from the primary or the AOF
/// are applied as they come (the primary already decided).
pub fn open_session(inv: &Invocation, index: usize, write: bool) -> Result<Key, RedisError> {
    let name: *mut raw::RedisModuleString =
        inv.argv.get(index).copied().ok_or(RedisError::WrongArity)?;
    let mut key = Key::open(inv.ctx, name, write)?;
    if inv.trusted() {
        return Ok(key);
    }
    let past = matches!(
        key.value::<Session>(session_type()),
        Ok(KeyValue::Ours(s)) if s.past_maxage(ffi::wall_ms())
    );
    if past {
        if write {
            key.delete()?;
            if let Some(bytes) = inv.args.get(index) {
                inv.replicate("DEL", &[bytes]);
            }
        } else {
            key.close();
        }
    }
    Ok(key)
}

/// A command on one key (the first argument).
const fn keyed(name: &'static str, entry: crate::command::Entry, flags: &'static str) -> Spec {
    Spec {
        name,
        parent: None,
        entry: Some(entry),
        flags,
        first_key: 1,
        last_key: 1,
        step: 1,
    }
}

/// A subcommand of `session.catalog` (no keys: the registry is not in the keyspace).
const fn catalog_sub(
    name: &'static str,
    entry: crate::command::Entry,
    flags: &'static str,
) -> Spec {
    sub("session.catalog", name, entry, flags)
}

/// A subcommand of `session.group` (no keys, as the catalog's).
const fn group_sub(name: &'static str, entry: crate::command::Entry, flags: &'static str) -> Spec {
    sub("session.group", name, entry, flags)
}

const fn sub(
    parent: &'static str,
    name: &'static str,
    entry: crate::command::Entry,
    flags: &'static str,
) -> Spec {
    Spec {
        name,
        parent: Some(parent),
        entry: Some(entry),
        flags,
        first_key: 0,
        last_key: 0,
        step: 0,
    }
}

/// Every command the module registers, containers before their subcommands.
pub fn table() -> Vec<Spec> {
    vec![
        keyed("session.touch", entry!(touch::touch), "write deny-oom"),
        keyed("session.get", entry!(read::get), "readonly"),
        keyed("session.seen", entry!(read::seen), "readonly fast"),
        keyed("session.info", entry!(read::info), "readonly"),
        keyed("session.enrich", entry!(enrich::enrich), "write deny-oom"),
        keyed(
            "session.surface",
            entry!(surface::surface),
            "write deny-oom",
        ),
        keyed(
            "session.impress",
            entry!(surface::impress),
            "write deny-oom fast",
        ),
        keyed(
            "session.inbox",
            entry!(notify::inbox),
            "write deny-oom fast",
        ),
        keyed("session.ack", entry!(notify::ack), "write deny-oom fast"),
        Spec {
            name: "session.notifygroup",
            parent: None,
            entry: Some(entry!(notify::notifygroup)),
            flags: "write deny-oom fast",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        keyed("session.load", entry!(load::load), "write deny-oom"),
        keyed(
            "session.upgrade",
            entry!(upgrade::upgrade),
            "write deny-oom",
        ),
        // The per-user index is not in the keyspace: SESSIONS and REVOKE name no key.
        Spec {
            name: "session.sessions",
            parent: None,
            entry: Some(entry!(users::sessions)),
            flags: "readonly",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.revoke",
            parent: None,
            entry: Some(entry!(users::revoke)),
            flags: "write",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.rotate",
            parent: None,
            entry: Some(entry!(users::rotate)),
            flags: "write fast",
            first_key: 1,
            last_key: 2,
            step: 1,
        },
        Spec {
            name: "session.purge",
            parent: None,
            entry: Some(entry!(purge::purge)),
            flags: "write",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.sync",
            parent: None,
            entry: Some(entry!(crate::cluster::sync::command)),
            flags: "write deny-script",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        // Site-wide analytics: not in the keyspace, no keys (the catalog is checked as a name).
        Spec {
            name: "session.trending",
            parent: None,
            entry: Some(entry!(trending::trending)),
            flags: "readonly",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.stats",
            parent: None,
            entry: Some(entry!(trending::stats)),
            flags: "readonly",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.trendparams",
            parent: None,
            entry: Some(entry!(trending::trendparams)),
            flags: "write fast",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        Spec {
            name: "session.catalog",
            parent: None,
            entry: None,
            flags: "",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        catalog_sub("add", entry!(catalog::add), "write deny-oom"),
        catalog_sub("del", entry!(catalog::del), "write"),
        catalog_sub("drop", entry!(catalog::drop_catalog), "write"),
        catalog_sub("info", entry!(catalog::info), "readonly"),
        catalog_sub("list", entry!(catalog::list), "readonly"),
        catalog_sub(
            "help",
            entry!(catalog::help),
            "readonly fast allow-loading allow-stale",
        ),
        Spec {
            name: "session.group",
            parent: None,
            entry: None,
            flags: "",
            first_key: 0,
            last_key: 0,
            step: 0,
        },
        group_sub("list", entry!(notify::group_list), "readonly"),
        group_sub("info", entry!(notify::group_info), "readonly"),
        group_sub("drop", entry!(notify::group_drop), "write"),
        group_sub(
            "help",
            entry!(notify::group_help),
            "readonly fast allow-loading allow-stale",
        ),
    ]
}
