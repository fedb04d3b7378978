//! The module-global registry: content catalogs and notification groups. Not keys: it
//! lives beside the keyspace, is saved in the RDB as module aux data, and its changes replicate as
//! the registry commands themselves.

use std::collections::BTreeMap;

use crate::notify::{Group, Notification};
use crate::surface::catalog::Catalog;

#[derive(Debug, Default)]
pub struct Registry {
    pub catalogs: BTreeMap<Box<[u8]>, Catalog>,
    pub groups: BTreeMap<Box<[u8]>, Group>,
    /// The last notification sequence number handed out (registry-wide, only grows).
    pub last_seq: u64,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Stored,
    /// The group already holds a notification with this id: nothing changed.
    Duplicate,
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            catalogs: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_seq: 0,
        }
    }

    pub fn memory(&self) -> usize {
        let catalogs: usize = self
            .catalogs
            .iter()
            .map(|(name, c)| name.len() + 64 + c.memory())
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| name.len() + 64 + g.memory())
            .sum();
        catalogs + groups
    }

    pub fn notifications(&self) -> usize {
        self.groups.values().map(|g| g.notifications.len()).sum()
    }

    /// Drops everything expired at `now_ms`: notifications (and groups left empty) and catalog
    /// items (and catalogs left empty). Returns how many went.
    pub fn purge(&mut self, now_ms: i64) -> usize {
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
    pub fn purge_notifications(&mut self, now_ms: i64) -> usize {
        let mut purged = 0;
        self.groups.retain(|_, g| {
            purged += g.purge(now_ms);
            !g.notifications.is_empty()
        });
        purged
    }

    /// Publishes one notification to `group` at `now_ms`: idempotent by `id` among the group's
    /// live notifications (a repeat changes nothing at all); the oldest ones are dropped beyond
    /// `max_per_group`. O(max_per_group), never O(members).
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
    ) -> Published {
        if let Some(g) = self.groups.get(group) {
            if g.notifications
                .iter()
                .any(|n| &*n.id == id && n.expires_ms > now_ms)
            {
                return Published::Duplicate;
            }
        }
        let time_seq = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1024);
        let seq = seq.unwrap_or_else(|| self.last_seq.saturating_add(1).max(time_seq));
        self.last_seq = self.last_seq.max(seq);
        let g = self.groups.entry(group.into()).or_default();
        g.purge(now_ms);
        g.notifications.retain(|n| &*n.id != id);
        g.notifications.push_back(Notification {
            seq,
            id: id.into(),
            payload: payload.into(),
            published_ms: now_ms,
            expires_ms,
            publisher: None,
        });
        g.notifications.make_contiguous().sort_by_key(|n| n.seq);
        while g.notifications.len() > max_per_group.max(1) {
            g.notifications.pop_front();
        }
        Published::Stored
    }

    /// Records the ACL user that published notification `seq` of `group` (tenancy: it then
    /// reaches only sessions that user may write).
    pub fn set_publisher(&mut self, group: &[u8], seq: u64, publisher: Option<&[u8]>) {
        if let Some(n) = self
            .groups
            .get_mut(group)
            .and_then(|g| g.notifications.iter_mut().find(|n| n.seq == seq))
        {
            n.publisher = publisher.map(Box::from);
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
        reg.publish(b"g1", b"a", b"p", 0, 10, 5, None);
        reg.publish(b"g2", b"a", b"p", 0, 100, 5, None);
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
            reg.publish(b"g", format!("n{i}").as_bytes(), b"p", 0, 1_000, 3, None);
        }
        let g = &reg.groups[&b"g"[..]];
        let seqs: Vec<u64> = g.notifications.iter().map(|n| n.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
        assert_eq!(reg.purge_notifications(1_000), 3);
        assert!(reg.groups.is_empty(), "empty groups go");
        reg.publish(b"g", b"n0", b"p", 0, 2_000, 3, None);
        assert_eq!(
            reg.groups[&b"g"[..]].notifications[0].seq,
            11,
            "sequence never restarts"
        );
        // a lost registry restarts from the clock, above anything published earlier
        let mut fresh = Registry::default();
        fresh.publish(b"g", b"x", b"p", 5, 2_000, 3, None);
        assert!(fresh.groups[&b"g"[..]].notifications[0].seq >= 5 * 1024);
        // a repeat of a live id changes nothing, not even purging
        reg.publish(b"g", b"old", b"p", 0, 10, 3, None);
        let before = reg.notifications();
        assert_eq!(
            reg.publish(b"g", b"n0", b"p", 20, 2_000, 3, None),
            Published::Duplicate
        );
        assert_eq!(reg.notifications(), before);
    }
}
