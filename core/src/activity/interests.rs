//! Category interests: time-decayed weights, bounded to the top N (a decayed Space-Saving sketch).
//!
//! Every weight is expressed "as of" `as_of_ms`; an event at a later time first decays all weights
//! by `2^(-dt / half_life)` and moves `as_of_ms` forward, then adds 1 to each of its categories.
//! An event older than `as_of_ms` adds its decayed increment instead. When a new category arrives
//! and N are already tracked, it replaces the weakest one and starts from its own increment. Only
//! the bottom slot churns: a burst of one-off categories never grows the session and never pushes
//! an established interest out, while faded interests (decay) make room for new ones. (Plain
//! Space-Saving, where the newcomer inherits the evicted weight, lets such a burst climb above
//! the real favourite; the unit tests pin that this policy does not.)

use smallvec::SmallVec;

use crate::mem::alloc_size;

#[derive(Debug, Clone, PartialEq)]
pub struct Interest {
    /// Hash of `category`: a lookup compares these, so it reads the entries' own cache lines and
    /// compares only the matching name.
    pub hash: u64,
    /// Names up to 16 bytes live inside the entry (no allocation of their own, so a lookup stays
    /// within the entries' cache lines); longer ones spill to the heap.
    pub category: SmallVec<[u8; 16]>,
    pub weight: f64,
}

impl Interest {
    pub fn new(category: &[u8], weight: f64) -> Self {
        Interest {
            hash: category_hash(category),
            category: category.into(),
            weight,
        }
    }
}

fn category_hash(category: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(category, 0x1e7e_5e55_ca7e_6021)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interests {
    pub as_of_ms: i64,
    pub entries: Vec<Interest>,
}

/// `2^(-dt / half_life)`, with `dt` and the half-life in milliseconds.
pub fn decay(dt_ms: i64, half_life_ms: i64) -> f64 {
    if dt_ms <= 0 || half_life_ms <= 0 {
        1.0
    } else {
        libm::exp2(-(dt_ms as f64) / half_life_ms as f64)
    }
}

impl Interests {
    /// The entries `record` reads (see `crate::mem::hints`).
    pub fn hot_span(&self) -> (usize, u8) {
        crate::mem::hints::span_of(&self.entries, 8)
    }

    /// Asks for the cache lines `record` will read (see `crate::mem::prefetch`).
    pub fn prefetch(&self) {
        crate::mem::prefetch::slice(&self.entries, 8);
    }

    /// Records one event's categories at `t_ms`.
    pub fn record(&mut self, categories: &[&[u8]], t_ms: i64, half_life_ms: i64, top_n: usize) {
        let increment = if t_ms >= self.as_of_ms || self.entries.is_empty() {
            let factor = decay(t_ms - self.as_of_ms, half_life_ms);
            if factor != 1.0 {
                for e in &mut self.entries {
                    e.weight *= factor;
                }
            }
            self.as_of_ms = t_ms;
            1.0
        } else {
            decay(self.as_of_ms - t_ms, half_life_ms)
        };
        for (i, category) in categories.iter().enumerate() {
            if categories[..i].contains(category) {
                continue; // a category named twice in one event counts once
            }
            self.add(category, increment, top_n.max(1));
        }
        while self.entries.len() > top_n.max(1) {
            self.remove_weakest();
        }
    }

    fn add(&mut self, category: &[u8], increment: f64, top_n: usize) {
        let hash = category_hash(category);
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.hash == hash && &*e.category == category)
        {
            e.weight += increment;
            return;
        }
        if self.entries.len() < top_n {
            self.entries.reserve_exact(1);
            self.entries.push(Interest::new(category, increment));
            return;
        }
        if let Some(weakest) = self.weakest() {
            self.entries[weakest] = Interest::new(category, increment);
        }
    }

    /// Index of the smallest weight (the first one on ties, so the choice is deterministic).
    fn weakest(&self) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if best.is_none_or(|(_, w)| e.weight < w) {
                best = Some((i, e.weight));
            }
        }
        best.map(|(i, _)| i)
    }

    fn remove_weakest(&mut self) {
        if let Some(i) = self.weakest() {
            self.entries.remove(i);
        }
    }

    /// Categories with weights normalized to sum to 1, strongest first (ties by name).
    pub fn normalized(&self) -> Vec<(&[u8], f64)> {
        let total: f64 = self.entries.iter().map(|e| e.weight).sum();
        let mut out: Vec<(&[u8], f64)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    &*e.category,
                    if total > 0.0 { e.weight / total } else { 0.0 },
                )
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        out
    }

    /// Weight of `category` as of `t_ms` (not normalized), 0 when untracked.
    pub fn weight_at(&self, category: &[u8], t_ms: i64, half_life_ms: i64) -> f64 {
        self.entries
            .iter()
            .find(|e| &*e.category == category)
            .map_or(0.0, |e| {
                e.weight * decay(t_ms - self.as_of_ms, half_life_ms)
            })
    }

    pub fn heap_size(&self) -> usize {
        alloc_size(self.entries.capacity() * std::mem::size_of::<Interest>())
            + self
                .entries
                .iter()
                .filter(|e| e.category.spilled())
                .map(|e| alloc_size(e.category.capacity()))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn weights_halve_after_one_half_life() {
        let mut i = Interests::default();
        i.record(&[b"hockey"], 0, H, 8);
        assert!((i.weight_at(b"hockey", H, H) - 0.5).abs() < 1e-12);
        i.record(&[b"golf"], H, H, 8);
        let n = i.normalized();
        assert_eq!(n[0].0, b"golf");
        assert!((n[0].1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((n[1].1 - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn bounded_to_top_n_under_a_burst() {
        let mut i = Interests::default();
        for _ in 0..50 {
            i.record(&[b"favourite"], 0, H, 4);
        }
        for k in 0..1_000 {
            i.record(&[format!("burst{k}").as_bytes()], 0, H, 4);
        }
        assert_eq!(i.entries.len(), 4);
        assert_eq!(i.normalized()[0].0, b"favourite");
    }

    #[test]
    fn planted_favourite_ranks_first() {
        let mut i = Interests::default();
        let mut x: u64 = 7;
        let others: Vec<String> = (0..19).map(|k| format!("cat{k}")).collect();
        for n in 0..500i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let cat = if (x >> 33) % 10 < 6 {
                "planted".to_string()
            } else {
                others[((x >> 40) % 19) as usize].clone()
            };
            i.record(&[cat.as_bytes()], n * 1000, H, 8);
        }
        assert_eq!(i.normalized()[0].0, b"planted");
    }

    #[test]
    fn late_events_add_a_decayed_increment() {
        let mut i = Interests::default();
        i.record(&[b"a"], H, H, 8);
        i.record(&[b"b"], 0, H, 8);
        assert!((i.weight_at(b"b", H, H) - 0.5).abs() < 1e-12);
        assert_eq!(i.as_of_ms, H);
    }
}
