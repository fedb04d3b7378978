//! Issue 15 item 4, the per-user index and the registry's ids: the per-user maximum chooses its
//! evictions from an index ordered by last activity (no read of all the user's sessions), and
//! NOTIFYGROUP's duplicate check is a per-group id set (no walk of the group). These tests pin
//! the behaviour those structures must keep: exactly the least recently seen session goes
//! (ties by key), across touches with and without USER, renames, rotations and deletes, with the
//! evictions replicated (the replica's digest and index equal the primary's); duplicates are
//! refused exactly while a notification with the id lives, through trims, expiry, drops and a
//! reload. No timing is asserted (the figures are in the report and `make bench`).

mod common;

use std::collections::BTreeMap;

use common::*;
use rand::Rng;
use redis::{Connection, Value};

fn sessions(c: &mut Connection, user: &str) -> Vec<String> {
    match ok(c, &["SESSION.SESSIONS", user]) {
        Value::Array(v) => v
            .iter()
            .map(|k| String::from_utf8(bytes(k)).unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("{other:?}"),
    }
}

/// Touches `key` at `at` (ms); `user` names the user or not.
fn touch_at(c: &mut Connection, key: &str, user: Option<&str>, at: i64) {
    let at = at.to_string();
    let mut args = vec!["IDLE", "100000", "MAXAGE", "200000", "AT", &at];
    if let Some(u) = user {
        args.extend(["USER", u]);
    }
    touch(c, key, &args);
}

/// The keys the maximum must evict when `new` joins `model` (key -> last seen): the oldest of the
/// others by (last seen, key), as many as put the user over `max`.
fn brute_victims(model: &BTreeMap<String, i64>, new: &str, max: usize) -> Vec<String> {
    let mut others: Vec<(i64, String)> = model
        .iter()
        .filter(|(k, _)| *k != new)
        .map(|(k, t)| (*t, k.clone()))
        .collect();
    others.sort();
    let excess = (others.len() + 1).saturating_sub(max);
    others.into_iter().take(excess).map(|(_, k)| k).collect()
}

#[test]
fn the_maximum_evicts_the_least_recently_seen_across_touches_renames_deletes_and_replicates() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    let base = now_ms() - 1_000_000;
    let mut rng = seeded_rng(15);
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let mut next = 0;

    // Phase 1, no maximum: sessions of u, some touched later without USER (which leaves the
    // index's time behind the session's: the eviction walk must correct it), ties on purpose.
    for i in 0..30 {
        let key = format!("s{i:02}");
        let t = base + 1_000 * (i / 3); // three sessions share each millisecond
        touch_at(&mut p, &key, Some("u"), t);
        model.insert(key, t);
    }
    touch_at(&mut p, "v1", Some("v"), base);
    for key in ["s00", "s01", "s05", "s09"] {
        let t = base + 500_000 + rng.gen_range(0..10) * 1_000;
        touch_at(&mut p, key, None, t);
        model.insert(key.into(), t);
    }
    ok(&mut p, &["RENAME", "s02", "renamed02"]);
    let t = model.remove("s02").unwrap();
    model.insert("renamed02".into(), t);
    ok(&mut p, &["DEL", "s03"]);
    model.remove("s03");
    assert_eq!(
        sessions(&mut p, "u"),
        model.keys().cloned().collect::<Vec<_>>()
    );

    // Phase 2: a maximum, then random traffic checked against the brute-force choice.
    let max = 20;
    config_set(&mut p, "session.max-sessions-per-user", &max.to_string());
    let mut evicted = 0;
    for step in 0..300 {
        let keys: Vec<String> = model.keys().cloned().collect();
        let pick = keys[rng.gen_range(0..keys.len())].clone();
        let at = base + 600_000 + step * 1_000 + rng.gen_range(0..3) * 1_000;
        match rng.gen_range(0..100) {
            // a new session of u: the maximum applies
            0..=34 => {
                let key = format!("n{next:03}");
                next += 1;
                let victims = brute_victims(&model, &key, max);
                touch_at(&mut p, &key, Some("u"), at);
                model.insert(key, at);
                for v in &victims {
                    assert!(!exists(&mut p, v), "step {step}: {v} should be evicted");
                    model.remove(v);
                }
                evicted += victims.len();
            }
            // a touch of an existing one, with or without USER
            35..=64 => {
                let user = if rng.gen_bool(0.5) { Some("u") } else { None };
                touch_at(&mut p, &pick, user, at);
                let t = model[&pick].max(at);
                model.insert(pick, t);
            }
            // RENAME or ROTATE: the session keeps its last seen under its new name
            65..=79 => {
                let key = format!("m{next:03}");
                next += 1;
                if rng.gen_bool(0.5) {
                    ok(&mut p, &["RENAME", &pick, &key]);
                } else {
                    ok(&mut p, &["SESSION.ROTATE", &pick, &key]);
                }
                let t = model.remove(&pick).unwrap();
                model.insert(key, t);
            }
            // a delete
            _ => {
                if model.len() > 2 {
                    ok(&mut p, &["DEL", &pick]);
                    model.remove(&pick);
                }
            }
        }
        assert_eq!(
            sessions(&mut p, "u"),
            model.keys().cloned().collect::<Vec<_>>(),
            "step {step}"
        );
        assert!(evicted == 0 || model.len() <= max, "step {step}");
    }
    assert!(evicted > 20, "the maximum was reached often ({evicted})");
    assert_eq!(
        sessions(&mut p, "v"),
        ["v1"],
        "another user is never touched"
    );

    // evictions reached the replica as effects: same keyspace, same index
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "20000"])), 1);
    assert_eq!(digest(&mut p), digest(&mut r));
    assert_eq!(sessions(&mut r, "u"), sessions(&mut p, "u"));

    // after a reload the index (rebuilt from the sessions with their times) evicts the same way
    ok(&mut p, &["DEBUG", "RELOAD"]);
    let victims = brute_victims(&model, "after-reload", max);
    touch_at(&mut p, "after-reload", Some("u"), base + 990_000);
    for v in &victims {
        assert!(!exists(&mut p, v), "{v} should be evicted after the reload");
        model.remove(v);
    }
    model.insert("after-reload".into(), base + 990_000);
    assert_eq!(
        sessions(&mut p, "u"),
        model.keys().cloned().collect::<Vec<_>>()
    );
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "20000"])), 1);
    assert_eq!(digest(&mut p), digest(&mut r));
}

fn publish(c: &mut Connection, group: &str, id: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["SESSION.NOTIFYGROUP", group, id, "payload"];
    args.extend_from_slice(extra);
    int(ok(c, &args))
}

#[test]
fn duplicates_are_refused_exactly_while_the_id_lives() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let now = now_ms();
    let at = |ms: i64| (now + ms).to_string();
    assert_eq!(publish(&mut c, "g", "a", &["AT", &at(0)]), 1);
    assert_eq!(publish(&mut c, "g", "a", &["AT", &at(1)]), 0, "a live id");
    assert_eq!(
        publish(&mut c, "other", "a", &["AT", &at(1)]),
        1,
        "per group"
    );

    // trimmed away by MAXLEN: the id is free again
    for id in ["b", "c"] {
        assert_eq!(publish(&mut c, "g", id, &["MAXLEN", "2", "AT", &at(2)]), 1);
    }
    assert_eq!(publish(&mut c, "g", "a", &["MAXLEN", "2", "AT", &at(3)]), 1);
    assert_eq!(publish(&mut c, "g", "c", &["MAXLEN", "2", "AT", &at(3)]), 0);

    // expired (not yet purged, then purged): free again
    assert_eq!(publish(&mut c, "e", "x", &["TTL", "1", "AT", &at(0)]), 1);
    assert_eq!(publish(&mut c, "e", "x", &["AT", &at(500)]), 0);
    assert_eq!(publish(&mut c, "e", "x", &["AT", &at(1_500)]), 1, "expired");
    assert_eq!(publish(&mut c, "e", "x", &["AT", &at(1_600)]), 0);

    // dropped: free again
    ok(&mut c, &["SESSION.GROUP", "DROP", "other"]);
    assert_eq!(publish(&mut c, "other", "a", &["AT", &at(4)]), 1);

    // the id set is rebuilt when the registry is loaded
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(publish(&mut c, "g", "a", &["AT", &at(5)]), 0);
    assert_eq!(publish(&mut c, "g", "c", &["AT", &at(5)]), 0);
    assert_eq!(
        publish(&mut c, "g", "b", &["AT", &at(5)]),
        1,
        "b was trimmed"
    );
    assert_eq!(publish(&mut c, "other", "a", &["AT", &at(5)]), 0);
}

/// Issue 15 (b): a whole-user `SESSIONS` (no `CURSOR`) and `REVOKE` (no `COUNT`) are answered only
/// up to `session.max-unpaged-sessions`, refused past it before any work (nothing deleted), and
/// the paged forms still reach every session: SESSIONS pages list them all, REVOKE COUNT deletes
/// them all in bounded steps with `remaining` counting down exactly.
#[test]
fn unpaged_sessions_and_revoke_are_bounded_and_paging_reaches_everything() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for i in 0..5 {
        touch(&mut c, &format!("s{i}"), &["USER", "u"]);
    }
    config_set(&mut c, "session.max-unpaged-sessions", "5");
    assert_eq!(sessions(&mut c, "u"), ["s0", "s1", "s2", "s3", "s4"]);
    config_set(&mut c, "session.max-unpaged-sessions", "4");
    assert_eq!(
        err(&mut c, &["SESSION.SESSIONS", "u"]),
        "ERR the user has 5 sessions, more than session.max-unpaged-sessions (4): use SESSION.SESSIONS <user> CURSOR 0 COUNT <n>"
    );
    assert_eq!(
        err(&mut c, &["SESSION.REVOKE", "u"]),
        "ERR the user has 5 sessions, more than session.max-unpaged-sessions (4): use SESSION.REVOKE <user> COUNT <n> until it replies 0 remaining"
    );
    for i in 0..5 {
        assert!(
            exists(&mut c, &format!("s{i}")),
            "a refused REVOKE deleted s{i}"
        );
    }
    // pages list everything
    let mut cursor = "0".to_string();
    let mut listed = Vec::new();
    loop {
        let Value::Array(v) = ok(
            &mut c,
            &["SESSION.SESSIONS", "u", "CURSOR", &cursor, "COUNT", "2"],
        ) else {
            panic!("SESSIONS CURSOR is an array")
        };
        cursor = String::from_utf8(bytes(&v[0])).unwrap();
        let Value::Array(keys) = &v[1] else {
            panic!("keys")
        };
        listed.extend(keys.iter().map(|k| String::from_utf8(bytes(k)).unwrap()));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(listed, ["s0", "s1", "s2", "s3", "s4"]);
    // a deleted key behind the index's back is stepped over, not counted
    ok(&mut c, &["DEL", "s1"]);
    let revoke = |c: &mut Connection| match ok(c, &["SESSION.REVOKE", "u", "COUNT", "2"]) {
        Value::Array(v) => (int(v[0].clone()), int(v[1].clone())),
        other => panic!("{other:?}"),
    };
    assert_eq!(revoke(&mut c), (2, 2));
    assert!(!exists(&mut c, "s0") && !exists(&mut c, "s2") && exists(&mut c, "s3"));
    assert_eq!(revoke(&mut c), (2, 0));
    assert_eq!(revoke(&mut c), (0, 0));
    assert!(sessions(&mut c, "u").is_empty());
    // under the limit a whole REVOKE still works
    touch(&mut c, "t1", &["USER", "w"]);
    assert_eq!(int(ok(&mut c, &["SESSION.REVOKE", "w"])), 1);
}

/// Issue 15 (c): at the per-user maximum, a toucher whose keys are `~*` (no per-name check) and
/// a confined one (a pattern check per name) evict exactly as before: the oldest of the sessions
/// the toucher may write, never another tenant's; an `allkeys` user counts everyone's.
#[test]
fn the_maximum_is_exact_for_allkeys_and_confined_touchers() {
    let server = Server::builder()
        .module_args(&["max-sessions-per-user", "2"])
        .start();
    let mut admin = server.conn();
    for (user, keys) in [("all", "allkeys"), ("confined", "~a:*")] {
        ok(
            &mut admin,
            &["ACL", "SETUSER", user, "reset", "on", ">pw", keys, "+@all"],
        );
    }
    let login = |user: &str| {
        let mut c = server.conn();
        ok(&mut c, &["AUTH", user, "pw"]);
        c
    };
    let (mut all, mut confined) = (login("all"), login("confined"));
    let base = now_ms() - 100_000;
    touch_at(&mut all, "b:1", Some("u"), base);
    touch_at(&mut confined, "a:1", Some("u"), base + 1_000);
    touch_at(&mut confined, "a:2", Some("u"), base + 2_000);
    // the confined tenant holds two of its own: b:1 neither counts nor goes
    assert!(exists(&mut admin, "b:1") && exists(&mut admin, "a:1") && exists(&mut admin, "a:2"));
    touch_at(&mut confined, "a:3", Some("u"), base + 3_000);
    assert!(
        !exists(&mut admin, "a:1"),
        "the confined tenant's oldest goes"
    );
    assert!(exists(&mut admin, "b:1") && exists(&mut admin, "a:2") && exists(&mut admin, "a:3"));
    // the allkeys toucher counts all three and keeps two in all: the oldest two go (b:1, a:2)
    touch_at(&mut all, "c:1", Some("u"), base + 4_000);
    assert!(!exists(&mut admin, "b:1") && !exists(&mut admin, "a:2"));
    assert!(exists(&mut admin, "a:3") && exists(&mut admin, "c:1"));
    assert_eq!(sessions(&mut admin, "u"), ["a:3", "c:1"]);
    // past 2048 sessions the allkeys toucher is recognised once (ACL GETUSER) and counts from the
    // index; the confined one still checks each name: both stay exact
    config_set(&mut admin, "session.max-sessions-per-user", "0");
    let mut pipe = redis::pipe();
    for i in 0..2100 {
        let key = if i % 2 == 0 {
            format!("a:m{i:04}")
        } else {
            format!("b:m{i:04}")
        };
        let at = (base + 10_000 + i).to_string();
        pipe.cmd("SESSION.TOUCH")
            .arg(&key)
            .arg(&["IDLE", "100000", "MAXAGE", "200000", "AT", &at, "USER", "m"])
            .ignore();
    }
    let () = pipe.query(&mut admin).expect("pipelined touches");
    config_set(&mut admin, "session.max-sessions-per-user", "1050");
    // confined: 1050 a:* sessions, one more evicts its oldest a:* only
    touch_at(&mut confined, "a:new", Some("m"), base + 20_000);
    assert!(!exists(&mut admin, "a:m0000") && exists(&mut admin, "a:m0002"));
    assert!(exists(&mut admin, "b:m0001"));
    // allkeys: 2100 in all plus its new one, down to 1050: the 1051 oldest go, whoever's
    touch_at(&mut all, "c:new", Some("m"), base + 30_000);
    assert_eq!(sessions_paged(&mut admin, "m").len(), 1050);
    assert!(!exists(&mut admin, "b:m1051") && exists(&mut admin, "a:m1052"));
    assert!(exists(&mut admin, "a:new") && exists(&mut admin, "c:new"));
}

fn sessions_paged(c: &mut Connection, user: &str) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    loop {
        let Value::Array(v) = ok(
            c,
            &["SESSION.SESSIONS", user, "CURSOR", &cursor, "COUNT", "1000"],
        ) else {
            panic!("SESSIONS CURSOR is an array")
        };
        cursor = String::from_utf8(bytes(&v[0])).unwrap();
        let Value::Array(keys) = &v[1] else {
            panic!("keys")
        };
        out.extend(keys.iter().map(|k| String::from_utf8(bytes(k)).unwrap()));
        if cursor == "0" {
            return out;
        }
    }
}
