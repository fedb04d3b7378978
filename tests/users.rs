//! Sessions by user: the per-user index (`TOUCH ... USER`, `SESSION.SESSIONS`, `SESSION.REVOKE`,
//! the per-user maximum), ID rotation (`SESSION.ROTATE`, native `RENAME`), the module's own
//! `session:expired` / `session:deleted` messages, and the races users report.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use redis::{Connection, Value};
use serde_json::json;

/// `SESSION.SESSIONS user` as UTF-8 strings, in reply order.
fn sessions(c: &mut Connection, user: &str) -> Vec<String> {
    match ok(c, &["SESSION.SESSIONS", user]) {
        Value::Array(items) => items
            .iter()
            .map(|v| String::from_utf8(bytes(v)).expect("UTF-8 key"))
            .collect(),
        other => panic!("SESSIONS replied {other:?}"),
    }
}

fn revoke(c: &mut Connection, user: &str) -> i64 {
    match ok(c, &["SESSION.REVOKE", user]) {
        Value::Int(n) => n,
        other => panic!("REVOKE replied {other:?}"),
    }
}

fn set_of(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

/// The `session:*` messages (channel, JSON) published while `f` runs, in order. A sentinel
/// message published afterwards marks the end (messages are delivered in publication order).
struct Listener {
    _conn: Connection,
    sub: redis::PubSub<'static>,
}

const SENTINEL: &str = "test:users:sentinel";

impl Listener {
    fn new(server: &Server) -> Listener {
        // The PubSub borrows its connection for 'static: leak one connection per listener
        // (a handful per test process).
        let conn: &'static mut Connection = Box::leak(Box::new(server.conn()));
        let mut sub = conn.as_pubsub();
        sub.set_read_timeout(Some(PATIENCE)).unwrap();
        sub.subscribe(&["session:expired", "session:deleted", SENTINEL])
            .unwrap();
        Listener {
            _conn: server.conn(),
            sub,
        }
    }

    fn messages(&mut self, c: &mut Connection) -> Vec<(String, serde_json::Value)> {
        ok(c, &["PUBLISH", SENTINEL, "end"]);
        let mut out = Vec::new();
        loop {
            let msg = self
                .sub
                .get_message()
                .expect("a message within the timeout");
            let channel = msg.get_channel_name().to_owned();
            if channel == SENTINEL {
                return out;
            }
            let payload: Vec<u8> = msg.get_payload().expect("a payload");
            let doc = serde_json::from_slice(&payload).unwrap_or_else(|e| {
                panic!("not JSON ({e}): {}", String::from_utf8_lossy(&payload))
            });
            out.push((channel, doc));
        }
    }
}

fn gone(
    channel: &str,
    key: serde_json::Value,
    user: serde_json::Value,
    reason: &str,
) -> (String, serde_json::Value) {
    (
        channel.to_owned(),
        json!({"key": key, "user": user, "db": 0, "reason": reason}),
    )
}

#[test]
fn sessions_revoke_and_rotate() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    assert!(sessions(&mut c, "alice").is_empty());
    assert_eq!(revoke(&mut c, "alice"), 0);

    touch(&mut c, "s:2", &["USER", "alice", "SET", "1", "a", "1"]);
    touch(&mut c, "s:1", &["USER", "alice"]);
    touch(&mut c, "s:3", &["USER", "bob"]);
    touch::<&str>(&mut c, "anon", &[]);
    assert_eq!(sessions(&mut c, "alice"), ["s:1", "s:2"], "sorted");
    assert_eq!(sessions(&mut c, "bob"), ["s:3"]);

    // touching without USER keeps the user; naming another moves the session
    touch(&mut c, "s:2", &["SET", "1", "b", "2"]);
    assert_eq!(sessions(&mut c, "alice"), ["s:1", "s:2"]);
    touch(&mut c, "s:1", &["USER", "bob"]);
    assert_eq!(sessions(&mut c, "alice"), ["s:2"]);
    assert_eq!(sessions(&mut c, "bob"), ["s:1", "s:3"]);

    // ROTATE moves the whole session, its expiry and its index entry
    touch(&mut c, "s:2", &["EVENT", "item", "CATEGORIES", "1", "news"]);
    let info = session_info(&mut c, "s:2");
    let deadline = pexpiretime(&mut c, "s:2");
    let digest = digest_value(&mut c, "s:2");
    assert_eq!(ok(&mut c, &["SESSION.ROTATE", "s:2", "s:2b"]), Value::Okay);
    assert!(!exists(&mut c, "s:2"));
    assert_eq!(session_info(&mut c, "s:2b"), info);
    assert_eq!(pexpiretime(&mut c, "s:2b"), deadline);
    assert_eq!(digest_value(&mut c, "s:2b"), digest);
    assert_eq!(sessions(&mut c, "alice"), ["s:2b"]);
    // an anonymous session rotates too
    assert_eq!(
        ok(&mut c, &["SESSION.ROTATE", "anon", "anon2"]),
        Value::Okay
    );
    assert!(exists(&mut c, "anon2"));

    // ROTATE refuses to overwrite anything, and checks the source's type
    ok(&mut c, &["SET", "string", "x"]);
    for target in ["s:3", "string", "s:2b"] {
        assert_eq!(
            err(&mut c, &["SESSION.ROTATE", "s:2b", target]),
            "ERR target exists"
        );
    }
    assert_eq!(
        err(&mut c, &["SESSION.ROTATE", "string", "elsewhere"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        ok(&mut c, &["SESSION.ROTATE", "missing", "elsewhere"]),
        Value::Nil
    );
    assert!(!exists(&mut c, "elsewhere"));
    for bad in [
        &["SESSION.ROTATE", "s:2b"][..],
        &["SESSION.SESSIONS"],
        &["SESSION.REVOKE"],
    ] {
        assert!(
            err(&mut c, bad).contains("wrong number of arguments"),
            "{bad:?}"
        );
    }
    // extra arguments are the CURSOR / COUNT options now
    for bad in [
        &["SESSION.SESSIONS", "a", "b"][..],
        &["SESSION.REVOKE", "a", "b"],
    ] {
        assert_eq!(err(&mut c, bad), "ERR syntax error", "{bad:?}");
    }

    // ROTATE's one option is CLEARFIELDS (tests/web.rs)
    assert_eq!(
        err(&mut c, &["SESSION.ROTATE", "a", "b", "c"]),
        "ERR syntax error"
    );

    // REVOKE deletes every session of the user and nothing else
    assert_eq!(revoke(&mut c, "bob"), 2);
    assert!(!exists(&mut c, "s:1") && !exists(&mut c, "s:3"));
    assert!(sessions(&mut c, "bob").is_empty());
    assert_eq!(sessions(&mut c, "alice"), ["s:2b"]);
    assert_eq!(revoke(&mut c, "bob"), 0);

    // binary-safe users and keys; databases are separate
    let user: &[u8] = b"\x00\xffuser";
    let key: &[u8] = b"k\x00\xfe";
    ok(&mut c, &[&b"SESSION.TOUCH"[..], key, b"USER", user]);
    assert_eq!(
        ok(&mut c, &[&b"SESSION.SESSIONS"[..], user]),
        Value::Array(vec![Value::BulkString(key.to_vec())])
    );
    ok(&mut c, &["SELECT", "1"]);
    assert!(sessions(&mut c, "alice").is_empty());
    touch(&mut c, "s:2b", &["USER", "alice"]);
    assert_eq!(sessions(&mut c, "alice"), ["s:2b"]);
    ok(&mut c, &["SELECT", "0"]);
    assert_eq!(ok(&mut c, &[&b"SESSION.REVOKE"[..], user]), Value::Int(1));
    assert_eq!(sessions(&mut c, "alice"), ["s:2b"]);
}

#[test]
fn per_user_maximum_evicts_the_least_recently_seen() {
    let server = Server::builder()
        .module_args(&["max-sessions-per-user", "2"])
        .start();
    let mut c = server.conn();
    let mut events = Listener::new(&server);
    let now = now_ms();
    let at = |ago: i64| (now - ago).to_string();
    touch(&mut c, "a", &["USER", "u", "AT", &at(3_000)]);
    touch(&mut c, "b", &["USER", "u", "AT", &at(2_000)]);
    touch(&mut c, "a", &["AT", &at(1_000)]); // a is now more recent than b
    touch(&mut c, "other", &["USER", "v"]);
    assert_eq!(sessions(&mut c, "u"), ["a", "b"]);
    assert!(events.messages(&mut c).is_empty());

    // a third session evicts b, the least recently seen
    touch(&mut c, "c", &["USER", "u"]);
    assert_eq!(sessions(&mut c, "u"), ["a", "c"]);
    assert!(!exists(&mut c, "b"));
    assert_eq!(
        events.messages(&mut c),
        [gone("session:deleted", json!("b"), json!("u"), "limit")]
    );

    // moving a session to the user counts as registering it; the moved one always stays
    touch(&mut c, "other", &["USER", "u", "AT", &at(10_000)]);
    assert_eq!(sessions(&mut c, "u"), ["c", "other"]);
    assert!(sessions(&mut c, "v").is_empty());

    // lowering the maximum applies at the user's next touch
    config_set(&mut c, "session.max-sessions-per-user", "1");
    touch(&mut c, "c", &[] as &[&str]);
    assert_eq!(sessions(&mut c, "u"), ["c"]);

    // 0 = unlimited
    config_set(&mut c, "session.max-sessions-per-user", "0");
    for i in 0..5 {
        touch(&mut c, &format!("many:{i}"), &["USER", "w"]);
    }
    assert_eq!(sessions(&mut c, "w").len(), 5);
    assert!(err(
        &mut c,
        &["CONFIG", "SET", "session.max-sessions-per-user", "-1"]
    )
    .starts_with("ERR"));

    // a copy that puts the user over the maximum: evicted at once where the server has
    // post-notification jobs (7.2+), else at the user's next touch
    config_set(&mut c, "session.max-sessions-per-user", "2");
    touch(&mut c, "x1", &["USER", "x", "AT", &at(5_000)]);
    touch(&mut c, "x2", &["USER", "x", "AT", &at(4_000)]);
    ok(&mut c, &["COPY", "x2", "x3"]);
    if !server_has_post_notification_jobs(&mut c) {
        assert_eq!(sessions(&mut c, "x"), ["x1", "x2", "x3"]);
        touch(&mut c, "x2", &[] as &[&str]);
    }
    let left = sessions(&mut c, "x");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!exists(&mut c, "x1"), "the least recently seen goes");
}

/// Redis 7.2+ (and Valkey) run post-notification jobs.
fn server_has_post_notification_jobs(c: &mut Connection) -> bool {
    let version = info_field(c, "server", "redis_version").expect("redis_version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (7, 2)
}

#[test]
fn the_index_never_lists_a_session_that_is_gone() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let live = ["live:1", "live:2"];
    for k in live {
        touch(&mut c, k, &["USER", "u"]);
    }
    // expired (lazily on access, and by the server's active expiry)
    touch(&mut c, "exp:lazy", &["USER", "u", "IDLE", "1"]);
    touch(&mut c, "exp:active", &["USER", "u", "IDLE", "1"]);
    // deleted in every way
    for k in ["del", "unlink", "past", "revived"] {
        touch(&mut c, k, &["USER", "u"]);
    }
    ok(&mut c, &["DEL", "del"]);
    ok(&mut c, &["UNLINK", "unlink"]);
    ok(&mut c, &["PEXPIREAT", "past", "1"]);
    // renamed and moved away, overwritten
    for k in ["renamed", "moved", "overwritten", "restored-over"] {
        touch(&mut c, k, &["USER", "u"]);
    }
    ok(&mut c, &["RENAME", "renamed", "renamed:new"]);
    ok(&mut c, &["MOVE", "moved", "3"]);
    ok(&mut c, &["SET", "overwritten", "x"]);
    touch(&mut c, "donor", &["USER", "other"]);
    let dump = bytes(&ok(&mut c, &["DUMP", "donor"]));
    ok(
        &mut c,
        &[&b"RESTORE"[..], b"restored-over", b"0", &dump, b"REPLACE"],
    );
    // deleted, then created again under another user
    ok(&mut c, &["DEL", "revived"]);
    touch(&mut c, "revived", &["USER", "w"]);

    thread::sleep(Duration::from_millis(1_200));
    // the server's active expiry deletes exp:active on its own
    wait_until(PATIENCE, "the active expiry", || {
        !keys(&mut c).contains(&b"exp:active"[..])
    });
    assert_eq!(
        sessions(&mut c, "u"),
        set_of(&["live:1", "live:2", "renamed:new"])
    );
    assert!(!exists(&mut c, "exp:lazy"));
    assert_eq!(sessions(&mut c, "w"), ["revived"]);
    assert_eq!(
        sessions(&mut c, "other"),
        set_of(&["donor", "restored-over"])
    );
    ok(&mut c, &["SELECT", "3"]);
    assert_eq!(sessions(&mut c, "u"), ["moved"]);
    ok(&mut c, &["SELECT", "0"]);

    // FLUSHDB of another database leaves this one; FLUSHALL forgets everything
    ok(&mut c, &["FLUSHDB"]);
    assert!(sessions(&mut c, "u").is_empty());
    ok(&mut c, &["SELECT", "3"]);
    assert_eq!(sessions(&mut c, "u"), ["moved"]);
    ok(&mut c, &["FLUSHALL"]);
    assert!(sessions(&mut c, "u").is_empty());

    // SWAPDB swaps the databases' entries
    touch(&mut c, "in3", &["USER", "u"]);
    ok(&mut c, &["SWAPDB", "3", "4"]);
    assert!(sessions(&mut c, "u").is_empty());
    ok(&mut c, &["SELECT", "4"]);
    assert_eq!(sessions(&mut c, "u"), ["in3"]);
}

#[test]
fn native_rename_keeps_the_index_right() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut events = Listener::new(&server);
    touch(&mut c, "a", &["USER", "alice"]);
    touch(&mut c, "b", &["USER", "bob"]);

    ok(&mut c, &["RENAME", "a", "a2"]);
    assert_eq!(sessions(&mut c, "alice"), ["a2"]);
    // renamed onto another user's session: that session is gone, the target is alice's now
    ok(&mut c, &["RENAME", "a2", "b"]);
    assert_eq!(sessions(&mut c, "alice"), ["b"]);
    assert!(sessions(&mut c, "bob").is_empty());
    // a string renamed onto a session replaces it
    ok(&mut c, &["SET", "str", "x"]);
    ok(&mut c, &["RENAME", "str", "b"]);
    assert!(sessions(&mut c, "alice").is_empty());
    // RENAMENX onto a free name, COPY, and a session renamed back and forth
    touch(&mut c, "c", &["USER", "carol"]);
    assert_eq!(ok(&mut c, &["RENAMENX", "c", "c1"]), Value::Int(1));
    ok(&mut c, &["COPY", "c1", "c2"]);
    ok(&mut c, &["RENAME", "c1", "c"]);
    assert_eq!(sessions(&mut c, "carol"), ["c", "c2"]);
    assert_eq!(
        events.messages(&mut c),
        [
            gone("session:deleted", json!("b"), json!("bob"), "overwritten"),
            gone("session:deleted", json!("b"), json!("alice"), "overwritten"),
        ],
        "renames publish nothing; overwrites publish the session that was replaced"
    );
}

#[test]
fn expiry_and_deletion_messages_without_keyspace_notifications() {
    let server = Server::builder()
        .module_args(&["max-sessions-per-user", "3"])
        .start();
    let mut c = server.conn();
    let got: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query::<Vec<String>>(&mut c)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(got, "", "notifications are off");
    let mut events = Listener::new(&server);

    touch(&mut c, "e1", &["USER", "u", "IDLE", "1"]);
    touch::<&str>(&mut c, "anon", &["IDLE", "1"]);
    thread::sleep(Duration::from_millis(1_100));
    assert_eq!(ok(&mut c, &["SESSION.GET", "e1"]), Value::Nil);
    assert_eq!(ok(&mut c, &["SESSION.GET", "anon"]), Value::Nil);
    // the server's active expiry may take them in either order
    let mut expired = events.messages(&mut c);
    expired.sort_by_key(|(_, doc)| doc["key"].to_string());
    assert_eq!(
        expired,
        [
            gone("session:expired", json!("anon"), json!(null), "expired"),
            gone("session:expired", json!("e1"), json!("u"), "expired"),
        ]
    );

    touch(&mut c, "d1", &["USER", "u"]);
    touch(&mut c, "d2", &["USER", "u"]);
    touch::<&str>(&mut c, "d3", &[]);
    let binary: &[u8] = b"\xff\x00";
    ok(&mut c, &[&b"SESSION.TOUCH"[..], binary, b"USER", b"\xfe"]);
    ok(&mut c, &["DEL", "d1", "d3", "not-a-key"]);
    ok(&mut c, &[&b"UNLINK"[..], binary]);
    ok(&mut c, &["SESSION.ROTATE", "d2", "d2b"]);
    ok(&mut c, &["RENAME", "d2b", "d2c"]);
    assert_eq!(revoke(&mut c, "u"), 1);
    for k in ["l1", "l2", "l3", "l4"] {
        touch(&mut c, k, &["USER", "many"]);
    }
    ok(&mut c, &["SET", "plain-string", "x"]);
    ok(&mut c, &["DEL", "plain-string"]);
    assert_eq!(
        events.messages(&mut c),
        [
            gone("session:deleted", json!("d1"), json!("u"), "del"),
            gone("session:deleted", json!("d3"), json!(null), "del"),
            gone(
                "session:deleted",
                json!({"base64": base64(binary)}),
                json!({"base64": base64(b"\xfe")}),
                "del"
            ),
            gone("session:deleted", json!("d2c"), json!("u"), "revoked"),
            gone("session:deleted", json!("l1"), json!("many"), "limit"),
        ]
    );
}

#[test]
fn replicas_hold_the_same_index() {
    let primary = Server::builder()
        .module_args(&["max-sessions-per-user", "3"])
        .start();
    let mut p = primary.conn();
    let mut rng = seeded_rng(91);
    // before the replica exists: reaches it by the full sync
    random_sessions(&mut p, &mut rng, "synced", 100, 300);
    for i in 0..10 {
        touch(
            &mut p,
            &format!("pre:{i}"),
            &["USER", &format!("user-{}", i % 3)],
        );
    }
    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    // the replica never evicts on its own: it applies the primary's DELs
    config_set(&mut r, "session.max-sessions-per-user", "1");

    random_sessions(&mut p, &mut rng, "streamed", 200, 1_000);
    for i in 0..20 {
        touch(
            &mut p,
            &format!("post:{i}"),
            &["USER", &format!("user-{}", i % 4)],
        );
    }
    touch(&mut p, "short", &["USER", "user-9", "IDLE", "1"]);
    for (key, user) in [
        ("rot", "user-5"),
        ("ren", "user-6"),
        ("cp", "user-7"),
        ("del", "user-8"),
    ] {
        touch(&mut p, key, &["USER", user]);
    }
    ok(&mut p, &["SESSION.ROTATE", "rot", "rot:new"]);
    ok(&mut p, &["RENAME", "ren", "ren:new"]);
    ok(&mut p, &["COPY", "cp", "cp:copy"]);
    ok(&mut p, &["DEL", "del"]);
    revoke(&mut p, "user-2");
    let () = redis::pipe()
        .atomic()
        .cmd("SESSION.TOUCH")
        .arg(&["in-multi", "USER", "user-0"])
        .ignore()
        .cmd("SESSION.REVOKE")
        .arg("user-3")
        .ignore()
        .query(&mut p)
        .expect("MULTI/EXEC");
    thread::sleep(Duration::from_millis(1_100));
    assert!(!exists(&mut p, "short"));

    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    let users: Vec<String> = (0..10).map(|i| format!("user-{i}")).collect();
    let mut listed = 0;
    for user in &users {
        let on_primary = sessions(&mut p, user);
        assert!(on_primary.len() <= 3, "{user}: {on_primary:?}");
        listed += on_primary.len();
        assert_eq!(sessions(&mut r, user), on_primary, "{user}");
    }
    assert!(listed > 10, "{listed}");
    assert_eq!(digest(&mut r), digest(&mut p), "DEBUG DIGEST");
}

#[test]
fn reload_and_restart_rebuild_the_index() {
    for (label, args) in [
        ("rdb", &[][..]),
        (
            "aof",
            &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"][..],
        ),
        (
            "aof+rdb",
            &["--appendonly", "yes", "--aof-use-rdb-preamble", "yes"][..],
        ),
    ] {
        let mut server = Server::start(args);
        let mut c = server.conn();
        let mut rng = seeded_rng(17);
        random_sessions(&mut c, &mut rng, "r", 60, 200);
        for i in 0..12 {
            touch(
                &mut c,
                &format!("k:{i}"),
                &["USER", &format!("user-{}", i % 3)],
            );
        }
        ok(&mut c, &["SESSION.ROTATE", "k:0", "k:0:new"]);
        ok(&mut c, &["RENAME", "k:1", "k:1:new"]);
        ok(&mut c, &["DEL", "k:2"]);
        ok(&mut c, &["SELECT", "2"]);
        touch(&mut c, "k:db2", &["USER", "user-0"]);
        ok(&mut c, &["SELECT", "0"]);
        let users: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
        let before: Vec<Vec<String>> = users.iter().map(|u| sessions(&mut c, u)).collect();
        assert!(before.iter().map(Vec::len).sum::<usize>() > 10);
        let dataset = digest(&mut c);

        ok(&mut c, &["DEBUG", "RELOAD"]);
        let after: Vec<Vec<String>> = users.iter().map(|u| sessions(&mut c, u)).collect();
        assert_eq!(after, before, "{label}: DEBUG RELOAD");

        if label == "rdb" {
            ok(&mut c, &["SAVE"]);
        }
        drop(c);
        server.restart();
        let mut c = server.conn();
        let after: Vec<Vec<String>> = users.iter().map(|u| sessions(&mut c, u)).collect();
        assert_eq!(after, before, "{label}: restart");
        assert_eq!(
            digest(&mut c),
            dataset,
            "{label}: the same dataset after the restart"
        );
        ok(&mut c, &["SELECT", "2"]);
        assert_eq!(sessions(&mut c, "user-0"), ["k:db2"], "{label}");
    }
}

/// A `TOUCH ... XX` racing a `DEL` must never bring back part of a session: every session that
/// exists at the end was created whole (its three fields), and the index lists exactly them.
#[test]
fn touch_xx_racing_del_never_recreates_a_half_session() {
    let server = Server::start(&[]);
    const KEYS: usize = 20;
    const ROUNDS: usize = 1_500;
    let key = |i: usize| format!("race:{}", i % KEYS);
    let mut handles = Vec::new();
    for t in 0..4 {
        let mut c = server.conn();
        handles.push(thread::spawn(move || {
            let mut rng = seeded_rng(100 + t);
            for n in 0..ROUNDS {
                let k = key(rand::Rng::gen_range(&mut rng, 0..KEYS));
                let value = format!("{t}-{n}");
                let reply = match t {
                    // creators: whole sessions
                    0 => call(
                        &mut c,
                        &[
                            "SESSION.TOUCH",
                            &k,
                            "USER",
                            "racer",
                            "SET",
                            "3",
                            "a",
                            &value,
                            "b",
                            &value,
                            "c",
                            &value,
                        ],
                    ),
                    // refreshers: must never create
                    1 | 2 => call(
                        &mut c,
                        &["SESSION.TOUCH", &k, "XX", "SET", "1", "d", &value],
                    ),
                    // deleters
                    _ => call(&mut c, &["DEL", &k]),
                };
                reply.expect("no error");
            }
        }));
    }
    for h in handles {
        h.join().expect("racer");
    }
    let mut c = server.conn();
    let mut existing = Vec::new();
    for i in 0..KEYS {
        let k = key(i);
        if let Some(fields) = get_all(&mut c, &k) {
            for f in ["a", "b", "c"] {
                assert!(
                    fields.contains_key(f.as_bytes()),
                    "{k} lacks {f}: a half session"
                );
            }
            existing.push(k);
        }
    }
    existing.sort();
    assert_eq!(
        sessions(&mut c, "racer"),
        existing,
        "the index lists exactly the sessions"
    );
}

/// A rotation racing touches loses nothing: every field a touch wrote to the session before the
/// rotation is under the new key, and the old key is gone (touches use XX, so they cannot bring
/// it back).
#[test]
fn rotate_racing_touches_loses_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for round in 0..40 {
        let old = format!("rot:{round}");
        let new = format!("rot:{round}:new");
        touch(
            &mut c,
            &old,
            &["USER", "rotator", "SET", "1", "created", "1"],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let mut w = server.conn();
            let old = old.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut written = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) || n < 5 {
                    let field = format!("f{n}");
                    let reply = ok(
                        &mut w,
                        &["SESSION.TOUCH", &old, "XX", "SET", "1", &field, "v"],
                    );
                    if reply == Value::Nil {
                        break; // rotated away
                    }
                    written.push(field);
                    n += 1;
                }
                written
            })
        };
        thread::sleep(Duration::from_millis(2 + round % 5));
        assert_eq!(ok(&mut c, &["SESSION.ROTATE", &old, &new]), Value::Okay);
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().expect("writer");
        let fields = get_all(&mut c, &new).expect("the rotated session");
        for f in written.iter().chain(std::iter::once(&"created".to_owned())) {
            assert!(fields.contains_key(f.as_bytes()), "round {round}: {f} lost");
        }
        assert!(
            !exists(&mut c, &old),
            "round {round}: the old key came back"
        );
    }
    let listed: BTreeSet<String> = sessions(&mut c, "rotator").into_iter().collect();
    let expected: BTreeSet<String> = (0..40).map(|r| format!("rot:{r}:new")).collect();
    assert_eq!(listed, expected);
}
