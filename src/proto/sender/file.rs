//! One file of a sending session: its offer and bytes, which chunks the receiver has, its
//! tail's repair symbols, and its figures until the verdict.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::SendError;
use super::content::Content;
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
    /// The bytes that may still be sent.
    pub content: Content,
    /// The receiver accepted the offer.
    pub accepted: bool,
    pub chunks: Vec<ChunkState>,
    /// The next chunk (within the file) never sent yet.
    pub next_new: u32,
    pub acked_count: u32,
    /// Every chunk below it is acknowledged.
    pub acked_below: u32,
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
    /// Given up by our user, with their reason: nothing more of it is sent, and ABANDON
    /// is repeated until the receiver's DONE ends it.
    pub abandoned: Option<String>,
}

impl OutFile {
    /// `data` is the whole file, or empty when its bytes are given later, in order.
    pub fn new(now: Instant, offer: Offer, data: Bytes, offer_backoff: Duration) -> Self {
        let mut content = Content::new(offer.size, offer.chunk_size);
        let taken = content.push(data);
        debug_assert!(taken.is_ok(), "{taken:?}");
        let stats = TransferStats {
            bytes: offer.size,
            chunks: offer.chunk_count,
            ..TransferStats::default()
        };
        Self {
            chunks: vec![ChunkState::default(); offer.chunk_count as usize],
            offer,
            content,
            accepted: false,
            next_new: 0,
            acked_count: 0,
            acked_below: 0,
            repair: None,
            next_offer: now + offer_backoff,
            offer_backoff,
            awaiting_since: None,
            next_done_probe: None,
            done_probes: 0,
            stats,
            outcome: None,
            abandoned: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.outcome.is_none()
    }

    /// In flight and still being sent: not abandoned.
    pub fn sends(&self) -> bool {
        self.is_active() && self.abandoned.is_none()
    }

    /// Stops sending: no new chunk, no resend, no repair symbol; its bytes go.
    pub fn abandon(&mut self, reason: &str) {
        self.abandoned = Some(reason.to_owned());
        self.next_new = self.offer.chunk_count;
        self.content.clear();
        self.repair = None;
        for c in &mut self.chunks {
            c.queued = false;
        }
    }

    /// Every chunk acknowledged (or none to send): only the verdict is missing.
    pub fn all_acked(&self) -> bool {
        self.acked_count == self.offer.chunk_count
    }

    /// Every chunk has left at least once.
    pub fn all_sent(&self) -> bool {
        self.next_new >= self.offer.chunk_count
    }

    /// The next new chunk is there to send: not all sent, and its bytes given.
    pub fn has_new_ready(&self) -> bool {
        !self.all_sent() && self.content.has(self.next_new)
    }

    /// The bytes of chunk `chunk` (within the file), while they are held.
    pub fn chunk_bytes(&self, chunk: u32) -> Option<&[u8]> {
        self.content.chunk(chunk)
    }

    /// Marks chunk `chunk` acknowledged; false when it already was. Lets go of the bytes
    /// no longer needed: those of acknowledged chunks below the first one that is not,
    /// except the tail that repair symbols are made from.
    pub fn mark_acked(&mut self, chunk: u32) -> bool {
        let Some(state) = self.chunks.get_mut(chunk as usize) else {
            return false;
        };
        state.queued = false;
        if state.acked {
            return false;
        }
        state.acked = true;
        self.acked_count += 1;
        while self
            .chunks
            .get(self.acked_below as usize)
            .is_some_and(|c| c.acked)
        {
            self.acked_below += 1;
        }
        let n = self.offer.chunk_count;
        let tail = n.saturating_sub(fec::max_block_len(self.offer.chunk_size) as u32);
        self.content.release_below(self.acked_below.min(tail));
        true
    }

    /// Ends the file with its verdict; its bytes and chunk map go.
    pub fn conclude(&mut self, result: Result<String, SendError>) {
        self.outcome = Some(result);
        self.stats.chunks_done = self.acked_count;
        self.content.clear();
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
        let Some(chunks) = (start..n)
            .map(|c| self.chunk_bytes(c))
            .collect::<Option<Vec<&[u8]>>>()
        else {
            return;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(chunks: u32, chunk_size: u16) -> Offer {
        let size = u64::from(chunks) * u64::from(chunk_size);
        Offer {
            name: "t".into(),
            size,
            chunk_size,
            chunk_count: chunks,
            blake3: [0; 32],
            format: String::new(),
            width: 0,
            height: 0,
            file: 0,
            first_chunk: 0,
        }
    }

    #[test]
    fn acknowledged_bytes_go_but_the_tail_stays_for_repair() {
        let n = fec::max_block_len(64) as u32 * 2;
        let mut f = OutFile::new(Instant::now(), offer(n, 64), Bytes::new(), Duration::ZERO);
        // One chunk per segment, so each acknowledgement can let one go.
        for c in 0..n {
            f.content.push(Bytes::from(vec![c as u8; 64])).unwrap();
        }
        f.next_new = n;
        assert!(f.mark_acked(1) && !f.mark_acked(1));
        assert_eq!(
            f.content.held(),
            u64::from(n) * 64,
            "chunk 0 is not acknowledged"
        );
        for c in (0..n - 1).filter(|&c| c != 1) {
            assert!(f.mark_acked(c));
        }
        let tail = fec::max_block_len(64) as u64 * 64;
        assert_eq!(f.content.held(), tail);
        assert_eq!(f.chunk_bytes(0), None);
        // With nothing in flight the block is the last 4 chunks, 3 of them acknowledged.
        f.plan_repair(0, 0.1);
        let (block, symbols) = f.repair.as_ref().expect("a repair block");
        assert_eq!((block.start, block.len), (n - 4, 4));
        assert!(!symbols.is_empty());
    }
}
