//! The receiving side: one endpoint serving many senders at once, each a session keyed by
//! the sender's address and session id.
//!
//! Chunks are independent: any subset in any order is placed directly where it belongs (the
//! caller writes the [`Placement`] that [`Receiver::handle`] returns); duplicates are counted
//! and dropped. The receiver acknowledges packet-number ranges every few packets, at once when
//! it sees a gap, and within [`MAX_ACK_DELAY`] otherwise. When every chunk is held it asks the
//! caller to verify the content hash ([`ReceiverEvent::Complete`]) and reports the verdict to
//! the sender with DONE, which it repeats for a while to any late packet of that session.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::crypto::{Passphrase, Protection};
use super::fec;
use super::login::{ConfirmVerdict, HelloVerdict, LoginConfig, LoginDesk, budget_key};
use super::ranges::RangeSet;
use super::stats::TransferStats;
use super::wire::{self, Body, Header, Offer, Packet, WireError, kind};
use super::{MAX_ACK_DELAY, MAX_FILES_IN_FLIGHT};

/// Ranges of received packet numbers remembered per session.
const PN_RANGES_KEPT: usize = 256;
/// Finished sessions remembered (to repeat DONE), at most; past it the one that finished
/// first is forgotten.
pub const MAX_LINGERING: usize = 1024;
/// An address that has not proved it receives our replies gets at most this many times the
/// bytes it sent (QUIC's anti-amplification rule), so it cannot aim us at a victim.
pub const AMPLIFICATION_FACTOR: usize = 3;
/// Copies of a CLOSE this side sends: it is never repeated, so one loss must not hide it.
const CLOSE_COPIES: usize = 2;

/// Knobs for the receiving endpoint.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Largest image accepted, in bytes.
    pub max_size: u64,
    /// Most sessions receiving at once; further offers are refused as busy.
    pub max_sessions: usize,
    /// A session silent this long is dropped and its partial file discarded.
    pub idle_timeout: Duration,
    /// How long a finished session repeats its DONE to late packets.
    pub linger: Duration,
    /// Acknowledge after this many data packets at the latest.
    pub ack_every: u32,
    /// The shared passphrase; `None` accepts senders in clear (`--insecure`).
    pub passphrase: Option<Passphrase>,
    /// Handshakes one address may have outstanding (answered, not yet confirmed).
    pub max_handshakes: usize,
    /// Outstanding handshakes in all past which senders must return a cookie first.
    pub cookie_threshold: usize,
    /// An unconfirmed handshake stops counting against its address after this long.
    pub handshake_hold: Duration,
    /// Failed logins from one address within a minute before it must wait.
    pub max_failures: u32,
    /// Sessions one address may have receiving at once.
    pub max_sessions_per_addr: usize,
    /// A receiving session must gain at least this many bytes per second, averaged over
    /// each `progress_window`, or it is dropped to make room for others (0: never).
    pub min_rate: u64,
    /// The span over which `min_rate` is checked.
    pub progress_window: Duration,
    /// Key for address-validation cookies (random per run).
    pub cookie_secret: [u8; 32],
    /// Most bookkeeping memory one session may need (its chunk map grows with the chunk
    /// count, which a hostile offer could make huge with tiny chunks).
    pub max_session_memory: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            max_size: 512 * 1024 * 1024,
            max_sessions: 64,
            idle_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(20),
            ack_every: 4,
            passphrase: None,
            max_handshakes: 4,
            cookie_threshold: 32,
            handshake_hold: Duration::from_secs(2),
            max_failures: 5,
            max_sessions_per_addr: 8,
            min_rate: 1000,
            progress_window: Duration::from_secs(10),
            cookie_secret: rand::random(),
            max_session_memory: 1 << 20,
        }
    }
}

/// Names one session: who sent it and the id they picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The sender's address.
    pub peer: SocketAddr,
    /// The sender's session id.
    pub session: u64,
}

impl SessionKey {
    /// The key of file `file` of this session.
    pub fn file(self, file: u32) -> FileKey {
        FileKey {
            peer: self.peer,
            session: self.session,
            file,
        }
    }
}

/// Names one file of a session: events and storage are per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The sender's address.
    pub peer: SocketAddr,
    /// The sender's session id.
    pub session: u64,
    /// The file's place in the session ([`Offer::file`]).
    pub file: u32,
}

impl FileKey {
    /// The session the file travels in.
    pub fn session_key(self) -> SessionKey {
        SessionKey {
            peer: self.peer,
            session: self.session,
        }
    }
}

/// A chunk to store: the caller writes `data` at `offset` of the file's storage.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    /// The file the chunk belongs to.
    pub key: FileKey,
    /// Chunk index within the file.
    pub chunk: u32,
    /// Byte offset in the file.
    pub offset: u64,
    /// The chunk's bytes, borrowed from the datagram.
    pub data: &'a [u8],
    /// True when a retransmission delivered it.
    pub recovered: bool,
}

/// What the receiver reports to its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverEvent {
    /// A file's offer was accepted: prepare storage for `offer`.
    Accepted {
        /// The file.
        key: FileKey,
        /// What will arrive.
        offer: Offer,
    },
    /// An offer was refused (logged, nothing to store).
    Refused {
        /// Who offered.
        peer: SocketAddr,
        /// Why it was refused.
        reason: String,
    },
    /// A chunk arrived again; it was dropped.
    Duplicate {
        /// The file.
        key: FileKey,
        /// Chunk index within the file.
        chunk: u32,
    },
    /// Repair symbols rebuilt a chunk that never came: store `data` at `offset` like a
    /// [`Placement`]'s.
    Repaired {
        /// The file.
        key: FileKey,
        /// Chunk index within the file.
        chunk: u32,
        /// Byte offset in the file.
        offset: u64,
        /// The chunk's bytes.
        data: Vec<u8>,
    },
    /// Every chunk of a file is held: verify the hash, then call [`Receiver::finish`].
    Complete {
        /// The file.
        key: FileKey,
    },
    /// A sender proved it does not know the passphrase (logged; it is slowed down).
    AuthFailed {
        /// Who tried.
        peer: SocketAddr,
    },
    /// A file ended without being kept: discard what was stored.
    Failed {
        /// The file.
        key: FileKey,
        /// Why.
        reason: String,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Counters for the whole endpoint (not tied to one session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams that failed to decode, dropped.
    pub malformed: u64,
    /// Valid datagrams naming no session this receiver knows.
    pub unknown_session: u64,
    /// Offers refused.
    pub refused: u64,
    /// Files that completed with a verified hash.
    pub completed: u64,
    /// Files that failed.
    pub failed: u64,
    /// Sealed datagrams that failed authentication (forged, corrupted, foreign).
    pub unauthentic: u64,
    /// Sealed datagrams whose packet number was seen before.
    pub replayed: u64,
    /// Key confirmations that did not match (wrong passphrase), plus handshakes a proven
    /// address took a reply for and never confirmed.
    pub auth_failures: u64,
    /// Handshakes refused because their address failed too often.
    pub throttled: u64,
    /// Cookies sent to make a sender prove its address.
    pub retries_sent: u64,
    /// HELLOs dropped because their address had too many handshakes outstanding.
    pub handshakes_dropped: u64,
    /// CONFIRMs whose token was not ours for that address (forged, expired, blind): dropped
    /// without counting against anyone.
    pub bad_tokens: u64,
    /// Sessions dropped for making too little progress.
    pub too_slow: u64,
    /// HELLOs and CONFIRMs of a login already through (late or repeated copies): dropped.
    pub late_handshakes: u64,
    /// SPAKE2 computations done.
    pub pake_runs: u64,
    /// Replies to an unvalidated address that would have exceeded 3x what it sent: refusals
    /// cut short to fit (their code intact), anything else withheld.
    pub amplification_limited: u64,
}

#[derive(Debug)]
enum Phase {
    Receiving,
    Verifying,
    Finished { status: u8, message: String },
}

/// One file of a session, from its offer until it is forgotten.
#[derive(Debug)]
struct FileState {
    offer: Offer,
    held: Vec<u64>,
    held_count: u32,
    phase: Phase,
    /// The file's last chunks and their repair symbols, for forward error correction.
    tail: fec::Tail,
    /// The session's loss count when the file began: its own is what came after.
    lost_base: u64,
    stats: TransferStats,
}

impl FileState {
    fn new(offer: Offer, lost_base: u64) -> Self {
        let words = (offer.chunk_count as usize).div_ceil(64);
        let stats = TransferStats {
            bytes: offer.size,
            chunks: offer.chunk_count,
            ..TransferStats::default()
        };
        Self {
            held: vec![0; words],
            held_count: 0,
            phase: if offer.chunk_count == 0 {
                Phase::Verifying
            } else {
                Phase::Receiving
            },
            tail: fec::Tail::new(offer.chunk_count, offer.chunk_size),
            lost_base,
            stats,
            offer,
        }
    }

    /// A file refused at its offer: settled at once, with the verdict its DONE repeats.
    fn refused(offer: Offer, message: String) -> Self {
        let mut f = Self::new(offer, 0);
        f.held = Vec::new();
        // Nothing of it is coming: the session's totals count no size for it.
        f.stats.bytes = 0;
        f.stats.chunks = 0;
        f.phase = Phase::Finished {
            status: wire::done::REFUSED,
            message,
        };
        f
    }

    /// A file the sender abandoned before its offer came: it takes its place and chunk
    /// numbers in the session, and only its verdict is kept.
    fn abandoned(file: u32, chunks: std::ops::Range<u32>, message: String) -> Self {
        let offer = Offer {
            name: String::new(),
            size: 0,
            chunk_size: 1,
            chunk_count: 0,
            blake3: [0; 32],
            format: String::new(),
            width: 0,
            height: 0,
            file,
            first_chunk: chunks.start,
        };
        // Made empty, so no chunk map is sized by what the sender claims.
        let mut f = Self::refused(offer, message);
        f.offer.chunk_count = chunks.end - chunks.start;
        if let Phase::Finished { status, .. } = &mut f.phase {
            *status = wire::done::ABANDONED;
        }
        f
    }

    fn is_held(&self, chunk: u32) -> bool {
        self.held[(chunk / 64) as usize] & (1 << (chunk % 64)) != 0
    }

    fn set_held(&mut self, chunk: u32) {
        self.held[(chunk / 64) as usize] |= 1 << (chunk % 64);
        self.held_count += 1;
    }

    fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Finished { .. })
    }

    /// Nothing more is needed of the sender for it: every chunk held, or a verdict given.
    fn is_settled(&self) -> bool {
        !matches!(self.phase, Phase::Receiving)
    }
}

#[derive(Debug)]
struct Session {
    /// Files in the order offered: the active ones and the last few finished, kept to
    /// repeat their DONE.
    files: VecDeque<FileState>,
    /// The place the next new file must have.
    next_file: u32,
    /// The first session-wide chunk number the next new file must take.
    next_chunk: u32,
    pns: RangeSet,
    base_pn: u32,
    distinct_pns: u64,
    largest_time: Instant,
    unacked: u32,
    ack_deadline: Option<Instant>,
    ack_queued: bool,
    next_pn: u32,
    last_recv: Instant,
    /// When its last active file finished; `None` while one is active. A session with no
    /// active file lingers: it repeats DONE, and a next offer brings it back.
    finished_at: Option<Instant>,
    protection: Protection,
    confirm: [u8; wire::CONFIRM_LEN],
    progress_start: Instant,
    /// Bytes of new chunks held since the session began, and as of the window's start.
    progress_bytes: u64,
    progress_base: u64,
    /// Bytes of every datagram that came for this session, its OFFER included.
    bytes_in: u64,
    /// Traffic of no file still kept: the files forgotten, and what came after them.
    stats: TransferStats,
}

/// Bytes each ACK range after the first takes (gap u32, length u32).
const ACK_RANGE_BYTES: u64 = 8;
/// Ranges an ACK reports, newest first. Every range is repeated in the ACKs that follow
/// until newer holes push it out, which is many ACKs on any path worth using, so a lost ACK
/// costs nothing; the sender has long decided on older packets by then. More would only
/// fill the way back: at 10 % loss all 65 the wire allows made ACKs 60 % of what the
/// receiver sent.
const ACK_RANGES_REPORTED: usize = 16;

impl Session {
    /// Bytes this session may still send: any number once the sender proved its address
    /// (a sealed session: its login token came back), else [`AMPLIFICATION_FACTOR`] times
    /// what came for it less what went out, since an `--insecure` session may have been
    /// opened in someone else's name.
    fn allowance(&self) -> u64 {
        if self.protection.is_sealed() {
            return u64::MAX;
        }
        let factor = AMPLIFICATION_FACTOR as u64;
        let sent = self.stats.wire_bytes_sent
            + self
                .files
                .iter()
                .map(|f| f.stats.wire_bytes_sent)
                .sum::<u64>();
        self.bytes_in.saturating_mul(factor).saturating_sub(sent)
    }

    fn file_index(&self, file: u32) -> Option<usize> {
        self.files.iter().position(|f| f.offer.file == file)
    }

    /// The file a session-wide chunk number falls in, if it is still kept.
    fn file_of_chunk(&self, chunk: u32) -> Option<usize> {
        self.files
            .iter()
            .position(|f| f.offer.chunk_range().contains(&chunk))
    }

    fn has_active(&self) -> bool {
        self.files.iter().any(FileState::is_active)
    }

    /// The counters a datagram of no particular file goes to: the oldest active file's,
    /// else the newest file's, else the session's own.
    fn current_stats(&mut self) -> &mut TransferStats {
        let i = self
            .files
            .iter()
            .position(FileState::is_active)
            .or(self.files.len().checked_sub(1));
        match i {
            Some(i) => &mut self.files[i].stats,
            None => &mut self.stats,
        }
    }

    /// The counters of file `i`, or [`Session::current_stats`].
    fn stats_for(&mut self, i: Option<usize>) -> &mut TransferStats {
        match i {
            Some(i) if i < self.files.len() => &mut self.files[i].stats,
            _ => self.current_stats(),
        }
    }

    /// Every session-wide chunk below this is settled ([`wire::Ack::settled_below`]).
    fn settled_below(&self) -> u32 {
        self.files
            .iter()
            .find(|f| !f.is_settled())
            .map_or(self.next_chunk, |f| f.offer.first_chunk)
    }

    /// Packets lost on the way here since the first OFFER, by the gaps in their numbers.
    fn lost(&self) -> u64 {
        let seen = self
            .pns
            .largest()
            .map_or(0, |l| u64::from(l.saturating_sub(self.base_pn)) + 1);
        seen.saturating_sub(self.distinct_pns)
    }

    fn encode(&self, key: SessionKey, body: &Body<'_>) -> Vec<u8> {
        let h = Header {
            kind: body.kind(),
            session: key.session,
            pn: self.next_pn,
        };
        let mut out = Vec::with_capacity(64);
        self.protection.encode(&h, body, &mut out);
        out
    }

    /// Encodes `body` under the session's next packet number and protection, counted to
    /// file `i` (or the current one); `None` when that would exceed
    /// [`Session::allowance`].
    fn emit(&mut self, key: SessionKey, body: &Body<'_>, i: Option<usize>) -> Option<Vec<u8>> {
        let out = self.encode(key, body);
        if out.len() as u64 > self.allowance() {
            return None;
        }
        self.next_pn = self.next_pn.wrapping_add(1);
        let stats = self.stats_for(i);
        stats.datagrams_sent += 1;
        stats.wire_bytes_sent += out.len() as u64;
        Some(out)
    }

    /// Queues `body` for the sender, or counts it in `limited` when it is over budget.
    fn send(
        &mut self,
        key: SessionKey,
        body: &Body<'_>,
        i: Option<usize>,
        outbox: &mut VecDeque<Transmit>,
        limited: &mut u64,
    ) {
        match self.emit(key, body, i) {
            Some(payload) => outbox.push_back(Transmit {
                dest: key.peer,
                payload,
            }),
            None => *limited += 1,
        }
    }

    /// Queues file `i`'s DONE again, if it has its verdict.
    fn send_done(
        &mut self,
        key: SessionKey,
        i: usize,
        outbox: &mut VecDeque<Transmit>,
        limited: &mut u64,
    ) {
        let Some(f) = self.files.get(i) else { return };
        let Phase::Finished { status, message } = &f.phase else {
            return;
        };
        let body = Body::Done {
            file: f.offer.file,
            status: *status,
            blake3: f.offer.blake3,
            message: message.clone(),
        };
        self.send(key, &body, Some(i), outbox, limited);
    }

    /// An ACK of the newest ranges, as many as [`Session::allowance`] pays for.
    fn ack(&mut self, key: SessionKey, now: Instant, limited: &mut u64) -> Option<Vec<u8>> {
        let delay = now.saturating_duration_since(self.largest_time);
        let mut ack = wire::Ack {
            ack_delay_us: delay.as_micros().min(u128::from(u32::MAX)) as u32,
            settled_below: self.settled_below(),
            ranges: self.pns.newest(ACK_RANGES_REPORTED),
        };
        let room = self.allowance();
        if room != u64::MAX {
            let len = self.encode(key, &Body::Ack(ack.clone())).len() as u64;
            if len > room {
                *limited += 1;
                let over = (len - room).div_ceil(ACK_RANGE_BYTES) as usize;
                let keep = ack.ranges.len().saturating_sub(over).max(1);
                ack.ranges.truncate(keep);
                return self.emit(key, &Body::Ack(ack), None);
            }
        }
        let payload = self.emit(key, &Body::Ack(ack), None);
        *limited += u64::from(payload.is_none());
        payload
    }

    /// Forgets the finished files the sender can no longer ask about: it keeps at most
    /// [`MAX_FILES_IN_FLIGHT`] files without a verdict, so once it offered that many after
    /// one, it had that one's DONE.
    fn forget_old_files(&mut self) {
        let horizon = self.next_file.saturating_sub(MAX_FILES_IN_FLIGHT as u32);
        while let Some(i) = self
            .files
            .iter()
            .position(|f| !f.is_active() && f.offer.file < horizon)
        {
            if let Some(f) = self.files.remove(i) {
                // Its counters stay in the session's, so the session's totals stay whole.
                let mut st = f.stats;
                st.chunks_done = f.held_count;
                self.stats.add(&st);
            }
        }
    }
}

/// How many refusals of unauthenticated senders reach the log: a few per second.
#[derive(Debug, Default)]
struct NoticeBudget {
    window: Option<Instant>,
    used: u32,
}

impl NoticeBudget {
    const PER_SECOND: u32 = 10;

    fn allow(&mut self, now: Instant) -> bool {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.used = 0;
        }
        self.used += 1;
        self.used <= Self::PER_SECOND
    }
}

fn throttle_reason(peer: SocketAddr, wait: Duration) -> String {
    format!(
        "too many failed logins from {}; try again in {} s",
        peer.ip(),
        wait.as_secs_f64().ceil().max(1.0)
    )
}

/// Bytes a session needs besides the file itself: the chunk map plus fixed-size state
/// (received packet ranges, replay window, counters).
pub fn session_memory(offer: &Offer) -> usize {
    const FIXED: usize = PN_RANGES_KEPT * 8 + 512 + 1024;
    (offer.chunk_count as usize).div_ceil(64) * 8 + FIXED
}

/// The receiving endpoint.
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    sessions: HashMap<SessionKey, Session>,
    desk: LoginDesk,
    /// The `now` of the datagram being handled.
    clock: Option<Instant>,
    notices: NoticeBudget,
    epoch: Option<Instant>,
    outbox: VecDeque<Transmit>,
    ack_queue: VecDeque<SessionKey>,
    events: VecDeque<ReceiverEvent>,
    stats: EndpointStats,
}

impl Receiver {
    /// A receiver with no sessions.
    pub fn new(config: ReceiverConfig) -> Self {
        let desk = LoginDesk::new(
            LoginConfig {
                max_handshakes: config.max_handshakes.max(1),
                cookie_threshold: config.cookie_threshold,
                hold: config.handshake_hold,
                max_failures: config.max_failures.max(1),
            },
            &config.cookie_secret,
        );
        Self {
            desk,
            clock: None,
            notices: NoticeBudget::default(),
            config,
            sessions: HashMap::new(),
            epoch: None,
            outbox: VecDeque::new(),
            ack_queue: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// Endpoint-wide counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// A file's figures, while the receiver remembers it.
    pub fn session_stats(&self, key: &FileKey) -> Option<TransferStats> {
        let s = self.sessions.get(&key.session_key())?;
        let f = &s.files[s.file_index(key.file)?];
        let mut st = f.stats.clone();
        st.chunks_done = f.held_count;
        if f.is_active() {
            st.lost = s.lost().saturating_sub(f.lost_base);
        }
        Some(st)
    }

    /// The counters of a whole session, its files' summed, while the receiver remembers it.
    pub fn session_totals(&self, key: &SessionKey) -> Option<TransferStats> {
        let s = self.sessions.get(key)?;
        let mut total = s.stats.clone();
        for f in &s.files {
            total.add(&f.stats);
            total.chunks_done += f.held_count;
        }
        total.lost = s.lost();
        Some(total)
    }

    /// A file's offer, while the receiver remembers it.
    pub fn session_offer(&self, key: &FileKey) -> Option<&Offer> {
        let s = self.sessions.get(&key.session_key())?;
        Some(&s.files[s.file_index(key.file)?].offer)
    }

    /// True while a file waits for [`Receiver::finish`].
    pub fn is_verifying(&self, key: &FileKey) -> bool {
        self.sessions.get(&key.session_key()).is_some_and(|s| {
            s.file_index(key.file)
                .is_some_and(|i| matches!(s.files[i].phase, Phase::Verifying))
        })
    }

    /// Sessions with no file in flight, remembered to repeat their DONE (at most
    /// [`MAX_LINGERING`]).
    pub fn lingering_sessions(&self) -> usize {
        self.sessions.len() - self.active_sessions()
    }

    /// Sessions with a file still receiving or verifying.
    pub fn active_sessions(&self) -> usize {
        self.sessions.values().filter(|s| s.has_active()).count()
    }

    /// Next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }

    /// Feeds one datagram from `peer` (decrypted in place when sealed). Returns the chunk to
    /// store, if it carried a new one.
    pub fn handle<'a>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &'a mut [u8],
    ) -> Option<Placement<'a>> {
        let epoch = *self.epoch.get_or_insert(now);
        self.clock = Some(now);
        let Ok(header) = wire::decode_header(datagram) else {
            self.stats.malformed += 1;
            return None;
        };
        let key = SessionKey {
            peer,
            session: header.session,
        };
        if matches!(header.kind, kind::HELLO | kind::CONFIRM) {
            self.on_handshake(now, epoch, key, datagram);
            return None;
        }
        if !self.sessions.contains_key(&key) {
            if header.kind == kind::OFFER {
                self.on_new_offer(now, key, datagram);
            } else {
                // No session: the receiver restarted or forgot it, or the first flight's data
                // overtook a lost offer. "Unknown session" tells the sender either way (before
                // ACCEPT it repeats its offer at once).
                self.on_unknown(key, &header, datagram.len());
            }
            return None;
        }
        let s = self.sessions.get_mut(&key)?;
        s.bytes_in += datagram.len() as u64;
        let (packet, sealed) = match s.protection.decode(datagram) {
            Ok(v) => v,
            Err(e) => {
                s.current_stats().malformed += 1;
                match e {
                    WireError::Unauthentic => self.stats.unauthentic += 1,
                    WireError::Replayed => self.stats.replayed += 1,
                    _ => self.stats.malformed += 1,
                }
                return None;
            }
        };
        if s.protection.is_sealed() && !sealed {
            // A forged clear REFUSE or CLOSE: only the sender's keys may speak for it.
            self.stats.unauthentic += 1;
            return None;
        }
        s.last_recv = now;
        let target = match &packet.body {
            Body::Data { chunk, .. } => s.file_of_chunk(*chunk),
            Body::Repair { file, .. } => s.files.iter().position(|f| f.offer.file as u8 == *file),
            Body::Offer(o) => s.file_index(o.file),
            Body::Abandon { file, .. } => s.file_index(*file),
            _ => None,
        };
        if target.is_none() && matches!(packet.body, Body::Data { .. } | Body::Repair { .. }) {
            // A file whose offer has not come (lost, or overtaken): neither used nor
            // acknowledged, so the sender sends it again once the offer is through.
            s.current_stats().datagrams_received += 1;
            return None;
        }
        if target.is_some() || !matches!(packet.body, Body::Offer(_)) {
            // A next file's OFFER is counted to that file once it exists.
            s.stats_for(target).datagrams_received += 1;
        }
        let pn = packet.header.pn;
        let prev_largest = s.pns.largest();
        let fresh = s.pns.insert(pn);
        if fresh {
            s.distinct_pns += 1;
        }
        // Anything but the packet right after the previous largest means a gap or reordering:
        // acknowledge at once so the sender repairs quickly.
        let in_order = fresh && prev_largest.is_some_and(|l| l.checked_add(1) == Some(pn));
        if fresh && s.pns.largest() == Some(pn) {
            s.largest_time = now;
        }
        let limited = &mut self.stats.amplification_limited;
        match (packet.body, target) {
            (
                Body::Data {
                    chunk,
                    retransmit,
                    payload,
                },
                Some(i),
            ) => {
                let f = &mut s.files[i];
                let fkey = key.file(f.offer.file);
                if retransmit {
                    f.stats.retransmitted += 1;
                }
                let local = chunk - f.offer.first_chunk;
                let placement =
                    Self::on_data(f, fkey, local, retransmit, payload, &mut self.events);
                if !f.is_active() {
                    s.send_done(key, i, &mut self.outbox, limited);
                    return None;
                }
                let mut gained = u32::from(placement.is_some());
                if placement.is_some() {
                    gained += Self::rebuild(f, fkey, &mut self.events);
                }
                s.progress_bytes += u64::from(gained) * u64::from(f.offer.chunk_size);
                let complete = gained > 0 && f.held_count == f.offer.chunk_count;
                self.after_chunk(now, key, i, complete, in_order);
                placement
            }
            (
                Body::Repair {
                    len,
                    count,
                    index,
                    symbol,
                    ..
                },
                Some(i),
            ) => {
                let f = &mut s.files[i];
                let fkey = key.file(f.offer.file);
                if !f.is_active() {
                    s.send_done(key, i, &mut self.outbox, limited);
                    return None;
                }
                let block = fec::Block {
                    start: f.offer.chunk_count.saturating_sub(u32::from(len)),
                    len,
                    repairs: u16::from(count),
                };
                let receiving = matches!(f.phase, Phase::Receiving);
                let taken = f.tail.add_symbol(block, u16::from(index), symbol);
                if receiving && taken == Err(fec::SymbolError::Invalid) {
                    f.stats.malformed += 1;
                }
                let rebuilt = if receiving {
                    Self::rebuild(f, fkey, &mut self.events)
                } else {
                    0
                };
                s.progress_bytes += u64::from(rebuilt) * u64::from(f.offer.chunk_size);
                let complete = rebuilt > 0 && f.held_count == f.offer.chunk_count;
                self.after_chunk(now, key, i, complete, in_order);
                None
            }
            (Body::Ping, _) => {
                // A sender probing for verdicts it may have missed: every one kept, and an
                // ACK while anything is in flight.
                for i in 0..s.files.len() {
                    s.send_done(key, i, &mut self.outbox, limited);
                }
                if s.has_active() {
                    Self::queue_ack(s, key, &mut self.ack_queue);
                }
                None
            }
            (Body::Offer(offer), _) => {
                self.on_offer_in_session(now, key, offer, pn);
                None
            }
            (
                Body::Abandon {
                    file,
                    first_chunk,
                    chunk_count,
                    reason,
                },
                _,
            ) => {
                self.on_abandon(
                    now,
                    key,
                    file,
                    first_chunk..first_chunk + chunk_count,
                    &reason,
                );
                None
            }
            (Body::Close { code, reason }, _) => {
                let reason = if code == wire::reason::CANCELLED {
                    format!("cancelled by the sender: {reason}")
                } else {
                    format!("sender closed the session: {reason}")
                };
                self.end_session(key, &reason);
                None
            }
            _ => {
                s.current_stats().malformed += 1;
                None
            }
        }
    }

    /// Forgets a session, failing each of its files still in flight with `reason`.
    fn end_session(&mut self, key: SessionKey, reason: &str) -> Option<Session> {
        let s = self.sessions.remove(&key)?;
        for f in s.files.iter().filter(|f| f.is_active()) {
            self.stats.failed += 1;
            self.events.push_back(ReceiverEvent::Failed {
                key: key.file(f.offer.file),
                reason: reason.to_owned(),
            });
        }
        Some(s)
    }

    /// The sender gave up one file (its user cancelled it), which ends it here too: one in
    /// flight fails (the caller discards what it stored) and DONE `ABANDONED` answers; one
    /// whose offer never came is stepped past, so the next file is in line; one with its
    /// verdict already gets that verdict again (it may have been kept before the sender
    /// gave up). The sender repeats ABANDON until a DONE comes.
    fn on_abandon(
        &mut self,
        now: Instant,
        key: SessionKey,
        file: u32,
        chunks: std::ops::Range<u32>,
        reason: &str,
    ) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let limited = &mut self.stats.amplification_limited;
        let message = format!("cancelled by the sender: {reason}");
        match s.file_index(file) {
            Some(i) if s.files[i].is_active() => {
                self.events.push_back(ReceiverEvent::Failed {
                    key: key.file(file),
                    reason: message.clone(),
                });
                self.finish(now, key.file(file), Err((wire::done::ABANDONED, message)));
            }
            Some(i) => s.send_done(key, i, &mut self.outbox, limited),
            None if file == s.next_file && chunks.start == s.next_chunk => {
                s.next_file += 1;
                s.next_chunk = chunks.end;
                s.files
                    .push_back(FileState::abandoned(file, chunks, message));
                self.stats.failed += 1;
                let i = s.files.len() - 1;
                s.send_done(key, i, &mut self.outbox, limited);
                s.forget_old_files();
            }
            // Forgotten long ago (the sender had its verdict), or not the next in line.
            None if file < s.next_file => {}
            None => s.current_stats().malformed += 1,
        }
    }

    /// An OFFER in a session already going: a repeat (our ACCEPT was lost), or the
    /// session's next file.
    fn on_offer_in_session(&mut self, now: Instant, key: SessionKey, offer: Offer, pn: u32) {
        let ip = key.peer.ip();
        let Some(s) = self.sessions.get(&key) else {
            return;
        };
        let (next_file, next_chunk, active) = (
            s.next_file,
            s.next_chunk,
            s.files.iter().filter(|f| f.is_active()).count(),
        );
        let fresh_session = !s.has_active();
        if offer.file < next_file {
            self.repeat_accept(key, offer.file, pn);
            return;
        }
        if offer.file > next_file || offer.first_chunk != next_chunk {
            // Not the next file in line: a broken sender. Its offer is not kept.
            if let Some(s) = self.sessions.get_mut(&key) {
                s.current_stats().malformed += 1;
            }
            return;
        }
        let verdict = if active >= MAX_FILES_IN_FLIGHT {
            Err(format!(
                "{active} files of this session are already in flight, the most a receiver \
                 takes ({MAX_FILES_IN_FLIGHT})"
            ))
        } else {
            self.check_limits(&offer, ip, fresh_session)
                .map_err(|(_, reason)| reason)
        };
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        s.next_file += 1;
        s.next_chunk = offer.chunk_range().end;
        let fkey = key.file(offer.file);
        let limited = &mut self.stats.amplification_limited;
        match verdict {
            Err(reason) => {
                self.stats.refused += 1;
                s.files.push_back(FileState::refused(offer, reason.clone()));
                let i = s.files.len() - 1;
                s.files[i].stats.datagrams_received += 1;
                s.send_done(key, i, &mut self.outbox, limited);
                s.forget_old_files();
                self.events.push_back(ReceiverEvent::Refused {
                    peer: key.peer,
                    reason,
                });
            }
            Ok(()) => {
                let empty = offer.chunk_count == 0;
                let lost = s.lost();
                s.files.push_back(FileState::new(offer.clone(), lost));
                if fresh_session {
                    // A session taken up again after a pause: its progress window starts
                    // now. One still receiving keeps its window, so that offering (empty)
                    // files cannot hide a file that makes no progress.
                    s.progress_start = now;
                    s.progress_base = s.progress_bytes;
                }
                s.finished_at = None;
                let i = s.files.len() - 1;
                s.files[i].stats.datagrams_received += 1;
                let accept = Body::Accept {
                    offer_pn: pn,
                    confirm: s.confirm,
                };
                s.send(key, &accept, Some(i), &mut self.outbox, limited);
                s.forget_old_files();
                self.events
                    .push_back(ReceiverEvent::Accepted { key: fkey, offer });
                if empty {
                    self.events.push_back(ReceiverEvent::Complete { key: fkey });
                }
            }
        }
    }

    /// Answers a repeated offer of a file still kept: ACCEPT again (ours was lost; the
    /// sender trusts nothing else of ours before it), then DONE if the verdict is in.
    fn repeat_accept(&mut self, key: SessionKey, file: u32, pn: u32) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(i) = s.file_index(file) else { return };
        let limited = &mut self.stats.amplification_limited;
        if matches!(s.files[i].phase, Phase::Finished { status, .. } if status == wire::done::REFUSED)
        {
            s.send_done(key, i, &mut self.outbox, limited);
            return;
        }
        let accept = Body::Accept {
            offer_pn: pn,
            confirm: s.confirm,
        };
        s.send(key, &accept, Some(i), &mut self.outbox, limited);
        s.send_done(key, i, &mut self.outbox, limited);
    }

    fn on_unknown(&mut self, key: SessionKey, header: &Header, len: usize) {
        self.stats.unknown_session += 1;
        if matches!(header.kind, kind::DATA | kind::DATA_RETX | kind::PING) {
            // Tell a sender we forgot (restart, timeout) so it fails fast, not after a timer.
            // The packet number is the one of the datagram answered, so the sender can tell
            // an answer to its first flight (sent before we had the offer) from a real loss.
            let body = Body::Close {
                code: wire::reason::UNKNOWN_SESSION,
                reason: String::new(),
            };
            self.send_clear(key, header.pn, &body, Some(len));
        }
    }

    fn refuse(&mut self, key: SessionKey, code: u8, reason: String, request_len: usize) {
        self.stats.refused += 1;
        let body = Body::Refuse {
            code,
            reason: reason.clone(),
        };
        self.send_clear(key, 0, &body, Some(request_len));
        // Anyone can make these with forged addresses: a few a second reach the log.
        if self.clock.is_some_and(|now| self.notices.allow(now)) {
            self.events.push_back(ReceiverEvent::Refused {
                peer: key.peer,
                reason,
            });
        }
    }

    fn on_handshake(&mut self, now: Instant, epoch: Instant, key: SessionKey, datagram: &mut [u8]) {
        let len = datagram.len();
        let Ok(packet) = wire::decode(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(pass) = self.config.passphrase.clone() else {
            if matches!(packet.body, Body::Hello { .. }) {
                if len < wire::MIN_HELLO_DATAGRAM {
                    // Unpadded: no sender of ours made it, and it validates nothing.
                    self.stats.malformed += 1;
                    return;
                }
                let reason = "receiver runs without a passphrase (--insecure); \
                              pass --insecure to the sender too"
                    .to_owned();
                self.refuse(key, wire::reason::MODE_MISMATCH, reason, len);
            } else {
                // A CONFIRM or a cookie's reply with no login of ours to belong to.
                self.stats.malformed += 1;
            }
            return;
        };
        if self.sessions.contains_key(&key) || self.desk.has_login(&key) {
            // A late or repeated HELLO or CONFIRM of a login that already went through.
            self.stats.late_handshakes += 1;
            return;
        }
        let now_secs = now.saturating_duration_since(epoch).as_secs() as u32;
        match packet.body {
            Body::Hello { pake, cookie } if len >= wire::MIN_HELLO_DATAGRAM => {
                self.on_hello(now, now_secs, key, &pass, &pake, &cookie, len);
            }
            Body::Confirm { confirm, token } => {
                self.on_confirm(now, now_secs, key, &confirm, &token);
            }
            _ => self.stats.malformed += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_hello(
        &mut self,
        now: Instant,
        now_secs: u32,
        key: SessionKey,
        pass: &Passphrase,
        pake: &[u8; wire::PAKE_LEN],
        cookie: &[u8],
        len: usize,
    ) {
        let verdict = self.desk.hello(now, now_secs, key, pass, pake, cookie);
        self.stats.auth_failures += self.desk.take_abandoned();
        match verdict {
            HelloVerdict::Reply { pake, token } => {
                self.stats.pake_runs += 1;
                let body = Body::HelloReply {
                    pake,
                    token: token.to_vec(),
                };
                self.send_clear(key, 0, &body, Some(len));
            }
            HelloVerdict::Retry(cookie) => {
                self.stats.retries_sent += 1;
                let body = Body::Retry {
                    cookie: cookie.to_vec(),
                };
                self.send_clear(key, 0, &body, Some(len));
            }
            HelloVerdict::Throttled(wait) => {
                self.stats.throttled += 1;
                let body = Body::Refuse {
                    code: wire::reason::THROTTLED,
                    reason: throttle_reason(key.peer, wait),
                };
                self.stats.refused += 1;
                self.send_clear(key, 0, &body, Some(len));
            }
            HelloVerdict::OverBudget => self.stats.handshakes_dropped += 1,
            HelloVerdict::Malformed => {
                // The work was done before the message proved bad: it counts as work.
                self.stats.pake_runs += 1;
                self.stats.malformed += 1;
            }
        }
    }

    fn on_confirm(
        &mut self,
        now: Instant,
        now_secs: u32,
        key: SessionKey,
        confirm: &[u8; wire::CONFIRM_LEN],
        token: &[u8],
    ) {
        let verdict = self.desk.confirm(now, now_secs, key, confirm, token);
        self.stats.auth_failures += self.desk.take_abandoned();
        match verdict {
            ConfirmVerdict::LoggedIn(login) => self.desk.keep_login(key, *login),
            ConfirmVerdict::BadToken => self.stats.bad_tokens += 1,
            ConfirmVerdict::Replayed => self.stats.replayed += 1,
            ConfirmVerdict::Failed { counted } => {
                // The token proved the address receives our replies: this one is its own.
                if counted {
                    self.stats.auth_failures += 1;
                    self.events
                        .push_back(ReceiverEvent::AuthFailed { peer: key.peer });
                }
                let reason = "wrong passphrase: the receiver's passphrase is different \
                              (case and the separators between words do not matter)"
                    .to_owned();
                self.send_refusal(key, wire::reason::AUTH_FAILED, reason);
            }
            ConfirmVerdict::Throttled(wait) => {
                self.stats.throttled += 1;
                let reason = throttle_reason(key.peer, wait);
                self.send_refusal(key, wire::reason::THROTTLED, reason);
            }
            ConfirmVerdict::Busy => {
                let reason = "receiver is busy with logins; try again in a few seconds".to_owned();
                self.send_refusal(key, wire::reason::BUSY, reason);
            }
        }
    }

    /// A clear REFUSE to an address that proved it receives our replies.
    fn send_refusal(&mut self, key: SessionKey, code: u8, reason: String) {
        self.stats.refused += 1;
        self.send_clear(key, 0, &Body::Refuse { code, reason }, None);
    }

    /// Sends a packet in clear, outside any session's numbering. `unvalidated` carries the
    /// size of the datagram answered when the address has not proved it receives our
    /// replies: the answer then stays within [`AMPLIFICATION_FACTOR`] times that. A refusal
    /// over that budget goes out with its reason cut short, so the sender still learns its
    /// code; anything else over it is withheld.
    fn send_clear(
        &mut self,
        key: SessionKey,
        pn: u32,
        body: &Body<'_>,
        unvalidated: Option<usize>,
    ) {
        let h = Header {
            kind: body.kind(),
            session: key.session,
            pn,
        };
        let mut payload = wire::encode_vec(&h, body);
        let budget = unvalidated.map_or(usize::MAX, |len| len.saturating_mul(AMPLIFICATION_FACTOR));
        if payload.len() > budget {
            self.stats.amplification_limited += 1;
            let Body::Refuse { code, reason } = body else {
                return;
            };
            let bare = Body::Refuse {
                code: *code,
                reason: String::new(),
            };
            let Some(mut room) = budget.checked_sub(wire::encode_vec(&h, &bare).len()) else {
                return;
            };
            while !reason.is_char_boundary(room) {
                room -= 1;
            }
            let clipped = Body::Refuse {
                code: *code,
                reason: reason[..room].to_owned(),
            };
            payload = wire::encode_vec(&h, &clipped);
        }
        self.outbox.push_back(Transmit {
            dest: key.peer,
            payload,
        });
    }

    /// An offer for a session not started yet: through a confirmed login, or in clear when
    /// this receiver runs without a passphrase.
    fn on_new_offer(&mut self, now: Instant, key: SessionKey, datagram: &mut [u8]) {
        let len = datagram.len();
        if self.config.passphrase.is_none() {
            match wire::decode(datagram) {
                Ok(Packet {
                    header,
                    body: Body::Offer(offer),
                }) => match self.check_new_session(&offer, key.peer.ip()) {
                    // No login validated this address: the refusal stays within 3x the offer.
                    Err((code, reason)) => self.refuse(key, code, reason, len),
                    Ok(()) => {
                        let pn = header.pn;
                        self.admit(now, key, (offer, pn, len), Protection::Plain, [0; 32], 0);
                    }
                },
                // The checksum held, so this is what the sender meant: tell it what is wrong.
                Err(WireError::Invalid(why)) => self.refuse(
                    key,
                    wire::reason::BAD_OFFER,
                    format!("the offer is malformed: {why}"),
                    len,
                ),
                _ => self.stats.malformed += 1,
            }
            return;
        }
        let Some(login) = self.desk.login_mut(&key) else {
            if wire::decode(datagram).is_ok() {
                let reason = "this receiver requires a passphrase; run the sender without \
                              --insecure and with the same passphrase"
                    .to_owned();
                self.refuse(key, wire::reason::MODE_MISMATCH, reason, len);
            } else {
                self.stats.unauthentic += 1;
            }
            return;
        };
        let (offer, pn) = match login.protection.decode(datagram) {
            Ok((
                Packet {
                    header,
                    body: Body::Offer(offer),
                },
                true,
            )) => (offer, header.pn),
            Err(WireError::Unauthentic) | Ok(_) => {
                self.stats.unauthentic += 1;
                return;
            }
            Err(WireError::Replayed) => {
                self.stats.replayed += 1;
                return;
            }
            Err(e) => {
                // Sealed by the sender's keys, yet breaking a rule: answer, do not ignore.
                let reason = format!("the offer is malformed: {e}");
                self.refuse_sealed(key, wire::reason::BAD_OFFER, reason);
                return;
            }
        };
        if let Err((code, reason)) = self.check_new_session(&offer, key.peer.ip()) {
            self.refuse_sealed(key, code, reason);
            return;
        }
        if let Some(login) = self.desk.take_login(&key) {
            let confirm = login.confirm;
            let next_pn = login.next_pn;
            self.admit(
                now,
                key,
                (offer, pn, len),
                login.protection,
                confirm,
                next_pn,
            );
        }
    }

    /// A sealed REFUSE under a confirmed login's keys; the login stays, so a repeated offer
    /// gets the same answer.
    fn refuse_sealed(&mut self, key: SessionKey, code: u8, reason: String) {
        let Some(login) = self.desk.login_mut(&key) else {
            return;
        };
        let h = Header {
            kind: kind::REFUSE,
            session: key.session,
            pn: login.take_pn(),
        };
        let mut payload = Vec::with_capacity(64);
        let body = Body::Refuse {
            code,
            reason: reason.clone(),
        };
        login.protection.encode(&h, &body, &mut payload);
        self.stats.refused += 1;
        self.outbox.push_back(Transmit {
            dest: key.peer,
            payload,
        });
        self.events.push_back(ReceiverEvent::Refused {
            peer: key.peer,
            reason,
        });
    }

    /// Starts a session for an offer within the limits, and accepts it. `request` is the
    /// offer, its packet number and the size of its datagram.
    fn admit(
        &mut self,
        now: Instant,
        key: SessionKey,
        request: (Offer, u32, usize),
        protection: Protection,
        confirm: [u8; wire::CONFIRM_LEN],
        next_pn: u32,
    ) {
        let (offer, pn, request_len) = request;
        let mut file = FileState::new(offer.clone(), 0);
        file.stats.datagrams_received = 1;
        let mut session = Session {
            files: VecDeque::from([file]),
            next_file: offer.file + 1,
            next_chunk: offer.chunk_range().end,
            pns: RangeSet::new(PN_RANGES_KEPT),
            base_pn: pn,
            distinct_pns: 1,
            largest_time: now,
            unacked: 0,
            ack_deadline: None,
            ack_queued: false,
            next_pn,
            last_recv: now,
            finished_at: None,
            protection,
            confirm,
            progress_start: now,
            progress_bytes: 0,
            progress_base: 0,
            bytes_in: request_len as u64,
            stats: TransferStats::default(),
        };
        session.pns.insert(pn);
        let accept = Body::Accept {
            offer_pn: pn,
            confirm,
        };
        let limited = &mut self.stats.amplification_limited;
        session.send(key, &accept, Some(0), &mut self.outbox, limited);
        let empty = offer.chunk_count == 0;
        let fkey = key.file(offer.file);
        self.sessions.insert(key, session);
        self.events
            .push_back(ReceiverEvent::Accepted { key: fkey, offer });
        if empty {
            self.events.push_back(ReceiverEvent::Complete { key: fkey });
        }
    }

    /// What follows a chunk or symbol of file `i` of a session: the verdict when the file
    /// is complete, and an ACK now or soon.
    fn after_chunk(
        &mut self,
        now: Instant,
        key: SessionKey,
        i: usize,
        complete: bool,
        in_order: bool,
    ) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if complete && let Some(f) = s.files.get_mut(i) {
            f.phase = Phase::Verifying;
            f.tail.clear();
            let fkey = key.file(f.offer.file);
            self.events.push_back(ReceiverEvent::Complete { key: fkey });
        }
        s.unacked += 1;
        if complete || !in_order || s.unacked >= self.config.ack_every {
            Self::queue_ack(s, key, &mut self.ack_queue);
        } else if s.ack_deadline.is_none() {
            s.ack_deadline = Some(now + MAX_ACK_DELAY);
        }
    }

    /// Rebuilds what the tail's symbols can; the number of chunks that filled.
    fn rebuild(f: &mut FileState, key: FileKey, events: &mut VecDeque<ReceiverEvent>) -> u32 {
        // Disjoint fields: the chunk map is read while the tail changes, with no copy of it
        // (this runs for every chunk that arrives).
        let FileState { held, tail, .. } = f;
        let is_held = |c: u32| held[(c / 64) as usize] & (1 << (c % 64)) != 0;
        let rebuilt = tail.rebuild(is_held);
        let mut filled = 0;
        for (chunk, mut data) in rebuilt {
            let Some(len) = f.offer.chunk_len(chunk) else {
                continue;
            };
            data.truncate(len);
            f.set_held(chunk);
            f.stats.repaired += 1;
            filled += 1;
            events.push_back(ReceiverEvent::Repaired {
                key,
                chunk,
                offset: u64::from(chunk) * u64::from(f.offer.chunk_size),
                data,
            });
        }
        filled
    }

    fn on_data<'a>(
        f: &mut FileState,
        key: FileKey,
        chunk: u32,
        retransmit: bool,
        payload: &'a [u8],
        events: &mut VecDeque<ReceiverEvent>,
    ) -> Option<Placement<'a>> {
        if f.offer.chunk_len(chunk) != Some(payload.len()) {
            f.stats.malformed += 1;
            return None;
        }
        if !matches!(f.phase, Phase::Receiving) || f.is_held(chunk) {
            f.stats.duplicates += 1;
            events.push_back(ReceiverEvent::Duplicate { key, chunk });
            return None;
        }
        f.set_held(chunk);
        f.tail.keep(chunk, payload);
        if retransmit {
            f.stats.recovered += 1;
        }
        Some(Placement {
            key,
            chunk,
            offset: u64::from(chunk) * u64::from(f.offer.chunk_size),
            data: payload,
            recovered: retransmit,
        })
    }

    /// [`Receiver::check_limits`] for the offer that starts a session, which must be the
    /// session's first file.
    fn check_new_session(&self, offer: &Offer, ip: IpAddr) -> Result<(), (u8, String)> {
        if offer.file != 0 || offer.first_chunk != 0 {
            return Err((
                wire::reason::UNKNOWN_SESSION,
                format!(
                    "an offer of file {} of a session this receiver does not know (it \
                     restarted, or forgot the session): send the file again",
                    offer.file
                ),
            ));
        }
        self.check_limits(offer, ip, true)
    }

    /// Whether an offer fits the receiver's limits; the refusal code and reason if not.
    /// `new_session` when taking it makes one more session active (the first file, or the
    /// next after a pause): then the session budgets apply too.
    fn check_limits(
        &self,
        offer: &Offer,
        ip: IpAddr,
        new_session: bool,
    ) -> Result<(), (u8, String)> {
        if offer.size > self.config.max_size {
            return Err((
                wire::reason::TOO_LARGE,
                format!(
                    "image is {} bytes, over the receiver's limit of {} bytes (recv --max-size)",
                    offer.size, self.config.max_size
                ),
            ));
        }
        let memory = session_memory(offer);
        if memory > self.config.max_session_memory {
            return Err((
                wire::reason::TOO_LARGE,
                format!(
                    "{} chunks of {} bytes need {} KiB of bookkeeping, over the receiver's \
                     limit of {} KiB (recv --max-session-memory); send with a larger --mtu",
                    offer.chunk_count,
                    offer.chunk_size,
                    memory / 1024,
                    self.config.max_session_memory / 1024
                ),
            ));
        }
        if !new_session {
            return Ok(());
        }
        if self.active_sessions() >= self.config.max_sessions {
            return Err((
                wire::reason::BUSY,
                format!(
                    "receiver is busy with {} transfers; try again later",
                    self.config.max_sessions
                ),
            ));
        }
        let from = budget_key(ip);
        let mine = self
            .sessions
            .iter()
            .filter(|(k, s)| s.has_active() && budget_key(k.peer.ip()) == from)
            .count();
        if mine >= self.config.max_sessions_per_addr {
            return Err((
                wire::reason::BUSY,
                format!(
                    "receiver already has {mine} transfers from this address, its limit \
                     (recv --max-sessions-per-addr); send fewer at once"
                ),
            ));
        }
        Ok(())
    }

    /// Forgets the finished sessions that finished first until one more fits under
    /// [`MAX_LINGERING`].
    fn evict_lingering(&mut self) {
        while self.lingering_sessions() >= MAX_LINGERING {
            let oldest = self
                .sessions
                .iter()
                .filter_map(|(k, s)| s.finished_at.map(|t| (t, *k)))
                .min_by_key(|(t, _)| *t);
            let Some((_, k)) = oldest else { return };
            self.sessions.remove(&k);
        }
    }

    fn queue_ack(s: &mut Session, key: SessionKey, queue: &mut VecDeque<SessionKey>) {
        s.ack_deadline = None;
        if !s.ack_queued {
            s.ack_queued = true;
            queue.push_back(key);
        }
    }

    /// Reports the verdict on a [`ReceiverEvent::Complete`] file: `Ok(message)` when the
    /// hash verified and the file was kept, `Err((status, message))` with a [`wire::done`]
    /// status otherwise. The sender learns it by DONE.
    pub fn finish(&mut self, now: Instant, key: FileKey, result: Result<String, (u8, String)>) {
        let skey = key.session_key();
        let Some(s) = self.sessions.get(&skey) else {
            return;
        };
        let Some(i) = s.file_index(key.file) else {
            return;
        };
        if !s.files[i].is_active() {
            return;
        }
        let last = s.files.iter().filter(|f| f.is_active()).count() == 1;
        if last {
            // Make room first: this session is not lingering yet, so it is not the one
            // forgotten.
            self.evict_lingering();
        }
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        let (status, message) = match result {
            Ok(m) => {
                self.stats.completed += 1;
                (wire::done::OK, m)
            }
            Err((st, m)) => {
                self.stats.failed += 1;
                (st, m)
            }
        };
        let lost = s.lost();
        let f = &mut s.files[i];
        f.stats.lost = lost.saturating_sub(f.lost_base);
        f.phase = Phase::Finished { status, message };
        // Only the verdict is kept: the chunk map and the tail's copies go.
        f.held = Vec::new();
        f.tail.clear();
        if last {
            s.finished_at = Some(now);
            s.ack_deadline = None;
        }
        s.send_done(
            skey,
            i,
            &mut self.outbox,
            &mut self.stats.amplification_limited,
        );
        s.forget_old_files();
    }

    /// Gives up one file from this side (its storage failed): the sender learns it by DONE
    /// and the session's other files go on.
    pub fn abort(&mut self, now: Instant, key: FileKey, reason: &str) {
        self.finish(now, key, Err((wire::done::STORE_FAILED, reason.to_owned())));
    }

    /// Ends a whole session from this side (shutting down): CLOSE to the sender, twice, so
    /// one lost datagram does not leave it waiting for its timeout.
    pub fn close(&mut self, key: SessionKey, code: u8, reason: &str) {
        let Some(mut s) = self.end_session(key, reason) else {
            return;
        };
        let body = Body::Close {
            code,
            reason: reason.to_owned(),
        };
        let limited = &mut self.stats.amplification_limited;
        for _ in 0..CLOSE_COPIES {
            s.send(key, &body, None, &mut self.outbox, limited);
        }
    }

    /// Ends every session (the receiver is stopping), telling each sender why.
    pub fn close_all(&mut self, code: u8, reason: &str) {
        let keys: Vec<SessionKey> = self.sessions.keys().copied().collect();
        for key in keys {
            self.close(key, code, reason);
        }
    }

    /// Next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.outbox.pop_front() {
            return Some(t);
        }
        while let Some(key) = self.ack_queue.pop_front() {
            let Some(s) = self.sessions.get_mut(&key) else {
                continue;
            };
            s.ack_queued = false;
            s.unacked = 0;
            s.ack_deadline = None;
            if let Some(payload) = s.ack(key, now, &mut self.stats.amplification_limited) {
                return Some(Transmit {
                    dest: key.peer,
                    payload,
                });
            }
        }
        None
    }

    /// Earliest instant at which [`Receiver::handle_timeout`] has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| {
                let receiving = s.files.iter().any(|f| matches!(f.phase, Phase::Receiving));
                let expiry = match s.finished_at {
                    Some(t) => Some(t + self.config.linger),
                    // Hashing takes what it takes: the verdict, not a timer, ends it.
                    None if !receiving => None,
                    None => Some(self.receiving_deadline(s)),
                };
                [expiry, s.ack_deadline].into_iter().flatten().min()
            })
            .chain(self.desk.next_expiry())
            .min()
    }

    /// When a receiving session next needs looking at: idle, or the end of its progress
    /// window.
    fn receiving_deadline(&self, s: &Session) -> Instant {
        let idle = s.last_recv + self.config.idle_timeout;
        if self.config.min_rate == 0 {
            return idle;
        }
        idle.min(s.progress_start + self.config.progress_window)
    }

    /// Why a receiving session must end now, if it must.
    fn receiving_verdict(&self, s: &mut Session, now: Instant) -> Option<(u8, String)> {
        if now >= s.last_recv + self.config.idle_timeout {
            let idle = self.config.idle_timeout;
            return Some((
                wire::reason::OTHER,
                format!("sender went silent for {idle:?}; partial image discarded"),
            ));
        }
        let window = self.config.progress_window;
        if self.config.min_rate == 0 || now < s.progress_start + window {
            return None;
        }
        let gained = s.progress_bytes - s.progress_base;
        let needed = self.config.min_rate.saturating_mul(window.as_secs().max(1));
        if gained < needed {
            return Some((
                wire::reason::TOO_SLOW,
                format!(
                    "the transfer made too little progress ({gained} bytes in {} s, below the \
                     receiver's minimum of {} bytes/s); partial image discarded",
                    window.as_secs(),
                    self.config.min_rate
                ),
            ));
        }
        s.progress_start = now;
        s.progress_base = s.progress_bytes;
        None
    }

    /// Runs expired timers: delayed ACKs, idle or stalled sessions, finished sessions past
    /// their linger, logins and handshakes that ran out.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.desk.expire(now);
        self.stats.auth_failures += self.desk.take_abandoned();
        let mut expired = Vec::new();
        for (key, s) in self.sessions.iter_mut() {
            if s.ack_deadline.is_some_and(|t| now >= t) {
                Self::queue_ack(s, *key, &mut self.ack_queue);
            }
        }
        let keys: Vec<SessionKey> = self.sessions.keys().copied().collect();
        for key in keys {
            let Some(s) = self.sessions.get(&key) else {
                continue;
            };
            let receiving = s.files.iter().any(|f| matches!(f.phase, Phase::Receiving));
            match s.finished_at {
                Some(t) if now >= t + self.config.linger => {
                    self.sessions.remove(&key);
                }
                None if receiving => {
                    let Some(mut s) = self.sessions.remove(&key) else {
                        continue;
                    };
                    let verdict = self.receiving_verdict(&mut s, now);
                    self.sessions.insert(key, s);
                    if let Some(why) = verdict {
                        expired.push((key, why));
                    }
                }
                _ => {}
            }
        }
        for (key, (code, reason)) in expired {
            let Some(mut s) = self.end_session(key, &reason) else {
                continue;
            };
            if code == wire::reason::TOO_SLOW {
                self.stats.too_slow += 1;
                let body = Body::Close {
                    code,
                    reason: "the receiver dropped this transfer: it made too little progress"
                        .to_owned(),
                };
                let limited = &mut self.stats.amplification_limited;
                s.send(key, &body, None, &mut self.outbox, limited);
            }
        }
    }
}
