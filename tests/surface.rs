//! `SESSION.SURFACE` and `SESSION.CATALOG` against a real server: never a seen item, personal
//! ranking that beats score-only ranking, the exploration share, impression caps, filters, cold
//! start, errors, the catalog commands, and the registry through DEBUG RELOAD, RDB, AOF and
//! replication.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::thread::sleep;
use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use redis::{Connection, Value};

/// Commands per pipelined round trip.
const BATCH: usize = 1_000;
/// The catalog most tests use.
const CATALOG: &str = "news";
/// A key that never exists: cold-start surfacing.
const NOBODY: &str = "nobody";

// ---------------------------------------------------------------------------------------------
// Helpers

/// One catalog item as the test created it: the reference the answers are checked against.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    score: f64,
    categories: Vec<String>,
}

impl Item {
    fn has(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
}

fn category(n: usize) -> String {
    format!("cat{n}")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `n` items `item:<i>` with random scores in [0, 1000) and 1..=`per_item` distinct categories
/// out of `categories`.
fn random_items(rng: &mut StdRng, n: usize, categories: usize, per_item: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            let k = rng.gen_range(1..=per_item);
            let mut cats: Vec<String> = rand::seq::index::sample(rng, categories, k)
                .into_iter()
                .map(category)
                .collect();
            cats.sort();
            Item {
                id: format!("item:{i}"),
                score: rng.gen_range(0.0..1000.0),
                categories: cats,
            }
        })
        .collect()
}

/// Runs commands pipelined, `BATCH` per round trip; every one must succeed.
fn run(conn: &mut Connection, commands: &[Vec<String>]) -> Vec<Value> {
    let mut replies = Vec::with_capacity(commands.len());
    for chunk in commands.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for args in chunk {
            pipe.add_command(command(args));
        }
        let batch: Vec<Value> = pipe
            .query(conn)
            .unwrap_or_else(|e| panic!("pipelined commands failed: {e}"));
        replies.extend(batch);
    }
    replies
}

/// `SESSION.CATALOG ADD catalog item SCORE s [CATEGORIES n c ...] [extra ...]`.
fn add_args(catalog: &str, item: &Item, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&["SESSION.CATALOG", "ADD", catalog, &item.id, "SCORE"]);
    args.push(item.score.to_string());
    if !item.categories.is_empty() {
        args.push("CATEGORIES".into());
        args.push(item.categories.len().to_string());
        args.extend(item.categories.iter().cloned());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Adds `items` (all new) to `catalog`, pipelined.
fn load_catalog(conn: &mut Connection, catalog: &str, items: &[Item]) {
    let commands: Vec<Vec<String>> = items.iter().map(|i| add_args(catalog, i, &[])).collect();
    let replies = run(conn, &commands);
    assert!(
        replies.iter().all(|r| *r == Value::Int(1)),
        "every item of {catalog} is new"
    );
}

/// `SESSION.TOUCH key EVENT item CATEGORIES n c ...`: `key` views `item`.
fn view_args(key: &str, item: &Item) -> Vec<String> {
    let mut args = strings(&["SESSION.TOUCH", key, "EVENT", &item.id]);
    if !item.categories.is_empty() {
        args.push("CATEGORIES".into());
        args.push(item.categories.len().to_string());
        args.extend(item.categories.iter().cloned());
    }
    args
}

/// Records the views (pipelined), checking every reply's shape.
fn record_views(conn: &mut Connection, views: &[Vec<String>]) {
    for reply in run(conn, views) {
        touch_map(reply);
    }
}

fn surface_args(key: &str, catalog: &str, options: &[&str]) -> Vec<String> {
    let mut args = strings(&["SESSION.SURFACE", key, "FROM", catalog]);
    args.extend(options.iter().map(|s| s.to_string()));
    args
}

/// An array reply of UTF-8 strings.
fn ids(reply: Value) -> Vec<String> {
    match reply {
        Value::Array(items) => items
            .iter()
            .map(|v| String::from_utf8(bytes(v)).expect("a UTF-8 item id"))
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn surface(conn: &mut Connection, key: &str, catalog: &str, options: &[&str]) -> Vec<String> {
    ids(ok(conn, &surface_args(key, catalog, options)))
}

/// A `WITHSCORES` reply as (item, score) pairs; scores are bulk strings (RESP2) or doubles (RESP3).
fn scored(reply: Value) -> Vec<(String, f64)> {
    let Value::Array(flat) = reply else {
        panic!("expected an array, got {reply:?}");
    };
    assert!(flat.len() % 2 == 0, "item and score alternate: {flat:?}");
    flat.chunks(2)
        .map(|pair| {
            let id = String::from_utf8(bytes(&pair[0])).expect("a UTF-8 item id");
            let score = match &pair[1] {
                Value::Double(d) => *d,
                other => String::from_utf8(bytes(other))
                    .expect("UTF-8 score")
                    .parse()
                    .expect("a score"),
            };
            (id, score)
        })
        .collect()
}

/// The ids of the `n` best-scored items that `keep` accepts, best first.
fn top_by_score(items: &[Item], n: usize, keep: impl Fn(&Item) -> bool) -> Vec<String> {
    let mut kept: Vec<&Item> = items.iter().filter(|i| keep(i)).collect();
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept.iter().take(n).map(|i| i.id.clone()).collect()
}

/// `SESSION.CATALOG INFO catalog` as name -> integer.
fn catalog_info(conn: &mut Connection, catalog: &str) -> HashMap<String, i64> {
    pairs(ok(conn, &["SESSION.CATALOG", "INFO", catalog]))
        .into_iter()
        .map(|(name, value)| {
            let name = String::from_utf8(bytes(&name)).expect("UTF-8 name");
            match value {
                Value::Int(i) => (name, i),
                other => panic!("CATALOG INFO {name} is not an integer: {other:?}"),
            }
        })
        .collect()
}

fn catalog_list(conn: &mut Connection) -> Vec<String> {
    ids(ok(conn, &["SESSION.CATALOG", "LIST"]))
}

/// A field of `INFO session` (the server prefixes module fields with the module name).
fn session_stat(conn: &mut Connection, name: &str) -> i64 {
    info_field(conn, "session", &format!("session_{name}"))
        .unwrap_or_else(|| panic!("INFO session lacks session_{name}"))
        .parse()
        .expect("an integer")
}

/// `WAIT 1`: the replica has processed everything the primary sent.
fn wait_for_replica(primary: &mut Connection) {
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(60_000)
        .query(primary)
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica acknowledged the stream");
}

/// Makes the running `replica` replicate `primary` and waits for the full sync.
fn attach(replica: &Server, primary: &Server) {
    config_set(&mut primary.conn(), "repl-diskless-sync-delay", "0");
    let mut c = replica.conn();
    ok(
        &mut c,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    );
    wait_until(PATIENCE, "the replica's full sync", || {
        info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut c, "replication", "master_sync_in_progress").as_deref() == Some("0")
    });
}

/// Sleeps until this machine's clock passes `deadline_ms` (a wait, never an assertion on time).
fn sleep_past(deadline_ms: i64) {
    while now_ms() <= deadline_ms {
        sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Registry fixture for persistence and replication

/// Catalogs and sessions that exercise every part of the registry's saved form: replaced, deleted
/// and re-added items (slot reuse), expiring items (TTL and EXPIREAT, far in the future), negative
/// and extreme scores, binary ids and categories, an emptied catalog and a dropped one. Returns
/// the keys of sessions with views and impressions.
fn build_registry(conn: &mut Connection, rng: &mut StdRng) -> Vec<String> {
    let news = random_items(rng, 2_000, 8, 3);
    load_catalog(conn, "news", &news);
    let mut commands = Vec::new();
    for item in &news[..100] {
        let replaced = Item {
            score: rng.gen_range(-500.0..500.0),
            categories: vec![category(rng.gen_range(0..8))],
            ..item.clone()
        };
        commands.push(add_args("news", &replaced, &[]));
    }
    for chunk in news[100..300].chunks(20) {
        let mut del = strings(&["SESSION.CATALOG", "DEL", "news"]);
        del.extend(chunk.iter().map(|i| i.id.clone()));
        commands.push(del);
    }
    for item in &news[200..250] {
        commands.push(add_args("news", item, &[]));
    }
    for item in &news[300..320] {
        commands.push(add_args("news", item, &["TTL", "3600"]));
    }
    let far = (now_ms() + 86_400_000).to_string();
    for item in &news[320..340] {
        commands.push(add_args("news", item, &["EXPIREAT", &far]));
    }
    run(conn, &commands);

    let mut shop = random_items(rng, 300, 4, 1);
    for item in &mut shop {
        item.score -= 600.0;
    }
    load_catalog(conn, "shop", &shop);

    let odd: [&[&[u8]]; 7] = [
        &[
            b"bin\x00\xff",
            b"SCORE",
            b"1e300",
            b"CATEGORIES",
            b"2",
            b"\x00\xfe",
            b"x",
        ],
        &[b"neg", b"SCORE", b"-1e300", b"CATEGORIES", b"1", b"x"],
        &[b"tenth", b"SCORE", b"0.1", b"CATEGORIES", b"1", b"x"],
        &[b"third", b"SCORE", b"0.3333333333333333"],
        &[
            b"tiny",
            b"SCORE",
            b"5e-324",
            b"CATEGORIES",
            b"1",
            b"\x00\xfe",
        ],
        &[b"zero"],
        &[
            b"caf\xc3\xa9 \xe2\x98\x95",
            b"SCORE",
            b"2.5e299",
            b"TTL",
            b"7200",
        ],
    ];
    for rest in odd {
        let mut args: Vec<&[u8]> = vec![b"SESSION.CATALOG", b"ADD", b"odd"];
        args.extend_from_slice(rest);
        assert_eq!(ok(conn, &args), Value::Int(1));
    }

    ok(
        conn,
        &["SESSION.CATALOG", "ADD", "emptied", "a", "SCORE", "1"],
    );
    ok(
        conn,
        &["SESSION.CATALOG", "ADD", "emptied", "b", "SCORE", "2"],
    );
    ok(conn, &["SESSION.CATALOG", "DEL", "emptied", "a", "b"]);
    ok(conn, &["SESSION.CATALOG", "ADD", "dropped", "a"]);
    ok(conn, &["SESSION.CATALOG", "DROP", "dropped"]);

    let sessions: Vec<String> = (0..10).map(|s| format!("saved:{s}")).collect();
    let mut views = Vec::new();
    for key in &sessions {
        for item in news.choose_multiple(rng, 40) {
            views.push(view_args(key, item));
        }
    }
    record_views(conn, &views);
    for key in &sessions {
        let shown: Vec<String> = news.choose_multiple(rng, 5).map(|i| i.id.clone()).collect();
        let mut args = strings(&["SESSION.IMPRESS", key, "5"]);
        args.extend(shown);
        ok(conn, &args);
    }
    sessions
}

/// Everything the registry shows: LIST, each catalog's item and category counts, and what each
/// session (and a cold start) is surfaced from each catalog, with scores, deterministically.
fn registry_snapshot(conn: &mut Connection, sessions: &[String]) -> Vec<Value> {
    let list = ok(conn, &["SESSION.CATALOG", "LIST"]);
    let mut out = vec![list.clone()];
    for name in ids(list) {
        let info = catalog_info(conn, &name);
        out.push(Value::Int(info["items"]));
        out.push(Value::Int(info["categories"]));
        for key in sessions.iter().map(String::as_str).chain([NOBODY]) {
            let options = ["COUNT", "50", "EXPLORE", "0", "NOMARK", "WITHSCORES"];
            out.push(ok(conn, &surface_args(key, &name, &options)));
            let options = [
                "COUNT",
                "5",
                "CATEGORY",
                "x",
                "MAXIMPRESSIONS",
                "1",
                "NOMARK",
            ];
            out.push(ok(conn, &surface_args(key, &name, &options)));
            let options = ["COUNT", "20", "CATEGORY", "cat1", "WITHSCORES", "NOMARK"];
            out.push(ok(conn, &surface_args(key, &name, &options)));
        }
    }
    out
}

/// The registry's observable content on `a` and `b` is the same (LIST, item and category counts).
fn assert_same_catalogs(a: &mut Connection, b: &mut Connection) {
    let names = catalog_list(a);
    assert_eq!(names, catalog_list(b), "catalog names");
    for name in &names {
        let (x, y) = (catalog_info(a, name), catalog_info(b, name));
        assert_eq!(
            (x["items"], x["categories"]),
            (y["items"], y["categories"]),
            "catalog {name}"
        );
    }
}

/// Builds the fixture on `server`, applies `reload`, and checks the registry reads the same.
fn registry_survives(mut server: Server, seed: u64, reload: impl FnOnce(&mut Server)) {
    let mut rng = seeded_rng(seed);
    let mut c = server.conn();
    let sessions = build_registry(&mut c, &mut rng);
    // a catalog exists while it holds items: "emptied" went with its last item
    assert_eq!(catalog_list(&mut c), ["news", "odd", "shop"]);
    let before = registry_snapshot(&mut c, &sessions);
    drop(c);
    reload(&mut server);
    let mut c = server.conn();
    assert_eq!(
        catalog_list(&mut c),
        ["news", "odd", "shop"],
        "catalogs after reloading"
    );
    let after = registry_snapshot(&mut c, &sessions);
    assert_eq!(before.len(), after.len());
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "registry snapshot entry {i} differs after reloading");
    }
    assert_eq!(session_stat(&mut c, "catalogs"), 3);
}

// ---------------------------------------------------------------------------------------------
// Ranking

/// 50 sessions viewed 300..2,000 items each of a 5,000-item catalog, the 200 best-scored ones
/// included; 10,000 SURFACE calls mixing COUNT, CATEGORY, EXPLORE 0.3 and NOMARK never return an
/// item the session viewed, never repeat an item in one reply, honour CATEGORY, and fill COUNT
/// whenever enough unseen items exist.
#[test]
fn never_returns_a_seen_item() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(101);
    let items = random_items(&mut rng, 5_000, 10, 2);
    load_catalog(&mut c, CATALOG, &items);
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id.as_str(), i))
        .collect();
    let categories: Vec<String> = (0..10).map(category).collect();
    let members: Vec<Vec<usize>> = categories
        .iter()
        .map(|cat| (0..items.len()).filter(|&i| items[i].has(cat)).collect())
        .collect();
    let mut ranked: Vec<usize> = (0..items.len()).collect();
    ranked.sort_by(|&a, &b| items[b].score.total_cmp(&items[a].score));
    let best = &ranked[..200];

    // Each session views the best items, then half from one favourite category, half anywhere.
    let sessions = 50;
    let mut viewed: Vec<BTreeSet<usize>> = Vec::new();
    let mut views = Vec::new();
    for s in 0..sessions {
        let key = format!("reader:{s}");
        let target = rng.gen_range(300..=2_000);
        let favourite = &members[s % categories.len()];
        let mut seen: BTreeSet<usize> = best.iter().copied().collect();
        while seen.len() < target {
            seen.insert(if rng.gen_bool(0.5) {
                *favourite.choose(&mut rng).expect("a member")
            } else {
                rng.gen_range(0..items.len())
            });
        }
        let mut order: Vec<usize> = seen.iter().copied().collect();
        order.shuffle(&mut rng);
        views.extend(order.iter().map(|&i| view_args(&key, &items[i])));
        viewed.push(seen);
    }
    record_views(&mut c, &views);

    struct Call {
        session: usize,
        count: usize,
        category: Option<usize>,
    }
    let mut calls = Vec::new();
    let mut commands = Vec::new();
    for _ in 0..10_000 {
        let session = rng.gen_range(0..sessions);
        let mut options: Vec<String> = Vec::new();
        let count = if rng.gen_bool(0.7) {
            let n = rng.gen_range(1..=20);
            options.extend(["COUNT".into(), n.to_string()]);
            n
        } else {
            10
        };
        let category = rng
            .gen_bool(0.3)
            .then(|| rng.gen_range(0..categories.len()));
        if let Some(k) = category {
            options.extend(["CATEGORY".into(), categories[k].clone()]);
        }
        if rng.gen_bool(0.3) {
            options.extend(["EXPLORE".into(), "0.3".into()]);
        }
        if rng.gen_bool(0.5) {
            options.push("NOMARK".into());
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        commands.push(surface_args(
            &format!("reader:{session}"),
            CATALOG,
            &options,
        ));
        calls.push(Call {
            session,
            count,
            category,
        });
    }
    let replies = run(&mut c, &commands);

    let mut returned = 0;
    for ((call, args), reply) in calls.iter().zip(&commands).zip(replies) {
        let got = ids(reply);
        let seen = &viewed[call.session];
        let mut distinct = HashSet::new();
        for id in &got {
            let i = *index
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{id} is not in the catalog"));
            assert!(
                !seen.contains(&i),
                "reader:{} was surfaced {id}, which it viewed: {args:?}",
                call.session
            );
            assert!(distinct.insert(i), "{id} twice in one reply: {got:?}");
            if let Some(k) = call.category {
                assert!(items[i].has(&categories[k]), "{id} lacks {}", categories[k]);
            }
        }
        // Enough unseen candidates that the seen filter's false positives cannot empty them.
        let unseen = match call.category {
            Some(k) => members[k].iter().filter(|i| !seen.contains(i)).count(),
            None => items.len() - seen.len(),
        };
        if unseen >= call.count + 100 {
            assert_eq!(got.len(), call.count, "a full reply: {got:?}");
        } else {
            assert!(got.len() <= call.count);
        }
        returned += got.len();
    }
    println!(
        "{} views, {sessions} sessions: 10,000 SURFACE calls returned {returned} items, none seen",
        views.len()
    );
}

/// Users with a planted preference (60% of their 120 events in one category, scores unrelated to
/// categories): personal ranking puts at least twice the share of surfaced items in the preferred
/// category than ranking by score alone does.
#[test]
fn personal_ranking_beats_score_only_ranking() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(102);
    let categories = 10;
    let items = random_items(&mut rng, 10_000, categories, 1);
    load_catalog(&mut c, CATALOG, &items);
    let members: Vec<Vec<usize>> = (0..categories)
        .map(|k| {
            (0..items.len())
                .filter(|&i| items[i].has(&category(k)))
                .collect()
        })
        .collect();

    let users = 40;
    let mut viewed: Vec<HashSet<String>> = Vec::new();
    let mut views = Vec::new();
    for u in 0..users {
        let key = format!("user:{u}");
        let preferred = u % categories;
        let mut picks: Vec<usize> = members[preferred]
            .choose_multiple(&mut rng, 72)
            .copied()
            .collect();
        while picks.len() < 120 {
            let other = (preferred + rng.gen_range(1..categories)) % categories;
            picks.push(*members[other].choose(&mut rng).expect("a member"));
        }
        picks.shuffle(&mut rng);
        views.extend(picks.iter().map(|&i| view_args(&key, &items[i])));
        viewed.push(picks.iter().map(|&i| items[i].id.clone()).collect());
    }
    record_views(&mut c, &views);

    let by_id: HashMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    let share = |list: &[String], preferred: &str| {
        list.iter()
            .filter(|id| by_id[id.as_str()].has(preferred))
            .count()
    };
    let cold = surface(&mut c, NOBODY, CATALOG, &["COUNT", "10", "NOMARK"]);
    assert_eq!(cold, top_by_score(&items, 10, |_| true), "cold start");
    let (mut personal, mut score_only, mut cold_hits, mut total) = (0, 0, 0, 0);
    for (u, seen) in viewed.iter().enumerate() {
        let preferred = category(u % categories);
        let got = surface(
            &mut c,
            &format!("user:{u}"),
            CATALOG,
            &["COUNT", "10", "NOMARK"],
        );
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|id| !seen.contains(id)), "a seen item");
        personal += share(&got, &preferred);
        let baseline = top_by_score(&items, 10, |i| !seen.contains(&i.id));
        score_only += share(&baseline, &preferred);
        cold_hits += share(&cold, &preferred);
        total += 10;
    }
    let ratio = |n: usize| n as f64 / total as f64;
    println!(
        "preferred-category share: personal {:.3}, score-only (unseen) {:.3}, cold start {:.3}",
        ratio(personal),
        ratio(score_only),
        ratio(cold_hits)
    );
    assert!(ratio(personal) >= 0.5, "personal share {}", ratio(personal));
    assert!(
        personal >= 2 * score_only,
        "personal {personal} vs score-only {score_only} of {total}"
    );
}

/// EXPLORE 0 returns exactly the same deterministic list on every call; EXPLORE 0.2 fills about a
/// fifth of the slots with unseen items from outside that list, and keeps the ranked items in
/// their order.
#[test]
fn explore_takes_its_share_of_the_slots() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(103);
    let items = random_items(&mut rng, 10_000, 10, 2);
    load_catalog(&mut c, CATALOG, &items);
    let views: Vec<Vec<String>> = items
        .choose_multiple(&mut rng, 200)
        .map(|i| view_args("explorer", i))
        .collect();
    record_views(&mut c, &views);
    let viewed: HashSet<&str> = views.iter().map(|v| v[3].as_str()).collect();
    let none = HashSet::new();

    for key in ["explorer", NOBODY] {
        let seen = if key == NOBODY { &none } else { &viewed };
        let top = surface(&mut c, key, CATALOG, &["COUNT", "10", "NOMARK"]);
        assert_eq!(top.len(), 10);
        let again: Vec<Vec<String>> = (0..50)
            .map(|_| surface_args(key, CATALOG, &["COUNT", "10", "EXPLORE", "0", "NOMARK"]))
            .collect();
        for reply in run(&mut c, &again) {
            assert_eq!(ids(reply), top, "EXPLORE 0 is deterministic for {key}");
        }

        let calls: Vec<Vec<String>> = (0..500)
            .map(|_| surface_args(key, CATALOG, &["COUNT", "10", "EXPLORE", "0.2", "NOMARK"]))
            .collect();
        let (mut outside, mut total) = (0, 0);
        let mut explored = HashSet::new();
        for reply in run(&mut c, &calls) {
            let got = ids(reply);
            assert_eq!(got.len(), 10);
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), 10, "distinct");
            assert!(got.iter().all(|id| !seen.contains(id.as_str())));
            let ranked: Vec<&String> = got.iter().filter(|id| top.contains(id)).collect();
            let in_order: Vec<&String> = top.iter().filter(|id| ranked.contains(id)).collect();
            assert_eq!(ranked, in_order, "ranked items keep their order");
            for id in got.iter().filter(|id| !top.contains(id)) {
                outside += 1;
                explored.insert(id.clone());
            }
            total += got.len();
        }
        let share = outside as f64 / total as f64;
        println!(
            "{key}: EXPLORE 0.2 share outside the top list {share:.3} ({outside}/{total}), {} ids",
            explored.len()
        );
        assert!((0.12..=0.28).contains(&share), "explore share {share}");
        assert!(explored.len() > 100, "exploration is random");

        // EXPLORE 1: every slot is random, still unseen and distinct
        let got = surface(
            &mut c,
            key,
            CATALOG,
            &["COUNT", "20", "EXPLORE", "1", "NOMARK"],
        );
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 20);
        assert!(got.iter().all(|id| !seen.contains(id.as_str())));
    }
}

/// MAXIMPRESSIONS n: an item is returned at most n times across calls; without the option
/// impressions do not filter. NOMARK records nothing (the value is unchanged); IMPRESS records
/// impressions that the cap then sees.
#[test]
fn max_impressions_caps_repeats_and_nomark_records_nothing() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(104);
    let items = random_items(&mut rng, 40, 4, 2);
    load_catalog(&mut c, CATALOG, &items);
    let top = top_by_score(&items, 40, |_| true);

    touch(&mut c, "capped", &["EVENT", "elsewhere"]);
    let mut shown: HashMap<String, u32> = HashMap::new();
    let mut calls = 0;
    loop {
        let got = surface(
            &mut c,
            "capped",
            CATALOG,
            &["COUNT", "7", "MAXIMPRESSIONS", "2"],
        );
        if got.is_empty() {
            break;
        }
        calls += 1;
        assert!(calls <= 40, "the cap never exhausted the catalog");
        for id in got {
            *shown.entry(id).or_default() += 1;
        }
    }
    assert!(
        shown.values().all(|&n| n <= 2),
        "shown more than twice: {shown:?}"
    );
    let twice = shown.values().filter(|&&n| n == 2).count();
    println!("MAXIMPRESSIONS 2: {twice} of 40 items shown twice in {calls} calls");
    assert!(
        twice >= 36,
        "the count-min sketch overcounts rarely: {shown:?}"
    );
    // without a cap (or with a higher one) impressions do not filter
    assert_eq!(
        surface(&mut c, "capped", CATALOG, &["COUNT", "7"]),
        top[..7]
    );
    assert_eq!(
        surface(
            &mut c,
            "capped",
            CATALOG,
            &["COUNT", "7", "MAXIMPRESSIONS", "3", "NOMARK"]
        )
        .len(),
        7
    );

    // NOMARK changes nothing: same list every time, same value, same expiry
    touch(&mut c, "quiet", &["EVENT", "elsewhere"]);
    let digest = digest_value(&mut c, "quiet");
    let deadline = pexpiretime(&mut c, "quiet");
    let capped_once = ["COUNT", "5", "MAXIMPRESSIONS", "1"];
    let nomark = ["COUNT", "5", "MAXIMPRESSIONS", "1", "NOMARK"];
    for _ in 0..5 {
        assert_eq!(surface(&mut c, "quiet", CATALOG, &nomark), top[..5]);
    }
    assert_eq!(
        digest_value(&mut c, "quiet"),
        digest,
        "NOMARK changed the session"
    );
    assert_eq!(pexpiretime(&mut c, "quiet"), deadline);
    // a marking call records: the next call with MAXIMPRESSIONS 1 skips those five
    assert_eq!(surface(&mut c, "quiet", CATALOG, &capped_once), top[..5]);
    assert_ne!(
        digest_value(&mut c, "quiet"),
        digest,
        "impressions recorded"
    );
    assert_eq!(surface(&mut c, "quiet", CATALOG, &nomark), top[5..10]);

    // IMPRESS records impressions the cap then sees
    touch(&mut c, "told", &["EVENT", "elsewhere"]);
    let impress = |c: &mut Connection, ids: &[&String]| {
        let mut args = strings(&["SESSION.IMPRESS", "told", &ids.len().to_string()]);
        args.extend(ids.iter().map(|s| s.to_string()));
        ok(c, &args)
    };
    let before = digest_value(&mut c, "told");
    assert_eq!(impress(&mut c, &[&top[0], &top[1]]), Value::Int(2));
    assert_ne!(digest_value(&mut c, "told"), before);
    let surfaced = |c: &mut Connection, cap: &str| {
        surface(
            c,
            "told",
            CATALOG,
            &["COUNT", "5", "MAXIMPRESSIONS", cap, "NOMARK"],
        )
    };
    assert_eq!(surfaced(&mut c, "1"), top[2..7]);
    assert_eq!(surfaced(&mut c, "2"), top[..5]);
    assert_eq!(impress(&mut c, &[&top[0]]), Value::Int(1));
    assert_eq!(surfaced(&mut c, "2"), top[1..6]);
    assert_eq!(surfaced(&mut c, "3"), top[..5]);
    // IMPRESS on a missing session records nothing and creates nothing
    assert_eq!(
        ok(&mut c, &["SESSION.IMPRESS", "ghost", "1", "a"]),
        Value::Int(0)
    );
    assert!(!exists(&mut c, "ghost"));
    ok(&mut c, &["SET", "plain", "v"]);
    assert!(err(&mut c, &["SESSION.IMPRESS", "plain", "1", "a"]).starts_with("WRONGTYPE"));
    assert!(err(&mut c, &["SESSION.IMPRESS", "told", "2", "a"]).starts_with("ERR"));
    assert!(err(&mut c, &["SESSION.IMPRESS", "told", "1", "a", "WIDTH", "8"]).starts_with("ERR"));
}

/// Frequency capping keeps working for a long session: after 1,500 items were each shown once,
/// MAXIMPRESSIONS 1 still returns full pages from the 8,500 never shown.
#[test]
fn max_impressions_keeps_surfacing_never_shown_items() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(119);
    let items = random_items(&mut rng, 10_000, 10, 2);
    load_catalog(&mut c, CATALOG, &items);
    touch(&mut c, "scroller", &["EVENT", "elsewhere"]);
    let mut shown = HashSet::new();
    for page in 0..150 {
        let got = surface(
            &mut c,
            "scroller",
            CATALOG,
            &["COUNT", "10", "MAXIMPRESSIONS", "1"],
        );
        assert_eq!(
            got.len(),
            10,
            "page {page}: {} items shown once so far, {} never shown",
            shown.len(),
            items.len() - shown.len()
        );
        for id in got {
            assert!(shown.insert(id), "shown twice despite MAXIMPRESSIONS 1");
        }
    }
}

/// A session that viewed the 4,500 best items (views without categories, so no interests) of a
/// 10,000-item catalog still gets the best unseen ones, also with CATEGORY.
#[test]
fn a_heavy_viewer_still_gets_unseen_items() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(120);
    let mut items = random_items(&mut rng, 10_000, 1, 1);
    items.sort_by(|a, b| b.score.total_cmp(&a.score));
    load_catalog(&mut c, CATALOG, &items);
    let views: Vec<Vec<String>> = items[..4_500]
        .iter()
        .map(|i| strings(&["SESSION.TOUCH", "heavy", "EVENT", &i.id]))
        .collect();
    record_views(&mut c, &views);
    let seen: HashSet<&str> = items[..4_500].iter().map(|i| i.id.as_str()).collect();
    for options in [&["NOMARK"][..], &["CATEGORY", "cat0", "NOMARK"]] {
        let got = surface(&mut c, "heavy", CATALOG, options);
        assert_eq!(got.len(), 10, "{options:?}: 5,500 unseen items exist");
        assert!(got.iter().all(|id| !seen.contains(id.as_str())));
    }
}

/// CATEGORY restricts every reply (ranked and explored) to items of that category, best first
/// for a cold start; an unknown category, or one whose items are all gone, gives an empty array.
#[test]
fn category_restricts_and_unknown_category_is_empty() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(105);
    let items = random_items(&mut rng, 2_000, 6, 3);
    load_catalog(&mut c, CATALOG, &items);
    let views: Vec<Vec<String>> = items
        .iter()
        .filter(|i| i.has("cat0"))
        .take(150)
        .map(|i| view_args("fan", i))
        .collect();
    record_views(&mut c, &views);
    let seen: HashSet<&str> = views.iter().map(|v| v[3].as_str()).collect();
    let by_id: HashMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();

    for k in 0..6 {
        let cat = category(k);
        for count in ["1", "10", "50"] {
            let cold = surface(&mut c, NOBODY, CATALOG, &["COUNT", count, "CATEGORY", &cat]);
            let n: usize = count.parse().expect("a count");
            assert_eq!(cold, top_by_score(&items, n, |i| i.has(&cat)), "{cat}");
            for explore in ["0", "0.5"] {
                let options = [
                    "COUNT", count, "CATEGORY", &cat, "EXPLORE", explore, "NOMARK",
                ];
                let got = surface(&mut c, "fan", CATALOG, &options);
                assert_eq!(got.len(), n);
                for id in &got {
                    assert!(by_id[id.as_str()].has(&cat), "{id} is not in {cat}");
                    assert!(!seen.contains(id.as_str()), "{id} was seen");
                }
            }
        }
    }
    for key in [NOBODY, "fan"] {
        let options = ["CATEGORY", "no-such-category", "EXPLORE", "0.5"];
        assert_eq!(
            ok(&mut c, &surface_args(key, CATALOG, &options)),
            Value::Array(vec![])
        );
    }
    // a category known to another catalog only, and one whose items were all deleted
    ok(
        &mut c,
        &[
            "SESSION.CATALOG",
            "ADD",
            "other",
            "o1",
            "CATEGORIES",
            "1",
            "elsewhere",
        ],
    );
    ok(
        &mut c,
        &[
            "SESSION.CATALOG",
            "ADD",
            CATALOG,
            "lone",
            "CATEGORIES",
            "1",
            "gone",
        ],
    );
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["CATEGORY", "gone"]),
        ["lone"]
    );
    ok(&mut c, &["SESSION.CATALOG", "DEL", CATALOG, "lone"]);
    for cat in ["elsewhere", "gone"] {
        assert_eq!(
            ok(&mut c, &surface_args("fan", CATALOG, &["CATEGORY", cat])),
            Value::Array(vec![])
        );
    }
}

/// ITEMS keeps the caller's order, drops seen items, honours COUNT and MAXIMPRESSIONS, records
/// impressions unless NOMARK, and needs no catalog.
#[test]
fn items_keeps_order_drops_seen_and_honours_count() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    touch(&mut c, "reader", &["EVENT", "b"]);
    touch(&mut c, "reader", &["EVENT", "d"]);
    let items = |c: &mut Connection, key: &str, list: &[&str], options: &[&str]| {
        let mut args = strings(&["SESSION.SURFACE", key, "ITEMS", &list.len().to_string()]);
        args.extend(list.iter().map(|s| s.to_string()));
        args.extend(options.iter().map(|s| s.to_string()));
        ids(ok(c, &args))
    };
    let five = ["a", "b", "c", "d", "e"];
    let reversed = ["e", "d", "c", "b", "a"];
    assert_eq!(items(&mut c, "reader", &five, &[]), ["a", "c", "e"]);
    assert_eq!(items(&mut c, "reader", &reversed, &[]), ["e", "c", "a"]);
    assert_eq!(items(&mut c, "reader", &five, &["COUNT", "2"]), ["a", "c"]);
    assert_eq!(items(&mut c, "reader", &five, &["COUNT", "1"]), ["a"]);
    assert_eq!(
        items(&mut c, "reader", &five, &["COUNT", "9"]),
        ["a", "c", "e"]
    );
    assert_eq!(
        items(&mut c, "reader", &["b", "d"], &[]),
        Vec::<String>::new()
    );
    // a missing session keeps everything and is not created
    assert_eq!(items(&mut c, NOBODY, &five, &["COUNT", "4"]), five[..4]);
    assert!(!exists(&mut c, NOBODY));

    // a long list: exactly the unseen ones, in order (the seen filter may drop a rare unseen one)
    let mut rng = seeded_rng(106);
    let list: Vec<String> = (0..600).map(|i| format!("feature:{i}")).collect();
    let picked: Vec<&String> = list.choose_multiple(&mut rng, 300).collect();
    let viewed: HashSet<&String> = picked.iter().copied().collect();
    let views: Vec<Vec<String>> = picked
        .iter()
        .map(|id| strings(&["SESSION.TOUCH", "long", "EVENT", id]))
        .collect();
    record_views(&mut c, &views);
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let got = items(&mut c, "long", &refs, &["NOMARK"]);
    let unseen: Vec<&String> = list.iter().filter(|id| !viewed.contains(id)).collect();
    assert!(got.iter().all(|id| !viewed.contains(id)), "a seen item");
    let mut rest = unseen.iter();
    assert!(
        got.iter().all(|id| rest.any(|u| *u == id)),
        "order kept (a subsequence of the unseen ones)"
    );
    assert!(
        got.len() * 100 >= unseen.len() * 95,
        "{} of {}",
        got.len(),
        unseen.len()
    );
    let first = items(&mut c, "long", &refs, &["COUNT", "25", "NOMARK"]);
    assert_eq!(first, got[..25]);

    // impressions: NOMARK does not count, marking calls do
    touch(&mut c, "featured", &["EVENT", "z"]);
    let abc = ["a", "b", "c"];
    for _ in 0..3 {
        assert_eq!(
            items(&mut c, "featured", &abc, &["MAXIMPRESSIONS", "2", "NOMARK"]),
            abc
        );
    }
    for _ in 0..2 {
        assert_eq!(
            items(&mut c, "featured", &abc, &["MAXIMPRESSIONS", "2"]),
            abc
        );
    }
    assert_eq!(
        items(&mut c, "featured", &abc, &["MAXIMPRESSIONS", "2"]),
        Vec::<String>::new()
    );
    assert_eq!(
        items(&mut c, "featured", &abc, &["MAXIMPRESSIONS", "3"]),
        abc
    );
    assert_eq!(items(&mut c, "featured", &abc, &[]), abc);
}

/// WITHSCORES alternates item and score (bulk strings in RESP2, doubles in RESP3); with EXPLORE 0
/// scores never increase; a cold start's score is the item's score over the catalog's largest
/// absolute score; a session's is its affinity times its popularity (see the bounds below).
#[test]
fn withscores_alternates_items_and_ranks() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(107);
    let mut items = random_items(&mut rng, 300, 5, 2);
    for item in &mut items {
        item.score = item.score * 0.15 - 50.0; // [-50, 100)
    }
    items[0].score = -120.0; // the largest absolute score is negative
    load_catalog(&mut c, CATALOG, &items);
    let scale = 120.0;
    let by_id: HashMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();

    let options = ["COUNT", "25", "WITHSCORES"];
    let resp2 = scored(ok(&mut c, &surface_args(NOBODY, CATALOG, &options)));
    let resp3 = scored(ok(
        &mut server.conn_resp3(),
        &surface_args(NOBODY, CATALOG, &options),
    ));
    assert_eq!(resp2, resp3);
    let order: Vec<String> = resp2.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(order, top_by_score(&items, 25, |_| true));
    for (id, score) in &resp2 {
        let expected = by_id[id.as_str()].score / scale;
        assert!(
            (score - expected).abs() < 1e-12,
            "{id}: {score} vs {expected}"
        );
    }
    assert!(resp2.windows(2).all(|w| w[0].1 >= w[1].1), "{resp2:?}");
    // worst items too: the negative end of the ranking
    let all = scored(ok(
        &mut c,
        &surface_args(NOBODY, CATALOG, &["COUNT", "1000", "WITHSCORES"]),
    ));
    assert_eq!(all.len(), 300);
    assert_eq!(
        all.last().map(|(id, s)| (id.as_str(), *s)),
        Some(("item:0", -1.0))
    );

    let views: Vec<Vec<String>> = items[1..60]
        .iter()
        .map(|i| view_args("ranked", i))
        .collect();
    record_views(&mut c, &views);
    for conn in [&mut c, &mut server.conn_resp3()] {
        let options = ["COUNT", "40", "EXPLORE", "0", "NOMARK", "WITHSCORES"];
        let got = scored(ok(conn, &surface_args("ranked", CATALOG, &options)));
        assert_eq!(got.len(), 40);
        assert!(
            got.windows(2).all(|w| w[0].1 >= w[1].1),
            "non-increasing: {got:?}"
        );
        // rank = (a^1.5 + 0.02) / 1.02 * (max(score, 0) / scale + 0.01) / 1.01, a in 0..1
        for (id, rank) in &got {
            let p = by_id[id.as_str()].score.max(0.0) / scale;
            let (low, high) = (0.02 / 1.02 * (p + 0.01) / 1.01, (p + 0.01) / 1.01);
            assert!(
                *rank >= low - 1e-12 && *rank <= high + 1e-12,
                "{id}: rank {rank}, popularity {p}"
            );
        }
        let options = ["COUNT", "10", "EXPLORE", "0.5", "NOMARK", "WITHSCORES"];
        assert_eq!(
            scored(ok(conn, &surface_args("ranked", CATALOG, &options))).len(),
            10
        );
    }
}

/// A missing session gets the catalog's best items by score and is not created; an unknown
/// catalog, a key of another type and malformed arguments are errors that change nothing.
#[test]
fn cold_start_and_errors() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(108);
    let items = random_items(&mut rng, 100, 4, 2);
    load_catalog(&mut c, CATALOG, &items);

    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &[]),
        top_by_score(&items, 10, |_| true)
    );
    assert_eq!(
        surface(
            &mut c,
            NOBODY,
            CATALOG,
            &["COUNT", "3", "MAXIMPRESSIONS", "1"]
        ),
        top_by_score(&items, 3, |_| true)
    );
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["count", "5", "category", "cat2"]),
        top_by_score(&items, 5, |i| i.has("cat2")),
        "keywords are case-insensitive"
    );
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "1000"]).len(),
        100
    );
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["EXPLORE", "0.5"]).len(),
        10
    );
    assert!(!exists(&mut c, NOBODY), "a cold start creates no session");
    assert!(keys(&mut c).is_empty());

    assert_eq!(
        err(&mut c, &surface_args(NOBODY, "nope", &[])),
        "ERR no such catalog"
    );
    touch(&mut c, "reader", &["EVENT", "x"]);
    assert_eq!(
        err(&mut c, &surface_args("reader", "nope", &[])),
        "ERR no such catalog"
    );
    ok(&mut c, &["SET", "plain", "v"]);
    ok(&mut c, &["HSET", "hash", "f", "v"]);
    for key in ["plain", "hash"] {
        assert!(err(&mut c, &surface_args(key, CATALOG, &[])).starts_with("WRONGTYPE"));
        let args = ["SESSION.SURFACE", key, "ITEMS", "1", "a"];
        assert!(err(&mut c, &args).starts_with("WRONGTYPE"));
    }

    let digest = digest_value(&mut c, "reader");
    let bad: [(&[&str], Option<&str>); 14] = [
        (
            &["FROM", CATALOG, "EXPLORE", "2"],
            Some("ERR EXPLORE must be between 0 and 1"),
        ),
        (
            &["FROM", CATALOG, "EXPLORE", "-0.1"],
            Some("ERR EXPLORE must be between 0 and 1"),
        ),
        (
            &["FROM", CATALOG, "COUNT", "0"],
            Some("ERR COUNT must be between 1 and 1000"),
        ),
        (
            &["FROM", CATALOG, "COUNT", "1001"],
            Some("ERR COUNT must be between 1 and 1000"),
        ),
        (
            &["ITEMS", "1", "a", "EXPLORE", "0.5"],
            Some("ERR syntax error"),
        ),
        (
            &["ITEMS", "1", "a", "CATEGORY", "x"],
            Some("ERR syntax error"),
        ),
        (&["ITEMS", "1", "a", "WITHSCORES"], Some("ERR syntax error")),
        (&["FROM", CATALOG, "BOGUS"], Some("ERR syntax error")),
        (
            &["FROM", CATALOG, "COUNT", "2", "COUNT", "3"],
            Some("ERR syntax error"),
        ),
        (&["BY", CATALOG], Some("ERR syntax error")),
        (
            &["FROM", CATALOG, "EXPLORE", "abc"],
            Some("ERR value is not a valid float"),
        ),
        (&["FROM", CATALOG, "MAXIMPRESSIONS", "0"], None),
        (&["FROM", CATALOG, "COUNT"], None),
        (&["ITEMS", "3", "a", "b"], None),
    ];
    for key in ["reader", NOBODY] {
        for (args, expected) in bad {
            let mut full = vec!["SESSION.SURFACE", key];
            full.extend_from_slice(args);
            let e = err(&mut c, &full);
            match expected {
                Some(text) => assert_eq!(e, text, "{args:?}"),
                None => assert!(e.starts_with("ERR"), "{args:?}: {e}"),
            }
        }
        let e = err(&mut c, &["SESSION.SURFACE", key, "FROM"]);
        assert!(e.starts_with("ERR wrong number of arguments"), "{e}");
    }
    assert_eq!(
        digest_value(&mut c, "reader"),
        digest,
        "errors change nothing"
    );
    assert!(!exists(&mut c, NOBODY));

    ok(&mut c, &["SESSION.CATALOG", "DROP", CATALOG]);
    assert_eq!(
        err(&mut c, &surface_args(NOBODY, CATALOG, &[])),
        "ERR no such catalog"
    );
}

// ---------------------------------------------------------------------------------------------
// Catalogs

/// ADD replies 1 for a new item and 0 for a replacement (score and categories replaced); DEL counts
/// the removed items; DROP replies 1 then 0; INFO reports items, categories and memory (a map in
/// RESP3); LIST names the catalogs; the item limit refuses new items only.
#[test]
fn catalog_add_del_drop_info_list() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let cat = |c: &mut Connection, args: &[&str]| {
        let mut full = vec!["SESSION.CATALOG"];
        full.extend_from_slice(args);
        ok(c, &full)
    };
    assert_eq!(cat(&mut c, &["LIST"]), Value::Array(vec![]));
    assert_eq!(
        cat(
            &mut c,
            &["ADD", "c", "a", "SCORE", "1", "CATEGORIES", "2", "x", "y"]
        ),
        Value::Int(1)
    );
    assert_eq!(
        cat(
            &mut c,
            &["ADD", "c", "b", "SCORE", "2", "CATEGORIES", "1", "y"]
        ),
        Value::Int(1)
    );
    assert_eq!(surface(&mut c, NOBODY, "c", &[]), ["b", "a"]);
    assert_eq!(surface(&mut c, NOBODY, "c", &["CATEGORY", "x"]), ["a"]);
    let info = catalog_info(&mut c, "c");
    assert_eq!((info["items"], info["categories"]), (2, 2));
    // replace: new score and categories
    assert_eq!(
        cat(
            &mut c,
            &["ADD", "c", "a", "SCORE", "3", "CATEGORIES", "1", "z"]
        ),
        Value::Int(0)
    );
    assert_eq!(surface(&mut c, NOBODY, "c", &[]), ["a", "b"]);
    assert_eq!(
        surface(&mut c, NOBODY, "c", &["CATEGORY", "x"]),
        Vec::<String>::new()
    );
    assert_eq!(surface(&mut c, NOBODY, "c", &["CATEGORY", "z"]), ["a"]);
    let info = catalog_info(&mut c, "c");
    assert_eq!(
        (info["items"], info["categories"]),
        (2, 2),
        "x has no item left"
    );
    assert!(info["memory"] > 0);
    assert_eq!(
        cat(&mut c, &["ADD", "c", "zero"]),
        Value::Int(1),
        "no SCORE means 0"
    );
    assert_eq!(surface(&mut c, NOBODY, "c", &[]), ["a", "b", "zero"]);

    // RESP3: a map with at least items, categories, memory
    match ok(&mut server.conn_resp3(), &["SESSION.CATALOG", "INFO", "c"]) {
        Value::Map(entries) => {
            let names: HashSet<String> = entries
                .iter()
                .map(|(n, _)| String::from_utf8(bytes(n)).expect("UTF-8"))
                .collect();
            for name in ["items", "categories", "memory"] {
                assert!(names.contains(name), "{name} missing: {names:?}");
            }
        }
        other => panic!("CATALOG INFO in RESP3 is not a map: {other:?}"),
    }

    // memory grows with the items
    let small = catalog_info(&mut c, "c")["memory"];
    let mut rng = seeded_rng(109);
    load_catalog(&mut c, "c", &random_items(&mut rng, 1_000, 10, 3));
    let info = catalog_info(&mut c, "c");
    assert_eq!(info["items"], 1_003);
    assert_eq!(info["categories"], 12);
    assert!(
        info["memory"] > small + 1_000 * 32,
        "{} vs {small}",
        info["memory"]
    );

    // DEL counts what it removed
    assert_eq!(
        cat(&mut c, &["DEL", "c", "a", "nope", "b", "a"]),
        Value::Int(2)
    );
    assert_eq!(cat(&mut c, &["DEL", "c", "a"]), Value::Int(0));
    assert_eq!(cat(&mut c, &["DEL", "no-such-catalog", "a"]), Value::Int(0));
    assert_eq!(catalog_info(&mut c, "c")["items"], 1_001);
    assert!(!surface(&mut c, NOBODY, "c", &["COUNT", "1000"]).contains(&"a".to_owned()));

    // LIST is sorted; DROP removes a whole catalog once
    cat(&mut c, &["ADD", "b-catalog", "i"]);
    cat(&mut c, &["ADD", "d-catalog", "i"]);
    assert_eq!(catalog_list(&mut c), ["b-catalog", "c", "d-catalog"]);
    assert_eq!(cat(&mut c, &["DROP", "b-catalog"]), Value::Int(1));
    assert_eq!(cat(&mut c, &["DROP", "b-catalog"]), Value::Int(0));
    assert_eq!(catalog_list(&mut c), ["c", "d-catalog"]);
    assert_eq!(
        err(&mut c, &["SESSION.CATALOG", "INFO", "b-catalog"]),
        "ERR no such catalog"
    );
    assert_eq!(
        err(&mut c, &surface_args(NOBODY, "b-catalog", &[])),
        "ERR no such catalog"
    );

    // malformed ADDs change nothing
    for bad in [
        &["ADD", "c"][..],
        &["ADD", "c", "i", "SCORE", "abc"],
        &["ADD", "c", "i", "SCORE", "inf"],
        &["ADD", "c", "i", "TTL", "5", "EXPIREAT", "9"],
        &["ADD", "c", "i", "TTL", "0"],
        &["ADD", "c", "i", "CATEGORIES", "2", "x"],
        &["ADD", "c", "i", "SCORE", "1", "SCORE", "2"],
        &["ADD", "c", "i", "NOPE"],
        &["INFO"],
        &["DROP"],
        &["NOSUCHSUB", "c"],
    ] {
        let mut full = vec!["SESSION.CATALOG"];
        full.extend_from_slice(bad);
        assert!(err(&mut c, &full).starts_with("ERR"), "{bad:?}");
    }
    assert_eq!(catalog_info(&mut c, "c")["items"], 1_001);
    assert_eq!(catalog_list(&mut c), ["c", "d-catalog"]);

    // the item limit refuses new items, never replacements
    config_set(&mut c, "session.max-catalog-items", "2");
    cat(&mut c, &["ADD", "small", "one"]);
    cat(&mut c, &["ADD", "small", "two"]);
    let e = err(&mut c, &["SESSION.CATALOG", "ADD", "small", "three"]);
    assert!(e.starts_with("ERR catalog is full"), "{e}");
    assert_eq!(
        cat(&mut c, &["ADD", "small", "two", "SCORE", "5"]),
        Value::Int(0)
    );
    assert_eq!(catalog_info(&mut c, "small")["items"], 2);
}

/// Items with TTL or EXPIREAT stop being surfaced once expired, and a later ADD to the catalog
/// purges them (INFO items shrinks).
#[test]
fn catalog_items_expire_and_are_purged() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let permanent: Vec<Item> = (1..=20)
        .map(|i| Item {
            id: format!("keep:{i}"),
            score: f64::from(i),
            categories: vec!["x".into()],
        })
        .collect();
    load_catalog(&mut c, CATALOG, &permanent);
    touch(&mut c, "reader", &["EVENT", "keep:1"]);
    let start = now_ms();
    let at = (start + 1_000).to_string();
    let past = (start - 1_000).to_string();
    let add = |c: &mut Connection, args: &[&str]| {
        let mut full = vec!["SESSION.CATALOG", "ADD", CATALOG];
        full.extend_from_slice(args);
        ok(c, &full)
    };
    add(
        &mut c,
        &[
            "fresh:ttl",
            "SCORE",
            "1000",
            "CATEGORIES",
            "1",
            "x",
            "TTL",
            "1",
        ],
    );
    add(
        &mut c,
        &[
            "fresh:at",
            "SCORE",
            "999",
            "CATEGORIES",
            "1",
            "x",
            "EXPIREAT",
            &at,
        ],
    );
    add(&mut c, &["stale", "SCORE", "5000", "EXPIREAT", &past]);
    let added = now_ms();
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "3"]),
        ["fresh:ttl", "fresh:at", "keep:20"],
        "live until they expire; an item already expired is never surfaced"
    );
    sleep_past(added + 1_100); // both expired: the TTL counts from the ADD, before `added`
    let everything = ["COUNT", "1000", "EXPLORE", "0.5", "NOMARK"];
    for key in [NOBODY, "reader"] {
        let got = surface(&mut c, key, CATALOG, &everything);
        assert!(got.iter().all(|id| id.starts_with("keep:")), "{got:?}");
        let got = surface(&mut c, key, CATALOG, &["CATEGORY", "x", "EXPLORE", "1"]);
        assert!(got.iter().all(|id| id.starts_with("keep:")), "{got:?}");
    }
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "1"]),
        ["keep:20"]
    );
    // not purged yet, or already by the primary's once-a-second purge
    let items = catalog_info(&mut c, CATALOG)["items"];
    assert!((20..=23).contains(&items), "items {items}");
    add(&mut c, &["later", "SCORE", "0.5"]);
    assert_eq!(
        catalog_info(&mut c, CATALOG)["items"],
        21,
        "purged by the ADD"
    );
    assert_eq!(session_stat(&mut c, "catalog_items"), 21);
    // re-adding an expired id makes it live again
    add(&mut c, &["fresh:ttl", "SCORE", "1000"]);
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "1"]),
        ["fresh:ttl"]
    );
}

// ---------------------------------------------------------------------------------------------
// Persistence

/// DEBUG RELOAD keeps the registry; DEBUG RELOAD NOSAVE loads the older RDB and replaces the
/// registry wholesale (catalogs created after the SAVE are gone).
#[test]
fn registry_survives_debug_reload() {
    registry_survives(Server::start(&[]), 110, |server| {
        let mut c = server.conn();
        ok(&mut c, &["DEBUG", "RELOAD"]);
    });

    let server = Server::start(&[]);
    let mut c = server.conn();
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "kept", "a", "SCORE", "1"],
    );
    ok(&mut c, &["SAVE"]);
    ok(&mut c, &["SESSION.CATALOG", "ADD", "later", "a"]);
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", "kept", "b", "SCORE", "2"],
    );
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(catalog_list(&mut c), ["kept"]);
    assert_eq!(surface(&mut c, NOBODY, "kept", &[]), ["a"]);
}

/// SAVE, then a restart that loads the RDB.
#[test]
fn registry_survives_rdb_restart() {
    registry_survives(Server::start(&[]), 111, |server| {
        ok(&mut server.conn(), &["SAVE"]);
        server.restart();
    });
}

fn aof_server(preamble: &str) -> Server {
    Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble])
}

/// A restart that replays the AOF (RDB preamble base, registry commands in the increment).
#[test]
fn registry_survives_aof_restart_with_preamble() {
    registry_survives(aof_server("yes"), 112, Server::restart);
}

/// A restart that replays the AOF (commands only: the registry changes are in it as commands).
#[test]
fn registry_survives_aof_restart_without_preamble() {
    registry_survives(aof_server("no"), 113, Server::restart);
}

/// An AOF rewrite (RDB preamble), more changes after it, then a restart.
#[test]
fn registry_survives_aof_rewrite_with_preamble() {
    registry_survives(aof_server("yes"), 114, rewrite_then_restart);
}

/// An AOF rewrite without the RDB preamble, more changes after it, then a restart.
#[test]
fn registry_survives_aof_rewrite_without_preamble() {
    registry_survives(aof_server("no"), 115, rewrite_then_restart);
}

fn rewrite_then_restart(server: &mut Server) {
    let mut c = server.conn();
    wait_for_aof_rewrite(&mut c); // the base the server writes when it starts with AOF on
    ok(&mut c, &["BGREWRITEAOF"]);
    wait_for_aof_rewrite(&mut c);
    // a change and its undo, both in the increment written after the rewrite
    ok(
        &mut c,
        &[
            "SESSION.CATALOG",
            "ADD",
            "news",
            "after-rewrite",
            "SCORE",
            "1",
        ],
    );
    ok(&mut c, &["SESSION.CATALOG", "DEL", "news", "after-rewrite"]);
    server.restart();
}

// ---------------------------------------------------------------------------------------------
// Replication

/// A replica attached after the catalogs exist gets them by full sync (its own stale catalog is
/// replaced); later ADD/DEL/DROP reach it; after 3,000 SURFACE calls with exploration and some
/// IMPRESS calls on 300 sessions, DEBUG DIGEST is equal; promoted, the replica surfaces exactly
/// what the primary does (scores replicated exactly).
#[test]
fn replica_gets_the_registry_and_the_surface_effects() {
    let primary = Server::start(&[]);
    let mut p = primary.conn();
    let mut rng = seeded_rng(116);
    let mut sessions = build_registry(&mut p, &mut rng);

    let replica = Server::start(&[]);
    let mut r = replica.conn();
    ok(&mut r, &["SESSION.CATALOG", "ADD", "stale", "x"]);
    attach(&replica, &primary);
    assert_same_catalogs(&mut p, &mut r);
    assert!(!catalog_list(&mut r).contains(&"stale".to_owned()));
    let e = err(&mut r, &["SESSION.CATALOG", "ADD", "news", "x"]);
    assert!(e.starts_with("READONLY"), "{e}");

    // changes through the replication stream
    let fresh = random_items(&mut rng, 500, 6, 2);
    load_catalog(&mut p, "fresh", &fresh);
    let mut commands: Vec<Vec<String>> = fresh[..50]
        .iter()
        .map(|i| strings(&["SESSION.CATALOG", "DEL", "fresh", &i.id, "never-there"]))
        .collect();
    for item in &fresh[50..100] {
        let replaced = Item {
            score: item.score / 3.0,
            ..item.clone()
        };
        commands.push(add_args("fresh", &replaced, &["TTL", "3600"]));
    }
    commands.push(strings(&["SESSION.CATALOG", "DROP", "emptied"]));
    commands.push(strings(&[
        "SESSION.CATALOG",
        "ADD",
        "odd",
        "late",
        "SCORE",
        "-7.25",
    ]));
    run(&mut p, &commands);
    wait_for_replica(&mut p);
    assert_same_catalogs(&mut p, &mut r);
    assert_eq!(catalog_list(&mut r), ["fresh", "news", "odd", "shop"]);
    assert_eq!(catalog_info(&mut r, "fresh")["items"], 450);

    // many sessions, then surfacing with random draws: only the effects replicate
    let news_ids: Vec<String> = (0..2_000).map(|i| format!("item:{i}")).collect();
    let mut views = Vec::new();
    for s in 0..300 {
        let key = format!("live:{s}");
        for item in fresh.choose_multiple(&mut rng, 20) {
            views.push(view_args(&key, item));
        }
        sessions.push(key);
    }
    record_views(&mut p, &views);
    let digest_before = digest(&mut p);
    let mut calls = Vec::new();
    for _ in 0..3_000 {
        let key = sessions.choose(&mut rng).expect("a session").clone();
        let catalog = ["news", "fresh", "shop"]
            .choose(&mut rng)
            .expect("a catalog");
        let mut args = surface_args(&key, catalog, &["EXPLORE", "0.3"]);
        let count = rng.gen_range(1..=15).to_string();
        args.extend(["COUNT".into(), count]);
        if rng.gen_bool(0.2) {
            args.extend(["MAXIMPRESSIONS".into(), "2".into()]);
        }
        if rng.gen_bool(0.2) {
            args.extend(["CATEGORY".into(), category(rng.gen_range(0..6))]);
        }
        calls.push(args);
        if rng.gen_bool(0.05) {
            let shown = news_ids.choose_multiple(&mut rng, 3).cloned();
            calls.push([strings(&["SESSION.IMPRESS", &key, "3"]), shown.collect()].concat());
        }
    }
    let returned: usize = run(&mut p, &calls)
        .into_iter()
        .map(|v| match v {
            Value::Array(items) => items.len(),
            _ => 0,
        })
        .sum();
    // in a transaction and in a script the effects replicate just the same
    let mut tx = redis::pipe();
    tx.atomic();
    for key in &sessions[..5] {
        tx.add_command(command(&surface_args(key, "news", &["EXPLORE", "0.5"])));
    }
    let _: Vec<Value> = tx.query(&mut p).expect("MULTI/EXEC");
    let script =
        "return {redis.call('SESSION.SURFACE', KEYS[1], 'FROM', 'news', 'EXPLORE', '0.5'), \
                  redis.call('SESSION.SURFACE', KEYS[1], 'FROM', 'shop', 'COUNT', '3')}";
    for key in &sessions[5..10] {
        ok(&mut p, &["EVAL", script, "1", key]);
    }
    wait_for_replica(&mut p);
    let (dp, dr) = (digest(&mut p), digest(&mut r));
    println!(
        "{} calls surfaced {returned} items; digest {dp}",
        calls.len()
    );
    assert_ne!(dp, digest_before, "impressions were recorded");
    assert_eq!(dp, dr, "DEBUG DIGEST of the primary and the replica");
    assert_same_catalogs(&mut p, &mut r);

    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    let sample: Vec<String> = sessions.iter().step_by(10).cloned().collect();
    assert_eq!(
        registry_snapshot(&mut p, &sample),
        registry_snapshot(&mut r, &sample),
        "the promoted replica surfaces what the primary does"
    );
}

/// An item that expired must not be purged by the replica on its own: the primary's purges
/// (by a later ADD, as DEL, or by its once-a-second SESSION.PURGE) reach it through replication.
#[test]
fn replica_purges_only_what_the_primary_purged() {
    let primary = Server::start(&[]);
    let replica = Server::replica_of(&primary);
    let mut p = primary.conn();
    // The replica sleeps while the primary adds an item expiring soon, then another: it applies
    // both after the first expired.
    let mut sleeper = replica.conn();
    let asleep = std::thread::spawn(move || ok(&mut sleeper, &["DEBUG", "SLEEP", "1"]));
    sleep(Duration::from_millis(200));
    let expiry = (now_ms() + 300).to_string();
    ok(
        &mut p,
        &[
            "SESSION.CATALOG",
            "ADD",
            CATALOG,
            "brief",
            "EXPIREAT",
            &expiry,
        ],
    );
    ok(&mut p, &["SESSION.CATALOG", "ADD", CATALOG, "other"]);
    asleep.join().expect("DEBUG SLEEP");
    wait_for_replica(&mut p);
    // The primary may have purged `brief` by now (its once-a-second purge, replicated as
    // SESSION.PURGE AT <its time>); the replica holds exactly what the primary holds either way.
    let items = catalog_info(&mut p, CATALOG)["items"];
    assert!(items == 2 || items == 1, "items {items}");
    wait_for_replica(&mut p);
    assert_same_catalogs(&mut p, &mut replica.conn());
}

/// The same on AOF replay: the registry read back holds exactly what it held before the restart.
#[test]
fn aof_replay_purges_only_what_was_purged() {
    let mut server = aof_server("no");
    let mut c = server.conn();
    let expiry = now_ms() + 300;
    let at = expiry.to_string();
    ok(
        &mut c,
        &["SESSION.CATALOG", "ADD", CATALOG, "brief", "EXPIREAT", &at],
    );
    ok(&mut c, &["SESSION.CATALOG", "ADD", CATALOG, "other"]);
    let before = catalog_info(&mut c, CATALOG)["items"];
    sleep_past(expiry + 100);
    server.restart();
    assert_eq!(catalog_info(&mut server.conn(), CATALOG)["items"], before);
}

// ---------------------------------------------------------------------------------------------
// Counters and scale

/// INFO session: surfaced_items counts every returned item (cold, NOMARK and ITEMS included);
/// catalogs, catalog_items and registry_memory_bytes follow ADD/DEL/DROP.
#[test]
fn info_session_counters_move() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    for name in [
        "surfaced_items",
        "catalogs",
        "catalog_items",
        "registry_memory_bytes",
    ] {
        assert_eq!(session_stat(&mut c, name), 0, "{name} at start");
    }
    let mut rng = seeded_rng(117);
    load_catalog(&mut c, "one", &random_items(&mut rng, 30, 3, 1));
    load_catalog(&mut c, "two", &random_items(&mut rng, 20, 3, 1));
    assert_eq!(session_stat(&mut c, "catalogs"), 2);
    assert_eq!(session_stat(&mut c, "catalog_items"), 50);
    let memory = session_stat(&mut c, "registry_memory_bytes");
    assert!(memory > 0);

    touch(&mut c, "reader", &["EVENT", "elsewhere"]);
    let commands = session_stat(&mut c, "commands");
    let mut expected = 0;
    expected += surface(&mut c, NOBODY, "one", &["COUNT", "4"]).len();
    expected += surface(&mut c, "reader", "one", &["COUNT", "6", "NOMARK"]).len();
    expected += surface(&mut c, "reader", "two", &["COUNT", "50"]).len();
    expected += ids(ok(
        &mut c,
        &["SESSION.SURFACE", "reader", "ITEMS", "3", "a", "b", "c"],
    ))
    .len();
    assert_eq!(expected, 4 + 6 + 20 + 3);
    assert_eq!(session_stat(&mut c, "surfaced_items"), expected as i64);
    assert_eq!(session_stat(&mut c, "commands"), commands + 4);
    let errors = session_stat(&mut c, "errors");
    err(&mut c, &surface_args("reader", "nope", &[]));
    assert_eq!(session_stat(&mut c, "errors"), errors + 1);
    assert_eq!(session_stat(&mut c, "surfaced_items"), expected as i64);

    ok(
        &mut c,
        &["SESSION.CATALOG", "DEL", "one", "item:0", "item:1"],
    );
    assert_eq!(session_stat(&mut c, "catalog_items"), 48);
    ok(&mut c, &["SESSION.CATALOG", "DROP", "two"]);
    assert_eq!(session_stat(&mut c, "catalogs"), 1);
    assert_eq!(session_stat(&mut c, "catalog_items"), 28);
    assert!(session_stat(&mut c, "registry_memory_bytes") < memory);
}

/// A 100,000-item catalog loads (pipelined) and SURFACE on it returns COUNT items: cold start
/// (exactly the best by score), a session with views, CATEGORY and EXPLORE. Functional only.
#[test]
fn hundred_thousand_item_catalog() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let mut rng = seeded_rng(118);
    let items = random_items(&mut rng, 100_000, 20, 3);
    load_catalog(&mut c, CATALOG, &items);
    assert_eq!(catalog_info(&mut c, CATALOG)["items"], 100_000);
    assert_eq!(catalog_info(&mut c, CATALOG)["categories"], 20);
    assert_eq!(session_stat(&mut c, "catalog_items"), 100_000);

    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "10"]),
        top_by_score(&items, 10, |_| true)
    );
    assert_eq!(
        surface(&mut c, NOBODY, CATALOG, &["COUNT", "1000"]).len(),
        1000
    );
    let views: Vec<Vec<String>> = items
        .choose_multiple(&mut rng, 500)
        .map(|i| view_args("big", i))
        .collect();
    record_views(&mut c, &views);
    let seen: HashSet<&str> = views.iter().map(|v| v[3].as_str()).collect();
    let by_id: HashMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    for options in [
        &["COUNT", "10"][..],
        &["COUNT", "100", "NOMARK"],
        &["COUNT", "10", "EXPLORE", "0.3"],
        &["COUNT", "25", "CATEGORY", "cat7"],
        &[
            "COUNT", "25", "CATEGORY", "cat7", "EXPLORE", "0.5", "NOMARK",
        ],
    ] {
        let got = surface(&mut c, "big", CATALOG, options);
        let count: usize = options[1].parse().expect("a count");
        assert_eq!(got.len(), count, "{options:?}");
        assert!(
            got.iter().all(|id| !seen.contains(id.as_str())),
            "{options:?}"
        );
        if options.contains(&"CATEGORY") {
            assert!(got.iter().all(|id| by_id[id.as_str()].has("cat7")));
        }
    }
}
