//! The registry's saved form (RDB aux data, and the AOF rewrite's source): version, catalogs by
//! name with their items in slot order, the notification sequence and the groups; and the sync
//! blob (`encode_entries`/`decode_entries`/`chunk_entries`): registry entries for the cluster bus
//! and `SESSION.SYNC APPLY`.

use crate::error::{Error, Result};
use crate::notify::{Group, JoinWindow, Notification};
use crate::registry::analytics::{
    Analytics, MinuteSketch, ACTIVE_MINUTES, ACTIVE_PRECISION, MINUTES,
};
use crate::registry::{Entry, Registry};
use crate::surface::catalog::Catalog;
use crate::surface::trending::{TrendParams, Trending};
use crate::version::Version;

use super::wire::{put_bytes, put_i64, put_u64, Reader};

/// The registry's saved-form version: 1 = catalogs; 2 = + notification groups and the sequence;
/// 3 = + each notification's publisher (its ACL user name, or none); 4 = + the site-wide analytics
/// (trending sizing, reference time and counters; views per minute; active-session sketches;
/// the events total); 5 = + each catalog item's version and the tombstones (item, catalog and
/// group ones, for cluster sync); 6 = + each notification's join restriction (`JOINEDAFTER` /
/// `JOINEDBEFORE`: a flag byte, then the bounds it names); 7 = + each trending item's fast counter
/// (velocity).
pub const REGISTRY_VERSION: u8 = 7;

/// The sync blob's format version (its first byte): 1 = the first; 2 = + each notification's join
/// restriction (as in the saved form 6). Version 1 blobs are still read.
pub const ENTRIES_VERSION: u8 = 2;

/// Flag bits of a saved join restriction.
const JOINED_AFTER: u8 = 1;
const JOINED_BEFORE: u8 = 2;

fn put_window(out: &mut Vec<u8>, w: &JoinWindow) {
    let has_after = w.after != JoinWindow::ANY.after;
    let has_before = w.before != JoinWindow::ANY.before;
    out.push(if has_after { JOINED_AFTER } else { 0 } | if has_before { JOINED_BEFORE } else { 0 });
    if has_after {
        put_i64(out, w.after);
    }
    if has_before {
        put_i64(out, w.before);
    }
}

/// A join restriction, checked as NOTIFYGROUP checks it (bounds in `AT`'s range, never empty).
fn read_window(r: &mut Reader) -> Result<JoinWindow> {
    let flags = r.byte()?;
    if flags & !(JOINED_AFTER | JOINED_BEFORE) != 0 {
        return Err(Error::Corrupt("bad join restriction flags"));
    }
    let mut w = JoinWindow::ANY;
    if flags & JOINED_AFTER != 0 {
        w.after = r.i64()?;
        if w.after == JoinWindow::ANY.after {
            return Err(Error::Corrupt("join restriction not canonical"));
        }
    }
    if flags & JOINED_BEFORE != 0 {
        w.before = r.i64()?;
        if w.before == JoinWindow::ANY.before {
            return Err(Error::Corrupt("join restriction not canonical"));
        }
    }
    if !w.is_valid(crate::codec::args::MAX_AT_MS) {
        return Err(Error::Corrupt("join restriction out of range"));
    }
    Ok(w)
}

/// The largest clock a version or sequence may carry (the range `NOTIFYGROUP ... SEQ` accepts).
const MAX_CLOCK: u64 = i64::MAX as u64;
/// The largest MAXLEN a publish accepts (`SESSION.NOTIFYGROUP ... MAXLEN`).
const MAX_MAXLEN: u64 = 100_000;

fn put_version(out: &mut Vec<u8>, v: Version) {
    put_u64(out, v.clock);
    out.extend_from_slice(&v.node.to_le_bytes());
}

fn read_version(r: &mut Reader) -> Result<Version> {
    let clock = r.u64()?;
    let node = r.u64_le()?;
    if clock > MAX_CLOCK {
        return Err(Error::Corrupt("version clock out of range"));
    }
    Ok(Version { clock, node })
}

/// The saved form: version, catalogs by name, items in slot order.
pub fn encode(registry: &Registry) -> Vec<u8> {
    encode_as(registry, REGISTRY_VERSION)
}

/// The saved form as version 4 to 7 (4: no item versions, no tombstones; 5: no join
/// restrictions; below 7: no fast trend counters; tests of older loads).
pub(crate) fn encode_as(registry: &Registry, format: u8) -> Vec<u8> {
    let mut out = vec![format];
    put_u64(&mut out, registry.catalogs.len() as u64);
    for (name, catalog) in &registry.catalogs {
        put_bytes(&mut out, name);
        put_u64(&mut out, catalog.len() as u64);
        for item in catalog.items() {
            put_bytes(&mut out, &item.id);
            out.extend_from_slice(&item.score.to_le_bytes());
            match item.expires_ms {
                Some(at) => {
                    out.push(1);
                    put_i64(&mut out, at);
                }
                None => out.push(0),
            }
            put_u64(&mut out, item.categories.len() as u64);
            for &c in item.categories.iter() {
                put_bytes(&mut out, catalog.category_name(c));
            }
            if format >= 5 {
                put_version(&mut out, item.version);
            }
        }
    }
    put_u64(&mut out, registry.last_seq);
    put_u64(&mut out, registry.groups.len() as u64);
    for (name, group) in &registry.groups {
        put_bytes(&mut out, name);
        put_u64(&mut out, group.notifications().len() as u64);
        for n in group.notifications() {
            put_u64(&mut out, n.seq);
            put_bytes(&mut out, &n.id);
            put_bytes(&mut out, &n.payload);
            put_i64(&mut out, n.published_ms);
            put_i64(&mut out, n.expires_ms);
            match &n.publisher {
                Some(p) => {
                    out.push(1);
                    put_bytes(&mut out, p);
                }
                None => out.push(0),
            }
            if format >= 6 {
                put_window(&mut out, &n.joined);
            }
        }
    }
    encode_analytics(&mut out, &registry.analytics, format);
    if format < 5 {
        out.push(0);
        return out;
    }
    let items_gone: Vec<(&[u8], &[u8], Version)> = registry
        .item_gone
        .iter()
        .flat_map(|(c, ids)| ids.iter().map(move |(id, v)| (&**c, &**id, *v)))
        .collect();
    put_u64(&mut out, items_gone.len() as u64);
    for (catalog, id, v) in items_gone {
        put_bytes(&mut out, catalog);
        put_bytes(&mut out, id);
        put_version(&mut out, v);
    }
    for map in [&registry.catalog_gone, &registry.group_gone] {
        put_u64(&mut out, map.len() as u64);
        for (name, v) in map {
            put_bytes(&mut out, name);
            put_version(&mut out, *v);
        }
    }
    out.push(0);
    out
}

fn encode_analytics(out: &mut Vec<u8>, a: &Analytics, format: u8) {
    let t = &a.trending;
    put_u64(out, u64::from(t.params().top_k));
    put_u64(out, u64::from(t.params().half_life_s));
    put_i64(out, t.ref_ms());
    put_u64(out, a.events);
    put_u64(out, t.len() as u64);
    for (id, c, fast) in t.entries() {
        put_bytes(out, id);
        out.extend_from_slice(&c.to_le_bytes());
        if format >= 7 {
            out.extend_from_slice(&fast.to_le_bytes());
        }
    }
    let views: Vec<&(i64, u64)> = a.views.iter().filter(|v| v.0 != i64::MIN).collect();
    put_u64(out, views.len() as u64);
    for (minute, n) in views {
        put_i64(out, *minute);
        put_u64(out, *n);
    }
    put_u64(out, a.active.iter().flatten().count() as u64);
    for s in a.active.iter().flatten() {
        put_i64(out, s.minute);
        put_bytes(out, &s.registers);
    }
}

fn decode_analytics(r: &mut Reader, version: u8) -> Result<Analytics> {
    let bad = Error::Corrupt("analytics out of range");
    let top_k = u32::try_from(r.u64()?).map_err(|_| bad.clone())?;
    let half_life_s = u32::try_from(r.u64()?).map_err(|_| bad.clone())?;
    let params = TrendParams { top_k, half_life_s };
    if !params.valid() {
        return Err(bad);
    }
    let ref_ms = r.i64()?;
    let events = r.u64()?;
    let n = r.len_prefix()?;
    if n > top_k as usize {
        return Err(bad);
    }
    let mut entries = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let id: Box<[u8]> = r.prefixed()?.into();
        let c = r.f64_le()?;
        // before version 7: no fast counter (from_parts assumes steady traffic)
        let fast = if version >= 7 {
            Some(r.f64_le()?)
        } else {
            None
        };
        entries.push((id, c, fast));
    }
    let trending = Trending::from_parts(params, ref_ms, entries).ok_or_else(|| bad.clone())?;
    let mut a = Analytics::new();
    a.trending = trending;
    a.events = events;
    let n = r.len_prefix()?;
    if n > MINUTES {
        return Err(bad);
    }
    for _ in 0..n {
        let minute = r.i64()?;
        let count = r.u64()?;
        if minute == i64::MIN {
            return Err(bad);
        }
        let slot = &mut a.views[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.0 != i64::MIN {
            return Err(bad);
        }
        *slot = (minute, count);
    }
    let n = r.len_prefix()?;
    if n > ACTIVE_MINUTES {
        return Err(bad);
    }
    for _ in 0..n {
        let minute = r.i64()?;
        let registers = r.prefixed()?;
        if registers.len() != 1 << ACTIVE_PRECISION {
            return Err(bad);
        }
        let slot = &mut a.active[minute.rem_euclid(ACTIVE_MINUTES as i64) as usize];
        if slot.is_some() {
            return Err(bad);
        }
        *slot = Some(MinuteSketch {
            minute,
            registers: registers.into(),
        });
    }
    if !a.is_consistent() {
        return Err(bad);
    }
    Ok(a)
}

/// Reads the tombstones, each list in strictly increasing key order (so no duplicate). An item
/// tombstone beside a live item of the same key is dropped (the item, a later local add, wins).
/// Returns the largest clock read.
fn decode_tombstones(r: &mut Reader, registry: &mut Registry) -> Result<u64> {
    let order = Error::Corrupt("tombstones out of order");
    let mut max_clock = 0;
    let n = r.len_prefix()?;
    let mut last: Option<(&[u8], &[u8])> = None;
    for _ in 0..n {
        let catalog = r.prefixed()?;
        let id = r.prefixed()?;
        let v = read_version(r)?;
        if last.is_some_and(|prev| prev >= (catalog, id)) {
            return Err(order);
        }
        last = Some((catalog, id));
        max_clock = max_clock.max(v.clock);
        let held = registry.catalogs.get(catalog).and_then(|c| c.get(id));
        if held.is_none() {
            registry
                .item_gone
                .entry(catalog.into())
                .or_default()
                .insert(id.into(), v);
        }
    }
    for which in 0..2 {
        let n = r.len_prefix()?;
        let mut last: Option<&[u8]> = None;
        for _ in 0..n {
            let name = r.prefixed()?;
            let v = read_version(r)?;
            if last.is_some_and(|l| l >= name) {
                return Err(order);
            }
            last = Some(name);
            max_clock = max_clock.max(v.clock);
            let map = if which == 0 {
                &mut registry.catalog_gone
            } else {
                &mut registry.group_gone
            };
            map.insert(name.into(), v);
        }
    }
    Ok(max_clock)
}

pub fn decode(bytes: &[u8]) -> Result<Registry> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or(Error::Corrupt("empty registry"))?;
    if version == 0 || version > REGISTRY_VERSION {
        return Err(Error::UnknownEncoding(version));
    }
    let mut r = Reader::new(rest);
    let mut registry = Registry::default();
    let mut max_clock = 0;
    let catalogs = r.len_prefix()?;
    for _ in 0..catalogs {
        let name: Box<[u8]> = r.prefixed()?.into();
        let mut catalog = Catalog::default();
        let items = r.len_prefix()?;
        for _ in 0..items {
            let id = r.prefixed()?;
            let score = r.f64_le()?;
            // the range CATALOG ADD accepts (NaN fails it too)
            if !crate::limits::within(score, crate::limits::CATALOG_SCORE) {
                return Err(Error::Corrupt("item score out of range"));
            }
            let expires = match r.byte()? {
                0 => None,
                1 => Some(r.i64()?),
                _ => return Err(Error::Corrupt("bad expiry flag")),
            };
            let n = r.len_prefix()?;
            let mut categories = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                categories.push(r.prefixed()?);
            }
            let version = if version >= 5 {
                read_version(&mut r)?
            } else {
                Version::default()
            };
            max_clock = max_clock.max(version.clock);
            if !catalog.add_versioned(id, score, &categories, expires, version) {
                return Err(Error::Corrupt("duplicate catalog item"));
            }
        }
        if registry.catalogs.insert(name, catalog).is_some() {
            return Err(Error::Corrupt("duplicate catalog"));
        }
    }
    if version >= 2 {
        registry.last_seq = r.u64()?;
        let groups = r.len_prefix()?;
        for _ in 0..groups {
            let name: Box<[u8]> = r.prefixed()?.into();
            let mut notifications = std::collections::VecDeque::new();
            let n = r.len_prefix()?;
            for _ in 0..n {
                let seq = r.u64()?;
                let last = notifications.back().map_or(0, |x: &Notification| x.seq);
                if seq <= last || seq > registry.last_seq {
                    return Err(Error::Corrupt("notification sequence out of order"));
                }
                let id = r.prefixed()?.into();
                let payload = r.prefixed()?.into();
                let published_ms = r.i64()?;
                let expires_ms = r.i64()?;
                let publisher = if version >= 3 {
                    match r.byte()? {
                        0 => None,
                        1 => Some(r.prefixed()?.into()),
                        _ => return Err(Error::Corrupt("bad publisher flag")),
                    }
                } else {
                    None
                };
                let joined = if version >= 6 {
                    read_window(&mut r)?
                } else {
                    JoinWindow::ANY
                };
                notifications.push_back(Notification {
                    seq,
                    id,
                    payload,
                    published_ms,
                    expires_ms,
                    publisher,
                    joined,
                });
            }
            // the id set is derived: built here (and again by `recount`)
            let group = Group::with(notifications);
            if group.is_empty() || registry.groups.insert(name, group).is_some() {
                return Err(Error::Corrupt("empty or duplicate group"));
            }
        }
    }
    if version >= 4 {
        registry.analytics = decode_analytics(&mut r, version)?;
    }
    if version >= 5 {
        max_clock = max_clock.max(decode_tombstones(&mut r, &mut registry)?);
    }
    // the clock is at least every version it holds (a merge raises it so)
    registry.last_seq = registry.last_seq.max(max_clock);
    if r.byte()? != 0 || !r.is_empty() {
        return Err(Error::Corrupt("bytes after the registry"));
    }
    registry.recount();
    Ok(registry)
}

fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    match e {
        Entry::Item {
            catalog,
            id,
            score,
            categories,
            expires_ms,
            version,
        } => {
            out.push(1);
            put_bytes(out, catalog);
            put_bytes(out, id);
            out.extend_from_slice(&score.to_le_bytes());
            match expires_ms {
                Some(at) => {
                    out.push(1);
                    put_i64(out, *at);
                }
                None => out.push(0),
            }
            put_u64(out, categories.len() as u64);
            for c in categories.iter() {
                put_bytes(out, c);
            }
            put_version(out, *version);
        }
        Entry::ItemGone {
            catalog,
            id,
            version,
        } => {
            out.push(2);
            put_bytes(out, catalog);
            put_bytes(out, id);
            put_version(out, *version);
        }
        Entry::CatalogGone { catalog, version } => {
            out.push(3);
            put_bytes(out, catalog);
            put_version(out, *version);
        }
        Entry::Notification {
            group,
            notification: n,
            maxlen,
        } => {
            out.push(4);
            put_bytes(out, group);
            put_u64(out, n.seq);
            put_bytes(out, &n.id);
            put_bytes(out, &n.payload);
            put_i64(out, n.published_ms);
            put_i64(out, n.expires_ms);
            match &n.publisher {
                Some(p) => {
                    out.push(1);
                    put_bytes(out, p);
                }
                None => out.push(0),
            }
            put_u64(out, u64::from(*maxlen));
            put_window(out, &n.joined);
        }
        Entry::GroupGone { group, version } => {
            out.push(5);
            put_bytes(out, group);
            put_version(out, *version);
        }
    }
}

/// One entry of a sync blob of format `version` (1: notifications without a join restriction).
fn read_entry(r: &mut Reader, version: u8) -> Result<Entry> {
    Ok(match r.byte()? {
        1 => {
            let catalog = r.prefixed()?.into();
            let id = r.prefixed()?.into();
            let score = r.f64_le()?;
            // the range CATALOG ADD accepts (NaN fails it too)
            if !crate::limits::within(score, crate::limits::CATALOG_SCORE) {
                return Err(Error::Corrupt("item score out of range"));
            }
            let expires_ms = match r.byte()? {
                0 => None,
                1 => Some(r.i64()?),
                _ => return Err(Error::Corrupt("bad expiry flag")),
            };
            let n = r.len_prefix()?;
            // at most what `session.max-categories` can ever allow
            if n > crate::limits::MAX_CATEGORIES.1 as usize {
                return Err(Error::Corrupt("too many categories"));
            }
            let mut categories = Vec::with_capacity(n);
            for _ in 0..n {
                categories.push(Box::from(r.prefixed()?));
            }
            Entry::Item {
                catalog,
                id,
                score,
                categories: categories.into(),
                expires_ms,
                version: read_version(r)?,
            }
        }
        2 => Entry::ItemGone {
            catalog: r.prefixed()?.into(),
            id: r.prefixed()?.into(),
            version: read_version(r)?,
        },
        3 => Entry::CatalogGone {
            catalog: r.prefixed()?.into(),
            version: read_version(r)?,
        },
        4 => {
            let group = r.prefixed()?.into();
            let seq = r.u64()?;
            // the range NOTIFYGROUP's SEQ accepts
            if seq == 0 || seq > MAX_CLOCK {
                return Err(Error::Corrupt("notification sequence out of range"));
            }
            let id = r.prefixed()?.into();
            let payload = r.prefixed()?.into();
            let published_ms = r.i64()?;
            let expires_ms = r.i64()?;
            let publisher = match r.byte()? {
                0 => None,
                1 => Some(r.prefixed()?.into()),
                _ => return Err(Error::Corrupt("bad publisher flag")),
            };
            // the range NOTIFYGROUP's MAXLEN accepts (0: none known)
            let maxlen = r.u64()?;
            if maxlen > MAX_MAXLEN {
                return Err(Error::Corrupt("notification MAXLEN out of range"));
            }
            let joined = if version >= 2 {
                read_window(r)?
            } else {
                JoinWindow::ANY
            };
            Entry::Notification {
                maxlen: maxlen as u32,
                group,
                notification: Notification {
                    seq,
                    id,
                    payload,
                    published_ms,
                    expires_ms,
                    publisher,
                    joined,
                },
            }
        }
        5 => Entry::GroupGone {
            group: r.prefixed()?.into(),
            version: read_version(r)?,
        },
        _ => return Err(Error::Corrupt("unknown entry kind")),
    })
}

/// The sync blob of `entries`: `ENTRIES_VERSION`, the count, the entries, a terminator.
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![ENTRIES_VERSION];
    put_u64(&mut out, entries.len() as u64);
    for e in entries {
        put_entry(&mut out, e);
    }
    out.push(0);
    out
}

/// Reads a sync blob. Every length is checked against what remains (an allocation never exceeds
/// the blob's own size), every value against the range live input has; hostile bytes give
/// `Err`, never a panic.
pub fn decode_entries(bytes: &[u8]) -> Result<Vec<Entry>> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or(Error::Corrupt("empty sync blob"))?;
    if version == 0 || version > ENTRIES_VERSION {
        return Err(Error::UnknownEncoding(version));
    }
    let mut r = Reader::new(rest);
    // every entry takes more than one byte: the count is bounded by the blob
    let n = r.len_prefix()?;
    let mut entries = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        entries.push(read_entry(&mut r, version)?);
    }
    if r.byte()? != 0 || !r.is_empty() {
        return Err(Error::Corrupt("bytes after the entries"));
    }
    Ok(entries)
}

/// Length of the varint of `v`.
fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// `entries` as sync blobs of at most `max_bytes` each (in order; an entry larger than that on
/// its own goes alone in its blob). Every blob decodes with `decode_entries`.
pub fn chunk_entries(entries: &[Entry], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut body = Vec::new();
    let mut count: u64 = 0;
    let mut one = Vec::new();
    let finish = |body: &mut Vec<u8>, count: u64| {
        let mut out = Vec::with_capacity(body.len() + 12);
        out.push(ENTRIES_VERSION);
        put_u64(&mut out, count);
        out.append(body);
        out.push(0);
        out
    };
    for e in entries {
        one.clear();
        put_entry(&mut one, e);
        let size = 2 + varint_len(count + 1) + body.len() + one.len();
        if count > 0 && size > max_bytes {
            chunks.push(finish(&mut body, count));
            count = 0;
        }
        body.extend_from_slice(&one);
        count += 1;
    }
    if count > 0 {
        chunks.push(finish(&mut body, count));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Limits, Published};

    #[test]
    fn round_trip_and_refusals() {
        let mut reg = Registry::default();
        let mut c = Catalog::default();
        c.add(b"a", 1.5, &[b"x", b"y"], Some(99));
        c.add(b"b", -2.0, &[], None);
        reg.catalogs.insert(b"news"[..].into(), c);
        reg.catalogs.insert(b"empty"[..].into(), Catalog::default());
        assert_eq!(
            reg.publish(b"g", b"n1", b"hello", 10, 100, 5, None, Limits::NONE),
            Ok(Published::Stored)
        );
        assert_eq!(
            reg.publish(b"g", b"n1", b"again", 11, 100, 5, None, Limits::NONE),
            Ok(Published::Duplicate)
        );
        assert_eq!(
            reg.publish(b"h", b"n1", b"x", 12, 100, 5, None, Limits::NONE),
            Ok(Published::Stored)
        );
        let bytes = encode(&reg);
        let back = decode(&bytes).unwrap();
        assert_eq!(encode(&back), bytes);
        assert_eq!(back.items(), 2);
        assert_eq!((back.notifications(), back.last_seq), (2, 12 * 1024));
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode(&b); // never panics
        }
    }

    /// The v5 form of a registry without analytics, tombstones nor items, as version `v` (3: no
    /// analytics section).
    fn as_version(v: u8, v5: &[u8]) -> Vec<u8> {
        let mut empty = Vec::new();
        encode_analytics(&mut empty, &Analytics::new(), REGISTRY_VERSION);
        empty.extend_from_slice(&[0, 0, 0]);
        let v4 = v5;
        let body = &v4[1..v4.len() - 1 - empty.len()];
        assert_eq!(&v4[v4.len() - 1 - empty.len()..v4.len() - 1], &empty[..]);
        let mut out = vec![v];
        out.extend_from_slice(body);
        out.push(0);
        out
    }

    #[test]
    fn analytics_round_trip_and_refusals() {
        let mut reg = Registry::default();
        reg.analytics.set_params(
            TrendParams {
                top_k: 16,
                half_life_s: 60,
            },
            0,
        );
        for i in 0..40i64 {
            reg.analytics.record(
                format!("s{}", i % 7).as_bytes(),
                format!("i{}", i % 20).as_bytes(),
                1_000_000 + i * 7_000,
                true,
            );
        }
        let bytes = encode(&reg);
        assert_eq!(bytes[0], REGISTRY_VERSION);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.analytics, reg.analytics);
        assert_eq!(encode(&back), bytes);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            if let Ok(r) = decode(&b) {
                assert!(r.analytics.is_consistent());
                assert!(r.analytics.trending.params().valid());
            }
        }
        // formats 5 and 6 (before fast counters) load them as steady traffic: counter / FAST
        for format in [5, 6] {
            let old = decode(&encode_as(&reg, format)).unwrap();
            for ((id, c, f), (id_old, c_old, f_old)) in reg
                .analytics
                .trending
                .entries()
                .zip(old.analytics.trending.entries())
            {
                assert_eq!((id, c), (id_old, c_old));
                assert_eq!(f_old, c / f64::from(crate::surface::trending::FAST));
                assert!(f != f_old, "the saved form keeps the live fast counters");
            }
            assert_eq!(encode_as(&old, format), encode_as(&reg, format));
        }
        // a top-K outside the live range is refused
        let mut small = Registry::default();
        small.analytics.trending = Trending::new(TrendParams {
            top_k: 8,
            half_life_s: 60,
        });
        assert!(decode(&encode(&small)).is_err());
    }

    #[test]
    fn publisher_round_trips_and_older_versions_load() {
        let mut reg = Registry::default();
        reg.publish(b"g", b"n1", b"p", 10, 100, 5, None, Limits::NONE)
            .unwrap();
        let seq = reg.last_seq;
        reg.set_publisher(b"g", seq, Some(b"tenantA"));
        let bytes = as_version(3, &encode_as(&reg, 5));
        assert_eq!(bytes[0], 3);
        let back = decode(&bytes).unwrap();
        let n = back
            .groups
            .get(&b"g"[..])
            .unwrap()
            .notifications()
            .front()
            .unwrap();
        assert_eq!(n.publisher.as_deref(), Some(&b"tenantA"[..]));
        assert_eq!(as_version(3, &encode_as(&back, 5)), bytes);
        // A bad publisher flag is refused.
        let mut bad = bytes.clone();
        let flag = bytes.len() - 2 - 1 - b"tenantA".len();
        assert_eq!(bad[flag], 1);
        bad[flag] = 7;
        assert!(decode(&bad).is_err());

        // Version 2 (no publisher byte) still loads, as notifications without a publisher.
        reg.set_publisher(b"g", seq, None);
        let v3 = as_version(3, &encode_as(&reg, 5));
        assert_eq!(
            v3[v3.len() - 2],
            0,
            "the publisher flag precedes the terminator"
        );
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&v3[1..v3.len() - 2]);
        v2.push(0);
        let old = decode(&v2).unwrap();
        let n = old
            .groups
            .get(&b"g"[..])
            .unwrap()
            .notifications()
            .front()
            .unwrap();
        assert_eq!((n.publisher.as_deref(), n.seq), (None, seq));
        assert_eq!(as_version(3, &encode_as(&old, 5)), v3);
    }

    /// Join restrictions (v6, sync blob 2): saved and carried exactly; v5 and blob 1 load
    /// without one; an empty or out-of-range window is refused.
    #[test]
    fn join_windows_round_trip_and_older_forms_load_unrestricted() {
        let mut reg = Registry::default();
        for (i, w) in [
            JoinWindow::ANY,
            JoinWindow {
                after: 0,
                before: 500,
            },
            JoinWindow {
                after: 7,
                before: i64::MAX,
            },
            JoinWindow {
                after: 7,
                before: 9,
            },
        ]
        .into_iter()
        .enumerate()
        {
            reg.publish(
                b"g",
                format!("n{i}").as_bytes(),
                b"p",
                10,
                100,
                9,
                None,
                Limits::NONE,
            )
            .unwrap();
            let seq = reg.last_seq;
            reg.set_window(b"g", seq, w);
        }
        let windows = |r: &Registry| -> Vec<JoinWindow> {
            r.groups[&b"g"[..]]
                .notifications()
                .iter()
                .map(|n| n.joined)
                .collect()
        };
        let bytes = encode(&reg);
        let back = decode(&bytes).unwrap();
        assert_eq!(windows(&back), windows(&reg));
        assert_eq!(back.groups[&b"g"[..]].restricted().len(), 3);
        assert_eq!(encode(&back), bytes);
        assert_eq!(back.digest(), reg.digest());
        let old = decode(&encode_as(&reg, 5)).unwrap();
        assert!(windows(&old).iter().all(|w| *w == JoinWindow::ANY));
        assert!(old.groups[&b"g"[..]].restricted().is_empty());
        assert_ne!(old.digest(), reg.digest(), "the digest tells them apart");

        // the sync blob carries it; a version-1 blob (no window) still decodes
        let entries = reg.snapshot(0);
        let blob = encode_entries(&entries);
        assert_eq!(blob[0], 2);
        assert_eq!(decode_entries(&blob).unwrap(), entries);
        let plain: Vec<Entry> = entries
            .iter()
            .cloned()
            .map(|mut e| {
                if let Entry::Notification { notification, .. } = &mut e {
                    notification.joined = JoinWindow::ANY;
                }
                e
            })
            .collect();
        let mut v1 = encode_entries(&plain);
        // version 2 writes one flag byte 0 after each unrestricted notification's MAXLEN
        // (the last byte of each entry here): drop it for version 1
        v1[0] = 1;
        let mut r = Reader::new(&v1[1..]);
        let n = r.len_prefix().unwrap();
        let mut out = vec![1u8];
        put_u64(&mut out, n as u64);
        let mut rest = &v1[1 + varint_len(n as u64)..];
        for e in &plain {
            let mut one = Vec::new();
            put_entry(&mut one, e);
            assert_eq!(&rest[..one.len()], &one[..]);
            out.extend_from_slice(&one[..one.len() - 1]);
            rest = &rest[one.len()..];
        }
        out.push(0);
        assert_eq!(decode_entries(&out).unwrap(), plain);

        // refused: an empty window, bounds out of range, unknown flags, a non-canonical bound
        for (flags, values) in [
            (3u8, vec![9i64, 9]),
            (2, vec![0]),
            (1, vec![-1]),
            (1, vec![crate::codec::args::MAX_AT_MS + 1]),
            (1, vec![0]),
            (4, vec![]),
        ] {
            let mut b = vec![flags];
            for v in values {
                put_i64(&mut b, v);
            }
            assert!(read_window(&mut Reader::new(&b)).is_err(), "{flags} {b:?}");
        }
    }

    fn tracked(id: &[u8]) -> Registry {
        let mut r = Registry::new();
        r.node = crate::version::node_hash(id);
        r.track = true;
        r
    }

    const T: i64 = 1_700_000_000_000;

    /// A registry holding every kind of entry.
    fn full() -> Registry {
        let mut r = tracked(b"n1");
        r.add_item(b"c", b"x", 1.5, &[b"k", b"l"], Some(T + 9_000), T);
        r.add_item(b"c", b"y", -2.0, &[], None, T);
        r.del_items(b"c", &[b"z", b"w"], T);
        r.del_items(b"d", &[b"q"], T);
        r.drop_catalog(b"e", T);
        r.publish(b"g", b"n1", b"hello", T, T + 100_000, 5, None, Limits::NONE)
            .unwrap();
        r.set_publisher(b"g", r.last_seq, Some(b"alice"));
        r.drop_group(b"h", T);
        r
    }

    #[test]
    fn v5_round_trips_versions_and_tombstones_and_v4_loads() {
        let reg = full();
        let bytes = encode(&reg);
        assert_eq!(bytes[0], REGISTRY_VERSION);
        let back = decode(&bytes).unwrap();
        assert_eq!(encode(&back), bytes);
        assert_eq!(back.digest(), reg.digest());
        assert_eq!(back.tombstones(), 5);
        let x = back.catalogs[&b"c"[..]].get(b"x").unwrap().version;
        assert_eq!(x, reg.catalogs[&b"c"[..]].get(b"x").unwrap().version);
        assert_eq!(x.node, reg.node);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode(&b); // never panics
        }
        // v4: items at version (0, 0), no tombstones
        let v4 = encode_as(&reg, 4);
        assert_eq!(v4[0], 4);
        let old = decode(&v4).unwrap();
        assert_eq!(old.items(), 2);
        assert_eq!(old.tombstones(), 0);
        assert!(old.catalogs[&b"c"[..]]
            .items()
            .all(|i| i.version == Version::default()));
        assert_eq!(encode_as(&old, 4), v4);
        assert_eq!(old.last_seq, reg.last_seq);
        // duplicate / unordered tombstones are refused
        let mut two = Registry::new();
        two.catalog_gone
            .insert(b"a"[..].into(), Version { clock: 1, node: 2 });
        two.catalog_gone
            .insert(b"b"[..].into(), Version { clock: 1, node: 2 });
        two.last_seq = 1;
        let good = encode(&two);
        assert!(decode(&good).is_ok());
        let at = good.windows(2).position(|w| w == [1, b'b']).unwrap();
        let mut dup = good.clone();
        dup[at + 1] = b'a';
        assert!(decode(&dup).is_err());
        // a clock beyond the SEQ range is refused; the loaded clock covers every version
        let mut high = Registry::new();
        high.group_gone
            .insert(b"g"[..].into(), Version { clock: 50, node: 0 });
        assert_eq!(decode(&encode(&high)).unwrap().last_seq, 50);
        high.group_gone.insert(
            b"g"[..].into(),
            Version {
                clock: u64::MAX,
                node: 0,
            },
        );
        assert!(decode(&encode(&high)).is_err());
    }

    #[test]
    fn entries_round_trip_and_refuse_truncated_or_garbage_blobs() {
        let entries = full().snapshot(T);
        assert_eq!(entries.len(), 2 + 3 + 1 + 1 + 1);
        let blob = encode_entries(&entries);
        assert_eq!(decode_entries(&blob).unwrap(), entries);
        assert_eq!(decode_entries(&encode_entries(&[])).unwrap(), vec![]);
        for n in 0..blob.len() {
            assert!(decode_entries(&blob[..n]).is_err(), "prefix {n}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode_entries(&longer).is_err());
        for i in 0..blob.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = blob.clone();
                b[i] ^= flip;
                if let Ok(back) = decode_entries(&b) {
                    // whatever decodes is in range and merges without a panic
                    assert_eq!(decode_entries(&encode_entries(&back)).unwrap(), back);
                    tracked(b"z").merge(back, T);
                }
            }
        }
        // random bytes, with and without a valid header
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        for round in 0..20_000 {
            let len = rng.gen_range(0..64);
            let mut b: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if round % 2 == 0 && !b.is_empty() {
                b[0] = ENTRIES_VERSION;
            }
            if let Ok(back) = decode_entries(&b) {
                tracked(b"z").merge(back, T);
            }
        }
        // hostile counts allocate nothing up front
        let mut huge = vec![ENTRIES_VERSION];
        put_u64(&mut huge, u64::MAX);
        assert!(decode_entries(&huge).is_err());
        // out of range values
        let item = |score: f64, cats: usize| {
            encode_entries(&[Entry::Item {
                catalog: b"c"[..].into(),
                id: b"i"[..].into(),
                score,
                categories: vec![Box::from(&b"k"[..]); cats].into(),
                expires_ms: None,
                version: Version::default(),
            }])
        };
        assert!(decode_entries(&item(1.0, 1024)).is_ok());
        assert!(decode_entries(&item(1.0, 1025)).is_err());
        assert!(decode_entries(&item(f64::NAN, 0)).is_err());
        assert!(decode_entries(&item(1e301, 0)).is_err());
        let gone = |clock| {
            encode_entries(&[Entry::GroupGone {
                group: b"g"[..].into(),
                version: Version { clock, node: 3 },
            }])
        };
        assert!(decode_entries(&gone(i64::MAX as u64)).is_ok());
        assert!(decode_entries(&gone(i64::MAX as u64 + 1)).is_err());
        let mut unknown = gone(1);
        unknown[0] = ENTRIES_VERSION + 1;
        assert!(decode_entries(&unknown).is_err());
    }

    #[test]
    fn chunks_are_bounded_decodable_and_in_order() {
        let mut reg = tracked(b"n");
        for i in 0..3_000 {
            let id = format!("item-{i:04}");
            reg.add_item(b"catalog", id.as_bytes(), i as f64, &[b"cat"], None, T);
        }
        reg.publish(
            b"g",
            b"big",
            &vec![7u8; 5_000],
            T,
            T + 1_000,
            5,
            None,
            Limits::NONE,
        )
        .unwrap();
        let entries = reg.snapshot(T);
        for max in [1, 64, 100, 1_000, 4_096, 65_536, usize::MAX] {
            let chunks = chunk_entries(&entries, max);
            let mut back = Vec::new();
            for c in &chunks {
                let got = decode_entries(c).unwrap();
                assert!(!got.is_empty());
                if got.len() > 1 {
                    assert!(c.len() <= max, "{} > {max}", c.len());
                }
                back.extend(got);
            }
            assert_eq!(back, entries, "max {max}");
            if max == 65_536 {
                assert!(chunks.len() > 1 && chunks.iter().all(|c| c.len() <= max));
                // full chunks: no two neighbours would have fitted in one
                for w in chunks.windows(2) {
                    let first = decode_entries(&w[1]).unwrap();
                    let mut both = decode_entries(&w[0]).unwrap();
                    both.push(first[0].clone());
                    assert!(encode_entries(&both).len() > max);
                }
            }
        }
        assert!(chunk_entries(&[], 100).is_empty());
    }
}
