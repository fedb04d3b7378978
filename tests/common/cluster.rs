//! The one Redis Cluster harness of the suites (tests/cluster.rs, tests/cluster_registry.rs,
//! tests/cluster_users.rs, tests/surface_ro.rs).
//!
//! [`Cluster::start`] runs three primaries, each with one replica (six `redis-server` processes,
//! each with an explicit bus port, `cluster-node-timeout` 2000 ms), splits the slots three ways,
//! attaches the replicas with `CLUSTER REPLICATE` and waits until every node says
//! `cluster_state:ok`, agrees on every slot's owner and every replica is in sync.
//! [`Cluster::builder`] chooses the number of primaries and replicas per primary, module
//! arguments and the node timeout. Nodes `0..n` are the primaries, then the replicas: node
//! `n + j` replicates primary `j % n`.
//!
//! Replicas never fail over by themselves (`cluster-replica-no-failover yes`) and the cluster
//! keeps serving with a primary down (`cluster-require-full-coverage no`): a test stops a node to
//! make it miss registry changes, and only [`Cluster::failover`] promotes a replica.
//!
//! Helpers: a connection per node ([`Cluster::conn`]), key names that hash to a node's slots
//! ([`Cluster::keys_on`], by the cluster's CRC16 and the slot owners this harness assigned), stop
//! and restart a node on the same port from its own RDB and nodes.conf ([`Cluster::stop`],
//! [`Cluster::restart`]), a fourth primary ([`Cluster::add_primary`]), resharding
//! ([`Cluster::move_slots`], as `redis-cli --cluster reshard` does), a manual failover, and
//! [`Cluster::wait_converged`]: the module registry (catalogs, groups, `INFO session`) equal on
//! every running node.
//!
//! Every server is a [`Server`] of the harness: killed when the cluster is dropped, also when
//! the test panics.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, Value};

use super::{bytes, call, ok, pairs, wait_ready, Server, PATIENCE};

/// How long the registry may take to agree on every node after a change: the issue's "within
/// seconds", with room for a loaded two-core machine.
pub const CONVERGENCE: Duration = Duration::from_secs(30);

/// The number of hash slots.
pub const SLOTS: usize = 16384;

/// The cluster's key hash: CRC16 (XMODEM) of the key's hashtag, else of the key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        match rest.iter().position(|&b| b == b'}') {
            Some(0) | None => None,
            Some(close) => Some(&rest[..close]),
        }
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(key) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// A loopback port nobody listens on now (for a cluster bus port chosen explicitly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Server {
    /// Stops the server with `SHUTDOWN NOSAVE` (a test that wants its data back runs `SAVE`
    /// first) and leaves it stopped; its directory stays.
    pub fn shutdown_nosave(&mut self) {
        self.stop();
    }

    /// Starts a stopped server again on the SAME port, in the same directory and with the same
    /// arguments (so a cluster node reads its own nodes.conf and RDB and keeps its bus port).
    pub fn start_again_same_port(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let port = self.port;
        let start = Instant::now();
        loop {
            let mut child = self
                .command(port)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run the server again: {e}"));
            if wait_ready(&mut child, port) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                start.elapsed() < PATIENCE,
                "the server did not start again on port {port}; log:\n{}",
                self.log_tail(40)
            );
            sleep(Duration::from_millis(200));
        }
    }
}

/// One node of the cluster.
pub struct Node {
    pub server: Server,
    /// The 40-character cluster node id.
    pub id: String,
    pub bus: u16,
    /// False while a test has stopped it.
    pub up: bool,
}

/// A cluster of primaries and replicas on loopback.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// How the nodes were started (a node added later starts the same way).
    options: Builder,
    /// Each slot's owner (a node index), as this harness assigned them.
    owners: Vec<usize>,
    /// For each node, the index of its primary (`None` for a primary).
    primary_of: Vec<Option<usize>>,
}

fn node_args(bus: &str, node_timeout_ms: &str) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        node_timeout_ms,
        "--cluster-port",
        bus,
        "--cluster-replica-no-failover",
        "yes",
        "--cluster-require-full-coverage",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start_node(options: &Builder) -> Node {
    let bus = free_port();
    let args = node_args(&bus.to_string(), &options.node_timeout_ms.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let module_args: Vec<&str> = options.module_args.iter().map(String::as_str).collect();
    let server = Server::builder()
        .module_args(&module_args)
        .args(&args)
        .start();
    let id = String::from_utf8(bytes(&ok(&mut server.conn(), &["CLUSTER", "MYID"])))
        .expect("UTF-8 node id");
    Node {
        server,
        id,
        bus,
        up: true,
    }
}

fn text(c: &mut Connection, args: &[&str]) -> String {
    String::from_utf8_lossy(&bytes(&ok(c, args))).into_owned()
}

/// (first slot, last slot, owner id) of every assigned range by this node's `CLUSTER NODES`.
fn slot_map(c: &mut Connection) -> Vec<(u16, u16, String)> {
    let nodes = text(c, &["CLUSTER", "NODES"]);
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
                lo.parse().expect("slot"),
                hi.parse().expect("slot"),
                parts[0].to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// Every node id this node knows, with its flags and its primary's id (`-` for a primary).
fn node_table(c: &mut Connection) -> BTreeMap<String, (String, String)> {
    text(c, &["CLUSTER", "NODES"])
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            (parts.len() >= 8).then(|| {
                (
                    parts[0].to_owned(),
                    (parts[2].to_owned(), parts[3].to_owned()),
                )
            })
        })
        .collect()
}

/// Whether `CLUSTER NODES` flags (`myself,master,nofailover`) hold exactly `flag`.
fn has_flag(flags: &str, flag: &str) -> bool {
    flags.split(',').any(|f| f == flag)
}

fn cluster_info(c: &mut Connection, name: &str) -> Option<String> {
    text(c, &["CLUSTER", "INFO"]).lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == name).then(|| v.trim().to_owned())
    })
}

fn replication(c: &mut Connection, name: &str) -> Option<String> {
    super::info_field(c, "replication", name)
}

/// The shape of a cluster to start ([`Cluster::builder`]): 3 primaries with 1 replica each,
/// no module arguments, `cluster-node-timeout` 2000 ms unless told otherwise.
#[derive(Debug, Clone)]
pub struct Builder {
    primaries: usize,
    replicas: usize,
    module_args: Vec<String>,
    node_timeout_ms: u64,
}

impl Builder {
    /// The number of primaries (the slots are split evenly among them).
    pub fn primaries(mut self, n: usize) -> Self {
        self.primaries = n;
        self
    }

    /// Replicas per primary.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// Module arguments (`name value` pairs after the module's path) on every node.
    pub fn module_args(mut self, args: &[&str]) -> Self {
        self.module_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `cluster-node-timeout`: how long a silent node takes to be marked failing (a test that
    /// makes a node sleep without wanting it failed needs more than the default 2000 ms).
    pub fn node_timeout_ms(mut self, ms: u64) -> Self {
        self.node_timeout_ms = ms;
        self
    }

    /// Starts the cluster and waits until it is consistent.
    pub fn start(self) -> Cluster {
        Cluster::start_from(self)
    }
}

impl Cluster {
    /// Three primaries (nodes 0, 1, 2: slots 0-5460, 5461-10922, 10923-16383), each with one
    /// replica (node 3 replicates 0, node 4 replicates 1, node 5 replicates 2), consistent.
    pub fn start() -> Cluster {
        Cluster::builder().start()
    }

    /// A cluster of another shape: see [`Builder`].
    pub fn builder() -> Builder {
        Builder {
            primaries: 3,
            replicas: 1,
            module_args: Vec::new(),
            node_timeout_ms: 2000,
        }
    }

    fn start_from(options: Builder) -> Cluster {
        let n = options.primaries;
        assert!((1..=16).contains(&n), "1 to 16 primaries");
        let total = n + n * options.replicas;
        let nodes: Vec<Node> = (0..total).map(|_| start_node(&options)).collect();
        let per = SLOTS / n;
        let ranges: Vec<(usize, usize)> = (0..n)
            .map(|i| {
                let lo = i * per;
                (lo, if i + 1 == n { SLOTS - 1 } else { lo + per - 1 })
            })
            .collect();
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            let mut c = nodes[i].server.conn();
            ok(
                &mut c,
                &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()],
            );
            ok(
                &mut c,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            );
        }
        let port0 = nodes[0].server.port().to_string();
        let bus0 = nodes[0].bus.to_string();
        for node in &nodes[1..] {
            ok(
                &mut node.server.conn(),
                &["CLUSTER", "MEET", "127.0.0.1", &port0, &bus0],
            );
        }
        let owners = (0..SLOTS)
            .map(|slot| {
                ranges
                    .iter()
                    .position(|(lo, hi)| (*lo..=*hi).contains(&slot))
                    .expect("every slot assigned")
            })
            .collect();
        let primary_of = (0..total).map(|i| (i >= n).then(|| (i - n) % n)).collect();
        let cluster = Cluster {
            nodes,
            options,
            owners,
            primary_of,
        };
        cluster.wait_known();
        for r in n..total {
            let primary = cluster.nodes[(r - n) % n].id.clone();
            // the replica may not have heard of its primary's role yet: retry
            let start = Instant::now();
            while call(&mut cluster.conn(r), &["CLUSTER", "REPLICATE", &primary]).is_err() {
                assert!(start.elapsed() < PATIENCE, "CLUSTER REPLICATE refused");
                sleep(Duration::from_millis(50));
            }
        }
        cluster.wait_consistent();
        cluster
    }

    /// A connection to node `i`.
    pub fn conn(&self, i: usize) -> Connection {
        assert!(self.nodes[i].up, "node {i} is stopped");
        self.nodes[i].server.conn()
    }

    /// A connection to node `i` in `READONLY` mode (a replica then serves reads of its
    /// primary's slots).
    pub fn readonly_conn(&self, i: usize) -> Connection {
        let mut c = self.conn(i);
        ok(&mut c, &["READONLY"]);
        c
    }

    /// The node indexes that are primaries now (stopped ones included).
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.primary_of[i].is_none())
            .collect()
    }

    /// The replicas of primary `p`.
    pub fn replicas_of(&self, p: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.primary_of[i] == Some(p))
            .collect()
    }

    /// The primary of node `i` (itself for a primary).
    pub fn primary_of(&self, i: usize) -> usize {
        self.primary_of[i].unwrap_or(i)
    }

    /// The node indexes that are replicas now.
    pub fn replicas(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.primary_of[i].is_some())
            .collect()
    }

    /// The server of running node `i`.
    pub fn server(&self, i: usize) -> &Server {
        assert!(self.nodes[i].up, "node {i} is stopped");
        &self.nodes[i].server
    }

    /// The cluster node id of node `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    /// Stops node `i` at once (`SHUTDOWN NOSAVE`), without waiting for the others to notice.
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].server.shutdown_nosave();
        self.nodes[i].up = false;
    }

    /// A cluster client seeded with every running primary (`retries` absorb MOVED/ASK and
    /// TRYAGAIN during resharding).
    pub fn client(&self) -> ClusterConnection {
        self.client_of(false)
    }

    /// A cluster client that also connects to the replicas (sending `READONLY`) and sends them
    /// the commands it routes as reads.
    pub fn client_reading_replicas(&self) -> ClusterConnection {
        self.client_of(true)
    }

    fn client_of(&self, read_from_replicas: bool) -> ClusterConnection {
        let urls: Vec<String> = self
            .primaries()
            .into_iter()
            .filter(|&i| self.nodes[i].up)
            .map(|i| format!("redis://127.0.0.1:{}/", self.nodes[i].server.port()))
            .collect();
        let mut builder = ClusterClient::builder(urls).retries(32);
        if read_from_replicas {
            builder = builder.read_from_replicas();
        }
        builder
            .build()
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }

    /// Waits until `CLUSTER SLOTS` on every running node lists every running replica (Redis
    /// leaves out a replica whose replication offset it has not yet seen above 0: write
    /// something first).
    pub fn wait_replicas_in_slots(&self) {
        let ports: Vec<i64> = self
            .replicas()
            .into_iter()
            .filter(|&i| self.nodes[i].up)
            .map(|i| i64::from(self.nodes[i].server.port()))
            .collect();
        let start = Instant::now();
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.up) {
            let mut c = node.server.conn();
            loop {
                let text = format!("{:?}", ok(&mut c, &["CLUSTER", "SLOTS"]));
                if ports.iter().all(|p| text.contains(&format!("int({p})"))) {
                    break;
                }
                assert!(
                    start.elapsed() < PATIENCE,
                    "node {i}'s CLUSTER SLOTS does not list every replica: {text}"
                );
                sleep(Duration::from_millis(50));
            }
        }
    }

    /// The node that owns `key`'s slot (by this harness's assignment, which
    /// [`Cluster::wait_consistent`] made true on every node).
    pub fn owner_of(&self, key: &str) -> usize {
        self.owners[usize::from(key_slot(key.as_bytes()))]
    }

    /// The node that owns `slot` (by this harness's assignment).
    pub fn slot_owner(&self, slot: u16) -> usize {
        self.owners[usize::from(slot)]
    }

    /// `n` key names `<prefix>:<i>` whose slots primary `node` owns.
    pub fn keys_on(&self, node: usize, prefix: &str, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}:{i}"))
            .filter(|k| self.owner_of(k) == node)
            .take(n)
            .collect()
    }

    /// Waits until every running node knows every node of `self.nodes`.
    fn wait_known(&self) {
        let ids: Vec<&str> = self.nodes.iter().map(|n| n.id.as_str()).collect();
        let start = Instant::now();
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.up) {
            let mut c = node.server.conn();
            loop {
                let table = node_table(&mut c);
                if ids.iter().all(|id| {
                    table
                        .get(*id)
                        .is_some_and(|(flags, _)| !has_flag(flags, "handshake"))
                }) {
                    break;
                }
                assert!(
                    start.elapsed() < PATIENCE,
                    "node {i} does not know every node: {table:?}"
                );
                sleep(Duration::from_millis(50));
            }
        }
    }

    /// Waits until every running node says `cluster_state:ok`, knows every node and sees none
    /// failed, places every slot where this harness put it (a few polls in a row), sees every
    /// replica under its primary, and every running replica is in sync with its primary.
    ///
    /// A node that gives a slot to another node (a stale gossip message from a slot's old owner
    /// can win when the new owner's epoch has not reached it yet) is told again after the owner
    /// bumps its epoch, as `redis-cli --cluster fix` does.
    pub fn wait_consistent(&self) {
        let expected: Vec<(u16, u16, String)> = {
            let mut out: Vec<(u16, u16, String)> = Vec::new();
            for (slot, &o) in self.owners.iter().enumerate() {
                let slot = slot as u16;
                let id = &self.nodes[o].id;
                match out.last_mut() {
                    Some((_, hi, owner)) if owner == id && *hi + 1 == slot => *hi = slot,
                    _ => out.push((slot, slot, id.clone())),
                }
            }
            out
        };
        let known = self.nodes.len().to_string();
        let start = Instant::now();
        let mut stable = 0;
        let mut wrong_since: Option<Instant> = None;
        let mut last_problem = String::new();
        loop {
            let mut all_good = true;
            for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.up) {
                let mut c = node.server.conn();
                let state_ok = cluster_info(&mut c, "cluster_state").as_deref() == Some("ok")
                    && cluster_info(&mut c, "cluster_known_nodes").as_deref() == Some(&known)
                    && cluster_info(&mut c, "cluster_slots_assigned").as_deref() == Some("16384");
                let table = node_table(&mut c);
                let roles_ok = self.nodes.iter().enumerate().all(|(j, n)| {
                    table.get(&n.id).is_some_and(|(flags, primary)| {
                        !has_flag(flags, "fail")
                            && !has_flag(flags, "fail?")
                            && !has_flag(flags, "handshake")
                            && match self.primary_of[j] {
                                None => has_flag(flags, "master") && primary == "-",
                                Some(p) => has_flag(flags, "slave") && *primary == self.nodes[p].id,
                            }
                    })
                });
                let sync_ok = match self.primary_of[i] {
                    None => true,
                    Some(p) => {
                        !self.nodes[p].up
                            || (replication(&mut c, "master_link_status").as_deref() == Some("up")
                                && replication(&mut c, "master_sync_in_progress").as_deref()
                                    == Some("0"))
                    }
                };
                let map = slot_map(&mut c);
                if state_ok && roles_ok && sync_ok && map == expected {
                    continue;
                }
                all_good = false;
                last_problem = format!(
                    "node {i}: state ok {state_ok}, roles ok {roles_ok}, in sync {sync_ok}, \
                     slots {map:?} (expected {expected:?}), nodes {table:?}"
                );
                let since = *wrong_since.get_or_insert_with(Instant::now);
                if since.elapsed() < Duration::from_secs(1) || !state_ok || map == expected {
                    continue;
                }
                // fix the slots this node gives to the wrong owner
                for (lo, hi, id) in &map {
                    for slot in *lo..=*hi {
                        let owner = self.owners[usize::from(slot)];
                        if *id != self.nodes[owner].id {
                            ok(&mut self.conn(owner), &["CLUSTER", "BUMPEPOCH"]);
                            let _ = call(
                                &mut c,
                                &[
                                    "CLUSTER",
                                    "SETSLOT",
                                    &slot.to_string(),
                                    "NODE",
                                    &self.nodes[owner].id,
                                ],
                            );
                        }
                    }
                }
                wrong_since = None;
            }
            if all_good {
                stable += 1;
                if stable == 3 {
                    return;
                }
            } else {
                stable = 0;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the cluster did not become consistent: {last_problem}"
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// `SAVE` on node `i`, then `SHUTDOWN NOSAVE`: it stays stopped (the others see it fail)
    /// until [`Cluster::restart`].
    pub fn save_and_stop(&mut self, i: usize) {
        ok(&mut self.conn(i), &["SAVE"]);
        self.nodes[i].server.shutdown_nosave();
        self.nodes[i].up = false;
        // wait until the others notice (a restart must be a rejoin, not a blip)
        let id = self.nodes[i].id.clone();
        let start = Instant::now();
        for j in (0..self.nodes.len()).filter(|&j| self.nodes[j].up) {
            let mut c = self.conn(j);
            while !node_table(&mut c)
                .get(&id)
                .is_some_and(|(flags, _)| has_flag(flags, "fail"))
            {
                assert!(
                    start.elapsed() < PATIENCE,
                    "node {j} does not see node {i} down"
                );
                sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts stopped node `i` again (same port, dir, nodes.conf and RDB) and waits until the
    /// cluster is consistent again.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].server.start_again_same_port();
        self.nodes[i].up = true;
        self.wait_consistent();
    }

    /// Adds a primary without slots (`CLUSTER MEET`) and returns its index; give it slots with
    /// [`Cluster::move_slots`].
    pub fn add_primary(&mut self) -> usize {
        let node = start_node(&self.options);
        ok(
            &mut node.server.conn(),
            &[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &self.nodes[0].server.port().to_string(),
                &self.nodes[0].bus.to_string(),
            ],
        );
        self.nodes.push(node);
        self.primary_of.push(None);
        self.wait_known();
        self.wait_consistent();
        self.nodes.len() - 1
    }

    /// Moves `slots` from primary `from` to primary `to` the way `redis-cli --cluster reshard`
    /// does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys in batches, then
    /// `SETSLOT NODE` on the target, the source and the other primaries; waits until consistent.
    /// Returns how many keys moved.
    pub fn move_slots(
        &mut self,
        slots: impl IntoIterator<Item = u16>,
        from: usize,
        to: usize,
    ) -> usize {
        let mut src = self.conn(from);
        let mut dst = self.conn(to);
        let others: Vec<usize> = self
            .primaries()
            .into_iter()
            .filter(|&i| i != from && i != to && self.nodes[i].up)
            .collect();
        let target_port = self.nodes[to].server.port().to_string();
        let (from_id, to_id) = (self.nodes[from].id.clone(), self.nodes[to].id.clone());
        let mut moved = 0;
        let slots: Vec<u16> = slots.into_iter().collect();
        for &slot in &slots {
            let s = slot.to_string();
            ok(&mut dst, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]);
            ok(&mut src, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]);
            loop {
                let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100)
                    .query(&mut src)
                    .expect("GETKEYSINSLOT");
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
            ok(&mut dst, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
            ok(&mut src, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
            for &o in &others {
                ok(
                    &mut self.conn(o),
                    &["CLUSTER", "SETSLOT", &s, "NODE", &to_id],
                );
            }
        }
        for &slot in &slots {
            self.owners[usize::from(slot)] = to;
        }
        self.wait_consistent();
        moved
    }

    /// `CLUSTER FAILOVER` on replica `r` (coordinated with its running primary): waits until `r`
    /// is the primary of the old primary's slots and the old primary replicates it.
    pub fn failover(&mut self, r: usize) {
        let p = self.primary_of[r].expect("a replica");
        ok(&mut self.conn(r), &["CLUSTER", "FAILOVER"]);
        let start = Instant::now();
        let mut c = self.conn(r);
        while replication(&mut c, "role").as_deref() != Some("master") {
            assert!(start.elapsed() < PATIENCE, "replica {r} was not promoted");
            sleep(Duration::from_millis(50));
        }
        for owner in self.owners.iter_mut().filter(|o| **o == p) {
            *owner = r;
        }
        for link in self.primary_of.iter_mut() {
            if *link == Some(p) {
                *link = Some(r);
            }
        }
        self.primary_of[r] = None;
        self.primary_of[p] = Some(r);
        self.wait_consistent();
    }

    /// The registry as node `i` shows it; `None` while it cannot answer (loading).
    pub fn registry_view(&self, i: usize) -> Option<RegistryView> {
        let mut c = self.conn(i);
        let replica = self.primary_of[i].is_some();
        let list = |c: &mut Connection, args: &[&str]| -> Option<Vec<String>> {
            match call(c, args).ok()? {
                Value::Array(items) => Some(
                    items
                        .iter()
                        .map(|v| String::from_utf8_lossy(&bytes(v)).into_owned())
                        .collect(),
                ),
                Value::Set(items) => Some(
                    items
                        .iter()
                        .map(|v| String::from_utf8_lossy(&bytes(v)).into_owned())
                        .collect(),
                ),
                _ => None,
            }
        };
        let map_of = |v: Value, skip: &[&str]| -> Vec<(String, String)> {
            pairs(v)
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Int(n) => n.to_string(),
                        other => String::from_utf8_lossy(&bytes(&other)).into_owned(),
                    };
                    (String::from_utf8_lossy(&bytes(&k)).into_owned(), v)
                })
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .collect()
        };
        let mut view = RegistryView::default();
        for name in list(&mut c, &["SESSION.CATALOG", "LIST"])? {
            let info = call(&mut c, &["SESSION.CATALOG", "INFO", &name]).ok()?;
            view.catalogs.insert(name, map_of(info, &["memory"]));
        }
        for name in list(&mut c, &["SESSION.GROUP", "LIST"])? {
            let info = call(&mut c, &["SESSION.GROUP", "INFO", &name]).ok()?;
            view.groups.insert(name, map_of(info, &["memory"]));
        }
        let info: String = redis::cmd("INFO").arg("session").query(&mut c).ok()?;
        for line in info.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let k = k.strip_prefix("session_").unwrap_or(k);
            match k {
                "registry_digest" => view.digest = Some(v.trim().to_owned()),
                "catalogs" | "catalog_items" | "groups" | "live_notifications"
                | "registry_entries" => {
                    view.counts.push((k.to_owned(), v.trim().to_owned()));
                }
                _ => {}
            }
        }
        // each catalog's items with their ranks, by a cold-start SURFACE of a key that does not
        // exist (rank = score / the catalog's largest absolute score): on a primary SURFACE
        // NOMARK, on a replica SURFACE_RO through READONLY when the module has it
        let probe_cmd = if !replica {
            Some("SESSION.SURFACE")
        } else if has_command(&mut c, "session.surface_ro") {
            ok(&mut c, &["READONLY"]);
            Some("SESSION.SURFACE_RO")
        } else {
            None
        };
        if let Some(cmd) = probe_cmd {
            let key = self
                .keys_on(self.primary_of(i), "probe-missing", 1)
                .remove(0);
            let mut items = BTreeMap::new();
            for name in view.catalogs.keys() {
                let mut args = vec![cmd, &key, "FROM", name, "COUNT", "1000", "WITHSCORES"];
                if !replica {
                    args.push("NOMARK");
                }
                let Value::Array(reply) = call(&mut c, &args).ok()? else {
                    return None;
                };
                let mut ranked: Vec<(String, String)> = reply
                    .chunks(2)
                    .map(|p| {
                        (
                            String::from_utf8_lossy(&bytes(&p[0])).into_owned(),
                            String::from_utf8_lossy(&bytes(&p[1])).into_owned(),
                        )
                    })
                    .collect();
                ranked.sort();
                items.insert(name.clone(), ranked);
            }
            view.items = Some(items);
        }
        Some(view)
    }

    /// Every running node's registry view (`None` for a node that cannot answer now).
    pub fn registry_views(&self) -> Vec<(usize, Option<RegistryView>)> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .map(|i| (i, self.registry_view(i)))
            .collect()
    }

    /// Waits until every running node (primaries and replicas) shows the same registry: the same
    /// catalogs (items, categories), groups (notifications, first and last sequence), `INFO
    /// session` counts and `registry_digest`, and the same items with the same ranks on every
    /// node that can surface, and until `want` holds for it; returns that view. Panics after
    /// [`CONVERGENCE`] showing each node's view.
    pub fn wait_converged_to(
        &self,
        what: &str,
        want: impl Fn(&RegistryView) -> bool,
    ) -> RegistryView {
        let start = Instant::now();
        loop {
            let views = self.registry_views();
            if let Some(view) = agreed(&views) {
                if want(&view) {
                    return view;
                }
            }
            if start.elapsed() > CONVERGENCE {
                let shown: Vec<String> = views
                    .iter()
                    .map(|(i, v)| format!("node {i}: {v:?}"))
                    .collect();
                panic!(
                    "the registry did not converge to {what} within {CONVERGENCE:?}:\n{}",
                    shown.join("\n")
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// [`Cluster::wait_converged_to`] with no condition beyond agreement.
    pub fn wait_converged(&self) -> RegistryView {
        self.wait_converged_to("agreement", |_| true)
    }
}

fn has_command(c: &mut Connection, name: &str) -> bool {
    match ok(c, &["COMMAND", "INFO", name]) {
        Value::Array(items) => items.first().is_some_and(|v| *v != Value::Nil),
        _ => false,
    }
}

/// The registry as one node shows it (see [`Cluster::wait_converged_to`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RegistryView {
    /// Catalog name -> `SESSION.CATALOG INFO` without `memory`.
    pub catalogs: BTreeMap<String, Vec<(String, String)>>,
    /// Group name -> `SESSION.GROUP INFO` without `memory`.
    pub groups: BTreeMap<String, Vec<(String, String)>>,
    /// `INFO session`: catalogs, catalog_items, groups, live_notifications, registry_entries.
    pub counts: Vec<(String, String)>,
    /// `INFO session`'s `registry_digest`, when the module shows one.
    pub digest: Option<String>,
    /// Catalog name -> (item, cold-start rank) sorted, when the node could surface.
    pub items: Option<BTreeMap<String, Vec<(String, String)>>>,
}

impl RegistryView {
    /// A catalog field of `SESSION.CATALOG INFO` (`items`, `categories`) as an integer.
    pub fn catalog(&self, name: &str, field: &str) -> Option<i64> {
        let info = self.catalogs.get(name)?;
        info.iter()
            .find(|(k, _)| k == field)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// A group field of `SESSION.GROUP INFO` (`notifications`, `first_seq`, `last_seq`).
    pub fn group(&self, name: &str, field: &str) -> Option<i64> {
        let info = self.groups.get(name)?;
        info.iter()
            .find(|(k, _)| k == field)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The items of a catalog with their ranks (from a node that could surface).
    pub fn ranked(&self, catalog: &str) -> Vec<(String, String)> {
        self.items
            .as_ref()
            .and_then(|m| m.get(catalog))
            .cloned()
            .unwrap_or_default()
    }
}

/// The view every node agrees on, if they all answered and agree (the item ranks compared among
/// the nodes that could surface); the returned view carries the ranks.
fn agreed(views: &[(usize, Option<RegistryView>)]) -> Option<RegistryView> {
    let mut out: Option<RegistryView> = None;
    let mut items: Option<BTreeMap<String, Vec<(String, String)>>> = None;
    for (_, view) in views {
        let view = view.as_ref()?;
        let mut base = view.clone();
        base.items = None;
        match &out {
            None => out = Some(base),
            Some(first) if *first == base => {}
            Some(_) => return None,
        }
        if let Some(mine) = &view.items {
            match &items {
                None => items = Some(mine.clone()),
                Some(first) if first == mine => {}
                Some(_) => return None,
            }
        }
    }
    let mut view = out?;
    view.items = items;
    Some(view)
}
