//! The sending side of one transfer: offer, paced data, selective repair, completion.
//!
//! Loss recovery follows RFC 9002: every datagram has a fresh packet number, the receiver
//! acknowledges packet-number ranges, a packet is lost once three later ones are acknowledged
//! or 9/8 RTT has passed since a later one was, and a probe timeout (PTO) resends the oldest
//! outstanding chunks when acknowledgements stop, so lost tail chunks are repaired after about
//! one RTT, not after a long timer. Only chunks whose packets were lost are sent again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::crypto::{Pake, Passphrase, Protection};
use super::fec;
use super::pacing::Pacer;
use super::rate::{RateControl, RateSample};
use super::rtt::RttEstimator;
use super::stats::TransferStats;
use super::wire::{self, Body, Header, Offer, kind};
use super::{DEFAULT_MAX_DATAGRAM, MAX_ACK_DELAY};

/// Packets acknowledged after an unacknowledged one before it counts as lost.
const PACKET_THRESHOLD: u32 = 3;
/// Most probe timeouts in a row before the backoff stops growing.
const MAX_PTO_BACKOFF: u32 = 6;
/// Longest wait between probes once backed off: keeps probing a lossy path until idle timeout.
const MAX_PTO: Duration = Duration::from_secs(1);
/// Repair symbols still to send, by index.
type RepairQueue = VecDeque<(u16, Vec<u8>)>;

/// Copies of each HELLO, and of each CONFIRM and offer, sent per round of the login.
pub const LOGIN_COPIES: usize = 2;
/// ACKs kept from before ACCEPT, at most (the first flight is 32 datagrams, one ACK per 4).
const MAX_EARLY_ACKS: usize = 16;

/// Knobs for one transfer.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Largest UDP payload to send.
    pub max_datagram: usize,
    /// Give up when the receiver has said nothing for this long.
    pub idle_timeout: Duration,
    /// Give up when the offer has had no answer for this long.
    pub offer_timeout: Duration,
    /// Never pace above this many bytes per second.
    pub max_rate: Option<f64>,
    /// The shared passphrase; `None` sends in clear (`--insecure`).
    pub passphrase: Option<Passphrase>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            max_datagram: DEFAULT_MAX_DATAGRAM,
            idle_timeout: Duration::from_secs(10),
            offer_timeout: Duration::from_secs(5),
            max_rate: None,
            passphrase: None,
        }
    }
}

impl SenderConfig {
    /// Bytes of image per DATA packet under this configuration.
    pub fn chunk_size(&self) -> u16 {
        let overhead = self.data_overhead();
        let max = self.max_datagram.clamp(overhead + 2, wire::MAX_DATAGRAM);
        // Even, so a repair symbol (as long as a chunk, and the code wants an even length)
        // fits wherever a chunk does.
        ((max - overhead).min(usize::from(u16::MAX)) & !1) as u16
    }

    /// Bytes a DATA datagram spends besides the chunk: the AEAD tag replaces the CRC when sealed.
    pub fn data_overhead(&self) -> usize {
        match self.passphrase {
            Some(_) => wire::DATA_OVERHEAD - wire::TRAILER_LEN + super::crypto::TAG_LEN,
            None => wire::DATA_OVERHEAD,
        }
    }
}

/// Why a transfer did not complete.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Nothing answered the offer.
    #[error(
        "no answer from the receiver within {0:?}: is `udpix recv` running there, and is the UDP port open?"
    )]
    NoAnswer(Duration),
    /// The receiver declined the image (or the login), with a [`wire::reason`] code.
    #[error("receiver refused the image: {1}")]
    Refused(u8, String),
    /// The receiver went silent mid-transfer.
    #[error("receiver stopped answering for {0:?}; the transfer was abandoned")]
    ReceiverGone(Duration),
    /// Every chunk was acknowledged, then the receiver went silent before its verdict.
    #[error(
        "every chunk arrived, but the receiver's verdict did not come within {0:?}: the file may have been saved there; check before sending again"
    )]
    NoVerdict(Duration),
    /// The receiver ended the session.
    #[error("receiver closed the session: {0}")]
    Closed(String),
    /// The receiver no longer knows the transfer (it restarted, or dropped it).
    #[error("the receiver restarted or timed out and no longer knows this transfer; send it again")]
    Forgotten,
    /// The receiver assembled different content than was sent.
    #[error("receiver reports a content hash mismatch: {0}")]
    HashMismatch(String),
    /// The receiver could not store the file.
    #[error("receiver could not store the file: {0}")]
    StoreFailed(String),
    /// This side cancelled the transfer.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The passphrases differ: the receiver refused our confirmation, or could not prove
    /// it knows ours.
    #[error(
        "authentication failed: wrong passphrase? (case and the separators between words do not matter)"
    )]
    AuthFailed,
}

impl SendError {
    /// True when sending another file to the same receiver with the same settings would
    /// fail the same way (wrong passphrase, mode mismatch, throttled).
    pub fn ends_session(&self) -> bool {
        match self {
            SendError::AuthFailed => true,
            SendError::Refused(code, _) => {
                matches!(*code, wire::reason::MODE_MISMATCH | wire::reason::THROTTLED)
            }
            _ => false,
        }
    }
}

/// Things the UI or CLI may want to show, in the order they happened.
#[derive(Debug, Clone, PartialEq)]
pub enum SenderEvent {
    /// The receiver accepted the offer; data starts flowing.
    Accepted,
    /// A chunk left in a datagram.
    ChunkSent {
        /// Chunk index.
        chunk: u32,
        /// True when this is a repair of a lost copy.
        retransmit: bool,
    },
    /// A chunk's packet was declared lost; it is queued again.
    ChunkLost {
        /// Chunk index.
        chunk: u32,
    },
    /// The receiver acknowledged a chunk.
    ChunkAcked {
        /// Chunk index.
        chunk: u32,
        /// True when a repair delivered it.
        recovered: bool,
    },
    /// The receiver verified the hash and kept the file; the detail is its message.
    Delivered(String),
    /// The transfer failed.
    Failed(SendError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Offering,
    Transferring,
    AwaitingDone,
    Finished,
}

#[derive(Debug, Clone, Copy)]
struct ChunkState {
    acked: bool,
    queued: bool,
    latest_pn: Option<u32>,
}

#[derive(Debug, Clone)]
struct SentPacket {
    chunk: Option<u32>,
    retransmit: bool,
    time: Instant,
    size: usize,
    prior_delivered: u64,
    prior_delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
}

/// Compares two confirmations without a data-dependent early exit.
fn constant_time_eq(a: &[u8; wire::CONFIRM_LEN], b: &[u8; wire::CONFIRM_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One outgoing transfer.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    session: u64,
    offer: Offer,
    data: Bytes,
    phase: Phase,
    started: Instant,
    next_pn: u32,
    offers_sent: Vec<(u32, Instant)>,
    next_offer: Instant,
    protection: Protection,
    pake: Option<Pake>,
    cookie: Vec<u8>,
    retries: u32,
    hellos_sent: Vec<Instant>,
    /// Our confirmation and the receiver's token, repeated with every offer until ACCEPT.
    confirm: Option<([u8; wire::CONFIRM_LEN], Vec<u8>)>,
    /// The confirmation the receiver must show in ACCEPT before we believe anything else.
    expected_confirm: Option<[u8; wire::CONFIRM_LEN]>,
    control: VecDeque<Body<'static>>,
    offer_backoff: Duration,
    hurried: Option<Instant>,
    early_acks: Vec<(Instant, wire::Ack)>,
    /// The first packet number sent after ACCEPT arrived.
    sent_after_accept: Option<u32>,
    chunks: Vec<ChunkState>,
    next_new: u32,
    /// The tail's repair block, once the last new chunk left, and its symbols still to send.
    repair: Option<(fec::Block, RepairQueue)>,
    retx: VecDeque<u32>,
    acked_count: u32,
    sent: VecDeque<Option<SentPacket>>,
    sent_base: u32,
    in_flight: u64,
    largest_acked: Option<u32>,
    delivered: u64,
    /// Packets acknowledged so far (data and probes).
    packets_acked: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    rtt: RttEstimator,
    rate: RateControl,
    pacer: Pacer,
    pacing_wait: Option<Instant>,
    loss_time: Option<Instant>,
    pto_count: u32,
    last_eliciting: Option<Instant>,
    probes: u32,
    last_recv: Instant,
    close: Option<(u8, String)>,
    events: VecDeque<SenderEvent>,
    stats: TransferStats,
    outcome: Option<Result<String, SendError>>,
}

impl Sender {
    /// A transfer of `data` under `offer` (see [`Sender::offer_for`]), in session `session`
    /// (random, non-zero, picked by the caller since the core has no randomness).
    pub fn new(
        now: Instant,
        config: SenderConfig,
        session: u64,
        offer: Offer,
        data: Bytes,
    ) -> Self {
        let mss = config.max_datagram;
        let rate = RateControl::new(mss, config.max_rate);
        let pake = config.passphrase.as_ref().map(Pake::start);
        let chunks = vec![
            ChunkState {
                acked: false,
                queued: false,
                latest_pn: None,
            };
            offer.chunk_count as usize
        ];
        let stats = TransferStats {
            bytes: offer.size,
            chunks: offer.chunk_count,
            ..TransferStats::default()
        };
        Self {
            config,
            session,
            offer,
            data,
            phase: if pake.is_some() {
                Phase::Handshaking
            } else {
                Phase::Offering
            },
            started: now,
            next_pn: 0,
            offers_sent: Vec::new(),
            next_offer: now,
            protection: Protection::Plain,
            pake,
            cookie: Vec::new(),
            retries: 0,
            hellos_sent: Vec::new(),
            confirm: None,
            expected_confirm: None,
            control: VecDeque::new(),
            offer_backoff: Duration::from_millis(200),
            hurried: None,
            early_acks: Vec::new(),
            sent_after_accept: None,
            chunks,
            next_new: 0,
            repair: None,
            retx: VecDeque::new(),
            acked_count: 0,
            sent: VecDeque::new(),
            sent_base: 0,
            in_flight: 0,
            largest_acked: None,
            delivered: 0,
            packets_acked: 0,
            delivered_time: now,
            first_sent_time: now,
            rtt: RttEstimator::default(),
            rate,
            pacer: Pacer::default(),
            pacing_wait: None,
            loss_time: None,
            pto_count: 0,
            last_eliciting: None,
            probes: 0,
            last_recv: now,
            close: None,
            events: VecDeque::new(),
            stats,
            outcome: None,
        }
    }

    /// Builds the offer for `data`: geometry from the config, hash computed here.
    pub fn offer_for(
        config: &SenderConfig,
        name: &str,
        data: &[u8],
        format: &str,
        dims: Option<(u32, u32)>,
    ) -> Offer {
        let chunk_size = config.chunk_size();
        let size = data.len() as u64;
        let (width, height) = dims.unwrap_or((0, 0));
        Offer {
            name: name.to_owned(),
            size,
            chunk_size,
            chunk_count: size.div_ceil(u64::from(chunk_size)) as u32,
            blake3: *blake3::hash(data).as_bytes(),
            format: format.to_owned(),
            width,
            height,
        }
    }

    /// The session id this transfer uses.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The offer being sent.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Figures so far.
    pub fn stats(&self) -> TransferStats {
        let mut s = self.stats.clone();
        s.chunks_done = self.acked_count;
        s.rtt = if self.rtt.has_sample() {
            self.rtt.smoothed()
        } else {
            Duration::ZERO
        };
        s.send_rate = self.rate.pacing_rate();
        s
    }

    /// When the transfer started (the first offer).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// `Some` once the transfer has ended: the receiver's message, or the failure.
    pub fn outcome(&self) -> Option<&Result<String, SendError>> {
        self.outcome.as_ref()
    }

    /// True once no more datagrams will be sent.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished && self.close.is_none() && self.control.is_empty()
    }

    /// Abandons the transfer, telling the receiver with a CLOSE.
    pub fn cancel(&mut self, reason: &str) {
        if self.phase != Phase::Finished {
            self.close = Some((wire::reason::CANCELLED, reason.to_owned()));
            self.finish(Err(SendError::Cancelled(reason.to_owned())));
        }
    }

    fn finish(&mut self, result: Result<String, SendError>) {
        self.phase = Phase::Finished;
        self.events.push_back(match &result {
            Ok(msg) => SenderEvent::Delivered(msg.clone()),
            Err(e) => SenderEvent::Failed(e.clone()),
        });
        self.outcome = Some(result);
    }

    /// Next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// Feeds one datagram from the receiver (decrypted in place when sealed).
    pub fn handle(&mut self, now: Instant, datagram: &mut [u8]) {
        if wire::decode_header(datagram).map(|h| h.session) != Ok(self.session) {
            self.stats.malformed += 1;
            return;
        }
        let Ok((packet, sealed)) = self.protection.decode(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        if self.phase == Phase::Finished {
            return;
        }
        let hint = self.phase == Phase::Offering
            && (self.hurry_offer(now, &packet.body, sealed)
                | self.hold_early_ack(now, &packet.body, sealed));
        if !self.trusts(&packet, sealed) {
            // A hint of a lost offer or ACCEPT is not damage; anything else untrusted is.
            self.stats.malformed += u64::from(!hint);
            return;
        }
        self.stats.datagrams_received += 1;
        self.last_recv = now;
        match packet.body {
            Body::Retry { cookie } => {
                if self.retries < 4 {
                    self.retries += 1;
                    self.cookie = cookie;
                    self.next_offer = now;
                }
            }
            Body::HelloReply { pake, token } => self.on_hello_reply(now, &pake, token),
            Body::Accept { offer_pn, confirm } => {
                if self.phase != Phase::Offering {
                    return;
                }
                if let Some(expected) = self.expected_confirm
                    && !constant_time_eq(&expected, &confirm)
                {
                    // Sealed under our keys yet not the receiver's proof: a broken peer.
                    self.finish(Err(SendError::AuthFailed));
                    return;
                }
                if let Some(&(_, t)) = self.offers_sent.iter().find(|(pn, _)| *pn == offer_pn) {
                    let sample = now.saturating_duration_since(t);
                    self.rtt.update(sample, Duration::ZERO);
                    self.rate.set_initial_rtt(now, sample);
                }
                self.phase = if self.offer.chunk_count == 0 {
                    Phase::AwaitingDone
                } else {
                    Phase::Transferring
                };
                self.sent_after_accept = Some(self.next_pn);
                self.settle_first_flight(offer_pn);
                if self.in_flight == 0 {
                    self.delivered_time = now;
                    self.first_sent_time = now;
                }
                // Arms the probe timer even when there is no chunk to send (an empty file).
                self.last_eliciting = Some(now);
                self.events.push_back(SenderEvent::Accepted);
            }
            Body::Refuse { code, reason } => self.finish(Err(match code {
                wire::reason::AUTH_FAILED => SendError::AuthFailed,
                _ => SendError::Refused(code, reason),
            })),
            Body::Ack(ack) => {
                if matches!(self.phase, Phase::Transferring | Phase::AwaitingDone) {
                    self.on_ack(now, &ack);
                }
            }
            Body::Done {
                status,
                blake3,
                message,
            } => {
                let result = match status {
                    wire::done::OK if blake3 == self.offer.blake3 => Ok(message),
                    wire::done::OK | wire::done::HASH_MISMATCH => {
                        Err(SendError::HashMismatch(message))
                    }
                    _ => Err(SendError::StoreFailed(message)),
                };
                self.finish(result);
            }
            Body::Close { code, reason } => self.finish(Err(match code {
                wire::reason::UNKNOWN_SESSION => SendError::Forgotten,
                _ if reason.is_empty() => SendError::Closed(wire::reason::describe(code).into()),
                _ => SendError::Closed(reason),
            })),
            _ => self.stats.malformed += 1,
        }
    }

    /// While our offer waits for ACCEPT, an ACK of the first flight means the offer arrived
    /// but ACCEPT was lost, and "unknown session" means the first flight overtook a lost
    /// offer: either way, repeat the offer now rather than after its timer (at most once per
    /// half round trip). Neither is believed beyond that.
    fn hurry_offer(&mut self, now: Instant, body: &Body<'_>, sealed: bool) -> bool {
        let secure = self.config.passphrase.is_some();
        let hint = match body {
            Body::Ack(_) => sealed || !secure,
            Body::Close { code, .. } => !sealed && *code == wire::reason::UNKNOWN_SESSION,
            _ => false,
        };
        let recent = self.offers_sent.last().map(|(_, t)| *t);
        let gap = self.rtt.smoothed() / 2;
        if hint && recent.is_some_and(|t| now >= t + gap) && self.next_offer > now {
            self.hurried = Some(self.next_offer);
            self.next_offer = now;
        }
        hint
    }

    /// Keeps an ACK that arrived before ACCEPT (whose loss it shows), to act on once ACCEPT
    /// proves the receiver: dropping it would leave the first flight unaccounted for.
    fn hold_early_ack(&mut self, now: Instant, body: &Body<'_>, sealed: bool) -> bool {
        let secure = self.config.passphrase.is_some();
        let Body::Ack(ack) = body else { return false };
        if !sealed && secure {
            return false;
        }
        if self.early_acks.len() < MAX_EARLY_ACKS {
            self.early_acks.push((now, ack.clone()));
        }
        true
    }

    /// Once accepted: applies the ACKs held back, as of when they arrived, then counts as
    /// lost every data packet sent before the accepted copy of the offer that they do not
    /// cover: the receiver had no session for them. Those losses say nothing about the path,
    /// so the rate controller does not see them.
    fn settle_first_flight(&mut self, accepted_pn: u32) {
        for (at, ack) in std::mem::take(&mut self.early_acks) {
            self.on_ack(at, &ack);
        }
        for i in 0..self.sent.len() {
            let pn = self.sent_base + i as u32;
            if pn >= accepted_pn {
                break;
            }
            if let Some(p) = self.sent[i].take() {
                self.stats.lost += 1;
                self.requeue_lost(pn, &p);
            }
        }
        self.trim_sent();
    }

    /// Refusals a receiver sends before it holds our keys (so in clear).
    fn refuses_the_login(code: u8) -> bool {
        matches!(
            code,
            wire::reason::BUSY
                | wire::reason::MODE_MISMATCH
                | wire::reason::THROTTLED
                | wire::reason::AUTH_FAILED
        )
    }

    /// Whether to act on `body`, given whether it arrived sealed. With a passphrase, nothing
    /// from the receiver counts before it proved it holds the keys (ACCEPT with its
    /// confirmation), except what a receiver without our keys must be able to say: the
    /// handshake replies, a refusal of the login, and once we were accepted, "unknown
    /// session" from a receiver that restarted. In clear mode, "unknown session" before
    /// ACCEPT only means our first data overtook the offer.
    fn trusts(&self, packet: &wire::Packet<'_>, sealed: bool) -> bool {
        let accepted = matches!(self.phase, Phase::Transferring | Phase::AwaitingDone);
        let secure = self.config.passphrase.is_some();
        match &packet.body {
            Body::Retry { .. } | Body::HelloReply { .. } => {
                !sealed && self.phase == Phase::Handshaking
            }
            // A refusal of the login cannot be sealed (the keys differ, or there are none
            // yet); anything else a receiver with our keys refuses, it refuses sealed.
            Body::Refuse { code, .. } => {
                !accepted && (sealed || !secure || Self::refuses_the_login(*code))
            }
            // "Unknown session" answers one of our packets, named by its number: only one
            // sent once we were accepted means the receiver lost the session; one sent
            // before may just have overtaken the offer on the way.
            Body::Close { code, .. } if !sealed && *code == wire::reason::UNKNOWN_SESSION => {
                let pn = packet.header.pn;
                self.sent_after_accept
                    .is_some_and(|first| pn >= first && pn < self.next_pn)
            }
            Body::Accept { .. } => sealed || !secure,
            Body::Ack(_) | Body::Done { .. } => accepted && (sealed || !secure),
            _ => sealed || !secure,
        }
    }

    fn on_hello_reply(&mut self, now: Instant, server_msg: &[u8; wire::PAKE_LEN], token: Vec<u8>) {
        let Some(pake) = self.pake.take() else { return };
        let client_msg = pake.message();
        let Some(keys) = pake.finish(self.session, server_msg, &client_msg, server_msg) else {
            self.finish(Err(SendError::AuthFailed));
            return;
        };
        if let [sent] = self.hellos_sent[..] {
            // One HELLO, one reply: a clean first RTT sample, which paces the first flight.
            let sample = now.saturating_duration_since(sent);
            self.rtt.update(sample, Duration::ZERO);
            self.rate.set_initial_rtt(now, sample);
        }
        // We prove first, and our first flight follows at once: the receiver verifies our
        // confirmation, then proves itself in ACCEPT; until then we believe nothing else.
        self.confirm = Some((keys.client_confirm(), token));
        self.expected_confirm = Some(keys.server_confirm());
        self.protection = Protection::sealed(keys.client_to_server, keys.server_to_client);
        self.phase = Phase::Offering;
        self.next_offer = now;
        // The handshake's round trip tells how long to wait for ACCEPT before repeating.
        self.offer_backoff = if self.rtt.has_sample() {
            self.rtt
                .pto(MAX_ACK_DELAY)
                .clamp(Duration::from_millis(10), Duration::from_millis(200))
        } else {
            Duration::from_millis(200)
        };
    }

    fn on_ack(&mut self, now: Instant, ack: &wire::Ack) {
        let end_pn = self.sent_base + self.sent.len() as u32;
        let mut newly_largest: Option<(u32, Instant)> = None;
        let largest_in_ack = ack.ranges.first().map(|r| r.end);
        let mut any_new = false;
        for r in &ack.ranges {
            if r.end >= self.next_pn {
                // Acknowledges packets never sent: the ACK is bogus.
                self.stats.malformed += 1;
                return;
            }
        }
        // Oldest first (ranges come newest first), so the rate controller sees deliveries
        // in the order they were sent.
        for r in ack.ranges.iter().rev() {
            let lo = r.start.max(self.sent_base);
            let hi = r.end.min(end_pn.wrapping_sub(1));
            if self.sent.is_empty() || lo > hi {
                continue;
            }
            for pn in lo..=hi {
                let idx = (pn - self.sent_base) as usize;
                let Some(p) = self.sent[idx].take() else {
                    continue;
                };
                any_new = true;
                // RFC 9002: an RTT sample only when the ACK's largest is newly acknowledged.
                if Some(pn) == largest_in_ack && self.largest_acked.is_none_or(|l| pn > l) {
                    let sample = now.saturating_duration_since(p.time);
                    self.rtt
                        .update(sample, Duration::from_micros(u64::from(ack.ack_delay_us)));
                }
                if newly_largest.is_none_or(|(l, _)| pn > l) {
                    newly_largest = Some((pn, p.time));
                }
                self.on_packet_acked(now, p);
            }
        }
        if let Some((l, sent)) = newly_largest {
            self.largest_acked = Some(self.largest_acked.map_or(l, |x| x.max(l)));
            // As of when the receiver had the packet: a delayed ACK says how long it waited.
            let held = Duration::from_micros(u64::from(ack.ack_delay_us)).min(MAX_ACK_DELAY);
            let at = now.checked_sub(held).unwrap_or(now);
            self.rate
                .on_ack_point(at, sent, l, self.delivered, self.packets_acked);
        }
        if any_new {
            self.pto_count = 0;
        }
        if ack.chunks_held >= self.offer.chunk_count {
            self.all_held();
        }
        self.detect_lost(now);
        self.trim_sent();
        if self.phase == Phase::Transferring && self.acked_count == self.offer.chunk_count {
            self.phase = Phase::AwaitingDone;
        }
    }

    /// The receiver holds every chunk, some rebuilt from repair symbols whose packets were
    /// never acknowledged: none is sent again.
    fn all_held(&mut self) {
        self.retx.clear();
        self.next_new = self.offer.chunk_count;
        for (chunk, state) in self.chunks.iter_mut().enumerate() {
            state.queued = false;
            if !state.acked {
                state.acked = true;
                self.acked_count += 1;
                self.events.push_back(SenderEvent::ChunkAcked {
                    chunk: chunk as u32,
                    recovered: true,
                });
            }
        }
    }

    fn on_packet_acked(&mut self, now: Instant, p: SentPacket) {
        self.in_flight = self.in_flight.saturating_sub(p.size as u64);
        self.delivered += p.size as u64;
        self.packets_acked += 1;
        self.delivered_time = now;
        self.first_sent_time = p.time;
        let send_elapsed = p.time.saturating_duration_since(p.first_sent_time);
        let ack_elapsed = now.saturating_duration_since(p.prior_delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        let rtt = now.saturating_duration_since(p.time);
        if interval >= self.rtt.min() && !interval.is_zero() {
            let rate = (self.delivered - p.prior_delivered) as f64 / interval.as_secs_f64();
            self.rate.on_ack(
                now,
                RateSample {
                    delivery_rate: rate,
                    prior_delivered: p.prior_delivered,
                    delivered: self.delivered,
                    rtt,
                    app_limited: p.app_limited,
                },
                self.in_flight,
            );
        }
        let Some(chunk) = p.chunk else { return };
        let state = &mut self.chunks[chunk as usize];
        if state.acked {
            self.stats.duplicates += 1;
            return;
        }
        state.acked = true;
        self.acked_count += 1;
        let recovered = p.retransmit;
        if recovered {
            self.stats.recovered += 1;
        }
        self.events
            .push_back(SenderEvent::ChunkAcked { chunk, recovered });
    }

    fn detect_lost(&mut self, now: Instant) {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.loss_delay();
        let mut lost = 0u64;
        for i in 0..self.sent.len() {
            let pn = self.sent_base + i as u32;
            if pn >= largest {
                break;
            }
            let Some(p) = &self.sent[i] else { continue };
            let deadline = p.time + delay;
            if largest - pn >= PACKET_THRESHOLD || deadline <= now {
                let Some(p) = self.sent[i].take() else {
                    continue;
                };
                lost += 1;
                self.requeue_lost(pn, &p);
            } else {
                self.loss_time = Some(self.loss_time.map_or(deadline, |t| t.min(deadline)));
            }
        }
        if lost > 0 {
            self.stats.lost += lost;
            self.rate.on_loss(lost);
        }
    }

    /// Takes a lost packet out of flight and queues its chunk again, unless the chunk was
    /// acknowledged meanwhile or travels in a newer packet.
    fn requeue_lost(&mut self, pn: u32, p: &SentPacket) {
        self.in_flight = self.in_flight.saturating_sub(p.size as u64);
        if let Some(chunk) = p.chunk {
            let state = &mut self.chunks[chunk as usize];
            if !state.acked && state.latest_pn == Some(pn) && !state.queued {
                state.queued = true;
                self.retx.push_back(chunk);
                self.events.push_back(SenderEvent::ChunkLost { chunk });
            }
        }
    }

    fn trim_sent(&mut self) {
        while let Some(None) = self.sent.front() {
            self.sent.pop_front();
            self.sent_base += 1;
        }
    }

    fn pto_deadline(&self) -> Option<Instant> {
        if !matches!(self.phase, Phase::Transferring | Phase::AwaitingDone) {
            return None;
        }
        let eliciting_in_flight = self.in_flight > 0 || self.phase == Phase::AwaitingDone;
        if !eliciting_in_flight {
            return None;
        }
        let base = self.last_eliciting?;
        let pto = self.rtt.pto(MAX_ACK_DELAY);
        let backed_off = (pto * (1 << self.pto_count.min(MAX_PTO_BACKOFF))).min(MAX_PTO.max(pto));
        Some(base + backed_off)
    }

    fn idle_deadline(&self) -> Instant {
        self.last_recv + self.config.idle_timeout
    }

    /// Earliest instant at which [`Sender::handle_timeout`] has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Finished {
            return None;
        }
        let mut t = self.idle_deadline();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        if matches!(self.phase, Phase::Handshaking | Phase::Offering) {
            consider(Some(self.next_offer));
            consider(Some(self.started + self.config.offer_timeout));
        }
        consider(self.loss_time);
        consider(self.pto_deadline());
        consider(self.pacing_wait);
        Some(t)
    }

    /// Runs whatever timers have expired by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Finished {
            return;
        }
        if matches!(self.phase, Phase::Handshaking | Phase::Offering)
            && now >= self.started + self.config.offer_timeout
        {
            self.finish(Err(SendError::NoAnswer(self.config.offer_timeout)));
            return;
        }
        if now >= self.idle_deadline() {
            let idle = self.config.idle_timeout;
            self.finish(Err(if self.phase == Phase::AwaitingDone {
                SendError::NoVerdict(idle)
            } else {
                SendError::ReceiverGone(idle)
            }));
            return;
        }
        if self.pacing_wait.is_some_and(|t| now >= t) {
            self.pacing_wait = None;
        }
        if self.loss_time.is_some_and(|t| now >= t) {
            self.detect_lost(now);
            self.trim_sent();
        }
        if self.pto_deadline().is_some_and(|t| now >= t) {
            self.pto_count += 1;
            self.probes = if self.phase == Phase::AwaitingDone {
                1
            } else {
                2
            };
            // Restart the PTO clock from now, so one expiry sends one round of probes.
            self.last_eliciting = Some(now);
        }
    }

    fn header(&mut self, kind: u8) -> Header {
        let pn = self.next_pn;
        self.next_pn = self.next_pn.wrapping_add(1);
        Header {
            kind,
            session: self.session,
            pn,
        }
    }

    /// Writes the next datagram to send into `buf` (cleared first); false when nothing is due.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if let Some(body) = self.control.pop_front() {
            self.emit(now, &body, buf);
            return true;
        }
        if let Some((code, reason)) = self.close.take() {
            self.emit(now, &Body::Close { code, reason }, buf);
            return true;
        }
        match self.phase {
            Phase::Finished => false,
            Phase::Offering if now < self.next_offer && !self.offers_sent.is_empty() => {
                // The first flight: data right behind the offer, within the initial window.
                self.transmit_data(now, buf)
            }
            Phase::Handshaking | Phase::Offering => {
                if now < self.next_offer {
                    return false;
                }
                match self.hurried.take() {
                    // A repeat the receiver's hints asked for leaves the timer's schedule.
                    Some(due) if due > now => self.next_offer = due,
                    _ => {
                        self.next_offer = now + self.offer_backoff;
                        self.offer_backoff = (self.offer_backoff * 2).min(Duration::from_secs(1));
                    }
                }
                // Every round of the login goes out in copies, back to back: on a lossy path
                // a lost HELLO or offer would otherwise cost a whole timer.
                if let Some(pake) = &self.pake {
                    let hello = Body::Hello {
                        pake: pake.message(),
                        cookie: self.cookie.clone(),
                    };
                    self.hellos_sent.push(now);
                    self.control
                        .extend(std::iter::repeat_n(hello.clone(), LOGIN_COPIES - 1));
                    self.emit(now, &hello, buf);
                    return true;
                }
                let offer = Body::Offer(self.offer.clone());
                // The confirmation rides with every offer until the receiver accepts, so a
                // lost CONFIRM costs one offer timer, not the session.
                let Some((confirm, token)) = self.confirm.clone() else {
                    self.control
                        .extend(std::iter::repeat_n(offer.clone(), LOGIN_COPIES - 1));
                    self.emit(now, &offer, buf);
                    return true;
                };
                // Confirmations first, then offers: an offer needs one confirmation ahead
                // of it, and the session's packet numbers then start with no gap in them.
                let confirm = Body::Confirm { confirm, token };
                self.control
                    .extend(std::iter::repeat_n(confirm.clone(), LOGIN_COPIES - 1));
                self.control
                    .extend(std::iter::repeat_n(offer, LOGIN_COPIES));
                self.emit(now, &confirm, buf);
                true
            }
            Phase::Transferring | Phase::AwaitingDone => self.transmit_data(now, buf),
        }
    }

    /// Encodes `body` under the next packet number with the session's protection.
    fn emit(&mut self, now: Instant, body: &Body<'_>, buf: &mut Vec<u8>) -> Header {
        let h = self.header(body.kind());
        if h.kind == kind::OFFER {
            self.offers_sent.push((h.pn, now));
        }
        self.protection.encode(&h, body, buf);
        self.count_sent(buf.len());
        h
    }

    fn count_sent(&mut self, len: usize) {
        self.stats.datagrams_sent += 1;
        self.stats.wire_bytes_sent += len as u64;
    }

    fn transmit_data(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        if self.probes > 0 {
            self.probes -= 1;
            let chunk = self
                .oldest_unacked_in_flight()
                .or_else(|| self.next_chunk());
            match chunk {
                Some((c, retx)) => self.send_chunk(now, c, retx, buf),
                None => {
                    self.emit(now, &Body::Ping, buf);
                    self.last_eliciting = Some(now);
                }
            }
            return true;
        }
        if self.phase == Phase::AwaitingDone {
            return false;
        }
        let mss = self.config.max_datagram;
        if self.in_flight + mss as u64 > self.rate.window() {
            return false;
        }
        let chunks_left = !self.retx.is_empty() || self.next_new < self.offer.chunk_count;
        if !chunks_left && self.repair.as_ref().is_none_or(|(_, q)| q.is_empty()) {
            return false;
        }
        if let Some(t) = self.pacer.delay(now, self.rate.pacing_rate(), mss, mss) {
            self.pacing_wait = Some(t);
            return false;
        }
        if let Some((chunk, retx)) = self.next_chunk() {
            self.send_chunk(now, chunk, retx, buf);
            if self.next_new == self.offer.chunk_count && self.repair.is_none() {
                self.plan_repair();
            }
            return true;
        }
        self.send_repair(now, buf)
    }

    /// The tail's repair block: the last chunks, as many as are in flight when the last new
    /// one leaves (within what a receiver keeps), and symbols for the loss seen so far.
    fn plan_repair(&mut self) {
        let n = self.offer.chunk_count;
        let size = self.offer.chunk_size;
        let in_flight = self
            .in_flight
            .div_ceil(self.config.max_datagram.max(1) as u64);
        let len = (in_flight as usize + 4)
            .min(fec::max_block_len(size))
            .min(n as usize);
        let start = n - len as u32;
        let count = fec::repairs_for(len, self.rate.loss_fraction(), fec::max_repairs(size));
        let chunks: Vec<&[u8]> = (start..n)
            .map(|c| {
                let from = (c as usize * usize::from(size)).min(self.data.len());
                let len = self.offer.chunk_len(c).unwrap_or(0);
                &self.data[from..(from + len).min(self.data.len())]
            })
            .collect();
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

    fn send_repair(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        let Some((block, queue)) = &mut self.repair else {
            return false;
        };
        let block = *block;
        let Some((index, symbol)) = queue.pop_front() else {
            return false;
        };
        let h = self.header(kind::REPAIR);
        let body = Body::Repair {
            len: block.len,
            count: block.repairs as u8,
            index: index as u8,
            symbol: &symbol,
        };
        self.protection.encode(&h, &body, buf);
        self.stats.repaired += 1;
        self.record_sent(now, h.pn, None, false, buf.len());
        true
    }

    fn oldest_unacked_in_flight(&self) -> Option<(u32, bool)> {
        self.sent.iter().flatten().find_map(|p| {
            let c = p.chunk?;
            (!self.chunks[c as usize].acked).then_some((c, true))
        })
    }

    fn next_chunk(&mut self) -> Option<(u32, bool)> {
        while let Some(c) = self.retx.pop_front() {
            let state = &mut self.chunks[c as usize];
            state.queued = false;
            if !state.acked {
                return Some((c, true));
            }
        }
        if self.next_new < self.offer.chunk_count {
            let c = self.next_new;
            self.next_new += 1;
            return Some((c, false));
        }
        None
    }

    fn send_chunk(&mut self, now: Instant, chunk: u32, retransmit: bool, buf: &mut Vec<u8>) {
        let start = (chunk as usize * usize::from(self.offer.chunk_size)).min(self.data.len());
        let len = self
            .offer
            .chunk_len(chunk)
            .unwrap_or(0)
            .min(self.data.len() - start);
        let h = self.header(if retransmit {
            kind::DATA_RETX
        } else {
            kind::DATA
        });
        self.protection.encode(
            &h,
            &Body::Data {
                chunk,
                retransmit,
                payload: &self.data[start..start + len],
            },
            buf,
        );
        self.record_sent(now, h.pn, Some(chunk), retransmit, buf.len());
        self.chunks[chunk as usize].latest_pn = Some(h.pn);
        if retransmit {
            self.stats.retransmitted += 1;
        }
        self.events
            .push_back(SenderEvent::ChunkSent { chunk, retransmit });
    }

    /// Enters a packet just sent into the sent-packet table, in flight and paced.
    fn record_sent(
        &mut self,
        now: Instant,
        pn: u32,
        chunk: Option<u32>,
        retransmit: bool,
        size: usize,
    ) {
        if self.in_flight == 0 {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        let app_limited = self.retx.is_empty() && self.next_new >= self.offer.chunk_count;
        // Keep the sent-packet table contiguous by packet number.
        if self.sent.is_empty() {
            self.sent_base = pn;
        }
        let expected = self.sent_base + self.sent.len() as u32;
        for _ in expected..pn {
            self.sent.push_back(None);
        }
        self.sent.push_back(Some(SentPacket {
            chunk,
            retransmit,
            time: now,
            size,
            prior_delivered: self.delivered,
            prior_delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited,
        }));
        self.in_flight += size as u64;
        self.pacer.on_sent(size);
        self.last_eliciting = Some(now);
        self.count_sent(size);
    }
}
