//! The module-global registry: content catalogs and notification groups. Not keys: it
//! lives beside the keyspace, is saved in the RDB as module aux data, and its changes replicate as
//! the registry commands themselves.
//!
//! Its group side is bounded (`Limits`: groups, payload size, notification memory) and counted as
//! it changes (`group_memory`, `notification_count`), so neither a limit check nor `INFO session`
//! walks the groups.

pub mod analytics;
pub mod sync;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::mem::alloc_size;
use crate::notify::{Group, Notification};
use crate::surface::catalog::Catalog;
use crate::version::Version;
use analytics::Analytics;
pub use sync::{Digest, Entry};

/// Bytes a group costs besides its notifications (map entry, deque header).
pub const GROUP_OVERHEAD: usize = 64;

/// Item tombstones: catalog -> item id -> version.
pub(crate) type ItemTombstones = BTreeMap<Box<[u8]>, BTreeMap<Box<[u8]>, Version>>;

/// Default `tombstone_ttl_ms`: one day.
pub const TOMBSTONE_TTL_MS: i64 = 86_400_000;

/// Bytes a tombstone costs besides its name(s) (map entry, version, B-tree slack).
pub const TOMBSTONE_OVERHEAD: usize = 48;

#[derive(Debug)]
pub struct Registry {
    pub catalogs: BTreeMap<Box<[u8]>, Catalog>,
    /// Change through `publish`, `drop_group`, `purge*` or call `recount` after (the counters
    /// follow).
    pub groups: BTreeMap<Box<[u8]>, Group>,
    /// The registry's hybrid logical clock (`tick`): the last notification sequence number or
    /// change version handed out, raised by every merged entry (registry-wide, only grows).
    pub last_seq: u64,
    /// This node's part of versions (`version::node_hash` of its cluster id; 0 standalone).
    pub node: u64,
    /// Cluster mode: local changes take versions, keep tombstones and go to the outbox.
    pub track: bool,
    /// How long (ms, after their clock) tombstones are kept.
    pub tombstone_ttl_ms: i64,
    /// The entries local changes made since the last `take_outbox` (only while `track`).
    outbox: Vec<Entry>,
    /// Tombstones of CATALOG DEL: catalog -> item id -> version. Never beside a live item of
    /// the same key (whichever is newer stays).
    pub(crate) item_gone: ItemTombstones,
    /// Tombstones of CATALOG DROP: items (and item tombstones) at or below it are gone.
    pub(crate) catalog_gone: BTreeMap<Box<[u8]>, Version>,
    /// Tombstones of GROUP DROP: notifications with a sequence below its clock are gone.
    pub(crate) group_gone: BTreeMap<Box<[u8]>, Version>,
    /// Heap bytes of the groups (names, notifications, overhead), kept as they change.
    group_memory: usize,
    /// Notifications in all groups, kept as they change.
    notification_count: usize,
    /// Site-wide analytics kept by TOUCH events (bounded: counted in `memory` and in
    /// `session.max-registry-memory`).
    pub analytics: Analytics,
}

/// The bounds a publish from a client is held to (the primary's and the AOF's are trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Groups in the registry (`session.max-registry-groups`).
    pub max_groups: usize,
    /// Bytes of one notification's payload (`session.max-notification-size`).
    pub max_payload: usize,
    /// Bytes of all groups and their notifications (`session.max-registry-memory`).
    pub max_memory: usize,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_groups: usize::MAX,
        max_payload: usize::MAX,
        max_memory: usize::MAX,
    };
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Stored,
    /// The group already holds a notification with this id: nothing changed.
    Duplicate,
}

fn group_cost(name: &[u8], g: &Group) -> usize {
    name.len() + GROUP_OVERHEAD + g.memory()
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            catalogs: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_seq: 0,
            node: 0,
            track: false,
            tombstone_ttl_ms: TOMBSTONE_TTL_MS,
            outbox: Vec::new(),
            item_gone: BTreeMap::new(),
            catalog_gone: BTreeMap::new(),
            group_gone: BTreeMap::new(),
            group_memory: 0,
            notification_count: 0,
            analytics: Analytics::new(),
        }
    }

    /// Replaces the content with `loaded` (an RDB's registry), keeping this instance's settings
    /// (`node`, `track`, `tombstone_ttl_ms`); the outbox is emptied.
    pub fn replace_with(&mut self, mut loaded: Registry) {
        loaded.node = self.node;
        loaded.track = self.track;
        loaded.tombstone_ttl_ms = self.tombstone_ttl_ms;
        *self = loaded;
    }

    /// Empties the registry (FLUSHALL) but for its clock and settings: sequence numbers and
    /// versions keep growing, so cursors never hide a notification published after it.
    pub fn clear(&mut self) {
        let last_seq = self.last_seq;
        self.replace_with(Registry::new());
        self.last_seq = last_seq;
    }

    /// One tick of the hybrid logical clock at `now_ms`: `max(last + 1, now_ms * 1024)`.
    pub fn tick(&mut self, now_ms: i64) -> u64 {
        let time = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1024);
        self.last_seq = self.last_seq.saturating_add(1).max(time);
        self.last_seq
    }

    /// A fresh version of this node (one tick).
    fn next_version(&mut self, now_ms: i64) -> Version {
        Version {
            clock: self.tick(now_ms),
            node: self.node,
        }
    }

    /// Is a tombstone of version `v` still kept at `now_ms`?
    pub(crate) fn tombstone_live(&self, v: Version, now_ms: i64) -> bool {
        v.ms().saturating_add(self.tombstone_ttl_ms.max(0)) > now_ms
    }

    /// Tombstones held (item, catalog and group ones).
    pub fn tombstones(&self) -> usize {
        self.item_gone.values().map(BTreeMap::len).sum::<usize>()
            + self.catalog_gone.len()
            + self.group_gone.len()
    }

    fn tombstone_memory(&self) -> usize {
        let items: usize = self
            .item_gone
            .iter()
            .map(|(c, ids)| {
                alloc_size(c.len())
                    + TOMBSTONE_OVERHEAD
                    + ids
                        .keys()
                        .map(|id| alloc_size(id.len()) + TOMBSTONE_OVERHEAD)
                        .sum::<usize>()
            })
            .sum();
        let names = |m: &BTreeMap<Box<[u8]>, Version>| -> usize {
            m.keys()
                .map(|n| alloc_size(n.len()) + TOMBSTONE_OVERHEAD)
                .sum()
        };
        items + names(&self.catalog_gone) + names(&self.group_gone)
    }

    /// Drops the tombstones older than `tombstone_ttl_ms` at `now_ms` (no outbox entry: every
    /// node forgets by its own clock, and a merge ignores a forgotten one). Returns how many.
    pub fn purge_tombstones(&mut self, now_ms: i64) -> usize {
        let before = self.tombstones();
        let ttl = self.tombstone_ttl_ms.max(0);
        let keep = move |v: &Version| v.ms().saturating_add(ttl) > now_ms;
        self.item_gone.retain(|_, ids| {
            ids.retain(|_, v| keep(v));
            !ids.is_empty()
        });
        self.catalog_gone.retain(|_, v| keep(v));
        self.group_gone.retain(|_, v| keep(v));
        before - self.tombstones()
    }

    /// Forgets the tombstone of item `id` of `catalog` (a newer add replaced it).
    pub(crate) fn forget_item_gone(&mut self, catalog: &[u8], id: &[u8]) {
        if let Some(ids) = self.item_gone.get_mut(catalog) {
            ids.remove(id);
            if ids.is_empty() {
                self.item_gone.remove(catalog);
            }
        }
    }

    /// CATALOG ADD: adds or replaces item `id` of `catalog` (created if missing). The caller
    /// checked the limits and purged expired items before. While tracking, the item takes a fresh
    /// version and goes to the outbox; else it keeps `Version::default()`. Returns whether the
    /// item is new.
    pub fn add_item(
        &mut self,
        catalog: &[u8],
        id: &[u8],
        score: f64,
        categories: &[&[u8]],
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> bool {
        let version = if self.track {
            self.next_version(now_ms)
        } else {
            Version::default()
        };
        let is_new = self
            .catalogs
            .entry(catalog.into())
            .or_default()
            .add_versioned(id, score, categories, expires_ms, version);
        self.forget_item_gone(catalog, id);
        if self.track {
            self.outbox.push(Entry::Item {
                catalog: catalog.into(),
                id: id.into(),
                score,
                categories: categories.iter().map(|c| Box::from(*c)).collect(),
                expires_ms,
                version,
            });
        }
        is_new
    }

    /// CATALOG DEL: removes the items `ids` of `catalog` (an emptied catalog disappears). Returns
    /// how many were present. While tracking, every id given (present here or not: another node
    /// may hold it) gets a tombstone and an outbox entry.
    pub fn del_items(&mut self, catalog: &[u8], ids: &[&[u8]], now_ms: i64) -> usize {
        let mut removed = 0;
        if let Some(c) = self.catalogs.get_mut(catalog) {
            removed = ids.iter().filter(|id| c.remove(id)).count();
            // A catalog exists while it holds items (as a Redis set does), so every saved form of
            // the registry, the AOF's included, can say what exists.
            if c.is_empty() {
                self.catalogs.remove(catalog);
            }
        }
        if self.track {
            for id in ids {
                let version = self.next_version(now_ms);
                self.item_gone
                    .entry(catalog.into())
                    .or_default()
                    .insert((*id).into(), version);
                self.outbox.push(Entry::ItemGone {
                    catalog: catalog.into(),
                    id: (*id).into(),
                    version,
                });
            }
        }
        removed
    }

    /// CATALOG DROP: removes a whole catalog. Returns whether it existed. While tracking, a
    /// tombstone (which also replaces the catalog's item tombstones) and an outbox entry.
    pub fn drop_catalog(&mut self, catalog: &[u8], now_ms: i64) -> bool {
        let existed = self.catalogs.remove(catalog).is_some();
        if self.track {
            let version = self.next_version(now_ms);
            self.item_gone.remove(catalog);
            self.catalog_gone.insert(catalog.into(), version);
            self.outbox.push(Entry::CatalogGone {
                catalog: catalog.into(),
                version,
            });
        }
        existed
    }

    /// Recomputes the counters and every group's expiry bound (after a load). O(notifications).
    pub fn recount(&mut self) {
        let (mut memory, mut count) = (0, 0);
        for (name, g) in self.groups.iter_mut() {
            let cap = g.cap;
            *g = Group::with(g.take());
            g.cap = cap;
            memory += group_cost(name, g);
            count += g.notifications().len();
        }
        self.group_memory = memory;
        self.notification_count = count;
    }

    /// Heap bytes of the groups and their notifications: O(1).
    pub fn group_memory(&self) -> usize {
        self.group_memory
    }

    /// Heap bytes of the whole registry (catalogs are walked: O(catalog items)).
    pub fn memory(&self) -> usize {
        let catalogs: usize = self
            .catalogs
            .iter()
            .map(|(name, c)| name.len() + 64 + c.memory())
            .sum();
        catalogs + self.group_memory + self.analytics.memory() + self.tombstone_memory()
    }

    /// Notifications in all groups: O(1).
    pub fn notifications(&self) -> usize {
        self.notification_count
    }

    /// GROUP DROP: removes a group and its notifications. Returns whether it existed. While
    /// tracking, a tombstone (notifications below its clock are gone everywhere) and an outbox
    /// entry, whether or not this node held the group.
    pub fn drop_group(&mut self, name: &[u8], now_ms: i64) -> bool {
        let existed = self.remove_group(name);
        if self.track {
            let version = self.next_version(now_ms);
            self.group_gone.insert(name.into(), version);
            self.outbox.push(Entry::GroupGone {
                group: name.into(),
                version,
            });
        }
        existed
    }

    /// Removes a group and its notifications, keeping the counters. Returns whether it existed.
    fn remove_group(&mut self, name: &[u8]) -> bool {
        match self.groups.remove_entry(name) {
            Some((name, g)) => {
                self.group_memory = self.group_memory.saturating_sub(group_cost(&name, &g));
                self.notification_count = self
                    .notification_count
                    .saturating_sub(g.notifications().len());
                true
            }
            None => false,
        }
    }

    /// Drops everything expired at `now_ms`: notifications (and groups left empty) and catalog
    /// items (and catalogs left empty). Returns how many went. Also forgets the tombstones past
    /// `tombstone_ttl_ms` (not counted). Never a tombstone nor an outbox entry: every node
    /// expires by its own clock.
    pub fn purge(&mut self, now_ms: i64) -> usize {
        self.purge_tombstones(now_ms);
        let mut purged = self.purge_notifications(now_ms);
        self.catalogs.retain(|_, catalog| {
            for id in catalog.expired(now_ms, usize::MAX) {
                purged += usize::from(catalog.remove(&id));
            }
            !catalog.is_empty()
        });
        purged
    }

    /// Drops expired notifications everywhere, and groups left empty. Returns how many went.
    /// A group with nothing expired costs one comparison (its expiry bound).
    pub fn purge_notifications(&mut self, now_ms: i64) -> usize {
        let mut purged = 0;
        let (mut memory, mut count) = (self.group_memory, self.notification_count);
        self.groups.retain(|name, g| {
            if g.min_expires_ms > now_ms {
                return true;
            }
            let before = group_cost(name, g);
            let gone = g.purge(now_ms);
            purged += gone;
            count = count.saturating_sub(gone);
            memory = memory.saturating_sub(before);
            if g.notifications().is_empty() {
                false
            } else {
                memory += group_cost(name, g);
                true
            }
        });
        self.group_memory = memory;
        self.notification_count = count;
        purged
    }

    /// Publishes one notification to `group` at `now_ms`: idempotent by `id` among the group's
    /// live notifications (a repeat changes nothing at all); the oldest ones are dropped beyond
    /// `max_per_group`. Amortized O(log n) for a group of n (the duplicate check is its id set;
    /// what it trims or purges from the front was pushed once), never O(members) nor O(groups). `limits` are checked
    /// before anything changes.
    ///
    /// Sequence numbers are `max(last + 1, now_ms * 1024)`, or `seq` when the primary chose it
    /// (replication, AOF): they follow publication order and keep growing across restarts even if
    /// the registry were lost, so a session's cursor can never hide a newer notification.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        group: &[u8],
        id: &[u8],
        payload: &[u8],
        now_ms: i64,
        expires_ms: i64,
        max_per_group: usize,
        seq: Option<u64>,
        limits: Limits,
    ) -> Result<Published> {
        let max_per_group = max_per_group.max(1);
        let existing = self.groups.get(group);
        if let Some(g) = existing {
            if g.has_live(id, now_ms) {
                return Ok(Published::Duplicate);
            }
        }
        if payload.len() > limits.max_payload {
            return Err(Error::RegistryFull {
                what: "session.max-notification-size",
                limit: limits.max_payload,
            });
        }
        if existing.is_none() && self.groups.len() >= limits.max_groups {
            return Err(Error::RegistryFull {
                what: "session.max-registry-groups",
                limit: limits.max_groups,
            });
        }
        let added = Notification::memory_of(id.len(), payload.len(), None)
            + existing.map_or(group.len() + GROUP_OVERHEAD, |_| 0);
        // What trimming to `max_per_group` gives back (the oldest go first). Only whether it
        // covers `added` matters, so the sum stops there: bounded by the new notification's size,
        // however many a smaller MAXLEN trims.
        let freed: usize = existing.map_or(0, |g| {
            let over = (g.notifications().len() + 1).saturating_sub(max_per_group);
            let mut sum = 0;
            for n in g.notifications().iter().take(over) {
                if sum >= added {
                    break;
                }
                sum += n.memory();
            }
            sum
        });
        // The analytics are bounded by their own sizing, and count against the same limit.
        let used = self.group_memory + self.analytics.memory();
        if added > freed && used + (added - freed) > limits.max_memory {
            return Err(Error::RegistryFull {
                what: "session.max-registry-memory",
                limit: limits.max_memory,
            });
        }

        let seq = match seq {
            Some(seq) => {
                self.last_seq = self.last_seq.max(seq);
                seq
            }
            None => self.tick(now_ms),
        };
        let before = self
            .groups
            .get(group)
            .map_or((0, 0), |g| (group_cost(group, g), g.notifications().len()));
        let g = self.groups.entry(group.into()).or_default();
        // Expired ones at the front go (amortized O(1)); any other expired one stays until the
        // periodic purge and is never taken for a duplicate (`has_live`), counted or delivered.
        g.purge_front(now_ms);
        let notification = Notification {
            seq,
            id: id.into(),
            payload: payload.into(),
            published_ms: now_ms,
            expires_ms,
            publisher: None,
            joined: crate::notify::JoinWindow::ANY,
        };
        if self.track {
            self.outbox.push(Entry::Notification {
                group: group.into(),
                notification: notification.clone(),
                maxlen: u32::try_from(max_per_group).unwrap_or(u32::MAX),
            });
        }
        g.push(notification);
        g.cap = g.cap.max(u32::try_from(max_per_group).unwrap_or(u32::MAX));
        let mut trimmed = false;
        while g.len() > max_per_group {
            g.pop_front();
            trimmed = true;
        }
        // While tracking, the trim travels as a truncation tombstone (what a GROUP DROP's is:
        // "nothing below this sequence"), so replicas and the other primaries drop exactly the
        // same notifications and a snapshot cannot bring them back. It goes before the
        // notification's own entry, which `set_publisher` completes.
        let front = g.notifications().front().map(|n| n.seq);
        let after = (group_cost(group, g), g.notifications().len());
        if let (true, true, Some(clock)) = (trimmed, self.track, front) {
            // node 0: a truncation means only "nothing below `clock`", so every node (a replica
            // trimming as its primary did included) makes the same tombstone
            let version = Version { clock, node: 0 };
            if self.group_gone.get(group).is_none_or(|g| *g < version) {
                self.group_gone.insert(group.into(), version);
            }
            let gone = Entry::GroupGone {
                group: group.into(),
                version,
            };
            let at = self.outbox.len().saturating_sub(1);
            self.outbox.insert(at, gone);
        }
        self.group_memory = self.group_memory.saturating_sub(before.0) + after.0;
        self.notification_count = self.notification_count.saturating_sub(before.1) + after.1;
        Ok(Published::Stored)
    }

    /// Records the ACL user that published notification `seq` of `group` (tenancy: it then
    /// reaches only sessions that user may write). While tracking, the outbox's entry of that
    /// publish carries it too (call it right after `publish`, as the command does).
    pub fn set_publisher(&mut self, group: &[u8], seq: u64, publisher: Option<&[u8]>) {
        if let Some(g) = self.groups.get_mut(group) {
            let before = g.memory();
            g.set_publisher(seq, publisher);
            self.group_memory = self.group_memory.saturating_sub(before) + g.memory();
        }
        if let Some(Entry::Notification {
            group: g,
            notification: n,
            ..
        }) = self.outbox.last_mut()
        {
            if **g == *group && n.seq == seq {
                n.publisher = publisher.map(Box::from);
            }
        }
    }

    /// Restricts notification `seq` of `group` to members who joined in `window`
    /// (`NOTIFYGROUP ... JOINEDBEFORE / JOINEDAFTER`). While tracking, the outbox's entry of that
    /// publish carries it too (call it right after `publish`, as the command does).
    pub fn set_window(&mut self, group: &[u8], seq: u64, window: crate::notify::JoinWindow) {
        if let Some(g) = self.groups.get_mut(group) {
            g.set_window(seq, window);
        }
        if let Some(Entry::Notification {
            group: g,
            notification: n,
            ..
        }) = self.outbox.last_mut()
        {
            if **g == *group && n.seq == seq {
                n.joined = window;
            }
        }
    }

    pub fn items(&self) -> usize {
        self.catalogs.values().map(Catalog::len).sum()
    }
}

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn purge_drops_every_expired_thing() {
        let mut reg = Registry::default();
        reg.publish(b"g1", b"a", b"p", 0, 10, 5, None, Limits::NONE)
            .unwrap();
        reg.publish(b"g2", b"a", b"p", 0, 100, 5, None, Limits::NONE)
            .unwrap();
        let mut c = Catalog::default();
        c.add(b"old", 1.0, &[], Some(10));
        c.add(b"new", 1.0, &[], None);
        reg.catalogs.insert(b"c"[..].into(), c);
        let mut gone = Catalog::default();
        gone.add(b"x", 1.0, &[], Some(5));
        reg.catalogs.insert(b"gone"[..].into(), gone);
        assert_eq!(reg.purge(10), 3);
        assert_eq!(
            (reg.groups.len(), reg.catalogs.len(), reg.items()),
            (1, 1, 1)
        );
        assert_eq!(reg.purge(10), 0);
    }

    #[test]
    fn bounded_groups_and_monotone_sequence() {
        let mut reg = Registry::default();
        for i in 0..10 {
            reg.publish(
                b"g",
                format!("n{i}").as_bytes(),
                b"p",
                0,
                1_000,
                3,
                None,
                Limits::NONE,
            )
            .unwrap();
        }
        let g = &reg.groups[&b"g"[..]];
        let seqs: Vec<u64> = g.notifications().iter().map(|n| n.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
        assert_eq!(reg.purge_notifications(1_000), 3);
        assert!(reg.groups.is_empty(), "empty groups go");
        reg.publish(b"g", b"n0", b"p", 0, 2_000, 3, None, Limits::NONE)
            .unwrap();
        assert_eq!(
            reg.groups[&b"g"[..]].notifications()[0].seq,
            11,
            "sequence never restarts"
        );
        // a lost registry restarts from the clock, above anything published earlier
        let mut fresh = Registry::default();
        fresh
            .publish(b"g", b"x", b"p", 5, 2_000, 3, None, Limits::NONE)
            .unwrap();
        assert!(fresh.groups[&b"g"[..]].notifications()[0].seq >= 5 * 1024);
        // a repeat of a live id changes nothing, not even purging
        reg.publish(b"g", b"old", b"p", 0, 10, 3, None, Limits::NONE)
            .unwrap();
        let before = reg.notifications();
        assert_eq!(
            reg.publish(b"g", b"n0", b"p", 20, 2_000, 3, None, Limits::NONE),
            Ok(Published::Duplicate)
        );
        assert_eq!(reg.notifications(), before);
    }

    #[test]
    fn limits_refuse_before_any_change_and_counters_follow() {
        let limits = Limits {
            max_groups: 2,
            max_payload: 10,
            max_memory: 2_000,
        };
        let mut reg = Registry::default();
        reg.publish(b"g1", b"a", b"p", 0, 100, 5, None, limits)
            .unwrap();
        reg.publish(b"g2", b"a", b"p", 0, 100, 5, None, limits)
            .unwrap();
        let seq = reg.last_seq;
        assert_eq!(
            reg.publish(b"g3", b"a", b"p", 0, 100, 5, None, limits),
            Err(Error::RegistryFull {
                what: "session.max-registry-groups",
                limit: 2
            })
        );
        assert_eq!(
            reg.publish(b"g1", b"b", &[0; 11], 0, 100, 5, None, limits),
            Err(Error::RegistryFull {
                what: "session.max-notification-size",
                limit: 10
            })
        );
        let mut grew = 0;
        let err = loop {
            match reg.publish(
                b"g1",
                format!("n{grew}").as_bytes(),
                b"0123456789",
                0,
                100,
                1000,
                None,
                limits,
            ) {
                Ok(_) => grew += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(
            err,
            Error::RegistryFull {
                what: "session.max-registry-memory",
                ..
            }
        ));
        assert!(
            reg.group_memory() <= 2_000 && grew > 3,
            "{} {grew}",
            reg.group_memory()
        );
        let (memory, count, last) = (reg.group_memory(), reg.notifications(), reg.last_seq);
        assert!(last > seq);
        // counters equal a recount from scratch, through publish, purge and drop
        reg.recount();
        assert_eq!((reg.group_memory(), reg.notifications()), (memory, count));
        reg.publish(b"g2", b"short", b"p", 0, 50, 5, None, Limits::NONE)
            .unwrap();
        assert_eq!(reg.purge_notifications(60), 1);
        let (memory, count) = (reg.group_memory(), reg.notifications());
        reg.recount();
        assert_eq!((reg.group_memory(), reg.notifications()), (memory, count));
        assert!(reg.drop_group(b"g1", 0));
        assert!(!reg.drop_group(b"g1", 0));
        assert_eq!(reg.notifications(), 1);
        let memory = reg.group_memory();
        reg.recount();
        assert_eq!(reg.group_memory(), memory);
        // a full group at its length bound still takes new ones (the oldest make room)
        let mut full = Registry::default();
        let tight = Limits {
            max_memory: 0,
            ..Limits::NONE
        };
        assert!(full
            .publish(b"g", b"a", b"p", 0, 100, 1, None, tight)
            .is_err());
        full.publish(b"g", b"a", b"p", 0, 100, 1, None, Limits::NONE)
            .unwrap();
        let at_bound = Limits {
            max_memory: full.group_memory(),
            ..Limits::NONE
        };
        assert_eq!(
            full.publish(b"g", b"b", b"q", 0, 100, 1, None, at_bound),
            Ok(Published::Stored)
        );
    }

    /// The per-group id set stays in step with the deque through publishes (fresh and repeated
    /// ids, some already expired, explicit out-of-order sequences), trims, purges, drops and a
    /// load's recount; and a publish's duplicate answer equals a brute-force scan of the group.
    #[test]
    fn the_id_set_follows_the_deque_and_answers_like_a_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut reg = Registry::default();
        let mut now = 0;
        for step in 0..20_000 {
            now += rng.gen_range(0..3);
            let group = format!("g{}", rng.gen_range(0..3)).into_bytes();
            match rng.gen_range(0..100) {
                0..=79 => {
                    let id = format!("i{}", rng.gen_range(0..40)).into_bytes();
                    let expires = now + rng.gen_range(-2..60);
                    let max = rng.gen_range(1..30);
                    let brute = reg.groups.get(&group[..]).is_some_and(|g| {
                        g.notifications()
                            .iter()
                            .any(|n| *n.id == *id && n.expires_ms > now)
                    });
                    // now and then a primary's explicit sequence below the newest (never one
                    // a group already holds)
                    let below = reg.last_seq.saturating_sub(1).max(1);
                    let free = reg
                        .groups
                        .values()
                        .all(|g| g.notifications().iter().all(|n| n.seq != below));
                    let seq = (step % 50 == 0 && free).then_some(below);
                    let got = reg.publish(&group, &id, b"p", now, expires, max, seq, Limits::NONE);
                    assert_eq!(got == Ok(Published::Duplicate), brute, "step {step}");
                    if got == Ok(Published::Stored) {
                        let publisher = [None, Some(&b"alice"[..]), Some(b"bob")][step % 3];
                        let seq = seq.unwrap_or(reg.last_seq);
                        reg.set_publisher(&group, seq, publisher);
                        // now and then a join restriction (as NOTIFYGROUP ... JOINEDBEFORE/AFTER)
                        if step % 4 == 0 {
                            let after = rng.gen_range(0..now.max(1) + 1);
                            let before = [i64::MAX, after + rng.gen_range(1..20)][step % 8 / 4];
                            let window = crate::notify::JoinWindow { after, before };
                            reg.set_window(&group, seq, window);
                        }
                    }
                    // the per-publisher count, corrected by the restricted ones, equals a walk of
                    // the group (cursor somewhere in it, a join time somewhere in the run)
                    if let Some(g) = reg.groups.get(&group[..]) {
                        let cursor = reg.last_seq.saturating_sub(step as u64 % 7);
                        let joined = rng.gen_range(0..now.max(1) + 1);
                        let ok = |p: Option<&[u8]>| p != Some(b"bob");
                        let brute = g
                            .notifications()
                            .iter()
                            .filter(|n| n.seq > cursor && n.expires_ms > now)
                            .filter(|n| n.joined.admits(joined))
                            .filter(|n| ok(n.publisher.as_deref()))
                            .count();
                        let mut asked = 0;
                        let fast = g.pending_after_where(cursor, now, joined, &mut |p| {
                            asked += 1;
                            ok(p)
                        });
                        assert_eq!(fast, brute, "step {step}");
                        let unrestricted = g
                            .notifications()
                            .iter()
                            .filter(|n| n.seq > cursor && n.expires_ms > now)
                            .filter(|n| n.joined.admits(joined))
                            .count();
                        assert_eq!(g.pending_after(cursor, now, joined), unrestricted);
                        if g.min_expires_ms > now {
                            // one check per publisher, plus one per refused restricted one
                            let restricted = g.restricted().iter().filter(|s| **s > cursor).count();
                            assert!(asked <= 3 + restricted, "{asked} checks");
                        }
                    }
                }
                80..=94 => {
                    reg.purge_notifications(now);
                }
                95..=97 => {
                    reg.drop_group(&group, now);
                }
                _ => reg.recount(),
            }
            for (name, g) in &reg.groups {
                assert!(g.ids_in_step(), "step {step} group {name:?}");
                assert!(g
                    .notifications()
                    .iter()
                    .zip(g.notifications().iter().skip(1))
                    .all(|(a, b)| a.seq < b.seq));
            }
        }
    }
}
