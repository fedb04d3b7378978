//! `unique` (TOUCH's reply, SESSION.INFO's `unique_items`): exact while a session has seen at most
//! 512 distinct items (issue 21), kept by DUMP/RESTORE and DEBUG RELOAD, and equal on a replica.
//! Past 512 it is an estimate, continuous at the switch (docs/commands.md).

mod common;

use common::*;
use redis::{Connection, Value};

/// The exact limit at the default precision (`session_core::limits::DISTINCT_EXACT`).
const EXACT: i64 = 512;

/// The `i`th distinct item of `session`: text for some, raw bytes for others.
fn item(session: usize, i: usize) -> Vec<u8> {
    match session % 3 {
        0 => format!("/product/{i}").into_bytes(),
        1 => {
            let mut b = vec![0u8, 0xff, session as u8];
            b.extend_from_slice(&(i as u32).to_le_bytes());
            b
        }
        _ => format!("https://shop.example/c/{session}/p?id={i}&ref=home").into_bytes(),
    }
}

fn event(c: &mut Connection, key: &str, item: &[u8]) -> i64 {
    touch(c, key, &[&b"EVENT"[..], item])["unique"]
}

fn unique_items(c: &mut Connection, key: &str) -> i64 {
    session_info(c, key)["activity"]["unique_items"]
        .as_i64()
        .expect("unique_items")
}

/// Touches `key` with the first `n` items of `session` (each once); returns the last `unique`.
fn fill(c: &mut Connection, key: &str, session: usize, n: usize) -> i64 {
    let mut last = 0;
    for i in 0..n {
        last = event(c, key, &item(session, i));
    }
    last
}

#[test]
fn unique_is_exact_from_1_to_500_distinct_items() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for session in 0..6 {
        let key = format!("s{session}");
        for n in 1..=500usize {
            assert_eq!(
                event(&mut c, &key, &item(session, n - 1)),
                n as i64,
                "{key}: after {n} distinct items"
            );
            // a repeat (every seventh event, of an item seen earlier) does not count
            if n % 7 == 0 {
                assert_eq!(event(&mut c, &key, &item(session, n / 2)), n as i64);
            }
        }
        assert_eq!(unique_items(&mut c, &key), 500);
    }
    // 50 pages read "50", in every one of 300 sessions (the 26 of 300 were one short)
    for s in 0..300 {
        let key = format!("fifty{s}");
        for i in 0..50 {
            event(&mut c, &key, format!("/page/{s}/{i}").as_bytes());
        }
        assert_eq!(unique_items(&mut c, &key), 50, "{key}");
    }
}

#[test]
fn the_count_goes_on_across_the_switch() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    assert_eq!(fill(&mut c, "s", 0, EXACT as usize), EXACT);
    assert_eq!(
        session_info(&mut c, "s")["activity"]["sketches"]["distinct"]["form"],
        "exact"
    );
    // the item past the limit is still counted exactly, then the estimate takes over
    assert_eq!(event(&mut c, "s", &item(0, EXACT as usize)), EXACT + 1);
    assert_eq!(
        session_info(&mut c, "s")["activity"]["sketches"]["distinct"]["form"],
        "dense"
    );
    let mut last = EXACT + 1;
    for i in EXACT as usize + 1..3_000 {
        let now = event(&mut c, "s", &item(0, i));
        assert!(now >= last && now - last <= 60, "{last} -> {now} at {i}");
        last = now;
    }
    // within three standard errors (1.04 / sqrt(1024)) of 3,000
    assert!((last - 3_000).abs() <= 3 * 3_000 * 325 / 10_000, "{last}");
}

/// Sessions on both sides of the switch: (key, distinct items).
const SIZES: &[(&str, usize)] = &[
    ("one", 1),
    ("fifty", 50),
    ("three-hundred", 300),
    ("at-limit", 512),
    ("past-limit", 513),
    ("dense", 2_000),
];

fn fill_sizes(c: &mut Connection) -> Vec<i64> {
    SIZES
        .iter()
        .enumerate()
        .map(|(s, &(key, n))| fill(c, key, s, n))
        .collect()
}

#[test]
fn dump_restore_and_debug_reload_keep_the_count() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let counts = fill_sizes(&mut c);
    for (&(key, n), &count) in SIZES.iter().zip(&counts) {
        if n <= EXACT as usize + 1 {
            assert_eq!(count, n as i64, "{key}");
        }
        let payload = bytes(&ok(&mut c, &["DUMP", key]));
        let copy = format!("{key}:copy");
        ok(&mut c, &[b"RESTORE", copy.as_bytes(), b"0", &payload]);
        assert_eq!(unique_items(&mut c, &copy), count, "{copy}");
        assert_eq!(bytes(&ok(&mut c, &["DUMP", &copy])), payload, "{copy}");
    }
    ok(&mut c, &["DEBUG", "RELOAD"]);
    for (s, (&(key, n), &count)) in SIZES.iter().zip(&counts).enumerate() {
        for k in [key.to_owned(), format!("{key}:copy")] {
            assert_eq!(unique_items(&mut c, &k), count, "{k} after DEBUG RELOAD");
            // and it goes on counting: exactly while below the limit
            let next = event(&mut c, &k, &item(s, n));
            if n < EXACT as usize {
                assert_eq!(next, count + 1, "{k}");
            } else {
                assert!(next >= count, "{k}: {count} -> {next}");
            }
        }
    }
}

#[test]
fn a_replica_counts_what_the_primary_counts() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    let counts = fill_sizes(&mut p);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    for (&(key, _), &count) in SIZES.iter().zip(&counts) {
        assert_eq!(unique_items(&mut r, key), count, "{key} on the replica");
        assert_eq!(
            digest_value(&mut r, key),
            digest_value(&mut p, key),
            "{key}"
        );
    }
    assert_eq!(digest(&mut r), digest(&mut p));
}

/// Two different item names whose hashes share the exact list's 24-bit fingerprint (a birthday
/// search over `/shared/{i}`: some 5,000 names).
fn colliding_pair() -> (Vec<u8>, Vec<u8>) {
    use session_core::activity::hash::distinct_hash;
    let mut by_fingerprint = std::collections::HashMap::new();
    for i in 0u64.. {
        let name = format!("/shared/{i}").into_bytes();
        if let Some(other) = by_fingerprint.insert(distinct_hash(&name) >> 40, name.clone()) {
            return (other, name);
        }
    }
    unreachable!()
}

#[test]
fn items_sharing_a_fingerprint_count_as_two_everywhere() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let mut r = replica.conn();
    let (a, b) = colliding_pair();
    let counts: Vec<i64> = [&a, &a, &b, &b, &a]
        .iter()
        .map(|item| event(&mut p, "pair", item))
        .collect();
    assert_eq!(counts, [1, 1, 2, 2, 2]);
    // the collision is saved and replicated with the list
    let payload = bytes(&ok(&mut p, &["DUMP", "pair"]));
    ok(&mut p, &[&b"RESTORE"[..], b"pair:copy", b"0", &payload]);
    assert_eq!(unique_items(&mut p, "pair:copy"), 2);
    ok(&mut p, &["DEBUG", "RELOAD"]);
    assert_eq!(unique_items(&mut p, "pair"), 2);
    assert_eq!(event(&mut p, "pair:copy", b"/another"), 3);
    assert_eq!(event(&mut p, "pair:copy", &b), 3);
    assert_eq!(ok(&mut p, &["WAIT", "1", "60000"]), Value::Int(1));
    for key in ["pair", "pair:copy"] {
        assert_eq!(
            unique_items(&mut r, key),
            unique_items(&mut p, key),
            "{key}"
        );
    }
    assert_eq!(digest(&mut r), digest(&mut p));
}

/// The spec's reference session (SPEC "Memory"; bench/src/main.rs `reference_session`): 10 fields of
/// 32 bytes, 100 events over 100 items in 20 categories, two each. Its MEMORY USAGE must stay within
/// 2 KiB: the exact distinct-items list (300 bytes in the 320-byte class) made it 2,104 with 4-byte
/// fingerprints, and the read state grew the session struct past the 512-byte class.
#[test]
fn the_reference_session_fits_in_2_kib() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let cats = [
        "news", "sports", "golf", "tennis", "music", "film", "books", "travel", "food", "tech",
        "science", "art", "games", "fashion", "health", "cars", "home", "garden", "pets",
        "finance",
    ];
    let value = "v".repeat(32);
    let names: Vec<String> = (0..10).map(|f| format!("field_{f}")).collect();
    let mut args: Vec<&str> = vec!["SET", "10"];
    for name in &names {
        args.extend([name.as_str(), value.as_str()]);
    }
    touch(&mut c, "ref", &args);
    for i in 0..100usize {
        let item = format!("item:{i}");
        let (a, b) = (cats[i % 20], cats[(i * 7 + 3) % 20]);
        touch(&mut c, "ref", &["EVENT", &item, "CATEGORIES", "2", a, b]);
    }
    assert_eq!(unique_items(&mut c, "ref"), 100);
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("ref")
        .query(&mut c)
        .expect("MEMORY USAGE");
    println!("reference session: MEMORY USAGE {usage}");
    assert!(usage <= 2_048, "MEMORY USAGE {usage}");
}
