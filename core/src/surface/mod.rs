//! `SESSION.SURFACE`: content the user has not seen, ranked by what their activity says they like.
//!
//! rank(item) = (a^1.5 + 0.02) / 1.02 * (p + 0.01) / 1.01 for a session with interests in the
//! catalog's categories, where a is the sum of the session's normalized interest weights over the
//! item's categories (0..1) and p = max(score, 0) / scale its popularity (`scale` is the catalog's
//! largest absolute score): "how likely this user picks the item's category" times "how popular
//! the item is there", the product a mixture of interests predicts (a sum let a popular item of a
//! category the user never reads outrank the user's own categories). The power 1.5 sharpens the
//! weights towards the categories the user mostly reads (stray views, of a trending item say,
//! leave small weights in the top-N); the floors keep an item outside every interest (0.02: the
//! share of views off a user's interests) and an item without a positive score (0.01) rankable.
//! The rank lies in 0..1. Without interests (a cold start) rank = score / scale. Ties go to the
//! higher score, then the lower slot.
//!
//! Ranking never scans the catalog: candidates come from walking, best score first, the category
//! index of each of the session's interests (at most top-N of them) and the catalog's global score
//! index (or the requested CATEGORY's), each until `count` eligible items are found (or a walk cap);
//! the base list may also step over every item the user has seen or was capped on, so a heavy
//! viewer still gets unseen items); the candidates are ranked exactly and the best kept. Within one
//! category the rank grows with the score, so the best items of every interest are in the walked
//! prefixes; an item outside them can only beat them through several interest categories at once,
//! each with little weight. Cost grows with `count` and the number of interests, not with the
//! catalog.
//!
//! With a trend boost (`SURFACE ... BOOST TRENDING w`, and by default for a cold start: no
//! session or no interests), trend is ranked by velocity (`Trending::velocity_trend`, v = the
//! decayed count weighted by the square of its velocity, from a second counter with a 4 times
//! shorter half-life): a newly hot item overtakes the one it replaces within a small fraction of
//! a half-life, while that one still leads the decayed counts for most of a half-life. Up to `TREND_SLOTS` eligible items
//! whose v is at least `TREND_SLOT_SHARE` of the top's go first, in rank order; the top is the best
//! v among the catalog's trending items inspected (seen ones included: a user who saw the hot item
//! gets no slot given to a lesser one). The trending list is walked best count first as one more
//! candidate list: its first `count` eligible items, and of the first `TREND_SCAN` (or more)
//! inspected the `TREND_SLOTS` best eligible risers that clear the bar. Every item is ranked
//! rank / best + w * min(1, v(item) / v(top)), where best is the best candidate's rank (so the
//! personal part lies in 0..1, as the boost term in 0..w). v's order and v / v(top) do not depend
//! on the time read at (the decay factors are common to every item), so the answer depends only
//! on the session and the registry.
//!
//! Measured (`make bench-quality`, docs/BENCHMARKS.md): two fixed slots by decayed count gave the
//! hot-item phase 1.48x the better baseline; velocity with slots only within half the top's, 1.52x.
//!
//! Eligible: live, in the CATEGORY when one is named, not in the seen filter (no false negatives:
//! never a seen item), and shown fewer than MAXIMPRESSIONS times.

pub mod catalog;
pub mod trending;

use rand::Rng;

use crate::activity::impressions::Impressions;
use crate::activity::Activity;
use crate::surface::catalog::Catalog;
use crate::surface::trending::Trending;

/// Items a single list walk may inspect (bounds a call whose user has seen most of a category).
pub const WALK_CAP: usize = 4096;

/// Catalog entries one call may walk in all (interest lists and the base list together): the
/// bound on a call's work whatever the session has seen and whatever the catalog holds. Random
/// exploration draws add at most 32 per explored slot, each O(log n).
pub const INSPECT_BUDGET: usize = 65_536;

/// Slots a trend boost may give the most trending eligible items, ahead of the ranking.
pub const TREND_SLOTS: usize = 2;
/// The share of the top velocity trend (the best of the catalog's trending items, seen or not) an
/// eligible item needs for a trend slot.
pub const TREND_SLOT_SHARE: f64 = 0.5;
/// Trending items a boosted call inspects at least (most trending first).
pub const TREND_SCAN: usize = 32;
/// The floor of the interest term: an item outside every interest still ranks by popularity.
pub const AFFINITY_FLOOR: f64 = 0.02;
/// The floor of the popularity term: an item without a positive score still ranks by affinity.
pub const POPULARITY_FLOOR: f64 = 0.01;

/// The personal rank of an item of affinity `a` (0..1) and popularity `p` (0..1): in 0..1.
pub fn personal_rank(a: f64, p: f64) -> f64 {
    let a = a.clamp(0.0, 1.0);
    let p = p.clamp(0.0, 1.0);
    (a * a.sqrt() + AFFINITY_FLOOR) / (1.0 + AFFINITY_FLOOR) * (p + POPULARITY_FLOOR)
        / (1.0 + POPULARITY_FLOOR)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking<'a> {
    pub count: usize,
    pub category: Option<&'a [u8]>,
    pub explore: f64,
    pub max_impressions: Option<u32>,
}

/// What ranking needs from a session (absent for a cold start).
#[derive(Debug, Clone, Copy, Default)]
pub struct Profile<'a> {
    pub activity: Option<&'a Activity>,
    pub impressions: Option<&'a Impressions>,
}

impl Profile<'_> {
    /// How many catalog items this profile can make ineligible at most: items it has seen plus
    /// distinct items it was shown.
    pub fn skippable(&self) -> usize {
        let seen = self.activity.map_or(0, |a| a.seen.count());
        let shown: u64 = self.impressions.map_or(0, |i| {
            i.generations.iter().map(|g| u64::from(g.distinct)).sum()
        });
        usize::try_from(seen.saturating_add(shown)).unwrap_or(usize::MAX)
    }

    /// Not seen, and under the impression cap.
    pub fn eligible(&self, id: &[u8], max_impressions: Option<u32>) -> bool {
        if self.activity.is_some_and(|a| a.has_seen(id)) {
            return false;
        }
        match (max_impressions, self.impressions) {
            (Some(cap), Some(imp)) => u32::from(imp.count(id)) < cap,
            (Some(0), None) => false,
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub slot: u32,
    pub rank: f64,
    pub explored: bool,
}

/// A blend of site-wide trend into the rank (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Boost<'a> {
    pub trending: &'a Trending,
    pub weight: f64,
}

/// Chooses up to `req.count` items of `catalog` for `profile` at `now_ms`.
pub fn surface(
    catalog: &Catalog,
    profile: Profile,
    req: &Ranking,
    now_ms: i64,
    rng: &mut impl Rng,
) -> Vec<Pick> {
    surface_boosted(catalog, profile, req, None, now_ms, rng)
}

/// Whether `profile` has interests in `catalog`'s categories (without: a cold start).
pub fn has_interests(catalog: &Catalog, profile: Profile) -> bool {
    profile.activity.is_some_and(|a| {
        a.interests
            .normalized()
            .into_iter()
            .any(|(name, w)| w > 0.0 && catalog.category_id(name).is_some())
    })
}

/// `surface` with an optional trend boost.
pub fn surface_boosted(
    catalog: &Catalog,
    profile: Profile,
    req: &Ranking,
    boost: Option<Boost>,
    now_ms: i64,
    rng: &mut impl Rng,
) -> Vec<Pick> {
    if req.count == 0 || catalog.is_empty() {
        return Vec::new();
    }
    let filter = match req.category {
        Some(name) => match catalog.category_id(name) {
            Some(id) => Some(id),
            None => return Vec::new(),
        },
        None => None,
    };
    let interests: Vec<(u32, f64)> = profile
        .activity
        .map(|a| {
            a.interests
                .normalized()
                .into_iter()
                .filter_map(|(name, w)| catalog.category_id(name).map(|id| (id, w)))
                .collect()
        })
        .unwrap_or_default();
    let scale = match catalog.score_scale() {
        s if s > 0.0 && s.is_finite() => s,
        _ => 1.0,
    };
    let eligible = |slot: u32| {
        catalog.item(slot).is_some_and(|item| {
            item.live(now_ms)
                && filter.is_none_or(|f| item.categories.binary_search(&f).is_ok())
                && profile.eligible(&item.id, req.max_impressions)
        })
    };
    let boost = boost.filter(|b| b.weight > 0.0 && b.weight.is_finite() && !b.trending.is_empty());
    // ln of the velocity-weighted trend of the best trending item of this catalog inspected
    // (eligible or not: an item the user has seen still sets the bar)
    let mut trend_top = f64::NEG_INFINITY;
    let personal_of = |slot: u32| {
        catalog.item(slot).map_or(f64::NEG_INFINITY, |item| {
            if interests.is_empty() {
                return item.score / scale;
            }
            let affinity: f64 = interests
                .iter()
                .filter(|(c, _)| item.categories.binary_search(c).is_ok())
                .map(|(_, w)| w)
                .sum();
            personal_rank(affinity, item.score.max(0.0) / scale)
        })
    };

    // Candidates: best-score prefixes of the interest lists and of the base list.
    let mut candidates: Vec<u32> = Vec::new();
    // The base list may need to step over every item the user has seen or was capped on before
    // it finds `count` eligible ones: its walk is allowed that many steps more.
    let base_cap = WALK_CAP.saturating_add(profile.skippable());
    // Interest walks share half the budget; the base walk gets what is left.
    let mut budget = INSPECT_BUDGET;
    let mut walk = |list: &mut dyn Iterator<Item = u32>, cap: usize, budget: &mut usize| {
        let mut found = 0;
        let cap = cap.min(*budget);
        for slot in list.take(cap) {
            *budget -= 1;
            if eligible(slot) {
                candidates.push(slot);
                found += 1;
                if found == req.count {
                    break;
                }
            }
        }
    };
    let mut interest_budget = INSPECT_BUDGET / 2;
    for &(category, _) in &interests {
        walk(
            &mut catalog.by_category(category),
            WALK_CAP,
            &mut interest_budget,
        );
    }
    budget -= INSPECT_BUDGET / 2 - interest_budget;
    let mut trend_candidates: Vec<u32> = Vec::new();
    if let Some(b) = boost {
        // The trending items (best first) held by this catalog: at most K, within the budget.
        let mut trend_budget = WALK_CAP.min(budget);
        let before = trend_budget;
        // The first `count` eligible ones are candidates; at least TREND_SCAN are inspected, so
        // the top velocity trend (the bar of the trend slots) is known even at COUNT 1: a fast
        // riser may sit a few places down the decayed counts.
        let mut found = 0;
        let mut risers: Vec<(u32, f64)> = Vec::new();
        for (inspected, (id, _)) in b
            .trending
            .iter()
            .take(WALK_CAP.min(trend_budget))
            .enumerate()
        {
            if found >= req.count && inspected >= TREND_SCAN {
                break;
            }
            trend_budget -= 1;
            let Some(slot) = catalog.slot_of(id) else {
                continue;
            };
            if let Some(v) = b.trending.velocity_trend(id) {
                trend_top = trend_top.max(v);
            }
            if eligible(slot) {
                if found < req.count {
                    trend_candidates.push(slot);
                    found += 1;
                } else if let Some(v) = b.trending.velocity_trend(id) {
                    risers.push((slot, v));
                }
            }
        }
        // past the first `count`, only the TREND_SLOTS best that can take a trend slot
        let bar = trend_top + libm::log(TREND_SLOT_SHARE);
        risers.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        trend_candidates.extend(
            risers
                .iter()
                .take(TREND_SLOTS)
                .filter(|r| r.1 >= bar)
                .map(|r| r.0),
        );
        budget -= before - trend_budget;
    }
    match filter {
        Some(f) => walk(&mut catalog.by_category(f), base_cap, &mut budget),
        None => walk(&mut catalog.by_score(), base_cap, &mut budget),
    }
    candidates.extend_from_slice(&trend_candidates);
    candidates.sort_unstable();
    candidates.dedup();
    // With a boost, the personal part is divided by the best candidate's (0..1, as the trend term).
    let best = candidates
        .iter()
        .map(|&slot| personal_of(slot))
        .fold(0.0, f64::max);
    // w * velocity trend / the top's: 0..w (an item the walk did not reach is capped at w)
    let trend_of = |id: &[u8]| match boost {
        Some(b) if trend_top.is_finite() => b
            .trending
            .velocity_trend(id)
            .map_or(0.0, |v| b.weight * libm::exp(v - trend_top).min(1.0)),
        _ => 0.0,
    };
    let rank_of = |slot: u32| {
        let personal = personal_of(slot);
        match catalog.item(slot) {
            Some(item) if boost.is_some() => {
                (if best > 0.0 {
                    personal / best
                } else {
                    personal
                }) + trend_of(&item.id)
            }
            _ => personal,
        }
    };
    let score_of = |slot: u32| catalog.item(slot).map_or(f64::NEG_INFINITY, |i| i.score);
    let mut ranked: Vec<Pick> = candidates
        .into_iter()
        .map(|slot| Pick {
            slot,
            rank: rank_of(slot),
            explored: false,
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.rank
            .total_cmp(&a.rank)
            .then(score_of(b.slot).total_cmp(&score_of(a.slot)))
            .then(a.slot.cmp(&b.slot))
    });
    if let Some(b) = boost {
        // Up to TREND_SLOTS candidates whose velocity trend is at least TREND_SLOT_SHARE of the
        // top's go first, in rank order.
        let bar = trend_top + libm::log(TREND_SLOT_SHARE);
        let mut trending: Vec<(f64, usize)> = ranked
            .iter()
            .enumerate()
            .filter_map(|(at, p)| {
                let v = b.trending.velocity_trend(&catalog.item(p.slot)?.id)?;
                (v >= bar).then_some((v, at))
            })
            .collect();
        trending.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        let mut front: Vec<usize> = trending.iter().take(TREND_SLOTS).map(|t| t.1).collect();
        front.sort_unstable();
        let mut reordered: Vec<Pick> = front
            .iter()
            .filter_map(|&at| ranked.get(at))
            .copied()
            .collect();
        reordered.extend(
            ranked
                .iter()
                .enumerate()
                .filter(|(at, _)| !front.contains(at))
                .map(|(_, p)| *p),
        );
        ranked = reordered;
    }

    // Exploration: a share of the slots goes to random eligible items.
    let share = req.count as f64 * req.explore.clamp(0.0, 1.0);
    let mut explore_n = share.floor() as usize;
    if rng.gen::<f64>() < share - share.floor() {
        explore_n += 1;
    }
    let exploit_n = req.count - explore_n.min(req.count);
    let mut picks: Vec<Pick> = ranked.iter().take(exploit_n).copied().collect();
    let mut explored = 0;
    let mut attempts = 0;
    while explored < explore_n && attempts < 32 * explore_n {
        attempts += 1;
        let slot = match filter {
            // A random slot of the catalog, then the category's first item at or after it in
            // score order: O(log n), never a walk of the category.
            Some(f) => {
                let at = rng.gen_range(0..catalog.slot_count().max(1)) as u32;
                match catalog.category_from(f, at) {
                    Some(slot) => slot,
                    None => continue,
                }
            }
            None => rng.gen_range(0..catalog.slot_count()) as u32,
        };
        if eligible(slot) && !picks.iter().any(|p| p.slot == slot) {
            picks.push(Pick {
                slot,
                rank: rank_of(slot),
                explored: true,
            });
            explored += 1;
        }
    }
    // Not enough to explore: the remaining slots go back to the ranking.
    for p in ranked.into_iter().skip(exploit_n) {
        if picks.len() >= req.count {
            break;
        }
        if !picks.iter().any(|q| q.slot == p.slot) {
            picks.push(p);
        }
    }
    picks
}

/// `ITEMS` mode: the given candidates that are eligible, in their order, at most `count`.
pub fn filter_items<'a>(
    items: &[&'a [u8]],
    profile: Profile,
    count: usize,
    max_impressions: Option<u32>,
) -> Vec<&'a [u8]> {
    items
        .iter()
        .copied()
        .filter(|id| profile.eligible(id, max_impressions))
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::SketchParams;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const CATS: [&[u8]; 5] = [b"golf", b"hockey", b"news", b"tech", b"food"];

    /// 10,000 items, categories round-robin, scores pseudo-random and unrelated to categories.
    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        let mut x: u64 = 99;
        for i in 0..10_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let score = (x >> 11) as f64 / (1u64 << 53) as f64;
            c.add(
                format!("item{i}").as_bytes(),
                score,
                &[CATS[(i % 5) as usize]],
                None,
            );
        }
        c
    }

    fn fan_of(category: &[u8], seen: &[String]) -> Activity {
        let mut a = Activity::new(&SketchParams::default());
        for (i, s) in seen.iter().enumerate() {
            let cat: &[u8] = if i % 10 < 6 { category } else { CATS[i % 5] };
            a.record(s.as_bytes(), &[cat], i as i64);
        }
        a
    }

    fn ids(c: &Catalog, picks: &[Pick]) -> Vec<String> {
        picks
            .iter()
            .map(|p| String::from_utf8(c.item(p.slot).unwrap().id.to_vec()).unwrap())
            .collect()
    }

    fn req(count: usize) -> Ranking<'static> {
        Ranking {
            count,
            category: None,
            explore: 0.0,
            max_impressions: None,
        }
    }

    #[test]
    fn never_a_seen_item_and_prefers_interests() {
        let c = catalog();
        // the user saw the 500 best items overall
        let best: Vec<String> = c
            .by_score()
            .take(500)
            .map(|s| String::from_utf8(c.item(s).unwrap().id.to_vec()).unwrap())
            .collect();
        let a = fan_of(b"hockey", &best);
        let profile = Profile {
            activity: Some(&a),
            impressions: None,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let picks = surface(&c, profile, &req(10), 0, &mut rng);
        assert_eq!(picks.len(), 10);
        let hockey = c.category_id(b"hockey").unwrap();
        let mut in_pref = 0;
        for p in &picks {
            let item = c.item(p.slot).unwrap();
            assert!(!a.has_seen(&item.id));
            in_pref += usize::from(item.categories.contains(&hockey));
        }
        assert!(
            in_pref >= 8,
            "{in_pref} of 10 in the preferred category: {:?}",
            ids(&c, &picks)
        );
        assert!(
            picks.windows(2).all(|w| w[0].rank >= w[1].rank),
            "best first"
        );
    }

    #[test]
    fn category_filter_and_cold_start() {
        let c = catalog();
        let mut rng = StdRng::seed_from_u64(2);
        let r = Ranking {
            category: Some(b"news"),
            ..req(5)
        };
        let picks = surface(&c, Profile::default(), &r, 0, &mut rng);
        let news = c.category_id(b"news").unwrap();
        assert_eq!(picks.len(), 5);
        assert!(picks
            .iter()
            .all(|p| c.item(p.slot).unwrap().categories.contains(&news)));
        let cold = surface(&c, Profile::default(), &req(3), 0, &mut rng);
        let top: Vec<u32> = c.by_score().take(3).collect();
        assert_eq!(cold.iter().map(|p| p.slot).collect::<Vec<_>>(), top);
        let none = Ranking {
            category: Some(b"unknown"),
            ..req(5)
        };
        assert!(surface(&c, Profile::default(), &none, 0, &mut rng).is_empty());
    }

    #[test]
    fn exploration_takes_about_its_share() {
        let c = catalog();
        let mut rng = StdRng::seed_from_u64(3);
        let base: Vec<u32> = surface(&c, Profile::default(), &req(10), 0, &mut rng)
            .iter()
            .map(|p| p.slot)
            .collect();
        let r = Ranking {
            explore: 0.2,
            ..req(10)
        };
        let (mut explored, mut total) = (0, 0);
        for _ in 0..1_000 {
            let picks = surface(&c, Profile::default(), &r, 0, &mut rng);
            total += picks.len();
            explored += picks
                .iter()
                .filter(|p| p.explored && !base.contains(&p.slot))
                .count();
        }
        let share = explored as f64 / total as f64;
        assert!((0.17..=0.23).contains(&share), "explored share {share}");
    }

    #[test]
    fn a_heavy_viewer_still_gets_unseen_items() {
        let c = catalog();
        let best: Vec<String> = c
            .by_score()
            .take(6_000)
            .map(|s| String::from_utf8(c.item(s).unwrap().id.to_vec()).unwrap())
            .collect();
        let mut a = Activity::new(&SketchParams::default());
        for (i, s) in best.iter().enumerate() {
            a.record(s.as_bytes(), &[], i as i64);
        }
        let profile = Profile {
            activity: Some(&a),
            impressions: None,
        };
        let picks = surface(&c, profile, &req(10), 0, &mut StdRng::seed_from_u64(5));
        assert_eq!(picks.len(), 10);
    }

    #[test]
    fn impression_cap_and_expiry() {
        let mut c = Catalog::default();
        c.add(b"a", 3.0, &[], None);
        c.add(b"b", 2.0, &[], Some(100));
        c.add(b"c", 1.0, &[], None);
        let mut imp = Impressions::new(64);
        imp.record(b"a");
        imp.record(b"a");
        let profile = Profile {
            activity: None,
            impressions: Some(&imp),
        };
        let mut rng = StdRng::seed_from_u64(4);
        let r = Ranking {
            max_impressions: Some(2),
            ..req(3)
        };
        let picks = surface(&c, profile, &r, 100, &mut rng);
        assert_eq!(ids(&c, &picks), vec!["c"], "a is capped, b expired");
        assert_eq!(
            filter_items(&[b"c", b"a", b"b"], profile, 10, Some(2)),
            vec![&b"c"[..], &b"b"[..]]
        );
    }

    /// rank = interest x in-category popularity: a well-liked item of the user's own category
    /// outranks the catalog's most popular item of a category the user never reads (the old sum,
    /// affinity + score / scale, put the latter first).
    #[test]
    fn affinity_times_popularity_prefers_the_users_category() {
        let mut c = Catalog::default();
        c.add(b"star", 100.0, &[b"news"], None); // the catalog's most popular, off-interest
        c.add(b"golf1", 20.0, &[b"golf"], None);
        c.add(b"golf2", 1.0, &[b"golf"], None);
        c.add(b"news2", 50.0, &[b"news"], None);
        let mut a = Activity::new(&SketchParams::default());
        for i in 0..9 {
            a.record(format!("g{i}").as_bytes(), &[b"golf"], i);
        }
        a.record(b"n0", &[b"tech"], 9);
        let profile = Profile {
            activity: Some(&a),
            impressions: None,
        };
        let picks = surface(&c, profile, &req(4), 10, &mut StdRng::seed_from_u64(8));
        assert_eq!(ids(&c, &picks), ["golf1", "star", "golf2", "news2"]);
        let golf = a.interests.normalized()[0].1;
        let expected = personal_rank(golf, 0.2);
        assert!((picks[0].rank - expected).abs() < 1e-12, "{picks:?}");
        assert!(picks.iter().all(|p| (0.0..=1.0).contains(&p.rank)));
        assert_eq!(personal_rank(1.0, 1.0), 1.0);
        // a cold start still ranks by score / scale
        let cold = surface(
            &c,
            Profile::default(),
            &req(2),
            10,
            &mut StdRng::seed_from_u64(8),
        );
        assert_eq!(ids(&c, &cold), ["star", "news2"]);
        assert!((cold[0].rank - 1.0).abs() < 1e-12 && (cold[1].rank - 0.5).abs() < 1e-12);
    }

    /// With a boost, the trend slots go to the items rising fastest (velocity trend), not to the
    /// one that leads the decayed counts, each only within TREND_SLOT_SHARE of the top's (an item
    /// the user has seen still sets the bar); the other slots keep the personal order.
    #[test]
    fn a_boost_gives_the_rising_items_the_first_slots() {
        let mut c = catalog();
        for id in [&b"old"[..], b"new", b"new2", b"mid"] {
            c.add(id, 0.001, &[b"news"], None);
        }
        let mut t = Trending::new(crate::surface::trending::TrendParams {
            top_k: 16,
            half_life_s: 60,
        });
        // one view a second: old from 0 to 120 s, then none; new from 130 s, new2 from 140 s;
        // mid one every 4 s throughout (steady); now = 150 s
        for s in 0..=150i64 {
            if s <= 120 {
                t.record(b"old", s * 1000);
            }
            if s >= 130 {
                t.record(b"new", s * 1000);
            }
            if s >= 140 {
                t.record(b"new2", s * 1000);
            }
            if s % 4 == 0 {
                t.record(b"mid", s * 1000);
            }
        }
        t.record(b"item7", 0);
        let now = 150_000;
        let top: Vec<&[u8]> = t.iter().map(|(id, _)| id).take(2).collect();
        assert_eq!(
            top,
            [&b"old"[..], b"new"],
            "old still leads the decayed counts"
        );
        let mut a = fan_of(b"hockey", &[]);
        for i in 0..5 {
            a.record(format!("seen{i}").as_bytes(), &[b"hockey"], i);
        }
        let profile = Profile {
            activity: Some(&a),
            impressions: None,
        };
        let boost = Some(Boost {
            trending: &t,
            weight: 0.01,
        });
        let mut rng = StdRng::seed_from_u64(9);
        let picks = surface_boosted(&c, profile, &req(10), boost, now, &mut rng);
        assert_eq!(picks.len(), 10);
        assert_eq!(ids(&c, &picks[..2]), ["new", "new2"], "the rising ones");
        let plain = surface(&c, profile, &req(10), now, &mut rng);
        let rest: Vec<u32> = picks[2..].iter().map(|p| p.slot).collect();
        let plain8: Vec<u32> = plain.iter().take(8).map(|p| p.slot).collect();
        assert_eq!(
            rest, plain8,
            "old and mid get no slot; the others keep the personal order"
        );
        let best = plain[0].rank;
        assert!((picks[2].rank - plain[0].rank / best).abs() < 1e-12);
        // COUNT 1 keeps the single fastest riser
        let picks = surface_boosted(&c, profile, &req(1), boost, now, &mut rng);
        assert_eq!(ids(&c, &picks), ["new"]);
        // seen: the top still sets the bar, so the next trending items get no slot
        a.record(b"new", &[b"news"], 6);
        a.record(b"new2", &[b"news"], 7);
        let profile = Profile {
            activity: Some(&a),
            impressions: None,
        };
        let picks = surface_boosted(&c, profile, &req(10), boost, now, &mut rng);
        let plain = surface(&c, profile, &req(10), now, &mut rng);
        assert_eq!(ids(&c, &picks), ids(&c, &plain), "no trend slot");
        // the same events in the same order: the same picks (replicas)
        let mut u = Trending::new(t.params());
        for s in 0..=150i64 {
            if s <= 120 {
                u.record(b"old", s * 1000);
            }
            if s >= 130 {
                u.record(b"new", s * 1000);
            }
            if s >= 140 {
                u.record(b"new2", s * 1000);
            }
            if s % 4 == 0 {
                u.record(b"mid", s * 1000);
            }
        }
        u.record(b"item7", 0);
        assert_eq!(u, t);
    }

    #[test]
    fn filtered_exploration_draws_members_of_a_big_catalog() {
        let mut c = Catalog::default();
        for i in 0..20_000u32 {
            let cats: &[&[u8]] = if i % 3 == 0 { &[b"c"] } else { &[b"d"] };
            c.add(format!("i{i}").as_bytes(), f64::from(i % 97), cats, None);
        }
        let mut r = req(1000);
        r.explore = 1.0;
        r.category = Some(b"c");
        let picks = surface(&c, Profile::default(), &r, 0, &mut StdRng::seed_from_u64(7));
        assert!(picks.len() == 1000, "{}", picks.len());
        let cid = c.category_id(b"c").unwrap();
        let mut slots: Vec<u32> = picks.iter().map(|p| p.slot).collect();
        assert!(slots
            .iter()
            .all(|&s| c.item(s).unwrap().categories.contains(&cid)));
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 1000, "distinct");
        assert!(picks.iter().filter(|p| p.explored).count() > 900);
    }
}
