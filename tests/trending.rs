//! Site-wide analytics: SESSION.TRENDING, SESSION.STATS, SURFACE ... BOOST TRENDING, cold start,
//! replication (a replica ends with identical analytics) and DEBUG RELOAD.

mod common;

use common::*;
use redis::{Connection, Value};

const HALF_LIFE_MS: i64 = 600_000; // the default session.trend-half-life

fn f(v: &Value) -> f64 {
    match v {
        Value::Double(d) => *d,
        Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        Value::SimpleString(s) => s.parse().unwrap(),
        Value::Int(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| String::from_utf8(bytes(i)).unwrap())
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn scored(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (String::from_utf8(bytes(&p[0])).unwrap(), f(&p[1])))
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn view(c: &mut Connection, session: &str, item: &str, at: i64) {
    ok(
        c,
        &[
            "SESSION.TOUCH",
            session,
            "EVENT",
            item,
            "AT",
            &at.to_string(),
        ],
    );
}

fn add(c: &mut Connection, catalog: &str, item: &str, score: &str, category: &str) {
    ok(
        c,
        &[
            "SESSION.CATALOG",
            "ADD",
            catalog,
            item,
            "SCORE",
            score,
            "CATEGORIES",
            "1",
            category,
        ],
    );
}

/// A clickstream at fixed times: 5 views of a, 3 of b, 1 of c at t0; 4 views of b a half-life on.
fn clickstream(c: &mut Connection, t0: i64) {
    for (item, n) in [("a", 5), ("b", 3), ("c", 1)] {
        for i in 0..n {
            view(c, &format!("s{i}"), item, t0);
        }
    }
    for i in 0..4 {
        view(c, &format!("u{i}"), "b", t0 + HALF_LIFE_MS);
    }
}

fn catalog(c: &mut Connection) {
    add(c, "shop", "a", "1", "golf");
    add(c, "shop", "b", "1", "hockey");
    add(c, "shop", "c", "1", "golf");
    add(c, "other", "a", "1", "x");
}

fn stats(c: &mut Connection, at: i64) -> Vec<(String, Value)> {
    pairs(ok(c, &["SESSION.STATS", "AT", &at.to_string()]))
        .into_iter()
        .map(|(k, v)| (String::from_utf8(bytes(&k)).unwrap(), v))
        .collect()
}

fn stat_int(s: &[(String, Value)], name: &str) -> i64 {
    match s.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
        Some(Value::Int(i)) => *i,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn trending_order_decay_category_and_stats() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    catalog(&mut c);
    let t0 = (now_ms() - 2 * HALF_LIFE_MS) / 60_000 * 60_000;
    clickstream(&mut c, t0);

    // exact decayed counts at t0 (the later views weigh 2 there: they lie a half-life ahead)
    let at0 = t0.to_string();
    let before: Vec<(String, f64)> = scored(ok(
        &mut c,
        &["SESSION.TRENDING", "shop", "WITHSCORES", "AT", &at0],
    ));
    assert_eq!(
        before,
        vec![("b".into(), 11.0), ("a".into(), 5.0), ("c".into(), 1.0)]
    );
    // a half-life on, everything halved: b 5.5, a 2.5, c 0.5
    let at1 = (t0 + HALF_LIFE_MS).to_string();
    let after = scored(ok(
        &mut c,
        &["SESSION.TRENDING", "shop", "WITHSCORES", "AT", &at1],
    ));
    assert_eq!(
        after,
        vec![("b".into(), 5.5), ("a".into(), 2.5), ("c".into(), 0.5)]
    );
    // CATEGORY, COUNT, and a catalog holding only some of the items
    assert_eq!(
        strings(ok(
            &mut c,
            &["SESSION.TRENDING", "shop", "CATEGORY", "golf"]
        )),
        ["a", "c"]
    );
    assert_eq!(
        strings(ok(&mut c, &["SESSION.TRENDING", "shop", "COUNT", "1"])),
        ["b"]
    );
    assert_eq!(strings(ok(&mut c, &["SESSION.TRENDING", "other"])), ["a"]);
    assert!(strings(ok(
        &mut c,
        &["SESSION.TRENDING", "shop", "CATEGORY", "none"]
    ))
    .is_empty());
    assert_eq!(
        err(&mut c, &["SESSION.TRENDING", "nope"]),
        "ERR no such catalog"
    );
    assert!(err(&mut c, &["SESSION.TRENDING", "shop", "COUNT", "0"]).starts_with("ERR"));
    assert!(err(&mut c, &["SESSION.TRENDING", "shop", "BOGUS"]).starts_with("ERR"));

    // STATS: 13 events; 9 in t0's minute, 4 ten minutes on; 9 distinct sessions over both
    let s = stats(&mut c, t0 + HALF_LIFE_MS);
    assert_eq!(stat_int(&s, "events"), 13);
    let views = match &s.iter().find(|(k, _)| k == "views_per_minute").unwrap().1 {
        Value::Array(v) => v.iter().map(|x| f(x) as i64).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(views.len(), 60);
    assert_eq!(views[59], 4, "the current minute is last");
    assert_eq!(views[49], 9);
    assert_eq!(views.iter().sum::<i64>(), 13);
    assert_eq!(stat_int(&s, "active"), 4, "u0..u3 in the last 5 minutes");
    // only the last 5 minutes' sketches are kept: t0's minute was reused ten minutes on
    assert_eq!(stat_int(&stats(&mut c, t0), "active"), 0);
    view(&mut c, "s0", "a", t0 + HALF_LIFE_MS + 60_000);
    assert_eq!(
        stat_int(&stats(&mut c, t0 + HALF_LIFE_MS + 60_000), "active"),
        5,
        "u0..u3 and s0 over two minutes"
    );
    assert_eq!(stat_int(&s, "trend_top_k"), 1000);
    // RESP3: a real map
    let mut c3 = server.conn_resp3();
    assert!(matches!(ok(&mut c3, &["SESSION.STATS"]), Value::Map(_)));
    // the reserved command refuses clients
    assert!(err(&mut c, &["SESSION.TRENDPARAMS", "16", "60", "AT", "1"]).contains("reserved"));
}

#[test]
fn boost_trending_and_cold_start() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // by score x1 > x2 > ... > x9 > hot
    for i in 1..10 {
        add(
            &mut c,
            "shop",
            &format!("x{i}"),
            &(20 - i).to_string(),
            "golf",
        );
    }
    add(&mut c, "shop", "hot", "1", "golf");
    let t = now_ms() - 1000;
    for i in 0..20 {
        view(&mut c, &format!("crowd{i}"), "hot", t);
    }
    view(&mut c, "crowd0", "x9", t);
    // a session interested in golf (views of items outside the catalog)
    for i in 0..3 {
        ok(
            &mut c,
            &[
                "SESSION.TOUCH",
                "me",
                "EVENT",
                &format!("page{i}"),
                "CATEGORIES",
                "1",
                "golf",
                "AT",
                &t.to_string(),
            ],
        );
    }
    let plain = scored(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "COUNT",
            "3",
            "NOMARK",
            "WITHSCORES",
        ],
    ));
    assert_eq!(
        plain.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["x1", "x2", "x3"],
        "a session with interests gets no trend unless asked"
    );
    // with a boost the trending unseen items within half the top's velocity trend lead (hot;
    // not x9: its one view is 1/20 of hot's, every view at the same time), then rank =
    // personal / best + w * trend / trend(top), personal = (a^1.5 + 0.02) / 1.02 *
    // (score / scale + 0.01) / 1.01 (a = 1 here: golf is the only interest), best = x1's = 1
    let personal = |score: f64| (score / 19.0 + 0.01) / 1.01;
    let boosted = scored(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "COUNT",
            "3",
            "BOOST",
            "TRENDING",
            "2",
            "NOMARK",
            "WITHSCORES",
        ],
    ));
    assert_eq!(
        boosted.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["hot", "x1", "x2"],
        "{boosted:?}"
    );
    assert!(
        (boosted[0].1 - (personal(1.0) + 2.0)).abs() < 1e-9,
        "{boosted:?}"
    );
    assert!((boosted[1].1 - 1.0).abs() < 1e-9, "{boosted:?}");
    // x9's one view: 2 * 1/20 on top of its own personal rank
    let all = scored(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "COUNT",
            "10",
            "BOOST",
            "TRENDING",
            "2",
            "NOMARK",
            "WITHSCORES",
        ],
    ));
    let x9 = all.iter().find(|p| p.0 == "x9").unwrap().1;
    assert!((x9 - (personal(11.0) + 0.1)).abs() < 1e-9, "{x9}");
    // BOOST TRENDING 0 = no trend; CATEGORY named BOOST stays a category
    let zero = scored(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "COUNT",
            "1",
            "BOOST",
            "TRENDING",
            "0",
            "NOMARK",
            "WITHSCORES",
        ],
    ));
    assert_eq!(zero[0].0, "x1");
    assert!(strings(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "CATEGORY",
            "BOOST",
            "NOMARK"
        ]
    ))
    .is_empty());
    assert!(err(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "BOOST",
            "TRENDING",
            "-1"
        ]
    )
    .starts_with("ERR"));
    assert!(err(
        &mut c,
        &[
            "SESSION.SURFACE",
            "me",
            "FROM",
            "shop",
            "BOOST",
            "POPULAR",
            "1"
        ]
    )
    .starts_with("ERR"));
    assert!(err(
        &mut c,
        &["SESSION.SURFACE", "me", "FROM", "shop", "BOOST", "TRENDING"]
    )
    .starts_with("ERR"));

    // cold start: the catalog's best by default; with session.cold-start-trend 1 the trending
    // item leads (hot = 1/19 + 1, then x1 = 1, ahead of x9 = 11/19 + 1/20: no slot at 1/20)
    assert_eq!(
        strings(ok(
            &mut c,
            &["SESSION.SURFACE", "nobody", "FROM", "shop", "COUNT", "2"]
        )),
        ["x1", "x2"]
    );
    ok(&mut c, &["CONFIG", "SET", "session.cold-start-trend", "1"]);
    let cold = strings(ok(
        &mut c,
        &["SESSION.SURFACE", "nobody", "FROM", "shop", "COUNT", "2"],
    ));
    assert_eq!(cold, ["hot", "x1"]);
    // a session without interests is a cold start as well (it saw x9 only)
    let crowd = strings(ok(
        &mut c,
        &[
            "SESSION.SURFACE",
            "crowd1",
            "FROM",
            "shop",
            "COUNT",
            "1",
            "NOMARK",
        ],
    ));
    assert_eq!(
        crowd,
        ["x1"],
        "crowd1 saw hot, which still sets the bar: x9 gets no trend slot"
    );
}

fn snapshot(c: &mut Connection, at: i64) -> (Value, Vec<(String, Value)>) {
    let t = ok(
        c,
        &[
            "SESSION.TRENDING",
            "shop",
            "COUNT",
            "100",
            "WITHSCORES",
            "AT",
            &at.to_string(),
        ],
    );
    (t, stats(c, at))
}

#[test]
fn replica_ends_identical_and_reload_keeps_analytics() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    // the primary's sizing, not the replica's, decides (a small K evicts)
    ok(&mut p, &["CONFIG", "SET", "session.trend-top-k", "16"]);
    ok(&mut p, &["CONFIG", "SET", "session.trend-half-life", "60"]);
    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    for i in 0..40 {
        add(
            &mut p,
            "shop",
            &format!("i{i}"),
            "1",
            if i % 2 == 0 { "even" } else { "odd" },
        );
    }
    let t0 = now_ms() - 600_000;
    let mut x: u64 = 7;
    for n in 0..600i64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let item = (x >> 33) % 40 % (1 + (n as u64 / 50));
        view(
            &mut p,
            &format!("s{}", x % 97),
            &format!("i{item}"),
            t0 + n * 1000,
        );
    }
    // touches without AT replicate the primary's time
    for i in 0..5 {
        ok(
            &mut p,
            &["SESSION.TOUCH", &format!("late{i}"), "EVENT", "i3"],
        );
    }
    let _: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut p).unwrap();
    let at = now_ms();
    let on_primary = snapshot(&mut p, at);
    assert_eq!(stat_int(&on_primary.1, "trend_top_k"), 16);
    assert_eq!(stat_int(&on_primary.1, "events"), 605);
    assert_eq!(on_primary, snapshot(&mut r, at), "replica identical");
    assert!(stat_int(&on_primary.1, "trend_top_k") != 1000);

    // a sizing change on the primary reaches the replica ahead of the next event
    ok(&mut p, &["CONFIG", "SET", "session.trend-top-k", "20"]);
    view(&mut p, "s1", "i39", now_ms());
    let _: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut p).unwrap();
    let at = now_ms();
    let on_primary = snapshot(&mut p, at);
    assert_eq!(stat_int(&on_primary.1, "trend_top_k"), 20);
    assert_eq!(on_primary, snapshot(&mut r, at));

    // DEBUG RELOAD: saved and loaded with the registry
    ok(&mut p, &["DEBUG", "RELOAD"]);
    assert_eq!(snapshot(&mut p, at), on_primary, "analytics survive RDB");
}

/// A newly rising item takes the trend slot from the item that still leads the decayed counts
/// (SESSION.TRENDING's order), by its velocity (its fast counter); a replica answers the same and
/// the fast counters survive DEBUG RELOAD (with the counters alone, as a format-5 load assumes,
/// the old leader would win the slot).
#[test]
fn boost_prefers_the_rising_item_on_a_replica_and_after_reload() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    ok(&mut p, &["CONFIG", "SET", "session.trend-half-life", "60"]);
    let replica = Server::replica_of(&primary);
    let mut r = replica.conn();
    for i in 1..4 {
        add(
            &mut p,
            "shop",
            &format!("x{i}"),
            &(20 - i).to_string(),
            "golf",
        );
    }
    add(&mut p, "shop", "old", "1", "golf");
    add(&mut p, "shop", "new", "1", "golf");
    // one view a second: old for 120 s, then new from 130 s to 150 s; now is 50 s later
    let t0 = now_ms() - 200_000;
    for s in 0..=150i64 {
        if s <= 120 {
            view(&mut p, &format!("a{s}"), "old", t0 + s * 1000);
        }
        if s >= 130 {
            view(&mut p, &format!("b{s}"), "new", t0 + s * 1000);
        }
    }
    for i in 0..3 {
        ok(
            &mut p,
            &[
                "SESSION.TOUCH",
                "me",
                "EVENT",
                &format!("page{i}"),
                "CATEGORIES",
                "1",
                "golf",
                "AT",
                &t0.to_string(),
            ],
        );
    }
    let _: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut p).unwrap();
    let top = strings(ok(&mut p, &["SESSION.TRENDING", "shop", "COUNT", "2"]));
    assert_eq!(top, ["old", "new"], "old leads the decayed counts");
    let ask = |c: &mut Connection, cmd: &str| {
        strings(ok(
            c,
            &[
                cmd, "me", "FROM", "shop", "COUNT", "3", "BOOST", "TRENDING", "1", "NOMARK",
            ],
        ))
    };
    let boosted = ask(&mut p, "SESSION.SURFACE");
    assert_eq!(boosted, ["new", "x1", "x2"], "the riser, and only it");
    assert_eq!(ask(&mut r, "SESSION.SURFACE_RO"), boosted, "replica");
    ok(&mut p, &["DEBUG", "RELOAD"]);
    assert_eq!(ask(&mut p, "SESSION.SURFACE"), boosted, "after RDB");
}
