//! A Redis Cluster on loopback for the cluster suites that need replicas or a stopped node
//! (tests/surface_ro.rs, tests/cluster_users.rs): `n` primaries with equal slot ranges, each with
//! `replicas` replicas, the module on every node. Include with `mod common; mod cluster_nodes;`.

#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::Connection;

use crate::common::*;

pub struct Cluster {
    /// `None` once stopped by [`Cluster::stop_primary`].
    pub primaries: Vec<Option<Server>>,
    pub replicas: Vec<Server>,
    /// The node ids of the primaries, by index.
    pub ids: Vec<String>,
    /// The primary index each replica follows.
    pub replica_of: Vec<usize>,
    ranges: Vec<(u16, u16)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn node(module_args: &[&str]) -> Server {
    // the bus port is chosen explicitly: port + 10000 may not exist
    let bus = free_port().to_string();
    Server::builder()
        .module_args(module_args)
        .args(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "15000",
            "--cluster-require-full-coverage",
            "no",
            "--cluster-port",
            &bus,
            "--repl-diskless-sync-delay",
            "0",
        ])
        .start()
}

fn my_id(c: &mut Connection) -> String {
    String::from_utf8(bytes(&ok(c, &["CLUSTER", "MYID"]))).expect("id")
}

fn cluster_bus_port(c: &mut Connection) -> u16 {
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-port")
        .query(c)
        .expect("cluster-port");
    v.last().and_then(|p| p.parse().ok()).expect("a port")
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
                continue;
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

/// (id, primary id) of every replica a node knows.
fn replica_map(c: &mut Connection) -> Vec<(String, String)> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(c).unwrap();
    let mut out: Vec<(String, String)> = nodes
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            (parts.len() >= 4 && parts[2].contains("slave"))
                .then(|| (parts[0].to_owned(), parts[3].to_owned()))
        })
        .collect();
    out.sort();
    out
}

impl Cluster {
    /// `n` primaries, each with `replicas` replicas; waits until every node agrees on the slots
    /// and the replicas, and every replica finished its initial sync.
    pub fn start(n: usize, replicas: usize, module_args: &[&str]) -> Cluster {
        let primaries: Vec<Server> = (0..n).map(|_| node(module_args)).collect();
        let replica_nodes: Vec<Server> = (0..n * replicas).map(|_| node(module_args)).collect();
        let per = 16384 / n;
        let ranges: Vec<(u16, u16)> = (0..n)
            .map(|i| {
                let lo = i * per;
                let hi = if i + 1 == n { 16383 } else { lo + per - 1 };
                (lo as u16, hi as u16)
            })
            .collect();
        let mut ids = Vec::new();
        for (i, p) in primaries.iter().enumerate() {
            let mut c = p.conn();
            ok(
                &mut c,
                &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()],
            );
            let (lo, hi) = ranges[i];
            ok(
                &mut c,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            );
            ids.push(my_id(&mut c));
        }
        let mut first = primaries[0].conn();
        let bus0 = cluster_bus_port(&mut first).to_string();
        let port0 = primaries[0].port().to_string();
        for s in primaries[1..].iter().chain(&replica_nodes) {
            ok(
                &mut s.conn(),
                &["CLUSTER", "MEET", "127.0.0.1", &port0, &bus0],
            );
        }
        let total = (n + n * replicas).to_string();
        let all: Vec<&Server> = primaries.iter().chain(&replica_nodes).collect();
        wait_until(PATIENCE, "every node to know every node", || {
            all.iter().all(|s| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut s.conn())
                    .unwrap();
                info.contains(&format!("cluster_known_nodes:{total}"))
            })
        });
        let replica_of: Vec<usize> = (0..n * replicas).map(|j| j % n).collect();
        for (j, r) in replica_nodes.iter().enumerate() {
            let target = &ids[replica_of[j]];
            // the replica may not have heard of its primary's role yet: retry
            wait_until(PATIENCE, "CLUSTER REPLICATE to be accepted", || {
                call(&mut r.conn(), &["CLUSTER", "REPLICATE", target]).is_ok()
            });
        }
        let cluster = Cluster {
            primaries: primaries.into_iter().map(Some).collect(),
            replicas: replica_nodes,
            ids,
            replica_of,
            ranges,
        };
        cluster.wait_consistent();
        cluster
    }

    fn live(&self) -> Vec<&Server> {
        self.primaries
            .iter()
            .flatten()
            .chain(&self.replicas)
            .collect()
    }

    /// Waits until every live node sees the slots where this harness put them, every replica
    /// following its primary, and every replica's link up, for a few rounds in a row. A node
    /// that gives a slot to another node (stale gossip) is told again after the owner bumps its
    /// epoch, as in tests/cluster.rs.
    pub fn wait_consistent(&self) {
        let expected: Vec<(u16, u16, String)> = self
            .ranges
            .iter()
            .zip(&self.ids)
            .map(|(&(lo, hi), id)| (lo, hi, id.clone()))
            .collect();
        let mut want_replicas: Vec<(String, String)> = self
            .replicas
            .iter()
            .zip(&self.replica_of)
            .map(|(r, &p)| (my_id(&mut r.conn()), self.ids[p].clone()))
            .collect();
        want_replicas.sort();
        let start = Instant::now();
        let mut stable = 0;
        loop {
            let mut good = true;
            for s in self.live() {
                let mut c = s.conn();
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
                if !info.contains("cluster_state:ok") {
                    good = false;
                }
                let map = slot_map(&mut c);
                if map != expected {
                    good = false;
                    if start.elapsed() > Duration::from_secs(2) {
                        for (lo, hi, id) in &map {
                            let Some(owner) =
                                self.ranges.iter().position(|&(a, b)| a <= *lo && *hi <= b)
                            else {
                                continue;
                            };
                            if *id != self.ids[owner] {
                                if let Some(p) = &self.primaries[owner] {
                                    ok(&mut p.conn(), &["CLUSTER", "BUMPEPOCH"]);
                                }
                                for slot in *lo..=*hi {
                                    let _ = call(
                                        &mut c,
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
                    }
                }
                if replica_map(&mut c) != want_replicas {
                    good = false;
                }
            }
            for r in &self.replicas {
                let mut c = r.conn();
                if info_field(&mut c, "replication", "master_link_status").as_deref() != Some("up")
                    || info_field(&mut c, "replication", "master_sync_in_progress").as_deref()
                        != Some("0")
                {
                    good = false;
                }
            }
            if good {
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

    /// Waits until `CLUSTER SLOTS` on every live node lists every replica (Redis leaves out a
    /// replica whose replication offset it has not yet seen above 0: write something first).
    pub fn wait_replicas_in_slots(&self) {
        let ports: Vec<i64> = self.replicas.iter().map(|r| i64::from(r.port())).collect();
        wait_until(PATIENCE, "CLUSTER SLOTS to list every replica", || {
            self.live().iter().all(|s| {
                let text = format!("{:?}", ok(&mut s.conn(), &["CLUSTER", "SLOTS"]));
                ports.iter().all(|p| text.contains(&format!("int({p})")))
            })
        });
    }

    /// The primary at `i` (panics if stopped).
    pub fn primary(&self, i: usize) -> &Server {
        self.primaries[i].as_ref().expect("a running primary")
    }

    /// Stops primary `i` (kills the process).
    pub fn stop_primary(&mut self, i: usize) {
        self.primaries[i] = None;
    }

    /// The primary index that owns `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        self.ranges
            .iter()
            .position(|&(lo, hi)| (lo..=hi).contains(&slot))
            .expect("every slot assigned")
    }

    pub fn slot_of(&self, key: &str) -> u16 {
        let mut c = self.live()[0].conn();
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .unwrap();
        slot as u16
    }

    /// `count` keys `prefix<n>` whose slots belong to primary `i`.
    pub fn keys_on(&self, i: usize, prefix: &str, count: usize) -> Vec<String> {
        (0..)
            .map(|n| format!("{prefix}{n}"))
            .filter(|k| self.owner(self.slot_of(k)) == i)
            .take(count)
            .collect()
    }

    /// A cluster client over the primaries; with `read_from_replicas`, it also connects to the
    /// replicas (sending `READONLY`).
    pub fn client(&self, read_from_replicas: bool) -> ClusterConnection {
        let urls: Vec<String> = self
            .primaries
            .iter()
            .flatten()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port()))
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
}
