//! The saved form of a session: what RDB files, `DUMP` payloads, AOF rewrites and the digest hold.
//!
//! Layout: one byte of encoding version, then sections `[tag: u8][length: varint][payload]` in
//! strictly increasing tag order, each at most once, then the end byte 0, so that a truncation at a
//! section boundary is still detected; absent optional sections mean "empty". Integers
//! are LEB128 varints (signed ones zigzag-encoded). A new encoding version adds sections; the decoder
//! keeps reading every version it ever wrote, and always writes the newest.
//!
//! Decoding trusts nothing: every length is checked against the bytes that remain before anything
//! is allocated, every value against its range, and a section must consume exactly its payload. Any
//! inconsistency is an `Error`, never a panic, so a crafted `RESTORE` payload is simply refused.

use crate::error::{Error, Result};
use crate::fields::Fields;
use crate::session::{Activity, Session, MAX_LIFETIME_S};

/// The encoding this build writes.
pub const ENCODING_VERSION: u8 = 1;

const TAG_END: u8 = 0;
const TAG_LIFECYCLE: u8 = 1;
const TAG_USER: u8 = 2;
const TAG_FIELDS: u8 = 3;
const TAG_ACTIVITY: u8 = 4;

/// Encodes `session` in the newest encoding.
pub fn encode(session: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + session.fields.heap_size());
    out.push(ENCODING_VERSION);

    let mut body = Vec::new();
    put_i64(&mut body, session.created_ms);
    put_i64(&mut body, session.last_seen_ms);
    put_u64(&mut body, u64::from(session.idle_s));
    put_u64(&mut body, u64::from(session.maxage_s));
    section(&mut out, TAG_LIFECYCLE, &mut body);

    if let Some(user) = &session.user {
        body.extend_from_slice(user);
        section(&mut out, TAG_USER, &mut body);
    }

    if !session.fields.is_empty() {
        put_u64(&mut body, session.fields.len() as u64);
        for (name, value) in session.fields.iter() {
            put_bytes(&mut body, name);
            put_bytes(&mut body, value);
        }
        section(&mut out, TAG_FIELDS, &mut body);
    }

    let a = &session.activity;
    if *a != Activity::default() {
        put_u64(&mut body, a.events);
        put_i64(&mut body, a.first_event_ms);
        put_i64(&mut body, a.last_event_ms);
        section(&mut out, TAG_ACTIVITY, &mut body);
    }
    out.push(TAG_END);
    out
}

/// Decodes any encoding this build knows; refuses everything else.
pub fn decode(bytes: &[u8]) -> Result<Session> {
    let (&version, rest) = bytes.split_first().ok_or(Error::Corrupt("empty"))?;
    if version == 0 || version > ENCODING_VERSION {
        return Err(Error::UnknownEncoding(version));
    }
    let mut input = Reader::new(rest);
    let mut session: Option<Session> = None;
    let mut last_tag = 0u8;
    loop {
        let tag = input.byte()?;
        if tag == TAG_END {
            if !input.is_empty() {
                return Err(Error::Corrupt("bytes after the end"));
            }
            break;
        }
        if tag <= last_tag {
            return Err(Error::Corrupt("sections out of order"));
        }
        last_tag = tag;
        let len = input.len_prefix()?;
        let mut payload = Reader::new(input.bytes(len)?);
        match (tag, session.as_mut()) {
            (TAG_LIFECYCLE, None) => session = Some(read_lifecycle(&mut payload)?),
            (_, None) => return Err(Error::Corrupt("lifecycle section missing")),
            (TAG_USER, Some(s)) => {
                s.user = Some(payload.rest().into());
            }
            (TAG_FIELDS, Some(s)) => s.fields = read_fields(&mut payload)?,
            (TAG_ACTIVITY, Some(s)) => {
                s.activity = Activity {
                    events: payload.u64()?,
                    first_event_ms: payload.i64()?,
                    last_event_ms: payload.i64()?,
                };
                if s.activity == Activity::default() {
                    return Err(Error::Corrupt("empty activity section"));
                }
            }
            _ => return Err(Error::Corrupt("unknown section")),
        }
        if !payload.is_empty() {
            return Err(Error::Corrupt("section longer than its contents"));
        }
    }
    session.ok_or(Error::Corrupt("lifecycle section missing"))
}

fn read_lifecycle(r: &mut Reader) -> Result<Session> {
    let created_ms = r.i64()?;
    let last_seen_ms = r.i64()?;
    let lifetime = |v: u64| match u32::try_from(v) {
        Ok(v) if (1..=MAX_LIFETIME_S).contains(&v) => Ok(v),
        _ => Err(Error::Corrupt("lifetime out of range")),
    };
    let idle_s = lifetime(r.u64()?)?;
    let maxage_s = lifetime(r.u64()?)?;
    let range = -(1i64 << 52)..(1i64 << 52);
    if !range.contains(&created_ms) || !range.contains(&last_seen_ms) {
        return Err(Error::Corrupt("time out of range"));
    }
    Ok(Session {
        created_ms,
        last_seen_ms,
        idle_s,
        maxage_s,
        user: None,
        fields: Fields::default(),
        activity: Activity::default(),
    })
}

fn read_fields(r: &mut Reader) -> Result<Fields> {
    let count = r.len_prefix()?;
    if count == 0 {
        return Err(Error::Corrupt("empty fields section"));
    }
    // Each field takes at least two length bytes: a count above that cannot be honest.
    if count > r.remaining() / 2 {
        return Err(Error::Corrupt("field count exceeds payload"));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push((r.prefixed()?, r.prefixed()?));
    }
    Fields::from_sorted(entries.into_iter()).ok_or(Error::Corrupt("fields not in canonical order"))
}

fn section(out: &mut Vec<u8>, tag: u8, body: &mut Vec<u8>) {
    out.push(tag);
    put_u64(out, body.len() as u64);
    out.append(body);
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked reader over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.buf.split_first().ok_or(Error::Corrupt("truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Corrupt("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Error::Corrupt("varint overflow"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                // Canonical form only: no superfluous zero continuation bytes.
                if b == 0 && shift > 0 {
                    return Err(Error::Corrupt("non-canonical varint"));
                }
                return Ok(v);
            }
        }
        Err(Error::Corrupt("varint overflow"))
    }

    fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A length that must fit in what remains.
    fn len_prefix(&mut self) -> Result<usize> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(Error::Corrupt("length exceeds payload")),
        }
    }

    fn prefixed(&mut self) -> Result<&'a [u8]> {
        let n = self.len_prefix()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Touch;

    fn sample() -> Session {
        let mut s = Session::new(1_700_000_000_000, 1800, 86_400);
        let t = Touch {
            user: Some(b"alice\x00\xff"),
            set: vec![(b"theme", b"dark"), (b"cart", b"\x00\x01\x02"), (b"", b"")],
            ..Touch::default()
        };
        s.apply_touch(&t, 1_700_000_005_000, false);
        s.activity = Activity {
            events: 3,
            first_event_ms: 1_700_000_000_000,
            last_event_ms: -5,
        };
        s
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(decode(&bytes), Ok(s.clone()));
        assert_eq!(encode(&decode(&bytes).unwrap()), bytes, "canonical");
        let bare = Session::new(0, 1, 1);
        assert_eq!(decode(&encode(&bare)), Ok(bare));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn every_single_byte_corruption_is_refused_or_decodes_cleanly() {
        // A flipped byte may still form a valid session (a changed field value); what matters is
        // that decoding never panics and never accepts trailing garbage.
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Ok(s) = decode(&b) {
                    assert_eq!(encode(&s), b, "accepted a non-canonical form at byte {i}");
                }
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn newer_or_zero_version_is_refused() {
        let mut b = encode(&sample());
        b[0] = ENCODING_VERSION + 1;
        assert_eq!(
            decode(&b),
            Err(Error::UnknownEncoding(ENCODING_VERSION + 1))
        );
        b[0] = 0;
        assert_eq!(decode(&b), Err(Error::UnknownEncoding(0)));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        // fields section claiming 2^60 fields in a 10-byte payload
        let mut b = vec![ENCODING_VERSION];
        let mut body = Vec::new();
        put_i64(&mut body, 0);
        put_i64(&mut body, 0);
        put_u64(&mut body, 1);
        put_u64(&mut body, 1);
        section(&mut b, TAG_LIFECYCLE, &mut body);
        put_u64(&mut body, 1 << 60);
        section(&mut b, TAG_FIELDS, &mut body);
        b.push(TAG_END);
        assert!(decode(&b).is_err());
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(Reader::new(&out).u64(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_i64(&mut out, v);
            assert_eq!(Reader::new(&out).i64(), Ok(v));
        }
        assert!(Reader::new(&[0x80, 0x00]).u64().is_err(), "non-canonical");
        assert!(Reader::new(&[0xff; 11]).u64().is_err(), "overflow");
    }
}
