//! Software prefetch: tells the CPU which cache lines an update is about to read, so that misses
//! on separately allocated parts of a session overlap instead of happening one after another.
//! A hint only: it never changes a result, and it is a no-op where the architecture has none.

/// Bytes in a cache line.
pub const LINE: usize = 64;

/// Prefetches the cache line holding `value`.
#[inline(always)]
pub fn line<T>(value: &T) {
    at(std::ptr::from_ref(value).cast::<u8>());
}

/// Prefetches the cache lines of `items`, at most `max_lines` of them.
#[inline(always)]
pub fn slice<T>(items: &[T], max_lines: usize) {
    let start = items.as_ptr().cast::<u8>();
    let bytes = std::mem::size_of_val(items).min(max_lines * LINE);
    let mut offset = 0;
    while offset < bytes {
        at(start.wrapping_add(offset));
        offset += LINE;
    }
}

/// Prefetches the cache line at `address`, which may be any value (see `crate::mem::hints`).
#[inline(always)]
pub fn address(address: usize) {
    at(address as *const u8);
}

#[inline(always)]
fn at(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is a hint that never
        // dereferences or faults, whatever the address.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}
