//! A bounded set of packet numbers kept as disjoint ranges: what an ACK reports.

use super::wire::PnRange;

/// Received packet numbers, newest ranges kept, oldest forgotten past a cap.
#[derive(Debug, Clone)]
pub struct RangeSet {
    /// Disjoint ranges, ascending.
    ranges: Vec<PnRange>,
    cap: usize,
}

impl RangeSet {
    /// An empty set that remembers at most `cap` ranges (memory stays bounded under loss).
    pub fn new(cap: usize) -> Self {
        Self {
            ranges: Vec::new(),
            cap: cap.max(1),
        }
    }

    /// Adds `pn`; false when it was already present (a duplicate or replayed datagram).
    /// A packet number older than every remembered range is reported as new.
    pub fn insert(&mut self, pn: u32) -> bool {
        // Fast path: extends the newest range, as in-order traffic does.
        if let Some(last) = self.ranges.last_mut() {
            if pn >= last.start && pn <= last.end {
                return false;
            }
            if last.end.checked_add(1) == Some(pn) {
                last.end = pn;
                return true;
            }
            if pn > last.end {
                self.ranges.push(PnRange { start: pn, end: pn });
                self.trim();
                return true;
            }
        } else {
            self.ranges.push(PnRange { start: pn, end: pn });
            return true;
        }
        // Slow path: pn falls below the newest range.
        let idx = self.ranges.partition_point(|r| r.end < pn);
        if let Some(r) = self.ranges.get(idx)
            && r.start <= pn
        {
            return false;
        }
        let joins_prev = idx > 0 && self.ranges[idx - 1].end + 1 == pn;
        let joins_next = self
            .ranges
            .get(idx)
            .is_some_and(|r| pn.checked_add(1) == Some(r.start));
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[idx - 1].end = self.ranges[idx].end;
                self.ranges.remove(idx);
            }
            (true, false) => self.ranges[idx - 1].end = pn,
            (false, true) => self.ranges[idx].start = pn,
            (false, false) => {
                self.ranges.insert(idx, PnRange { start: pn, end: pn });
                self.trim();
            }
        }
        true
    }

    fn trim(&mut self) {
        if self.ranges.len() > self.cap {
            let excess = self.ranges.len() - self.cap;
            self.ranges.drain(..excess);
        }
    }

    /// Largest packet number held.
    pub fn largest(&self) -> Option<u32> {
        self.ranges.last().map(|r| r.end)
    }

    /// The newest `n` ranges, largest first, as an ACK carries them.
    pub fn newest(&self, n: usize) -> Vec<PnRange> {
        self.ranges.iter().rev().take(n).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_a_plain_set(pns in proptest::collection::vec(0u32..300, 0..400)) {
            let mut set = RangeSet::new(10_000);
            let mut plain = std::collections::BTreeSet::new();
            for pn in pns {
                prop_assert_eq!(set.insert(pn), plain.insert(pn));
            }
            let flat: Vec<u32> = set
                .newest(usize::MAX)
                .iter()
                .rev()
                .flat_map(|r| r.start..=r.end)
                .collect();
            prop_assert_eq!(flat, plain.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn forgets_oldest_beyond_cap() {
        let mut set = RangeSet::new(3);
        for pn in [0, 2, 4, 6, 8] {
            set.insert(pn);
        }
        let kept = set.newest(10);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0].end, 8);
        assert_eq!(kept[2].start, 4);
    }
}
