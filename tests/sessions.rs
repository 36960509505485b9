//! Sessions of several files, driven through a fixed-delay path where a test picks the
//! datagrams to lose and how long the receiver takes to verify each file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod session_parts;

use bytes::Bytes;
use udpix::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use udpix::proto::wire::{Body, Offer};

use session_parts::{data, decode, dgram, offer};

const PEER: ([u8; 4], u16) = ([10, 0, 0, 1], 4000);

/// A datagram on the path: (arrives at, sequence, to the receiver, bytes).
type InFlight = (Instant, u64, bool, Vec<u8>);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Up,
    Down,
}

struct Out {
    outcomes: Vec<Option<Result<String, SendError>>>,
    when: Vec<Option<Duration>>,
}

/// A fixed-delay lossless path, `lose` drops chosen datagrams; `hold(file, now)` says
/// whether the receiver's verdict on a complete file is still withheld (hashing).
fn run(
    files: &[Bytes],
    mut lose: impl FnMut(Way, &[u8], Duration) -> bool,
    mut hold: impl FnMut(u32, Duration) -> bool,
    limit: Duration,
) -> Out {
    let scfg = SenderConfig::default();
    let start = Instant::now();
    let offer = |i: usize| Sender::offer_for(&scfg, &format!("f{i}"), &files[i], "", None);
    let mut s = Sender::new(start, scfg.clone(), 77, offer(0), files[0].clone());
    if files.len() > 1 {
        s.keep_open();
    }
    let mut r = Receiver::new(ReceiverConfig::default());
    let mut q: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let delay = Duration::from_millis(10);
    let mut now = start;
    let mut pushed = 1;
    let mut complete: Vec<udpix::proto::receiver::FileKey> = Vec::new();
    let mut out = Out {
        outcomes: vec![None; files.len()],
        when: vec![None; files.len()],
    };
    let peer: SocketAddr = PEER.into();
    let mut buf = Vec::new();
    loop {
        while pushed < files.len() && s.wants_file() {
            s.push_file(now, offer(pushed), files[pushed].clone());
            pushed += 1;
            if pushed == files.len() {
                s.close_input();
            }
        }
        while s.poll_transmit(now, &mut buf) {
            if !lose(Way::Up, &buf, now - start) {
                seq += 1;
                q.push(Reverse((now + delay, seq, true, buf.clone())));
            }
        }
        while let Some(t) = r.poll_transmit(now) {
            if !lose(Way::Down, &t.payload, now - start) {
                seq += 1;
                q.push(Reverse((now + delay, seq, false, t.payload)));
            }
        }
        while let Some(ev) = r.poll_event() {
            if let ReceiverEvent::Complete { key } = ev {
                complete.push(key);
            }
        }
        complete.retain(|key| {
            if hold(key.file, now - start) {
                return true;
            }
            r.finish(now, *key, Ok("saved".into()));
            false
        });
        while let Some(ev) = s.poll_event() {
            let (f, o) = match ev {
                SenderEvent::Delivered { file, message } => (file, Ok(message)),
                SenderEvent::Failed { file, error } => (file, Err(error)),
                _ => continue,
            };
            out.outcomes[f as usize] = Some(o);
            out.when[f as usize] = Some(now - start);
        }
        if s.is_finished() || now - start > limit {
            return out;
        }
        let mut next = q.peek().map(|Reverse((t, ..))| *t);
        for t in [s.poll_timeout(), r.poll_timeout()].into_iter().flatten() {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        if !complete.is_empty() {
            let t = now + Duration::from_millis(1);
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next else { return out };
        now = now.max(next);
        while q.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            let Some(Reverse((_, _, up, mut d))) = q.pop() else {
                break;
            };
            if up {
                let _ = r.handle(now, peer, &mut d);
            } else {
                s.handle(now, &mut d);
            }
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
    }
}

/// The DONE of an empty last file, lost once, is asked for again (an empty file has no
/// chunk whose ACK would start the wait for its verdict).
#[test]
fn lost_done_of_an_empty_last_file_is_probed_for() {
    let files = [data(20_000, 1), Bytes::new()];
    let mut dropped = false;
    let out = run(
        &files,
        |way, d, _| {
            if way == Way::Down && !dropped && matches!(decode(d), Some(Body::Done { file: 1, .. }))
            {
                dropped = true;
                return true;
            }
            false
        },
        |_, _| false,
        Duration::from_secs(60),
    );
    assert!(dropped);
    assert!(
        matches!(out.outcomes[1], Some(Ok(_))),
        "file 1: {:?} at {:?}",
        out.outcomes[1],
        out.when[1]
    );
}

/// A later file's offers all lost for longer than the offer timeout: the sender keeps
/// offering it while the session lives, so it and every file after it still arrive (the
/// receiver takes files only in order).
#[test]
fn a_later_offer_lost_for_seconds_holds_up_no_file_for_good() {
    let files: Vec<Bytes> = (0..6).map(|i| data(20_000, i)).collect();
    let out = run(
        &files,
        |way, d, t| {
            way == Way::Up
                && t < Duration::from_secs(6)
                && matches!(decode(d), Some(Body::Offer(Offer { file: 1, .. })))
        },
        |_, _| false,
        Duration::from_secs(120),
    );
    assert!(matches!(out.outcomes[0], Some(Ok(_))));
    for f in 1..6 {
        assert!(
            matches!(out.outcomes[f], Some(Ok(_))),
            "file {f}: {:?} at {:?}",
            out.outcomes[f],
            out.when[f]
        );
    }
}

/// A hostile sender cannot park a large file at zero progress by offering an empty file
/// every 9 s: the min-rate window runs on.
#[test]
fn min_rate_cannot_be_dodged_by_offering_empty_files() {
    let run_for = |empties: bool| {
        let mut r = Receiver::new(ReceiverConfig::default());
        let peer: SocketAddr = PEER.into();
        let t0 = Instant::now();
        let big = offer(0, 0, 100 << 20);
        let next_chunk = big.chunk_count;
        let _ = r.handle(t0, peer, &mut dgram(0, &Body::Offer(big)));
        let mut failed = None;
        let mut pn = 1;
        let mut file = 1;
        for step in 1..=(120 / 3) {
            let now = t0 + Duration::from_secs(3 * step);
            r.handle_timeout(now);
            if step % 3 == 0 {
                let body = if empties {
                    file += 1;
                    Body::Offer(offer(file - 1, next_chunk, 0))
                } else {
                    Body::Ping
                };
                let _ = r.handle(now, peer, &mut dgram(pn, &body));
                pn += 1;
            }
            while let Some(ev) = r.poll_event() {
                match ev {
                    ReceiverEvent::Complete { key } => r.finish(now, key, Ok("ok".into())),
                    ReceiverEvent::Failed { key, reason } if key.file == 0 => {
                        failed.get_or_insert((now - t0, reason));
                    }
                    _ => {}
                }
            }
            while r.poll_transmit(now).is_some() {}
        }
        failed
    };
    let control = run_for(false);
    assert!(control.is_some(), "pings alone: dropped as too slow");
    let dodged = run_for(true);
    assert!(
        dodged.is_some(),
        "with an empty file offered every 9 s the 100 MiB file at 0 bytes/s survives 120 s (control: {control:?})"
    );
}

/// Every datagram that reached the session is counted once in its totals, a refused later
/// offer's too.
#[test]
fn a_refused_later_offer_is_counted_as_received() {
    let files: Vec<Bytes> = vec![data(20_000, 1), data(200_000, 2), data(20_000, 3)];
    let link = udpix::sim::LinkSpec {
        delay: Duration::from_millis(10),
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        max_size: 100_000,
        ..ReceiverConfig::default()
    };
    let r = udpix::sim::run_session(
        &files,
        (link.clone(), link),
        (SenderConfig::default(), rcfg),
        3,
        Duration::from_secs(60),
    );
    assert!(r.files[1].outcome.is_err());
    let rx = r.receiver.expect("session kept");
    let tx_sent: u64 = r.files.iter().map(|f| f.sender.datagrams_sent).sum();
    eprintln!(
        "up delivered {} / receiver counted {}; up offered {} / sender files' sum {}",
        r.up.delivered, rx.datagrams_received, r.up.offered, tx_sent
    );
    assert_eq!(rx.datagrams_received, r.up.delivered);
}
