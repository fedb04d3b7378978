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
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, Value};

fn slow() -> bool {
    matches!(
        std::env::var("SESSION_SLOW").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

/// Three primaries, each with a third of the slots.
struct Cluster {
    nodes: Vec<Server>,
    ids: Vec<String>,
    /// The node index each slot belongs to, as this test assigned them.
    owners: std::cell::RefCell<Vec<usize>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Cluster {
    fn start() -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                // the bus port is chosen explicitly: port + 10000 may not exist
                let bus = free_port().to_string();
                Server::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "15000",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        let mut ids = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let mut c = node.conn();
            ok(
                &mut c,
                &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()],
            );
            let (lo, hi) = ranges[i];
            ok(
                &mut c,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            );
            ids.push(String::from_utf8(bytes(&ok(&mut c, &["CLUSTER", "MYID"]))).unwrap());
        }
        let bus0 = cluster_bus_port(&mut nodes[0].conn());
        for node in &nodes[1..] {
            ok(
                &mut node.conn(),
                &[
                    "CLUSTER",
                    "MEET",
                    "127.0.0.1",
                    &nodes[0].port().to_string(),
                    &bus0.to_string(),
                ],
            );
        }
        let owners = (0..16384u16)
            .map(|slot| {
                ranges
                    .iter()
                    .position(|(lo, hi)| (*lo..=*hi).contains(&slot))
                    .unwrap()
            })
            .collect();
        let cluster = Cluster {
            nodes,
            ids,
            owners: std::cell::RefCell::new(owners),
        };
        cluster.wait_consistent();
        cluster
    }

    /// Waits until every node sees the three primaries, every slot assigned, state ok, and the
    /// same owner for every slot.
    /// Waits until every node sees three primaries, every slot assigned, state ok, and every
    /// slot where this test put it, for a few gossip rounds in a row. A node that gives a slot to
    /// another node (a stale gossip message from a slot's old owner wins when the new owner's
    /// epoch has not reached it yet, and nobody claims the slot for its new owner afterwards) is
    /// told again, after the owner bumps its epoch: what `redis-cli --cluster fix` does.
    fn wait_consistent(&self) {
        let owners = self.owners.borrow().clone();
        let expected: Vec<(u16, u16, String)> = {
            let mut out: Vec<(u16, u16, String)> = Vec::new();
            for (slot, &o) in owners.iter().enumerate() {
                let slot = slot as u16;
                match out.last_mut() {
                    Some((_, hi, id)) if *id == self.ids[o] && *hi + 1 == slot => *hi = slot,
                    _ => out.push((slot, slot, self.ids[o].clone())),
                }
            }
            out
        };
        let start = std::time::Instant::now();
        let mut stable = 0;
        let mut wrong_since: Option<std::time::Instant> = None;
        loop {
            let mut all_good = true;
            for (i, node) in self.nodes.iter().enumerate() {
                let mut c = node.conn();
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
                let map = slot_map(&mut c);
                let state_ok = info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:3")
                    && info.contains("cluster_slots_assigned:16384");
                if state_ok && map == expected {
                    continue;
                }
                all_good = false;
                let since = *wrong_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < Duration::from_secs(1) || !state_ok {
                    continue;
                }
                // fix the slots this node gives to the wrong owner
                for (lo, hi, id) in &map {
                    for slot in *lo..=*hi {
                        let owner = owners[slot as usize];
                        if *id != self.ids[owner] {
                            ok(&mut self.nodes[owner].conn(), &["CLUSTER", "BUMPEPOCH"]);
                            ok(
                                &mut self.nodes[i].conn(),
                                &[
                                    "CLUSTER",
                                    "SETSLOT",
                                    &slot.to_string(),
                                    "NODE",
                                    &self.ids[owner],
                                ],
                            );
                        }
                    }
                }
                wrong_since = None;
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "node {i} does not agree: {map:?}, expected {expected:?}"
                );
            }
            if all_good {
                stable += 1;
                if stable == 5 {
                    return;
                }
            } else {
                stable = 0;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the cluster did not become consistent"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn client(&self) -> ClusterConnection {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port()))
            .collect();
        let client = ClusterClient::builder(urls)
            .retries(32)
            .build()
            .expect("cluster client");
        client.get_connection().expect("cluster connection")
    }

    fn slot_of(&self, key: &str) -> u16 {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[0].conn())
            .unwrap();
        slot as u16
    }

    /// The index of the node that owns `slot` (by node 0's view, which is consistent).
    fn owner(&self, slot: u16) -> usize {
        let map = slot_map(&mut self.nodes[0].conn());
        let (_, _, id) = map
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .expect("slot assigned");
        self.ids.iter().position(|i| i == id).expect("known node")
    }

    /// Moves `slots` from node `from` to node `to` the way `redis-cli --cluster reshard` does:
    /// IMPORTING on the target, MIGRATING on the source, MIGRATE the keys in batches, then
    /// `SETSLOT NODE` everywhere. Returns how many keys moved.
    fn move_slots(&self, slots: impl Iterator<Item = u16>, from: usize, to: usize) -> usize {
        let mut src = self.nodes[from].conn();
        let mut dst = self.nodes[to].conn();
        let mut all: Vec<Connection> = self.nodes.iter().map(Server::conn).collect();
        let target_port = self.nodes[to].port().to_string();
        let mut moved = 0;
        let slots: Vec<u16> = slots.collect();
        for &slot in &slots {
            let s = slot.to_string();
            ok(
                &mut dst,
                &["CLUSTER", "SETSLOT", &s, "IMPORTING", &self.ids[from]],
            );
            ok(
                &mut src,
                &["CLUSTER", "SETSLOT", &s, "MIGRATING", &self.ids[to]],
            );
            loop {
                let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100)
                    .query(&mut src)
                    .unwrap();
                if keys.is_empty() {
                    break;
                }
                let mut migrate = redis::cmd("MIGRATE");
                migrate
                    .arg("127.0.0.1")
                    .arg(&target_port)
                    .arg("")
                    .arg(0)
                    .arg(10_000)
                    .arg("REPLACE")
                    .arg("KEYS");
                for k in &keys {
                    migrate.arg(k);
                }
                let reply: Value = migrate.query(&mut src).expect("MIGRATE");
                assert!(
                    matches!(reply, Value::Okay | Value::SimpleString(_)),
                    "{reply:?}"
                );
                moved += keys.len();
            }
            // the target first (it bumps its epoch), then the source, then the others
            for i in [to, from]
                .into_iter()
                .chain((0..3).filter(|&i| i != to && i != from))
            {
                ok(
                    &mut all[i],
                    &["CLUSTER", "SETSLOT", &s, "NODE", &self.ids[to]],
                );
            }
        }
        for &slot in &slots {
            self.owners.borrow_mut()[slot as usize] = to;
        }
        self.wait_consistent();
        moved
    }
}

fn cluster_bus_port(c: &mut Connection) -> u16 {
    let v: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-port")
        .query::<Vec<String>>(c)
        .unwrap()
        .pop()
        .unwrap();
    v.parse().unwrap()
}

/// (first slot, last slot, owner id) for every assigned range, sorted.
fn slot_map(c: &mut Connection) -> Vec<(u16, u16, String)> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(c).unwrap();
    let mut out = Vec::new();
    for line in nodes.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() < 8 || !parts[2].contains("master") {
            continue;
        }
        for range in &parts[8..] {
            if range.starts_with('[') {
                continue; // a slot being imported or migrated
            }
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            out.push((
                lo.parse().unwrap(),
                hi.parse().unwrap(),
                parts[0].to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// Runs a command on every node (primaries alike) and returns each node's reply: checks that
/// every node answers the same, not a way to reach them (the module does that itself).
fn on_every_node(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    cluster
        .nodes
        .iter()
        .map(|n| ok(&mut n.conn(), args))
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
    let cluster = Cluster::start();
    let mut cc = cluster.client();
    ok(
        &mut cluster.nodes[0].conn(),
        &["SESSION.CATALOG", "ADD", "news", "a1", "SCORE", "5"],
    );
    wait_converged(&cluster);
    let users = has_command(&mut cluster.nodes[0].conn(), "session.rotate");

    // sessions on every node
    let keys: Vec<String> = (0..30).map(|i| format!("route:{i}")).collect();
    let owners: BTreeSet<usize> = keys
        .iter()
        .map(|k| cluster.owner(cluster.slot_of(k)))
        .collect();
    assert_eq!(owners.len(), 3, "the keys spread over the three nodes");
    for key in &keys {
        let slot = cluster.slot_of(key);
        let owner = cluster.owner(slot);
        let wrong = &cluster.nodes[(owner + 1) % 3];
        let load = {
            let mut c = cluster.nodes[owner].conn();
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
                format!("MOVED {slot} 127.0.0.1:{}", cluster.nodes[owner].port()),
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
            &mut cluster.nodes[0].conn(),
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

/// Waits until every node announces the same registry digest in `INFO session` (the registry
/// travels over the cluster bus).
fn wait_converged(cluster: &Cluster) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let digests: Vec<Option<String>> = cluster
            .nodes
            .iter()
            .map(|n| {
                let info: String = redis::cmd("INFO")
                    .arg("session")
                    .query(&mut n.conn())
                    .unwrap_or_default();
                info.lines()
                    .find_map(|l| l.strip_prefix("session_registry_digest:"))
                    .map(|d| d.trim().to_string())
            })
            .collect();
        if digests[0].is_some() && digests.iter().all(|d| *d == digests[0]) {
            return digests[0].clone().unwrap_or_default();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the registry did not converge: {digests:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Registry commands sent to ONE primary (a different one each time) reach every node over the
/// cluster bus: sessions on every node surface from the catalog and receive a notification once,
/// also after moving to another node.
#[test]
fn registry_commands_on_one_primary_reach_every_node() {
    let cluster = Cluster::start();
    let mut cc = cluster.client();
    for i in 0..20 {
        let item = format!("item{i}");
        let score = i.to_string();
        let cat = if i % 2 == 0 { "even" } else { "odd" };
        let reply = ok(
            &mut cluster.nodes[i % 3].conn(),
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
    wait_converged(&cluster);
    let lists = on_every_node(&cluster, &["SESSION.CATALOG", "LIST"]);
    assert!(lists.iter().all(|l| *l == lists[0]), "{lists:?}");
    let infos = on_every_node(&cluster, &["SESSION.CATALOG", "INFO", "news"]);
    assert!(infos.iter().all(|i| *i == infos[0]), "{infos:?}");

    let keys: Vec<String> = (0..30).map(|i| format!("reg:{i}")).collect();
    let owners: BTreeSet<usize> = keys
        .iter()
        .map(|k| cluster.owner(cluster.slot_of(k)))
        .collect();
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
    assert_eq!(ok(&mut cluster.nodes[2].conn(), &notify), Value::Int(1));
    wait_converged(&cluster);
    for node in &cluster.nodes {
        assert_eq!(
            ok(&mut node.conn(), &notify),
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
    let slots: BTreeSet<u16> = keys[..10].iter().map(|k| cluster.slot_of(k)).collect();
    for slot in &slots {
        let from = cluster.owner(*slot);
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
        &mut cluster.nodes[1].conn(),
        &["SESSION.NOTIFYGROUP", "beta", "n2", "again"],
    );
    wait_converged(&cluster);
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
        ok(
            &mut cluster.nodes[0].conn(),
            &["SESSION.CATALOG", "DROP", "news"]
        ),
        Value::Int(1)
    );
    wait_converged(&cluster);
    for node in &cluster.nodes {
        assert_eq!(
            ok(&mut node.conn(), &["SESSION.CATALOG", "LIST"]),
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
    let cluster = Cluster::start();
    let mut cc = cluster.client();
    // the sessions exist before resharding starts (round 0 is their creation)
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let cc = cluster.client();
        let stop = stop.clone();
        thread::spawn(move || writer(cc, SESSIONS, stop))
    };
    wait_until(Duration::from_secs(120), "the sessions to exist", || {
        cluster
            .nodes
            .iter()
            .map(|n| redis::cmd("DBSIZE").query::<usize>(&mut n.conn()).unwrap())
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

    let total: usize = cluster
        .nodes
        .iter()
        .map(|n| redis::cmd("DBSIZE").query::<usize>(&mut n.conn()).unwrap())
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
