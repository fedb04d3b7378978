//! Writes skip building their replicated form while nothing can receive it (module
//! `propagation.rs`). These tests check the moments where that could lose a write: a replica
//! attaching, and the AOF being switched on, while a writer keeps writing; and that Redis's
//! change counter (the `save` rules) still counts every write.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use redis::Connection;

fn session_stat(c: &mut Connection, name: &str) -> Option<String> {
    info_field(c, "session", &format!("session_{name}"))
}

/// Waits until the module has seen (by its once-a-second check) that nothing listens.
fn wait_until_nothing_listens(c: &mut Connection) {
    wait_until(PATIENCE, "propagation_needed:0", || {
        session_stat(c, "propagation_needed").as_deref() == Some("0")
    });
}

/// A writer on its own connection: TOUCH with events, fields and new keys, without AT (the
/// primary's clock), until stopped. Returns how many writes it made; `done` counts them as they
/// are acknowledged.
fn writer(port: u16, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
        let mut c = client.get_connection().expect("writer connection");
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("w:{}", n % 500);
            let item = format!("item:{}", n % 37);
            let value = n.to_string();
            let mut pipe = redis::pipe();
            pipe.cmd("SESSION.TOUCH")
                .arg(&key)
                .arg(&[
                    "SET",
                    "1",
                    "n",
                    &value,
                    "EVENT",
                    &item,
                    "CATEGORIES",
                    "1",
                    "news",
                ])
                .ignore();
            pipe.query::<()>(&mut c).expect("writer touch");
            n += 1;
            done.store(n, Ordering::Relaxed);
        }
        n
    })
}

/// Waits until the writer has made `more` writes after the `done` count it had on entry (the
/// writes happen around the moment under test, however slowly this machine runs).
fn wait_for_writes(done: &AtomicU64, more: u64) {
    let from = done.load(Ordering::Relaxed);
    wait_until(PATIENCE, "the writer's writes", || {
        done.load(Ordering::Relaxed) >= from + more
    });
}

#[test]
fn nothing_listening_is_detected_and_writes_still_count_for_save_rules() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    wait_until_nothing_listens(&mut c);
    let before: u64 = info_field(&mut c, "persistence", "rdb_changes_since_last_save")
        .and_then(|v| v.parse().ok())
        .expect("rdb_changes_since_last_save");
    for i in 0..10 {
        touch(&mut c, &format!("k{i}"), &["EVENT", "p1"]);
    }
    let after: u64 = info_field(&mut c, "persistence", "rdb_changes_since_last_save")
        .and_then(|v| v.parse().ok())
        .expect("rdb_changes_since_last_save");
    assert!(after >= before + 10, "{before} -> {after}");
}

#[test]
fn replica_attaching_under_writes_converges() {
    for diskless in ["yes", "no"] {
        let primary = Server::start(&[]);
        let mut p = primary.conn();
        config_set(&mut p, "repl-diskless-sync", diskless);
        random_sessions(&mut p, &mut seeded_rng(5), "before", 50, 200);
        wait_until_nothing_listens(&mut p);

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let w = writer(primary.port(), stop.clone(), done.clone());
        wait_for_writes(&done, 100);
        let replica = Server::replica_of(&primary);
        assert_eq!(
            session_stat(&mut p, "propagation_needed").as_deref(),
            Some("1"),
            "a replica is attached"
        );
        wait_for_writes(&done, 100);
        stop.store(true, Ordering::Relaxed);
        let writes = w.join().expect("writer");
        assert!(writes > 0);

        let mut r = replica.conn();
        let offset: i64 = info_field(&mut p, "replication", "master_repl_offset")
            .and_then(|v| v.parse().ok())
            .expect("master_repl_offset");
        wait_until(PATIENCE, "the replica to catch up", || {
            info_field(&mut r, "replication", "slave_repl_offset")
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|o| o >= offset)
        });
        assert_eq!(keys(&mut p), keys(&mut r), "diskless {diskless}");
        assert_eq!(digest(&mut p), digest(&mut r), "diskless {diskless}");
    }
}

#[test]
fn aof_switched_on_under_writes_keeps_every_write() {
    let server = Server::start(&["--appendonly", "no"]);
    let mut c = server.conn();
    random_sessions(&mut c, &mut seeded_rng(6), "before", 50, 200);
    wait_until_nothing_listens(&mut c);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let w = writer(server.port(), stop.clone(), done.clone());
    wait_for_writes(&done, 100);
    config_set(&mut c, "appendonly", "yes");
    wait_for_writes(&done, 100);
    wait_for_aof_rewrite(&mut c);
    wait_for_writes(&done, 100);
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    assert_eq!(
        session_stat(&mut c, "propagation_needed").as_deref(),
        Some("1"),
        "the AOF is on"
    );

    let live = digest(&mut c);
    // Rebuild the dataset from the AOF alone.
    ok(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut c), live);
}
