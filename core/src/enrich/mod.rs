//! Calculated data: what `SESSION.ENRICH` infers from a session's activity, plus the attributes
//! other services supply and the session's explicit groups.
//!
//! Engagement, in [0, 1], mixes recency, frequency and breadth:
//!
//! ```text
//! recency   = 2^(-(now - last_event) / dormant_after)     1 right after an event, 1/2 when dormant
//! frequency = 1 - e^(-events / 20)                        ~0.4 at 10 events, ~0.92 at 50
//! breadth   = 1 - e^(-unique_items / 10)                  ~0.63 at 10 distinct items
//! engagement = 0.4 * recency + 0.35 * frequency + 0.25 * breadth     (0 without events)
//! ```
//!
//! Segments (each present exactly when its rule holds):
//! - `new`: at most one event;
//! - `returning`: a pause of at least `returning_gap` between two consecutive events;
//! - `engaged`: engagement >= `engaged`;
//! - `dormant`: no event (or, without events, no touch) for at least `dormant_after`;
//! - `interest:<category>`: the category's normalized interest weight >= `interest_weight`.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::json::{bytes_key, bytes_value};
use crate::session::calculated::Calculated;
use crate::session::Session;

/// Segment rules, from the module configuration; carried in the replicated command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub engaged: f64,
    pub dormant_after_s: u32,
    pub returning_gap_s: u32,
    pub interest_weight: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            engaged: 0.5,
            dormant_after_s: 1800,
            returning_gap_s: 1800,
            interest_weight: 0.25,
        }
    }
}

/// One `SESSION.ENRICH`, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrich<'a> {
    pub attrs: Option<&'a [u8]>,
    pub join: Vec<&'a [u8]>,
    pub leave: Vec<&'a [u8]>,
    pub at_ms: Option<i64>,
    /// Explicit rules (replication form); the configuration's otherwise.
    pub thresholds: Option<Thresholds>,
    /// `NEWONLY`: the groups this call joins deliver only what is published after it.
    pub new_only: bool,
}

impl Enrich<'_> {
    /// The groups of `join` the session is not a member of yet (sorted, distinct): those
    /// `NEWONLY` starts from now.
    pub fn newly_joined(&self, session: &Session) -> Vec<Vec<u8>> {
        let mut fresh: Vec<Vec<u8>> = self
            .join
            .iter()
            .filter(|g| {
                session
                    .groups
                    .binary_search_by(|(m, _)| (**m).cmp(g))
                    .is_err()
            })
            .map(|g| g.to_vec())
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        fresh
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Parses ATTRS: it must be a JSON object.
pub fn parse_attrs(raw: &[u8]) -> Result<Value> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::AttrsNotObject),
        Err(_) => Err(Error::InvalidJson),
    }
}

/// Engagement in [0, 1] (formula in the module documentation above).
pub fn engagement(events: u64, unique: u64, idle_ms: i64, dormant_after_s: u32) -> f64 {
    if events == 0 {
        return 0.0;
    }
    let scale = f64::from(dormant_after_s.max(1)) * 1000.0;
    let recency = libm::exp2(-(idle_ms.max(0) as f64) / scale);
    let frequency = 1.0 - libm::exp(-(events as f64) / 20.0);
    let breadth = 1.0 - libm::exp(-(unique as f64) / 10.0);
    (0.4 * recency + 0.35 * frequency + 0.25 * breadth).clamp(0.0, 1.0)
}

/// Checks an ENRICH against the session and limits before anything changes; returns the merged
/// attributes it would store.
pub fn plan(
    session: &Session,
    req: &Enrich,
    max_attrs_size: usize,
    max_groups: usize,
) -> Result<Option<Value>> {
    // Counts and lengths first, before any parsing or set building.
    if req.join.len() > max_groups.saturating_add(req.leave.len()) {
        return Err(Error::TooManyGroups { limit: max_groups });
    }
    let merged = match req.attrs {
        None => None,
        Some(raw) => {
            // The document a patch yields is at most about as long as the patch plus what is
            // stored: a patch longer than the limit and the stored document is refused unread.
            let stored = session.calculated.as_ref().map_or(0, |c| c.attrs.len());
            if raw.len() > max_attrs_size.max(stored) {
                return Err(Error::AttrsTooLarge {
                    limit: max_attrs_size,
                });
            }
            let patch = parse_attrs(raw)?;
            let mut current = stored_attrs(session);
            merge_patch(&mut current, &patch);
            // Only growth is refused: attributes left above a lowered limit can still shrink.
            let size = serde_json::to_vec(&current).map_or(usize::MAX, |v| v.len());
            let stored = session.calculated.as_ref().map_or(0, |c| c.attrs.len());
            if size > max_attrs_size && size > stored {
                return Err(Error::AttrsTooLarge {
                    limit: max_attrs_size,
                });
            }
            Some(current)
        }
    };
    let after = groups_after(session, req, 0, &[]).len();
    if after > max_groups && after > session.groups.len() {
        return Err(Error::TooManyGroups { limit: max_groups });
    }
    Ok(merged)
}

/// The session's groups once `req`'s JOIN then LEAVE apply, sorted, each with its join time: a
/// group it is already in keeps its recorded time; a new one gets `now_ms`, or the session's
/// creation time when it is one of `derived` (the segments the session qualifies for now: it was
/// already a member, with the derived join time, so a join restriction it passed still holds).
/// O((G + J + L) log(G + J + L) + J·S).
fn groups_after<'s>(
    session: &'s Session,
    req: &Enrich<'s>,
    now_ms: i64,
    derived: &[Vec<u8>],
) -> Vec<(&'s [u8], i64)> {
    let leave: std::collections::BTreeSet<&[u8]> = req.leave.iter().copied().collect();
    let mut joined: std::collections::BTreeMap<&[u8], i64> =
        session.groups.iter().map(|(g, t)| (&**g, *t)).collect();
    for g in &req.join {
        joined.entry(g).or_insert_with(|| {
            if derived.iter().any(|d| d.as_slice() == *g) {
                session.created_ms.min(now_ms)
            } else {
                now_ms
            }
        });
    }
    joined
        .into_iter()
        .filter(|(g, _)| !leave.contains(g))
        .collect()
}

fn stored_attrs(session: &Session) -> Value {
    session
        .calculated
        .as_ref()
        .filter(|c| !c.attrs.is_empty())
        .and_then(|c| serde_json::from_slice(&c.attrs).ok())
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// What a session's activity yields at `now_ms` under `rules`: engagement, normalized interests
/// and the derived segments (sorted, distinct). One rule for ENRICH's document and for delivery
/// (a notification to a segment reaches the sessions whose current activity qualifies). Costs
/// O(top-N) of the interest sketch; no allocation beyond the segment names.
pub struct Derived<'s> {
    pub engagement: f64,
    pub interests: Vec<(&'s [u8], f64)>,
    pub segments: Vec<Vec<u8>>,
}

pub fn derive<'s>(session: &'s Session, now_ms: i64, rules: &Thresholds) -> Derived<'s> {
    let (events, unique) = (session.events(), session.unique());
    let last_activity = session
        .activity
        .as_ref()
        .map_or(session.last_seen_ms, |a| a.last_event_ms);
    let idle_ms = now_ms - last_activity;
    let score = engagement(events, unique, idle_ms, rules.dormant_after_s);

    let mut segments: Vec<Vec<u8>> = Vec::new();
    let mut interests = Vec::new();
    if events <= 1 {
        segments.push(b"new".to_vec());
    }
    if let Some(a) = &session.activity {
        if a.longest_gap_ms >= i64::from(rules.returning_gap_s) * 1000 {
            segments.push(b"returning".to_vec());
        }
        for (category, weight) in a.interests.normalized() {
            interests.push((category, weight));
            if weight >= rules.interest_weight && weight > 0.0 {
                segments.push(format!("interest:{}", bytes_key(category)).into_bytes());
            }
        }
    }
    if events > 0 && score >= rules.engaged {
        segments.push(b"engaged".to_vec());
    }
    if idle_ms >= i64::from(rules.dormant_after_s) * 1000 {
        segments.push(b"dormant".to_vec());
    }
    segments.sort();
    segments.dedup();
    Derived {
        engagement: score,
        interests,
        segments,
    }
}

/// The derived segments of `session` at `now_ms` (see `derive`).
pub fn segments(session: &Session, now_ms: i64, rules: &Thresholds) -> Vec<Vec<u8>> {
    derive(session, now_ms, rules).segments
}

/// Applies a planned ENRICH at `now_ms`: updates groups and attributes, computes and stores the
/// calculated document, and returns it.
pub fn apply(
    session: &mut Session,
    req: &Enrich,
    merged_attrs: Option<Value>,
    now_ms: i64,
    rules: &Thresholds,
) -> Value {
    if !req.join.is_empty() || !req.leave.is_empty() {
        let derived = if req.join.is_empty() {
            Vec::new()
        } else {
            segments(session, now_ms, rules)
        };
        let groups: Vec<(Box<[u8]>, i64)> = groups_after(session, req, now_ms, &derived)
            .into_iter()
            .map(|(g, t)| (Box::from(g), t))
            .collect();
        session.groups = groups;
    }
    session.groups.shrink_to_fit();

    let attrs = merged_attrs.unwrap_or_else(|| stored_attrs(session));
    let (events, unique) = (session.events(), session.unique());
    let derived = derive(session, now_ms, rules);
    let score = derived.engagement;
    let interests: Vec<Value> = derived
        .interests
        .iter()
        .map(|(category, weight)| json!({ "category": bytes_value(category), "weight": weight }))
        .collect();
    let segments = derived.segments;

    let activity = session.activity.as_ref();
    let document = json!({
        "interests": interests,
        "engagement": score,
        "events": events,
        "unique_items": unique,
        "first_seen_ms": session.created_ms,
        "last_seen_ms": session.last_seen_ms,
        "first_event_ms": activity.map(|a| a.first_event_ms),
        "last_event_ms": activity.map(|a| a.last_event_ms),
        "active_minutes_last_hour": activity.map_or(0, |a| a.active_minutes_last_hour(now_ms)),
        "peak_hour": activity.and_then(|a| a.peak_hour()),
        "segments": segments.iter().map(|s| bytes_value(s)).collect::<Vec<_>>(),
        "attrs": attrs,
        "groups": session.groups.iter().map(|(g, _)| bytes_value(g)).collect::<Vec<_>>(),
        "computed_ms": now_ms,
    });
    let attrs_text = match &document["attrs"] {
        Value::Object(m) if m.is_empty() => Vec::new(),
        v => serde_json::to_vec(v).unwrap_or_default(),
    };
    session.calculated = Some(Box::new(Calculated {
        computed_ms: now_ms,
        document: serde_json::to_vec(&document).unwrap_or_default().into(),
        segments: segments.into_iter().map(Vec::into_boxed_slice).collect(),
        attrs: attrs_text.into(),
    }));
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::SketchParams;
    use crate::session::Touch;

    const MIN: i64 = 60_000;

    fn session_with(events: &[(&str, &[&'static [u8]], i64)]) -> Session {
        let mut s = Session::new(0, 86_400, 86_400);
        for (item, cats, t) in events {
            let touch = Touch {
                event: Some(item.as_bytes()),
                categories: cats,
                ..Touch::default()
            };
            s.apply_touch(&touch, *t, false, &SketchParams::default());
        }
        s
    }

    fn segments(doc: &Value) -> Vec<String> {
        doc["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn enrich(s: &mut Session, req: &Enrich, now: i64) -> Value {
        let merged = plan(s, req, 65_536, 64).unwrap();
        apply(s, req, merged, now, &Thresholds::default())
    }

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
            (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
            (
                r#"{"a":{"b":"c"}}"#,
                r#"{"a":{"b":"d","c":null}}"#,
                r#"{"a":{"b":"d"}}"#,
            ),
            (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
            (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
            (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
            (
                r#"{}"#,
                r#"{"a":{"bb":{"ccc":null}}}"#,
                r#"{"a":{"bb":{}}}"#,
            ),
        ];
        for (target, patch, want) in cases {
            let mut t: Value = serde_json::from_str(target).unwrap();
            merge_patch(&mut t, &serde_json::from_str(patch).unwrap());
            assert_eq!(
                t,
                serde_json::from_str::<Value>(want).unwrap(),
                "{target} + {patch}"
            );
        }
    }

    #[test]
    fn joining_a_segment_the_session_qualifies_for_keeps_the_derived_join_time() {
        let mut s = session_with(&[
            ("a", &[b"hockey"], 1_000),
            ("b", &[b"hockey"], 2_000),
            ("c", &[b"hockey"], 3_000),
        ]);
        let now = 10 * MIN;
        let derived = super::segments(&s, now, &Thresholds::default());
        assert!(
            derived.iter().any(|d| d == b"interest:hockey"),
            "{derived:?}"
        );
        let req = Enrich {
            join: vec![b"interest:hockey", b"beta"],
            ..Enrich::default()
        };
        enrich(&mut s, &req, now);
        let times: Vec<(&[u8], i64)> = s.groups.iter().map(|(g, t)| (&**g, *t)).collect();
        // already a member by its activity (join time = creation), a plain group joins now
        assert_eq!(
            times,
            vec![(&b"beta"[..], now), (&b"interest:hockey"[..], s.created_ms)]
        );
    }

    #[test]
    fn attrs_must_be_a_json_object() {
        assert_eq!(parse_attrs(b"{\"a\":1"), Err(Error::InvalidJson));
        assert_eq!(parse_attrs(b"[1]"), Err(Error::AttrsNotObject));
        assert_eq!(parse_attrs(b"\xff"), Err(Error::InvalidJson));
        assert!(parse_attrs(b"{}").is_ok());
    }

    #[test]
    fn attrs_merge_across_calls_and_refusal_changes_nothing() {
        let mut s = session_with(&[("p", &[], 0)]);
        let first = Enrich {
            attrs: Some(br#"{"churn":0.2,"geo":{"country":"SE"}}"#),
            ..Enrich::default()
        };
        enrich(&mut s, &first, 0);
        let second = Enrich {
            attrs: Some(br#"{"churn":null,"geo":{"city":"Lund"}}"#),
            ..Enrich::default()
        };
        let doc = enrich(&mut s, &second, 0);
        assert_eq!(
            doc["attrs"],
            json!({"geo": {"country": "SE", "city": "Lund"}})
        );
        let before = s.clone();
        let bad = Enrich {
            attrs: Some(b"{nope"),
            join: vec![b"g"],
            ..Enrich::default()
        };
        assert!(plan(&s, &bad, 65_536, 64).is_err());
        assert_eq!(s, before);
    }

    #[test]
    fn segments_appear_exactly_when_their_rule_holds() {
        // one event: new, not returning, not dormant yet
        let mut s = session_with(&[("p1", &[b"golf"], 0)]);
        let doc = enrich(&mut s, &Enrich::default(), MIN);
        assert_eq!(segments(&doc), vec!["interest:golf", "new"]);
        // 30 minutes later with no event: dormant
        let doc = enrich(&mut s, &Enrich::default(), 30 * MIN);
        assert!(segments(&doc).contains(&"dormant".to_string()));
        // many events over many items soon after: engaged, not new, not dormant
        let mut events = Vec::new();
        let names: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            events.push((
                n.as_str(),
                &[b"hockey" as &'static [u8]][..],
                i as i64 * 1000,
            ));
        }
        let mut s = session_with(&events);
        let doc = enrich(&mut s, &Enrich::default(), 40_000);
        assert_eq!(segments(&doc), vec!["engaged", "interest:hockey"]);
        // a 30-minute pause between two events: returning
        let mut s = session_with(&[("a", &[], 0), ("b", &[], 30 * MIN)]);
        let doc = enrich(&mut s, &Enrich::default(), 30 * MIN);
        assert!(segments(&doc).contains(&"returning".to_string()));
        let mut s = session_with(&[("a", &[], 0), ("b", &[], 29 * MIN)]);
        let doc = enrich(&mut s, &Enrich::default(), 29 * MIN);
        assert!(!segments(&doc).contains(&"returning".to_string()));
    }

    #[test]
    fn interests_are_normalized_and_strongest_first() {
        let mut s = session_with(&[("a", &[b"golf"], 0), ("b", &[b"hockey"], 3_600_000)]);
        let doc = enrich(&mut s, &Enrich::default(), 3_600_000);
        let i = doc["interests"].as_array().unwrap();
        assert_eq!(i[0]["category"], "hockey");
        assert!((i[0]["weight"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((i[1]["weight"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn groups_join_and_leave() {
        let mut s = session_with(&[]);
        let doc = enrich(
            &mut s,
            &Enrich {
                join: vec![b"b", b"a", b"b"],
                ..Enrich::default()
            },
            0,
        );
        assert_eq!(doc["groups"], json!(["a", "b"]));
        let doc = enrich(
            &mut s,
            &Enrich {
                leave: vec![b"a"],
                ..Enrich::default()
            },
            0,
        );
        assert_eq!(doc["groups"], json!(["b"]));
        let many: Vec<&[u8]> = vec![b"x", b"y"];
        assert_eq!(
            plan(
                &s,
                &Enrich {
                    join: many,
                    ..Enrich::default()
                },
                65_536,
                2
            ),
            Err(Error::TooManyGroups { limit: 2 })
        );
    }

    #[test]
    fn engagement_is_bounded_and_monotone() {
        assert_eq!(engagement(0, 0, 0, 1800), 0.0);
        let low = engagement(1, 1, 0, 1800);
        let high = engagement(100, 50, 0, 1800);
        assert!(0.0 < low && low < high && high <= 1.0);
        assert!(engagement(100, 50, 3_600_000, 1800) < high);
    }
}
