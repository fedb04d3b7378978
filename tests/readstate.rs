//! Read state of group notifications (issue 21): delivered vs read. `SESSION.ACK` marks delivered
//! notifications read, per id (`IDS`) or up to an id (`UPTO`), XACK-style (undelivered, unknown or
//! expired ids are ignored); `INBOX ... PEEK` (or `UNREAD`) lists the unread ones, delivered or not; TOUCH's
//! `pending` stays "not yet delivered". Replicated as effects, kept by DEBUG RELOAD and DUMP.

mod common;

use common::*;
use redis::{Connection, Value};

/// (id, delivered) of each entry of an INBOX UNREAD reply.
fn unread(c: &mut Connection, key: &str) -> Vec<(String, i64)> {
    let Value::Array(items) = ok(c, &["SESSION.INBOX", key, "UNREAD"]) else {
        panic!("INBOX UNREAD reply");
    };
    items
        .into_iter()
        .map(|item| {
            let pairs = pairs(item);
            let names: Vec<Vec<u8>> = pairs.iter().map(|(n, _)| bytes(n)).collect();
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
            let id = String::from_utf8(bytes(&pairs[1].1)).expect("UTF-8");
            let Value::Int(delivered) = pairs[4].1 else {
                panic!("delivered is not an integer")
            };
            (id, delivered)
        })
        .collect()
}

fn inbox(c: &mut Connection, key: &str) -> usize {
    let Value::Array(items) = ok(c, &["SESSION.INBOX", key]) else {
        panic!("INBOX reply");
    };
    items.len()
}

fn ack(c: &mut Connection, args: &[&str]) -> i64 {
    let mut full = vec!["SESSION.ACK"];
    full.extend_from_slice(args);
    match ok(c, &full) {
        Value::Int(n) => n,
        other => panic!("ACK replied {other:?}"),
    }
}

fn setup(c: &mut Connection, key: &str, notes: &[&str]) {
    touch(c, key, &["EVENT", "home"]);
    ok(c, &["SESSION.ENRICH", key, "JOIN", "1", "g:news"]);
    for id in notes {
        assert_eq!(
            ok(c, &["SESSION.NOTIFYGROUP", "g:news", id, "body"]),
            Value::Int(1)
        );
    }
}

fn strs(list: &[(String, i64)]) -> Vec<(&str, i64)> {
    list.iter().map(|(s, d)| (s.as_str(), *d)).collect()
}

#[test]
fn ack_per_id_and_up_to_and_unread_lists_what_is_left() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    setup(&mut c, "s", &["n1", "n2", "n3", "n4"]);
    // nothing delivered: all unread, none acknowledgeable (XACK ignores what is not pending)
    assert_eq!(
        strs(&unread(&mut c, "s")),
        [("n1", 0), ("n2", 0), ("n3", 0), ("n4", 0)]
    );
    assert_eq!(ack(&mut c, &["s", "g:news", "IDS", "1", "n1"]), 0);
    assert_eq!(ack(&mut c, &["s", "g:news", "UPTO", "n4"]), 0);
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], 4);

    assert_eq!(inbox(&mut c, "s"), 4);
    assert_eq!(
        touch(&mut c, "s", &[] as &[&str])["pending"],
        0,
        "all delivered"
    );
    assert_eq!(
        strs(&unread(&mut c, "s")),
        [("n1", 1), ("n2", 1), ("n3", 1), ("n4", 1)],
        "delivered is not read"
    );
    // per id (unknown ids ignored), then again: nothing new
    assert_eq!(
        ack(&mut c, &["s", "g:news", "IDS", "3", "n3", "missing", "n1"]),
        2
    );
    assert_eq!(ack(&mut c, &["s", "g:news", "IDS", "1", "n3"]), 0);
    assert_eq!(strs(&unread(&mut c, "s")), [("n2", 1), ("n4", 1)]);
    // up to: counts only the newly read
    assert_eq!(ack(&mut c, &["s", "g:news", "UPTO", "n3"]), 1);
    assert_eq!(strs(&unread(&mut c, "s")), [("n4", 1)]);
    // a new one: unread and undelivered; UPTO it marks only what was delivered
    ok(&mut c, &["SESSION.NOTIFYGROUP", "g:news", "n5", "body"]);
    assert_eq!(strs(&unread(&mut c, "s")), [("n4", 1), ("n5", 0)]);
    assert_eq!(ack(&mut c, &["s", "g:news", "UPTO", "n5"]), 1);
    assert_eq!(strs(&unread(&mut c, "s")), [("n5", 0)]);
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["pending"], 1);

    // bad input changes nothing
    for bad in [
        &["s", "g:news"][..],
        &["s", "g:news", "UPTO"],
        &["s", "g:news", "IDS", "2", "n1"],
        &["s", "g:news", "UPTO", "n1", "IDS", "1", "n2"],
        &["s", "g:news", "FOO", "n1"],
    ] {
        let mut full = vec!["SESSION.ACK"];
        full.extend_from_slice(bad);
        let e = err(&mut c, &full);
        assert!(e.starts_with("ERR") || e.contains("wrong number"), "{e}");
    }
    // a missing session or group: 0
    assert_eq!(ack(&mut c, &["nobody", "g:news", "UPTO", "n1"]), 0);
    assert_eq!(ack(&mut c, &["s", "g:none", "UPTO", "n1"]), 0);
    // PEEK and UNREAD together are refused
    assert!(err(&mut c, &["SESSION.INBOX", "s", "PEEK", "UNREAD"]).starts_with("ERR"));
    // THRESHOLDS on INBOX is the primary's
    assert!(err(
        &mut c,
        &["SESSION.INBOX", "s", "THRESHOLDS", "0.5", "1", "1", "0.5"]
    )
    .starts_with("ERR"));
}

#[test]
fn read_state_survives_reload_dump_and_replication() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    setup(&mut p, "s", &["n1", "n2", "n3", "n4", "n5"]);
    let digest = |c: &mut Connection| ok(c, &["DEBUG", "DIGEST-VALUE", "s"]);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(digest(&mut p), digest(&mut r), "DBG setup");
    assert_eq!(inbox(&mut p, "s"), 5);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(digest(&mut p), digest(&mut r), "DBG inbox");
    assert_eq!(ack(&mut p, &["s", "g:news", "UPTO", "n2"]), 2);
    assert_eq!(ack(&mut p, &["s", "g:news", "IDS", "1", "n4"]), 1);
    let expected = [("n3", 1), ("n5", 1)];
    assert_eq!(strs(&unread(&mut p, "s")), expected);

    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(
        bytes(&ok(&mut p, &["DUMP", "s"])),
        bytes(&ok(&mut r, &["DUMP", "s"]))
    );
    assert_eq!(digest(&mut p), digest(&mut r), "the replica agrees");
    assert_eq!(ok(&mut p, &["DUMP", "s"]), ok(&mut r, &["DUMP", "s"]));

    let before = digest(&mut p);
    ok(&mut p, &["DEBUG", "RELOAD"]);
    assert_eq!(digest(&mut p), before, "DEBUG RELOAD keeps the read state");
    assert_eq!(strs(&unread(&mut p, "s")), expected);

    let Value::BulkString(dump) = ok(&mut p, &["DUMP", "s"]) else {
        panic!("DUMP")
    };
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(dump)
        .query(&mut p)
        .expect("RESTORE");
    assert_eq!(strs(&unread(&mut p, "copy")), expected);
}

fn publish(c: &mut Connection, group: &str, id: &str) {
    assert_eq!(
        ok(c, &["SESSION.NOTIFYGROUP", group, id, "payload"]),
        Value::Int(1)
    );
}

/// `ENRICH ... JOIN ... NEWONLY`: a group joined "from now on" delivers only what is published
/// after the join; without it a join receives the group's live notifications, as before. A
/// re-join with NEWONLY never re-delivers (the cursor only moves forward); the replica agrees.
#[test]
fn join_newonly_delivers_only_what_is_published_after_it() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    for k in ["old", "new"] {
        touch(&mut p, k, &["EVENT", "home"]);
    }
    publish(&mut p, "g:deals", "before1");
    publish(&mut p, "g:deals", "before2");
    ok(&mut p, &["SESSION.ENRICH", "old", "JOIN", "1", "g:deals"]);
    ok(
        &mut p,
        &["SESSION.ENRICH", "new", "JOIN", "1", "g:deals", "NEWONLY"],
    );
    assert_eq!(touch(&mut p, "old", &[] as &[&str])["pending"], 2);
    assert_eq!(touch(&mut p, "new", &[] as &[&str])["pending"], 0);
    publish(&mut p, "g:deals", "after");
    assert_eq!(touch(&mut p, "new", &[] as &[&str])["pending"], 1);
    // what INBOX would deliver: PEEK's entries with `delivered` 0
    let ids = |c: &mut Connection, k: &str| -> Vec<String> {
        let Value::Array(items) = ok(c, &["SESSION.INBOX", k, "PEEK"]) else {
            panic!("INBOX reply");
        };
        items
            .into_iter()
            .map(pairs)
            .filter(|p| p[4].1 == Value::Int(0))
            .map(|p| String::from_utf8(bytes(&p[1].1)).expect("UTF-8"))
            .collect()
    };
    assert_eq!(ids(&mut p, "new"), ["after"]);
    assert_eq!(ids(&mut p, "old"), ["before1", "before2", "after"]);

    // leave and join again with NEWONLY: nothing comes back, nothing is lost after
    assert_eq!(inbox(&mut p, "new"), 1);
    ok(&mut p, &["SESSION.ENRICH", "new", "LEAVE", "1", "g:deals"]);
    ok(
        &mut p,
        &["SESSION.ENRICH", "new", "JOIN", "1", "g:deals", "NEWONLY"],
    );
    assert_eq!(touch(&mut p, "new", &[] as &[&str])["pending"], 0);
    // NEWONLY for a group the session is already in changes nothing
    publish(&mut p, "g:deals", "later");
    ok(
        &mut p,
        &["SESSION.ENRICH", "new", "JOIN", "1", "g:deals", "NEWONLY"],
    );
    assert_eq!(ids(&mut p, "new"), ["later"]);

    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    for k in ["old", "new"] {
        assert_eq!(
            ok(&mut p, &["DEBUG", "DIGEST-VALUE", k]),
            ok(&mut r, &["DEBUG", "DIGEST-VALUE", k]),
            "{k}: the replica agrees"
        );
    }
    // NEWONLY qualifies a JOIN
    assert!(err(&mut p, &["SESSION.ENRICH", "new", "NEWONLY"]).starts_with("ERR syntax"));
}
