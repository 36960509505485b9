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

fn replay(target: &str, f: fn(&[u8])) {
    let dir = corpus(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read corpus file");
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn replay_decode_corpus() {
    replay("decode", fuzzing::decode);
}

#[test]
fn replay_handshake_corpus() {
    replay("handshake", fuzzing::handshake);
}

#[test]
fn replay_receiver_corpus() {
    replay("receiver", fuzzing::receiver);
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
    for _ in 0..200 {
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
                chunks_held: 2,
                ranges: vec![
                    wire::PnRange { start: 8, end: 9 },
                    wire::PnRange { start: 1, end: 4 },
                ],
            }),
        ),
        wire::encode_vec(
            &h(kind::DONE),
            &Body::Done {
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
    ];
    let mut all = record(false);
    all.extend(record(true));
    all.extend(samples);
    for (i, d) in all.iter().take(40).enumerate() {
        std::fs::write(corpus("decode").join(format!("seed-{i:02}")), d).expect("write");
    }
    std::fs::write(
        corpus("handshake").join("seed-transfer"),
        fuzzing::frame(&record(true)),
    )
    .expect("write");
    std::fs::write(
        corpus("receiver").join("seed-transfer"),
        fuzzing::frame(&record(false)),
    )
    .expect("write");
}
