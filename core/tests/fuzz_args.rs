//! Hostile input for the argument parsers (`session_core::codec::args::parse_*`): any sequence of
//! arguments, keywords mixed with numbers at their limits and arbitrary bytes, parses or is an
//! error, never a panic; numbers parse exactly as Redis writes them; a well-formed command parses
//! to exactly what it says, and ENRICH's replicated form parses back to the same request.
//!
//! `PROPTEST_CASES` raises the case count (`make test-slow` does).

use proptest::collection::vec;
use proptest::prelude::*;
use session_core::codec::args::{
    enrich_effect_args, parse_catalog_add, parse_enrich, parse_f64, parse_i64, parse_impress,
    parse_inbox, parse_notify, parse_surface, parse_touch, SurfaceSource,
};
use session_core::enrich::Thresholds;

const KEYWORDS: &[&str] = &[
    "IDLE",
    "MAXAGE",
    "XX",
    "USER",
    "SET",
    "DEL",
    "EVENT",
    "CATEGORIES",
    "PARAMS",
    "AT",
    "ATTRS",
    "JOIN",
    "LEAVE",
    "THRESHOLDS",
    "SCORE",
    "TTL",
    "EXPIREAT",
    "FROM",
    "ITEMS",
    "COUNT",
    "CATEGORY",
    "EXPLORE",
    "MAXIMPRESSIONS",
    "NOMARK",
    "WITHSCORES",
    "WIDTH",
    "MAXLEN",
    "SEQ",
    "PEEK",
    "UNREAD",
    "JOINEDBEFORE",
    "JOINEDAFTER",
    "NOW",
    "PIDLE",
    "PMAXAGE",
    "REPLACE",
    "WITHFIELDS",
    "CLEARFIELDS",
    "FIELD",
    "set",
    "Event",
    "at",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-0",
    "01",
    "+1",
    " 1",
    "1 ",
    "255",
    "256",
    "1000",
    "1001",
    "100000",
    "315360000",
    "315360001",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999",
    "16725225600000",
    "16725225600001",
    "315360000000",
    "315360000001",
    "0.5",
    "1e-9",
    "1e300",
    "1e309",
    "-1e300",
    "0.25",
    "0.2500001",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e",
    ".",
    "-",
    "",
    "0x10",
    "1_000",
];

/// One argument: a keyword, a number-like token, or arbitrary bytes.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(KEYWORDS).prop_map(|k| k.as_bytes().to_vec()),
        3 => prop::sample::select(NUMBERS).prop_map(|n| n.as_bytes().to_vec()),
        2 => vec(any::<u8>(), 0..12),
        1 => vec(prop::sample::select(&b"0123456789-+.eE"[..]), 0..24),
    ]
}

fn tokens() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(token(), 0..24)
}

fn as_slices(items: &[Vec<u8>]) -> Vec<&[u8]> {
    items.iter().map(Vec::as_slice).collect()
}

/// `PROPTEST_CASES` when set (`make test-slow`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2_000), ..ProptestConfig::default() })]

    /// Every parser on any argument list: a value or an error, never a panic.
    #[test]
    fn no_parser_panics(items in tokens()) {
        let items = as_slices(&items);
        let _ = parse_touch(&items);
        let _ = parse_enrich(&items);
        let _ = parse_catalog_add(&items);
        let _ = parse_surface(&items);
        let _ = parse_impress(&items);
        if let Ok(n) = parse_notify(&items) {
            // a join restriction is accepted only in range and not empty
            if let Ok(w) = n.window(1_000) {
                prop_assert!(w.is_valid(session_core::codec::args::MAX_AT_MS));
            }
        }
        let _ = parse_inbox(&items);
        for item in &items {
            let _ = parse_i64(item);
            let _ = parse_f64(item);
        }
    }

    /// A parsed TOUCH never holds values outside the documented ranges, and its lists have the
    /// lengths their counts said.
    #[test]
    fn parsed_touch_is_within_range(items in tokens()) {
        let items = as_slices(&items);
        if let Ok(t) = parse_touch(&items) {
            for v in [t.idle_s, t.maxage_s].into_iter().flatten() {
                prop_assert!((1..=315_360_000).contains(&v));
            }
            if let Some(at) = t.at_ms {
                prop_assert!((0..=session_core::codec::args::MAX_AT_MS).contains(&at));
            }
            if let Some(p) = t.params {
                prop_assert!(p.seen_capacity >= 1 && p.seen_error > 0.0 && p.seen_error <= 0.25);
                prop_assert!(p.top_n >= 1);
            }
            prop_assert!(t.categories.is_empty() || t.event.is_some());
        }
        if let Ok(s) = parse_surface(&items) {
            prop_assert!(s.count.is_none_or(|c| (1..=1000).contains(&c)));
            prop_assert!((0.0..=1.0).contains(&s.explore));
            if let SurfaceSource::Items(list) = &s.source {
                prop_assert!(!list.is_empty());
            }
        }
    }

    /// Integers are exactly Redis's canonical decimal form: what parses prints back to the same
    /// bytes, and every i64 parses from its own text.
    #[test]
    fn integers_round_trip(raw in vec(prop::sample::select(&b"0123456789-+ "[..]), 0..22), v in any::<i64>()) {
        if let Some(n) = parse_i64(&raw) {
            prop_assert_eq!(n.to_string().into_bytes(), raw);
        }
        prop_assert_eq!(parse_i64(v.to_string().as_bytes()), Some(v));
    }

    /// Every finite double parses from its shortest text to exactly itself; nothing non-finite
    /// ever parses.
    #[test]
    fn floats_round_trip(v in any::<f64>(), raw in vec(any::<u8>(), 0..16)) {
        if v.is_finite() {
            prop_assert_eq!(parse_f64(v.to_string().as_bytes()), Some(v));
            prop_assert_eq!(parse_f64(format!("{v:e}").as_bytes()), Some(v));
        }
        if let Some(x) = parse_f64(&raw) {
            prop_assert!(x.is_finite());
        }
    }

    /// A well-formed TOUCH, keywords in any order and any case, parses to exactly its values.
    #[test]
    fn well_formed_touch_parses_to_its_values(
        idle in prop::option::of(1u32..=315_360_000),
        maxage in prop::option::of(1u32..=315_360_000),
        xx in any::<bool>(),
        user in prop::option::of(vec(any::<u8>(), 0..8)),
        set in vec((vec(any::<u8>(), 0..6), vec(any::<u8>(), 0..6)), 0..4),
        del in vec(vec(any::<u8>(), 0..6), 0..4),
        event in prop::option::of((vec(any::<u8>(), 0..6), vec(vec(any::<u8>(), 0..6), 0..4))),
        at in prop::option::of(0i64..=16_725_225_600_000),
        order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
        lower in any::<bool>(),
    ) {
        let kw = |k: &str| if lower { k.to_lowercase().into_bytes() } else { k.as_bytes().to_vec() };
        let mut clauses: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 7];
        if let Some(i) = idle { clauses[0] = vec![kw("IDLE"), i.to_string().into_bytes()]; }
        if let Some(m) = maxage { clauses[1] = vec![kw("MAXAGE"), m.to_string().into_bytes()]; }
        if xx { clauses[2] = vec![kw("XX")]; }
        if let Some(u) = &user { clauses[3] = vec![kw("USER"), u.clone()]; }
        if !set.is_empty() {
            clauses[4] = vec![kw("SET"), set.len().to_string().into_bytes()];
            for (n, v) in &set { clauses[4].push(n.clone()); clauses[4].push(v.clone()); }
        }
        if !del.is_empty() {
            clauses[5] = vec![kw("DEL"), del.len().to_string().into_bytes()];
            clauses[5].extend(del.iter().cloned());
        }
        if let Some((item, cats)) = &event {
            clauses[6] = vec![kw("EVENT"), item.clone()];
            if !cats.is_empty() {
                clauses[6].push(kw("CATEGORIES"));
                clauses[6].push(cats.len().to_string().into_bytes());
                clauses[6].extend(cats.iter().cloned());
            }
        }
        let mut args: Vec<Vec<u8>> = order.iter().flat_map(|&i| clauses[i].clone()).collect();
        if let Some(at) = at {
            args.push(kw("AT"));
            args.push(at.to_string().into_bytes());
        }
        let items = as_slices(&args);
        let t = parse_touch(&items).map_err(|e| TestCaseError::fail(format!("{e}: {args:?}")))?;
        prop_assert_eq!(t.idle_s, idle);
        prop_assert_eq!(t.maxage_s, maxage);
        prop_assert_eq!(t.xx, xx);
        prop_assert_eq!(t.user, user.as_deref());
        let set_parsed: Vec<(Vec<u8>, Vec<u8>)> = t.set.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(&set_parsed, &set);
        let del_parsed: Vec<Vec<u8>> = t.del.iter().map(|n| n.to_vec()).collect();
        prop_assert_eq!(del_parsed, del);
        prop_assert_eq!(t.event.map(<[u8]>::to_vec), event.as_ref().map(|(i, _)| i.clone()));
        let cats: Vec<Vec<u8>> = t.categories.iter().map(|c| c.to_vec()).collect();
        prop_assert_eq!(cats, event.map(|(_, c)| c).unwrap_or_default());
        prop_assert_eq!(t.at_ms, at);
        // the same clause twice is a syntax error
        if let Some(dup) = clauses.iter().find(|c| !c.is_empty()) {
            let mut twice = args.clone();
            twice.extend(dup.iter().cloned());
            prop_assert!(parse_touch(&as_slices(&twice)).is_err());
        }
        // a count that overstates what follows is refused, never read past the end
        if !set.is_empty() {
            let mut lying = args.clone();
            let pos: usize = order.iter().take_while(|&&i| i != 4).map(|&i| clauses[i].len()).sum();
            lying[pos + 1] = (set.len() * 1000).to_string().into_bytes();
            prop_assert!(parse_touch(&as_slices(&lying)).is_err());
        }
    }

    /// ENRICH parses, and its replicated form (time and rules explicit) parses back to the same
    /// request.
    #[test]
    fn enrich_effect_form_round_trips(items in tokens(), at in 0i64..=16_725_225_600_000,
                                      engaged in 0.0f64..=1.0, dormant in 1u32..=315_360_000,
                                      gap in 1u32..=315_360_000, weight in 0.0f64..=1.0) {
        let items = as_slices(&items);
        if let Ok(e) = parse_enrich(&items) {
            let rules = Thresholds { engaged, dormant_after_s: dormant, returning_gap_s: gap, interest_weight: weight };
            let effect = enrich_effect_args(&e, &rules, at);
            let again = as_slices(&effect);
            let back = parse_enrich(&again).map_err(|err| TestCaseError::fail(format!("{err}: {effect:?}")))?;
            prop_assert_eq!(back.attrs, e.attrs);
            prop_assert_eq!(&back.join, &e.join);
            prop_assert_eq!(&back.leave, &e.leave);
            prop_assert_eq!(back.at_ms, Some(at));
            prop_assert_eq!(back.thresholds, Some(rules));
        }
    }

    /// CATALOG ADD, NOTIFYGROUP, SURFACE, IMPRESS and INBOX in their well-formed shapes parse to
    /// their values.
    #[test]
    fn registry_commands_parse_to_their_values(
        catalog in vec(any::<u8>(), 0..8), item in vec(any::<u8>(), 0..8),
        score in -1e300f64..1e300, cats in vec(vec(any::<u8>(), 0..5), 1..5),
        ttl in 1i64..=315_360_000, count in 1usize..=1000, explore in 0.0f64..=1.0,
        maxlen in 1usize..=100_000,
    ) {
        let score_text = score.to_string();
        let mut add: Vec<Vec<u8>> = vec![catalog.clone(), item.clone(), b"SCORE".to_vec(), score_text.into_bytes(),
            b"CATEGORIES".to_vec(), cats.len().to_string().into_bytes()];
        add.extend(cats.iter().cloned());
        add.extend([b"TTL".to_vec(), ttl.to_string().into_bytes()]);
        let add_items = as_slices(&add);
        let a = parse_catalog_add(&add_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(a.catalog, &catalog[..]);
        prop_assert_eq!(a.item, &item[..]);
        prop_assert_eq!(a.score, score);
        prop_assert_eq!(a.categories.len(), cats.len());
        prop_assert_eq!(a.ttl_s, Some(ttl));

        let notify: Vec<Vec<u8>> = vec![catalog.clone(), item.clone(), b"payload".to_vec(),
            b"TTL".to_vec(), ttl.to_string().into_bytes(), b"MAXLEN".to_vec(), maxlen.to_string().into_bytes()];
        let notify_items = as_slices(&notify);
        let n = parse_notify(&notify_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!((n.group, n.id, n.ttl_s, n.max_len), (&catalog[..], &item[..], Some(ttl), Some(maxlen)));
        prop_assert_eq!(n.window(5), Ok(session_core::notify::JoinWindow::ANY));

        // JOINEDAFTER a JOINEDBEFORE b: the window [a, b) when a < b, else refused; NOW is the
        // publication's time
        let (a, b) = (ttl, ttl + maxlen as i64 - 50_000);
        let restricted: Vec<Vec<u8>> = vec![catalog.clone(), item.clone(), b"p".to_vec(),
            b"JOINEDAFTER".to_vec(), a.to_string().into_bytes(), b"JOINEDBEFORE".to_vec(), b.max(0).to_string().into_bytes()];
        let restricted_items = as_slices(&restricted);
        let r = parse_notify(&restricted_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if a < b {
            prop_assert_eq!(r.window(0), Ok(session_core::notify::JoinWindow { after: a, before: b }));
        } else {
            prop_assert!(r.window(0).is_err());
        }
        let now: Vec<Vec<u8>> = vec![catalog.clone(), item.clone(), b"p".to_vec(), b"joinedbefore".to_vec(), b"now".to_vec()];
        let now_items = as_slices(&now);
        let r = parse_notify(&now_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.window(ttl), Ok(session_core::notify::JoinWindow { after: 0, before: ttl }));

        let surface: Vec<Vec<u8>> = vec![b"FROM".to_vec(), catalog.clone(), b"COUNT".to_vec(), count.to_string().into_bytes(),
            b"EXPLORE".to_vec(), explore.to_string().into_bytes(), b"NOMARK".to_vec(), b"WITHSCORES".to_vec()];
        let surface_items = as_slices(&surface);
        let s = parse_surface(&surface_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(s.source, SurfaceSource::Catalog(&catalog[..]));
        prop_assert_eq!((s.count, s.explore, s.nomark, s.with_scores), (Some(count), explore, true, true));

        let mut impress: Vec<Vec<u8>> = vec![cats.len().to_string().into_bytes()];
        impress.extend(cats.iter().cloned());
        let impress_items = as_slices(&impress);
        let (list, width) = parse_impress(&impress_items).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(list.len(), cats.len());
        prop_assert_eq!(width, None);

        let inbox: Vec<Vec<u8>> = vec![b"peek".to_vec(), b"COUNT".to_vec(), count.to_string().into_bytes()];
        let parsed = parse_inbox(&as_slices(&inbox)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // PEEK lists unread (UNREAD is its synonym)
        prop_assert_eq!((parsed.count, parsed.unread, parsed.at_ms), (Some(count), true, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2_000), ..ProptestConfig::default() })]

    /// The web additions (issue 17) on any argument list: REPLACE never beside SET or DEL,
    /// lifetimes in milliseconds within range once rounded, WITHFIELDS' named list never empty
    /// when a count was given; ROTATE's and UPGRADE's options parse or are refused.
    #[test]
    fn web_additions_parse_within_range(items in tokens()) {
        let items = as_slices(&items);
        let _ = session_core::codec::args::parse_rotate(&items);
        let _ = session_core::codec::args::parse_upgrade(&items);
        if let Ok(t) = parse_touch(&items) {
            if t.replace.is_some() {
                prop_assert!(t.set.is_empty() && t.del.is_empty());
            }
            for v in [t.idle_s, t.maxage_s].into_iter().flatten() {
                prop_assert!((1..=315_360_000).contains(&v));
            }
        }
    }

    /// A well-formed REPLACE / WITHFIELDS / PIDLE parses to exactly what it says.
    #[test]
    fn well_formed_web_touch_parses_to_its_values(
        pairs in vec((vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..8)), 0..6),
        names in vec(vec(any::<u8>(), 0..8), 0..4),
        pidle in 1i64..=315_360_000_000,
    ) {
        let mut items: Vec<Vec<u8>> = vec![b"PIDLE".to_vec(), pidle.to_string().into_bytes()];
        items.push(b"REPLACE".to_vec());
        items.push(pairs.len().to_string().into_bytes());
        for (n, v) in &pairs {
            items.push(n.clone());
            items.push(v.clone());
        }
        items.push(b"WITHFIELDS".to_vec());
        if !names.is_empty() {
            items.push(names.len().to_string().into_bytes());
            items.extend(names.iter().cloned());
        }
        let slices = as_slices(&items);
        let t = parse_touch(&slices).expect("well formed");
        prop_assert_eq!(t.idle_s, Some(((pidle + 999) / 1000) as u32));
        let replace = t.replace.expect("REPLACE");
        prop_assert_eq!(replace.len(), pairs.len());
        for ((n, v), (pn, pv)) in replace.iter().zip(&pairs) {
            prop_assert_eq!((*n, *v), (pn.as_slice(), pv.as_slice()));
        }
        let with: Vec<&[u8]> = t.with_fields.expect("WITHFIELDS").to_vec();
        prop_assert_eq!(with, as_slices(&names));
    }
}
