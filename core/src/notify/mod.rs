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
//! Membership is explicit (`ENRICH ... JOIN`) or derived: a group named like a segment
//! (`interest:hockey`, `dormant`, ...) holds every session whose current activity qualifies
//! (`enrich::derive`, evaluated at the time of use; no ENRICH needed). A session that becomes a
//! member while a notification lives receives it. Read state (`ack`) marks delivered ones read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::borrow::Cow;

use crate::enrich::{segments, Thresholds};
use crate::mem::alloc_size;
use crate::session::{ReadMark, Session};

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
    /// Which members it reaches by join time (`NOTIFYGROUP ... JOINEDBEFORE / JOINEDAFTER`);
    /// `JoinWindow::ANY` for nearly every notification.
    pub joined: JoinWindow,
}

/// The members a notification reaches by the time they joined its group: `after <= joined <
/// before` (unix ms). An explicit membership's join time is the one `ENRICH ... JOIN` recorded (0
/// for one saved before join times were kept: "before everything"); a derived segment's is the
/// session's creation time (the module does not track when activity made a session qualify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JoinWindow {
    /// `JOINEDAFTER`: members that joined at or after this time (0: no bound, as every join
    /// time is at least 0).
    pub after: i64,
    /// `JOINEDBEFORE`: members that joined strictly before this time (`i64::MAX`: no bound).
    pub before: i64,
}

impl JoinWindow {
    /// No restriction.
    pub const ANY: JoinWindow = JoinWindow {
        after: 0,
        before: i64::MAX,
    };

    /// Does a member that joined at `joined_ms` receive it?
    pub fn admits(&self, joined_ms: i64) -> bool {
        joined_ms >= self.after && joined_ms < self.before
    }

    /// Does it restrict anything?
    pub fn is_restricted(&self) -> bool {
        *self != Self::ANY
    }

    /// A window the live input could give: bounds in 0..=`max_ms` (before: or none) and not
    /// empty. What NOTIFYGROUP accepts and the decoders check.
    pub fn is_valid(&self, max_ms: i64) -> bool {
        (0..=max_ms).contains(&self.after)
            && (self.before == i64::MAX || (0..=max_ms).contains(&self.before))
            && self.after < self.before
    }
}

impl Default for JoinWindow {
    fn default() -> Self {
        Self::ANY
    }
}

/// Heap bytes one notification's entry in its group's id set costs (a 16-byte entry in B-tree
/// nodes that are on average about half full).
pub const ID_ENTRY: usize = 32;

impl Notification {
    /// Heap bytes of one notification (its slot in the deque, id, payload and id-set entry).
    pub fn memory(&self) -> usize {
        Self::memory_of(
            self.id.len(),
            self.payload.len(),
            self.publisher.as_ref().map(|p| p.len()),
        )
    }

    /// What a notification with an id, a payload and a publisher of these lengths costs.
    pub fn memory_of(id: usize, payload: usize, publisher: Option<usize>) -> usize {
        std::mem::size_of::<Notification>()
            + alloc_size(id)
            + alloc_size(payload)
            + publisher.map_or(0, alloc_size)
            + ID_ENTRY
    }
}

/// The id set's key of an id: its hash (fixed seed; only ever compared within one group, and
/// every hit is checked against the notification's own id).
fn id_hash(id: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Oldest first; sequence numbers strictly increase. Changed only through the methods below,
    /// which keep `ids` in step.
    notifications: VecDeque<Notification>,
    /// (hash of id, sequence) of every notification in `notifications`: a publish's duplicate
    /// check is O(log n), not a walk of the group. Derived, never saved (rebuilt by `with`).
    ids: BTreeSet<(u64, u64)>,
    /// The sum of the notifications' `memory()`, kept as they change (O(1) for the registry's
    /// counters on every publish).
    memory: usize,
    /// Per publisher (`None`: none recorded), the sequences of its notifications in order: a
    /// pending count is one binary search per publisher that may reach the session, never a walk
    /// of the notifications. Derived, never saved (rebuilt by `with`); changed with the deque.
    by_publisher: BTreeMap<Option<Box<[u8]>>, VecDeque<u64>>,
    /// The sequences of the notifications restricted by join time, in order: a pending count
    /// corrects the per-publisher count by walking only these after the cursor (they are rare;
    /// at most the group's length). Derived, never saved (rebuilt by `with`).
    restricted: VecDeque<u64>,
    /// A lower bound of the earliest expiry among `notifications` (exact after `purge`): while it
    /// is in the future, no notification of the group has expired, so a pending count is a binary
    /// search instead of a walk.
    pub min_expires_ms: i64,
    /// The MAXLEN the group's newest publish was made with (0: none known). Not saved: in a
    /// cluster a merge trims to it, so every node keeps the same newest ones.
    pub cap: u32,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            notifications: VecDeque::new(),
            ids: BTreeSet::new(),
            memory: 0,
            by_publisher: BTreeMap::new(),
            restricted: VecDeque::new(),
            min_expires_ms: i64::MAX,
            cap: 0,
        }
    }
}

impl Group {
    /// A group holding `notifications` (oldest first), with its expiry bound computed.
    pub fn with(mut notifications: VecDeque<Notification>) -> Self {
        notifications.make_contiguous().sort_by_key(|n| n.seq);
        let min_expires_ms = notifications
            .iter()
            .map(|n| n.expires_ms)
            .min()
            .unwrap_or(i64::MAX);
        let ids = notifications
            .iter()
            .map(|n| (id_hash(&n.id), n.seq))
            .collect();
        let memory = notifications.iter().map(Notification::memory).sum();
        let mut by_publisher: BTreeMap<Option<Box<[u8]>>, VecDeque<u64>> = BTreeMap::new();
        for n in &notifications {
            by_publisher
                .entry(n.publisher.clone())
                .or_default()
                .push_back(n.seq);
        }
        let restricted = notifications
            .iter()
            .filter(|n| n.joined.is_restricted())
            .map(|n| n.seq)
            .collect();
        Group {
            notifications,
            ids,
            memory,
            by_publisher,
            restricted,
            min_expires_ms,
            cap: 0,
        }
    }

    /// The notifications, oldest first.
    pub fn notifications(&self) -> &VecDeque<Notification> {
        &self.notifications
    }

    /// The notification with sequence `seq` (binary search).
    pub fn by_seq(&self, seq: u64) -> Option<&Notification> {
        let at = self.notifications.partition_point(|n| n.seq < seq);
        self.notifications.get(at).filter(|n| n.seq == seq)
    }

    /// Does the group hold a notification with this id that is live at `now_ms`? O(log n) (one
    /// set lookup, then a binary search for each notification whose id hashes the same).
    pub fn has_live(&self, id: &[u8], now_ms: i64) -> bool {
        let h = id_hash(id);
        self.ids.range((h, 0)..=(h, u64::MAX)).any(|(_, seq)| {
            self.by_seq(*seq)
                .is_some_and(|n| *n.id == *id && n.expires_ms > now_ms)
        })
    }

    /// The live notification with this id at `now_ms`, if any (O(log n), as `has_live`).
    pub fn find_live(&self, id: &[u8], now_ms: i64) -> Option<&Notification> {
        let h = id_hash(id);
        self.ids
            .range((h, 0)..=(h, u64::MAX))
            .filter_map(|(_, seq)| self.by_seq(*seq))
            .find(|n| *n.id == *id && n.expires_ms > now_ms)
    }

    /// Appends a notification (kept in sequence order; the new one is normally the newest).
    pub fn push(&mut self, n: Notification) {
        let sorted = self
            .notifications
            .back()
            .is_none_or(|last| last.seq < n.seq);
        self.min_expires_ms = self.min_expires_ms.min(n.expires_ms);
        self.ids.insert((id_hash(&n.id), n.seq));
        self.memory += n.memory();
        index_insert(
            self.by_publisher.entry(n.publisher.clone()).or_default(),
            n.seq,
        );
        if n.joined.is_restricted() {
            index_insert(&mut self.restricted, n.seq);
        }
        if sorted {
            self.notifications.push_back(n);
        } else {
            // a primary's explicit sequence below the newest: inserted at its place (O(distance
            // from the end), never a sort of the group)
            let at = self.notifications.partition_point(|m| m.seq < n.seq);
            self.notifications.insert(at, n);
        }
    }

    /// Moves `seq` from one publisher's list to another's.
    fn reindex(&mut self, seq: u64, from: &Option<Box<[u8]>>, to: &Option<Box<[u8]>>) {
        if from == to {
            return;
        }
        self.unindex(from, seq);
        index_insert(self.by_publisher.entry(to.clone()).or_default(), seq);
    }

    /// Removes `seq` from `publisher`'s list (O(1) at either end, else O(distance)).
    fn unindex(&mut self, publisher: &Option<Box<[u8]>>, seq: u64) {
        if let Some(list) = self.by_publisher.get_mut(publisher) {
            if list.front() == Some(&seq) {
                list.pop_front();
            } else if list.back() == Some(&seq) {
                list.pop_back();
            } else if let Ok(i) = list.binary_search(&seq) {
                list.remove(i);
            }
            if list.is_empty() {
                self.by_publisher.remove(publisher);
            }
        }
    }

    /// Removes `seq` from the restricted list, if there (O(1) at either end, else O(distance)).
    fn unrestrict(&mut self, seq: u64) {
        if self.restricted.is_empty() {
            return;
        }
        if self.restricted.front() == Some(&seq) {
            self.restricted.pop_front();
        } else if self.restricted.back() == Some(&seq) {
            self.restricted.pop_back();
        } else if let Ok(i) = self.restricted.binary_search(&seq) {
            self.restricted.remove(i);
        }
    }

    /// Live notifications after `cursor` published by a publisher `reaches` accepts and that
    /// admit a member who joined at `joined_ms`: one binary search per distinct publisher of the
    /// group while nothing in it has expired, corrected by a walk of the join-restricted ones
    /// after the cursor (rare; at most the group's length); else a walk of the tail after the
    /// cursor, as `pending_after`.
    pub fn pending_after_where(
        &self,
        cursor: u64,
        now_ms: i64,
        joined_ms: i64,
        reaches: &mut impl FnMut(Option<&[u8]>) -> bool,
    ) -> usize {
        if self.min_expires_ms > now_ms {
            let all: usize = self
                .by_publisher
                .iter()
                .filter(|(_, seqs)| seqs.back().is_some_and(|last| *last > cursor))
                .filter(|(p, _)| reaches(p.as_deref()))
                .map(|(_, seqs)| seqs.len() - seqs.partition_point(|s| *s <= cursor))
                .sum();
            return all.saturating_sub(self.refused_after(cursor, joined_ms, reaches));
        }
        let from = self.after(cursor);
        self.notifications
            .range(from..)
            .filter(|n| {
                n.expires_ms > now_ms
                    && n.joined.admits(joined_ms)
                    && reaches(n.publisher.as_deref())
            })
            .count()
    }

    /// How many notifications after `cursor` a count by publisher included that the join
    /// restriction keeps from a member who joined at `joined_ms`: a walk of the restricted ones
    /// after the cursor (a binary search each), none at all while the group has none.
    fn refused_after(
        &self,
        cursor: u64,
        joined_ms: i64,
        reaches: &mut impl FnMut(Option<&[u8]>) -> bool,
    ) -> usize {
        if self.restricted.back().is_none_or(|last| *last <= cursor) {
            return 0;
        }
        let from = self.restricted.partition_point(|s| *s <= cursor);
        self.restricted
            .range(from..)
            .filter_map(|seq| self.by_seq(*seq))
            .filter(|n| !n.joined.admits(joined_ms) && reaches(n.publisher.as_deref()))
            .count()
    }

    /// Restricts notification `seq` to members who joined in `window` (binary search).
    pub fn set_window(&mut self, seq: u64, window: JoinWindow) {
        let at = self.notifications.partition_point(|n| n.seq < seq);
        if let Some(n) = self.notifications.get_mut(at).filter(|n| n.seq == seq) {
            n.joined = window;
            if window.is_restricted() {
                index_insert(&mut self.restricted, seq);
            } else {
                self.unrestrict(seq);
            }
        }
    }

    /// Records the publisher of notification `seq` (binary search), keeping the memory sum.
    pub fn set_publisher(&mut self, seq: u64, publisher: Option<&[u8]>) {
        let at = self.notifications.partition_point(|n| n.seq < seq);
        if let Some(n) = self.notifications.get_mut(at).filter(|n| n.seq == seq) {
            let before = n.memory();
            let old = std::mem::replace(&mut n.publisher, publisher.map(Box::from));
            let new = n.publisher.clone();
            self.memory = self.memory.saturating_sub(before) + n.memory();
            self.reindex(seq, &old, &new);
        }
    }

    /// Drops the oldest notification.
    pub fn pop_front(&mut self) -> Option<Notification> {
        let n = self.notifications.pop_front()?;
        self.ids.remove(&(id_hash(&n.id), n.seq));
        self.memory = self.memory.saturating_sub(n.memory());
        self.unindex(&n.publisher, n.seq);
        self.unrestrict(n.seq);
        Some(n)
    }

    /// Removes notification `seq` (binary search, then O(distance from the nearer end)), keeping
    /// the id set, the memory sum and the publisher index in step. The expiry bound stays a lower
    /// bound.
    pub fn remove_seq(&mut self, seq: u64) -> Option<Notification> {
        let at = self.notifications.partition_point(|n| n.seq < seq);
        if self.notifications.get(at).is_none_or(|n| n.seq != seq) {
            return None;
        }
        let n = self.notifications.remove(at)?;
        self.ids.remove(&(id_hash(&n.id), n.seq));
        self.memory = self.memory.saturating_sub(n.memory());
        self.unindex(&n.publisher, n.seq);
        self.unrestrict(n.seq);
        if self.notifications.is_empty() {
            self.min_expires_ms = i64::MAX;
        }
        Some(n)
    }

    /// Takes every notification out (the group is left empty).
    pub fn take(&mut self) -> VecDeque<Notification> {
        self.ids.clear();
        self.by_publisher.clear();
        self.restricted.clear();
        self.memory = 0;
        self.min_expires_ms = i64::MAX;
        std::mem::take(&mut self.notifications)
    }

    pub fn len(&self) -> usize {
        self.notifications.len()
    }

    /// The id set holds exactly one entry per notification (tests).
    #[cfg(test)]
    pub(crate) fn ids_in_step(&self) -> bool {
        let derived: BTreeSet<(u64, u64)> = self
            .notifications
            .iter()
            .map(|n| (id_hash(&n.id), n.seq))
            .collect();
        let memory: usize = self.notifications.iter().map(Notification::memory).sum();
        let mut by_publisher: BTreeMap<Option<Box<[u8]>>, VecDeque<u64>> = BTreeMap::new();
        for n in &self.notifications {
            by_publisher
                .entry(n.publisher.clone())
                .or_default()
                .push_back(n.seq);
        }
        let restricted: VecDeque<u64> = self
            .notifications
            .iter()
            .filter(|n| n.joined.is_restricted())
            .map(|n| n.seq)
            .collect();
        derived == self.ids
            && restricted == self.restricted
            && self.ids.len() == self.notifications.len()
            && memory == self.memory
            && by_publisher == self.by_publisher
    }

    pub fn is_empty(&self) -> bool {
        self.notifications.is_empty()
    }

    /// Drops the expired notifications at the front (the oldest); returns how many. O(1) per one
    /// dropped, so a publish's cleanup is amortized O(log n): expired ones behind a live one stay
    /// until the periodic `purge` (never counted, never delivered, never a duplicate). The expiry
    /// bound stays a lower bound.
    pub fn purge_front(&mut self, now_ms: i64) -> usize {
        if self.min_expires_ms > now_ms {
            return 0;
        }
        let mut gone = 0;
        while self
            .notifications
            .front()
            .is_some_and(|n| n.expires_ms <= now_ms)
        {
            self.pop_front();
            gone += 1;
        }
        if self.notifications.is_empty() {
            self.min_expires_ms = i64::MAX;
        }
        gone
    }

    /// Drops expired notifications; returns how many. Recomputes the expiry bound; costs one
    /// comparison while nothing has expired.
    pub fn purge(&mut self, now_ms: i64) -> usize {
        if self.min_expires_ms > now_ms {
            return 0;
        }
        let before = self.notifications.len();
        let (ids, memory) = (&mut self.ids, &mut self.memory);
        let mut gone: Vec<(Option<Box<[u8]>>, u64)> = Vec::new();
        self.notifications.retain(|n| {
            let live = n.expires_ms > now_ms;
            if !live {
                ids.remove(&(id_hash(&n.id), n.seq));
                *memory = memory.saturating_sub(n.memory());
                gone.push((n.publisher.clone(), n.seq));
            }
            live
        });
        if !gone.is_empty() {
            let gone_seqs: BTreeSet<u64> = gone.iter().map(|(_, s)| *s).collect();
            self.restricted.retain(|s| !gone_seqs.contains(s));
            let publishers: BTreeSet<Option<Box<[u8]>>> =
                gone.into_iter().map(|(p, _)| p).collect();
            for p in publishers {
                if let Some(list) = self.by_publisher.get_mut(&p) {
                    list.retain(|s| !gone_seqs.contains(s));
                    if list.is_empty() {
                        self.by_publisher.remove(&p);
                    }
                }
            }
        }
        self.min_expires_ms = self
            .notifications
            .iter()
            .map(|n| n.expires_ms)
            .min()
            .unwrap_or(i64::MAX);
        before - self.notifications.len()
    }

    /// Heap bytes of the notifications (each one's slot, id and payload): the sum the registry's
    /// memory limit is held to, so it is exact in what a publish adds.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Index of the first notification after `cursor` (binary search: sequences increase).
    pub fn after(&self, cursor: u64) -> usize {
        self.notifications.partition_point(|n| n.seq <= cursor)
    }

    /// Live notifications after `cursor` that admit a member who joined at `joined_ms`:
    /// O(log n) while nothing in the group has expired (the primary purges once a second) plus
    /// the restricted ones after the cursor, else a walk of the group's tail after the cursor.
    pub fn pending_after(&self, cursor: u64, now_ms: i64, joined_ms: i64) -> usize {
        let from = self.after(cursor);
        if self.min_expires_ms > now_ms {
            let all = self.notifications.len() - from;
            return all.saturating_sub(self.refused_after(cursor, joined_ms, &mut |_| true));
        }
        self.notifications
            .range(from..)
            .filter(|n| n.expires_ms > now_ms && n.joined.admits(joined_ms))
            .count()
    }

    /// The join-restricted notifications' sequences, in order (derived).
    pub fn restricted(&self) -> &VecDeque<u64> {
        &self.restricted
    }
}

/// Inserts `seq` in a sorted list (at the end, O(1), in the normal case).
fn index_insert(list: &mut VecDeque<u64>, seq: u64) {
    if list.back().is_none_or(|last| *last < seq) {
        list.push_back(seq);
    } else {
        let at = list.partition_point(|s| *s < seq);
        if list.get(at) != Some(&seq) {
            list.insert(at, seq);
        }
    }
}

/// One delivered (or peeked) notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub group: &'a [u8],
    pub notification: &'a Notification,
}

/// Is the session a member of `group` (explicitly, or through a segment its current activity
/// qualifies for at `now_ms` under `rules`)?
pub fn is_member(session: &Session, group: &[u8], now_ms: i64, rules: &Thresholds) -> bool {
    session
        .groups
        .binary_search_by(|(g, _)| (**g).cmp(group))
        .is_ok()
        || segments(session, now_ms, rules)
            .iter()
            .any(|s| s.as_slice() == group)
}

/// When the session joined `group`, for a notification's join restriction: the time `ENRICH ...
/// JOIN` recorded for an explicit membership (0 if saved before join times were kept), else the
/// session's creation time (a derived segment: the module does not track when activity made the
/// session qualify). O(log G).
pub fn joined_ms(session: &Session, group: &[u8]) -> i64 {
    session
        .groups
        .binary_search_by(|(g, _)| (**g).cmp(group))
        .ok()
        .and_then(|i| session.groups.get(i))
        .map_or(session.created_ms, |(_, t)| *t)
}

/// The session's cursor in `group` (0: nothing received yet).
pub fn cursor(session: &Session, group: &[u8]) -> u64 {
    session
        .cursors
        .binary_search_by(|(g, _)| (**g).cmp(group))
        .map_or(0, |i| session.cursors[i].1)
}

/// The session's read mark in `group`, if it acknowledged anything there.
pub fn read_mark<'s>(session: &'s Session, group: &[u8]) -> Option<&'s ReadMark> {
    session
        .reads
        .binary_search_by(|(g, _)| (**g).cmp(group))
        .ok()
        .and_then(|i| session.reads.get(i))
        .map(|(_, m)| m)
}

/// The groups the session belongs to at `now_ms`: its explicit ones and the segments its current
/// activity qualifies for (`enrich::segments`, the rule ENRICH stores), sorted, distinct. Bounded
/// by `max-groups` plus the interest top-N and four lifecycle segments; what the last ENRICH
/// stored plays no part (a session that stopped qualifying stops receiving).
pub fn memberships<'s>(
    session: &'s Session,
    now_ms: i64,
    rules: &Thresholds,
) -> Vec<Cow<'s, [u8]>> {
    let mut names: Vec<Cow<'s, [u8]>> = session
        .groups
        .iter()
        .map(|(g, _)| Cow::Borrowed(&**g))
        .collect();
    names.extend(segments(session, now_ms, rules).into_iter().map(Cow::Owned));
    names.sort_unstable();
    names.dedup();
    names
}

/// One of the session's groups in a merge: its name, the group, the index of the next
/// notification to look at, and when the session joined it (`joined_ms`).
type Head<'a> = (&'a [u8], &'a Group, usize, i64);

/// The session's groups that exist in the registry, each with the index of its first
/// notification after the session's cursor and its join time. O(m log G + m log n) for m
/// memberships.
fn heads<'a>(
    session: &Session,
    groups: &'a BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
    start: impl Fn(&[u8]) -> u64,
) -> Vec<Head<'a>> {
    memberships(session, now_ms, rules)
        .into_iter()
        .filter_map(|name| groups.get_key_value(&*name))
        .map(|(name, g)| (&**name, g, g.after(start(name)), joined_ms(session, name)))
        .filter(|(_, g, from, _)| *from < g.notifications.len())
        .collect()
}

/// Up to `limit` live, undelivered notifications of the session's groups, in publication order.
///
/// Work is proportional to the session's own groups (a lookup each in `groups`, a binary search
/// for its cursor) plus the notifications returned (a merge by sequence across them) plus any
/// expired ones stepped over (the primary purges those once a second); never the number of groups
/// in the registry nor the length of a group past `limit`.
pub fn pending<'a>(
    session: &Session,
    groups: &'a BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
    limit: usize,
) -> Vec<Delivery<'a>> {
    pending_where(session, groups, now_ms, rules, limit, |_| true)
}

/// `pending`, counting only the notifications `reaches` accepts (tenancy: those whose publisher may
/// write the session's key); the others are stepped over, never delivered.
pub fn pending_where<'a>(
    session: &Session,
    groups: &'a BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
    limit: usize,
    reaches: impl FnMut(&Notification) -> bool,
) -> Vec<Delivery<'a>> {
    let heads = heads(session, groups, now_ms, rules, |g| cursor(session, g));
    merge(heads, now_ms, limit, |_, _| true, reaches)
}

/// Up to `limit` live notifications of the session's groups it has not marked read
/// (`SESSION.ACK`), delivered or not, in publication order, each with whether it was delivered.
/// Work as `pending_where`, plus the read ones stepped over (at most the group's length).
pub fn unread_where<'a>(
    session: &Session,
    groups: &'a BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
    limit: usize,
    reaches: impl FnMut(&Notification) -> bool,
) -> Vec<(Delivery<'a>, bool)> {
    let heads = heads(session, groups, now_ms, rules, |g| {
        read_mark(session, g).map_or(0, |m| m.upto)
    });
    merge(
        heads,
        now_ms,
        limit,
        |group, n| read_mark(session, group).is_none_or(|m| !m.is_read(n.seq)),
        reaches,
    )
    .into_iter()
    .map(|d| {
        let delivered = d.notification.seq <= cursor(session, d.group);
        (d, delivered)
    })
    .collect()
}

/// The merge by sequence across the session's groups behind `pending_where` and `unread_where`.
///
/// A notification whose join restriction does not admit the session's join time is stepped over
/// like one whose publisher may not reach it: never delivered, never listed.
fn merge<'a>(
    mut heads: Vec<Head<'a>>,
    now_ms: i64,
    limit: usize,
    keep: impl Fn(&[u8], &Notification) -> bool,
    mut reaches: impl FnMut(&Notification) -> bool,
) -> Vec<Delivery<'a>> {
    let mut out = Vec::new();
    while out.len() < limit {
        // The head with the lowest sequence (sequences are registry-wide, so this is publication
        // order across groups, and a cursor moved to the highest one delivered skips nothing).
        let mut best: Option<(usize, u64)> = None;
        for (i, (_, g, at, _)) in heads.iter_mut().enumerate() {
            while let Some(n) = g.notifications.get(*at) {
                if n.expires_ms > now_ms {
                    break;
                }
                *at += 1;
            }
            if let Some(n) = g.notifications.get(*at) {
                if best.is_none_or(|(_, seq)| n.seq < seq) {
                    best = Some((i, n.seq));
                }
            }
        }
        let Some((i, _)) = best else { break };
        let Some((name, g, at, joined)) = heads.get_mut(i) else {
            break;
        };
        if let Some(n) = g.notifications.get(*at) {
            if n.joined.admits(*joined) && keep(name, n) && reaches(n) {
                out.push(Delivery {
                    group: name,
                    notification: n,
                });
            }
        }
        *at += 1;
    }
    out
}

/// How many live notifications the session has not received: O(m log n) for m memberships while
/// none of its groups holds an expired notification.
pub fn pending_count(
    session: &Session,
    groups: &BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
) -> usize {
    memberships(session, now_ms, rules)
        .into_iter()
        .filter_map(|name| groups.get(&*name).map(|g| (name, g)))
        .map(|(name, g)| g.pending_after(cursor(session, &name), now_ms, joined_ms(session, &name)))
        .sum()
}

/// `pending_count`, counting only notifications whose publisher `reaches` accepts (tenancy): one
/// binary search per (group, distinct publisher) while none of its groups holds an expired
/// notification, plus a binary search per join-restricted notification after the cursor;
/// `reaches` is asked at most once per group and publisher (callers cache it).
pub fn pending_count_where(
    session: &Session,
    groups: &BTreeMap<Box<[u8]>, Group>,
    now_ms: i64,
    rules: &Thresholds,
    mut reaches: impl FnMut(Option<&[u8]>) -> bool,
) -> usize {
    memberships(session, now_ms, rules)
        .into_iter()
        .filter_map(|name| groups.get(&*name).map(|g| (name, g)))
        .map(|(name, g)| {
            let (from, joined) = (cursor(session, &name), joined_ms(session, &name));
            g.pending_after_where(from, now_ms, joined, &mut reaches)
        })
        .sum()
}

/// Starts the session's cursor in `group` after `seq`: nothing published there up to `seq` is
/// delivered (`ENRICH ... JOIN ... NEWONLY`). Never moves a cursor back, so exactly-once holds.
pub fn start_after(session: &mut Session, group: &[u8], seq: u64) {
    match session.cursors.binary_search_by(|(g, _)| (**g).cmp(group)) {
        Ok(i) => {
            if let Some(c) = session.cursors.get_mut(i) {
                c.1 = c.1.max(seq);
            }
        }
        Err(i) if seq > 0 => session.cursors.insert(i, (group.into(), seq)),
        Err(_) => {}
    }
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

/// What `SESSION.ACK` marks read in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckTarget<'a> {
    /// Every delivered notification up to and including this one.
    Upto(&'a [u8]),
    /// This one, if delivered.
    Id(&'a [u8]),
}

/// Marks notifications of `group` read, as `XACK` does with a stream's pending entries: only a
/// live notification the session was delivered (sequence at or below its cursor, admitted by its
/// join restriction) and that `reaches` it can be acknowledged; anything else is ignored. Returns the ids newly marked read.
/// Costs O(k log n) for k ids, or O(notifications between the old and the new mark) for `Upto`
/// (at most the group's length); the mark keeps only live notifications' sequences, so it never
/// holds more than the group does.
pub fn ack<'a>(
    session: &mut Session,
    group_name: &[u8],
    group: &'a Group,
    targets: &[AckTarget],
    now_ms: i64,
    mut reaches: impl FnMut(&Notification) -> bool,
) -> Vec<&'a [u8]> {
    let delivered = cursor(session, group_name);
    let joined = joined_ms(session, group_name);
    let mut reaches = move |n: &Notification| n.joined.admits(joined) && reaches(n);
    let mut mark = read_mark(session, group_name).cloned().unwrap_or_default();
    let mut newly: Vec<&'a Notification> = Vec::new();
    for target in targets {
        match *target {
            AckTarget::Id(id) => {
                if let Some(n) = group.find_live(id, now_ms) {
                    if n.seq <= delivered && !mark.is_read(n.seq) && reaches(n) {
                        let at = mark.ids.partition_point(|s| *s < n.seq);
                        mark.ids.insert(at, n.seq);
                        newly.push(n);
                    }
                }
            }
            AckTarget::Upto(id) => {
                let Some(to) = group.find_live(id, now_ms).map(|n| n.seq.min(delivered)) else {
                    continue;
                };
                if to <= mark.upto {
                    continue;
                }
                let from = group.after(mark.upto);
                for n in group.notifications.range(from..) {
                    if n.seq > to {
                        break;
                    }
                    if n.expires_ms > now_ms && !mark.is_read(n.seq) && reaches(n) {
                        newly.push(n);
                    }
                }
                mark.upto = to;
                mark.ids.retain(|s| *s > to);
            }
        }
    }
    if newly.is_empty() {
        return Vec::new();
    }
    // Only live notifications' sequences are kept: the mark is bounded by the group's length.
    mark.ids
        .retain(|s| group.by_seq(*s).is_some_and(|n| n.expires_ms > now_ms));
    match session
        .reads
        .binary_search_by(|(g, _)| (**g).cmp(group_name))
    {
        Ok(i) => {
            if let Some(slot) = session.reads.get_mut(i) {
                slot.1 = mark;
            }
        }
        Err(i) => session.reads.insert(i, (group_name.into(), mark)),
    }
    newly.into_iter().map(|n| &*n.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{apply, plan, Enrich, Thresholds};

    const R: Thresholds = Thresholds {
        engaged: 0.5,
        dormant_after_s: 1800,
        returning_gap_s: 1800,
        interest_weight: 0.25,
    };

    fn note(seq: u64, published_ms: i64, expires_ms: i64) -> Notification {
        Notification {
            seq,
            id: format!("n{seq}").into_bytes().into(),
            payload: b"p".to_vec().into(),
            published_ms,
            expires_ms,
            publisher: None,
            joined: JoinWindow::ANY,
        }
    }

    fn registry(groups: Vec<(&[u8], Vec<Notification>)>) -> BTreeMap<Box<[u8]>, Group> {
        groups
            .into_iter()
            .map(|(name, ns)| (Box::from(name), Group::with(ns.into())))
            .collect()
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
        let groups = registry(vec![
            (b"a", vec![note(1, 10, 1_000), note(3, 30, 50)]),
            (b"b", vec![note(2, 20, 1_000)]),
        ]);
        let mut s = member_of(&[b"a", b"b"]);
        let first = pending(&s, &groups, 40, &R, usize::MAX);
        let seqs: Vec<u64> = first.iter().map(|d| d.notification.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(pending_count(&s, &groups, 40, &R), 3);
        let at_60 = pending(&s, &groups, 60, &R, usize::MAX);
        assert_eq!(pending_count(&s, &groups, 60, &R), 2);
        assert_eq!(at_60.len(), 2, "expired one is never delivered");
        let owned: Vec<(Vec<u8>, u64)> = first
            .iter()
            .map(|d| (d.group.to_vec(), d.notification.seq))
            .collect();
        let delivered: Vec<Delivery> = owned
            .iter()
            .map(|(g, seq)| Delivery {
                group: g,
                notification: groups[&g[..]]
                    .notifications
                    .iter()
                    .find(|n| n.seq == *seq)
                    .unwrap(),
            })
            .collect();
        assert!(acknowledge(&mut s, &delivered[..2]));
        assert_eq!(pending(&s, &groups, 40, &R, usize::MAX).len(), 1);
        assert_eq!(pending_count(&s, &groups, 40, &R), 1);
        assert!(acknowledge(&mut s, &delivered));
        assert!(pending(&s, &groups, 40, &R, usize::MAX).is_empty());
        assert_eq!(pending_count(&s, &groups, 40, &R), 0);
        assert!(
            !acknowledge(&mut s, &delivered),
            "acknowledging again changes nothing"
        );
    }

    #[test]
    fn non_members_get_nothing_and_segments_count() {
        let groups = registry(vec![
            (b"a", vec![note(1, 10, 1_000)]),
            (b"new", vec![note(2, 10, 1_000)]),
        ]);
        let s = member_of(&[b"other"]);
        // "new" is a derived segment of a session with at most one event; "a" is not its group
        let due = pending(&s, &groups, 0, &R, usize::MAX);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].group, b"new");
        assert_eq!(pending_count(&s, &groups, 0, &R), 1);
    }

    #[test]
    fn count_stops_the_merge_and_cursors_are_binary_searched() {
        // 3 groups of 1000 interleaved notifications; the session is in two of them
        let mut groups = BTreeMap::new();
        for (k, name) in [&b"a"[..], b"b", b"c"].iter().enumerate() {
            let ns: Vec<Notification> = (0..1000u64)
                .map(|i| note(i * 3 + k as u64 + 1, 0, 1_000))
                .collect();
            groups.insert(Box::from(*name), Group::with(ns.into()));
        }
        let mut s = member_of(&[b"a", b"c"]);
        let first = pending(&s, &groups, 0, &R, 5);
        let seqs: Vec<u64> = first.iter().map(|d| d.notification.seq).collect();
        assert_eq!(seqs, vec![1, 3, 4, 6, 7]);
        assert_eq!(pending_count(&s, &groups, 0, &R), 2000);
        let owned: Vec<(Box<[u8]>, u64)> = first
            .iter()
            .map(|d| (Box::from(d.group), d.notification.seq))
            .collect();
        let acked: Vec<Delivery> = owned
            .iter()
            .map(|(g, seq)| Delivery {
                group: g,
                notification: groups[g]
                    .notifications
                    .iter()
                    .find(|n| n.seq == *seq)
                    .unwrap(),
            })
            .collect();
        assert!(acknowledge(&mut s, &acked));
        assert_eq!(pending_count(&s, &groups, 0, &R), 1995);
        let next: Vec<u64> = pending(&s, &groups, 0, &R, 3)
            .iter()
            .map(|d| d.notification.seq)
            .collect();
        assert_eq!(next, vec![9, 10, 12]);
        // an expired notification (not purged yet) is neither counted nor delivered
        let g = groups.get_mut(&b"a"[..]).unwrap();
        g.notifications[4].expires_ms = 5;
        g.min_expires_ms = 5;
        assert_eq!(pending_count(&s, &groups, 10, &R), 1994);
        let next: Vec<u64> = pending(&s, &groups, 10, &R, 4)
            .iter()
            .map(|d| d.notification.seq)
            .collect();
        assert_eq!(next, vec![9, 10, 12, 15]);
        assert_eq!(memberships(&s, 0, &R), vec![&b"a"[..], b"c", b"new"]);
    }

    /// The join restriction: JOINEDBEFORE is strict, JOINEDAFTER inclusive; an explicit
    /// membership's recorded time wins, a derived segment's is the creation time; a refused one
    /// is neither counted, delivered, listed nor acknowledgeable, and the cursor still moves
    /// past it when a later one is delivered.
    #[test]
    fn join_restriction_decides_who_receives() {
        let w = JoinWindow {
            after: 100,
            before: 200,
        };
        assert!(!w.admits(99) && w.admits(100) && w.admits(199) && !w.admits(200));
        assert!(JoinWindow::ANY.admits(0) && !JoinWindow::ANY.is_restricted());
        assert!(!JoinWindow {
            after: 5,
            before: 5
        }
        .is_valid(1_000));
        assert!(!JoinWindow {
            after: 0,
            before: 1_001
        }
        .is_valid(1_000));
        assert!(JoinWindow {
            after: 0,
            before: 1
        }
        .is_valid(1_000));

        let restricted = |seq: u64, window: JoinWindow| Notification {
            joined: window,
            ..note(seq, 10, 10_000)
        };
        let before_150 = JoinWindow {
            after: 0,
            before: 150,
        };
        let after_150 = JoinWindow {
            after: 150,
            before: i64::MAX,
        };
        let groups = registry(vec![
            (
                b"a",
                vec![
                    note(1, 10, 10_000),
                    restricted(2, before_150),
                    restricted(3, after_150),
                    note(4, 10, 10_000),
                ],
            ),
            (b"new", vec![restricted(5, before_150)]),
        ]);
        // joined "a" at 100 (ENRICH at 100); created at 0: "new" counts from creation
        let mut early = Session::new(0, 100, 100);
        let req = Enrich {
            join: vec![b"a"],
            ..Enrich::default()
        };
        let merged = plan(&early, &req, 1 << 16, 64).unwrap();
        apply(&mut early, &req, merged, 100, &Thresholds::default());
        assert_eq!(joined_ms(&early, b"a"), 100);
        assert_eq!(joined_ms(&early, b"new"), 0);
        // re-joining keeps the first time
        let merged = plan(&early, &req, 1 << 16, 64).unwrap();
        apply(&mut early, &req, merged, 500, &Thresholds::default());
        assert_eq!(joined_ms(&early, b"a"), 100);
        let seqs = |s: &Session| -> Vec<u64> {
            pending(s, &groups, 50, &R, usize::MAX)
                .iter()
                .map(|d| d.notification.seq)
                .collect()
        };
        assert_eq!(seqs(&early), vec![1, 2, 4, 5]);
        assert_eq!(pending_count(&early, &groups, 50, &R), 4);
        assert_eq!(pending_count_where(&early, &groups, 50, &R, |_| true), 4);

        // joined at 300, created at 200: neither JOINEDBEFORE 150 reaches it
        let mut late = Session::new(200, 100, 100);
        let merged = plan(&late, &req, 1 << 16, 64).unwrap();
        apply(&mut late, &req, merged, 300, &Thresholds::default());
        assert_eq!(seqs(&late), vec![1, 3, 4]);
        assert_eq!(pending_count(&late, &groups, 50, &R), 3);
        assert_eq!(pending_count_where(&late, &groups, 50, &R, |_| true), 3);
        // the walk (an expired notification not purged yet) agrees
        let mut expiring = groups.clone();
        let g = expiring.get_mut(&b"a"[..]).unwrap();
        g.notifications[0].expires_ms = 20;
        g.min_expires_ms = 20;
        assert_eq!(pending_count_where(&late, &expiring, 50, &R, |_| true), 2);

        // delivering everything moves the cursor past the refused one; it never comes back, is
        // not listed unread and cannot be acknowledged
        let due = pending(&late, &groups, 50, &R, usize::MAX);
        let owned: Vec<(Box<[u8]>, u64)> = due
            .iter()
            .map(|d| (Box::from(d.group), d.notification.seq))
            .collect();
        let delivered: Vec<Delivery> = owned
            .iter()
            .map(|(g, seq)| Delivery {
                group: g,
                notification: groups[g].by_seq(*seq).unwrap(),
            })
            .collect();
        assert!(acknowledge(&mut late, &delivered));
        assert_eq!(cursor(&late, b"a"), 4);
        assert_eq!(pending_count(&late, &groups, 50, &R), 0);
        let unread: Vec<u64> = unread_where(&late, &groups, 50, &R, usize::MAX, |_| true)
            .iter()
            .map(|(d, delivered)| {
                assert!(*delivered);
                d.notification.seq
            })
            .collect();
        assert_eq!(unread, vec![1, 3, 4]);
        let a = &groups[&b"a"[..]];
        let marked = ack(&mut late, b"a", a, &[AckTarget::Id(b"n2")], 50, |_| true);
        assert!(marked.is_empty(), "never delivered: not acknowledgeable");
        let marked = ack(&mut late, b"a", a, &[AckTarget::Upto(b"n4")], 50, |_| true);
        assert_eq!(marked, vec![&b"n1"[..], b"n3", b"n4"]);
    }

    /// The restricted index follows pushes, windows, trims, removals and purges.
    #[test]
    fn restricted_index_stays_in_step() {
        let mut g = Group::default();
        for seq in 1..=6 {
            g.push(note(seq, 0, if seq % 2 == 0 { 50 } else { 1_000 }));
        }
        for seq in [2, 3, 5] {
            g.set_window(
                seq,
                JoinWindow {
                    after: 10,
                    before: i64::MAX,
                },
            );
        }
        assert!(g.ids_in_step());
        assert_eq!(
            g.restricted().iter().copied().collect::<Vec<_>>(),
            [2, 3, 5]
        );
        g.set_window(3, JoinWindow::ANY);
        g.pop_front();
        g.remove_seq(5);
        assert!(g.ids_in_step());
        g.purge(60);
        assert!(g.ids_in_step());
        assert!(g.restricted().is_empty());
        g.set_window(
            3,
            JoinWindow {
                after: 1,
                before: 2,
            },
        );
        assert_eq!(Group::with(g.take()).restricted().len(), 1);
        assert!(g.restricted().is_empty() && g.ids_in_step());
    }
}
