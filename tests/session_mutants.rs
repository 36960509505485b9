//! Tests written to kill the mutants that cargo-mutants left alive in the code for many
//! files per login (docs/MUTANTS.md): each names what the mutant broke. Deterministic: a
//! fixed-delay path driven by hand, or the receiver fed datagrams directly.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[path = "session_parts/net.rs"]
mod net;
mod session_parts;

use bytes::Bytes;
use udpix::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent, SessionKey};
use udpix::proto::wire::{self, Body};

use net::{Net, PEER, Way, offer_of};
use session_parts::{data, decode, dgram, dgram_in, offer};

fn skey() -> SessionKey {
    SessionKey {
        peer: PEER.into(),
        session: 5,
    }
}

fn three_files() -> Vec<Bytes> {
    (0..3).map(|i| data(20_000, i)).collect()
}

/// Every file of a session ends delivered; the sender reports each one's outcome, offer and
/// figures by its place (`outcome_of`, `offer_of`, `stats_of`).
#[test]
fn the_sender_reports_each_file_by_its_place() {
    let files = three_files();
    let mut n = Net::new(files.clone(), ReceiverConfig::default());
    assert!(n.run(Duration::from_secs(30)));
    let mut first_chunk = 0;
    for f in 0..3u32 {
        assert!(
            matches!(n.outcome(f), Some(Ok(_))),
            "file {f}: {:?}",
            n.outcome(f)
        );
        assert_eq!(n.s.outcome_of(f), Some(&Ok("saved".to_owned())), "file {f}");
        let o = n.s.offer_of(f).expect("offer kept");
        assert_eq!((o.file, o.first_chunk), (f, first_chunk));
        assert_eq!(o.name, format!("f{f}"));
        first_chunk += o.chunk_count;
        let st = n.s.stats_of(f).expect("figures kept");
        assert_eq!(st.chunks, o.chunk_count);
        assert_eq!(st.chunks_done, o.chunk_count);
        assert_eq!(st.bytes, files[f as usize].len() as u64);
    }
    assert!(n.s.outcome_of(3).is_none() && n.s.offer_of(3).is_none());
    assert!(n.s.stats_of(3).is_none());
}

/// A lossless path loses nothing, and the receiver counts a gap in the packet numbers as
/// one loss each (`Session::lost`).
#[test]
fn the_receiver_counts_each_datagram_lost_on_the_way_once() {
    for drops in [0usize, 2] {
        let mut n = Net::new(three_files(), ReceiverConfig::default());
        let mut data_seen = 0;
        let mut dropped = 0;
        n.lose = Box::new(move |way, d, _| {
            if way == Way::Up && matches!(decode(d), Some(Body::Data { .. })) {
                data_seen += 1;
                if data_seen % 7 == 0 && dropped < drops {
                    dropped += 1;
                    return true;
                }
            }
            false
        });
        assert!(n.run(Duration::from_secs(30)));
        for f in 0..3 {
            assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
        }
        let totals =
            n.r.session_totals(&n.key(0).session_key())
                .expect("lingers");
        assert_eq!(totals.lost, drops as u64, "session lost, {drops} dropped");
        let per_file: u64 = (0..3)
            .map(|f| n.r.session_stats(&n.key(f)).expect("kept").lost)
            .sum();
        assert_eq!(per_file, drops as u64, "files' lost, {drops} dropped");
    }
}

/// The receiver keeps a finished file (to repeat its DONE) until the sender has offered
/// [`MAX_FILES_IN_FLIGHT`] after it, and then forgets it (`Session::forget_old_files`).
#[test]
fn the_receiver_forgets_a_finished_file_only_once_four_more_were_offered() {
    let files: Vec<Bytes> = (0..7).map(|i| data(3_000, i)).collect();
    let mut n = Net::new(files, ReceiverConfig::default());
    assert!(n.run(Duration::from_secs(30)));
    for f in 0..7 {
        assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
    }
    // Seven offered: files 3..7 are within four of the next, 0..3 are not.
    for f in 0..3 {
        assert!(
            n.r.session_offer(&n.key(f)).is_none(),
            "file {f} still kept"
        );
    }
    for f in 3..7 {
        assert!(n.r.session_offer(&n.key(f)).is_some(), "file {f} forgotten");
        assert!(n.r.session_stats(&n.key(f)).is_some(), "file {f} forgotten");
    }
    // The forgotten files' counters stay in the session's totals.
    let totals =
        n.r.session_totals(&n.key(0).session_key())
            .expect("lingers");
    assert_eq!(totals.chunks_done, 7 * 3);
}

/// Datagrams are counted to the file they belong to, not to the oldest one still waiting
/// for its verdict (`Session::stats_for`).
#[test]
fn the_receiver_counts_a_datagram_to_its_own_file() {
    let mut n = Net::new(three_files(), ReceiverConfig::default());
    // File 0 is hashed for a long time: files 1 and 2 arrive meanwhile.
    n.hold = Box::new(|file, t| file == 0 && t < Duration::from_secs(2));
    assert!(n.run(Duration::from_secs(30)));
    for f in 0..3 {
        assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
        let st = n.r.session_stats(&n.key(f)).expect("kept");
        let chunks = n.s.offer_of(f).expect("offer").chunk_count;
        assert!(
            st.datagrams_received > u64::from(chunks),
            "file {f}: {} datagrams for {chunks} chunks",
            st.datagrams_received
        );
    }
}

/// A session takes its next file only once the newest has sent every chunk once
/// (`Sender::wants_file`).
#[test]
fn the_sender_wants_no_file_while_the_newest_has_chunks_never_sent() {
    let mut n = Net::new(vec![data(3_000, 0)], ReceiverConfig::default());
    n.s.keep_open();
    assert!(!n.s.wants_file(), "not before the session is up");
    assert!(n.run_until(Duration::from_secs(5), |n| n.s.wants_file()));
    let big = data(400_000, 9);
    let now = n.now;
    assert_eq!(n.s.push_file(now, offer_of(1, &big), big.clone()), 1);
    assert!(!n.s.wants_file(), "file 1 has sent nothing yet");
    n.files.push(big);
    n.pushed = 2;
    n.s.close_input();
    assert!(!n.s.wants_file(), "input closed");
    assert!(n.run(Duration::from_secs(30)));
    assert!(matches!(n.outcome(1), Some(Ok(_))));
}

/// Sessions from other addresses do not count against an address's own budget
/// (`Receiver::check_limits`).
#[test]
fn sessions_from_other_addresses_do_not_count_against_ones_own() {
    let mut r = Receiver::new(ReceiverConfig {
        max_sessions_per_addr: 1,
        ..ReceiverConfig::default()
    });
    let now = Instant::now();
    let a: SocketAddr = ([10, 0, 0, 1], 4000).into();
    let b: SocketAddr = ([10, 0, 0, 2], 4000).into();
    let _ = r.handle(now, a, &mut dgram(0, &Body::Offer(offer(0, 0, 50_000))));
    let _ = r.handle(now, b, &mut dgram(0, &Body::Offer(offer(0, 0, 50_000))));
    // A second session from `a` is over its budget.
    let _ = r.handle(
        now,
        a,
        &mut dgram_in(6, 0, &Body::Offer(offer(0, 0, 50_000))),
    );
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    while let Some(ev) = r.poll_event() {
        match ev {
            ReceiverEvent::Accepted { key, .. } => accepted.push(key.peer),
            ReceiverEvent::Refused { peer, .. } => refused.push(peer),
            _ => {}
        }
    }
    assert_eq!(accepted, vec![a, b]);
    assert_eq!(refused, vec![a]);
}

/// A finished session lingers for `linger` to repeat its DONE, then is forgotten; its
/// timer says when (`Receiver::poll_timeout`, `Receiver::handle_timeout`).
#[test]
fn a_finished_session_lingers_for_its_whole_linger() {
    let cfg = ReceiverConfig::default();
    let linger = cfg.linger;
    let mut r = Receiver::new(cfg);
    let t0 = Instant::now();
    let peer: SocketAddr = PEER.into();
    let _ = r.handle(t0, peer, &mut dgram(0, &Body::Offer(offer(0, 0, 1000))));
    let payload = [7u8; 1000];
    let body = Body::Data {
        chunk: 0,
        retransmit: false,
        payload: &payload,
    };
    assert!(r.handle(t0, peer, &mut dgram(1, &body)).is_some());
    let key = skey().file(0);
    assert!(r.is_verifying(&key));
    let done = t0 + Duration::from_millis(5);
    r.finish(done, key, Ok("saved".into()));
    assert!(!r.is_verifying(&key));
    assert_eq!(r.poll_timeout(), Some(done + linger));
    r.handle_timeout(done + linger / 2);
    assert!(
        r.session_offer(&key).is_some(),
        "forgotten before its linger"
    );
    assert_eq!(r.lingering_sessions(), 1);
    r.handle_timeout(done + linger);
    assert!(r.session_offer(&key).is_none(), "kept past its linger");
    assert_eq!(r.poll_timeout(), None);
}

/// The first REPAIR of each file, and when it left.
fn first_repairs(n: &Net) -> Vec<(u8, Duration)> {
    let mut out: Vec<(u8, Duration)> = Vec::new();
    for (way, t, d) in &n.log {
        if let (Way::Up, Some(Body::Repair { file, .. })) = (way, decode(d))
            && !out.iter().any(|(f, _)| *f == file)
        {
            out.push((file, *t));
        }
    }
    out
}

/// A later file's repair symbols go out while an earlier file still waits for its verdict
/// (`OutFile::has_repair_left`: the file with symbols left is the one that sends them).
#[test]
fn a_later_file_sends_its_repair_while_an_earlier_waits_for_its_verdict() {
    let mut n = Net::new(three_files(), ReceiverConfig::default());
    let hold = Duration::from_secs(3);
    n.hold = Box::new(move |file, t| file == 0 && t < hold);
    assert!(n.run(Duration::from_secs(30)));
    for f in 0..3 {
        assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
    }
    let repairs = first_repairs(&n);
    for f in 0..3u8 {
        let at = repairs.iter().find(|(g, _)| *g == f).map(|(_, t)| *t);
        assert!(
            at.is_some_and(|t| t < hold),
            "file {f}'s first repair at {at:?}, file 0's verdict held until {hold:?}"
        );
    }
}

/// The tail's repair block spans the chunks in flight when the last new one left, plus
/// four: no more (`OutFile::plan_repair`).
#[test]
fn the_repair_block_is_the_chunks_in_flight_plus_four() {
    let big = data(400_000, 3);
    let chunks = offer_of(0, &big).chunk_count;
    let mut n = Net::new(vec![big], ReceiverConfig::default());
    assert!(n.run(Duration::from_secs(30)));
    assert!(matches!(n.outcome(0), Some(Ok(_))));
    // Replays what the sender saw: the packets in flight (sent, not yet acknowledged) as
    // each one left.
    let mut in_flight: Vec<u32> = Vec::new();
    let mut at_last_chunk = None;
    let mut block = None;
    for (way, _, d) in &n.log {
        let Ok(p) = wire::decode(d) else { continue };
        match (way, p.body) {
            (Way::Down, Body::Ack(ack)) => {
                in_flight.retain(|pn| !ack.ranges.iter().any(|r| (r.start..=r.end).contains(pn)));
            }
            (
                Way::Up,
                Body::Data {
                    chunk, retransmit, ..
                },
            ) => {
                in_flight.push(p.header.pn);
                if !retransmit && chunk + 1 == chunks {
                    at_last_chunk = Some(in_flight.len());
                }
            }
            (Way::Up, Body::Repair { len, .. }) => {
                in_flight.push(p.header.pn);
                block.get_or_insert(len);
            }
            (Way::Up, Body::Ping) => in_flight.push(p.header.pn),
            _ => {}
        }
    }
    let flying = at_last_chunk.expect("the last chunk left");
    let len = usize::from(block.expect("a repair block"));
    assert!(
        flying + 4 < chunks as usize,
        "the file must outlast its first round trip: {flying} in flight of {chunks}"
    );
    assert!(
        len <= flying + 4 && len >= 4,
        "block of {len} chunks with {flying} packets in flight"
    );
}

/// Datagrams of one kind the sender sent, by the file field where it has one.
fn sent_of(n: &Net, pred: impl Fn(&Body<'_>) -> bool) -> usize {
    n.log
        .iter()
        .filter(|(way, _, d)| *way == Way::Up && decode(d).is_some_and(|b| pred(&b)))
        .count()
}

/// On a lossless path whose receiver answers at once, nothing is sent twice and no verdict
/// is asked for (`Sender::ask_for_verdicts` probes only for a verdict overdue), each file's
/// repair symbols are counted to it (`Sender::send_repair`), and the receiver counts every
/// file kept (`Receiver::finish`).
#[test]
fn a_lossless_session_sends_nothing_twice_and_counts_what_it_sent() {
    let mut n = Net::new(three_files(), ReceiverConfig::default());
    assert!(n.run(Duration::from_secs(30)));
    for f in 0..3u32 {
        assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
        let st = n.s.stats_of(f).expect("kept");
        assert_eq!(st.retransmitted, 0, "file {f}");
        let repairs = sent_of(
            &n,
            |b| matches!(b, Body::Repair { file, .. } if u32::from(*file) == f),
        );
        assert!(repairs > 0, "file {f} sent no repair symbol");
        assert_eq!(st.repaired, repairs as u64, "file {f}");
    }
    assert_eq!(
        sent_of(&n, |b| matches!(
            b,
            Body::Data {
                retransmit: true,
                ..
            }
        )),
        0
    );
    assert_eq!(sent_of(&n, |b| matches!(b, Body::Ping)), 0);
    assert_eq!(n.r.stats().completed, 3);
    assert_eq!(n.r.stats().failed, 0);
}

/// A sender keeps the outcomes of the last 16 files concluded, and forgets older ones
/// (`Sender::forget_concluded`).
#[test]
fn the_sender_forgets_all_but_the_last_sixteen_files_concluded() {
    let files: Vec<Bytes> = (0..26).map(|i| data(1_500, i)).collect();
    let mut n = Net::new(files, ReceiverConfig::default());
    assert!(n.run(Duration::from_secs(30)));
    for f in 0..26 {
        assert!(matches!(n.outcome(f), Some(Ok(_))), "file {f}");
    }
    // File 25 was pushed with at most four in flight, so at least 22 had concluded: the
    // oldest six at least are forgotten, the newest sixteen kept.
    let kept: Vec<u32> = (0..26).filter(|&f| n.s.offer_of(f).is_some()).collect();
    assert!(kept.len() <= 16 + 4, "kept {kept:?}");
    assert!((0..6).all(|f| !kept.contains(&f)), "kept {kept:?}");
    assert!((10..26).all(|f| kept.contains(&f)), "kept {kept:?}");
    assert!(n.s.outcome_of(0).is_none() && n.s.stats_of(0).is_none());
}

/// A tail chunk lost on the way and rebuilt from the repair symbol is taken as held once
/// the receiver's ACK says every chunk is settled: it is not sent again, though its verdict
/// is slow to come (`Sender::all_held`).
#[test]
fn a_chunk_rebuilt_from_repair_is_not_sent_again() {
    let file = data(20_000, 5);
    let last = offer_of(0, &file).chunk_count - 1;
    let mut n = Net::new(vec![file], ReceiverConfig::default());
    n.lose = Box::new(move |way, d, _| {
        way == Way::Up
            && matches!(decode(d), Some(Body::Data { chunk, retransmit: false, .. }) if chunk == last)
    });
    n.hold = Box::new(|_, t| t < Duration::from_secs(1));
    assert!(n.run(Duration::from_secs(30)));
    assert!(matches!(n.outcome(0), Some(Ok(_))));
    assert!(
        n.recv_events
            .iter()
            .any(|e| matches!(e, ReceiverEvent::Repaired { chunk, .. } if *chunk == last)),
        "the repair symbol did not rebuild chunk {last}"
    );
    assert_eq!(
        sent_of(&n, |b| matches!(
            b,
            Body::Data {
                retransmit: true,
                ..
            }
        )),
        0
    );
    assert_eq!(n.s.stats_of(0).expect("kept").retransmitted, 0);
}
