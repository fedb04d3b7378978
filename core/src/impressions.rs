//! Per-item impression counts for frequency capping: a count-min sketch (Cormode & Muthukrishnan,
//! 2005) with one-byte saturating counters and conservative update (only the smallest counters
//! grow), so estimates never undercount and overcount far less than plain count-min.
//!
//! Four rows of `width` bytes; `width` is fixed when the sketch is created (first impression) and
//! saved with it. With the default 256: 1 KiB, allocated only for sessions that were surfaced to.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::memory::alloc_size;

pub const DEPTH: usize = 4;
pub const MIN_WIDTH: u32 = 16;
pub const MAX_WIDTH: u32 = 65_536;
const SEED: u64 = 0x1a9e_5510_c0a7_0001;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impressions {
    pub width: u32,
    /// `DEPTH` rows of `width` counters, row-major.
    pub counters: Box<[u8]>,
}

impl Impressions {
    pub fn new(width: u32) -> Self {
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        Impressions {
            width,
            counters: vec![0u8; DEPTH * width as usize].into_boxed_slice(),
        }
    }

    fn cells(&self, item: &[u8]) -> [usize; DEPTH] {
        let h = xxh3_64_with_seed(item, SEED);
        let (h1, h2) = (h as u32, ((h >> 32) as u32) | 1);
        let w = self.width;
        let mut cells = [0usize; DEPTH];
        for (row, cell) in cells.iter_mut().enumerate() {
            let col = h1.wrapping_add((row as u32).wrapping_mul(h2)) % w;
            *cell = row * w as usize + col as usize;
        }
        cells
    }

    /// Estimated impressions of `item` (never below the truth, until 255 saturates).
    pub fn count(&self, item: &[u8]) -> u8 {
        self.cells(item)
            .iter()
            .map(|&c| self.counters[c])
            .min()
            .unwrap_or(0)
    }

    /// Records one impression of `item`.
    pub fn record(&mut self, item: &[u8]) {
        let cells = self.cells(item);
        let current = cells.iter().map(|&c| self.counters[c]).min().unwrap_or(0);
        let next = current.saturating_add(1);
        for c in cells {
            if self.counters[c] < next {
                self.counters[c] = next;
            }
        }
    }

    pub fn heap_size(&self) -> usize {
        alloc_size(std::mem::size_of::<Impressions>()) + alloc_size(self.counters.len())
    }

    pub fn is_consistent(&self) -> bool {
        (MIN_WIDTH..=MAX_WIDTH).contains(&self.width)
            && self.counters.len() == DEPTH * self.width as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_never_under_and_rarely_over() {
        let mut imp = Impressions::new(256);
        for i in 0..200u32 {
            for _ in 0..(i % 4) {
                imp.record(format!("item{i}").as_bytes());
            }
        }
        let mut over = 0;
        for i in 0..200u32 {
            let c = imp.count(format!("item{i}").as_bytes());
            assert!(u32::from(c) >= i % 4, "undercount");
            over += u32::from(c) - i % 4;
        }
        assert!(over <= 20, "total overcount {over}");
    }

    #[test]
    fn saturates_at_255() {
        let mut imp = Impressions::new(16);
        for _ in 0..300 {
            imp.record(b"x");
        }
        assert_eq!(imp.count(b"x"), 255);
    }
}
