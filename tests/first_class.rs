//! What a module in production is expected to offer: command documentation and key specs,
//! configuration, `INFO session`, keyspace events for every write (none for a no-op), and ACL.

mod common;

use common::*;
use redis::{Connection, Value};

/// Every command the module registers, with its arity and whether its first argument is a key.
const COMMANDS: &[(&str, i64, bool)] = &[
    ("session.touch", -2, true),
    ("session.get", -2, true),
    ("session.seen", -3, true),
    ("session.info", 2, true),
    ("session.enrich", -2, true),
    ("session.surface", -4, true),
    ("session.surface_ro", -4, true),
    ("session.impress", -4, true),
    ("session.inbox", -2, true),
    ("session.notifygroup", -4, false),
    ("session.load", 3, true),
    ("session.catalog", -2, false),
    ("session.group", -2, false),
    ("session.sessions", -2, false),
    ("session.revoke", -2, false),
    ("session.rotate", -3, false),
    ("session.upgrade", -2, true),
    ("session.purge", -1, false),
];

const SUBCOMMANDS: &[&str] = &[
    "catalog|add",
    "catalog|del",
    "catalog|drop",
    "catalog|info",
    "catalog|list",
    "catalog|help",
    "group|list",
    "group|info",
    "group|drop",
    "group|help",
];

fn text(v: &Value) -> String {
    String::from_utf8_lossy(&bytes(v)).into_owned()
}

/// The value after `name` in a flat name/value array (RESP2 maps).
fn field<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items.chunks(2).find(|p| text(&p[0]) == name).map(|p| &p[1])
}

#[test]
fn every_command_is_documented_with_arity_and_key_specs() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for &(name, arity, keyed) in COMMANDS {
        let Value::Array(info) = ok(&mut c, &["COMMAND", "INFO", name]) else {
            panic!("COMMAND INFO {name}")
        };
        let Value::Array(entry) = &info[0] else {
            panic!("{name} is not registered")
        };
        assert_eq!(entry[1], Value::Int(arity), "{name}: arity");
        let Value::Array(docs) = ok(&mut c, &["COMMAND", "DOCS", name]) else {
            panic!("COMMAND DOCS {name}")
        };
        let Value::Array(doc) = &docs[1] else {
            panic!("{name}: no docs")
        };
        assert!(
            !text(field(doc, "summary").expect("summary")).is_empty(),
            "{name}: summary"
        );
        assert!(field(doc, "complexity").is_some(), "{name}: complexity");
        if keyed {
            let total = if arity > 0 {
                arity as usize
            } else {
                arity.unsigned_abs() as usize + 2
            };
            let mut args = vec!["COMMAND", "GETKEYS", name, "the-key"];
            args.extend(std::iter::repeat_n("x", total - 2));
            let keys: Vec<Vec<u8>> = command(&args)
                .query(&mut c)
                .unwrap_or_else(|e| panic!("GETKEYS {name}: {e}"));
            assert_eq!(keys, vec![b"the-key".to_vec()], "{name}: key spec");
        }
    }
    let keys: Vec<Vec<u8>> = command(&["COMMAND", "GETKEYS", "session.rotate", "old", "new"])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        keys,
        vec![b"old".to_vec(), b"new".to_vec()],
        "ROTATE names both keys"
    );
    for sub in SUBCOMMANDS {
        let full = format!("session.{sub}");
        let Value::Array(docs) = ok(&mut c, &["COMMAND", "DOCS", &full]) else {
            panic!("{full}")
        };
        assert!(!docs.is_empty(), "{full}: no docs");
    }
    // flags are honest: reads are readonly, writes are write and deny-oom
    let flags = |c: &mut Connection, name: &str| -> Vec<String> {
        let Value::Array(info) = ok(c, &["COMMAND", "INFO", name]) else {
            panic!()
        };
        let Value::Array(entry) = &info[0] else {
            panic!()
        };
        let Value::Array(f) = &entry[2] else { panic!() };
        f.iter().map(text).collect()
    };
    assert!(flags(&mut c, "session.get").contains(&"readonly".to_string()));
    assert!(flags(&mut c, "session.touch").contains(&"denyoom".to_string()));
    assert!(flags(&mut c, "session.catalog|list").contains(&"readonly".to_string()));
    // wrong arity is refused by Redis itself, with its usual message
    assert!(err(&mut c, &["SESSION.INFO", "a", "b"]).contains("wrong number of arguments"));
}

#[test]
fn configuration_is_readable_settable_and_validated() {
    let server = Server::builder()
        .module_args(&["default-idle", "77", "seen-error-rate", "0.02"])
        .start();
    let mut c = server.conn();
    let all: Vec<String> = command(&["CONFIG", "GET", "session.*"])
        .query(&mut c)
        .unwrap();
    let names: Vec<&str> = all.chunks(2).map(|p| p[0].as_str()).collect();
    for name in [
        "default-idle",
        "default-maxage",
        "max-fields",
        "max-field-size",
        "max-categories",
        "max-groups",
        "seen-capacity",
        "seen-error-rate",
        "hll-precision",
        "interest-top-n",
        "interest-half-life",
        "engaged-threshold",
        "dormant-after",
        "returning-gap",
        "interest-segment-weight",
        "max-catalog-items",
        "impressions-width",
        "notify-ttl",
        "max-notifications",
        "cluster-timeout",
    ] {
        assert!(
            names.contains(&format!("session.{name}").as_str()),
            "missing session.{name}"
        );
    }
    let get = |c: &mut Connection, name: &str| -> String {
        let v: Vec<String> = command(&["CONFIG", "GET", name]).query(c).unwrap();
        v[1].clone()
    };
    assert_eq!(
        get(&mut c, "session.default-idle"),
        "77",
        "loadmodule argument"
    );
    assert_eq!(get(&mut c, "session.seen-error-rate"), "0.02");
    ok(
        &mut c,
        &["CONFIG", "SET", "session.engaged-threshold", "0.75"],
    );
    assert_eq!(get(&mut c, "session.engaged-threshold"), "0.75");
    for (name, bad) in [
        ("session.seen-error-rate", "0.9"),
        ("session.seen-error-rate", "nan"),
        ("session.engaged-threshold", "abc"),
        ("session.hll-precision", "13"),
        ("session.default-idle", "0"),
        ("session.max-fields", "-1"),
        ("session.cluster-timeout", "0"),
        ("session.cluster-timeout", "600001"),
    ] {
        let e = err(&mut c, &["CONFIG", "SET", name, bad]);
        assert!(e.starts_with("ERR"), "{name} {bad}: {e}");
    }
    assert_eq!(
        get(&mut c, "session.seen-error-rate"),
        "0.02",
        "a refused value changes nothing"
    );
    // applies to the next command without a restart
    ok(&mut c, &["CONFIG", "SET", "session.default-idle", "5"]);
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["ttl_ms"], 5000);
}

#[test]
fn info_session_reports_counters_and_registry_sizes() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["EVENT", "a"]);
    ok(&mut c, &["SESSION.CATALOG", "ADD", "cat", "i1"]);
    ok(&mut c, &["SESSION.NOTIFYGROUP", "g", "n1", "hello"]);
    let _ = call(&mut c, &["SESSION.TOUCH", "s", "BOGUS"]);
    for (name, at_least) in [
        ("commands", 3),
        ("errors", 1),
        ("sessions_created", 1),
        ("events", 1),
        ("catalogs", 1),
        ("catalog_items", 1),
        ("groups", 1),
        ("live_notifications", 1),
        ("notifications_published", 1),
        ("registry_memory_bytes", 1),
    ] {
        let v: i64 = info_field(&mut c, "session", &format!("session_{name}"))
            .unwrap_or_else(|| panic!("INFO session lacks session_{name}"))
            .parse()
            .unwrap();
        assert!(v >= at_least, "session_{name} = {v}");
    }
}

/// Subscribes to keyspace events of the module class and collects event names until `stop`.
fn events_during(server: &Server, work: impl FnOnce(&mut Connection)) -> Vec<String> {
    let mut c = server.conn();
    ok(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ed"]);
    let mut sub = server.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub.set_read_timeout(Some(PATIENCE)).unwrap();
    work(&mut c);
    // a sentinel marks the end of the work's events
    ok(&mut c, &["SESSION.TOUCH", "sentinel"]);
    let mut seen = Vec::new();
    loop {
        let msg = pubsub.get_message().expect("event before the sentinel");
        let event = msg
            .get_channel_name()
            .rsplit(':')
            .next()
            .unwrap_or("")
            .to_string();
        let key: String = msg.get_payload().unwrap_or_default();
        if key == "sentinel" {
            return seen;
        }
        seen.push(event);
    }
}

#[test]
fn every_write_fires_its_keyspace_event_and_no_op_fires_none() {
    let server = Server::start(&[]);
    let mut setup = server.conn();
    ok(&mut setup, &["SESSION.CATALOG", "ADD", "cat", "i1"]);
    ok(&mut setup, &["SESSION.CATALOG", "ADD", "cat", "i2"]);
    let events = events_during(&server, |c| {
        touch(c, "s", &["EVENT", "a"]);
        ok(c, &["SESSION.ENRICH", "s", "JOIN", "1", "g"]);
        ok(c, &["SESSION.SURFACE", "s", "FROM", "cat"]);
        ok(c, &["SESSION.NOTIFYGROUP", "g", "n1", "p"]);
        ok(c, &["SESSION.INBOX", "s"]);
    });
    assert_eq!(
        events,
        [
            "session.touch",
            "session.enrich",
            "session.surface",
            "session.inbox"
        ]
    );
    let events = events_during(&server, |c| {
        ok(c, &["SESSION.GET", "s"]);
        ok(c, &["SESSION.SEEN", "s", "a"]);
        ok(c, &["SESSION.INFO", "s"]);
        ok(c, &["SESSION.TOUCH", "missing", "XX"]);
        ok(c, &["SESSION.ENRICH", "missing"]);
        ok(c, &["SESSION.SURFACE", "s", "FROM", "cat", "NOMARK"]);
        ok(c, &["SESSION.SURFACE", "missing", "FROM", "cat"]);
        ok(c, &["SESSION.INBOX", "s"]);
        ok(c, &["SESSION.INBOX", "s", "PEEK"]);
        let _ = call(c, &["SESSION.TOUCH", "s", "BOGUS"]);
    });
    assert!(events.is_empty(), "no-ops fired {events:?}");
}

#[test]
fn acl_key_patterns_and_registry_rights_apply() {
    let server = Server::start(&[]);
    let mut admin = server.conn();
    ok(&mut admin, &["SET", "other", "secret"]);
    ok(
        &mut admin,
        &["SESSION.TOUCH", "sess:1", "SET", "1", "a", "1"],
    );
    ok(
        &mut admin,
        &["SESSION.TOUCH", "private:1", "SET", "1", "a", "1"],
    );
    // an application user: sessions under sess:* only, no registry writes
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">pw",
            "~sess:*",
            "+@all",
            "-session.catalog|add",
            "-session.catalog|del",
            "-session.catalog|drop",
            "-session.notifygroup",
        ],
    );
    let client =
        redis::Client::open(format!("redis://app:pw@127.0.0.1:{}/", server.port())).unwrap();
    let mut app = client.get_connection().unwrap();
    touch(&mut app, "sess:2", &["EVENT", "x"]);
    ok(&mut app, &["SESSION.GET", "sess:1"]);
    for args in [
        vec!["SESSION.TOUCH", "other"],
        vec!["SESSION.GET", "private:1"],
        vec!["SESSION.INFO", "other"],
        vec!["SESSION.SEEN", "private:1", "x"],
        vec!["SESSION.ENRICH", "private:1"],
        vec!["SESSION.SURFACE", "private:1", "FROM", "cat"],
        vec!["SESSION.INBOX", "private:1"],
        vec!["SESSION.LOAD", "other", "x"],
        vec!["SESSION.CATALOG", "ADD", "cat", "i"],
        vec!["SESSION.NOTIFYGROUP", "g", "n", "p"],
    ] {
        let e = err(&mut app, &args);
        assert!(e.starts_with("NOPERM"), "{args:?}: {e}");
    }
    // reads of the registry stay allowed; the admin can write it
    ok(&mut app, &["SESSION.CATALOG", "LIST"]);
    ok(&mut admin, &["SESSION.CATALOG", "ADD", "cat", "i"]);
    assert_eq!(bytes(&ok(&mut admin, &["GET", "other"])), b"secret");
}
