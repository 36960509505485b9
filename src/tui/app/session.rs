//! Figures over a whole session: every transfer's counters summed, and the time during which
//! any transfer ran. Old transfers are folded into running totals so a long session keeps
//! exact figures in bounded memory.

use std::time::Duration;

use super::TransferView;
use crate::engine::Direction;
use crate::figures;
use crate::proto::stats::TransferStats;

/// Figures over every transfer of this screen's session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFigures {
    /// Counters summed over the transfers (`bytes` is what was offered).
    pub stats: TransferStats,
    /// Transfers started.
    pub images: usize,
    /// Transfers verified.
    pub verified: usize,
    /// Transfers failed.
    pub failed: usize,
    /// Chunks recovered, each transfer's as [`figures::recovered`] counts them on its side.
    pub recovered: u64,
    /// Image bytes in or acknowledged.
    pub done_bytes: u64,
    /// Datagrams the losses are counted against, each transfer as its side sees them.
    pub loss_base: u64,
    /// Time during which at least one transfer ran (overlaps counted once).
    pub elapsed: Duration,
    /// Send rate summed over the sends in progress, bytes per second.
    pub send_rate: f64,
    /// Round-trip time of the latest send.
    pub rtt: Duration,
}

impl SessionFigures {
    /// Adds one transfer's counters (not its time: spans are merged by the caller).
    pub(super) fn add(&mut self, v: &TransferView) {
        let (t, s) = (&mut self.stats, &v.stats);
        t.bytes += v.offer.size;
        t.chunks += s.chunks;
        t.chunks_done += s.chunks_done;
        t.datagrams_sent += s.datagrams_sent;
        t.datagrams_received += s.datagrams_received;
        t.duplicates += s.duplicates;
        t.lost += s.lost;
        t.retransmitted += s.retransmitted;
        t.recovered += s.recovered;
        t.repaired += s.repaired;
        self.recovered += figures::recovered(s, v.direction);
        self.images += 1;
        self.done_bytes += v.done_bytes();
        self.loss_base += figures::loss_base(s, v.direction);
        match &v.result {
            Some(Ok(())) => self.verified += 1,
            Some(Err(_)) => self.failed += 1,
            None if v.direction == Direction::Send => self.send_rate += s.send_rate,
            None => {}
        }
    }

    /// Adds the time span `from..to` of a transfer to `elapsed`, except what `until` (the end
    /// of the spans added so far, taken in order of start) already covers.
    pub(super) fn add_time(&mut self, until: &mut Duration, (from, to): (Duration, Duration)) {
        let from = from.max(*until);
        if to > from {
            self.elapsed += to - from;
            *until = to;
        }
    }

    /// Image bits per second over the time transfers ran.
    pub fn goodput_bps(&self) -> f64 {
        figures::goodput_bps(self.done_bytes, self.elapsed)
    }

    /// Transfers started and not yet ended: the session is done only when none is.
    pub fn running(&self) -> usize {
        self.images - self.verified - self.failed
    }

    /// Lost datagrams in percent of those the losses are counted against.
    pub fn loss_percent(&self) -> f64 {
        figures::percent(self.stats.lost, self.loss_base)
    }
}

impl TransferView {
    /// Recovered chunks as this transfer's side counts them ([`figures::recovered`]).
    pub fn recovered(&self) -> u64 {
        figures::recovered(&self.stats, self.direction)
    }

    /// Lost datagrams in percent, as this transfer's side counts them.
    pub fn loss_percent(&self) -> f64 {
        figures::loss_percent(&self.stats, self.direction)
    }
}
