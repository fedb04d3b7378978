//! Derived segments evaluated where they are used (issue 21): a notification to `interest:x`,
//! `new`, ... reaches the sessions whose CURRENT activity qualifies, at TOUCH's `pending` and at
//! INBOX, without an ENRICH call; exactly once, across DUMP/RESTORE and on a replica whose own
//! segment configuration differs (the primary's rules travel with the replicated INBOX).

mod common;

use common::*;
use redis::{Connection, Value};

const HOCKEY: &str = "interest:hockey";

fn ids(reply: Value) -> Vec<String> {
    let Value::Array(items) = reply else {
        panic!("INBOX replied {reply:?}");
    };
    items
        .into_iter()
        .map(|item| {
            let pairs = pairs(item);
            let (_, id) = pairs
                .iter()
                .find(|(n, _)| bytes(n) == b"id")
                .expect("an id entry");
            String::from_utf8(bytes(id)).expect("UTF-8 id")
        })
        .collect()
}

fn inbox(c: &mut Connection, key: &str) -> Vec<String> {
    ids(ok(c, &["SESSION.INBOX", key]))
}

fn peek(c: &mut Connection, key: &str) -> Vec<String> {
    ids(ok(c, &["SESSION.INBOX", key, "PEEK"]))
}

fn notify(c: &mut Connection, group: &str, id: &str) {
    assert_eq!(
        ok(c, &["SESSION.NOTIFYGROUP", group, id, "payload"]),
        Value::Int(1)
    );
}

fn view(c: &mut Connection, key: &str, item: &str, category: &str) -> i64 {
    touch(c, key, &["EVENT", item, "CATEGORIES", "1", category])["pending"]
}

fn pending(c: &mut Connection, key: &str) -> i64 {
    touch(c, key, &[] as &[&str])["pending"]
}

#[test]
fn interest_segment_reaches_current_activity_exactly_once_without_enrich() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    view(&mut c, "fan", "game-1", "hockey");
    view(&mut c, "fan", "game-2", "hockey");
    notify(&mut c, HOCKEY, "h1");
    // no ENRICH: the views alone make the session a member
    assert_eq!(
        pending(&mut c, "fan"),
        1,
        "TOUCH pending counts the segment"
    );
    assert_eq!(peek(&mut c, "fan"), ["h1"]);
    assert_eq!(inbox(&mut c, "fan"), ["h1"]);
    assert!(inbox(&mut c, "fan").is_empty(), "delivered once");
    assert_eq!(pending(&mut c, "fan"), 0);

    // it stops qualifying: a new notification does not reach it
    for i in 0..20 {
        view(&mut c, "fan", &format!("match-{i}"), "tennis");
    }
    notify(&mut c, HOCKEY, "h2");
    assert_eq!(pending(&mut c, "fan"), 0, "no longer interest:hockey");
    assert!(inbox(&mut c, "fan").is_empty());

    // it qualifies again: h2 (still live) arrives, h1 never again
    for i in 0..80 {
        view(&mut c, "fan", &format!("game-b{i}"), "hockey");
    }
    assert_eq!(pending(&mut c, "fan"), 1);
    assert_eq!(inbox(&mut c, "fan"), ["h2"]);
    assert!(inbox(&mut c, "fan").is_empty());

    // a non-member never sees it
    view(&mut c, "other", "ball", "tennis");
    view(&mut c, "other", "ball-2", "tennis");
    assert!(inbox(&mut c, "other").is_empty());

    // ENRICH still stores its document with the same segment
    let Value::BulkString(doc) = ok(&mut c, &["SESSION.ENRICH", "fan"]) else {
        panic!("ENRICH reply")
    };
    let doc: serde_json::Value = serde_json::from_slice(&doc).expect("JSON");
    assert!(doc["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .any(|s| s == HOCKEY));
}

#[test]
fn lifecycle_segments_and_sessions_created_after_publication() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // published before the session exists: a session that is `new` while it lives receives it
    // (delivery goes to current members), deterministically, once
    notify(&mut c, "new", "welcome");
    touch(&mut c, "fresh", &["EVENT", "home"]);
    assert_eq!(pending(&mut c, "fresh"), 1);
    assert_eq!(inbox(&mut c, "fresh"), ["welcome"]);
    assert!(inbox(&mut c, "fresh").is_empty());
    // after a second event it is no longer `new`
    touch(&mut c, "fresh", &["EVENT", "page"]);
    notify(&mut c, "new", "welcome-2");
    assert_eq!(pending(&mut c, "fresh"), 0);
    touch(&mut c, "newer", &["EVENT", "home"]);
    assert_eq!(inbox(&mut c, "newer"), ["welcome", "welcome-2"]);

    // `dormant` follows the time INBOX is asked at, not an ENRICH
    config_set(&mut c, "session.dormant-after", "1");
    notify(&mut c, "dormant", "come-back");
    touch(&mut c, "fresh", &["EVENT", "page-2"]);
    assert!(
        peek(&mut c, "fresh").is_empty(),
        "not dormant right after an event"
    );
    wait_until(PATIENCE, "the session to become dormant", || {
        peek(&mut c, "fresh") == ["come-back"]
    });
    assert_eq!(inbox(&mut c, "fresh"), ["come-back"]);
}

#[test]
fn cursor_travels_with_dump_restore() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    view(&mut c, "fan", "game-1", "hockey");
    notify(&mut c, HOCKEY, "h1");
    assert_eq!(inbox(&mut c, "fan"), ["h1"]);
    let Value::BulkString(dump) = ok(&mut c, &["DUMP", "fan"]) else {
        panic!("DUMP")
    };
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(dump)
        .query(&mut c)
        .expect("RESTORE");
    assert!(inbox(&mut c, "copy").is_empty(), "the copy received h1 too");
    notify(&mut c, HOCKEY, "h2");
    assert_eq!(inbox(&mut c, "copy"), ["h2"]);
}

#[test]
fn replica_delivers_the_same_with_its_own_segment_configuration() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    // the replica's rules would put nobody in an interest segment: the primary's must travel
    config_set(&mut r, "session.interest-segment-weight", "1");
    view(&mut p, "fan", "game-1", "hockey");
    view(&mut p, "fan", "game-2", "tennis");
    view(&mut p, "fan", "game-3", "hockey");
    notify(&mut p, HOCKEY, "h1");
    notify(&mut p, "interest:tennis", "t1");
    assert_eq!(inbox(&mut p, "fan"), ["h1", "t1"]);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    let digest = |c: &mut Connection| ok(c, &["DEBUG", "DIGEST-VALUE", "fan"]);
    assert_eq!(digest(&mut p), digest(&mut r), "replica's cursors agree");
    let dump = |c: &mut Connection| ok(c, &["DUMP", "fan"]);
    assert_eq!(dump(&mut p), dump(&mut r));
}
