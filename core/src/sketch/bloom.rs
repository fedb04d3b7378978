//! The seen filter: a scalable Bloom filter (Almeida et al., 2007).
//!
//! It starts with one small layer and adds a layer twice as large whenever the newest one reaches
//! its capacity. Layer `i` is built for error `p0 * r^i` with `r = 1/2` and `p0 = p * (1 - r)`, so
//! the compound false-positive rate stays under the configured `p` however far the filter grows.
//! A Bloom filter never forgets: no false negatives, so "not seen" is certain.

use crate::memory::alloc_size;

/// Layer error tightening ratio.
const TIGHTENING: f64 = 0.5;
/// Most layers a filter may have (capacity doubles each time: 2^40 items is far beyond any session).
pub const MAX_LAYERS: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub capacity: u64,
    pub count: u64,
    pub hashes: u32,
    pub bits: Box<[u64]>,
}

impl Layer {
    /// A layer for `capacity` items at false-positive rate `error`.
    fn new(capacity: u64, error: f64) -> Layer {
        let ln2 = std::f64::consts::LN_2;
        let bits = (-(capacity as f64) * error.ln() / (ln2 * ln2))
            .ceil()
            .max(64.0);
        let words = (bits / 64.0).ceil() as usize;
        let m = (words * 64) as f64;
        let hashes = ((m / capacity as f64) * ln2).round().clamp(1.0, 30.0) as u32;
        Layer {
            capacity,
            count: 0,
            hashes,
            bits: vec![0u64; words].into_boxed_slice(),
        }
    }

    fn positions(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = usize> + '_ {
        let m = (self.bits.len() * 64) as u64;
        let step = h2 | 1;
        (0..u64::from(self.hashes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(step)) % m) as usize)
    }

    fn contains(&self, h: (u64, u64)) -> bool {
        self.positions(h)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    fn insert(&mut self, h: (u64, u64)) {
        let m = (self.bits.len() * 64) as u64;
        let step = h.1 | 1;
        for i in 0..u64::from(self.hashes) {
            let p = (h.0.wrapping_add(i.wrapping_mul(step)) % m) as usize;
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.count += 1;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalableBloom {
    /// Capacity of the first layer.
    pub initial_capacity: u64,
    /// Compound false-positive bound.
    pub error: f64,
    pub layers: Vec<Layer>,
}

impl ScalableBloom {
    /// An empty filter; no memory is allocated until the first insert.
    pub fn new(initial_capacity: u64, error: f64) -> Self {
        ScalableBloom {
            initial_capacity: initial_capacity.max(1),
            error,
            layers: Vec::new(),
        }
    }

    fn layer_error(&self, index: usize) -> f64 {
        self.error * (1.0 - TIGHTENING) * TIGHTENING.powi(index as i32)
    }

    pub fn contains_hashes(&self, h: (u64, u64)) -> bool {
        self.layers.iter().any(|l| l.contains(h))
    }

    /// Adds an item by its hashes; returns whether it was (probably) present before.
    pub fn insert_hashes(&mut self, h: (u64, u64)) -> bool {
        if self.contains_hashes(h) {
            return true;
        }
        let full = self.layers.last().is_none_or(|l| l.count >= l.capacity);
        if full && self.layers.len() < MAX_LAYERS {
            let index = self.layers.len();
            let capacity = self.initial_capacity.saturating_mul(1 << index);
            self.layers.reserve_exact(1);
            self.layers
                .push(Layer::new(capacity, self.layer_error(index)));
        }
        if let Some(layer) = self.layers.last_mut() {
            layer.insert(h);
        }
        false
    }

    /// Items inserted (each counted once, as the filter judged novelty).
    pub fn count(&self) -> u64 {
        self.layers.iter().map(|l| l.count).sum()
    }

    pub fn bits(&self) -> u64 {
        self.layers.iter().map(|l| l.bits.len() as u64 * 64).sum()
    }

    pub fn heap_size(&self) -> usize {
        alloc_size(self.layers.capacity() * std::mem::size_of::<Layer>())
            + self
                .layers
                .iter()
                .map(|l| alloc_size(l.bits.len() * 8))
                .sum::<usize>()
    }

    /// Checks the invariants a decoded filter must hold (the codec calls this).
    pub fn is_consistent(&self) -> bool {
        self.initial_capacity >= 1
            && self.error > 0.0
            && self.error < 0.5
            && self.layers.len() <= MAX_LAYERS
            && self.layers.iter().enumerate().all(|(i, l)| {
                l.capacity == self.initial_capacity.saturating_mul(1 << i)
                    && l.count <= l.capacity
                    && (1..=30).contains(&l.hashes)
                    && !l.bits.is_empty()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::seen_hashes;

    fn item(prefix: &str, i: u64) -> Vec<u8> {
        format!("{prefix}{i}").into_bytes()
    }

    #[test]
    fn no_false_negatives_and_growth() {
        let mut f = ScalableBloom::new(64, 0.01);
        assert_eq!(f.heap_size(), 0, "empty filter allocates nothing");
        for i in 0..5_000 {
            f.insert_hashes(seen_hashes(&item("a", i)));
        }
        for i in 0..5_000 {
            assert!(
                f.contains_hashes(seen_hashes(&item("a", i))),
                "false negative at {i}"
            );
        }
        assert!(f.layers.len() >= 6);
        assert!(f.is_consistent());
    }

    fn false_positive_rate(initial: u64, error: f64, inserted: u64) -> f64 {
        let mut f = ScalableBloom::new(initial, error);
        for i in 0..inserted {
            f.insert_hashes(seen_hashes(&item("member-", i)));
        }
        let trials = 100_000;
        let hits = (0..trials)
            .filter(|&i| f.contains_hashes(seen_hashes(&item("stranger-", i))))
            .count();
        hits as f64 / trials as f64
    }

    #[test]
    fn false_positive_rate_at_design_capacity_is_within_one_and_a_half_times() {
        for (initial, error, inserted) in [
            (1000, 0.01, 1000),
            (128, 0.01, 1000),
            (128, 0.001, 5000),
            (64, 0.05, 640),
        ] {
            let rate = false_positive_rate(initial, error, inserted);
            assert!(
                rate <= error * 1.5,
                "initial {initial}, error {error}, {inserted} items: measured {rate}"
            );
        }
    }

    #[test]
    fn hundred_items_fit_in_a_few_hundred_bytes() {
        let mut f = ScalableBloom::new(128, 0.01);
        for i in 0..100 {
            f.insert_hashes(seen_hashes(&item("p", i)));
        }
        assert!(f.heap_size() <= 256, "{} bytes", f.heap_size());
    }
}
