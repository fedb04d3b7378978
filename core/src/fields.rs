//! The application's classic session data: a binary-safe name -> value map.
//!
//! Stored as one vector sorted by name: a session holds a handful to a few hundred fields, so a
//! binary search beats a hash map on memory (no buckets, no hash state) and on speed at this size,
//! and the order is canonical, so the saved form and the digest of equal sessions are equal.

use crate::memory::alloc_size;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    entries: Vec<(Box<[u8]>, Box<[u8]>)>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, name: &[u8]) -> Result<usize, usize> {
        self.entries.binary_search_by(|(n, _)| (**n).cmp(name))
    }

    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name).ok().map(|i| &*self.entries[i].1)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `value`; returns true when the field did not exist before.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> bool {
        match self.find(name) {
            Ok(i) => {
                if *self.entries[i].1 != *value {
                    self.entries[i].1 = value.into();
                }
                false
            }
            Err(i) => {
                self.entries.insert(i, (name.into(), value.into()));
                true
            }
        }
    }

    /// Removes `name`; returns true when it existed.
    pub fn del(&mut self, name: &[u8]) -> bool {
        match self.find(name) {
            Ok(i) => {
                self.entries.remove(i);
                if self.entries.capacity() > 2 * self.entries.len() + 4 {
                    self.entries.shrink_to_fit();
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(n, v)| (&**n, &**v))
    }

    /// Builds from pairs that must already be sorted by name with no duplicates (the codec checks).
    pub(crate) fn from_sorted(entries: Vec<(Box<[u8]>, Box<[u8]>)>) -> Option<Self> {
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            Some(Fields { entries })
        } else {
            None
        }
    }

    /// Bytes this map owns on the heap, as the allocator rounds them.
    pub fn heap_size(&self) -> usize {
        let table = if self.entries.capacity() == 0 {
            0
        } else {
            alloc_size(self.entries.capacity() * std::mem::size_of::<(Box<[u8]>, Box<[u8]>)>())
        };
        table
            + self
                .entries
                .iter()
                .map(|(n, v)| alloc_size(n.len()) + alloc_size(v.len()))
                .sum::<usize>()
    }
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
    }

    #[test]
    fn binary_names_and_values() {
        let mut f = Fields::default();
        f.set(b"\x00\xff", b"\x00");
        f.set(b"", b"");
        assert_eq!(f.get(b"\x00\xff"), Some(&b"\x00"[..]));
        assert_eq!(f.get(b""), Some(&b""[..]));
    }

    #[test]
    fn from_sorted_rejects_disorder_and_duplicates() {
        let e = |n: &[u8]| (Box::<[u8]>::from(n), Box::<[u8]>::from(&b"v"[..]));
        assert!(Fields::from_sorted(vec![e(b"a"), e(b"b")]).is_some());
        assert!(Fields::from_sorted(vec![e(b"b"), e(b"a")]).is_none());
        assert!(Fields::from_sorted(vec![e(b"a"), e(b"a")]).is_none());
    }
}
