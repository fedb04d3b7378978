//! The ranges every value a session can hold must lie in, in one place: the module's configuration
//! (`CONFIG SET session.*`), TOUCH's `PARAMS` and the saved-form decoder all check against these,
//! so a saved form can never describe a session the live configuration could not have made.
//! (Layer 1: plain numbers, no domain type.)

/// `IDLE`, `MAXAGE`, half-lives, TTLs: ten years, far below any overflow of millisecond arithmetic.
pub const LIFETIME_S: (u32, u32) = (1, 10 * 365 * 24 * 3600);

/// Capacity of the seen filter's first layer (`session.seen-capacity`, `PARAMS`).
pub const SEEN_CAPACITY: (u32, u32) = (1, 1_000_000);
/// The seen filter's compound false-positive bound (`session.seen-error-rate`, `PARAMS`).
pub const SEEN_ERROR: (f64, f64) = (1e-9, 0.25);
/// HyperLogLog precision, 2^p registers (`session.hll-precision`, `PARAMS`).
pub const HLL_PRECISION: (u8, u8) = (4, 12);
/// Distinct items a session's distinct-items sketch counts exactly before it turns into a
/// HyperLogLog (more at precisions whose registers are larger: `activity::hll::exact_limit`).
/// Fixed, not configurable: the saved form's exact list is checked against it.
pub const DISTINCT_EXACT: u32 = 512;
/// Interest categories kept per session (`session.interest-top-n`, `PARAMS`).
pub const TOP_N: (u16, u16) = (1, 1_000);
/// Counters per row of an impression sketch (`session.impressions-width`): the widest
/// generation an impression sketch can grow to as well.
pub const IMPRESSIONS_WIDTH: (u32, u32) = (16, 16_384);

/// A catalog item's score (`CATALOG ADD ... SCORE`, the registry's saved form).
pub const CATALOG_SCORE: (f64, f64) = (-1e300, 1e300);

/// `session.max-fields`.
pub const MAX_FIELDS: (i64, i64) = (1, 1_000_000);
/// `session.max-field-size` (bytes per field name or value, item, category, attrs document).
pub const MAX_FIELD_SIZE: (i64, i64) = (1, 512 * 1024 * 1024);
/// `session.max-categories` (per event).
pub const MAX_CATEGORIES: (i64, i64) = (1, 1024);
/// `session.max-groups` (explicit memberships per session).
pub const MAX_GROUPS: (i64, i64) = (0, 100_000);

/// Whether `v` lies in the inclusive range `r`.
pub fn within<T: PartialOrd>(v: T, r: (T, T)) -> bool {
    r.0 <= v && v <= r.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered() {
        assert!(LIFETIME_S.0 <= LIFETIME_S.1 && SEEN_CAPACITY.0 <= SEEN_CAPACITY.1);
        assert!(SEEN_ERROR.0 < SEEN_ERROR.1 && HLL_PRECISION.0 < HLL_PRECISION.1);
        assert!(within(16u32, IMPRESSIONS_WIDTH) && !within(65_536u32, IMPRESSIONS_WIDTH));
        assert!(!within(f64::NAN, SEEN_ERROR));
    }
}
