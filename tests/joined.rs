//! Per-publication join restriction (issue 21's read state): `SESSION.NOTIFYGROUP ...
//! [JOINEDBEFORE ms|NOW] [JOINEDAFTER ms]` reaches only members whose join time is strictly
//! before / at or after the bound. An explicit membership's join time is the time of its first
//! `ENRICH ... JOIN`; a derived segment's is the session's creation time. The restriction lives on
//! the notification: replicated as absolute times, kept by DEBUG RELOAD and an AOF rewrite;
//! join times live in the session (DUMP/RESTORE). And `INBOX ... PEEK` lists the unread ones.
//!
//! Times are explicit (`AT`, in the recent past) so that no test depends on two commands falling
//! in different milliseconds.

mod common;

use common::cluster::Cluster;
use common::*;
use redis::{Connection, Value};

/// A base time a minute ago: `AT` values after it are in the past, never refused as future.
fn base() -> i64 {
    now_ms() - 120_000
}

/// The ids of an INBOX reply, in order.
fn ids(reply: Value) -> Vec<String> {
    let Value::Array(items) = reply else {
        panic!("INBOX replied {reply:?}")
    };
    items
        .into_iter()
        .map(|item| {
            let id = pairs(item)
                .into_iter()
                .find(|(k, _)| bytes(k) == b"id")
                .expect("an id")
                .1;
            String::from_utf8_lossy(&bytes(&id)).into_owned()
        })
        .collect()
}

/// (id, delivered) of an `INBOX key PEEK` reply.
fn peek(c: &mut Connection, key: &str) -> Vec<(String, i64)> {
    let Value::Array(items) = ok(c, &["SESSION.INBOX", key, "PEEK"]) else {
        panic!("INBOX PEEK reply");
    };
    items
        .into_iter()
        .map(|item| {
            let p = pairs(item);
            let names: Vec<Vec<u8>> = p.iter().map(|(n, _)| bytes(n)).collect();
            assert_eq!(
                names,
                [
                    &b"group"[..],
                    b"id",
                    b"payload",
                    b"published_ms",
                    b"delivered"
                ]
            );
            let Value::Int(d) = p[4].1 else {
                panic!("delivered is not an integer")
            };
            (String::from_utf8_lossy(&bytes(&p[1].1)).into_owned(), d)
        })
        .collect()
}

fn inbox(c: &mut Connection, key: &str) -> Vec<String> {
    ids(ok(c, &["SESSION.INBOX", key]))
}

fn pending(c: &mut Connection, key: &str) -> i64 {
    touch(c, key, &[] as &[&str])["pending"]
}

/// A session created at `created` (TOUCH ... AT) that joins `group` at `joined` (ENRICH ... AT).
fn member(c: &mut Connection, key: &str, group: &str, created: i64, joined: i64) {
    touch(c, key, &["EVENT", "home", "AT", &created.to_string()]);
    ok(
        c,
        &[
            "SESSION.ENRICH",
            key,
            "JOIN",
            "1",
            group,
            "AT",
            &joined.to_string(),
        ],
    );
}

fn publish(c: &mut Connection, group: &str, id: &str, at: i64, extra: &[&str]) {
    let at = at.to_string();
    let mut args = vec!["SESSION.NOTIFYGROUP", group, id, "body", "AT", &at];
    args.extend_from_slice(extra);
    assert_eq!(ok(c, &args), Value::Int(1), "{args:?}");
}

fn strs(list: &[(String, i64)]) -> Vec<(&str, i64)> {
    list.iter().map(|(s, d)| (s.as_str(), *d)).collect()
}

/// `JOINEDBEFORE NOW` reaches a member that joined before the publication, not one that joins
/// after it (at TOUCH's `pending`, INBOX and PEEK); the member that joined after still receives
/// the unrestricted notifications around it, and exactly once.
#[test]
fn joinedbefore_now_reaches_members_that_joined_before_only() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t = base();
    member(&mut c, "early", "g:deals", t, t + 10);
    publish(&mut c, "g:deals", "open", t + 15, &[]);
    publish(
        &mut c,
        "g:deals",
        "members",
        t + 20,
        &["JOINEDBEFORE", "NOW"],
    );
    member(&mut c, "late", "g:deals", t, t + 30);
    // the same millisecond as a join is not "before" it
    member(&mut c, "same", "g:deals", t, t + 20);
    publish(&mut c, "g:deals", "after", t + 40, &[]);

    assert_eq!(pending(&mut c, "early"), 3);
    assert_eq!(pending(&mut c, "late"), 2);
    assert_eq!(pending(&mut c, "same"), 2);
    assert_eq!(
        strs(&peek(&mut c, "late")),
        [("open", 0), ("after", 0)],
        "PEEK never lists what the restriction refuses"
    );
    assert_eq!(inbox(&mut c, "early"), ["open", "members", "after"]);
    assert_eq!(inbox(&mut c, "late"), ["open", "after"]);
    assert_eq!(inbox(&mut c, "same"), ["open", "after"]);
    for k in ["early", "late", "same"] {
        assert_eq!(pending(&mut c, k), 0, "{k}");
        assert!(inbox(&mut c, k).is_empty(), "{k}: exactly once");
    }
    // the refused one cannot be acknowledged (it was never delivered)
    assert_eq!(
        ok(
            &mut c,
            &["SESSION.ACK", "late", "g:deals", "IDS", "1", "members"]
        ),
        Value::Int(0)
    );
    // re-joining keeps the first join time
    ok(
        &mut c,
        &[
            "SESSION.ENRICH",
            "late",
            "JOIN",
            "1",
            "g:deals",
            "AT",
            &(t + 90).to_string(),
        ],
    );
    let joined = &session_info(&mut c, "late")["joined"];
    assert_eq!(
        joined,
        &serde_json::json!([{"group": "g:deals", "joined_ms": t + 30}])
    );
}

/// `JOINEDAFTER` reaches members that joined at or after it; with `JOINEDBEFORE` a window.
#[test]
fn joinedafter_and_a_window() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t = base();
    member(&mut c, "a", "g", t, t + 10);
    member(&mut c, "b", "g", t, t + 50);
    member(&mut c, "c", "g", t, t + 100);
    let after = (t + 50).to_string();
    let before = (t + 100).to_string();
    publish(&mut c, "g", "since50", t + 200, &["JOINEDAFTER", &after]);
    publish(
        &mut c,
        "g",
        "window",
        t + 210,
        &["JOINEDAFTER", &after, "JOINEDBEFORE", &before],
    );
    assert_eq!(
        (
            pending(&mut c, "a"),
            pending(&mut c, "b"),
            pending(&mut c, "c")
        ),
        (0, 2, 1)
    );
    assert!(inbox(&mut c, "a").is_empty());
    assert_eq!(inbox(&mut c, "b"), ["since50", "window"]);
    assert_eq!(inbox(&mut c, "c"), ["since50"]);
}

/// A derived segment has no recorded join: its join time is the session's creation time. An
/// explicit membership's recorded time wins over it, except that explicitly joining a segment the
/// session qualifies for at that moment records the derived time (it was already a member).
#[test]
fn a_derived_segment_joins_at_creation_time() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t = base();
    // "new": at most one event
    touch(&mut c, "old", &["EVENT", "x", "AT", &t.to_string()]);
    touch(
        &mut c,
        "young",
        &["EVENT", "x", "AT", &(t + 100).to_string()],
    );
    // already in "new" by its activity when it joins explicitly: it keeps the derived join time
    touch(&mut c, "explicit", &["EVENT", "x", "AT", &t.to_string()]);
    // two events: not "new" by its activity, so its explicit join time is the time of the JOIN
    for item in ["x", "y"] {
        touch(&mut c, "joiner", &["EVENT", item, "AT", &t.to_string()]);
    }
    for key in ["explicit", "joiner"] {
        ok(
            &mut c,
            &[
                "SESSION.ENRICH",
                key,
                "JOIN",
                "1",
                "new",
                "AT",
                &(t + 200).to_string(),
            ],
        );
    }
    publish(
        &mut c,
        "new",
        "welcome",
        t + 300,
        &["JOINEDBEFORE", &(t + 50).to_string()],
    );
    assert_eq!(pending(&mut c, "old"), 1);
    assert_eq!(pending(&mut c, "young"), 0);
    assert_eq!(
        pending(&mut c, "explicit"),
        1,
        "joining a segment it was already in keeps the derived (creation) time"
    );
    assert_eq!(
        pending(&mut c, "joiner"),
        0,
        "an explicit join records the time of the JOIN"
    );
    assert_eq!(inbox(&mut c, "old"), ["welcome"]);
    assert!(inbox(&mut c, "young").is_empty());
    assert_eq!(inbox(&mut c, "explicit"), ["welcome"]);
    assert!(inbox(&mut c, "joiner").is_empty());
}

/// Out-of-range values, an empty window, a repeated or valueless option: refused, nothing
/// published, nothing changed.
#[test]
fn bad_restrictions_are_refused_and_change_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    member(&mut c, "s", "g", base(), base());
    let max = "16725225600000";
    let beyond = "16725225600001";
    for (extra, expected) in [
        (
            &["JOINEDBEFORE", "-1"][..],
            "ERR JOINEDBEFORE must be between",
        ),
        (
            &["JOINEDBEFORE", beyond],
            "ERR JOINEDBEFORE must be between",
        ),
        (&["JOINEDAFTER", beyond], "ERR JOINEDAFTER must be between"),
        (&["JOINEDAFTER", "-5"], "ERR JOINEDAFTER must be between"),
        (&["JOINEDBEFORE", "soon"], "ERR value is not an integer"),
        (&["JOINEDBEFORE"], "ERR syntax error"),
        (
            &["JOINEDBEFORE", "1", "JOINEDBEFORE", "2"],
            "ERR syntax error",
        ),
        (
            &["JOINEDAFTER", "1", "JOINEDAFTER", "2"],
            "ERR syntax error",
        ),
        (
            &["JOINEDBEFORE", "0"],
            "ERR JOINEDAFTER must be before JOINEDBEFORE",
        ),
        (
            &["JOINEDAFTER", "100", "JOINEDBEFORE", "100"],
            "ERR JOINEDAFTER must be before JOINEDBEFORE",
        ),
        (
            &["JOINEDAFTER", max, "JOINEDBEFORE", "NOW"],
            "ERR JOINEDAFTER must be before JOINEDBEFORE",
        ),
    ] {
        let mut args = vec!["SESSION.NOTIFYGROUP", "g", "n", "p"];
        args.extend_from_slice(extra);
        let e = err(&mut c, &args);
        assert!(e.starts_with(expected), "{extra:?}: {e}");
    }
    let groups: Vec<Vec<u8>> = command(&["SESSION.GROUP", "LIST"]).query(&mut c).unwrap();
    assert!(groups.is_empty(), "nothing was published");
    assert_eq!(pending(&mut c, "s"), 0);
    // the bounds of the range are accepted
    ok(
        &mut c,
        &["SESSION.NOTIFYGROUP", "g", "n1", "p", "JOINEDBEFORE", max],
    );
    ok(
        &mut c,
        &["SESSION.NOTIFYGROUP", "g", "n2", "p", "JOINEDAFTER", "0"],
    );
    assert_eq!(pending(&mut c, "s"), 2);
}

/// The restriction and the join times replicate as effects (NOW as the publication's absolute
/// time): the replica ends with the same DEBUG DIGEST, and once promoted it delivers exactly
/// what the primary would. DEBUG RELOAD, DUMP/RESTORE of a session and a preamble-less AOF
/// rewrite keep them.
#[test]
fn the_restriction_survives_replication_reload_restore_and_aof_rewrite() {
    let mut primary = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    let t = base();
    member(&mut p, "early", "g", t, t + 10);
    publish(&mut p, "g", "members", t + 20, &["JOINEDBEFORE", "NOW"]);
    member(&mut p, "late", "g", t, t + 30);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(digest(&mut p), digest(&mut r), "the replica agrees");
    assert_eq!(
        session_info(&mut r, "late")["joined"],
        serde_json::json!([{"group": "g", "joined_ms": t + 30}])
    );

    let check = |c: &mut Connection, what: &str| {
        assert_eq!(pending(c, "early"), 1, "{what}");
        assert_eq!(pending(c, "late"), 0, "{what}");
        assert_eq!(strs(&peek(c, "early")), [("members", 0)], "{what}");
        assert!(peek(c, "late").is_empty(), "{what}");
    };
    // the replica, promoted, delivers as the primary does
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    check(&mut r, "promoted replica");
    assert_eq!(inbox(&mut r, "early"), ["members"]);
    assert!(inbox(&mut r, "late").is_empty());

    check(&mut p, "primary");
    ok(&mut p, &["DEBUG", "RELOAD"]);
    check(&mut p, "after DEBUG RELOAD");

    // DUMP/RESTORE of a session keeps its join time
    let Value::BulkString(dump) = ok(&mut p, &["DUMP", "late"]) else {
        panic!("DUMP")
    };
    let _: () = redis::cmd("RESTORE")
        .arg("late:copy")
        .arg(0)
        .arg(dump)
        .query(&mut p)
        .expect("RESTORE");
    assert_eq!(pending(&mut p, "late:copy"), 0);
    assert!(peek(&mut p, "late:copy").is_empty());

    // a preamble-less AOF rewrite writes the notification with its restriction
    ok(&mut p, &["BGREWRITEAOF"]);
    wait_for_aof_rewrite(&mut p);
    primary.restart();
    let mut p = primary.conn();
    check(&mut p, "after an AOF rewrite and restart");
}

/// `INBOX key PEEK` lists the unread ones, delivered or not, oldest first, each with
/// `delivered`, and marks nothing (`UNREAD` is its synonym); INBOX without PEEK is unchanged.
#[test]
fn peek_lists_unread_and_marks_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t = base();
    member(&mut c, "s", "g", t, t);
    publish(&mut c, "g", "n1", t + 1, &[]);
    publish(&mut c, "g", "n2", t + 2, &[]);
    assert_eq!(strs(&peek(&mut c, "s")), [("n1", 0), ("n2", 0)]);
    assert_eq!(inbox(&mut c, "s"), ["n1", "n2"]);
    publish(&mut c, "g", "n3", t + 3, &[]);
    let listed = peek(&mut c, "s");
    assert_eq!(strs(&listed), [("n1", 1), ("n2", 1), ("n3", 0)]);
    assert_eq!(peek(&mut c, "s"), listed, "PEEK marks nothing");
    assert_eq!(pending(&mut c, "s"), 1);
    let Value::Array(unread) = ok(&mut c, &["SESSION.INBOX", "s", "UNREAD"]) else {
        panic!("UNREAD")
    };
    assert_eq!(
        Value::Array(unread),
        ok(&mut c, &["SESSION.INBOX", "s", "PEEK"]),
        "UNREAD is PEEK"
    );
    assert_eq!(
        ok(&mut c, &["SESSION.ACK", "s", "g", "UPTO", "n1"]),
        Value::Int(1)
    );
    assert_eq!(strs(&peek(&mut c, "s")), [("n2", 1), ("n3", 0)]);
    let head = ok(&mut c, &["SESSION.INBOX", "s", "PEEK", "COUNT", "1"]);
    assert_eq!(ids(head), ["n2"]);
    assert_eq!(
        inbox(&mut c, "s"),
        ["n3"],
        "INBOX delivers only the undelivered"
    );
    assert!(err(&mut c, &["SESSION.INBOX", "s", "PEEK", "UNREAD"]).starts_with("ERR syntax"));
}

/// In a cluster, a restricted notification published on one primary reaches, on the others,
/// only the members its restriction admits (the restriction travels over the cluster bus).
#[test]
fn a_restricted_notification_reaches_the_right_sessions_on_another_primary() {
    let cluster = Cluster::start();
    let t = base();
    let early: Vec<String> = (1..3)
        .flat_map(|n| cluster.keys_on(n, "early", 1))
        .collect();
    let late: Vec<String> = (1..3).flat_map(|n| cluster.keys_on(n, "late", 1)).collect();
    for (keys, joined) in [(&early, t + 10), (&late, t + 30)] {
        for key in keys {
            member(
                &mut cluster.conn(cluster.owner_of(key)),
                key,
                "beta",
                t,
                joined,
            );
        }
    }
    publish(
        &mut cluster.conn(0),
        "beta",
        "members",
        t + 20,
        &["JOINEDBEFORE", "NOW"],
    );
    publish(&mut cluster.conn(0), "beta", "all", t + 40, &[]);
    cluster.wait_converged_to("beta with both", |v| {
        v.group("beta", "notifications") == Some(2)
    });
    for key in &early {
        let mut c = cluster.conn(cluster.owner_of(key));
        assert_eq!(pending(&mut c, key), 2, "{key}");
        assert_eq!(inbox(&mut c, key), ["members", "all"], "{key}");
    }
    for key in &late {
        let mut c = cluster.conn(cluster.owner_of(key));
        assert_eq!(pending(&mut c, key), 1, "{key}");
        assert_eq!(inbox(&mut c, key), ["all"], "{key}");
    }
}
