//! `INFO session`: counters since the server started, and registry sizes.

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use redis_module::raw;

use crate::registry;

pub static COMMANDS: AtomicU64 = AtomicU64::new(0);
pub static SESSIONS_CREATED: AtomicU64 = AtomicU64::new(0);
pub static EVENTS: AtomicU64 = AtomicU64::new(0);
pub static ENRICHED: AtomicU64 = AtomicU64::new(0);
pub static SURFACED_ITEMS: AtomicU64 = AtomicU64::new(0);
pub static ERRORS: AtomicU64 = AtomicU64::new(0);
pub static NOTIFICATIONS_PUBLISHED: AtomicU64 = AtomicU64::new(0);
pub static NOTIFICATIONS_DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Adds `n`. Only Redis's main thread writes the counters (commands, timers and server events
/// run there; the module starts no thread), so a plain load and store replaces a locked
/// read-modify-write on every command; the atomics keep any other reader well-defined.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The module's INFO callback (section `session`).
pub unsafe extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // During a crash report the registry lock may be held by the crashing command: skip it.
        let (catalogs, items, groups, notifications, memory, group_memory) =
            registry::try_sizes().unwrap_or_default();
        let (indexed_sessions, indexed_users) =
            crate::events::try_index_sizes().unwrap_or_default();
        raw::add_info_section(ctx, None);
        let counters = [
            ("commands", get(&COMMANDS)),
            ("errors", get(&ERRORS)),
            ("sessions_created", get(&SESSIONS_CREATED)),
            ("events", get(&EVENTS)),
            ("enriched", get(&ENRICHED)),
            ("surfaced_items", get(&SURFACED_ITEMS)),
            ("notifications_published", get(&NOTIFICATIONS_PUBLISHED)),
            ("notifications_delivered", get(&NOTIFICATIONS_DELIVERED)),
            ("catalogs", catalogs as u64),
            ("catalog_items", items as u64),
            ("groups", groups as u64),
            ("live_notifications", notifications as u64),
            ("registry_memory_bytes", memory as u64),
            ("registry_group_memory_bytes", group_memory as u64),
            ("indexed_sessions", indexed_sessions as u64),
            ("indexed_users", indexed_users as u64),
            // 1 while an AOF, a backlog or a replica may receive propagation (`propagation.rs`)
            (
                "propagation_needed",
                u64::from(crate::propagation::needed()),
            ),
        ];
        for (name, value) in counters {
            raw::add_info_field_unsigned_long_long(ctx, name, value);
        }
        for (name, value) in crate::cluster::sync::info_fields().unwrap_or_default() {
            raw::add_info_field_str(ctx, name, &value);
        }
    }));
}
