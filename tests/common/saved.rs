//! A small encoder of the module's saved form (core/src/codec/session.rs, encoding version 6), so a
//! test can craft sessions no command would build: out-of-range sketch sizing, more groups or a
//! larger attrs document than the limits allow. Only what the tests need; every field defaults to
//! what a fresh session holds.

const VERSION: u8 = 6;
const TAG_END: u8 = 0;
const TAG_LIFECYCLE: u8 = 1;
const TAG_FIELDS: u8 = 3;
const TAG_ACTIVITY: u8 = 4;
const TAG_CALCULATED: u8 = 5;
const TAG_GROUPS: u8 = 6;
const TAG_IMPRESSIONS: u8 = 7;

pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The seen filter and sketch sizing of a crafted activity section (one event, no layers yet).
#[derive(Debug, Clone)]
pub struct Sketch {
    pub seen_capacity: u64,
    pub seen_error: f64,
    pub hll_precision: u8,
    pub top_n: u64,
    pub half_life_s: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            seen_capacity: 128,
            seen_error: 0.01,
            hll_precision: 10,
            top_n: 8,
            half_life_s: 3600,
        }
    }
}

/// A crafted session.
#[derive(Debug, Clone)]
pub struct Saved {
    pub created_ms: i64,
    pub idle_s: u64,
    pub maxage_s: u64,
    /// Sorted by name.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub activity: Option<Sketch>,
    /// Attributes document of the calculated section (None: no section).
    pub attrs: Option<Vec<u8>>,
    /// Sorted.
    pub groups: Vec<Vec<u8>>,
    /// Impression generations: (width, distinct); counters are zero.
    pub impressions: Vec<(u64, u64)>,
}

impl Saved {
    pub fn new(created_ms: i64) -> Saved {
        Saved {
            created_ms,
            idle_s: 1800,
            maxage_s: 86_400,
            fields: Vec::new(),
            activity: None,
            attrs: None,
            groups: Vec::new(),
            impressions: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        let mut body = Vec::new();
        put_i64(&mut body, self.created_ms);
        put_i64(&mut body, self.created_ms);
        put_u64(&mut body, self.idle_s);
        put_u64(&mut body, self.maxage_s);
        section(&mut out, TAG_LIFECYCLE, &mut body);
        if !self.fields.is_empty() {
            put_u64(&mut body, self.fields.len() as u64);
            for (n, v) in &self.fields {
                put_bytes(&mut body, n);
                put_bytes(&mut body, v);
            }
            section(&mut out, TAG_FIELDS, &mut body);
        }
        if let Some(s) = &self.activity {
            put_u64(&mut body, s.top_n);
            put_u64(&mut body, s.half_life_s);
            put_u64(&mut body, 1); // events
            put_i64(&mut body, self.created_ms); // first event
            put_i64(&mut body, self.created_ms); // last event
            put_i64(&mut body, 0); // longest gap
            put_i64(&mut body, self.created_ms.div_euclid(60_000)); // last minute
            body.extend_from_slice(&1u64.to_le_bytes()); // minute bitmap
            for _ in 0..24 {
                put_u64(&mut body, 0);
            }
            put_u64(&mut body, s.seen_capacity);
            body.extend_from_slice(&s.seen_error.to_le_bytes());
            put_u64(&mut body, 0); // no filter layers yet
            body.push(s.hll_precision);
            body.push(2); // exact, empty: no fingerprints, no collisions beyond them
            put_u64(&mut body, 0);
            put_u64(&mut body, 0);
            put_i64(&mut body, 0); // interests as of
            put_u64(&mut body, 0); // no interests
            section(&mut out, TAG_ACTIVITY, &mut body);
        }
        if let Some(attrs) = &self.attrs {
            put_i64(&mut body, self.created_ms);
            put_bytes(&mut body, b"{}");
            put_bytes(&mut body, attrs);
            put_u64(&mut body, 0); // segments
            section(&mut out, TAG_CALCULATED, &mut body);
        }
        if !self.groups.is_empty() {
            put_u64(&mut body, self.groups.len() as u64);
            for g in &self.groups {
                put_bytes(&mut body, g);
                put_i64(&mut body, self.created_ms); // joined when the session was created
            }
            section(&mut out, TAG_GROUPS, &mut body);
        }
        if !self.impressions.is_empty() {
            put_u64(&mut body, self.impressions.len() as u64);
            for &(width, distinct) in &self.impressions {
                put_u64(&mut body, width);
                put_u64(&mut body, distinct);
                body.extend(std::iter::repeat_n(0u8, 4 * width as usize));
            }
            section(&mut out, TAG_IMPRESSIONS, &mut body);
        }
        out.push(TAG_END);
        out
    }
}

fn section(out: &mut Vec<u8>, tag: u8, body: &mut Vec<u8>) {
    out.push(tag);
    put_u64(out, body.len() as u64);
    out.append(body);
}
