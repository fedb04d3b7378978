//! `SESSION.INFO`: the whole session as one JSON document for people and admin tools.

use serde_json::{json, Map, Value};

use crate::activity::Activity;
use crate::codec;
use crate::json::{bytes_key, bytes_value};
use crate::session::Session;

fn activity_info(a: &Activity, now_ms: i64) -> Value {
    let interests: Vec<Value> = a
        .interests
        .normalized()
        .into_iter()
        .map(|(c, w)| json!({ "category": bytes_value(c), "weight": w }))
        .collect();
    json!({
        "events": a.events,
        "unique_items": a.unique(),
        "first_event_ms": a.first_event_ms,
        "last_event_ms": a.last_event_ms,
        "longest_gap_ms": a.longest_gap_ms,
        "active_minutes_last_hour": a.active_minutes_last_hour(now_ms),
        "active_minutes_ago": a.active_minutes_ago(now_ms),
        "peak_hour": a.peak_hour(),
        "hours": a.hours.to_vec(),
        "interests": interests,
        "sketches": {
            "seen": {
                "kind": "scalable-bloom",
                "error_rate": a.seen.error,
                "initial_capacity": a.seen.initial_capacity,
                "layers": a.seen.layers().len(),
                "items": a.seen.count(),
                "bits": a.seen.bits(),
                "bytes": a.seen.heap_size(),
            },
            "distinct": {
                "kind": "hyperloglog",
                "precision": a.distinct.precision,
                "form": if a.distinct.is_exact() {
                    "exact"
                } else if a.distinct.is_sparse() {
                    "sparse"
                } else {
                    "dense"
                },
                "bytes": a.distinct.heap_size(),
            },
            "interests": {
                "kind": "decayed-space-saving",
                "top_n": a.top_n,
                "half_life_s": a.half_life_s,
                "tracked": a.interests.entries.len(),
                "bytes": a.interests.heap_size(),
            },
        },
        "bytes": a.heap_size(),
    })
}

/// The `SESSION.INFO` document, with time-dependent figures computed at `now_ms`.
pub fn session_info(s: &Session, now_ms: i64) -> Value {
    let mut fields = Map::new();
    for (name, value) in s.fields.iter() {
        fields.insert(bytes_key(name), bytes_value(value));
    }
    json!({
        "created_ms": s.created_ms,
        "last_seen_ms": s.last_seen_ms,
        "idle_s": s.idle_s,
        "maxage_s": s.maxage_s,
        "expires_at_ms": s.deadline_ms(),
        "user": s.user.as_deref().map(bytes_value),
        "field_count": s.fields.len(),
        "fields": fields,
        "activity": s.activity.as_ref().map(|a| activity_info(a, now_ms)),
        "calculated": s.calculated.as_ref().map(|c| {
            serde_json::from_slice::<Value>(&c.document).unwrap_or(Value::Null)
        }),
        "groups": s.groups.iter().map(|(g, _)| bytes_value(g)).collect::<Vec<_>>(),
        "joined": s.groups.iter().map(|(g, t)| json!({"group": bytes_value(g), "joined_ms": t})).collect::<Vec<_>>(),
        "impressions": s.impressions.as_ref().map(|i| json!({
            "kind": "count-min (conservative update, 1-byte counters), generations",
            "depth": crate::activity::impressions::DEPTH,
            "widths": i.generations.iter().map(|g| g.width).collect::<Vec<_>>(),
            "distinct": i.generations.iter().map(|g| g.distinct).collect::<Vec<_>>(),
            "bytes": i.heap_size(),
        })),
        "cursors": s.cursors.iter().map(|(g, seq)| json!({"group": bytes_value(g), "seq": seq})).collect::<Vec<_>>(),
        "encoding": {
            "version": codec::ENCODING_VERSION,
            "bytes": codec::encode(s).len(),
        },
        "memory_bytes": s.heap_size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::base64;

    #[test]
    fn base64_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn binary_fields_are_base64() {
        let mut s = Session::new(0, 1, 1);
        s.fields.set(b"\xff", b"\xfe");
        s.fields.set(b"theme", b"dark");
        let doc = session_info(&s, 0);
        assert_eq!(doc["fields"]["theme"], "dark");
        assert_eq!(doc["fields"]["base64:/w=="]["base64"], "/g==");
        assert_eq!(doc["user"], Value::Null);
        assert_eq!(doc["expires_at_ms"], 1000);
    }
}
