//! One file of a sending session: its offer and bytes, which chunks the receiver has, its
//! tail's repair symbols, and its figures until the verdict.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::SendError;
use crate::proto::fec;
use crate::proto::stats::TransferStats;
use crate::proto::wire::Offer;

/// Repair symbols still to send, by index.
pub(super) type RepairQueue = VecDeque<(u16, Vec<u8>)>;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ChunkState {
    pub acked: bool,
    pub queued: bool,
    pub latest_pn: Option<u32>,
}

/// A file from the moment it is queued until its verdict; afterwards only its offer,
/// figures and outcome are kept.
#[derive(Debug)]
pub(super) struct OutFile {
    pub offer: Offer,
    pub data: Bytes,
    /// The receiver accepted the offer.
    pub accepted: bool,
    pub chunks: Vec<ChunkState>,
    /// The next chunk (within the file) never sent yet.
    pub next_new: u32,
    pub acked_count: u32,
    /// The tail's repair block, once the last new chunk left, and its symbols still to send.
    pub repair: Option<(fec::Block, RepairQueue)>,
    /// When the offer is next repeated while not accepted, and the wait after that.
    pub next_offer: Instant,
    pub offer_backoff: Duration,
    /// Every chunk acknowledged since then: the verdict is due; a probe asks for it when
    /// it does not come.
    pub awaiting_since: Option<Instant>,
    pub next_done_probe: Option<Instant>,
    pub done_probes: u32,
    pub stats: TransferStats,
    pub outcome: Option<Result<String, SendError>>,
}

impl OutFile {
    pub fn new(now: Instant, offer: Offer, data: Bytes, offer_backoff: Duration) -> Self {
        let stats = TransferStats {
            bytes: offer.size,
            chunks: offer.chunk_count,
            ..TransferStats::default()
        };
        Self {
            chunks: vec![ChunkState::default(); offer.chunk_count as usize],
            offer,
            data,
            accepted: false,
            next_new: 0,
            acked_count: 0,
            repair: None,
            next_offer: now + offer_backoff,
            offer_backoff,
            awaiting_since: None,
            next_done_probe: None,
            done_probes: 0,
            stats,
            outcome: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.outcome.is_none()
    }

    /// Every chunk acknowledged (or none to send): only the verdict is missing.
    pub fn all_acked(&self) -> bool {
        self.acked_count == self.offer.chunk_count
    }

    /// Every chunk has left at least once.
    pub fn all_sent(&self) -> bool {
        self.next_new >= self.offer.chunk_count
    }

    /// The bytes of chunk `chunk` (within the file).
    pub fn chunk_bytes(&self, chunk: u32) -> &[u8] {
        let from = (chunk as usize * usize::from(self.offer.chunk_size)).min(self.data.len());
        let len = self.offer.chunk_len(chunk).unwrap_or(0);
        &self.data[from..(from + len).min(self.data.len())]
    }

    /// Ends the file with its verdict; its bytes and chunk map go.
    pub fn conclude(&mut self, result: Result<String, SendError>) {
        self.outcome = Some(result);
        self.stats.chunks_done = self.acked_count;
        self.data = Bytes::new();
        self.chunks = Vec::new();
        self.repair = None;
    }

    /// The tail's repair block: the last chunks, as many as are in flight when the last new
    /// one leaves plus four (within what a receiver keeps), and symbols for the loss seen.
    pub fn plan_repair(&mut self, in_flight_packets: usize, loss: f64) {
        let n = self.offer.chunk_count;
        let size = self.offer.chunk_size;
        let len = (in_flight_packets + 4)
            .min(fec::max_block_len(size))
            .min(n as usize);
        let start = n - len as u32;
        let count = fec::repairs_for(len, loss, fec::max_repairs(size));
        let chunks: Vec<&[u8]> = (start..n).map(|c| self.chunk_bytes(c)).collect();
        let Some(symbols) = fec::encode(&chunks, count, fec::shard_bytes(size)) else {
            return;
        };
        let block = fec::Block {
            start,
            len: len as u16,
            repairs: count as u16,
        };
        let queue = symbols.into_iter().enumerate().map(|(i, s)| (i as u16, s));
        self.repair = Some((block, queue.collect()));
    }

    pub fn has_repair_left(&self) -> bool {
        self.repair.as_ref().is_some_and(|(_, q)| !q.is_empty())
    }
}
