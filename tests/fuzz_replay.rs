//! Replays the fuzz corpora in `fuzz/corpus/` through the same entry points the fuzzers use,
//! deterministically, so every input a fuzzer ever kept stays a regression test.
//!
//! `UDPIX_WRITE_SEEDS=1 cargo test --test fuzz_replay write_seeds -- --ignored` rewrites the
//! hand-made seed inputs (files named `seed-*`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use udpix::fuzzing;
use udpix::proto::crypto::Passphrase;
use udpix::proto::receiver::{Receiver, ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{Sender, SenderConfig};
use udpix::proto::wire::{self, Body, Header, kind};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every input of a corpus, by file name (hand-made seeds are named `seed-*`).
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .collect();
    v.sort();
    assert!(
        v.iter().any(|(n, _)| n.starts_with("seed-")) && v.len() > 10,
        "corpus {} lost its seeds or its fuzzed inputs: {} files",
        dir.display(),
        v.len()
    );
    v
}

/// Runs a target over its corpus (each input checks the target's invariants) and returns
/// each input's report.
fn replay<R>(target: &str, f: fn(&[u8]) -> R) -> Vec<(String, R)> {
    inputs(target)
        .into_iter()
        .map(|(name, data)| {
            let r = f(&data);
            (name, r)
        })
        .collect()
}

#[test]
fn replay_decode_corpus() {
    let reports = replay("decode", fuzzing::decode);
    // The round-trip checks run on a decoded packet of every type, not on none.
    let kinds: std::collections::BTreeSet<u8> =
        reports.iter().filter_map(|(_, r)| r.packet).collect();
    let every = [
        kind::OFFER,
        kind::ACCEPT,
        kind::REFUSE,
        kind::DATA,
        kind::DATA_RETX,
        kind::ACK,
        kind::DONE,
        kind::PING,
        kind::CLOSE,
        kind::HELLO,
        kind::RETRY,
        kind::HELLO_REPLY,
        kind::CONFIRM,
    ];
    let missing: Vec<u8> = every.into_iter().filter(|k| !kinds.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "no decodable packet of types {missing:02x?}"
    );
}

#[test]
fn replay_handshake_corpus() {
    let reports = replay("handshake", fuzzing::handshake);
    // The genuine sender logs in through the hostile traffic of the recorded transfer: the
    // checks on who may log in run on real logins, not only on refusals.
    let seed = seed_report(&reports);
    assert!(
        seed.genuine_accepted && seed.sender_accepted,
        "the genuine sender did not log in: {seed:?}"
    );
    let logins = reports.iter().filter(|(_, r)| r.genuine_accepted).count();
    let answered = reports
        .iter()
        .filter(|(_, r)| r.replies_to_strangers > 0)
        .count();
    assert!(
        logins > 1 && answered > 0,
        "{logins} inputs with a login, {answered} with answers to strangers, of {}",
        reports.len()
    );
}

#[test]
fn replay_receiver_corpus() {
    let reports = replay("receiver", fuzzing::receiver);
    let seed = seed_report(&reports);
    assert!(
        seed.accepted == 1 && seed.completed == 1 && seed.placed > 0,
        "the recorded transfer no longer completes: {seed:?}"
    );
    let placing = reports.iter().filter(|(_, r)| r.placed > 0).count();
    assert!(
        placing > 1,
        "only {placing} of {} inputs place a chunk",
        reports.len()
    );
}

/// Well-formed handshake datagrams sent to a receiver without a passphrase: it must count
/// them somewhere (malformed, refused) like every other datagram.
#[test]
fn an_insecure_receiver_counts_handshake_datagrams() {
    let h = |k| Header {
        kind: k,
        session: 9,
        pn: 1,
    };
    let confirm = wire::encode_vec(
        &h(kind::CONFIRM),
        &Body::Confirm {
            confirm: [1; wire::CONFIRM_LEN],
            token: vec![2; 92],
        },
    );
    let hello = wire::encode_vec(
        &h(kind::HELLO),
        &Body::Hello {
            pake: [3; wire::PAKE_LEN],
            cookie: Vec::new(),
        },
    );
    // The same HELLO without its padding: its checksum recomputed.
    let mut short = hello[..wire::HEADER_LEN + wire::PAKE_LEN + 1].to_vec();
    let sum = crc32fast::hash(&short);
    short.extend_from_slice(&sum.to_be_bytes());
    for d in [confirm, short] {
        fuzzing::receiver(&fuzzing::frame(&[d]));
    }
}

/// Records what a sender sends to a receiver over a perfect network.
fn record(secure: bool) -> Vec<Vec<u8>> {
    let pass = secure.then(|| Passphrase::new("fuzz passphrase"));
    let now = Instant::now();
    let mut rx = Receiver::new(ReceiverConfig {
        passphrase: pass.clone(),
        ..ReceiverConfig::default()
    });
    let config = SenderConfig {
        passphrase: pass,
        max_datagram: 200,
        ..SenderConfig::default()
    };
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let offer = Sender::offer_for(&config, "seed.png", &data, "png", Some((4, 4)));
    let mut tx = Sender::new(now, config, 0x5eed, offer, Bytes::from(data));
    let peer = "10.0.0.1:1".parse().expect("addr");
    let mut sent = Vec::new();
    let mut buf = Vec::new();
    let mut now = now;
    for _ in 0..200 {
        // Time passes, or the sender's pacing holds back all but its first flight.
        now += std::time::Duration::from_millis(5);
        while tx.poll_transmit(now, &mut buf) {
            sent.push(buf.clone());
            let mut d = buf.clone();
            let _ = rx.handle(now, peer, &mut d);
        }
        while let Some(t) = rx.poll_transmit(now) {
            let mut d = t.payload;
            tx.handle(now, &mut d);
        }
        while let Some(ev) = rx.poll_event() {
            if let ReceiverEvent::Complete { key } = ev {
                rx.finish(now, key, Ok("ok".into()));
            }
        }
        if tx.is_finished() {
            break;
        }
    }
    sent
}

#[test]
#[ignore = "writes seed files; run by hand"]
fn write_seeds() {
    if std::env::var("UDPIX_WRITE_SEEDS").is_err() {
        return;
    }
    let h = |k| Header {
        kind: k,
        session: 42,
        pn: 3,
    };
    let samples = [
        wire::encode_vec(&h(kind::PING), &Body::Ping),
        wire::encode_vec(
            &h(kind::ACCEPT),
            &Body::Accept {
                offer_pn: 1,
                confirm: [0; wire::CONFIRM_LEN],
            },
        ),
        wire::encode_vec(
            &h(kind::ACK),
            &Body::Ack(wire::Ack {
                ack_delay_us: 5,
                settled_below: 2,
                ranges: vec![
                    wire::PnRange { start: 8, end: 9 },
                    wire::PnRange { start: 1, end: 4 },
                ],
            }),
        ),
        wire::encode_vec(
            &h(kind::DONE),
            &Body::Done {
                file: 0,
                status: 0,
                blake3: [1; 32],
                message: "saved".into(),
            },
        ),
        wire::encode_vec(
            &h(kind::RETRY),
            &Body::Retry {
                cookie: vec![3; 36],
            },
        ),
        wire::encode_vec(
            &h(kind::REFUSE),
            &Body::Refuse {
                code: wire::reason::AUTH_FAILED,
                reason: "wrong passphrase".into(),
            },
        ),
        wire::encode_vec(
            &h(kind::CLOSE),
            &Body::Close {
                code: wire::reason::UNKNOWN_SESSION,
                reason: String::new(),
            },
        ),
        wire::encode_vec(
            &h(kind::DATA_RETX),
            &Body::Data {
                chunk: 7,
                retransmit: true,
                payload: b"again",
            },
        ),
        wire::encode_vec(
            &h(kind::HELLO_REPLY),
            &Body::HelloReply {
                pake: [5; wire::PAKE_LEN],
                token: vec![6; 92],
            },
        ),
    ];
    // Each recording's first datagrams (its login, offer and a few chunks), then one of
    // every other type.
    let mut all: Vec<Vec<u8>> = record(false).into_iter().take(6).collect();
    all.extend(record(true).into_iter().take(6));
    all.extend(samples);
    for entry in std::fs::read_dir(corpus("decode")).expect("ls") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            std::fs::remove_file(&path).expect("remove an old seed");
        }
    }
    for (i, d) in all.iter().enumerate() {
        std::fs::write(corpus("decode").join(format!("seed-{i:02}")), d).expect("write");
    }
    std::fs::write(
        corpus("handshake").join("seed-transfer"),
        fuzzing::frame(&record(true)),
    )
    .expect("write");
    // A clear offer from each of the handshake target's addresses: a receiver with a
    // passphrase must take none of them.
    let offer = record(false).swap_remove(0);
    std::fs::write(
        corpus("handshake").join("seed-clear-offer"),
        fuzzing::frame(&[offer.clone(), offer.clone(), offer]),
    )
    .expect("write");
    std::fs::write(
        corpus("receiver").join("seed-transfer"),
        fuzzing::frame(&record(false)),
    )
    .expect("write");
}

/// The report of the recorded honest transfer among a corpus's replays.
fn seed_report<R: Copy>(reports: &[(String, R)]) -> R {
    reports
        .iter()
        .find(|(n, _)| n == "seed-transfer")
        .map(|(_, r)| *r)
        .expect("the corpus holds seed-transfer")
}
