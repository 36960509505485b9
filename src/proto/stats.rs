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
