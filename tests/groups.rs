//! Group notifications end to end: `SESSION.NOTIFYGROUP`, `SESSION.INBOX`, the `pending` field of
//! `SESSION.TOUCH`, the Pub/Sub message, and the registry's groups across `DEBUG RELOAD`, AOF
//! restarts (with and without the RDB preamble) and replication.
//!
//! Most checks compare the server with a [`Model`]: the notifications published (in order), each
//! session's memberships, and what each session already received. Notifications the model
//! publishes carry distinct, increasing `AT` times, so "oldest first" and "publication order" are
//! the same thing and `published_ms` is known exactly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use redis::{Connection, Value};

const HOCKEY: &str = "interest:hockey";
/// A group no session is a member of.
const NOBODY: &str = "g:nobody";
/// `session.notify-ttl`'s default, in milliseconds.
const DEFAULT_TTL_MS: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Replies

/// One entry of an INBOX reply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    group: String,
    id: String,
    payload: Vec<u8>,
    published_ms: i64,
}

/// An INBOX reply, checking its shape: an array of maps with exactly `group`, `id`, `payload`
/// and `published_ms`, in that order.
fn deliveries(reply: Value) -> Vec<Delivery> {
    let Value::Array(items) = reply else {
        panic!("INBOX replied {reply:?}, not an array");
    };
    items.into_iter().map(delivery).collect()
}

fn delivery(item: Value) -> Delivery {
    let pairs = pairs(item);
    let names: Vec<Vec<u8>> = pairs.iter().map(|(n, _)| bytes(n)).collect();
    assert_eq!(
        names,
        [&b"group"[..], b"id", b"payload", b"published_ms"],
        "INBOX entry names"
    );
    let values: Vec<Value> = pairs.into_iter().map(|(_, v)| v).collect();
    let text = |v: &Value| String::from_utf8(bytes(v)).expect("UTF-8 group and id");
    let Value::Int(published_ms) = values[3] else {
        panic!("published_ms is not an integer: {:?}", values[3]);
    };
    Delivery {
        group: text(&values[0]),
        id: text(&values[1]),
        payload: bytes(&values[2]),
        published_ms,
    }
}

/// A `PEEK` reply (issue 21's read state: PEEK lists the unread notifications, delivered or
/// not, each map with a fifth entry `delivered`), checking its shape: its undelivered entries,
/// which are what `INBOX` would deliver (and what PEEK listed before the read state).
fn undelivered(reply: Value) -> Vec<Delivery> {
    let Value::Array(items) = reply else {
        panic!("INBOX PEEK replied {reply:?}, not an array");
    };
    items
        .into_iter()
        .filter_map(|item| {
            let mut pairs = pairs(item);
            let (name, flag) = pairs.pop().expect("a PEEK entry");
            assert_eq!(bytes(&name), b"delivered", "PEEK entry's fifth name");
            let delivered = match flag {
                Value::Int(d) => d,
                other => panic!("delivered is not an integer: {other:?}"),
            };
            let rebuilt = Value::Map(pairs);
            (delivered == 0).then(|| delivery(rebuilt))
        })
        .collect()
}

/// `SESSION.INBOX key args...`; with `PEEK`, its undelivered entries (`undelivered`).
fn inbox(c: &mut Connection, key: &str, args: &[&str]) -> Vec<Delivery> {
    let mut full = vec!["SESSION.INBOX", key];
    full.extend_from_slice(args);
    if args.contains(&"PEEK") {
        undelivered(ok(c, &full))
    } else {
        deliveries(ok(c, &full))
    }
}

/// `SESSION.NOTIFYGROUP group id payload args...`: 1 (stored) or 0 (id already present).
fn notify(c: &mut Connection, group: &str, id: &str, payload: &[u8], args: &[&str]) -> i64 {
    let mut full: Vec<&[u8]> = vec![
        b"SESSION.NOTIFYGROUP",
        group.as_bytes(),
        id.as_bytes(),
        payload,
    ];
    full.extend(args.iter().map(|a| a.as_bytes()));
    match ok(c, &full) {
        Value::Int(n) => n,
        other => panic!("NOTIFYGROUP replied {other:?}"),
    }
}

/// NOTIFYGROUP with an empty payload, which must store a new notification.
fn publish(c: &mut Connection, group: &str, id: &str, args: &[&str]) {
    assert_eq!(
        notify(c, group, id, b"", args),
        1,
        "NOTIFYGROUP {group} {id} {args:?}"
    );
}

/// `SESSION.ENRICH key JOIN/LEAVE ...` (any arguments): the calculated document.
fn enrich(c: &mut Connection, key: &str, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["SESSION.ENRICH", key];
    full.extend_from_slice(args);
    let doc = bytes(&ok(c, &full));
    serde_json::from_slice(&doc).expect("ENRICH replies JSON")
}

fn join(c: &mut Connection, key: &str, groups: &[&str]) -> serde_json::Value {
    let n = groups.len().to_string();
    let mut args = vec!["JOIN", n.as_str()];
    args.extend_from_slice(groups);
    enrich(c, key, &args)
}

fn strings(doc: &serde_json::Value) -> Vec<String> {
    doc.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// TOUCH's `pending` (the touch refreshes the session and records no event).
fn pending(c: &mut Connection, key: &str) -> i64 {
    touch(c, key, &[] as &[&str])["pending"]
}

fn ids(list: &[Delivery]) -> Vec<&str> {
    list.iter().map(|d| d.id.as_str()).collect()
}

fn session_stat(c: &mut Connection, name: &str) -> i64 {
    info_field(c, "session", &format!("session_{name}"))
        .unwrap_or_else(|| panic!("INFO session has no {name}"))
        .parse()
        .expect("an integer")
}

/// (groups, live notifications) of the registry, from `INFO session`.
fn registry_sizes(c: &mut Connection) -> (i64, i64) {
    (
        session_stat(c, "groups"),
        session_stat(c, "live_notifications"),
    )
}

fn wait_for_replica(primary: &mut Connection) {
    assert_eq!(
        ok(primary, &["WAIT", "1", "60000"]),
        Value::Int(1),
        "the replica acknowledged the stream"
    );
}

// ---------------------------------------------------------------------------------------------
// Pipelined work over many sessions

fn run_pipeline(c: &mut Connection, cmds: impl IntoIterator<Item = redis::Cmd>) -> Vec<Value> {
    let mut pipe = redis::pipe();
    for cmd in cmds {
        pipe.add_command(cmd);
    }
    pipe.query(c).expect("pipeline")
}

/// `SESSION.INBOX key args...` for every key, in one pipeline.
fn inbox_all(c: &mut Connection, keys: &[String], args: &[&str]) -> Vec<Vec<Delivery>> {
    let cmds = keys.iter().map(|k| {
        let mut cmd = redis::cmd("SESSION.INBOX");
        cmd.arg(k).arg(args);
        cmd
    });
    let parse = if args.contains(&"PEEK") {
        undelivered
    } else {
        deliveries
    };
    run_pipeline(c, cmds).into_iter().map(parse).collect()
}

/// TOUCH's `pending` for every key, in one pipeline.
fn pending_all(c: &mut Connection, keys: &[String]) -> Vec<i64> {
    let cmds = keys.iter().map(|k| {
        let mut cmd = redis::cmd("SESSION.TOUCH");
        cmd.arg(k);
        cmd
    });
    run_pipeline(c, cmds)
        .into_iter()
        .map(|v| touch_map(v)["pending"])
        .collect()
}

/// Drains every key's inbox with `INBOX COUNT n` pages (a page size per key: 1 to 6, or no
/// COUNT at all for some), one pipeline per round; a key is done when a page comes back short.
fn drain_all(c: &mut Connection, keys: &[String]) -> Vec<Vec<Delivery>> {
    let page = |i: usize| (!i.is_multiple_of(11)).then_some(1 + i % 6);
    let mut got: Vec<Vec<Delivery>> = vec![Vec::new(); keys.len()];
    let mut open: Vec<usize> = (0..keys.len()).collect();
    while !open.is_empty() {
        let cmds = open.iter().map(|&i| {
            let mut cmd = redis::cmd("SESSION.INBOX");
            cmd.arg(&keys[i]);
            if let Some(n) = page(i) {
                cmd.arg("COUNT").arg(n);
            }
            cmd
        });
        let replies = run_pipeline(c, cmds);
        let mut still_open = Vec::new();
        for (&i, reply) in open.iter().zip(replies) {
            let batch = deliveries(reply);
            if let Some(n) = page(i) {
                assert!(batch.len() <= n, "{}: COUNT {n} gave {batch:?}", keys[i]);
                if batch.len() == n {
                    still_open.push(i);
                }
            }
            got[i].extend(batch);
        }
        open = still_open;
    }
    got
}

// ---------------------------------------------------------------------------------------------
// The model

struct Note {
    group: String,
    id: String,
    payload: Vec<u8>,
    at: i64,
    expires: i64,
}

impl Note {
    fn delivery(&self) -> Delivery {
        Delivery {
            group: self.group.clone(),
            id: self.id.clone(),
            payload: self.payload.clone(),
            published_ms: self.at,
        }
    }
}

/// What the server should hold: the notifications in publication order, each session's groups
/// (explicit and derived) and the notifications each session already received.
struct Model {
    /// The publication time of the next notification (one millisecond apart, in the past).
    clock: i64,
    notes: Vec<Note>,
    members: BTreeMap<String, BTreeSet<String>>,
    received: BTreeMap<String, BTreeSet<usize>>,
}

impl Model {
    fn new() -> Model {
        Model {
            clock: now_ms() - 600_000,
            notes: Vec::new(),
            members: BTreeMap::new(),
            received: BTreeMap::new(),
        }
    }

    /// Publishes `(group, id, payload)` notifications in one pipeline, each at the next time
    /// (`AT`), with the default TTL, or `EXPIREAT expires` when given; each must be stored.
    fn publish(&mut self, c: &mut Connection, notes: &[(&str, String, Vec<u8>, Option<i64>)]) {
        let cmds: Vec<redis::Cmd> = notes
            .iter()
            .map(|(group, id, payload, expire_at)| {
                let at = self.clock;
                self.clock += 1;
                let mut cmd = redis::cmd("SESSION.NOTIFYGROUP");
                cmd.arg(*group)
                    .arg(id)
                    .arg(payload.as_slice())
                    .arg("AT")
                    .arg(at);
                if let Some(t) = expire_at {
                    cmd.arg("EXPIREAT").arg(*t);
                }
                self.notes.push(Note {
                    group: group.to_string(),
                    id: id.clone(),
                    payload: payload.clone(),
                    at,
                    expires: expire_at.unwrap_or(at + DEFAULT_TTL_MS),
                });
                cmd
            })
            .collect();
        let replies = run_pipeline(c, cmds);
        assert!(replies.iter().all(|r| *r == Value::Int(1)), "{replies:?}");
    }

    /// `n` notifications tagged `tag`, cycling over g:a, g:b, interest:hockey (and every tenth
    /// to a group nobody is in). Consecutive pairs share an id: an id is unique per group only.
    fn publish_round(&mut self, c: &mut Connection, tag: &str, n: usize) {
        const CYCLE: [&str; 10] = [
            "g:a", "g:b", HOCKEY, "g:a", "g:b", HOCKEY, "g:a", "g:b", HOCKEY, NOBODY,
        ];
        let notes: Vec<_> = (0..n)
            .map(|k| {
                let id = format!("{tag}-{}", k / 2);
                let payload = format!("{{\"tag\":\"{tag}\",\"n\":{k}}}").into_bytes();
                (CYCLE[k % CYCLE.len()], id, payload, None)
            })
            .collect();
        self.publish(c, &notes);
    }

    /// Publishes again existing notifications (same group and id, another payload and TTL):
    /// each must reply 0 and change nothing.
    fn republish(&self, c: &mut Connection, which: &[usize]) {
        let cmds = which.iter().map(|&i| {
            let n = &self.notes[i];
            let mut cmd = redis::cmd("SESSION.NOTIFYGROUP");
            cmd.arg(&n.group)
                .arg(&n.id)
                .arg("another payload")
                .arg("TTL")
                .arg(5)
                .arg("MAXLEN")
                .arg(1);
            cmd
        });
        let replies = run_pipeline(c, cmds);
        assert!(replies.iter().all(|r| *r == Value::Int(0)), "{replies:?}");
    }

    /// Indexes of the live notifications `key` has not received, in publication order.
    fn due(&self, key: &str) -> Vec<usize> {
        let groups = &self.members[key];
        let received = self.received.get(key);
        let now = now_ms();
        (0..self.notes.len())
            .filter(|&i| {
                let n = &self.notes[i];
                groups.contains(&n.group)
                    && n.expires > now
                    && !received.is_some_and(|r| r.contains(&i))
            })
            .collect()
    }

    fn expected(&self, key: &str) -> Vec<Delivery> {
        self.due(key)
            .into_iter()
            .map(|i| self.notes[i].delivery())
            .collect()
    }

    fn mark(&mut self, key: &str, indexes: &[usize]) {
        self.received
            .entry(key.to_owned())
            .or_default()
            .extend(indexes);
    }

    /// `INBOX key COUNT count` on every key: each gets the oldest `count` of what is due.
    fn deliver_some(&mut self, c: &mut Connection, keys: &[String], count: usize) {
        let got = inbox_all(c, keys, &["COUNT", &count.to_string()]);
        for (key, got) in keys.iter().zip(got) {
            let mut due = self.due(key);
            due.truncate(count);
            let expected: Vec<Delivery> = due.iter().map(|&i| self.notes[i].delivery()).collect();
            assert_eq!(got, expected, "{key}: INBOX COUNT {count}");
            self.mark(key, &due);
        }
    }

    /// The core checks, for every key: TOUCH's `pending` is the number due; `PEEK` (twice, and
    /// with COUNT) shows what is due without marking anything; draining by pages delivers each
    /// due notification exactly once, in publication order; then nothing is pending or due.
    fn check_delivery(&mut self, c: &mut Connection, keys: &[String]) {
        let due: Vec<Vec<usize>> = keys.iter().map(|k| self.due(k)).collect();
        let expected: Vec<Vec<Delivery>> = keys.iter().map(|k| self.expected(k)).collect();
        let counts: Vec<i64> = expected.iter().map(|e| e.len() as i64).collect();
        assert_eq!(
            pending_all(c, keys),
            counts,
            "TOUCH pending before delivery"
        );

        let first_peek = inbox_all(c, keys, &["PEEK"]);
        let second_peek = inbox_all(c, keys, &["PEEK"]);
        let head = inbox_all(c, keys, &["PEEK", "COUNT", "3"]);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(first_peek[i], expected[i], "{key}: INBOX PEEK");
            assert_eq!(second_peek[i], expected[i], "{key}: second INBOX PEEK");
            // PEEK COUNT 3 lists the 3 oldest unread: the undelivered among them start what
            // INBOX would deliver
            assert!(head[i].len() <= 3, "{key}: INBOX PEEK COUNT 3");
            assert!(
                expected[i].starts_with(&head[i]),
                "{key}: INBOX PEEK COUNT 3 gave {:?}",
                head[i]
            );
        }
        assert_eq!(pending_all(c, keys), counts, "TOUCH pending after PEEK");

        let drained = drain_all(c, keys);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(drained[i], expected[i], "{key}: drained INBOX");
            self.mark(key, &due[i]);
        }
        let again = inbox_all(c, keys, &[]);
        for (key, again) in keys.iter().zip(again) {
            assert!(again.is_empty(), "{key}: second INBOX gave {again:?}");
        }
        assert!(
            pending_all(c, keys).iter().all(|&n| n == 0),
            "TOUCH pending after delivery"
        );
    }

    /// A new session (`<prefix>:late`) that joins g:a and g:b now: it is due every live
    /// notification of those groups, also the ones published before it existed.
    fn late_joiner(&mut self, c: &mut Connection, prefix: &str) -> String {
        let key = format!("{prefix}:late");
        touch(c, &key, &["EVENT", "page"]);
        let doc = join(c, &key, &["g:a", "g:b"]);
        assert_eq!(strings(&doc["groups"]), ["g:a", "g:b"]);
        self.members
            .insert(key.clone(), ["g:a", "g:b"].map(String::from).into());
        key
    }
}

/// `n` sessions `<prefix>:<i>` in three overlapping groups: g:a (i % 4 < 2) and g:b (i % 5 < 2)
/// joined explicitly, and the derived interest:hockey: sessions whose events are mostly hockey
/// (i % 3 == 0), whether or not they were ENRICHed (the members of g:a or g:b, and i % 7 == 0). Some sessions
/// have a little hockey (below the segment weight); some are in no group at all.
fn populate(c: &mut Connection, model: &mut Model, prefix: &str, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}:{i}")).collect();
    let categories = |i: usize| -> [&str; 5] {
        match i % 3 {
            0 => ["hockey", "hockey", "golf", "hockey", "hockey"],
            1 => ["tennis", "hockey", "tennis", "golf", "tennis"],
            _ => ["tennis", "golf", "tennis", "golf", "tennis"],
        }
    };
    let touches: Vec<redis::Cmd> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, key)| {
            categories(i).into_iter().enumerate().map(move |(e, cat)| {
                let mut cmd = redis::cmd("SESSION.TOUCH");
                cmd.arg(key)
                    .arg("EVENT")
                    .arg(format!("item-{e}"))
                    .arg("CATEGORIES")
                    .arg(1)
                    .arg(cat);
                cmd
            })
        })
        .collect();
    for chunk in touches.chunks(1_000) {
        run_pipeline(c, chunk.iter().cloned());
    }

    let mut enriched = Vec::new();
    let cmds: Vec<redis::Cmd> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let mut groups = Vec::new();
            if i % 4 < 2 {
                groups.push("g:a");
            }
            if i % 5 < 2 {
                groups.push("g:b");
            }
            let mut member: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
            let is_enriched = !groups.is_empty() || i % 7 == 0;
            // issue 21: the segment follows current activity, ENRICHed or not
            if i % 3 == 0 {
                member.insert(HOCKEY.to_owned());
            }
            model.members.insert(key.clone(), member);
            if !is_enriched {
                return None;
            }
            let mut cmd = redis::cmd("SESSION.ENRICH");
            cmd.arg(key);
            if !groups.is_empty() {
                cmd.arg("JOIN").arg(groups.len()).arg(&groups);
            }
            enriched.push((i, groups));
            Some(cmd)
        })
        .collect();
    let docs = run_pipeline(c, cmds);
    for ((i, groups), doc) in enriched.into_iter().zip(docs) {
        let doc: serde_json::Value = serde_json::from_slice(&bytes(&doc)).expect("JSON");
        assert_eq!(strings(&doc["groups"]), groups, "{}: groups", keys[i]);
        let segments = strings(&doc["segments"]);
        assert_eq!(
            segments.iter().any(|s| s == HOCKEY),
            i % 3 == 0,
            "{}: segments {segments:?}",
            keys[i]
        );
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// Many sessions, overlapping groups

#[test]
fn every_member_receives_its_groups_notifications_once_in_order() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut m = Model::new();
    let keys = populate(&mut c, &mut m, "s", 1_000);
    m.publish_round(&mut c, "n", 50);
    // the same (group, id) again: nothing changes
    m.republish(&mut c, &[0, 7, 21, 49]);

    let members = |g: &str| m.members.values().filter(|s| s.contains(g)).count();
    let (a, b, h) = (members("g:a"), members("g:b"), members(HOCKEY));
    assert!(a > 100 && b > 100 && h > 100, "groups of {a}, {b}, {h}");
    let both = m.members.values().filter(|s| s.len() >= 2).count();
    let none = m.members.values().filter(|s| s.is_empty()).count();
    assert!(
        both > 50 && none > 50,
        "{both} in several groups, {none} in none"
    );

    assert_eq!(session_stat(&mut c, "notifications_published"), 50);
    assert_eq!(registry_sizes(&mut c), (4, 50));
    let total: usize = keys.iter().map(|k| m.due(k).len()).sum();
    m.check_delivery(&mut c, &keys);
    assert_eq!(
        session_stat(&mut c, "notifications_delivered"),
        total as i64
    );
    assert_eq!(
        registry_sizes(&mut c),
        (4, 50),
        "delivery keeps the notifications"
    );

    // a second wave reaches the same members, and only it
    m.publish_round(&mut c, "second", 20);
    m.check_delivery(&mut c, &keys);
}

#[test]
fn sessions_that_become_members_later_receive_the_live_notifications() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "early", &["EVENT", "home"]);
    join(&mut c, "early", &["g:x"]);
    assert_eq!(notify(&mut c, "g:x", "n1", b"first", &[]), 1);
    assert_eq!(notify(&mut c, "g:x", "n2", b"second", &[]), 1);
    let early = inbox(&mut c, "early", &[]);
    assert_eq!(ids(&early), ["n1", "n2"]);

    // a session in no group: nothing; once it joins, both, as published
    touch(&mut c, "late", &["EVENT", "home"]);
    assert!(inbox(&mut c, "late", &[]).is_empty());
    assert_eq!(pending(&mut c, "late"), 0);
    join(&mut c, "late", &["g:x"]);
    assert_eq!(pending(&mut c, "late"), 2);
    let mut resp3 = server.conn_resp3();
    match ok(&mut resp3, &["SESSION.INBOX", "late", "PEEK"]) {
        Value::Array(items) => assert!(
            items.iter().all(|i| matches!(i, Value::Map(_))),
            "RESP3 entries are maps: {items:?}"
        ),
        other => panic!("INBOX replied {other:?}"),
    }
    assert_eq!(inbox(&mut c, "late", &[]), early);
    assert!(inbox(&mut c, "late", &[]).is_empty());

    // leaving stops delivery; joining again delivers what is live and not yet received
    enrich(&mut c, "early", &["LEAVE", "1", "g:x"]);
    assert_eq!(notify(&mut c, "g:x", "n3", b"third", &[]), 1);
    assert!(inbox(&mut c, "early", &["PEEK"]).is_empty());
    assert_eq!(pending(&mut c, "early"), 0);
    join(&mut c, "early", &["g:x"]);
    assert_eq!(ids(&inbox(&mut c, "early", &[])), ["n3"]);
    assert_eq!(ids(&inbox(&mut c, "late", &[])), ["n3"]);

    // a derived group: the segment counts from the session's current activity
    assert_eq!(notify(&mut c, HOCKEY, "h1", b"puck", &[]), 1);
    touch(
        &mut c,
        "fan",
        &["EVENT", "game", "CATEGORIES", "1", "hockey"],
    );
    // issue 21: the segment follows current activity, no ENRICH needed
    assert_eq!(ids(&inbox(&mut c, "fan", &["PEEK"])), ["h1"]);
    let doc = enrich(&mut c, "fan", &[]);
    assert!(strings(&doc["segments"]).contains(&HOCKEY.to_owned()));
    assert_eq!(ids(&inbox(&mut c, "fan", &[])), ["h1"]);
    // ...and no longer counts once a later ENRICH drops it
    for i in 0..10 {
        let item = format!("match-{i}");
        touch(
            &mut c,
            "fan",
            &["EVENT", &item, "CATEGORIES", "1", "tennis"],
        );
    }
    let doc = enrich(&mut c, "fan", &[]);
    assert!(!strings(&doc["segments"]).contains(&HOCKEY.to_owned()));
    assert_eq!(notify(&mut c, HOCKEY, "h2", b"overtime", &[]), 1);
    assert!(inbox(&mut c, "fan", &[]).is_empty());

    // a missing session: an empty array, and no session is created
    assert!(inbox(&mut c, "missing", &[]).is_empty());
    assert!(!exists(&mut c, "missing"));
}

#[test]
fn expired_notifications_are_never_delivered() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "member", &["EVENT", "home"]);
    join(&mut c, "member", &["g:e"]);
    config_set(&mut c, "session.notify-ttl", "5");
    let t = now_ms();
    let at = |d: i64| (t + d).to_string();
    // all published in the past, in this order; the first three expired before `t`
    publish(&mut c, "g:e", "ttl", &["TTL", "1", "AT", &at(-10_000)]);
    publish(&mut c, "g:e", "default", &["AT", &at(-9_000)]);
    publish(
        &mut c,
        "g:e",
        "expireat",
        &["AT", &at(-8_000), "EXPIREAT", &at(-1)],
    );
    publish(&mut c, "g:e", "live", &["TTL", "3600", "AT", &at(-7_000)]);
    // live at `t`, gone 1.5 s later
    publish(
        &mut c,
        "g:e",
        "short",
        &["AT", &at(-6_000), "EXPIREAT", &at(1_500)],
    );

    assert_eq!(touch(&mut c, "member", &["AT", &at(0)])["pending"], 2);
    assert_eq!(
        ids(&inbox(&mut c, "member", &["PEEK", "AT", &at(0)])),
        ["live", "short"]
    );
    assert_eq!(
        ids(&inbox(&mut c, "member", &["PEEK", "AT", &at(1_500)])),
        ["live"]
    );

    // once `short` has expired by the clock, neither the member nor a late joiner gets it
    wait_until(
        Duration::from_secs(10),
        "the short notification to expire",
        || now_ms() > t + 1_600,
    );
    touch(&mut c, "joiner", &["EVENT", "home"]);
    join(&mut c, "joiner", &["g:e"]);
    for key in ["member", "joiner"] {
        assert_eq!(pending(&mut c, key), 1, "{key}");
        assert_eq!(ids(&inbox(&mut c, key, &[])), ["live"], "{key}");
        assert!(inbox(&mut c, key, &[]).is_empty(), "{key}");
        assert_eq!(pending(&mut c, key), 0, "{key}");
    }

    // a real one-second TTL
    publish(&mut c, "g:e", "brief", &["TTL", "1"]);
    let published = now_ms();
    wait_until(Duration::from_secs(10), "the TTL to pass", || {
        now_ms() > published + 1_100
    });
    assert!(inbox(&mut c, "member", &[]).is_empty());
    assert_eq!(pending(&mut c, "joiner"), 0);
}

#[test]
fn publishing_an_existing_id_again_changes_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["EVENT", "home"]);
    join(&mut c, "s", &["g:i"]);
    assert_eq!(notify(&mut c, "g:i", "n0", b"zero", &[]), 1);
    assert_eq!(notify(&mut c, "g:i", "n1", b"first", &[]), 1);
    // same id: refused whatever the payload and options (MAXLEN 1 trims nothing)
    assert_eq!(notify(&mut c, "g:i", "n1", b"second", &[]), 0);
    assert_eq!(
        notify(&mut c, "g:i", "n1", b"third", &["TTL", "1", "MAXLEN", "1"]),
        0
    );
    assert_eq!(session_stat(&mut c, "notifications_published"), 2);
    assert_eq!(registry_sizes(&mut c), (1, 2));
    assert_eq!(pending(&mut c, "s"), 2);
    let got = inbox(&mut c, "s", &[]);
    assert_eq!(ids(&got), ["n0", "n1"]);
    assert_eq!(got[1].payload, b"first");

    // after delivery, publishing it again delivers nothing
    assert_eq!(notify(&mut c, "g:i", "n1", b"fourth", &[]), 0);
    assert!(inbox(&mut c, "s", &[]).is_empty());
    assert_eq!(pending(&mut c, "s"), 0);
    // a late joiner gets the original
    touch(&mut c, "late", &["EVENT", "home"]);
    join(&mut c, "late", &["g:i"]);
    assert_eq!(inbox(&mut c, "late", &[]), got);

    // the id is unique within a group, not across groups
    join(&mut c, "s", &["g:j"]);
    assert_eq!(notify(&mut c, "g:j", "n1", b"other group", &[]), 1);
    assert_eq!(ids(&inbox(&mut c, "s", &[])), ["n1"]);

    // a burst of the same publication: stored once, delivered once
    join(&mut c, "s", &["g:k"]);
    let burst = (0..10).map(|_| {
        let mut cmd = redis::cmd("SESSION.NOTIFYGROUP");
        cmd.arg("g:k").arg("burst").arg("payload");
        cmd
    });
    let replies = run_pipeline(&mut c, burst);
    let stored: Vec<i64> = replies
        .iter()
        .map(|r| redis::from_redis_value(r).expect("an integer"))
        .collect();
    assert_eq!(stored, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ids(&inbox(&mut c, "s", &[])), ["burst"]);
    assert!(inbox(&mut c, "s", &[]).is_empty());
}

#[test]
fn a_group_keeps_only_its_newest_notifications() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for key in ["early", "member"] {
        touch(&mut c, key, &["EVENT", "home"]);
    }
    join(&mut c, "early", &["g:m"]);
    join(&mut c, "member", &["g:m", "g:n"]);
    // distinct publication times, so that the merged order of two groups is known
    let t = now_ms() - 60_000;
    let publish_at = |c: &mut Connection, k: i64, group: &str, id: &str, extra: &[&str]| {
        let at = (t + k).to_string();
        let mut args = vec!["AT", at.as_str()];
        args.extend_from_slice(extra);
        publish(c, group, id, &args);
    };

    publish_at(&mut c, 1, "g:m", "m1", &["MAXLEN", "3"]);
    assert_eq!(ids(&inbox(&mut c, "early", &[])), ["m1"]);
    for (k, id) in [(2, "m2"), (3, "m3"), (4, "m4"), (5, "m5")] {
        publish_at(&mut c, k, "g:m", id, &["MAXLEN", "3"]);
    }
    // m1 and m2 were dropped (m2 before anyone received it)
    assert_eq!(ids(&inbox(&mut c, "early", &["PEEK"])), ["m3", "m4", "m5"]);
    assert_eq!(ids(&inbox(&mut c, "member", &["PEEK"])), ["m3", "m4", "m5"]);

    // the configured bound applies when no MAXLEN is given
    config_set(&mut c, "session.max-notifications", "2");
    for (k, id) in [(6, "n1"), (7, "n2"), (8, "n3"), (9, "n4")] {
        publish_at(&mut c, k, "g:n", id, &[]);
    }
    assert_eq!(registry_sizes(&mut c), (2, 5));
    assert_eq!(pending(&mut c, "member"), 5);
    assert_eq!(
        ids(&inbox(&mut c, "member", &["PEEK"])),
        ["m3", "m4", "m5", "n3", "n4"]
    );
    // ...and trims an older, longer group at its next publication
    publish_at(&mut c, 10, "g:m", "m6", &[]);
    assert_eq!(registry_sizes(&mut c), (2, 4));
    assert_eq!(ids(&inbox(&mut c, "member", &[])), ["m5", "n3", "n4", "m6"]);
    assert_eq!(ids(&inbox(&mut c, "early", &[])), ["m5", "m6"]);
    assert_eq!(pending(&mut c, "member"), 0);
}

// ---------------------------------------------------------------------------------------------
// Pub/Sub

#[test]
fn subscribers_get_each_new_notification_once() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut sub_conn = server.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    sub.psubscribe("session:notify:*").expect("PSUBSCRIBE");
    sub.subscribe("test:sentinel").expect("SUBSCRIBE");

    assert_eq!(notify(&mut c, "g:a", "n1", b"hello", &[]), 1);
    assert_eq!(
        notify(&mut c, "g:b", "n1", b"other group", &["TTL", "60"]),
        1
    );
    assert_eq!(notify(&mut c, "g:a", "n1", b"again", &[]), 0);
    assert_eq!(
        notify(&mut c, "g:a", "n2", b"\x00\xff", &["MAXLEN", "1"]),
        1
    );
    assert_eq!(notify(&mut c, "g:a", "n2", b"again", &[]), 0);
    ok(&mut c, &["PUBLISH", "test:sentinel", "done"]);

    let mut received = Vec::new();
    loop {
        let msg = sub.get_message().expect("a message within the timeout");
        let channel = msg.get_channel_name().to_owned();
        if channel == "test:sentinel" {
            break;
        }
        let payload: Vec<u8> = msg.get_payload().expect("a payload");
        let json: serde_json::Value = serde_json::from_slice(&payload)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&payload)));
        received.push((channel, json));
    }
    let expected = vec![
        (
            "session:notify:g:a".to_owned(),
            serde_json::json!({"group": "g:a", "id": "n1", "payload": "hello"}),
        ),
        (
            "session:notify:g:b".to_owned(),
            serde_json::json!({"group": "g:b", "id": "n1", "payload": "other group"}),
        ),
        (
            "session:notify:g:a".to_owned(),
            serde_json::json!({"group": "g:a", "id": "n2", "payload": {"base64": base64(b"\x00\xff")}}),
        ),
    ];
    assert_eq!(received, expected);
}

// ---------------------------------------------------------------------------------------------
// Persistence and replication

/// Sessions in groups, notifications, part of them delivered; then `reload`; then more
/// deliveries (some sessions get more of theirs), more notifications and a late joiner; `reload`
/// again; then the core checks, and a publication after the reload (the sequence goes on).
/// Nothing delivered before a reload is delivered again after it, nothing is lost.
fn check_survives(mut c: Connection, mut reload: impl FnMut(Connection) -> Connection) {
    let mut m = Model::new();
    let mut keys = populate(&mut c, &mut m, "s", 60);
    m.publish_round(&mut c, "r1", 16);
    // an expired one, in a group no duplicate is published to (see
    // duplicates_leave_every_copy_of_the_registry_equal)
    let expired = now_ms() - 1;
    m.publish(
        &mut c,
        &[(
            HOCKEY,
            "expired".to_owned(),
            b"never".to_vec(),
            Some(expired),
        )],
    );
    m.deliver_some(&mut c, &keys[..30], 3);
    m.check_delivery(&mut c, &keys[30..40]);

    let sizes = registry_sizes(&mut c);
    c = reload(c);
    assert_eq!(
        registry_sizes(&mut c),
        sizes,
        "the registry after the reload"
    );
    m.deliver_some(&mut c, &keys[..20], 2);
    m.publish_round(&mut c, "r2", 12);
    m.republish(&mut c, &[1, 20]);
    keys.push(m.late_joiner(&mut c, "s"));
    m.deliver_some(&mut c, &keys[10..], 1);

    let sizes = registry_sizes(&mut c);
    c = reload(c);
    assert_eq!(
        registry_sizes(&mut c),
        sizes,
        "the registry after the reload"
    );
    m.check_delivery(&mut c, &keys);
    keys.push(m.late_joiner(&mut c, "t"));
    m.publish_round(&mut c, "r3", 10);
    m.check_delivery(&mut c, &keys);
}

#[test]
fn groups_and_deliveries_survive_debug_reload() {
    let server = Server::start(&[]);
    check_survives(server.conn(), |mut c| {
        ok(&mut c, &["DEBUG", "RELOAD"]);
        c
    });
}

fn check_aof_restarts(preamble: &str, rewrite: bool) {
    let mut server = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
    let c = server.conn();
    check_survives(c, |mut c| {
        if rewrite {
            ok(&mut c, &["BGREWRITEAOF"]);
            wait_for_aof_rewrite(&mut c);
        }
        drop(c);
        server.restart();
        server.conn()
    });
}

#[test]
fn groups_and_deliveries_survive_aof_replay_with_rdb_preamble() {
    check_aof_restarts("yes", false);
}

#[test]
fn groups_and_deliveries_survive_aof_replay_without_rdb_preamble() {
    check_aof_restarts("no", false);
}

#[test]
fn groups_and_deliveries_survive_aof_rewrite_with_rdb_preamble() {
    check_aof_restarts("yes", true);
}

#[test]
fn groups_and_deliveries_survive_aof_rewrite_without_rdb_preamble() {
    check_aof_restarts("no", true);
}

#[test]
fn a_replica_delivers_exactly_what_the_primary_did_not() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    let mut m = Model::new();
    let mut keys = populate(&mut p, &mut m, "s", 60);
    m.publish_round(&mut p, "r1", 16);
    m.deliver_some(&mut p, &keys[..30], 2);

    // the initial sync carries the registry; the stream carries what follows
    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    m.publish_round(&mut p, "r2", 12);
    m.republish(&mut p, &[3, 17]);
    keys.push(m.late_joiner(&mut p, "s"));
    m.deliver_some(&mut p, &keys[20..], 3);
    m.check_delivery(&mut p, &keys[40..50]);
    wait_for_replica(&mut p);
    assert_eq!(digest(&mut r), digest(&mut p), "after INBOX deliveries");
    assert_eq!(registry_sizes(&mut r), registry_sizes(&mut p));

    // promoted, the replica delivers the rest, once, and goes on publishing
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    m.check_delivery(&mut r, &keys);
    m.publish_round(&mut r, "r3", 10);
    keys.push(m.late_joiner(&mut r, "t"));
    m.check_delivery(&mut r, &keys);
}

// ---------------------------------------------------------------------------------------------
// Known module bugs (ignored until fixed)

#[test]
fn notifications_of_one_millisecond_keep_publication_order() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["EVENT", "home"]);
    join(&mut c, "s", &["g:a", "g:b"]);
    let at = (now_ms() - 1_000).to_string();
    publish(&mut c, "g:b", "first", &["AT", &at]);
    publish(&mut c, "g:a", "second", &["AT", &at]);
    assert_eq!(ids(&inbox(&mut c, "s", &[])), ["first", "second"]);
}

#[test]
fn paging_never_skips_a_backdated_notification() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["EVENT", "home"]);
    join(&mut c, "s", &["g"]);
    let t = now_ms();
    publish(&mut c, "g", "now", &["AT", &t.to_string()]);
    let earlier = (t - 10_000).to_string();
    publish(&mut c, "g", "backdated", &["AT", &earlier]);
    assert_eq!(pending(&mut c, "s"), 2);
    let mut got = inbox(&mut c, "s", &["COUNT", "1"]);
    got.extend(inbox(&mut c, "s", &["COUNT", "1"]));
    // publication order (a backdated AT does not jump the queue), each exactly once
    assert_eq!(ids(&got), ["now", "backdated"]);
    assert!(inbox(&mut c, "s", &[]).is_empty());
}

#[test]
fn duplicates_leave_every_copy_of_the_registry_equal() {
    let mut primary = Server::start(&["--appendonly", "yes"]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    let t = now_ms();
    let at = |d: i64| (t + d).to_string();
    // expired 9 s ago, and still stored: nothing purged it yet
    publish(&mut p, "g", "gone", &["TTL", "1", "AT", &at(-10_000)]);
    publish(&mut p, "g", "live", &["AT", &at(-9_500)]);
    assert_eq!(registry_sizes(&mut p), (1, 2));
    // the duplicate replies 0 and should change nothing
    assert_eq!(notify(&mut p, "g", "live", b"", &[]), 0);
    wait_for_replica(&mut p);
    let on_primary = registry_sizes(&mut p);
    assert_eq!(registry_sizes(&mut replica.conn()), on_primary, "replica");
    drop(replica);
    primary.restart();
    assert_eq!(registry_sizes(&mut primary.conn()), on_primary, "AOF");
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn malformed_commands_are_refused_and_change_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["EVENT", "home"]);
    join(&mut c, "s", &["g"]);
    ok(&mut c, &["SET", "text", "v"]);
    let future = (now_ms() + 3_600_000).to_string();
    let arity = |name: &str| format!("ERR wrong number of arguments for '{name}' command");

    for args in [
        &["SESSION.NOTIFYGROUP"][..],
        &["SESSION.NOTIFYGROUP", "g"],
        &["SESSION.NOTIFYGROUP", "g", "id"],
    ] {
        assert_eq!(err(&mut c, args), arity("session.notifygroup"), "{args:?}");
    }
    assert_eq!(err(&mut c, &["SESSION.INBOX"]), arity("session.inbox"));

    let notify_cases: &[(&[&str], &str)] = &[
        (&["BOGUS"], "ERR syntax error"),
        (&["TTL"], "ERR syntax error"),
        (&["TTL", "5", "TTL", "5"], "ERR syntax error"),
        (&["TTL", "5", "EXPIREAT", "99999999999"], "ERR syntax error"),
        (&["EXPIREAT", "99999999999", "TTL", "5"], "ERR syntax error"),
        (&["MAXLEN", "3", "MAXLEN", "3"], "ERR syntax error"),
        (&["AT", "1", "AT", "1"], "ERR syntax error"),
        (&["TTL", "0"], "ERR TTL must be between 1 and"),
        (&["TTL", "-1"], "ERR TTL must be between 1 and"),
        (
            &["TTL", "soon"],
            "ERR value is not an integer or out of range",
        ),
        (&["EXPIREAT", "-1"], "ERR EXPIREAT must be between 0 and"),
        (&["MAXLEN", "0"], "ERR MAXLEN must be between 1 and 100000"),
        (
            &["AT", &future],
            "ERR AT is more than a minute in the future",
        ),
    ];
    for (extra, expected) in notify_cases {
        let mut args = vec!["SESSION.NOTIFYGROUP", "g", "id", "payload"];
        args.extend_from_slice(extra);
        let e = err(&mut c, &args);
        assert!(e.starts_with(expected), "{extra:?}: {e}");
    }

    let inbox_cases: &[(&[&str], &str)] = &[
        (&["BOGUS"], "ERR syntax error"),
        (&["COUNT"], "ERR syntax error"),
        (&["PEEK", "PEEK"], "ERR syntax error"),
        (&["COUNT", "1", "COUNT", "1"], "ERR syntax error"),
        (&["COUNT", "0"], "ERR COUNT must be between 1 and 100000"),
        (
            &["COUNT", "many"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["AT", &future],
            "ERR AT is more than a minute in the future",
        ),
    ];
    for (extra, expected) in inbox_cases {
        let mut args = vec!["SESSION.INBOX", "s"];
        args.extend_from_slice(extra);
        let e = err(&mut c, &args);
        assert!(e.starts_with(expected), "{extra:?}: {e}");
    }
    for extra in [&[][..], &["PEEK"], &["COUNT", "1"]] {
        let mut args = vec!["SESSION.INBOX", "text"];
        args.extend_from_slice(extra);
        let e = err(&mut c, &args);
        assert!(e.starts_with("WRONGTYPE"), "{extra:?}: {e}");
    }

    // nothing was published, the string is intact, the session has nothing pending
    assert_eq!(session_stat(&mut c, "notifications_published"), 0);
    assert_eq!(registry_sizes(&mut c), (0, 0));
    assert_eq!(
        ok(&mut c, &["GET", "text"]),
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(pending(&mut c, "s"), 0);
    assert_eq!(notify(&mut c, "g", "id", b"payload", &[]), 1);
    assert_eq!(ids(&inbox(&mut c, "s", &[])), ["id"]);
}
