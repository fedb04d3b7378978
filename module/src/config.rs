//! Module configuration: `CONFIG GET/SET session.<name>` and `loadmodule ... <name> <value>`.
//! Values are read on every command, so a change applies to the next command, no restart.

use std::sync::atomic::{AtomicI64, Ordering};

use session_core::session::MAX_LIFETIME_S;
use session_core::Settings;

pub const LIFETIME_MAX: i64 = MAX_LIFETIME_S as i64;

/// `session.default-idle`: seconds of inactivity before a session expires, when TOUCH names none.
pub static DEFAULT_IDLE: AtomicI64 = AtomicI64::new(1800);
/// `session.default-maxage`: absolute session lifetime in seconds, when TOUCH names none.
pub static DEFAULT_MAXAGE: AtomicI64 = AtomicI64::new(86_400);
/// `session.max-fields`: fields per session.
pub static MAX_FIELDS: AtomicI64 = AtomicI64::new(1024);
/// `session.max-field-size`: bytes per field name or value.
pub static MAX_FIELD_SIZE: AtomicI64 = AtomicI64::new(65_536);

fn get(v: &AtomicI64) -> i64 {
    v.load(Ordering::Relaxed)
}

/// The settings commands run with now.
pub fn settings() -> Settings {
    Settings {
        default_idle_s: get(&DEFAULT_IDLE).clamp(1, LIFETIME_MAX) as u32,
        default_maxage_s: get(&DEFAULT_MAXAGE).clamp(1, LIFETIME_MAX) as u32,
        max_fields: get(&MAX_FIELDS).max(0) as usize,
        max_field_size: get(&MAX_FIELD_SIZE).max(0) as usize,
    }
}

/// Settings for commands that come from the primary or the AOF: what the primary accepted is
/// applied whatever this server's limits say, or replicas would diverge.
pub fn trusted_settings() -> Settings {
    Settings {
        max_fields: usize::MAX,
        max_field_size: usize::MAX,
        ..settings()
    }
}
