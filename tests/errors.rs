//! Refused commands: every error path replies an error and changes nothing (not the session, not
//! its expiry, not the keyspace), and random malformed commands never hurt the server.

mod common;

use common::dump::ModuleDump;
use common::*;
use rand::seq::SliceRandom;
use rand::Rng;
use redis::{Connection, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const IDLE_RANGE: &str = "ERR IDLE must be between 1 and 315360000";
const MAXAGE_RANGE: &str = "ERR MAXAGE must be between 1 and 315360000";
const AT_RANGE: &str = "ERR AT must be between 0 and 16725225600000";
const SET_COUNT: &str = "ERR SET count must be positive and match the arguments that follow";
const DEL_COUNT: &str = "ERR DEL count must be positive and match the arguments that follow";
const FUTURE: &str = "ERR AT is more than a minute in the future";
const TOO_MANY: &str = "ERR too many fields in the session (limit 3, session.max-fields)";
/// The wording before "too large" names what the limit covers, which grows with the commands.
const TOO_LARGE: &str = "ERR field* too large (limit 8 bytes, session.max-field-size)";

fn arity(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

/// Everything a refused command must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    dataset: String,
    info: Vec<u8>,
    expiry: i64,
}

fn snapshot(c: &mut Connection, key: &str) -> Snapshot {
    Snapshot {
        dataset: digest(c),
        info: bytes(&ok(c, &["SESSION.INFO", key])),
        expiry: pexpiretime(c, key),
    }
}

/// Whether an error reply matches `pattern`: exactly, or around its one `*` (any text).
fn error_matches(actual: &str, pattern: &str) -> bool {
    match pattern.split_once('*') {
        None => actual == pattern,
        Some((head, tail)) => {
            actual.len() >= head.len() + tail.len()
                && actual.starts_with(head)
                && actual.ends_with(tail)
        }
    }
}

/// Runs `args`, which must fail with an error matching `expected`, and checks that nothing
/// changed.
fn assert_refused<A: AsRef<[u8]>>(c: &mut Connection, key: &str, args: &[A], expected: &str) {
    let before = snapshot(c, key);
    let shown: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
        .collect();
    match call(c, args) {
        Ok(v) => panic!("{shown:?} succeeded with {v:?}, expected {expected:?}"),
        Err(e) => assert!(
            error_matches(&e, expected),
            "{shown:?}: {e:?}, expected {expected:?}"
        ),
    }
    assert_eq!(snapshot(c, key), before, "{shown:?} changed the dataset");
}

/// `SESSION.TOUCH` arguments (after the key) that must be refused, and the error of each.
fn bad_touches() -> Vec<(Vec<String>, &'static str)> {
    let future = (now_ms() + 120_000).to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["BOGUS"], SYNTAX),
        (vec!["IDLEIDLEIDLE", "1"], SYNTAX),
        (vec!["IDLE"], SYNTAX),
        (vec!["MAXAGE"], SYNTAX),
        (vec!["USER"], SYNTAX),
        (vec!["AT"], SYNTAX),
        (vec!["SET"], SYNTAX),
        (vec!["DEL"], SYNTAX),
        (vec!["XX", "XX"], SYNTAX),
        (vec!["IDLE", "10", "idle", "10"], SYNTAX),
        (vec!["USER", "a", "USER", "b"], SYNTAX),
        (vec!["AT", "1", "AT", "1"], SYNTAX),
        (vec!["SET", "1", "a", "1", "SET", "1", "b", "2"], SYNTAX),
        (vec!["SET", "1", "a", "1", "extra"], SYNTAX),
        (vec!["SET", "2", "a", "1", "DEL", "1", "b"], SYNTAX),
        (vec!["IDLE", "x"], NOT_INTEGER),
        (vec!["IDLE", "01"], NOT_INTEGER),
        (vec!["IDLE", "+1"], NOT_INTEGER),
        (vec!["IDLE", " 1"], NOT_INTEGER),
        (vec!["IDLE", "1.5"], NOT_INTEGER),
        (vec!["IDLE", "-0"], NOT_INTEGER),
        (vec!["IDLE", ""], NOT_INTEGER),
        (vec!["MAXAGE", "99999999999999999999"], NOT_INTEGER),
        (vec!["AT", "now"], NOT_INTEGER),
        (vec!["SET", "x", "a", "b"], NOT_INTEGER),
        (vec!["DEL", "1e1", "a"], NOT_INTEGER),
        (vec!["IDLE", "0"], IDLE_RANGE),
        (vec!["IDLE", "-5"], IDLE_RANGE),
        (vec!["IDLE", "315360001"], IDLE_RANGE),
        (vec!["MAXAGE", "0"], MAXAGE_RANGE),
        (vec!["MAXAGE", "9223372036854775807"], MAXAGE_RANGE),
        (vec!["AT", "-1"], AT_RANGE),
        (vec!["AT", "16725225600001"], AT_RANGE),
        (vec!["SET", "2", "a", "1"], SET_COUNT),
        (vec!["SET", "1", "a"], SET_COUNT),
        (vec!["SET", "0"], SET_COUNT),
        (vec!["SET", "-1", "a", "b"], SET_COUNT),
        (vec!["DEL", "2", "a"], DEL_COUNT),
        (vec!["DEL", "0"], DEL_COUNT),
        (vec!["DEL", "-3", "a"], DEL_COUNT),
        (vec!["AT", &future], FUTURE),
        (vec!["SET", "2", "n1", "1", "n2", "2"], TOO_MANY),
        (vec!["SET", "1", "a", "123456789"], TOO_LARGE),
        (vec!["SET", "1", "123456789", "a"], TOO_LARGE),
    ];
    cases
        .into_iter()
        .map(|(args, e)| (args.into_iter().map(String::from).collect(), e))
        .collect()
}

#[test]
fn refused_touches_change_nothing() {
    let server = Server::builder()
        .module_args(&["max-fields", "3", "max-field-size", "8"])
        .start();
    let mut c = server.conn();
    touch(
        &mut c,
        "s",
        &[
            "SET",
            "2",
            "a",
            "1",
            "b",
            "2",
            "USER",
            "u",
            "AT",
            &(now_ms() - 5_000).to_string(),
        ],
    );
    for (args, expected) in bad_touches() {
        // on an existing session, and on a missing key (which must not be created)
        for key in ["s", "fresh"] {
            if key == "fresh" && expected == TOO_MANY {
                continue; // a new session holds only the two fields it sets: within the limit
            }
            let mut full = vec!["SESSION.TOUCH".to_owned(), key.to_owned()];
            full.extend(args.iter().cloned());
            assert_refused(&mut c, "s", &full, expected);
        }
    }
    assert!(!exists(&mut c, "fresh"));

    // limits: at the limit is fine, one more field is not, also for a new session
    touch(&mut c, "s", &["SET", "1", "c", "12345678"]);
    assert_refused(
        &mut c,
        "s",
        &["SESSION.TOUCH", "s", "SET", "1", "d", "1"],
        TOO_MANY,
    );
    assert_refused(
        &mut c,
        "s",
        &[
            "SESSION.TOUCH",
            "fresh",
            "SET",
            "4",
            "a",
            "1",
            "b",
            "2",
            "c",
            "3",
            "d",
            "4",
        ],
        TOO_MANY,
    );
    touch(&mut c, "s", &["SET", "1", "d", "1", "DEL", "1", "a"]);

    // limits are read at each command
    config_set(&mut c, "session.max-fields", "10");
    touch(&mut c, "s", &["SET", "2", "n1", "1", "n2", "2"]);
    config_set(&mut c, "session.max-field-size", "4");
    let big = TOO_LARGE.replace("limit 8", "limit 4");
    assert_refused(
        &mut c,
        "s",
        &["SESSION.TOUCH", "s", "SET", "1", "e", "12345"],
        &big,
    );
}

#[test]
fn other_types_are_wrongtype() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch::<&str>(&mut c, "s", &[]);
    ok(&mut c, &["SET", "str", "value"]);
    ok(&mut c, &["RPUSH", "list", "x"]);
    for key in ["str", "list"] {
        for args in [
            vec!["SESSION.TOUCH", key],
            vec!["SESSION.TOUCH", key, "XX", "SET", "1", "a", "1"],
            vec!["SESSION.GET", key],
            vec!["SESSION.GET", key, "a"],
            vec!["SESSION.INFO", key],
        ] {
            assert_refused(&mut c, "s", &args, WRONGTYPE);
        }
    }
    let saved = ModuleDump::parse(&dump_uncompressed(&mut c, "s")).saved;
    assert_refused(
        &mut c,
        "s",
        &[&b"SESSION.LOAD"[..], b"str", &saved],
        WRONGTYPE,
    );
    assert_eq!(
        ok(&mut c, &["GET", "str"]),
        Value::BulkString(b"value".to_vec())
    );
}

#[test]
fn wrong_arity_is_refused() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch::<&str>(&mut c, "s", &[]);
    for args in [
        vec!["SESSION.TOUCH"],
        vec!["SESSION.GET"],
        vec!["SESSION.INFO"],
        vec!["SESSION.INFO", "s", "extra"],
        vec!["SESSION.LOAD"],
        vec!["SESSION.LOAD", "s"],
        vec!["SESSION.LOAD", "s", "payload", "extra"],
    ] {
        assert_refused(&mut c, "s", &args, &arity(&args[0].to_lowercase()));
    }
}

#[test]
fn refused_loads_change_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["SET", "1", "a", "1"]);
    let saved = ModuleDump::parse(&dump_uncompressed(&mut c, "s")).saved;
    let mut trailing = saved.clone();
    trailing.push(0);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "ERR corrupt session encoding: empty"),
        (
            b"garbage".to_vec(),
            "ERR unknown session encoding version 103",
        ),
        (vec![0], "ERR unknown session encoding version 0"),
        (
            saved[..saved.len() - 1].to_vec(),
            "ERR corrupt session encoding: ",
        ),
        (trailing, "ERR corrupt session encoding: "),
    ];
    for (payload, expected) in cases {
        for key in ["s", "fresh"] {
            let before = snapshot(&mut c, "s");
            let e = err(&mut c, &[&b"SESSION.LOAD"[..], key.as_bytes(), &payload]);
            assert!(e.starts_with(expected), "{payload:?}: {e}");
            assert_eq!(snapshot(&mut c, "s"), before);
        }
    }
    assert!(!exists(&mut c, "fresh"));
}

/// `DUMP key` of a session with `rdbcompression no`, so that its saved form is readable.
fn dump_uncompressed(c: &mut Connection, key: &str) -> Vec<u8> {
    config_set(c, "rdbcompression", "no");
    bytes(&ok(c, &["DUMP", key]))
}

// ---------------------------------------------------------------------------------------------
// Random malformed commands

const KEYWORDS: [&str; 9] = [
    "IDLE", "MAXAGE", "XX", "USER", "SET", "DEL", "AT", "set", "Idle",
];

fn random_token(rng: &mut impl Rng, now: i64) -> Vec<u8> {
    match rng.gen_range(0..6) {
        0 => KEYWORDS.choose(rng).unwrap().as_bytes().to_vec(),
        1 => [
            "0",
            "1",
            "-1",
            "2",
            "3",
            "315360000",
            "315360001",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "16725225600000",
            "01",
            "",
        ]
        .choose(rng)
        .unwrap()
        .as_bytes()
        .to_vec(),
        2 => (now + rng.gen_range(-3_600_000..120_000))
            .to_string()
            .into_bytes(),
        3 => rng.gen_range(0..100_000u32).to_string().into_bytes(),
        _ => (0..rng.gen_range(0..24)).map(|_| rng.gen()).collect(),
    }
}

/// A touch: random tokens, or a valid touch with a few tokens dropped, replaced or inserted.
fn random_touch(rng: &mut impl Rng, now: i64) -> Vec<Vec<u8>> {
    if rng.gen_bool(0.3) {
        return (0..rng.gen_range(0..10))
            .map(|_| random_token(rng, now))
            .collect();
    }
    let mut args = random_touch_args(rng);
    if rng.gen_bool(0.3) {
        args.extend([b"AT".to_vec(), random_token(rng, now)]);
    }
    for _ in 0..rng.gen_range(0..3) {
        let at = rng.gen_range(0..=args.len());
        match rng.gen_range(0..3) {
            0 if at < args.len() => {
                args.remove(at);
            }
            1 if at < args.len() => args[at] = random_token(rng, now),
            _ => args.insert(at, random_token(rng, now)),
        }
    }
    args
}

/// A saved form for LOAD: a real one, damaged (flipped, cut or extended), or random bytes.
fn random_payload(rng: &mut impl Rng, saved: &[Vec<u8>]) -> Vec<u8> {
    let mut p = saved.choose(rng).unwrap().clone();
    match rng.gen_range(0..5) {
        0 => {}
        1 => p.truncate(rng.gen_range(0..p.len())),
        2 => p.extend((0..rng.gen_range(1..4)).map(|_| rng.gen::<u8>())),
        3 => p = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect(),
        _ => {
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..p.len());
                p[i] ^= 1 << rng.gen_range(0..8);
            }
        }
    }
    p
}

/// Checks that a successful reply has the documented shape for its command.
fn check_reply(command: &str, reply: Value) {
    match (command, reply) {
        (_, Value::Nil) if command != "SESSION.LOAD" => {}
        ("SESSION.TOUCH", v) => {
            touch_map(v);
        }
        ("SESSION.GET", Value::Array(items)) => {
            for item in items {
                assert!(
                    matches!(item, Value::BulkString(_) | Value::Nil),
                    "{item:?}"
                );
            }
        }
        ("SESSION.INFO", Value::BulkString(doc)) => {
            serde_json::from_slice::<serde_json::Value>(&doc).expect("INFO is JSON");
        }
        ("SESSION.LOAD", Value::Okay) => {}
        (command, v) => panic!("{command} replied {v:?}"),
    }
}

/// Digests of the sessions that cannot expire within the next minute.
fn durable_digests(c: &mut Connection) -> Vec<(Vec<u8>, String)> {
    let horizon = now_ms() + 60_000;
    let mut out = Vec::new();
    for key in keys(c) {
        let ty = bytes(&ok(c, &[&b"TYPE"[..], &key]));
        let expiry: i64 = command(&[&b"PEXPIRETIME"[..], &key]).query(c).unwrap();
        if ty == b"session01" && (expiry == -1 || expiry > horizon) {
            let d: Vec<String> = command(&[&b"DEBUG"[..], b"DIGEST-VALUE", &key])
                .query(c)
                .unwrap();
            out.push((key, d[0].clone()));
        }
    }
    out.sort();
    out
}

#[test]
fn random_malformed_commands_never_hurt_the_server() {
    const COMMANDS: usize = 5_000;
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(0x5e55_10e5);
    let now = now_ms();
    let sessions = random_sessions(&mut c, &mut rng, "s", 3, 20);
    // tight limits, so that the random commands hit them too
    config_set(&mut c, "session.max-fields", "8");
    config_set(&mut c, "session.max-field-size", "32");
    let saved: Vec<Vec<u8>> = sessions
        .iter()
        .map(|k| ModuleDump::parse(&dump_uncompressed(&mut c, k)).saved)
        .collect();
    ok(&mut c, &["SET", "str", "x"]);
    let mut key_pool: Vec<Vec<u8>> = sessions.iter().map(|k| k.as_bytes().to_vec()).collect();
    key_pool.extend([b"str".to_vec(), b"missing".to_vec(), b"\x00\xff".to_vec()]);

    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..COMMANDS {
        let command = *[
            "SESSION.TOUCH",
            "SESSION.TOUCH",
            "SESSION.TOUCH",
            "SESSION.GET",
            "SESSION.INFO",
            "SESSION.LOAD",
        ]
        .choose(&mut rng)
        .unwrap();
        let mut args = vec![command.as_bytes().to_vec()];
        if rng.gen_bool(0.97) {
            args.push(key_pool.choose(&mut rng).unwrap().clone());
        }
        match command {
            "SESSION.TOUCH" => args.extend(random_touch(&mut rng, now)),
            "SESSION.LOAD" if rng.gen_bool(0.9) => args.push(random_payload(&mut rng, &saved)),
            _ => args.extend((0..rng.gen_range(0..4)).map(|_| random_token(&mut rng, now))),
        }
        match call(&mut c, &args) {
            Ok(reply) => {
                accepted += 1;
                check_reply(command, reply);
            }
            Err(e) => {
                refused += 1;
                assert!(e.starts_with("ERR ") || e.starts_with("WRONGTYPE "), "{e}");
            }
        }
    }
    println!("{accepted} accepted, {refused} refused");
    assert!(
        accepted > COMMANDS / 10 && refused > COMMANDS / 10,
        "a useful mix"
    );
    assert_eq!(ok(&mut c, &["PING"]), Value::SimpleString("PONG".into()));

    // whatever was stored is a valid session that saves and loads back identically
    let before = durable_digests(&mut c);
    for (key, _) in &before {
        session_info(&mut c, key);
    }
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(durable_digests(&mut c), before);
}

/// Lowering `session.max-fields` below what a session holds must not freeze it: a touch that
/// adds no field (a plain refresh, a DEL, an overwrite) still applies; only growth is refused.
#[test]
fn sessions_over_a_lowered_field_limit_can_still_be_refreshed() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(
        &mut c,
        "s",
        &["SET", "5", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"],
    );
    config_set(&mut c, "session.max-fields", "3");
    for args in [
        &["SESSION.TOUCH", "s"][..],
        &["SESSION.TOUCH", "s", "SET", "1", "b", "9"],
        &["SESSION.TOUCH", "s", "DEL", "1", "a"],
    ] {
        let reply = call(&mut c, args);
        assert!(reply.is_ok(), "{args:?}: {reply:?}");
    }
    assert_refused(
        &mut c,
        "s",
        &["SESSION.TOUCH", "s", "SET", "1", "z", "1"],
        TOO_MANY,
    );
}
