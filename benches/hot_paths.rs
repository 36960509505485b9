//! Criterion benchmarks of the protocol core's hot paths: seal/open of a DATA datagram, wire
//! encode/decode of DATA and of a 16-range ACK, the ACK range set, the receiver handling a
//! whole transfer's datagrams, and a whole transfer in the in-memory simulator (virtual
//! time, no sockets).
//!
//! `cargo bench --bench hot_paths` runs them all; add `-- --quick` or
//! `-- --warm-up-time 1 --measurement-time 3` for a short run, or a name filter such as
//! `-- receiver`. Figures are in docs/BENCH.md. Throughput is in bytes (of datagram for the
//! per-packet cases, of image for the transfer cases) so results read as MB/s; the range set
//! counts packet numbers.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::StdRng};

use udpix::proto::crypto::{DirectionKey, Passphrase, Protection};
use udpix::proto::ranges::RangeSet;
use udpix::proto::receiver::{Receiver, ReceiverConfig};
use udpix::proto::sender::SenderConfig;
use udpix::proto::wire::{self, Ack, Body, Header, Packet, PnRange, kind};
use udpix::sim::{LinkSpec, SimResult, Way, run_transfer, run_transfer_losing};

const SESSION: u64 = 0x5e55_1011_cafe_f00d;

/// Incompressible bytes standing in for an image.
fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

fn data_header(pn: u32) -> Header {
    Header {
        kind: kind::DATA,
        session: SESSION,
        pn,
    }
}

/// The two ends of a sealed session, keyed from fixed bytes as the crypto tests do.
fn sealed_ends() -> (Protection, Protection) {
    let c2s = || DirectionKey::new(&[0x11; 32], [0x22; 12]);
    let s2c = || DirectionKey::new(&[0x33; 32], [0x44; 12]);
    (
        Protection::sealed(c2s(), s2c()),
        Protection::sealed(s2c(), c2s()),
    )
}

/// Seal and open of a full DATA datagram (AES-256-GCM), as a `--passphrase` session sends it.
fn seal_open(c: &mut Criterion) {
    let sealed = SenderConfig {
        passphrase: Some(Passphrase::new("bench")),
        ..SenderConfig::default()
    };
    let payload = image(usize::from(sealed.chunk_size()), 1);
    let body = Body::Data {
        chunk: 7,
        retransmit: false,
        payload: &payload,
    };
    let (tx, mut rx) = sealed_ends();
    let mut out = Vec::with_capacity(2048);
    tx.encode(&data_header(1), &body, &mut out);
    let len = out.len();
    assert_eq!(len, sealed.max_datagram, "a full datagram");
    assert!(matches!(rx.decode(&mut out), Ok((_, true))));

    let mut g = c.benchmark_group("crypto");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("seal_data_1200B", |b| {
        b.iter(|| {
            out.clear();
            tx.encode(black_box(&data_header(2)), black_box(&body), &mut out);
            black_box(&out);
        })
    });
    // Each datagram is opened once (the replay window refuses a second time), so every
    // iteration gets a freshly sealed copy under the next packet number, outside the timing.
    let mut pn = 2;
    g.bench_function("open_data_1200B", |b| {
        b.iter_batched_ref(
            || {
                pn += 1;
                let mut d = Vec::with_capacity(2048);
                tx.encode(&data_header(pn), &body, &mut d);
                d
            },
            |d| {
                let ok = matches!(
                    rx.decode(d),
                    Ok((
                        Packet {
                            body: Body::Data { .. },
                            ..
                        },
                        true
                    ))
                );
                assert!(ok);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// An ACK of 16 ranges, newest first, as a receiver on a lossy path reports them.
fn ack_16() -> Ack {
    let mut ranges = Vec::new();
    let mut end = 100_000u32;
    for _ in 0..16 {
        ranges.push(PnRange {
            start: end - 20,
            end,
        });
        end -= 23;
    }
    Ack {
        ack_delay_us: 1_234,
        settled_below: 5_000,
        ranges,
    }
}

/// The clear (CRC-32) wire format: DATA and ACK encode and decode.
fn wire_codec(c: &mut Criterion) {
    let clear = SenderConfig::default();
    let payload = image(usize::from(clear.chunk_size()), 2);
    let data = Body::Data {
        chunk: 7,
        retransmit: false,
        payload: &payload,
    };
    let data_dgram = wire::encode_vec(&data_header(1), &data);
    assert_eq!(data_dgram.len(), clear.max_datagram, "a full datagram");
    let ack = Body::Ack(ack_16());
    let ack_header = Header {
        kind: kind::ACK,
        session: SESSION,
        pn: 42,
    };
    let ack_dgram = wire::encode_vec(&ack_header, &ack);
    assert_eq!(
        wire::decode(&ack_dgram).map(|p| p.body).as_ref(),
        Ok(&ack),
        "an ACK survives the round trip"
    );

    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Bytes(data_dgram.len() as u64));
    let mut out = Vec::with_capacity(2048);
    g.bench_function("encode_data_1200B_reused_buf", |b| {
        b.iter(|| {
            out.clear();
            wire::encode(black_box(&data_header(1)), black_box(&data), &mut out);
            black_box(&out);
        })
    });
    g.bench_function("encode_vec_data_1200B", |b| {
        b.iter(|| wire::encode_vec(black_box(&data_header(1)), black_box(&data)))
    });
    g.bench_function("decode_data_1200B", |b| {
        b.iter(|| {
            let p = wire::decode(black_box(&data_dgram));
            assert!(matches!(
                p,
                Ok(Packet {
                    body: Body::Data { .. },
                    ..
                })
            ));
        })
    });
    g.throughput(Throughput::Bytes(ack_dgram.len() as u64));
    g.bench_function(
        format!("encode_vec_ack_16_ranges_{}B", ack_dgram.len()),
        |b| b.iter(|| wire::encode_vec(black_box(&ack_header), black_box(&ack))),
    );
    g.bench_function(format!("decode_ack_16_ranges_{}B", ack_dgram.len()), |b| {
        b.iter(|| {
            let p = wire::decode(black_box(&ack_dgram));
            assert!(matches!(
                p,
                Ok(Packet {
                    body: Body::Ack(_),
                    ..
                })
            ));
        })
    });
    g.finish();
}

/// Packet numbers as the receiver sees them: `n` of them with every tenth lost (a new range
/// every ten), and optionally every tenth arriving one late (it joins two ranges).
fn pn_pattern(n: u32, reorder: bool) -> Vec<u32> {
    let mut pns: Vec<u32> = (0..n).filter(|pn| reorder || pn % 10 != 9).collect();
    if reorder {
        for pair in pns.chunks_exact_mut(10) {
            pair.swap(8, 9);
        }
    }
    pns
}

/// The receiver's record of packet numbers, which every ACK is built from.
fn ranges(c: &mut Criterion) {
    // As the receiver keeps them (PN_RANGES_KEPT).
    const CAP: usize = 256;
    let mut g = c.benchmark_group("ranges");
    for (name, pns) in [
        ("insert_in_order", (0..10_000).collect::<Vec<u32>>()),
        ("insert_10pct_holes", pn_pattern(11_111, false)),
        ("insert_10pct_reordered", pn_pattern(10_000, true)),
    ] {
        g.throughput(Throughput::Elements(pns.len() as u64));
        g.bench_function(format!("{name}_{}", pns.len()), |b| {
            b.iter(|| {
                let mut set = RangeSet::new(CAP);
                for &pn in &pns {
                    black_box(set.insert(pn));
                }
                set
            })
        });
    }
    let mut full = RangeSet::new(CAP);
    for pn in pn_pattern(11_111, false) {
        full.insert(pn);
    }
    assert_eq!(full.newest(usize::MAX).len(), CAP);
    g.throughput(Throughput::Elements(16));
    g.bench_function("newest_16_of_256", |b| {
        b.iter(|| black_box(&full).newest(16))
    });
    g.finish();
}

/// Where the simulated sender sits; nothing is sent anywhere.
fn peer() -> SocketAddr {
    ([127, 0, 0, 1], 4000).into()
}

/// Everything a sender sent up for a lossless in-memory transfer of `data`, split into what
/// precedes the first DATA (the offer and its copy) and the DATA datagrams themselves.
fn sender_datagrams(data: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut up = Vec::new();
    let link = LinkSpec {
        delay: Duration::from_millis(10),
        ..LinkSpec::default()
    };
    let r = run_transfer_losing(data, link, 1, |way, d| {
        if way == Way::Up {
            up.push(d.to_vec());
        }
        false
    });
    assert!(r.outcome.is_ok(), "{:?}", r.outcome);
    let is_data = |d: &Vec<u8>| {
        matches!(
            wire::decode(d).map(|p| p.header.kind),
            Ok(kind::DATA | kind::DATA_RETX)
        )
    };
    let first = up.iter().position(is_data).unwrap_or(up.len());
    let datas: Vec<Vec<u8>> = up[first..].iter().filter(|d| is_data(d)).cloned().collect();
    up.truncate(first);
    (up, datas)
}

/// A receiver that has accepted the offer, and its own copy of the DATA datagrams to feed
/// (handling may rewrite them in place).
fn accepted_receiver(offers: &[Vec<u8>], datas: &[Vec<u8>]) -> (Receiver, Vec<Vec<u8>>, Instant) {
    let now = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig::default());
    for o in offers {
        rx.handle(now, peer(), &mut o.clone());
    }
    while rx.poll_transmit(now).is_some() {}
    while rx.poll_event().is_some() {}
    (rx, datas.to_vec(), now)
}

/// Feeds every datagram as an engine would: handle, send what is due (the ACKs), drain the
/// events. Datagrams arrive 10 µs apart (about 1 Gbit/s). Returns bytes placed and ACKs.
fn feed(rx: &mut Receiver, datas: &mut [Vec<u8>], start: Instant) -> (usize, usize) {
    let (mut placed, mut acks) = (0, 0);
    for (i, d) in datas.iter_mut().enumerate() {
        let now = start + Duration::from_micros(10 * i as u64);
        if let Some(p) = rx.handle(now, peer(), d) {
            placed += black_box(p.data).len();
        }
        while let Some(t) = rx.poll_transmit(now) {
            acks += 1;
            black_box(t);
        }
        while rx.poll_event().is_some() {}
    }
    (placed, acks)
}

/// Reassembly: the receiver handling a whole 2 MiB transfer's DATA datagrams (clear mode),
/// with the ACKs it builds on the way; and the same with every tenth datagram lost, so
/// each gap is acknowledged at once with up to 16 ranges.
fn receiver(c: &mut Criterion) {
    let image = image(2 << 20, 3);
    let (offers, datas) = sender_datagrams(&image);
    let holed: Vec<Vec<u8>> = datas
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .map(|(_, d)| d.clone())
        .collect();
    let check = |datas: &[Vec<u8>], what: &str| {
        let (mut rx, mut d, t) = accepted_receiver(&offers, datas);
        let (placed, acks) = feed(&mut rx, &mut d, t);
        eprintln!(
            "receiver/{what}: {} offer datagrams, {} DATA datagrams, {placed} bytes placed, {acks} ACKs",
            offers.len(),
            d.len()
        );
        placed
    };
    assert_eq!(check(&datas, "2MiB_in_order"), image.len());
    let holed_bytes = check(&holed, "2MiB_10pct_lost");

    let mut g = c.benchmark_group("receiver");
    g.throughput(Throughput::Bytes(image.len() as u64));
    g.bench_function("2MiB_in_order", |b| {
        b.iter_batched(
            || accepted_receiver(&offers, &datas),
            |(mut rx, mut d, t)| {
                feed(&mut rx, &mut d, t);
                (rx, d)
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Bytes(holed_bytes as u64));
    g.bench_function("2MiB_10pct_lost", |b| {
        b.iter_batched(
            || accepted_receiver(&offers, &holed),
            |(mut rx, mut d, t)| {
                feed(&mut rx, &mut d, t);
                (rx, d)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn path(loss: f64) -> LinkSpec {
    LinkSpec {
        loss,
        delay: Duration::from_millis(10),
        ..LinkSpec::default()
    }
}

fn transfer(data: &[u8], loss: f64, passphrase: Option<&str>) -> SimResult {
    let pass = passphrase.map(Passphrase::new);
    let r = run_transfer(
        data,
        path(loss),
        path(loss),
        SenderConfig {
            passphrase: pass.clone(),
            ..SenderConfig::default()
        },
        ReceiverConfig {
            passphrase: pass,
            ..ReceiverConfig::default()
        },
        7,
        Duration::from_secs(60),
    );
    assert!(r.outcome.is_ok(), "{:?}", r.outcome);
    r
}

/// A whole transfer in the in-memory simulator: sender, receiver and a link with no rate
/// limit and 10 ms each way, in virtual time. What it measures is the protocol core's own
/// throughput (offer hash, chunking, pacing, loss recovery, ACKs, the final hash check).
fn sim(c: &mut Criterion) {
    let image = image(1 << 20, 4);
    let cases = [
        ("1MiB_lossless", 0.0, None),
        ("1MiB_10pct_loss", 0.1, None),
        ("1MiB_lossless_sealed", 0.0, Some("bench pass")),
    ];
    for (name, loss, pass) in cases {
        let r = transfer(&image, loss, pass);
        eprintln!(
            "sim/{name}: virtual {:?} to the verdict ({:?} to the last chunk), {} datagrams up, \
             {} retransmitted, {} down",
            r.elapsed,
            r.completed.unwrap_or_default(),
            r.up.offered,
            r.sender.retransmitted,
            r.down.offered
        );
    }
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(image.len() as u64));
    for (name, loss, pass) in cases {
        g.bench_function(name, |b| b.iter(|| transfer(&image, loss, pass)));
    }
    g.finish();
}

criterion_group!(benches, seal_open, wire_codec, ranges, receiver, sim);
criterion_main!(benches);
