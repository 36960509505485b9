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
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::MAX_ACK_DELAY;
use super::ranges::RangeSet;
use super::stats::TransferStats;
use super::wire::{self, Body, Header, Offer, kind};

/// Ranges of received packet numbers remembered per session.
const PN_RANGES_KEPT: usize = 256;
/// Finished sessions remembered (to repeat DONE), at most.
const MAX_LINGERING: usize = 1024;

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
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            max_size: 512 * 1024 * 1024,
            max_sessions: 64,
            idle_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(20),
            ack_every: 4,
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

/// A chunk to store: the caller writes `data` at `offset` of the session's file.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    /// The session the chunk belongs to.
    pub key: SessionKey,
    /// Chunk index.
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
    /// A new session was accepted: prepare storage for `offer`.
    Accepted {
        /// The session.
        key: SessionKey,
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
        /// The session.
        key: SessionKey,
        /// Chunk index.
        chunk: u32,
    },
    /// Every chunk is held: verify the hash, then call [`Receiver::finish`].
    Complete {
        /// The session.
        key: SessionKey,
    },
    /// The session ended without a file: discard what was stored.
    Failed {
        /// The session.
        key: SessionKey,
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
    /// Sessions that completed with a verified file.
    pub completed: u64,
    /// Sessions that failed.
    pub failed: u64,
}

#[derive(Debug)]
enum Phase {
    Receiving,
    Verifying,
    Finished { status: u8, message: String },
}

#[derive(Debug)]
struct Session {
    offer: Offer,
    held: Vec<u64>,
    held_count: u32,
    phase: Phase,
    pns: RangeSet,
    distinct_pns: u64,
    largest_time: Instant,
    unacked: u32,
    ack_deadline: Option<Instant>,
    ack_queued: bool,
    next_pn: u32,
    last_recv: Instant,
    finished_at: Option<Instant>,
    stats: TransferStats,
}

impl Session {
    fn is_held(&self, chunk: u32) -> bool {
        self.held[(chunk / 64) as usize] & (1 << (chunk % 64)) != 0
    }
    fn set_held(&mut self, chunk: u32) {
        self.held[(chunk / 64) as usize] |= 1 << (chunk % 64);
        self.held_count += 1;
    }
    fn header(&mut self, kind: u8, session: u64) -> Header {
        let pn = self.next_pn;
        self.next_pn = self.next_pn.wrapping_add(1);
        Header { kind, session, pn }
    }
}

/// The receiving endpoint.
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    sessions: HashMap<SessionKey, Session>,
    outbox: VecDeque<Transmit>,
    ack_queue: VecDeque<SessionKey>,
    events: VecDeque<ReceiverEvent>,
    stats: EndpointStats,
}

impl Receiver {
    /// A receiver with no sessions.
    pub fn new(config: ReceiverConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
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

    /// A session's figures, while the receiver remembers it.
    pub fn session_stats(&self, key: &SessionKey) -> Option<TransferStats> {
        self.sessions.get(key).map(|s| {
            let mut st = s.stats.clone();
            st.chunks_done = s.held_count;
            let seen = s.pns.largest().map_or(0, |l| u64::from(l) + 1);
            st.lost = seen.saturating_sub(s.distinct_pns);
            st
        })
    }

    /// The offer of a session, while the receiver remembers it.
    pub fn session_offer(&self, key: &SessionKey) -> Option<&Offer> {
        self.sessions.get(key).map(|s| &s.offer)
    }

    /// Sessions still receiving or verifying.
    pub fn active_sessions(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| !matches!(s.phase, Phase::Finished { .. }))
            .count()
    }

    /// Next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }

    /// Feeds one datagram from `peer`. Returns the chunk to store, if it carried a new one.
    pub fn handle<'a>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<Placement<'a>> {
        let packet = match wire::decode(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                if let Ok(h) = wire::decode_header(datagram)
                    && let Some(s) = self.sessions.get_mut(&SessionKey {
                        peer,
                        session: h.session,
                    })
                {
                    s.stats.malformed += 1;
                }
                return None;
            }
        };
        let key = SessionKey {
            peer,
            session: packet.header.session,
        };
        if let Body::Offer(offer) = packet.body {
            self.on_offer(now, key, packet.header.pn, offer);
            return None;
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            self.stats.unknown_session += 1;
            if matches!(packet.body, Body::Data { .. } | Body::Ping) {
                // Tell a sender we forgot (restart, timeout) so it fails fast, not after a timer.
                let h = Header {
                    kind: kind::CLOSE,
                    session: key.session,
                    pn: 0,
                };
                let body = Body::Close {
                    code: wire::reason::UNKNOWN_SESSION,
                    reason: String::new(),
                };
                self.outbox.push_back(Transmit {
                    dest: peer,
                    payload: wire::encode_vec(&h, &body),
                });
            }
            return None;
        };
        s.last_recv = now;
        s.stats.datagrams_received += 1;
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
        match packet.body {
            Body::Data {
                chunk,
                retransmit,
                payload,
            } => {
                if retransmit {
                    s.stats.retransmitted += 1;
                }
                let placement = Self::on_data(s, key, chunk, retransmit, payload, &mut self.events);
                if matches!(s.phase, Phase::Finished { .. }) {
                    Self::queue_done(s, key, &mut self.outbox);
                    return None;
                }
                let complete = placement.is_some() && s.held_count == s.offer.chunk_count;
                if complete {
                    s.phase = Phase::Verifying;
                    self.events.push_back(ReceiverEvent::Complete { key });
                }
                s.unacked += 1;
                if complete || !in_order || s.unacked >= self.config.ack_every {
                    Self::queue_ack(s, key, &mut self.ack_queue);
                } else if s.ack_deadline.is_none() {
                    s.ack_deadline = Some(now + MAX_ACK_DELAY);
                }
                placement
            }
            Body::Ping => {
                if matches!(s.phase, Phase::Finished { .. }) {
                    Self::queue_done(s, key, &mut self.outbox);
                } else {
                    Self::queue_ack(s, key, &mut self.ack_queue);
                }
                None
            }
            Body::Close { reason, .. } => {
                let was_finished = matches!(s.phase, Phase::Finished { .. });
                self.sessions.remove(&key);
                if !was_finished {
                    self.stats.failed += 1;
                    self.events.push_back(ReceiverEvent::Failed {
                        key,
                        reason: format!("sender closed the session: {reason}"),
                    });
                }
                None
            }
            _ => {
                s.stats.malformed += 1;
                None
            }
        }
    }

    fn on_data<'a>(
        s: &mut Session,
        key: SessionKey,
        chunk: u32,
        retransmit: bool,
        payload: &'a [u8],
        events: &mut VecDeque<ReceiverEvent>,
    ) -> Option<Placement<'a>> {
        if s.offer.chunk_len(chunk) != Some(payload.len()) {
            s.stats.malformed += 1;
            return None;
        }
        if !matches!(s.phase, Phase::Receiving) || s.is_held(chunk) {
            s.stats.duplicates += 1;
            events.push_back(ReceiverEvent::Duplicate { key, chunk });
            return None;
        }
        s.set_held(chunk);
        if retransmit {
            s.stats.recovered += 1;
        }
        Some(Placement {
            key,
            chunk,
            offset: u64::from(chunk) * u64::from(s.offer.chunk_size),
            data: payload,
            recovered: retransmit,
        })
    }

    fn refuse(&mut self, key: SessionKey, code: u8, reason: String) {
        self.stats.refused += 1;
        let h = Header {
            kind: kind::REFUSE,
            session: key.session,
            pn: 0,
        };
        let body = Body::Refuse {
            code,
            reason: reason.clone(),
        };
        self.outbox.push_back(Transmit {
            dest: key.peer,
            payload: wire::encode_vec(&h, &body),
        });
        self.events.push_back(ReceiverEvent::Refused {
            peer: key.peer,
            reason,
        });
    }

    fn on_offer(&mut self, now: Instant, key: SessionKey, pn: u32, offer: Offer) {
        if let Some(s) = self.sessions.get_mut(&key) {
            // A repeated offer: our ACCEPT (or DONE) was lost. Answer again.
            s.last_recv = now;
            s.stats.datagrams_received += 1;
            if matches!(s.phase, Phase::Finished { .. }) {
                Self::queue_done(s, key, &mut self.outbox);
            } else {
                let h = s.header(kind::ACCEPT, key.session);
                self.outbox.push_back(Transmit {
                    dest: key.peer,
                    payload: wire::encode_vec(&h, &Body::Accept { offer_pn: pn }),
                });
            }
            return;
        }
        if offer.size > self.config.max_size {
            let reason = format!(
                "image is {} bytes, over the receiver's limit of {} bytes (recv --max-size)",
                offer.size, self.config.max_size
            );
            self.refuse(key, wire::reason::TOO_LARGE, reason);
            return;
        }
        if self.active_sessions() >= self.config.max_sessions {
            let reason = format!(
                "receiver is busy with {} transfers; try again later",
                self.config.max_sessions
            );
            self.refuse(key, wire::reason::BUSY, reason);
            return;
        }
        self.evict_lingering();
        let words = (offer.chunk_count as usize).div_ceil(64);
        let mut session = Session {
            offer: offer.clone(),
            held: vec![0; words],
            held_count: 0,
            phase: Phase::Receiving,
            pns: RangeSet::new(PN_RANGES_KEPT),
            distinct_pns: 1,
            largest_time: now,
            unacked: 0,
            ack_deadline: None,
            ack_queued: false,
            next_pn: 0,
            last_recv: now,
            finished_at: None,
            stats: TransferStats {
                bytes: offer.size,
                chunks: offer.chunk_count,
                datagrams_received: 1,
                ..TransferStats::default()
            },
        };
        session.pns.insert(pn);
        let h = session.header(kind::ACCEPT, key.session);
        let payload = wire::encode_vec(&h, &Body::Accept { offer_pn: pn });
        session.stats.datagrams_sent += 1;
        session.stats.wire_bytes_sent += payload.len() as u64;
        self.outbox.push_back(Transmit {
            dest: key.peer,
            payload,
        });
        if offer.chunk_count == 0 {
            session.phase = Phase::Verifying;
        }
        self.sessions.insert(key, session);
        self.events
            .push_back(ReceiverEvent::Accepted { key, offer });
        if self
            .sessions
            .get(&key)
            .is_some_and(|s| matches!(s.phase, Phase::Verifying))
        {
            self.events.push_back(ReceiverEvent::Complete { key });
        }
    }

    fn evict_lingering(&mut self) {
        let lingering = self.sessions.len() - self.active_sessions();
        if lingering < MAX_LINGERING {
            return;
        }
        let oldest = self
            .sessions
            .iter()
            .filter_map(|(k, s)| s.finished_at.map(|t| (t, *k)))
            .min_by_key(|(t, _)| *t);
        if let Some((_, k)) = oldest {
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

    fn queue_done(s: &mut Session, key: SessionKey, outbox: &mut VecDeque<Transmit>) {
        let Phase::Finished { status, message } = &s.phase else {
            return;
        };
        let (status, message) = (*status, message.clone());
        let h = s.header(kind::DONE, key.session);
        let body = Body::Done {
            status,
            blake3: s.offer.blake3,
            message,
        };
        let payload = wire::encode_vec(&h, &body);
        s.stats.datagrams_sent += 1;
        s.stats.wire_bytes_sent += payload.len() as u64;
        outbox.push_back(Transmit {
            dest: key.peer,
            payload,
        });
    }

    /// Reports the verdict on a [`ReceiverEvent::Complete`] session: `Ok(message)` when the
    /// hash verified and the file was kept, `Err((status, message))` with a [`wire::done`]
    /// status otherwise. The sender learns it by DONE.
    pub fn finish(&mut self, now: Instant, key: SessionKey, result: Result<String, (u8, String)>) {
        let Some(s) = self.sessions.get_mut(&key) else {
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
        s.phase = Phase::Finished { status, message };
        s.finished_at = Some(now);
        s.ack_deadline = None;
        Self::queue_done(s, key, &mut self.outbox);
    }

    /// Ends a session from this side (storage failed, shutting down): CLOSE to the sender.
    pub fn abort(&mut self, key: SessionKey, code: u8, reason: &str) {
        let Some(mut s) = self.sessions.remove(&key) else {
            return;
        };
        let h = s.header(kind::CLOSE, key.session);
        let body = Body::Close {
            code,
            reason: reason.to_owned(),
        };
        self.outbox.push_back(Transmit {
            dest: key.peer,
            payload: wire::encode_vec(&h, &body),
        });
        self.stats.failed += 1;
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
            let delay = now.saturating_duration_since(s.largest_time);
            let h = s.header(kind::ACK, key.session);
            let body = Body::Ack(wire::Ack {
                ack_delay_us: delay.as_micros().min(u128::from(u32::MAX)) as u32,
                chunks_held: s.held_count,
                ranges: s.pns.newest(wire::MAX_ACK_RANGES + 1),
            });
            let payload = wire::encode_vec(&h, &body);
            s.stats.datagrams_sent += 1;
            s.stats.wire_bytes_sent += payload.len() as u64;
            return Some(Transmit {
                dest: key.peer,
                payload,
            });
        }
        None
    }

    /// Earliest instant at which [`Receiver::handle_timeout`] has work to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .map(|s| {
                let expiry = match s.finished_at {
                    Some(t) => t + self.config.linger,
                    None => s.last_recv + self.config.idle_timeout,
                };
                s.ack_deadline.map_or(expiry, |a| a.min(expiry))
            })
            .min()
    }

    /// Runs expired timers: delayed ACKs, idle sessions, finished sessions past their linger.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (key, s) in self.sessions.iter_mut() {
            if s.ack_deadline.is_some_and(|t| now >= t) {
                Self::queue_ack(s, *key, &mut self.ack_queue);
            }
            match s.finished_at {
                Some(t) if now >= t + self.config.linger => expired.push((*key, None)),
                None if now >= s.last_recv + self.config.idle_timeout => {
                    expired.push((*key, Some(self.config.idle_timeout)))
                }
                _ => {}
            }
        }
        for (key, idle) in expired {
            self.sessions.remove(&key);
            if let Some(idle) = idle {
                self.stats.failed += 1;
                self.events.push_back(ReceiverEvent::Failed {
                    key,
                    reason: format!("sender went silent for {idle:?}; partial image discarded"),
                });
            }
        }
    }
}
