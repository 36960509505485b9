//! One file of a session given up alone (ABANDON, docs/PROTOCOL.md): it ends on both sides
//! as cancelled, nothing more of it is sent, nothing of it is kept, and the session's other
//! files go on. Deterministic: a fixed-delay path driven by hand.

use std::time::Duration;

#[path = "session_parts/net.rs"]
mod net;
mod session_parts;

use bytes::Bytes;
use udpix::proto::receiver::{ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{SendError, SenderEvent};
use udpix::proto::wire::{self, Body};

use net::{Net, Way};
use session_parts::{data, decode, dgram, offer};

const LIMIT: Duration = Duration::from_secs(30);

fn files() -> Vec<Bytes> {
    (0..3).map(|i| data(1_000_000, i)).collect()
}

/// The receiver's failure of file `file`, if it reported one.
fn receiver_failure(n: &Net, file: u32) -> Option<String> {
    n.recv_events.iter().find_map(|e| match e {
        ReceiverEvent::Failed { key, reason } if key.file == file => Some(reason.clone()),
        _ => None,
    })
}

/// Chunks of `file` the sender put on the wire from `after` on.
fn chunks_sent_after(n: &Net, file: u32, after: Duration) -> usize {
    let Some(range) = n.s.offer_of(file).map(|o| o.chunk_range()) else {
        return 0;
    };
    n.log
        .iter()
        .filter(|(way, t, _)| *way == Way::Up && *t > after)
        .filter(
            |(.., d)| matches!(decode(d), Some(Body::Data { chunk, .. }) if range.contains(&chunk)),
        )
        .count()
}

/// Runs until file 1's first chunk is acknowledged, then abandons it: most of it has not
/// been sent yet.
fn abandon_file_1_midway(n: &mut Net) -> Duration {
    let acked = |n: &Net| {
        n.sent_events
            .iter()
            .filter(|e| matches!(e, SenderEvent::ChunkAcked { file: 1, .. }))
            .count()
    };
    assert!(
        n.run_until(LIMIT, |n| acked(n) >= 1),
        "file 1 never got going"
    );
    assert!(n.s.abandon(n.now, 1, "not this one"));
    n.t()
}

#[test]
fn a_file_abandoned_midway_ends_alone_and_the_others_arrive() {
    let mut n = Net::new(files(), ReceiverConfig::default());
    let at = abandon_file_1_midway(&mut n);
    assert!(n.run(LIMIT));
    assert!(matches!(n.outcome(0), Some(Ok(_))), "{:?}", n.outcome(0));
    assert!(matches!(n.outcome(2), Some(Ok(_))), "{:?}", n.outcome(2));
    assert_eq!(
        n.outcome(1),
        Some(Err(SendError::Abandoned("not this one".into())))
    );
    assert_eq!(
        receiver_failure(&n, 1).as_deref(),
        Some("cancelled by the sender: not this one")
    );
    assert_eq!(receiver_failure(&n, 0), None);
    assert_eq!(receiver_failure(&n, 2), None);
    // What was in flight may still land; nothing new leaves after one round trip.
    assert_eq!(chunks_sent_after(&n, 1, at + Duration::from_millis(1)), 0);
    assert!(!n.complete.contains(&n.key(1)));
    // The abandoned file's chunks are not counted as delivered.
    let st = n.s.stats_of(1).expect("kept");
    assert!(st.chunks_done < st.chunks, "{st:?}");
    assert!(!n.s.abandon(n.now, 1, "again"), "ended already");
}

#[test]
fn a_lost_abandon_is_repeated_until_the_receiver_answers() {
    let mut n = Net::new(files(), ReceiverConfig::default());
    let mut abandons = 0;
    n.lose = Box::new(move |way, d, _| {
        if way == Way::Up && matches!(decode(d), Some(Body::Abandon { .. })) {
            abandons += 1;
            return abandons <= 2;
        }
        false
    });
    abandon_file_1_midway(&mut n);
    assert!(n.run(LIMIT));
    let sent = n
        .log
        .iter()
        .filter(|(way, _, d)| *way == Way::Up && matches!(decode(d), Some(Body::Abandon { .. })))
        .count();
    assert!(sent >= 3, "{sent} ABANDON copies");
    assert_eq!(
        n.outcome(1),
        Some(Err(SendError::Abandoned("not this one".into())))
    );
    assert!(receiver_failure(&n, 1).is_some());
    assert!(matches!(n.outcome(2), Some(Ok(_))), "{:?}", n.outcome(2));
}

/// File 1's offer never gets through; abandoned, the receiver steps past it by the
/// ABANDON alone, and file 2 (which must come in order) is taken.
#[test]
fn a_file_abandoned_before_its_offer_arrived_is_stepped_past() {
    let mut n = Net::new(files(), ReceiverConfig::default());
    n.lose = Box::new(|way, d, _| {
        way == Way::Up && matches!(decode(d), Some(Body::Offer(o)) if o.file == 1)
    });
    assert!(n.run_until(LIMIT, |n| n.s.offer_of(1).is_some()));
    assert!(n.s.abandon(n.now, 1, "changed my mind"));
    assert!(n.run(LIMIT));
    assert_eq!(
        n.outcome(1),
        Some(Err(SendError::Abandoned("changed my mind".into())))
    );
    assert!(matches!(n.outcome(2), Some(Ok(_))), "{:?}", n.outcome(2));
    let accepted_1 = n
        .recv_events
        .iter()
        .any(|e| matches!(e, ReceiverEvent::Accepted { key, .. } if key.file == 1));
    assert!(!accepted_1, "file 1 was never offered through");
}

/// The whole file is in and verified, but its DONE is lost: an ABANDON then draws the
/// verdict again, and the sender says what happened: it was delivered.
#[test]
fn a_file_kept_before_its_abandon_arrived_is_reported_delivered() {
    let mut n = Net::new(files(), ReceiverConfig::default());
    n.lose = Box::new(|way, d, _| {
        way == Way::Down && matches!(decode(d), Some(Body::Done { file: 1, .. }))
    });
    assert!(n.run_until(LIMIT, |n| {
        n.r.session_stats(&n.key(1))
            .is_some_and(|s| s.chunks_done == s.chunks)
            && !n.r.is_verifying(&n.key(1))
            && n.complete.is_empty()
    }));
    n.lose = Box::new(|_, _, _| false);
    assert!(n.s.abandon(n.now, 1, "too late"));
    assert!(n.run(LIMIT));
    assert!(matches!(n.outcome(1), Some(Ok(_))), "{:?}", n.outcome(1));
    assert_eq!(receiver_failure(&n, 1), None);
}

/// ABANDONs that do not fit the session are dropped and counted, with no state made: one
/// for a file past the next, one whose chunks do not follow the previous file's.
#[test]
fn an_abandon_out_of_line_changes_nothing() {
    let mut r = udpix::proto::receiver::Receiver::new(ReceiverConfig::default());
    let peer = "10.0.0.1:4000".parse().expect("addr");
    let now = std::time::Instant::now();
    let first = offer(0, 0, 5_000);
    let _ = r.handle(now, peer, &mut dgram(0, &Body::Offer(first)));
    let key = udpix::proto::receiver::SessionKey { peer, session: 5 };
    let abandon = |file, first_chunk| Body::Abandon {
        file,
        first_chunk,
        chunk_count: 10,
        reason: "x".into(),
    };
    let before = r.session_totals(&key).expect("session").malformed;
    let _ = r.handle(now, peer, &mut dgram(1, &abandon(2, 5)));
    let _ = r.handle(now, peer, &mut dgram(2, &abandon(1, 6)));
    let after = r.session_totals(&key).expect("session").malformed;
    assert_eq!(after - before, 2);
    // File 1 is still the next in line: its real offer is taken.
    while r.poll_transmit(now).is_some() {}
    let _ = r.handle(now, peer, &mut dgram(3, &Body::Offer(offer(1, 5, 3_000))));
    let mut accepted = false;
    while let Some(ev) = r.poll_event() {
        accepted |= matches!(ev, ReceiverEvent::Accepted { key, .. } if key.file == 1);
    }
    assert!(accepted);
    // And an ABANDON in line ends it, answered by DONE `abandoned`.
    let _ = r.handle(now, peer, &mut dgram(4, &abandon(1, 5)));
    let mut done = None;
    while let Some(t) = r.poll_transmit(now) {
        if let Some(Body::Done { file, status, .. }) = decode(&t.payload) {
            done = Some((file, status));
        }
    }
    assert_eq!(done, Some((1, wire::done::ABANDONED)));
}
