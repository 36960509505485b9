//! Attacks on the protocol core, in memory and deterministic: each is rejected and counted,
//! nothing is written for it, and an honest sender on the same receiver still completes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use udpix::proto::crypto::Passphrase;
use udpix::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent, SessionKey};
use udpix::proto::sender::{SendError, Sender, SenderConfig};
use udpix::proto::wire::{self, Body, Header, kind};

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
struct World {
    now: Instant,
    receiver: Receiver,
    senders: Vec<(SocketAddr, Sender)>,
    /// What each session assembled (by sender address).
    files: HashMap<SessionKey, Vec<u8>>,
    completed: Vec<SessionKey>,
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
            files: HashMap::new(),
            completed: Vec::new(),
            auth_failures: Vec::new(),
            wire: Vec::new(),
            receiver_addr: "10.9.9.9:7878".parse().expect("addr"),
        }
    }

    fn deliver_to_receiver(&mut self, from: SocketAddr, mut d: Vec<u8>) {
        self.wire.push((from, self.receiver_addr, d.clone()));
        if let Some(p) = self.receiver.handle(self.now, from, &mut d) {
            let f = self.files.entry(p.key).or_default();
            let end = p.offset as usize + p.data.len();
            if f.len() < end {
                f.resize(end, 0);
            }
            f[p.offset as usize..end].copy_from_slice(p.data);
        }
    }

    /// Runs until every sender has finished or `limit` of virtual time passed. `tamper` sees
    /// each sender datagram and returns the datagrams to deliver instead, with the source
    /// address each appears to come from.
    fn run(
        &mut self,
        limit: Duration,
        mut tamper: impl FnMut(&mut StdRng, SocketAddr, Vec<u8>) -> Vec<(SocketAddr, Vec<u8>)>,
    ) {
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
                while let Some(ev) = self.receiver.poll_event() {
                    progressed = true;
                    match ev {
                        ReceiverEvent::Complete { key } => {
                            let offer = self.receiver.session_offer(&key).cloned().expect("offer");
                            let got = self.files.get(&key).cloned().unwrap_or_default();
                            let ok = blake3::hash(&got).as_bytes() == &offer.blake3;
                            let verdict = if ok {
                                self.completed.push(key);
                                Ok("saved".to_owned())
                            } else {
                                Err((wire::done::HASH_MISMATCH, "mismatch".to_owned()))
                            };
                            self.receiver.finish(self.now, key, verdict);
                        }
                        ReceiverEvent::AuthFailed { peer } => self.auth_failures.push(peer),
                        _ => {}
                    }
                }
                for (_, s) in &mut self.senders {
                    while s.poll_event().is_some() {}
                }
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
    assert_eq!(w.files[&w.completed[0]], d);
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
    w.senders
        .push((addr(7), secure_sender(w.now, PASS, 700, "honest.png", &d)));
    let mut rng = StdRng::seed_from_u64(5);
    // Record an honest handshake of another session to replay later.
    let mut recorder = secure_sender(w.now, PASS, 701, "rec.png", b"abc");
    let mut hello = Vec::new();
    assert!(recorder.poll_transmit(w.now, &mut hello));
    let attacker = addr(8);
    let mut injected = 0;
    w.run(Duration::from_secs(30), |rng2, from, dgram| {
        let mut out = vec![(from, dgram.clone())];
        let mut push = |d: Vec<u8>| out.push((from, d));
        if from == addr(7) && injected < 200 {
            injected += 1;
            // Truncated HELLO (too short to be answered), forged CONFIRM, random HELLO_REPLY-ish
            // junk, and a replay of a recorded HELLO with a made-up CONFIRM.
            push(hello[..hello.len() / 2].to_vec());
            let h = Header {
                kind: kind::CONFIRM,
                session: 700,
                pn: 1,
            };
            push(wire::encode_vec(
                &h,
                &Body::Confirm {
                    confirm: rng2.random(),
                    token: vec![rng2.random(); 92],
                },
            ));
            let h = Header {
                kind: kind::CONFIRM,
                session: 701,
                pn: 1,
            };
            push(wire::encode_vec(
                &h,
                &Body::Confirm {
                    confirm: rng.random(),
                    token: vec![rng.random(); 92],
                },
            ));
            push(hello.clone());
            // A damaged copy that arrives before the genuine one.
            let mut flipped = dgram;
            let i = rng2.random_range(0..flipped.len());
            flipped[i] ^= 0x04;
            out.insert(0, (from, flipped));
        }
        out
    });
    assert!(matches!(w.outcome(0), Some(Ok(_))), "{:?}", w.outcome(0));
    assert_eq!(w.completed.len(), 1);
    assert_eq!(w.files[&w.completed[0]], d);
    let st = w.receiver.stats();
    assert!(st.malformed > 0, "truncated HELLOs not counted: {st:?}");
    assert!(st.unauthentic > 0, "bit flips not counted: {st:?}");
    // Forged confirmations carry no token of ours: dropped, and nobody is blamed for them.
    assert!(st.bad_tokens >= 100, "forged CONFIRMs not counted: {st:?}");
    assert!(w.auth_failures.is_empty(), "{:?}", w.auth_failures);
    let _ = attacker;
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
    assert_eq!(w.files[&w.completed[0]], d);
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
        assert_eq!(&w.files[key], expect, "session {}", key.session);
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

#[test]
fn unvalidated_addresses_get_at_most_three_times_what_they_sent() {
    let mut w = World::new(Receiver::new(ReceiverConfig {
        passphrase: Some(Passphrase::new(PASS)),
        cookie_threshold: 4,
        ..ReceiverConfig::default()
    }));
    let mut rng = StdRng::seed_from_u64(10);
    let mut sent_to: HashMap<SocketAddr, (usize, usize)> = HashMap::new();
    // 200 handshakes from 50 spoofed addresses that never complete: fresh HELLOs, repeats,
    // random cookies, truncated ones.
    for i in 0..200u64 {
        let from = addr(100 + (i % 50) as u16);
        let mut s = secure_sender(w.now, PASS, 5000 + i % 60, "x", b"x");
        let mut hello = Vec::new();
        assert!(s.poll_transmit(w.now, &mut hello));
        if i % 7 == 0 {
            hello.truncate(rng.random_range(14..hello.len()));
        }
        sent_to.entry(from).or_default().0 += hello.len();
        w.deliver_to_receiver(from, hello);
        while let Some(t) = w.receiver.poll_transmit(w.now) {
            sent_to.entry(t.dest).or_default().1 += t.payload.len();
        }
        w.now += Duration::from_millis(3);
    }
    for (a, (inb, out)) in &sent_to {
        assert!(*out <= 3 * inb, "{a}: sent {out} bytes for {inb} received");
    }
    let st = w.receiver.stats();
    assert!(
        st.retries_sent > 0,
        "a flood of handshakes should be met with cookies: {st:?}"
    );
    // Past the threshold no HELLO without a cookie costs key-exchange work.
    assert!(st.pake_runs <= 4, "PAKE work done under flood: {st:?}");
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
    let runs: std::collections::HashSet<&[u8]> = d.chunks(16).filter(|c| c.len() == 16).collect();
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
