//! Where recently touched sessions live: a fixed table of prefetch hints, keyed by a hash of the
//! key's name, that lets TOUCH request a session's cache lines (and its sketches') *before* Redis
//! looks the key up, so the misses on the session overlap Redis's own misses on its dictionaries
//! instead of following them.
//!
//! A hint is only ever handed to `crate::mem::prefetch`, never dereferenced: a stale or colliding entry
//! (a session freed, moved, deleted, or another key with the same slot) costs a useless prefetch and
//! nothing else. The table is a static array of 8,192 one-line slots (512 KiB, zero until used),
//! written only by Redis's main thread.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::mem::prefetch;

/// Address ranges (start, cache lines) worth requesting for one session.
pub const SPANS: usize = 4;
pub type Spans = [(usize, u8); SPANS];

const SLOTS: usize = 8192;
const SEED: u64 = 0x51e5_5104_a11c_0de5;

#[repr(align(64))]
struct Slot {
    tag: AtomicU64,
    start: [AtomicUsize; SPANS],
    /// The spans' line counts, one byte each.
    lines: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            tag: AtomicU64::new(0),
            start: [const { AtomicUsize::new(0) }; SPANS],
            lines: AtomicU64::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The span covering `items`, at most `max_lines` lines of it (nothing for an empty slice).
pub fn span_of<T>(items: &[T], max_lines: u8) -> (usize, u8) {
    let bytes = std::mem::size_of_val(items);
    if bytes == 0 {
        return (0, 0);
    }
    let start = items.as_ptr() as usize;
    let first = start / prefetch::LINE;
    let last = (start + bytes - 1) / prefetch::LINE;
    let lines = (last - first + 1).min(usize::from(max_lines));
    (first * prefetch::LINE, lines as u8)
}

/// A key's tag: never 0 (an empty slot), so an unused slot never matches.
pub fn tag(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, SEED) | 1
}

fn slot(tag: u64) -> &'static Slot {
    &TABLE[(tag >> 17) as usize % SLOTS]
}

/// The spans remembered for `tag`, if its slot holds them.
pub fn lookup(tag: u64) -> Option<Spans> {
    let slot = slot(tag);
    if slot.tag.load(Ordering::Relaxed) != tag {
        return None;
    }
    let lines = slot.lines.load(Ordering::Relaxed).to_le_bytes();
    let mut spans = [(0usize, 0u8); SPANS];
    for (i, span) in spans.iter_mut().enumerate() {
        *span = (slot.start[i].load(Ordering::Relaxed), lines[i]);
    }
    Some(spans)
}

/// Requests the lines remembered for `tag` (nothing when its slot holds another key).
pub fn prefetch(tag: u64) {
    if let Some(spans) = lookup(tag) {
        for (start, lines) in spans {
            for i in 0..usize::from(lines) {
                prefetch::address(start.wrapping_add(i * prefetch::LINE));
            }
        }
    }
}

/// Remembers where `tag`'s session lives now.
pub fn remember(tag: u64, spans: &Spans) {
    let slot = slot(tag);
    let mut lines = [0u8; 8];
    for (i, &(start, n)) in spans.iter().enumerate() {
        slot.start[i].store(start, Ordering::Relaxed);
        lines[i] = n;
    }
    slot.lines
        .store(u64::from_le_bytes(lines), Ordering::Relaxed);
    slot.tag.store(tag, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_covers_the_lines_of_its_items() {
        let words = vec![0u64; 100]; // 800 bytes: 13 or 14 lines, depending on alignment
        let (start, lines) = span_of(&words, 255);
        let first = words.as_ptr() as usize;
        assert_eq!(start, first / 64 * 64);
        assert_eq!(usize::from(lines), (first + 799) / 64 - first / 64 + 1);
        assert_eq!(span_of(&words, 4).1, 4);
        assert_eq!(span_of(&words[..1], 8), (first / 64 * 64, 1));
        assert_eq!(span_of::<u64>(&[], 8), (0, 0));
    }

    #[test]
    fn remembers_by_tag_and_tells_other_keys_apart() {
        let a = tag(b"session:a");
        let spans: Spans = [(0x1000, 8), (0x2000, 3), (0, 0), (0x4000, 6)];
        remember(a, &spans);
        assert_eq!(lookup(a), Some(spans));
        // another key in the same slot: no hint for it, and it replaces the slot
        let b = (1..u64::MAX)
            .map(|i| tag(format!("other:{i}").as_bytes()))
            .find(|&t| t != a && std::ptr::eq(slot(t), slot(a)))
            .expect("a colliding key");
        assert_eq!(lookup(b), None);
        remember(b, &[(0x9000, 1); SPANS]);
        assert_eq!(lookup(a), None);
        // prefetching stale or unrelated addresses is harmless
        prefetch(b);
        prefetch(a);
        assert_ne!(tag(b""), 0);
    }
}
