//! Which chunks of an arriving image are in: one bit per chunk, so the Preview's map of a
//! 512 MiB image (460,000 chunks) costs 57 KiB, not the megabytes a set would.

/// A fixed-size set of chunk indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkMap {
    words: Vec<u64>,
    total: u32,
    count: u32,
}

impl ChunkMap {
    /// An empty map for an image of `total` chunks.
    pub fn new(total: u32) -> Self {
        Self {
            words: vec![0; total.div_ceil(64) as usize],
            total,
            count: 0,
        }
    }

    /// Chunks in the image.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Chunks marked so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Marks `chunk` as in; indices past the end are ignored.
    pub fn insert(&mut self, chunk: u32) {
        if chunk >= self.total {
            return;
        }
        let (w, bit) = ((chunk / 64) as usize, 1u64 << (chunk % 64));
        if self.words[w] & bit == 0 {
            self.words[w] |= bit;
            self.count += 1;
        }
    }

    /// How many of the chunks `lo..hi` are in.
    pub fn count_in(&self, lo: u32, hi: u32) -> u32 {
        let hi = hi.min(self.total);
        let mut n = 0;
        let mut i = lo;
        while i < hi {
            let (w, offset) = ((i / 64) as usize, i % 64);
            let take = (64 - offset).min(hi - i);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << offset
            };
            n += (self.words[w] & mask).count_ones();
            i += take;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ranges_across_word_edges() {
        let mut m = ChunkMap::new(200);
        for c in [0, 1, 63, 64, 65, 127, 128, 199, 199, 500] {
            m.insert(c);
        }
        assert_eq!(m.count(), 8); // the repeat and the out-of-range index do not count
        assert_eq!(m.count_in(0, 200), 8);
        assert_eq!(m.count_in(1, 64), 2); // 1 and 63
        assert_eq!(m.count_in(63, 66), 3);
        assert_eq!(m.count_in(64, 128), 3);
        assert_eq!(m.count_in(128, 1000), 2);
        assert_eq!(m.count_in(2, 63), 0);
        assert_eq!(m.count_in(5, 5), 0);
    }

    #[test]
    fn agrees_with_a_set_on_random_input() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let total = 1000;
        let mut m = ChunkMap::new(total);
        let mut set = std::collections::BTreeSet::new();
        for _ in 0..600 {
            let c = rng.random_range(0..total);
            m.insert(c);
            set.insert(c);
        }
        for _ in 0..200 {
            let lo = rng.random_range(0..total);
            let hi = rng.random_range(lo..=total);
            assert_eq!(m.count_in(lo, hi) as usize, set.range(lo..hi).count());
        }
        assert_eq!(m.count() as usize, set.len());
    }
}
