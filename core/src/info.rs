//! `SESSION.INFO`: the whole session as one JSON document for people and admin tools.

use serde_json::{json, Map, Value};

use crate::codec;
use crate::session::Session;

/// Binary-safe text for JSON: the string itself when it is UTF-8, else `{"base64": "..."}`.
pub fn bytes_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "base64": base64(b) }),
    }
}

/// A JSON object key for binary bytes: the string when UTF-8, else `base64:` and the encoding.
pub fn bytes_key(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("base64:{}", base64(b)),
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `SESSION.INFO` document.
pub fn session_info(s: &Session) -> Value {
    let mut fields = Map::new();
    for (name, value) in s.fields.iter() {
        fields.insert(bytes_key(name), bytes_value(value));
    }
    let a = &s.activity;
    json!({
        "created_ms": s.created_ms,
        "last_seen_ms": s.last_seen_ms,
        "idle_s": s.idle_s,
        "maxage_s": s.maxage_s,
        "expires_at_ms": s.deadline_ms(),
        "user": s.user.as_deref().map(bytes_value),
        "field_count": s.fields.len(),
        "fields": fields,
        "activity": {
            "events": a.events,
            "first_event_ms": a.first_event_ms,
            "last_event_ms": a.last_event_ms,
        },
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
        let doc = session_info(&s);
        assert_eq!(doc["fields"]["theme"], "dark");
        assert_eq!(doc["fields"]["base64:/w=="]["base64"], "/g==");
        assert_eq!(doc["user"], Value::Null);
        assert_eq!(doc["expires_at_ms"], 1000);
    }
}
