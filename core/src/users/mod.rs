//! The per-user index: which session keys belong to which user (`SESSION.TOUCH ... USER u`), per
//! database, for `SESSION.SESSIONS`, `SESSION.REVOKE` and the per-user maximum.
//!
//! The sessions are the truth (each holds its `user`); this index is derived from them and kept in
//! step by the Redis layer (registration on TOUCH and on keys that arrive by RENAME, COPY, RESTORE,
//! MOVE or loading; removal whenever a session leaves a key). It is never saved: a server rebuilds
//! it from the sessions it loads. It is also the module's memory of whom a deleted session
//! belonged to, for the `session:expired` and `session:deleted` messages.
//!
//! Also here: the choice of the sessions a per-user maximum evicts, and those messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::json;

use crate::json::bytes_value;

/// Pub/Sub channel of expired sessions.
pub const EXPIRED_CHANNEL: &[u8] = b"session:expired";
/// Pub/Sub channel of deleted sessions (any other way a session leaves the keyspace).
pub const DELETED_CHANNEL: &[u8] = b"session:deleted";

/// Why a session left the keyspace, as the `reason` of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Its expiry passed (idle timeout or maximum age).
    Expired,
    /// `DEL`, `UNLINK`, `GETDEL`, `EXPIRE` in the past, ... (any command deleting the key).
    Deleted,
    /// Evicted by `maxmemory`.
    Evicted,
    /// Replaced by another value (`SET`, `RESTORE REPLACE`, `COPY ... REPLACE`, `RENAME` onto it).
    Overwritten,
    /// Deleted by `SESSION.REVOKE` (log out everywhere).
    Revoked,
    /// Evicted by the per-user maximum (`session.max-sessions-per-user`).
    Limit,
}

impl Gone {
    pub fn as_str(self) -> &'static str {
        match self {
            Gone::Expired => "expired",
            Gone::Deleted => "del",
            Gone::Evicted => "evicted",
            Gone::Overwritten => "overwritten",
            Gone::Revoked => "revoked",
            Gone::Limit => "limit",
        }
    }

    /// The channel the message goes to.
    pub fn channel(self) -> &'static [u8] {
        match self {
            Gone::Expired => EXPIRED_CHANNEL,
            _ => DELETED_CHANNEL,
        }
    }
}

/// The message published when a session leaves the keyspace: `{"key", "user", "db", "reason"}`,
/// binary-safe (text when UTF-8, else `{"base64": ...}`); `user` is null for an anonymous session.
pub fn gone_message(key: &[u8], user: Option<&[u8]>, db: i32, why: Gone) -> String {
    json!({
        "key": bytes_value(key),
        "user": user.map_or(serde_json::Value::Null, bytes_value),
        "db": db,
        "reason": why.as_str(),
    })
    .to_string()
}

/// What registering a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The key was already listed under this user.
    Unchanged,
    /// The key is now listed under this user (it was not listed before).
    Added,
    /// The key moved to this user from another one.
    Moved { from: Box<[u8]> },
}

/// One user's session keys in one database, in two orders.
#[derive(Debug, Default)]
struct UserKeys {
    /// By key (SESSIONS pages, REVOKE): replies are deterministic.
    by_key: BTreeSet<Arc<[u8]>>,
    /// By (last seen ms, key), oldest first: the per-user maximum's eviction order.
    by_seen: BTreeSet<(i64, Arc<[u8]>)>,
}

/// What the index knows of one session key.
#[derive(Debug)]
struct Entry {
    user: Arc<[u8]>,
    /// Its last-seen time as of its last registration (a lower bound of the session's own: a
    /// session's last seen only grows, and some touches do not update the index; see
    /// `register`).
    last_seen_ms: i64,
}

/// One database's part of the index.
#[derive(Debug, Default)]
struct Db {
    /// user -> its session keys.
    users: HashMap<Arc<[u8]>, UserKeys>,
    /// session key -> its user and last seen (O(1) on the TOUCH path and when a key goes).
    owner: HashMap<Arc<[u8]>, Entry>,
}

impl Db {
    fn remove(&mut self, key: &[u8]) -> Option<Arc<[u8]>> {
        let (key, entry) = self.owner.remove_entry(key)?;
        if let Some(keys) = self.users.get_mut(&entry.user) {
            keys.by_key.remove(&key);
            keys.by_seen.remove(&(entry.last_seen_ms, key));
            if keys.by_key.is_empty() {
                self.users.remove(&entry.user);
            }
        }
        Some(entry.user)
    }

    fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }
}

/// The index of every database of one server.
#[derive(Debug, Default)]
pub struct UserIndex {
    dbs: BTreeMap<i32, Db>,
}

impl UserIndex {
    pub const fn new() -> Self {
        UserIndex {
            dbs: BTreeMap::new(),
        }
    }

    /// Lists `key` under `user` in `db` with its last-seen time, moving it from another user if
    /// needed, or moving it in the user's activity order when only the time changed: O(log n).
    pub fn register(&mut self, db: i32, key: &[u8], user: &[u8], last_seen_ms: i64) -> Registered {
        let d = self.dbs.entry(db).or_default();
        let from = match d.owner.get_key_value(key) {
            Some((name, entry)) if *entry.user == *user => {
                let old = entry.last_seen_ms;
                if old != last_seen_ms {
                    // Move it in the activity order, reusing the key's allocation.
                    let name = Arc::clone(name);
                    if let Some(e) = d.owner.get_mut(key) {
                        e.last_seen_ms = last_seen_ms;
                    }
                    if let Some(keys) = d.users.get_mut(user) {
                        keys.by_seen.remove(&(old, Arc::clone(&name)));
                        keys.by_seen.insert((last_seen_ms, name));
                    }
                }
                return Registered::Unchanged;
            }
            Some(_) => d.remove(key),
            None => None,
        };
        let key: Arc<[u8]> = Arc::from(key);
        // Share one allocation of the user's name between its set and every key's owner entry.
        let user = match d.users.get_key_value(user) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(user),
        };
        let keys = d.users.entry(Arc::clone(&user)).or_default();
        keys.by_key.insert(Arc::clone(&key));
        keys.by_seen.insert((last_seen_ms, Arc::clone(&key)));
        d.owner.insert(key, Entry { user, last_seen_ms });
        match from {
            Some(from) => Registered::Moved {
                from: Box::from(&*from),
            },
            None => Registered::Added,
        }
    }

    /// Removes `key` from `db`; returns the user it was listed under.
    pub fn unregister(&mut self, db: i32, key: &[u8]) -> Option<Box<[u8]>> {
        let d = self.dbs.get_mut(&db)?;
        let user = d.remove(key);
        if d.is_empty() {
            self.dbs.remove(&db);
        }
        user.map(|u| Box::from(&*u))
    }

    /// Removes `key` only if it is listed under `user` (a stale entry found by a check).
    pub fn unregister_if(&mut self, db: i32, key: &[u8], user: &[u8]) -> bool {
        if self.user_of(db, key) != Some(user) {
            return false;
        }
        self.unregister(db, key).is_some()
    }

    /// The user `key` is listed under.
    pub fn user_of(&self, db: i32, key: &[u8]) -> Option<&[u8]> {
        self.dbs.get(&db)?.owner.get(key).map(|e| &*e.user)
    }

    /// The last-seen time `key` is listed with.
    pub fn last_seen_of(&self, db: i32, key: &[u8]) -> Option<i64> {
        self.dbs.get(&db)?.owner.get(key).map(|e| e.last_seen_ms)
    }

    fn keys_of(&self, db: i32, user: &[u8]) -> Option<&UserKeys> {
        self.dbs.get(&db).and_then(|d| d.users.get(user))
    }

    /// The keys listed under `user`, sorted.
    pub fn sessions(&self, db: i32, user: &[u8]) -> Vec<Box<[u8]>> {
        self.keys_of(db, user).map_or_else(Vec::new, |keys| {
            keys.by_key.iter().map(|k| Box::from(&**k)).collect()
        })
    }

    /// Up to `limit` keys listed under `user` after `after` (from the first with `None`), sorted,
    /// and whether more follow: O(log n + limit).
    pub fn sessions_after(
        &self,
        db: i32,
        user: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> (Vec<Box<[u8]>>, bool) {
        use std::ops::Bound;
        let Some(keys) = self.keys_of(db, user) else {
            return (Vec::new(), false);
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = keys
            .by_key
            .range::<[u8], _>((from, Bound::Unbounded))
            .map(|k| Box::from(&**k));
        let page: Vec<Box<[u8]>> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// The keys listed under `user` as (last seen, key), least recently seen first, ties by key:
    /// the per-user maximum's eviction order. O(log n) to start, O(1) amortized per step; a
    /// caller skips the candidates it rejects and takes the next.
    pub fn oldest<'a>(
        &'a self,
        db: i32,
        user: &[u8],
    ) -> impl Iterator<Item = (i64, &'a [u8])> + 'a {
        self.keys_of(db, user)
            .into_iter()
            .flat_map(|keys| keys.by_seen.iter().map(|(t, k)| (*t, &**k)))
    }

    /// Up to `limit` entries of `oldest` strictly after the position `after` (from the first with
    /// `None`), owned, for a caller that must release the index between steps (each candidate is
    /// checked against its key): O(log n + limit).
    pub fn oldest_after(
        &self,
        db: i32,
        user: &[u8],
        after: Option<(i64, &[u8])>,
        limit: usize,
    ) -> Vec<(i64, Box<[u8]>)> {
        let Some(keys) = self.keys_of(db, user) else {
            return Vec::new();
        };
        let skip_to = |(t, k): &&(i64, Arc<[u8]>)| match after {
            Some((at, key)) => (*t, &**k) <= (at, key),
            None => false,
        };
        // Start at the first entry at or after `at` (O(log n)), then step over `after` itself
        // and the entries before it with the same time (ties by key).
        let start = after.map_or(i64::MIN, |(at, _)| at);
        keys.by_seen
            .range((start, Arc::from(&b""[..]))..)
            .skip_while(skip_to)
            .take(limit)
            .map(|(t, k)| (*t, Box::from(&**k)))
            .collect()
    }

    /// How many keys are listed under `user`.
    pub fn count(&self, db: i32, user: &[u8]) -> usize {
        self.keys_of(db, user).map_or(0, |keys| keys.by_key.len())
    }

    /// Forgets one database (`FLUSHDB`), or all of them with `None` (`FLUSHALL`, a full load).
    pub fn flush(&mut self, db: Option<i32>) {
        match db {
            Some(db) => {
                self.dbs.remove(&db);
            }
            None => self.dbs.clear(),
        }
    }

    /// Exchanges two databases' entries (`SWAPDB`).
    pub fn swap(&mut self, a: i32, b: i32) {
        let first = self.dbs.remove(&a);
        let second = self.dbs.remove(&b);
        if let Some(d) = first {
            self.dbs.insert(b, d);
        }
        if let Some(d) = second {
            self.dbs.insert(a, d);
        }
    }

    /// Replaces one database's entries with `sessions` (key, user, last seen): the rebuild after
    /// a load.
    pub fn rebuild<K, U>(&mut self, db: i32, sessions: impl IntoIterator<Item = (K, U, i64)>)
    where
        K: AsRef<[u8]>,
        U: AsRef<[u8]>,
    {
        self.dbs.remove(&db);
        for (key, user, last_seen_ms) in sessions {
            self.register(db, key.as_ref(), user.as_ref(), last_seen_ms);
        }
    }

    /// Sessions listed, over all databases.
    pub fn len(&self) -> usize {
        self.dbs.values().map(|d| d.owner.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Users with at least one session, over all databases.
    pub fn users(&self) -> usize {
        self.dbs.values().map(|d| d.users.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: Vec<Box<[u8]>>) -> Vec<String> {
        v.into_iter()
            .map(|k| String::from_utf8(k.into_vec()).unwrap())
            .collect()
    }

    #[test]
    fn register_lists_moves_and_forgets() {
        let mut ix = UserIndex::new();
        assert_eq!(ix.register(0, b"s2", b"alice", 0), Registered::Added);
        assert_eq!(ix.register(0, b"s1", b"alice", 0), Registered::Added);
        assert_eq!(ix.register(0, b"s1", b"alice", 0), Registered::Unchanged);
        assert_eq!(ix.register(0, b"s3", b"bob", 0), Registered::Added);
        assert_eq!(keys(ix.sessions(0, b"alice")), ["s1", "s2"], "sorted");
        assert_eq!((ix.len(), ix.users()), (3, 2));

        // changing the user moves the key
        assert_eq!(
            ix.register(0, b"s2", b"bob", 0),
            Registered::Moved {
                from: Box::from(&b"alice"[..])
            }
        );
        assert_eq!(keys(ix.sessions(0, b"alice")), ["s1"]);
        assert_eq!(keys(ix.sessions(0, b"bob")), ["s2", "s3"]);
        assert_eq!(ix.user_of(0, b"s2"), Some(&b"bob"[..]));

        assert_eq!(ix.unregister(0, b"s1").as_deref(), Some(&b"alice"[..]));
        assert_eq!(ix.unregister(0, b"s1"), None);
        assert!(ix.sessions(0, b"alice").is_empty());
        assert_eq!(ix.users(), 1, "a user without sessions is forgotten");
        assert_eq!(ix.count(0, b"bob"), 2);
    }

    #[test]
    fn unregister_if_only_removes_the_named_user() {
        let mut ix = UserIndex::new();
        ix.register(0, b"k", b"u", 0);
        assert!(!ix.unregister_if(0, b"k", b"v"));
        assert!(!ix.unregister_if(1, b"k", b"u"));
        assert!(ix.unregister_if(0, b"k", b"u"));
        assert!(ix.is_empty());
    }

    #[test]
    fn databases_are_separate_and_follow_flush_and_swap() {
        let mut ix = UserIndex::new();
        ix.register(0, b"k", b"u", 0);
        ix.register(1, b"k", b"v", 0);
        ix.register(2, b"x", b"u", 0);
        assert_eq!(ix.user_of(0, b"k"), Some(&b"u"[..]));
        assert_eq!(ix.user_of(1, b"k"), Some(&b"v"[..]));
        assert_eq!(ix.count(1, b"u"), 0);

        ix.swap(0, 1);
        assert_eq!(ix.user_of(0, b"k"), Some(&b"v"[..]));
        assert_eq!(ix.user_of(1, b"k"), Some(&b"u"[..]));
        ix.swap(1, 5);
        assert_eq!(ix.user_of(5, b"k"), Some(&b"u"[..]));
        assert_eq!(ix.user_of(1, b"k"), None);

        ix.flush(Some(5));
        assert_eq!(ix.user_of(5, b"k"), None);
        assert_eq!(ix.len(), 2);
        ix.flush(None);
        assert!(ix.is_empty());
    }

    #[test]
    fn rebuild_replaces_a_database() {
        let mut ix = UserIndex::new();
        ix.register(0, b"stale", b"u", 0);
        ix.register(1, b"other", b"u", 0);
        ix.rebuild(0, [(&b"a"[..], &b"u"[..], 1), (b"b", b"w", 2)]);
        assert_eq!(keys(ix.sessions(0, b"u")), ["a"]);
        assert_eq!(keys(ix.sessions(0, b"w")), ["b"]);
        assert_eq!(keys(ix.sessions(1, b"u")), ["other"]);
    }

    #[test]
    fn binary_keys_and_users() {
        let mut ix = UserIndex::new();
        ix.register(0, b"\x00\xff", b"\xfe\x00", 0);
        ix.register(0, b"", b"", 0);
        assert_eq!(
            ix.sessions(0, b"\xfe\x00"),
            vec![Box::from(&b"\x00\xff"[..])]
        );
        assert_eq!(ix.user_of(0, b""), Some(&b""[..]));
    }

    #[test]
    fn oldest_first_with_ties_by_key_and_moves_on_touch() {
        let mut ix = UserIndex::new();
        for (k, t) in [("a", 30), ("b", 10), ("c", 20), ("z", 5), ("m", 5)] {
            ix.register(0, k.as_bytes(), b"u", t);
        }
        ix.register(0, b"other", b"v", 1);
        let order = |ix: &UserIndex| -> Vec<(i64, String)> {
            ix.oldest(0, b"u")
                .map(|(t, k)| (t, String::from_utf8(k.to_vec()).unwrap()))
                .collect()
        };
        let names = |v: Vec<(i64, String)>| v.into_iter().map(|(_, k)| k).collect::<Vec<_>>();
        assert_eq!(names(order(&ix)), ["m", "z", "b", "c", "a"]);
        // a touch moves the key to its new place; the key order is unchanged
        assert_eq!(ix.register(0, b"m", b"u", 40), Registered::Unchanged);
        assert_eq!(names(order(&ix)), ["z", "b", "c", "a", "m"]);
        assert_eq!(keys(ix.sessions(0, b"u")), ["a", "b", "c", "m", "z"]);
        assert_eq!(ix.last_seen_of(0, b"m"), Some(40));
        // moving to another user takes it out of this order
        ix.register(0, b"b", b"v", 50);
        assert_eq!(names(order(&ix)), ["z", "c", "a", "m"]);
        ix.unregister(0, b"z");
        assert_eq!(names(order(&ix)), ["c", "a", "m"]);
        // pages of the order, after a position (ties by key)
        ix.register(0, b"d", b"u", 20);
        let page = ix.oldest_after(0, b"u", None, 2);
        assert_eq!(
            keys(page.iter().map(|(_, k)| k.clone()).collect()),
            ["c", "d"]
        );
        let page = ix.oldest_after(0, b"u", Some((20, b"c")), 2);
        assert_eq!(
            keys(page.iter().map(|(_, k)| k.clone()).collect()),
            ["d", "a"]
        );
        let page = ix.oldest_after(0, b"u", Some((30, b"a")), 5);
        assert_eq!(page, vec![(40, Box::from(&b"m"[..]))]);
        assert!(ix.oldest_after(0, b"u", Some((40, b"m")), 5).is_empty());
        assert!(ix.oldest_after(0, b"nobody", None, 5).is_empty());
        assert_eq!(ix.oldest(7, b"u").count(), 0);
    }

    /// The activity order matches a brute-force choice (sort every session of the user by (last
    /// seen, key)) under random registrations, touches, moves, removals, flushes and swaps, and
    /// the by-key listing matches too.
    #[test]
    fn the_order_matches_a_brute_force_choice_under_random_operations() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap as Map;
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let mut ix = UserIndex::new();
        // (db, key) -> (user, last seen): the truth
        let mut truth: Map<(i32, Vec<u8>), (Vec<u8>, i64)> = Map::new();
        let users: [&[u8]; 3] = [b"u0", b"u1", b"\xff"];
        for step in 0..20_000 {
            let db = rng.gen_range(0..2);
            let key = format!("k{}", rng.gen_range(0..60)).into_bytes();
            let user = users[rng.gen_range(0..users.len())];
            match rng.gen_range(0..100) {
                0..=59 => {
                    // a touch: last seen only grows, often to the same millisecond as another
                    let t = truth.get(&(db, key.clone())).map_or(0, |(_, t)| *t);
                    let t = t.max(rng.gen_range(0..(step / 4 + 2)));
                    ix.register(db, &key, user, t);
                    truth.insert((db, key), (user.to_vec(), t));
                }
                60..=89 => {
                    let got = ix.unregister(db, &key).map(|u| u.to_vec());
                    assert_eq!(got, truth.remove(&(db, key)).map(|(u, _)| u));
                }
                90..=94 => {
                    ix.swap(0, 1);
                    truth = truth
                        .into_iter()
                        .map(|((d, k), v)| ((1 - d, k), v))
                        .collect();
                }
                _ if step % 7 == 0 => {
                    ix.flush(Some(db));
                    truth.retain(|(d, _), _| *d != db);
                }
                _ => {}
            }
            for db in 0..2 {
                for user in users {
                    let mut brute: Vec<(i64, Vec<u8>)> = truth
                        .iter()
                        .filter(|((d, _), (u, _))| *d == db && u[..] == *user)
                        .map(|((_, k), (_, t))| (*t, k.clone()))
                        .collect();
                    let by_key: Vec<Vec<u8>> = brute.iter().map(|(_, k)| k.clone()).collect();
                    brute.sort();
                    let got: Vec<(i64, Vec<u8>)> =
                        ix.oldest(db, user).map(|(t, k)| (t, k.to_vec())).collect();
                    assert_eq!(got, brute, "step {step}");
                    assert_eq!(ix.count(db, user), brute.len());
                    let listed: Vec<Vec<u8>> = ix
                        .sessions(db, user)
                        .into_iter()
                        .map(|k| k.to_vec())
                        .collect();
                    assert_eq!(listed, by_key);
                    // walking in pages after each position gives the same order
                    if let Some((t, k)) = brute.get(brute.len() / 2) {
                        let rest: Vec<(i64, Vec<u8>)> = ix
                            .oldest_after(db, user, Some((*t, k)), usize::MAX)
                            .into_iter()
                            .map(|(t, k)| (t, k.to_vec()))
                            .collect();
                        assert_eq!(rest, brute[brute.len() / 2 + 1..]);
                    }
                }
            }
            assert_eq!(ix.len(), truth.len());
        }
    }

    #[test]
    fn messages_are_binary_safe_json() {
        let m: serde_json::Value =
            serde_json::from_str(&gone_message(b"s:1", Some(b"alice"), 0, Gone::Expired)).unwrap();
        assert_eq!(
            m,
            json!({"key": "s:1", "user": "alice", "db": 0, "reason": "expired"})
        );
        let m: serde_json::Value =
            serde_json::from_str(&gone_message(b"\xff", None, 3, Gone::Revoked)).unwrap();
        assert_eq!(
            m,
            json!({"key": {"base64": "/w=="}, "user": null, "db": 3, "reason": "revoked"})
        );
        assert_eq!(Gone::Expired.channel(), EXPIRED_CHANNEL);
        for g in [
            Gone::Deleted,
            Gone::Evicted,
            Gone::Overwritten,
            Gone::Revoked,
            Gone::Limit,
        ] {
            assert_eq!(g.channel(), DELETED_CHANNEL, "{g:?}");
        }
    }

    #[test]
    fn pages_follow_the_key_order() {
        let mut ix = UserIndex::new();
        for k in ["k1", "k2", "k3", "k4", "k5"] {
            ix.register(0, k.as_bytes(), b"u", 0);
        }
        let (page, more) = ix.sessions_after(0, b"u", None, 2);
        assert_eq!(keys(page), vec!["k1", "k2"]);
        assert!(more);
        let (page, more) = ix.sessions_after(0, b"u", Some(b"k2"), 2);
        assert_eq!(keys(page), vec!["k3", "k4"]);
        assert!(more);
        let (page, more) = ix.sessions_after(0, b"u", Some(b"k4"), 2);
        assert_eq!(keys(page), vec!["k5"]);
        assert!(!more);
        assert_eq!(ix.sessions_after(0, b"x", None, 2), (Vec::new(), false));
    }
}
