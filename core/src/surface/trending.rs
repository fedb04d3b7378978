//! Site-wide trending items: decayed heavy hitters (space-saving top-K with exponential decay),
//! each with a second, faster-decaying counter for its velocity.
//!
//! Every event for an item adds `2^((t - ref) / half_life)` to the item's counter ("forward
//! decay": the counters are all scaled to one reference time `ref`, so the order of the items
//! never depends on the time they are read at, and an event costs one O(log K) update). The
//! decayed score at `now` is `counter * 2^(-(now - ref) / half_life)`: an item viewed once at
//! `now` scores 1, one viewed once a half-life ago scores 0.5. When an event lies more than
//! `RESCALE_AT / FAST` half-lives after `ref`, every counter is rescaled to the event's time
//! (O(K log K), at most once per `RESCALE_AT / FAST` half-lives of event time: amortized O(1)
//! per event).
//!
//! The fast counter is the same sum with a half-life `FAST` times shorter (the event's weight to
//! the power `FAST`: three multiplications, no second `exp2`), counted from when the item last
//! entered the top-K. Under steady traffic its decayed score is `1/FAST` of the counter's; an
//! item whose views are rising scores more (up to the counter's own score), one whose views are
//! fading less. `velocity_trend` combines the two into what `SURFACE ... BOOST TRENDING` ranks
//! by: `score * (FAST * fast_score / score)^2 = FAST^2 * fast_score^2 / score`, the decayed count
//! weighted by the square of its velocity (1 for steady traffic). A newly hot item overtakes a
//! fading one within a small fraction of a half-life, where the plain counter takes most of one.
//! Its logarithm is kept (the raw counters reach 2^128) and, like the counter's order, it does
//! not depend on the time it is read at up to one term common to every item.
//!
//! Space-saving (Metwally et al., 2005): with K counters in use, an untracked item takes over the
//! smallest counter and adds its weight to it, so an item whose decayed count exceeds 1/K of the
//! total is always tracked (its fast counter starts at the event's own weight: the growth since
//! it entered). `2^x` and `ln x` come from `libm` (deterministic on every host): the same events
//! in the same order build the same bits on a primary, its replicas and an AOF replay.

use std::collections::{BTreeMap, BTreeSet};

/// `session.trend-top-k`: items tracked.
pub const TOP_K: (u32, u32) = (16, 100_000);
/// `session.trend-half-life`, seconds.
pub const HALF_LIFE_S: (u32, u32) = crate::limits::LIFETIME_S;
/// Fast-counter half-lives in one counter half-life.
pub const FAST: u32 = 4;
/// Fast-counter half-lives of event time after `ref` beyond which the counters are rescaled
/// (`RESCALE_AT / FAST` counter half-lives).
pub const RESCALE_AT: f64 = 64.0;
/// The largest counter (either) a saved form may hold: 2^RESCALE_AT per event times 2^64
/// events, far below f64's range.
pub const MAX_COUNTER: f64 = 3.5e38;
/// Bytes one tracked item costs besides its id (its map entry and its order entry).
const ENTRY_OVERHEAD: usize = 72;

/// `w^FAST` by multiplications (exactly reproducible, unlike `powi`).
fn fast_weight(w: f64) -> f64 {
    let w2 = w * w;
    w2 * w2
}

/// Sizing: fixed for the life of the structure (saved with it), changed only by `reshape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendParams {
    pub top_k: u32,
    pub half_life_s: u32,
}

impl TrendParams {
    pub const DEFAULT: TrendParams = TrendParams {
        top_k: 1000,
        half_life_s: 600,
    };

    pub fn valid(&self) -> bool {
        crate::limits::within(self.top_k, TOP_K)
            && crate::limits::within(self.half_life_s, HALF_LIFE_S)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trending {
    params: TrendParams,
    /// The reference time of the counters (ms).
    ref_ms: i64,
    /// id -> (counter, fast counter).
    counts: BTreeMap<Box<[u8]>, (f64, f64)>,
    /// (counter bits, id), ascending: positive finite floats order as their bits.
    order: BTreeSet<(u64, Box<[u8]>)>,
    /// Bytes of the tracked ids (kept as they change).
    id_bytes: usize,
}

impl Default for Trending {
    fn default() -> Self {
        Self::new(TrendParams::DEFAULT)
    }
}

impl Trending {
    pub const fn new(params: TrendParams) -> Self {
        Trending {
            params,
            ref_ms: 0,
            counts: BTreeMap::new(),
            order: BTreeSet::new(),
            id_bytes: 0,
        }
    }

    pub fn params(&self) -> TrendParams {
        self.params
    }

    pub fn ref_ms(&self) -> i64 {
        self.ref_ms
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn half_life_ms(&self) -> f64 {
        f64::from(self.params.half_life_s.max(1)) * 1000.0
    }

    /// Half-lives from `ref` to `t`.
    fn exponent(&self, t: i64) -> f64 {
        (t as f64 - self.ref_ms as f64) / self.half_life_ms()
    }

    /// Counts one event for `item` at `t_ms`: O(log K) (amortized: see the module doc).
    pub fn record(&mut self, item: &[u8], t_ms: i64) {
        if self.counts.is_empty() {
            self.ref_ms = t_ms;
        }
        if self.exponent(t_ms) > RESCALE_AT / f64::from(FAST) {
            self.rescale(t_ms);
        }
        // An event far older than `ref` weighs nothing (and cannot underflow into a NaN).
        let weight = libm::exp2(self.exponent(t_ms).max(-1000.0));
        if weight <= 0.0 || !weight.is_finite() {
            return;
        }
        let fast = fast_weight(weight);
        if let Some(c) = self.counts.get_mut(item) {
            let old = c.0;
            let new = (old + weight).min(MAX_COUNTER);
            *c = (new, (c.1 + fast).min(MAX_COUNTER));
            if new.to_bits() == old.to_bits() {
                return;
            }
            // the order entry moves; its id allocation is reused
            let id = self
                .order
                .take(&(old.to_bits(), Box::from(item)))
                .map_or_else(|| Box::from(item), |(_, id)| id);
            self.order.insert((new.to_bits(), id));
            return;
        }
        let mut base = 0.0;
        let mut spare: Option<Box<[u8]>> = None;
        if self.counts.len() >= self.params.top_k as usize {
            if let Some((bits, victim)) = self.order.pop_first() {
                base = f64::from_bits(bits);
                self.id_bytes = self.id_bytes.saturating_sub(victim.len());
                self.counts.remove(&victim);
                spare = Some(victim);
            }
        }
        let new = (base + weight).min(MAX_COUNTER);
        // the evicted id's allocation holds the new id when the lengths match (ids of one site
        // often do), else a new one
        let id: Box<[u8]> = match spare {
            Some(mut b) if b.len() == item.len() => {
                b.copy_from_slice(item);
                b
            }
            _ => item.into(),
        };
        self.counts.insert(id.clone(), (new, fast));
        self.order.insert((new.to_bits(), id));
        self.id_bytes += item.len();
    }

    /// Scales every counter to reference time `t_ms` (items whose counter underflows go).
    fn rescale(&mut self, t_ms: i64) {
        let factor = libm::exp2(-self.exponent(t_ms));
        let fast_factor = fast_weight(factor);
        self.ref_ms = t_ms;
        let counts = std::mem::take(&mut self.counts);
        self.order.clear();
        self.id_bytes = 0;
        for (id, (c, f)) in counts {
            let v = c * factor;
            if v > 0.0 && v.is_finite() {
                self.id_bytes += id.len();
                self.order.insert((v.to_bits(), id.clone()));
                self.counts
                    .insert(id, (v, (f * fast_factor).min(MAX_COUNTER)));
            }
        }
    }

    /// New sizing: the current decayed scores are kept (rescaled to `now_ms` under the new
    /// half-life), and the smallest counters go beyond the new K. O(K log K), only on a change.
    pub fn reshape(&mut self, params: TrendParams, now_ms: i64) {
        if params == self.params {
            return;
        }
        if !self.counts.is_empty() {
            self.rescale(now_ms);
        }
        self.params = params;
        while self.counts.len() > params.top_k as usize {
            if let Some((_, victim)) = self.order.pop_first() {
                self.id_bytes = self.id_bytes.saturating_sub(victim.len());
                self.counts.remove(&victim);
            }
        }
    }

    /// The decay factor from `ref` to `now_ms`.
    pub fn factor(&self, now_ms: i64) -> f64 {
        libm::exp2(-self.exponent(now_ms).min(1000.0))
    }

    /// Tracked items, most trending first, with their raw counters (multiply by `factor(now)`
    /// for the decayed score).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.order
            .iter()
            .rev()
            .map(|(bits, id)| (&**id, f64::from_bits(*bits)))
    }

    /// The raw counter of `item`, 0 when untracked: O(log K).
    pub fn counter(&self, item: &[u8]) -> f64 {
        self.counts.get(item).map_or(0.0, |c| c.0)
    }

    /// The raw fast counter of `item`, 0 when untracked: O(log K).
    pub fn fast_counter(&self, item: &[u8]) -> f64 {
        self.counts.get(item).map_or(0.0, |c| c.1)
    }

    /// `ln` of `item`'s velocity-weighted trend (see the module doc), up to a term common to
    /// every item; None when untracked or without recent weight. Compare two items' values, or
    /// take `exp` of a difference: O(log K).
    pub fn velocity_trend(&self, item: &[u8]) -> Option<f64> {
        let &(c, f) = self.counts.get(item)?;
        (c > 0.0 && f > 0.0).then(|| 2.0 * libm::log(f) - libm::log(c))
    }

    /// The largest raw counter (0 when empty).
    pub fn max_counter(&self) -> f64 {
        self.order
            .last()
            .map_or(0.0, |(bits, _)| f64::from_bits(*bits))
    }

    /// Approximate heap bytes: O(1).
    pub fn memory(&self) -> usize {
        2 * self.id_bytes + self.counts.len() * ENTRY_OVERHEAD
    }

    /// Tracked (id, counter, fast counter) triples in id order (the saved form).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], f64, f64)> + '_ {
        self.counts.iter().map(|(id, c)| (&**id, c.0, c.1))
    }

    /// Rebuilds from a saved form; None when anything lies outside what live events can build
    /// (sizing out of range, more entries than K, a counter not in (0, MAX_COUNTER], a fast
    /// counter not in [0, MAX_COUNTER], a repeated id). A fast counter of None (a form saved
    /// before there were fast counters) is taken as steady traffic: counter / FAST.
    pub fn from_parts(
        params: TrendParams,
        ref_ms: i64,
        entries: Vec<(Box<[u8]>, f64, Option<f64>)>,
    ) -> Option<Self> {
        if !params.valid() || entries.len() > params.top_k as usize {
            return None;
        }
        let mut t = Trending::new(params);
        t.ref_ms = ref_ms;
        for (id, c, fast) in entries {
            let f = fast.unwrap_or(c / f64::from(FAST));
            if !(c > 0.0 && c <= MAX_COUNTER && (0.0..=MAX_COUNTER).contains(&f)) {
                return None;
            }
            t.id_bytes += id.len();
            t.order.insert((c.to_bits(), id.clone()));
            if t.counts.insert(id, (c, f)).is_some() {
                return None;
            }
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: u32, hl: u32) -> TrendParams {
        TrendParams {
            top_k: k,
            half_life_s: hl,
        }
    }

    fn top(t: &Trending) -> Vec<String> {
        t.iter()
            .map(|(id, _)| String::from_utf8(id.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn counts_decay_and_order() {
        let mut t = Trending::new(p(16, 60));
        for _ in 0..3 {
            t.record(b"a", 0);
        }
        t.record(b"b", 0);
        assert_eq!(top(&t), ["a", "b"]);
        // two half-lives later, two views of b outweigh a's three old ones
        t.record(b"b", 120_000);
        t.record(b"b", 120_000);
        assert_eq!(top(&t), ["b", "a"]);
        let f = t.factor(120_000);
        assert!((t.counter(b"a") * f - 0.75).abs() < 1e-12);
        assert!((t.counter(b"b") * f - 2.25).abs() < 1e-12);
    }

    #[test]
    fn space_saving_keeps_the_heavy_hitters_and_k_bounds() {
        let mut t = Trending::new(p(16, 3600));
        for i in 0..10_000u32 {
            t.record(format!("noise{i}").as_bytes(), 0);
            if i % 4 == 0 {
                t.record(b"hot", 0);
            }
        }
        assert_eq!(t.len(), 16);
        assert_eq!(top(&t)[0], "hot");
    }

    #[test]
    fn rescale_keeps_scores_and_reshape_shrinks() {
        let mut t = Trending::new(p(16, 1));
        t.record(b"a", 0);
        t.record(b"b", 0);
        t.record(b"b", 0);
        let late = 100_000; // 100 half-lives: a rescale
        t.record(b"c", late);
        assert_eq!(t.ref_ms(), late);
        assert_eq!(top(&t), ["c", "b", "a"]);
        assert!(t.counter(b"b") < 1e-29 && (t.counter(b"c") - 1.0).abs() < 1e-12);
        t.record(b"d", late + 1_100_000); // 1100 half-lives on: the old counters underflow
        assert_eq!(top(&t), ["d"], "older counters underflowed");
        let mut u = Trending::new(p(16, 60));
        for i in 0..20 {
            for _ in 0..=i {
                u.record(format!("i{i}").as_bytes(), 1000);
            }
        }
        u.reshape(p(16, 60), 5000);
        assert_eq!(u.len(), 16);
        assert_eq!(top(&u)[0], "i19");
        let before = u.counter(b"i19") * u.factor(60_000);
        u.reshape(p(16, 120), 60_000);
        assert!((u.counter(b"i19") * u.factor(60_000) - before).abs() < 1e-9);
        assert_eq!(u.len(), 16);
        assert!(u.memory() > 0);
        let back = Trending::from_parts(
            u.params(),
            u.ref_ms(),
            u.entries()
                .map(|(i, c, f)| (Box::from(i), c, Some(f)))
                .collect(),
        )
        .unwrap();
        assert_eq!(back, u);
        assert!(Trending::from_parts(p(8, 60), 0, vec![]).is_none());
        assert!(
            Trending::from_parts(p(16, 60), 0, vec![(Box::from(&b"x"[..]), f64::NAN, None)])
                .is_none()
        );
    }

    #[test]
    fn velocity_puts_a_riser_above_a_fading_leader() {
        let mut t = Trending::new(p(16, 60));
        // one view a second: old for 120 s; new from 130 s to 150 s
        for s in 0..=150i64 {
            if s <= 120 {
                t.record(b"old", s * 1000);
            }
            if s >= 130 {
                t.record(b"new", s * 1000);
            }
        }
        t.record(b"one", 150_000);
        assert_eq!(top(&t)[0], "old", "the counter still leads");
        let v = |t: &Trending, id: &[u8]| t.velocity_trend(id).unwrap();
        assert!(v(&t, b"new") > v(&t, b"old") + 2.0, "by e^2 at least");
        // steady traffic: fast / counter settles at 1 / FAST of the scores
        let mut s = Trending::new(p(16, 60));
        for i in 0..3000i64 {
            s.record(b"steady", i * 1000);
        }
        let now = 2_999_000;
        let ratio = s.fast_counter(b"steady") * fast_weight(s.factor(now))
            / (s.counter(b"steady") * s.factor(now));
        assert!((ratio * f64::from(FAST) - 1.0).abs() < 0.05, "{ratio}");
        // a rescale keeps the differences of velocity trends (it shifts them all alike)
        let before = v(&t, b"new") - v(&t, b"old");
        t.record(b"one", 150_000 + 17 * 60_000); // past RESCALE_AT / FAST half-lives
        assert_eq!(t.ref_ms(), 150_000 + 17 * 60_000);
        assert!((v(&t, b"new") - v(&t, b"old") - before).abs() < 1e-9);
        // an item taking over a counter starts its fast counter at its own weight
        let mut k = Trending::new(p(16, 60));
        for i in 0..16 {
            for _ in 0..=i {
                k.record(format!("i{i}").as_bytes(), 0);
            }
        }
        k.record(b"late", 0);
        assert_eq!(k.len(), 16);
        assert_eq!((k.counter(b"late"), k.fast_counter(b"late")), (2.0, 1.0));
        // a form without fast counters loads as steady traffic; a bad fast counter is refused
        let old = Trending::from_parts(p(16, 60), 0, vec![(Box::from(&b"x"[..]), 8.0, None)]);
        assert_eq!(old.map(|o| o.fast_counter(b"x")), Some(2.0));
        for bad in [-1.0, f64::NAN, f64::INFINITY, MAX_COUNTER * 2.0] {
            let e = vec![(Box::from(&b"x"[..]), 8.0, Some(bad))];
            assert!(Trending::from_parts(p(16, 60), 0, e).is_none(), "{bad}");
        }
    }
}
