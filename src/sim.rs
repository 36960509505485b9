//! A deterministic in-memory network with a virtual clock, for testing and benchmarking the
//! protocol core without sockets: seeded loss (Bernoulli or Gilbert-Elliott bursts), delay,
//! jitter, reordering, duplication, corruption and a rate-limited drop-tail bottleneck.
//! A whole lossy transfer runs in milliseconds of real time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent};
use crate::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use crate::proto::stats::TransferStats;

/// Impairments of one direction of a simulated path.
#[derive(Debug, Clone, Default)]
pub struct LinkSpec {
    /// Mean fraction of datagrams lost.
    pub loss: f64,
    /// Mean loss burst length in datagrams; 1 or less means independent (Bernoulli) loss.
    pub burst: f64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from zero to this, per datagram (reorders them too).
    pub jitter: Duration,
    /// Bottleneck rate in bytes per second; `None` for no limit.
    pub rate: Option<f64>,
    /// Datagrams the bottleneck queue holds before it drops (drop-tail).
    pub queue: usize,
    /// Fraction of datagrams held back by an extra 1-5 ms so later ones overtake them.
    pub reorder: f64,
    /// Fraction of datagrams delivered twice.
    pub duplicate: f64,
    /// Fraction of datagrams with one bit flipped.
    pub corrupt: f64,
}

/// Gilbert-Elliott loss: a good state that never loses and a bad state that always does.
/// Mean burst length `b` and mean loss `p` fix both transition probabilities.
#[derive(Debug, Clone)]
pub struct LossModel {
    p_good_to_bad: f64,
    p_bad_to_good: f64,
    bernoulli: Option<f64>,
    bad: bool,
}

impl LossModel {
    /// A model with mean loss `loss` in bursts of mean length `burst` datagrams.
    pub fn new(loss: f64, burst: f64) -> Self {
        let loss = loss.clamp(0.0, 1.0);
        if burst <= 1.0 || loss == 0.0 || loss >= 1.0 {
            return Self {
                p_good_to_bad: 0.0,
                p_bad_to_good: 1.0,
                bernoulli: Some(loss),
                bad: false,
            };
        }
        let p_bad_to_good = 1.0 / burst;
        let p_good_to_bad = (loss * p_bad_to_good / (1.0 - loss)).min(1.0);
        Self {
            p_good_to_bad,
            p_bad_to_good,
            bernoulli: None,
            bad: false,
        }
    }

    /// Draws whether the next datagram is lost, `idle_slots` packet times after the previous
    /// one: bursts are spans of link time, so a sender that waits lets a burst pass.
    pub fn lose(&mut self, rng: &mut impl Rng, idle_slots: u64) -> bool {
        if let Some(p) = self.bernoulli {
            return p > 0.0 && rng.random_bool(p);
        }
        if idle_slots > 0 {
            // k steps of the two-state chain in closed form: the distance to the stationary
            // bad-state probability shrinks by (1 - a - b) per step.
            let (a, b) = (self.p_good_to_bad, self.p_bad_to_good);
            let stationary = a / (a + b);
            let start = if self.bad { 1.0 } else { 0.0 };
            let decay = (1.0 - a - b).powi(idle_slots.min(1 << 20) as i32);
            let p_bad = (stationary + (start - stationary) * decay).clamp(0.0, 1.0);
            self.bad = rng.random_bool(p_bad);
        }
        let flip = if self.bad {
            self.p_bad_to_good
        } else {
            self.p_good_to_bad
        };
        if rng.random_bool(flip) {
            self.bad = !self.bad;
        }
        self.bad
    }
}

/// Counters of one direction of a path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Datagrams offered to the link.
    pub offered: u64,
    /// Delivered to the far end.
    pub delivered: u64,
    /// Dropped by the loss model.
    pub lost: u64,
    /// Dropped because the bottleneck queue was full.
    pub queue_drops: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams with a flipped bit.
    pub corrupted: u64,
    /// Datagrams held back to reorder them.
    pub reordered: u64,
}

/// One direction of a path: decides each datagram's fate and delivery time.
#[derive(Debug)]
pub struct Link {
    spec: LinkSpec,
    loss: LossModel,
    busy_until: Option<Instant>,
    last_loss_draw: Option<Instant>,
    queued_departures: std::collections::VecDeque<Instant>,
    /// What happened so far.
    pub counters: LinkCounters,
}

impl Link {
    /// A link with these impairments.
    pub fn new(spec: LinkSpec) -> Self {
        let loss = LossModel::new(spec.loss, spec.burst);
        Self {
            spec,
            loss,
            busy_until: None,
            last_loss_draw: None,
            queued_departures: Default::default(),
            counters: LinkCounters::default(),
        }
    }

    /// The link's impairments.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// Passes a datagram of `wire_len` bytes entering at `now`: returns the delivery times of
    /// the copies that survive (none, one, or two when duplicated) and whether to flip a bit.
    pub fn admit(
        &mut self,
        now: Instant,
        wire_len: usize,
        rng: &mut impl Rng,
    ) -> Vec<(Instant, bool)> {
        self.counters.offered += 1;
        let mut copies = 1;
        if self.spec.duplicate > 0.0 && rng.random_bool(self.spec.duplicate.min(1.0)) {
            copies = 2;
            self.counters.duplicated += 1;
        }
        let mut out = Vec::with_capacity(copies);
        for _ in 0..copies {
            // The bottleneck: serialisation at `rate`, drop-tail when `queue` are waiting.
            let depart = match self.spec.rate {
                Some(rate) => {
                    while self.queued_departures.front().is_some_and(|&t| t <= now) {
                        self.queued_departures.pop_front();
                    }
                    if self.queued_departures.len() >= self.spec.queue.max(1) {
                        self.counters.queue_drops += 1;
                        continue;
                    }
                    let start = self.busy_until.map_or(now, |b| b.max(now));
                    let done = start + Duration::from_secs_f64(wire_len as f64 / rate);
                    self.busy_until = Some(done);
                    self.queued_departures.push_back(done);
                    done
                }
                None => now,
            };
            // Loss on the link itself, after the queue, as on a radio hop.
            // A packet slot: its serialisation time, or 1 ms on a link with no rate limit.
            let slot = self
                .spec
                .rate
                .map_or(1e-3, |r| (wire_len as f64 / r).max(1e-6));
            let idle = self
                .last_loss_draw
                .map_or(0.0, |t| depart.saturating_duration_since(t).as_secs_f64());
            self.last_loss_draw = Some(depart);
            let idle_slots = ((idle / slot) as u64).saturating_sub(1);
            if self.loss.lose(rng, idle_slots) {
                self.counters.lost += 1;
                continue;
            }
            let mut at = depart + self.spec.delay;
            if !self.spec.jitter.is_zero() {
                at += self.spec.jitter.mul_f64(rng.random::<f64>());
            }
            if self.spec.reorder > 0.0 && rng.random_bool(self.spec.reorder.min(1.0)) {
                self.counters.reordered += 1;
                at += Duration::from_micros(rng.random_range(1_000..5_000));
            }
            let corrupt = self.spec.corrupt > 0.0 && rng.random_bool(self.spec.corrupt.min(1.0));
            if corrupt {
                self.counters.corrupted += 1;
            }
            self.counters.delivered += 1;
            out.push((at, corrupt));
        }
        out
    }
}

/// Flips one random bit of `buf`.
pub fn flip_bit(buf: &mut [u8], rng: &mut impl Rng) {
    if buf.is_empty() {
        return;
    }
    let i = rng.random_range(0..buf.len());
    buf[i] ^= 1 << rng.random_range(0..8);
}

/// A datagram on the simulated wire: (deliver at, sequence, to the receiver, flow, bytes).
type InFlight = Reverse<(Instant, u64, bool, usize, Vec<u8>)>;

/// How a simulated transfer ended.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// The sender's verdict.
    pub outcome: Result<String, SendError>,
    /// Bytes the receiver assembled (whatever arrived, even on failure).
    pub received: Vec<u8>,
    /// Virtual time from the first offer to the sender's verdict.
    pub elapsed: Duration,
    /// Virtual time from the first offer until the receiver held every chunk.
    pub completed: Option<Duration>,
    /// Virtual time from the first offer until the receiver held its first chunk.
    pub first_bytes: Option<Duration>,
    /// Sender's counters.
    pub sender: TransferStats,
    /// Receiver's counters for the session.
    pub receiver: Option<TransferStats>,
    /// Sender-to-receiver link counters.
    pub up: LinkCounters,
    /// The most file bytes the sender held in memory at once.
    pub sender_most_held: u64,
    /// Receiver-to-sender link counters.
    pub down: LinkCounters,
}

/// Runs one transfer of `data` over a simulated path; deterministic for a given `seed`.
/// Stops after `limit` of virtual time.
pub fn run_transfer(
    data: &[u8],
    up: LinkSpec,
    down: LinkSpec,
    sender_config: SenderConfig,
    receiver_config: ReceiverConfig,
    seed: u64,
    limit: Duration,
) -> SimResult {
    let configs = (sender_config, receiver_config);
    run_filtered(data, up, down, configs, seed, limit, |_, _| false)
}

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Sender to receiver.
    Up,
    /// Receiver to sender.
    Down,
}

/// Like [`run_transfer`] with default configurations (in clear, so `lose` can read what it
/// sees), and `lose` decides, for every datagram as it enters the path, whether it is lost
/// there (before the link's own impairments): precise loss, such as a transfer's tail.
pub fn run_transfer_losing(
    data: &[u8],
    link: LinkSpec,
    seed: u64,
    lose: impl FnMut(Way, &[u8]) -> bool,
) -> SimResult {
    let configs = (SenderConfig::default(), ReceiverConfig::default());
    let limit = Duration::from_secs(60);
    run_filtered(data, link.clone(), link, configs, seed, limit, lose)
}

/// Like [`run_transfer_losing`], losing the first copy of each chunk in `drop_first` on
/// the way up.
pub fn run_transfer_dropping(
    data: &[u8],
    link: LinkSpec,
    drop_first: &[u32],
    seed: u64,
) -> SimResult {
    run_transfer_losing(data, link, seed, |way, d| {
        way == Way::Up
            && matches!(
                crate::proto::wire::decode(d),
                Ok(crate::proto::wire::Packet {
                    body: crate::proto::wire::Body::Data {
                        chunk,
                        retransmit: false,
                        ..
                    },
                    ..
                }) if drop_first.contains(&chunk)
            )
    })
}

fn run_filtered(
    data: &[u8],
    up: LinkSpec,
    down: LinkSpec,
    configs: (SenderConfig, ReceiverConfig),
    seed: u64,
    limit: Duration,
    lose: impl FnMut(Way, &[u8]) -> bool,
) -> SimResult {
    let flows = [vec![Bytes::copy_from_slice(data)]];
    let mut all = run_flows(&flows, (up, down), configs, seed, limit, lose);
    let mut r = all.pop().unwrap_or_else(empty_session);
    let file = r.files.pop().unwrap_or_else(|| FileResult {
        outcome: Err(SendError::Cancelled("simulation time limit".into())),
        received: Vec::new(),
        sender: TransferStats::default(),
    });
    SimResult {
        outcome: file.outcome,
        received: file.received,
        elapsed: r.elapsed,
        completed: r.completed,
        first_bytes: r.first_bytes,
        sender: file.sender,
        receiver: r.receiver,
        up: r.up,
        down: r.down,
        sender_most_held: r.sender_most_held,
    }
}

/// How one file of a simulated session ended.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The sender's verdict.
    pub outcome: Result<String, SendError>,
    /// Bytes the receiver assembled.
    pub received: Vec<u8>,
    /// Sender's counters for the file.
    pub sender: TransferStats,
}

/// How a simulated session of several files ended.
#[derive(Debug, Clone)]
pub struct SessionResult {
    /// Each file's result, in order; files the session never reached are missing.
    pub files: Vec<FileResult>,
    /// Virtual time from the first offer to the last verdict.
    pub elapsed: Duration,
    /// Virtual time from the first offer until the receiver held every chunk of every file.
    pub completed: Option<Duration>,
    /// Virtual time from the first offer until the receiver held its first chunk.
    pub first_bytes: Option<Duration>,
    /// Receiver's counters for the whole session.
    pub receiver: Option<TransferStats>,
    /// The most file bytes the sender held in memory at once.
    pub sender_most_held: u64,
    /// Sender-to-receiver link counters.
    pub up: LinkCounters,
    /// Receiver-to-sender link counters.
    pub down: LinkCounters,
    /// Image bytes of this session the receiver held when the first of several concurrent
    /// sessions had all its files (all of them, with one session).
    pub held_when_first_done: u64,
}

/// Sends `files` one after another in one session (one login) over a simulated path, as
/// `udpix send` does with several files; deterministic for a given `seed`.
pub fn run_session(
    files: &[Bytes],
    link: (LinkSpec, LinkSpec),
    configs: (SenderConfig, ReceiverConfig),
    seed: u64,
    limit: Duration,
) -> SessionResult {
    let flows = [files.to_vec()];
    let mut r = run_flows(&flows, link, configs, seed, limit, |_, _| false);
    r.pop().unwrap_or_else(empty_session)
}

/// The result of a session that never ran.
fn empty_session() -> SessionResult {
    SessionResult {
        files: Vec::new(),
        elapsed: Duration::ZERO,
        completed: None,
        first_bytes: None,
        receiver: None,
        up: LinkCounters::default(),
        down: LinkCounters::default(),
        held_when_first_done: 0,
        sender_most_held: 0,
    }
}

/// Several senders at once, each sending its files in its own session, through one path
/// (its bottleneck shared) to one receiver: how they share it. Each result's link counters
/// are the shared path's.
pub fn run_concurrent(
    flows: &[Vec<Bytes>],
    link: (LinkSpec, LinkSpec),
    configs: (SenderConfig, ReceiverConfig),
    seed: u64,
    limit: Duration,
) -> Vec<SessionResult> {
    run_flows(flows, link, configs, seed, limit, |_, _| false)
}

/// One sender of a simulation, and what arrived of its files.
struct Flow {
    addr: SocketAddr,
    sender: Sender,
    files: Vec<Bytes>,
    pushed: usize,
    /// What the receiver assembled, by file.
    assembled: Vec<Vec<u8>>,
    results: Vec<Option<FileResult>>,
    key: Option<crate::proto::receiver::SessionKey>,
    complete: usize,
    completed: Option<Duration>,
    first_bytes: Option<Duration>,
    /// Bytes of chunks the receiver held, and their count when the first flow completed.
    held: u64,
    held_when_first_done: Option<u64>,
    /// The most file bytes the sender held at once.
    most_held: u64,
}

impl Flow {
    /// Gives the sender the bytes it asks for, as the engine does from disk (at once here).
    fn feed(&mut self) {
        while let Some((file, at)) = self.sender.wants_data() {
            let Some(data) = self.files.get(file as usize) else {
                return;
            };
            let size = self.sender.offer_of(file).map_or(0, |o| o.chunk_size);
            let at = at as usize;
            let end = (at + crate::proto::sender::segment_len(size)).min(data.len());
            if self.sender.push_data(file, data.slice(at..end)).is_err() {
                return;
            }
        }
        self.most_held = self.most_held.max(self.sender.held_bytes());
    }
}

/// A simulation: the senders, the receiver, the path between them.
struct Sim {
    rng: StdRng,
    start: Instant,
    now: Instant,
    flows: Vec<Flow>,
    receiver: Receiver,
    up: Link,
    down: Link,
    flight: BinaryHeap<InFlight>,
    seq: u64,
}

fn run_flows(
    flows: &[Vec<Bytes>],
    (up, down): (LinkSpec, LinkSpec),
    (sender_config, receiver_config): (SenderConfig, ReceiverConfig),
    seed: u64,
    limit: Duration,
    mut lose: impl FnMut(Way, &[u8]) -> bool,
) -> Vec<SessionResult> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let offer_of = |i: usize, d: &Bytes| {
        Sender::offer_for(&sender_config, &format!("sim-{i}.bin"), d, "", None)
    };
    let flows = flows
        .iter()
        .enumerate()
        .map(|(n, files)| {
            let first = files.first().cloned().unwrap_or_default();
            // Every file's bytes are given as the sender asks for them, as from disk.
            let mut sender = Sender::new(
                start,
                sender_config.clone(),
                rng.random::<u64>() | 1,
                offer_of(0, &first),
                Bytes::new(),
            );
            if files.len() > 1 {
                sender.keep_open();
            }
            Flow {
                addr: ([10, 0, 0, 1 + n as u8], 4000).into(),
                sender,
                files: files.clone(),
                pushed: 1,
                assembled: files.iter().map(|f| vec![0u8; f.len()]).collect(),
                results: vec![None; files.len()],
                key: None,
                complete: 0,
                completed: None,
                first_bytes: None,
                held: 0,
                held_when_first_done: None,
                most_held: 0,
            }
        })
        .collect();
    let mut sim = Sim {
        rng,
        start,
        now: start,
        flows,
        receiver: Receiver::new(receiver_config),
        up: Link::new(up),
        down: Link::new(down),
        flight: BinaryHeap::new(),
        seq: 0,
    };
    loop {
        let now = sim.now;
        for f in &mut sim.flows {
            while f.pushed < f.files.len() && f.sender.wants_file() {
                let offer = offer_of(f.pushed, &f.files[f.pushed]);
                f.sender.push_file(now, offer, Bytes::new());
                f.pushed += 1;
                if f.pushed == f.files.len() {
                    f.sender.close_input();
                }
                f.feed();
            }
            f.feed();
        }
        sim.transmit(&mut lose);
        sim.apply_receiver_events();
        sim.apply_sender_events();
        let done = sim.flows.iter().all(|f| f.sender.is_finished());
        if done || sim.now - sim.start > limit || !sim.advance() {
            break;
        }
    }
    let Sim {
        receiver,
        flows,
        up,
        down,
        now,
        start,
        ..
    } = sim;
    flows
        .into_iter()
        .map(|f| SessionResult {
            files: f
                .results
                .into_iter()
                .zip(f.assembled)
                .map_while(|(r, a)| {
                    r.map(|mut r| {
                        r.received = a;
                        r
                    })
                })
                .collect(),
            elapsed: now - start,
            completed: f.completed,
            first_bytes: f.first_bytes,
            receiver: f.key.and_then(|k| receiver.session_totals(&k)),
            up: up.counters.clone(),
            down: down.counters.clone(),
            held_when_first_done: f.held_when_first_done.unwrap_or(f.held),
            sender_most_held: f.most_held,
        })
        .collect()
}

impl Sim {
    /// Puts what every end has to send on the path.
    fn transmit(&mut self, lose: &mut impl FnMut(Way, &[u8]) -> bool) {
        let mut buf = Vec::with_capacity(2048);
        for i in 0..self.flows.len() {
            while self.flows[i].sender.poll_transmit(self.now, &mut buf) {
                if !lose(Way::Up, &buf) {
                    let d = buf.clone();
                    self.admit(Some(i), None, d);
                }
            }
        }
        while let Some(t) = self.receiver.poll_transmit(self.now) {
            if !lose(Way::Down, &t.payload) {
                self.admit(None, Some(t.dest), t.payload);
            }
        }
    }

    /// Puts a datagram on the path: up from flow `from`, or down to `to`.
    fn admit(&mut self, from: Option<usize>, to: Option<SocketAddr>, d: Vec<u8>) {
        let (link, flow) = match (from, to) {
            (Some(i), _) => (&mut self.up, i),
            (None, Some(dest)) => {
                let Some(i) = self.flows.iter().position(|f| f.addr == dest) else {
                    return;
                };
                (&mut self.down, i)
            }
            (None, None) => return,
        };
        for (at, corrupt) in link.admit(self.now, d.len() + 28, &mut self.rng) {
            let mut d = d.clone();
            if corrupt {
                flip_bit(&mut d, &mut self.rng);
            }
            self.seq += 1;
            self.flight
                .push(Reverse((at, self.seq, from.is_some(), flow, d)));
        }
    }

    fn flow_of(&self, peer: SocketAddr) -> Option<usize> {
        self.flows.iter().position(|f| f.addr == peer)
    }

    fn place(&mut self, flow: usize, file: u32, offset: u64, data: &[u8]) {
        let Some(f) = self.flows.get_mut(flow) else {
            return;
        };
        f.held += data.len() as u64;
        if let Some(buf) = f.assembled.get_mut(file as usize) {
            let off = offset as usize;
            buf[off..off + data.len()].copy_from_slice(data);
        }
    }

    fn apply_receiver_events(&mut self) {
        while let Some(ev) = self.receiver.poll_event() {
            match ev {
                ReceiverEvent::Accepted { key, .. } => {
                    if let Some(i) = self.flow_of(key.peer) {
                        self.flows[i].key = Some(key.session_key());
                    }
                }
                ReceiverEvent::Repaired {
                    key, offset, data, ..
                } => {
                    if let Some(i) = self.flow_of(key.peer) {
                        self.place(i, key.file, offset, &data);
                    }
                }
                ReceiverEvent::Complete { key } => self.complete(key),
                _ => {}
            }
        }
    }

    /// A file is complete at the receiver: check it as a store would, give the verdict.
    fn complete(&mut self, key: crate::proto::receiver::FileKey) {
        let Some(i) = self.flow_of(key.peer) else {
            return;
        };
        let at = self.now - self.start;
        let f = &mut self.flows[i];
        f.complete += 1;
        if f.complete == f.assembled.len() {
            f.completed = Some(at);
            if self.flows.iter().all(|f| f.held_when_first_done.is_none()) {
                for f in &mut self.flows {
                    f.held_when_first_done = Some(f.held);
                }
            }
        }
        let assembled = self.flows[i].assembled.get(key.file as usize);
        let expected = self.receiver.session_offer(&key).map(|o| o.blake3);
        let ok = assembled.is_some_and(|a| Some(*blake3::hash(a).as_bytes()) == expected);
        let verdict = if ok {
            Ok("saved".to_owned())
        } else {
            Err((
                crate::proto::wire::done::HASH_MISMATCH,
                "hash mismatch".to_owned(),
            ))
        };
        self.receiver.finish(self.now, key, verdict);
    }

    fn apply_sender_events(&mut self) {
        for f in &mut self.flows {
            while let Some(ev) = f.sender.poll_event() {
                let (file, outcome) = match ev {
                    SenderEvent::Delivered { file, message } => (file, Ok(message)),
                    SenderEvent::Failed { file, error } => (file, Err(error)),
                    _ => continue,
                };
                let sender = f.sender.stats_of(file).unwrap_or_default();
                if let Some(slot) = f.results.get_mut(file as usize) {
                    *slot = Some(FileResult {
                        outcome,
                        received: Vec::new(),
                        sender,
                    });
                }
            }
        }
    }

    /// Moves the clock to the next arrival or timer and handles it; false when nothing
    /// is left to happen.
    fn advance(&mut self) -> bool {
        let mut next = self.flight.peek().map(|Reverse((t, ..))| *t);
        let timers = self
            .flows
            .iter()
            .filter_map(|f| f.sender.poll_timeout())
            .chain(self.receiver.poll_timeout());
        for t in timers {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        let now = self.now;
        while self.flight.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            let Some(Reverse((_, _, to_receiver, flow, mut d))) = self.flight.pop() else {
                break;
            };
            let Some(from) = self.flows.get(flow).map(|f| f.addr) else {
                continue;
            };
            if to_receiver {
                if let Some(p) = self.receiver.handle(now, from, &mut d) {
                    let at = now - self.start;
                    self.flows[flow].first_bytes.get_or_insert(at);
                    self.place(flow, p.key.file, p.offset, p.data);
                }
            } else {
                self.flows[flow].sender.handle(now, &mut d);
            }
        }
        for f in &mut self.flows {
            if f.sender.poll_timeout().is_some_and(|t| t <= now) {
                f.sender.handle_timeout(now);
            }
        }
        if self.receiver.poll_timeout().is_some_and(|t| t <= now) {
            self.receiver.handle_timeout(now);
        }
        true
    }
}
