//! Surfacing quality (`make bench-quality`): a synthetic but realistic clickstream replayed through
//! `SESSION.TOUCH`, and the next-view hit rate at 10 of `SESSION.SURFACE` (with interests alone,
//! and with `BOOST TRENDING`) against baselines computed from the same clickstream in the same
//! run: most popular overall, most popular in the session's top category, random unseen.
//!
//! The clickstream (fixed seed): ITEMS items in CATEGORIES categories with Zipf(1) popularity;
//! USERS users, each a mixture of 1-3 categories (weights drift: at each view a small chance of
//! swapping one category for another); each user's session views VIEWS_PER_USER distinct items,
//! mostly from the mixture (popular items more likely), some from anywhere. In the second half
//! (the hot-item phase) a few low-popularity items become hot one after the other, each for a
//! window of the run, and take a share of all views. Sessions are interleaved round-robin, and the
//! events carry times (`AT`) one simulated 0.5 s apart ending now, so trending decays as in real
//! traffic. The catalog's score of an item is its prior popularity (what a shop would know before
//! the run), so `SURFACE`'s own score term is "popular", not an oracle of the run.
//!
//! Before each view (from a session's third on) every method names 10 items the session has not
//! seen; a hit is the next view being among them.

use std::collections::HashSet;
use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};

use crate::server::Server;

const SEED: u64 = 20_261_201;
const ITEMS: usize = 3000;
const CATEGORIES: usize = 10;
const USERS: usize = 300;
const VIEWS_PER_USER: usize = 40;
const HOT_ITEMS: usize = 6;
/// Share of views that go to the hot item of the moment during the hot-item phase.
const HOT_SHARE: f64 = 0.3;
/// Share of views outside the user's mixture (browsing anywhere, by popularity).
const OFF_MIXTURE: f64 = 0.15;
/// Per-view chance that a user's mixture drifts (one category replaced).
const DRIFT: f64 = 0.01;
/// Simulated time between two events.
const STEP_MS: i64 = 500;
/// The trend half-life the run configures (simulated time: the run spans 100 minutes).
const HALF_LIFE_S: i64 = 300;
/// `BOOST TRENDING` weights measured; the target is checked at `TARGET_BOOST`.
const BOOSTS: [f64; 3] = [0.5, 1.0, 2.0];
const TARGET_BOOST: f64 = 1.0;
const K: usize = 10;

struct User {
    mixture: Vec<(usize, f64)>,
    seen: HashSet<usize>,
    views: usize,
    category_views: [u32; CATEGORIES],
}

#[derive(Default, Clone, Copy)]
struct Tally {
    hits: u64,
    total: u64,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.hits += u64::from(hit);
        self.total += 1;
    }
    fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.hits as f64 / self.total as f64
        }
    }
}

pub struct Report {
    /// (method, hit rate before the hot phase, during it, overall)
    pub rows: Vec<(String, f64, f64, f64)>,
    pub evaluations: u64,
    pub seconds: f64,
}

fn pick_weighted(rng: &mut StdRng, weights: &[(usize, f64)]) -> usize {
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut x = rng.gen::<f64>() * total;
    for &(i, w) in weights {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.last().map_or(0, |w| w.0)
}

fn mixture(rng: &mut StdRng) -> Vec<(usize, f64)> {
    let n = rng.gen_range(1..=3);
    let mut cats: Vec<usize> = Vec::new();
    while cats.len() < n {
        let c = rng.gen_range(0..CATEGORIES);
        if !cats.contains(&c) {
            cats.push(c);
        }
    }
    cats.into_iter()
        .map(|c| (c, rng.gen_range(0.2..1.0)))
        .collect()
}

fn ids(v: Value) -> Vec<usize> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::BulkString(b) => {
                    std::str::from_utf8(b).ok()?.strip_prefix('i')?.parse().ok()
                }
                _ => None,
            })
            .collect(),
        other => panic!("SURFACE: {other:?}"),
    }
}

/// The top `K` of `ranked` (best first) the user has not seen.
fn top_unseen(ranked: &[usize], seen: &HashSet<usize>) -> Vec<usize> {
    ranked
        .iter()
        .copied()
        .filter(|i| !seen.contains(i))
        .take(K)
        .collect()
}

pub fn measure() -> Report {
    let started = std::time::Instant::now();
    let server = Server::start();
    let mut c: Connection = server.conn();
    let set = |c: &mut Connection, k: &str, v: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(c)
            .expect("CONFIG SET");
    };
    set(&mut c, "session.trend-half-life", &HALF_LIFE_S.to_string());
    set(&mut c, "session.seen-capacity", "64");
    let mut rng = StdRng::seed_from_u64(SEED);

    // Items: a category each, Zipf(1) popularity over a random permutation.
    let mut order: Vec<usize> = (0..ITEMS).collect();
    for i in (1..ITEMS).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let mut popularity = vec![0.0; ITEMS];
    for (rank, &item) in order.iter().enumerate() {
        popularity[item] = 1.0 / (rank as f64 + 1.0);
    }
    let category: Vec<usize> = (0..ITEMS).map(|_| rng.gen_range(0..CATEGORIES)).collect();
    let mut by_category: Vec<Vec<(usize, f64)>> = vec![Vec::new(); CATEGORIES];
    for i in 0..ITEMS {
        by_category[category[i]].push((i, popularity[i]));
    }
    let all: Vec<(usize, f64)> = (0..ITEMS).map(|i| (i, popularity[i])).collect();
    let mut pipe = redis::pipe();
    for i in 0..ITEMS {
        pipe.cmd("SESSION.CATALOG")
            .arg("ADD")
            .arg("shop")
            .arg(format!("i{i}"))
            .arg("SCORE")
            .arg(format!("{:.6}", popularity[i] * 1000.0))
            .arg("CATEGORIES")
            .arg(1)
            .arg(format!("c{}", category[i]))
            .ignore();
    }
    let _: () = pipe.query(&mut c).expect("catalog");
    // Hot items: from the unpopular half, each hot for one window of the second half.
    let hot: Vec<usize> = order[ITEMS / 2..].iter().copied().take(HOT_ITEMS).collect();

    let mut users: Vec<User> = (0..USERS)
        .map(|_| User {
            mixture: mixture(&mut rng),
            seen: HashSet::new(),
            views: 0,
            category_views: [0; CATEGORIES],
        })
        .collect();
    let total_views = USERS * VIEWS_PER_USER;
    let hot_start = total_views / 2;
    let window = (total_views - hot_start) / HOT_ITEMS + 1;
    let t0 = crate_now_ms() - total_views as i64 * STEP_MS - 1000;

    // Observed counts so far (the popularity baselines learn from the same stream).
    let mut counts = vec![0u64; ITEMS];
    let mut overall_rank: Vec<usize> = order.clone();
    let mut category_rank: Vec<Vec<usize>> = by_category
        .iter()
        .map(|v| {
            let mut l: Vec<usize> = v.iter().map(|x| x.0).collect();
            l.sort_by(|a, b| popularity[*b].total_cmp(&popularity[*a]));
            l
        })
        .collect();

    let names: Vec<String> = std::iter::once("SURFACE (interests)".to_string())
        .chain(BOOSTS.iter().map(|w| format!("SURFACE BOOST TRENDING {w}")))
        .chain(
            [
                "popular overall",
                "popular in top category",
                "random unseen",
            ]
            .map(String::from),
        )
        .collect();
    let mut tallies = vec![[Tally::default(); 2]; names.len()];
    let mut evaluations = 0;
    for step in 0..total_views {
        let u = step % USERS;
        let key = format!("q:u{u}");
        let at = t0 + step as i64 * STEP_MS;
        let phase = usize::from(step >= hot_start);
        let hot_now =
            (step >= hot_start).then(|| hot[((step - hot_start) / window).min(HOT_ITEMS - 1)]);

        // The next view.
        let user = &mut users[u];
        if rng.gen_bool(DRIFT) && !user.mixture.is_empty() {
            let at = rng.gen_range(0..user.mixture.len());
            let c = rng.gen_range(0..CATEGORIES);
            if !user.mixture.iter().any(|m| m.0 == c) {
                user.mixture[at].0 = c;
            }
        }
        let next = loop {
            let candidate = match hot_now {
                Some(h) if rng.gen_bool(HOT_SHARE) && !user.seen.contains(&h) => h,
                _ if rng.gen_bool(OFF_MIXTURE) => pick_weighted(&mut rng, &all),
                _ => {
                    let cat = pick_weighted(&mut rng, &user.mixture);
                    pick_weighted(&mut rng, &by_category[cat])
                }
            };
            if !user.seen.contains(&candidate) {
                break candidate;
            }
        };

        if user.views >= 2 {
            evaluations += 1;
            let mut lists: Vec<Vec<usize>> = Vec::new();
            lists.push(ids(redis::cmd("SESSION.SURFACE")
                .arg(&key)
                .arg("FROM")
                .arg("shop")
                .arg("COUNT")
                .arg(K)
                .arg("NOMARK")
                .query(&mut c)
                .expect("SURFACE")));
            for w in BOOSTS {
                lists.push(ids(redis::cmd("SESSION.SURFACE")
                    .arg(&key)
                    .arg("FROM")
                    .arg("shop")
                    .arg("COUNT")
                    .arg(K)
                    .arg("BOOST")
                    .arg("TRENDING")
                    .arg(w)
                    .arg("NOMARK")
                    .query(&mut c)
                    .expect("SURFACE BOOST")));
            }
            lists.push(top_unseen(&overall_rank, &user.seen));
            let top_cat = (0..CATEGORIES)
                .max_by_key(|&c| (user.category_views[c], std::cmp::Reverse(c)))
                .unwrap_or(0);
            lists.push(top_unseen(&category_rank[top_cat], &user.seen));
            let mut random = Vec::new();
            while random.len() < K {
                let i = rng.gen_range(0..ITEMS);
                if !user.seen.contains(&i) && !random.contains(&i) {
                    random.push(i);
                }
            }
            lists.push(random);
            for (t, list) in tallies.iter_mut().zip(&lists) {
                t[phase].add(list.contains(&next));
            }
        }

        // The view itself.
        let _: Value = redis::cmd("SESSION.TOUCH")
            .arg(&key)
            .arg("EVENT")
            .arg(format!("i{next}"))
            .arg("CATEGORIES")
            .arg(1)
            .arg(format!("c{}", category[next]))
            .arg("AT")
            .arg(at)
            .query(&mut c)
            .expect("TOUCH");
        user.seen.insert(next);
        user.views += 1;
        user.category_views[category[next]] += 1;
        counts[next] += 1;
        // Keep the baselines' rankings current (an insertion step: counts only grow by one).
        let bump = |list: &mut Vec<usize>| {
            if let Some(mut p) = list.iter().position(|&x| x == next) {
                while p > 0 && counts[list[p - 1]] < counts[list[p]] {
                    list.swap(p - 1, p);
                    p -= 1;
                }
            }
        };
        bump(&mut overall_rank);
        bump(&mut category_rank[category[next]]);
    }
    let rows = names
        .into_iter()
        .zip(&tallies)
        .map(|(n, t)| {
            let both = Tally {
                hits: t[0].hits + t[1].hits,
                total: t[0].total + t[1].total,
            };
            (n, t[0].rate(), t[1].rate(), both.rate())
        })
        .collect();
    Report {
        rows,
        evaluations,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn crate_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The targets: SURFACE with interests beats both popularity baselines overall, and with
/// `BOOST TRENDING TARGET_BOOST` beats them by >= 1.5x in the hot-item phase.
pub fn verdicts(r: &Report) -> Vec<(String, bool)> {
    let get = |name: &str| r.rows.iter().find(|row| row.0 == name);
    let (Some(plain), Some(boosted), Some(pop), Some(cat)) = (
        get("SURFACE (interests)"),
        get(&format!("SURFACE BOOST TRENDING {TARGET_BOOST}")),
        get("popular overall"),
        get("popular in top category"),
    ) else {
        return Vec::new();
    };
    let best_pop_hot = pop.2.max(cat.2);
    vec![
        (
            format!(
                "SURFACE (interests) beats both popularity baselines overall: {:.3} vs {:.3} / {:.3}",
                plain.3, pop.3, cat.3
            ),
            plain.3 > pop.3 && plain.3 > cat.3,
        ),
        (
            format!(
                "BOOST TRENDING {TARGET_BOOST} >= 1.5x both baselines in the hot-item phase: {:.3} = {:.2}x the better baseline ({:.3})",
                boosted.2,
                boosted.2 / best_pop_hot.max(1e-9),
                best_pop_hot
            ),
            boosted.2 >= 1.5 * best_pop_hot,
        ),
    ]
}

pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| method | hit@10 before the hot phase | hit@10 hot-item phase | hit@10 overall |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for (n, a, b, c) in &r.rows {
        let _ = writeln!(s, "| {n} | {a:.3} | {b:.3} | {c:.3} |");
    }
    s
}

/// A text bar chart of the hot-phase and overall hit rates.
pub fn chart(r: &Report) -> String {
    let max = r
        .rows
        .iter()
        .map(|x| x.2.max(x.3))
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut s = String::from("```\nhit@10, hot-item phase (#) and overall (=)\n");
    for (n, _, hot, all) in &r.rows {
        let bar = |v: f64, ch: char| ch.to_string().repeat((v / max * 50.0).round() as usize);
        let _ = writeln!(s, "{n:<30} {} {hot:.3}", bar(*hot, '#'));
        let _ = writeln!(s, "{:<30} {} {all:.3}", "", bar(*all, '='));
    }
    s.push_str("```\n");
    s
}

pub fn section(r: &Report) -> String {
    let mut s = String::from("## Surfacing quality\n\n");
    let _ = writeln!(
        s,
        "`make bench-quality` (bench/src/quality.rs): a fixed-seed synthetic clickstream ({ITEMS} items in {CATEGORIES} categories, Zipf(1) popularity; {USERS} users with 1-3 drifting category interests, {VIEWS_PER_USER} views each; in the second half {HOT_ITEMS} unpopular items become hot one after another and take {:.0}% of the views while hot) replayed through `SESSION.TOUCH ... AT`, trend half-life {HALF_LIFE_S} s of simulated time. Before each view (from a session's third) each method names 10 unseen items; hit@10 = the next view is among them. Baselines learn from the same stream in the same run. {} evaluations, {:.1} s.\n",
        HOT_SHARE * 100.0,
        r.evaluations,
        r.seconds
    );
    s.push_str(&table(r));
    s.push('\n');
    for (v, ok) in verdicts(r) {
        let _ = writeln!(s, "- {} {v}", if ok { "MET:" } else { "NOT MET:" });
    }
    s.push('\n');
    s.push_str(&chart(r));
    s
}

/// Replaces (or appends) the quality section of BENCHMARKS.md.
pub fn splice(existing: &str, section: &str) -> String {
    const HEAD: &str = "## Surfacing quality";
    match existing.find(HEAD) {
        Some(start) => {
            let after = &existing[start + HEAD.len()..];
            let end = after
                .find("\n## ")
                .map_or(existing.len(), |e| start + HEAD.len() + e + 1);
            format!("{}{}{}", &existing[..start], section, &existing[end..])
        }
        None => format!(
            "{}\n{}",
            existing.trim_end_matches('\n').to_string() + "\n",
            section
        ),
    }
}
