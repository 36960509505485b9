//! Every figure a front end shows about a transfer, computed here once from the counters a
//! side keeps ([`TransferStats`]): the TUI's panes, the CLI's line, its JSON and the demo all
//! read them from here. `docs/FIGURES.md` says what each one means, per side, and which of
//! them a reader can check against which.

use std::time::Duration;

use crate::engine::{ChunkWhat, Direction};
use crate::proto::stats::TransferStats;

/// The shortest time a rate is taken over: a transfer timed at zero did not happen in no time.
pub const MIN_ELAPSED: Duration = Duration::from_millis(1);

/// `part` of `whole` in percent; 0 of nothing is 0 %.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Success: the share of the image's chunks that are in (receiver) or acknowledged (sender).
pub fn done_percent(s: &TransferStats) -> f64 {
    percent(u64::from(s.chunks_done), u64::from(s.chunks))
}

/// Image bytes in (receiver) or acknowledged (sender): the chunks done, the last one short.
pub fn done_bytes(chunks_done: u32, chunk_size: u16, size: u64) -> u64 {
    (u64::from(chunks_done) * u64::from(chunk_size)).min(size)
}

/// Goodput: image bits per second, `bytes` of image over `elapsed` of this side's clock.
pub fn goodput_bps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 * 8.0 / elapsed.max(MIN_ELAPSED).as_secs_f64()
}

/// The datagrams a side's losses are counted against: those it sent (sender), or those it
/// should have received, that is received plus never seen (receiver).
pub fn loss_base(s: &TransferStats, direction: Direction) -> u64 {
    match direction {
        Direction::Send => s.datagrams_sent,
        Direction::Receive => s.datagrams_received + s.lost,
    }
}

/// Lost datagrams in percent of [`loss_base`].
pub fn loss_percent(s: &TransferStats, direction: Direction) -> f64 {
    percent(s.lost, loss_base(s, direction))
}

/// Loss from this share of the datagrams on (in percent) is notable: a front end warns of it.
pub const NOTABLE_LOSS: f64 = 1.0;

/// How much a side lost, for a front end to colour: no loss is never a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossLevel {
    /// Nothing lost: nothing to warn of.
    None,
    /// Some loss, under [`NOTABLE_LOSS`].
    Minor,
    /// At least [`NOTABLE_LOSS`] of the datagrams.
    Notable,
}

/// The level of `lost` datagrams that are `share` percent of their base.
pub fn loss_level(lost: u64, share: f64) -> LossLevel {
    if lost == 0 {
        LossLevel::None
    } else if share < NOTABLE_LOSS {
        LossLevel::Minor
    } else {
        LossLevel::Notable
    }
}

/// `0 dgrams (0.0%)`, `88 dgrams (11.5%)`: loss is of datagrams (any kind, this side's view),
/// so it says so, and is not read against the recovered chunks beside it.
pub fn lost_text(lost: u64, share: f64) -> String {
    let unit = if lost == 1 { "dgram" } else { "dgrams" };
    format!("{lost} {unit} ({share:.1}%)")
}

/// Chunks of the image not in (receiver) or not acknowledged (sender) yet: none once verified.
pub fn missing(s: &TransferStats) -> u32 {
    s.chunks.saturating_sub(s.chunks_done)
}

/// Chunks that did not get through by their first copy, as far as this side can tell:
/// those [`recovered`] and those still [`missing`]. For a verified image none is missing,
/// so every lost chunk was recovered.
pub fn chunks_lost(s: &TransferStats, direction: Direction) -> u64 {
    recovered(s, direction) + u64::from(missing(s))
}

/// Chunks whose first copy did not do it alone: acknowledged first for a retransmitted copy
/// (sender); arrived by a retransmission or rebuilt from repair symbols (receiver), the
/// chunks its log shows as `recovered`.
pub fn recovered(s: &TransferStats, direction: Direction) -> u64 {
    match direction {
        Direction::Send => s.recovered,
        Direction::Receive => s.recovered + s.repaired,
    }
}

/// What a run of chunk events of one transfer came to, as the chunk log folds it into one
/// line: every count is of distinct chunks of that image, so none can exceed its chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fold {
    /// Events folded.
    pub events: usize,
    /// Distinct chunks they were about.
    pub chunks: usize,
    /// For each kind of event that happened, the distinct chunks it happened to, in the
    /// order of [`FOLD_ORDER`].
    pub kinds: Vec<(ChunkWhat, usize)>,
}

/// The order a fold line lists its kinds in: a chunk's life on each side.
pub const FOLD_ORDER: [ChunkWhat; 7] = [
    ChunkWhat::Sent,
    ChunkWhat::Lost,
    ChunkWhat::Retransmitted,
    ChunkWhat::Acked,
    ChunkWhat::Received,
    ChunkWhat::Recovered,
    ChunkWhat::Duplicate,
];

impl Fold {
    /// Folds `events` (chunk index and what happened) of one transfer.
    pub fn of(events: impl IntoIterator<Item = (u32, ChunkWhat)>) -> Fold {
        use std::collections::BTreeSet;
        let mut all = BTreeSet::new();
        let mut by_kind: [BTreeSet<u32>; FOLD_ORDER.len()] = Default::default();
        let mut n = 0;
        for (chunk, what) in events {
            n += 1;
            all.insert(chunk);
            if let Some(i) = FOLD_ORDER.iter().position(|w| *w == what) {
                by_kind[i].insert(chunk);
            }
        }
        Fold {
            events: n,
            chunks: all.len(),
            kinds: FOLD_ORDER
                .iter()
                .zip(&by_kind)
                .filter(|(_, set)| !set.is_empty())
                .map(|(w, set)| (*w, set.len()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_counts_chunks_not_events() {
        // A 3-chunk image: each chunk sent and acknowledged, one lost and sent again.
        let f = Fold::of([
            (0, ChunkWhat::Sent),
            (1, ChunkWhat::Sent),
            (2, ChunkWhat::Sent),
            (1, ChunkWhat::Lost),
            (1, ChunkWhat::Retransmitted),
            (1, ChunkWhat::Lost),
            (1, ChunkWhat::Retransmitted),
            (0, ChunkWhat::Acked),
            (2, ChunkWhat::Acked),
            (1, ChunkWhat::Acked),
        ]);
        assert_eq!(f.events, 10);
        assert_eq!(f.chunks, 3);
        assert_eq!(
            f.kinds,
            vec![
                (ChunkWhat::Sent, 3),
                (ChunkWhat::Lost, 1),
                (ChunkWhat::Retransmitted, 1),
                (ChunkWhat::Acked, 3)
            ]
        );
    }

    #[test]
    fn the_receivers_recovered_chunks_include_the_rebuilt_ones() {
        let s = TransferStats {
            recovered: 5,
            repaired: 2,
            ..TransferStats::default()
        };
        assert_eq!(recovered(&s, Direction::Receive), 7);
        assert_eq!(recovered(&s, Direction::Send), 5);
    }

    #[test]
    fn rates_and_shares_of_nothing_are_defined() {
        assert_eq!(percent(3, 0), 0.0);
        assert_eq!(goodput_bps(1000, Duration::ZERO), 8_000_000.0);
        let s = TransferStats {
            bytes: 2500,
            chunks: 3,
            chunks_done: 3,
            ..TransferStats::default()
        };
        assert_eq!(done_bytes(s.chunks_done, 1000, s.bytes), 2500);
        assert_eq!(done_percent(&s), 100.0);
    }
}
