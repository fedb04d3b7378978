//! Replication under a mixed random load: TOUCH (fields, events, categories, users), ENRICH
//! (attributes, JOIN/LEAVE), SURFACE FROM with EXPLORE (a random draw on the primary, replicated
//! as its effects) and ITEMS, IMPRESS, NOTIFYGROUP to explicit and segment groups, INBOX, catalog
//! changes, SESSION.LOAD, DEL, transactions and scripts, part before the replica attaches (full
//! sync) and part streamed. The replica ends with the primary's `DEBUG DIGEST`, the same keys with
//! the same absolute expiries and the same registry; after a failover (`REPLICAOF NO ONE`) the
//! promoted replica keeps every session with its absolute expiry and serves writes.
//!
//! `SESSION_SLOW=1` runs ten times the load; `SESSION_TEST_SEED` replays a run.

mod common;

use std::collections::BTreeMap;

use common::dump::ModuleDump;
use common::*;
use rand::seq::SliceRandom;
use rand::Rng;
use redis::{Connection, Value};

fn scale() -> usize {
    match std::env::var("SESSION_SLOW").as_deref() {
        Ok("1") | Ok("yes") | Ok("true") => 10,
        _ => 1,
    }
}

const KEYS: usize = 300;
const GROUPS: &[&str] = &[
    "beta",
    "vip",
    "new",
    "engaged",
    "interest:category-1",
    "returning",
];

fn key(rng: &mut impl Rng) -> String {
    format!("rs:{}", rng.gen_range(0..KEYS))
}

/// One random valid write (or read that writes: SURFACE, INBOX) of the mixed load.
fn random_command(rng: &mut impl Rng, saved: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let s = |v: &str| v.as_bytes().to_vec();
    let k = key(rng);
    match rng.gen_range(0..100) {
        0..=39 => {
            let mut a = vec![s("SESSION.TOUCH"), s(&k)];
            a.extend(random_touch_args(rng));
            a
        }
        40..=49 => {
            let mut a = vec![s("SESSION.ENRICH"), s(&k)];
            if rng.gen_bool(0.5) {
                a.push(s("ATTRS"));
                a.push(s(&format!(
                    r#"{{"churn":{:.3},"geo":{{"n":{}}},"gone":null}}"#,
                    rng.gen::<f64>(),
                    rng.gen_range(0..5)
                )));
            }
            if rng.gen_bool(0.4) {
                a.extend([s("JOIN"), s("1"), s(GROUPS[rng.gen_range(0..2)])]);
            }
            if rng.gen_bool(0.1) {
                a.extend([s("LEAVE"), s("1"), s(GROUPS[rng.gen_range(0..2)])]);
            }
            a
        }
        50..=61 => {
            let mut a = vec![s("SESSION.SURFACE"), s(&k), s("FROM")];
            a.push(s(["news", "shop"].choose(rng).unwrap()));
            a.extend([s("COUNT"), s(&rng.gen_range(1..8).to_string())]);
            if rng.gen_bool(0.7) {
                a.extend([s("EXPLORE"), s(&format!("{:.2}", rng.gen::<f64>()))]);
            }
            if rng.gen_bool(0.3) {
                a.extend([s("MAXIMPRESSIONS"), s(&rng.gen_range(1..4).to_string())]);
            }
            if rng.gen_bool(0.2) {
                a.extend([s("CATEGORY"), s(&format!("category-{}", rng.gen_range(0..10)))]);
            }
            if rng.gen_bool(0.2) {
                a.push(s("WITHSCORES"));
            }
            a
        }
        62..=65 => {
            let n = rng.gen_range(1..5);
            let mut a = vec![s("SESSION.SURFACE"), s(&k), s("ITEMS"), s(&n.to_string())];
            for _ in 0..n {
                a.push(s(&format!("item-{}", rng.gen_range(0..60))));
            }
            a
        }
        66..=68 => vec![
            s("SESSION.IMPRESS"),
            s(&k),
            s("2"),
            s(&format!("item-{}", rng.gen_range(0..60))),
            s(&format!("n{}", rng.gen_range(0..40))),
        ],
        69..=75 => {
            let mut a = vec![s("SESSION.INBOX"), s(&k)];
            if rng.gen_bool(0.3) {
                a.extend([s("COUNT"), s("1")]);
            }
            a
        }
        76..=81 => {
            let mut a = vec![
                s("SESSION.NOTIFYGROUP"),
                s(GROUPS.choose(rng).unwrap()),
                s(&format!("note-{}", rng.gen_range(0..400))),
                s(&format!("payload {}", rng.gen::<u16>())),
            ];
            if rng.gen_bool(0.3) {
                a.extend([s("TTL"), s(&rng.gen_range(600..86_400).to_string())]);
            }
            if rng.gen_bool(0.1) {
                a.extend([s("MAXLEN"), s(&rng.gen_range(2..6).to_string())]);
            }
            a
        }
        82..=89 => {
            let catalog = ["news", "shop", "tmp"].choose(rng).unwrap().to_string();
            match rng.gen_range(0..10) {
                0 => vec![s("SESSION.CATALOG"), s("DROP"), s("tmp")],
                1 | 2 => vec![
                    s("SESSION.CATALOG"),
                    s("DEL"),
                    s(&catalog),
                    s(&format!("n{}", rng.gen_range(0..40))),
                ],
                _ => {
                    let mut a = vec![
                        s("SESSION.CATALOG"),
                        s("ADD"),
                        s(&catalog),
                        s(&format!("n{}", rng.gen_range(0..40))),
                        s("SCORE"),
                        s(&format!("{:.2}", rng.gen_range(0.0..10.0))),
                        s("CATEGORIES"),
                        s("1"),
                        s(&format!("category-{}", rng.gen_range(0..10))),
                    ];
                    if rng.gen_bool(0.3) {
                        a.extend([s("TTL"), s("86400")]);
                    }
                    a
                }
            }
        }
        90..=92 => vec![s("SESSION.LOAD"), s(&k), saved.choose(rng).unwrap().clone()],
        93 => vec![s("DEL"), s(&k)],
        94 => vec![
            s("EVAL"),
            s("return redis.call('SESSION.TOUCH', KEYS[1], 'EVENT', ARGV[1], 'CATEGORIES', '1', 'category-1')"),
            s("1"),
            s(&k),
            s(&format!("item-{}", rng.gen_range(0..60))),
        ],
        _ => vec![s("SESSION.SEEN"), s(&k), s("item-1"), s("item-2")],
    }
}

/// Runs `n` random commands in pipelines (a few inside MULTI/EXEC); every one must succeed
/// (the load is valid) except INBOX/IMPRESS/ENRICH on a key that LOAD or DEL just changed,
/// which reply normally anyway.
fn run_load(
    c: &mut Connection,
    rng: &mut impl Rng,
    saved: &[Vec<u8>],
    n: usize,
) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(200);
        let commands: Vec<Vec<Vec<u8>>> = (0..batch).map(|_| random_command(rng, saved)).collect();
        let mut pipe = redis::pipe();
        if rng.gen_bool(0.1) {
            pipe.atomic();
        }
        for args in &commands {
            pipe.add_command(command(args));
            *counts
                .entry(String::from_utf8_lossy(&args[0]).into_owned())
                .or_default() += 1;
        }
        let _: Vec<Value> = pipe
            .query(c)
            .unwrap_or_else(|e| panic!("the mixed load: {e}"));
        done += batch;
    }
    counts
}

fn setup_registry(c: &mut Connection) {
    for i in 0..60 {
        let cat = format!("category-{}", i % 10);
        let other = format!("category-{}", (i * 7) % 10);
        for catalog in ["news", "shop"] {
            ok(
                c,
                &[
                    "SESSION.CATALOG",
                    "ADD",
                    catalog,
                    &format!("item-{i}"),
                    "SCORE",
                    &(i % 13).to_string(),
                    "CATEGORIES",
                    "2",
                    &cat,
                    &other,
                ],
            );
        }
    }
    for g in GROUPS {
        ok(c, &["SESSION.NOTIFYGROUP", g, "welcome", "hello"]);
    }
}

fn saved_forms(c: &mut Connection) -> Vec<Vec<u8>> {
    config_set(c, "rdbcompression", "no");
    (0..3)
        .map(|i| {
            let key = format!("rs:{i}");
            touch(
                &mut *c,
                &key,
                &[
                    "SET",
                    "1",
                    "seed",
                    "1",
                    "EVENT",
                    "item-3",
                    "CATEGORIES",
                    "1",
                    "category-3",
                ],
            );
            ModuleDump::parse(&bytes(&ok(c, &["DUMP", &key]))).saved
        })
        .collect()
}

/// The registry as a client sees it: catalogs with their INFO, and `INFO session`'s registry
/// sizes.
fn registry_view(c: &mut Connection) -> (Value, Vec<Value>, Vec<String>) {
    let list = ok(c, &["SESSION.CATALOG", "LIST"]);
    let mut infos = Vec::new();
    if let Value::Array(names) = &list {
        for name in names {
            // items and categories (memory depends on each server's allocation history: a
            // replica that loaded the catalog from an RDB holds it more compactly)
            let info = pairs(ok(c, &[&b"SESSION.CATALOG"[..], b"INFO", &bytes(name)]));
            infos.extend(
                info.into_iter()
                    .filter(|(n, _)| bytes(n) != b"memory")
                    .flat_map(|(n, v)| [n, v]),
            );
        }
    }
    let info: String = redis::cmd("INFO").arg("session").query(c).unwrap();
    let sizes: Vec<String> = info
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("catalog")
                || l.contains("group")
                || l.contains("notifications")
                || l.contains("indexed"))
                && !l.contains("delivered")
                && !l.contains("published")
        })
        .map(str::to_owned)
        .collect();
    assert!(sizes.len() >= 4, "INFO session: {info}");
    (list, infos, sizes)
}

#[test]
fn replica_matches_the_primary_under_a_mixed_random_load_and_after_failover() {
    let commands = 6_000 * scale();
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    let mut rng = seeded_rng(0x00e1_1ca5);
    setup_registry(&mut p);
    let saved = saved_forms(&mut p);
    // a first part reaches the replica through the full sync (RDB with the registry as aux data)
    let mut counts = run_load(&mut p, &mut rng, &saved, commands / 3);

    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    // the replica's own configuration must not matter
    for (name, value) in [
        ("session.default-idle", "5"),
        ("session.max-fields", "1"),
        ("session.seen-capacity", "1"),
        ("session.interest-top-n", "1"),
        ("session.notify-ttl", "1"),
        ("session.max-notifications", "1"),
    ] {
        config_set(&mut r, name, value);
    }
    let mut p3 = primary.conn_resp3();
    for (name, n) in run_load(&mut p3, &mut rng, &saved, commands / 3) {
        *counts.entry(name).or_default() += n;
    }
    for (name, n) in run_load(&mut p, &mut rng, &saved, commands - 2 * (commands / 3)) {
        *counts.entry(name).or_default() += n;
    }
    println!("mixed load: {counts:?}");

    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    assert_eq!(digest(&mut r), digest(&mut p), "DEBUG DIGEST");
    let on_primary = expiries(&mut p);
    assert_eq!(expiries(&mut r), on_primary, "keys and PEXPIRETIME");
    assert!(on_primary.len() > KEYS / 2, "{} keys", on_primary.len());
    assert_eq!(registry_view(&mut r), registry_view(&mut p), "the registry");

    // failover: the replica becomes a primary and keeps everything, expiries included
    drop(primary);
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(expiries(&mut r), on_primary, "after REPLICAOF NO ONE");
    for (key, at) in &on_primary {
        let info = session_info(&mut r, key);
        assert_eq!(
            info["expires_at_ms"],
            *at,
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    // and serves writes (with its own configuration from now on)
    let k = "rs:1";
    touch(&mut r, k, &["EVENT", "item-9"]);
    assert!(
        pexpiretime(&mut r, k) > now_ms(),
        "a live session after the touch"
    );
    ok(&mut r, &["SESSION.INBOX", "rs:2"]);
    ok(
        &mut r,
        &["SESSION.SURFACE", "rs:2", "FROM", "news", "EXPLORE", "0.5"],
    );
}
