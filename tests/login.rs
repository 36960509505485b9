//! The login as an attacker sees it, in memory and deterministic: floods of handshakes, blind
//! spoofing, passphrase guessing, session hogging, and the honest errors a sender must get.
//! Each test drives the real core state machines over a virtual network with a fixed delay.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use udpix::proto::crypto::{Pake, Passphrase};
use udpix::proto::receiver::{FileKey, Receiver, ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{LOGIN_COPIES, SendError, Sender, SenderConfig};
use udpix::proto::wire::{self, Body, Header, Offer, kind};

const PASS: &str = "417-orbit-lantern-mosaic";

fn addr(a: u8, b: u8) -> SocketAddr {
    SocketAddr::from(([10, 1, a, b], 4000))
}

mod common;

fn data(len: usize, seed: u64) -> Vec<u8> {
    common::seeded_bytes(len, seed)
}

fn sender_config(pass: &str) -> SenderConfig {
    SenderConfig {
        passphrase: Some(Passphrase::new(pass)),
        ..SenderConfig::default()
    }
}

fn sender(now: Instant, pass: &str, session: u64, d: &[u8]) -> Sender {
    slow_sender(now, pass, session, d, None)
}

/// A sender paced at `rate` bytes per second at most, so a transfer lasts a while.
fn slow_sender(now: Instant, pass: &str, session: u64, d: &[u8], rate: Option<f64>) -> Sender {
    let config = SenderConfig {
        max_rate: rate,
        ..sender_config(pass)
    };
    let offer = Sender::offer_for(&config, "img.png", d, "png", None);
    Sender::new(now, config, session, offer, Bytes::copy_from_slice(d))
}

fn receiver(config: ReceiverConfig) -> Receiver {
    Receiver::new(ReceiverConfig {
        passphrase: Some(Passphrase::new(PASS)),
        cookie_secret: [9; 32],
        ..config
    })
}

struct Honest {
    addr: SocketAddr,
    sender: Sender,
    first_sent: Option<Instant>,
    first_data: Option<Instant>,
    finished: Option<Instant>,
}

/// A virtual network: honest senders, a receiver, and whatever an attack injects. Every
/// datagram takes `delay` each way. Replies to addresses with no honest sender of that
/// session land in `inbox`, where an attack may read them (or not, if it is blind).
struct Net {
    now: Instant,
    delay: Duration,
    receiver: Receiver,
    honest: Vec<Honest>,
    files: HashMap<FileKey, Vec<u8>>,
    wire: VecDeque<(Instant, bool, SocketAddr, Vec<u8>)>,
    inbox: HashMap<SocketAddr, Vec<Vec<u8>>>,
    auth_failed: Vec<SocketAddr>,
    refused: Vec<String>,
    failed: Vec<String>,
    completed: Vec<FileKey>,
    /// Receiver→sender datagrams, as sent.
    downstream: Vec<(SocketAddr, Vec<u8>)>,
    /// Completed sessions are verified only when this is on.
    verify: bool,
    pending_verify: Vec<FileKey>,
    tick: u64,
}

impl Net {
    fn new(receiver: Receiver, delay: Duration) -> Self {
        let now = Instant::now();
        Self {
            now,
            delay,
            receiver,
            honest: Vec::new(),
            files: HashMap::new(),
            wire: VecDeque::new(),
            inbox: HashMap::new(),
            auth_failed: Vec::new(),
            refused: Vec::new(),
            failed: Vec::new(),
            completed: Vec::new(),
            downstream: Vec::new(),
            verify: true,
            pending_verify: Vec::new(),
            tick: 0,
        }
    }

    fn add(&mut self, addr: SocketAddr, sender: Sender) -> usize {
        self.honest.push(Honest {
            addr,
            sender,
            first_sent: None,
            first_data: None,
            finished: None,
        });
        self.honest.len() - 1
    }

    /// Sends `d` from `from` to the receiver (it arrives after the delay).
    fn inject(&mut self, from: SocketAddr, d: Vec<u8>) {
        self.wire.push_back((self.now + self.delay, true, from, d));
    }

    fn outcome(&self, i: usize) -> Option<Result<String, SendError>> {
        self.honest[i].sender.outcome().cloned()
    }

    /// Moves every datagram that is due, polls everything, runs due timers.
    fn pump(&mut self, filter: &mut impl FnMut(SocketAddr, &[u8], Instant) -> bool) {
        let mut buf = Vec::new();
        for h in &mut self.honest {
            while h.sender.poll_transmit(self.now, &mut buf) {
                h.first_sent.get_or_insert(self.now);
                let k = wire::decode_header(&buf).map(|x| x.kind).unwrap_or(0);
                if matches!(k, kind::DATA | kind::DATA_RETX) {
                    h.first_data.get_or_insert(self.now);
                }
                if filter(h.addr, &buf, self.now) {
                    self.wire
                        .push_back((self.now + self.delay, true, h.addr, buf.clone()));
                }
            }
            if h.sender.outcome().is_some() {
                h.finished.get_or_insert(self.now);
            }
        }
        while self.wire.front().is_some_and(|(t, ..)| *t <= self.now) {
            let Some((_, up, a, mut d)) = self.wire.pop_front() else {
                break;
            };
            if up {
                if let Some(p) = self.receiver.handle(self.now, a, &mut d) {
                    let f = self.files.entry(p.key).or_default();
                    let end = p.offset as usize + p.data.len();
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[p.offset as usize..end].copy_from_slice(p.data);
                }
            } else {
                let session = wire::decode_header(&d).map(|h| h.session).unwrap_or(0);
                match self
                    .honest
                    .iter_mut()
                    .find(|h| h.addr == a && h.sender.session() == session)
                {
                    Some(h) => h.sender.handle(self.now, &mut d),
                    None => self.inbox.entry(a).or_default().push(d),
                }
            }
        }
        while let Some(t) = self.receiver.poll_transmit(self.now) {
            self.downstream.push((t.dest, t.payload.clone()));
            self.wire
                .push_back((self.now + self.delay, false, t.dest, t.payload));
        }
        while let Some(ev) = self.receiver.poll_event() {
            match ev {
                ReceiverEvent::Repaired {
                    key, offset, data, ..
                } => {
                    let f = self.files.entry(key).or_default();
                    let end = offset as usize + data.len();
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[offset as usize..end].copy_from_slice(&data);
                }
                ReceiverEvent::Complete { key } => self.pending_verify.push(key),
                ReceiverEvent::AuthFailed { peer } => self.auth_failed.push(peer),
                ReceiverEvent::Refused { reason, .. } => self.refused.push(reason),
                ReceiverEvent::Failed { reason, .. } => self.failed.push(reason),
                _ => {}
            }
        }
        if self.verify {
            for key in std::mem::take(&mut self.pending_verify) {
                let offer = self.receiver.session_offer(&key).cloned();
                let got = self.files.get(&key).cloned().unwrap_or_default();
                let ok = offer.is_some_and(|o| blake3::hash(&got).as_bytes() == &o.blake3);
                let verdict = if ok {
                    self.completed.push(key);
                    Ok("saved".to_owned())
                } else {
                    Err((wire::done::HASH_MISMATCH, "mismatch".to_owned()))
                };
                self.receiver.finish(self.now, key, verdict);
            }
        }
        // Timers run when due, and now and then anyway (other sessions' timers would).
        if self.receiver.poll_timeout().is_some_and(|t| t <= self.now)
            || self.tick.is_multiple_of(64)
        {
            self.receiver.handle_timeout(self.now);
        }
        self.tick += 1;
        for h in &mut self.honest {
            if h.sender.poll_timeout().is_some_and(|t| t <= self.now) {
                h.sender.handle_timeout(self.now);
            }
        }
    }

    /// Runs for `span` of virtual time in steps of `step`, calling `attack` at each step.
    fn run(
        &mut self,
        span: Duration,
        step: Duration,
        mut attack: impl FnMut(&mut Net),
        mut filter: impl FnMut(SocketAddr, &[u8], Instant) -> bool,
    ) {
        let end = self.now + span;
        while self.now < end {
            attack(self);
            for _ in 0..4 {
                self.pump(&mut filter);
            }
            self.now += step;
        }
    }
}

/// A net with a receiver in its default configuration, `delay_ms` each way.
fn default_net(delay_ms: u64) -> Net {
    Net::new(
        receiver(ReceiverConfig::default()),
        Duration::from_millis(delay_ms),
    )
}

fn pass_all(_: SocketAddr, _: &[u8], _: Instant) -> bool {
    true
}

/// A HELLO as any SPAKE2 client makes it (passphrase unknown to the receiver).
fn hello(session: u64, cookie: Vec<u8>) -> Vec<u8> {
    hello_with(
        Pake::start(&Passphrase::new("attacker")).message(),
        session,
        cookie,
    )
}

/// A HELLO carrying the SPAKE2 message `pake`.
fn hello_with(pake: [u8; wire::PAKE_LEN], session: u64, cookie: Vec<u8>) -> Vec<u8> {
    let h = Header {
        kind: kind::HELLO,
        session,
        pn: 0,
    };
    wire::encode_vec(&h, &Body::Hello { pake, cookie })
}

/// What the receiver sent to `from` so far, decoded in clear (RETRY, HELLO_REPLY, REFUSE).
fn replies(net: &mut Net, from: SocketAddr) -> Vec<(u64, Body<'static>)> {
    net.inbox
        .remove(&from)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| {
            let p = wire::decode(&d).ok()?;
            let body = match p.body {
                Body::Retry { cookie } => Body::Retry { cookie },
                Body::HelloReply { pake, token } => Body::HelloReply { pake, token },
                Body::Refuse { code, reason } => Body::Refuse { code, reason },
                _ => return None,
            };
            Some((p.header.session, body))
        })
        .collect()
}

/// An attacker at `from` that sends HELLOs at `per_step` per step, returns every cookie it
/// is given (it reads its replies), and never confirms.
fn cookie_returning_flood(
    from: SocketAddr,
    per_step: u64,
    next_session: &mut u64,
) -> impl FnMut(&mut Net) + '_ {
    move |net: &mut Net| {
        for (session, body) in replies(net, from) {
            if let Body::Retry { cookie } = body {
                net.inject(from, hello(session, cookie));
            }
        }
        for _ in 0..per_step {
            *next_session += 1;
            net.inject(from, hello(*next_session, Vec::new()));
        }
    }
}

#[test]
fn a_handshake_flood_from_one_address_leaves_others_alone() {
    // 200 HELLOs a second from one address that returns every cookie, for 6 s; an honest
    // sender elsewhere starts in the middle of it.
    let mut net = default_net(20);
    let attacker = addr(66, 1);
    let mut sessions = 1u64 << 40;
    net.run(
        Duration::from_secs(3),
        Duration::from_millis(5),
        cookie_returning_flood(attacker, 1, &mut sessions),
        pass_all,
    );
    let d = data(100_000, 1);
    let s = sender(net.now, PASS, 7, &d);
    let i = net.add(addr(1, 1), s);
    net.run(
        Duration::from_secs(3),
        Duration::from_millis(5),
        cookie_returning_flood(attacker, 1, &mut sessions),
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    let login = net.honest[i].first_data.expect("data") - net.honest[i].first_sent.expect("sent");
    assert!(
        login <= Duration::from_millis(41),
        "first data after {login:?}"
    );
    let st = net.receiver.stats();
    // The attacker's address gets a few key exchanges per hold period, not 200 a second.
    // (4 without a cookie and 4 with one per 2 s hold, over 6 s)
    assert!(st.pake_runs <= 2 * 4 * 4, "{st:?}");
    assert!(st.handshakes_dropped > 500, "{st:?}");
}

#[test]
fn a_handshake_flood_from_many_addresses_costs_an_honest_sender_one_cookie() {
    // 1,000 HELLOs a second from 49 addresses that return cookies: an honest sender from a
    // fiftieth address must get through.
    let mut net = default_net(20);
    let attackers: Vec<SocketAddr> = (1..=49).map(|b| addr(77, b)).collect();
    let mut session = 1u64 << 40;
    let mut tick = 0usize;
    let mut flood = |net: &mut Net| {
        for a in &attackers {
            for (s, body) in replies(net, *a) {
                if let Body::Retry { cookie } = body {
                    net.inject(*a, hello(s, cookie));
                }
            }
        }
        // 5 HELLOs per 5 ms step, round robin over the addresses.
        for _ in 0..5 {
            session += 1;
            tick += 1;
            net.inject(
                attackers[tick % attackers.len()],
                hello(session, Vec::new()),
            );
        }
    };
    net.run(
        Duration::from_secs(2),
        Duration::from_millis(5),
        &mut flood,
        pass_all,
    );
    let d = data(100_000, 2);
    let i = net.add(addr(1, 2), sender(net.now, PASS, 8, &d));
    net.run(
        Duration::from_secs(3),
        Duration::from_millis(5),
        &mut flood,
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    let login = net.honest[i].first_data.expect("data") - net.honest[i].first_sent.expect("sent");
    // Under pressure the honest sender returns a cookie first: one extra round trip.
    assert!(
        login <= Duration::from_millis(81),
        "first data after {login:?}"
    );
    assert!(net.receiver.stats().retries_sent > 0);
}

#[test]
fn first_data_leaves_one_round_trip_after_the_first_datagram() {
    let mut net = default_net(20);
    let d = data(300_000, 3);
    let i = net.add(addr(1, 3), sender(net.now, PASS, 9, &d));
    net.run(
        Duration::from_secs(3),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    let h = &net.honest[i];
    let rtt = Duration::from_millis(40);
    let first = h.first_data.expect("data") - h.first_sent.expect("sent");
    assert!(
        first >= rtt && first <= rtt + Duration::from_millis(1),
        "first data {first:?} after the first datagram; one RTT is {rtt:?}"
    );
    assert_eq!(net.files[&net.completed[0]], d);
}

/// One guessing address, as clever as the protocol allows: it keeps one handshake going at
/// a time, confirms each reply with its guess, and waits exactly as long as it is told to.
struct Guesser {
    from: SocketAddr,
    pakes: HashMap<u64, Pake>,
    in_flight: bool,
    not_before: Instant,
    sent: u32,
}

impl Guesser {
    fn new(from: SocketAddr, now: Instant) -> Self {
        Self {
            from,
            pakes: HashMap::new(),
            in_flight: false,
            not_before: now,
            sent: 0,
        }
    }

    fn step(&mut self, net: &mut Net, session: &mut u64) {
        for (s, body) in replies(net, self.from) {
            match body {
                Body::HelloReply { pake, token } => {
                    let Some(mine) = self.pakes.remove(&s) else {
                        continue;
                    };
                    let client = mine.message();
                    let keys = mine.finish(s, &pake, &client, &pake).expect("keys");
                    let h = Header {
                        kind: kind::CONFIRM,
                        session: s,
                        pn: 1,
                    };
                    let body = Body::Confirm {
                        confirm: keys.client_confirm(),
                        token,
                    };
                    self.sent += 1;
                    net.inject(self.from, wire::encode_vec(&h, &body));
                }
                Body::Retry { cookie } => {
                    let Some(mine) = self.pakes.get(&s) else {
                        continue;
                    };
                    net.inject(self.from, hello_with(mine.message(), s, cookie));
                }
                Body::Refuse { code, reason } => {
                    self.in_flight = false;
                    if code == wire::reason::THROTTLED {
                        let secs: u64 = reason
                            .split("try again in ")
                            .nth(1)
                            .and_then(|r| r.split(' ').next())
                            .and_then(|n| n.parse().ok())
                            .expect("the wait is given");
                        self.not_before = net.now + Duration::from_secs(secs);
                    }
                }
                _ => {}
            }
        }
        if !self.in_flight && net.now >= self.not_before {
            *session += 1;
            let pake = Pake::start(&Passphrase::new(&format!("guess {session}")));
            let hello = hello_with(pake.message(), *session, Vec::new());
            self.pakes.insert(*session, pake);
            self.in_flight = true;
            net.inject(self.from, hello);
        }
    }
}

/// Guesses tried (confirmations the receiver evaluated) in an hour from `n` addresses.
fn guess_for_an_hour(n: u8) -> (u64, Net) {
    let mut net = default_net(20);
    let mut guessers: Vec<Guesser> = (1..=n)
        .map(|b| Guesser::new(addr(88, b), net.now))
        .collect();
    let mut session = 1u64 << 40;
    net.run(
        Duration::from_secs(3600),
        Duration::from_millis(100),
        |net: &mut Net| {
            for g in &mut guessers {
                g.step(net, &mut session);
            }
        },
        pass_all,
    );
    let tried = net.receiver.stats().auth_failures;
    let sent: u32 = guessers.iter().map(|g| g.sent).sum();
    assert!(u64::from(sent) >= tried, "{sent} sent, {tried} tried");
    (tried, net)
}

#[test]
fn a_guesser_must_confirm_each_guess_and_is_slowed_to_a_few_an_hour() {
    // Every guess needs a CONFIRM (the reply alone tells nothing), every one is counted and
    // logged, and after five the address waits, doubling up to ten minutes.
    let (tried, net) = guess_for_an_hour(1);
    let st = net.receiver.stats();
    assert!(tried >= 5, "the guesser never got to guess: {st:?}");
    assert_eq!(
        net.auth_failed.len() as u64,
        tried,
        "every guess tried is logged"
    );
    assert!(
        tried <= 25,
        "{tried} guesses tried in an hour from one address"
    );
    println!("one address, one hour: {tried} guesses; {st:?}");
    let (tried50, _) = guess_for_an_hour(50);
    assert!(
        tried50 <= 50 * 25,
        "{tried50} guesses in an hour from 50 addresses"
    );
    println!("50 addresses, one hour: {tried50} guesses");
}

#[test]
fn the_reply_alone_does_not_tell_a_sender_its_passphrase_is_wrong() {
    // Drop every refusal: a sender with the wrong passphrase cannot conclude anything from
    // HELLO_REPLY (it holds no confirmation now), so it can only time out.
    let mut net = default_net(20);
    let i = net.add(addr(1, 4), sender(net.now, "wrong", 10, b"tiny"));
    let mut dropped = 0;
    net.run(
        Duration::from_secs(8),
        Duration::from_millis(5),
        |net: &mut Net| {
            // Intercept REFUSE on its way down by rewriting the wire.
            net.wire.retain(|(_, up, _, d)| {
                let refuse = !*up && wire::decode_header(d).is_ok_and(|h| h.kind == kind::REFUSE);
                dropped += usize::from(refuse);
                !refuse
            });
        },
        pass_all,
    );
    assert!(dropped > 0);
    assert!(
        matches!(net.outcome(i), Some(Err(SendError::NoAnswer(_)))),
        "{:?}",
        net.outcome(i)
    );
    // With the refusal it learns at once.
    let mut net = default_net(20);
    let i = net.add(addr(1, 4), sender(net.now, "wrong", 10, b"tiny"));
    net.run(
        Duration::from_millis(200),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    assert_eq!(net.outcome(i), Some(Err(SendError::AuthFailed)));
}

#[test]
fn a_blind_attacker_cannot_get_an_address_throttled_or_locked_out() {
    // Forged HELLOs and junk CONFIRMs in the victim's name, sent without reading any reply.
    let mut net = default_net(20);
    let victim = addr(5, 5);
    let mut session = 1u64 << 40;
    let mut spoof = |net: &mut Net| {
        for _ in 0..4 {
            session += 1;
            net.inject(victim, hello(session, Vec::new()));
            let h = Header {
                kind: kind::CONFIRM,
                session,
                pn: 1,
            };
            let body = Body::Confirm {
                confirm: [7; wire::CONFIRM_LEN],
                token: vec![session as u8; 92],
            };
            net.inject(victim, wire::encode_vec(&h, &body));
        }
        // The replies go to the victim, who knows nothing of these sessions.
        net.inbox.remove(&victim);
    };
    net.run(
        Duration::from_secs(5),
        Duration::from_millis(10),
        &mut spoof,
        pass_all,
    );
    let d = data(50_000, 4);
    let i = net.add(victim, sender(net.now, PASS, 11, &d));
    net.run(
        Duration::from_secs(3),
        Duration::from_millis(10),
        &mut spoof,
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    let st = net.receiver.stats();
    assert_eq!(st.auth_failures, 0, "{st:?}");
    assert_eq!(st.throttled, 0, "{st:?}");
    assert!(st.bad_tokens >= 2000, "{st:?}");
}

#[test]
fn one_address_cannot_hold_every_session_and_stalled_ones_are_dropped() {
    // A logged-in sender opens 20 transfers of tiny chunks and lets one chunk through every
    // 3 s: at most 8 are accepted, each is dropped within two progress windows, and a sender
    // from another address gets through meanwhile.
    let mut net = Net::new(
        receiver(ReceiverConfig {
            max_sessions: 16,
            ..ReceiverConfig::default()
        }),
        Duration::from_millis(5),
    );
    let hog = addr(9, 9);
    let big = data(100_000, 5);
    for k in 0..20 {
        let config = SenderConfig {
            max_datagram: 120,
            idle_timeout: Duration::from_secs(120),
            ..sender_config(PASS)
        };
        let offer = Sender::offer_for(&config, "hog.png", &big, "", None);
        let s = Sender::new(
            net.now,
            config,
            1000 + k,
            offer,
            Bytes::copy_from_slice(&big),
        );
        net.add(hog, s);
    }
    let mut last_through = HashMap::new();
    let mut trickle = |from: SocketAddr, d: &[u8], now: Instant| {
        let Ok(h) = wire::decode_header(d) else {
            return true;
        };
        if from != hog || !matches!(h.kind, kind::DATA | kind::DATA_RETX) {
            return true;
        }
        let last: &mut Option<Instant> = last_through.entry(h.session).or_default();
        if last.is_none_or(|t| now >= t + Duration::from_secs(3)) {
            *last = Some(now);
            return true;
        }
        false
    };
    net.run(
        Duration::from_secs(5),
        Duration::from_millis(10),
        |_| {},
        &mut trickle,
    );
    let refused_here = net
        .refused
        .iter()
        .filter(|r| r.contains("from this address"))
        .count();
    assert!(refused_here >= 12, "{:?}", net.refused);
    assert!(net.receiver.active_sessions() <= 8);
    let d = data(60_000, 6);
    let i = net.add(addr(1, 6), sender(net.now, PASS, 12, &d));
    net.run(
        Duration::from_secs(20),
        Duration::from_millis(10),
        |_| {},
        &mut trickle,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    assert_eq!(net.receiver.active_sessions(), 0, "stalled sessions linger");
    assert!(
        net.receiver.stats().too_slow >= 8,
        "{:?}",
        net.receiver.stats()
    );
    let hog_outcome = net.outcome(0);
    assert!(
        matches!(&hog_outcome, Some(Err(SendError::Closed(r))) if r.contains("too little progress")),
        "{hog_outcome:?}"
    );
}

/// Finds the honest sender's session at the receiver.
fn session_of(net: &Net, i: usize) -> FileKey {
    FileKey {
        peer: net.honest[i].addr,
        session: net.honest[i].sender.session(),
        file: 0,
    }
}

#[test]
fn a_receivers_close_is_sealed_and_says_what_happened() {
    let mut net = default_net(10);
    let d = data(2_000_000, 7);
    let i = net.add(addr(1, 7), slow_sender(net.now, PASS, 13, &d, Some(2e6)));
    net.run(
        Duration::from_millis(300),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    assert!(net.outcome(i).is_none(), "still sending");
    // A forged clear CLOSE in the receiver's name is not believed.
    let forged = wire::encode_vec(
        &Header {
            kind: kind::CLOSE,
            session: 13,
            pn: 9999,
        },
        &Body::Close {
            code: wire::reason::STORE_FAILED,
            reason: "forged".into(),
        },
    );
    net.wire
        .push_back((net.now, false, addr(1, 7), forged.clone()));
    net.run(
        Duration::from_millis(20),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    assert!(
        net.outcome(i).is_none(),
        "a forged clear CLOSE ended the transfer"
    );
    let key = session_of(&net, i);
    let before = net.downstream.len();
    net.receiver.close(
        key.session_key(),
        wire::reason::STORE_FAILED,
        "the receiver's disk is full",
    );
    net.run(
        Duration::from_millis(50),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    let close = net.downstream[before..]
        .iter()
        .find(|(_, d)| wire::decode_header(d).is_ok_and(|h| h.kind == kind::CLOSE))
        .expect("a CLOSE went out");
    assert!(
        wire::decode(&close.1).is_err(),
        "the CLOSE travelled in clear"
    );
    assert!(
        !close.1.windows(4).any(|w| w == b"disk"),
        "its reason is readable"
    );
    assert_eq!(
        net.outcome(i),
        Some(Err(SendError::Closed("the receiver's disk is full".into())))
    );
}

#[test]
fn a_restarted_receiver_is_reported_as_such() {
    let mut net = default_net(10);
    let d = data(2_000_000, 8);
    let i = net.add(addr(1, 8), slow_sender(net.now, PASS, 14, &d, Some(2e6)));
    net.run(
        Duration::from_millis(300),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    net.receiver = receiver(ReceiverConfig::default());
    net.run(
        Duration::from_millis(200),
        Duration::from_millis(1),
        |_| {},
        pass_all,
    );
    let out = net.outcome(i);
    assert_eq!(out, Some(Err(SendError::Forgotten)));
    let text = SendError::Forgotten.to_string();
    assert!(text.contains("restarted"), "{text}");
}

#[test]
fn hashing_longer_than_the_idle_timeout_still_gives_one_verdict() {
    // Every chunk is in, the receiver takes 30 s (three idle timeouts) to hash, and the
    // sender is quiet meanwhile (its datagrams are lost): the session must wait for its
    // verdict rather than expire as "partial image discarded" while the file is saved.
    let mut net = default_net(10);
    net.verify = false;
    let d = data(200_000, 9);
    let i = net.add(addr(1, 9), sender(net.now, PASS, 15, &d));
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    assert_eq!(
        net.pending_verify.len(),
        1,
        "complete, waiting for its hash"
    );
    net.run(
        Duration::from_secs(30),
        Duration::from_millis(5),
        |_| {},
        |_, _, _| false,
    );
    assert!(net.failed.is_empty(), "{:?}", net.failed);
    assert_eq!(net.receiver.stats().failed, 0);
    net.verify = true;
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    assert_eq!(net.completed.len(), 1, "the verdict was applied");
    assert_eq!(net.receiver.stats().completed, 1);
    // The sender heard nothing for its idle timeout after its last chunk was acknowledged,
    // and says so without claiming either outcome.
    let out = net.outcome(i);
    assert_eq!(
        out,
        Some(Err(SendError::NoVerdict(Duration::from_secs(10))))
    );
    let text = SendError::NoVerdict(Duration::from_secs(10)).to_string();
    assert!(text.contains("may have"), "{text}");
}

#[test]
fn nothing_from_the_receiver_is_believed_before_its_accept() {
    // Every ACCEPT is lost: the receiver gets the whole (small) image from the first flight
    // and answers with ACKs and DONE, but the sender must not take those before the
    // receiver proved itself.
    let mut net = default_net(10);
    let d = data(3000, 12);
    let i = net.add(addr(1, 12), sender(net.now, PASS, 18, &d));
    net.run(
        Duration::from_secs(6),
        Duration::from_millis(5),
        |net: &mut Net| {
            net.wire.retain(|(_, up, _, d)| {
                *up || wire::decode_header(d).is_ok_and(|h| h.kind != kind::ACCEPT)
            });
        },
        pass_all,
    );
    assert_eq!(net.completed.len(), 1, "the first flight carried the image");
    assert!(
        matches!(net.outcome(i), Some(Err(SendError::NoAnswer(_)))),
        "{:?}",
        net.outcome(i)
    );
}

#[test]
fn a_malformed_offer_is_answered_not_ignored() {
    let mut net = default_net(10);
    let config = sender_config(PASS);
    let d = data(5000, 10);
    let good = Sender::offer_for(&config, "x.png", &d, "", None);
    let bad = Offer {
        chunk_count: good.chunk_count + 3,
        ..good
    };
    let s = Sender::new(net.now, config, 16, bad, Bytes::copy_from_slice(&d));
    let i = net.add(addr(1, 10), s);
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    match net.outcome(i) {
        Some(Err(SendError::Refused(code, reason))) => {
            assert_eq!(code, wire::reason::BAD_OFFER);
            assert!(reason.contains("chunk count"), "{reason}");
        }
        other => panic!("expected a BAD_OFFER refusal, got {other:?}"),
    }
}

#[test]
fn a_passphrase_read_aloud_and_typed_differently_still_logs_in() {
    let mut net = Net::new(
        Receiver::new(ReceiverConfig {
            passphrase: Some(Passphrase::new("496-narrow-sentence-version")),
            ..ReceiverConfig::default()
        }),
        Duration::from_millis(5),
    );
    let d = data(10_000, 11);
    let i = net.add(
        addr(1, 11),
        sender(net.now, "496 Narrow  sentence VERSION", 17, &d),
    );
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
}

/// Runs one 1 MB transfer over a 40 ms round trip at 2.5 MB/s, dropping the first `n`
/// datagrams of `kind` on their way (`up`: towards the receiver); returns (virtual time,
/// sender figures).
fn first_flight_with_lost(
    kind_lost: Option<(u8, bool, usize)>,
) -> (Duration, udpix::proto::stats::TransferStats) {
    let mut net = default_net(20);
    let d = data(1_000_000, 13);
    let i = net.add(addr(1, 13), slow_sender(net.now, PASS, 19, &d, Some(2.5e6)));
    let start = net.now;
    let mut dropped = 0;
    net.run(
        Duration::from_secs(5),
        Duration::from_millis(1),
        |net: &mut Net| {
            let Some((k, up, n)) = kind_lost else { return };
            while dropped < n
                && let Some(pos) = net.wire.iter().position(|(_, u, _, d)| {
                    *u == up && wire::decode_header(d).is_ok_and(|h| h.kind == k)
                })
            {
                net.wire.remove(pos);
                dropped += 1;
            }
        },
        pass_all,
    );
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
    assert_eq!(dropped, kind_lost.map_or(0, |(_, _, n)| n));
    let took = net.honest[i].finished.expect("finished") - start;
    (took, net.honest[i].sender.stats())
}

#[test]
fn a_lost_offer_or_accept_costs_a_round_trip_or_two_not_a_slow_start() {
    let (clean, clean_stats) = first_flight_with_lost(None);
    assert_eq!(clean_stats.retransmitted, 0);
    // One copy of a HELLO, its reply, the CONFIRM or the offer lost: the other copy carries
    // the login, and nothing is sent again.
    for (k, up) in [
        (kind::HELLO, true),
        (kind::HELLO_REPLY, false),
        (kind::CONFIRM, true),
        (kind::OFFER, true),
    ] {
        let (one_lost, st) = first_flight_with_lost(Some((k, up, 1)));
        assert!(
            one_lost <= clean + Duration::from_millis(5),
            "kind {k}: clean {clean:?}, one copy lost {one_lost:?}"
        );
        assert_eq!(st.retransmitted, 0, "kind {k}: {st:?}");
    }
    // Every copy lost: the first flight reaches a receiver with no session, which says so;
    // the sender repeats the offer and resends the flight, at full speed.
    let (offer_lost, st) = first_flight_with_lost(Some((kind::OFFER, true, LOGIN_COPIES)));
    assert!(
        offer_lost <= clean + Duration::from_millis(100),
        "clean {clean:?}, offer lost {offer_lost:?}"
    );
    assert!(
        st.retransmitted >= 30,
        "the first flight is sent again: {st:?}"
    );
    // Every ACCEPT of the first round lost: the receiver got the first flight; its early
    // ACKs, applied once a repeated ACCEPT proves it, keep the sender from sending the
    // flight again.
    let (accept_lost, st) = first_flight_with_lost(Some((kind::ACCEPT, false, LOGIN_COPIES)));
    assert!(
        accept_lost <= clean + Duration::from_millis(100),
        "clean {clean:?}, accept lost {accept_lost:?}"
    );
    assert_eq!(st.retransmitted, 0, "{st:?}");
}

#[test]
fn hellos_with_broken_key_messages_cost_their_address_its_budget() {
    // A SPAKE2 message that only fails once the receiver has done its own half: each must
    // take a slot like a good HELLO, or they would be free work.
    let mut net = default_net(5);
    let from = addr(44, 1);
    let mut session = 1u64 << 40;
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(5),
        |net: &mut Net| {
            session += 1;
            net.inject(
                from,
                hello_with([0xff; wire::PAKE_LEN], session, Vec::new()),
            );
            net.inbox.remove(&from);
        },
        pass_all,
    );
    let st = net.receiver.stats();
    assert!(st.pake_runs <= 4, "{st:?}");
    assert!(st.retries_sent >= 150, "{st:?}");
}

#[test]
fn a_repeated_failing_confirm_counts_once() {
    let mut net = default_net(5);
    let from = addr(45, 1);
    let pake = Pake::start(&Passphrase::new("a guess"));
    let client = pake.message();
    net.inject(from, hello_with(client, 77, Vec::new()));
    net.run(
        Duration::from_millis(50),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    let Some((
        _,
        Body::HelloReply {
            pake: server,
            token,
        },
    )) = replies(&mut net, from).pop()
    else {
        panic!("no HELLO_REPLY");
    };
    let keys = pake.finish(77, &server, &client, &server).expect("keys");
    let h = Header {
        kind: kind::CONFIRM,
        session: 77,
        pn: 1,
    };
    let confirm = wire::encode_vec(
        &h,
        &Body::Confirm {
            confirm: keys.client_confirm(),
            token,
        },
    );
    for _ in 0..10 {
        net.inject(from, confirm.clone());
    }
    net.run(
        Duration::from_millis(50),
        Duration::from_millis(5),
        |_| {},
        pass_all,
    );
    let refusals = replies(&mut net, from)
        .into_iter()
        .filter(
            |(_, b)| matches!(b, Body::Refuse { code, .. } if *code == wire::reason::AUTH_FAILED),
        )
        .count();
    assert_eq!(refusals, 10, "each repeat is answered");
    assert_eq!(net.receiver.stats().auth_failures, 1, "but counted once");
    assert_eq!(net.auth_failed.len(), 1);
}

#[test]
fn a_forged_clear_refusal_of_the_image_is_not_believed_during_the_login() {
    // Only the login's own refusals (wrong passphrase, throttled, mode, busy) may come in
    // clear; "too large" from someone without our keys is ignored.
    let mut net = default_net(10);
    let d = data(20_000, 14);
    let i = net.add(addr(1, 14), sender(net.now, PASS, 20, &d));
    let mut forged = false;
    net.run(
        Duration::from_secs(1),
        Duration::from_millis(1),
        |net: &mut Net| {
            if forged || net.honest[0].first_sent.is_none() {
                return;
            }
            forged = true;
            let h = Header {
                kind: kind::REFUSE,
                session: 20,
                pn: 0,
            };
            let body = Body::Refuse {
                code: wire::reason::TOO_LARGE,
                reason: "forged".into(),
            };
            net.wire
                .push_back((net.now, false, addr(1, 14), wire::encode_vec(&h, &body)));
        },
        pass_all,
    );
    assert!(forged);
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
}

#[test]
fn first_flight_data_ahead_of_its_offer_does_not_end_the_transfer() {
    // Reordering on the way: a first-flight DATA overtakes the OFFER (so the receiver answers
    // it with "unknown session"), and that answer comes back after the ACCEPT. It answers a
    // packet sent before we were accepted, so it must not end the transfer.
    let mut net = default_net(10);
    let d = data(50_000, 15);
    let i = net.add(addr(1, 15), sender(net.now, PASS, 21, &d));
    let (mut swapped_up, mut swapped_down) = (false, false);
    let kind_of = |d: &[u8]| wire::decode_header(d).map(|h| h.kind).unwrap_or(0);
    net.run(
        Duration::from_secs(2),
        Duration::from_millis(1),
        |net: &mut Net| {
            if !swapped_up {
                let offer = net
                    .wire
                    .iter()
                    .position(|(_, up, _, d)| *up && kind_of(d) == kind::OFFER);
                let data = net
                    .wire
                    .iter()
                    .position(|(_, up, _, d)| *up && kind_of(d) == kind::DATA);
                if let (Some(o), Some(d)) = (offer, data) {
                    let t = net.wire[o].0;
                    net.wire[d].0 = t;
                    net.wire.swap(o, d);
                    swapped_up = true;
                }
            }
            if swapped_up && !swapped_down {
                let close = net
                    .wire
                    .iter()
                    .position(|(_, up, _, d)| !*up && kind_of(d) == kind::CLOSE);
                let accept = net
                    .wire
                    .iter()
                    .position(|(_, up, _, d)| !*up && kind_of(d) == kind::ACCEPT);
                if let (Some(c), Some(a)) = (close, accept) {
                    let t = net.wire[c].0;
                    net.wire[a].0 = t;
                    net.wire.swap(c, a);
                    swapped_down = true;
                }
            }
        },
        pass_all,
    );
    assert!(swapped_up && swapped_down);
    assert!(
        matches!(net.outcome(i), Some(Ok(_))),
        "{:?}",
        net.outcome(i)
    );
}
