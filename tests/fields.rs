//! Session fields: SET/DEL semantics, concurrent writers, binary safety, and the reply shapes of
//! RESP2 and RESP3 clients.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use common::*;
use redis::Value;

fn field_map(pairs: &[(&[u8], &[u8])]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

#[test]
fn set_and_del_change_only_the_named_fields() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(
        &mut c,
        "s",
        &["SET", "3", "theme", "dark", "lang", "fr", "cart", "3 items"],
    );
    touch(&mut c, "s", &["SET", "1", "lang", "en", "DEL", "1", "cart"]);
    touch(&mut c, "s", &["DEL", "2", "never-set", "theme"]);
    assert_eq!(
        get_all(&mut c, "s").unwrap(),
        field_map(&[(b"lang", b"en")])
    );

    // SET then DEL of the same field in one touch: DEL wins
    touch(
        &mut c,
        "s",
        &["SET", "2", "x", "1", "y", "2", "DEL", "1", "x"],
    );
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "s", "x", "y", "lang", "nope"]),
        Value::Array(vec![
            Value::Nil,
            Value::BulkString(b"2".to_vec()),
            Value::BulkString(b"en".to_vec()),
            Value::Nil,
        ])
    );

    // the last value of a repeated field wins; keywords are case-insensitive
    touch(
        &mut c,
        "s",
        &["set", "2", "z", "first", "z", "second", "user", "alice"],
    );
    assert_eq!(get_all(&mut c, "s").unwrap()[&b"z"[..]], b"second");
    let doc = session_info(&mut c, "s");
    assert_eq!(doc["user"], "alice");
    assert_eq!(doc["field_count"], 3);
    assert_eq!(
        doc["fields"],
        serde_json::json!({"lang": "en", "y": "2", "z": "second"})
    );

    // deleting every field leaves an empty session, not a missing one
    touch(&mut c, "s", &["DEL", "3", "lang", "y", "z"]);
    assert_eq!(get_all(&mut c, "s"), Some(BTreeMap::new()));
    assert!(exists(&mut c, "s"));
}

/// Two clients write different fields of one session 10,000 times each, concurrently: neither
/// loses the other's writes.
#[test]
fn concurrent_writers_of_different_fields_lose_nothing() {
    const WRITES: usize = 10_000;
    const BATCH: usize = 500;
    let server = Server::start(&[]);
    touch::<&str>(&mut server.conn(), "shared", &[]);
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let mut c = server.conn();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for start in (1..=WRITES).step_by(BATCH) {
                    let mut pipe = redis::pipe();
                    for i in start..start + BATCH {
                        pipe.cmd("SESSION.TOUCH")
                            .arg("shared")
                            .arg("SET")
                            .arg(2)
                            .arg(format!("value:{who}"))
                            .arg(format!("{who}-{i}"))
                            .arg(format!("count:{who}"))
                            .arg(i)
                            .ignore();
                    }
                    let () = pipe.query(&mut c).expect("pipelined touches");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    let fields = get_all(&mut server.conn(), "shared").unwrap();
    let n = WRITES.to_string();
    assert_eq!(
        fields,
        field_map(&[
            (b"count:a", n.as_bytes()),
            (b"count:b", n.as_bytes()),
            (b"value:a", format!("a-{WRITES}").as_bytes()),
            (b"value:b", format!("b-{WRITES}").as_bytes()),
        ])
    );
}

#[test]
fn binary_field_names_values_and_users_round_trip() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let name: &[u8] = b"n\x00m\xff";
    let value: &[u8] = b"\x00\xff\x01value\x00";
    let utf8_name = "caf\u{e9}";
    let user: &[u8] = b"u\xff\x00";
    let key = "k\u{0}\u{7f}";
    touch(
        &mut c,
        key,
        &[
            &b"USER"[..],
            user,
            b"SET",
            b"4",
            name,
            value,
            utf8_name.as_bytes(),
            b"\xc3\xa9t\xc3\xa9",
            b"",
            b"empty-name",
            b"empty-value",
            b"",
        ],
    );
    assert_eq!(
        get_all(&mut c, key).unwrap(),
        field_map(&[
            (name, value),
            (utf8_name.as_bytes(), "\u{e9}t\u{e9}".as_bytes()),
            (b"", b"empty-name"),
            (b"empty-value", b""),
        ])
    );
    assert_eq!(
        ok(
            &mut c,
            &[&b"SESSION.GET"[..], key.as_bytes(), name, b"", b"n\x00m"]
        ),
        Value::Array(vec![
            Value::BulkString(value.to_vec()),
            Value::BulkString(b"empty-name".to_vec()),
            Value::Nil,
        ])
    );

    let doc = session_info(&mut c, key);
    assert_eq!(doc["user"], serde_json::json!({ "base64": base64(user) }));
    let fields = doc["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 4);
    assert_eq!(
        fields[&format!("base64:{}", base64(name))],
        serde_json::json!({ "base64": base64(value) })
    );
    assert_eq!(fields[utf8_name], "\u{e9}t\u{e9}");
    assert_eq!(fields[""], "empty-name");
    assert_eq!(fields["empty-value"], "");

    // deleting by a binary name
    touch(&mut c, key, &[&b"DEL"[..], b"1", name]);
    assert!(!get_all(&mut c, key).unwrap().contains_key(name));
}

#[test]
fn resp2_replies_are_flat_name_value_arrays() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let Value::Array(items) = ok(&mut c, &["SESSION.TOUCH", "s", "SET", "1", "a", "1"]) else {
        panic!("RESP2 TOUCH reply is not an array");
    };
    assert_eq!(items.len(), 14);
    touch_map(Value::Array(items));
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "s"]),
        Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"1".to_vec()),
        ])
    );
    assert!(matches!(
        ok(&mut c, &["SESSION.INFO", "s"]),
        Value::BulkString(_)
    ));
}

#[test]
fn resp3_replies_are_maps() {
    let server = Server::start(&[]);
    let mut c = server.conn_resp3();
    let reply = ok(
        &mut c,
        &["SESSION.TOUCH", "s", "SET", "2", "a", "1", "b", "\x00"],
    );
    assert!(matches!(reply, Value::Map(_)), "TOUCH: {reply:?}");
    assert_eq!(touch_map(reply)["new"], 1);
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "s"]),
        Value::Map(vec![
            (
                Value::BulkString(b"a".to_vec()),
                Value::BulkString(b"1".to_vec())
            ),
            (
                Value::BulkString(b"b".to_vec()),
                Value::BulkString(b"\x00".to_vec())
            ),
        ])
    );
    assert_eq!(
        ok(&mut c, &["SESSION.GET", "s", "b", "zz"]),
        Value::Array(vec![Value::BulkString(b"\x00".to_vec()), Value::Nil])
    );
    assert_eq!(ok(&mut c, &["SESSION.TOUCH", "missing", "XX"]), Value::Nil);
    assert!(matches!(
        ok(&mut c, &["SESSION.INFO", "s"]),
        Value::BulkString(_)
    ));
    // an empty session's fields are an empty map
    touch::<&str>(&mut c, "empty", &[]);
    assert_eq!(ok(&mut c, &["SESSION.GET", "empty"]), Value::Map(vec![]));
}
