//! Registry sync: the registry as a set of versioned entries that merge last-writer-wins.
//!
//! An `Entry` is the unit of sync (the cluster bus), of replication in cluster mode
//! (`SESSION.SYNC APPLY`) and of snapshots. Each key (a catalog item, a catalog, a group's
//! notification id) is held at the highest version this node has seen:
//!
//! - an `Item` or `ItemGone` of one (catalog, id): the higher version wins; a live item and its
//!   tombstone are never both held;
//! - a `CatalogGone`: removes the catalog's items and item tombstones at or below its version and
//!   blocks such ones arriving later (later adds survive);
//! - a `Notification`: immutable, its sequence is the origin's. Among a group's live
//!   notifications, two with the same id or the same sequence conflict and the lower
//!   (seq, id, payload, publisher) wins everywhere; an identical one changes nothing;
//! - a `GroupGone`: removes the group's notifications with a sequence below its clock and blocks
//!   such ones arriving later.
//!
//! Every rule is a maximum over what was seen, so `merge` is idempotent, commutative and
//! associative: any order of delivery ends in the same registry. Expired items and notifications
//! and tombstones past `tombstone_ttl_ms` are ignored (never resurrected). Merging raises the
//! clock (`last_seq`) to every entry's, so later local changes outrank what the node has seen.
//! Merging never writes to the outbox (no echo) and checks no limit: entries come from the
//! cluster's primaries, trusted as the replication stream is.

use xxhash_rust::xxh3::xxh3_64;

use super::{group_cost, Registry};
use crate::notify::{JoinWindow, Notification};
use crate::version::Version;

/// One registry change, or one piece of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A catalog item as CATALOG ADD left it.
    Item {
        catalog: Box<[u8]>,
        id: Box<[u8]>,
        score: f64,
        /// Category names.
        categories: Box<[Box<[u8]>]>,
        expires_ms: Option<i64>,
        version: Version,
    },
    /// Tombstone of CATALOG DEL.
    ItemGone {
        catalog: Box<[u8]>,
        id: Box<[u8]>,
        version: Version,
    },
    /// Tombstone of CATALOG DROP.
    CatalogGone {
        catalog: Box<[u8]>,
        version: Version,
    },
    /// A published notification (its `seq` is the origin's, the same on every node).
    Notification {
        group: Box<[u8]>,
        notification: Notification,
        /// The MAXLEN it was published with (0: none known, as in a snapshot of a group whose
        /// cap this node never learnt). A merge trims the group to it.
        maxlen: u32,
    },
    /// Tombstone of GROUP DROP: notifications with `seq < version.clock` are gone.
    GroupGone { group: Box<[u8]>, version: Version },
}

impl Entry {
    /// The clock value the entry carries (a version's clock, a notification's sequence).
    pub fn clock(&self) -> u64 {
        match self {
            Entry::Item { version, .. }
            | Entry::ItemGone { version, .. }
            | Entry::CatalogGone { version, .. }
            | Entry::GroupGone { version, .. } => version.clock,
            Entry::Notification { notification, .. } => notification.seq,
        }
    }
}

/// A compact, order-independent summary of a registry: equal registries have equal `hash` and
/// `entries`. `clock` is the node's `last_seq` (informational: it differs between converged
/// nodes that made local changes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    pub hash: u64,
    pub entries: u64,
    pub clock: u64,
}

/// The conflict order of notifications: the lower wins.
fn rank(n: &Notification) -> (u64, &[u8], &[u8], Option<&[u8]>, JoinWindow) {
    (n.seq, &n.id, &n.payload, n.publisher.as_deref(), n.joined)
}

/// Hashes one entry's identity and version (the digest's summands).
struct Summer {
    buf: Vec<u8>,
    hash: u64,
    entries: u64,
}

impl Summer {
    fn add(&mut self, tag: u8, parts: &[&[u8]], numbers: &[u64]) {
        self.buf.clear();
        self.buf.push(tag);
        for p in parts {
            self.buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
            self.buf.extend_from_slice(p);
        }
        for n in numbers {
            self.buf.extend_from_slice(&n.to_le_bytes());
        }
        self.hash = self.hash.wrapping_add(xxh3_64(&self.buf));
        self.entries += 1;
    }
}

impl Registry {
    /// True when local changes wait in the outbox.
    pub fn has_outbox(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The entries local changes made since the last call (empty unless `track`).
    pub fn take_outbox(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.outbox)
    }

    /// Applies remote entries by the rules above, in order; returns exactly the ones that changed
    /// this node (what the Redis layer replicates). Never touches the outbox.
    pub fn merge(&mut self, entries: Vec<Entry>, now_ms: i64) -> Vec<Entry> {
        let mut changed = Vec::new();
        for entry in entries {
            self.last_seq = self.last_seq.max(entry.clock());
            if self.apply(&entry, now_ms) {
                changed.push(entry);
            }
        }
        changed
    }

    fn apply(&mut self, entry: &Entry, now_ms: i64) -> bool {
        match entry {
            Entry::Item {
                catalog,
                id,
                score,
                categories,
                expires_ms,
                version,
            } => self.apply_item(
                catalog,
                id,
                *score,
                categories,
                *expires_ms,
                *version,
                now_ms,
            ),
            Entry::ItemGone {
                catalog,
                id,
                version,
            } => self.apply_item_gone(catalog, id, *version, now_ms),
            Entry::CatalogGone { catalog, version } => {
                self.apply_catalog_gone(catalog, *version, now_ms)
            }
            Entry::Notification {
                group,
                notification,
                maxlen,
            } => self.apply_notification(group, notification, *maxlen, now_ms),
            Entry::GroupGone { group, version } => self.apply_group_gone(group, *version, now_ms),
        }
    }

    /// Is (catalog, id) held at `v` or newer (an item, its tombstone or the catalog's)?
    fn item_outranks(&self, catalog: &[u8], id: &[u8], v: Version) -> bool {
        self.catalog_gone.get(catalog).is_some_and(|g| *g >= v)
            || self
                .item_gone
                .get(catalog)
                .and_then(|ids| ids.get(id))
                .is_some_and(|g| *g >= v)
            || self
                .catalogs
                .get(catalog)
                .and_then(|c| c.get(id))
                .is_some_and(|i| i.version >= v)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_item(
        &mut self,
        catalog: &[u8],
        id: &[u8],
        score: f64,
        categories: &[Box<[u8]>],
        expires_ms: Option<i64>,
        version: Version,
        now_ms: i64,
    ) -> bool {
        if expires_ms.is_some_and(|at| at <= now_ms) || self.item_outranks(catalog, id, version) {
            return false;
        }
        let names: Vec<&[u8]> = categories.iter().map(|c| &**c).collect();
        self.catalogs
            .entry(catalog.into())
            .or_default()
            .add_versioned(id, score, &names, expires_ms, version);
        self.forget_item_gone(catalog, id);
        true
    }

    fn apply_item_gone(
        &mut self,
        catalog: &[u8],
        id: &[u8],
        version: Version,
        now_ms: i64,
    ) -> bool {
        if !self.tombstone_live(version, now_ms) || self.item_outranks(catalog, id, version) {
            return false;
        }
        if let Some(c) = self.catalogs.get_mut(catalog) {
            c.remove(id);
            if c.is_empty() {
                self.catalogs.remove(catalog);
            }
        }
        self.item_gone
            .entry(catalog.into())
            .or_default()
            .insert(id.into(), version);
        true
    }

    fn apply_catalog_gone(&mut self, catalog: &[u8], version: Version, now_ms: i64) -> bool {
        if !self.tombstone_live(version, now_ms)
            || self
                .catalog_gone
                .get(catalog)
                .is_some_and(|g| *g >= version)
        {
            return false;
        }
        if let Some(c) = self.catalogs.get_mut(catalog) {
            let older: Vec<Box<[u8]>> = c
                .items()
                .filter(|i| i.version <= version)
                .map(|i| i.id.clone())
                .collect();
            for id in &older {
                c.remove(id);
            }
            if c.is_empty() {
                self.catalogs.remove(catalog);
            }
        }
        if let Some(ids) = self.item_gone.get_mut(catalog) {
            ids.retain(|_, v| *v > version);
            if ids.is_empty() {
                self.item_gone.remove(catalog);
            }
        }
        self.catalog_gone.insert(catalog.into(), version);
        true
    }

    fn apply_notification(
        &mut self,
        group: &[u8],
        n: &Notification,
        maxlen: u32,
        now_ms: i64,
    ) -> bool {
        if n.expires_ms <= now_ms || self.group_gone.get(group).is_some_and(|g| n.seq < g.clock) {
            return false;
        }
        // The group's cap is the largest MAXLEN seen for it (a maximum: the same whatever the
        // order of delivery); a publisher's smaller MAXLEN reaches the others as its trim's
        // truncation tombstone.
        if let Some(g) = self.groups.get_mut(group) {
            g.cap = g.cap.max(maxlen);
        }
        let mut remove: Vec<u64> = Vec::new();
        if let Some(g) = self.groups.get(group) {
            // at most one live notification with this id, at most one with this sequence
            let same_id = g.find_live(&n.id, now_ms);
            let same_seq = g.by_seq(n.seq);
            for other in [same_id, same_seq].into_iter().flatten() {
                if other == n {
                    return false;
                }
                let conflicts = other.expires_ms > now_ms;
                if conflicts && rank(other) < rank(n) {
                    return false;
                }
                if !remove.contains(&other.seq) {
                    remove.push(other.seq);
                }
            }
        }
        let before = self
            .groups
            .get(group)
            .map_or((0, 0), |g| (group_cost(group, g), g.notifications().len()));
        let g = self.groups.entry(group.into()).or_default();
        for seq in remove {
            g.remove_seq(seq);
        }
        g.push(n.clone());
        // The cap holds here too: the oldest beyond it go, and the trim is kept as a truncation
        // tombstone, so a snapshot cannot bring them back and every node (replicas applying the
        // same entries included) ends with the same newest ones.
        g.cap = g.cap.max(maxlen);
        let mut trimmed = false;
        while g.cap > 0 && g.len() > g.cap as usize {
            g.pop_front();
            trimmed = true;
        }
        let front = g.notifications().front().map(|m| m.seq);
        let after = (group_cost(group, g), g.notifications().len());
        self.group_memory = self.group_memory.saturating_sub(before.0) + after.0;
        self.notification_count = self.notification_count.saturating_sub(before.1) + after.1;
        if let (true, Some(clock)) = (trimmed, front) {
            // node 0: a truncation means only "nothing below `clock`", so every node (a replica
            // trimming as its primary did included) makes the same tombstone
            let version = Version { clock, node: 0 };
            if self.group_gone.get(group).is_none_or(|v| *v < version) {
                self.group_gone.insert(group.into(), version);
            }
        }
        true
    }

    fn apply_group_gone(&mut self, group: &[u8], version: Version, now_ms: i64) -> bool {
        if !self.tombstone_live(version, now_ms)
            || self.group_gone.get(group).is_some_and(|g| *g >= version)
        {
            return false;
        }
        if let Some(g) = self.groups.get_mut(group) {
            let before = (group_cost(group, g), g.notifications().len());
            // sequences increase: the ones below the clock are a prefix
            while g
                .notifications()
                .front()
                .is_some_and(|n| n.seq < version.clock)
            {
                g.pop_front();
            }
            let after = if g.is_empty() {
                self.groups.remove(group);
                (0, 0)
            } else {
                (group_cost(group, g), g.notifications().len())
            };
            self.group_memory = self.group_memory.saturating_sub(before.0) + after.0;
            self.notification_count = self.notification_count.saturating_sub(before.1) + after.1;
        }
        self.group_gone.insert(group.into(), version);
        true
    }

    /// Every live entry and kept tombstone at `now_ms` (what a peer that missed changes merges).
    /// O(registry).
    pub fn snapshot(&self, now_ms: i64) -> Vec<Entry> {
        let mut out = Vec::new();
        for (name, catalog) in &self.catalogs {
            for item in catalog.items().filter(|i| i.live(now_ms)) {
                out.push(Entry::Item {
                    catalog: name.clone(),
                    id: item.id.clone(),
                    score: item.score,
                    categories: item
                        .categories
                        .iter()
                        .map(|&c| Box::from(catalog.category_name(c)))
                        .collect(),
                    expires_ms: item.expires_ms,
                    version: item.version,
                });
            }
        }
        for (catalog, ids) in &self.item_gone {
            for (id, &version) in ids {
                if self.tombstone_live(version, now_ms) {
                    out.push(Entry::ItemGone {
                        catalog: catalog.clone(),
                        id: id.clone(),
                        version,
                    });
                }
            }
        }
        for (catalog, &version) in &self.catalog_gone {
            if self.tombstone_live(version, now_ms) {
                out.push(Entry::CatalogGone {
                    catalog: catalog.clone(),
                    version,
                });
            }
        }
        for (group, g) in &self.groups {
            for n in g.notifications().iter().filter(|n| n.expires_ms > now_ms) {
                out.push(Entry::Notification {
                    group: group.clone(),
                    notification: n.clone(),
                    maxlen: g.cap,
                });
            }
        }
        for (group, &version) in &self.group_gone {
            if self.tombstone_live(version, now_ms) {
                out.push(Entry::GroupGone {
                    group: group.clone(),
                    version,
                });
            }
        }
        out
    }

    /// The digest of everything held (expired things not purged yet included): a wrapping sum of
    /// xxh3 of each entry's identity and version (a notification's whole content), so it does
    /// not depend on order. O(registry), no allocation per entry.
    pub fn digest(&self) -> Digest {
        let mut s = Summer {
            buf: Vec::with_capacity(256),
            hash: 0,
            entries: 0,
        };
        for (name, catalog) in &self.catalogs {
            for item in catalog.items() {
                s.add(
                    1,
                    &[name, &item.id],
                    &[item.version.clock, item.version.node],
                );
            }
        }
        for (catalog, ids) in &self.item_gone {
            for (id, v) in ids {
                s.add(2, &[catalog, id], &[v.clock, v.node]);
            }
        }
        for (catalog, v) in &self.catalog_gone {
            s.add(3, &[catalog], &[v.clock, v.node]);
        }
        for (group, g) in &self.groups {
            for n in g.notifications() {
                let publisher = n.publisher.as_deref();
                let parts: [&[u8]; 4] = [group, &n.id, &n.payload, publisher.unwrap_or_default()];
                let numbers = [
                    n.seq,
                    n.published_ms as u64,
                    n.expires_ms as u64,
                    u64::from(publisher.is_some()),
                ];
                if n.joined.is_restricted() {
                    // only restricted ones add their bounds: an unrestricted notification sums
                    // as it did before join restrictions existed
                    let w = [n.joined.after as u64, n.joined.before as u64];
                    s.add(4, &parts, &[&numbers[..], &w[..]].concat());
                } else {
                    s.add(4, &parts, &numbers);
                }
            }
        }
        for (group, v) in &self.group_gone {
            s.add(5, &[group], &[v.clock, v.node]);
        }
        Digest {
            hash: s.hash,
            entries: s.entries,
            clock: self.last_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Limits, Published};

    const T: i64 = 1_700_000_000_000;

    fn node(id: &[u8]) -> Registry {
        let mut r = Registry::new();
        r.node = crate::version::node_hash(id);
        r.track = true;
        r
    }

    fn publish(r: &mut Registry, group: &[u8], id: &[u8], payload: &[u8], now: i64) -> Published {
        r.publish(
            group,
            id,
            payload,
            now,
            now + 3_600_000,
            1000,
            None,
            Limits::NONE,
        )
        .unwrap()
    }

    /// Each node merges what the others' outboxes hold (in the order given).
    fn exchange(nodes: &mut [&mut Registry], now: i64) {
        let boxes: Vec<Vec<Entry>> = nodes.iter_mut().map(|n| n.take_outbox()).collect();
        for (i, n) in nodes.iter_mut().enumerate() {
            for (j, b) in boxes.iter().enumerate() {
                if i != j {
                    n.merge(b.clone(), now);
                }
            }
        }
    }

    fn same(a: &Registry, b: &Registry, now: i64) {
        let (da, db) = (a.digest(), b.digest());
        assert_eq!((da.hash, da.entries), (db.hash, db.entries));
        let sorted = |r: &Registry| {
            let mut v: Vec<Vec<u8>> = r
                .snapshot(now)
                .iter()
                .map(|e| crate::codec::registry::encode_entries(std::slice::from_ref(e)))
                .collect();
            v.sort();
            v
        };
        assert_eq!(sorted(a), sorted(b));
    }

    fn score(r: &Registry, catalog: &[u8], id: &[u8]) -> Option<f64> {
        r.catalogs.get(catalog)?.get(id).map(|i| i.score)
    }

    #[test]
    fn concurrent_add_of_one_item_ends_equal_both_ways() {
        let (mut a, mut b) = (node(b"a"), node(b"b"));
        a.add_item(b"c", b"x", 1.0, &[b"k"], None, T);
        b.add_item(b"c", b"x", 2.0, &[], None, T);
        exchange(&mut [&mut a, &mut b], T);
        let winner = if a.node > b.node { 1.0 } else { 2.0 };
        assert_eq!(score(&a, b"c", b"x"), Some(winner));
        assert_eq!(score(&b, b"c", b"x"), Some(winner));
        same(&a, &b, T);
        // a later add anywhere wins everywhere
        b.add_item(b"c", b"x", 3.0, &[], None, T + 1);
        exchange(&mut [&mut a, &mut b], T + 1);
        assert_eq!(score(&a, b"c", b"x"), Some(3.0));
        same(&a, &b, T + 1);
    }

    #[test]
    fn del_against_older_and_newer_adds() {
        let (mut a, mut b) = (node(b"a"), node(b"b"));
        a.add_item(b"c", b"old", 1.0, &[], None, T);
        a.add_item(b"c", b"keep", 1.0, &[], None, T);
        exchange(&mut [&mut a, &mut b], T);
        // b deletes both; a re-adds `keep` later, without having seen the delete
        assert_eq!(b.del_items(b"c", &[b"old", b"keep", b"absent"], T + 10), 2);
        a.add_item(b"c", b"keep", 5.0, &[], None, T + 20);
        // and a re-add of `old` older than the delete (a's clock behind)
        let mut late = node(b"c");
        late.add_item(b"c", b"old", 9.0, &[], None, T + 5);
        let mut c = late;
        exchange(&mut [&mut a, &mut b, &mut c], T + 30);
        for r in [&a, &b, &c] {
            assert_eq!(score(r, b"c", b"keep"), Some(5.0));
            assert_eq!(score(r, b"c", b"old"), None);
        }
        same(&a, &b, T + 30);
        same(&b, &c, T + 30);
        // an absent id's delete still beats an older add arriving later
        let mut d = node(b"d");
        d.merge(b.snapshot(T + 30), T + 30);
        let older = Entry::Item {
            catalog: b"c"[..].into(),
            id: b"absent"[..].into(),
            score: 1.0,
            categories: Box::new([]),
            expires_ms: None,
            version: Version { clock: 1, node: 1 },
        };
        assert!(d.merge(vec![older], T + 30).is_empty());
        same(&b, &d, T + 30);
    }

    #[test]
    fn drop_kills_older_items_and_later_adds_survive() {
        let (mut a, mut b) = (node(b"a"), node(b"b"));
        a.add_item(b"c", b"x", 1.0, &[], None, T);
        exchange(&mut [&mut a, &mut b], T);
        a.add_item(b"c", b"before", 1.0, &[], None, T + 1); // concurrent, older than the drop
        b.drop_catalog(b"c", T + 2);
        a.add_item(b"c", b"after", 1.0, &[], None, T + 3);
        // delivered in either order
        let (oa, ob) = (a.take_outbox(), b.take_outbox());
        let mut fresh1 = node(b"f1");
        fresh1.merge(oa.clone(), T + 4);
        fresh1.merge(ob.clone(), T + 4);
        let mut fresh2 = node(b"f2");
        fresh2.merge(ob.clone(), T + 4);
        fresh2.merge(oa.clone(), T + 4);
        a.merge(ob, T + 4);
        b.merge(oa, T + 4);
        for r in [&a, &b, &fresh1, &fresh2] {
            let ids: Vec<&[u8]> = r.catalogs[&b"c"[..]].items().map(|i| &*i.id).collect();
            assert_eq!(ids, vec![&b"after"[..]]);
        }
        same(&a, &b, T + 4);
        same(&a, &fresh1, T + 4);
        same(&fresh1, &fresh2, T + 4);
    }

    #[test]
    fn group_drop_against_later_publish() {
        let (mut a, mut b) = (node(b"a"), node(b"b"));
        publish(&mut a, b"g", b"n1", b"p", T);
        exchange(&mut [&mut a, &mut b], T);
        publish(&mut a, b"g", b"n2", b"p", T + 1); // older than the drop
        assert!(b.drop_group(b"g", T + 2));
        publish(&mut a, b"g", b"n3", b"p", T + 3);
        exchange(&mut [&mut a, &mut b], T + 4);
        for r in [&a, &b] {
            let ids: Vec<&[u8]> = r.groups[&b"g"[..]]
                .notifications()
                .iter()
                .map(|n| &*n.id)
                .collect();
            assert_eq!(ids, vec![&b"n3"[..]]);
            assert_eq!(r.notifications(), 1);
        }
        same(&a, &b, T + 4);
        // counters equal a recount
        let (m, n) = (a.group_memory(), a.notifications());
        a.recount();
        assert_eq!((a.group_memory(), a.notifications()), (m, n));
    }

    #[test]
    fn duplicate_notification_id_from_two_nodes_resolves_the_same_everywhere() {
        let (mut a, mut b, mut c) = (node(b"a"), node(b"b"), node(b"c"));
        // one with the very same sequence but another id (same millisecond, fresh clocks)
        publish(&mut a, b"h", b"x", b"1", T);
        publish(&mut b, b"h", b"y", b"2", T);
        publish(&mut a, b"g", b"n", b"from-a", T + 1);
        publish(&mut b, b"g", b"n", b"from-b", T);
        let (oa, ob) = (a.take_outbox(), b.take_outbox());
        assert_eq!(oa[0].clock(), ob[0].clock(), "same sequence");
        c.merge(oa.clone(), T + 2);
        c.merge(ob.clone(), T + 2);
        a.merge(ob, T + 2);
        b.merge(oa, T + 2);
        for r in [&a, &b, &c] {
            let g = &r.groups[&b"g"[..]];
            assert_eq!(g.len(), 1);
            assert_eq!(&*g.notifications()[0].payload, b"from-b", "the lower seq");
            let h = &r.groups[&b"h"[..]];
            assert_eq!(h.len(), 1);
            assert_eq!(&*h.notifications()[0].id, b"x", "the lower id");
            assert!(h.ids_in_step() && g.ids_in_step());
        }
        same(&a, &b, T + 2);
        same(&a, &c, T + 2);
        // a later local publish of the id is a duplicate everywhere
        assert_eq!(
            publish(&mut a, b"g", b"n", b"again", T + 3),
            Published::Duplicate
        );
        assert!(a.take_outbox().is_empty());
    }

    #[test]
    fn expired_entries_never_resurrect_and_tombstones_go() {
        let mut a = node(b"a");
        a.add_item(b"c", b"short", 1.0, &[], Some(T + 100), T);
        a.add_item(b"c", b"long", 1.0, &[], None, T);
        a.publish(b"g", b"n", b"p", T, T + 100, 10, None, Limits::NONE)
            .unwrap();
        a.del_items(b"c", &[b"gone"], T);
        let all = a.take_outbox();
        let mut late = node(b"late");
        let changed = late.merge(all.clone(), T + 100);
        assert_eq!(changed.len(), 2, "only the live item and the tombstone");
        assert!(late.groups.is_empty() && score(&late, b"c", b"short").is_none());
        assert_eq!(a.snapshot(T + 100).len(), 2);
        // tombstones past their TTL: ignored by a merge, dropped by the purge
        let ttl = a.tombstone_ttl_ms;
        let mut later = node(b"later");
        assert_eq!(later.merge(all.clone(), T + ttl).len(), 1, "only `long`");
        assert_eq!(later.tombstones(), 0);
        assert_eq!(a.tombstones(), 1);
        a.purge(T + ttl - 1);
        assert_eq!(a.tombstones(), 1);
        a.purge(T + ttl);
        assert_eq!(a.tombstones(), 0);
        assert!(
            a.take_outbox().is_empty(),
            "a purge never goes to the outbox"
        );
        // a merge raises the clock: later local changes outrank what was seen
        let mut behind = node(b"behind");
        behind.merge(vec![all[1].clone()], 0);
        assert!(behind.last_seq >= all[1].clock());
        behind.add_item(b"c", b"long", 2.0, &[], None, 0);
        let mine = behind.take_outbox();
        assert_eq!(a.merge(mine.clone(), T).len(), 1);
        assert_eq!(score(&a, b"c", b"long"), Some(2.0));
        // merging one's own entries again changes nothing, and never fills the outbox
        assert!(behind.merge(mine, T).is_empty());
        assert!(a.take_outbox().is_empty() && behind.take_outbox().is_empty());
    }

    #[test]
    fn standalone_keeps_no_versions_tombstones_nor_outbox() {
        let mut r = Registry::new();
        assert!(r.add_item(b"c", b"x", 1.0, &[], None, T));
        assert!(!r.add_item(b"c", b"x", 2.0, &[], None, T));
        assert_eq!(r.last_seq, 0, "catalog changes take no tick");
        assert_eq!(
            r.catalogs[&b"c"[..]].get(b"x").unwrap().version,
            Version::default()
        );
        assert_eq!(r.del_items(b"c", &[b"x", b"y"], T), 1);
        assert!(r.catalogs.is_empty(), "an emptied catalog disappears");
        assert!(!r.drop_catalog(b"c", T));
        publish(&mut r, b"g", b"n", b"p", T);
        assert_eq!(r.last_seq, (T as u64) * 1024);
        assert!(r.drop_group(b"g", T));
        assert_eq!(r.tombstones(), 0);
        assert!(r.take_outbox().is_empty());
        // the publisher reaches the outbox entry while tracking
        let mut a = node(b"a");
        publish(&mut a, b"g", b"n", b"p", T);
        a.set_publisher(b"g", a.last_seq, Some(b"alice"));
        match &a.take_outbox()[..] {
            [Entry::Notification { notification, .. }] => {
                assert_eq!(notification.publisher.as_deref(), Some(&b"alice"[..]))
            }
            other => panic!("{other:?}"),
        }
        // FLUSHALL keeps the clock and the settings
        let (seq, n) = (a.last_seq, a.node);
        a.clear();
        assert_eq!((a.last_seq, a.node, a.track), (seq, n, true));
        assert!(a.groups.is_empty());
    }
}
