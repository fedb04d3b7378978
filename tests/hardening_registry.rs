//! Issue 15, items 3 and 4 (registry side): the registry is bounded (groups, payload size,
//! notification memory), can be inspected and cleaned (`SESSION.GROUP LIST | INFO | DROP`), is
//! cleared by FLUSHALL on the primary, its replicas and its AOF alike, and a session's `pending`
//! count and INBOX cost follow the session's own groups, not the registry's size.
//!
//! No test asserts a timing: the big cases check the replies, and print the server's
//! `usec_per_call` (INFO commandstats) for the record.

mod common;

use common::*;
use redis::{Connection, Value};

fn stat(c: &mut Connection, name: &str) -> i64 {
    info_field(c, "session", &format!("session_{name}"))
        .unwrap_or_else(|| panic!("INFO session has no {name}"))
        .parse()
        .expect("an integer")
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| String::from_utf8_lossy(&bytes(i)).into_owned())
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn join(c: &mut Connection, key: &str, groups: &[&str]) {
    touch(c, key, &["EVENT", "x"]);
    let mut args = vec![
        "SESSION.ENRICH".to_string(),
        key.into(),
        "JOIN".into(),
        groups.len().to_string(),
    ];
    args.extend(groups.iter().map(|g| g.to_string()));
    ok(c, &args);
}

/// Inbox ids (PEEK or not) of `key`.
fn inbox(c: &mut Connection, args: &[&str]) -> Vec<String> {
    let mut all = vec!["SESSION.INBOX"];
    all.extend_from_slice(args);
    let Value::Array(items) = ok(c, &all) else {
        panic!("INBOX is an array")
    };
    items
        .into_iter()
        .map(|item| {
            let fields = pairs(item);
            fields
                .iter()
                .find(|(k, _)| bytes(k) == b"id")
                .map(|(_, v)| String::from_utf8_lossy(&bytes(v)).into_owned())
                .expect("an id")
        })
        .collect()
}

fn usec_per_call(c: &mut Connection, command: &str) -> String {
    let name = format!("cmdstat_{}", command.to_lowercase());
    info_field(c, "commandstats", &name)
        .and_then(|v| {
            v.split(',')
                .find(|p| p.starts_with("usec_per_call="))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

#[test]
fn registry_limits_refuse_exactly_and_change_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(&mut c, "session.max-registry-groups", "3");
    for g in ["g1", "g2", "g3"] {
        assert_eq!(
            ok(&mut c, &["SESSION.NOTIFYGROUP", g, "n", "p"]),
            Value::Int(1)
        );
    }
    let before = (
        stat(&mut c, "groups"),
        stat(&mut c, "live_notifications"),
        stat(&mut c, "registry_group_memory_bytes"),
    );
    assert_eq!(
        err(&mut c, &["SESSION.NOTIFYGROUP", "g4", "n", "p"]),
        "ERR registry limit reached: session.max-registry-groups is 3 (drop groups with SESSION.GROUP DROP, or raise it)"
    );
    // an existing group still takes notifications
    assert_eq!(
        ok(&mut c, &["SESSION.NOTIFYGROUP", "g1", "n2", "p"]),
        Value::Int(1)
    );
    config_set(&mut c, "session.max-notification-size", "10");
    assert_eq!(
        err(&mut c, &["SESSION.NOTIFYGROUP", "g1", "big", "01234567890"]),
        "ERR registry limit reached: session.max-notification-size is 10 (drop groups with SESSION.GROUP DROP, or raise it)"
    );
    assert_eq!(
        ok(&mut c, &["SESSION.NOTIFYGROUP", "g1", "fits", "0123456789"]),
        Value::Int(1)
    );
    // the memory bound: fill until refused; the registry stays within it
    config_set(&mut c, "session.max-notification-size", "65536");
    config_set(&mut c, "session.max-notifications", "100000");
    config_set(&mut c, "session.max-registry-memory", "200000");
    let payload = "x".repeat(4000);
    let mut stored = 0;
    let refusal = loop {
        match call(
            &mut c,
            &["SESSION.NOTIFYGROUP", "g2", &format!("m{stored}"), &payload],
        ) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1000, "the memory limit never refused");
    };
    assert_eq!(
        refusal,
        "ERR registry limit reached: session.max-registry-memory is 200000 (drop groups with SESSION.GROUP DROP, or raise it)"
    );
    assert!(stored > 10, "{stored} stored");
    let used = stat(&mut c, "registry_group_memory_bytes");
    assert!(used <= 200_000 && used > 150_000, "{used} bytes");
    let full = (
        stat(&mut c, "groups"),
        stat(&mut c, "live_notifications"),
        used,
    );
    assert!(full.1 > before.1);
    // a refusal changes nothing
    let _ = call(&mut c, &["SESSION.NOTIFYGROUP", "g3", "again", &payload]);
    assert_eq!(
        (
            stat(&mut c, "groups"),
            stat(&mut c, "live_notifications"),
            stat(&mut c, "registry_group_memory_bytes")
        ),
        full
    );
    // dropping gives the memory back, exactly (counters, not a walk)
    assert_eq!(ok(&mut c, &["SESSION.GROUP", "DROP", "g2"]), Value::Int(1));
    assert_eq!(stat(&mut c, "live_notifications"), full.1 - stored - 1);
    assert!(stat(&mut c, "registry_group_memory_bytes") < 2_000);
    // the ranges are the applied ones
    assert!(call(
        &mut c,
        &["CONFIG", "SET", "session.max-registry-groups", "0"]
    )
    .is_err());
    assert!(call(
        &mut c,
        &["CONFIG", "SET", "session.max-registry-memory", "1023"]
    )
    .is_err());
}

#[test]
fn group_list_info_drop_help_replicate_and_deliver_only_new_ones() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    join(&mut p, "s", &["a", "b"]);
    ok(&mut p, &["SESSION.NOTIFYGROUP", "a", "a1", "p"]);
    ok(&mut p, &["SESSION.NOTIFYGROUP", "a", "a2", "p"]);
    ok(&mut p, &["SESSION.NOTIFYGROUP", "b", "b1", "p"]);
    assert_eq!(
        strings(ok(&mut p, &["SESSION.GROUP", "LIST"])),
        vec!["a", "b"]
    );
    let info = pairs(ok(&mut p, &["SESSION.GROUP", "INFO", "a"]));
    let field = |name: &str| -> i64 {
        info.iter()
            .find(|(k, _)| bytes(k) == name.as_bytes())
            .map(|(_, v)| match v {
                Value::Int(n) => *n,
                other => panic!("{other:?}"),
            })
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(field("notifications"), 2);
    assert!(field("memory") > 0);
    assert!(field("last_seq") > field("first_seq"));
    assert_eq!(
        err(&mut p, &["SESSION.GROUP", "INFO", "zzz"]),
        "ERR no such group"
    );
    assert_eq!(int(ok(&mut p, &["SESSION.GROUP", "DROP", "a"])), 1);
    assert_eq!(int(ok(&mut p, &["SESSION.GROUP", "DROP", "a"])), 0);
    assert_eq!(strings(ok(&mut p, &["SESSION.GROUP", "LIST"])), vec!["b"]);
    assert_eq!(touch(&mut p, "s", &[] as &[&str])["pending"], 1);
    // the drop reached the replica as itself
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "60000"])), 1);
    assert_eq!(strings(ok(&mut r, &["SESSION.GROUP", "LIST"])), vec!["b"]);
    assert_eq!(digest(&mut p), digest(&mut r));
    // a group published to again delivers its new notification, and never a dropped one
    ok(&mut p, &["SESSION.NOTIFYGROUP", "a", "a3", "p"]);
    assert_eq!(inbox(&mut p, &["s"]), vec!["b1", "a3"]);
    assert!(inbox(&mut p, &["s"]).is_empty());
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "60000"])), 1);
    assert_eq!(digest(&mut p), digest(&mut r));
    // HELP, as Redis's own containers have it; the "Try ... HELP" of an unknown subcommand is true
    for container in ["SESSION.GROUP", "SESSION.CATALOG"] {
        let lines = strings(ok(&mut p, &[container, "HELP"]));
        assert!(
            lines[0].starts_with(&format!("{container} <subcommand>")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l == "HELP"), "{lines:?}");
        let e = err(&mut p, &[container, "BOGUS"]);
        assert!(
            e.contains(&format!("Try {container} HELP")) || e.contains("HELP"),
            "{e}"
        );
        let docs = ok(
            &mut p,
            &[
                "COMMAND",
                "DOCS",
                &format!("{}|help", container.to_lowercase()),
            ],
        );
        assert!(
            matches!(&docs, Value::Array(a) if !a.is_empty()),
            "{docs:?}"
        );
    }
    let drop_docs = ok(&mut p, &["COMMAND", "DOCS", "session.group|drop"]);
    assert!(
        matches!(&drop_docs, Value::Array(a) if !a.is_empty()),
        "{drop_docs:?}"
    );
}

#[test]
fn flushall_clears_the_registry_on_primary_replica_and_aof_flushdb_does_not() {
    let mut primary = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let replica = Server::replica_of(&primary);
    let (mut p, mut r) = (primary.conn(), replica.conn());
    ok(
        &mut p,
        &["SESSION.CATALOG", "ADD", "news", "i1", "SCORE", "1"],
    );
    ok(&mut p, &["SESSION.NOTIFYGROUP", "g", "old", "p"]);
    join(&mut p, "s", &["g"]);
    ok(&mut p, &["FLUSHDB"]);
    assert_eq!(
        (stat(&mut p, "catalogs"), stat(&mut p, "groups")),
        (1, 1),
        "FLUSHDB keeps it"
    );
    ok(&mut p, &["FLUSHALL"]);
    assert_eq!(
        (
            stat(&mut p, "catalogs"),
            stat(&mut p, "groups"),
            stat(&mut p, "live_notifications")
        ),
        (0, 0, 0)
    );
    assert_eq!(stat(&mut p, "registry_group_memory_bytes"), 0);
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "60000"])), 1);
    assert_eq!((stat(&mut r, "catalogs"), stat(&mut r, "groups")), (0, 0));
    // what comes after the flush lives on, and a new member gets only the new notification
    ok(&mut p, &["SESSION.NOTIFYGROUP", "g", "new", "p"]);
    join(&mut p, "s", &["g"]);
    assert_eq!(inbox(&mut p, &["s", "PEEK"]), vec!["new"]);
    assert_eq!(int(ok(&mut p, &["WAIT", "1", "60000"])), 1);
    assert_eq!(strings(ok(&mut r, &["SESSION.GROUP", "LIST"])), vec!["g"]);
    assert_eq!(digest(&mut p), digest(&mut r));
    // the AOF replays the flush at the same point
    primary.restart();
    let mut p = primary.conn();
    assert_eq!((stat(&mut p, "catalogs"), stat(&mut p, "groups")), (0, 1));
    assert_eq!(inbox(&mut p, &["s", "PEEK"]), vec!["new"]);
}

#[test]
fn pending_and_inbox_do_not_walk_other_groups() {
    // Many groups in the registry, the session in two of them: TOUCH's pending count and INBOX
    // look up the session's own groups (a B-tree lookup each) and binary-search their cursors.
    let groups: usize = std::env::var("HARDENING_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(
        &mut c,
        "session.max-registry-groups",
        &(groups + 2).to_string(),
    );
    let mut pipe = redis::pipe();
    for i in 0..groups {
        pipe.cmd("SESSION.NOTIFYGROUP")
            .arg(format!("other{i}"))
            .arg("n")
            .arg("p")
            .ignore();
    }
    let () = pipe.query(&mut c).expect("publish");
    join(&mut c, "s", &["mine1", "mine2"]);
    ok(&mut c, &["SESSION.NOTIFYGROUP", "mine2", "x", "p"]);
    ok(&mut c, &["SESSION.NOTIFYGROUP", "mine1", "y", "p"]);
    assert_eq!(stat(&mut c, "groups"), groups as i64 + 2);
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    for _ in 0..100 {
        assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], 2);
        assert_eq!(inbox(&mut c, &["s", "COUNT", "1", "PEEK"]), vec!["x"]);
    }
    eprintln!(
        "{groups} groups: TOUCH {} INBOX {}",
        usec_per_call(&mut c, "session.touch"),
        usec_per_call(&mut c, "session.inbox")
    );
    assert_eq!(inbox(&mut c, &["s"]), vec!["x", "y"]);
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], 0);
}

#[test]
fn count_stops_the_walk_in_big_groups() {
    // A session in 7 long groups: INBOX COUNT 1 returns the oldest undelivered one, TOUCH's count
    // is exact, and delivery moves the cursors so the next call starts after them.
    let per_group: usize = std::env::var("HARDENING_PER_GROUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(
        &mut c,
        "session.max-notifications",
        &per_group.max(1).to_string(),
    );
    let names: Vec<String> = (0..7).map(|g| format!("big{g}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    join(&mut c, "s", &refs);
    let mut pipe = redis::pipe();
    for i in 0..per_group {
        for g in &names {
            pipe.cmd("SESSION.NOTIFYGROUP")
                .arg(g)
                .arg(format!("{g}:{i}"))
                .arg("p")
                .ignore();
        }
        if i % 1000 == 999 {
            let () = pipe.query(&mut c).expect("publish");
            pipe = redis::pipe();
        }
    }
    let () = pipe.query(&mut c).expect("publish");
    let total = 7 * per_group as i64;
    assert_eq!(stat(&mut c, "live_notifications"), total);
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    for _ in 0..20 {
        assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], total);
        assert_eq!(inbox(&mut c, &["s", "COUNT", "1", "PEEK"]), vec!["big0:0"]);
    }
    eprintln!(
        "7 x {per_group}: TOUCH {} INBOX COUNT 1 PEEK {}",
        usec_per_call(&mut c, "session.touch"),
        usec_per_call(&mut c, "session.inbox")
    );
    assert_eq!(
        inbox(&mut c, &["s", "COUNT", "3"]),
        vec!["big0:0", "big1:0", "big2:0"]
    );
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], total - 3);
    assert_eq!(
        inbox(&mut c, &["s", "COUNT", "5"]),
        vec!["big3:0", "big4:0", "big5:0", "big6:0", "big0:1"]
    );
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], total - 8);
}

#[test]
fn sessions_page_with_a_cursor_and_revoke_deletes_in_bounded_steps() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let (mut c, mut r) = (primary.conn(), replica.conn());
    let n = 250;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SESSION.TOUCH")
            .arg(format!("s{i:04}"))
            .arg("USER")
            .arg("alice")
            .ignore();
    }
    let () = pipe.query(&mut c).expect("touch");
    // the old form still lists everything
    assert_eq!(strings(ok(&mut c, &["SESSION.SESSIONS", "alice"])).len(), n);
    // pages of 100 in key order, then cursor 0
    let mut cursor = "0".to_string();
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let Value::Array(reply) = ok(
            &mut c,
            &[
                "SESSION.SESSIONS",
                "alice",
                "CURSOR",
                &cursor,
                "COUNT",
                "100",
            ],
        ) else {
            panic!("an array")
        };
        cursor = String::from_utf8_lossy(&bytes(&reply[0])).into_owned();
        let page = strings(reply[1].clone());
        assert!(page.len() <= 100);
        listed.extend(page);
        pages += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    assert_eq!(listed, expected);
    assert_eq!(
        err(&mut c, &["SESSION.SESSIONS", "alice", "CURSOR", "bogus"]),
        "ERR invalid cursor"
    );
    assert!(err(&mut c, &["SESSION.SESSIONS", "alice", "COUNT", "0"]).starts_with("ERR"));
    // REVOKE COUNT: at most COUNT per call, [deleted, remaining]
    let step = |c: &mut Connection| -> (i64, i64) {
        let Value::Array(v) = ok(c, &["SESSION.REVOKE", "alice", "COUNT", "100"]) else {
            panic!("an array")
        };
        (int(v[0].clone()), int(v[1].clone()))
    };
    assert_eq!(step(&mut c), (100, 150));
    assert!(!exists(&mut c, "s0000") && exists(&mut c, "s0100"));
    assert_eq!(step(&mut c), (100, 50));
    assert_eq!(step(&mut c), (50, 0));
    assert_eq!(step(&mut c), (0, 0));
    assert_eq!(int(ok(&mut c, &["DBSIZE"])), 0);
    assert_eq!(int(ok(&mut c, &["WAIT", "1", "60000"])), 1);
    assert_eq!(int(ok(&mut r, &["DBSIZE"])), 0);
    // the old form still deletes everything at once
    touch(&mut c, "t1", &["USER", "bob"]);
    touch(&mut c, "t2", &["USER", "bob"]);
    assert_eq!(ok(&mut c, &["SESSION.REVOKE", "bob"]), Value::Int(2));
}
