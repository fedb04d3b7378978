//! Activity monitoring: everything one session's events leave behind.
//!
//! Counters and times, a minute-level bitmap of the last 64 minutes, an hour-of-day histogram, the
//! seen filter (Bloom), distinct items (HyperLogLog) and decayed category interests. The struct
//! lives inside the session (an event reads it without a pointer hop: at 10,000 sessions this
//! took TOUCH from 1.8 to 1.5 us of server time); its sketches allocate only at the first event
//! and grow with use, so a session that records no activity carries the ~280-byte header only.

pub mod bloom;
pub mod hash;
pub mod hll;
pub mod impressions;
pub mod interests;

use crate::activity::bloom::{Probe, ScalableBloom};
use crate::activity::hash::{distinct_hash, seen_hashes};
use crate::activity::hll::HyperLogLog;
use crate::activity::interests::Interests;
use crate::limits;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// Sizing of a session's sketches, fixed when its first event creates them (configuration changes
/// apply to sessions whose activity starts afterwards; a session never changes shape under a
/// replica). Carried in the replicated command, so replicas build the same sketches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SketchParams {
    /// Capacity of the seen filter's first layer.
    pub seen_capacity: u32,
    /// Compound false-positive bound of the seen filter.
    pub seen_error: f64,
    /// HyperLogLog precision (2^p registers).
    pub hll_precision: u8,
    /// Categories kept in the interests.
    pub top_n: u16,
    /// Interest half-life in seconds.
    pub half_life_s: u32,
}

impl Default for SketchParams {
    fn default() -> Self {
        SketchParams {
            seen_capacity: 128,
            seen_error: 0.01,
            hll_precision: 10,
            top_n: 8,
            half_life_s: 3_600,
        }
    }
}

impl SketchParams {
    pub const SEEN_CAPACITY_MAX: u32 = limits::SEEN_CAPACITY.1;
    pub const SEEN_ERROR_MIN: f64 = limits::SEEN_ERROR.0;
    pub const SEEN_ERROR_MAX: f64 = limits::SEEN_ERROR.1;
    pub const TOP_N_MAX: u16 = limits::TOP_N.1;

    /// Whether every value lies in the range the configuration and `PARAMS` accept
    /// (`crate::limits`): the only sizings a session's sketches can have.
    pub fn is_valid(&self) -> bool {
        limits::within(self.seen_capacity, limits::SEEN_CAPACITY)
            && limits::within(self.seen_error, limits::SEEN_ERROR)
            && limits::within(self.hll_precision, limits::HLL_PRECISION)
            && limits::within(self.top_n, limits::TOP_N)
            && limits::within(self.half_life_s, limits::LIFETIME_S)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub top_n: u16,
    pub half_life_s: u32,
    pub events: u64,
    pub first_event_ms: i64,
    pub last_event_ms: i64,
    /// Longest pause between two consecutive events (the `returning` segment reads it).
    pub longest_gap_ms: i64,
    /// Minute index (Unix ms / 60000) of the newest event.
    pub last_minute: i64,
    /// Bit i set: there was an event in minute `last_minute - i`.
    pub minutes: u64,
    /// Events per UTC hour of the day. Boxed (96 bytes on the heap, from the first event): inline
    /// it takes the session struct from 440 to 528 bytes, past the 512-byte size class, and the
    /// spec's reference session over 2 KiB; an event prefetches its lines (`prepare_event`).
    pub hours: Box<[u32; 24]>,
    pub seen: ScalableBloom,
    pub distinct: HyperLogLog,
    pub interests: Interests,
}

/// An event's hashes and newest-layer filter positions, computed ahead of recording it
/// (`Activity::prepare_event`).
pub struct EventPrep {
    seen: Probe,
    distinct: u64,
}

impl Activity {
    pub fn new(params: &SketchParams) -> Self {
        Activity {
            top_n: params.top_n,
            half_life_s: params.half_life_s,
            events: 0,
            first_event_ms: 0,
            last_event_ms: 0,
            longest_gap_ms: 0,
            last_minute: 0,
            minutes: 0,
            hours: Box::new([0; 24]),
            seen: ScalableBloom::new(u64::from(params.seen_capacity), params.seen_error),
            distinct: HyperLogLog::new(params.hll_precision),
            interests: Interests::default(),
        }
    }

    pub fn half_life_ms(&self) -> i64 {
        i64::from(self.half_life_s) * 1000
    }

    /// Hashes `item` and finds its filter positions, asking for every cache line that recording
    /// it will touch (the filter's bit words, the HyperLogLog register, the interests), so that
    /// they load while the caller does other work (see `crate::mem::prefetch`). Hand the result to
    /// `record_prepared` before anything else changes this activity.
    pub fn prepare_event(&self, item: &[u8], with_categories: bool) -> EventPrep {
        let seen = self.seen.probe(seen_hashes(item));
        let distinct = distinct_hash(item);
        self.distinct.prefetch(distinct);
        crate::mem::prefetch::slice(&self.hours[..], 2);
        if with_categories {
            self.interests.prefetch();
        }
        EventPrep { seen, distinct }
    }

    /// Records a view of `item` at `t_ms`; returns whether the item was (probably) seen before.
    pub fn record(&mut self, item: &[u8], categories: &[&[u8]], t_ms: i64) -> bool {
        // The sketches live in their own allocations: request all of their lines first, so the
        // misses overlap, then update.
        let prep = self.prepare_event(item, !categories.is_empty());
        self.record_prepared(&prep, categories, t_ms)
    }

    /// `record` of the item `prep` was prepared for (by `prepare_event` on this activity).
    pub fn record_prepared(&mut self, prep: &EventPrep, categories: &[&[u8]], t_ms: i64) -> bool {
        let minute = t_ms.div_euclid(MINUTE_MS);
        if self.events == 0 {
            self.first_event_ms = t_ms;
            self.last_event_ms = t_ms;
            self.last_minute = minute;
            self.minutes = 1;
        } else {
            if t_ms > self.last_event_ms {
                self.longest_gap_ms = self.longest_gap_ms.max(t_ms - self.last_event_ms);
                self.last_event_ms = t_ms;
            }
            self.first_event_ms = self.first_event_ms.min(t_ms);
            if minute > self.last_minute {
                let shift = minute - self.last_minute;
                self.minutes = if shift >= 64 {
                    0
                } else {
                    self.minutes << shift
                };
                self.minutes |= 1;
                self.last_minute = minute;
            } else if self.last_minute - minute < 64 {
                self.minutes |= 1 << (self.last_minute - minute);
            }
        }
        self.events = self.events.saturating_add(1);
        let hour = t_ms.div_euclid(HOUR_MS).rem_euclid(24) as usize;
        self.hours[hour] = self.hours[hour].saturating_add(1);
        // The seen filter answers first: an exact distinct-items sketch needs its answer (no
        // false negatives) to tell a different item sharing a listed fingerprint from a repeat.
        // This is the only place an item enters the distinct sketch.
        let seen_before = self.seen.insert_probed(&prep.seen);
        self.distinct.insert_seen(prep.distinct, Some(seen_before));
        if !categories.is_empty() {
            self.interests.record(
                categories,
                t_ms,
                self.half_life_ms(),
                usize::from(self.top_n),
            );
        }
        seen_before
    }

    /// Whether `item` was (probably) seen; false is certain.
    pub fn has_seen(&self, item: &[u8]) -> bool {
        self.seen.contains_hashes(seen_hashes(item))
    }

    /// Distinct items, estimated.
    pub fn unique(&self) -> u64 {
        self.distinct.estimate()
    }

    /// Minutes with at least one event among the 60 minutes ending at `now_ms`.
    pub fn active_minutes_last_hour(&self, now_ms: i64) -> u32 {
        if self.events == 0 {
            return 0;
        }
        let shift = (now_ms.div_euclid(MINUTE_MS) - self.last_minute).max(0);
        if shift >= 60 {
            return 0;
        }
        let window = 60 - shift as u32;
        (self.minutes & ((1u64 << window) - 1)).count_ones()
    }

    /// Which of the 60 minutes ending at `now_ms` had an event, as minutes ago (0 = the minute of
    /// `now_ms`), most recent first; its length is `active_minutes_last_hour`.
    pub fn active_minutes_ago(&self, now_ms: i64) -> Vec<u32> {
        if self.events == 0 {
            return Vec::new();
        }
        let shift = (now_ms.div_euclid(MINUTE_MS) - self.last_minute).max(0);
        if shift >= 60 {
            return Vec::new();
        }
        let shift = shift as u32;
        (0..60 - shift)
            .filter(|i| self.minutes & (1u64 << i) != 0)
            .map(|i| i + shift)
            .collect()
    }

    /// The UTC hour of the day with the most events (the earliest on ties); None without events.
    pub fn peak_hour(&self) -> Option<u8> {
        let (hour, &count) = self
            .hours
            .iter()
            .enumerate()
            .rev()
            .max_by_key(|(_, &c)| c)?;
        (count > 0).then_some(hour as u8)
    }

    /// Heap bytes owned beyond the struct itself (which lives inside the session).
    pub fn heap_size(&self) -> usize {
        crate::mem::alloc_size(std::mem::size_of::<[u32; 24]>())
            + self.seen.heap_size()
            + self.distinct.heap_size()
            + self.interests.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_record_equals_a_plain_one() {
        // small capacity: the filter grows layers during the run
        let params = SketchParams {
            seen_capacity: 8,
            ..SketchParams::default()
        };
        let (mut plain, mut prepared) = (Activity::new(&params), Activity::new(&params));
        let cats: [&[u8]; 2] = [b"news", b"golf"];
        for i in 0..500u64 {
            let item = format!("item:{}", (i * 7919) % 97);
            let categories: &[&[u8]] = if i % 3 == 0 {
                &[]
            } else {
                &cats[..(i % 2 + 1) as usize]
            };
            let t = 1_000_000 + (i as i64) * 37_000;
            let a = plain.record(item.as_bytes(), categories, t);
            let prep = prepared.prepare_event(item.as_bytes(), !categories.is_empty());
            let b = prepared.record_prepared(&prep, categories, t);
            assert_eq!(a, b, "seen at {i}");
            assert_eq!(plain, prepared, "state at {i}");
        }
        assert!(
            plain.seen.layers().len() > 1,
            "the run crossed a layer boundary"
        );
    }

    #[test]
    fn two_items_sharing_a_fingerprint_count_as_two() {
        // the seen filter, asked first, tells the second item from a repeat of the first
        let (x, y) = crate::activity::hll::tests::colliding_pair("item:");
        for prepared in [false, true] {
            let mut a = Activity::new(&SketchParams::default());
            for (item, t) in [
                (&x, 1_000),
                (&x, 2_000),
                (&y, 3_000),
                (&y, 4_000),
                (&x, 5_000),
            ] {
                if prepared {
                    let prep = a.prepare_event(item, false);
                    a.record_prepared(&prep, &[], t);
                } else {
                    a.record(item, &[], t);
                }
            }
            assert_eq!(a.unique(), 2, "prepared: {prepared}");
            assert_eq!(a.distinct.extra(), 1);
        }
    }

    #[test]
    fn counts_times_and_seen() {
        let mut a = Activity::new(&SketchParams::default());
        assert!(!a.record(b"p1", &[b"news"], 1_000));
        assert!(a.record(b"p1", &[], 2_000));
        assert!(!a.record(b"p2", &[], 500));
        assert_eq!(a.events, 3);
        assert_eq!((a.first_event_ms, a.last_event_ms), (500, 2_000));
        assert_eq!(a.unique(), 2);
        assert!(a.has_seen(b"p1") && a.has_seen(b"p2"));
        assert!(!a.has_seen(b"p3"));
    }

    #[test]
    fn active_minutes_in_the_last_hour() {
        let mut a = Activity::new(&SketchParams::default());
        for m in [0i64, 1, 1, 5, 59, 70] {
            a.record(b"x", &[], m * MINUTE_MS + 10);
        }
        // At minute 70 the window is minutes 11..=70: only 59 and 70.
        assert_eq!(a.active_minutes_last_hour(70 * MINUTE_MS), 2);
        assert_eq!(a.active_minutes_ago(70 * MINUTE_MS), vec![0, 11]);
        assert_eq!(a.active_minutes_ago(72 * MINUTE_MS), vec![2, 13]);
        assert_eq!(a.active_minutes_ago(200 * MINUTE_MS), Vec::<u32>::new());
        // At minute 60 (before the newest event) the window still ends at the newest minute.
        assert_eq!(a.active_minutes_last_hour(200 * MINUTE_MS), 0);
        let mut b = Activity::new(&SketchParams::default());
        for m in 0..60i64 {
            b.record(b"x", &[], m * MINUTE_MS);
        }
        assert_eq!(b.active_minutes_last_hour(59 * MINUTE_MS), 60);
        assert_eq!(b.active_minutes_last_hour(60 * MINUTE_MS), 59);
    }

    #[test]
    fn peak_hour_and_longest_gap() {
        let mut a = Activity::new(&SketchParams::default());
        assert_eq!(a.peak_hour(), None);
        a.record(b"x", &[], 3 * HOUR_MS);
        a.record(b"x", &[], 5 * HOUR_MS);
        a.record(b"x", &[], 5 * HOUR_MS + 1);
        a.record(b"x", &[], 29 * HOUR_MS); // hour 5 of the next day
        assert_eq!(a.peak_hour(), Some(5));
        assert_eq!(a.longest_gap_ms, 24 * HOUR_MS - 1);
    }
}
