//! Registry sync (issue 20): merging is idempotent, commutative and associative. Three nodes make
//! random local changes (catalog ADD/DEL/DROP, publishes, GROUP DROP) while now and then merging
//! part of what the others sent; then every node merges everything, in its own random order and
//! twice, or the nodes only exchange snapshots: all end with equal digests and equal snapshots
//! (one corner needs the snapshot exchange, see `any_delivery_order_converges`).

use proptest::collection::vec;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use session_core::codec::registry::encode_entries;
use session_core::registry::{Entry, Limits, Published, Registry};
use session_core::version::node_hash;

const T: i64 = 1_700_000_000_000;
const SKEW: [i64; 3] = [0, -5, 7];

/// `PROPTEST_CASES` when set (`make test-slow`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

type Op = (usize, u8, u8, u8, u8, u8, i64);

fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec(
        (
            0..3usize,
            0..6u8,
            any::<u8>(),
            any::<u8>(),
            0..4u8,
            0..3u8,
            0..3i64,
        ),
        1..60,
    )
}

fn nodes() -> Vec<Registry> {
    (0..3)
        .map(|i| {
            let mut r = Registry::new();
            r.node = node_hash(format!("node-{i}").as_bytes());
            r.track = true;
            r
        })
        .collect()
}

/// Runs the ops; returns the nodes, every entry their outboxes produced, and the final time.
fn run(ops: &[Op], seed: u64) -> (Vec<Registry>, Vec<Entry>, i64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut nodes = nodes();
    let mut log: Vec<Entry> = Vec::new();
    let mut now = T;
    for &(n, kind, a, b, c, deliver, dt) in ops {
        now += dt;
        let at = now + SKEW[n];
        let node = &mut nodes[n];
        if deliver == 0 && !log.is_empty() {
            let some: Vec<Entry> = (0..rng.gen_range(1..=log.len()))
                .map(|_| log[rng.gen_range(0..log.len())].clone())
                .collect();
            node.merge(some, at);
            assert!(
                node.take_outbox().is_empty(),
                "a merge never fills the outbox"
            );
        }
        let catalog = format!("c{}", a % 2).into_bytes();
        let id = |x: u8| format!("i{}", x % 4).into_bytes();
        let group = format!("g{}", a % 2).into_bytes();
        match kind {
            0 | 1 => {
                let cats: Vec<&[u8]> = if a & 4 != 0 { vec![b"k"] } else { vec![] };
                let expires = (b & 8 != 0).then_some(T + 1_000_000_000);
                node.add_item(&catalog, &id(b), f64::from(c), &cats, expires, at);
            }
            2 => {
                let (x, y) = (id(b), id(b / 4));
                node.del_items(&catalog, &[&x, &y], at);
            }
            3 => {
                node.drop_catalog(&catalog, at);
            }
            4 => {
                let n = format!("n{}", b % 4).into_bytes();
                let published = node
                    .publish(
                        &group,
                        &n,
                        &[c],
                        at,
                        T + 1_000_000_000,
                        1000,
                        None,
                        Limits::NONE,
                    )
                    .unwrap();
                // as NOTIFYGROUP does: the publisher of what was stored
                if published == Published::Stored && b & 16 != 0 {
                    let seq = node.last_seq;
                    node.set_publisher(&group, seq, Some(b"alice"));
                }
                // and its join restriction (JOINEDBEFORE NOW), which travels with it
                if published == Published::Stored && b & 32 != 0 {
                    let seq = node.last_seq;
                    let window = session_core::notify::JoinWindow {
                        after: 0,
                        before: at,
                    };
                    node.set_window(&group, seq, window);
                }
            }
            _ => {
                node.drop_group(&group, at);
            }
        }
        log.extend(node.take_outbox());
    }
    (nodes, log, now + 20)
}

fn view(r: &Registry, now: i64) -> (u64, u64, Vec<Vec<u8>>) {
    let d = r.digest();
    let mut snap: Vec<Vec<u8>> = r
        .snapshot(now)
        .iter()
        .map(|e| encode_entries(std::slice::from_ref(e)))
        .collect();
    snap.sort();
    (d.hash, d.entries, snap)
}

fn consistent(r: &mut Registry) {
    let (m, n) = (r.group_memory(), r.notifications());
    r.recount();
    assert_eq!((r.group_memory(), r.notifications()), (m, n));
    for g in r.groups.values() {
        let seqs: Vec<u64> = g.notifications().iter().map(|n| n.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), ..ProptestConfig::default() })]

    /// Delivering every entry, in any order, any number of times, ends in one registry.
    #[test]
    fn any_delivery_order_converges(ops in ops(), seed in any::<u64>()) {
        let (mut nodes, log, now) = run(&ops, seed);
        let strict = !racing_notifications(&log);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 1);
        for node in nodes.iter_mut() {
            let mut order = log.clone();
            order.shuffle(&mut rng);
            node.merge(order.clone(), now);
            order.shuffle(&mut rng);
            let again = node.merge(order, now);
            prop_assert!(!strict || again.is_empty(), "idempotent");
            consistent(node);
        }
        // a fresh node, everything in reverse; another one from a snapshot of the first
        let mut fresh = Registry::new();
        let mut reversed = log.clone();
        reversed.reverse();
        fresh.merge(reversed, now);
        let mut copy = Registry::new();
        copy.merge(nodes[0].snapshot(now), now);
        nodes.push(fresh);
        nodes.push(copy);
        if strict {
            let want = view(&nodes[0], now);
            for r in &nodes {
                prop_assert_eq!(&view(r, now), &want);
            }
        }
        // what the digest exchange does: everyone merges everyone's snapshot
        gossip(&mut nodes, now, 2);
        let want = view(&nodes[0], now);
        for r in nodes.iter_mut() {
            consistent(r);
            prop_assert_eq!(&view(r, now), &want);
        }
    }

    /// Nodes that only exchange snapshots (lost messages) converge, to what full delivery gives.
    #[test]
    fn snapshot_exchange_converges_to_the_same(ops in ops(), seed in any::<u64>()) {
        let (mut nodes, log, now) = run(&ops, seed);
        gossip(&mut nodes, now, 2);
        let want = view(&nodes[0], now);
        for r in nodes.iter_mut() {
            consistent(r);
            prop_assert_eq!(&view(r, now), &want);
        }
        if !racing_notifications(&log) {
            let (mut full, _, _) = run(&ops, seed);
            full[0].merge(log, now);
            prop_assert_eq!(&view(&full[0], now), &want);
        }
    }
}

/// `rounds` rounds of every node merging every other node's snapshot.
fn gossip(nodes: &mut [Registry], now: i64, rounds: usize) {
    for _ in 0..rounds {
        let snaps: Vec<Vec<Entry>> = nodes.iter().map(|r| r.snapshot(now)).collect();
        for r in nodes.iter_mut() {
            for snap in &snaps {
                r.merge(snap.clone(), now);
            }
        }
    }
}

/// Two different notifications of one group with the same id or the same sequence (published
/// on two nodes before either saw the other's): the lower wins where both meet, but a GROUP DROP
/// or a third such notification can make the outcome depend on what a node met first. The
/// digest exchange (snapshots) settles these; everything else converges by delivery alone.
fn racing_notifications(log: &[Entry]) -> bool {
    let mut seen: std::collections::HashMap<(&[u8], &[u8]), &Entry> = Default::default();
    let mut seqs: std::collections::HashMap<(&[u8], u64), &Entry> = Default::default();
    for e in log {
        if let Entry::Notification {
            group,
            notification,
            ..
        } = e
        {
            for other in [
                seen.insert((group, &notification.id), e),
                seqs.insert((group, notification.seq), e),
            ]
            .into_iter()
            .flatten()
            {
                if other != e {
                    return true;
                }
            }
        }
    }
    false
}
