//! Committed RDB fixtures: an RDB file written by an older build must load, exactly, in this one.
//!
//! `tests/fixtures/v1.rdb` holds the sessions of [`V1_SESSIONS`] as the module's encoding v1 saved them
//! (Redis 7.0, RDB version 10). To regenerate it, build a commit whose module writes encoding v1
//! (up to 5b24291, before the activity sketches introduced v2) and run the ignored generator
//! against it:
//!
//! ```text
//! git worktree add /tmp/v1 5b24291 && (cd /tmp/v1 && cargo build --release -p session-store)
//! SESSION_MODULE=/tmp/v1/target/release/libsession_store.so \
//!     cargo test --release -p session-store --test fixtures -- --ignored generate_fixture_v1
//! ```
//!
//! Regenerating is only for a damaged file: the point of the fixture is that it never changes.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use redis::Connection;

/// When the fixture's sessions were touched (`AT`): 2026-11-27. With lifetimes of about ten years
/// they stay alive until 2036.
const FIXTURE_AT_MS: i64 = 1_795_810_000_000;

struct FixtureSession {
    key: &'static [u8],
    idle_s: u32,
    maxage_s: u32,
    user: Option<&'static [u8]>,
    fields: &'static [(&'static [u8], &'static [u8])],
}

const V1_SESSIONS: &[FixtureSession] = &[
    FixtureSession {
        key: b"fixture:plain",
        idle_s: 315_360_000,
        maxage_s: 315_360_000,
        user: None,
        fields: &[(b"lang", b"fr"), (b"theme", b"dark")],
    },
    FixtureSession {
        key: b"fixture:binary",
        idle_s: 315_000_000,
        maxage_s: 315_360_000,
        user: None,
        fields: &[
            (b"", b""),
            (b"\x00\xff", b"\xff\x00\x01"),
            (b"caf\xc3\xa9", b"\xc3\xa9t\xc3\xa9"),
        ],
    },
    FixtureSession {
        key: b"fixture:user",
        idle_s: 315_360_000,
        maxage_s: 315_300_000,
        user: Some(b"alice@example.com"),
        fields: &[(b"cart", b"3 items")],
    },
    FixtureSession {
        key: b"fixture:\xffempty",
        idle_s: 300_000_000,
        maxage_s: 310_000_000,
        user: Some(b"u\x00\xff"),
        fields: &[],
    },
];

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Checks that the server holds exactly `sessions`, field for field, with their lifecycle.
fn assert_sessions(c: &mut Connection, sessions: &[FixtureSession]) {
    let expected_keys = sessions.iter().map(|s| s.key.to_vec()).collect();
    assert_eq!(keys(c), expected_keys);
    for s in sessions {
        let shown = String::from_utf8_lossy(s.key);
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = pairs(ok(c, &[&b"SESSION.GET"[..], s.key]))
            .into_iter()
            .map(|(n, v)| (bytes(&n), bytes(&v)))
            .collect();
        let want: BTreeMap<Vec<u8>, Vec<u8>> = s
            .fields
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(fields, want, "{shown}: fields");

        let doc = session_info(c, s.key);
        assert_eq!(
            doc["user"],
            s.user.map_or(serde_json::Value::Null, bytes_json),
            "{shown}"
        );
        assert_eq!(doc["idle_s"], s.idle_s, "{shown}");
        assert_eq!(doc["maxage_s"], s.maxage_s, "{shown}");
        assert_eq!(doc["created_ms"], FIXTURE_AT_MS, "{shown}");
        assert_eq!(doc["last_seen_ms"], FIXTURE_AT_MS, "{shown}");
        let deadline = FIXTURE_AT_MS + i64::from(s.idle_s.min(s.maxage_s)) * 1000;
        let expiry: i64 = command(&[&b"PEXPIRETIME"[..], s.key]).query(c).unwrap();
        assert_eq!(expiry, deadline, "{shown}: expiry");
    }
}

#[test]
fn fixture_v1_loads() {
    let rdb = std::fs::read(fixture_path("v1.rdb")).expect("the committed fixtures/v1.rdb");
    let server = Server::builder().file("dump.rdb", rdb).start();
    let mut c = server.conn();
    assert_sessions(&mut c, V1_SESSIONS);
    // saved again in this build's encoding and loaded back: still the same sessions
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_sessions(&mut c, V1_SESSIONS);
}

/// Writes `tests/fixtures/v1.rdb`; see the file's header for how to run it.
#[test]
#[ignore = "regenerates the committed fixture; needs a module build that writes encoding v1"]
fn generate_fixture_v1() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for s in V1_SESSIONS {
        let mut args: Vec<Vec<u8>> = vec![
            b"SESSION.TOUCH".to_vec(),
            s.key.to_vec(),
            b"IDLE".to_vec(),
            s.idle_s.to_string().into_bytes(),
            b"MAXAGE".to_vec(),
            s.maxage_s.to_string().into_bytes(),
            b"AT".to_vec(),
            FIXTURE_AT_MS.to_string().into_bytes(),
        ];
        if let Some(user) = s.user {
            args.extend([b"USER".to_vec(), user.to_vec()]);
        }
        if !s.fields.is_empty() {
            args.extend([b"SET".to_vec(), s.fields.len().to_string().into_bytes()]);
            for (n, v) in s.fields {
                args.extend([n.to_vec(), v.to_vec()]);
            }
        }
        touch_map(ok(&mut c, &args));
        assert_eq!(
            session_info(&mut c, s.key)["encoding"]["version"],
            1,
            "this module does not write encoding v1"
        );
    }
    assert_sessions(&mut c, V1_SESSIONS);
    ok(&mut c, &["SAVE"]);
    let target = fixture_path("v1.rdb");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(server.dir().join("dump.rdb"), &target).expect("copy dump.rdb");
    println!("wrote {}", target.display());
}

/// `tests/fixtures/v2.rdb`: sessions written by encoding v2 (activity sketches, ENRICH's calculated
/// data, groups, impressions) and a catalog in registry format 1. `tests/fixtures/v2.json` holds what
/// `SESSION.INFO` showed for each session when the fixture was written (minus the fields that
/// depend on the build or the clock: `encoding`, `memory_bytes`, `active_minutes_last_hour`, `active_minutes_ago`).
/// Regenerate only for a damaged file, from a build that writes v2 (the commit
/// that introduced this test, d25455d), with `--ignored generate_fixture_v2` as for v1.
const V2_KEYS: &[&str] = &["fixture2:reader", "fixture2:enriched", "fixture2:plain"];

fn comparable_info(c: &mut Connection, key: &str) -> serde_json::Value {
    let mut doc = session_info(c, key);
    let obj = doc.as_object_mut().expect("INFO is an object");
    obj.remove("encoding");
    obj.remove("memory_bytes");
    if let Some(a) = obj.get_mut("activity").and_then(|a| a.as_object_mut()) {
        a.remove("active_minutes_last_hour");
        a.remove("active_minutes_ago");
        a.remove("bytes");
        if let Some(sk) = a.get_mut("sketches").and_then(|s| s.as_object_mut()) {
            for s in sk.values_mut() {
                if let Some(s) = s.as_object_mut() {
                    s.remove("bytes");
                }
            }
        }
    }
    doc
}

#[test]
fn fixture_v2_loads() {
    let rdb = std::fs::read(fixture_path("v2.rdb")).expect("the committed fixtures/v2.rdb");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture_path("v2.json")).expect("the committed fixtures/v2.json"),
    )
    .expect("v2.json is JSON");
    let server = Server::builder().file("dump.rdb", rdb).start();
    let mut c = server.conn();
    for round in 0..2 {
        for key in V2_KEYS {
            // Later builds may add fields to INFO; every field the v2 build showed must match.
            let now = comparable_info(&mut c, key);
            let then = expected[key].as_object().expect("an object per key");
            for (field, value) in then {
                assert_eq!(&now[field], value, "{key}.{field} (round {round})");
            }
        }
        let imp = &session_info(&mut c, "fixture2:enriched")["impressions"];
        assert_eq!(
            imp["widths"],
            serde_json::json!([16]),
            "the v2 impression sketch is kept"
        );
        let seen: Vec<i64> = command(&[
            "SESSION.SEEN",
            "fixture2:reader",
            "page:0",
            "page:59",
            "never",
        ])
        .query(&mut c)
        .unwrap();
        assert_eq!(seen, vec![1, 1, 0]);
        let list: Vec<Vec<u8>> = command(&["SESSION.CATALOG", "LIST"]).query(&mut c).unwrap();
        assert_eq!(list, vec![b"articles".to_vec()]);
        let items = pairs(ok(&mut c, &["SESSION.CATALOG", "INFO", "articles"]));
        assert_eq!(items[0].1, redis::Value::Int(40));
        ok(&mut c, &["DEBUG", "RELOAD"]);
    }
}

#[test]
#[ignore = "regenerates the committed fixture; needs a module build that writes encoding v2"]
fn generate_fixture_v2() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let at = |offset: i64| (FIXTURE_AT_MS - 7_200_000 + offset).to_string();
    let life = ["IDLE", "315360000", "MAXAGE", "315360000"];
    for i in 0..60i64 {
        let item = format!("page:{i}");
        let cat = ["golf", "hockey", "news"][(i % 3) as usize];
        let mut args = vec!["SESSION.TOUCH", "fixture2:reader"];
        args.extend(life);
        let t = at(i * 61_000);
        args.extend(["EVENT", &item, "CATEGORIES", "2", cat, "sports", "AT", &t]);
        touch_map(ok(&mut c, &args));
    }
    let t = at(0);
    let mut args = vec!["SESSION.TOUCH", "fixture2:enriched"];
    args.extend(life);
    args.extend([
        "USER",
        "bob",
        "SET",
        "1",
        "plan",
        "pro",
        "EVENT",
        "x",
        "CATEGORIES",
        "1",
        "tech",
        "AT",
        &t,
    ]);
    touch_map(ok(&mut c, &args));
    let t = at(3_600_000);
    ok(
        &mut c,
        &[
            "SESSION.ENRICH",
            "fixture2:enriched",
            "ATTRS",
            r#"{"churn":0.25,"geo":{"cc":"SE"}}"#,
            "JOIN",
            "2",
            "beta",
            "vip",
            "AT",
            &t,
        ],
    );
    ok(
        &mut c,
        &[
            "SESSION.IMPRESS",
            "fixture2:enriched",
            "2",
            "a1",
            "a2",
            "WIDTH",
            "16",
        ],
    );
    let mut args = vec!["SESSION.TOUCH", "fixture2:plain"];
    args.extend(life);
    let t = at(0);
    args.extend(["SET", "1", "k", "v", "AT", &t]);
    touch_map(ok(&mut c, &args));
    for i in 0..40 {
        let id = format!("a{i}");
        let score = (i * 7 % 11).to_string();
        ok(
            &mut c,
            &[
                "SESSION.CATALOG",
                "ADD",
                "articles",
                &id,
                "SCORE",
                &score,
                "CATEGORIES",
                "1",
                ["golf", "tech"][i % 2],
            ],
        );
    }
    let mut expected = serde_json::Map::new();
    for key in V2_KEYS {
        assert_eq!(
            session_info(&mut c, key)["encoding"]["version"],
            2,
            "this module does not write encoding v2"
        );
        expected.insert(key.to_string(), comparable_info(&mut c, key));
    }
    ok(&mut c, &["SAVE"]);
    std::fs::copy(server.dir().join("dump.rdb"), fixture_path("v2.rdb")).expect("copy dump.rdb");
    std::fs::write(
        fixture_path("v2.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
}

/// `tests/fixtures/v6.rdb`: what this round's formats save — session encoding 6 (exact distinct
/// set, read marks, join times per explicit membership) and the registry format of the build that
/// wrote it (item versions, notification groups with a join-restricted notification, the
/// site-wide analytics). `tests/fixtures/v6.json` holds what that build answered: `SESSION.INFO`
/// of each session (as [`comparable_info`]), `CATALOG INFO`, `GROUP INFO` (without `memory`),
/// `INBOX ... PEEK`, `TRENDING ... WITHSCORES` and `STATS` read at a fixed `AT`.
/// Regenerate only for a damaged file, with `--ignored generate_fixture_v6` and a build that
/// writes session encoding 6.
const V6_KEYS: &[&str] = &["fixture6:reader", "fixture6:member", "fixture6:late"];

/// When the v6 fixture's reads are made (`AT`): an hour after its last write.
const V6_READ_AT_MS: i64 = FIXTURE_AT_MS + 3_600_000;

fn v6_answers(c: &mut Connection) -> serde_json::Value {
    let text = |v: &redis::Value| String::from_utf8_lossy(&bytes(v)).into_owned();
    let as_json = |v: redis::Value| -> serde_json::Value {
        match v {
            redis::Value::Int(n) => serde_json::json!(n),
            redis::Value::Double(d) => serde_json::json!(format!("{d}")),
            redis::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(|i| format!("{i:?}").into()).collect())
            }
            other => serde_json::json!(String::from_utf8_lossy(&bytes(&other)).into_owned()),
        }
    };
    let map = |c: &mut Connection, args: &[&str], skip: &[&str]| -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (k, v) in pairs(ok(c, args)) {
            let k = text(&k);
            if !skip.contains(&k.as_str()) {
                out.insert(k, as_json(v));
            }
        }
        serde_json::Value::Object(out)
    };
    let at = V6_READ_AT_MS.to_string();
    let mut doc = serde_json::Map::new();
    for key in V6_KEYS {
        doc.insert(key.to_string(), comparable_info(c, key));
    }
    doc.insert(
        "catalog".into(),
        map(c, &["SESSION.CATALOG", "INFO", "articles"], &["memory"]),
    );
    doc.insert(
        "group".into(),
        map(c, &["SESSION.GROUP", "INFO", "beta"], &["memory"]),
    );
    for key in V6_KEYS {
        let peek = ok(c, &["SESSION.INBOX", key, "PEEK", "AT", &at]);
        doc.insert(
            format!("peek {key}"),
            serde_json::json!(format!("{peek:?}")),
        );
    }
    // scores to 12 significant digits: servers format a RESP2 double differently (Redis 7.0
    // with %.17g, 8.2 and Valkey with the shortest form that reads back)
    let trending: Vec<(String, String)> = pairs(ok(
        c,
        &[
            "SESSION.TRENDING",
            "articles",
            "COUNT",
            "5",
            "WITHSCORES",
            "AT",
            &at,
        ],
    ))
    .into_iter()
    .map(|(id, score)| {
        let score: f64 = text(&score).parse().expect("a score");
        (text(&id), format!("{score:.11e}"))
    })
    .collect();
    doc.insert("trending".into(), serde_json::json!(trending));
    doc.insert("stats".into(), map(c, &["SESSION.STATS", "AT", &at], &[]));
    serde_json::Value::Object(doc)
}

#[test]
fn fixture_v6_loads() {
    let rdb = std::fs::read(fixture_path("v6.rdb")).expect("the committed fixtures/v6.rdb");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture_path("v6.json")).expect("the committed fixtures/v6.json"),
    )
    .expect("v6.json is JSON");
    let server = Server::builder().file("dump.rdb", rdb).start();
    let mut c = server.conn();
    for round in 0..2 {
        let now = v6_answers(&mut c);
        for (name, then) in expected.as_object().expect("an object") {
            match then.as_object() {
                // later builds may add fields: every field the v6 build showed must match
                Some(fields) => {
                    for (field, value) in fields {
                        assert_eq!(&now[name][field], value, "{name}.{field} (round {round})");
                    }
                }
                None => assert_eq!(&now[name], then, "{name} (round {round})"),
            }
        }
        ok(&mut c, &["DEBUG", "RELOAD"]);
    }
}

#[test]
#[ignore = "regenerates the committed fixture; needs a module build that writes encoding v6"]
fn generate_fixture_v6() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let at = |offset: i64| (FIXTURE_AT_MS + offset).to_string();
    let life = ["IDLE", "315360000", "MAXAGE", "315360000"];
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "articles", "seed", "SCORE", "1"],
    );
    for i in 0..30i64 {
        let id = format!("a{i}");
        let score = (i * 7 % 11).to_string();
        let cat = ["golf", "hockey", "news"][(i % 3) as usize];
        ok(
            &mut c,
            &[
                "SESSION.CATALOG",
                "ADD",
                "articles",
                &id,
                "SCORE",
                &score,
                "CATEGORIES",
                "1",
                cat,
            ],
        );
    }
    // 45 views over 30 items (exact distinct count 30), three categories
    for i in 0..45i64 {
        let item = format!("a{}", i % 30);
        let cat = ["golf", "hockey", "news"][(i % 3) as usize];
        let t = at(i * 61_000);
        let mut args = vec!["SESSION.TOUCH", "fixture6:reader"];
        args.extend(life);
        args.extend(["USER", "alice", "EVENT", &item, "CATEGORIES", "1", cat]);
        args.extend(["AT", &t]);
        touch_map(ok(&mut c, &args));
    }
    let t0 = at(0);
    for key in ["fixture6:member", "fixture6:late"] {
        let mut args = vec!["SESSION.TOUCH", key];
        args.extend(life);
        args.extend(["SET", "1", "plan", "pro", "EVENT", "a1", "AT", &t0]);
        touch_map(ok(&mut c, &args));
    }
    let joined = at(60_000);
    ok(
        &mut c,
        &[
            "SESSION.ENRICH",
            "fixture6:member",
            "JOIN",
            "1",
            "beta",
            "AT",
            &joined,
        ],
    );
    let expire = at(315_000_000_000);
    let publish = |c: &mut Connection, id: &str, offset: i64, extra: &[&str]| {
        let t = at(offset);
        let mut args = vec![
            "SESSION.NOTIFYGROUP",
            "beta",
            id,
            "payload",
            "EXPIREAT",
            &expire,
            "AT",
            &t,
        ];
        args.extend(extra);
        assert_eq!(ok(c, &args), redis::Value::Int(1));
    };
    publish(&mut c, "n1", 120_000, &[]);
    publish(&mut c, "n2", 180_000, &[]);
    // only the members who joined before it: not fixture6:late, which joins afterwards
    publish(&mut c, "n3", 300_000, &["JOINEDBEFORE", "NOW"]);
    let late = at(600_000);
    ok(
        &mut c,
        &[
            "SESSION.ENRICH",
            "fixture6:late",
            "JOIN",
            "1",
            "beta",
            "AT",
            &late,
        ],
    );
    let t = at(1_000_000);
    ok(
        &mut c,
        &["SESSION.INBOX", "fixture6:member", "COUNT", "2", "AT", &t],
    );
    ok(
        &mut c,
        &[
            "SESSION.ACK",
            "fixture6:member",
            "beta",
            "UPTO",
            "n1",
            "AT",
            &t,
        ],
    );
    for key in V6_KEYS {
        assert_eq!(
            session_info(&mut c, key)["encoding"]["version"],
            6,
            "this module does not write encoding v6"
        );
    }
    let expected = v6_answers(&mut c);
    ok(&mut c, &["SAVE"]);
    std::fs::copy(server.dir().join("dump.rdb"), fixture_path("v6.rdb")).expect("copy dump.rdb");
    std::fs::write(
        fixture_path("v6.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
}
