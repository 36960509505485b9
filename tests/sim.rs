//! Deterministic simulations of a whole transfer over an impaired in-memory network.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use udpix::proto::receiver::ReceiverConfig;
use udpix::proto::sender::SenderConfig;
use udpix::proto::wire::{self, Body};
use udpix::sim::{LinkSpec, SimResult, Way, run_transfer};

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

fn path(loss: f64, burst: f64) -> LinkSpec {
    LinkSpec {
        loss,
        burst,
        delay: Duration::from_millis(20),
        rate: Some(2_500_000.0),
        queue: 100,
        ..LinkSpec::default()
    }
}

fn run(data: &[u8], up: LinkSpec, down: LinkSpec, seed: u64) -> SimResult {
    run_transfer(
        data,
        up,
        down,
        SenderConfig::default(),
        ReceiverConfig::default(),
        seed,
        Duration::from_secs(120),
    )
}

fn assert_exact(r: &SimResult, data: &[u8], what: &str) {
    assert!(
        r.outcome.is_ok(),
        "{what}: {:?} after {:?}",
        r.outcome,
        r.elapsed
    );
    assert!(r.received == data, "{what}: content differs");
}

#[test]
fn lossless_transfer_is_exact_and_near_the_link_limit() {
    let d = data(500_000, 1);
    let r = run(&d, path(0.0, 0.0), path(0.0, 0.0), 1);
    assert_exact(&r, &d, "lossless");
    // Only start-up overshoot may overflow the bottleneck queue; no random loss here.
    assert_eq!(r.up.lost, 0);
    assert!(
        r.sender.retransmitted * 100 <= 6 * u64::from(r.sender.chunks),
        "{:?}",
        r.sender
    );
    // Link limit: 500 kB at 2.5 MB/s plus one-way delay is 0.22 s; allow handshake and ramp-up.
    assert!(
        r.elapsed < Duration::from_millis(800),
        "took {:?}",
        r.elapsed
    );
}

#[test]
fn bernoulli_loss_up_to_30_percent_many_seeds() {
    let d = data(200_000, 2);
    for loss in [0.01, 0.05, 0.1, 0.2, 0.3] {
        for seed in 0..20 {
            let r = run(&d, path(loss, 0.0), path(loss, 0.0), seed);
            assert_exact(&r, &d, &format!("loss {loss} seed {seed}"));
            if loss >= 0.05 {
                assert!(
                    r.sender.recovered > 0,
                    "loss {loss} seed {seed}: nothing recovered?"
                );
            }
        }
    }
}

#[test]
fn bursty_loss_many_seeds() {
    let d = data(200_000, 3);
    for (loss, burst) in [(0.1, 4.0), (0.2, 8.0), (0.3, 3.0)] {
        for seed in 0..20 {
            let r = run(&d, path(loss, burst), path(loss, burst), 100 + seed);
            assert_exact(&r, &d, &format!("loss {loss} burst {burst} seed {seed}"));
        }
    }
}

#[test]
fn reordering_duplication_and_corruption() {
    let d = data(300_000, 4);
    for seed in 0..10 {
        let messy = LinkSpec {
            loss: 0.05,
            jitter: Duration::from_millis(3),
            reorder: 0.1,
            duplicate: 0.05,
            corrupt: 0.02,
            ..path(0.0, 0.0)
        };
        let r = run(&d, messy.clone(), messy, 200 + seed);
        assert_exact(&r, &d, &format!("messy seed {seed}"));
        assert!(r.up.corrupted > 0 && r.up.duplicated > 0 && r.up.reordered > 0);
    }
}

#[test]
fn random_loss_does_not_collapse_the_rate() {
    // 1 MB over 2.5 MB/s with 20 % loss: the limit is 1e6 / (2.5e6 * 0.8) + 20 ms = 0.52 s.
    // A loss-based controller would take many times that; allow 2x here (the perf issue tightens).
    // The median of several seeds: a lost offer (20 % of the time) costs a repeat, which is
    // the handshake's tail and not what this test is about.
    let d = data(1_000_000, 5);
    let mut times: Vec<Duration> = (0..9)
        .map(|seed| {
            let r = run(&d, path(0.2, 0.0), path(0.0, 0.0), seed);
            assert_exact(&r, &d, &format!("20% loss, seed {seed}"));
            r.elapsed
        })
        .collect();
    times.sort();
    assert!(
        times[4] < Duration::from_millis(1040),
        "median {:?} of {times:?}: the rate collapsed",
        times[4]
    );
}

fn chunk_count(d: &[u8]) -> u32 {
    d.len()
        .div_ceil(usize::from(SenderConfig::default().chunk_size())) as u32
}

#[test]
fn lost_tail_is_repaired_within_a_few_rtts() {
    // A link that loses nothing but the first copy of the last chunks: the repair symbols
    // behind them rebuild as many as there are symbols; for the rest nothing after them can
    // be acknowledged, so only the probe timeout can notice, in about a round trip
    // (RTT + 4 rttvar + ack delay), not after the 10 s idle timeout.
    let d = data(100_000, 6);
    let chunks = chunk_count(&d);
    let base = run(&d, path(0.0, 0.0), path(0.0, 0.0), 300);
    assert_exact(&base, &d, "no loss baseline");
    for tail in [1, 2, 3, 8, 20] {
        let lost: Vec<u32> = (chunks - tail..chunks).collect();
        let r = udpix::sim::run_transfer_dropping(&d, path(0.0, 0.0), &lost, 300);
        assert_exact(&r, &d, &format!("last {tail} chunks lost"));
        // Each lost chunk came back once, by a retransmission or rebuilt from the repair
        // symbols sent right behind the last chunk; nothing else was missing.
        let rs = r.receiver.clone().expect("receiver figures");
        assert_eq!(
            rs.recovered + rs.repaired,
            u64::from(tail),
            "tail {tail}: {rs:?}"
        );
        if tail == 1 {
            // One symbol goes with the tail even when no loss was seen, so one lost chunk
            // costs no round trip at all.
            assert_eq!(rs.repaired, 1, "{rs:?}");
            assert_eq!(r.sender.retransmitted, 0, "{:?}", r.sender);
            assert!(
                r.completed.expect("completed")
                    <= base.completed.expect("completed") + Duration::from_millis(2),
                "{:?} vs {:?}",
                r.completed,
                base.completed
            );
        } else {
            assert!(
                r.sender.retransmitted >= u64::from(tail) - rs.repaired,
                "{:?}",
                r.sender
            );
        }
        assert!(
            r.elapsed < base.elapsed + Duration::from_millis(250),
            "last {tail} lost: {:?} vs baseline {:?}",
            r.elapsed,
            base.elapsed
        );
    }
}

#[test]
fn lost_acks_of_the_tail_are_repaired_by_a_probe() {
    // The whole image arrives, but what the receiver says once it holds it (the ACK of the
    // last chunks, its DONE, the DONE it repeats to a first probe) is lost: the sender's
    // probe timeout resends chunks the receiver already has, which answers them with its
    // verdict again.
    let d = data(100_000, 6);
    let chunks = chunk_count(&d);
    let base = run(&d, path(0.0, 0.0), path(0.0, 0.0), 400);
    for answers_lost in [2, 3, 4] {
        let mut lost = 0;
        let r = udpix::sim::run_transfer_losing(&d, path(0.0, 0.0), 400, |way, dgram| {
            let tail = match wire::decode(dgram) {
                Ok(p) => match p.body {
                    Body::Ack(a) => a.settled_below == chunks,
                    Body::Done { .. } => true,
                    _ => false,
                },
                Err(_) => false,
            };
            let lose = way == Way::Down && tail && lost < answers_lost;
            lost += u32::from(lose);
            lose
        });
        let what = format!("{answers_lost} answers to the tail lost");
        assert_eq!(lost, answers_lost, "{what}");
        assert_exact(&r, &d, &what);
        let rs = r.receiver.clone().expect("receiver figures");
        // A probe (a chunk it has) or the tail's repair symbol, after it held everything:
        // more than the chunks and the two copies of the offer.
        assert!(
            rs.datagrams_received > u64::from(chunks) + 2,
            "{what}: no probe reached the receiver: {rs:?}"
        );
        assert_eq!(
            rs.recovered + rs.repaired,
            0,
            "{what}: nothing was missing: {rs:?}"
        );
        assert!(
            r.elapsed < base.elapsed + Duration::from_millis(250),
            "{what}: {:?} vs baseline {:?}",
            r.elapsed,
            base.elapsed
        );
    }
}

#[test]
fn receiver_that_vanishes_fails_the_sender_cleanly() {
    let d = data(100_000, 8);
    let dead = LinkSpec {
        loss: 1.0,
        ..path(0.0, 0.0)
    };
    let r = run(&d, dead.clone(), dead, 8);
    let err = r.outcome.expect_err("must fail");
    assert!(err.to_string().contains("no answer"), "{err}");
}

#[test]
fn empty_file_transfers() {
    let r = run(&[], path(0.1, 0.0), path(0.1, 0.0), 9);
    assert_exact(&r, &[], "empty");
}

#[test]
fn secure_transfers_survive_loss_and_corruption_too() {
    let d = data(200_000, 10);
    let pass = udpix::proto::crypto::Passphrase::new("sim passphrase");
    for (loss, burst) in [(0.0, 0.0), (0.1, 0.0), (0.2, 4.0), (0.3, 0.0)] {
        for seed in 0..6 {
            let link = LinkSpec {
                corrupt: 0.01,
                duplicate: 0.01,
                ..path(loss, burst)
            };
            let r = run_transfer(
                &d,
                link.clone(),
                link,
                SenderConfig {
                    passphrase: Some(pass.clone()),
                    ..SenderConfig::default()
                },
                ReceiverConfig {
                    passphrase: Some(pass.clone()),
                    ..ReceiverConfig::default()
                },
                500 + seed,
                Duration::from_secs(120),
            );
            assert_exact(
                &r,
                &d,
                &format!("secure loss {loss} burst {burst} seed {seed}"),
            );
        }
    }
}

#[test]
fn acks_stay_small_under_loss() {
    // 10 % loss both ways leaves a hole every ten packets: an ACK reports only the newest
    // ranges (each is repeated in many ACKs), not every hole the wire format could carry.
    let d = data(1_000_000, 21);
    let r = run(&d, path(0.1, 0.0), path(0.1, 0.0), 21);
    assert_exact(&r, &d, "10% loss");
    let rx = r.receiver.expect("receiver figures");
    let mean = rx.wire_bytes_sent / rx.datagrams_sent.max(1);
    assert!(mean <= 200, "mean ACK {mean} B: {rx:?}");
}

#[test]
fn start_up_finds_the_bottleneck_without_overflowing_its_queue() {
    // 2 MB over 2.5 MB/s, 40 ms RTT, a 100-packet queue: waiting for the rate to stop
    // growing overshot by three rounds and lost 3 % of the datagrams to the full queue.
    let d = data(2_000_000, 22);
    let r = run(&d, path(0.0, 0.0), path(0.0, 0.0), 22);
    assert_exact(&r, &d, "lossless");
    assert_eq!(r.up.queue_drops, 0, "{:?}", r.up);
    assert_eq!(r.sender.retransmitted, 0, "{:?}", r.sender);
    // RTT samples come from each ACK's newest packet only: older ones in the same ACK
    // waited for it and would inflate the estimate every timer derives from (41.1 ms here,
    // where the path and its pacing give 40.6; virtual time, so the bound can be tight).
    let rtt = r.sender.rtt;
    assert!(
        rtt >= Duration::from_millis(40) && rtt <= Duration::from_micros(40_800),
        "smoothed RTT {rtt:?} on a 40 ms path"
    );
}

#[test]
fn a_long_path_with_a_short_queue_is_not_overrun() {
    // 100 Mbit/s, 200 ms RTT, 100 packets of queue (10 ms of it, a twentieth of the round
    // trip): its drops once passed for random loss, which raised the rate that caused them.
    // 30 MB: long enough for the controller's probes above its estimate.
    let d = data(30_000_000, 23);
    let sat = LinkSpec {
        delay: Duration::from_millis(100),
        rate: Some(12_500_000.0),
        ..path(0.0, 0.0)
    };
    let r = run(&d, sat.clone(), sat, 23);
    assert_exact(&r, &d, "satellite-like path");
    assert_eq!(r.up.queue_drops, 0, "{:?}", r.up);
}

#[test]
fn a_path_faster_than_the_first_flight_keeps_start_up_searching() {
    // No bottleneck at all: the first flight's ACKs come back as fast as it left, held only
    // by the receiver's delayed-ACK timer, which must not pass for a slow bottleneck (it
    // once ended start-up at 173 kB/s). Start-up then multiplies the rate each round trip.
    let d = data(4_000_000, 24);
    let open = LinkSpec {
        delay: Duration::from_millis(20),
        ..LinkSpec::default()
    };
    let r = run(&d, open.clone(), open, 24);
    assert_exact(&r, &d, "unlimited path");
    // Login, then about 3,400 packets: 32, 92, 266, 768, 2215... a few round trips more.
    assert!(
        r.completed.expect("completed") < Duration::from_millis(400),
        "took {:?} over 40 ms round trips: {:?}",
        r.completed,
        r.sender
    );
}

fn files(n: usize, seed: u64) -> Vec<bytes::Bytes> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = rng.random_range(1..60_000usize);
            bytes::Bytes::from(data(len, seed + i as u64))
        })
        .collect()
}

fn session(files: &[bytes::Bytes], link: LinkSpec, seed: u64) -> udpix::sim::SessionResult {
    udpix::sim::run_session(
        files,
        (link.clone(), link),
        (SenderConfig::default(), ReceiverConfig::default()),
        seed,
        Duration::from_secs(120),
    )
}

#[test]
fn many_files_in_one_session_each_arrive_exact_under_loss() {
    for seed in 1..=4 {
        let fs = files(30, seed);
        let r = session(&fs, path(0.1, 0.0), seed);
        assert_eq!(r.files.len(), fs.len(), "seed {seed}: files ended");
        for (i, (f, d)) in r.files.iter().zip(&fs).enumerate() {
            assert!(f.outcome.is_ok(), "seed {seed} file {i}: {:?}", f.outcome);
            assert!(f.received == d[..], "seed {seed} file {i}: content differs");
        }
    }
}

#[test]
fn a_large_file_streams_through_bounded_sender_memory() {
    use udpix::proto::sender::{READ_AHEAD, segment_len};
    // Three times what the sender may hold, so it must let go of acknowledged bytes as it
    // goes; loss makes it hold some while they are sent again.
    let big = bytes::Bytes::from(data(3 * READ_AHEAD as usize, 7));
    let link = LinkSpec {
        rate: Some(12_500_000.0),
        ..path(0.05, 0.0)
    };
    let r = session(std::slice::from_ref(&big), link, 7);
    let f = r.files.first().expect("the file ended");
    assert!(f.outcome.is_ok(), "{:?}", f.outcome);
    assert!(f.received == big[..], "content differs");
    // The tail's repair symbols are made from bytes kept for them.
    assert!(f.sender.repaired > 0, "{:?}", f.sender);
    let bound = READ_AHEAD + segment_len(SenderConfig::default().chunk_size()) as u64;
    assert!(
        r.sender_most_held <= bound && r.sender_most_held >= READ_AHEAD / 2,
        "held {} bytes at most, for a bound of {bound}",
        r.sender_most_held
    );
}
