//! Distinct items: exact while small, then a HyperLogLog (Flajolet et al., 2007).
//!
//! With `p` bits of precision there are `m = 2^p` registers; the standard error is `1.04 / sqrt(m)`.
//!
//! A new sketch is *exact*: a sorted list of distinct 24-bit fingerprints (the top 24 bits of the
//! item's 64-bit xxh3), packed in three bytes an item, plus `extra`, the items whose fingerprint
//! an earlier, different item already had; `unique` is the list's length plus `extra`: exact up to
//! `exact_limit(p)` items (512 at p <= 11, 2^p / 4 above, so the list never outgrows
//! max(2 KiB, the dense registers)). An insert is a binary search over the 3-byte entries and a
//! bounded memmove.
//!
//! Collisions: at n items two of them share a 24-bit fingerprint with probability about
//! n^2 / 2^25 (0.7% at 100, 7% at 500). The caller tells an insert what the session's seen filter
//! (a Bloom filter: no false negatives) answered for the item: when the fingerprint is already
//! listed but the filter says the item was certainly not seen before, it is a different item
//! sharing the fingerprint, and `extra` counts it. The count is wrong (one short) only when a
//! fingerprint collision meets a filter false positive: the i-th new item collides with
//! probability (i - 1) / 2^24 and the filter errs with probability at most its bound `e`, so over
//! n items at most e n^2 / 2^25: 7.5e-5 per session of 500 distinct items at 1% (3e-6 at 100).
//! Without an answer (`insert_hash`) a listed fingerprint is taken for a repeat.
//!
//! The item after the limit turns the sketch *dense* (one byte per register): each fingerprint's
//! top `p` bits are its register and the rest its rank (capped at `25 - p`, an event of
//! probability 2^(p-24) an item, whose register then holds `25 - p` and counts a little low), so
//! the registers are those the items would have made (up to that cap); items that collided add
//! no register of their own (their fingerprint made it). The dense estimate at that
//! moment (`switch_estimate`, saved) differs from the exact count `limit + 1` by about the standard
//! error; the reported count blends the difference out: `e + (limit + 1 - e0) * e0 / e` for the
//! current estimate `e`, equal to the exact count at the switch (continuous) and fading as `1/e`,
//! never below that exact count.
//!
//! Sessions saved before exact counting (encodings up to 4) carry the older *sparse* form, a
//! sorted list of (register, rank) pairs in 16 bits that counts like the dense registers; it keeps
//! working as it did (its items are not recoverable) and turns dense at `m / 2` entries.

use crate::mem::alloc_size;

/// Bytes of one fingerprint in the exact list.
pub const FINGERPRINT_BYTES: usize = 3;
/// Bits of a fingerprint.
const FINGERPRINT_BITS: u32 = 8 * FINGERPRINT_BYTES as u32;

pub const MIN_PRECISION: u8 = crate::limits::HLL_PRECISION.0;
pub const MAX_PRECISION: u8 = crate::limits::HLL_PRECISION.1;
const SPARSE_RANK_MAX: u8 = 15;

/// Distinct items a sketch of precision `p` counts exactly: `crate::limits::DISTINCT_EXACT`, or
/// a quarter of the registers where that is more (the exact list is then never larger than them).
pub fn exact_limit(precision: u8) -> usize {
    let dense = 1usize << precision.min(MAX_PRECISION);
    (crate::limits::DISTINCT_EXACT as usize).max(dense / 4)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registers {
    /// Exact counting: the items' distinct fingerprints (`fingerprint`), strictly increasing;
    /// with the sketch's `extra` at most `exact_limit(precision)` of them.
    Exact(Fingerprints),
    /// The pre-exact sparse form (encodings up to 4): sorted by register index, at most one entry
    /// per register: `index << 4 | rank`.
    Sparse(Vec<u16>),
    /// One byte per register.
    Dense(Box<[u8]>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    pub precision: u8,
    pub registers: Registers,
    /// The dense estimate right after an exact list turned dense (0: never exact, or still is):
    /// the reported count blends the exact count at the switch into the estimate (module docs).
    switch_estimate: u32,
    /// Derived, kept current on every register change so that an estimate is O(1):
    /// the sum over all registers of 2^(64 - rank), exact in integers (so it does not depend on
    /// the order registers changed in), and the number of zero registers.
    sum: u128,
    /// (u16: at most 2^12 registers; it keeps the struct, inline in every session, at 64 bytes)
    zeros: u16,
    /// The estimate from the two above, recomputed when a register changes (most events repeat
    /// an item and change none). While exact, the count: the list's length plus the items counted
    /// beyond it (`extra`; kept here, not in a field of its own, so the struct stays 64 bytes).
    estimate: u64,
}

/// The 24-bit fingerprint an exact sketch keeps of an item's 64-bit hash: its top 24 bits, so
/// the fingerprint's top bits are the item's register at every precision.
pub fn fingerprint(hash: u64) -> u32 {
    (hash >> (64 - FINGERPRINT_BITS)) as u32
}

/// The exact list: 24-bit fingerprints, strictly increasing, packed in three bytes each (big
/// endian, so the bytes sort as the numbers do).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprints(Vec<u8>);

impl Fingerprints {
    /// A list of these fingerprints in this order (not checked: `is_consistent` is); None if one
    /// does not fit in 24 bits.
    pub fn from_values(values: &[u32]) -> Option<Self> {
        let mut bytes = Vec::with_capacity(values.len() * FINGERPRINT_BYTES);
        for &f in values {
            if f >> FINGERPRINT_BITS != 0 {
                return None;
            }
            bytes.extend_from_slice(&entry(f));
        }
        Some(Fingerprints(bytes))
    }

    /// A list over packed entries (the codec's constructor); None unless whole entries.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        bytes
            .len()
            .is_multiple_of(FINGERPRINT_BYTES)
            .then_some(Fingerprints(bytes))
    }

    /// The packed entries (the saved form).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len() / FINGERPRINT_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn entries(&self) -> &[[u8; FINGERPRINT_BYTES]] {
        self.0.as_chunks().0
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries()
            .iter()
            .map(|&[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    fn search(&self, f: u32) -> Result<usize, usize> {
        self.entries().binary_search(&entry(f))
    }

    fn is_strictly_increasing(&self) -> bool {
        self.entries().windows(2).all(|w| w[0] < w[1])
    }

    /// Inserts `f` at entry `i` (from `search`), growing to the next allocator size class (about
    /// +25%, not doubling: at 100 items 320 bytes, which keeps the spec's reference session
    /// within 2 KiB), never past `limit` entries.
    fn insert(&mut self, i: usize, f: u32, limit: usize) {
        let (at, old) = (i * FINGERPRINT_BYTES, self.0.len());
        if at > old {
            return; // not from `search`
        }
        if old + FINGERPRINT_BYTES > self.0.capacity() {
            let want = alloc_size(old + FINGERPRINT_BYTES).min(limit * FINGERPRINT_BYTES);
            self.0
                .reserve_exact(want.saturating_sub(old).max(FINGERPRINT_BYTES));
        }
        self.0.extend_from_slice(&[0; FINGERPRINT_BYTES]);
        self.0.copy_within(at..old, at + FINGERPRINT_BYTES);
        if let Some(slot) = self.0.get_mut(at..at + FINGERPRINT_BYTES) {
            slot.copy_from_slice(&entry(f));
        }
    }

    fn heap_size(&self) -> usize {
        alloc_size(self.0.capacity())
    }
}

/// The packed entry of fingerprint `f`.
fn entry(f: u32) -> [u8; FINGERPRINT_BYTES] {
    let [_, a, b, c] = f.to_be_bytes();
    [a, b, c]
}

impl HyperLogLog {
    pub fn new(precision: u8) -> Self {
        let precision = precision.clamp(MIN_PRECISION, MAX_PRECISION);
        Self::from_registers(precision, Registers::Exact(Fingerprints::default()))
    }

    /// An exact sketch of `list` and `extra` items beyond it (the codec's constructor).
    pub fn from_exact(precision: u8, list: Fingerprints, extra: u16) -> Self {
        let mut h = Self::from_registers(precision, Registers::Exact(list));
        h.estimate = h.estimate.saturating_add(u64::from(extra));
        h
    }

    /// A sketch over existing registers (the codec's constructor); derived sums are recomputed.
    pub fn from_registers(precision: u8, registers: Registers) -> Self {
        Self::from_parts(precision, registers, 0)
    }

    /// `from_registers` of dense registers an exact list turned into, with the estimate they gave
    /// at that moment (`switch_estimate`).
    pub fn from_parts(precision: u8, registers: Registers, switch_estimate: u32) -> Self {
        let m = 1u16 << precision.min(MAX_PRECISION);
        let mut h = HyperLogLog {
            precision,
            registers,
            switch_estimate,
            sum: u128::from(m) << 64,
            zeros: m,
            estimate: 0,
        };
        let ranks: Vec<u8> = match &h.registers {
            Registers::Exact(_) => Vec::new(),
            Registers::Sparse(list) => list.iter().map(|e| (e & 0xf) as u8).collect(),
            Registers::Dense(regs) => regs.to_vec(),
        };
        for r in ranks {
            h.account(0, r);
        }
        h.estimate = match &h.registers {
            Registers::Exact(list) => list.len() as u64,
            _ => h.compute_estimate(),
        };
        h
    }

    /// The dense estimate when the exact list turned dense; 0 if it never did.
    pub fn switch_estimate(&self) -> u32 {
        self.switch_estimate
    }

    /// While exact: the items counted beyond the list (fingerprint collisions); 0 once dense.
    pub fn extra(&self) -> u16 {
        match &self.registers {
            Registers::Exact(list) => {
                let extra = self.estimate.saturating_sub(list.len() as u64);
                u16::try_from(extra).unwrap_or(u16::MAX)
            }
            _ => 0,
        }
    }

    /// Updates the derived sums for one register going from rank `old` to rank `new`.
    fn account(&mut self, old: u8, new: u8) {
        let weight = |r: u8| 1u128 << (64 - u32::from(r.min(64)));
        // Saturating: a decoded sketch is checked for consistency only after it is built.
        self.sum = self
            .sum
            .saturating_sub(weight(old))
            .saturating_add(weight(new));
        if old == 0 && new != 0 {
            self.zeros = self.zeros.saturating_sub(1);
        }
    }

    /// A register went from `old` to `new`: derived sums and estimate follow.
    fn changed(&mut self, old: u8, new: u8) {
        self.account(old, new);
        self.estimate = self.compute_estimate();
    }

    fn m(&self) -> usize {
        1 << self.precision
    }

    /// Register index and rank of a 64-bit hash.
    fn split(&self, hash: u64) -> (usize, u8) {
        let p = u32::from(self.precision);
        let index = (hash >> (64 - p)) as usize;
        let rest = hash << p;
        let rank = (rest.leading_zeros().min(64 - p) + 1) as u8;
        (index, rank)
    }

    /// Register index and rank of a fingerprint (`split` of its hash, the rank capped at `25 - p`).
    fn split_fingerprint(&self, f: u32) -> (usize, u8) {
        let p = u32::from(self.precision);
        let index = (f >> (FINGERPRINT_BITS - p)) as usize;
        let rest = f << (32 - FINGERPRINT_BITS + p);
        let rank = (rest.leading_zeros().min(FINGERPRINT_BITS - p) + 1) as u8;
        (index, rank)
    }

    /// The list an insert searches (see `crate::mem::hints`); nothing once dense (the line an
    /// insert reads then depends on the item).
    pub fn hot_span(&self) -> (usize, u8) {
        match &self.registers {
            Registers::Exact(list) => crate::mem::hints::span_of(list.as_bytes(), 8),
            Registers::Sparse(list) => crate::mem::hints::span_of(list, 8),
            Registers::Dense(_) => (0, 0),
        }
    }

    /// Asks for the cache lines an insert of `hash` will read (see `crate::mem::prefetch`).
    pub fn prefetch(&self, hash: u64) {
        match &self.registers {
            Registers::Dense(regs) => {
                if let Some(r) = regs.get(self.split(hash).0) {
                    crate::mem::prefetch::line(r);
                }
            }
            Registers::Exact(list) => {
                // Fingerprints are uniform: the binary search ends near `f / 2^24` of the way
                // through, and starts in the middle.
                let (bytes, n) = (list.as_bytes(), list.len());
                let at = ((u64::from(fingerprint(hash)) * n as u64) >> FINGERPRINT_BITS) as usize;
                let near = bytes
                    .get(
                        at.saturating_sub(16) * FINGERPRINT_BYTES
                            ..(at + 16).min(n) * FINGERPRINT_BYTES,
                    )
                    .unwrap_or(&[]);
                crate::mem::prefetch::slice(near, 2);
                if let Some(mid) = bytes.get(n / 2 * FINGERPRINT_BYTES) {
                    crate::mem::prefetch::line(mid);
                }
            }
            Registers::Sparse(list) => crate::mem::prefetch::slice(list, 8),
        }
    }

    /// Adds an item by its hash, not knowing whether it was seen before (a listed fingerprint is
    /// taken for a repeat); returns whether the sketch changed.
    pub fn insert_hash(&mut self, hash: u64) -> bool {
        self.insert_seen(hash, None)
    }

    /// Adds an item by its hash, with what the seen filter answered for it before this event
    /// (`Some(false)`: certainly not seen; None: not asked): an exact sketch counts an item whose
    /// fingerprint is listed but which was certainly not seen as a collision (module docs).
    /// Returns whether the sketch changed.
    pub fn insert_seen(&mut self, hash: u64, seen_before: Option<bool>) -> bool {
        let (index, rank) = self.split(hash);
        let m = self.m();
        let limit = exact_limit(self.precision);
        match &mut self.registers {
            Registers::Exact(list) => {
                let f = fingerprint(hash);
                let found = list.search(f);
                if found.is_ok() && seen_before != Some(false) {
                    return false; // a repeat
                }
                if self.estimate >= limit as u64 {
                    self.densify();
                    self.insert_hash(hash);
                    // the estimate the registers give now, and the exact count it replaces
                    self.switch_estimate = u32::try_from(self.estimate).unwrap_or(u32::MAX);
                    self.estimate = self.compute_estimate();
                    return true;
                }
                if let Err(i) = found {
                    list.insert(i, f, limit);
                } // else a different item with a listed fingerprint: counted beyond the list
                self.estimate += 1;
                true
            }
            Registers::Dense(regs) => match regs.get_mut(index) {
                Some(r) if *r < rank => {
                    let old = *r;
                    *r = rank;
                    self.changed(old, rank);
                    true
                }
                _ => false,
            },
            Registers::Sparse(list) => {
                let rank = rank.min(SPARSE_RANK_MAX);
                let entry = (index as u16) << 4 | u16::from(rank);
                match list.binary_search_by_key(&(index as u16), |e| e >> 4) {
                    Ok(i) => match list.get_mut(i) {
                        Some(e) if *e & 0xf < u16::from(rank) => {
                            let old = (*e & 0xf) as u8;
                            *e = entry;
                            self.changed(old, rank);
                            true
                        }
                        _ => false,
                    },
                    Err(i) => {
                        list.insert(i, entry);
                        let full = list.len() * 2 >= m;
                        self.changed(0, rank);
                        if full {
                            self.densify();
                        }
                        true
                    }
                }
            }
        }
    }

    /// Turns an exact or sparse sketch into its dense registers.
    fn densify(&mut self) {
        let mut regs = vec![0u8; self.m()].into_boxed_slice();
        match &self.registers {
            Registers::Dense(_) => {}
            Registers::Sparse(list) => {
                for e in list {
                    if let Some(r) = regs.get_mut(usize::from(e >> 4)) {
                        *r = (e & 0xf) as u8;
                    }
                }
                // same ranks: derived sums unchanged
                self.registers = Registers::Dense(regs);
            }
            Registers::Exact(list) => {
                for f in list.iter() {
                    let (index, rank) = self.split_fingerprint(f);
                    if let Some(r) = regs.get_mut(index) {
                        *r = (*r).max(rank);
                    }
                }
                *self = Self::from_parts(self.precision, Registers::Dense(regs), 0);
            }
        }
    }

    /// The count of distinct items: exact while the sketch is exact, else estimated (kept
    /// current as registers change).
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// The count from the list or the register sums: O(1).
    fn compute_estimate(&self) -> u64 {
        if let Registers::Exact(_) = &self.registers {
            return self.estimate; // the count, kept by inserts
        }
        // Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog
        // sketches", 2017, as Redis's PFCOUNT): `alpha m^2 / (m sigma(zeros / m) + sum over the
        // non-zero registers of 2^-rank)`, one formula from 1 item to 2^64 with no bias tables
        // and no switch from linear counting. Only +, *, / : the same bits on every host.
        // (Saturated registers, a 2^(p-64) event, count like any other.)
        let m = self.m() as f64;
        let zeros = u128::from(self.zeros);
        if zeros == self.m() as u128 {
            return 0;
        }
        let nonzero = self.sum.saturating_sub(zeros << 64) as f64 / 18_446_744_073_709_551_616.0; // 2^64
        let alpha = 0.5 / core::f64::consts::LN_2;
        let estimate = alpha * m * m / (m * sigma(zeros as f64 / m) + nonzero);
        self.blend(estimate.round() as u64)
    }

    /// `e + (exact - e0) * e0 / e` after a switch from exact counting at `e0` (module docs), in
    /// integers (rounded to nearest), so every host computes the same count; never below the
    /// exact count at the switch (the true count only grows; registers far below it, as many
    /// items sharing few fingerprints would leave, would otherwise pull the blend down).
    fn blend(&self, e: u64) -> u64 {
        let e0 = i128::from(self.switch_estimate);
        if e0 == 0 {
            return e;
        }
        let exact = exact_limit(self.precision) as i128 + 1;
        if e == 0 {
            return exact as u64;
        }
        let e = i128::from(e);
        let num = (exact - e0) * e0;
        let correction = if num >= 0 {
            (num + e / 2) / e
        } else {
            -((-num + e / 2) / e)
        };
        u64::try_from((e + correction).max(exact)).unwrap_or(u64::MAX)
    }

    /// Whether the sketch is not dense (exact, or the older sparse form).
    pub fn is_sparse(&self) -> bool {
        !matches!(self.registers, Registers::Dense(_))
    }

    /// Whether the count is exact (the sketch still holds every item's fingerprint).
    pub fn is_exact(&self) -> bool {
        matches!(self.registers, Registers::Exact(_))
    }

    pub fn heap_size(&self) -> usize {
        match &self.registers {
            Registers::Exact(list) => list.heap_size(),
            Registers::Sparse(list) => alloc_size(list.capacity() * 2),
            Registers::Dense(regs) => alloc_size(regs.len()),
        }
    }

    /// Checks the invariants a decoded sketch must hold (the codec calls this).
    pub fn is_consistent(&self) -> bool {
        if !(MIN_PRECISION..=MAX_PRECISION).contains(&self.precision) {
            return false;
        }
        let max_rank = 64 - self.precision + 1;
        match &self.registers {
            Registers::Dense(regs) => regs.len() == self.m() && regs.iter().all(|&r| r <= max_rank),
            Registers::Exact(list) => {
                // the count is the list's length plus the collisions beyond it; a collision needs
                // a listed fingerprint (several items may share one)
                let n = list.len() as u64;
                self.switch_estimate == 0
                    && (n..=exact_limit(self.precision) as u64).contains(&self.estimate)
                    && (self.estimate == n || n > 0)
                    && list.is_strictly_increasing()
            }
            Registers::Sparse(list) => {
                self.switch_estimate == 0
                    && list.len() * 2 < self.m()
                    && list.windows(2).all(|w| w[0] >> 4 < w[1] >> 4)
                    && list
                        .iter()
                        .all(|e| usize::from(e >> 4) < self.m() && e & 0xf != 0)
            }
        }
    }
}

/// `x + sum over k >= 1 of x^(2^k) 2^(k-1)` for `x` in [0, 1) (Ertl's sigma), by repeated squaring
/// until the sum stops changing.
fn sigma(x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let (mut x, mut y, mut z) = (x, 1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::activity::hash::distinct_hash;

    fn fill(precision: u8, n: u64) -> HyperLogLog {
        let mut h = HyperLogLog::new(precision);
        for i in 0..n {
            h.insert_hash(distinct_hash(format!("item:{i}").as_bytes()));
        }
        h
    }

    #[test]
    fn estimates_within_three_standard_errors() {
        for precision in [8u8, 10, 12] {
            let se = 1.04 / ((1u64 << precision) as f64).sqrt();
            for n in [10u64, 1_000, 100_000] {
                let h = fill(precision, n);
                assert!(h.is_consistent());
                let err = (h.estimate() as f64 - n as f64).abs() / n as f64;
                assert!(
                    err <= 3.0 * se,
                    "p={precision} n={n}: estimate {} (error {err:.4}, 3se {:.4})",
                    h.estimate(),
                    3.0 * se
                );
            }
        }
    }

    #[test]
    fn sparse_while_small_then_dense() {
        let h = fill(10, 100);
        assert!(h.is_sparse() && h.is_exact());
        assert!(h.heap_size() <= 512, "{}", h.heap_size());
        let h = fill(10, 2_000);
        assert!(!h.is_sparse());
        assert_eq!(h.heap_size(), 1024);
    }

    #[test]
    fn the_sketch_header_stays_64_bytes() {
        // inline in every session's activity: the session struct must stay in its size class
        assert_eq!(std::mem::size_of::<HyperLogLog>(), 64);
    }

    /// Two different item names whose hashes share a 24-bit fingerprint, the first such pair of
    /// `{prefix}{i}` names (a birthday search: some 5,000 names).
    pub(crate) fn colliding_pair(prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let mut by_fingerprint = std::collections::HashMap::new();
        for i in 0u64.. {
            let name = format!("{prefix}{i}").into_bytes();
            let f = fingerprint(distinct_hash(&name));
            if let Some(other) = by_fingerprint.insert(f, name.clone()) {
                return (other, name);
            }
        }
        unreachable!()
    }

    #[test]
    fn a_shared_fingerprint_counts_twice_when_the_filter_says_new() {
        let (a, b) = colliding_pair("item:");
        let (ha, hb) = (distinct_hash(&a), distinct_hash(&b));
        assert_ne!(a, b);
        assert_eq!(fingerprint(ha), fingerprint(hb));
        let mut h = HyperLogLog::new(10);
        assert!(h.insert_seen(ha, Some(false)));
        // not asked: taken for a repeat; the filter says seen (a repeat, or a false positive):
        // a repeat
        assert!(!h.insert_hash(hb));
        assert!(!h.insert_seen(hb, Some(true)));
        assert_eq!(h.estimate(), 1);
        // certainly not seen: a different item, counted beyond the list
        assert!(h.insert_seen(hb, Some(false)));
        assert_eq!((h.estimate(), h.extra()), (2, 1));
        assert!(h.is_consistent() && h.is_exact());
        // the collision counts toward the limit: the switch comes one item earlier, and counts
        // exactly
        let limit = exact_limit(10) as u64;
        let mut rng = 77u64;
        while h.estimate() < limit {
            assert!(h.insert_seen(next(&mut rng), Some(false)));
            assert!(h.is_exact() && h.is_consistent());
        }
        assert_eq!(h.estimate(), limit);
        assert!(h.insert_seen(next(&mut rng), Some(false)));
        assert!(!h.is_exact() && h.is_consistent());
        assert_eq!((h.estimate(), h.extra()), (limit + 1, 0));
    }

    #[test]
    fn many_items_on_one_fingerprint_never_count_down_after_the_switch() {
        // the proptest's case: one fingerprint and 865 collisions on it, then 600 new items; the
        // registers hold some 160 items at the switch, the count 1,025
        let list = Fingerprints::from_values(&[0]).unwrap();
        let mut h = HyperLogLog::from_exact(12, list, 865);
        assert!(h.is_consistent() && h.estimate() == 866);
        let mut last = h.estimate();
        for i in 0..600u64 {
            h.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!(h.estimate() >= last, "{last} -> {}", h.estimate());
            last = h.estimate();
        }
    }

    #[test]
    fn fingerprints_pack_in_three_bytes_in_order() {
        let mut h = HyperLogLog::new(10);
        for i in 0..100u64 {
            h.insert_hash(distinct_hash(format!("item:{i}").as_bytes()));
        }
        let Registers::Exact(list) = &h.registers else {
            panic!("exact")
        };
        assert_eq!(list.len(), 100);
        assert_eq!(list.as_bytes().len(), 300);
        let values: Vec<u32> = list.iter().collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]) && values.iter().all(|&f| f < 1 << 24));
        for i in 0..100u64 {
            let f = fingerprint(distinct_hash(format!("item:{i}").as_bytes()));
            assert!(list.search(f).is_ok());
        }
        // the size class of 300 bytes
        assert_eq!(h.heap_size(), 320);
    }

    #[test]
    fn repeated_items_do_not_count() {
        let mut h = HyperLogLog::new(10);
        let x = distinct_hash(b"same");
        assert!(h.insert_hash(x));
        for _ in 0..100 {
            assert!(!h.insert_hash(x));
        }
        assert_eq!(h.estimate(), 1);
    }

    /// splitmix64: the tests' own deterministic generator.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn exact_for_every_count_up_to_500_over_many_seeds() {
        // Random items (random lengths and bytes), a third of the events repeats, checked against
        // a HashSet after every event, at the lowest, the default and the highest precision. The
        // seen filter's answer is the set's (a filter without false positives): over these 300
        // runs of 500 items some 20 hold a 24-bit fingerprint collision.
        for precision in [MIN_PRECISION, 10, MAX_PRECISION] {
            for seed in 0..100u64 {
                let mut rng = seed * 1_000 + u64::from(precision);
                let mut h = HyperLogLog::new(precision);
                let mut set = std::collections::HashSet::new();
                let mut items: Vec<Vec<u8>> = Vec::new();
                while set.len() < 500 {
                    let r = next(&mut rng);
                    let item = if r.is_multiple_of(3) && !items.is_empty() {
                        items[(r >> 8) as usize % items.len()].clone()
                    } else {
                        let len = 1 + (r >> 16) as usize % 24;
                        (0..len).map(|_| next(&mut rng) as u8).collect()
                    };
                    let new = set.insert(item.clone());
                    if new {
                        items.push(item.clone());
                    }
                    assert_eq!(h.insert_seen(distinct_hash(&item), Some(!new)), new);
                    assert_eq!(h.estimate(), set.len() as u64, "p={precision} seed={seed}");
                    assert!(h.is_exact());
                }
                assert!(h.is_consistent());
            }
        }
    }

    #[test]
    fn within_the_standard_error_from_10k_to_100k() {
        // The root-mean-square relative error over 16 seeds stays within 1.5 standard errors
        // (1.04 / sqrt(m)), and no single run leaves 4 of them.
        for precision in [10u8, 12] {
            let se = 1.04 / ((1u64 << precision) as f64).sqrt();
            for n in [10_000u64, 30_000, 100_000] {
                let mut squares = 0.0;
                for seed in 0..16u64 {
                    let mut rng = seed.wrapping_mul(0x1234_5678_9abc_def1) ^ n;
                    let mut h = HyperLogLog::new(precision);
                    for _ in 0..n {
                        h.insert_hash(next(&mut rng));
                    }
                    assert!(!h.is_sparse() && h.is_consistent());
                    let err = (h.estimate() as f64 - n as f64) / n as f64;
                    assert!(err.abs() <= 4.0 * se, "p={precision} n={n}: {err:.4}");
                    squares += err * err;
                }
                let rms = (squares / 16.0).sqrt();
                assert!(
                    rms <= 1.5 * se,
                    "p={precision} n={n}: rms {rms:.4} se {se:.4}"
                );
            }
        }
    }

    #[test]
    fn the_switch_to_dense_is_continuous() {
        for precision in MIN_PRECISION..=MAX_PRECISION {
            let limit = exact_limit(precision);
            for seed in 0..20u64 {
                let mut rng = seed << 8 | u64::from(precision);
                let mut h = HyperLogLog::new(precision);
                for _ in 0..limit {
                    // all different items: the seen filter would say so (barring false positives)
                    assert!(h.insert_seen(next(&mut rng), Some(false)));
                }
                assert!(h.is_exact());
                assert_eq!(h.estimate(), limit as u64);
                // the list never outgrew its limit nor max(2 KiB, the dense registers)
                assert_eq!(h.heap_size(), alloc_size(limit * FINGERPRINT_BYTES));
                assert!(h.heap_size() <= 2048.max(1 << precision));
                // a repeat changes nothing; the next new item switches, counted exactly
                let first = {
                    let mut again = seed << 8 | u64::from(precision);
                    next(&mut again)
                };
                assert!(!h.insert_hash(first));
                assert!(h.is_exact());
                let switching = next(&mut rng);
                assert!(h.insert_seen(switching, Some(false)));
                assert!(!h.is_sparse() && h.is_consistent());
                assert_eq!(h.estimate(), limit as u64 + 1, "p={precision} seed={seed}");
                assert_ne!(h.switch_estimate(), 0);
                // the registers are those a dense sketch of the same items holds (the listed ones'
                // ranks capped at what a fingerprint holds, 25 - p)
                let mut regs = vec![0u8; 1 << precision];
                let mut replay = seed << 8 | u64::from(precision);
                for _ in 0..limit {
                    let (index, rank) = h.split(next(&mut replay));
                    regs[index] = regs[index].max(rank.min(25 - precision));
                }
                let mut direct =
                    HyperLogLog::from_registers(precision, Registers::Dense(regs.into()));
                direct.insert_hash(next(&mut replay));
                assert_eq!(h.registers, direct.registers);
                // and the count goes on from there, never down, a step no larger than a register
                // change makes (under 16 n / m; at p < 8 one change can move it by a quarter)
                let mut last = h.estimate();
                for _ in 0..200 {
                    h.insert_hash(next(&mut rng));
                    let now = h.estimate();
                    let most = 3 + 16 * last / (1 << precision);
                    assert!(
                        now >= last && (precision < 8 || now - last <= most),
                        "p={precision}: {last} -> {now}"
                    );
                    last = now;
                }
            }
        }
    }

    #[test]
    fn the_blend_fades_and_never_overflows() {
        let mut h = fill(10, 600);
        assert_ne!(h.switch_estimate(), 0);
        let e0 = u64::from(h.switch_estimate());
        let exact = exact_limit(10) as u64 + 1;
        // at e0 the exact count; far above it the plain estimate, within one
        assert_eq!(h.blend(e0), exact);
        let far = h.blend(1_000_000);
        assert!(far.abs_diff(1_000_000) <= 1, "{far}");
        // never below the exact count at the switch, whatever the registers say
        for e in [1u64, 2, e0 / 4, e0] {
            assert!(h.blend(e) >= exact, "{e}");
        }
        h.switch_estimate = u32::MAX;
        for e in [0u64, 1, 2, 1 << 40, u64::MAX] {
            let _ = h.blend(e);
        }
    }
}
