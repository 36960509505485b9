//! Passphrase login and encryption with the real binary on loopback.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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
    let out = send_with(recv.addr, &img, &[("UDPIX_PASSPHRASE", "not-the-one")], &[]);
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
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
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::fs::read_dir(recv.out.path())
            .expect("ls")
            .next()
            .is_none(),
        "wrote something"
    );
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
    // The printed words, through a file.
    let pwfile = out.path().join("../udpix-pw-test");
    std::fs::write(&pwfile, format!("{words}\n")).expect("write");
    let pw = pwfile.to_str().expect("utf8");
    let ok = send_with(addr, &img, &[], &["--passphrase-file", pw]);
    let _ = std::fs::remove_file(&pwfile);
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

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn flood_of_junk_and_bogus_handshakes_during_a_16_mib_transfer() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let pid = recv.proc.child.id();
    let (rss_before, _) = rss_kib(pid);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.bin");
    std::fs::write(&file, seeded_bytes(16 << 20, 77)).expect("write");
    let to = recv.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let flooder = std::thread::spawn(move || {
        let socks: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let (mut junk, mut hellos) = (0u32, 0u32);
        let mut i = 0u64;
        while (junk < 10_000 || hellos < 1_000) && !stop2.load(Ordering::Relaxed) {
            let s = &socks[(i % 8) as usize];
            if junk < 10_000 {
                let d = seeded_bytes(1 + (i * 131 % 1400) as usize, i);
                let _ = s.send_to(&d, to);
                junk += 1;
            }
            if hellos < 1_000 && i.is_multiple_of(10) {
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
                hellos += 1;
            }
            i += 1;
            if i.is_multiple_of(32) {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        (junk, hellos)
    });
    let out = send(to, &[&file], &["--max-rate", "400mbit"]);
    let (junk, hellos) = flooder.join().expect("flooder");
    stop.store(true, Ordering::Relaxed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    assert_eq!(
        std::fs::read(recv.out.path().join("big.bin")).expect("read"),
        std::fs::read(&file).expect("read")
    );
    assert_eq!((junk, hellos), (10_000, 1_000));
    let (rss_after, hwm) = rss_kib(pid);
    eprintln!("receiver RSS before {rss_before} KiB, after {rss_after} KiB, peak {hwm} KiB");
    // The receiver counted the junk it dropped; it says so when stopped.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(kill.is_ok_and(|s| s.success()));
    let summary = recv.proc.wait_stderr("images received", T);
    eprintln!("{summary}");
    let malformed: u64 = summary
        .split("dropped ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("malformed count");
    assert!(malformed >= 9_000, "{summary}");
    assert!(summary.contains("1 images received"), "{summary}");
    // The file is on disk, not in memory; the flood must not have grown the receiver much.
    assert!(
        hwm < rss_before + 64 * 1024,
        "peak RSS {hwm} KiB from {rss_before} KiB"
    );
}
