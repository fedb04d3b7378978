//! Hostile input for the saved forms: `session_core::codec::decode` (sessions: RDB, DUMP/RESTORE,
//! SESSION.LOAD) and `codec::registry::decode` (the registry's aux data).
//!
//! - Random sessions and registries, built through the domain's own operations, round-trip
//!   exactly (`decode(encode(x))`, and re-encoding gives the same bytes).
//! - Arbitrary bytes, and valid encodings damaged by bit flips, byte overwrites, insertions,
//!   deletions and truncations, decode or are refused, never a panic. A session that is accepted is
//!   canonical (it re-encodes to exactly the input) and usable: every operation the module runs on
//!   a stored session (touch with an event, ENRICH, SURFACE, INBOX, INFO, MEMORY USAGE, expiry)
//!   works on it without a panic or an arithmetic overflow (this file runs in the dev profile,
//!   overflow checks on, in `.ci/run`).
//!
//! `PROPTEST_CASES` raises the case count (`make test-slow` does).

use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;
use session_core::codec::info::session_info;
use session_core::codec::registry as saved_registry;
use session_core::codec::{decode, encode, ENCODING_VERSION};
use session_core::enrich::{self, Enrich, Thresholds};
use session_core::notify::{acknowledge, pending, JoinWindow};
use session_core::registry::{Limits, Registry};
use session_core::surface::catalog::Catalog;
use session_core::surface::{filter_items, surface, Profile, Ranking};
use session_core::{Session, SketchParams, Touch};

/// A plausible "now" for exercising decoded sessions (2023-11).
const NOW: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Touch {
        dt: i64,
        idle: Option<u32>,
        maxage: Option<u32>,
        user: Option<Vec<u8>>,
        set: Vec<(Vec<u8>, Vec<u8>)>,
        del: Vec<Vec<u8>>,
        event: Option<(Vec<u8>, Vec<Vec<u8>>)>,
    },
    Enrich {
        dt: i64,
        attrs: Option<String>,
        join: Vec<Vec<u8>>,
        leave: Vec<Vec<u8>>,
    },
    Impress(Vec<Vec<u8>>, u32),
    Cursor(Vec<u8>, u64),
}

/// Small alphabets so that names collide (overwrites, deletes, repeats, seen items).
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (0u8..12).prop_map(|n| format!("n{n}").into_bytes()),
        1 => vec(any::<u8>(), 0..6),
    ]
}

fn attrs() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"churn":0.12}"#.to_owned()),
        Just(r#"{"geo":{"country":"SE","city":null}}"#.to_owned()),
        Just(r#"{"churn":null}"#.to_owned()),
        (0u32..1000).prop_map(|n| format!(r#"{{"score":{n},"tags":["a","b"]}}"#)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            -100_000i64..4_000_000,
            prop::option::of(1u32..=315_360_000),
            prop::option::of(1u32..=315_360_000),
            prop::option::of(name()),
            vec((name(), vec(any::<u8>(), 0..10)), 0..4),
            vec(name(), 0..3),
            prop::option::of((name(), vec(name(), 0..4))),
        )
            .prop_map(|(dt, idle, maxage, user, set, del, event)| Op::Touch {
                dt,
                idle,
                maxage,
                user,
                set,
                del,
                event,
            }),
        2 => (0i64..4_000_000, prop::option::of(attrs()), vec(name(), 0..3), vec(name(), 0..2))
            .prop_map(|(dt, attrs, join, leave)| Op::Enrich { dt, attrs, join, leave }),
        1 => (vec(name(), 1..6), 16u32..64).prop_map(|(items, w)| Op::Impress(items, w)),
        1 => (name(), 1u64..u64::MAX).prop_map(|(g, s)| Op::Cursor(g, s)),
    ]
}

fn params() -> impl Strategy<Value = SketchParams> {
    (1u32..300, 1e-6f64..0.25, 4u8..=12, 1u16..20, 1u32..100_000).prop_map(
        |(seen_capacity, seen_error, hll_precision, top_n, half_life_s)| SketchParams {
            seen_capacity,
            seen_error,
            hll_precision,
            top_n,
            half_life_s,
        },
    )
}

/// A session built the way the module builds them.
fn build(start: i64, idle: u32, maxage: u32, sketch: &SketchParams, ops: &[Op]) -> Session {
    let mut s = Session::new(start, idle, maxage);
    let mut now = start;
    for op in ops {
        match op {
            Op::Touch {
                dt,
                idle,
                maxage,
                user,
                set,
                del,
                event,
            } => {
                now += dt;
                let del: Vec<&[u8]> = del.iter().map(Vec::as_slice).collect();
                let categories: Vec<&[u8]> = event
                    .as_ref()
                    .map(|(_, c)| c.iter().map(Vec::as_slice).collect())
                    .unwrap_or_default();
                let t = Touch {
                    idle_s: *idle,
                    maxage_s: *maxage,
                    user: user.as_deref(),
                    set: set.iter().map(|(n, v)| (&n[..], &v[..])).collect(),
                    del: &del,
                    event: event.as_ref().map(|(i, _)| &i[..]),
                    categories: &categories,
                    ..Touch::default()
                };
                s.apply_touch(&t, now, false, sketch);
            }
            Op::Enrich {
                dt,
                attrs,
                join,
                leave,
            } => {
                now += dt;
                let req = Enrich {
                    attrs: attrs.as_deref().map(str::as_bytes),
                    join: join.iter().map(Vec::as_slice).collect(),
                    leave: leave.iter().map(Vec::as_slice).collect(),
                    ..Enrich::default()
                };
                if let Ok(merged) = enrich::plan(&s, &req, 65_536, 64) {
                    enrich::apply(&mut s, &req, merged, now, &Thresholds::default());
                }
            }
            Op::Impress(items, width) => {
                let items: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                s.record_impressions(&items, *width);
            }
            Op::Cursor(group, seq) => {
                if let Err(i) = s.cursors.binary_search_by(|(g, _)| (**g).cmp(group)) {
                    s.cursors.insert(i, (group[..].into(), *seq));
                }
            }
        }
    }
    s
}

fn session() -> impl Strategy<Value = Session> {
    (
        NOW - 10_000_000_000..NOW + 10_000_000_000,
        1u32..=315_360_000,
        1u32..=315_360_000,
        params(),
        vec(op(), 0..40),
    )
        .prop_map(|(start, idle, maxage, p, ops)| build(start, idle, maxage, &p, &ops))
}

/// A damage to a byte string.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    /// Overwrites a byte with a varint-ish extreme (the high bit set: lengths grow huge).
    Extreme(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Damage::Flip(i, 1 << b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => any::<usize>().prop_map(Damage::Remove),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => any::<usize>().prop_map(Damage::Extreme),
    ]
}

fn apply_damage(bytes: &mut Vec<u8>, d: &Damage) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match *d {
        Damage::Flip(i, mask) => {
            let i = at(i);
            bytes[i] ^= mask;
        }
        Damage::Set(i, b) => {
            let i = at(i);
            bytes[i] = b;
        }
        Damage::Insert(i, b) => {
            let i = at(i);
            bytes.insert(i, b);
        }
        Damage::Remove(i) => {
            let i = at(i);
            bytes.remove(i);
        }
        Damage::Truncate(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
        Damage::Extreme(i) => {
            let i = at(i);
            bytes[i] = 0xff;
        }
    }
}

/// Runs on a decoded session everything the module may run on a stored one.
fn exercise(s: &Session) {
    let _ = s.heap_size();
    let _ = s.deadline_ms();
    let _ = s.events();
    let _ = s.unique();
    let _ = session_info(s, NOW);
    if let Some(a) = &s.activity {
        let _ = a.active_minutes_last_hour(NOW);
        let _ = a.peak_hour();
        let _ = a.has_seen(b"n1");
    }

    // a catalog and a group for SURFACE and INBOX
    let mut catalog = Catalog::default();
    for i in 0..20u8 {
        let id = format!("n{i}");
        let cat = format!("n{}", i % 5);
        catalog.add(
            id.as_bytes(),
            f64::from(i),
            &[cat.as_bytes(), b"news"],
            None,
        );
    }
    let mut with_categories = Catalog::default();
    for i in 0..12u8 {
        let id = format!("n{i}");
        let cat = format!("n{}", i % 4);
        with_categories.add(
            id.as_bytes(),
            f64::from(i) - 3.0,
            &[cat.as_bytes()],
            Some(NOW + 1),
        );
    }
    let profile = Profile {
        activity: s.activity.as_ref(),
        impressions: s.impressions.as_deref(),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for cat in [&catalog, &with_categories] {
        for (explore, max) in [(0.0, None), (0.5, Some(1)), (1.0, Some(255))] {
            let ranking = Ranking {
                count: 10,
                category: None,
                explore,
                max_impressions: max,
            };
            let _ = surface(cat, profile, &ranking, NOW, &mut rng);
        }
    }
    let items: [&[u8]; 3] = [b"n1", b"n2", b"zz"];
    let _ = filter_items(&items, profile, 3, Some(2));

    let mut registry = Registry::default();
    for g in s
        .groups
        .iter()
        .map(|(g, _)| g)
        .chain(s.cursors.iter().map(|(g, _)| g))
    {
        registry
            .publish(
                g,
                b"id",
                b"payload",
                NOW,
                NOW + 60_000,
                10,
                None,
                Limits::NONE,
            )
            .unwrap();
        // and one restricted to members that joined before now (JOINEDBEFORE NOW)
        registry
            .publish(
                g,
                b"restricted",
                b"payload",
                NOW,
                NOW + 60_000,
                10,
                None,
                Limits::NONE,
            )
            .unwrap();
        let seq = registry.last_seq;
        registry.set_window(
            g,
            seq,
            JoinWindow {
                after: 0,
                before: NOW,
            },
        );
    }
    registry
        .publish(
            b"new",
            b"id",
            b"payload",
            NOW,
            NOW + 60_000,
            10,
            None,
            Limits::NONE,
        )
        .unwrap();

    // writes on a copy: touch with an event (past, present, far future), impressions, ENRICH,
    // INBOX, and the result still round-trips
    let mut w = s.clone();
    for (t, item) in [
        (NOW, &b"n1"[..]),
        (NOW - 3_600_000, b"n2"),
        (NOW + 86_400_000 * 400, b"n3"),
    ] {
        let touch = Touch {
            set: vec![(b"f", b"v")],
            event: Some(item),
            categories: &[b"news", b"n1"],
            ..Touch::default()
        };
        w.apply_touch(&touch, t, false, &SketchParams::default());
    }
    w.record_impressions(&items, 16);
    let req = Enrich {
        attrs: Some(br#"{"k":1}"#),
        join: vec![b"g"],
        ..Enrich::default()
    };
    if let Ok(merged) = enrich::plan(&w, &req, 65_536, 1_000) {
        enrich::apply(&mut w, &req, merged, NOW, &Thresholds::default());
    }
    let due = pending(&w, &registry.groups, NOW, &Default::default(), usize::MAX);
    let due: Vec<_> = due
        .into_iter()
        .map(|d| (d.group.to_vec(), d.notification.clone()))
        .collect();
    let deliveries: Vec<session_core::notify::Delivery> = due
        .iter()
        .map(|(g, n)| session_core::notify::Delivery {
            group: g,
            notification: n,
        })
        .collect();
    acknowledge(&mut w, &deliveries);
    let bytes = encode(&w);
    assert_eq!(
        decode(&bytes).as_ref(),
        Ok(&w),
        "a touched copy round-trips"
    );
}

/// Values at and around the limits of the integer types and of the decoder's own ranges.
fn extreme() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MIN + 1),
        Just(i64::MAX),
        Just(i64::MAX - 1),
        Just(-1),
        Just(0),
        Just((1 << 52) - 1),
        Just(-(1 << 52)),
        Just(i64::from(u32::MAX)),
        Just(1 << 62),
        any::<i64>(),
    ]
}

/// The numbers of `set_extreme` that the decoder checks well enough today.
const CHECKED_FIELDS: &[usize] = &[0, 1, 2, 4, 6, 7, 8, 10, 11, 12, 13, 14];
/// Last event time, newest minute, interests' reference time: see the ignored test.
const UNCHECKED_FIELDS: &[usize] = &[3, 5, 9];

/// Writes `v` into one of the numbers a saved session carries.
fn set_extreme(s: &mut Session, field: usize, v: i64) {
    match field {
        0 => s.created_ms = v,
        1 => s.last_seen_ms = v,
        _ => {}
    }
    if let Some(a) = s.activity.as_mut() {
        match field {
            2 => a.first_event_ms = v,
            3 => a.last_event_ms = v,
            4 => a.longest_gap_ms = v,
            5 => a.last_minute = v,
            6 => a.minutes = v as u64,
            7 => a.events = v as u64,
            8 => a.hours[(v as u64 % 24) as usize] = v as u32,
            9 => a.interests.as_of_ms = v,
            10 => {
                if let Some(e) = a.interests.entries.first_mut() {
                    e.weight = f64::from_bits(v as u64);
                }
            }
            _ => {}
        }
    }
    match field {
        11 => {
            if let Some(c) = s.calculated.as_mut() {
                c.computed_ms = v;
            }
        }
        12 => {
            if let Some(c) = s.cursors.first_mut() {
                c.1 = v as u64;
            }
        }
        14 => {
            if let Some(g) = s.groups.first_mut() {
                g.1 = v;
            }
        }
        13 => {
            if let Some(g) = s
                .impressions
                .as_mut()
                .and_then(|i| i.generations.first_mut())
            {
                g.distinct = v as u32;
            }
        }
        _ => {}
    }
}

/// A registry built through its own operations.
fn registry() -> impl Strategy<Value = Registry> {
    let item = (
        name(),
        name(),
        -1e6f64..1e6,
        vec(name(), 0..4),
        prop::option::of(0i64..NOW * 2),
    );
    let note = (
        name(),
        name(),
        vec(any::<u8>(), 0..8),
        0i64..NOW,
        1i64..10_000_000,
        // a join restriction: JOINEDAFTER (0: none) and a JOINEDBEFORE span above it (0: none)
        prop::option::of((0i64..NOW, 0i64..1_000_000)),
    );
    (vec(item, 0..30), vec(note, 0..30), 1usize..5).prop_map(|(items, notes, max)| {
        let mut r = Registry::default();
        for (catalog, id, score, cats, expires) in &items {
            let cats: Vec<&[u8]> = cats.iter().map(Vec::as_slice).collect();
            r.catalogs
                .entry(catalog[..].into())
                .or_default()
                .add(id, *score, &cats, *expires);
        }
        for (group, id, payload, at, ttl, window) in &notes {
            let stored = r
                .publish(group, id, payload, *at, at + ttl, max, None, Limits::NONE)
                .unwrap();
            if let (Some((after, span)), session_core::registry::Published::Stored) =
                (window, stored)
            {
                let before = if *span == 0 { i64::MAX } else { after + span };
                let seq = r.last_seq;
                r.set_window(
                    group,
                    seq,
                    JoinWindow {
                        after: *after,
                        before,
                    },
                );
            }
        }
        r
    })
}

fn exercise_registry(r: &mut Registry) {
    let _ = (r.memory(), r.items(), r.notifications());
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for catalog in r.catalogs.values() {
        let _ = (catalog.len(), catalog.category_count(), catalog.memory());
        let ranking = Ranking {
            count: 5,
            category: Some(b"n1"),
            explore: 0.3,
            max_impressions: None,
        };
        let _ = surface(catalog, Profile::default(), &ranking, NOW, &mut rng);
        let _ = catalog.expired(NOW, 10);
    }
    let s = Session::new(NOW, 10, 10);
    let _ = pending(&s, &r.groups, NOW, &Default::default(), usize::MAX);
    r.publish(b"n1", b"fresh", b"p", NOW, NOW + 1, 3, None, Limits::NONE)
        .unwrap();
    r.purge_notifications(NOW + 10);
    let back = saved_registry::decode(&saved_registry::encode(r)).expect("a used registry decodes");
    assert_eq!(
        content(&back),
        content(r),
        "and decodes to the same content"
    );
}

/// What a registry holds, independent of slot and category numbering (the saved form lists an
/// item's categories in the order the catalog first met them, which decoding may renumber).
type Content = (
    Vec<(Vec<u8>, Vec<(Vec<u8>, u64, Option<i64>, Vec<Vec<u8>>)>)>,
    Vec<(Vec<u8>, Vec<session_core::notify::Notification>)>,
    u64,
);

fn content(r: &Registry) -> Content {
    let catalogs = r
        .catalogs
        .iter()
        .map(|(name, c)| {
            let mut items: Vec<_> = c
                .items()
                .map(|item| {
                    let mut cats: Vec<Vec<u8>> = item
                        .categories
                        .iter()
                        .map(|&id| c.category_name(id).to_vec())
                        .collect();
                    cats.sort();
                    (
                        item.id.to_vec(),
                        item.score.to_bits(),
                        item.expires_ms,
                        cats,
                    )
                })
                .collect();
            items.sort();
            (name.to_vec(), items)
        })
        .collect();
    let groups = r
        .groups
        .iter()
        .map(|(name, g)| (name.to_vec(), g.notifications().iter().cloned().collect()))
        .collect();
    (catalogs, groups, r.last_seq)
}

/// `PROPTEST_CASES` when set (`make test-slow`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), ..ProptestConfig::default() })]

    #[test]
    fn sessions_round_trip(s in session()) {
        let bytes = encode(&s);
        prop_assert_eq!(bytes[0], ENCODING_VERSION);
        let back = decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&s));
        prop_assert_eq!(encode(&back.unwrap()), bytes);
        exercise(&s);
    }

    #[test]
    fn truncated_sessions_are_refused(s in session(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&s);
        let n = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..n]).is_err(), "a prefix of {} of {} bytes decoded", n, bytes.len());
    }

    #[test]
    fn damaged_sessions_are_refused_or_valid(s in session(), damages in vec(damage(), 1..6)) {
        let mut bytes = encode(&s);
        for d in &damages {
            apply_damage(&mut bytes, d);
        }
        if let Ok(decoded) = decode(&bytes) {
            if bytes[0] == ENCODING_VERSION {
                prop_assert_eq!(encode(&decoded), bytes, "accepted a non-canonical form");
            } else {
                // The damage made a valid payload of an older version (e.g. 3 -> 2 on a session
                // without version-3 sections): it re-encodes in the current version, same value.
                let again = decode(&encode(&decoded));
                prop_assert_eq!(again.as_ref(), Ok(&decoded));
            }
            exercise(&decoded);
        }
    }

    /// Structure-aware damage: a valid session with extreme values written into the numbers
    /// the decoder reads (times, counters, weights, sequence numbers), encoded as the codec
    /// would. Whatever the decoder accepts must be usable.
    #[test]
    fn extreme_values_are_refused_or_usable(s in session(), picks in vec((prop::sample::select(CHECKED_FIELDS), extreme()), 1..4)) {
        let mut s = s;
        for (field, v) in &picks {
            set_extreme(&mut s, *field, *v);
        }
        if let Ok(decoded) = decode(&encode(&s)) {
            exercise(&decoded);
        }
    }

    /// The activity's own times (last event, newest minute, interests' reference time) must be
    /// refused outside 0..=MAX_AT_MS like the lifecycle's, or the next TOUCH ... EVENT, ENRICH
    /// or INFO would overflow (a panic with overflow checks, wrap-around in release).
    #[test]
    fn extreme_activity_times_are_refused_or_usable(s in session(), picks in vec((prop::sample::select(UNCHECKED_FIELDS), extreme()), 1..4)) {
        let mut s = s;
        for (field, v) in &picks {
            set_extreme(&mut s, *field, *v);
        }
        if let Ok(decoded) = decode(&encode(&s)) {
            exercise(&decoded);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 1u8..=ENCODING_VERSION, body in vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&body);
        if let Ok(decoded) = decode(&bytes) {
            exercise(&decoded);
        }
        let _ = decode(&body);
    }

    #[test]
    fn registries_round_trip(mut r in registry()) {
        let bytes = saved_registry::encode(&r);
        let back = saved_registry::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(content(&back), content(&r));
        prop_assert_eq!(saved_registry::decode(&saved_registry::encode(&back)).map(|b| content(&b)), Ok(content(&r)));
        exercise_registry(&mut r);
    }

    #[test]
    fn damaged_registries_are_refused_or_valid(r in registry(), damages in vec(damage(), 1..6)) {
        let mut bytes = saved_registry::encode(&r);
        for d in &damages {
            apply_damage(&mut bytes, d);
        }
        if let Ok(mut decoded) = saved_registry::decode(&bytes) {
            exercise_registry(&mut decoded);
        }
    }

    #[test]
    fn arbitrary_registry_bytes_never_panic(version in 1u8..=3, body in vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&body);
        if let Ok(mut decoded) = saved_registry::decode(&bytes) {
            exercise_registry(&mut decoded);
        }
    }
}
