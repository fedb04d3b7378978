//! Calculated data stored in a session by the last `SESSION.ENRICH` (see the `enrich` module for how
//! it is computed).

use crate::mem::alloc_size;

/// What the last ENRICH stored in the session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calculated {
    pub computed_ms: i64,
    /// The document ENRICH replied with (JSON text).
    pub document: Box<[u8]>,
    /// Derived segments, sorted (group membership reads them).
    pub segments: Vec<Box<[u8]>>,
    /// Attributes merged by ENRICH ... ATTRS (JSON object text; empty when none).
    pub attrs: Box<[u8]>,
}

impl Calculated {
    pub fn heap_size(&self) -> usize {
        alloc_size(std::mem::size_of::<Calculated>())
            + alloc_size(self.document.len())
            + alloc_size(self.attrs.len())
            + alloc_size(self.segments.capacity() * std::mem::size_of::<Box<[u8]>>())
            + self
                .segments
                .iter()
                .map(|s| alloc_size(s.len()))
                .sum::<usize>()
    }

    pub fn has_segment(&self, segment: &[u8]) -> bool {
        self.segments
            .binary_search_by(|s| (**s).cmp(segment))
            .is_ok()
    }
}
