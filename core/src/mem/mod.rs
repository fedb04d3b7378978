//! Heap accounting for `MEMORY USAGE`: what an allocation of `n` bytes really costs.
//!
//! Redis allocates module memory through jemalloc, which rounds each request up to a size class:
//! 8, then steps of 16 up to 128, then four classes per doubling. Summing requested lengths would
//! under-report small sessions by a third; summing size classes matches the allocator.

pub mod hints;
pub mod prefetch;

/// The jemalloc size class that holds a request of `n` bytes (0 for no allocation).
pub fn alloc_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // Four classes between consecutive powers of two: spacing is a quarter of the lower power.
    let lower = usize::BITS - 1 - (n - 1).leading_zeros(); // floor(log2(n - 1))
    let spacing = 1usize << (lower - 2);
    n.div_ceil(spacing) * spacing
}

#[cfg(test)]
mod tests {
    use super::alloc_size;

    #[test]
    fn jemalloc_size_classes() {
        let cases = [
            (0, 0),
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (128, 128),
            (129, 160),
            (160, 160),
            (161, 192),
            (257, 320),
            (1000, 1024),
            (1025, 1280),
            (4097, 5120),
        ];
        for (n, want) in cases {
            assert_eq!(alloc_size(n), want, "alloc_size({n})");
        }
    }
}
