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
use crate::notify::Notification;
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
    CatalogGone { catalog: Box<[u8]>, version: Version },
    /// A published notification (its `seq` is the origin's, the same on every node).
    Notification {
        group: Box<[u8]>,
        notification: Notification,
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
fn rank(n: &Notification) -> (u64, &[u8], &[u8], Option<&[u8]>) {
    (n.seq, &n.id, &n.payload, n.publisher.as_deref())
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
            } => self.apply_item(catalog, id, *score, categories, *expires_ms, *version, now_ms),
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
            } => self.apply_notification(group, notification, now_ms),
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

    fn apply_item_gone(&mut self, catalog: &[u8], id: &[u8], version: Version, now_ms: i64) -> bool {
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
            || self.catalog_gone.get(catalog).is_some_and(|g| *g >= version)
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

    fn apply_notification(&mut self, group: &[u8], n: &Notification, now_ms: i64) -> bool {
        if n.expires_ms <= now_ms || self.group_gone.get(group).is_some_and(|g| n.seq < g.clock) {
            return false;
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
        let after = (group_cost(group, g), g.notifications().len());
        self.group_memory = self.group_memory.saturating_sub(before.0) + after.0;
        self.notification_count = self.notification_count.saturating_sub(before.1) + after.1;
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
            while g.notifications().front().is_some_and(|n| n.seq < version.clock) {
                g.pop_front();
            }
            if g.is_empty() {
                self.remove_group(group);
            } else {
                let after = (group_cost(group, g), g.notifications().len());
                self.group_memory = self.group_memory.saturating_sub(before.0) + after.0;
                self.notification_count =
                    self.notification_count.saturating_sub(before.1) + after.1;
            }
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
                s.add(1, &[name, &item.id], &[item.version.clock, item.version.node]);
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
                s.add(
                    4,
                    &[group, &n.id, &n.payload, publisher.unwrap_or_default()],
                    &[
                        n.seq,
                        n.published_ms as u64,
                        n.expires_ms as u64,
                        u64::from(publisher.is_some()),
                    ],
                );
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

