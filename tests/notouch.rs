//! The module only looks at keys it is told about (issue 15 item 6): after RESTORE, RENAME, COPY
//! and MOVE, which the module hears of to keep its per-user index, the key keeps the access
//! metadata the command gave it (OBJECT IDLETIME, OBJECT FREQ under an LFU policy: RESTORE sets
//! them, COPY makes a fresh value; RENAME and MOVE touch their source themselves) and the server's
//! keyspace_hits/keyspace_misses count only the command's own lookups. For string keys and
//! session keys alike (Redis's own unit/dump "RESTORE can set LRU" / "... LFU").

mod common;

use common::*;
use redis::{Connection, Value};

/// (keyspace_hits, keyspace_misses).
fn stats(c: &mut Connection) -> (i64, i64) {
    let get = |c: &mut Connection, name| {
        info_field(c, "stats", name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INFO stats {name}"))
    };
    (get(c, "keyspace_hits"), get(c, "keyspace_misses"))
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    String,
    Session,
}

const KINDS: [Kind; 2] = [Kind::String, Kind::Session];

/// The DUMP of a value of `kind` (made at a scratch key, then deleted).
fn payload(c: &mut Connection, kind: Kind) -> Vec<u8> {
    match kind {
        Kind::String => ok(c, &["SET", "scratch", "value"]),
        Kind::Session => ok(
            c,
            &["SESSION.TOUCH", "scratch", "USER", "alice", "EVENT", "i1"],
        ),
    };
    let dump = bytes(&ok(c, &["DUMP", "scratch"]));
    ok(c, &["DEL", "scratch"]);
    dump
}

/// RESTOREs a value of `kind` at `key` with `meta` (`IDLETIME n` or `FREQ n`).
fn restore(c: &mut Connection, kind: Kind, key: &str, meta: [&str; 2]) {
    let dump = payload(c, kind);
    ok(
        c,
        &[
            b"RESTORE".as_slice(),
            key.as_bytes(),
            b"0",
            &dump,
            meta[0].as_bytes(),
            meta[1].as_bytes(),
        ],
    );
}

/// Runs `op` and returns what it changed in (hits, misses).
fn stats_delta(c: &mut Connection, op: impl FnOnce(&mut Connection)) -> (i64, i64) {
    let before = stats(c);
    op(c);
    let after = stats(c);
    (after.0 - before.0, after.1 - before.1)
}

/// The session that arrived is still listed under its user: looking quietly still looks.
fn check_listed(c: &mut Connection, kind: Kind, db: &str, key: &str) {
    if let Kind::Session = kind {
        ok(c, &["SELECT", db]);
        let listed = ok(c, &["SESSION.SESSIONS", "alice"]);
        let names: Vec<Vec<u8>> = match listed {
            Value::Array(items) => items.iter().map(bytes).collect(),
            other => panic!("SESSIONS reply {other:?}"),
        };
        assert_eq!(names, vec![key.as_bytes().to_vec()], "db {db}");
        ok(c, &["SELECT", "0"]);
    }
}

#[test]
fn restore_keeps_the_idle_time_and_no_arrival_counts_a_lookup() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = server.conn();
    for kind in KINDS {
        ok(&mut c, &["FLUSHALL"]);
        let idle = |c: &mut Connection, key: &str| int(ok(c, &["OBJECT", "IDLETIME", key]));

        // RESTORE ... IDLETIME sets the idle time; nothing may reset it.
        let dump = payload(&mut c, kind);
        let delta = stats_delta(&mut c, |c| {
            ok(
                c,
                &[
                    b"RESTORE".as_slice(),
                    b"restored",
                    b"0",
                    &dump,
                    b"IDLETIME",
                    b"1000",
                ],
            );
        });
        assert_eq!(delta, (0, 0), "{kind:?}: RESTORE counts no lookup");
        assert!(
            idle(&mut c, "restored") >= 1000,
            "{kind:?}: RESTORE idle time"
        );
        check_listed(&mut c, kind, "0", "restored");

        // RENAME and MOVE look their source up for writing themselves (which resets its idle
        // time and counts nothing): the module's look at the arrival counts nothing either.
        let delta = stats_delta(&mut c, |c| {
            ok(c, &["RENAME", "restored", "renamed"]);
        });
        assert_eq!(delta, (0, 0), "{kind:?}: RENAME counts no lookup");
        check_listed(&mut c, kind, "0", "renamed");
        let delta = stats_delta(&mut c, |c| {
            assert_eq!(int(ok(c, &["MOVE", "renamed", "1"])), 1);
        });
        assert_eq!(delta, (0, 0), "{kind:?}: MOVE counts no lookup");
        check_listed(&mut c, kind, "1", "renamed");

        // COPY reads its source (one hit, its own); the module's look at the copy counts none.
        restore(&mut c, kind, "source", ["IDLETIME", "1000"]);
        let delta = stats_delta(&mut c, |c| {
            assert_eq!(int(ok(c, &["COPY", "source", "copied"])), 1);
        });
        assert_eq!(delta, (1, 0), "{kind:?}: COPY counts its own lookup only");
    }
}

#[test]
fn restore_and_copy_keep_the_lfu_counter() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = server.conn();
    // A counter at LFU_INIT_VAL (5) is raised by the first access with probability 1, so one
    // look that touches the key would show as 6.
    for kind in KINDS {
        ok(&mut c, &["FLUSHALL"]);
        let freq = |c: &mut Connection, key: &str| int(ok(c, &["OBJECT", "FREQ", key]));

        restore(&mut c, kind, "restored", ["FREQ", "5"]);
        assert_eq!(freq(&mut c, "restored"), 5, "{kind:?}: RESTORE FREQ");

        // COPY makes a new value, which starts at LFU_INIT_VAL.
        assert_eq!(int(ok(&mut c, &["COPY", "restored", "copied"])), 1);
        assert_eq!(freq(&mut c, "copied"), 5, "{kind:?}: COPY");
    }
}
