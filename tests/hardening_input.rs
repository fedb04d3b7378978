//! Input hardening (issue 15): crafted saved forms are refused by `SESSION.LOAD`, `RESTORE` and an
//! AOF replay against the live configuration's ranges; LOAD enforces every limit TOUCH and ENRICH
//! enforce; limits are checked before work; max age holds whatever the key's TTL; configuration
//! ranges are what is applied; floats print sanely. Every refusal is asserted exactly.

mod common;

use std::io::Write;
use std::time::Duration;

use common::dump::ModuleDump;
use common::saved::{Saved, Sketch};
use common::*;
use redis::{Connection, Value};

const LOAD_FILTER_ERROR: &str = "ERR corrupt session encoding: inconsistent seen filter";
const RESTORE_ERROR: &str = "ERR Bad data format";

/// A session created a second ago, living a day.
fn base() -> Saved {
    Saved::new(now_ms() - 1_000)
}

/// The issue's crash: seen capacity 2^24, error rate 1e-300, no layers yet.
fn crash_form() -> Vec<u8> {
    let mut s = base();
    s.activity = Some(Sketch {
        seen_capacity: 1 << 24,
        seen_error: 1e-300,
        ..Sketch::default()
    });
    s.encode()
}

/// `DUMP` framing from a real session of this server, around any saved form.
fn dump_frame(c: &mut Connection) -> ModuleDump {
    config_set(c, "rdbcompression", "no");
    touch(c, "frame", &["SET", "1", "a", "1"]);
    let payload = bytes(&ok(c, &["DUMP", "frame"]));
    ModuleDump::parse(&payload)
}

fn load(c: &mut Connection, key: &str, form: &[u8]) -> Result<Value, String> {
    call(c, &[b"SESSION.LOAD", key.as_bytes(), form])
}

fn restore(c: &mut Connection, key: &str, payload: &[u8]) -> Result<Value, String> {
    call(
        c,
        &[&b"RESTORE"[..], key.as_bytes(), b"0", payload, b"REPLACE"],
    )
}

fn assert_alive(c: &mut Connection) {
    assert_eq!(ok(c, &["PING"]), Value::SimpleString("PONG".into()));
}

#[test]
fn the_crash_form_is_refused_by_load_and_restore() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let form = crash_form();
    assert!(form.len() < 120, "a ~100-byte form: {}", form.len());
    assert_eq!(load(&mut c, "k", &form), Err(LOAD_FILTER_ERROR.into()));
    let frame = dump_frame(&mut c);
    assert_eq!(
        restore(&mut c, "k", &frame.with_saved(&form)),
        Err(RESTORE_ERROR.into())
    );
    assert!(!exists(&mut c, "k"));
    // What would have allocated 3 GB now makes an ordinary session.
    let t = touch(&mut c, "k", &["EVENT", "x"]);
    assert_eq!(t["new"], 1);
    assert_alive(&mut c);

    // The encoder is right: the same form with live sizing is accepted by both.
    let mut fine = base();
    fine.activity = Some(Sketch::default());
    assert_eq!(load(&mut c, "ok", &fine.encode()), Ok(Value::Okay));
    ok(
        &mut c,
        &[
            &b"RESTORE"[..],
            b"ok2",
            b"0",
            &frame.with_saved(&fine.encode()),
        ],
    );
    assert_eq!(touch(&mut c, "ok", &["EVENT", "x"])["events"], 2);
    assert_eq!(touch(&mut c, "ok2", &["EVENT", "x"])["events"], 2);
}

#[test]
fn every_sketch_parameter_is_checked_against_the_live_ranges() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let frame = dump_frame(&mut c);
    let cases: Vec<(Sketch, &str)> = vec![
        // capacity 2^22 at a live error rate: one TOUCH would add ~800 MB
        (
            Sketch {
                seen_capacity: 1 << 22,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                seen_capacity: 1_000_001,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                seen_capacity: 0,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                seen_error: 1e-10,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                seen_error: 0.3,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                seen_error: f64::NAN,
                ..Sketch::default()
            },
            LOAD_FILTER_ERROR,
        ),
        (
            Sketch {
                hll_precision: 13,
                ..Sketch::default()
            },
            "ERR corrupt session encoding: HyperLogLog precision out of range",
        ),
        (
            Sketch {
                hll_precision: 3,
                ..Sketch::default()
            },
            "ERR corrupt session encoding: HyperLogLog precision out of range",
        ),
        (
            Sketch {
                top_n: 1001,
                ..Sketch::default()
            },
            "ERR corrupt session encoding: top-n out of range",
        ),
        (
            Sketch {
                half_life_s: 0,
                ..Sketch::default()
            },
            "ERR corrupt session encoding: half-life out of range",
        ),
        (
            Sketch {
                half_life_s: 315_360_001,
                ..Sketch::default()
            },
            "ERR corrupt session encoding: half-life out of range",
        ),
    ];
    for (sketch, error) in cases {
        let mut s = base();
        s.activity = Some(sketch.clone());
        let form = s.encode();
        assert_eq!(load(&mut c, "k", &form), Err(error.into()), "{sketch:?}");
        assert_eq!(
            restore(&mut c, "k", &frame.with_saved(&form)),
            Err(RESTORE_ERROR.into()),
            "{sketch:?}"
        );
    }
    // The edges of the ranges are accepted.
    for sketch in [
        Sketch {
            seen_capacity: 1_000_000,
            seen_error: 1e-9,
            hll_precision: 12,
            top_n: 1000,
            half_life_s: 315_360_000,
        },
        Sketch {
            seen_capacity: 1,
            seen_error: 0.25,
            hll_precision: 4,
            top_n: 1,
            half_life_s: 1,
        },
    ] {
        let mut s = base();
        s.activity = Some(sketch.clone());
        assert_eq!(
            load(&mut c, "edge", &s.encode()),
            Ok(Value::Okay),
            "{sketch:?}"
        );
    }
    assert!(!exists(&mut c, "k"));
    assert_alive(&mut c);
}

#[test]
fn impression_generations_must_have_the_shapes_the_module_makes() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let inconsistent = "ERR corrupt session encoding: inconsistent impressions";
    let out_of_range = "ERR corrupt session encoding: impressions width out of range";
    for (generations, error) in [
        (vec![(32_768, 0)], out_of_range),
        (vec![(65_536, 0)], out_of_range),
        (vec![(8, 0)], out_of_range),
        // the second generation is not twice as wide
        (vec![(16, 4), (64, 0)], inconsistent),
        // a generation followed before it was full
        (vec![(16, 1), (32, 0)], inconsistent),
    ] {
        let mut s = base();
        s.impressions = generations.clone();
        assert_eq!(
            load(&mut c, "k", &s.encode()),
            Err(error.into()),
            "{generations:?}"
        );
    }
    let mut s = base();
    s.impressions = vec![(16, 4), (32, 8), (64, 0)];
    assert_eq!(load(&mut c, "k", &s.encode()), Ok(Value::Okay));
}

/// Appends `args` as a RESP command to the server's newest incremental AOF file.
fn append_to_aof(server: &Server, commands: &[Vec<&[u8]>]) {
    let dir = server.dir().join("appendonlydir");
    let incr = std::fs::read_dir(&dir)
        .expect("the AOF directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .max()
        .expect("an incremental AOF file");
    let mut out = Vec::new();
    for args in commands {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(incr)
        .expect("open the AOF");
    f.write_all(&out).expect("append to the AOF");
}

#[test]
fn an_aof_replay_refuses_the_crash_form() {
    let mut server = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = server.conn();
    touch(&mut c, "before", &["SET", "1", "a", "1"]);
    let form = crash_form();
    // What an old build accepted and logged: the LOAD, then the event that aborted the server.
    append_to_aof(
        &server,
        &[
            vec![b"SESSION.LOAD", b"k", &form],
            vec![b"SESSION.TOUCH", b"k", b"EVENT", b"x"],
        ],
    );
    server.restart();
    let mut c = server.conn();
    assert_alive(&mut c);
    assert_eq!(get_all(&mut c, "before").map(|f| f.len()), Some(1));
    assert!(
        server.log_tail(40).contains(LOAD_FILTER_ERROR),
        "the replay refused the LOAD"
    );
    // The refused LOAD left nothing; the replayed TOUCH made an ordinary new session.
    assert_eq!(touch(&mut c, "k", &["EVENT", "y"])["events"], 2);
}

#[test]
fn load_enforces_the_limits_touch_and_enrich_enforce() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let frame = dump_frame(&mut c);

    let mut groups = base();
    groups.groups = (0..65).map(|i| format!("g{i:03}").into_bytes()).collect();
    let groups_error = "ERR too many groups in the session (limit 64, session.max-groups)";
    assert_eq!(
        load(&mut c, "k", &groups.encode()),
        Err(groups_error.into())
    );

    let mut attrs = base();
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(70_000));
    attrs.attrs = Some(big.into_bytes());
    let attrs_error = "ERR attributes would exceed 65536 bytes (session.max-field-size)";
    assert_eq!(load(&mut c, "k", &attrs.encode()), Err(attrs_error.into()));

    let mut fields = base();
    let mut names: Vec<Vec<u8>> = (0..1025).map(|i| format!("f{i:05}").into_bytes()).collect();
    names.sort();
    fields.fields = names.into_iter().map(|n| (n, b"v".to_vec())).collect();
    let fields_error = "ERR too many fields in the session (limit 1024, session.max-fields)";
    assert_eq!(
        load(&mut c, "k", &fields.encode()),
        Err(fields_error.into())
    );

    let mut value = base();
    value.fields = vec![(vec![b'n'; 65_537], b"v".to_vec())];
    let size_error =
        "ERR field, item or category too large (limit 65536 bytes, session.max-field-size)";
    assert_eq!(load(&mut c, "k", &value.encode()), Err(size_error.into()));
    assert!(!exists(&mut c, "k"));

    // At the limits, LOAD accepts.
    groups.groups.pop();
    assert_eq!(load(&mut c, "k", &groups.encode()), Ok(Value::Okay));

    // RESTORE (like an RDB load) is data this server or its peer already held: the session limits
    // do not apply, the hard ranges do (the tests above).
    groups.groups.push(b"g999".to_vec());
    ok(
        &mut c,
        &[
            &b"RESTORE"[..],
            b"r",
            b"0",
            &frame.with_saved(&groups.encode()),
        ],
    );
    assert_eq!(
        session_info(&mut c, "r")["groups"].as_array().map(Vec::len),
        Some(65)
    );
}

#[test]
fn enrich_checks_counts_and_lengths_before_any_work() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "k", &["SET", "1", "a", "1"]);
    let groups_error = "ERR too many groups in the session (limit 64, session.max-groups)";

    // JOIN's count is checked before ATTRS is parsed (the document here is not even JSON).
    let mut args: Vec<Vec<u8>> = vec![b"SESSION.ENRICH".to_vec(), b"k".to_vec()];
    args.extend([
        b"ATTRS".to_vec(),
        b"{not json".to_vec(),
        b"JOIN".to_vec(),
        b"65".to_vec(),
    ]);
    args.extend((0..65).map(|i| format!("g{i}").into_bytes()));
    assert_eq!(call(&mut c, &args), Err(groups_error.into()));

    // 60,000 groups: refused for the count.
    let mut args: Vec<Vec<u8>> = vec![b"SESSION.ENRICH".to_vec(), b"k".to_vec(), b"JOIN".to_vec()];
    args.push(b"60000".to_vec());
    args.extend((0..60_000).map(|i| format!("g{i}").into_bytes()));
    assert_eq!(call(&mut c, &args), Err(groups_error.into()));

    // ATTRS longer than the limit is refused by its length, unparsed.
    let mut doc = b"{\"a\":".to_vec();
    doc.extend(std::iter::repeat_n(b'[', 1_000_000));
    let attrs_error = "ERR attributes would exceed 65536 bytes (session.max-field-size)";
    assert_eq!(
        call(&mut c, &[&b"SESSION.ENRICH"[..], b"k", b"ATTRS", &doc]),
        Err(attrs_error.into())
    );

    // Duplicates and LEAVE are set operations: 64 distinct groups, each named twice, fit.
    let mut args: Vec<Vec<u8>> = vec![b"SESSION.ENRICH".to_vec(), b"k".to_vec(), b"JOIN".to_vec()];
    args.push(b"128".to_vec());
    args.extend((0..128).map(|i| format!("g{}", i % 64).into_bytes()));
    args.extend([b"LEAVE".to_vec(), b"64".to_vec()]);
    args.extend((0..64).map(|i| format!("x{i}").into_bytes()));
    call(&mut c, &args).expect("64 distinct groups");
    assert_eq!(
        session_info(&mut c, "k")["groups"].as_array().map(Vec::len),
        Some(64)
    );
    assert_eq!(get_all(&mut c, "k").map(|f| f.len()), Some(1));
}

#[test]
fn many_names_in_get_and_del_give_the_same_answers() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut set: Vec<String> = vec!["SET".into(), "300".into()];
    for i in 0..300 {
        set.push(format!("f{i}"));
        set.push(format!("v{i}"));
    }
    touch(&mut c, "big", &set);
    // GET of 2,000 names, most of them absent, some repeated.
    let names: Vec<String> = (0..2_000).map(|i| format!("f{}", (i * 7) % 900)).collect();
    let mut args = vec!["SESSION.GET".to_string(), "big".into()];
    args.extend(names.iter().cloned());
    let Value::Array(values) = ok(&mut c, &args) else {
        panic!("an array")
    };
    for (name, v) in names.iter().zip(&values) {
        let i: usize = name[1..].parse().expect("a number");
        if i < 300 {
            assert_eq!(bytes(v), format!("v{i}").into_bytes(), "{name}");
        } else {
            assert_eq!(*v, Value::Nil, "{name}");
        }
    }
    // DEL of 5,000 names (every even field, repeated, and absent ones) with a SET of the same.
    let mut args: Vec<String> = vec!["SET".into(), "2".into(), "f0".into(), "new".into()];
    args.extend(["new1".into(), "x".into(), "DEL".into(), "5000".into()]);
    args.extend((0..5_000).map(|i| format!("f{}", (i * 2) % 1_000)));
    touch(&mut c, "big", &args);
    let all = get_all(&mut c, "big").expect("the session");
    let expected: Vec<Vec<u8>> = (0..300)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("f{i}").into_bytes())
        .chain([b"new1".to_vec()])
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(all.keys().cloned().collect::<Vec<_>>(), expected);
    assert_eq!(all[&b"new1"[..]], b"x".to_vec());
}

/// Waits until `SESSION.GET key` answers nil (max age passed) on `c`.
fn wait_gone(c: &mut Connection, key: &str) {
    wait_until(
        Duration::from_secs(10),
        "the session to reach its max age",
        || ok(c, &["SESSION.GET", key]) == Value::Nil,
    );
}

#[test]
fn max_age_holds_after_persist_or_a_later_expire() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut c = primary.conn();
    let mut r = replica.conn();
    for key in ["p", "e"] {
        touch(
            &mut c,
            key,
            &["IDLE", "3600", "MAXAGE", "1", "SET", "1", "a", "1"],
        );
    }
    ok(&mut c, &["PERSIST", "p"]);
    ok(&mut c, &["EXPIRE", "e", "1000000000"]);
    for key in ["p", "e"] {
        wait_gone(&mut c, key);
        assert_eq!(ok(&mut c, &["SESSION.INFO", key]), Value::Nil);
        assert_eq!(
            ok(&mut c, &["SESSION.SEEN", key, "x"]),
            Value::Array(vec![Value::Int(0)])
        );
    }
    // A write deletes it (replicating the DEL): ENRICH finds no session, TOUCH makes a new one.
    assert_eq!(ok(&mut c, &["SESSION.ENRICH", "p"]), Value::Nil);
    assert!(!exists(&mut c, "p"));
    assert_eq!(touch(&mut c, "e", &["SET", "1", "b", "2"])["new"], 1);
    assert_eq!(get_all(&mut c, "e").map(|f| f.len()), Some(1));
    wait_until(
        Duration::from_secs(10),
        "the replica to drop the session",
        || !exists(&mut r, "p") && get_all(&mut r, "e").is_some_and(|f| f.len() == 1),
    );
}

#[test]
fn configuration_ranges_are_what_is_applied_and_floats_print_sanely() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let e = err(
        &mut c,
        &["CONFIG", "SET", "session.impressions-width", "65536"],
    );
    assert!(e.contains("between 16 and 16384"), "{e}");
    config_set(&mut c, "session.impressions-width", "16384");
    let e = err(&mut c, &["CONFIG", "SET", "session.seen-error-rate", "1"]);
    assert!(e.contains("must be a number between 1e-9 and 0.25"), "{e}");
    assert_eq!(
        err(
            &mut c,
            &["SESSION.CATALOG", "ADD", "cat", "i", "SCORE", "1e301"]
        ),
        "ERR SCORE must be between -1e300 and 1e300"
    );
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "cat", "i", "SCORE", "1e300"],
    );
    assert_alive(&mut c);
}
