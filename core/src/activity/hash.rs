//! The sketches' hashes. Hashes are xxh3 with fixed seeds (never per process), so a replica or an AOF replay that sees
//! the same items builds byte-identical sketches.

use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed};

/// Seed of the seen filter's hash (any fixed value; changing it breaks saved filters).
const SEEN_SEED: u64 = 0x5e55_1010_b100_f11e;
/// Seed of the distinct-items sketch's hash.
const DISTINCT_SEED: u64 = 0x5e55_1010_0011_0911;

/// Two independent 64-bit hashes of `item` for the seen filter's double hashing.
pub fn seen_hashes(item: &[u8]) -> (u64, u64) {
    let h = xxh3_128_with_seed(item, SEEN_SEED);
    (h as u64, (h >> 64) as u64)
}

/// The 64-bit hash of `item` for the distinct-items sketch.
pub fn distinct_hash(item: &[u8]) -> u64 {
    xxh3_64_with_seed(item, DISTINCT_SEED)
}
