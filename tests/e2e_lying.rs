//! A lying sender against the real `udpix recv` on loopback: its offer claims a BLAKE3 hash
//! that the data it then sends does not have. The receiver must keep nothing (no file, no
//! part file), say so in its report, and tell the sender why.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use udpix::proto::crypto::Passphrase;
use udpix::proto::sender::{SendError, Sender, SenderConfig};

const T: Duration = Duration::from_secs(60);

/// Runs the library's sender over a real UDP socket until it has an outcome, waking for
/// each datagram or its own next timer.
fn drive(sender: &mut Sender, to: SocketAddr) -> Result<String, SendError> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        while sender.poll_transmit(Instant::now(), &mut out) {
            sock.send_to(&out, to).expect("send");
        }
        while sender.poll_event().is_some() {}
        if sender.is_finished() {
            break;
        }
        assert!(start.elapsed() < T, "the transfer did not end in {T:?}");
        let wait = sender
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        sock.set_read_timeout(Some(wait)).expect("timeout");
        if let Ok((n, from)) = sock.recv_from(&mut buf)
            && from == to
        {
            sender.handle(Instant::now(), &mut buf[..n]);
        }
        if sender.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            sender.handle_timeout(Instant::now());
        }
    }
    sender.outcome().cloned().expect("an outcome once finished")
}

fn sender(data: &[u8], claimed: Option<[u8; 32]>) -> Sender {
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(PASSPHRASE)),
        ..SenderConfig::default()
    };
    let mut offer = Sender::offer_for(&config, "liar.png", data, "png", None);
    if let Some(hash) = claimed {
        offer.blake3 = hash;
    }
    let session = rand::random::<u64>() | 1;
    Sender::new(
        Instant::now(),
        config,
        session,
        offer,
        Bytes::copy_from_slice(data),
    )
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_sender_lying_about_the_hash_gets_nothing_written_and_is_told() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let data = seeded_bytes(300_000, 41);
    let claimed = *blake3::hash(b"not these bytes").as_bytes();
    let mut liar = sender(&data, Some(claimed));
    match drive(&mut liar, recv.addr) {
        Err(SendError::HashMismatch(why)) => {
            assert!(why.contains("does not match the offered hash"), "{why}");
            assert!(why.contains("nothing was kept"), "{why}");
        }
        other => panic!("the liar was not told of the mismatch: {other:?}"),
    }
    // The receiver's report (one JSON line) says what happened.
    let lines = recv.proc.wait_stdout_lines(1, T);
    let reports = json_lines(&lines);
    assert_eq!(reports.len(), 1, "{lines:?}");
    let r = &reports[0];
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["name"], "liar.png", "{r}");
    assert!(r["path"].is_null(), "{r}");
    let error = r["error"].as_str().expect("an error");
    assert!(error.contains("content hash mismatch"), "{error}");
    assert!(
        error.contains(&blake3::Hash::from_bytes(claimed).to_hex().to_string()),
        "the claimed hash is named: {error}"
    );
    assert!(
        error.contains(&blake3::hash(&data).to_hex().to_string()),
        "the actual hash is named: {error}"
    );
    // Nothing in --out: no file under any name, no part file left behind.
    assert_eq!(listing(recv.out.path()), Vec::<String>::new());
    // The same bytes sent honestly are kept, by the same receiver: the folder check above
    // would have seen a file.
    let mut honest = sender(&data, None);
    let saved = drive(&mut honest, recv.addr).expect("the honest transfer");
    assert!(saved.contains("liar.png"), "{saved}");
    let lines = recv.proc.wait_stdout_lines(2, T);
    assert_eq!(json_lines(&lines)[1]["ok"], true, "{lines:?}");
    assert_eq!(listing(recv.out.path()), vec!["liar.png".to_owned()]);
    assert_eq!(
        std::fs::read(recv.out.path().join("liar.png")).expect("read"),
        data
    );
}
