//! Group notifications: one notification published to a slice of users, delivered to each member
//! exactly once.
//!
//! A group is a short list of live notifications in the registry; publishing touches only that
//! list, so it costs the same for ten members or a million. Each session keeps, per group, a cursor:
//! the sequence number of the last notification it received. Sequence numbers come from one
//! registry-wide counter, so they only grow, even when a group empties, disappears and comes back;
//! a cursor therefore never skips a notification and never repeats one. That is exact (no user
//! silently misses one, unlike a Bloom filter of delivered ids) and small (one integer per group).
//!
//! Membership is explicit (`ENRICH ... JOIN`) or derived: a group named like a segment of the last
//! ENRICH (`interest:hockey`, `dormant`, ...) holds every session in that segment. A session that
//! becomes a member while a notification lives receives it.

use std::collections::VecDeque;

use crate::mem::alloc_size;
use crate::session::Session;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub seq: u64,
    pub id: Box<[u8]>,
    pub payload: Box<[u8]>,
    pub published_ms: i64,
    pub expires_ms: i64,
    /// The ACL user that published it (`None`: the primary's stream, the AOF, an older saved form).
    /// It reaches a session only if this user may write the session's key (checked at delivery).
    pub publisher: Option<Box<[u8]>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Oldest first; sequence numbers strictly increase.
    pub notifications: VecDeque<Notification>,
}

impl Group {
    /// Drops expired notifications; returns how many.
    pub fn purge(&mut self, now_ms: i64) -> usize {
        let before = self.notifications.len();
        self.notifications.retain(|n| n.expires_ms > now_ms);
        before - self.notifications.len()
    }

    pub fn memory(&self) -> usize {
        alloc_size(self.notifications.capacity() * std::mem::size_of::<Notification>())
            + self
                .notifications
                .iter()
                .map(|n| {
                    alloc_size(n.id.len())
                        + alloc_size(n.payload.len())
                        + n.publisher.as_ref().map_or(0, |p| alloc_size(p.len()))
                })
                .sum::<usize>()
    }
}

/// One delivered (or peeked) notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub group: &'a [u8],
    pub notification: &'a Notification,
}

/// Is the session a member of `group` (explicitly, or through a segment of its last ENRICH)?
pub fn is_member(session: &Session, group: &[u8]) -> bool {
    session
        .groups
        .binary_search_by(|g| (**g).cmp(group))
        .is_ok()
        || session
            .calculated
            .as_ref()
            .is_some_and(|c| c.has_segment(group))
}

/// The session's cursor in `group` (0: nothing received yet).
pub fn cursor(session: &Session, group: &[u8]) -> u64 {
    session
        .cursors
        .binary_search_by(|(g, _)| (**g).cmp(group))
        .map_or(0, |i| session.cursors[i].1)
}

/// Live, undelivered notifications of the session's groups, in publication order.
pub fn pending<'a, G>(session: &Session, groups: G, now_ms: i64) -> Vec<Delivery<'a>>
where
    G: IntoIterator<Item = (&'a [u8], &'a Group)>,
{
    let mut out = Vec::new();
    for (name, group) in groups {
        if group.notifications.is_empty() || !is_member(session, name) {
            continue;
        }
        let after = cursor(session, name);
        for n in &group.notifications {
            if n.seq > after && n.expires_ms > now_ms {
                out.push(Delivery {
                    group: name,
                    notification: n,
                });
            }
        }
    }
    // Sequence numbers grow with publication: this is publication order across groups, and a
    // cursor that moves to the highest sequence delivered never skips an undelivered one.
    out.sort_by_key(|d| d.notification.seq);
    out
}

/// Marks `delivered` as received: each group's cursor moves to the highest sequence delivered in
/// it. Returns whether any cursor moved.
pub fn acknowledge(session: &mut Session, delivered: &[Delivery]) -> bool {
    let mut moved = false;
    for d in delivered {
        let seq = d.notification.seq;
        match session
            .cursors
            .binary_search_by(|(g, _)| (**g).cmp(d.group))
        {
            Ok(i) => {
                if session.cursors[i].1 < seq {
                    session.cursors[i].1 = seq;
                    moved = true;
                }
            }
            Err(i) => {
                session.cursors.insert(i, (d.group.into(), seq));
                moved = true;
            }
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{apply, plan, Enrich, Thresholds};

    fn note(seq: u64, published_ms: i64, expires_ms: i64) -> Notification {
        Notification {
            seq,
            id: format!("n{seq}").into_bytes().into(),
            payload: b"p".to_vec().into(),
            published_ms,
            expires_ms,
            publisher: None,
        }
    }

    fn member_of(groups: &[&'static [u8]]) -> Session {
        let mut s = Session::new(0, 100, 100);
        let req = Enrich {
            join: groups.to_vec(),
            ..Enrich::default()
        };
        let merged = plan(&s, &req, 1 << 16, 64).unwrap();
        apply(&mut s, &req, merged, 0, &Thresholds::default());
        s
    }

    #[test]
    fn delivered_once_in_order_and_never_expired() {
        let a = Group {
            notifications: vec![note(1, 10, 1_000), note(3, 30, 50)].into(),
        };
        let b = Group {
            notifications: vec![note(2, 20, 1_000)].into(),
        };
        let groups = [(&b"a"[..], &a), (&b"b"[..], &b)];
        let mut s = member_of(&[b"a", b"b"]);
        let first = pending(&s, groups, 40);
        let seqs: Vec<u64> = first.iter().map(|d| d.notification.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        let at_60 = pending(&s, groups, 60);
        assert_eq!(at_60.len(), 2, "expired one is never delivered");
        let owned: Vec<(Vec<u8>, u64)> = first
            .iter()
            .map(|d| (d.group.to_vec(), d.notification.seq))
            .collect();
        let delivered: Vec<Delivery> = owned
            .iter()
            .map(|(g, seq)| Delivery {
                group: g,
                notification: groups
                    .iter()
                    .find(|(n, _)| n == g)
                    .unwrap()
                    .1
                    .notifications
                    .iter()
                    .find(|n| n.seq == *seq)
                    .unwrap(),
            })
            .collect();
        assert!(acknowledge(&mut s, &delivered[..2]));
        assert_eq!(pending(&s, groups, 40).len(), 1);
        assert!(acknowledge(&mut s, &delivered));
        assert!(pending(&s, groups, 40).is_empty());
        assert!(
            !acknowledge(&mut s, &delivered),
            "acknowledging again changes nothing"
        );
    }

    #[test]
    fn non_members_get_nothing_and_segments_count() {
        let a = Group {
            notifications: vec![note(1, 10, 1_000)].into(),
        };
        let s = member_of(&[b"other"]);
        assert!(pending(&s, [(&b"a"[..], &a)], 0).is_empty());
        // "new" is a derived segment of a session with at most one event
        let seg = Group {
            notifications: vec![note(2, 10, 1_000)].into(),
        };
        assert_eq!(pending(&s, [(&b"new"[..], &seg)], 0).len(), 1);
    }
}
