//! Counters one transfer keeps, from the side that keeps them; the CLI and TUI show these.

use std::time::Duration;

/// Per-transfer figures. Each side fills what it can observe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransferStats {
    /// Content length in bytes.
    pub bytes: u64,
    /// Chunks in the image.
    pub chunks: u32,
    /// Chunks the receiver holds (receiver) or has acknowledged (sender).
    pub chunks_done: u32,
    /// Datagrams this side sent in the session.
    pub datagrams_sent: u64,
    /// Datagrams this side accepted for the session.
    pub datagrams_received: u64,
    /// UDP payload bytes this side sent.
    pub wire_bytes_sent: u64,
    /// Chunks that arrived (receiver) or were acknowledged (sender) more than once.
    pub duplicates: u64,
    /// Packets declared lost (sender) or packet numbers never seen (receiver).
    pub lost: u64,
    /// Chunks sent again (sender) or retransmissions received (receiver).
    pub retransmitted: u64,
    /// Chunks delivered by a retransmission after their first copy was lost.
    pub recovered: u64,
    /// Chunks rebuilt from repair symbols (receiver) or repair symbols sent (sender).
    pub repaired: u64,
    /// Datagrams for this session that failed to decode or made no sense, dropped.
    pub malformed: u64,
    /// Smoothed round-trip time (sender; zero where unknown).
    pub rtt: Duration,
    /// Current pacing rate in bytes per second (sender).
    pub send_rate: f64,
}

impl TransferStats {
    /// Adds `other`'s counters to these (sizes, counts and traffic; not RTT or rate).
    pub fn add(&mut self, other: &TransferStats) {
        self.bytes += other.bytes;
        self.chunks += other.chunks;
        self.chunks_done += other.chunks_done;
        self.datagrams_sent += other.datagrams_sent;
        self.datagrams_received += other.datagrams_received;
        self.wire_bytes_sent += other.wire_bytes_sent;
        self.duplicates += other.duplicates;
        self.lost += other.lost;
        self.retransmitted += other.retransmitted;
        self.recovered += other.recovered;
        self.repaired += other.repaired;
        self.malformed += other.malformed;
    }
}
