//! Attacks on the protocol core, in memory and deterministic: each is rejected and counted,
//! nothing is written for it, and an honest sender on the same receiver still completes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use udpix::proto::crypto::{Pake, Passphrase};
use udpix::proto::receiver::{FileKey, Receiver, ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{SendError, Sender, SenderConfig};
use udpix::proto::wire::{self, Body, Header, Offer, kind};
use udpix::store::{IncomingFile, StoreError};

const PASS: &str = "417-orbit-lantern-mosaic";

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

fn secure_sender(now: Instant, pass: &str, session: u64, name: &str, data: &[u8]) -> Sender {
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(pass)),
        ..SenderConfig::default()
    };
    let offer = Sender::offer_for(&config, name, data, "", None);
    Sender::new(now, config, session, offer, Bytes::copy_from_slice(data))
}

fn secure_receiver() -> Receiver {
    Receiver::new(ReceiverConfig {
        passphrase: Some(Passphrase::new(PASS)),
        ..ReceiverConfig::default()
    })
}

/// A loss-free, zero-delay network between any number of senders and one receiver, with a
/// hook that sees (and may change or add to) every datagram on its way to the receiver.
/// What the receiver places goes through the real store ([`IncomingFile`] in a temp folder),
/// which hashes it and keeps it only if it matches the offer, as `udpix recv` does.
struct World {
    now: Instant,
    receiver: Receiver,
    senders: Vec<(SocketAddr, Sender)>,
    /// The output folder.
    dir: tempfile::TempDir,
    incoming: HashMap<FileKey, IncomingFile>,
    to_verify: Vec<FileKey>,
    /// Where each verified session's file was saved.
    saved: HashMap<FileKey, PathBuf>,
    completed: Vec<FileKey>,
    /// Sessions the store refused for a hash mismatch.
    mismatches: Vec<FileKey>,
    auth_failures: Vec<SocketAddr>,
    /// Every datagram, both ways: (from, to, bytes).
    wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    receiver_addr: SocketAddr,
}

impl World {
    fn new(receiver: Receiver) -> Self {
        Self {
            now: Instant::now(),
            receiver,
            senders: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            incoming: HashMap::new(),
            to_verify: Vec::new(),
            saved: HashMap::new(),
            completed: Vec::new(),
            mismatches: Vec::new(),
            auth_failures: Vec::new(),
            wire: Vec::new(),
            receiver_addr: "10.9.9.9:7878".parse().expect("addr"),
        }
    }

    /// The receiver's events, as the engine applies them: a file for each accepted offer,
    /// gone with a failed session.
    fn apply_events(&mut self) {
        while let Some(ev) = self.receiver.poll_event() {
            match ev {
                ReceiverEvent::Accepted { key, offer } => {
                    let f = IncomingFile::create(self.dir.path(), offer.size).expect("create");
                    self.incoming.insert(key, f);
                }
                ReceiverEvent::Repaired {
                    key, offset, data, ..
                } => {
                    let f = self.incoming.get(&key).expect("a file for every session");
                    f.write_at(offset, &data).expect("write");
                }
                ReceiverEvent::Complete { key } => self.to_verify.push(key),
                ReceiverEvent::Failed { key, .. } => {
                    self.incoming.remove(&key);
                }
                ReceiverEvent::AuthFailed { peer } => self.auth_failures.push(peer),
                _ => {}
            }
        }
    }

    /// Hashes each complete file against its offer and tells the receiver the verdict.
    fn verify(&mut self) {
        for key in std::mem::take(&mut self.to_verify) {
            let Some(file) = self.incoming.remove(&key) else {
                continue;
            };
            let offer = self.receiver.session_offer(&key).cloned().expect("offer");
            let verdict = match file.finish(&offer.blake3, &offer.name) {
                Ok(path) => {
                    self.saved.insert(key, path);
                    self.completed.push(key);
                    Ok("saved".to_owned())
                }
                Err(e @ StoreError::HashMismatch { .. }) => {
                    self.mismatches.push(key);
                    Err((wire::done::HASH_MISMATCH, e.peer_reason()))
                }
                Err(e) => Err((wire::done::STORE_FAILED, e.peer_reason())),
            };
            self.receiver.finish(self.now, key, verdict);
        }
    }

    fn deliver_to_receiver(&mut self, from: SocketAddr, mut d: Vec<u8>) {
        self.wire.push((from, self.receiver_addr, d.clone()));
        let placement = self.receiver.handle(self.now, from, &mut d);
        // The offer's file first (its first chunk may be this datagram), then the chunk,
        // then the hash once the last chunk is written.
        self.apply_events();
        if let Some(p) = placement {
            let f = self.incoming.get(&p.key).expect("a file for every session");
            f.write_at(p.offset, p.data).expect("write");
        }
        self.verify();
    }

    /// The bytes of a session's saved file.
    fn saved_bytes(&self, key: &FileKey) -> Vec<u8> {
        std::fs::read(&self.saved[key]).expect("saved file")
    }

    /// What the output folder holds (part files included).
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Runs until every sender has finished or `limit` of virtual time passed. `tamper` sees
    /// each sender datagram and returns the datagrams to deliver instead, with the source
    /// address each appears to come from.
    fn run(
        &mut self,
        limit: Duration,
        tamper: impl FnMut(&mut StdRng, SocketAddr, Vec<u8>) -> Vec<(SocketAddr, Vec<u8>)>,
    ) {
        self.run_until(limit, tamper, |_| false);
    }

    /// Like [`World::run`], and also stops as soon as `until` holds once nothing is left
    /// to deliver (every queue empty, no timer run yet).
    fn run_until(
        &mut self,
        limit: Duration,
        mut tamper: impl FnMut(&mut StdRng, SocketAddr, Vec<u8>) -> Vec<(SocketAddr, Vec<u8>)>,
        until: impl Fn(&World) -> bool,
    ) {
        assert!(
            !self.senders.is_empty(),
            "a run with no sender proves nothing"
        );
        let mut rng = StdRng::seed_from_u64(99);
        let start = self.now;
        let mut buf = Vec::new();
        loop {
            let mut progressed = true;
            while progressed {
                progressed = false;
                for i in 0..self.senders.len() {
                    let addr = self.senders[i].0;
                    while self.senders[i].1.poll_transmit(self.now, &mut buf) {
                        progressed = true;
                        for (from, d) in tamper(&mut rng, addr, buf.clone()) {
                            self.deliver_to_receiver(from, d);
                        }
                    }
                }
                while let Some(t) = self.receiver.poll_transmit(self.now) {
                    progressed = true;
                    self.wire
                        .push((self.receiver_addr, t.dest, t.payload.clone()));
                    let mut d = t.payload;
                    if let Some((_, s)) = self.senders.iter_mut().find(|(a, _)| *a == t.dest) {
                        s.handle(self.now, &mut d);
                    }
                }
                self.apply_events();
                self.verify();
                for (_, s) in &mut self.senders {
                    while s.poll_event().is_some() {}
                }
            }
            if until(self) {
                return;
            }
            if self.senders.iter().all(|(_, s)| s.is_finished()) || self.now - start > limit {
                return;
            }
            let next = self
                .senders
                .iter()
                .filter_map(|(_, s)| s.poll_timeout())
                .chain(self.receiver.poll_timeout())
                .min();
            let Some(next) = next else { return };
            self.now = self.now.max(next);
            for (_, s) in &mut self.senders {
                if s.poll_timeout().is_some_and(|t| t <= self.now) {
                    s.handle_timeout(self.now);
                }
            }
            if self.receiver.poll_timeout().is_some_and(|t| t <= self.now) {
                self.receiver.handle_timeout(self.now);
            }
        }
    }

    fn outcome(&self, i: usize) -> Option<Result<String, SendError>> {
        self.senders[i].1.outcome().cloned()
    }
}

/// A distinct address (and IP) per `n`.
fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 4000))
}

fn pass_through(_: &mut StdRng, from: SocketAddr, d: Vec<u8>) -> Vec<(SocketAddr, Vec<u8>)> {
    vec![(from, d)]
}

#[test]
fn honest_secure_transfer_completes() {
    // Sealed datagrams stay within the configured size, like clear ones.
    let c = SenderConfig {
        passphrase: Some(Passphrase::new(PASS)),
        ..SenderConfig::default()
    };
    assert_eq!(usize::from(c.chunk_size()) + c.data_overhead(), 1200);
    let d = data(300_000, 1);
    let mut w = World::new(secure_receiver());
    let s = secure_sender(w.now, PASS, 11, "a.png", &d);
    w.senders.push((addr(1), s));
    w.run(Duration::from_secs(30), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.completed.len(), 1);
    assert_eq!(w.saved_bytes(&w.completed[0]), d);
    let largest = w.wire.iter().map(|(_, _, d)| d.len()).max().unwrap_or(0);
    assert_eq!(largest, 1200, "no datagram over the 1200-byte default");
}

#[test]
fn wrong_passphrase_is_rejected_counted_and_writes_nothing() {
    let d = data(50_000, 2);
    let mut w = World::new(secure_receiver());
    let bad = secure_sender(w.now, "wrong guess", 21, "bad.png", &d);
    let good = secure_sender(w.now, PASS, 22, "good.png", &d);
    w.senders.push((addr(2), bad));
    w.senders.push((addr(3), good));
    w.run(Duration::from_secs(30), pass_through);
    assert_eq!(w.outcome(0), Some(Err(SendError::AuthFailed)));
    assert!(
        SendError::AuthFailed
            .to_string()
            .contains("authentication failed")
    );
    assert!(matches!(w.outcome(1), Some(Ok(_))));
    assert_eq!(
        w.auth_failures,
        vec![addr(2)],
        "one line with the peer address"
    );
    assert_eq!(w.receiver.stats().auth_failures, 1);
    assert_eq!(w.completed.len(), 1);
    assert_eq!(w.completed[0].peer, addr(3));
    assert_eq!(
        w.listing(),
        vec!["good.png".to_owned()],
        "only the good file"
    );
}

#[test]
fn repeated_failures_from_an_address_are_slowed_down() {
    let mut w = World::new(secure_receiver());
    for i in 0..8u64 {
        let s = secure_sender(w.now, &format!("guess {i}"), 100 + i, "x.png", b"tiny");
        w.senders.push((addr(5), s));
        let idx = w.senders.len() - 1;
        w.run(Duration::from_secs(10), pass_through);
        let out = w.outcome(idx).expect("finished");
        if i < 5 {
            assert_eq!(out, Err(SendError::AuthFailed), "attempt {i}");
        } else {
            let e = out.expect_err("refused").to_string();
            assert!(e.contains("too many failed logins"), "attempt {i}: {e}");
        }
        w.senders.clear();
    }
    assert_eq!(w.receiver.stats().auth_failures, 5);
    assert!(w.receiver.stats().throttled >= 3);
    // An honest sender from another address is not affected.
    let d = data(20_000, 3);
    w.senders
        .push((addr(6), secure_sender(w.now, PASS, 300, "ok.png", &d)));
    w.run(Duration::from_secs(10), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))));
}

#[test]
fn truncated_forged_and_replayed_handshakes_fail_while_honest_completes() {
    let d = data(200_000, 4);
    let mut w = World::new(secure_receiver());
    let honest = addr(7);
    w.senders
        .push((honest, secure_sender(w.now, PASS, 700, "honest.png", &d)));
    let mut rng = StdRng::seed_from_u64(5);
    // Record an honest handshake of another session to replay later.
    let mut recorder = secure_sender(w.now, PASS, 701, "rec.png", b"abc");
    let mut hello = Vec::new();
    assert!(recorder.poll_transmit(w.now, &mut hello));
    let attacker = addr(8);
    let mut injected = 0;
    w.run(Duration::from_secs(30), |rng2, from, dgram| {
        let mut out = vec![(from, dgram.clone())];
        if from == honest && injected < 200 {
            injected += 1;
            // From the attacker's own address: a truncated HELLO (too short to be answered),
            // a replay of the recorded HELLO, and a made-up CONFIRM for it.
            out.push((attacker, hello[..hello.len() / 2].to_vec()));
            out.push((attacker, hello.clone()));
            let h = Header {
                kind: kind::CONFIRM,
                session: 701,
                pn: 1,
            };
            let confirm = Body::Confirm {
                confirm: rng.random(),
                token: vec![rng.random(); 92],
            };
            out.push((attacker, wire::encode_vec(&h, &confirm)));
            // Spoofed from the honest sender's address, in its session: a forged CONFIRM.
            let h = Header {
                kind: kind::CONFIRM,
                session: 700,
                pn: 1,
            };
            let confirm = Body::Confirm {
                confirm: rng2.random(),
                token: vec![rng2.random(); 92],
            };
            out.push((honest, wire::encode_vec(&h, &confirm)));
            // A damaged copy that arrives before the genuine one.
            let mut flipped = dgram;
            let i = rng2.random_range(0..flipped.len());
            flipped[i] ^= 0x04;
            out.insert(0, (from, flipped));
        }
        out
    });
    assert!(injected >= 150, "{injected}");
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.completed.len(), 1);
    assert_eq!(w.saved_bytes(&w.completed[0]), d);
    let st = w.receiver.stats();
    assert!(
        st.malformed >= injected,
        "truncated HELLOs not counted: {st:?}"
    );
    assert!(st.unauthentic > 0, "bit flips not counted: {st:?}");
    // Forged confirmations carry no token of ours: dropped, and nobody is blamed for them.
    assert!(
        st.bad_tokens >= injected,
        "forged CONFIRMs not counted: {st:?}"
    );
    assert!(w.auth_failures.is_empty(), "{:?}", w.auth_failures);
    // The replayed HELLO is a valid one: its address got a few handshake replies (within
    // its budget) and nothing of any session.
    let to_attacker: Vec<u8> = w
        .wire
        .iter()
        .filter(|(_, to, _)| *to == attacker)
        .map(|(_, _, d)| d[1])
        .collect();
    assert!(
        !to_attacker.is_empty(),
        "the attacker's HELLOs were not seen"
    );
    assert!(
        to_attacker
            .iter()
            .all(|k| matches!(*k, kind::HELLO_REPLY | kind::RETRY)),
        "{to_attacker:?}"
    );
    assert!(st.pake_runs <= 1 + 8, "{st:?}");
}

#[test]
fn bit_flipped_sealed_datagrams_are_dropped_and_counted() {
    let d = data(400_000, 6);
    let mut w = World::new(secure_receiver());
    w.senders
        .push((addr(9), secure_sender(w.now, PASS, 900, "f.png", &d)));
    let mut flips = 0;
    w.run(Duration::from_secs(60), |rng, _, mut dgram| {
        // After the handshake, corrupt one datagram in five (flip one bit anywhere).
        if dgram.len() > 100 && dgram[1] != kind::HELLO && rng.random_bool(0.2) {
            let i = rng.random_range(0..dgram.len());
            dgram[i] ^= 1 << rng.random_range(0..8);
            flips += 1;
        }
        vec![(addr(9), dgram)]
    });
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.saved_bytes(&w.completed[0]), d);
    assert!(flips > 50);
    let st = w.receiver.stats();
    assert!(
        st.unauthentic + st.malformed >= flips / 2,
        "{st:?} after {flips} flips"
    );
}

#[test]
fn datagrams_of_another_session_and_old_sessions_are_rejected() {
    let d1 = data(150_000, 7);
    let d2 = data(150_000, 8);
    let mut w = World::new(secure_receiver());
    w.senders
        .push((addr(10), secure_sender(w.now, PASS, 1000, "one.png", &d1)));
    w.run(Duration::from_secs(30), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))));
    // Everything session 1000 sent, to replay into the next sessions.
    let old: Vec<Vec<u8>> = w
        .wire
        .iter()
        .filter(|(from, _, _)| *from == addr(10))
        .map(|(_, _, d)| d.clone())
        .collect();
    w.senders.clear();
    w.senders
        .push((addr(10), secure_sender(w.now, PASS, 1001, "two.png", &d2)));
    w.senders
        .push((addr(11), secure_sender(w.now, PASS, 1002, "three.png", &d2)));
    let mut k = 0usize;
    w.run(Duration::from_secs(30), |_, from, dgram| {
        let mut out = vec![(from, dgram.clone())];
        if from == addr(10) {
            // Old session's packets, replayed from the same address.
            out.push((from, old[k % old.len()].clone()));
            k += 1;
            // This session's packets relabelled as the other live session (1002), spoofed
            // from that session's address.
            let mut foreign = dgram;
            if foreign.len() > 14 && foreign[1] == kind::DATA {
                foreign[2..10].copy_from_slice(&1002u64.to_be_bytes());
                out.push((addr(11), foreign));
            }
        }
        out
    });
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert!(matches!(w.outcome(1), Some(Ok(_))), "{:?}", w.outcome(1));
    assert_eq!(w.completed.len(), 3);
    for key in &w.completed {
        let expect = if key.session == 1000 { &d1 } else { &d2 };
        assert_eq!(&w.saved_bytes(key), expect, "session {}", key.session);
    }
    let st = w.receiver.stats();
    assert!(
        st.replayed > 0,
        "old packets should hit the replay window: {st:?}"
    );
    assert!(
        st.unauthentic > 0,
        "foreign-session packets should fail: {st:?}"
    );
}

/// A datagram in clear, as anyone can make one.
fn clear(k: u8, session: u64, pn: u32, body: &Body<'_>) -> Vec<u8> {
    assert_eq!(k, body.kind());
    wire::encode_vec(
        &Header {
            kind: k,
            session,
            pn,
        },
        body,
    )
}

/// A well-formed HELLO (valid checksum) of exactly `len` bytes: cut short or padded further.
fn hello_of_len(pake: [u8; wire::PAKE_LEN], session: u64, len: usize) -> Vec<u8> {
    let h = Header {
        kind: kind::HELLO,
        session,
        pn: 0,
    };
    let mut d = Vec::new();
    wire::encode_unsealed(
        &h,
        &Body::Hello {
            pake,
            cookie: Vec::new(),
        },
        &mut d,
    );
    d.resize(len - wire::TRAILER_LEN, 0x5a);
    let sum = crc32fast::hash(&d);
    d.extend_from_slice(&sum.to_be_bytes());
    assert!(
        wire::decode(&d).is_ok(),
        "a HELLO of {len} bytes is well-formed"
    );
    d
}

fn plain_receiver() -> Receiver {
    Receiver::new(ReceiverConfig::default())
}

/// An offer of `size` bytes in chunks of `chunk_size`, with a made-up hash.
fn offer(name: &str, size: u64, chunk_size: u16) -> Offer {
    Offer {
        name: name.to_owned(),
        size,
        chunk_size,
        chunk_count: size.div_ceil(u64::from(chunk_size)) as u32,
        blake3: [7; 32],
        format: String::new(),
        width: 0,
        height: 0,
        file: 0,
        first_chunk: 0,
    }
}

#[test]
fn a_sender_whose_offer_lies_about_the_hash_gets_nothing_stored() {
    let d = data(100_000, 14);
    let mut w = World::new(secure_receiver());
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(PASS)),
        ..SenderConfig::default()
    };
    let mut lie = Sender::offer_for(&config, "liar.png", &d, "", None);
    lie.blake3 = *blake3::hash(b"some other image").as_bytes();
    let liar = Sender::new(w.now, config, 1400, lie, Bytes::from(d.clone()));
    w.senders.push((addr(50), liar));
    w.run(Duration::from_secs(30), pass_through);
    match w.outcome(0) {
        Some(Err(SendError::HashMismatch(why))) => {
            assert!(why.contains("does not match the offered hash"), "{why}");
        }
        other => panic!("the liar was not told of the mismatch: {other:?}"),
    }
    let key = FileKey {
        peer: addr(50),
        session: 1400,
        file: 0,
    };
    assert_eq!(w.mismatches, vec![key]);
    assert!(w.completed.is_empty());
    assert!(w.listing().is_empty(), "kept: {:?}", w.listing());
    let st = w.receiver.stats();
    assert_eq!((st.completed, st.failed), (0, 1), "{st:?}");
    // The same image, honestly offered, is kept.
    w.senders.clear();
    w.senders
        .push((addr(50), secure_sender(w.now, PASS, 1401, "liar.png", &d)));
    w.run(Duration::from_secs(30), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.listing(), vec!["liar.png".to_owned()]);
    assert_eq!(w.saved_bytes(&w.completed[0]), d);
}

#[test]
fn replayed_sealed_datagrams_in_a_live_session_are_counted_and_change_nothing() {
    let d = data(600_000, 15);
    let mut w = World::new(secure_receiver());
    let from = addr(60);
    w.senders
        .push((from, secure_sender(w.now, PASS, 1500, "r.png", &d)));
    let key = FileKey {
        peer: from,
        session: 1500,
        file: 0,
    };
    let chunks = w.senders[0].1.offer().chunk_count;
    // Record every sealed datagram the sender sends until half the image is in.
    let mut sealed = Vec::new();
    w.run_until(
        Duration::from_secs(30),
        |_, from, d| {
            if !matches!(d[1], kind::HELLO | kind::CONFIRM) {
                sealed.push(d.clone());
            }
            vec![(from, d)]
        },
        |w| {
            w.receiver
                .session_stats(&key)
                .is_some_and(|s| s.chunks_done >= chunks / 2)
        },
    );
    assert!(w.outcome(0).is_none(), "stopped mid-transfer");
    let kinds: HashSet<u8> = sealed.iter().map(|d| d[1]).collect();
    assert!(
        kinds.contains(&kind::OFFER) && kinds.contains(&kind::DATA),
        "{kinds:?}"
    );
    assert!(
        sealed.len() as u32 >= chunks / 2,
        "{} recorded",
        sealed.len()
    );
    let before = w.receiver.stats().clone();
    let session_before = w.receiver.session_stats(&key).expect("live session");
    let timer_before = w.receiver.poll_timeout();
    assert!(w.receiver.poll_transmit(w.now).is_none(), "quiet before");
    // Every one of them again, twice, mid-transfer.
    let n = 2 * sealed.len() as u64;
    for _ in 0..2 {
        for d in &sealed {
            let mut d = d.clone();
            assert!(w.receiver.handle(w.now, from, &mut d).is_none(), "placed");
        }
    }
    assert!(
        w.receiver.poll_transmit(w.now).is_none(),
        "a replay was answered"
    );
    assert!(w.receiver.poll_event().is_none(), "a replay made an event");
    let after = w.receiver.stats().clone();
    assert_eq!(
        after,
        udpix::proto::receiver::EndpointStats {
            replayed: before.replayed + n,
            ..before
        }
    );
    // Dropped (as damage) and nothing else: no duplicates, no progress, no idle reset.
    let session_after = w.receiver.session_stats(&key).expect("live session");
    assert_eq!(
        session_after,
        udpix::proto::stats::TransferStats {
            malformed: session_before.malformed + n,
            ..session_before
        }
    );
    assert_eq!(w.receiver.poll_timeout(), timer_before);
    // The transfer goes on and is byte-exact.
    w.run(Duration::from_secs(30), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.saved_bytes(&key), d);
    // Replayed into the finished session, they do not get its DONE repeated either.
    for d in &sealed {
        let mut d = d.clone();
        assert!(w.receiver.handle(w.now, from, &mut d).is_none());
    }
    assert!(w.receiver.poll_transmit(w.now).is_none(), "DONE repeated");
    assert_eq!(w.receiver.stats().replayed, before.replayed + n + n / 2);
}

#[test]
fn a_hello_shorter_than_the_minimum_gets_no_reply_and_one_at_the_minimum_does() {
    let pake = Pake::start(&Passphrase::new(PASS)).message();
    for secure in [true, false] {
        let mut r = if secure {
            secure_receiver()
        } else {
            plain_receiver()
        };
        let now = Instant::now();
        let short = [52, 100, 600, wire::MIN_HELLO_DATAGRAM - 1];
        for (i, len) in short.into_iter().enumerate() {
            let mut d = hello_of_len(pake, 100 + i as u64, len);
            r.handle(now, addr(70 + i as u16), &mut d);
            assert!(
                r.poll_transmit(now).is_none(),
                "secure {secure}: a {len}-byte HELLO was answered"
            );
        }
        let st = r.stats().clone();
        assert_eq!(st.malformed, short.len() as u64, "secure {secure}: {st:?}");
        assert_eq!(st.pake_runs, 0, "work done for a short HELLO: {st:?}");
        for (i, len) in [wire::MIN_HELLO_DATAGRAM, wire::MIN_HELLO_DATAGRAM + 50]
            .into_iter()
            .enumerate()
        {
            let mut d = hello_of_len(pake, 200 + i as u64, len);
            let peer = addr(80 + i as u16);
            r.handle(now, peer, &mut d);
            let t = r.poll_transmit(now).expect("a full-size HELLO is answered");
            assert_eq!(t.dest, peer);
            let reply = wire::decode(&t.payload).expect("in clear");
            match reply.body {
                Body::HelloReply { .. } => assert!(secure),
                Body::Refuse { code, .. } => {
                    assert!(!secure);
                    assert_eq!(code, wire::reason::MODE_MISMATCH);
                }
                other => panic!("secure {secure}: {other:?}"),
            }
        }
        assert_eq!(r.stats().malformed, short.len() as u64);
    }
}

/// What went to and came from each address.
#[derive(Default)]
struct Tally {
    /// (bytes received from, bytes sent to) per address.
    bytes: HashMap<SocketAddr, (usize, usize)>,
    /// The kinds of replies, and how many of each.
    replies: HashMap<u8, usize>,
}

impl Tally {
    /// Delivers `d` from `from`, then drains what the receiver has to send and its events
    /// (completing an empty file, as a store would).
    fn send(&mut self, r: &mut Receiver, now: Instant, from: SocketAddr, mut d: Vec<u8>) {
        self.bytes.entry(from).or_default().0 += d.len();
        let _ = r.handle(now, from, &mut d);
        while let Some(ev) = r.poll_event() {
            if let ReceiverEvent::Complete { key } = ev {
                let name = r.session_offer(&key).expect("offer").name.clone();
                r.finish(now, key, Ok(format!("saved as {name}")));
            }
        }
        self.drain(r, now);
    }

    fn drain(&mut self, r: &mut Receiver, now: Instant) {
        while let Some(t) = r.poll_transmit(now) {
            self.bytes.entry(t.dest).or_default().1 += t.payload.len();
            *self.replies.entry(t.payload[1]).or_default() += 1;
        }
    }
}

/// The smallest OFFER that breaks a rule: its name is longer than allowed (20 bytes).
fn offer_with_long_name(session: u64) -> Vec<u8> {
    let mut d = vec![wire::VERSION, kind::OFFER];
    d.extend_from_slice(&session.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&u16::MAX.to_be_bytes());
    let sum = crc32fast::hash(&d);
    d.extend_from_slice(&sum.to_be_bytes());
    d
}

/// One OFFER-sized-or-smaller datagram pattern a blind (spoofing) sender may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Probe {
    /// Full-size HELLOs: HELLO_REPLY or RETRY (secure), a mode-mismatch REFUSE (insecure).
    Hello,
    /// Full-size HELLOs carrying a made-up cookie.
    HelloWithCookie,
    /// Well-formed HELLOs under the minimum size, and cut ones: nothing.
    ShortHello,
    /// CONFIRMs with a made-up token: nothing.
    Confirm,
    /// DATA of a session nobody has: "unknown session".
    UnknownData,
    /// A PING of a session nobody has, cut to its bare header (14 bytes): "unknown session".
    BarePing,
    /// OFFERs of 20 and 21 bytes that break a rule: insecure, a BAD_OFFER REFUSE whose
    /// reason alone is over three times that.
    TinyBadOffer,
    /// Well-formed OFFERs too large or needing too much memory: a REFUSE saying so
    /// (insecure), a mode-mismatch one (secure).
    RefusedOffer,
    /// Insecure: an OFFER in 1-byte chunks, then DATA that always leaves a gap and PINGs,
    /// each asking at once for an ACK listing every range so far (up to 65, 547 bytes).
    GappyData,
    /// Insecure: an OFFER of an empty file with a 255-byte name, saved at once, then PINGs,
    /// each asking for its DONE ("saved as" the name) again.
    DonePing,
}

const PROBES: [Probe; 10] = [
    Probe::Hello,
    Probe::HelloWithCookie,
    Probe::ShortHello,
    Probe::Confirm,
    Probe::UnknownData,
    Probe::BarePing,
    Probe::TinyBadOffer,
    Probe::RefusedOffer,
    Probe::GappyData,
    Probe::DonePing,
];

/// What `probe` sends in `round` as session `s` (sessions that last use `base`).
fn probe_datagrams(
    probe: Probe,
    round: u32,
    s: u64,
    base: u64,
    pake: [u8; wire::PAKE_LEN],
    rng: &mut StdRng,
) -> Vec<Vec<u8>> {
    let ping = |sid: u64, pn: u32| clear(kind::PING, sid, pn, &Body::Ping);
    match probe {
        Probe::Hello => vec![hello_of_len(pake, s, wire::MIN_HELLO_DATAGRAM)],
        Probe::HelloWithCookie => {
            let body = Body::Hello {
                pake,
                cookie: (0..36).map(|_| rng.random()).collect(),
            };
            vec![clear(kind::HELLO, s, 0, &body)]
        }
        Probe::ShortHello => {
            let mut cut = hello_of_len(pake, s, wire::MIN_HELLO_DATAGRAM);
            cut.truncate(rng.random_range(14..cut.len()));
            vec![hello_of_len(pake, s, 60), cut]
        }
        Probe::Confirm => {
            let body = Body::Confirm {
                confirm: rng.random(),
                token: (0..92).map(|_| rng.random()).collect(),
            };
            vec![clear(kind::CONFIRM, s, 1, &body)]
        }
        Probe::UnknownData => {
            let body = Body::Data {
                chunk: 0,
                retransmit: false,
                payload: &[1],
            };
            vec![clear(kind::DATA, s, 2, &body)]
        }
        Probe::BarePing => {
            let mut bare = ping(s, 3);
            bare.truncate(wire::HEADER_LEN);
            vec![bare]
        }
        Probe::TinyBadOffer => {
            let long_name = offer_with_long_name(s);
            let mut not_utf8 = long_name[..wire::HEADER_LEN].to_vec();
            not_utf8.extend_from_slice(&[0, 1, 0xff]);
            let sum = crc32fast::hash(&not_utf8);
            not_utf8.extend_from_slice(&sum.to_be_bytes());
            vec![long_name, not_utf8]
        }
        Probe::RefusedOffer => {
            let big = offer("big.png", 1 << 40, 1000);
            let heavy = offer("t", 500_000_000, 1);
            vec![
                clear(kind::OFFER, s, 0, &Body::Offer(big)),
                clear(kind::OFFER, s, 0, &Body::Offer(heavy)),
            ]
        }
        Probe::GappyData => {
            let mut v = Vec::new();
            if round == 0 {
                let o = offer("g", 100_000, 1);
                v.push(clear(kind::OFFER, base, 0, &Body::Offer(o)));
            }
            for j in 0..8 {
                let k = round * 8 + j + 1;
                let payload = [k as u8];
                let data = Body::Data {
                    chunk: k,
                    retransmit: false,
                    payload: &payload,
                };
                v.push(clear(kind::DATA, base, 3 * k, &data));
                v.push(ping(base, 3 * k + 1));
            }
            v
        }
        Probe::DonePing => {
            let mut v = Vec::new();
            if round == 0 {
                let o = offer(&"n".repeat(wire::MAX_NAME_LEN), 0, 1000);
                v.push(clear(kind::OFFER, base, 0, &Body::Offer(o)));
            }
            v.extend((0..4).map(|j| ping(base, round * 4 + j + 1)));
            v
        }
    }
}

#[test]
fn spoofed_addresses_never_get_more_than_three_times_what_they_sent() {
    for secure in [true, false] {
        let mut r = Receiver::new(ReceiverConfig {
            passphrase: secure.then(|| Passphrase::new(PASS)),
            cookie_threshold: 4,
            ..ReceiverConfig::default()
        });
        let mut rng = StdRng::seed_from_u64(10);
        let mut t = Tally::default();
        let mut now = Instant::now();
        let pake = Pake::start(&Passphrase::new(PASS)).message();
        // Blind senders: they never read a reply, so none proves its address. Each keeps
        // to one probe, so what a small datagram earns is not hidden behind a big one.
        let spoofed: Vec<(SocketAddr, Probe)> = (0..40)
            .map(|n| (addr(100 + n), PROBES[usize::from(n) % PROBES.len()]))
            .collect();
        let mut session = 5000u64;
        for round in 0..40u32 {
            for (n, &(from, probe)) in spoofed.iter().enumerate() {
                session += 1;
                // The one session a lasting probe keeps using.
                let base = (1 << 40) | n as u64;
                for d in probe_datagrams(probe, round, session, base, pake, &mut rng) {
                    t.send(&mut r, now, from, d);
                }
            }
            now += Duration::from_millis(50);
            if r.poll_timeout().is_some_and(|x| x <= now) {
                r.handle_timeout(now);
                t.drain(&mut r, now);
            }
        }
        let mut worst: HashMap<Probe, f64> = HashMap::new();
        for &(a, probe) in &spoofed {
            let (inb, out) = t.bytes.get(&a).copied().unwrap_or_default();
            assert!(inb > 0, "{a} sent nothing");
            let ratio = out as f64 / inb as f64;
            let w = worst.entry(probe).or_default();
            *w = w.max(ratio);
            assert!(
                out <= 3 * inb,
                "secure {secure}, {probe:?}: {a} was sent {out} bytes for {inb} received"
            );
        }
        assert_eq!(t.bytes.len(), spoofed.len(), "replies went elsewhere");
        eprintln!("secure {secure}: out/in per probe {worst:?}");
        let st = r.stats().clone();
        // Insecure: cases whose natural reply is over the budget were reached, and cut to
        // fit or withheld. Secure: no reply to an unproven address comes near it today.
        if secure {
            assert_eq!(st.amplification_limited, 0, "{st:?}");
        } else {
            assert!(st.amplification_limited > 0, "{st:?}");
        }
        let expect: &[u8] = if secure {
            &[kind::HELLO_REPLY, kind::RETRY, kind::REFUSE, kind::CLOSE]
        } else {
            &[
                kind::REFUSE,
                kind::CLOSE,
                kind::ACCEPT,
                kind::ACK,
                kind::DONE,
            ]
        };
        for k in expect {
            assert!(
                t.replies.contains_key(k),
                "secure {secure}: no reply of type {k:#04x} was provoked: {:?}",
                t.replies
            );
        }
        if secure {
            assert!(st.retries_sent > 0 && st.pake_runs <= 4, "{st:?}");
        }
    }
}

#[test]
fn an_over_budget_refusal_is_cut_short_but_keeps_its_code() {
    let mut r = plain_receiver();
    let now = Instant::now();
    let from = addr(90);
    // 20 bytes: an OFFER header and a name length over the limit. The full refusal says
    // "the offer is malformed: text field too long" (64 bytes in all).
    let mut d = offer_with_long_name(9);
    assert_eq!(d.len(), 20);
    r.handle(now, from, &mut d);
    let t = r.poll_transmit(now).expect("refused, not ignored");
    assert_eq!(t.payload.len(), 60, "exactly three times the request");
    match wire::decode(&t.payload).expect("a valid REFUSE").body {
        Body::Refuse { code, reason } => {
            assert_eq!(code, wire::reason::BAD_OFFER);
            assert!(
                "the offer is malformed: text field too long".starts_with(&reason),
                "{reason}"
            );
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.stats().amplification_limited, 1);
    assert_eq!(r.stats().refused, 1);
}

#[test]
fn the_sessions_cap_and_the_per_address_cap_hold_and_free_up() {
    let config = ReceiverConfig::default();
    // docs/PROTOCOL.md, Session budgets.
    assert_eq!((config.max_sessions, config.max_sessions_per_addr), (64, 8));
    let mut r = plain_receiver();
    let mut t = Tally::default();
    let now = Instant::now();
    let refusals = |t: &Tally| t.replies.get(&kind::REFUSE).copied().unwrap_or(0);
    // Nine offers from each of nine addresses: the ninth of each address is over its own
    // cap, and past 64 in all every further offer is busy.
    let mut accepted = Vec::new();
    for n in 0..9u16 {
        for k in 0..9u64 {
            let from = addr(200 + n);
            let session = u64::from(n) * 100 + k + 1;
            let before = t.replies.get(&kind::ACCEPT).copied().unwrap_or(0);
            let o = offer("s.png", 100, 100);
            t.send(
                &mut r,
                now,
                from,
                clear(kind::OFFER, session, 0, &Body::Offer(o)),
            );
            if t.replies.get(&kind::ACCEPT).copied().unwrap_or(0) > before {
                accepted.push(FileKey {
                    peer: from,
                    session,
                    file: 0,
                });
            }
            assert!(r.active_sessions() <= 64);
        }
    }
    assert_eq!(accepted.len(), 64);
    assert_eq!(r.active_sessions(), 64);
    assert_eq!(refusals(&t), 81 - 64);
    assert_eq!(r.stats().refused, 81 - 64);
    // Per address: none more than 8.
    for n in 0..9u16 {
        let mine = accepted.iter().filter(|k| k.peer == addr(200 + n)).count();
        assert!(mine <= 8, "{} has {mine}", addr(200 + n));
    }
    // One transfer completes: its place goes to the next offer.
    let done = accepted[0];
    let data = Body::Data {
        chunk: 0,
        retransmit: false,
        payload: &[0; 100],
    };
    t.send(
        &mut r,
        now,
        done.peer,
        clear(kind::DATA, done.session, 1, &data),
    );
    assert_eq!(r.active_sessions(), 63);
    let o = offer("s.png", 100, 100);
    let next = clear(kind::OFFER, 999, 0, &Body::Offer(o));
    t.send(&mut r, now, addr(250), next);
    assert_eq!(r.active_sessions(), 64);
    assert_eq!(refusals(&t), 81 - 64, "the freed place was taken");
}

#[test]
fn lingering_sessions_stay_within_their_cap_forgetting_the_oldest() {
    use udpix::proto::receiver::MAX_LINGERING;
    assert_eq!(MAX_LINGERING, 1024);
    let mut r = plain_receiver();
    let mut t = Tally::default();
    let start = Instant::now();
    let key = |n: u64| FileKey {
        peer: addr((n % 200) as u16),
        session: n + 1,
        file: 0,
    };
    let data = Body::Data {
        chunk: 0,
        retransmit: false,
        payload: &[0; 10],
    };
    // One-chunk transfers finishing one per millisecond, well within the 20 s linger.
    let total = MAX_LINGERING as u64 + 100;
    for n in 0..total {
        let now = start + Duration::from_millis(n);
        let k = key(n);
        let o = offer("l.png", 10, 10);
        t.send(
            &mut r,
            now,
            k.peer,
            clear(kind::OFFER, k.session, 0, &Body::Offer(o)),
        );
        t.send(&mut r, now, k.peer, clear(kind::DATA, k.session, 1, &data));
        assert!(r.lingering_sessions() <= MAX_LINGERING, "at {n}");
    }
    assert_eq!(r.lingering_sessions(), MAX_LINGERING);
    assert_eq!(r.stats().completed, total);
    // Then 64 sessions that finish together, with the cap already reached.
    let now = start + Duration::from_millis(total);
    let batch: Vec<FileKey> = (0..64).map(|n| key(10_000 + n)).collect();
    for k in &batch {
        let o = offer("l.png", 10, 10);
        t.send(
            &mut r,
            now,
            k.peer,
            clear(kind::OFFER, k.session, 0, &Body::Offer(o)),
        );
    }
    assert_eq!(r.active_sessions(), 64);
    for k in &batch {
        t.send(&mut r, now, k.peer, clear(kind::DATA, k.session, 1, &data));
    }
    assert_eq!(r.active_sessions(), 0);
    assert_eq!(r.lingering_sessions(), MAX_LINGERING);
    // The oldest were forgotten ("unknown session"), the newest still repeat their DONE.
    let reply_to = |r: &mut Receiver, k: FileKey| {
        let mut ping = clear(kind::PING, k.session, 9, &Body::Ping);
        let _ = r.handle(now, k.peer, &mut ping);
        let t = r.poll_transmit(now).expect("an answer");
        assert!(r.poll_transmit(now).is_none());
        wire::decode(&t.payload).expect("clear").body.kind()
    };
    for n in [0, 1, 99, 100 + 63] {
        assert_eq!(reply_to(&mut r, key(n)), kind::CLOSE, "session {n}");
    }
    for n in [100 + 64, total - 1] {
        assert_eq!(reply_to(&mut r, key(n)), kind::DONE, "session {n}");
    }
    assert_eq!(reply_to(&mut r, batch[63]), kind::DONE);
}

#[test]
fn mode_mismatch_is_refused_with_a_clear_reason() {
    let d = data(1000, 11);
    // Insecure sender, secure receiver.
    let mut w = World::new(secure_receiver());
    let offer = Sender::offer_for(&SenderConfig::default(), "p.png", &d, "", None);
    let plain = Sender::new(
        w.now,
        SenderConfig::default(),
        7,
        offer,
        Bytes::from(d.clone()),
    );
    w.senders.push((addr(20), plain));
    w.run(Duration::from_secs(10), pass_through);
    let e = w
        .outcome(0)
        .expect("done")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("requires a passphrase"), "{e}");
    // Secure sender, insecure receiver.
    let mut w = World::new(Receiver::new(ReceiverConfig::default()));
    w.senders
        .push((addr(21), secure_sender(w.now, PASS, 8, "q.png", &d)));
    w.run(Duration::from_secs(10), pass_through);
    let e = w
        .outcome(0)
        .expect("done")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("--insecure"), "{e}");
    assert!(w.completed.is_empty());
}

#[test]
fn nothing_readable_on_the_wire() {
    let mut d = data(100_000, 12);
    d[..16].copy_from_slice(b"VISIBLE-MARKER-1");
    let name = "very-secret-holiday-name.png";
    let mut w = World::new(secure_receiver());
    w.senders
        .push((addr(30), secure_sender(w.now, PASS, 3000, name, &d)));
    w.run(Duration::from_secs(30), pass_through);
    assert!(matches!(w.outcome(0), Some(Ok(_))));
    let runs: HashSet<&[u8]> = d.chunks(16).filter(|c| c.len() == 16).collect();
    assert!(w.wire.len() > 80, "only {} datagrams seen", w.wire.len());
    for (_, _, dgram) in &w.wire {
        assert!(
            !dgram.windows(name.len()).any(|x| x == name.as_bytes()),
            "name in clear"
        );
        for win in dgram.windows(16) {
            assert!(!runs.contains(win), "16 bytes of the image in clear");
        }
    }
}

#[test]
fn offers_needing_too_much_memory_are_refused() {
    // 30-byte chunks of a 4 MB image: a 140,000-entry chunk map, over a 16 KiB limit.
    let d = data(4_000_000, 13);
    let mut w = World::new(Receiver::new(ReceiverConfig {
        passphrase: Some(Passphrase::new(PASS)),
        max_session_memory: 16 * 1024,
        ..ReceiverConfig::default()
    }));
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(PASS)),
        max_datagram: 64,
        ..SenderConfig::default()
    };
    let offer = Sender::offer_for(&config, "tiny-chunks.bin", &d, "", None);
    assert_eq!(offer.chunk_size, 30);
    w.senders.push((
        addr(40),
        Sender::new(w.now, config, 4000, offer, Bytes::from(d)),
    ));
    w.run(Duration::from_secs(10), pass_through);
    let e = w
        .outcome(0)
        .expect("done")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("max-session-memory"), "{e}");
}

/// Replaces the first copy of the image's last chunk (and every genuine repair symbol) with
/// one forged REPAIR symbol over that chunk, in clear under the session's header.
fn forge_the_tail_repair(
    last: u32,
    chunk_size: u16,
) -> impl FnMut(&mut StdRng, SocketAddr, Vec<u8>) -> Vec<(SocketAddr, Vec<u8>)> {
    move |_, from, d| {
        let Ok(h) = wire::decode_header(&d) else {
            return vec![(from, d)];
        };
        if h.kind == kind::REPAIR {
            return Vec::new();
        }
        let last_chunk = matches!(
            wire::decode(&d),
            Ok(wire::Packet { body: Body::Data { chunk, retransmit: false, .. }, .. }) if chunk == last
        );
        if h.kind != kind::DATA || !last_chunk {
            return vec![(from, d)];
        }
        let symbol = vec![0x5a; usize::from(chunk_size)];
        let forged = Body::Repair {
            file: 0,
            len: 1,
            count: 1,
            index: 0,
            symbol: &symbol,
        };
        let header = Header {
            kind: kind::REPAIR,
            ..h
        };
        vec![(from, wire::encode_vec(&header, &forged))]
    }
}

#[test]
fn a_forged_repair_symbol_cannot_get_a_wrong_file_written_or_past_the_keys() {
    // In clear mode anyone on the path can forge a symbol: the chunk it rebuilds is wrong,
    // and the content hash, checked before anything is written, catches it.
    let d = data(50_000, 16);
    let config = SenderConfig::default();
    let offer = Sender::offer_for(&config, "tail.png", &d, "", None);
    let (last, size) = (offer.chunk_count - 1, offer.chunk_size);
    let mut w = World::new(Receiver::new(ReceiverConfig::default()));
    let s = Sender::new(w.now, config, 1600, offer, Bytes::from(d.clone()));
    w.senders.push((addr(70), s));
    w.run(Duration::from_secs(30), forge_the_tail_repair(last, size));
    assert!(
        matches!(w.outcome(0), Some(Err(SendError::HashMismatch(_)))),
        "{:?}",
        w.outcome(0)
    );
    let key = FileKey {
        peer: addr(70),
        session: 1600,
        file: 0,
    };
    let st = w.receiver.session_stats(&key).expect("the session lingers");
    assert_eq!(st.repaired, 1, "the forged symbol was used: {st:?}");
    assert_eq!(w.mismatches, vec![key]);
    assert!(w.listing().is_empty(), "kept: {:?}", w.listing());
    // Sealed, a forged symbol does not even open: each genuine one arrives with a forgery
    // under the same header, and only the forgeries are dropped.
    let mut w = World::new(secure_receiver());
    w.senders
        .push((addr(71), secure_sender(w.now, PASS, 1601, "tail.png", &d)));
    let mut forged = 0;
    w.run(Duration::from_secs(30), |_, from, d| {
        let Ok(h) = wire::decode_header(&d) else {
            return vec![(from, d)];
        };
        if h.kind != kind::REPAIR {
            return vec![(from, d)];
        }
        forged += 1;
        let symbol = vec![0x5a; d.len() - 22];
        let body = Body::Repair {
            file: 0,
            len: 1,
            count: 1,
            index: 0,
            symbol: &symbol,
        };
        vec![(from, wire::encode_vec(&h, &body)), (from, d)]
    });
    assert!(forged >= 1, "no repair symbol was sent");
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.saved_bytes(&w.completed[0]), d);
    assert!(
        w.receiver.stats().unauthentic >= forged,
        "{:?}",
        w.receiver.stats()
    );
}

/// The packets a receiver queued for `from`, decoded (clear sessions only).
fn replies(r: &mut Receiver, now: Instant) -> Vec<Body<'static>> {
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(now) {
        let p = wire::decode(&t.payload).expect("clear reply");
        out.push(match p.body {
            Body::Done {
                file,
                status,
                blake3,
                message,
            } => Body::Done {
                file,
                status,
                blake3,
                message,
            },
            Body::Accept { offer_pn, confirm } => Body::Accept { offer_pn, confirm },
            Body::Ack(a) => Body::Ack(a),
            other => Body::Close {
                code: other.kind(),
                reason: String::new(),
            },
        });
    }
    out
}

#[test]
fn a_session_takes_files_only_in_order_and_only_four_in_flight() {
    let mut r = plain_receiver();
    let now = Instant::now();
    let from = addr(90);
    let session = 9000;
    // Files of 3 chunks, offered one after another, none of them sent.
    let nth = |n: u32| Offer {
        file: n,
        first_chunk: 3 * n,
        ..offer(&format!("f{n}.png"), 30, 10)
    };
    let mut pn = 10;
    let mut offer_it = |r: &mut Receiver, o: Offer| {
        pn += 1;
        let mut d = clear(kind::OFFER, session, pn, &Body::Offer(o));
        let _ = r.handle(now, from, &mut d);
        while r.poll_event().is_some() {}
        replies(r, now)
    };
    for n in 0..4 {
        let got = offer_it(&mut r, nth(n));
        assert!(
            matches!(got[..], [Body::Accept { .. }]),
            "file {n}: {got:?}"
        );
    }
    // A fifth while four wait: refused on its own, by DONE, and kept as settled.
    let got = offer_it(&mut r, nth(4));
    assert!(
        matches!(&got[..], [Body::Done { file: 4, status: wire::done::REFUSED, message, .. }] if message.contains("in flight")),
        "{got:?}"
    );
    // Out of order (a file skipped, or chunk numbers that overlap an earlier file):
    // dropped, with no state made for it.
    let skipped = offer_it(&mut r, nth(6));
    let overlapping = offer_it(
        &mut r,
        Offer {
            first_chunk: 2,
            ..nth(5)
        },
    );
    assert!(
        skipped.is_empty() && overlapping.is_empty(),
        "{skipped:?} {overlapping:?}"
    );
    let key = |n: u32| FileKey {
        peer: from,
        session,
        file: n,
    };
    assert!(r.session_offer(&key(5)).is_none() && r.session_offer(&key(6)).is_none());
    assert_eq!(
        r.session_totals(&key(0).session_key()).map(|s| s.malformed),
        Some(2)
    );
    // Once file 0 has its verdict, the file in line after the refused one is taken.
    for c in 0..3 {
        let body = Body::Data {
            chunk: c,
            retransmit: false,
            payload: &[3; 10],
        };
        let mut d = clear(kind::DATA, session, 100 + c, &body);
        let _ = r.handle(now, from, &mut d);
    }
    while let Some(ev) = r.poll_event() {
        if let ReceiverEvent::Complete { key } = ev {
            r.finish(now, key, Ok("saved".into()));
        }
    }
    let _ = replies(&mut r, now);
    let got = offer_it(&mut r, nth(5));
    assert!(matches!(got[..], [Body::Accept { .. }]), "{got:?}");
    assert!(r.session_offer(&key(5)).is_some());
}

#[test]
fn chunks_of_a_file_not_offered_yet_are_neither_stored_nor_acknowledged() {
    let mut r = plain_receiver();
    let now = Instant::now();
    let from = addr(91);
    let session = 9100;
    let mut d = clear(
        kind::OFFER,
        session,
        0,
        &Body::Offer(offer("a.png", 20, 10)),
    );
    let _ = r.handle(now, from, &mut d);
    while r.poll_event().is_some() {}
    let _ = replies(&mut r, now);
    // Chunk 5 belongs to no file offered: the sender's next file, whose offer is late.
    let early = Body::Data {
        chunk: 5,
        retransmit: false,
        payload: &[1; 10],
    };
    let mut d = clear(kind::DATA, session, 7, &early);
    assert!(
        r.handle(now, from, &mut d).is_none(),
        "stored a chunk of no file"
    );
    // Its packet number is left out of the next ACK, so the sender sends it again.
    let mut ping = clear(kind::PING, session, 8, &Body::Ping);
    let _ = r.handle(now, from, &mut ping);
    let acks: Vec<_> = replies(&mut r, now)
        .into_iter()
        .filter_map(|b| match b {
            Body::Ack(a) => Some(a),
            _ => None,
        })
        .collect();
    let [ack] = &acks[..] else {
        panic!("one ACK: {acks:?}")
    };
    let acked = |pn: u32| ack.ranges.iter().any(|x| x.start <= pn && pn <= x.end);
    assert!(acked(8) && acked(0), "{ack:?}");
    assert!(!acked(7), "the early chunk was acknowledged: {ack:?}");
    assert_eq!(ack.settled_below, 0, "{ack:?}");
}
