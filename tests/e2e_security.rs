//! Passphrase login and encryption with the real binary on loopback.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(60);

fn send_with(
    to: SocketAddr,
    file: &Path,
    env: &[(&str, &str)],
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("send").arg(to.to_string()).arg(file).args(extra);
    cmd.env_remove("UDPIX_PASSPHRASE")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run udpix send")
}

#[test]
fn wrong_passphrase_fails_fast_and_is_logged() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let img = testdata().join("chelsea.png");
    let start = Instant::now();
    // Giving up on silence would take the whole minute: a refusal comes at once.
    let out = send_with(
        recv.addr,
        &img,
        &[("UDPIX_PASSPHRASE", "not-the-one")],
        &["--timeout", "60s"],
    );
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}: waited for a timeout instead of believing the refusal",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication failed: wrong passphrase?"),
        "{err}"
    );
    let line = recv
        .proc
        .wait_stderr("authentication failed from 127.0.0.1:", T);
    assert!(line.contains("wrong passphrase"), "{line}");
    // Everything the sender sent (its offer rides with its CONFIRM) has been read.
    wait_received_all(recv.addr);
    let written: Vec<_> = std::fs::read_dir(recv.out.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(written.is_empty(), "wrote {written:?}");
    let summary = stop_receiver(&recv.proc);
    assert_eq!(summary_count(&summary, " images received"), 0, "{summary}");
    assert_eq!(summary_count(&summary, " failed logins"), 1, "{summary}");
}

#[test]
fn generated_passphrase_is_printed_and_works() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8").to_owned();
    let recv = Proc::spawn_env(
        &["recv", "--listen", "127.0.0.1:0", "--out", &out_s, "--once"],
        &[("UDPIX_PASSPHRASE", "")],
    );
    let line = recv.wait_stderr("udpix: passphrase: ", T);
    let words = line
        .trim_start_matches("udpix: passphrase: ")
        .trim()
        .to_owned();
    let parts: Vec<&str> = words.split('-').collect();
    assert_eq!(parts.len(), 4, "{words}");
    let addr = listening_addr(&recv);
    let img = testdata().join("rocket.jpg");
    // No passphrase and no terminal: a clear message, not a hang.
    let none = send_with(addr, &img, &[], &[]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no passphrase"));
    // The printed words, through a file of this test's own.
    let pwdir = tempfile::tempdir().expect("tempdir");
    let pwfile = pwdir.path().join("passphrase");
    std::fs::write(&pwfile, format!("{words}\n")).expect("write");
    let pw = pwfile.to_str().expect("utf8");
    let ok = send_with(addr, &img, &[], &["--passphrase-file", pw]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let (code, _, _) = recv.wait(T);
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read(out.path().join("rocket.jpg")).expect("received"),
        std::fs::read(&img).expect("original")
    );
}

#[test]
fn insecure_on_both_sides_warns_and_works_and_a_mismatch_is_explained() {
    let recv = start_recv("127.0.0.1:0", &["--insecure"]);
    recv.proc.wait_stderr("warning: --insecure", T);
    let img = testdata().join("camera.png");
    let out = send_with(recv.addr, &img, &[], &["--insecure"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --insecure"));
    let mismatch = send_with(recv.addr, &img, &[("UDPIX_PASSPHRASE", PASSPHRASE)], &[]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("--insecure"));
    let secure = start_recv("127.0.0.1:0", &[]);
    let mismatch = send_with(secure.addr, &img, &[], &["--insecure"]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("requires a passphrase"));
}

/// Forwards datagrams between one client and `to`, keeping a copy of each.
fn recording_relay(
    to: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let addr = sock.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            seen2.lock().expect("lock").push(buf[..n].to_vec());
            if from == to {
                if let Some(c) = client {
                    let _ = sock.send_to(&buf[..n], c);
                }
            } else {
                client = Some(from);
                let _ = sock.send_to(&buf[..n], to);
            }
        }
    });
    (addr, seen)
}

#[test]
fn nothing_of_the_image_or_its_name_in_clear_on_the_wire() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (relay, seen) = recording_relay(recv.addr, stop.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "my-private-photo-7741.png";
    let file = dir.path().join(name);
    std::fs::copy(testdata().join("astronaut.png"), &file).expect("copy");
    let out = send(relay, &[&file], &[]);
    stop.store(true, Ordering::Relaxed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    let image = std::fs::read(&file).expect("read");
    let runs: std::collections::HashSet<&[u8]> = image.windows(16).step_by(1).collect();
    let seen = seen.lock().expect("lock");
    assert!(seen.len() > 600, "relay saw only {} datagrams", seen.len());
    for d in seen.iter() {
        assert!(
            !d.windows(name.len()).any(|w| w == name.as_bytes()),
            "file name in clear"
        );
        assert!(
            !d.windows(16).any(|w| runs.contains(w)),
            "16 bytes of the image in clear"
        );
    }
}

/// Junk and bogus HELLOs a flood sent.
#[derive(Debug, Default, Clone, Copy)]
struct FloodTally {
    junk: u64,
    /// Junk whose header cannot even be read: the receiver can only count it malformed.
    headerless: u64,
    hellos: u64,
    /// Datagrams the kernel refused to send (not counted above).
    send_errors: u64,
}

/// The file the flood test sends.
const FLOOD_FILE: usize = 32 << 20;
/// How much the receiver's peak memory may grow over what it had once listening. Measured:
/// about 1.5 MiB (peak 7.5 MiB from 6 MiB at the start); a receiver holding even a quarter
/// of the file in memory fails.
const FLOOD_GROWTH_KIB: u64 = 8 * 1024;
const _: () = assert!(FLOOD_GROWTH_KIB * 1024 * 4 <= FLOOD_FILE as u64);

#[test]
fn flood_of_junk_and_bogus_handshakes_during_a_32_mib_transfer() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let pid = recv.proc.child.id();
    let (rss_start, _) = rss_kib(pid);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.bin");
    std::fs::write(&file, seeded_bytes(FLOOD_FILE, 77)).expect("write");
    let to = recv.addr;
    let backlog_before = backlog_drops();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (stop2, sent2) = (stop.clone(), sent.clone());
    let flooder = std::thread::spawn(move || {
        let socks: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut t = FloodTally::default();
        let start = Instant::now();
        let mut i = 0u64;
        // Until the transfer ends (or the test gave up on it).
        while !stop2.load(Ordering::Relaxed) && start.elapsed() < T {
            let s = &socks[(i % 8) as usize];
            let d = seeded_bytes(1 + (i * 131 % 1400) as usize, i);
            if s.send_to(&d, to).is_ok() {
                t.junk += 1;
                if udpix::proto::wire::decode_header(&d).is_err() {
                    t.headerless += 1;
                }
            } else {
                t.send_errors += 1;
            }
            if i.is_multiple_of(10) {
                // A genuine HELLO (valid SPAKE2 message) under a passphrase guess that
                // never confirms: it costs the receiver real work unless cookies stop it.
                let config = udpix::proto::sender::SenderConfig {
                    passphrase: Some(udpix::proto::crypto::Passphrase::new(&format!("guess {i}"))),
                    ..Default::default()
                };
                let offer = udpix::proto::sender::Sender::offer_for(&config, "x", b"x", "", None);
                let mut bogus = udpix::proto::sender::Sender::new(
                    Instant::now(),
                    config,
                    i | 1,
                    offer,
                    bytes::Bytes::from_static(b"x"),
                );
                let mut d = Vec::new();
                assert!(bogus.poll_transmit(Instant::now(), &mut d));
                let _ = s.send_to(&d, to);
                t.hellos += 1;
            }
            i += 1;
            sent2.store(i, Ordering::Relaxed);
            if i.is_multiple_of(32) {
                // Pacing the flood (about 64,000 datagrams a second at most), not waiting.
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        t
    });
    // The transfer starts under a flood already going.
    wait_for("the flood to get going", T, || {
        (sent.load(Ordering::Relaxed) >= 1000).then_some(())
    });
    let out = send(to, &[&file], &["--max-rate", "400mbit"]);
    // The transfer is over: so is the flood.
    stop.store(true, Ordering::Relaxed);
    let tally = flooder.join().expect("flooder");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    assert!(
        std::fs::read(recv.out.path().join("big.bin")).expect("read")
            == std::fs::read(&file).expect("read"),
        "the received file differs"
    );
    // Whatever of the flood reached the receiver's socket, it has read.
    let socket = wait_received_all(to);
    let backlog = backlog_drops().saturating_sub(backlog_before);
    let (rss_after, hwm) = rss_kib(pid);
    eprintln!(
        "flood {tally:?}; socket {socket:?}, {backlog} dropped machine-wide before any socket; \
         receiver RSS at start {rss_start} KiB, after {rss_after} KiB, peak {hwm} KiB"
    );
    // The receiver counted the junk it dropped; it says so when stopped.
    let summary = stop_receiver(&recv.proc);
    eprintln!("{summary}");
    let malformed = summary_count(&summary, " malformed");
    // Every headerless datagram the kernel delivered is counted (the kernel's drops may be
    // any of the flood's or the transfer's datagrams: they only loosen the bound), and
    // nothing but the flood's junk is.
    let lost = socket.drops + backlog;
    assert!(
        malformed + lost >= tally.headerless,
        "{malformed} counted malformed of {} headerless datagrams sent, {lost} lost in the \
         kernel: {summary}",
        tally.headerless
    );
    assert!(malformed <= tally.junk, "{tally:?}: {summary}");
    assert!(malformed > 0, "no junk reached the receiver: {summary}");
    assert_eq!(summary_count(&summary, " images received"), 1, "{summary}");
    // The file is on disk, not in memory; the flood must not have grown the receiver much.
    assert!(
        hwm < rss_start + FLOOD_GROWTH_KIB,
        "peak RSS {hwm} KiB from {rss_start} KiB at the start: more than {FLOOD_GROWTH_KIB} \
         KiB for a {} MiB file",
        FLOOD_FILE >> 20
    );
}
