//! Leaks: what the module allocates, it frees.
//!
//! - `used_memory` (the server's own allocation counter) returns to its baseline after 100,000
//!   sessions with every kind of state (fields, user, sketches, calculated data, groups,
//!   impressions, delivery cursors) are created and deleted (DEL, UNLINK, expiry, FLUSHALL), and
//!   catalogs are dropped.
//! - Groups of notifications go away once their notifications expire (SESSION.PURGE), and
//!   their memory with them.
//! - A workload that runs every command, then deletes everything and shuts the server down
//!   cleanly: under valgrind (`scripts/leaks.sh`, on Valkey, whose libc malloc valgrind can
//!   follow) it is what lets the leak checker see the module's heap at exit.
//!
//! `SESSION_LEAK_SESSIONS` changes the session count (100,000).

mod common;

use std::time::Duration;

use common::dump::ModuleDump;
use common::*;
use rand::Rng;
use redis::{Connection, Value};

fn used_memory(c: &mut Connection) -> i64 {
    info_field(c, "memory", "used_memory")
        .expect("used_memory")
        .parse()
        .unwrap()
}

/// Creates `n` sessions named `<prefix>:<i>` with every kind of state, pipelined.
fn rich_sessions(c: &mut Connection, prefix: &str, n: usize, rng: &mut impl Rng) {
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(500);
        let mut pipe = redis::pipe();
        for i in done..done + batch {
            let key = format!("{prefix}:{i}");
            let user = format!("user{}", i % 1000);
            let item = format!("item{}", rng.gen_range(0..200));
            let field = format!("f{}", i % 7);
            pipe.cmd("SESSION.TOUCH")
                .arg(&key)
                .arg(&[
                    "USER",
                    &user,
                    "SET",
                    "2",
                    &field,
                    "value-of-some-length",
                    "theme",
                    "dark",
                ])
                .arg(&["EVENT", &item, "CATEGORIES", "2", "news", "sport"])
                .ignore();
            if i % 2 == 0 {
                let second = format!("item{}", rng.gen_range(0..200));
                pipe.cmd("SESSION.TOUCH")
                    .arg(&key)
                    .arg(&[
                        "EVENT",
                        &second,
                        "CATEGORIES",
                        "1",
                        "golf",
                        "DEL",
                        "1",
                        "theme",
                    ])
                    .ignore();
            }
            if i % 3 == 0 {
                pipe.cmd("SESSION.ENRICH")
                    .arg(&key)
                    .arg(&[
                        "ATTRS",
                        r#"{"churn":0.2,"geo":{"c":"SE"}}"#,
                        "JOIN",
                        "1",
                        "beta",
                    ])
                    .ignore();
            }
            if i % 4 == 0 {
                pipe.cmd("SESSION.SURFACE")
                    .arg(&key)
                    .arg(&["FROM", "leakcat", "COUNT", "3", "EXPLORE", "0.3"])
                    .ignore();
                pipe.cmd("SESSION.INBOX").arg(&key).ignore();
            }
        }
        let () = pipe.query(c).expect("rich sessions");
        done += batch;
    }
}

fn catalog(c: &mut Connection, name: &str, items: usize) {
    let mut pipe = redis::pipe();
    for i in 0..items {
        let item = format!("item{i}");
        let cat = format!("cat{}", i % 50);
        pipe.cmd("SESSION.CATALOG")
            .arg(&["ADD", name, &item, "SCORE", &(i % 100).to_string()])
            .arg(&["CATEGORIES", "2", &cat, "news"])
            .ignore();
    }
    let () = pipe.query(c).expect("catalog");
}

fn delete_all(c: &mut Connection, prefix: &str, n: usize) {
    // a third by DEL, a third by UNLINK, a third expire (their deadline moved into the past)
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(1000);
        let mut pipe = redis::pipe();
        for j in i..i + batch {
            let key = format!("{prefix}:{j}");
            match j % 3 {
                0 => pipe.cmd("DEL").arg(&key).ignore(),
                1 => pipe.cmd("UNLINK").arg(&key).ignore(),
                _ => pipe.cmd("PEXPIRE").arg(&key).arg(1).ignore(),
            };
        }
        let () = pipe.query(c).expect("delete");
        i += batch;
    }
    wait_until(Duration::from_secs(120), "every session gone", || {
        redis::cmd("DBSIZE").query::<i64>(c).unwrap() == 0
    });
}

/// Waits until `used_memory` is back within `slack` bytes of `baseline` (Redis shrinks its
/// keyspace tables from its cron, so this takes a moment); panics with the figures otherwise.
fn wait_for_baseline(c: &mut Connection, baseline: i64, slack: i64, what: &str) -> i64 {
    let mut last = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        last = used_memory(c);
        if last <= baseline + slack {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: used_memory {last} stays above the baseline {baseline} + {slack}")
}

/// `used_memory` once it stops going down (Redis shrinks emptied tables from its cron).
fn settled(c: &mut Connection) -> i64 {
    let mut last = used_memory(c);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(300));
        let now = used_memory(c);
        if now >= last {
            return now;
        }
        last = now;
    }
    last
}

#[test]
fn used_memory_returns_to_its_baseline() {
    let n: usize = std::env::var("SESSION_LEAK_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(0x1ea4);
    // warm-up at a small scale: whatever is allocated once (tables, the registry's maps,
    // the per-user index, shared strings) exists before the baseline
    ok(
        &mut c,
        &[
            "SESSION.NOTIFYGROUP",
            "beta",
            "welcome",
            "hi",
            "TTL",
            "86400",
        ],
    );
    for round in 0..2 {
        catalog(&mut c, "leakcat", 200);
        rich_sessions(&mut c, "warm", 2_000, &mut rng);
        delete_all(&mut c, "warm", 2_000);
        if round == 0 {
            ok(&mut c, &["SESSION.CATALOG", "DROP", "leakcat"]);
        }
    }
    ok(&mut c, &["SESSION.CATALOG", "DROP", "leakcat"]);
    let baseline = settled(&mut c);

    catalog(&mut c, "leakcat", 10_000);
    catalog(&mut c, "other", 5_000);
    rich_sessions(&mut c, "s", n, &mut rng);
    let peak = used_memory(&mut c);
    let users: String = redis::cmd("INFO").arg("session").query(&mut c).unwrap();
    delete_all(&mut c, "s", n);
    for name in ["leakcat", "other"] {
        assert_eq!(
            ok(&mut c, &["SESSION.CATALOG", "DROP", name]),
            Value::Int(1)
        );
    }
    // 256 KiB: less than 3 bytes per session
    let after = wait_for_baseline(&mut c, baseline, 256 * 1024, "after deleting");
    println!(
        "{n} sessions: baseline {baseline} B, peak {peak} B (+{} B), after deletion {after} B ({:+} B)",
        peak - baseline,
        after - baseline
    );
    assert!(peak - baseline > 50 * n as i64, "the sessions took memory");
    if users.contains("session_indexed_sessions") {
        assert_eq!(
            info_field(&mut c, "session", "session_indexed_sessions").as_deref(),
            Some("0"),
            "the per-user index forgot deleted sessions"
        );
    }

    // FLUSHALL frees the same way
    catalog(&mut c, "leakcat", 1_000);
    rich_sessions(&mut c, "f", n / 10, &mut rng);
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SESSION.CATALOG", "DROP", "leakcat"]);
    wait_for_baseline(&mut c, baseline, 256 * 1024, "after FLUSHALL");
}

/// Notifications expire after their TTL; a group whose notifications all expired holds nothing
/// and goes (the primary's once-a-second purge), with its memory. Found missing by this test:
/// expired notifications used to leave only when the same group was published to again.
#[test]
fn expired_groups_are_dropped() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // one round before the baseline, so that whatever is allocated once exists already
    short_lived_groups(&mut c, 0);
    let baseline = settled(&mut c);
    short_lived_groups(&mut c, 1);
    assert_eq!(
        info_field(&mut c, "session", "session_live_notifications").as_deref(),
        Some("1")
    );
    wait_for_baseline(&mut c, baseline, 64 * 1024, "after the groups expired");
}

/// Publishes to 2,000 groups with a TTL of one second, waits for them to expire, and for the
/// registry to hold only the one group published after that.
fn short_lived_groups(c: &mut Connection, round: usize) {
    let mut pipe = redis::pipe();
    for i in 0..2_000 {
        pipe.cmd("SESSION.NOTIFYGROUP")
            .arg(format!("group{round}-{i}"))
            .arg("n1")
            .arg("a payload of some length")
            .arg("TTL")
            .arg(1)
            .ignore();
    }
    let () = pipe.query(c).unwrap();
    assert!(info_field(c, "session", "session_groups")
        .and_then(|g| g.parse::<usize>().ok())
        .is_some_and(|g| g >= 2_000));
    std::thread::sleep(Duration::from_millis(1_500));
    // any activity: a touch, an inbox, another group's publication
    touch::<&str>(&mut *c, "s", &[]);
    ok(c, &["SESSION.INBOX", "s"]);
    ok(
        c,
        &["SESSION.NOTIFYGROUP", "unrelated", "n", "p", "TTL", "86400"],
    );
    wait_until(PATIENCE, "expired groups to go", || {
        info_field(c, "session", "session_groups").as_deref() == Some("1")
    });
}

/// Every command, binary-safe arguments, errors included, then everything deleted and a clean
/// `SHUTDOWN`: run under valgrind by `scripts/leaks.sh`, whose leak check then sees only what
/// the module failed to free. On its own it checks that the server exits cleanly.
#[test]
fn every_command_then_clean_shutdown() {
    let server = Server::start(&["--appendonly", "yes"]);
    let mut c = server.conn();
    let mut c3 = server.conn_resp3();
    let mut rng = seeded_rng(0x7a1);
    catalog(&mut c, "leakcat", 300);
    ok(&mut c, &["SESSION.NOTIFYGROUP", "beta", "n1", "hello"]);
    ok(
        &mut c,
        &["SESSION.NOTIFYGROUP", "interest:news", "n2", "\u{0}bin"],
    );
    rich_sessions(&mut c, "v", 300, &mut rng);
    rich_sessions(&mut c3, "w", 100, &mut rng);
    for conn in [&mut c, &mut c3] {
        for key in ["v:1", "v:2", "w:3"] {
            ok(conn, &["SESSION.GET", key]);
            ok(conn, &["SESSION.GET", key, "theme", "nope"]);
            ok(conn, &["SESSION.SEEN", key, "item1", "item2"]);
            ok(conn, &["SESSION.INFO", key]);
            ok(
                conn,
                &[
                    "SESSION.ENRICH",
                    key,
                    "ATTRS",
                    r#"{"geo":null}"#,
                    "LEAVE",
                    "1",
                    "beta",
                ],
            );
            ok(
                conn,
                &[
                    "SESSION.SURFACE",
                    key,
                    "FROM",
                    "leakcat",
                    "WITHSCORES",
                    "CATEGORY",
                    "news",
                ],
            );
            ok(conn, &["SESSION.SURFACE", key, "ITEMS", "2", "item1", "zz"]);
            ok(conn, &["SESSION.IMPRESS", key, "2", "item5", "item6"]);
            ok(conn, &["SESSION.INBOX", key, "PEEK"]);
            ok(conn, &["SESSION.CATALOG", "INFO", "leakcat"]);
            ok(conn, &["SESSION.CATALOG", "LIST"]);
        }
    }
    // errors of every kind
    ok(&mut c, &["SET", "str", "v"]);
    for args in [
        &["SESSION.TOUCH", "str"][..],
        &["SESSION.TOUCH", "x", "SET", "3", "a"],
        &["SESSION.TOUCH", "x", "AT", "99999999999999"],
        &["SESSION.ENRICH", "v:1", "ATTRS", "{bad"],
        &["SESSION.SURFACE", "v:1", "FROM", "nosuch"],
        &["SESSION.CATALOG", "INFO", "nosuch"],
        &["SESSION.NOTIFYGROUP", "g", "i", "p", "SEQ", "5"],
        &["SESSION.LOAD", "x", "garbage"],
    ] {
        err(&mut c, args);
    }
    // saved forms: DUMP/RESTORE, LOAD, COPY, corrupt payloads
    config_set(&mut c, "rdbcompression", "no");
    let payload = bytes(&ok(&mut c, &["DUMP", "v:0"]));
    ok(&mut c, &[&b"RESTORE"[..], b"restored", b"0", &payload]);
    let saved = ModuleDump::parse(&payload).saved;
    ok(&mut c, &[&b"SESSION.LOAD"[..], b"loaded", &saved]);
    ok(&mut c, &["COPY", "v:0", "copied"]);
    let dump = ModuleDump::parse(&payload);
    for n in (0..saved.len()).step_by(7) {
        let _ = call(
            &mut c,
            &[
                &b"RESTORE"[..],
                b"bad",
                b"0",
                &dump.with_saved(&saved[..n]),
                b"REPLACE",
            ],
        );
        let _ = call(&mut c, &[&b"SESSION.LOAD"[..], b"bad", &saved[..n]]);
    }
    // users, if this build has them
    let _ = call(&mut c, &["SESSION.SESSIONS", "user1"]);
    let _ = call(&mut c, &["SESSION.ROTATE", "v:5", "rotated"]);
    let _ = call(&mut c, &["SESSION.REVOKE", "user2"]);
    // persistence paths: RDB save and load, AOF rewrite
    ok(&mut c, &["DEBUG", "RELOAD"]);
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_for_aof_rewrite(&mut c);
    ok(&mut c, &["DEBUG", "DIGEST"]);

    // everything goes, then a clean shutdown
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SESSION.CATALOG", "DROP", "leakcat"]);
    shutdown(server, c);
}

/// `SHUTDOWN NOSAVE`, then waits for the process to exit.
fn shutdown(mut server: Server, mut c: Connection) {
    let _: redis::RedisResult<Value> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut c);
    wait_until(Duration::from_secs(120), "the server to exit", || {
        !server.is_running()
    });
}
