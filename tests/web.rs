//! What a web framework's session store needs (issue 17): `TOUCH ... WITHFIELDS` (load, record
//! and slide in one command), `REPLACE` (the whole field set, keeping the activity),
//! `session.max-session-size`, lifetimes in milliseconds (`PIDLE`/`PMAXAGE`), `ROTATE ...
//! CLEARFIELDS` (login keeps the activity) and `SESSION.UPGRADE` (a legacy string session becomes
//! a native one with its TTL), on RESP2 and RESP3, replicated as effects.

mod common;

use common::*;
use redis::{Connection, Value};

/// A TOUCH reply: its integers by name, and its `fields` array (None without one).
type TouchWithFields = (Vec<(String, i64)>, Option<Vec<Value>>);

/// The TOUCH reply's integers and its `fields` array (None without one).
fn touch_with_fields(c: &mut Connection, args: &[&[u8]]) -> Option<TouchWithFields> {
    let mut full: Vec<&[u8]> = vec![b"SESSION.TOUCH"];
    full.extend_from_slice(args);
    let reply = ok(c, &full);
    if reply == Value::Nil {
        return None;
    }
    let mut ints = Vec::new();
    let mut fields = None;
    for (name, value) in pairs(reply) {
        let name = String::from_utf8(bytes(&name)).expect("UTF-8 name");
        match (name.as_str(), value) {
            ("fields", Value::Array(items)) => fields = Some(items),
            ("fields", other) => panic!("fields is not an array: {other:?}"),
            (_, Value::Int(i)) => ints.push((name, i)),
            (_, other) => panic!("{name} is not an integer: {other:?}"),
        }
    }
    let names: Vec<&str> = ints.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, TOUCH_REPLY_NAMES, "the seven names stay, in order");
    Some((ints, fields))
}

fn int_of(ints: &[(String, i64)], name: &str) -> i64 {
    ints.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .expect(name)
}

fn bulk(b: &[u8]) -> Value {
    Value::BulkString(b.to_vec())
}

fn withfields_replies_the_same_on(c: &mut Connection) {
    let binary: &[u8] = b"\x00\xff\r\n";
    ok(
        c,
        &[
            &b"SESSION.TOUCH"[..],
            b"w",
            b"SET",
            b"2",
            b"a",
            b"1",
            b"b",
            binary,
        ],
    );
    // all fields, as a flat name/value array, with the event recorded in the same command
    let (ints, fields) =
        touch_with_fields(c, &[b"w", b"WITHFIELDS", b"EVENT", b"p1"]).expect("session");
    assert_eq!(int_of(&ints, "events"), 1);
    assert_eq!(
        fields,
        Some(vec![bulk(b"a"), bulk(b"1"), bulk(b"b"), bulk(binary)])
    );
    // named fields: one value each, nil where missing
    let (_, fields) =
        touch_with_fields(c, &[b"w", b"WITHFIELDS", b"2", b"b", b"zz", b"XX"]).expect("session");
    assert_eq!(fields, Some(vec![bulk(binary), Value::Nil]));
    // without WITHFIELDS the reply is the usual seven names
    let (_, fields) = touch_with_fields(c, &[b"w"]).expect("session");
    assert_eq!(fields, None);
    // XX on a missing key: nil, nothing created
    assert_eq!(
        touch_with_fields(c, &[b"missing", b"XX", b"WITHFIELDS", b"EVENT", b"p"]),
        None
    );
    assert!(!exists(c, "missing"));
    // a new session replies the fields it was created with
    let (ints, fields) =
        touch_with_fields(c, &[b"fresh", b"REPLACE", b"1", b"k", b"v", b"WITHFIELDS"])
            .expect("new");
    assert_eq!(int_of(&ints, "new"), 1);
    assert_eq!(fields, Some(vec![bulk(b"k"), bulk(b"v")]));
    ok(c, &["DEL", "w", "fresh"]);
}

#[test]
fn withfields_adds_a_flat_fields_array_in_resp2_and_resp3() {
    let server = Server::start(&[]);
    withfields_replies_the_same_on(&mut server.conn());
    withfields_replies_the_same_on(&mut server.conn_resp3());
}

#[test]
fn withfields_parses_strictly() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for (args, want) in [
        (&["WITHFIELDS", "WITHFIELDS"][..], "ERR syntax error"),
        (
            &["WITHFIELDS", "0"],
            "ERR WITHFIELDS count must be positive and match the arguments that follow",
        ),
        (
            &["WITHFIELDS", "3", "a"],
            "ERR WITHFIELDS count must be positive and match the arguments that follow",
        ),
        (
            &["REPLACE", "1", "a", "1", "SET", "1", "b", "2"],
            "ERR syntax error",
        ),
        (
            &["REPLACE", "1", "a", "1", "DEL", "1", "b"],
            "ERR syntax error",
        ),
        (
            &["REPLACE", "2", "a", "1"],
            "ERR REPLACE count must be positive and match the arguments that follow",
        ),
        (
            &["REPLACE", "-1"],
            "ERR REPLACE count must be positive and match the arguments that follow",
        ),
        (&["IDLE", "5", "PIDLE", "5000"], "ERR syntax error"),
        (
            &["PMAXAGE", "0"],
            "ERR PMAXAGE must be between 1 and 315360000000",
        ),
        (
            &["PIDLE", "x"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        let mut full = vec!["SESSION.TOUCH", "k"];
        full.extend_from_slice(args);
        assert_eq!(err(&mut c, &full), want, "{args:?}");
    }
    assert!(!exists(&mut c, "k"));
}

#[test]
fn replace_swaps_the_whole_field_set_and_keeps_the_activity() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(
        &mut c,
        "s",
        &[
            "SET",
            "3",
            "a",
            "1",
            "b",
            "2",
            "c",
            "3",
            "EVENT",
            "p1",
            "CATEGORIES",
            "1",
            "golf",
        ],
    );
    let before = session_info(&mut c, "s");
    let t = touch(&mut c, "s", &["REPLACE", "2", "x", "9", "a", "8"]);
    assert_eq!(t["events"], 1, "activity kept");
    let fields = get_all(&mut c, "s").expect("session");
    let want: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = [
        (b"a".to_vec(), b"8".to_vec()),
        (b"x".to_vec(), b"9".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(fields, want);
    let after = session_info(&mut c, "s");
    assert_eq!(
        after["activity"]["interests"],
        before["activity"]["interests"]
    );
    assert_eq!(
        ok(&mut c, &["SESSION.SEEN", "s", "p1"]),
        Value::Array(vec![Value::Int(1)])
    );
    // a repeated name: the last value wins
    touch(&mut c, "s", &["REPLACE", "2", "d", "1", "d", "2"]);
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "s", "d"]),
        Value::Array(vec![bulk(b"2")])
    );
    // REPLACE 0 clears every field; the session stays
    touch(&mut c, "s", &["REPLACE", "0"]);
    assert_eq!(get_all(&mut c, "s").map(|f| f.len()), Some(0));
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["events"], 1);
}

#[test]
fn the_session_size_limit_binds_replace_and_set() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let default: usize = ok_int(&mut c, "session.max-session-size");
    assert!(default >= 1 << 20, "default at least 1 MiB");
    // a 100 KiB express session stored as one field: above max-field-size, within the session limit
    let doc = vec![b'j'; 100 * 1024];
    ok(
        &mut c,
        &[
            &b"SESSION.TOUCH"[..],
            b"big",
            b"REPLACE",
            b"1",
            b"sess",
            &doc,
        ],
    );
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "big", "sess"]),
        Value::Array(vec![bulk(&doc)])
    );
    // SET keeps the per-field limit; names keep it under REPLACE too
    let e = err(
        &mut c,
        &[&b"SESSION.TOUCH"[..], b"big", b"SET", b"1", b"other", &doc],
    );
    assert!(e.contains("session.max-field-size"), "{e}");
    let e = err(
        &mut c,
        &[&b"SESSION.TOUCH"[..], b"big", b"REPLACE", b"1", &doc, b"v"],
    );
    assert!(e.contains("session.max-field-size"), "{e}");

    config_set(&mut c, "session.max-session-size", "1000");
    let over = vec![b'x'; 1000];
    let want = "ERR session fields would exceed 1000 bytes (session.max-session-size)";
    for args in [
        vec![
            &b"SESSION.TOUCH"[..],
            b"small",
            b"REPLACE",
            b"1",
            b"sess",
            &over,
        ],
        vec![
            &b"SESSION.TOUCH"[..],
            b"small",
            b"SET",
            b"2",
            b"a",
            &over[..600],
            b"b",
            &over[..600],
        ],
    ] {
        assert_eq!(err(&mut c, &args), want);
    }
    assert!(!exists(&mut c, "small"), "a refused touch creates nothing");
    ok(
        &mut c,
        &[
            &b"SESSION.TOUCH"[..],
            b"small",
            b"SET",
            b"1",
            b"a",
            &over[..990],
        ],
    );
    assert_eq!(
        err(
            &mut c,
            &[
                &b"SESSION.TOUCH"[..],
                b"small",
                b"SET",
                b"1",
                b"b",
                b"123456789"
            ]
        ),
        want
    );
    // overwriting one value with a same-size one is within the limit
    ok(
        &mut c,
        &[
            &b"SESSION.TOUCH"[..],
            b"small",
            b"SET",
            b"1",
            b"a",
            &over[..990],
        ],
    );
    // above a lowered limit: shrinking works, growing does not
    let big_before = session_info(&mut c, "big");
    assert_eq!(
        err(
            &mut c,
            &[&b"SESSION.TOUCH"[..], b"big", b"SET", b"1", b"more", b"1"]
        ),
        want
    );
    assert_eq!(session_info(&mut c, "big")["fields"], big_before["fields"]);
    touch(&mut c, "big", &["REPLACE", "1", "sess", "{}"]);
    touch(&mut c, "big", &["EVENT", "p"]);
}

fn ok_int(c: &mut Connection, name: &str) -> usize {
    config_value(c, name)
}

#[test]
fn lifetimes_in_milliseconds_round_up_to_seconds() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t = touch(&mut c, "s", &["PIDLE", "1500", "PMAXAGE", "2592000000"]);
    assert!(t["ttl_ms"] > 1_500 && t["ttl_ms"] <= 2_000, "{t:?}");
    let info = session_info(&mut c, "s");
    assert_eq!(
        (info["idle_s"].as_i64(), info["maxage_s"].as_i64()),
        (Some(2), Some(2_592_000))
    );
    // later touches without them keep them
    touch(&mut c, "s", &["EVENT", "p"]);
    assert_eq!(session_info(&mut c, "s")["idle_s"].as_i64(), Some(2));
    touch(&mut c, "s", &["PIDLE", "60000"]);
    assert_eq!(session_info(&mut c, "s")["idle_s"].as_i64(), Some(60));
}

#[test]
fn rotate_clearfields_keeps_activity_user_and_expiry() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(
        &mut c,
        "anon",
        &[
            "USER",
            "u1",
            "SET",
            "2",
            "cart",
            "3",
            "csrf",
            "x",
            "EVENT",
            "p1",
            "CATEGORIES",
            "1",
            "golf",
        ],
    );
    let deadline = pexpiretime(&mut c, "anon");
    let before = session_info(&mut c, "anon");
    assert_eq!(
        ok(&mut c, &["SESSION.ROTATE", "anon", "auth", "clearfields"]),
        Value::Okay
    );
    assert!(!exists(&mut c, "anon"));
    assert_eq!(
        get_all(&mut c, "auth").map(|f| f.len()),
        Some(0),
        "fields cleared"
    );
    let after = session_info(&mut c, "auth");
    assert_eq!(after["activity"], before["activity"], "activity kept");
    assert_eq!(after["last_seen_ms"], before["last_seen_ms"]);
    assert_eq!(after["user"], before["user"]);
    assert_eq!(pexpiretime(&mut c, "auth"), deadline, "expiry kept");
    assert_eq!(
        ok(&mut c, &["SESSION.SESSIONS", "u1"]),
        Value::Array(vec![bulk(b"auth")])
    );
    assert_eq!(
        ok(&mut c, &["SESSION.SEEN", "auth", "p1"]),
        Value::Array(vec![Value::Int(1)])
    );
    // without the option everything moves, fields included
    touch(&mut c, "auth", &["SET", "1", "user", "42"]);
    ok(&mut c, &["SESSION.ROTATE", "auth", "again"]);
    assert_eq!(get_all(&mut c, "again").map(|f| f.len()), Some(1));
    assert_eq!(
        err(&mut c, &["SESSION.ROTATE", "again", "x", "KEEP"]),
        "ERR syntax error"
    );
    assert_eq!(
        ok(&mut c, &["SESSION.ROTATE", "missing", "x", "CLEARFIELDS"]),
        Value::Nil
    );
}

#[test]
fn upgrade_turns_a_legacy_string_session_into_a_native_one() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let json = br#"{"cookie":{"originalMaxAge":60000},"user":"\u00e9","n":1}"#;
    ok(
        &mut c,
        &[&b"SET"[..], b"sess:legacy", json, b"PX", b"50000"],
    );
    let legacy_deadline = pexpiretime(&mut c, "sess:legacy");
    assert_eq!(
        ok(&mut c, &["SESSION.UPGRADE", "sess:legacy"]),
        Value::Int(1)
    );
    assert_eq!(
        ok(&mut c, &["TYPE", "sess:legacy"]),
        Value::SimpleString("session01".into())
    );
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "sess:legacy", "sess"]),
        Value::Array(vec![bulk(json)])
    );
    let deadline = pexpiretime(&mut c, "sess:legacy");
    assert!(
        deadline >= legacy_deadline && deadline <= legacy_deadline + 1_000,
        "{deadline} vs {legacy_deadline}"
    );
    // the upgraded session is a session like any other
    touch(&mut c, "sess:legacy", &["XX", "EVENT", "p"]);
    assert_eq!(
        ok(&mut c, &["SESSION.UPGRADE", "sess:legacy"]),
        Value::Int(0),
        "already native"
    );
    assert_eq!(ok(&mut c, &["SESSION.UPGRADE", "missing"]), Value::Nil);
    assert!(!exists(&mut c, "missing"));
    // a string without TTL gets the configured lifetimes; FIELD names the field; binary-safe
    let binary: &[u8] = b"\x00\xff{}";
    ok(&mut c, &[&b"SET"[..], b"plain", binary]);
    assert_eq!(
        ok(&mut c, &["SESSION.UPGRADE", "plain", "FIELD", "data"]),
        Value::Int(1)
    );
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "plain", "data"]),
        Value::Array(vec![bulk(binary)])
    );
    let info = session_info(&mut c, "plain");
    let idle: i64 = config_value(&mut c, "session.default-idle");
    assert_eq!(info["idle_s"].as_i64(), Some(idle));
    // other types are refused and left alone
    ok(&mut c, &["RPUSH", "list", "x"]);
    assert!(err(&mut c, &["SESSION.UPGRADE", "list"]).starts_with("WRONGTYPE"));
    assert_eq!(
        err(&mut c, &["SESSION.UPGRADE", "plain", "FIELD"]),
        "ERR syntax error"
    );
    // too large for the session limit: refused, the string stays
    config_set(&mut c, "session.max-session-size", "10");
    ok(&mut c, &["SET", "long", "0123456789abcdef"]);
    assert!(err(&mut c, &["SESSION.UPGRADE", "long"]).contains("max-session-size"));
    assert_eq!(
        ok(&mut c, &["TYPE", "long"]),
        Value::SimpleString("string".into())
    );
}

#[test]
fn the_additions_replicate_as_effects() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    let doc = vec![b'd'; 80 * 1024];
    ok(&mut p, &["SET", "legacy", "{\"a\":1}", "PX", "40000"]);
    ok(&mut p, &["SESSION.UPGRADE", "legacy"]);
    ok(
        &mut p,
        &[
            &b"SESSION.TOUCH"[..],
            b"s",
            b"PIDLE",
            b"90500",
            b"USER",
            b"u",
            b"REPLACE",
            b"1",
            b"sess",
            &doc,
            b"WITHFIELDS",
            b"EVENT",
            b"p1",
        ],
    );
    ok(
        &mut p,
        &[
            "SESSION.TOUCH",
            "s",
            "WITHFIELDS",
            "1",
            "sess",
            "EVENT",
            "p2",
        ],
    );
    ok(&mut p, &["SESSION.ROTATE", "s", "s2", "CLEARFIELDS"]);
    ok(
        &mut p,
        &["SESSION.TOUCH", "s2", "REPLACE", "1", "sess", "{}"],
    );
    ok(
        &mut p,
        &[
            "SESSION.TOUCH",
            "legacy",
            "XX",
            "PMAXAGE",
            "100000",
            "EVENT",
            "p",
        ],
    );
    // the replica's limits must not matter
    config_set(&mut r, "session.max-session-size", "1");
    ok(
        &mut p,
        &[
            &b"SESSION.TOUCH"[..],
            b"s3",
            b"REPLACE",
            b"1",
            b"sess",
            &doc,
        ],
    );
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(60_000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(acked, 1);
    assert_eq!(digest(&mut r), digest(&mut p));
    assert_eq!(expiries(&mut r), expiries(&mut p));
}

fn config_value<T: std::str::FromStr>(c: &mut Connection, name: &str) -> T {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(c)
        .expect("CONFIG GET");
    pair.get(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {pair:?}"))
}
