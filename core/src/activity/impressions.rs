//! Per-item impression counts for frequency capping: count-min sketches (Cormode & Muthukrishnan,
//! 2005) with one-byte saturating counters and conservative update (only the smallest counters
//! grow), so estimates never undercount and overcount far less than plain count-min.
//!
//! A fixed-size sketch fills up: once most cells are non-zero, every item looks "already shown"
//! and a cap of 1 blocks everything. So the sketch grows in generations: when the current one has
//! taken `width / 4` distinct items (a load at which a never-shown item is falsely capped ~0.24%
//! of the time with four rows), a new generation twice as wide (up to `MAX_WIDTH`) starts. An
//! item's count is the sum over the generations, never below the truth. Generations are kept while
//! their counters fit in `MAX_COUNTERS` (128 KiB, about 8,000 distinct items); beyond that the
//! oldest is forgotten, so the cap then applies to the recent past, which is what frequency
//! capping is for.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::mem::alloc_size;

pub const DEPTH: usize = 4;
pub const MIN_WIDTH: u32 = crate::limits::IMPRESSIONS_WIDTH.0;
pub const MAX_WIDTH: u32 = crate::limits::IMPRESSIONS_WIDTH.1;
/// Counter budget over all generations (bytes).
pub const MAX_COUNTERS: usize = DEPTH * 32_768;
/// Most generations a sketch can hold (widths double from `MIN_WIDTH` within the budget).
pub const GENERATIONS: usize = 16;
const SEED: u64 = 0x1a9e_5510_c0a7_0001;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub width: u32,
    /// Items first recorded in this generation (the sketch's load).
    pub distinct: u32,
    /// `DEPTH` rows of `width` counters, row-major.
    pub counters: Box<[u8]>,
}

impl Generation {
    pub fn new(width: u32) -> Self {
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        Generation {
            width,
            distinct: 0,
            counters: vec![0u8; DEPTH * width as usize].into_boxed_slice(),
        }
    }

    fn cells(&self, hash: u64) -> [usize; DEPTH] {
        let (h1, h2) = (hash as u32, ((hash >> 32) as u32) | 1);
        let mut cells = [0usize; DEPTH];
        for (row, cell) in cells.iter_mut().enumerate() {
            let col = h1.wrapping_add((row as u32).wrapping_mul(h2)) % self.width;
            *cell = row * self.width as usize + col as usize;
        }
        cells
    }

    fn count(&self, hash: u64) -> u8 {
        self.cells(hash)
            .iter()
            .map(|&c| self.counters[c])
            .min()
            .unwrap_or(0)
    }

    fn record(&mut self, hash: u64) {
        let cells = self.cells(hash);
        let current = cells.iter().map(|&c| self.counters[c]).min().unwrap_or(0);
        if current == 0 {
            self.distinct = self.distinct.saturating_add(1);
        }
        let next = current.saturating_add(1);
        for c in cells {
            if self.counters[c] < next {
                self.counters[c] = next;
            }
        }
    }

    fn is_consistent(&self) -> bool {
        (MIN_WIDTH..=MAX_WIDTH).contains(&self.width)
            && self.counters.len() == DEPTH * self.width as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impressions {
    /// Oldest first; never empty; counters within `MAX_COUNTERS`.
    pub generations: Vec<Generation>,
}

fn hash(item: &[u8]) -> u64 {
    xxh3_64_with_seed(item, SEED)
}

impl Impressions {
    pub fn new(width: u32) -> Self {
        Impressions {
            generations: vec![Generation::new(width)],
        }
    }

    /// Width of the first generation (what `WIDTH` asked for).
    pub fn width(&self) -> u32 {
        self.generations.first().map_or(MIN_WIDTH, |g| g.width)
    }

    /// Estimated recent impressions of `item` (never below the truth, saturating at 255).
    pub fn count(&self, item: &[u8]) -> u8 {
        let h = hash(item);
        self.generations
            .iter()
            .fold(0u8, |sum, g| sum.saturating_add(g.count(h)))
    }

    /// Records one impression of `item`.
    pub fn record(&mut self, item: &[u8]) {
        let h = hash(item);
        let Some(current) = self.generations.last_mut() else {
            return;
        };
        current.record(h);
        if u64::from(current.distinct) * 4 >= u64::from(current.width) {
            let width = current.width.saturating_mul(2).min(MAX_WIDTH);
            self.generations.push(Generation::new(width));
            while self.generations.len() > 1
                && (self.bytes() > MAX_COUNTERS || self.generations.len() > GENERATIONS)
            {
                self.generations.remove(0);
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.generations.iter().map(|g| g.counters.len()).sum()
    }

    pub fn heap_size(&self) -> usize {
        alloc_size(std::mem::size_of::<Impressions>())
            + alloc_size(self.generations.capacity() * std::mem::size_of::<Generation>())
            + self
                .generations
                .iter()
                .map(|g| alloc_size(g.counters.len()))
                .sum::<usize>()
    }

    pub fn is_consistent(&self) -> bool {
        !self.generations.is_empty()
            && self.generations.len() <= GENERATIONS
            && self.bytes() <= MAX_COUNTERS.max(DEPTH * MAX_WIDTH as usize)
            && self.generations.iter().all(Generation::is_consistent)
            // each generation is twice as wide as the one before it (up to `MAX_WIDTH`) and was
            // only followed by it once full: the shapes `record` makes, and no other
            && self.generations.windows(2).all(|w| {
                w[1].width == w[0].width.saturating_mul(2).min(MAX_WIDTH)
                    && u64::from(w[0].distinct) * 4 >= u64::from(w[0].width)
            })
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
    fn a_cap_of_one_keeps_letting_new_items_through() {
        // Show 5,000 distinct items once each: a never-shown item must stay showable.
        let mut imp = Impressions::new(64);
        for i in 0..5_000u32 {
            imp.record(format!("shown{i}").as_bytes());
        }
        let blocked = (0..2_000u32)
            .filter(|i| imp.count(format!("fresh{i}").as_bytes()) > 0)
            .count();
        assert!(
            blocked < 100,
            "{blocked} of 2000 never-shown items look shown"
        );
        // the recent ones are still counted
        assert!((4_900..5_000u32).all(|i| imp.count(format!("shown{i}").as_bytes()) >= 1));
        assert!(imp.is_consistent());
        assert!(imp.bytes() <= MAX_COUNTERS);
        // 1,500 items shown once are all still remembered
        let mut long = Impressions::new(256);
        for i in 0..1_500u32 {
            long.record(format!("seen{i}").as_bytes());
        }
        assert!((0..1_500u32).all(|i| long.count(format!("seen{i}").as_bytes()) >= 1));
    }

    #[test]
    fn only_the_shapes_record_makes_are_consistent() {
        let mut imp = Impressions::new(16);
        for i in 0..40u32 {
            imp.record(format!("i{i}").as_bytes());
        }
        assert!(imp.generations.len() > 2 && imp.is_consistent());
        let mut wrong = imp.clone();
        wrong.generations[1] = Generation::new(wrong.generations[1].width * 2);
        assert!(!wrong.is_consistent(), "width does not double");
        let mut early = imp.clone();
        early.generations[0].distinct = 0;
        assert!(!early.is_consistent(), "followed before it was full");
        let mut wide = imp;
        wide.generations[0].width = MAX_WIDTH * 2;
        assert!(!wide.is_consistent(), "wider than the configuration allows");
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
