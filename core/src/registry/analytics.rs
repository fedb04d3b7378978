//! Site-wide real-time analytics, kept by TOUCH events (`SESSION.TRENDING`, `SESSION.STATS`,
//! `SURFACE ... BOOST TRENDING`): trending items (decayed heavy hitters, `surface::trending`),
//! views per minute over the last hour (a ring of 60 counters stamped with their minute), sessions
//! active now (one HyperLogLog of session keys per minute for the last `ACTIVE_MINUTES` minutes,
//! their union read at STATS) and the events total.
//!
//! Every update is O(log K) at worst (the trending counter), the ring and the sketch O(1); the
//! memory is fixed but for the K tracked ids. All of it depends only on the events' times (TOUCH's
//! `AT` on a replica or in the AOF), never on the reader's clock: the same TOUCH effects build the
//! same analytics everywhere. Reads (`views_per_minute`, `active`) take the time they read at.

use crate::surface::trending::{TrendParams, Trending};

/// Minutes of the views ring.
pub const MINUTES: usize = 60;
/// "Active now" = distinct sessions with an event in the last this many minutes.
pub const ACTIVE_MINUTES: usize = 5;
/// Precision of the active-sessions sketches (2^p one-byte registers: 4 KiB, 1.6% error).
pub const ACTIVE_PRECISION: u8 = 12;
const REGISTERS: usize = 1 << ACTIVE_PRECISION;
/// Seed of the session-key hash (fixed: replicas build the same registers).
const KEY_SEED: u64 = 0x5e55_1017_ac71_7e00;

const MINUTE_MS: i64 = 60_000;

/// One minute's HyperLogLog of session keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteSketch {
    pub minute: i64,
    pub registers: Box<[u8]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analytics {
    pub trending: Trending,
    /// (minute number, views) by `minute % 60`; a slot whose stamp is not the minute read is 0.
    pub views: [(i64, u64); MINUTES],
    /// By `minute % ACTIVE_MINUTES`, allocated at the slot's first event.
    pub active: [Option<MinuteSketch>; ACTIVE_MINUTES],
    pub events: u64,
}

impl Default for Analytics {
    fn default() -> Self {
        Self::new()
    }
}

fn minute_of(t_ms: i64) -> i64 {
    t_ms.div_euclid(MINUTE_MS)
}

fn slot(minute: i64, n: usize) -> usize {
    minute.rem_euclid(n as i64) as usize
}

impl Analytics {
    pub const fn new() -> Self {
        Analytics {
            trending: Trending::new(TrendParams::DEFAULT),
            views: [(i64::MIN, 0); MINUTES],
            active: [None, None, None, None, None],
            events: 0,
        }
    }

    /// Whether nothing was ever recorded (a fresh structure adopts the configured sizing).
    pub fn is_fresh(&self) -> bool {
        self.events == 0 && self.trending.is_empty()
    }

    /// Applies `params` (a fresh structure simply takes them; a live one is reshaped, keeping the
    /// current decayed scores). Returns whether anything changed.
    pub fn set_params(&mut self, params: TrendParams, now_ms: i64) -> bool {
        if !params.valid() || params == self.trending.params() {
            return false;
        }
        if self.trending.is_empty() {
            self.trending = Trending::new(params);
        } else {
            self.trending.reshape(params, now_ms);
        }
        true
    }

    /// One TOUCH event of `session` for `item` at `t_ms`.
    /// One TOUCH event of `session` on `item` at `t_ms`; `surfaceable`: the item is in a catalog
    /// (only those can trend: an item no catalog holds takes no top-K slot and costs no update).
    pub fn record(&mut self, session: &[u8], item: &[u8], t_ms: i64, surfaceable: bool) {
        self.events = self.events.saturating_add(1);
        if surfaceable {
            self.trending.record(item, t_ms);
        }
        let minute = minute_of(t_ms);
        let v = &mut self.views[slot(minute, MINUTES)];
        if v.0 < minute {
            *v = (minute, 0);
        }
        if v.0 == minute {
            v.1 = v.1.saturating_add(1);
        }
        let a = &mut self.active[slot(minute, ACTIVE_MINUTES)];
        if a.as_ref().is_none_or(|s| s.minute < minute) {
            *a = Some(MinuteSketch {
                minute,
                registers: vec![0; REGISTERS].into(),
            });
        }
        if let Some(s) = a.as_mut().filter(|s| s.minute == minute) {
            let h = xxhash_rust::xxh3::xxh3_64_with_seed(session, KEY_SEED);
            let index = (h >> (64 - ACTIVE_PRECISION)) as usize;
            let rank =
                ((h << ACTIVE_PRECISION) | (1 << (ACTIVE_PRECISION - 1))).leading_zeros() + 1;
            if let Some(r) = s.registers.get_mut(index) {
                *r = (*r).max(rank as u8);
            }
        }
    }

    /// Views per minute of the hour ending at `now_ms`, oldest first (60 values).
    pub fn views_per_minute(&self, now_ms: i64) -> Vec<u64> {
        let now = minute_of(now_ms);
        (0..MINUTES as i64)
            .map(|back| now - (MINUTES as i64 - 1) + back)
            .map(|m| {
                let v = self.views[slot(m, MINUTES)];
                if v.0 == m {
                    v.1
                } else {
                    0
                }
            })
            .collect()
    }

    /// Distinct sessions with an event in the `ACTIVE_MINUTES` minutes ending at `now_ms`:
    /// the union of those minutes' sketches, O(ACTIVE_MINUTES * 4096).
    pub fn active(&self, now_ms: i64) -> u64 {
        let now = minute_of(now_ms);
        let mut union = vec![0u8; REGISTERS];
        let mut any = false;
        for s in self.active.iter().flatten() {
            if s.minute > now - ACTIVE_MINUTES as i64 && s.minute <= now {
                any = true;
                for (u, r) in union.iter_mut().zip(s.registers.iter()) {
                    *u = (*u).max(*r);
                }
            }
        }
        if !any {
            return 0;
        }
        estimate(&union)
    }

    /// Heap bytes: O(1) (the sketches and the trending ids).
    pub fn memory(&self) -> usize {
        let sketches = self.active.iter().flatten().count() * (REGISTERS + 32);
        sketches + self.trending.memory()
    }

    /// Checks a decoded structure against what live events can build.
    pub fn is_consistent(&self) -> bool {
        self.active.iter().enumerate().all(|(i, s)| {
            s.as_ref().is_none_or(|s| {
                slot(s.minute, ACTIVE_MINUTES) == i
                    && s.registers.len() == REGISTERS
                    && s.registers.iter().all(|&r| r <= 64 - ACTIVE_PRECISION + 1)
            })
        }) && self
            .views
            .iter()
            .enumerate()
            .all(|(i, v)| v.0 == i64::MIN || slot(v.0, MINUTES) == i)
    }
}

/// HyperLogLog estimate with linear counting for small cardinalities (exact arithmetic order:
/// registers are summed in index order).
fn estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let mut sum = 0.0;
    let mut zeros = 0u32;
    for &r in registers {
        sum += libm::exp2(-f64::from(r));
        zeros += u32::from(r == 0);
    }
    let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
    let e = if raw <= 2.5 * m && zeros > 0 {
        m * libm::log(m / f64::from(zeros))
    } else {
        raw
    };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_ring_and_active_window() {
        let mut a = Analytics::new();
        let t0 = 1_000 * MINUTE_MS;
        for i in 0..100u32 {
            a.record(
                format!("s{}", i % 40).as_bytes(),
                b"item",
                t0 + i64::from(i) * 1000,
                true,
            );
        }
        let v = a.views_per_minute(t0 + 100_000);
        assert_eq!(v.len(), 60);
        assert_eq!(&v[58..], &[60, 40]);
        assert_eq!(v.iter().sum::<u64>(), 100);
        assert!(a.active(t0 + 100_000).abs_diff(40) <= 1);
        assert_eq!(a.active(t0 + 10 * MINUTE_MS), 0, "window passed");
        assert_eq!(
            a.views_per_minute(t0 + 61 * MINUTE_MS).iter().sum::<u64>(),
            0
        );
        // an event older than a slot's minute does not clobber it
        a.record(b"s0", b"item", t0 - 60 * MINUTE_MS, true);
        assert_eq!(a.views_per_minute(t0 + 100_000).iter().sum::<u64>(), 100);
        assert_eq!(a.events, 101);
        assert!(a.is_consistent());
        let mut many = Analytics::new();
        for i in 0..20_000u32 {
            many.record(format!("k{i}").as_bytes(), b"x", t0, false);
        }
        let e = many.active(t0) as f64;
        assert!((e - 20_000.0).abs() < 20_000.0 * 0.05, "{e}");
        // an item no catalog holds counts as a view but does not trend
        assert_eq!(many.events, 20_000);
        assert!(many.trending.is_empty(), "only catalog items trend");
    }
}
