//! The cluster-native registry (issue 20): registry commands sent to ONE node of a cluster reach
//! every primary and replica by themselves (over the cluster bus, with a digest and snapshots for
//! what a node missed), and concurrent changes end equal everywhere.
//!
//! Every test runs its own cluster of three primaries with one replica each (tests/common/cluster.rs:
//! six servers on loopback, `cluster-node-timeout` 2000) and sends each registry command to a
//! single node, never to every primary; it then waits (polling, at most
//! `common::cluster::CONVERGENCE`) until every node shows the same registry
//! (`Cluster::wait_converged_to`: catalogs, groups, `INFO session` counts and `registry_digest`,
//! and each catalog's items with their ranks, by a cold-start `SURFACE ... NOMARK` on primaries and
//! `SURFACE_RO` on replicas when the module has it), and checks what sessions on every node see.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::cluster::{key_slot, Cluster};
use common::*;
use redis::cluster::ClusterConnection;
use redis::{Connection, Value};

/// The ids of an `SESSION.INBOX` reply, in order.
fn inbox_ids(reply: Value) -> Vec<String> {
    let Value::Array(entries) = reply else {
        panic!("INBOX replied {reply:?}")
    };
    entries
        .into_iter()
        .map(|entry| {
            let id = pairs(entry)
                .into_iter()
                .find(|(k, _)| bytes(k) == b"id")
                .expect("an id")
                .1;
            String::from_utf8_lossy(&bytes(&id)).into_owned()
        })
        .collect()
}

/// `SESSION.INBOX key` on node `i`: the ids delivered.
fn inbox(cluster: &Cluster, i: usize, key: &str) -> Vec<String> {
    inbox_ids(ok(&mut cluster.conn(i), &["SESSION.INBOX", key]))
}

/// The item ids of a `SURFACE` reply.
fn item_ids(reply: Value) -> Vec<String> {
    let Value::Array(items) = reply else {
        panic!("SURFACE replied {reply:?}")
    };
    items
        .iter()
        .map(|v| String::from_utf8_lossy(&bytes(v)).into_owned())
        .collect()
}

/// `SESSION.SURFACE key FROM catalog COUNT 100 NOMARK` on node `i`, sorted.
fn surface(cluster: &Cluster, i: usize, key: &str, catalog: &str) -> Vec<String> {
    let mut ids = item_ids(ok(
        &mut cluster.conn(i),
        &[
            "SESSION.SURFACE",
            key,
            "FROM",
            catalog,
            "COUNT",
            "100",
            "NOMARK",
        ],
    ));
    ids.sort();
    ids
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Creates each session on its owner with one event (`seen`) and, with `group`, joins it.
fn sessions(cluster: &Cluster, keys: &[String], group: Option<&str>) {
    for key in keys {
        let owner = cluster.owner_of(key);
        let mut c = cluster.conn(owner);
        touch(&mut c, key, &["EVENT", "seen"]);
        if let Some(g) = group {
            ok(&mut c, &["SESSION.ENRICH", key, "JOIN", "1", g]);
        }
    }
}

/// `n` keys on each of the three first primaries.
fn keys_everywhere(cluster: &Cluster, prefix: &str, n: usize) -> Vec<String> {
    (0..3)
        .flat_map(|node| cluster.keys_on(node, prefix, n))
        .collect()
}

fn add(c: &mut Connection, catalog: &str, item: &str, score: &str) -> Value {
    ok(
        c,
        &["SESSION.CATALOG", "ADD", catalog, item, "SCORE", score],
    )
}

/// The harness itself, without the registry: keys hash as the cluster hashes them, a stopped
/// node restarts on its port with its data, a failover and a fourth primary with slots leave a
/// consistent cluster whose sessions are where the harness says.
#[test]
fn the_harness_drives_the_cluster() {
    let mut cluster = Cluster::start();
    let mut c = cluster.conn(0);
    for key in [
        "a",
        "sess:1",
        "{user1}:x",
        "x{}y",
        "{}{a}",
        "a{b}c{d}",
        "\u{e9}t\u{e9}",
    ] {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .expect("KEYSLOT");
        assert_eq!(i64::from(key_slot(key.as_bytes())), slot, "{key}");
    }
    // keys_on gives keys the node really owns: another node answers MOVED
    for node in 0..3 {
        for key in cluster.keys_on(node, "owned", 3) {
            touch(&mut cluster.conn(node), &key, &["EVENT", "x"]);
            let e = err(&mut cluster.conn((node + 1) % 3), &["SESSION.GET", &key]);
            assert!(e.starts_with("MOVED"), "{e}");
        }
    }
    let keys = keys_everywhere(&cluster, "kept", 2);
    for key in &keys {
        touch(
            &mut cluster.conn(cluster.owner_of(key)),
            key,
            &["SET", "1", "f", key],
        );
    }
    cluster.save_and_stop(2);
    cluster.restart(2);
    cluster.failover(cluster.replicas_of(0)[0]);
    let new = cluster.add_primary();
    cluster.move_slots(0..200, cluster.owner_of("{06S}"), new);
    assert_eq!(cluster.owner_of("{06S}"), new);
    for key in &keys {
        let owner = cluster.owner_of(key);
        let fields = get_all(&mut cluster.conn(owner), key).expect("the session");
        assert_eq!(
            fields.get(&b"f"[..]),
            Some(&key.as_bytes().to_vec()),
            "{key}"
        );
    }
}

/// A catalog added on node 0 only is surfaced for sessions living on nodes 1 and 2 (and the
/// registry is equal on all six nodes, replicas included).
#[test]
fn a_catalog_added_on_one_node_is_surfaced_on_every_node() {
    let cluster = Cluster::start();
    let keys = keys_everywhere(&cluster, "surf", 4);
    sessions(&cluster, &keys, None);
    let mut c0 = cluster.conn(0);
    for i in 1..=5 {
        assert_eq!(
            add(&mut c0, "news", &format!("a{i}"), &i.to_string()),
            Value::Int(1)
        );
    }
    let view = cluster.wait_converged_to("news with 5 items", |v| {
        v.catalog("news", "items") == Some(5)
    });
    assert_eq!(view.ranked("news").len(), 5, "{view:?}");
    for key in &keys {
        let owner = cluster.owner_of(key);
        assert_eq!(
            surface(&cluster, owner, key, "news"),
            strings(&["a1", "a2", "a3", "a4", "a5"]),
            "{key} on node {owner}"
        );
    }
    // a change of one item on node 2 reaches node 0's sessions
    assert_eq!(
        add(&mut cluster.conn(2), "news", "a1", "-7"),
        Value::Int(0),
        "a replacement"
    );
    cluster.wait_converged_to("a1 ranked last", |v| {
        v.ranked("news")
            .iter()
            .any(|(id, rank)| id == "a1" && rank.starts_with('-'))
    });
    let key0 = &cluster.keys_on(0, "surf", 1)[0];
    let first = item_ids(ok(
        &mut cluster.conn(0),
        &[
            "SESSION.SURFACE",
            key0,
            "FROM",
            "news",
            "COUNT",
            "5",
            "NOMARK",
        ],
    ));
    assert_eq!(first.last().map(String::as_str), Some("a1"), "{first:?}");
}

/// A notification published on node 2 reaches the members on every node exactly once: INBOX
/// delivers it once, a second INBOX is empty, TOUCH's pending is 0, the same id published on
/// another node is a duplicate, and the next notification (more sync traffic) delivers only
/// itself.
#[test]
fn a_notification_published_on_one_node_reaches_members_everywhere_once() {
    let cluster = Cluster::start();
    let keys = keys_everywhere(&cluster, "member", 3);
    sessions(&cluster, &keys, Some("beta"));
    assert_eq!(
        ok(
            &mut cluster.conn(2),
            &["SESSION.NOTIFYGROUP", "beta", "n1", "hello"]
        ),
        Value::Int(1)
    );
    let view = cluster.wait_converged_to("beta with n1", |v| {
        v.group("beta", "notifications") == Some(1)
    });
    assert_eq!(
        view.group("beta", "first_seq"),
        view.group("beta", "last_seq")
    );
    assert_eq!(
        ok(
            &mut cluster.conn(0),
            &["SESSION.NOTIFYGROUP", "beta", "n1", "hello"]
        ),
        Value::Int(0),
        "the same id on another node is a duplicate"
    );
    for key in &keys {
        let owner = cluster.owner_of(key);
        assert_eq!(inbox(&cluster, owner, key), strings(&["n1"]), "{key}");
        assert_eq!(inbox(&cluster, owner, key), Vec::<String>::new(), "{key}");
        let t = touch(&mut cluster.conn(owner), key, &["EVENT", "again"]);
        assert_eq!(t["pending"], 0, "{key}");
    }
    assert_eq!(
        ok(
            &mut cluster.conn(1),
            &["SESSION.NOTIFYGROUP", "beta", "n2", "world"]
        ),
        Value::Int(1)
    );
    cluster.wait_converged_to("beta with n1 and n2", |v| {
        v.group("beta", "notifications") == Some(2)
    });
    for key in &keys {
        let owner = cluster.owner_of(key);
        assert_eq!(inbox(&cluster, owner, key), strings(&["n2"]), "{key}");
        assert_eq!(inbox(&cluster, owner, key), Vec::<String>::new(), "{key}");
    }
}

/// Registry changes made while a primary is down (SAVE, SHUTDOWN NOSAVE) reach it when it
/// restarts from its own RDB and nodes.conf: it converges with the others, and its sessions
/// surface the new catalog and receive what was published meanwhile, once.
#[test]
fn registry_changes_while_a_node_is_down_reach_it_after_restart() {
    let mut cluster = Cluster::start();
    let mut c0 = cluster.conn(0);
    add(&mut c0, "news", "old1", "1");
    add(&mut c0, "news", "old2", "2");
    ok(&mut c0, &["SESSION.NOTIFYGROUP", "doomed", "d1", "x"]);
    let keys = cluster.keys_on(2, "down", 4);
    sessions(&cluster, &keys, Some("beta"));
    cluster.wait_converged_to("news and doomed", |v| {
        v.catalog("news", "items") == Some(2) && v.groups.contains_key("doomed")
    });

    cluster.save_and_stop(2);
    let mut c0 = cluster.conn(0);
    let mut c1 = cluster.conn(1);
    add(&mut c0, "news", "new1", "50");
    assert_eq!(
        ok(&mut c0, &["SESSION.CATALOG", "DEL", "news", "old1"]),
        Value::Int(1)
    );
    add(&mut c1, "other", "x1", "1");
    ok(
        &mut c1,
        &["SESSION.NOTIFYGROUP", "beta", "while-down", "hi"],
    );
    assert_eq!(
        ok(&mut c1, &["SESSION.GROUP", "DROP", "doomed"]),
        Value::Int(1)
    );
    cluster.restart(2);

    let view = cluster.wait_converged_to("the changes made while node 2 was down", |v| {
        v.catalog("news", "items") == Some(2)
            && v.catalogs.contains_key("other")
            && v.group("beta", "notifications") == Some(1)
            && !v.groups.contains_key("doomed")
    });
    assert_eq!(
        view.ranked("news")
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["new1", "old2"]
    );
    for key in &keys {
        assert_eq!(
            surface(&cluster, 2, key, "news"),
            strings(&["new1", "old2"]),
            "{key}"
        );
        assert_eq!(inbox(&cluster, 2, key), strings(&["while-down"]), "{key}");
        assert_eq!(inbox(&cluster, 2, key), Vec::<String>::new(), "{key}");
    }
}

/// A fourth primary joins (CLUSTER MEET) with an empty registry and is given slots: its registry
/// becomes the others', sessions moved to it surface the catalog and are not delivered again
/// what they already received, and a notification published on it reaches every node.
#[test]
fn a_fourth_primary_given_slots_converges() {
    let mut cluster = Cluster::start();
    let mut c1 = cluster.conn(1);
    for i in 1..=5 {
        add(&mut c1, "news", &format!("a{i}"), &i.to_string());
    }
    ok(&mut c1, &["SESSION.NOTIFYGROUP", "beta", "n1", "hello"]);
    // sessions in the slots that will move (0..300 belong to node 0)
    let moving: Vec<String> = (0..)
        .map(|i| format!("moving:{i}"))
        .filter(|k| key_slot(k.as_bytes()) < 300)
        .take(6)
        .collect();
    let staying = cluster.keys_on(2, "staying", 3);
    sessions(&cluster, &moving, Some("beta"));
    sessions(&cluster, &staying, Some("beta"));
    cluster.wait_converged_to("news and beta", |v| {
        v.catalog("news", "items") == Some(5) && v.group("beta", "notifications") == Some(1)
    });
    for key in moving.iter().chain(&staying) {
        assert_eq!(
            inbox(&cluster, cluster.owner_of(key), key),
            strings(&["n1"])
        );
    }

    let new = cluster.add_primary();
    let moved = cluster.move_slots(0..300, 0, new);
    assert!(moved >= moving.len(), "{moved} keys moved");
    let view = cluster.wait_converged_to("the new primary with news and beta", |v| {
        v.catalog("news", "items") == Some(5) && v.group("beta", "notifications") == Some(1)
    });
    assert_eq!(view.ranked("news").len(), 5);
    for key in &moving {
        assert_eq!(cluster.owner_of(key), new);
        assert_eq!(
            surface(&cluster, new, key, "news"),
            strings(&["a1", "a2", "a3", "a4", "a5"]),
            "{key} on the new primary"
        );
        assert_eq!(
            inbox(&cluster, new, key),
            Vec::<String>::new(),
            "{key}: delivered again after moving"
        );
    }
    assert_eq!(
        ok(
            &mut cluster.conn(new),
            &["SESSION.NOTIFYGROUP", "beta", "n2", "from the new node"]
        ),
        Value::Int(1)
    );
    cluster.wait_converged_to("n2 everywhere", |v| {
        v.group("beta", "notifications") == Some(2)
    });
    for key in moving.iter().chain(&staying) {
        assert_eq!(
            inbox(&cluster, cluster.owner_of(key), key),
            strings(&["n2"]),
            "{key}"
        );
    }
}

/// A manual failover (CLUSTER FAILOVER on node 1's replica) keeps the registry: the promoted
/// replica has it, and a change made after the failover on the new primary and one made on
/// another primary reach every node, the demoted primary included.
#[test]
fn a_failover_keeps_the_registry() {
    let mut cluster = Cluster::start();
    let mut c0 = cluster.conn(0);
    for i in 1..=3 {
        add(&mut c0, "news", &format!("a{i}"), &i.to_string());
    }
    ok(&mut c0, &["SESSION.NOTIFYGROUP", "beta", "n1", "hello"]);
    let keys = cluster.keys_on(1, "fo", 3);
    sessions(&cluster, &keys, Some("beta"));
    let before = cluster.wait_converged_to("news and beta", |v| {
        v.catalog("news", "items") == Some(3) && v.group("beta", "notifications") == Some(1)
    });
    for key in &keys {
        assert_eq!(inbox(&cluster, 1, key), strings(&["n1"]));
    }

    let promoted = cluster.replicas_of(1)[0];
    cluster.failover(promoted);
    assert_eq!(cluster.primary_of(1), promoted);
    let after = cluster.wait_converged();
    assert_eq!(
        after.catalogs, before.catalogs,
        "the registry after failover"
    );
    assert_eq!(after.groups, before.groups);
    assert_eq!(after.items, before.items);

    add(&mut cluster.conn(promoted), "news", "after", "10");
    ok(
        &mut cluster.conn(2),
        &["SESSION.NOTIFYGROUP", "beta", "n2", "after failover"],
    );
    cluster.wait_converged_to("the changes after failover", |v| {
        v.catalog("news", "items") == Some(4) && v.group("beta", "notifications") == Some(2)
    });
    for key in &keys {
        assert_eq!(cluster.owner_of(key), promoted);
        assert_eq!(
            surface(&cluster, promoted, key, "news"),
            strings(&["a1", "a2", "a3", "after"])
        );
        assert_eq!(inbox(&cluster, promoted, key), strings(&["n2"]), "{key}");
    }
}

/// Conflicting changes of one catalog item on two primaries at once (ADD with a different SCORE
/// and CATEGORIES on node 0 and node 1 back to back; DEL on one and ADD on the other) end equal on
/// all nodes, and each item is one writer's whole entry (its score with its categories).
#[test]
fn conflicting_changes_of_one_item_end_equal_on_all_nodes() {
    const ITEMS: usize = 12;
    let cluster = Cluster::start();
    let mut c0 = cluster.conn(0);
    let mut c1 = cluster.conn(1);
    let mut c2 = cluster.conn(2);
    // the reference item fixes the rank scale: rank = score / 1000
    add(&mut c2, "scores", "ref", "1000");
    for k in 0..ITEMS {
        add(&mut c2, "scores", &format!("d{k}"), "5");
    }
    cluster.wait_converged_to("the scores catalog", |v| {
        v.catalog("scores", "items") == Some(1 + ITEMS as i64)
    });
    for k in 0..ITEMS {
        let item = format!("c{k}");
        let args0 = [
            "SESSION.CATALOG",
            "ADD",
            "scores",
            &item,
            "SCORE",
            "10",
            "CATEGORIES",
            "1",
            "low",
        ];
        let args1 = [
            "SESSION.CATALOG",
            "ADD",
            "scores",
            &item,
            "SCORE",
            "20",
            "CATEGORIES",
            "1",
            "high",
        ];
        // alternate which node goes first
        if k % 2 == 0 {
            ok(&mut c0, &args0);
            ok(&mut c1, &args1);
        } else {
            ok(&mut c1, &args1);
            ok(&mut c0, &args0);
        }
        let d = format!("d{k}");
        if k % 2 == 0 {
            ok(&mut c0, &["SESSION.CATALOG", "DEL", "scores", &d]);
            add(&mut c1, "scores", &d, "30");
        } else {
            add(&mut c1, "scores", &d, "30");
            ok(&mut c0, &["SESSION.CATALOG", "DEL", "scores", &d]);
        }
    }
    let view = cluster.wait_converged_to("every contested item", |v| {
        let ranked = v.ranked("scores");
        (0..ITEMS).all(|k| ranked.iter().any(|(id, _)| *id == format!("c{k}")))
    });
    let ranked = view.ranked("scores");
    println!("converged: {ranked:?}");
    let rank_of = |id: &str| -> Option<f64> {
        ranked
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.parse().expect("a rank"))
    };
    let mut low = BTreeSet::new();
    for k in 0..ITEMS {
        let item = format!("c{k}");
        let rank = rank_of(&item).expect("present");
        if (rank - 0.01).abs() < 1e-9 {
            low.insert(item);
        } else {
            assert!((rank - 0.02).abs() < 1e-9, "{item}: rank {rank}");
        }
        // a DEL against an ADD: present with the ADD's score, or absent, alike everywhere
        if let Some(rank) = rank_of(&format!("d{k}")) {
            assert!((rank - 0.03).abs() < 1e-9, "d{k}: rank {rank}");
        }
    }
    // the winner's categories came with its score, on every primary
    for node in 0..3 {
        let probe = cluster.keys_on(node, "probe-missing", 1).remove(0);
        let in_low: BTreeSet<String> = item_ids(ok(
            &mut cluster.conn(node),
            &[
                "SESSION.SURFACE",
                &probe,
                "FROM",
                "scores",
                "CATEGORY",
                "low",
                "COUNT",
                "100",
                "NOMARK",
            ],
        ))
        .into_iter()
        .collect();
        assert_eq!(in_low, low, "node {node}: the items in category low");
    }
}

/// CATALOG DEL, CATALOG DROP and GROUP DROP sent to one node travel to every node; a catalog or
/// a group written again after its drop lives again everywhere with only the new content.
#[test]
fn catalog_del_drop_and_group_drop_travel() {
    let cluster = Cluster::start();
    let mut c0 = cluster.conn(0);
    for i in 1..=4 {
        add(&mut c0, "news", &format!("a{i}"), &i.to_string());
    }
    add(&mut c0, "gone", "x1", "1");
    add(&mut c0, "gone", "x2", "2");
    let keys = keys_everywhere(&cluster, "del", 2);
    sessions(&cluster, &keys, Some("g1"));
    let mut c1 = cluster.conn(1);
    ok(&mut c1, &["SESSION.NOTIFYGROUP", "g1", "n1", "one"]);
    ok(&mut c1, &["SESSION.NOTIFYGROUP", "g2", "n1", "two"]);
    cluster.wait_converged_to("news, gone, g1, g2", |v| {
        v.catalog("news", "items") == Some(4)
            && v.catalog("gone", "items") == Some(2)
            && v.groups.len() == 2
    });

    assert_eq!(
        ok(&mut c1, &["SESSION.CATALOG", "DEL", "news", "a1", "a2"]),
        Value::Int(2)
    );
    assert_eq!(
        ok(&mut cluster.conn(2), &["SESSION.CATALOG", "DROP", "gone"]),
        Value::Int(1)
    );
    assert_eq!(ok(&mut c0, &["SESSION.GROUP", "DROP", "g1"]), Value::Int(1));
    let view = cluster.wait_converged_to("the deletions", |v| {
        v.catalog("news", "items") == Some(2)
            && !v.catalogs.contains_key("gone")
            && v.groups.keys().map(String::as_str).collect::<Vec<_>>() == ["g2"]
    });
    assert_eq!(view.catalogs.keys().collect::<Vec<_>>(), ["news"]);
    for key in &keys {
        let owner = cluster.owner_of(key);
        assert_eq!(
            surface(&cluster, owner, key, "news"),
            strings(&["a3", "a4"])
        );
        let e = err(
            &mut cluster.conn(owner),
            &["SESSION.SURFACE", key, "FROM", "gone"],
        );
        assert!(e.contains("no such catalog"), "{key}: {e}");
        assert_eq!(inbox(&cluster, owner, key), Vec::<String>::new(), "{key}");
    }

    // written again after the drop, on other nodes: only the new content lives
    add(&mut cluster.conn(1), "gone", "y1", "1");
    ok(
        &mut cluster.conn(2),
        &["SESSION.NOTIFYGROUP", "g1", "n2", "again"],
    );
    cluster.wait_converged_to("gone and g1 again", |v| {
        v.catalog("gone", "items") == Some(1) && v.group("g1", "notifications") == Some(1)
    });
    for key in &keys {
        let owner = cluster.owner_of(key);
        assert_eq!(surface(&cluster, owner, key, "gone"), strings(&["y1"]));
        assert_eq!(inbox(&cluster, owner, key), strings(&["n2"]), "{key}");
    }
}

/// A group trimmed by `MAXLEN` (publishes on several primaries, each keeping the newest 3) holds
/// the same notifications on every node, replicas included.
#[test]
fn a_group_trimmed_by_maxlen_is_equal_on_every_node() {
    let cluster = Cluster::start();
    for n in 0..8 {
        let id = format!("n{n}");
        let r = ok(
            &mut cluster.conn(n % 3),
            &["SESSION.NOTIFYGROUP", "short", &id, "x", "MAXLEN", "3"],
        );
        assert_eq!(r, Value::Int(1), "{id}");
    }
    let view = cluster.wait_converged_to("short with its newest 3", |v| {
        v.group("short", "notifications") == Some(3)
    });
    assert_eq!(
        view.counts
            .iter()
            .find(|(k, _)| k == "live_notifications")
            .map(|(_, v)| v.as_str()),
        Some("3")
    );
}

/// What the writer did.
struct Written {
    /// For each session, the last round that touched it.
    last_round: Vec<usize>,
    rounds: usize,
    /// Catalog items added (`i<n>`, each new) and notifications published (`n<n>`).
    items: usize,
    notifications: usize,
}

const NOTIFY_MAXLEN: &str = "1000";
/// One registry change every this many touches, at most this many in all (fewer notifications
/// than `NOTIFY_MAXLEN`, however fast the machine: nothing is trimmed).
const CHANGE_EVERY: usize = 100;
const MAX_CHANGES: usize = 3000;

/// Touches every session once per round through the cluster client (fields `last` and
/// `r<round>`, one event) and, every `CHANGE_EVERY` touches, makes one registry change on a primary in turn
/// (a new item of catalog `live`, every fourth change a notification of group `live`) until
/// `stop` is set and the round in progress is done.
fn writer(
    mut cc: ClusterConnection,
    mut primaries: Vec<Connection>,
    sessions: usize,
    stop: Arc<AtomicBool>,
) -> Written {
    let mut written = Written {
        last_round: vec![0; sessions],
        rounds: 0,
        items: 0,
        notifications: 0,
    };
    let mut changes = 0usize;
    loop {
        let round = written.rounds;
        let value = round.to_string();
        let field = format!("r{round}");
        for i in 0..sessions {
            let key = format!("sess:{i}");
            let reply = command(&[
                "SESSION.TOUCH",
                &key,
                "SET",
                "2",
                "last",
                &value,
                &field,
                "x",
                "EVENT",
                "e",
            ])
            .query::<Value>(&mut cc)
            .unwrap_or_else(|e| panic!("TOUCH {key}: {e}"));
            assert!(
                matches!(reply, Value::Array(_) | Value::Map(_)),
                "{reply:?}"
            );
            written.last_round[i] = round;
            if i % CHANGE_EVERY == 0 && changes < MAX_CHANGES {
                let c = &mut primaries[changes % 3];
                if changes % 4 == 3 {
                    let id = format!("n{}", written.notifications);
                    let r = ok(
                        c,
                        &[
                            "SESSION.NOTIFYGROUP",
                            "live",
                            &id,
                            "x",
                            "MAXLEN",
                            NOTIFY_MAXLEN,
                        ],
                    );
                    assert_eq!(r, Value::Int(1), "{id}");
                    written.notifications += 1;
                } else {
                    let id = format!("i{}", written.items);
                    let r = add(c, "live", &id, &written.items.to_string());
                    assert_eq!(r, Value::Int(1), "{id}");
                    written.items += 1;
                }
                changes += 1;
            }
        }
        written.rounds += 1;
        if stop.load(Ordering::SeqCst) {
            return written;
        }
    }
}

/// Resharding (a range of node 0's slots to node 1) while a writer keeps touching 2,000 sessions
/// and making a registry change every 100 touches on the primaries in turn: no session, field or registry change is
/// lost, and the registry is equal on every node at the end.
#[test]
fn resharding_under_a_live_writer_with_registry_changes_in_flight() {
    const SESSIONS: usize = 2_000;
    let mut cluster = Cluster::start();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let cc = cluster.client();
        let primaries = (0..3).map(|i| cluster.conn(i)).collect();
        let stop = stop.clone();
        thread::spawn(move || writer(cc, primaries, SESSIONS, stop))
    };
    let dbsize = |cluster: &Cluster| -> usize {
        (0..3)
            .map(|i| {
                redis::cmd("DBSIZE")
                    .query::<usize>(&mut cluster.conn(i))
                    .expect("DBSIZE")
            })
            .sum()
    };
    wait_until(Duration::from_secs(120), "the sessions to exist", || {
        handle.is_finished() || dbsize(&cluster) >= SESSIONS
    });
    let moved = cluster.move_slots(0..2000, 0, 1);
    stop.store(true, Ordering::SeqCst);
    let written = handle.join().expect("the writer");
    println!(
        "{moved} keys migrated while the writer did {} rounds, {} items, {} notifications",
        written.rounds, written.items, written.notifications
    );
    assert!(moved > 100, "the resharding moved sessions ({moved})");
    assert!(written.rounds >= 2, "the writer ran during the resharding");

    assert_eq!(dbsize(&cluster), SESSIONS, "no session lost or duplicated");
    let mut cc = cluster.client();
    for (i, &last) in written.last_round.iter().enumerate() {
        let key = format!("sess:{i}");
        let Value::Array(flat) = command(&["SESSION.GET", &key])
            .query::<Value>(&mut cc)
            .expect("GET")
        else {
            panic!("{key} is gone")
        };
        let mut fields: Vec<(String, String)> = flat
            .chunks(2)
            .map(|p| {
                (
                    String::from_utf8_lossy(&bytes(&p[0])).into_owned(),
                    String::from_utf8_lossy(&bytes(&p[1])).into_owned(),
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
    }
    let (items, notifications) = (written.items as i64, written.notifications as i64);
    let view = cluster.wait_converged_to("every registry change of the writer", |v| {
        v.catalog("live", "items") == Some(items)
            && v.group("live", "notifications") == Some(notifications)
    });
    // the best items by score are the last ones added
    let ranked = view.ranked("live");
    assert_eq!(ranked.len() as i64, items.min(1000));
    assert!(
        ranked
            .iter()
            .any(|(id, _)| *id == format!("i{}", items - 1)),
        "the last item"
    );
    // sessions that moved surface the catalog on their new node
    for key in (0..SESSIONS)
        .map(|i| format!("sess:{i}"))
        .filter(|k| key_slot(k.as_bytes()) < 2000)
        .take(5)
    {
        assert_eq!(cluster.owner_of(&key), 1);
        let got = item_ids(ok(
            &mut cluster.conn(1),
            &[
                "SESSION.SURFACE",
                &key,
                "FROM",
                "live",
                "COUNT",
                "5",
                "NOMARK",
            ],
        ));
        assert_eq!(got.len(), 5.min(items as usize), "{key}: {got:?}");
    }
}
