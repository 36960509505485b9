//! The sending side of one session: login, then one or more files, each offered, sent as
//! paced data with selective repair, and concluded by the receiver's verdict.
//!
//! Files follow each other in one session without a new login: the next file's offer goes
//! out as soon as the previous file's last new chunk has left, its data right behind it, so
//! the path stays full across files. Chunk numbers run on across the files of a session
//! ([`Offer::first_chunk`]), so DATA needs no file field. Up to [`MAX_FILES_IN_FLIGHT`]
//! files may wait for their verdicts at once; each has its own verdict.
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
use super::pacing::Pacer;
use super::rate::{RateControl, RateSample};
use super::rtt::RttEstimator;
use super::stats::TransferStats;
use super::wire::{self, Body, Header, Offer, kind};
use super::{DEFAULT_MAX_DATAGRAM, MAX_ACK_DELAY, MAX_FILES_IN_FLIGHT};

mod content;
mod file;

pub use content::ContentError;
use file::OutFile;

/// Packets acknowledged after an unacknowledged one before it counts as lost.
const PACKET_THRESHOLD: u32 = 3;
/// Most probe timeouts in a row before the backoff stops growing.
const MAX_PTO_BACKOFF: u32 = 6;
/// Longest wait between probes once backed off: keeps probing a lossy path until idle timeout.
const MAX_PTO: Duration = Duration::from_secs(1);
/// Bytes of files in flight, past which no further file is taken until one concludes (one
/// file may go over it on its own).
pub const MAX_BYTES_IN_FLIGHT: u64 = 64 << 20;
/// Bytes of a file held ahead of its first unacknowledged chunk, at most, when it is given
/// as it is read ([`Sender::wants_data`]): several round trips' worth on any path udpix is
/// for, and what bounds the sender's memory whatever the file's size.
pub const READ_AHEAD: u64 = 16 << 20;
/// Bytes to read from a file per segment given with [`Sender::push_data`]: whole chunks of
/// `chunk_size`, about 256 KiB.
pub fn segment_len(chunk_size: u16) -> usize {
    let chunk = usize::from(chunk_size).max(1);
    (256 << 10) / chunk * chunk
}

/// Packet numbers and session-wide chunk numbers a session uses at most before it takes no
/// further file: half their range, so neither can wrap (about 2.5 TB of 1,166-byte chunks).
const SESSION_BUDGET: u32 = 1 << 31;
/// Concluded files whose figures and outcome are kept for the caller to read.
const CONCLUDED_KEPT: usize = 16;

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
    /// The receiver's host said nothing listens on the port (an ICMP port unreachable),
    /// before anything came from it.
    #[error("nothing listens on the receiver's port: is `udpix recv` running there, on that port?")]
    PortClosed,
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
    /// This side gave up this one file ([`Sender::abandon`]); the others go on.
    #[error("cancelled: {0}")]
    Abandoned(String),
    /// The receiver cancelled the transfer (it was stopped, or its user cancelled it).
    #[error("cancelled by the receiver: {0}")]
    CancelledByReceiver(String),
    /// The passphrases differ: the receiver refused our confirmation, or could not prove
    /// it knows ours.
    #[error(
        "authentication failed: wrong passphrase? (case and the separators between words do not matter)"
    )]
    AuthFailed,
}

impl SendError {
    /// True when sending another file to the same receiver with the same settings would
    /// fail the same way (wrong passphrase, mode mismatch, throttled, nothing answering).
    pub fn ends_session(&self) -> bool {
        match self {
            SendError::AuthFailed
            | SendError::NoAnswer(_)
            | SendError::PortClosed
            | SendError::Cancelled(_)
            | SendError::CancelledByReceiver(_) => true,
            SendError::Refused(code, _) => {
                matches!(*code, wire::reason::MODE_MISMATCH | wire::reason::THROTTLED)
            }
            _ => false,
        }
    }
}

/// Things the UI or CLI may want to show, in the order they happened. `file` is the
/// file's place in the session ([`Offer::file`]); chunks are numbered within their file.
#[derive(Debug, Clone, PartialEq)]
pub enum SenderEvent {
    /// The receiver accepted a file's offer; its data flows.
    Accepted {
        /// The file.
        file: u32,
    },
    /// A chunk left in a datagram.
    ChunkSent {
        /// The file.
        file: u32,
        /// Chunk index.
        chunk: u32,
        /// True when this is a repair of a lost copy.
        retransmit: bool,
    },
    /// A chunk's packet was declared lost; it is queued again.
    ChunkLost {
        /// The file.
        file: u32,
        /// Chunk index.
        chunk: u32,
    },
    /// The receiver acknowledged a chunk.
    ChunkAcked {
        /// The file.
        file: u32,
        /// Chunk index.
        chunk: u32,
        /// True when a repair delivered it.
        recovered: bool,
    },
    /// The receiver verified the hash and kept the file.
    Delivered {
        /// The file.
        file: u32,
        /// The receiver's message.
        message: String,
    },
    /// The file failed.
    Failed {
        /// The file.
        file: u32,
        /// Why.
        error: SendError,
    },
}

/// Where the session is: its login, the first file's acceptance (which proves the
/// receiver), then files until the last verdict or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Offering,
    Established,
    Finished,
}

#[derive(Debug, Clone)]
struct SentPacket {
    /// The session-wide chunk number it carried.
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

/// One outgoing session and its files.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    session: u64,
    phase: Phase,
    started: Instant,
    next_pn: u32,
    /// Every OFFER copy sent: packet number, when, and the file it offered.
    offers_sent: Vec<(u32, Instant, u32)>,
    /// When the first file's offer is next repeated, before the session is accepted.
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
    /// The session's files in order: those in flight, then the concluded ones kept.
    files: VecDeque<OutFile>,
    /// No file will be added: the session ends with the last verdict.
    input_closed: bool,
    /// Session-wide chunk numbers of lost chunks, to send again.
    retx: VecDeque<u32>,
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
    /// Something trusted came from the receiver in this session.
    heard: bool,
    events: VecDeque<SenderEvent>,
    /// Traffic of no file (after every file concluded).
    stats: TransferStats,
}

impl Sender {
    /// A session whose first file is `data` under `offer` (see [`Sender::offer_for`]), in
    /// session `session` (random, non-zero, picked by the caller since the core has no
    /// randomness). `data` is the whole file, or empty to give its bytes as they are read
    /// ([`Sender::wants_data`]), as for every file. It ends with that file's verdict unless [`Sender::keep_open`] is called.
    pub fn new(
        now: Instant,
        config: SenderConfig,
        session: u64,
        mut offer: Offer,
        data: Bytes,
    ) -> Self {
        let mss = config.max_datagram;
        let rate = RateControl::new(mss, config.max_rate);
        let pake = config.passphrase.as_ref().map(Pake::start);
        offer.file = 0;
        offer.first_chunk = 0;
        let backoff = Duration::from_millis(200);
        let first = OutFile::new(now, offer, data, backoff);
        Self {
            config,
            session,
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
            offer_backoff: backoff,
            hurried: None,
            early_acks: Vec::new(),
            sent_after_accept: None,
            files: VecDeque::from([first]),
            input_closed: true,
            retx: VecDeque::new(),
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
            heard: false,
            events: VecDeque::new(),
            stats: TransferStats::default(),
        }
    }

    /// Builds the offer for `data`: geometry from the config, hash computed here. Its place
    /// in the session is set when it is queued.
    pub fn offer_for(
        config: &SenderConfig,
        name: &str,
        data: &[u8],
        format: &str,
        dims: Option<(u32, u32)>,
    ) -> Offer {
        let hash = *blake3::hash(data).as_bytes();
        Self::offer_hashed(config, name, data.len() as u64, hash, format, dims)
    }

    /// Builds the offer for a file of `size` bytes whose BLAKE3 hash is `blake3` (one read
    /// ahead of sending, so the file need not be held in memory).
    pub fn offer_hashed(
        config: &SenderConfig,
        name: &str,
        size: u64,
        blake3: [u8; 32],
        format: &str,
        dims: Option<(u32, u32)>,
    ) -> Offer {
        let chunk_size = config.chunk_size();
        let (width, height) = dims.unwrap_or((0, 0));
        Offer {
            name: name.to_owned(),
            size,
            chunk_size,
            chunk_count: size.div_ceil(u64::from(chunk_size)) as u32,
            blake3,
            format: format.to_owned(),
            width,
            height,
            file: 0,
            first_chunk: 0,
        }
    }

    /// The session id this transfer uses.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// More files may follow the first: the session stays up after its verdict until
    /// [`Sender::close_input`].
    pub fn keep_open(&mut self) {
        self.input_closed = false;
    }

    /// No more files: the session ends with the last verdict (at once if it is in).
    pub fn close_input(&mut self) {
        self.input_closed = true;
        if self.phase == Phase::Established && !self.files.iter().any(OutFile::is_active) {
            self.phase = Phase::Finished;
        }
    }

    /// True when the session would take another file now: it is up, the next file would
    /// be within [`MAX_FILES_IN_FLIGHT`] of the oldest without its verdict (so a receiver
    /// that sees file `k + MAX_FILES_IN_FLIGHT` offered knows we have file `k`'s DONE),
    /// fewer than [`MAX_BYTES_IN_FLIGHT`] bytes are held, and the newest file has sent
    /// every chunk once (files go one after another).
    pub fn wants_file(&self) -> bool {
        if self.input_closed || self.phase != Phase::Established {
            return false;
        }
        let active: Vec<&OutFile> = self.files.iter().filter(|f| f.is_active()).collect();
        let bytes: u64 = active.iter().map(|f| f.offer.size).sum();
        let last = self.files.back().map(|f| &f.offer);
        let next = last.map_or(0, |o| o.file + 1);
        // Far from where packet numbers (the AEAD nonce) or chunk numbers could wrap; past
        // it the session ends with its files and the rest go in a new one.
        let first_chunk = last.map_or(0, |o| o.chunk_range().end);
        if self.next_pn >= SESSION_BUDGET || first_chunk >= SESSION_BUDGET {
            return false;
        }
        let window = active
            .first()
            .is_none_or(|f| next - f.offer.file < MAX_FILES_IN_FLIGHT as u32);
        window && bytes < MAX_BYTES_IN_FLIGHT && active.last().is_none_or(|f| f.all_sent())
    }

    /// Queues the next file of the session (see [`Sender::wants_file`]); returns its place
    /// in the session. Its offer goes out at once, its data right behind.
    pub fn push_file(&mut self, now: Instant, mut offer: Offer, data: Bytes) -> u32 {
        let last = self.files.back().map(|f| &f.offer);
        offer.file = last.map_or(0, |o| o.file + 1);
        offer.first_chunk = last.map_or(0, |o| o.chunk_range().end);
        let backoff = self.repeat_wait();
        let file = offer.file;
        let body = Body::Offer(offer.clone());
        self.files
            .push_back(OutFile::new(now, offer, data, backoff));
        self.control.extend(std::iter::repeat_n(body, LOGIN_COPIES));
        self.forget_concluded();
        file
    }

    /// The file whose bytes are wanted next, and the offset they start at, when it was
    /// pushed without them (or with only some) and holds less than [`READ_AHEAD`] bytes.
    /// Give them with [`Sender::push_data`]: in order, in segments of whole chunks.
    pub fn wants_data(&self) -> Option<(u32, u64)> {
        self.files
            .iter()
            .find(|f| f.sends() && !f.content.is_complete())
            .filter(|f| f.content.held() < READ_AHEAD)
            .map(|f| (f.offer.file, f.content.given()))
    }

    /// The next bytes of file `file` (see [`Sender::wants_data`]).
    pub fn push_data(&mut self, file: u32, bytes: Bytes) -> Result<(), ContentError> {
        let f = self
            .file_index(file)
            .map(|i| &mut self.files[i])
            .filter(|f| f.is_active())
            .ok_or(ContentError::NoSuchFile(file))?;
        if f.abandoned.is_some() {
            // A read already under way when it was given up: nobody wants it.
            return Ok(());
        }
        f.content.push(bytes)
    }

    /// Bytes of file content held now, over every file in flight.
    pub fn held_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.content.held()).sum()
    }

    /// How long to wait for an answer before repeating an offer: a probe timeout.
    fn repeat_wait(&self) -> Duration {
        if self.rtt.has_sample() {
            self.rtt
                .pto(MAX_ACK_DELAY)
                .clamp(Duration::from_millis(10), Duration::from_millis(1000))
        } else {
            Duration::from_millis(200)
        }
    }

    fn forget_concluded(&mut self) {
        while self.files.iter().filter(|f| !f.is_active()).count() > CONCLUDED_KEPT {
            let Some(i) = self.files.iter().position(|f| !f.is_active()) else {
                return;
            };
            self.files.remove(i);
        }
    }

    fn file_index(&self, file: u32) -> Option<usize> {
        self.files.iter().position(|f| f.offer.file == file)
    }

    /// The file in flight a session-wide chunk number belongs to, and the chunk within it.
    fn locate(&self, chunk: u32) -> Option<(usize, u32)> {
        let i = self
            .files
            .iter()
            .position(|f| f.is_active() && f.offer.chunk_range().contains(&chunk))?;
        Some((i, chunk - self.files[i].offer.first_chunk))
    }

    /// The counters a datagram of file `i` goes to; with none, the oldest file in flight's.
    fn charge(&mut self, i: Option<usize>) -> &mut TransferStats {
        let i = i
            .filter(|&i| self.files.get(i).is_some_and(OutFile::is_active))
            .or_else(|| self.files.iter().position(OutFile::is_active));
        match i {
            Some(i) => &mut self.files[i].stats,
            None => &mut self.stats,
        }
    }

    /// The offer of the oldest file kept: the first file's, in a session of one (or of up
    /// to [`CONCLUDED_KEPT`] files).
    pub fn offer(&self) -> &Offer {
        &self.files[0].offer
    }

    /// A file's offer as sent (with its place in the session), while the sender keeps it.
    pub fn offer_of(&self, file: u32) -> Option<&Offer> {
        Some(&self.files[self.file_index(file)?].offer)
    }

    /// The first file's figures so far (see [`Sender::stats_of`]); default ones once it is
    /// no longer kept.
    pub fn stats(&self) -> TransferStats {
        self.stats_of(0).unwrap_or_default()
    }

    /// A file's figures so far, while the sender keeps it.
    pub fn stats_of(&self, file: u32) -> Option<TransferStats> {
        let f = &self.files[self.file_index(file)?];
        let mut s = f.stats.clone();
        if f.is_active() {
            s.chunks_done = f.acked_count;
        }
        s.rtt = if self.rtt.has_sample() {
            self.rtt.smoothed()
        } else {
            Duration::ZERO
        };
        s.send_rate = self.rate.pacing_rate();
        Some(s)
    }

    /// The rate the session delivers image bytes at (its pacing rate less the share lost,
    /// bytes a second) and its smoothed round trip, once it has a round-trip sample.
    pub fn pace(&self) -> Option<(f64, Duration)> {
        let delivered = self.rate.pacing_rate() * (1.0 - self.rate.loss_fraction());
        self.rtt
            .has_sample()
            .then(|| (delivered, self.rtt.smoothed()))
    }

    /// When the session started (the first offer or HELLO).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// `Some` once the first file has ended, while it is kept: the receiver's message, or
    /// the failure.
    pub fn outcome(&self) -> Option<&Result<String, SendError>> {
        self.outcome_of(0)
    }

    /// `Some` once file `file` has ended, while the sender keeps it.
    pub fn outcome_of(&self, file: u32) -> Option<&Result<String, SendError>> {
        self.files[self.file_index(file)?].outcome.as_ref()
    }

    /// True once no more datagrams will be sent.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished && self.control.is_empty()
    }

    /// Abandons the session, telling the receiver at once with a CLOSE (in as many copies
    /// as a login message, so one lost datagram does not leave it waiting for its timeout).
    pub fn cancel(&mut self, reason: &str) {
        if self.phase != Phase::Finished {
            self.fail_session(SendError::Cancelled(reason.to_owned()));
            let close = Body::Close {
                code: wire::reason::CANCELLED,
                reason: reason.to_owned(),
            };
            self.control
                .extend(std::iter::repeat_n(close, LOGIN_COPIES));
        }
    }

    /// Gives up file `file` alone (its user cancelled it), with `reason` for the receiver:
    /// nothing more of it is sent, and the session's other files go on. It ends when the
    /// receiver's DONE comes, which may still say it was kept (it arrived whole first);
    /// ABANDON is repeated until then, from as soon as the session is up. False when the
    /// file is not in flight.
    pub fn abandon(&mut self, now: Instant, file: u32, reason: &str) -> bool {
        let Some(i) = self.file_index(file).filter(|&i| self.files[i].sends()) else {
            return false;
        };
        let f = &mut self.files[i];
        f.abandon(reason);
        f.awaiting_since = Some(now);
        f.next_done_probe = Some(now);
        let range = f.offer.chunk_range();
        self.retx.retain(|c| !range.contains(c));
        true
    }

    /// True while file `file` is abandoned and waits for the receiver's word on it.
    pub fn is_abandoned(&self, file: u32) -> bool {
        self.file_index(file)
            .is_some_and(|i| self.files[i].is_active() && self.files[i].abandoned.is_some())
    }

    /// The receiver's host reported the port closed (the socket saw "connection refused"):
    /// before anything came from the receiver, nothing listens there and the session fails
    /// at once rather than after the offer's timeout; later (a receiver heard from may be
    /// restarting) it changes nothing, and the timers decide.
    pub fn port_closed(&mut self) {
        if !self.heard && self.phase != Phase::Finished {
            self.fail_session(SendError::PortClosed);
        }
    }

    /// Ends every file in flight with `error`, and the session with them.
    fn fail_session(&mut self, error: SendError) {
        // Offers still queued would start files nobody will send.
        self.control.clear();
        for i in 0..self.files.len() {
            if self.files[i].is_active() {
                self.conclude(i, Err(error.clone()));
            }
        }
        self.phase = Phase::Finished;
    }

    /// Ends file `i` with its verdict; the session ends with its last file.
    fn conclude(&mut self, i: usize, result: Result<String, SendError>) {
        let f = &mut self.files[i];
        if !f.is_active() {
            return;
        }
        let file = f.offer.file;
        self.events.push_back(match &result {
            Ok(message) => SenderEvent::Delivered {
                file,
                message: message.clone(),
            },
            Err(error) => SenderEvent::Failed {
                file,
                error: error.clone(),
            },
        });
        f.conclude(result);
        let range = f.offer.chunk_range();
        self.retx.retain(|c| !range.contains(c));
        // Its offers are never looked up again (one never accepted, say an abandoned
        // file's, would stay for the session's life).
        self.offers_sent.retain(|&(_, _, f)| f != file);
        if self.input_closed && !self.files.iter().any(OutFile::is_active) {
            self.phase = Phase::Finished;
        }
    }

    /// Next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// Feeds one datagram from the receiver (decrypted in place when sealed).
    pub fn handle(&mut self, now: Instant, datagram: &mut [u8]) {
        if wire::decode_header(datagram).map(|h| h.session) != Ok(self.session) {
            self.charge(None).malformed += 1;
            return;
        }
        let Ok((packet, sealed)) = self.protection.decode(datagram) else {
            self.charge(None).malformed += 1;
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
            self.charge(None).malformed += u64::from(!hint);
            return;
        }
        let target = match &packet.body {
            Body::Done { file, .. } => self.file_index(*file),
            _ => None,
        };
        self.charge(target).datagrams_received += 1;
        self.last_recv = now;
        self.heard = true;
        match packet.body {
            Body::Retry { cookie } => {
                if self.retries < 4 {
                    self.retries += 1;
                    self.cookie = cookie;
                    self.next_offer = now;
                }
            }
            Body::HelloReply { pake, token } => self.on_hello_reply(now, &pake, token),
            Body::Accept { offer_pn, confirm } => self.on_accept(now, offer_pn, &confirm),
            Body::Refuse { code, reason } => self.fail_session(match code {
                wire::reason::AUTH_FAILED => SendError::AuthFailed,
                _ => SendError::Refused(code, reason),
            }),
            Body::Ack(ack) => {
                if self.phase == Phase::Established {
                    self.on_ack(now, &ack);
                }
            }
            Body::Done {
                file,
                status,
                blake3,
                message,
            } => {
                let Some(i) = self.file_index(file) else {
                    return;
                };
                let result = match status {
                    wire::done::OK if blake3 == self.files[i].offer.blake3 => Ok(message),
                    wire::done::OK | wire::done::HASH_MISMATCH => {
                        Err(SendError::HashMismatch(message))
                    }
                    wire::done::REFUSED => Err(SendError::Refused(wire::reason::OTHER, message)),
                    wire::done::ABANDONED => Err(SendError::Abandoned(
                        self.files[i].abandoned.clone().unwrap_or(message),
                    )),
                    _ => Err(SendError::StoreFailed(message)),
                };
                self.conclude(i, result);
            }
            Body::Close { code, reason } => self.fail_session(match code {
                wire::reason::CANCELLED => SendError::CancelledByReceiver(reason),
                wire::reason::UNKNOWN_SESSION => SendError::Forgotten,
                _ if reason.is_empty() => SendError::Closed(wire::reason::describe(code).into()),
                _ => SendError::Closed(reason),
            }),
            _ => self.charge(None).malformed += 1,
        }
    }

    fn on_accept(&mut self, now: Instant, offer_pn: u32, confirm: &[u8; wire::CONFIRM_LEN]) {
        if let Some(expected) = self.expected_confirm
            && !constant_time_eq(&expected, confirm)
        {
            // Sealed under our keys yet not the receiver's proof: a broken peer.
            self.fail_session(SendError::AuthFailed);
            return;
        }
        let Some(&(_, t, file)) = self.offers_sent.iter().find(|(pn, ..)| *pn == offer_pn) else {
            return;
        };
        let Some(i) = self.file_index(file) else {
            return;
        };
        if self.files[i].accepted || !self.files[i].is_active() {
            return;
        }
        self.files[i].accepted = true;
        self.events.push_back(SenderEvent::Accepted { file });
        if self.phase == Phase::Established {
            // Only unanswered offers are looked up again: the list stays as short as the
            // files in flight.
            self.offers_sent.retain(|&(_, _, f)| f != file);
        }
        if self.phase != Phase::Offering {
            // An empty file has no chunk to acknowledge: its verdict is due at once.
            self.note_all_acked(now);
            return;
        }
        // The session's first ACCEPT: the receiver is proven, and the round trip measured.
        let sample = now.saturating_duration_since(t);
        self.rtt.update(sample, Duration::ZERO);
        self.rate.set_initial_rtt(now, sample);
        self.phase = Phase::Established;
        self.sent_after_accept = Some(self.next_pn);
        self.settle_first_flight(offer_pn);
        if self.in_flight == 0 {
            self.delivered_time = now;
            self.first_sent_time = now;
        }
        // Arms the probe timer even when there is no chunk to send (an empty file).
        self.last_eliciting = Some(now);
        self.note_all_acked(now);
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
        let recent = self.offers_sent.last().map(|(_, t, _)| *t);
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
                self.charge(Some(0)).lost += 1;
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
        let accepted = self.phase == Phase::Established;
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
            self.fail_session(SendError::AuthFailed);
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
                self.charge(None).malformed += 1;
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
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.sends() && f.accepted && f.offer.chunk_range().end <= ack.settled_below {
                self.all_held(i);
            }
        }
        self.detect_lost(now);
        self.trim_sent();
        self.note_all_acked(now);
    }

    /// Starts the wait for the verdict of each accepted file whose chunks are all acknowledged.
    fn note_all_acked(&mut self, now: Instant) {
        let pto = self.backed_off(1);
        for f in self.files.iter_mut() {
            if f.sends() && f.accepted && f.all_acked() && f.awaiting_since.is_none() {
                f.awaiting_since = Some(now);
                f.next_done_probe = Some(now + pto);
            }
        }
    }

    /// The receiver holds every chunk of file `i`, some rebuilt from repair symbols whose
    /// packets were never acknowledged: none is sent again.
    fn all_held(&mut self, i: usize) {
        let f = &mut self.files[i];
        if f.all_acked() {
            return;
        }
        let range = f.offer.chunk_range();
        self.retx.retain(|c| !range.contains(c));
        f.next_new = f.offer.chunk_count;
        let file = f.offer.file;
        for chunk in 0..f.offer.chunk_count {
            if f.mark_acked(chunk) {
                self.events.push_back(SenderEvent::ChunkAcked {
                    file,
                    chunk,
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
        let Some((i, chunk)) = p.chunk.and_then(|c| self.locate(c)) else {
            return;
        };
        let f = &mut self.files[i];
        // A receiver acknowledges a file's chunks only once it took the offer: this is
        // as good as its ACCEPT, which may have been lost.
        f.accepted = true;
        if !f.mark_acked(chunk) {
            f.stats.duplicates += 1;
            return;
        }
        let recovered = p.retransmit;
        if recovered {
            f.stats.recovered += 1;
        }
        let file = f.offer.file;
        self.events.push_back(SenderEvent::ChunkAcked {
            file,
            chunk,
            recovered,
        });
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
                let at = p.chunk.and_then(|c| self.locate(c)).map(|(f, _)| f);
                // Data of a file the receiver has not taken yet (its offer lost or late) was
                // dropped there, not on the path: no word on the path's loss.
                if at.is_none_or(|f| self.files[f].accepted) {
                    lost += 1;
                }
                self.charge(at).lost += 1;
                self.requeue_lost(pn, &p);
            } else {
                self.loss_time = Some(self.loss_time.map_or(deadline, |t| t.min(deadline)));
            }
        }
        if lost > 0 {
            self.rate.on_loss(lost);
        }
    }

    /// Takes a lost packet out of flight and queues its chunk again, unless the chunk was
    /// acknowledged meanwhile, travels in a newer packet, or its file has its verdict.
    fn requeue_lost(&mut self, pn: u32, p: &SentPacket) {
        self.in_flight = self.in_flight.saturating_sub(p.size as u64);
        let Some(global) = p.chunk else { return };
        let Some((i, chunk)) = self.locate(global) else {
            return;
        };
        let f = &mut self.files[i];
        if f.abandoned.is_some() {
            return;
        }
        let state = &mut f.chunks[chunk as usize];
        if !state.acked && state.latest_pn == Some(pn) && !state.queued {
            state.queued = true;
            self.retx.push_back(global);
            let file = f.offer.file;
            self.events
                .push_back(SenderEvent::ChunkLost { file, chunk });
        }
    }

    fn trim_sent(&mut self) {
        while let Some(None) = self.sent.front() {
            self.sent.pop_front();
            self.sent_base += 1;
        }
    }

    /// A file waits for its verdict: every chunk acknowledged, no DONE yet.
    fn awaiting_done(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.is_active() && f.awaiting_since.is_some())
    }

    fn pto_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Established {
            return None;
        }
        if self.in_flight == 0 && !self.awaiting_done() {
            return None;
        }
        let base = self.last_eliciting?;
        Some(base + self.backed_off(self.pto_count))
    }

    fn backed_off(&self, count: u32) -> Duration {
        let pto = self.rtt.pto(MAX_ACK_DELAY);
        (pto * (1 << count.min(MAX_PTO_BACKOFF))).min(MAX_PTO.max(pto))
    }

    /// When a verdict overdue while other data keeps the probe timer quiet is asked for.
    fn done_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Established {
            return None;
        }
        self.files
            .iter()
            .filter(|f| f.is_active())
            .filter_map(|f| f.next_done_probe)
            .min()
    }

    /// When a later file's unanswered offer is repeated.
    fn offer_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Established {
            return None;
        }
        self.files
            .iter()
            .filter(|f| f.is_active() && !f.accepted)
            .map(|f| f.next_offer)
            .min()
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
        consider(self.done_deadline());
        consider(self.offer_deadline());
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
            self.fail_session(SendError::NoAnswer(self.config.offer_timeout));
            return;
        }
        if now >= self.idle_deadline() {
            let idle = self.config.idle_timeout;
            for i in 0..self.files.len() {
                let e = if self.files[i].awaiting_since.is_some() {
                    SendError::NoVerdict(idle)
                } else {
                    SendError::ReceiverGone(idle)
                };
                self.conclude(i, Err(e));
            }
            self.phase = Phase::Finished;
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
            self.probes = if self.in_flight == 0 { 1 } else { 2 };
            // Restart the PTO clock from now, so one expiry sends one round of probes.
            self.last_eliciting = Some(now);
        }
        self.ask_for_verdicts(now);
        self.repeat_offers(now);
    }

    /// A PING for each verdict overdue: the receiver answers it with every DONE it keeps.
    /// An abandoned file's ABANDON goes again instead: the receiver answers it with DONE.
    fn ask_for_verdicts(&mut self, now: Instant) {
        if self.phase != Phase::Established {
            return;
        }
        let mut due = false;
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if !f.is_active() || f.next_done_probe.is_none_or(|t| now < t) {
                continue;
            }
            let wait = self.backed_off(f.done_probes + 2);
            let f = &mut self.files[i];
            f.done_probes += 1;
            f.next_done_probe = Some(now + wait);
            match &f.abandoned {
                Some(reason) => self.control.push_back(Body::Abandon {
                    file: f.offer.file,
                    first_chunk: f.offer.first_chunk,
                    chunk_count: f.offer.chunk_count,
                    reason: reason.clone(),
                }),
                None => due = true,
            }
        }
        if due {
            self.probes = self.probes.max(1);
        }
    }

    /// Repeats the offers of later files still unanswered. They are repeated for as long
    /// as the session lives: the receiver takes files only in order, so giving up on one
    /// would leave every later one unanswered too. A receiver that stops answering at all
    /// ends the session by the idle timeout.
    fn repeat_offers(&mut self, now: Instant) {
        if self.phase != Phase::Established {
            return;
        }
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if !f.is_active() || f.accepted {
                continue;
            }
            if now >= f.next_offer {
                let f = &mut self.files[i];
                f.next_offer = now + f.offer_backoff;
                f.offer_backoff = (f.offer_backoff * 2).min(Duration::from_secs(1));
                let body = Body::Offer(f.offer.clone());
                self.control.extend(std::iter::repeat_n(body, LOGIN_COPIES));
            }
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
        match self.phase {
            Phase::Finished => false,
            Phase::Offering if now < self.next_offer && !self.offers_sent.is_empty() => {
                // The first flight: data right behind the offer, within the initial window.
                self.transmit_data(now, buf)
            }
            Phase::Handshaking | Phase::Offering => self.transmit_login(now, buf),
            Phase::Established => self.transmit_data(now, buf),
        }
    }

    /// The next round of the login, when its timer says so: HELLOs, or the first file's
    /// confirmation and offer.
    fn transmit_login(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
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
        // Every round of the login goes out in copies, back to back: on a lossy path a lost
        // HELLO or offer would otherwise cost a whole timer.
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
        let offer = Body::Offer(self.files[0].offer.clone());
        // The confirmation rides with every offer until the receiver accepts, so a lost
        // CONFIRM costs one offer timer, not the session.
        let Some((confirm, token)) = self.confirm.clone() else {
            self.control
                .extend(std::iter::repeat_n(offer.clone(), LOGIN_COPIES - 1));
            self.emit(now, &offer, buf);
            return true;
        };
        // Confirmations first, then offers: an offer needs one confirmation ahead of it,
        // and the session's packet numbers then start with no gap in them.
        let confirm = Body::Confirm { confirm, token };
        self.control
            .extend(std::iter::repeat_n(confirm.clone(), LOGIN_COPIES - 1));
        self.control
            .extend(std::iter::repeat_n(offer, LOGIN_COPIES));
        self.emit(now, &confirm, buf);
        true
    }

    /// Encodes `body` under the next packet number with the session's protection.
    fn emit(&mut self, now: Instant, body: &Body<'_>, buf: &mut Vec<u8>) -> Header {
        let h = self.header(body.kind());
        let mut target = None;
        if let Body::Offer(o) = body {
            self.offers_sent.push((h.pn, now, o.file));
            target = self.file_index(o.file);
        }
        self.protection.encode(&h, body, buf);
        self.count_sent(target, buf.len());
        h
    }

    fn count_sent(&mut self, i: Option<usize>, len: usize) {
        let stats = self.charge(i);
        stats.datagrams_sent += 1;
        stats.wire_bytes_sent += len as u64;
    }

    fn transmit_data(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        if self.probes > 0 {
            self.probes -= 1;
            match self
                .oldest_unacked_in_flight()
                .or_else(|| self.next_chunk())
            {
                Some((c, retx)) => self.send_chunk(now, c, retx, buf),
                None => {
                    self.emit(now, &Body::Ping, buf);
                    self.last_eliciting = Some(now);
                }
            }
            return true;
        }
        let mss = self.config.max_datagram;
        if self.in_flight + mss as u64 > self.rate.window() {
            return false;
        }
        let new_left = self.files.iter().any(|f| f.sends() && f.has_new_ready());
        let repair_left = self
            .files
            .iter()
            .any(|f| f.is_active() && f.has_repair_left());
        if self.retx.is_empty() && !new_left && !repair_left {
            return false;
        }
        if let Some(t) = self.pacer.delay(now, self.rate.pacing_rate(), mss, mss) {
            self.pacing_wait = Some(t);
            return false;
        }
        if let Some((chunk, retx)) = self.next_chunk() {
            self.send_chunk(now, chunk, retx, buf);
            if let Some((i, _)) = self.locate(chunk) {
                let f = &self.files[i];
                if f.all_sent() && f.repair.is_none() {
                    let packets = self.in_flight.div_ceil(mss.max(1) as u64) as usize;
                    let loss = self.rate.loss_fraction();
                    self.files[i].plan_repair(packets, loss);
                }
            }
            return true;
        }
        self.send_repair(now, buf)
    }

    fn send_repair(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        let Some(i) = self
            .files
            .iter()
            .position(|f| f.is_active() && f.has_repair_left())
        else {
            return false;
        };
        let f = &mut self.files[i];
        let file = f.offer.file;
        let Some((block, queue)) = &mut f.repair else {
            return false;
        };
        let block = *block;
        let Some((index, symbol)) = queue.pop_front() else {
            return false;
        };
        let h = self.header(kind::REPAIR);
        let body = Body::Repair {
            file: file as u8,
            len: block.len,
            count: block.repairs as u8,
            index: index as u8,
            symbol: &symbol,
        };
        self.protection.encode(&h, &body, buf);
        self.files[i].stats.repaired += 1;
        self.record_sent(now, h.pn, None, false, buf.len());
        self.count_sent(Some(i), buf.len());
        true
    }

    /// The oldest chunk in flight not acknowledged yet, by session-wide number.
    fn oldest_unacked_in_flight(&self) -> Option<(u32, bool)> {
        self.sent.iter().flatten().find_map(|p| {
            let c = p.chunk?;
            let (i, local) = self.locate(c)?;
            let f = &self.files[i];
            (f.abandoned.is_none() && !f.chunks[local as usize].acked).then_some((c, true))
        })
    }

    /// The next chunk to send, by session-wide number: a lost one first, else the next new
    /// one of the oldest file with any left.
    fn next_chunk(&mut self) -> Option<(u32, bool)> {
        while let Some(c) = self.retx.pop_front() {
            let Some((i, local)) = self.locate(c) else {
                continue;
            };
            let state = &mut self.files[i].chunks[local as usize];
            state.queued = false;
            if !state.acked {
                return Some((c, true));
            }
        }
        let f = self
            .files
            .iter_mut()
            .find(|f| f.sends() && f.has_new_ready())?;
        let c = f.offer.first_chunk + f.next_new;
        f.next_new += 1;
        Some((c, false))
    }

    fn send_chunk(&mut self, now: Instant, global: u32, retransmit: bool, buf: &mut Vec<u8>) {
        let Some((i, chunk)) = self.locate(global) else {
            return;
        };
        let h = self.header(if retransmit {
            kind::DATA_RETX
        } else {
            kind::DATA
        });
        // Held until acknowledged (see `OutFile::mark_acked`), and new ones only once given.
        let payload = self.files[i].chunk_bytes(chunk).unwrap_or_default();
        debug_assert_eq!(Some(payload.len()), self.files[i].offer.chunk_len(chunk));
        self.protection.encode(
            &h,
            &Body::Data {
                chunk: global,
                retransmit,
                payload,
            },
            buf,
        );
        self.record_sent(now, h.pn, Some(global), retransmit, buf.len());
        self.count_sent(Some(i), buf.len());
        let f = &mut self.files[i];
        f.chunks[chunk as usize].latest_pn = Some(h.pn);
        if retransmit {
            f.stats.retransmitted += 1;
        }
        let file = f.offer.file;
        self.events.push_back(SenderEvent::ChunkSent {
            file,
            chunk,
            retransmit,
        });
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
        let app_limited = self.retx.is_empty()
            && self
                .files
                .iter()
                .all(|f| !f.is_active() || !f.has_new_ready());
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
    }
}
