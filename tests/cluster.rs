//! Redis Cluster: three primaries on loopback, the module on every node.
//!
//! - Every keyed SESSION command is routed by its key: a node that does not own the key's slot
//!   answers `MOVED` (the server reads the key from the command's key specs), two keys in
//!   different slots are `CROSSSLOT`, and the `redis` crate's cluster client runs them all.
//! - `SESSION.SESSIONS`/`SESSION.REVOKE` answer for the whole cluster from any node.
//! - Registry commands (`SESSION.CATALOG ...`, `SESSION.NOTIFYGROUP`) name no key: each is sent
//!   to one node and reaches the others over the cluster bus (`wait_converged`); a notification
//!   keeps its origin's sequence everywhere, so a session that moves between nodes still gets
//!   each one exactly once.
//! - Resharding (`CLUSTER SETSLOT ... IMPORTING/MIGRATING`, `MIGRATE`, `SETSLOT ... NODE`) while a
//!   writer keeps touching 10,000 sessions loses no session, no field and no event, and keeps each
//!   session's expiry.
//!
//! `SESSION_SLOW=1` moves slots back and forth several times instead of once.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::cluster::{free_port, key_slot, Cluster};
use common::*;
use redis::cluster::ClusterConnection;
use redis::{Connection, Value};

fn slow() -> bool {
    matches!(
        std::env::var("SESSION_SLOW").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

/// Three primaries, each with a third of the slots, no replicas (a long node timeout: a node
/// busy with a migration is never marked failing).
fn three_primaries() -> Cluster {
    Cluster::builder()
        .replicas(0)
        .node_timeout_ms(15000)
        .start()
}

/// Runs a command on every node (primaries alike) and returns each node's reply: checks that
/// every node answers the same, not a way to reach them (the module does that itself).
fn on_every_node(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    (0..cluster.nodes.len())
        .map(|i| ok(&mut cluster.conn(i), args))
        .collect()
}

fn cluster_call(c: &mut ClusterConnection, args: &[&str]) -> Value {
    command(args)
        .query::<Value>(c)
        .unwrap_or_else(|e| panic!("{args:?} through the cluster client: {e}"))
}

fn has_command(c: &mut Connection, name: &str) -> bool {
    match ok(c, &["COMMAND", "INFO", name]) {
        Value::Array(items) => items.first().is_some_and(|v| *v != Value::Nil),
        _ => false,
    }
}

#[test]
fn every_keyed_command_is_routed_by_its_key() {
    let cluster = three_primaries();
    let mut cc = cluster.client();
    ok(
        &mut cluster.conn(0),
        &["SESSION.CATALOG", "ADD", "news", "a1", "SCORE", "5"],
    );
    cluster.wait_converged();
    let users = has_command(&mut cluster.conn(0), "session.rotate");

    // sessions on every node
    let keys: Vec<String> = (0..30).map(|i| format!("route:{i}")).collect();
    let owners: BTreeSet<usize> = keys.iter().map(|k| cluster.owner_of(k)).collect();
    assert_eq!(owners.len(), 3, "the keys spread over the three nodes");
    for key in &keys {
        let slot = key_slot(key.as_bytes());
        let owner = cluster.owner_of(key);
        let wrong = cluster.server((owner + 1) % 3);
        let load = {
            let mut c = cluster.conn(owner);
            touch(&mut c, key, &["SET", "1", "f", "v", "EVENT", "a0"]);
            config_set(&mut c, "rdbcompression", "no");
            let saved = common::dump::ModuleDump::parse(&bytes(&ok(&mut c, &["DUMP", key]))).saved;
            String::from_utf8(saved).ok()
        };
        let mut commands: Vec<Vec<&str>> = vec![
            vec!["SESSION.TOUCH", key, "SET", "1", "g", "w"],
            vec!["SESSION.GET", key],
            vec!["SESSION.SEEN", key, "a0"],
            vec!["SESSION.INFO", key],
            vec!["SESSION.ENRICH", key, "JOIN", "1", "beta"],
            vec!["SESSION.SURFACE", key, "FROM", "news"],
            vec!["SESSION.IMPRESS", key, "1", "a1"],
            vec!["SESSION.INBOX", key],
        ];
        if let Some(saved) = &load {
            commands.push(vec!["SESSION.LOAD", key, saved]);
        }
        for args in &commands {
            let e = err(&mut wrong.conn(), args);
            assert_eq!(
                e,
                format!("MOVED {slot} 127.0.0.1:{}", cluster.server(owner).port()),
                "{args:?} on a node that does not own slot {slot}"
            );
            cluster_call(&mut cc, args);
        }
    }
    assert_eq!(
        cluster_call(&mut cc, &["SESSION.SURFACE", "route:0", "FROM", "news"]),
        Value::Array(vec![Value::BulkString(b"a1".to_vec())])
    );

    if users {
        // ROTATE names two keys: they must share a slot
        let e = err(
            &mut cluster.conn(0),
            &["SESSION.ROTATE", "route:1", "route:1:new"],
        );
        assert!(e.starts_with("CROSSSLOT") || e.starts_with("MOVED"), "{e}");
        let before = cluster_call(&mut cc, &["SESSION.GET", "{u1}:a"]);
        assert_eq!(before, Value::Nil);
        cluster_call(&mut cc, &["SESSION.TOUCH", "{u1}:a", "USER", "alice"]);
        let r = cluster_call(&mut cc, &["SESSION.ROTATE", "{u1}:a", "{u1}:b"]);
        assert!(!matches!(r, Value::Nil), "{r:?}");
        assert!(cluster_call(&mut cc, &["EXISTS", "{u1}:b"]) == Value::Int(1));
        // the per-user index is per node, and SESSIONS/REVOKE answer for the whole cluster from
        // any node (tests/cluster_users.rs covers them in depth)
        for (i, key) in ["{u2}:x", "{u3}:y", "{u4}:z", "{u5}:w"].iter().enumerate() {
            cluster_call(
                &mut cc,
                &[
                    "SESSION.TOUCH",
                    key,
                    "USER",
                    "bob",
                    "SET",
                    "1",
                    "n",
                    &i.to_string(),
                ],
            );
        }
        for v in on_every_node(&cluster, &["SESSION.SESSIONS", "bob"]) {
            match v {
                Value::Array(items) => assert_eq!(items.len(), 4, "every node lists all four"),
                other => panic!("{other:?}"),
            }
        }
        let revoked = cluster_call(&mut cc, &["SESSION.REVOKE", "bob"]);
        assert_eq!(revoked, Value::Int(4));
    }
}

/// Registry commands sent to ONE primary (a different one each time) reach every node over the
/// cluster bus: sessions on every node surface from the catalog and receive a notification once,
/// also after moving to another node.
#[test]
fn registry_commands_on_one_primary_reach_every_node() {
    let mut cluster = three_primaries();
    let mut cc = cluster.client();
    for i in 0..20 {
        let item = format!("item{i}");
        let score = i.to_string();
        let cat = if i % 2 == 0 { "even" } else { "odd" };
        let reply = ok(
            &mut cluster.conn(i % 3),
            &[
                "SESSION.CATALOG",
                "ADD",
                "news",
                &item,
                "SCORE",
                &score,
                "CATEGORIES",
                "1",
                cat,
            ],
        );
        assert_eq!(reply, Value::Int(1), "{item} is new");
    }
    cluster.wait_converged();
    let lists = on_every_node(&cluster, &["SESSION.CATALOG", "LIST"]);
    assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
    let infos = on_every_node(&cluster, &["SESSION.CATALOG", "INFO", "news"]);
    assert!(infos.iter().all(|i| *i == infos[0]), "{infos:?}");

    let keys: Vec<String> = (0..30).map(|i| format!("reg:{i}")).collect();
    let owners: BTreeSet<usize> = keys.iter().map(|k| cluster.owner_of(k)).collect();
    assert_eq!(owners.len(), 3, "the sessions live on every node");
    for key in &keys {
        cluster_call(
            &mut cc,
            &[
                "SESSION.TOUCH",
                key,
                "EVENT",
                "item19",
                "CATEGORIES",
                "1",
                "odd",
            ],
        );
        cluster_call(&mut cc, &["SESSION.ENRICH", key, "JOIN", "1", "beta"]);
        let surfaced = cluster_call(
            &mut cc,
            &["SESSION.SURFACE", key, "FROM", "news", "COUNT", "3"],
        );
        let Value::Array(items) = surfaced else {
            panic!("{surfaced:?}")
        };
        assert_eq!(items.len(), 3, "{key}: the catalog is on its node");
        assert!(
            !items.contains(&Value::BulkString(b"item19".to_vec())),
            "seen"
        );
    }

    let notify = ["SESSION.NOTIFYGROUP", "beta", "n1", "hello"];
    assert_eq!(ok(&mut cluster.conn(2), &notify), Value::Int(1));
    cluster.wait_converged();
    for i in 0..cluster.nodes.len() {
        assert_eq!(
            ok(&mut cluster.conn(i), &notify),
            Value::Int(0),
            "idempotent by id on every node"
        );
    }
    for key in &keys {
        let inbox = cluster_call(&mut cc, &["SESSION.INBOX", key]);
        assert!(
            matches!(&inbox, Value::Array(v) if v.len() == 1),
            "{key}: {inbox:?}"
        );
    }

    // move the slots of a third of the sessions to another node: nothing is delivered twice,
    // and the next notification reaches them all once
    let slots: BTreeSet<u16> = keys[..10].iter().map(|k| key_slot(k.as_bytes())).collect();
    for slot in &slots {
        let from = cluster.slot_owner(*slot);
        cluster.move_slots(std::iter::once(*slot), from, (from + 1) % 3);
    }
    for key in &keys {
        let inbox = cluster_call(&mut cc, &["SESSION.INBOX", key]);
        assert_eq!(
            inbox,
            Value::Array(vec![]),
            "{key}: delivered twice after moving"
        );
    }
    ok(
        &mut cluster.conn(1),
        &["SESSION.NOTIFYGROUP", "beta", "n2", "again"],
    );
    cluster.wait_converged();
    for key in &keys {
        let inbox = cluster_call(&mut cc, &["SESSION.INBOX", key]);
        assert!(
            matches!(&inbox, Value::Array(v) if v.len() == 1),
            "{key}: {inbox:?}"
        );
        assert_eq!(
            cluster_call(&mut cc, &["SESSION.INBOX", key]),
            Value::Array(vec![])
        );
    }

    assert_eq!(
        ok(&mut cluster.conn(0), &["SESSION.CATALOG", "DROP", "news"]),
        Value::Int(1)
    );
    cluster.wait_converged();
    for i in 0..cluster.nodes.len() {
        assert_eq!(
            ok(&mut cluster.conn(i), &["SESSION.CATALOG", "LIST"]),
            Value::Array(vec![]),
            "the drop reached every node"
        );
    }
}

/// What the writer did: for each session, the last round that touched it.
struct Written {
    last_round: Vec<Option<usize>>,
    rounds: usize,
}

/// Touches every session once per round (fields `last` and `r<round>`, an event per round)
/// until `stop` is set and the round in progress is done.
fn writer(mut cc: ClusterConnection, sessions: usize, stop: Arc<AtomicBool>) -> Written {
    let mut last_round = vec![None; sessions];
    let mut round = 0;
    loop {
        let value = round.to_string();
        let field = format!("r{round}");
        let item = format!("item{round}");
        for (i, last) in last_round.iter_mut().enumerate() {
            let key = format!("sess:{i}");
            let reply = cluster_call(
                &mut cc,
                &[
                    "SESSION.TOUCH",
                    &key,
                    "SET",
                    "2",
                    "last",
                    &value,
                    &field,
                    "x",
                    "EVENT",
                    &item,
                ],
            );
            assert!(
                matches!(reply, Value::Array(_) | Value::Map(_)),
                "{reply:?}"
            );
            *last = Some(round);
        }
        round += 1;
        if stop.load(Ordering::SeqCst) {
            return Written {
                last_round,
                rounds: round,
            };
        }
    }
}

#[test]
fn resharding_under_writes_loses_no_session_and_no_field() {
    const SESSIONS: usize = 10_000;
    let mut cluster = three_primaries();
    let mut cc = cluster.client();
    // the sessions exist before resharding starts (round 0 is their creation)
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let cc = cluster.client();
        let stop = stop.clone();
        thread::spawn(move || writer(cc, SESSIONS, stop))
    };
    wait_until(Duration::from_secs(120), "the sessions to exist", || {
        (0..cluster.nodes.len())
            .map(|i| {
                redis::cmd("DBSIZE")
                    .query::<usize>(&mut cluster.conn(i))
                    .unwrap()
            })
            .sum::<usize>()
            >= SESSIONS
    });

    // a third of node 0's slots to node 1, and part of node 2's to node 0; slow: back and forth
    let mut moves: Vec<(std::ops::Range<u16>, usize, usize)> =
        vec![(0..1820, 0, 1), (10923..12000, 2, 0)];
    if slow() {
        moves.extend([
            (0..1820, 1, 2),
            (10923..12000, 0, 1),
            (0..1820, 2, 0),
            (10923..12000, 1, 2),
        ]);
    }
    let mut moved = 0;
    for (slots, from, to) in moves {
        moved += cluster.move_slots(slots, from, to);
    }
    stop.store(true, Ordering::SeqCst);
    let written = handle.join().expect("the writer");
    println!(
        "{moved} keys migrated while the writer did {} rounds over {SESSIONS} sessions",
        written.rounds
    );
    assert!(moved > 1_000, "the resharding moved sessions ({moved})");
    assert!(written.rounds >= 2, "the writer ran during the resharding");

    let total: usize = (0..cluster.nodes.len())
        .map(|i| {
            redis::cmd("DBSIZE")
                .query::<usize>(&mut cluster.conn(i))
                .unwrap()
        })
        .sum();
    assert_eq!(total, SESSIONS, "no session lost or duplicated");
    for (i, last) in written.last_round.iter().enumerate() {
        let key = format!("sess:{i}");
        let last = last.expect("every session touched");
        let Value::Array(pairs) = cluster_call(&mut cc, &["SESSION.GET", &key]) else {
            panic!("{key} is gone")
        };
        let mut fields: Vec<(String, String)> = pairs
            .chunks(2)
            .map(|p| {
                (
                    String::from_utf8(bytes(&p[0])).unwrap(),
                    String::from_utf8(bytes(&p[1])).unwrap(),
                )
            })
            .collect();
        fields.sort();
        let mut expected: Vec<(String, String)> = (0..=last)
            .map(|r| (format!("r{r}"), "x".to_owned()))
            .chain(std::iter::once(("last".to_owned(), last.to_string())))
            .collect();
        expected.sort();
        assert_eq!(fields, expected, "{key}");
        if i % 10 == 0 {
            let info: serde_json::Value =
                serde_json::from_slice(&bytes(&cluster_call(&mut cc, &["SESSION.INFO", &key])))
                    .unwrap();
            assert_eq!(info["activity"]["events"], last + 1, "{key}: events");
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut cc).unwrap();
            // MIGRATE carries the TTL relative (DUMP/RESTORE), so the target sets the expiry
            // from its own clock: later by the transfer time, never earlier, until the next
            // TOUCH sets it exactly again (the transfer may take seconds on a loaded machine:
            // the bound is generous, only the lower one is exact)
            let deadline = info["expires_at_ms"].as_i64().unwrap();
            assert!(
                (0..=60_000).contains(&(at - deadline)),
                "{key}: key expiry {at}, session deadline {deadline}"
            );
        }
    }
}

/// In cluster mode the registry's versions and tombstones survive a preamble-less AOF rewrite
/// and a restart from it (written as `SESSION.SYNC APPLY` of its snapshot), and `SESSION.SYNC`
/// is refused from clients.
#[test]
fn a_cluster_node_keeps_registry_versions_through_an_aof_rewrite() {
    let bus = free_port().to_string();
    let mut node = Server::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus,
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let mut c = node.conn();
    ok(&mut c, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    wait_until(Duration::from_secs(30), "cluster_state:ok", || {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut c)
            .unwrap_or_default();
        info.contains("cluster_state:ok")
    });
    // a session carries the registry into a rewrite without the preamble
    ok(&mut c, &["SESSION.TOUCH", "s1", "SET", "1", "f", "v"]);
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "news", "a1", "SCORE", "3"],
    );
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "news", "a2", "SCORE", "4"],
    );
    ok(&mut c, &["SESSION.CATALOG", "DEL", "news", "a2"]);
    ok(&mut c, &["SESSION.NOTIFYGROUP", "g", "n1", "hello"]);
    let before = info_field(&mut c, "session", "session_registry_digest").expect("digest");
    let entries = info_field(&mut c, "session", "session_registry_entries");
    assert_eq!(
        entries.as_deref(),
        Some("3"),
        "item, tombstone, notification"
    );
    let refused = err(&mut c, &["SESSION.SYNC", "APPLY", "\u{1}junk"]);
    assert!(refused.contains("reserved"), "{refused}");
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_for_aof_rewrite(&mut c);
    drop(c);
    node.restart();
    let mut c = node.conn();
    assert_eq!(
        info_field(&mut c, "session", "session_registry_digest").as_deref(),
        Some(before.as_str()),
        "the same entries at the same versions after the rewrite and restart"
    );
    assert_eq!(
        ok(&mut c, &["SESSION.CATALOG", "LIST"]),
        Value::Array(vec![Value::BulkString(b"news".to_vec())])
    );
}
