//! `SESSION.ENRICH` through a real server: the calculated document (interests, engagement,
//! segments, attributes, groups), its rules on both sides of every threshold, refusals that change
//! nothing, and what ENRICH must leave alone (missing keys, the TTL).

mod common;

use common::*;
use rand::Rng;
use redis::{Connection, Value};
use serde_json::{json, Value as Json};

const MINUTE_MS: i64 = 60_000;
/// Lifetimes (30 days) long enough that sessions whose events lie in the past stay alive.
const LONG_LIFE: [&str; 4] = ["IDLE", "2592000", "MAXAGE", "2592000"];
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const AT_RANGE: &str = "ERR AT must be between 0 and 16725225600000";
const FUTURE: &str = "ERR AT is more than a minute in the future";
const INVALID_JSON: &str = "ERR ATTRS is not valid JSON";
const NOT_OBJECT: &str = "ERR ATTRS must be a JSON object";
/// Every name of the ENRICH document.
const DOCUMENT_NAMES: [&str; 14] = [
    "active_minutes_last_hour",
    "attrs",
    "computed_ms",
    "engagement",
    "events",
    "first_event_ms",
    "first_seen_ms",
    "groups",
    "interests",
    "last_event_ms",
    "last_seen_ms",
    "peak_hour",
    "segments",
    "unique_items",
];

// ---------------------------------------------------------------------------------------------
// Helpers

fn count_error(clause: &str) -> String {
    format!("ERR {clause} count must be positive and match the arguments that follow")
}

/// `SESSION.TOUCH` arguments (after the key): long lifetimes and one event.
fn event_args(item: &str, categories: &[&str], at: i64) -> Vec<String> {
    let mut args: Vec<String> = LONG_LIFE.iter().map(|s| s.to_string()).collect();
    args.extend(["EVENT".to_owned(), item.to_owned()]);
    if !categories.is_empty() {
        args.extend(["CATEGORIES".to_owned(), categories.len().to_string()]);
        args.extend(categories.iter().map(|c| c.to_string()));
    }
    args.extend(["AT".to_owned(), at.to_string()]);
    args
}

fn event(c: &mut Connection, key: &str, item: &str, categories: &[&str], at: i64) {
    touch(c, key, &event_args(item, categories, at));
}

/// A touch without an event at `at` (creating the session with long lifetimes).
fn touch_at(c: &mut Connection, key: &str, at: i64) {
    touch(c, key, &[&LONG_LIFE[..], &["AT", &at.to_string()]].concat());
}

/// `SESSION.ENRICH key args...`: the reply, or the error text.
fn enrich_call<A: AsRef<[u8]>>(c: &mut Connection, key: &str, args: &[A]) -> Result<Value, String> {
    let mut full: Vec<&[u8]> = vec![b"SESSION.ENRICH", key.as_bytes()];
    full.extend(args.iter().map(AsRef::as_ref));
    call(c, &full)
}

/// `SESSION.ENRICH key args...` on an existing session, parsed as JSON.
fn enrich<A: AsRef<[u8]>>(c: &mut Connection, key: &str, args: &[A]) -> Json {
    match enrich_call(c, key, args) {
        Ok(Value::BulkString(doc)) => serde_json::from_slice(&doc).expect("ENRICH replies JSON"),
        other => panic!("ENRICH {key}: {other:?}"),
    }
}

/// `SESSION.ENRICH key AT at`.
fn enrich_at(c: &mut Connection, key: &str, at: i64) -> Json {
    enrich(c, key, &["AT".to_owned(), at.to_string()])
}

fn segments(doc: &Json) -> Vec<String> {
    doc["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s.as_str().expect("a segment name").to_owned())
        .collect()
}

/// The interests of a document as (category, weight), in the order given.
fn interests(doc: &Json) -> Vec<(String, f64)> {
    doc["interests"]
        .as_array()
        .expect("interests")
        .iter()
        .map(|i| {
            (
                i["category"].as_str().expect("a category").to_owned(),
                i["weight"].as_f64().expect("a weight"),
            )
        })
        .collect()
}

/// Checks a document's interests: these categories, in this order, with these weights (1e-6).
fn assert_weights(doc: &Json, expected: &[(&str, f64)]) {
    let got = interests(doc);
    assert_eq!(got.len(), expected.len(), "{doc}");
    for ((category, weight), (want_category, want_weight)) in got.iter().zip(expected) {
        assert_eq!(category, want_category, "{doc}");
        assert!(
            (weight - want_weight).abs() < 1e-6,
            "{category}: {weight} instead of {want_weight}"
        );
    }
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

/// Segment rules that never hold for sessions whose events have no categories, so that a test
/// sees only the rule it drives.
fn neutral_rules(c: &mut Connection) {
    for (name, value) in [
        ("session.engaged-threshold", "1"),
        ("session.dormant-after", "315360000"),
        ("session.returning-gap", "315360000"),
        ("session.interest-segment-weight", "1"),
    ] {
        config_set(c, name, value);
    }
}

/// What a refused command must leave as it was: the value and its expiry.
fn snapshot(c: &mut Connection, key: &str) -> (String, i64) {
    (digest_value(c, key), pexpiretime(c, key))
}

/// Runs an ENRICH that must fail with `expected`, and checks that the session did not change.
fn assert_refused<A: AsRef<[u8]>>(c: &mut Connection, key: &str, args: &[A], expected: &str) {
    let shown: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
        .collect();
    let before = snapshot(c, key);
    assert_eq!(
        enrich_call(c, key, args),
        Err(expected.to_owned()),
        "{shown:?}"
    );
    assert_eq!(snapshot(c, key), before, "{shown:?} changed the session");
}

// ---------------------------------------------------------------------------------------------
// The document

#[test]
fn document_reports_the_activity_and_is_stored() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10 * MINUTE_MS;
    touch_at(&mut c, "s", t0);
    event(&mut c, "s", "a", &["news"], t0 + 1_000);
    event(&mut c, "s", "b", &["news"], t0 + 2_000);
    event(&mut c, "s", "a", &[], t0 + 3_000);
    let at = t0 + 4_000;
    let doc = enrich_at(&mut c, "s", at);
    let mut names: Vec<&str> = doc
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, DOCUMENT_NAMES);
    for (name, value) in [
        ("events", json!(3)),
        ("unique_items", json!(2)),
        ("first_seen_ms", json!(t0)),
        ("last_seen_ms", json!(t0 + 3_000)),
        ("first_event_ms", json!(t0 + 1_000)),
        ("last_event_ms", json!(t0 + 3_000)),
        ("computed_ms", json!(at)),
        ("interests", json!([{ "category": "news", "weight": 1.0 }])),
        ("attrs", json!({})),
        ("groups", json!([])),
    ] {
        assert_eq!(doc[name], value, "{name} in {doc}");
    }
    // what ENRICH replied is what the session stores
    assert_eq!(session_info(&mut c, "s")["calculated"], doc);
}

// ---------------------------------------------------------------------------------------------
// Interests

#[test]
fn planted_favourite_ranks_first_for_every_user() {
    const USERS: usize = 20;
    const EVENTS: i64 = 200;
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(21);
    let categories: Vec<String> = (0..20).map(|i| format!("cat-{i:02}")).collect();
    let base = now_ms() - 10 * MINUTE_MS;
    let mut planted = Vec::new();
    let mut pipe = redis::pipe();
    for user in 0..USERS {
        let favourite = rng.gen_range(0..categories.len());
        planted.push(categories[favourite].clone());
        for n in 0..EVENTS {
            let category = if rng.gen_bool(0.6) {
                favourite
            } else {
                // uniformly among the 19 others
                (favourite + rng.gen_range(1..categories.len())) % categories.len()
            };
            let args = event_args(
                &format!("item-{n}"),
                &[&categories[category]],
                base + n * 1000,
            );
            pipe.cmd("SESSION.TOUCH")
                .arg(format!("user:{user}"))
                .arg(args)
                .ignore();
        }
    }
    let () = pipe.query(&mut c).expect("events");
    let top_n: usize = config_value(&mut c, "session.interest-top-n");
    for (user, favourite) in planted.iter().enumerate() {
        let doc = enrich(&mut c, &format!("user:{user}"), &[] as &[&str]);
        let ranked = interests(&doc);
        assert_eq!(&ranked[0].0, favourite, "user {user}: {doc}");
        assert!(ranked.len() <= top_n);
        assert!(
            ranked.windows(2).all(|w| w[0].1 >= w[1].1),
            "strongest first"
        );
        let total: f64 = ranked.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9, "weights sum to {total}");
        // only the favourite is strong enough for an interest segment
        let interest_segments: Vec<String> = segments(&doc)
            .into_iter()
            .filter(|s| s.starts_with("interest:"))
            .collect();
        assert_eq!(interest_segments, vec![format!("interest:{favourite}")]);
    }
}

#[test]
fn interest_weights_halve_every_half_life() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 20 * MINUTE_MS;
    // a session whose activity started under the default half-life (one hour) keeps it
    event(&mut c, "before", "p1", &["A"], t0);
    config_set(&mut c, "session.interest-half-life", "600");
    event(&mut c, "after", "p1", &["A"], t0);
    for key in ["before", "after"] {
        event(&mut c, key, "p2", &["B"], t0 + 600_000);
    }
    let after = enrich_at(&mut c, "after", t0 + 600_000);
    assert_weights(&after, &[("B", 2.0 / 3.0), ("A", 1.0 / 3.0)]);
    // normalized weights do not depend on when they are read
    let later = enrich_at(&mut c, "after", t0 + 900_000);
    assert_weights(&later, &[("B", 2.0 / 3.0), ("A", 1.0 / 3.0)]);
    let a = 2f64.powf(-600.0 / 3600.0);
    let before = enrich_at(&mut c, "before", t0 + 600_000);
    assert_weights(&before, &[("B", 1.0 / (1.0 + a)), ("A", a / (1.0 + a))]);
    for (key, half_life) in [("before", 3600), ("after", 600)] {
        let sketch = &session_info(&mut c, key)["activity"]["sketches"]["interests"];
        assert_eq!(sketch["half_life_s"], half_life, "{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Segments

#[test]
fn segment_new_means_at_most_one_event() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    neutral_rules(&mut c);
    let t0 = now_ms() - 10 * MINUTE_MS;
    touch_at(&mut c, "s", t0);
    assert_eq!(segments(&enrich_at(&mut c, "s", t0)), ["new"], "no events");
    event(&mut c, "s", "a", &[], t0 + 1_000);
    assert_eq!(
        segments(&enrich_at(&mut c, "s", t0 + 1_000)),
        ["new"],
        "one event"
    );
    event(&mut c, "s", "a", &[], t0 + 2_000);
    assert!(
        segments(&enrich_at(&mut c, "s", t0 + 2_000)).is_empty(),
        "two events"
    );
}

#[test]
fn segment_returning_needs_a_long_enough_pause() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    neutral_rules(&mut c);
    let t0 = now_ms() - 30 * MINUTE_MS;
    // pauses of 1 s, 1000 s and 5 s between consecutive events
    for (item, at) in [("a", 0), ("b", 1_000), ("c", 1_001_000), ("d", 1_006_000)] {
        event(&mut c, "s", item, &[], t0 + at);
    }
    // an old event arriving late creates no pause
    event(&mut c, "s", "e", &[], t0 - 5_000_000);
    let now = t0 + 1_006_000;
    for (gap_s, returning) in [(999, true), (1000, true), (1001, false)] {
        config_set(&mut c, "session.returning-gap", &gap_s.to_string());
        let expected: &[&str] = if returning { &["returning"] } else { &[] };
        assert_eq!(
            segments(&enrich_at(&mut c, "s", now)),
            expected,
            "gap {gap_s} s"
        );
    }
}

#[test]
fn segment_dormant_after_a_quiet_period() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    neutral_rules(&mut c);
    config_set(&mut c, "session.dormant-after", "600");
    let t0 = now_ms() - 30 * MINUTE_MS;
    let quiet = 600_000;
    event(&mut c, "s", "a", &[], t0 - 1_000);
    event(&mut c, "s", "b", &[], t0);
    // a touch without an event is not activity for this rule
    touch(&mut c, "s", &["AT", &(t0 + 300_000).to_string()]);
    assert!(segments(&enrich_at(&mut c, "s", t0 + quiet - 1)).is_empty());
    assert_eq!(segments(&enrich_at(&mut c, "s", t0 + quiet)), ["dormant"]);
    // without events, the last touch counts
    touch_at(&mut c, "idle", t0);
    assert_eq!(
        segments(&enrich_at(&mut c, "idle", t0 + quiet - 1)),
        ["new"]
    );
    assert_eq!(
        segments(&enrich_at(&mut c, "idle", t0 + quiet)),
        ["dormant", "new"]
    );
    // the threshold is read at each ENRICH
    config_set(&mut c, "session.dormant-after", "601");
    assert!(segments(&enrich_at(&mut c, "s", t0 + quiet)).is_empty());
}

/// Engagement as the module documents it.
fn expected_engagement(events: f64, unique: f64, idle_ms: f64, dormant_after_s: f64) -> f64 {
    let recency = (-idle_ms / (dormant_after_s * 1000.0)).exp2();
    let frequency = 1.0 - (-events / 20.0).exp();
    let breadth = 1.0 - (-unique / 10.0).exp();
    0.4 * recency + 0.35 * frequency + 0.25 * breadth
}

#[test]
fn segment_engaged_at_the_threshold() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    neutral_rules(&mut c);
    config_set(&mut c, "session.dormant-after", "1800");
    let t0 = now_ms() - 30 * MINUTE_MS;
    for n in 0..12 {
        event(&mut c, "s", &format!("item-{}", n % 8), &[], t0 + n * 1_000);
    }
    let at = t0 + 11_000 + 5 * MINUTE_MS;
    let engagement = enrich_at(&mut c, "s", at)["engagement"]
        .as_f64()
        .expect("a number");
    let formula = expected_engagement(12.0, 8.0, 5.0 * 60_000.0, 1800.0);
    assert!(
        (engagement - formula).abs() < 1e-12,
        "engagement {engagement}, documented formula {formula}"
    );
    // at the threshold exactly: engaged; one representable step above: not
    let just_above = f64::from_bits(engagement.to_bits() + 1);
    for (threshold, expected) in [(engagement, &["engaged"][..]), (just_above, &[])] {
        config_set(&mut c, "session.engaged-threshold", &threshold.to_string());
        assert_eq!(
            segments(&enrich_at(&mut c, "s", at)),
            expected,
            "{threshold}"
        );
    }
    // without events a session is never engaged
    config_set(&mut c, "session.engaged-threshold", "0");
    touch_at(&mut c, "idle", t0);
    let doc = enrich_at(&mut c, "idle", t0);
    assert_eq!(doc["engagement"], 0.0);
    assert_eq!(segments(&doc), ["new"]);
}

#[test]
fn segment_interest_above_the_weight() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    neutral_rules(&mut c);
    let t0 = now_ms() - 10 * MINUTE_MS;
    // weights 3/4 and 1/4 (all at one instant: no decay)
    event(&mut c, "s", "p1", &["golf", "hockey"], t0);
    event(&mut c, "s", "p2", &["golf"], t0);
    event(&mut c, "s", "p3", &["golf"], t0);
    let cases: [(&str, &[&str]); 5] = [
        ("0.25", &["interest:golf", "interest:hockey"]),
        ("0.2500001", &["interest:golf"]),
        ("0.75", &["interest:golf"]),
        ("0.7500001", &[]),
        ("0", &["interest:golf", "interest:hockey"]),
    ];
    for (weight, expected) in cases {
        config_set(&mut c, "session.interest-segment-weight", weight);
        let doc = enrich_at(&mut c, "s", t0);
        assert_weights(&doc, &[("golf", 0.75), ("hockey", 0.25)]);
        assert_eq!(segments(&doc), expected, "weight {weight}");
    }
}

// ---------------------------------------------------------------------------------------------
// Attributes

#[test]
fn attrs_follow_json_merge_patch() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10 * MINUTE_MS;
    event(&mut c, "s", "p", &["news"], t0);
    let steps = [
        (
            r#"{"churn":0.2,"geo":{"country":"SE"},"tags":["a","b"]}"#,
            json!({"churn": 0.2, "geo": {"country": "SE"}, "tags": ["a", "b"]}),
        ),
        // replace a value, keep the rest
        (
            r#"{"churn":0.3}"#,
            json!({"churn": 0.3, "geo": {"country": "SE"}, "tags": ["a", "b"]}),
        ),
        // merge into a nested object
        (
            r#"{"geo":{"city":"Lund"}}"#,
            json!({"churn": 0.3, "geo": {"country": "SE", "city": "Lund"}, "tags": ["a", "b"]}),
        ),
        // arrays are replaced, not merged
        (
            r#"{"tags":["c"]}"#,
            json!({"churn": 0.3, "geo": {"country": "SE", "city": "Lund"}, "tags": ["c"]}),
        ),
        // null deletes, at any depth
        (
            r#"{"churn":null,"geo":{"country":null},"absent":null}"#,
            json!({"geo": {"city": "Lund"}, "tags": ["c"]}),
        ),
        (r#"{}"#, json!({"geo": {"city": "Lund"}, "tags": ["c"]})),
        // an object replaced by a scalar, and back
        (
            r#"{"geo":"unknown"}"#,
            json!({"geo": "unknown", "tags": ["c"]}),
        ),
        (
            r#"{"geo":{"zip":{"code":"22100"}}}"#,
            json!({"geo": {"zip": {"code": "22100"}}, "tags": ["c"]}),
        ),
    ];
    for (patch, expected) in &steps {
        let doc = enrich(&mut c, "s", &["ATTRS", patch]);
        assert_eq!(&doc["attrs"], expected, "after {patch}");
    }
    let last = &steps[steps.len() - 1].1;
    // an ENRICH without ATTRS keeps them
    assert_eq!(&enrich(&mut c, "s", &[] as &[&str])["attrs"], last);
    assert_eq!(&session_info(&mut c, "s")["calculated"]["attrs"], last);

    // refused patches change nothing (not even the JOIN next to them)
    let bad: [(&[u8], &str); 9] = [
        (b"{\"a\":", INVALID_JSON),
        (b"{nope}", INVALID_JSON),
        (b"", INVALID_JSON),
        (b"{\"a\":1} x", INVALID_JSON),
        (b"\xff\xfe", INVALID_JSON),
        (b"[1,2]", NOT_OBJECT),
        (b"\"text\"", NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b"null", NOT_OBJECT),
    ];
    for (patch, expected) in bad {
        assert_refused(
            &mut c,
            "s",
            &[&b"ATTRS"[..], patch, b"JOIN", b"1", b"g"],
            expected,
        );
    }
    // too large once merged: refused
    config_set(&mut c, "session.max-field-size", "64");
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(64));
    assert_refused(
        &mut c,
        "s",
        &["ATTRS", &big],
        "ERR attributes would exceed 64 bytes (session.max-field-size)",
    );
    assert_eq!(&enrich(&mut c, "s", &[] as &[&str])["attrs"], last);
}

#[test]
fn attrs_survive_debug_reload() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 10 * MINUTE_MS;
    event(&mut c, "s", "p", &["news"], t0);
    let attrs = r#"{"churn":0.125,"geo":{"country":"SE","city":"Lund"},"vip":true}"#;
    let at = ["AT".to_owned(), (t0 + 1_000).to_string()];
    let first = enrich(
        &mut c,
        "s",
        &[&["ATTRS".to_owned(), attrs.to_owned()][..], &at].concat(),
    );
    let before = (
        digest(&mut c),
        session_info(&mut c, "s")["calculated"].clone(),
    );
    ok(&mut c, &["DEBUG", "RELOAD"]);
    let after = (
        digest(&mut c),
        session_info(&mut c, "s")["calculated"].clone(),
    );
    assert_eq!(after, before);
    // the same ENRICH at the same time computes the same document from the reloaded session
    assert_eq!(enrich(&mut c, "s", &at), first);
    assert_eq!(
        first["attrs"],
        serde_json::from_str::<Json>(attrs).expect("JSON")
    );
}

// ---------------------------------------------------------------------------------------------
// Groups

#[test]
fn groups_join_leave_and_limit() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let groups = |c: &mut Connection, args: &[&str]| enrich(c, "s", args)["groups"].clone();
    touch(&mut c, "s", &[] as &[&str]);
    // duplicates count once; the list is sorted
    assert_eq!(
        groups(&mut c, &["JOIN", "3", "beta", "alpha", "beta"]),
        json!(["alpha", "beta"])
    );
    assert_eq!(
        groups(&mut c, &["JOIN", "1", "alpha"]),
        json!(["alpha", "beta"])
    );
    assert_eq!(
        groups(&mut c, &["LEAVE", "2", "alpha", "never"]),
        json!(["beta"])
    );
    assert_eq!(groups(&mut c, &[]), json!(["beta"]));
    // JOIN applies before LEAVE
    assert_eq!(
        groups(&mut c, &["JOIN", "2", "x", "y", "LEAVE", "1", "x"]),
        json!(["beta", "y"])
    );
    assert_eq!(session_info(&mut c, "s")["groups"], json!(["beta", "y"]));

    config_set(&mut c, "session.max-groups", "3");
    let limit = "ERR too many groups in the session (limit 3, session.max-groups)";
    assert_eq!(
        groups(&mut c, &["JOIN", "1", "gamma"]),
        json!(["beta", "gamma", "y"])
    );
    assert_refused(&mut c, "s", &["JOIN", "1", "delta"], limit);
    assert_refused(
        &mut c,
        "s",
        &["JOIN", "2", "delta", "beta", "ATTRS", "{}"],
        limit,
    );
    // at the limit: joining a member, or joining while leaving, is fine
    assert_eq!(
        groups(&mut c, &["JOIN", "1", "beta"]),
        json!(["beta", "gamma", "y"])
    );
    assert_eq!(
        groups(&mut c, &["JOIN", "1", "delta", "LEAVE", "1", "y"]),
        json!(["beta", "delta", "gamma"])
    );
    config_set(&mut c, "session.max-groups", "0");
    assert_refused(
        &mut c,
        "s",
        &["JOIN", "1", "epsilon"],
        &limit.replace('3', "0"),
    );
}

#[test]
fn a_lowered_group_limit_refuses_only_growth() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "s", &[] as &[&str]);
    enrich(&mut c, "s", &["JOIN", "3", "a", "b", "c"]);
    config_set(&mut c, "session.max-groups", "1");
    assert_eq!(
        enrich(&mut c, "s", &[] as &[&str])["groups"],
        json!(["a", "b", "c"])
    );
    assert_eq!(
        enrich(&mut c, "s", &["LEAVE", "1", "a"])["groups"],
        json!(["b", "c"])
    );
    assert_refused(
        &mut c,
        "s",
        &["JOIN", "1", "d"],
        "ERR too many groups in the session (limit 1, session.max-groups)",
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals and what ENRICH leaves alone

#[test]
fn enrich_on_a_missing_key_creates_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let at = (now_ms() - 1_000).to_string();
    let cases: [&[&str]; 4] = [
        &[],
        &["ATTRS", r#"{"a":1}"#],
        &["JOIN", "1", "g", "LEAVE", "1", "h"],
        &["ATTRS", "{}", "JOIN", "1", "g", "AT", &at],
    ];
    for args in cases {
        assert_eq!(
            enrich_call(&mut c, "missing", args),
            Ok(Value::Nil),
            "{args:?}"
        );
    }
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE");
    assert_eq!(size, 0);
}

#[test]
fn enrich_refuses_bad_requests_without_change() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    event(&mut c, "s", "p", &["news"], now_ms() - MINUTE_MS);
    enrich(&mut c, "s", &["ATTRS", r#"{"a":1}"#, "JOIN", "1", "g"]);
    let future = (now_ms() + 2 * MINUTE_MS).to_string();
    let join_count = count_error("JOIN");
    let leave_count = count_error("LEAVE");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["BOGUS"], SYNTAX),
        (vec!["ATTRS"], SYNTAX),
        (vec!["ATTRS", "{}", "ATTRS", "{}"], SYNTAX),
        (vec!["JOIN"], SYNTAX),
        (vec!["JOIN", "0"], &join_count),
        (vec!["JOIN", "2", "a"], &join_count),
        (vec!["JOIN", "-1", "a"], &join_count),
        (vec!["JOIN", "x", "a"], NOT_INTEGER),
        (vec!["JOIN", "1", "a", "JOIN", "1", "b"], SYNTAX),
        (vec!["LEAVE", "2", "a"], &leave_count),
        (vec!["AT"], SYNTAX),
        (vec!["AT", "x"], NOT_INTEGER),
        (vec!["AT", "-1"], AT_RANGE),
        (vec!["AT", "1", "AT", "2"], SYNTAX),
        (vec!["AT", &future], FUTURE),
        (vec!["ATTRS", "{}", "JOIN", "1", "x", "AT", &future], FUTURE),
        (vec!["JOIN", "1", "x", "EXTRA"], SYNTAX),
    ];
    for (args, expected) in &cases {
        assert_refused(&mut c, "s", args, expected);
    }
    assert_eq!(
        err(&mut c, &["SESSION.ENRICH"]),
        "ERR wrong number of arguments for 'session.enrich' command"
    );
    ok(&mut c, &["SET", "string", "x"]);
    assert_eq!(
        enrich_call(&mut c, "string", &[] as &[&str]),
        Err(WRONGTYPE.to_owned())
    );
    assert_eq!(
        enrich_call(&mut c, "string", &["ATTRS", "{}"]),
        Err(WRONGTYPE.to_owned())
    );
    // within the allowed skew the clock of the caller is accepted
    let soon = now_ms() + 30_000;
    assert_eq!(
        enrich(&mut c, "s", &["AT", &soon.to_string()])["computed_ms"],
        soon
    );
}

#[test]
fn enrich_keeps_the_ttl() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let t0 = now_ms() - 5_000;
    touch(
        &mut c,
        "s",
        &[
            "IDLE",
            "1000",
            "EVENT",
            "p",
            "CATEGORIES",
            "1",
            "news",
            "AT",
            &t0.to_string(),
        ],
    );
    let deadline = pexpiretime(&mut c, "s");
    assert_eq!(deadline, t0 + 1_000_000);
    let last_seen = session_info(&mut c, "s")["last_seen_ms"].clone();
    let now = now_ms().to_string();
    let requests: [&[&str]; 4] = [
        &[],
        &["AT", &now],
        &["ATTRS", r#"{"a":1}"#, "JOIN", "2", "g", "h"],
        &["LEAVE", "1", "g"],
    ];
    for args in requests {
        enrich(&mut c, "s", args);
        assert_eq!(pexpiretime(&mut c, "s"), deadline, "after ENRICH {args:?}");
        assert_eq!(session_info(&mut c, "s")["last_seen_ms"], last_seen);
    }
}
