//! The seen filter: a scalable Bloom filter (Almeida et al., 2007).
//!
//! It starts with one small layer and adds a layer twice as large whenever the newest one reaches
//! its capacity. Layer `i` is built for error `p0 * r^i` with `r = 1/2` and `p0 = p * (1 - r)`, so
//! the compound false-positive rate stays under the configured `p` however far the filter grows.
//! A Bloom filter never forgets: no false negatives, so "not seen" is certain.

use smallvec::SmallVec;

use crate::mem::alloc_size;
use crate::mem::prefetch;

/// Layer error tightening ratio.
const TIGHTENING: f64 = 0.5;
/// Most layers a filter may have (capacity doubles each time: 2^40 items is far beyond any session).
pub const MAX_LAYERS: usize = 40;
/// Most hash functions a layer uses.
const MAX_HASHES: usize = 30;

/// One layer's bookkeeping; its bits are `words` words of the filter's shared bit array, starting
/// at word `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub capacity: u64,
    pub count: u64,
    pub hashes: u32,
    /// Word offset and length in the shared array (32 bits: a layer of 2^32 words would be
    /// 32 GiB, far beyond any session limit).
    start: u32,
    words: u32,
}

/// Bit positions of an item in a layer of `m` bits: `(h1 + i * (h2 | 1)) mod 2^64 mod m` for
/// `i < k` (double hashing; the wrap-around at 2^64 is part of the saved filters' definition).
/// Computed incrementally with three divisions instead of `k`: the value modulo `m` advances by
/// `step mod m`, and every wrap at 2^64 takes `2^64 mod m` off it.
fn positions(h: (u64, u64), m: u64, k: usize, out: &mut [u64; MAX_HASHES]) {
    let step = h.1 | 1;
    let s = step % m;
    let wrap = (u64::MAX % m + 1) % m;
    let mut x = h.0;
    let mut q = h.0 % m;
    for slot in out.iter_mut().take(k) {
        *slot = q;
        let (next, wrapped) = x.overflowing_add(step);
        x = next;
        q += s;
        if q >= m {
            q -= m;
        }
        if wrapped {
            q = if q >= wrap { q - wrap } else { q + m - wrap };
        }
    }
}

impl Layer {
    fn bits<'a>(&self, words: &'a [u64]) -> &'a [u64] {
        let start = self.start as usize;
        &words[start..start + self.words as usize]
    }

    fn m(&self) -> u64 {
        u64::from(self.words) * 64
    }

    fn k(&self) -> usize {
        (self.hashes as usize).min(MAX_HASHES)
    }

    fn contains(&self, words: &[u64], h: (u64, u64)) -> bool {
        let bits = self.bits(words);
        let mut at = [0u64; MAX_HASHES];
        positions(h, self.m(), self.k(), &mut at);
        at[..self.k()]
            .iter()
            .all(|&p| bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }
}

/// Shape of a new layer for `capacity` items at false-positive rate `error`: (words, hashes).
fn layer_shape(capacity: u64, error: f64) -> (usize, u32) {
    let ln2 = std::f64::consts::LN_2;
    let bits = (-(capacity as f64) * libm::log(error) / (ln2 * ln2))
        .ceil()
        .max(64.0);
    let words = (bits / 64.0).ceil() as usize;
    let m = (words * 64) as f64;
    let hashes = ((m / capacity as f64) * ln2)
        .round()
        .clamp(1.0, MAX_HASHES as f64) as u32;
    (words, hashes)
}

/// An item's bit positions in a filter's newest layer (`ScalableBloom::probe`).
pub struct Probe {
    h: (u64, u64),
    /// Index and size in bits of the layer `at` was computed for (`usize::MAX` and 0 when the
    /// filter had none): an insert recomputes the positions unless both still match.
    layer: usize,
    m: u64,
    at: [u64; MAX_HASHES],
}

/// A scalable Bloom filter. All layers' bits live in one array (one allocation, so an insert
/// touches the filter's bits behind a single pointer), and the first two layers' bookkeeping is
/// kept inline.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalableBloom {
    /// Capacity of the first layer.
    pub initial_capacity: u64,
    /// Compound false-positive bound.
    pub error: f64,
    layers: SmallVec<[Layer; 2]>,
    words: Vec<u64>,
}

impl ScalableBloom {
    /// An empty filter; no memory is allocated until the first insert.
    pub fn new(initial_capacity: u64, error: f64) -> Self {
        ScalableBloom {
            initial_capacity: initial_capacity.max(1),
            error,
            layers: SmallVec::new(),
            words: Vec::new(),
        }
    }

    /// A filter from saved layers `(count, hashes, bits)`, oldest first (the codec's
    /// constructor; check the result with `is_consistent`).
    pub fn from_layers(
        initial_capacity: u64,
        error: f64,
        saved: Vec<(u64, u32, Vec<u64>)>,
    ) -> Self {
        let total = saved.iter().map(|(_, _, b)| b.len()).sum();
        let mut f = ScalableBloom {
            initial_capacity,
            error,
            layers: SmallVec::with_capacity(saved.len()),
            words: Vec::with_capacity(total),
        };
        for (i, (count, hashes, bits)) in saved.into_iter().enumerate() {
            f.layers.push(Layer {
                capacity: initial_capacity.checked_shl(i as u32).unwrap_or(u64::MAX),
                count,
                hashes,
                // Saturated offsets fail `is_consistent`.
                start: u32::try_from(f.words.len()).unwrap_or(u32::MAX),
                words: u32::try_from(bits.len()).unwrap_or(u32::MAX),
            });
            f.words.extend_from_slice(&bits);
        }
        f
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The newest layer's bits, the lines an insert reads (see `crate::mem::hints`).
    pub fn hot_span(&self) -> (usize, u8) {
        match self.layers.last() {
            Some(last) => crate::mem::hints::span_of(last.bits(&self.words), 8),
            None => (0, 0),
        }
    }

    /// The bits of `layer` (one of this filter's layers).
    pub fn layer_bits(&self, layer: &Layer) -> &[u64] {
        layer.bits(&self.words)
    }

    fn layer_error(&self, index: usize) -> f64 {
        self.error * (1.0 - TIGHTENING) * TIGHTENING.powi(index as i32)
    }

    pub fn contains_hashes(&self, h: (u64, u64)) -> bool {
        self.layers.iter().any(|l| l.contains(&self.words, h))
    }

    /// The newest layer's bit positions for `h`, with their cache lines requested from memory
    /// (see `crate::mem::prefetch`), for `insert_probed`: an insert computes them once and the lines
    /// load while the rest of the event is recorded.
    pub fn probe(&self, h: (u64, u64)) -> Probe {
        let mut probe = Probe {
            h,
            layer: usize::MAX,
            m: 0,
            at: [0; MAX_HASHES],
        };
        if let Some(last) = self.layers.last() {
            probe.layer = self.layers.len() - 1;
            probe.m = last.m();
            let bits = last.bits(&self.words);
            positions(h, last.m(), last.k(), &mut probe.at);
            for &p in &probe.at[..last.k()] {
                prefetch::line(&bits[(p / 64) as usize]);
            }
        }
        probe
    }

    /// Adds an item by its hashes; returns whether it was (probably) present before.
    pub fn insert_hashes(&mut self, h: (u64, u64)) -> bool {
        let probe = self.probe(h);
        self.insert_probed(&probe)
    }

    /// `insert_hashes` with the newest layer's positions from `probe` (taken from this filter,
    /// unchanged since).
    pub fn insert_probed(&mut self, probe: &Probe) -> bool {
        let h = probe.h;
        let n = self.layers.len();
        if n > 1
            && self.layers[..n - 1]
                .iter()
                .any(|l| l.contains(&self.words, h))
        {
            return true;
        }
        let mut at = probe.at;
        if let Some(last) = self.layers.last() {
            let k = last.k();
            if probe.layer != n - 1 || probe.m != last.m() {
                positions(h, last.m(), k, &mut at);
            }
            let (start, words) = (last.start as usize, last.words as usize);
            // Full and room to grow: the item goes to a new layer below. At the last layer
            // allowed, the newest layer takes it beyond its capacity.
            let stays =
                last.count < last.capacity || n >= MAX_LAYERS || self.next_layer(n).is_none();
            let bits = &mut self.words[start..start + words];
            if at[..k]
                .iter()
                .all(|&p| bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
            {
                return true;
            }
            if stays {
                for &p in &at[..k] {
                    bits[(p / 64) as usize] |= 1 << (p % 64);
                }
                if let Some(last) = self.layers.last_mut() {
                    last.count += 1;
                }
                return false;
            }
        }
        let Some(mut layer) = self.next_layer(n) else {
            return false; // unreachable: checked above (a first layer always fits)
        };
        layer.count = 1;
        let (start, words) = (layer.start as usize, layer.words as usize);
        self.words.reserve_exact(words);
        self.words.resize(start + words, 0);
        positions(h, layer.m(), layer.k(), &mut at);
        let bits = &mut self.words[start..];
        for &p in &at[..layer.k()] {
            bits[(p / 64) as usize] |= 1 << (p % 64);
        }
        self.layers.push(layer);
        false
    }

    /// The empty layer that would follow `index` existing ones; None when its offsets would not
    /// fit in 32 bits (tens of GiB: never, in practice).
    fn next_layer(&self, index: usize) -> Option<Layer> {
        let capacity = self.initial_capacity.saturating_mul(1 << index);
        let (words, hashes) = layer_shape(capacity, self.layer_error(index));
        Some(Layer {
            capacity,
            count: 0,
            hashes,
            start: u32::try_from(self.words.len()).ok()?,
            words: u32::try_from(words).ok()?,
        })
    }

    /// Items inserted (each counted once, as the filter judged novelty).
    pub fn count(&self) -> u64 {
        self.layers.iter().map(|l| l.count).sum()
    }

    pub fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    pub fn heap_size(&self) -> usize {
        let layers = if self.layers.spilled() {
            alloc_size(self.layers.capacity() * std::mem::size_of::<Layer>())
        } else {
            0
        };
        layers + alloc_size(self.words.capacity() * 8)
    }

    /// Checks the invariants a decoded filter must hold (the codec calls this): its sizing lies in
    /// the live configuration's ranges (`crate::limits`), every layer has exactly the shape this
    /// filter would have given it (so the next layer, which follows from the same sizing, is one the
    /// live configuration could have made), and every layer but the newest is full (a layer is only
    /// added when the newest one reaches its capacity).
    pub fn is_consistent(&self) -> bool {
        use crate::limits::{within, SEEN_CAPACITY, SEEN_ERROR};
        let capacity_ok =
            u32::try_from(self.initial_capacity).is_ok_and(|c| within(c, SEEN_CAPACITY));
        if !capacity_ok || !within(self.error, SEEN_ERROR) || self.layers.len() > MAX_LAYERS {
            return false;
        }
        let newest = self.layers.len().saturating_sub(1);
        let mut next = 0;
        self.layers.iter().enumerate().all(|(i, l)| {
            let (words, hashes) = layer_shape(l.capacity, self.layer_error(i));
            let fill_ok = if i < newest {
                l.count == l.capacity
            } else {
                l.count <= l.capacity || self.layers.len() == MAX_LAYERS
            };
            let ok = l.capacity == self.initial_capacity.saturating_mul(1 << i)
                && fill_ok
                && l.hashes == hashes
                && l.words as usize == words
                && l.start as usize == next;
            next += l.words as usize;
            ok
        }) && next == self.words.len()
    }

    /// The words the first layer of a filter sized `(initial_capacity, error)` takes: what the
    /// first event allocates.
    pub fn first_layer_words(initial_capacity: u64, error: f64) -> usize {
        layer_shape(initial_capacity, error * (1.0 - TIGHTENING)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::hash::seen_hashes;

    fn item(prefix: &str, i: u64) -> Vec<u8> {
        format!("{prefix}{i}").into_bytes()
    }

    #[test]
    fn incremental_positions_match_the_defining_formula() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for words in [1u64, 3, 23, 24, 46, 64, 1000, 4096] {
            let m = words * 64;
            for _ in 0..2_000 {
                let mut h = (next(), next());
                if words == 3 {
                    h.0 = u64::MAX - (h.0 % 5); // wrap on the very first step
                }
                let mut at = [0u64; MAX_HASHES];
                positions(h, m, MAX_HASHES, &mut at);
                for (i, &p) in at.iter().enumerate() {
                    let expected = h.0.wrapping_add((i as u64).wrapping_mul(h.1 | 1)) % m;
                    assert_eq!(p, expected, "m {m}, h {h:?}, i {i}");
                }
            }
        }
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
    fn consistency_follows_the_live_ranges_and_the_layer_shapes() {
        // the crash of issue 15: capacity 2^24, error 1e-300, no layers
        assert!(!ScalableBloom::new(1 << 24, 1e-300).is_consistent());
        assert!(!ScalableBloom::new(1_000_001, 0.01).is_consistent());
        assert!(!ScalableBloom::new(128, 1e-10).is_consistent());
        assert!(!ScalableBloom::new(128, 0.26).is_consistent());
        assert!(!ScalableBloom::new(128, f64::NAN).is_consistent());
        assert!(ScalableBloom::new(1_000_000, 1e-9).is_consistent());
        // the largest first layer the live configuration can make: about 5.6 MB
        assert!(ScalableBloom::first_layer_words(1_000_000, 1e-9) * 8 < 6_000_000);

        let mut f = ScalableBloom::new(8, 0.01);
        for i in 0..100 {
            f.insert_hashes(seen_hashes(&item("x", i)));
        }
        assert!(f.is_consistent() && f.layers.len() > 2);
        let saved = |f: &ScalableBloom| -> Vec<(u64, u32, Vec<u64>)> {
            f.layers()
                .iter()
                .map(|l| (l.count, l.hashes, f.layer_bits(l).to_vec()))
                .collect()
        };
        let good = saved(&f);
        assert!(ScalableBloom::from_layers(8, 0.01, good.clone()).is_consistent());
        // a layer of another size than its capacity and error give it
        let mut wide = good.clone();
        wide[0].2.push(0);
        assert!(!ScalableBloom::from_layers(8, 0.01, wide).is_consistent());
        // another hash count
        let mut hashes = good.clone();
        hashes[1].1 += 1;
        assert!(!ScalableBloom::from_layers(8, 0.01, hashes).is_consistent());
        // an older layer that is not full
        let mut partial = good.clone();
        partial[0].0 -= 1;
        assert!(!ScalableBloom::from_layers(8, 0.01, partial).is_consistent());
        // the same layers under another error rate
        assert!(!ScalableBloom::from_layers(8, 0.02, good).is_consistent());
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
