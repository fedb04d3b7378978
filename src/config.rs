//! Module configuration: `CONFIG GET/SET session.<name>` and `loadmodule ... <name> <value>`.
//! Values are read by each command, so a change applies to the next command without a restart.
//! Sketch sizing is captured by a session at its first event (see `SketchParams`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use redis_module::configuration::{ConfigurationContext, ConfigurationValue};
use redis_module::{RedisError, RedisString};
use session_core::codec::args::parse_f64;
use session_core::enrich::Thresholds;
use session_core::error::float_text;
use session_core::session::MAX_LIFETIME_S;
use session_core::{limits, Settings, SketchParams};

pub const LIFETIME_MAX: i64 = MAX_LIFETIME_S as i64;

/// `session.default-idle`: seconds of inactivity before a session expires, when TOUCH names none.
pub static DEFAULT_IDLE: AtomicI64 = AtomicI64::new(1800);
/// `session.default-maxage`: absolute session lifetime in seconds, when TOUCH names none.
pub static DEFAULT_MAXAGE: AtomicI64 = AtomicI64::new(86_400);
/// `session.max-fields`: fields per session.
pub static MAX_FIELDS: AtomicI64 = AtomicI64::new(1024);
/// `session.max-field-size`: bytes per field name or value, event item or category.
pub static MAX_FIELD_SIZE: AtomicI64 = AtomicI64::new(65_536);
/// `session.max-session-size`: bytes of field names and values per session (the limit that binds
/// a web framework's whole-session document written with `REPLACE`).
pub static MAX_SESSION_SIZE: AtomicI64 =
    AtomicI64::new(session_core::session::DEFAULT_MAX_SESSION_SIZE as i64);
/// `session.max-categories`: categories per event.
pub static MAX_CATEGORIES: AtomicI64 = AtomicI64::new(8);
/// `session.seen-capacity`: items in the seen filter's first layer (it grows by doubling).
pub static SEEN_CAPACITY: AtomicI64 = AtomicI64::new(128);
/// `session.seen-error-rate`: the seen filter's false-positive bound.
pub static SEEN_ERROR_RATE: FloatConfig =
    FloatConfig::new(0.01, limits::SEEN_ERROR.0, limits::SEEN_ERROR.1);
/// `session.hll-precision`: distinct-items sketch precision (2^p registers).
pub static HLL_PRECISION: AtomicI64 = AtomicI64::new(10);
/// `session.interest-top-n`: categories kept per session.
pub static INTEREST_TOP_N: AtomicI64 = AtomicI64::new(8);
/// `session.interest-half-life`: seconds after which an interest weight halves.
pub static INTEREST_HALF_LIFE: AtomicI64 = AtomicI64::new(3600);
/// `session.engaged-threshold`: engagement at or above which a session is `engaged`.
pub static ENGAGED_THRESHOLD: FloatConfig = FloatConfig::new(0.5, 0.0, 1.0);
/// `session.dormant-after`: seconds without an event after which a session is `dormant`.
pub static DORMANT_AFTER: AtomicI64 = AtomicI64::new(1800);
/// `session.returning-gap`: a pause of at least this many seconds makes a session `returning`.
pub static RETURNING_GAP: AtomicI64 = AtomicI64::new(1800);
/// `session.interest-segment-weight`: normalized weight for an `interest:<category>` segment.
pub static INTEREST_SEGMENT_WEIGHT: FloatConfig = FloatConfig::new(0.25, 0.0, 1.0);

/// `session.max-groups`: explicit group memberships per session.
pub static MAX_GROUPS: AtomicI64 = AtomicI64::new(64);

/// `session.max-catalog-items`: items per catalog.
pub static MAX_CATALOG_ITEMS: AtomicI64 = AtomicI64::new(1_000_000);
/// `session.impressions-width`: counters per row of a session's impression sketch (4 rows).
pub static IMPRESSIONS_WIDTH: AtomicI64 = AtomicI64::new(256);

/// `session.trend-top-k`: items the site-wide trending list tracks.
pub static TREND_TOP_K: AtomicI64 = AtomicI64::new(1000);
/// `session.trend-half-life`: seconds after which a view's weight in the trending list halves.
pub static TREND_HALF_LIFE: AtomicI64 = AtomicI64::new(600);

/// `session.cold-start-trend`: the `BOOST TRENDING` weight of a cold start (no session, or no
/// interest in the catalog's categories) whose call names none. 0 (default) = the catalog's best
/// items only, as before the analytics.
pub static COLD_START_TREND: FloatConfig = FloatConfig::new(0.0, 0.0, 1000.0);

/// The analytics' sizing the configuration asks for (applied by the primary at its next event).
pub fn trend_params() -> session_core::surface::trending::TrendParams {
    use session_core::surface::trending::{HALF_LIFE_S, TOP_K};
    session_core::surface::trending::TrendParams {
        top_k: get(&TREND_TOP_K).clamp(i64::from(TOP_K.0), i64::from(TOP_K.1)) as u32,
        half_life_s: get(&TREND_HALF_LIFE).clamp(i64::from(HALF_LIFE_S.0), i64::from(HALF_LIFE_S.1))
            as u32,
    }
}

pub fn max_catalog_items() -> usize {
    get(&MAX_CATALOG_ITEMS).max(0) as usize
}

pub fn impressions_width() -> u32 {
    get(&IMPRESSIONS_WIDTH).clamp(
        i64::from(limits::IMPRESSIONS_WIDTH.0),
        i64::from(limits::IMPRESSIONS_WIDTH.1),
    ) as u32
}

/// `session.notify-ttl`: seconds a notification lives when NOTIFYGROUP names no TTL.
pub static NOTIFY_TTL: AtomicI64 = AtomicI64::new(86_400);
/// `session.max-notifications`: live notifications a group keeps (the oldest go first).
pub static MAX_NOTIFICATIONS: AtomicI64 = AtomicI64::new(100);

/// `session.max-registry-groups`: notification groups the registry holds at most.
pub static MAX_REGISTRY_GROUPS: AtomicI64 = AtomicI64::new(100_000);
/// `session.max-notification-size`: bytes of one notification's payload.
pub static MAX_NOTIFICATION_SIZE: AtomicI64 = AtomicI64::new(65_536);
/// `session.max-registry-memory`: bytes all groups and their notifications may take.
pub static MAX_REGISTRY_MEMORY: AtomicI64 = AtomicI64::new(256 * 1024 * 1024);

/// The bounds a client's NOTIFYGROUP is held to.
pub fn registry_limits() -> session_core::registry::Limits {
    session_core::registry::Limits {
        max_groups: get(&MAX_REGISTRY_GROUPS).max(1) as usize,
        max_payload: get(&MAX_NOTIFICATION_SIZE).max(0) as usize,
        max_memory: get(&MAX_REGISTRY_MEMORY).max(0) as usize,
    }
}

pub fn notify_ttl() -> i64 {
    get(&NOTIFY_TTL).clamp(1, LIFETIME_MAX)
}

pub fn max_notifications() -> usize {
    get(&MAX_NOTIFICATIONS).max(1) as usize
}

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
        max_categories: get(&MAX_CATEGORIES).max(0) as usize,
        max_session_size: get(&MAX_SESSION_SIZE).max(0) as usize,
        sketch: SketchParams {
            seen_capacity: get(&SEEN_CAPACITY).clamp(
                i64::from(limits::SEEN_CAPACITY.0),
                i64::from(limits::SEEN_CAPACITY.1),
            ) as u32,
            seen_error: SEEN_ERROR_RATE.value(),
            hll_precision: get(&HLL_PRECISION).clamp(
                i64::from(limits::HLL_PRECISION.0),
                i64::from(limits::HLL_PRECISION.1),
            ) as u8,
            top_n: get(&INTEREST_TOP_N)
                .clamp(i64::from(limits::TOP_N.0), i64::from(limits::TOP_N.1))
                as u16,
            half_life_s: get(&INTEREST_HALF_LIFE).clamp(1, LIFETIME_MAX) as u32,
        },
    }
}

/// Segment rules for ENRICH.
pub fn thresholds() -> Thresholds {
    Thresholds {
        engaged: ENGAGED_THRESHOLD.value(),
        dormant_after_s: get(&DORMANT_AFTER).clamp(1, LIFETIME_MAX) as u32,
        returning_gap_s: get(&RETURNING_GAP).clamp(1, LIFETIME_MAX) as u32,
        interest_weight: INTEREST_SEGMENT_WEIGHT.value(),
    }
}

/// `session.max-sessions-per-user`: sessions one user may hold (per database); registering one
/// more evicts the least recently seen. 0 = unlimited.
pub static MAX_SESSIONS_PER_USER: AtomicI64 = AtomicI64::new(0);

pub fn max_sessions_per_user() -> usize {
    get(&MAX_SESSIONS_PER_USER).max(0) as usize
}

/// `session.max-unpaged-sessions`: the most sessions of one user a `SESSIONS` without `CURSOR`
/// or a `REVOKE` without `COUNT` handles at once; past it they are refused (page instead).
pub static MAX_UNPAGED_SESSIONS: AtomicI64 = AtomicI64::new(10_000);

pub fn max_unpaged_sessions() -> usize {
    get(&MAX_UNPAGED_SESSIONS).max(0) as usize
}

/// `session.cluster-timeout`: milliseconds a cluster-wide `SESSIONS`/`REVOKE` waits for every
/// other primary's part before it fails naming the primaries that did not answer.
pub static CLUSTER_TIMEOUT: AtomicI64 = AtomicI64::new(2000);

pub fn cluster_timeout_ms() -> i64 {
    get(&CLUSTER_TIMEOUT).max(1)
}

pub fn max_groups() -> usize {
    get(&MAX_GROUPS).max(0) as usize
}

/// Settings for commands that come from the primary or the AOF: what the primary accepted is
/// applied whatever this server's limits say, or replicas would diverge.
pub fn trusted_settings() -> Settings {
    Settings {
        max_fields: usize::MAX,
        max_field_size: usize::MAX,
        max_categories: usize::MAX,
        max_session_size: usize::MAX,
        ..settings()
    }
}

/// A decimal setting (Redis module configurations have no float type: it is a string validated
/// on every `CONFIG SET`).
pub struct FloatConfig {
    bits: AtomicU64,
    min: f64,
    max: f64,
}

impl FloatConfig {
    pub const fn new(default: f64, min: f64, max: f64) -> Self {
        FloatConfig {
            bits: AtomicU64::new(default.to_bits()),
            min,
            max,
        }
    }

    pub fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

impl ConfigurationValue<RedisString> for FloatConfig {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        RedisString::create(None, self.value().to_string())
    }

    fn set(&self, _ctx: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        match parse_f64(val.as_slice()) {
            Some(v) if (self.min..=self.max).contains(&v) => {
                self.bits.store(v.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            _ => Err(RedisError::String(format!(
                "must be a number between {} and {}",
                float_text(self.min),
                float_text(self.max)
            ))),
        }
    }
}
