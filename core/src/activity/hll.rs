//! Distinct items: a HyperLogLog (Flajolet et al., 2007) with a sparse start.
//!
//! With `p` bits of precision there are `m = 2^p` registers; the standard error is `1.04 / sqrt(m)`.
//! A new sketch is *sparse*: a sorted list of (register, rank) pairs, two bytes each, so a session
//! that saw a hundred items spends about two hundred bytes. Once the list would outgrow the dense
//! form (one byte per register) it converts to dense. In the sparse form ranks saturate at 15
//! (a 2^-15 event per item, and only the dense estimator reads ranks), so a pair fits in 16 bits.

use crate::mem::alloc_size;

pub const MIN_PRECISION: u8 = crate::limits::HLL_PRECISION.0;
pub const MAX_PRECISION: u8 = crate::limits::HLL_PRECISION.1;
const SPARSE_RANK_MAX: u8 = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registers {
    /// Sorted by register index, at most one entry per register: `index << 4 | rank`.
    Sparse(Vec<u16>),
    /// One byte per register.
    Dense(Box<[u8]>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    pub precision: u8,
    pub registers: Registers,
    /// Derived, kept current on every register change so that an estimate is O(1):
    /// the sum over all registers of 2^(64 - rank), exact in integers (so it does not depend on
    /// the order registers changed in), and the number of zero registers.
    sum: u128,
    zeros: u32,
    /// The estimate from the two above, recomputed when a register changes (most events repeat
    /// an item and change none).
    estimate: u64,
}

impl HyperLogLog {
    pub fn new(precision: u8) -> Self {
        let precision = precision.clamp(MIN_PRECISION, MAX_PRECISION);
        Self::from_registers(precision, Registers::Sparse(Vec::new()))
    }

    /// A sketch over existing registers (the codec's constructor); derived sums are recomputed.
    pub fn from_registers(precision: u8, registers: Registers) -> Self {
        let m = 1u32 << precision.min(MAX_PRECISION);
        let mut h = HyperLogLog {
            precision,
            registers,
            sum: u128::from(m) << 64,
            zeros: m,
            estimate: 0,
        };
        let ranks: Vec<u8> = match &h.registers {
            Registers::Sparse(list) => list.iter().map(|e| (e & 0xf) as u8).collect(),
            Registers::Dense(regs) => regs.to_vec(),
        };
        for r in ranks {
            h.account(0, r);
        }
        h.estimate = h.compute_estimate();
        h
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

    /// The sparse list an insert searches (see `crate::mem::hints`); nothing once dense (the line an
    /// insert reads then depends on the item).
    pub fn hot_span(&self) -> (usize, u8) {
        match &self.registers {
            Registers::Sparse(list) => crate::mem::hints::span_of(list, 8),
            Registers::Dense(_) => (0, 0),
        }
    }

    /// Asks for the cache lines an insert of `hash` will read (see `crate::mem::prefetch`).
    pub fn prefetch(&self, hash: u64) {
        match &self.registers {
            Registers::Dense(regs) => crate::mem::prefetch::line(&regs[self.split(hash).0]),
            Registers::Sparse(list) => crate::mem::prefetch::slice(list, 8),
        }
    }

    /// Adds an item by its hash; returns whether a register changed.
    pub fn insert_hash(&mut self, hash: u64) -> bool {
        let (index, rank) = self.split(hash);
        let m = self.m();
        match &mut self.registers {
            Registers::Dense(regs) => {
                let old = regs[index];
                if old < rank {
                    regs[index] = rank;
                    self.changed(old, rank);
                    true
                } else {
                    false
                }
            }
            Registers::Sparse(list) => {
                let rank = rank.min(SPARSE_RANK_MAX);
                let entry = (index as u16) << 4 | u16::from(rank);
                match list.binary_search_by_key(&(index as u16), |e| e >> 4) {
                    Ok(i) if list[i] & 0xf >= u16::from(rank) => false,
                    Ok(i) => {
                        let old = (list[i] & 0xf) as u8;
                        list[i] = entry;
                        self.changed(old, rank);
                        true
                    }
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

    fn densify(&mut self) {
        if let Registers::Sparse(list) = &self.registers {
            let mut regs = vec![0u8; self.m()].into_boxed_slice();
            for e in list {
                regs[usize::from(e >> 4)] = (e & 0xf) as u8;
            }
            self.registers = Registers::Dense(regs); // same ranks: derived sums unchanged
        }
    }

    /// The cardinality estimate, rounded (kept current as registers change).
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// The estimate from the register sums: O(1).
    fn compute_estimate(&self) -> u64 {
        let m = self.m() as f64;
        let sum = self.sum as f64 / 18_446_744_073_709_551_616.0; // 2^64
        let zeros = self.zeros;
        let alpha = match self.precision {
            4 => 0.673,
            5 => 0.697,
            6 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * libm::log(m / zeros as f64)
        } else {
            raw
        };
        estimate.round() as u64
    }

    pub fn is_sparse(&self) -> bool {
        matches!(self.registers, Registers::Sparse(_))
    }

    pub fn heap_size(&self) -> usize {
        match &self.registers {
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
            Registers::Sparse(list) => {
                list.len() * 2 < self.m()
                    && list.windows(2).all(|w| w[0] >> 4 < w[1] >> 4)
                    && list
                        .iter()
                        .all(|e| usize::from(e >> 4) < self.m() && e & 0xf != 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert!(h.is_sparse());
        assert!(h.heap_size() <= 256, "{}", h.heap_size());
        let h = fill(10, 2_000);
        assert!(!h.is_sparse());
        assert_eq!(h.heap_size(), 1024);
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
}
