//! Versions of registry entries (layer 1): a hybrid-logical-clock value plus the id of the node
//! that made the change, ordered by clock then node. Two changes of one entry on two primaries
//! resolve the same way everywhere: the higher version wins (`registry::sync`).

/// A change's version: `clock` = the registry's hybrid logical clock at the change
/// (`max(last + 1, now_ms * 1024)`, raised by every merged entry), `node` = `node_hash` of the
/// cluster node id that made it (0: standalone, or an entry saved before versions existed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub clock: u64,
    pub node: u64,
}

impl Version {
    /// The wall time (ms) a clock value stands for (the clock counts 1024 ticks a millisecond).
    pub fn ms(self) -> i64 {
        i64::try_from(self.clock / 1024).unwrap_or(i64::MAX)
    }
}

/// The node part of versions: xxh3-64 of the node's (40-byte) cluster id. 0 only for the empty id
/// (a non-empty id hashing to 0 becomes 1), so 0 always means "no node".
pub fn node_hash(id: &[u8]) -> u64 {
    if id.is_empty() {
        return 0;
    }
    match xxhash_rust::xxh3::xxh3_64(id) {
        0 => 1,
        h => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_clock_then_node() {
        let a = Version { clock: 5, node: 9 };
        let b = Version { clock: 6, node: 1 };
        let c = Version { clock: 6, node: 2 };
        assert!(a < b && b < c);
        assert_eq!(Version::default(), Version { clock: 0, node: 0 });
        assert_eq!(node_hash(b""), 0);
        assert_ne!(node_hash(b"a"), 0);
        assert_ne!(node_hash(b"a"), node_hash(b"b"));
        assert_eq!(
            Version {
                clock: 2048,
                node: 0
            }
            .ms(),
            2
        );
    }
}
