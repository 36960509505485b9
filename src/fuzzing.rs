//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay in
//! `cargo test` (`tests/fuzz_replay.rs`). Each takes arbitrary bytes and must never panic
//! but on a broken invariant: each checks, with `assert!`, what a hostile peer must not
//! break. Each also returns a report of what the input reached, so the replay can tell a
//! corpus that exercises the checks from one that only passes them by never getting there.
//!
//! Inputs that carry several datagrams use a simple framing: a big-endian `u16` length, then
//! that many bytes, repeated; a truncated tail is used as it is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::crypto::{DirectionKey, Passphrase, Protection};
use crate::proto::receiver::{EndpointStats, Receiver, ReceiverConfig, ReceiverEvent, SessionKey};
use crate::proto::sender::{Sender, SenderConfig, SenderEvent};
use crate::proto::wire;

/// Splits fuzz input into datagrams (see the module docs for the framing).
pub fn datagrams(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        data = &data[2..];
        let take = len.min(data.len());
        out.push(data[..take].to_vec());
        data = &data[take..];
    }
    out
}

/// Frames datagrams the way [`datagrams`] reads them (to build seed corpora).
pub fn frame(datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        let len = d.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&d[..len]);
    }
    out
}

/// What [`decode`] found in one input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeReport {
    /// The type of the packet, when the input decoded as a whole datagram (and so
    /// re-encoded to the same packet).
    pub packet: Option<u8>,
    /// Packet types whose body decoder accepted the input as a body.
    pub bodies: u32,
}

/// Every decoder on arbitrary bytes: plain, body-only for every type, and sealed.
///
/// Checks: whatever decodes encodes back to the same bytes (a HELLO to the same packet: its
/// padding is not kept), and that encoding decodes to the same packet; a body decoder only
/// yields bodies of its own type, which encode back to the same bytes; no input
/// authenticates as sealed under a key it was not sealed with.
pub fn decode(data: &[u8]) -> DecodeReport {
    let mut report = DecodeReport::default();
    if let Ok(p) = wire::decode(data) {
        report.packet = Some(p.header.kind);
        assert_eq!(p.header.kind, p.body.kind(), "header and body disagree");
        let again = wire::encode_vec(&p.header, &p.body);
        let q = wire::decode(&again).expect("a re-encoded packet decodes");
        assert_eq!(
            (p.header, &p.body),
            (q.header, &q.body),
            "re-encoding changed it"
        );
        if p.header.kind != wire::kind::HELLO {
            assert_eq!(again, data, "decode then encode changed the bytes");
        }
    }
    for kind in 0u8..=0x14 {
        let h = wire::Header {
            kind,
            session: 1,
            pn: 2,
        };
        if let Ok(body) = wire::decode_body(&h, data) {
            report.bodies += 1;
            assert_eq!(body.kind(), kind, "a body of another type");
            let mut again = Vec::new();
            wire::encode_unsealed(&h, &body, &mut again);
            let again = &again[wire::HEADER_LEN..];
            if kind != wire::kind::HELLO {
                assert_eq!(again, data, "body decode then encode changed the bytes");
            }
            let reparsed = wire::decode_body(&h, again).expect("a re-encoded body decodes");
            assert_eq!(reparsed, body, "re-encoding changed the body");
        }
    }
    let mut p = Protection::sealed(
        DirectionKey::new(&[1; 32], [2; 12]),
        DirectionKey::new(&[1; 32], [2; 12]),
    );
    let mut buf = data.to_vec();
    if let Ok((packet, sealed)) = p.decode(&mut buf) {
        assert!(!sealed, "a forged datagram authenticated");
        assert!(
            crate::proto::crypto::may_arrive_in_clear(packet.header.kind),
            "a sealed session took a {:#04x} in clear",
            packet.header.kind
        );
    }
    report
}

/// The genuine sender's session in [`handshake`]: not the one of the recorded transfer in
/// the seed corpus (0x5eed), whose replay from the genuine address would otherwise stand in
/// for it.
const GENUINE_SESSION: u64 = 0x6e75_696e_6567;

/// What [`handshake`] saw in one input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeReport {
    /// Datagrams in the input.
    pub datagrams: usize,
    /// The receiver accepted the genuine sender's login and offer.
    pub genuine_accepted: bool,
    /// The genuine sender was told its offer was accepted.
    pub sender_accepted: bool,
    /// Replies the receiver sent to the two addresses that never log in.
    pub replies_to_strangers: usize,
}

/// A receiver with a passphrase fed hostile datagrams from a few addresses, interleaved with
/// a genuine sender's handshake; also a sender in its handshake fed hostile replies.
///
/// Checks: the receiver accepts no session but the genuine sender's (only it knows the
/// passphrase); the sender believes it is accepted only after the receiver accepted it;
/// what the receiver sends an address that never logged in, in answer to one datagram,
/// is at most three times that datagram (no amplification for spoofed sources), and it
/// sends such an address nothing on its own timers.
pub fn handshake(data: &[u8]) -> HandshakeReport {
    let pass = Passphrase::new("fuzz passphrase");
    let start = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig {
        passphrase: Some(pass.clone()),
        max_handshakes: 4,
        cookie_secret: [7; 32],
        ..ReceiverConfig::default()
    });
    let config = SenderConfig {
        passphrase: Some(pass),
        ..SenderConfig::default()
    };
    let offer = Sender::offer_for(&config, "f.png", b"fuzz", "", None);
    let mut tx = Sender::new(
        start,
        config,
        GENUINE_SESSION,
        offer,
        Bytes::from_static(b"fuzz"),
    );
    let genuine: SocketAddr = ([10, 0, 0, 1], 1).into();
    // Another address, and another port of the genuine sender's address.
    let strangers: [SocketAddr; 2] = [([10, 0, 0, 2], 2).into(), ([10, 0, 0, 1], 3).into()];
    let peers = [genuine, strangers[0], strangers[1]];
    let mut report = HandshakeReport::default();
    let mut now = start;
    let mut buf = Vec::new();
    // The receiver's answers to the genuine sender, delivered at the next step.
    let mut to_sender: Vec<Vec<u8>> = Vec::new();
    let check_events = |rx: &mut Receiver, report: &mut HandshakeReport| {
        while let Some(ev) = rx.poll_event() {
            // Only the genuine sender knows the passphrase: no hostile input may log in.
            if let ReceiverEvent::Accepted { key, .. } = ev {
                assert_eq!(
                    (key.peer, key.session),
                    (genuine, GENUINE_SESSION),
                    "a forged login"
                );
                report.genuine_accepted = true;
            }
        }
    };
    // Feeds one datagram from `from`; returns what the receiver sent to strangers because.
    let feed = |rx: &mut Receiver,
                now: Instant,
                from: SocketAddr,
                d: &mut [u8],
                to_sender: &mut Vec<Vec<u8>>,
                report: &mut HandshakeReport| {
        let len = d.len();
        let _ = rx.handle(now, from, d);
        let mut answered = 0;
        while let Some(t) = rx.poll_transmit(now) {
            if strangers.contains(&t.dest) {
                report.replies_to_strangers += 1;
                assert_eq!(
                    t.dest, from,
                    "a stranger was sent an answer to someone else"
                );
                answered += t.payload.len();
                assert!(
                    answered <= 3 * len,
                    "{answered} bytes sent to an address that never logged in, for a \
                     datagram of {len}"
                );
            } else if t.dest == genuine {
                to_sender.push(t.payload);
            }
        }
        check_events(rx, report);
    };
    // True when the sender says it was accepted: only once the receiver did.
    let check_sender = |tx: &mut Sender, report: &HandshakeReport| {
        let mut accepted = false;
        while let Some(ev) = tx.poll_event() {
            if matches!(ev, SenderEvent::Accepted { .. }) {
                assert!(
                    report.genuine_accepted,
                    "the sender believes it was accepted, yet the receiver never accepted it"
                );
                accepted = true;
            }
        }
        accepted
    };
    for (i, mut d) in datagrams(data).into_iter().enumerate() {
        report.datagrams += 1;
        now += Duration::from_millis(u64::from(d.first().copied().unwrap_or(0)));
        let from = peers[i % peers.len()];
        let mut hostile = d.clone();
        feed(&mut rx, now, from, &mut d, &mut to_sender, &mut report);
        for mut p in std::mem::take(&mut to_sender) {
            tx.handle(now, &mut p);
        }
        tx.handle(now, &mut hostile);
        tx.handle_timeout(now);
        // Before the sender's next datagrams reach the receiver.
        report.sender_accepted |= check_sender(&mut tx, &report);
        while tx.poll_transmit(now, &mut buf) {
            let mut b = buf.clone();
            feed(&mut rx, now, genuine, &mut b, &mut to_sender, &mut report);
        }
        rx.handle_timeout(now);
        while let Some(t) = rx.poll_transmit(now) {
            assert!(
                !strangers.contains(&t.dest),
                "sent an address that never logged in a datagram of its own accord"
            );
            if t.dest == genuine {
                to_sender.push(t.payload);
            }
        }
        check_events(&mut rx, &mut report);
        report.sender_accepted |= check_sender(&mut tx, &report);
    }
    report
}

/// What [`receiver`] saw in one input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport {
    /// Datagrams in the input.
    pub datagrams: usize,
    /// Sessions accepted.
    pub accepted: u64,
    /// Chunks placed.
    pub placed: u64,
    /// Sessions completed (every chunk held).
    pub completed: u64,
}

/// An insecure receiver fed hostile datagrams.
///
/// Checks: whatever it places lies inside the offered file; it never completes a session
/// whose chunks did not all arrive; every datagram leaves a trace in its counters (the
/// endpoint's, or those of the session it names), so nothing is dropped unseen; what it
/// sends in answer to a datagram naming no session it holds is at most three times that
/// datagram.
pub fn receiver(data: &[u8]) -> ReceiverReport {
    let start = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig {
        max_size: 1 << 20,
        max_sessions: 4,
        ..ReceiverConfig::default()
    });
    let peer: SocketAddr = ([10, 0, 0, 9], 9).into();
    let mut report = ReceiverReport::default();
    let mut now = start;
    for mut d in datagrams(data) {
        report.datagrams += 1;
        now += Duration::from_micros(u64::from(d.last().copied().unwrap_or(0)) * 100);
        let len = d.len();
        let key = wire::decode_header(&d).ok().map(|h| SessionKey {
            peer,
            session: h.session,
        });
        let session_before = key.and_then(|k| rx.session_totals(&k));
        let endpoint_before: EndpointStats = rx.stats().clone();
        let placement = rx.handle(now, peer, &mut d).map(|p| {
            let size = rx.session_offer(&p.key).map_or(0, |o| o.size);
            assert!(
                p.offset + p.data.len() as u64 <= size,
                "placement outside the file"
            );
            report.placed += 1;
        });
        let session_after = key.and_then(|k| rx.session_totals(&k));
        assert!(
            placement.is_some()
                || *rx.stats() != endpoint_before
                || session_after != session_before,
            "a datagram of {len} bytes left no trace in any counter"
        );
        let mut answered = 0;
        while let Some(t) = rx.poll_transmit(now) {
            assert_eq!(t.dest, peer, "an answer to someone else");
            answered += t.payload.len();
        }
        if session_before.is_none() {
            assert!(
                answered <= 3 * len,
                "{answered} bytes sent for a datagram of {len} naming no session"
            );
        }
        while let Some(ev) = rx.poll_event() {
            match ev {
                ReceiverEvent::Accepted { .. } => report.accepted += 1,
                ReceiverEvent::Complete { key } => {
                    let st = rx
                        .session_stats(&key)
                        .expect("a session that just completed is known");
                    assert_eq!(st.chunks_done, st.chunks, "completed with chunks missing");
                    report.completed += 1;
                    rx.finish(now, key, Ok("ok".into()));
                }
                _ => {}
            }
        }
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        // What its timers queued (delayed ACKs, DONE again) answers no datagram.
        while rx.poll_transmit(now).is_some() {}
    }
    report
}
