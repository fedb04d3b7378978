//! The session store from Rust with the `redis` crate (synchronous API).
//!
//! One visitor's session: page views, reading fields, "have they seen it?", enrichment with
//! attributes from other services, content they have not seen yet, and a group notification.
//!
//!     REDIS_URL=redis://127.0.0.1:6379 cargo run
//!
//! Every reply is checked with `assert!`: an unexpected reply panics, and the process exits
//! non-zero. REDIS_PROTOCOL=2|3 picks the protocol (default 3). The typed conversions below
//! (`BTreeMap<String, i64>`, `Vec<(String, f64)>`, ...) accept a RESP3 map and a RESP2 flat
//! name/value array alike, so the code is the same for both.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{cmd, Connection, IntoConnectionInfo, ProtocolVersion, Value};
use serde_json::{json, Value as Json};

/// The reply of SESSION.TOUCH: `new`, `events`, `unique`, `seen_before`, `idle_ms`, `ttl_ms`,
/// `pending`, all integers.
type Touch = BTreeMap<String, i64>;

fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let resp3 = std::env::var("REDIS_PROTOCOL").map_or(true, |p| p != "2");
    // The protocol can also be chosen in the URL (`redis://host:6379/?protocol=resp3`).
    let info = url.as_str().into_connection_info()?;
    let protocol = if resp3 {
        ProtocolVersion::RESP3
    } else {
        ProtocolVersion::RESP2
    };
    let settings = info.redis_settings().clone().set_protocol(protocol);
    let mut con = redis::Client::open(info.set_redis_settings(settings))?.get_connection()?;

    // Unique names per run, so the demo can run against a shared server, any number of times.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let run = format!("{:08x}", (nanos as u32) ^ std::process::id());
    let key = format!("demo:rs:{run}:sess"); // in an application: the session id from the cookie
    let catalog = format!("demo:rs:{run}:articles");
    let group = format!("demo:rs:{run}:beta");
    println!("redis-rs, {protocol:?}, session {key}");

    demo(&mut con, &key, &catalog, &group, resp3)?;

    // Tidy up the shared server (the group's notification expires on its own; so would the
    // session and the catalog's items if a failed run left them behind).
    let _: i64 = cmd("DEL").arg(&key).query(&mut con)?;
    let _: i64 = cmd("SESSION.CATALOG")
        .arg("DROP")
        .arg(&catalog)
        .query(&mut con)?;
    println!("rust example: all replies as expected");
    Ok(())
}

fn demo(
    con: &mut Connection,
    key: &str,
    catalog: &str,
    group: &str,
    resp3: bool,
) -> Result<(), Box<dyn Error>> {
    // --- Page views: ONE command per request creates/refreshes the session, writes fields,
    // records what was viewed (and its categories) and slides the idle expiry.
    let views: [(&str, &[&str], i64, i64, i64); 3] = [
        // (item viewed, its categories, expected events, unique, seen_before)
        ("article:1", &["hockey", "sports"], 1, 1, 0),
        ("article:5", &["hockey"], 2, 2, 0),
        ("article:5", &["hockey"], 3, 2, 1), // a re-read: seen_before = 1
    ];
    for (i, (item, cats, events, unique, seen_before)) in views.into_iter().enumerate() {
        let mut touch = cmd("SESSION.TOUCH");
        touch.arg(key);
        if i == 0 {
            // The login page: lifetime, principal and some session data.
            touch.arg(("IDLE", 1800, "USER", "alice"));
            touch.arg(("SET", 2, "theme", "dark", "cart", 3));
        }
        touch
            .arg(("EVENT", item, "CATEGORIES", cats.len()))
            .arg(cats);
        let page: Touch = touch.query(con)?;
        println!("TOUCH {item}: {page:?}");
        assert_eq!(page["new"], i64::from(i == 0));
        assert_eq!(page["events"], events);
        assert_eq!(
            page["unique"], unique,
            "a HyperLogLog estimate, exact this small"
        );
        assert_eq!(page["seen_before"], seen_before);
        assert!(
            (1..=1_800_000).contains(&page["ttl_ms"]),
            "slides to the idle timeout"
        );
        assert_eq!(page["pending"], 0);
    }

    // --- Read fields (no TTL renewal): all of them as a map, or named ones as an array.
    let fields: BTreeMap<String, String> = cmd("SESSION.GET").arg(key).query(con)?;
    println!("GET: {fields:?}");
    let expected = BTreeMap::from([("theme".into(), "dark".into()), ("cart".into(), "3".into())]);
    assert_eq!(fields, expected);
    let some: Vec<Option<String>> = cmd("SESSION.GET")
        .arg((key, "theme", "missing"))
        .query(con)?;
    println!("GET theme missing: {some:?}");
    assert_eq!(some, [Some("dark".to_string()), None]);

    // --- Has the user seen these? 0 is certain (Bloom filter, no false negatives).
    let seen: Vec<i64> = cmd("SESSION.SEEN")
        .arg((key, "article:1", "article:2"))
        .query(con)?;
    println!("SEEN article:1 article:2: {seen:?}");
    assert_eq!(seen, [1, 0]);

    // --- Enrich: merge attributes from other services (JSON merge patch), join a group, and
    // get the calculated data back as one JSON document.
    let attrs = json!({"churn_risk": 0.12, "geo": {"country": "SE"}});
    let reply: String = cmd("SESSION.ENRICH")
        .arg((key, "ATTRS", attrs.to_string(), "JOIN", 1, group))
        .query(con)?;
    let doc: Json = serde_json::from_str(&reply)?;
    println!(
        "ENRICH: interests={} segments={}",
        doc["interests"], doc["segments"]
    );
    assert_eq!(
        (doc["events"].as_i64(), doc["unique_items"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        doc["interests"][0]["category"], "hockey",
        "strongest interest first"
    );
    let weights = doc["interests"].as_array().expect("interests is an array");
    let total: f64 = weights.iter().filter_map(|i| i["weight"].as_f64()).sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to 1");
    let segments = doc["segments"].as_array().expect("segments is an array");
    assert!(segments.contains(&json!("interest:hockey")));
    assert!((0.0..=1.0).contains(&doc["engagement"].as_f64().unwrap_or(-1.0)));
    assert_eq!(doc["attrs"], attrs);
    assert_eq!(doc["groups"], json!([group]));

    // --- A catalog of content (module-global, not a key) and what to show this user next.
    let items: [(&str, f64, &[&str]); 5] = [
        ("article:1", 5.0, &["hockey", "sports"]), // seen: never surfaced
        ("article:2", 3.0, &["hockey"]),
        ("article:3", 4.0, &["golf"]),
        ("article:4", 1.0, &["cooking"]),
        ("article:5", 2.0, &["hockey"]), // seen: never surfaced
    ];
    for (item, score, cats) in items {
        let added: i64 = cmd("SESSION.CATALOG")
            .arg((
                "ADD",
                catalog,
                item,
                "SCORE",
                score,
                "CATEGORIES",
                cats.len(),
            ))
            .arg(cats)
            .arg(("TTL", 3600))
            .query(con)?;
        assert_eq!(added, 1, "a new item");
    }
    let info: BTreeMap<String, i64> = cmd("SESSION.CATALOG").arg(("INFO", catalog)).query(con)?;
    println!("CATALOG INFO: {info:?}");
    assert_eq!((info["items"], info["categories"]), (5, 4));

    // WITHSCORES: item and score alternate (a double in RESP3, a bulk string in RESP2); a
    // Vec of pairs takes either.
    let picks: Vec<(String, f64)> = cmd("SESSION.SURFACE")
        .arg((key, "FROM", catalog, "COUNT", 3, "WITHSCORES"))
        .query(con)?;
    println!("SURFACE: {picks:?}");
    // article:2 wins: unseen, and in the user's strongest interest.
    let ids: Vec<&str> = picks.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["article:2", "article:3", "article:4"]);
    assert!(
        picks.windows(2).all(|w| w[0].1 > w[1].1),
        "scores descending"
    );

    // --- One notification to a whole group: O(1), idempotent by id.
    let mut publish = cmd("SESSION.NOTIFYGROUP");
    publish.arg((group, "promo-1", "50% off", "TTL", 300));
    assert_eq!(publish.query::<i64>(con)?, 1, "a new id is stored");
    assert_eq!(
        publish.query::<i64>(con)?,
        0,
        "a repeated id changes nothing"
    );

    // The next request sees it is pending. Shown here as the raw reply, which the typed
    // conversions above hide: a map in RESP3, a flat name/value array in RESP2.
    let raw: Value = cmd("SESSION.TOUCH").arg(key).query(con)?;
    assert!(matches!(
        (&raw, resp3),
        (Value::Map(_), true) | (Value::Array(_), false)
    ));
    let next: Touch = redis::from_redis_value(raw)?;
    assert_eq!(next["pending"], 1);

    // Each notification is a map of group, id, payload (strings) and published_ms (integer);
    // String takes the integer too.
    let inbox: Vec<BTreeMap<String, String>> = cmd("SESSION.INBOX").arg(key).query(con)?;
    println!("INBOX: {inbox:?}");
    assert_eq!(inbox.len(), 1);
    let note = &inbox[0];
    assert_eq!(
        (&*note["group"], &*note["id"], &*note["payload"]),
        (group, "promo-1", "50% off")
    );
    assert!(note["published_ms"].parse::<i64>()? > 0);
    let again: Vec<Value> = cmd("SESSION.INBOX").arg(key).query(con)?;
    assert!(again.is_empty(), "delivered exactly once");
    Ok(())
}
