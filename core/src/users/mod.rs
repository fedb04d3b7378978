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

/// One database's part of the index.
#[derive(Debug, Default)]
struct Db {
    /// user -> its session keys, sorted (replies are deterministic).
    users: HashMap<Arc<[u8]>, BTreeSet<Arc<[u8]>>>,
    /// session key -> its user (O(1) on the TOUCH path and when a key goes).
    owner: HashMap<Arc<[u8]>, Arc<[u8]>>,
}

impl Db {
    fn remove(&mut self, key: &[u8]) -> Option<Arc<[u8]>> {
        let user = self.owner.remove(key)?;
        if let Some(keys) = self.users.get_mut(&user) {
            keys.remove(key);
            if keys.is_empty() {
                self.users.remove(&user);
            }
        }
        Some(user)
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

    /// Lists `key` under `user` in `db`, moving it from another user if needed.
    pub fn register(&mut self, db: i32, key: &[u8], user: &[u8]) -> Registered {
        let d = self.dbs.entry(db).or_default();
        let from = match d.owner.get(key) {
            Some(current) if **current == *user => return Registered::Unchanged,
            Some(_) => d.remove(key),
            None => None,
        };
        let key: Arc<[u8]> = Arc::from(key);
        // Share one allocation of the user's name between its set and every key's owner entry.
        let user = match d.users.get_key_value(user) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(user),
        };
        d.users
            .entry(Arc::clone(&user))
            .or_default()
            .insert(Arc::clone(&key));
        d.owner.insert(key, user);
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
        self.dbs.get(&db)?.owner.get(key).map(|u| &**u)
    }

    /// The keys listed under `user`, sorted.
    pub fn sessions(&self, db: i32, user: &[u8]) -> Vec<Box<[u8]>> {
        self.dbs
            .get(&db)
            .and_then(|d| d.users.get(user))
            .map_or_else(Vec::new, |keys| {
                keys.iter().map(|k| Box::from(&**k)).collect()
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
        let Some(keys) = self.dbs.get(&db).and_then(|d| d.users.get(user)) else {
            return (Vec::new(), false);
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = keys
            .range::<[u8], _>((from, Bound::Unbounded))
            .map(|k| Box::from(&**k));
        let page: Vec<Box<[u8]>> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// How many keys are listed under `user`.
    pub fn count(&self, db: i32, user: &[u8]) -> usize {
        self.dbs
            .get(&db)
            .and_then(|d| d.users.get(user))
            .map_or(0, BTreeSet::len)
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

    /// Replaces one database's entries with `sessions` (key, user): the rebuild after a load.
    pub fn rebuild<K, U>(&mut self, db: i32, sessions: impl IntoIterator<Item = (K, U)>)
    where
        K: AsRef<[u8]>,
        U: AsRef<[u8]>,
    {
        self.dbs.remove(&db);
        for (key, user) in sessions {
            self.register(db, key.as_ref(), user.as_ref());
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

/// The sessions to evict so that a user keeps at most `max` sessions, one of which is the session
/// being registered (not among `others`): the least recently seen of `others` (key, last seen),
/// ties broken by key so that the choice is deterministic. `max` 0 means unlimited.
pub fn evictions(mut others: Vec<(Box<[u8]>, i64)>, max: usize) -> Vec<Box<[u8]>> {
    if max == 0 || others.len() < max {
        return Vec::new();
    }
    let excess = others.len() + 1 - max;
    others.sort_by(|(ka, a), (kb, b)| a.cmp(b).then_with(|| ka.cmp(kb)));
    others.truncate(excess);
    others.into_iter().map(|(k, _)| k).collect()
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
        assert_eq!(ix.register(0, b"s2", b"alice"), Registered::Added);
        assert_eq!(ix.register(0, b"s1", b"alice"), Registered::Added);
        assert_eq!(ix.register(0, b"s1", b"alice"), Registered::Unchanged);
        assert_eq!(ix.register(0, b"s3", b"bob"), Registered::Added);
        assert_eq!(keys(ix.sessions(0, b"alice")), ["s1", "s2"], "sorted");
        assert_eq!((ix.len(), ix.users()), (3, 2));

        // changing the user moves the key
        assert_eq!(
            ix.register(0, b"s2", b"bob"),
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
        ix.register(0, b"k", b"u");
        assert!(!ix.unregister_if(0, b"k", b"v"));
        assert!(!ix.unregister_if(1, b"k", b"u"));
        assert!(ix.unregister_if(0, b"k", b"u"));
        assert!(ix.is_empty());
    }

    #[test]
    fn databases_are_separate_and_follow_flush_and_swap() {
        let mut ix = UserIndex::new();
        ix.register(0, b"k", b"u");
        ix.register(1, b"k", b"v");
        ix.register(2, b"x", b"u");
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
        ix.register(0, b"stale", b"u");
        ix.register(1, b"other", b"u");
        ix.rebuild(0, [(&b"a"[..], &b"u"[..]), (b"b", b"w")]);
        assert_eq!(keys(ix.sessions(0, b"u")), ["a"]);
        assert_eq!(keys(ix.sessions(0, b"w")), ["b"]);
        assert_eq!(keys(ix.sessions(1, b"u")), ["other"]);
    }

    #[test]
    fn binary_keys_and_users() {
        let mut ix = UserIndex::new();
        ix.register(0, b"\x00\xff", b"\xfe\x00");
        ix.register(0, b"", b"");
        assert_eq!(
            ix.sessions(0, b"\xfe\x00"),
            vec![Box::from(&b"\x00\xff"[..])]
        );
        assert_eq!(ix.user_of(0, b""), Some(&b""[..]));
    }

    #[test]
    fn evictions_pick_the_least_recently_seen() {
        let others = |v: &[(&str, i64)]| -> Vec<(Box<[u8]>, i64)> {
            v.iter()
                .map(|(k, t)| (Box::from(k.as_bytes()), *t))
                .collect()
        };
        let o = others(&[("a", 30), ("b", 10), ("c", 20)]);
        assert!(evictions(o.clone(), 0).is_empty(), "0 = unlimited");
        assert!(evictions(o.clone(), 4).is_empty(), "3 others + 1 fit in 4");
        assert_eq!(keys(evictions(o.clone(), 3)), ["b"]);
        assert_eq!(keys(evictions(o.clone(), 2)), ["b", "c"]);
        assert_eq!(
            keys(evictions(o, 1)),
            ["b", "c", "a"],
            "only the new one stays"
        );
        // ties: by key, whatever the input order
        let tie = others(&[("z", 5), ("m", 5), ("q", 9)]);
        assert_eq!(keys(evictions(tie, 2)), ["m", "z"]);
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
            ix.register(0, k.as_bytes(), b"u");
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
