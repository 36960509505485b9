//! One sender and one receiver on a fixed-delay path, stepped by hand: the session tests
//! pick the datagrams to lose and how long the receiver takes to verify each file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use udpix::proto::receiver::{FileKey, Receiver, ReceiverConfig, ReceiverEvent, SessionKey};
use udpix::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use udpix::proto::wire::Offer;

pub const PEER: ([u8; 4], u16) = ([10, 0, 0, 1], 4000);

/// A datagram on the path: (arrives at, sequence, to the receiver, bytes).
pub type InFlight = (Instant, u64, bool, Vec<u8>);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Way {
    Up,
    Down,
}

pub type Lose = Box<dyn FnMut(Way, &[u8], Duration) -> bool>;
pub type Hold = Box<dyn FnMut(u32, Duration) -> bool>;

/// One sender and one receiver on a fixed-delay path, stepped by hand. `lose` drops chosen
/// datagrams; `hold(file, t)` withholds the receiver's verdict on a complete file (hashing).
pub struct Net {
    pub start: Instant,
    pub now: Instant,
    pub s: Sender,
    pub r: Receiver,
    pub q: BinaryHeap<Reverse<InFlight>>,
    pub seq: u64,
    pub delay: Duration,
    pub files: Vec<Bytes>,
    pub pushed: usize,
    /// Close the sender's input once every file is pushed.
    pub close_when_pushed: bool,
    pub complete: Vec<FileKey>,
    pub lose: Lose,
    pub hold: Hold,
    pub sent_events: Vec<SenderEvent>,
    pub recv_events: Vec<ReceiverEvent>,
    pub peer: SocketAddr,
    /// What the sender saw, in order: each datagram it sent (lost or not, with the time it
    /// left) and each it was handed.
    pub log: Vec<(Way, Duration, Vec<u8>)>,
}

pub fn scfg() -> SenderConfig {
    SenderConfig::default()
}

pub fn offer_of(i: usize, d: &Bytes) -> Offer {
    Sender::offer_for(&scfg(), &format!("f{i}"), d, "", None)
}

impl Net {
    pub fn new(files: Vec<Bytes>, rcfg: ReceiverConfig) -> Self {
        let start = Instant::now();
        let mut s = Sender::new(start, scfg(), 77, offer_of(0, &files[0]), files[0].clone());
        if files.len() > 1 {
            s.keep_open();
        }
        Self {
            start,
            now: start,
            s,
            r: Receiver::new(rcfg),
            q: BinaryHeap::new(),
            seq: 0,
            delay: Duration::from_millis(10),
            files,
            pushed: 1,
            close_when_pushed: true,
            complete: Vec::new(),
            lose: Box::new(|_, _, _| false),
            hold: Box::new(|_, _| false),
            sent_events: Vec::new(),
            recv_events: Vec::new(),
            peer: PEER.into(),
            log: Vec::new(),
        }
    }

    pub fn t(&self) -> Duration {
        self.now - self.start
    }

    pub fn key(&self, file: u32) -> FileKey {
        SessionKey {
            peer: self.peer,
            session: 77,
        }
        .file(file)
    }

    /// One round: push files, transmit, apply events, then advance the clock to the next
    /// arrival or timer and handle it. False once nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let t = self.t();
        while self.pushed < self.files.len() && self.s.wants_file() {
            let o = offer_of(self.pushed, &self.files[self.pushed]);
            self.s.push_file(now, o, self.files[self.pushed].clone());
            self.pushed += 1;
            if self.pushed == self.files.len() && self.close_when_pushed {
                self.s.close_input();
            }
        }
        let mut buf = Vec::new();
        while self.s.poll_transmit(now, &mut buf) {
            self.log.push((Way::Up, t, buf.clone()));
            if !(self.lose)(Way::Up, &buf, t) {
                self.seq += 1;
                self.q
                    .push(Reverse((now + self.delay, self.seq, true, buf.clone())));
            }
        }
        while let Some(tx) = self.r.poll_transmit(now) {
            if !(self.lose)(Way::Down, &tx.payload, t) {
                self.seq += 1;
                self.q
                    .push(Reverse((now + self.delay, self.seq, false, tx.payload)));
            }
        }
        self.drain();
        let mut complete = std::mem::take(&mut self.complete);
        complete.retain(|key| {
            if (self.hold)(key.file, t) {
                return true;
            }
            self.r.finish(now, *key, Ok("saved".into()));
            false
        });
        self.complete = complete;
        self.drain();
        let mut next = self.q.peek().map(|Reverse((t, ..))| *t);
        for t in [self.s.poll_timeout(), self.r.poll_timeout()]
            .into_iter()
            .flatten()
        {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        if !self.complete.is_empty() {
            let t = now + Duration::from_millis(1);
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while self.q.peek().is_some_and(|Reverse((t, ..))| *t <= self.now) {
            let Some(Reverse((_, _, up, mut d))) = self.q.pop() else {
                break;
            };
            if up {
                let _ = self.r.handle(self.now, self.peer, &mut d);
            } else {
                self.log.push((Way::Down, self.now - self.start, d.clone()));
                self.s.handle(self.now, &mut d);
            }
        }
        if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
            self.s.handle_timeout(self.now);
        }
        if self.r.poll_timeout().is_some_and(|t| t <= self.now) {
            self.r.handle_timeout(self.now);
        }
        true
    }

    /// Steps until `done` holds (true) or `limit` of virtual time passed (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        // A bound on rounds too, so a timer stuck in the past fails the test, not hangs it.
        for _ in 0..200_000 {
            self.drain();
            if done(self) {
                return true;
            }
            if self.t() > limit || !self.step() {
                self.drain();
                return done(self);
            }
        }
        false
    }

    /// Takes the events both ends have queued.
    pub fn drain(&mut self) {
        while let Some(ev) = self.s.poll_event() {
            self.sent_events.push(ev);
        }
        while let Some(ev) = self.r.poll_event() {
            if let ReceiverEvent::Complete { key } = &ev {
                self.complete.push(*key);
            }
            self.recv_events.push(ev);
        }
    }

    /// Steps until the sender is finished.
    pub fn run(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |n| n.s.is_finished())
    }

    pub fn outcome(&self, file: u32) -> Option<Result<String, SendError>> {
        self.sent_events.iter().find_map(|e| match e {
            SenderEvent::Delivered { file: f, message } if *f == file => Some(Ok(message.clone())),
            SenderEvent::Failed { file: f, error } if *f == file => Some(Err(error.clone())),
            _ => None,
        })
    }
}
