//! Content catalogs: the candidates `SESSION.SURFACE` ranks.
//!
//! Items live in slots (indices are stable while an item lives, reused after it is deleted). Two
//! kinds of ordered index make ranking independent of the catalog's size: every item in one set
//! ordered by score (best first), and one such set per category. An expiry index lets writes purge
//! expired items in order. Lookups by id go through a hash map.

use std::collections::{BTreeSet, HashMap};

use crate::mem::alloc_size;
use crate::version::Version;

/// Sort key for "best score first, then oldest slot": ascending key = descending score.
pub type RankKey = (u64, u32);

fn score_key(score: f64) -> u64 {
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ordered
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Box<[u8]>,
    pub score: f64,
    /// Category ids of this catalog's category table, sorted, distinct.
    pub categories: Box<[u32]>,
    pub expires_ms: Option<i64>,
    /// The change that left it so (registry sync; `Version::default()` in standalone).
    pub version: Version,
}

impl Item {
    pub fn live(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    slots: Vec<Option<Item>>,
    free: Vec<u32>,
    by_id: HashMap<Box<[u8]>, u32>,
    by_score: BTreeSet<RankKey>,
    category_names: Vec<Box<[u8]>>,
    category_ids: HashMap<Box<[u8]>, u32>,
    by_category: Vec<BTreeSet<RankKey>>,
    expiring: BTreeSet<(i64, u32)>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Categories that hold at least one item.
    pub fn category_count(&self) -> usize {
        self.by_category.iter().filter(|s| !s.is_empty()).count()
    }

    pub fn category_id(&self, name: &[u8]) -> Option<u32> {
        self.category_ids.get(name).copied()
    }

    pub fn category_name(&self, id: u32) -> &[u8] {
        self.category_names.get(id as usize).map_or(&[], |n| &**n)
    }

    pub fn item(&self, slot: u32) -> Option<&Item> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn slot_of(&self, id: &[u8]) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Number of slots (live or free): random exploration draws from `0..slot_count()`.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Items by descending score.
    pub fn by_score(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_score.iter().map(|&(_, slot)| slot)
    }

    /// Items of category `id` by descending score.
    pub fn by_category(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        self.by_category
            .get(id as usize)
            .into_iter()
            .flat_map(|s| s.iter().map(|&(_, slot)| slot))
    }

    /// The first item of category `id` at or after `slot`'s place in score order, wrapping to
    /// the category's best: O(log n). None when `slot` is free or the category empty.
    pub fn category_from(&self, id: u32, slot: u32) -> Option<u32> {
        let set = self.by_category.get(id as usize)?;
        let item = self.item(slot)?;
        let key = (score_key(item.score), slot);
        set.range(key..)
            .next()
            .or_else(|| set.iter().next())
            .map(|&(_, s)| s)
    }

    pub fn category_len(&self, id: u32) -> usize {
        self.by_category.get(id as usize).map_or(0, BTreeSet::len)
    }

    /// The largest absolute score: the scale that maps scores into [-1, 1] for ranking.
    pub fn score_scale(&self) -> f64 {
        let first = self
            .by_score
            .first()
            .and_then(|&(_, s)| self.item(s))
            .map_or(0.0, |i| i.score.abs());
        let last = self
            .by_score
            .last()
            .and_then(|&(_, s)| self.item(s))
            .map_or(0.0, |i| i.score.abs());
        first.max(last)
    }

    fn intern(&mut self, name: &[u8]) -> u32 {
        if let Some(&id) = self.category_ids.get(name) {
            return id;
        }
        let id = self.category_names.len() as u32;
        self.category_names.push(name.into());
        self.category_ids.insert(name.into(), id);
        self.by_category.push(BTreeSet::new());
        id
    }

    /// The live item `id`, if present.
    pub fn get(&self, id: &[u8]) -> Option<&Item> {
        self.slot_of(id).and_then(|s| self.item(s))
    }

    /// Adds `id`, or replaces it when present, at version `Version::default()`. Returns true when
    /// it is new.
    pub fn add(
        &mut self,
        id: &[u8],
        score: f64,
        categories: &[&[u8]],
        expires_ms: Option<i64>,
    ) -> bool {
        self.add_versioned(id, score, categories, expires_ms, Version::default())
    }

    /// Adds `id` at `version`, or replaces it when present. Returns true when it is new.
    pub fn add_versioned(
        &mut self,
        id: &[u8],
        score: f64,
        categories: &[&[u8]],
        expires_ms: Option<i64>,
        version: Version,
    ) -> bool {
        let existed = self.remove(id);
        let mut cats: Vec<u32> = categories.iter().map(|c| self.intern(c)).collect();
        cats.sort_unstable();
        cats.dedup();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let key = (score_key(score), slot);
        self.by_score.insert(key);
        for &c in &cats {
            self.by_category[c as usize].insert(key);
        }
        if let Some(at) = expires_ms {
            self.expiring.insert((at, slot));
        }
        self.by_id.insert(id.into(), slot);
        self.slots[slot as usize] = Some(Item {
            id: id.into(),
            score,
            categories: cats.into(),
            expires_ms,
            version,
        });
        !existed
    }

    /// Removes `id`; returns whether it was present.
    pub fn remove(&mut self, id: &[u8]) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        if let Some(item) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            let key = (score_key(item.score), slot);
            self.by_score.remove(&key);
            for &c in item.categories.iter() {
                if let Some(set) = self.by_category.get_mut(c as usize) {
                    set.remove(&key);
                }
            }
            if let Some(at) = item.expires_ms {
                self.expiring.remove(&(at, slot));
            }
        }
        self.free.push(slot);
        true
    }

    /// Ids of items expired at `now_ms`, oldest expiry first, at most `limit`.
    pub fn expired(&self, now_ms: i64, limit: usize) -> Vec<Box<[u8]>> {
        self.expiring
            .iter()
            .take_while(|&&(at, _)| at <= now_ms)
            .take(limit)
            .filter_map(|&(_, slot)| self.item(slot).map(|i| i.id.clone()))
            .collect()
    }

    /// Live items in slot order (the saved form).
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.slots.iter().flatten()
    }

    /// Approximate heap bytes: slots, ids (twice), category lists, and the ordered indexes
    /// (B-tree entries cost about 1.5x their 16 bytes).
    pub fn memory(&self) -> usize {
        let slots = alloc_size(self.slots.capacity() * std::mem::size_of::<Option<Item>>());
        let items: usize = self
            .items()
            .map(|i| 2 * alloc_size(i.id.len()) + alloc_size(i.categories.len() * 4))
            .sum();
        let map_entry = std::mem::size_of::<(Box<[u8]>, u32)>() + 1;
        let by_id = alloc_size(self.by_id.capacity() * map_entry);
        let index_entries = self.by_score.len()
            + self.by_category.iter().map(BTreeSet::len).sum::<usize>()
            + self.expiring.len();
        let indexes = index_entries * 24;
        let names: usize = self
            .category_names
            .iter()
            .map(|n| 2 * alloc_size(n.len()) + 48)
            .sum();
        slots + items + by_id + indexes + names + alloc_size(self.free.capacity() * 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_replace_remove_keep_indexes_right() {
        let mut c = Catalog::default();
        assert!(c.add(b"a", 1.0, &[b"x"], None));
        assert!(c.add(b"b", 3.0, &[b"x", b"y", b"x"], Some(50)));
        assert!(c.add(b"c", -2.0, &[], None));
        assert!(!c.add(b"a", 5.0, &[b"y"], None), "replace");
        let ids = |it: Vec<u32>| {
            it.into_iter()
                .map(|s| c.item(s).unwrap().id.to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(c.by_score().collect()),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        let x = c.category_id(b"x").unwrap();
        let y = c.category_id(b"y").unwrap();
        assert_eq!(ids(c.by_category(x).collect()), vec![b"b".to_vec()]);
        assert_eq!(
            ids(c.by_category(y).collect()),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(c.expired(49, 10).len(), 0);
        assert_eq!(c.expired(50, 10), vec![Box::from(&b"b"[..])]);
        assert!(c.remove(b"b"));
        assert!(!c.remove(b"b"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.category_count(), 1);
        assert_eq!(c.score_scale(), 5.0);
        assert!(c.add(b"d", 0.0, &[], None));
        assert_eq!(c.slot_count(), 3, "slot reused");
    }

    #[test]
    fn category_from_is_the_next_member_in_score_order() {
        let mut c = Catalog::default();
        c.add(b"a", 5.0, &[b"x"], None);
        c.add(b"b", 4.0, &[], None);
        c.add(b"c", 3.0, &[b"x"], None);
        c.add(b"d", 2.0, &[], None);
        let x = c.category_id(b"x").unwrap();
        let id = |s: Option<u32>| c.item(s.unwrap()).unwrap().id.to_vec();
        let slot = |name: &[u8]| c.slot_of(name).unwrap();
        assert_eq!(id(c.category_from(x, slot(b"a"))), b"a");
        assert_eq!(id(c.category_from(x, slot(b"b"))), b"c");
        assert_eq!(
            id(c.category_from(x, slot(b"d"))),
            b"a",
            "wraps to the best"
        );
        assert_eq!(c.category_from(x, 99), None);
    }

    #[test]
    fn score_keys_order_every_float() {
        let mut v = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::MAX];
        v.sort_by(|a, b| b.total_cmp(a));
        let keys: Vec<u64> = v.iter().map(|&s| score_key(s)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
