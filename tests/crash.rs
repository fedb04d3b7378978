//! Crash safety: with `appendonly yes` and `appendfsync always`, the server is killed with
//! SIGKILL in the middle of a write load (sessions touched, enriched, notified and read from
//! their inbox; catalog items added), restarted on its AOF, and every write that was
//! acknowledged before the kill is there: every field value, every event, every catalog item,
//! every notification, and no notification acknowledged by INBOX comes back.
//!
//! Kills happen after a number of acknowledged writes, never after a time. Cycles: plain, during
//! an AOF rewrite, and (slow) with the RDB preamble off. `SESSION_SLOW=1` runs more cycles.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use redis::{Connection, Value};

fn slow() -> bool {
    matches!(
        std::env::var("SESSION_SLOW").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

const WRITERS: usize = 3;
const SESSIONS_PER_WRITER: usize = 50;

/// What one writer had acknowledged, per session it owns.
#[derive(Default, Clone)]
struct Acked {
    /// session -> the last value of field `n` acknowledged (values count up from 1).
    counter: BTreeMap<String, u64>,
    /// session -> events acknowledged.
    events: BTreeMap<String, u64>,
    /// catalog items acknowledged.
    items: Vec<String>,
    /// session -> notification ids its INBOX replied (delivered: must never come again).
    delivered: BTreeMap<String, Vec<Vec<u8>>>,
    /// notifications acknowledged by NOTIFYGROUP (group `all`).
    published: Vec<String>,
}

/// Connects to `port`; None when the server is gone.
fn connect(port: u16) -> Option<Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let c = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .ok()?;
    c.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    Some(c)
}

/// Runs writes until the connection fails (the server was killed); returns what was acked.
/// Every reply that arrives counts as acknowledged (with `appendfsync always` the write is on
/// disk before the reply is sent).
fn writer(port: u16, id: usize, mut acked: Acked, progress: Arc<AtomicUsize>) -> Acked {
    let Some(mut c) = connect(port) else {
        return acked;
    };
    let mut step: u64 = 0;
    loop {
        step += 1;
        let s = (step as usize) % SESSIONS_PER_WRITER;
        let key = format!("crash:{id}:{s}");
        let next = acked.counter.get(&key).copied().unwrap_or(0) + 1;
        let field = format!("k{next}");
        let item = format!("item{}", step % 97);
        let n = next.to_string();
        let reply = redis::cmd("SESSION.TOUCH")
            .arg(&key)
            .arg(&[
                "SET",
                "2",
                "n",
                &n,
                &field,
                "x",
                "EVENT",
                &item,
                "CATEGORIES",
                "1",
                "c",
            ])
            .query::<Value>(&mut c);
        if reply.is_err() {
            return acked;
        }
        acked.counter.insert(key.clone(), next);
        *acked.events.entry(key.clone()).or_default() += 1;
        progress.fetch_add(1, Ordering::Relaxed);

        let extra: redis::RedisResult<()> = match step % 10 {
            0 => redis::cmd("SESSION.ENRICH")
                .arg(&key)
                .arg(&[
                    "JOIN",
                    "1",
                    "all",
                    "ATTRS",
                    &format!(r#"{{"step":{step}}}"#),
                ])
                .query::<Value>(&mut c)
                .map(drop),
            3 => {
                let item = format!("w{id}-{step}");
                let r = redis::cmd("SESSION.CATALOG")
                    .arg(&["ADD", "crashcat", &item, "SCORE", "1"])
                    .query::<Value>(&mut c);
                if r.is_ok() {
                    acked.items.push(item);
                }
                r.map(drop)
            }
            5 if id == 0 => {
                let nid = format!("note-{step}");
                let r = redis::cmd("SESSION.NOTIFYGROUP")
                    .arg(&["all", &nid, "payload"])
                    .query::<Value>(&mut c);
                if r.is_ok() {
                    acked.published.push(nid);
                }
                r.map(drop)
            }
            7 => match redis::cmd("SESSION.INBOX").arg(&key).query::<Value>(&mut c) {
                Ok(Value::Array(items)) => {
                    let ids = acked.delivered.entry(key.clone()).or_default();
                    for m in items {
                        let pairs = pairs(m);
                        ids.push(bytes(&pairs[1].1));
                    }
                    Ok(())
                }
                Ok(other) => panic!("INBOX replied {other:?}"),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if extra.is_err() {
            return acked;
        }
    }
}

fn kill9(server: &Server) {
    let pid = info_field(&mut server.conn(), "server", "process_id").expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Checks every acknowledged write on the restarted server, then takes what the server holds as
/// acknowledged (a write in flight at the kill may have made it: it is durable now).
fn verify(c: &mut Connection, all: &mut [Acked]) -> usize {
    let mut checked = 0;
    for acked in all {
        let mut survived = Vec::new();
        for (key, &n) in &acked.counter {
            let fields = get_all(c, key).unwrap_or_else(|| panic!("{key} lost"));
            let have: u64 = String::from_utf8(fields[&b"n"[..]].clone())
                .unwrap()
                .parse()
                .unwrap();
            // the write in flight at the kill may or may not have made it
            assert!(
                have == n || have == n + 1,
                "{key}: n = {have}, acknowledged {n}"
            );
            for k in 1..=n {
                assert!(
                    fields.contains_key(format!("k{k}").as_bytes()),
                    "{key}: field k{k} lost"
                );
            }
            let events = session_info(&mut *c, key)["activity"]["events"]
                .as_u64()
                .unwrap();
            let want = acked.events[key];
            assert!(
                events == want || events == want + 1,
                "{key}: {events} events, acknowledged {want}"
            );
            survived.push((key.clone(), have, events));
            checked += 1;
        }
        for (key, n, events) in survived {
            acked.counter.insert(key.clone(), n);
            acked.events.insert(key, events);
        }
        for item in &acked.items {
            // surfacing with ITEMS tells nothing; the catalog's own view: ADD again replies 0
            let again = ok(
                c,
                &["SESSION.CATALOG", "ADD", "crashcat", item, "SCORE", "1"],
            );
            assert_eq!(again, Value::Int(0), "catalog item {item} lost");
        }
        for id in &acked.published {
            let again = ok(c, &["SESSION.NOTIFYGROUP", "all", id, "payload"]);
            assert_eq!(again, Value::Int(0), "notification {id} lost");
        }
        for (key, ids) in &acked.delivered {
            // PEEK lists the unread ones; the undelivered among them have `delivered` 0
            let Value::Array(unread) = ok(c, &["SESSION.INBOX", key, "PEEK"]) else {
                panic!("INBOX PEEK")
            };
            for m in unread {
                let m = pairs(m);
                if m[4].1 != Value::Int(0) {
                    continue;
                }
                let id = bytes(&m[1].1);
                assert!(
                    !ids.contains(&id),
                    "{key}: notification {} delivered before the crash is pending again",
                    String::from_utf8_lossy(&id)
                );
            }
        }
    }
    checked
}

fn crash_cycles(preamble: &str, cycles: &[&str]) {
    let mut server = Server::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        preamble,
    ]);
    let mut acked: Vec<Acked> = vec![Acked::default(); WRITERS];
    let mut total_acked = 0;
    for (cycle, kind) in cycles.iter().enumerate() {
        let progress = Arc::new(AtomicUsize::new(0));
        let port = server.port();
        let handles: Vec<_> = acked
            .iter()
            .cloned()
            .enumerate()
            .map(|(id, a)| {
                let progress = progress.clone();
                thread::spawn(move || writer(port, id, a, progress))
            })
            .collect();
        let mut c = server.conn();
        wait_until(Duration::from_secs(120), "writes before the kill", || {
            progress.load(Ordering::Relaxed) >= if slow() { 10_000 } else { 1_500 }
        });
        if *kind == "rewrite" {
            ok(&mut c, &["BGREWRITEAOF"]);
            let start = progress.load(Ordering::Relaxed);
            wait_until(
                Duration::from_secs(120),
                "writes during the rewrite",
                || progress.load(Ordering::Relaxed) >= start + 300,
            );
        }
        kill9(&server);
        acked = handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect();
        total_acked += progress.load(Ordering::Relaxed);
        server.restart();
        let mut c = server.conn();
        let checked = verify(&mut c, &mut acked);
        println!(
            "cycle {cycle} ({kind}, preamble {preamble}): {} touches acknowledged so far, \
             {checked} sessions intact after kill -9",
            total_acked
        );
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut cycles = vec!["plain", "rewrite"];
    if slow() {
        cycles.extend(["plain", "rewrite", "plain", "rewrite"]);
    }
    crash_cycles("yes", &cycles);
}

#[test]
fn acknowledged_writes_survive_kill_9_without_rdb_preamble() {
    let mut cycles = vec!["rewrite"];
    if slow() {
        cycles.extend(["plain", "rewrite", "plain"]);
    }
    crash_cycles("no", &cycles);
}
