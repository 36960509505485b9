//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay in
//! `cargo test` (`tests/fuzz_replay.rs`). Each takes arbitrary bytes and must never panic;
//! each also checks the invariants a hostile peer must not break.
//!
//! Inputs that carry several datagrams use a simple framing: a big-endian `u16` length, then
//! that many bytes, repeated; a truncated tail is used as it is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::proto::crypto::{DirectionKey, Passphrase, Protection};
use crate::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent};
use crate::proto::sender::{Sender, SenderConfig};
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

/// Every decoder on arbitrary bytes: plain, body-only for every type, and sealed.
pub fn decode(data: &[u8]) {
    if let Ok(p) = wire::decode(data) {
        // Whatever decodes must encode back to something that decodes to the same packet.
        let again = wire::encode_vec(&p.header, &p.body);
        if let Ok(q) = wire::decode(&again) {
            assert_eq!(p.body, q.body, "re-encoding changed the packet");
        }
    }
    for kind in 0u8..=0x14 {
        let h = wire::Header {
            kind,
            session: 1,
            pn: 2,
        };
        let _ = wire::decode_body(&h, data);
    }
    let mut p = Protection::sealed(
        DirectionKey::new(&[1; 32], [2; 12]),
        DirectionKey::new(&[1; 32], [2; 12]),
    );
    let mut buf = data.to_vec();
    let _ = p.decode(&mut buf);
}

/// A receiver with a passphrase fed hostile datagrams from a few addresses, interleaved with
/// a genuine sender's handshake; also a sender in its handshake fed hostile replies.
pub fn handshake(data: &[u8]) {
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
    let mut tx = Sender::new(start, config, 0x5eed, offer, Bytes::from_static(b"fuzz"));
    let peers: [SocketAddr; 3] = [
        ([10, 0, 0, 1], 1).into(),
        ([10, 0, 0, 2], 2).into(),
        ([10, 0, 0, 1], 3).into(),
    ];
    let mut now = start;
    let mut buf = Vec::new();
    for (i, mut d) in datagrams(data).into_iter().enumerate() {
        now += Duration::from_millis(u64::from(d.first().copied().unwrap_or(0)));
        let from = peers[i % peers.len()];
        let _ = rx.handle(now, from, &mut d);
        while let Some(t) = rx.poll_transmit(now) {
            let mut p = t.payload;
            tx.handle(now, &mut p);
        }
        let mut hostile = d.clone();
        tx.handle(now, &mut hostile);
        while tx.poll_transmit(now, &mut buf) {
            let mut b = buf.clone();
            let _ = rx.handle(now, peers[0], &mut b);
        }
        rx.handle_timeout(now);
        tx.handle_timeout(now);
        while let Some(ev) = rx.poll_event() {
            // Only the genuine sender knows the passphrase: no hostile input may log in.
            if let ReceiverEvent::Accepted { key, .. } = ev {
                assert_eq!(
                    (key.peer, key.session),
                    (peers[0], 0x5eed),
                    "a forged login"
                );
            }
        }
        while tx.poll_event().is_some() {}
    }
}

/// An insecure receiver fed hostile datagrams: whatever it places lies inside the offered
/// file, and it never completes a session whose chunks did not all arrive.
pub fn receiver(data: &[u8]) {
    let start = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig {
        max_size: 1 << 20,
        max_sessions: 4,
        ..ReceiverConfig::default()
    });
    let peer: SocketAddr = ([10, 0, 0, 9], 9).into();
    let mut now = start;
    for mut d in datagrams(data) {
        now += Duration::from_micros(u64::from(d.last().copied().unwrap_or(0)) * 100);
        if let Some(p) = rx.handle(now, peer, &mut d) {
            let size = rx.session_offer(&p.key).map_or(0, |o| o.size);
            assert!(
                p.offset + p.data.len() as u64 <= size,
                "placement outside the file"
            );
        }
        while rx.poll_transmit(now).is_some() {}
        while let Some(ev) = rx.poll_event() {
            if let ReceiverEvent::Complete { key } = ev {
                let st = rx.session_stats(&key).unwrap_or_default();
                assert_eq!(st.chunks_done, st.chunks, "completed with chunks missing");
                rx.finish(now, key, Ok("ok".into()));
            }
        }
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
    }
}
