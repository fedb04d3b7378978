//! The application's classic session data: a binary-safe name -> value map.
//!
//! Stored packed in one buffer, entries sorted by name, each `[len][name][len][value]` with
//! LEB128 lengths. A session holds a handful to a few hundred fields: one allocation instead of
//! two per field plus a table keeps the reference session's ten fields in ~430 bytes instead of
//! ~1.2 KiB, a scan over one contiguous buffer is fast at this size, and the order is canonical,
//! so the saved form and the digest of equal sessions are equal.

use crate::mem::alloc_size;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    buf: Vec<u8>,
    count: u32,
}

/// Reads a LEB128 length at `pos`; the buffer is built by this module, so it is well formed.
fn read_len(buf: &[u8], pos: &mut usize) -> usize {
    let mut v = 0usize;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        v |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn write_len(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One entry's position in the buffer.
struct Slot {
    start: usize,
    value: std::ops::Range<usize>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entry named `name`, or where it would be inserted.
    fn find(&self, name: &[u8]) -> Result<Slot, usize> {
        let mut pos = 0;
        while pos < self.buf.len() {
            let start = pos;
            let n = read_len(&self.buf, &mut pos);
            let entry_name = &self.buf[pos..pos + n];
            pos += n;
            let v = read_len(&self.buf, &mut pos);
            let value = pos..pos + v;
            pos += v;
            match entry_name.cmp(name) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(Slot { start, value }),
                std::cmp::Ordering::Greater => return Err(start),
            }
        }
        Err(self.buf.len())
    }

    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name).ok().map(|slot| &self.buf[slot.value])
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`; returns true when the field did not exist before.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> bool {
        let mut entry = Vec::with_capacity(name.len() + value.len() + 4);
        match self.find(name) {
            Ok(slot) => {
                if self.buf[slot.value.clone()] != *value {
                    let vstart = slot.value.start - varint_len(slot.value.len());
                    write_len(&mut entry, value.len());
                    entry.extend_from_slice(value);
                    // one exact reallocation, then one move of the tail
                    let old = slot.value.end - vstart;
                    self.buf.reserve_exact(entry.len().saturating_sub(old));
                    self.buf.splice(vstart..slot.value.end, entry);
                }
                false
            }
            Err(at) => {
                write_len(&mut entry, name.len());
                entry.extend_from_slice(name);
                write_len(&mut entry, value.len());
                entry.extend_from_slice(value);
                self.buf.reserve_exact(entry.len());
                self.buf.splice(at..at, entry);
                self.count += 1;
                true
            }
        }
    }

    /// Removes `name`; returns true when it existed.
    pub fn del(&mut self, name: &[u8]) -> bool {
        match self.find(name) {
            Ok(slot) => {
                self.buf.drain(slot.start..slot.value.end);
                self.count -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// The entries' names and value positions in name order, for many lookups in one command:
    /// one pass over the buffer, then O(log F) per name (`position`).
    fn index(&self) -> Vec<(&[u8], std::ops::Range<usize>)> {
        let mut out = Vec::with_capacity(self.len());
        let mut pos = 0;
        while pos < self.buf.len() {
            let n = read_len(&self.buf, &mut pos);
            let name = self.buf.get(pos..pos + n).unwrap_or_default();
            pos += n;
            let v = read_len(&self.buf, &mut pos);
            out.push((name, pos..pos + v));
            pos += v;
        }
        out
    }

    /// `get` of each of `names`: a scan per name for a few, else one index and a binary search
    /// per name, so the cost is O(F + N log F) however many names are asked for.
    pub fn get_many(&self, names: &[&[u8]]) -> Vec<Option<&[u8]>> {
        if names.len() <= FEW {
            return names.iter().map(|n| self.get(n)).collect();
        }
        let index = self.index();
        names
            .iter()
            .map(|n| {
                let i = index.binary_search_by(|(e, _)| (*e).cmp(n)).ok()?;
                let (_, value) = index.get(i)?;
                self.buf.get(value.clone())
            })
            .collect()
    }

    /// Which of `names` exist (as `get_many`).
    pub fn contains_many(&self, names: &[&[u8]]) -> Vec<bool> {
        self.get_many(names).iter().map(Option::is_some).collect()
    }

    /// Applies `set` in order, then removes `del`, in one pass over the buffer: O(bytes +
    /// N log N) for N names, where one `set` or `del` per name would move the buffer N times.
    pub fn apply(&mut self, set: &[(&[u8], &[u8])], del: &[&[u8]]) {
        if set.len() + del.len() <= FEW {
            for (name, value) in set {
                self.set(name, value);
            }
            for name in del {
                self.del(name);
            }
            return;
        }
        // Every name's final change: SETs in order, then DELs; a stable sort keeps that order
        // among equal names, so the last of each run wins (a sort beats a tree's inserts ~3x).
        let mut all: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(set.len() + del.len());
        all.extend(set.iter().map(|(n, v)| (*n, Some(*v))));
        all.extend(del.iter().map(|n| (*n, None)));
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut changes: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(all.len());
        for (name, change) in all {
            match changes.last_mut() {
                Some(last) if last.0 == name => last.1 = change,
                _ => changes.push((name, change)),
            }
        }
        // Only real changes rebuild the buffer: a DEL of a missing name, or a SET to the value a
        // field already holds, costs its lookup and nothing else.
        let names: Vec<&[u8]> = changes.iter().map(|(n, _)| *n).collect();
        let current = self.get_many(&names);
        let mut grow = 0usize;
        let mut real: Vec<(&[u8], Option<&[u8]>)> = Vec::with_capacity(names.len());
        for ((name, change), old) in changes.into_iter().zip(current) {
            match (change, old) {
                (None, None) => continue,
                (Some(v), Some(o)) if v == o => continue,
                (Some(v), _) => grow += name.len() + v.len() + 2 * MAX_VARINT,
                (None, Some(_)) => {}
            }
            real.push((name, change));
        }
        if real.is_empty() {
            return;
        }
        let old = std::mem::take(self);
        let mut entries = old.iter().peekable();
        let mut changes = real.into_iter().peekable();
        let mut out = Fields {
            buf: Vec::with_capacity(old.buf.len() + grow),
            count: 0,
        };
        loop {
            let take_old = match (entries.peek(), changes.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((a, _)), Some((b, _))) => a < b,
            };
            if take_old {
                if let Some((name, value)) = entries.next() {
                    out.push(name, value);
                }
                continue;
            }
            let Some((name, change)) = changes.next() else {
                break;
            };
            if entries.peek().is_some_and(|(a, _)| *a == name) {
                entries.next();
            }
            if let Some(value) = change {
                out.push(name, value);
            }
        }
        out.buf.shrink_to_fit();
        *self = out;
    }

    /// Appends an entry (the caller keeps the name order).
    fn push(&mut self, name: &[u8], value: &[u8]) {
        write_len(&mut self.buf, name.len());
        self.buf.extend_from_slice(name);
        write_len(&mut self.buf, value.len());
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    /// Releases spare capacity (after a write, so the session costs what it holds).
    pub fn shrink(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 8 + 16 {
            self.buf.shrink_to_fit();
        }
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let n = read_len(&self.buf, &mut pos);
            let name = &self.buf[pos..pos + n];
            pos += n;
            let v = read_len(&self.buf, &mut pos);
            let value = &self.buf[pos..pos + v];
            pos += v;
            Some((name, value))
        })
    }

    /// Builds from pairs that must be sorted by name with no duplicates (the codec checks).
    pub(crate) fn from_sorted<'a>(
        entries: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Option<Self> {
        let mut fields = Fields::default();
        let mut last: Option<&[u8]> = None;
        for (name, value) in entries {
            if last.is_some_and(|l| l >= name) {
                return None;
            }
            last = Some(name);
            write_len(&mut fields.buf, name.len());
            fields.buf.extend_from_slice(name);
            write_len(&mut fields.buf, value.len());
            fields.buf.extend_from_slice(value);
            fields.count += 1;
        }
        fields.buf.shrink_to_fit();
        Some(fields)
    }

    /// Bytes this map owns on the heap, as the allocator rounds them.
    pub fn heap_size(&self) -> usize {
        alloc_size(self.buf.capacity())
    }
}

/// Up to this many names a command looks each one up by a scan (cheaper than an index).
const FEW: usize = 8;

/// The longest LEB128 length of a `usize`.
const MAX_VARINT: usize = 10;

fn varint_len(v: usize) -> usize {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_del_keep_order() {
        let mut f = Fields::default();
        assert!(f.set(b"b", b"2"));
        assert!(f.set(b"a", b"1"));
        assert!(!f.set(b"a", b"3"));
        assert_eq!(f.get(b"a"), Some(&b"3"[..]));
        let names: Vec<&[u8]> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![&b"a"[..], &b"b"[..]]);
        assert!(f.del(b"a"));
        assert!(!f.del(b"a"));
        assert_eq!(f.len(), 1);
        assert_eq!(f.get(b"b"), Some(&b"2"[..]));
    }

    #[test]
    fn binary_names_and_values_and_long_lengths() {
        let mut f = Fields::default();
        let long = vec![7u8; 300];
        f.set(b"\x00\xff", b"\x00");
        f.set(b"", b"");
        f.set(&long, &long);
        f.set(b"z", &long);
        f.set(b"z", b"short");
        f.set(&long, b"x");
        assert_eq!(f.get(b"\x00\xff"), Some(&b"\x00"[..]));
        assert_eq!(f.get(b""), Some(&b""[..]));
        assert_eq!(f.get(&long), Some(&b"x"[..]));
        assert_eq!(f.get(b"z"), Some(&b"short"[..]));
        assert_eq!(f.len(), 4);
        assert_eq!(f.iter().count(), 4);
    }

    #[test]
    fn matches_a_btreemap_under_random_operations() {
        use std::collections::BTreeMap;
        let mut f = Fields::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 42;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = vec![b'a' + (x % 13) as u8; (x % 3) as usize];
            let value = vec![b'0'; ((x >> 8) % 200) as usize];
            if x.is_multiple_of(4) {
                assert_eq!(f.del(&name), model.remove(&name).is_some());
            } else {
                assert_eq!(
                    f.set(&name, &value),
                    model.insert(name.clone(), value).is_none()
                );
            }
            assert_eq!(f.len(), model.len());
        }
        let ours: Vec<(Vec<u8>, Vec<u8>)> =
            f.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let theirs: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn batches_match_one_name_at_a_time() {
        let mut x: u64 = 7;
        for round in 0..200 {
            let mut one = Fields::default();
            for i in 0..(round % 30) {
                one.set(format!("f{i}").as_bytes(), b"v");
            }
            let mut batch = one.clone();
            let names: Vec<Vec<u8>> = (0..(round % 40))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("f{}", x % 45).into_bytes()
                })
                .collect();
            let (sets, dels) = names.split_at(names.len() / 2);
            let set: Vec<(&[u8], &[u8])> = sets
                .iter()
                .enumerate()
                .map(|(i, n)| (&n[..], if i % 2 == 0 { &b"a"[..] } else { &b"bb"[..] }))
                .collect();
            let del: Vec<&[u8]> = dels.iter().map(|n| &n[..]).collect();
            for (n, v) in &set {
                one.set(n, v);
            }
            for n in &del {
                one.del(n);
            }
            batch.apply(&set, &del);
            assert_eq!(one, batch, "round {round}");
            let all: Vec<&[u8]> = names.iter().map(|n| &n[..]).collect();
            let expected: Vec<Option<&[u8]>> = all.iter().map(|n| one.get(n)).collect();
            assert_eq!(batch.get_many(&all), expected);
        }
    }

    #[test]
    fn from_sorted_rejects_disorder_and_duplicates() {
        let pairs =
            |names: &[&'static [u8]]| names.iter().map(|n| (*n, &b"v"[..])).collect::<Vec<_>>();
        assert!(Fields::from_sorted(pairs(&[b"a", b"b"]).into_iter()).is_some());
        assert!(Fields::from_sorted(pairs(&[b"b", b"a"]).into_iter()).is_none());
        assert!(Fields::from_sorted(pairs(&[b"a", b"a"]).into_iter()).is_none());
    }

    #[test]
    fn a_batch_without_real_changes_leaves_the_buffer_in_place() {
        let mut f = Fields::default();
        for i in 0..20u8 {
            f.set(&[b'f', i], &[i; 100]);
        }
        let before = f.clone();
        let ptr = f.buf.as_ptr();
        let missing: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'z', i]).collect();
        let missing: Vec<&[u8]> = missing.iter().map(Vec::as_slice).collect();
        let same: Vec<(Vec<u8>, Vec<u8>)> =
            (0..10u8).map(|i| (vec![b'f', i], vec![i; 100])).collect();
        let same: Vec<(&[u8], &[u8])> = same.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        f.apply(&same, &missing);
        assert_eq!(f, before);
        assert_eq!(f.buf.as_ptr(), ptr, "no rebuild for no change");
        // one real change among them rebuilds, and only it changes
        let mut del = missing.clone();
        del.push(b"f\x03");
        f.apply(&same, &del);
        assert_eq!(f.len(), 19);
        assert_eq!(f.get(b"f\x03"), None);
        assert_eq!(f.get(b"f\x04"), Some(&[4u8; 100][..]));
    }
}
