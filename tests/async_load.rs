//! Async loading (`repl-diskless-load swapdb`, issue 15 item 6): the module declares
//! REDISMODULE_OPTIONS_HANDLE_REPL_ASYNC_LOAD, so a replica loads a full sync into databases of
//! its own while it goes on serving the old ones. The module's own state follows: the registry
//! (catalogs, groups) and the per-user index stay the old dataset's during the load, become
//! exactly the primary's at the swap, and stay the old ones after an abort.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redis::{Connection, Value};

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

fn info_i64(c: &mut Connection, section: &str, name: &str) -> i64 {
    info_field(c, section, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} {name}"))
}

fn names(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| String::from_utf8_lossy(&bytes(i)).into_owned())
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// What the module holds besides the keyspace, as a replica serves it.
#[derive(Debug, PartialEq, Eq)]
struct ModuleState {
    sessions_alice: Vec<String>,
    sessions_bob: Vec<String>,
    catalogs: Vec<String>,
    registry: BTreeMap<&'static str, i64>,
}

fn module_state(c: &mut Connection) -> ModuleState {
    let mut registry = BTreeMap::new();
    for field in [
        "catalogs",
        "catalog_items",
        "groups",
        "live_notifications",
        "indexed_sessions",
        "indexed_users",
    ] {
        registry.insert(field, info_i64(c, "session", &format!("session_{field}")));
    }
    ModuleState {
        sessions_alice: names(ok(c, &["SESSION.SESSIONS", "alice"])),
        sessions_bob: names(ok(c, &["SESSION.SESSIONS", "bob"])),
        catalogs: names(ok(c, &["SESSION.CATALOG", "LIST"])),
        registry,
    }
}

fn synced(c: &mut Connection) -> bool {
    info_field(c, "replication", "master_link_status").as_deref() == Some("up")
        && info_field(c, "replication", "master_sync_in_progress").as_deref() == Some("0")
}

/// A primary and a replica using diskless sync with `swapdb` loading, the replica synced with the
/// dataset "A" (alice: s:a1, bob: s:b1, catalog `old`, group `g1`), plus `pad` keys of 1 KB so a
/// load takes a while when the primary is slowed down.
fn setup() -> (Server, Server) {
    let primary = Server::start(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--rdbcompression",
        "no",
    ]);
    // The replica serves clients between loaded chunks of this size (the default is 2 MB).
    let replica = Server::start(&[
        "--repl-diskless-load",
        "swapdb",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let mut p = primary.conn();
    ok(
        &mut p,
        &["SESSION.TOUCH", "s:a1", "USER", "alice", "EVENT", "i1"],
    );
    ok(
        &mut p,
        &["SESSION.TOUCH", "s:b1", "USER", "bob", "EVENT", "i2"],
    );
    ok(
        &mut p,
        &["SESSION.CATALOG", "ADD", "old", "item1", "SCORE", "1"],
    );
    ok(&mut p, &["SESSION.NOTIFYGROUP", "g1", "n1", "hello"]);
    ok(&mut p, &["DEBUG", "POPULATE", "2000", "pad", "1000"]);
    let mut r = replica.conn();
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    );
    wait_until(SYNC_TIMEOUT, "the initial sync", || {
        synced(&mut r) && digest(&mut r) == digest(&mut p)
    });
    (primary, replica)
}

/// Cuts the replica off and changes the dataset to "B" past what the backlog holds, so the
/// replica's next sync is a full one with a matching replication id: an async load.
fn diverge(p: &mut Connection) {
    let pad = "x".repeat(16 * 1024);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .cmd("CONFIG")
        .arg("SET")
        .arg("repl-backlog-size")
        .arg("16384")
        .cmd("SESSION.TOUCH")
        .arg("s:a2")
        .arg("USER")
        .arg("alice")
        .cmd("DEL")
        .arg("s:b1")
        .cmd("SESSION.CATALOG")
        .arg("ADD")
        .arg("new")
        .arg("item2")
        .cmd("SESSION.NOTIFYGROUP")
        .arg("g2")
        .arg("n2")
        .arg("world");
    for i in 0..10 {
        pipe.cmd("SET").arg(format!("big{i}")).arg(&pad);
    }
    let _: Value = pipe.query(p).expect("the diverging transaction");
}

fn assert_no_skip(replica: &Server) {
    let log = std::fs::read_to_string(replica.dir().join("redis.log")).unwrap_or_default();
    assert!(
        !log.contains("Skipping diskless-load"),
        "the replica refused diskless load:\n{}",
        replica.log_tail(20)
    );
}

#[test]
fn the_swap_brings_exactly_the_primary_data() {
    let (primary, replica) = setup();
    let (mut p, mut r) = (primary.conn(), replica.conn());
    let before = module_state(&mut r);
    assert_eq!(before.sessions_alice, ["s:a1"]);
    assert_eq!(before.catalogs, ["old"]);

    diverge(&mut p);
    wait_until(SYNC_TIMEOUT, "the full sync after the divergence", || {
        synced(&mut r) && digest(&mut r) == digest(&mut p)
    });
    let log = std::fs::read_to_string(replica.dir().join("redis.log")).unwrap_or_default();
    assert!(
        log.contains("Swapping active DB with loaded DB"),
        "no swapdb load:\n{}",
        replica.log_tail(30)
    );
    assert_no_skip(&replica);

    let after = module_state(&mut r);
    assert_eq!(
        after,
        module_state(&mut p),
        "the replica ends with the primary's state"
    );
    assert_eq!(after.sessions_alice, ["s:a1", "s:a2"]);
    assert!(after.sessions_bob.is_empty());
    assert_eq!(after.catalogs, ["new", "old"]);
    assert_eq!(after.registry["groups"], 2);
}

#[test]
fn the_old_data_is_served_during_the_load_and_kept_after_an_abort() {
    let (primary, replica) = setup();
    let (mut p, mut r) = (primary.conn(), replica.conn());
    let old_digest = digest(&mut r);
    let old = module_state(&mut r);
    assert_eq!(old.sessions_bob, ["s:b1"]);

    // 10 ms per key: the load of ~2000 keys takes about 20 s, which the abort cuts short.
    config_set(&mut p, "rdb-key-save-delay", "10000");
    diverge(&mut p);
    wait_until(SYNC_TIMEOUT, "the replica's async load", || {
        info_field(&mut r, "persistence", "async_loading").as_deref() == Some("1")
    });
    // The old dataset is served meanwhile, with its registry and index (the loaded registry,
    // already read from the head of the stream, is set aside).
    assert_eq!(
        info_field(&mut r, "persistence", "loading").as_deref(),
        Some("0")
    );
    assert_eq!(module_state(&mut r), old, "during the async load");
    assert_eq!(digest(&mut r), old_digest, "during the async load");
    assert!(get_all(&mut r, "s:b1").is_some());

    // Abort: the primary drops the replica mid-load (and waits before offering another sync).
    config_set(&mut p, "repl-diskless-sync-delay", "5");
    ok(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    wait_until(SYNC_TIMEOUT, "the aborted load", || {
        info_field(&mut r, "persistence", "async_loading").as_deref() == Some("0")
    });
    assert_eq!(module_state(&mut r), old, "after the abort");
    assert_eq!(digest(&mut r), old_digest, "after the abort");
    assert_no_skip(&replica);

    // A fast sync again ends with the primary's state.
    config_set(&mut p, "rdb-key-save-delay", "0");
    config_set(&mut p, "repl-diskless-sync-delay", "0");
    ok(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    wait_until(SYNC_TIMEOUT, "the next full sync", || {
        synced(&mut r) && digest(&mut r) == digest(&mut p)
    });
    assert_eq!(
        module_state(&mut r),
        module_state(&mut p),
        "after the final swap"
    );
}
