//! Activity recording through a real server: `SESSION.TOUCH ... EVENT` counters and times, the
//! seen filter (`SESSION.SEEN`), the distinct-items sketch, interests under a burst, minute and
//! hour statistics, limits, memory, persistence and replication of sessions with activity, and
//! keyspace notifications.

mod common;

use std::collections::HashMap;

use common::*;
use rand::Rng;
use redis::{Connection, Value};
use serde_json::Value as Json;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Commands per pipeline (and items per `SESSION.SEEN` call).
const BATCH: usize = 1_000;
/// Lifetimes (30 days) long enough that sessions whose events lie days in the past stay alive.
const LONG_LIFE: [&str; 4] = ["IDLE", "2592000", "MAXAGE", "2592000"];
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

// ---------------------------------------------------------------------------------------------
// Helpers

/// `SESSION.TOUCH` arguments (after the key) recording one event.
fn event_args(item: &str, categories: &[&str], at: Option<i64>) -> Vec<String> {
    let mut args = vec!["EVENT".to_owned(), item.to_owned()];
    if !categories.is_empty() {
        args.push("CATEGORIES".to_owned());
        args.push(categories.len().to_string());
        args.extend(categories.iter().map(|c| c.to_string()));
    }
    if let Some(at) = at {
        args.push("AT".to_owned());
        args.push(at.to_string());
    }
    args
}

/// Records one event (creating the session with long lifetimes when it is missing).
fn event(
    c: &mut Connection,
    key: &str,
    item: &str,
    categories: &[&str],
    at: Option<i64>,
) -> HashMap<String, i64> {
    let mut args: Vec<String> = LONG_LIFE.iter().map(|s| s.to_string()).collect();
    args.extend(event_args(item, categories, at));
    touch(c, key, &args)
}

/// Runs `commands` in pipelines of [`BATCH`]; returns every reply.
fn pipelined(c: &mut Connection, commands: impl IntoIterator<Item = redis::Cmd>) -> Vec<Value> {
    let commands: Vec<redis::Cmd> = commands.into_iter().collect();
    let mut replies = Vec::with_capacity(commands.len());
    for chunk in commands.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for cmd in chunk {
            pipe.add_command(cmd.clone());
        }
        let batch: Vec<Value> = pipe.query(c).expect("pipeline");
        replies.extend(batch);
    }
    replies
}

/// Views every item once, pipelined; returns the last TOUCH reply.
fn view_all(c: &mut Connection, key: &str, items: &[String]) -> HashMap<String, i64> {
    let commands = items.iter().map(|item| {
        let mut cmd = redis::cmd("SESSION.TOUCH");
        cmd.arg(key).arg("EVENT").arg(item);
        cmd
    });
    let last = pipelined(c, commands).pop().expect("at least one item");
    touch_map(last)
}

/// Names `<prefix>-<n>` for `n` in `range`.
fn items(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("{prefix}-{n}")).collect()
}

/// `SESSION.SEEN key items...` in calls of [`BATCH`] items, pipelined; every answer, in order.
fn seen(c: &mut Connection, key: &str, items: &[String]) -> Vec<i64> {
    let commands = items.chunks(BATCH).map(|chunk| {
        let mut cmd = redis::cmd("SESSION.SEEN");
        cmd.arg(key).arg(chunk);
        cmd
    });
    pipelined(c, commands)
        .into_iter()
        .flat_map(|reply| match reply {
            Value::Array(bits) => bits.into_iter().map(|b| match b {
                Value::Int(i @ (0 | 1)) => i,
                other => panic!("SEEN answer is not 0/1: {other:?}"),
            }),
            other => panic!("SEEN reply is not an array: {other:?}"),
        })
        .collect()
}

/// The share of `items` that `SESSION.SEEN` answers 1 for.
fn seen_share(c: &mut Connection, key: &str, items: &[String]) -> f64 {
    let ones: i64 = seen(c, key, items).iter().sum();
    ones as f64 / items.len() as f64
}

/// A configuration value, parsed.
fn config_value<T: std::str::FromStr>(c: &mut Connection, name: &str) -> T {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(c)
        .expect("CONFIG GET");
    pair.get(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}: {pair:?}"))
}

fn memory_usage(c: &mut Connection, key: &str) -> i64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query(c)
        .expect("MEMORY USAGE")
}

/// `SESSION.ENRICH key args...` parsed as JSON (the session must exist).
fn enrich<A: AsRef<[u8]>>(c: &mut Connection, key: &str, args: &[A]) -> Json {
    let mut full: Vec<&[u8]> = vec![b"SESSION.ENRICH", key.as_bytes()];
    full.extend(args.iter().map(AsRef::as_ref));
    let doc = bytes(&ok(c, &full));
    serde_json::from_slice(&doc).expect("ENRICH replies JSON")
}

/// The start of the UTC day `days` days ago.
fn day_start(days: i64) -> i64 {
    (now_ms().div_euclid(DAY_MS) - days) * DAY_MS
}

/// One to three names drawn from `pool` (repeats possible).
fn pick(rng: &mut impl Rng, pool: &[&'static str]) -> Vec<&'static str> {
    let n = rng.gen_range(1..=3);
    (0..n).map(|_| pool[rng.gen_range(0..pool.len())]).collect()
}

/// A random mix of `SESSION.TOUCH ... EVENT ... CATEGORIES` (some with fields, some on the server
/// clock) and `SESSION.ENRICH ... ATTRS/JOIN/LEAVE` over `sessions` keys `<prefix>:<n>`, all
/// recent enough that nothing expires during a test. Returns the key names.
fn mixed_load(
    c: &mut Connection,
    rng: &mut impl Rng,
    prefix: &str,
    sessions: usize,
    commands: usize,
) -> Vec<String> {
    const CATEGORIES: [&str; 10] = [
        "news", "sport", "golf", "hockey", "tech", "music", "food", "travel", "art", "cars",
    ];
    const GROUPS: [&str; 5] = ["beta", "vip", "eu", "newsletter", "staff"];
    let names: Vec<String> = (0..sessions).map(|i| format!("{prefix}:{i}")).collect();
    let base = now_ms() - 10 * MINUTE_MS;
    let mut cmds = Vec::with_capacity(commands);
    for n in 0..commands {
        let key = &names[if n < sessions {
            n
        } else {
            rng.gen_range(0..sessions)
        }];
        let at = rng
            .gen_bool(0.8)
            .then(|| base + rng.gen_range(0..9 * MINUTE_MS));
        let mut cmd;
        if n < sessions || rng.gen_bool(0.75) {
            cmd = redis::cmd("SESSION.TOUCH");
            cmd.arg(key);
            if rng.gen_bool(0.2) {
                cmd.arg("SET").arg(1).arg("theme").arg(rng.gen::<u16>());
            }
            let categories = if rng.gen_bool(0.8) {
                pick(rng, &CATEGORIES)
            } else {
                Vec::new()
            };
            if rng.gen_bool(0.9) {
                let item = format!("item-{}", rng.gen_range(0..300));
                cmd.arg(event_args(&item, &categories, at));
            } else if let Some(at) = at {
                // activity without an event: the session's first event may come later
                cmd.arg("AT").arg(at);
            }
        } else {
            cmd = redis::cmd("SESSION.ENRICH");
            cmd.arg(key);
            if rng.gen_bool(0.5) {
                let country = ["SE", "FR", "US"][rng.gen_range(0..3)];
                let attrs = serde_json::json!({
                    "churn": rng.gen_range(0..100) as f64 / 100.0,
                    "geo": { "country": country },
                    "flag": if rng.gen_bool(0.3) { Json::Null } else { Json::Bool(true) },
                });
                cmd.arg("ATTRS").arg(attrs.to_string());
            }
            for clause in ["JOIN", "LEAVE"] {
                if rng.gen_bool(0.3) {
                    let groups = pick(rng, &GROUPS);
                    cmd.arg(clause).arg(groups.len()).arg(groups);
                }
            }
            if let Some(at) = at {
                cmd.arg("AT").arg(at);
            }
        }
        cmds.push(cmd);
    }
    for reply in pipelined(c, cmds) {
        match reply {
            Value::BulkString(doc) => {
                serde_json::from_slice::<Json>(&doc).expect("ENRICH replies JSON");
            }
            other => {
                touch_map(other);
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Counting

#[test]
fn event_counting_and_idle_time() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10 * MINUTE_MS;
    // (item or a touch without EVENT, time after t0, expected new/events/unique/seen_before/idle_ms)
    let steps: [(Option<&str>, i64, [i64; 5]); 6] = [
        (Some("a"), 0, [1, 1, 1, 0, 0]),
        (Some("a"), 1_500, [0, 2, 1, 1, 1_500]),
        (Some("b"), 4_000, [0, 3, 2, 0, 2_500]),
        // a touch without EVENT counts nothing, but is activity
        (None, 5_000, [0, 3, 2, 0, 1_000]),
        // an event older than the last activity: idle time is never negative
        (Some("c"), 2_000, [0, 4, 3, 0, 0]),
        (Some("b"), 9_000, [0, 5, 3, 1, 4_000]),
    ];
    for (item, offset, expected) in steps {
        let at = t0 + offset;
        let reply = match item {
            Some(item) => event(&mut c, "s", item, &["x"], Some(at)),
            None => touch(&mut c, "s", &["AT", &at.to_string()]),
        };
        let got = ["new", "events", "unique", "seen_before", "idle_ms"].map(|n| reply[n]);
        assert_eq!(got, expected, "{item:?} at t0 + {offset} ms: {reply:?}");
    }

    let info = session_info(&mut c, "s");
    let activity = &info["activity"];
    assert_eq!(activity["events"], 5);
    assert_eq!(activity["unique_items"], 3);
    assert_eq!(activity["first_event_ms"], t0);
    assert_eq!(activity["last_event_ms"], t0 + 9_000);
    assert_eq!(activity["longest_gap_ms"], 5_000);

    // small distinct counts are exact or off by one (two items may share a register)
    let many = items("page", 0..50);
    for (n, item) in (1..).zip(&many) {
        let r = event(&mut c, "small", item, &[], None);
        assert!(
            (r["unique"] - n).abs() <= 1,
            "{} distinct items estimated {}",
            n,
            r["unique"]
        );
        assert_eq!(r["events"], n);
    }
}

// ---------------------------------------------------------------------------------------------
// Seen filter

#[test]
fn seen_has_no_false_negatives_and_few_false_positives() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let viewed = items("viewed", 0..5_000);
    view_all(&mut c, "s", &viewed);
    assert!(
        seen(&mut c, "s", &viewed).iter().all(|&b| b == 1),
        "a viewed item answered 0"
    );
    let error_rate: f64 = config_value(&mut c, "session.seen-error-rate");
    let strangers = items("stranger", 0..20_000);
    let share = seen_share(&mut c, "s", &strangers);
    println!("seen filter: 5000 viewed items (capacity 128, growing), false positives {share:.5}");
    assert!(
        share <= 1.5 * error_rate,
        "false-positive share {share} over 1.5 x {error_rate}"
    );

    // one call answers per item, in order, mixing members and strangers
    let r = ok(
        &mut c,
        &["SESSION.SEEN", "s", "viewed-7", "nope", "viewed-4999"],
    );
    assert_eq!(
        r,
        Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(1)])
    );

    // a missing session has seen nothing, and asking creates nothing
    assert_eq!(seen(&mut c, "missing", &viewed[..10]), vec![0; 10]);
    assert!(!exists(&mut c, "missing"), "SEEN created a session");
    // a session without events has seen nothing either
    touch(&mut c, "idle", &[] as &[&str]);
    assert_eq!(seen(&mut c, "idle", &viewed[..3]), vec![0; 3]);

    ok(&mut c, &["SET", "string", "x"]);
    assert_eq!(err(&mut c, &["SESSION.SEEN", "string", "a"]), WRONGTYPE);
    for args in [&["SESSION.SEEN"][..], &["SESSION.SEEN", "s"]] {
        assert_eq!(
            err(&mut c, args),
            "ERR wrong number of arguments for 'session.seen' command"
        );
    }
}

#[test]
fn seen_false_positive_rate_at_design_capacity() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(&mut c, "session.seen-capacity", "1000");
    config_set(&mut c, "session.seen-error-rate", "0.01");
    let members = items("member", 0..1_000);
    view_all(&mut c, "s", &members);
    let info = session_info(&mut c, "s");
    let filter = &info["activity"]["sketches"]["seen"];
    assert_eq!(filter["initial_capacity"], 1_000);
    assert_eq!(filter["error_rate"], 0.01);
    assert_eq!(
        filter["layers"], 1,
        "1000 items fit the first layer: {filter}"
    );

    assert!(seen(&mut c, "s", &members).iter().all(|&b| b == 1));
    let strangers = items("outsider", 0..100_000);
    let share = seen_share(&mut c, "s", &strangers);
    println!("seen filter at design capacity (1000 items, p = 0.01): false positives {share:.5}");
    assert!(share <= 0.015, "false-positive share {share}");
}

// ---------------------------------------------------------------------------------------------
// Distinct items

#[test]
fn distinct_items_estimate_within_three_standard_errors() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let precision: i32 = config_value(&mut c, "session.hll-precision");
    let std_error = 1.04 / f64::from(1 << precision).sqrt();
    let mut viewed = 0;
    for target in [10usize, 1_000, 100_000] {
        let reply = view_all(&mut c, "s", &items("item", viewed..target));
        viewed = target;
        let estimate = reply["unique"];
        let relative = (estimate as f64 - target as f64) / target as f64;
        println!(
            "HyperLogLog p={precision}: {target} distinct items, estimate {estimate}, \
             error {:+.4} ({:.2} standard errors)",
            relative,
            relative.abs() / std_error
        );
        assert!(
            relative.abs() <= 3.0 * std_error,
            "{target} items estimated {estimate}"
        );
        assert_eq!(reply["events"], target as i64);
        let info = session_info(&mut c, "s");
        assert_eq!(info["activity"]["unique_items"], estimate);
        assert_eq!(
            info["activity"]["sketches"]["distinct"]["precision"],
            precision
        );
    }
    // views of known items change the estimate no more
    let again = view_all(&mut c, "s", &items("item", 0..1_000));
    assert_eq!(
        again["unique"],
        session_info(&mut c, "s")["activity"]["unique_items"]
    );
}

// ---------------------------------------------------------------------------------------------
// Limits and memory

#[test]
fn oversized_events_are_refused_and_change_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(&mut c, "session.max-field-size", "32");
    let limit: usize = config_value(&mut c, "session.max-categories");
    let names: Vec<String> = (0..=limit).map(|i| format!("c{i}")).collect();
    let at_limit: Vec<&str> = names[..limit].iter().map(String::as_str).collect();
    let over_limit: Vec<&str> = names.iter().map(String::as_str).collect();
    event(&mut c, "s", "page", &at_limit, None);

    let too_many =
        format!("ERR too many categories in one event (limit {limit}, session.max-categories)");
    let too_large =
        "ERR field, item or category too large (limit 32 bytes, session.max-field-size)";
    let long = "x".repeat(33);
    let cases = [
        (event_args("page", &over_limit, None), too_many.as_str()),
        (event_args(&long, &[], None), too_large),
        (event_args("page", &["ok", &long], None), too_large),
    ];
    for (args, expected) in &cases {
        for key in ["s", "fresh"] {
            let before = (session_info(&mut c, "s"), digest(&mut c));
            let full = [
                vec!["SESSION.TOUCH".to_owned(), key.to_owned()],
                args.clone(),
            ]
            .concat();
            assert_eq!(&err(&mut c, &full), expected, "{full:?}");
            assert_eq!(
                (session_info(&mut c, "s"), digest(&mut c)),
                before,
                "{full:?}"
            );
            assert!(
                !exists(&mut c, "fresh"),
                "a refused touch created a session"
            );
        }
    }
    // exactly at the limits: accepted
    assert_eq!(
        event(&mut c, "s", &"x".repeat(32), &at_limit, None)["events"],
        2
    );
    // a lower limit applies to the next command
    config_set(&mut c, "session.max-categories", "2");
    let full = [
        vec!["SESSION.TOUCH".to_owned(), "s".to_owned()],
        event_args("p", &["a", "b", "c"], None),
    ]
    .concat();
    assert_eq!(
        err(&mut c, &full),
        "ERR too many categories in one event (limit 2, session.max-categories)"
    );
    assert_eq!(event(&mut c, "s", "p", &["a", "b"], None)["events"], 3);
}

/// A session left above a lowered field limit still records activity; only growth is refused.
#[test]
fn events_still_record_when_a_session_exceeds_a_lowered_field_limit() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &["SET", "3", "a", "1", "b", "2", "c", "3"]);
    config_set(&mut c, "session.max-fields", "1");
    assert_eq!(event(&mut c, "s", "page", &["news"], None)["events"], 1);
    assert_eq!(touch(&mut c, "s", &[] as &[&str])["events"], 1);
    // growth is what the limit refuses
    assert_eq!(
        err(&mut c, &["SESSION.TOUCH", "s", "SET", "1", "d", "4"]),
        "ERR too many fields in the session (limit 1, session.max-fields)"
    );
}

#[test]
fn a_burst_of_categories_stays_bounded() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let top_n: i64 = config_value(&mut c, "session.interest-top-n");
    let start = now_ms() - 5 * MINUTE_MS;
    // an established favourite, then as many one-off categories as the sketch holds
    let mut cmds = Vec::new();
    let push_event = |cmds: &mut Vec<redis::Cmd>, category: &str, at: i64| {
        let mut cmd = redis::cmd("SESSION.TOUCH");
        cmd.arg("s").arg(event_args("page", &[category], Some(at)));
        cmds.push(cmd);
    };
    for i in 0..50 {
        push_event(&mut cmds, "favourite", start + i);
    }
    for i in 0..top_n {
        push_event(&mut cmds, &format!("burst-{i:04}"), start + 100 + i);
    }
    pipelined(&mut c, cmds.drain(..));
    let full = memory_usage(&mut c, "s");
    for i in top_n..1_000 {
        push_event(&mut cmds, &format!("burst-{i:04}"), start + 100 + i);
    }
    pipelined(&mut c, cmds);
    let after = memory_usage(&mut c, "s");
    let info = session_info(&mut c, "s");
    let tracked = &info["activity"]["sketches"]["interests"]["tracked"];
    println!("1000 categories: tracked {tracked} (top-n {top_n}), MEMORY USAGE {full} -> {after}");
    assert!(
        tracked.as_i64().expect("a count") <= top_n,
        "tracked {tracked}"
    );
    assert!(
        after <= full + 64,
        "MEMORY USAGE grew from {full} to {after} under a burst of categories"
    );
    let doc = enrich(&mut c, "s", &[] as &[&str]);
    assert_eq!(doc["interests"][0]["category"], "favourite", "{doc}");
    assert!(doc["interests"].as_array().expect("an array").len() as i64 <= top_n);
}

/// A session without events allocates no sketch. It carries the activity header inline (about
/// 280 bytes, the price of reaching an event's state without a pointer hop; docs/PERFORMANCE.md),
/// so it stays under 700 bytes all told.
#[test]
fn a_session_without_events_allocates_no_sketches() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &[] as &[&str]);
    touch(&mut c, "s", &[] as &[&str]);
    let info = session_info(&mut c, "s");
    assert_eq!(info["activity"], Json::Null, "{info}");
    let bytes = memory_usage(&mut c, "s");
    println!("a session without events: MEMORY USAGE {bytes}");
    assert!(bytes < 700, "MEMORY USAGE {bytes}");
    // its first event allocates the activity
    event(&mut c, "s", "page", &["news"], None);
    assert_eq!(session_info(&mut c, "s")["activity"]["events"], 1);
}

// ---------------------------------------------------------------------------------------------
// Minutes and hours

#[test]
fn active_minutes_in_the_last_hour() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // minute m: an event at the m-th minute before a reference point two hours ago
    let reference = (now_ms().div_euclid(MINUTE_MS) - 120) * MINUTE_MS;
    for (minutes_before, second) in [(70, 0), (60, 0), (59, 30), (5, 0), (1, 10), (1, 50), (0, 0)] {
        event(
            &mut c,
            "s",
            "p",
            &[],
            Some(reference - minutes_before * MINUTE_MS + second * 1000),
        );
    }
    let active_at = |c: &mut Connection, at: i64| {
        enrich(c, "s", &["AT", &at.to_string()])["active_minutes_last_hour"]
            .as_i64()
            .expect("a count")
    };
    // the window: the 60 minutes ending with the minute of `AT` (minute k: `reference` + k min)
    assert_eq!(active_at(&mut c, reference), 4); // minutes -59, -5, -1, 0
    assert_eq!(active_at(&mut c, reference + 59_999), 4);
    assert_eq!(active_at(&mut c, reference + MINUTE_MS), 3); // -59 left the window
    assert_eq!(active_at(&mut c, reference + 54 * MINUTE_MS), 3);
    assert_eq!(active_at(&mut c, reference + 55 * MINUTE_MS), 2); // -5 left
    assert_eq!(active_at(&mut c, reference + 58 * MINUTE_MS), 2);
    assert_eq!(active_at(&mut c, reference + 59 * MINUTE_MS), 1); // -1 left
    assert_eq!(active_at(&mut c, reference + 60 * MINUTE_MS), 0);
    assert_eq!(active_at(&mut c, reference + 100 * MINUTE_MS), 0);
    let info = session_info(&mut c, "s");
    assert_eq!(
        info["activity"]["active_minutes_last_hour"], 0,
        "two hours later"
    );
    assert_eq!(
        info["activity"]["active_minutes_ago"],
        serde_json::json!([])
    );

    // an event now counts in INFO at once, as the current minute (or the one before it, if the
    // minute turned between the two calls)
    event(&mut c, "s", "p", &[], None);
    let info = session_info(&mut c, "s");
    assert_eq!(info["activity"]["active_minutes_last_hour"], 1);
    let ago = &info["activity"]["active_minutes_ago"];
    assert!(
        *ago == serde_json::json!([0]) || *ago == serde_json::json!([1]),
        "{ago}"
    );
}

#[test]
fn peak_hour_is_the_busiest_utc_hour() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let day = day_start(5);
    let peak = |c: &mut Connection| enrich(c, "s", &[] as &[&str])["peak_hour"].clone();

    touch(&mut c, "s", &LONG_LIFE);
    assert_eq!(peak(&mut c), Json::Null, "no events, no peak hour");
    let at_hour =
        |day: i64, hour: i64, minute: i64| Some(day + hour * HOUR_MS + minute * MINUTE_MS);
    event(&mut c, "s", "p", &[], at_hour(day, 3, 0));
    assert_eq!(peak(&mut c), 3);
    for minute in [0, 20, 59] {
        event(&mut c, "s", "p", &[], at_hour(day, 17, minute));
    }
    assert_eq!(peak(&mut c), 17);
    // a tie goes to the earlier hour; hours of other days add up
    for (d, minute) in [(day, 5), (day, 6), (day + DAY_MS, 7)] {
        event(&mut c, "s", "p", &[], at_hour(d, 9, minute));
    }
    assert_eq!(peak(&mut c), 9);
    event(&mut c, "s", "p", &[], at_hour(day + 2 * DAY_MS, 17, 30));
    assert_eq!(peak(&mut c), 17);
    let hours = session_info(&mut c, "s")["activity"]["hours"].clone();
    let mut expected = vec![0; 24];
    (expected[3], expected[9], expected[17]) = (1, 3, 4);
    assert_eq!(hours, serde_json::json!(expected));
}

// ---------------------------------------------------------------------------------------------
// Persistence and replication

#[test]
fn debug_reload_keeps_sessions_with_activity() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let keys = mixed_load(&mut c, &mut seeded_rng(11), "s", 100, 3_000);
    let before = digest(&mut c);
    let info = session_info(&mut c, &keys[0]);
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(digest(&mut c), before);
    assert_eq!(session_info(&mut c, &keys[0])["activity"], info["activity"]);
}

#[test]
fn aof_rewrite_and_replay_keep_sessions_with_activity() {
    let mut server = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let mut c = server.conn();
    let mut rng = seeded_rng(12);
    mixed_load(&mut c, &mut rng, "before", 80, 2_000);
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_for_aof_rewrite(&mut c);
    // after the rewrite: more activity on rewritten sessions, and new ones
    mixed_load(&mut c, &mut rng, "before", 80, 1_000);
    mixed_load(&mut c, &mut rng, "after", 40, 1_000);
    let before = digest(&mut c);
    server.restart();
    let mut c = server.conn();
    assert_eq!(digest(&mut c), before);
}

#[test]
fn replica_matches_primary_whatever_its_own_configuration() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    config_set(&mut p, "session.seen-capacity", "64");
    config_set(&mut p, "session.interest-top-n", "5");
    let mut rng = seeded_rng(13);
    // sessions that reach the replica by the initial sync...
    mixed_load(&mut p, &mut rng, "synced", 50, 1_500);
    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    // ...and by the command stream, applied under a very different configuration
    for (name, value) in [
        ("session.seen-capacity", "4096"),
        ("session.seen-error-rate", "0.2"),
        ("session.hll-precision", "4"),
        ("session.interest-top-n", "1"),
        ("session.interest-half-life", "7"),
        ("session.engaged-threshold", "0.01"),
        ("session.dormant-after", "1"),
        ("session.returning-gap", "1"),
        ("session.interest-segment-weight", "0.9"),
        ("session.max-categories", "1"),
        ("session.max-groups", "0"),
        ("session.max-field-size", "4"),
    ] {
        config_set(&mut r, name, value);
    }
    mixed_load(&mut p, &mut rng, "synced", 50, 1_500);
    let keys = mixed_load(&mut p, &mut rng, "streamed", 50, 1_500);
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(60_000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(acked, 1);
    assert_eq!(digest(&mut r), digest(&mut p));
    // the replica built the primary's sketches, not its own configuration's
    let streamed = keys
        .iter()
        .map(|k| session_info(&mut r, k))
        .find(|info| !info["activity"].is_null())
        .expect("a streamed session with events");
    let sketches = &streamed["activity"]["sketches"];
    assert_eq!(sketches["seen"]["initial_capacity"], 64);
    assert_eq!(sketches["distinct"]["precision"], 10);
    assert_eq!(sketches["interests"]["top_n"], 5);
}

// ---------------------------------------------------------------------------------------------
// Keyspace notifications

#[test]
fn keyspace_events_for_touch_and_enrich() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    config_set(&mut c, "notify-keyspace-events", "KEA");
    let mut sub_conn = server.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.psubscribe("__key*@0__:*").expect("PSUBSCRIBE");
    sub.set_read_timeout(Some(PATIENCE)).expect("read timeout");

    event(&mut c, "k", "page", &["news"], None);
    seen(&mut c, "k", &items("page", 0..2));
    session_info(&mut c, "k");
    assert_eq!(ok(&mut c, &["SESSION.ENRICH", "missing"]), Value::Nil);
    err(&mut c, &["SESSION.TOUCH", "k", "EVENT", "p", "BOGUS"]);
    enrich(
        &mut c,
        "k",
        &["ATTRS", r#"{"geo":"SE"}"#, "JOIN", "1", "beta"],
    );
    touch(&mut c, "k", &["SET", "1", "theme", "dark"]);
    ok(&mut c, &["SET", "sentinel", "1"]);

    let mut received = Vec::new();
    while received.last().map(|(_, p): &(String, String)| p.as_str()) != Some("sentinel") {
        let msg = sub.get_message().expect("a keyspace notification");
        let payload: String = msg.get_payload().expect("a text payload");
        received.push((msg.get_channel_name().to_owned(), payload));
    }
    let expected: Vec<(String, String)> = [
        ("__keyspace@0__:k", "session.touch"),
        ("__keyevent@0__:session.touch", "k"),
        ("__keyspace@0__:k", "session.enrich"),
        ("__keyevent@0__:session.enrich", "k"),
        ("__keyspace@0__:k", "session.touch"),
        ("__keyevent@0__:session.touch", "k"),
        ("__keyspace@0__:sentinel", "set"),
        ("__keyevent@0__:set", "sentinel"),
    ]
    .iter()
    .map(|(ch, p)| (ch.to_string(), p.to_string()))
    .collect();
    assert_eq!(received, expected);
}
