//! Shards: the disjoint parts a large audience is split into, so that several invocations post it
//! at once and none reaches a connection twice.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of `of` disjoint parts of the connections, as DynamoDB's parallel scan divides a table
/// (`Segment` of `TotalSegments`): every connection is in exactly one shard of a given `of`, so the
/// shards of a broadcast never reach a connection twice. Where a store splits by key itself (a
/// channel's subscribers, the in-memory store), a connection belongs to one of [`Shard::BUCKETS`]
/// buckets by a hash of its id, and a shard is a contiguous range of buckets: a key range a query
/// can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "ShardWire")]
pub struct Shard {
    index: u32,
    of: u32,
}

#[derive(Deserialize)]
struct ShardWire {
    index: u32,
    of: u32,
}

impl TryFrom<ShardWire> for Shard {
    type Error = InvalidShard;

    fn try_from(wire: ShardWire) -> Result<Self, InvalidShard> {
        Self::new(wire.index, wire.of)
    }
}

/// A shard that cannot be scanned: its index is not below its count, or the count is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid shard {index} of {of}: the index must be below the count, and the count from 1 to {MAX_SHARDS}"
)]
pub struct InvalidShard {
    pub index: u32,
    pub of: u32,
}

/// The most shards a broadcast is split into: ten million connections in shards of 10,000. DynamoDB
/// allows a million segments; past this many, each job's own overhead would dominate.
pub const MAX_SHARDS: u32 = 1_000;

impl Shard {
    /// Everyone, unsplit.
    pub const WHOLE: Self = Self { index: 0, of: 1 };

    pub fn new(index: u32, of: u32) -> Result<Self, InvalidShard> {
        if of == 0 || of > MAX_SHARDS || index >= of {
            return Err(InvalidShard { index, of });
        }
        Ok(Self { index, of })
    }

    /// Every shard of a split into `of` (clamped to 1..=[`MAX_SHARDS`]).
    pub fn all(of: u32) -> impl Iterator<Item = Self> {
        let of = of.clamp(1, MAX_SHARDS);
        (0..of).map(move |index| Self { index, of })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn of(self) -> u32 {
        self.of
    }

    pub fn is_whole(self) -> bool {
        self.of == 1
    }

    /// As many buckets as shards at most, so that every shard of every count holds at least one.
    pub const BUCKETS: u32 = MAX_SHARDS;

    /// The bucket of a key: which shards hold it.
    pub fn bucket(key: &str) -> u32 {
        Self::bucket_of_hash(Self::hash(key))
    }

    /// The bucket of a key of this [`Shard::hash`].
    pub fn bucket_of_hash(hash: u64) -> u32 {
        // The remainder is below `BUCKETS`, a `u32`.
        (hash % u64::from(Self::BUCKETS)) as u32
    }

    /// The buckets this shard holds: shard `i` of `n` holds `i·B/n` up to `(i+1)·B/n`, so the shards
    /// of one count are contiguous, disjoint and together hold every bucket.
    pub fn buckets(self) -> std::ops::Range<u32> {
        let edge = |i: u32| (u64::from(i) * u64::from(Self::BUCKETS) / u64::from(self.of)) as u32;
        edge(self.index)..edge(self.index + 1)
    }

    /// Whether a key falls in this shard, for stores that split by hashing their keys.
    pub fn holds(self, key: &str) -> bool {
        self.holds_hash(Self::hash(key))
    }

    /// Whether a key of this [`Shard::hash`] falls in this shard: a store that keeps each key's hash
    /// scans a shard without hashing a string per key.
    pub fn holds_hash(self, hash: u64) -> bool {
        self.buckets().contains(&Self::bucket_of_hash(hash))
    }

    /// FNV-1a: stable across processes and versions, unlike std's randomly seeded hasher.
    pub fn hash(key: &str) -> u64 {
        key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_of_any_count_divide_the_buckets_between_them_without_gaps_or_overlap() {
        for of in [1, 2, 3, 7, 50, 100, 333, 999, MAX_SHARDS] {
            let mut next = 0;
            for shard in Shard::all(of) {
                let buckets = shard.buckets();
                assert!(buckets.start == next && buckets.end > buckets.start, "{shard}: {buckets:?}");
                next = buckets.end;
            }
            assert_eq!(next, Shard::BUCKETS, "{of}");
        }
        let key = "L0SM9cOFvHcCIhw=";
        let holding: Vec<Shard> = Shard::all(7).filter(|shard| shard.holds(key)).collect();
        assert_eq!(holding.len(), 1);
        assert!(holding[0].buckets().contains(&Shard::bucket(key)));
    }
}
