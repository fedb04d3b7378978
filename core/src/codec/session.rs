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

use crate::activity::bloom::ScalableBloom;
use crate::activity::hll::{exact_limit, Fingerprints, HyperLogLog, Registers, FINGERPRINT_BYTES};
use crate::activity::impressions::{
    Generation, Impressions, DEPTH, GENERATIONS, MAX_WIDTH, MIN_WIDTH,
};
use crate::activity::interests::{Interest, Interests};
use crate::activity::{Activity, SketchParams};
use crate::codec::wire::{put_bytes, put_i64, put_u64, Reader};
use crate::error::{Error, Result};
use crate::limits;
use crate::session::calculated::Calculated;
use crate::session::fields::Fields;
use crate::session::{ReadMark, Session};

/// The encoding this build writes.
///
/// - 1: lifecycle, user, fields; activity as three counters.
/// - 2: the activity section holds the sketches (seen filter, distinct items, interests, minute
///   bitmap, hour histogram) and their sizing; new sections hold ENRICH's calculated data and the
///   explicit groups, and impression counts.
/// - 3: notification delivery cursors (one per group); impressions kept in generations.
/// - 4: notification read state (one mark per group: read up to a sequence, and read ones above).
/// - 5: the distinct-items sketch counts exactly while small: two new forms of it, the exact list
///   (form 2: entry count, the items counted beyond the list, then the 24-bit fingerprints in
///   three bytes each, big endian, increasing) and the dense registers it turned into with the
///   estimate at the switch (form 3). Forms 0 (the older sparse list) and 1 (dense) are still
///   read and written.
/// - 6: each explicit group membership carries its join time (unix ms, for NOTIFYGROUP's
///   `JOINEDBEFORE`/`JOINEDAFTER`): the groups section is the count, then per group its name and
///   join time. Older forms load with join time 0 ("joined before everything").
pub const ENCODING_VERSION: u8 = 6;

/// Read sequences above a group's read-up-to mark a saved form may hold: a mark keeps only live
/// notifications' sequences, and a group holds at most `MAXLEN`'s maximum of them.
pub const MAX_READ_IDS: usize = 100_000;

const TAG_END: u8 = 0;
const TAG_LIFECYCLE: u8 = 1;
const TAG_USER: u8 = 2;
const TAG_FIELDS: u8 = 3;
const TAG_ACTIVITY: u8 = 4;
const TAG_CALCULATED: u8 = 5;
const TAG_GROUPS: u8 = 6;
const TAG_IMPRESSIONS: u8 = 7;
const TAG_CURSORS: u8 = 8;
const TAG_READS: u8 = 9;

/// Encodes `session` in the newest encoding.
pub fn encode(session: &Session) -> Vec<u8> {
    encode_as(session, ENCODING_VERSION)
}

/// `encode` with version byte `version`; below 6 the groups section is the plain list of names
/// (join times dropped). Only that section follows `version` (tests of older loads).
pub(crate) fn encode_as(session: &Session, version: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + session.fields.heap_size());
    out.push(version);

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

    if let Some(a) = &session.activity {
        put_activity(&mut body, a);
        section(&mut out, TAG_ACTIVITY, &mut body);
    }

    if let Some(c) = &session.calculated {
        put_i64(&mut body, c.computed_ms);
        put_bytes(&mut body, &c.document);
        put_bytes(&mut body, &c.attrs);
        put_list(&mut body, &c.segments);
        section(&mut out, TAG_CALCULATED, &mut body);
    }

    if !session.groups.is_empty() {
        put_u64(&mut body, session.groups.len() as u64);
        for (group, joined_ms) in &session.groups {
            put_bytes(&mut body, group);
            if version >= 6 {
                put_i64(&mut body, *joined_ms);
            }
        }
        section(&mut out, TAG_GROUPS, &mut body);
    }

    if let Some(imp) = &session.impressions {
        put_u64(&mut body, imp.generations.len() as u64);
        for g in &imp.generations {
            put_u64(&mut body, u64::from(g.width));
            put_u64(&mut body, u64::from(g.distinct));
            body.extend_from_slice(&g.counters);
        }
        section(&mut out, TAG_IMPRESSIONS, &mut body);
    }

    if !session.cursors.is_empty() {
        put_u64(&mut body, session.cursors.len() as u64);
        for (group, seq) in &session.cursors {
            put_bytes(&mut body, group);
            put_u64(&mut body, *seq);
        }
        section(&mut out, TAG_CURSORS, &mut body);
    }

    if !session.reads.is_empty() {
        put_u64(&mut body, session.reads.len() as u64);
        for (group, mark) in &session.reads {
            put_bytes(&mut body, group);
            put_u64(&mut body, mark.upto);
            put_u64(&mut body, mark.ids.len() as u64);
            for seq in &mark.ids {
                put_u64(&mut body, *seq);
            }
        }
        section(&mut out, TAG_READS, &mut body);
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
                let activity = if version == 1 {
                    read_activity_v1(&mut payload)?
                } else {
                    read_activity(&mut payload, version)?
                };
                s.activity = Some(activity);
            }
            (TAG_CALCULATED, Some(s)) if version >= 2 => {
                let computed_ms = payload.i64()?;
                let document = payload.prefixed()?.into();
                let attrs: Box<[u8]> = payload.prefixed()?.into();
                if !attrs.is_empty()
                    && !matches!(
                        serde_json::from_slice(&attrs),
                        Ok(serde_json::Value::Object(_))
                    )
                {
                    return Err(Error::Corrupt("attributes are not a JSON object"));
                }
                let segments = read_list(&mut payload)?;
                s.calculated = Some(Box::new(Calculated {
                    computed_ms,
                    document,
                    segments,
                    attrs,
                }));
            }
            (TAG_GROUPS, Some(s)) if version >= 6 => {
                s.groups = read_groups(&mut payload)?;
            }
            (TAG_GROUPS, Some(s)) if version >= 2 => {
                // before join times were kept: "joined before everything"
                s.groups = read_list(&mut payload)?
                    .into_iter()
                    .map(|g| (g, 0))
                    .collect();
                if s.groups.is_empty() {
                    return Err(Error::Corrupt("empty groups section"));
                }
            }
            (TAG_IMPRESSIONS, Some(s)) if version >= 2 => {
                s.impressions = Some(Box::new(read_impressions(&mut payload, version)?));
            }
            (TAG_CURSORS, Some(s)) if version >= 3 => {
                let n = payload.len_prefix()?;
                if n == 0 {
                    return Err(Error::Corrupt("empty cursors section"));
                }
                let mut cursors: Vec<(Box<[u8]>, u64)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let group: Box<[u8]> = payload.prefixed()?.into();
                    let seq = payload.u64()?;
                    if cursors.last().is_some_and(|(last, _)| *last >= group) || seq == 0 {
                        return Err(Error::Corrupt("cursors not in canonical order"));
                    }
                    cursors.push((group, seq));
                }
                s.cursors = cursors;
            }
            (TAG_READS, Some(s)) if version >= 4 => {
                s.reads = read_reads(&mut payload)?;
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
        Ok(v) if limits::within(v, limits::LIFETIME_S) => Ok(v),
        _ => Err(Error::Corrupt("lifetime out of range")),
    };
    let idle_s = lifetime(r.u64()?)?;
    let maxage_s = lifetime(r.u64()?)?;
    if !is_time(created_ms) || !is_time(last_seen_ms) {
        return Err(Error::Corrupt("time out of range"));
    }
    Ok(Session {
        created_ms,
        last_seen_ms,
        idle_s,
        maxage_s,
        user: None,
        fields: Fields::default(),
        activity: None,
        calculated: None,
        groups: Vec::new(),
        impressions: None,
        cursors: Vec::new(),
        reads: Vec::new(),
    })
}

/// The groups section (v6): names strictly ascending, each join time a time a command can
/// produce (`AT`'s range); never empty.
fn read_groups(r: &mut Reader) -> Result<Vec<(Box<[u8]>, i64)>> {
    let n = r.len_prefix()?;
    if n == 0 {
        return Err(Error::Corrupt("empty groups section"));
    }
    let mut groups: Vec<(Box<[u8]>, i64)> = Vec::with_capacity(n);
    for _ in 0..n {
        let group: Box<[u8]> = r.prefixed()?.into();
        if groups.last().is_some_and(|(last, _)| *last >= group) {
            return Err(Error::Corrupt("set not in canonical order"));
        }
        let joined_ms = r.i64()?;
        if !is_time(joined_ms) {
            return Err(Error::Corrupt("join time out of range"));
        }
        groups.push((group, joined_ms));
    }
    Ok(groups)
}

/// The read-state section: groups strictly ascending; each mark non-empty, its ids strictly
/// ascending above `upto`, at most `MAX_READ_IDS` of them.
fn read_reads(r: &mut Reader) -> Result<Vec<(Box<[u8]>, ReadMark)>> {
    let n = r.len_prefix()?;
    if n == 0 {
        return Err(Error::Corrupt("empty read-state section"));
    }
    let mut reads: Vec<(Box<[u8]>, ReadMark)> = Vec::with_capacity(n);
    for _ in 0..n {
        let group: Box<[u8]> = r.prefixed()?.into();
        if reads.last().is_some_and(|(last, _)| *last >= group) {
            return Err(Error::Corrupt("read state not in canonical order"));
        }
        let upto = r.u64()?;
        let count = r.len_prefix()?;
        if count > MAX_READ_IDS || (upto == 0 && count == 0) {
            return Err(Error::Corrupt("read state out of range"));
        }
        let mut ids: Vec<u64> = Vec::with_capacity(count);
        for _ in 0..count {
            let seq = r.u64()?;
            if seq <= ids.last().copied().unwrap_or(upto) {
                return Err(Error::Corrupt("read ids not ascending above the mark"));
            }
            ids.push(seq);
        }
        reads.push((group, ReadMark { upto, ids }));
    }
    Ok(reads)
}

/// Version 2 kept one sketch (width, counters); version 3 keeps generations.
fn read_impressions(r: &mut Reader, version: u8) -> Result<Impressions> {
    let read_generation = |r: &mut Reader, distinct: Option<u32>| -> Result<Generation> {
        let width = u32::try_from(r.u64()?).map_err(|_| Error::Corrupt("bad width"))?;
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(Error::Corrupt("impressions width out of range"));
        }
        let distinct = match distinct {
            Some(d) => d,
            None => u32::try_from(r.u64()?).map_err(|_| Error::Corrupt("bad load"))?,
        };
        let counters: Box<[u8]> = r.bytes(DEPTH * width as usize)?.into();
        Ok(Generation {
            width,
            distinct,
            counters,
        })
    };
    let imp = if version == 2 {
        // The load of a version-2 sketch was not saved: count its filled first-row cells.
        let mut g = read_generation(r, Some(0))?;
        g.distinct = g.counters[..g.width as usize]
            .iter()
            .filter(|&&c| c > 0)
            .count() as u32;
        Impressions {
            generations: vec![g],
        }
    } else {
        let n = r.len_prefix()?;
        if n == 0 || n > GENERATIONS {
            return Err(Error::Corrupt("impressions generations out of range"));
        }
        let generations = (0..n)
            .map(|_| read_generation(r, None))
            .collect::<Result<_>>()?;
        Impressions { generations }
    };
    if !imp.is_consistent() {
        return Err(Error::Corrupt("inconsistent impressions"));
    }
    Ok(imp)
}

/// A time a command can produce: `AT` and the clock both lie in 0..=MAX_AT_MS.
fn is_time(ms: i64) -> bool {
    (0..=crate::codec::args::MAX_AT_MS).contains(&ms)
}

fn put_activity(out: &mut Vec<u8>, a: &Activity) {
    put_u64(out, u64::from(a.top_n));
    put_u64(out, u64::from(a.half_life_s));
    put_u64(out, a.events);
    put_i64(out, a.first_event_ms);
    put_i64(out, a.last_event_ms);
    put_i64(out, a.longest_gap_ms);
    put_i64(out, a.last_minute);
    out.extend_from_slice(&a.minutes.to_le_bytes());
    for &h in a.hours.iter() {
        put_u64(out, u64::from(h));
    }
    // seen filter
    put_u64(out, a.seen.initial_capacity);
    out.extend_from_slice(&a.seen.error.to_le_bytes());
    put_u64(out, a.seen.layers().len() as u64);
    for layer in a.seen.layers() {
        put_u64(out, layer.count);
        put_u64(out, u64::from(layer.hashes));
        let bits = a.seen.layer_bits(layer);
        put_u64(out, bits.len() as u64);
        for w in bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    // distinct items
    out.push(a.distinct.precision);
    match &a.distinct.registers {
        Registers::Exact(list) => {
            out.push(FORM_EXACT);
            put_u64(out, list.len() as u64);
            put_u64(out, u64::from(a.distinct.extra()));
            out.extend_from_slice(list.as_bytes());
        }
        Registers::Dense(regs) if a.distinct.switch_estimate() != 0 => {
            out.push(FORM_SWITCHED);
            put_u64(out, u64::from(a.distinct.switch_estimate()));
            out.extend_from_slice(regs);
        }
        Registers::Sparse(list) => {
            out.push(FORM_SPARSE);
            put_u64(out, list.len() as u64);
            for e in list {
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        Registers::Dense(regs) => {
            out.push(FORM_DENSE);
            out.extend_from_slice(regs);
        }
    }
    // interests
    put_i64(out, a.interests.as_of_ms);
    put_u64(out, a.interests.entries.len() as u64);
    for e in &a.interests.entries {
        put_bytes(out, &e.category);
        out.extend_from_slice(&e.weight.to_le_bytes());
    }
}

/// Version 1 kept only three counters; the sketches start empty with default sizing.
fn read_activity_v1(r: &mut Reader) -> Result<Activity> {
    let mut a = Activity::new(&SketchParams::default());
    a.events = r.u64()?;
    a.first_event_ms = r.i64()?;
    a.last_event_ms = r.i64()?;
    if !is_time(a.first_event_ms) || !is_time(a.last_event_ms) {
        return Err(Error::Corrupt("activity time out of range"));
    }
    Ok(a)
}

/// The forms of the distinct-items sketch in the activity section.
const FORM_SPARSE: u8 = 0;
const FORM_DENSE: u8 = 1;
const FORM_EXACT: u8 = 2;
const FORM_SWITCHED: u8 = 3;

/// The distinct-items sketch: precision, form, then the form's contents, each checked against
/// the live ranges before anything is allocated.
fn read_distinct(r: &mut Reader, version: u8) -> Result<HyperLogLog> {
    let precision = r.byte()?;
    if !limits::within(precision, limits::HLL_PRECISION) {
        return Err(Error::Corrupt("HyperLogLog precision out of range"));
    }
    let dense = |r: &mut Reader| -> Result<Registers> {
        Ok(Registers::Dense(r.bytes(1usize << precision)?.into()))
    };
    let distinct = match r.byte()? {
        FORM_SPARSE => {
            let n = r.len_prefix()?;
            if n > r.remaining() / 2 {
                return Err(Error::Corrupt("sparse sketch longer than payload"));
            }
            let list = (0..n).map(|_| r.u16_le()).collect::<Result<_>>()?;
            HyperLogLog::from_registers(precision, Registers::Sparse(list))
        }
        FORM_DENSE => HyperLogLog::from_registers(precision, dense(r)?),
        FORM_EXACT if version >= 5 => {
            let limit = exact_limit(precision);
            let n = r.len_prefix()?;
            if n > limit {
                return Err(Error::Corrupt("exact sketch longer than its limit"));
            }
            let extra = u16::try_from(r.u64()?)
                .ok()
                .filter(|&e| usize::from(e) <= limit - n)
                .ok_or(Error::Corrupt("exact sketch longer than its limit"))?;
            let list = Fingerprints::from_bytes(r.bytes(n * FINGERPRINT_BYTES)?.to_vec())
                .ok_or(Error::Corrupt("short fingerprint"))?;
            HyperLogLog::from_exact(precision, list, extra)
        }
        FORM_SWITCHED if version >= 5 => {
            let e0 = u32::try_from(r.u64()?)
                .ok()
                .filter(|&e| e != 0)
                .ok_or(Error::Corrupt("switch estimate out of range"))?;
            HyperLogLog::from_parts(precision, dense(r)?, e0)
        }
        _ => return Err(Error::Corrupt("unknown HyperLogLog form")),
    };
    if !distinct.is_consistent() {
        return Err(Error::Corrupt("inconsistent HyperLogLog"));
    }
    Ok(distinct)
}

fn read_activity(r: &mut Reader, version: u8) -> Result<Activity> {
    let top_n = u16::try_from(r.u64()?)
        .ok()
        .filter(|&n| limits::within(n, limits::TOP_N))
        .ok_or(Error::Corrupt("top-n out of range"))?;
    let half_life_s = u32::try_from(r.u64()?)
        .ok()
        .filter(|&h| limits::within(h, limits::LIFETIME_S))
        .ok_or(Error::Corrupt("half-life out of range"))?;
    let events = r.u64()?;
    if events == 0 {
        return Err(Error::Corrupt("activity without events"));
    }
    let first_event_ms = r.i64()?;
    let last_event_ms = r.i64()?;
    let longest_gap_ms = r.i64()?;
    let last_minute = r.i64()?;
    // Every time a command can produce lies in 0..=MAX_AT_MS: anything else was not written by
    // this module, and would make later arithmetic (gaps, minute shifts, decay) overflow.
    if !is_time(first_event_ms)
        || !is_time(last_event_ms)
        || !is_time(longest_gap_ms)
        || !is_time(last_minute.saturating_mul(60_000))
    {
        return Err(Error::Corrupt("activity time out of range"));
    }
    let minutes = r.u64_le()?;
    let mut hours = [0u32; 24];
    for h in &mut hours {
        *h = u32::try_from(r.u64()?).map_err(|_| Error::Corrupt("hour count out of range"))?;
    }

    let initial_capacity = r.u64()?;
    let error = r.f64_le()?;
    let layer_count = r.len_prefix()?;
    if layer_count > crate::activity::bloom::MAX_LAYERS {
        return Err(Error::Corrupt("too many filter layers"));
    }
    let mut layers = Vec::with_capacity(layer_count);
    for _ in 0..layer_count {
        let count = r.u64()?;
        let hashes =
            u32::try_from(r.u64()?).map_err(|_| Error::Corrupt("hash count out of range"))?;
        let words = r.len_prefix()?;
        if words > r.remaining() / 8 {
            return Err(Error::Corrupt("filter longer than payload"));
        }
        let bits: Vec<u64> = (0..words).map(|_| r.u64_le()).collect::<Result<_>>()?;
        layers.push((count, hashes, bits));
    }
    let seen = ScalableBloom::from_layers(initial_capacity, error, layers);
    // The sizing must be one the live configuration or `PARAMS` accepts (`crate::limits`) and the
    // layers exactly what it makes: a filter sized otherwise would let the next event allocate
    // what no live session could (capacity 2^24 at error 1e-300: 3 GB).
    if !seen.is_consistent() || seen.count() > events {
        return Err(Error::Corrupt("inconsistent seen filter"));
    }

    let distinct = read_distinct(r, version)?;

    let as_of_ms = r.i64()?;
    if !is_time(as_of_ms) {
        return Err(Error::Corrupt("interest time out of range"));
    }
    let n = r.len_prefix()?;
    if n > usize::from(top_n) {
        return Err(Error::Corrupt("more interests than top-n"));
    }
    let mut entries: Vec<Interest> = Vec::with_capacity(n);
    let mut names: std::collections::HashSet<&[u8]> = std::collections::HashSet::with_capacity(n);
    for _ in 0..n {
        let category = r.prefixed()?;
        let weight = r.f64_le()?;
        if !weight.is_finite() || weight < 0.0 || !names.insert(category) {
            return Err(Error::Corrupt("invalid interest"));
        }
        entries.push(Interest::new(category, weight));
    }

    Ok(Activity {
        top_n,
        half_life_s,
        events,
        first_event_ms,
        last_event_ms,
        longest_gap_ms,
        last_minute,
        minutes,
        hours: Box::new(hours),
        seen,
        distinct,
        interests: Interests { as_of_ms, entries },
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

fn put_list(out: &mut Vec<u8>, items: &[Box<[u8]>]) {
    put_u64(out, items.len() as u64);
    for item in items {
        put_bytes(out, item);
    }
}

/// A list of byte strings that must be strictly sorted (sets: segments, groups).
fn read_list(r: &mut Reader) -> Result<Vec<Box<[u8]>>> {
    let n = r.len_prefix()?;
    let mut items: Vec<Box<[u8]>> = Vec::with_capacity(n);
    for _ in 0..n {
        let item: Box<[u8]> = r.prefixed()?.into();
        if items.last().is_some_and(|last| *last >= item) {
            return Err(Error::Corrupt("set not in canonical order"));
        }
        items.push(item);
    }
    Ok(items)
}

fn section(out: &mut Vec<u8>, tag: u8, body: &mut Vec<u8>) {
    out.push(tag);
    put_u64(out, body.len() as u64);
    out.append(body);
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
        let params = SketchParams::default();
        s.apply_touch(&t, 1_700_000_005_000, false, &params);
        for i in 0..40 {
            let item = format!("page{}", i % 25);
            let event = Touch {
                event: Some(item.as_bytes()),
                categories: &[b"news", if i % 3 == 0 { b"golf" } else { b"hockey" }],
                ..Touch::default()
            };
            s.apply_touch(&event, 1_700_000_005_000 + i * 70_000, false, &params);
        }
        let req = crate::enrich::Enrich {
            attrs: Some(br#"{"churn":0.1}"#),
            join: vec![b"vip", b"beta"],
            ..Default::default()
        };
        let merged = crate::enrich::plan(&s, &req, 65_536, 64).unwrap();
        crate::enrich::apply(&mut s, &req, merged, 1_700_000_100_000, &Default::default());
        s.record_impressions(&[b"a", b"b", b"a"], 16);
        s.cursors = vec![(b"beta"[..].into(), 3), (b"vip"[..].into(), 7)];
        s.reads = vec![(
            b"vip"[..].into(),
            ReadMark {
                upto: 2,
                ids: vec![5, 7],
            },
        )];
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
        // a dense HyperLogLog and a multi-layer filter
        let mut big = sample();
        let params = SketchParams::default();
        for i in 0..3_000 {
            let item = format!("x{i}");
            let event = Touch {
                event: Some(item.as_bytes()),
                ..Touch::default()
            };
            big.apply_touch(&event, 1_700_000_005_000, false, &params);
        }
        let a = big.activity.as_ref().unwrap();
        assert!(!a.distinct.is_sparse() && a.seen.layers().len() > 3);
        assert_eq!(decode(&encode(&big)), Ok(big));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn version_1_payload_still_decodes() {
        // Written by the version-1 encoder: lifecycle, user "u", one field a=b, activity counters.
        let v1: &[u8] = &[
            1, 1, 4, 2, 4, 10, 20, 2, 1, b'u', 3, 5, 1, 1, b'a', 1, b'b', 4, 3, 3, 6, 8, 0,
        ];
        let s = decode(v1).unwrap();
        assert_eq!(
            (s.created_ms, s.last_seen_ms, s.idle_s, s.maxage_s),
            (1, 2, 10, 20)
        );
        assert_eq!(s.user.as_deref(), Some(&b"u"[..]));
        assert_eq!(s.fields.get(b"a"), Some(&b"b"[..]));
        assert_eq!(s.events(), 3);
        assert_eq!(s.activity.as_ref().unwrap().first_event_ms, 3);
        // Re-encoding writes the newest version.
        assert_eq!(encode(&s)[0], ENCODING_VERSION);
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
    fn sketch_sizing_outside_the_live_ranges_is_refused() {
        let with = |f: &dyn Fn(&mut Activity)| {
            let mut s = Session::new(1_700_000_000_000, 60, 60);
            let mut a = Activity::new(&SketchParams::default());
            a.events = 1;
            f(&mut a);
            s.activity = Some(a);
            decode(&encode(&s))
        };
        assert!(with(&|_| {}).is_ok());
        // issue 15's crash: capacity 2^24 at 1e-300, no layers
        let crash = with(&|a| a.seen = ScalableBloom::new(1 << 24, 1e-300));
        assert_eq!(crash, Err(Error::Corrupt("inconsistent seen filter")));
        assert!(with(&|a| a.seen = ScalableBloom::new(1 << 22, 0.01)).is_err());
        assert!(with(&|a| a.top_n = 1001).is_err());
        assert!(with(&|a| a.half_life_s = 0).is_err());
        assert!(with(
            &|a| a.distinct = HyperLogLog::from_registers(13, Registers::Sparse(Vec::new()))
        )
        .is_err());
        // a filter holding more items than the session had events
        let more = with(&|a| {
            a.seen.insert_hashes((1, 2));
            a.seen.insert_hashes((3, 4));
        });
        assert_eq!(more, Err(Error::Corrupt("inconsistent seen filter")));
    }

    /// A sample session whose distinct-items sketch is `distinct` (not checked before encoding).
    fn with_distinct(distinct: HyperLogLog) -> Vec<u8> {
        let mut s = sample();
        if let Some(a) = s.activity.as_mut() {
            a.distinct = distinct;
        }
        encode(&s)
    }

    #[test]
    fn exact_and_switched_sketches_round_trip() {
        let mut h = HyperLogLog::new(10);
        for i in 0..300u64 {
            h.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(h.is_exact());
        let bytes = with_distinct(h.clone());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.activity.as_ref().unwrap().distinct.estimate(), 300);
        assert_eq!(encode(&back), bytes, "canonical");
        for i in 300..700u64 {
            h.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(!h.is_sparse() && h.switch_estimate() != 0);
        let bytes = with_distinct(h.clone());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.activity.as_ref().unwrap().distinct, h);
        assert_eq!(encode(&back), bytes, "canonical");
    }

    #[test]
    fn exact_sketches_outside_the_live_ranges_are_refused() {
        let exact_with = |list: Vec<u32>, extra: u16| {
            let list = Fingerprints::from_values(&list).unwrap();
            with_distinct(HyperLogLog::from_exact(10, list, extra))
        };
        let exact = |list: Vec<u32>| exact_with(list, 0);
        let refused = |b: Vec<u8>| decode(&b) == Err(Error::Corrupt("inconsistent HyperLogLog"));
        let too_long = Err(Error::Corrupt("exact sketch longer than its limit"));
        assert!(decode(&exact(vec![1, 2, 3])).is_ok());
        assert!(decode(&exact(vec![0, 0xff_ffff])).is_ok());
        assert!(Fingerprints::from_values(&[1 << 24]).is_none(), "24 bits");
        assert!(refused(exact(vec![2, 1])), "unsorted");
        assert!(refused(exact(vec![1, 1])), "a duplicate");
        assert!(
            refused(exact(vec![0x01_0000, 0x00_ffff])),
            "unsorted high byte"
        );
        let limit = exact_limit(10) as u32;
        assert!(decode(&exact((0..limit).collect())).is_ok());
        assert_eq!(decode(&exact((0..=limit).collect())), too_long);
        // collisions counted beyond the list: never without a listed fingerprint, never past the
        // limit with it; several may share one fingerprint
        let s = decode(&exact_with(vec![7, 9], 3)).unwrap();
        assert_eq!(s.unique(), 5);
        assert!(refused(exact_with(vec![], 1)), "a collision with nothing");
        assert!(decode(&exact_with((0..limit - 2).collect(), 2)).is_ok());
        assert_eq!(decode(&exact_with((0..limit - 2).collect(), 3)), too_long);
        assert_eq!(decode(&exact_with(vec![1], u16::MAX)), too_long);
        // switched registers with a switch estimate of 0 (the byte where estimates 1 and 2 differ)
        let switched = |e0| {
            let h = HyperLogLog::from_parts(10, Registers::Dense(vec![0; 1024].into()), e0);
            with_distinct(h)
        };
        let (one, two) = (switched(1), switched(2));
        assert!(decode(&one).is_ok() && decode(&two).is_ok());
        let at = (0..one.len()).find(|&i| one[i] != two[i]).unwrap();
        let mut b = one.clone();
        b[at] = 0;
        assert_eq!(
            decode(&b),
            Err(Error::Corrupt("switch estimate out of range"))
        );
        // the new forms do not exist before version 5
        for version in [3, 4] {
            let mut b = exact(vec![1, 2]);
            b[0] = version;
            assert_eq!(decode(&b), Err(Error::Corrupt("unknown HyperLogLog form")));
        }
    }

    /// Join times (v6): saved per explicit group, validated like `AT`; a v5 groups section
    /// loads with join time 0 ("joined before everything").
    #[test]
    fn join_times_round_trip_and_older_forms_load_at_zero() {
        let mut s = sample();
        s.groups = vec![(b"a"[..].into(), 1_700_000_000_123), (b"b"[..].into(), 0)];
        let b = encode(&s);
        assert_eq!(b[0], ENCODING_VERSION);
        assert_eq!(decode(&b), Ok(s.clone()));
        let v5 = encode_as(&s, 5);
        let old = decode(&v5).unwrap();
        assert_eq!(old.groups, vec![(b"a"[..].into(), 0), (b"b"[..].into(), 0)]);
        assert_eq!(encode_as(&old, 5), v5);
        for bad in [-1, crate::codec::args::MAX_AT_MS + 1, i64::MIN] {
            s.groups[0].1 = bad;
            assert_eq!(
                decode(&encode(&s)),
                Err(Error::Corrupt("join time out of range"))
            );
        }
        // a v5 payload relabelled 6 (names without times) is refused, not misread
        s.groups[0].1 = 5;
        let mut relabelled = encode_as(&s, 5);
        relabelled[0] = 6;
        assert!(decode(&relabelled).is_err());
    }

    #[test]
    fn a_version_3_or_4_sparse_sketch_still_decodes_and_counts() {
        let mut s = sample();
        let mut old = HyperLogLog::from_registers(10, Registers::Sparse(Vec::new()));
        for i in 0..50u64 {
            old.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(old.is_sparse() && !old.is_exact());
        s.activity.as_mut().unwrap().distinct = old.clone();
        for version in [3, 4] {
            if version == 3 {
                s.reads.clear(); // read state came in version 4
            }
            let b = encode_as(&s, version);
            let back = decode(&b).unwrap();
            assert_eq!(back.activity.as_ref().unwrap().distinct, old);
        }
        assert!(old.estimate().abs_diff(50) <= 3);
    }

    mod distinct_forms {
        //! Property tests of the distinct-items sketch's saved forms (exact list, switched
        //! registers): arbitrary contents are accepted exactly when the live code could have
        //! made them, and what is accepted is canonical and keeps working.
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn activity_with(distinct: HyperLogLog) -> Vec<u8> {
            let mut s = Session::new(1_700_000_000_000, 60, 60);
            let mut a = Activity::new(&SketchParams::default());
            a.events = 1;
            a.distinct = distinct;
            s.activity = Some(a);
            encode(&s)
        }

        /// `bytes` with the one-byte varint at `at` (inside the activity section) replaced by `v`,
        /// the section's length prefix rewritten to match.
        fn reframe(bytes: &[u8], at: usize, v: u64) -> Vec<u8> {
            let mut out = vec![bytes[0]];
            let mut r = Reader::new(&bytes[1..]);
            loop {
                let tag = r.byte().unwrap();
                out.push(tag);
                if tag == TAG_END {
                    return out;
                }
                let len = r.len_prefix().unwrap();
                let payload_start = bytes.len() - r.remaining();
                let payload = r.bytes(len).unwrap();
                let mut payload = payload.to_vec();
                if (payload_start..payload_start + len).contains(&at) {
                    let mut varint = Vec::new();
                    put_u64(&mut varint, v);
                    let i = at - payload_start;
                    payload.splice(i..=i, varint);
                }
                put_u64(&mut out, payload.len() as u64);
                out.extend_from_slice(&payload);
            }
        }

        fn usable(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
            if let Ok(s) = decode(bytes) {
                prop_assert_eq!(encode(&s), bytes.to_vec(), "not canonical");
                let mut h = s
                    .activity
                    .map(|a| a.distinct)
                    .ok_or(TestCaseError::fail("no activity"))?;
                let before = h.estimate();
                let was_exact = h.is_exact();
                for i in 0..600u64 {
                    h.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ before);
                    prop_assert!(h.is_consistent());
                }
                prop_assert!(!was_exact || h.estimate() >= before);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            #[test]
            fn exact_lists_are_accepted_iff_live(
                precision in 1u8..=14,
                mut list in vec(0u32..1 << 24, 0..1100),
                sort in any::<bool>(),
                extra in prop_oneof![Just(0u16), 0u16..=16, 0u16..=1100, any::<u16>()],
            ) {
                if sort {
                    list.sort_unstable();
                    list.dedup();
                }
                let live = limits::within(precision, limits::HLL_PRECISION)
                    && list.len() + usize::from(extra) <= exact_limit(precision)
                    && (extra == 0 || !list.is_empty())
                    && list.windows(2).all(|w| w[0] < w[1]);
                let n = list.len() as u64 + u64::from(extra);
                let list = Fingerprints::from_values(&list).ok_or(TestCaseError::fail("24 bits"))?;
                let bytes = activity_with(HyperLogLog::from_exact(precision, list, extra));
                let back = decode(&bytes);
                prop_assert_eq!(back.is_ok(), live);
                if let Ok(s) = back {
                    prop_assert_eq!(s.unique(), n);
                }
                usable(&bytes)?;
            }

            #[test]
            fn switched_registers_are_accepted_iff_live(
                precision in 4u8..=12,
                ranks in vec(0u8..=70, 4096),
                e0 in prop_oneof![Just(0u64), 1u64..=2_000, any::<u64>()],
                capped in any::<bool>(),
            ) {
                let m = 1usize << precision;
                let cap = if capped { 65 - precision } else { 70 };
                let regs: Box<[u8]> = ranks[..m].iter().map(|&r| r.min(cap)).collect();
                let live = e0 != 0 && e0 <= u64::from(u32::MAX)
                    && regs.iter().all(|&r| r <= 65 - precision);
                let with = |e| activity_with(HyperLogLog::from_parts(precision, Registers::Dense(regs.clone()), e));
                let (one, two) = (with(1), with(2));
                let at = (0..one.len()).find(|&i| one[i] != two[i]).unwrap();
                let bytes = reframe(&one, at, e0);
                prop_assert_eq!(decode(&bytes).is_ok(), live);
                usable(&bytes)?;
            }

            #[test]
            fn damaged_exact_forms_never_panic(
                n in 0u64..600,
                hits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            ) {
                let mut h = HyperLogLog::new(10);
                for i in 0..n {
                    h.insert_hash(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                }
                let mut bytes = activity_with(h);
                for (i, v) in hits {
                    let i = i.index(bytes.len());
                    bytes[i] = v;
                }
                usable(&bytes)?;
            }
        }
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
