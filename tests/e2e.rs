//! End-to-end: the real binary on loopback, real files, real sockets.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use udpix::proto::sender::{Sender, SenderConfig, SenderEvent};
use udpix::proto::wire;

const T: Duration = Duration::from_secs(60);

fn assert_same(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap_or_else(|e| panic!("read {}: {e}", a.display()));
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("read {}: {e}", b.display()));
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn every_test_image_arrives_byte_exact() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let images = test_images();
    let refs: Vec<&Path> = images.iter().map(|p| p.as_path()).collect();
    let out = send(recv.addr, &refs, &["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = json_lines(&stdout.lines().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(sent.len(), images.len());
    let received = json_lines(&recv.proc.wait_stdout_lines(images.len(), T));
    assert_eq!(received.len(), images.len(), "{received:?}");
    for img in &images {
        let name = img.file_name().expect("name");
        assert_same(img, &recv.out.path().join(name));
    }
    for j in sent.iter().chain(received.iter()) {
        assert_eq!(j["ok"], true, "{j}");
        for key in [
            "name",
            "path",
            "bytes",
            "chunks",
            "datagrams_sent",
            "datagrams_received",
            "duplicates",
            "lost",
            "retransmitted",
            "recovered",
            "duration_ms",
            "goodput_bps",
            "rtt_ms",
            "blake3",
        ] {
            assert!(j.get(key).is_some(), "{key} missing in {j}");
        }
    }
    let astro = received
        .iter()
        .find(|j| j["name"] == "astronaut.png")
        .expect("astronaut reported");
    assert_eq!(astro["format"], "png");
    assert_eq!(astro["width"], 512);
    // Only the images: no temp files left behind.
    assert_eq!(files_in(recv.out.path()).len(), images.len());
}

#[test]
fn human_output_and_once() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out_s = out_dir.path().to_str().expect("utf8").to_owned();
    let recv = Proc::spawn(&["recv", "--listen", "127.0.0.1:0", "--out", &out_s, "--once"]);
    let addr = listening_addr(&recv);
    let img = testdata().join("chelsea.png");
    let out = send(addr, &[&img], &[]);
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("sent chelsea.png"), "{line}");
    assert!(
        line.contains("Mbit/s") && line.contains("loss") && line.contains("recovered"),
        "{line}"
    );
    let (code, stdout, _) = recv.wait(T);
    assert_eq!(code, 0, "--once exits 0 after one good image");
    assert!(
        stdout.iter().any(|l| l.starts_with("received chelsea.png")),
        "{stdout:?}"
    );
    assert_same(&img, &out_dir.path().join("chelsea.png"));
}

#[test]
fn through_netsim_at_10_percent_bursty_loss() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let (netsim, proxy) = start_netsim(
        recv.addr,
        &[
            "--loss", "10%", "--burst", "4", "--delay", "5ms", "--rate", "50mbit", "--seed", "7",
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.bin");
    std::fs::write(&big, seeded_bytes(1_500_000, 11)).expect("write");
    let astro = testdata().join("astronaut.png");
    let out = send(proxy, &[&big, &astro], &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = json_lines(
        &String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    assert!(
        sent[0]["lost"].as_u64().unwrap_or(0) > 0,
        "netsim lost nothing? {}",
        sent[0]
    );
    assert!(sent[0]["recovered"].as_u64().unwrap_or(0) > 0);
    recv.proc.wait_stdout_lines(2, T);
    assert_same(&big, &recv.out.path().join("big.bin"));
    assert_same(&astro, &recv.out.path().join("astronaut.png"));
    drop(netsim);
}

#[test]
fn two_senders_at_once() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    std::fs::write(&a, seeded_bytes(3_000_000, 1)).expect("write");
    std::fs::write(&b, seeded_bytes(3_000_000, 2)).expect("write");
    let addr = recv.addr;
    let (a2, b2) = (a.clone(), b.clone());
    let ta = std::thread::spawn(move || send(addr, &[&a2], &["--max-rate", "100mbit"]));
    let tb = std::thread::spawn(move || send(addr, &[&b2], &["--max-rate", "100mbit"]));
    let (oa, ob) = (ta.join().expect("a"), tb.join().expect("b"));
    assert!(oa.status.success() && ob.status.success());
    recv.proc.wait_stdout_lines(2, T);
    assert_same(&a, &recv.out.path().join("a.bin"));
    assert_same(&b, &recv.out.path().join("b.bin"));
}

#[test]
fn random_datagrams_do_not_disturb_a_transfer() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("target.bin");
    std::fs::write(&file, seeded_bytes(4_000_000, 3)).expect("write");
    let addr = recv.addr;
    let backlog_before = backlog_drops();
    let stop = Arc::new(AtomicBool::new(false));
    let sprayed = Arc::new(AtomicU64::new(0));
    let (stop2, sprayed2) = (stop.clone(), sprayed.clone());
    let sprayer = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // Datagrams sent, and those of them whose header cannot even be read.
        let (mut n, mut headerless) = (0u64, 0u64);
        let mut i = 0u64;
        let start = Instant::now();
        // Until the transfer ends (or the test gave up on it).
        while !stop2.load(Ordering::Relaxed) && start.elapsed() < T {
            let len = 1 + (i * 7919 % 1400) as usize;
            let mut d = seeded_bytes(len, i);
            // Half look like udpix v1 packets of every type, to reach the deeper decoders.
            if i.is_multiple_of(2) && d.len() > 2 {
                d[0] = 1;
                d[1] = (i % 12) as u8;
            }
            if sock.send_to(&d, addr).is_ok() {
                n += 1;
                if wire::decode_header(&d).is_err() {
                    headerless += 1;
                }
                sprayed2.store(n, Ordering::Relaxed);
            }
            i += 1;
            if i.is_multiple_of(64) {
                // Pacing the spray, not waiting for anything.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        (n, headerless)
    });
    // The transfer starts under a spray already going, which lasts until it ends.
    wait_for("the spray to get going", T, || {
        (sprayed.load(Ordering::Relaxed) >= 1000).then_some(())
    });
    let out = send(addr, &[&file], &["--max-rate", "200mbit"]);
    stop.store(true, Ordering::Relaxed);
    let (n, headerless) = sprayer.join().expect("sprayer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    assert_same(&file, &recv.out.path().join("target.bin"));
    assert_eq!(files_in(recv.out.path()), vec!["target.bin".to_owned()]);
    // The spray reached the receiver, which counted every unreadable datagram the kernel
    // delivered (the kernel's drops may be any datagrams: they only loosen the bound).
    let socket = wait_received_all(addr);
    let lost = socket.drops + backlog_drops().saturating_sub(backlog_before);
    let summary = stop_receiver(&recv.proc);
    let malformed = summary_count(&summary, " malformed");
    assert!(
        malformed + lost >= headerless,
        "{malformed} counted malformed of {headerless} unreadable datagrams ({n} sprayed), \
         {lost} lost in the kernel: {summary}"
    );
    assert!(malformed > 0 && malformed <= n, "{n} sprayed: {summary}");
    assert_eq!(summary_count(&summary, " images received"), 1, "{summary}");
}

/// Drives a protocol-level sender over a plain socket: lets a test offer any name.
fn raw_send(to: SocketAddr, name: &str, data: &[u8]) -> Result<String, String> {
    raw_send_with(to, name, data, Some(PASSPHRASE), None)
}

/// [`raw_send`] with a choice of passphrase (`None` for an `--insecure` receiver) and, with
/// `cancel`, a sender that gives up with that reason as soon as the receiver accepts.
fn raw_send_with(
    to: SocketAddr,
    name: &str,
    data: &[u8],
    passphrase: Option<&str>,
    cancel: Option<&str>,
) -> Result<String, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let config = SenderConfig {
        passphrase: passphrase.map(udpix::proto::crypto::Passphrase::new),
        ..SenderConfig::default()
    };
    let offer = Sender::offer_for(&config, name, data, "", None);
    let mut s = Sender::new(
        Instant::now(),
        config,
        0x5eed,
        offer,
        Bytes::copy_from_slice(data),
    );
    let mut buf = Vec::new();
    let mut rx = vec![0u8; 65536];
    let deadline = Instant::now() + T;
    while !s.is_finished() && Instant::now() < deadline {
        while s.poll_transmit(Instant::now(), &mut buf) {
            sock.send_to(&buf, to).expect("send");
        }
        let wait = s
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(10))
            .max(Duration::from_micros(100));
        sock.set_read_timeout(Some(wait)).expect("timeout");
        match sock.recv_from(&mut rx) {
            Ok((n, _)) => s.handle(Instant::now(), &mut rx[..n]),
            Err(_) => s.handle_timeout(Instant::now()),
        }
        while let Some(ev) = s.poll_event() {
            if let (SenderEvent::Accepted { .. }, Some(reason)) = (ev, cancel) {
                s.cancel(reason);
            }
        }
    }
    match s.outcome() {
        Some(Ok(m)) => Ok(m.clone()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("timed out".into()),
    }
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("ls").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn hostile_names_land_inside_the_folder() {
    // The output folder three levels down a temp dir of this test: a name climbing up to
    // three levels, or an absolute path into that temp dir, lands where this test looks.
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("a/b/out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let (recv, addr) = start_recv_at(&out, "127.0.0.1:0", &["--json"]);
    let absolute = root.path().join("abs.png");
    let absolute_parent = root.path().join("a/b/beside.png");
    let cases: Vec<(String, &str)> = vec![
        ("../up1.png".into(), "up1.png"),
        ("../../up2.png".into(), "up2.png"),
        ("../../../up3.png".into(), "up3.png"),
        ("sub/../../../../dot.png".into(), "dot.png"),
        ("..\\..\\win.png".into(), "win.png"),
        (absolute.to_str().expect("utf8").into(), "abs.png"),
        (absolute_parent.to_str().expect("utf8").into(), "beside.png"),
        ("..".into(), "image"),
        ("evil\u{1b}[2J\nname.png".into(), "evil[2Jname.png"),
    ];
    for (i, (name, expect)) in cases.iter().enumerate() {
        let data = seeded_bytes(5000 + i, i as u64);
        raw_send(addr, name, &data).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        recv.wait_stdout_lines(i + 1, T);
        let outside: Vec<_> = files_under(root.path())
            .into_iter()
            .filter(|p| !p.starts_with(&out))
            .collect();
        assert!(
            outside.is_empty(),
            "{name:?} wrote outside the output folder: {outside:?}"
        );
        let landed = out.join(expect);
        assert_eq!(
            std::fs::read(&landed).unwrap_or_else(|e| panic!("{name:?} not in {landed:?}: {e}")),
            data,
            "{name:?}"
        );
    }
    assert_eq!(files_under(&out).len(), cases.len(), "{:?}", files_in(&out));
}

#[test]
fn existing_file_is_not_overwritten() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let existing = recv.out.path().join("chelsea.png");
    std::fs::write(&existing, b"precious").expect("write");
    let img = testdata().join("chelsea.png");
    assert!(send(recv.addr, &[&img, &img], &[]).status.success());
    recv.proc.wait_stdout_lines(2, T);
    assert_eq!(std::fs::read(&existing).expect("read"), b"precious");
    assert_same(&img, &recv.out.path().join("chelsea (1).png"));
    assert_same(&img, &recv.out.path().join("chelsea (2).png"));
}

#[test]
fn unreachable_receiver_fails_clearly() {
    // A bound socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let img = testdata().join("chessboard_GRAY.png");
    let (to, f) = (addr.to_string(), img.to_str().expect("utf8").to_owned());
    // Failing, not hanging: it gives up after its 1 s timeout.
    let (code, _, err) = Proc::spawn(&["send", &to, &f, "--timeout", "1s"]).wait(T);
    assert_ne!(code, 0, "{err:?}");
    assert_eq!(err.len(), 1, "one clear line: {err:?}");
    assert!(err[0].contains("no answer from"), "{err:?}");
    drop(silent);
}

/// Nothing listening at all: the host says the port is closed, and udpix says so at once
/// (not after the offer's timeout, which is set far beyond the test's wait here), and does
/// not try the other files.
#[test]
fn a_closed_port_fails_at_once_and_says_so() {
    let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let img = testdata().join("chessboard_GRAY.png");
    let f = img.to_str().expect("utf8");
    let to = addr.to_string();
    let (code, _, err) = Proc::spawn(&["send", &to, f, f, f, "--timeout", "10m"]).wait(T);
    assert_eq!(code, 1, "{err:?}");
    assert!(
        err[0].contains(&format!("UDP port {} is closed", addr.port())),
        "{err:?}"
    );
    assert!(
        err.iter()
            .any(|l| l.contains("not sending the 2 remaining files")),
        "{err:?}"
    );
}

#[test]
fn too_large_is_refused_and_unreadable_file_reported() {
    let recv = start_recv("127.0.0.1:0", &["--max-size", "1000"]);
    let img = testdata().join("astronaut.png");
    let out = send(recv.addr, &[&img], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused") && err.contains("limit"), "{err}");
    let out = send(recv.addr, &[Path::new("/nonexistent/nope.png")], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    assert!(files_in(recv.out.path()).is_empty());
}

#[test]
fn ipv6_loopback() {
    if let Err(e) = UdpSocket::bind("[::1]:0") {
        eprintln!("skipped: no IPv6 loopback (binding [::1]:0 failed: {e})");
        return;
    }
    let recv = start_recv("[::1]:0", &[]);
    let img = testdata().join("rocket.jpg");
    let out = send(recv.addr, &[&img], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    assert_same(&img, &recv.out.path().join("rocket.jpg"));
}

#[test]
fn receiver_that_vanishes_fails_the_sender_cleanly() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("slow.bin");
    std::fs::write(&file, seeded_bytes(1_000_000, 5)).expect("write");
    let to = recv.addr.to_string();
    let f = file.to_str().expect("utf8");
    // At 2 Mbit/s the megabyte takes 4 s: the receiver is killed well before the end.
    let sender = Proc::spawn(&["send", &to, f, "--max-rate", "2mbit", "--timeout", "1s"]);
    // More than the first flight (32 datagrams) written: the sender has believed ACKs, so
    // the receiver's ACCEPT reached it. The part file alone exists before ACCEPT leaves.
    wait_for("128 KiB of the transfer written", T, || {
        (most_written(recv.out.path()) >= 128 << 10).then_some(())
    });
    drop(recv); // kills the receiver mid-transfer
    // Failing, not hanging: it gives up after its 1 s timeout.
    let (code, _, err) = sender.wait(T);
    assert_ne!(code, 0, "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("stopped answering") || l.contains("closed")),
        "{err:?}"
    );
}

#[test]
fn sender_that_vanishes_leaves_no_partial_file() {
    let recv = start_recv("127.0.0.1:0", &["--idle-timeout", "500ms"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("partial.bin");
    std::fs::write(&file, seeded_bytes(1_000_000, 6)).expect("write");
    let to = recv.addr.to_string();
    let f = file.to_str().expect("utf8").to_owned();
    let mut sender = Proc::spawn(&["send", &to, &f, "--max-rate", "2mbit"]);
    // Once the receiver has started writing (its partial file exists), kill the sender.
    wait_for("the transfer to start (a partial file)", T, || {
        (!parts_in(recv.out.path()).is_empty()).then_some(())
    });
    let _ = sender.child.kill();
    recv.proc.wait_stderr("sender went silent", T);
    assert!(
        files_in(recv.out.path()).is_empty(),
        "left {:?}",
        files_in(recv.out.path())
    );
    // The receiver still serves the next sender.
    let img = testdata().join("camera.png");
    assert!(send(recv.addr, &[&img], &[]).status.success());
    recv.proc.wait_stdout_lines(2, T);
    assert_same(&img, &recv.out.path().join("camera.png"));
}

#[test]
fn netsim_prints_counters_periodically_and_on_sigterm() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let (netsim, proxy) = start_netsim(
        recv.addr,
        &[
            "--loss",
            "5%:0",
            "--duplicate",
            "2%",
            "--corrupt",
            "1%",
            "--reorder",
            "2%",
            "--jitter",
            "1ms",
            "--stats-interval",
            "200ms",
        ],
    );
    let img = testdata().join("coffee.png");
    let out = send(proxy, &[&img], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
    assert_same(&img, &recv.out.path().join("coffee.png"));
    netsim.wait_stderr("netsim   up:", T);
    let pid = netsim.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let (code, _, err) = netsim.wait(T);
    assert_eq!(code, 0, "{err:?}");
    let up = err
        .iter()
        .rev()
        .find(|l| l.contains("netsim   up:"))
        .expect("final counters");
    assert!(
        up.contains(" lost") && up.contains("duplicated") && up.contains("corrupted"),
        "{up}"
    );
    let lost: u64 = up
        .split(", ")
        .find(|p| p.ends_with(" lost"))
        .and_then(|p| p.trim_end_matches(" lost").parse().ok())
        .expect("lost count");
    assert!(lost > 0, "{up}");
}

/// A name a hostile sender might offer: colours, a forged line, a C1 CSI, a bidi override.
const HOSTILE_NAME: &str = "evil\u{1b}[31m\nFAKE-LINE \u{9b}2J cat\u{202e}gnp.png";
/// How `udpix recv` must show it.
const HOSTILE_SHOWN: &str = "evil\\e[31m\\nFAKE-LINE \\u{9b}2J cat\\u{202e}gnp.png";
/// A reason a hostile sender might close with: a window-title escape and a forged line.
const HOSTILE_REASON: &str = "bye\u{1b}]0;owned\u{7}\nFAKE-REASON\u{2066}";

/// No line of `lines` carries a raw control or bidi character, or is a line the peer forged.
fn assert_terminal_safe(lines: &[String], what: &str) {
    for l in lines {
        assert!(
            !l.chars().any(udpix::display::needs_escape),
            "{what}: raw control or bidi character in {l:?}"
        );
        assert!(
            !l.starts_with("FAKE-"),
            "{what}: a line forged by the peer: {l:?}"
        );
    }
}

fn insecure_recv(extra: &[&str]) -> (Proc, SocketAddr, tempfile::TempDir) {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8").to_owned();
    let mut args = vec![
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--out",
        &out_s,
        "--insecure",
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(&args);
    let addr = listening_addr(&proc);
    (proc, addr, out)
}

#[test]
fn peer_text_reaches_the_receivers_terminal_escaped() {
    let (recv, addr, out) = insecure_recv(&[]);
    raw_send_with(addr, HOSTILE_NAME, &seeded_bytes(3000, 1), None, None).expect("delivered");
    let stdout = recv.wait_stdout_lines(1, T);
    assert!(
        stdout[0].starts_with(&format!("received {HOSTILE_SHOWN} (")),
        "{stdout:?}"
    );
    // A sender that gives up with a reason of its own words: the failure line quotes it.
    let gave_up = raw_send_with(
        addr,
        HOSTILE_NAME,
        &seeded_bytes(90_000, 2),
        None,
        Some(HOSTILE_REASON),
    );
    assert!(gave_up.is_err(), "{gave_up:?}");
    let failed = recv.wait_stderr(" failed: ", T);
    assert!(
        failed.contains(&format!("transfer of {HOSTILE_SHOWN} from 127.0.0.1:")),
        "{failed}"
    );
    assert!(
        failed.ends_with("bye\\e]0;owned\\x07\\nFAKE-REASON\\u{2066}"),
        "{failed}"
    );
    // A failure of our own quoting the name: the folder is gone, so the image cannot be
    // stored.
    std::fs::remove_dir_all(out.path()).expect("rm");
    let refused = raw_send_with(addr, HOSTILE_NAME, &seeded_bytes(3000, 5), None, None);
    assert!(refused.is_err(), "{refused:?}");
    let line = recv.wait_stderr("failed: cannot write in", T);
    assert!(
        line.starts_with(&format!(
            "udpix: transfer of {HOSTILE_SHOWN} from 127.0.0.1:"
        )),
        "{line}"
    );
    assert_terminal_safe(&recv.stdout.lock().expect("lock"), "stdout");
    assert_terminal_safe(&recv.stderr.lock().expect("lock"), "stderr");
}

#[test]
fn json_output_keeps_the_peers_exact_text_yet_is_terminal_safe() {
    let (recv, addr, _out) = insecure_recv(&["--json"]);
    raw_send_with(addr, HOSTILE_NAME, &seeded_bytes(3000, 3), None, None).expect("delivered");
    let gave_up = raw_send_with(
        addr,
        HOSTILE_NAME,
        &seeded_bytes(90_000, 4),
        None,
        Some(HOSTILE_REASON),
    );
    assert!(gave_up.is_err(), "{gave_up:?}");
    let lines = recv.wait_stdout_lines(2, T);
    let j = json_lines(&lines);
    assert_eq!(j[0]["ok"], true, "{}", j[0]);
    assert_eq!(j[0]["name"], HOSTILE_NAME);
    assert_eq!(j[1]["ok"], false, "{}", j[1]);
    assert_eq!(j[1]["name"], HOSTILE_NAME);
    let error = j[1]["error"].as_str().expect("error text");
    assert!(error.ends_with(HOSTILE_REASON), "{error:?}");
    recv.wait_stderr(" failed: ", T);
    assert_terminal_safe(&lines, "stdout");
    assert_terminal_safe(&recv.stderr.lock().expect("lock"), "stderr");
}

/// Part files (`.udpix-*.part`) in `dir`.
fn parts_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(".udpix-") && n.ends_with(".part"))
        .collect()
}

#[test]
fn a_killed_receivers_partial_file_is_removed_at_the_next_start_and_only_then() {
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8").to_owned();
    let recv_args = ["recv", "--listen", "127.0.0.1:0", "--out", &out_s, "--json"];
    let mut first = Proc::spawn(&recv_args);
    let addr = listening_addr(&first).to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("large.bin");
    std::fs::write(&file, seeded_bytes(2_000_000, 7)).expect("write");
    let f = file.to_str().expect("utf8").to_owned();
    let _sender = Proc::spawn(&["send", &addr, &f, "--max-rate", "2mbit"]);
    wait_for("the transfer to start (a partial file)", T, || {
        (!parts_in(out.path()).is_empty()).then_some(())
    });
    let part = parts_in(out.path());
    // A second receiver sharing the folder leaves the live part alone.
    let second = Proc::spawn(&recv_args);
    listening_addr(&second);
    assert_eq!(parts_in(out.path()), part, "a live part file was removed");
    assert!(
        !second
            .stderr
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains("removed")),
        "{:?}",
        second.stderr.lock().expect("lock")
    );
    drop(second);
    // SIGKILL: no chance to clean up.
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reap");
    assert_eq!(parts_in(out.path()), part, "the dead run's part file stays");
    // The next receiver removes it, and says so, before it listens.
    let third = Proc::spawn(&recv_args);
    listening_addr(&third);
    let said = third
        .stderr
        .lock()
        .expect("lock")
        .iter()
        .find(|l| l.contains("partial file"))
        .cloned();
    assert_eq!(
        said,
        Some(format!(
            "udpix: removed 1 partial file left by an earlier run ({})",
            part[0]
        ))
    );
    assert!(
        parts_in(out.path()).is_empty(),
        "left {:?}",
        files_in(out.path())
    );
}

/// Runs `udpix recv --once` on `out`, which cannot hold files: it must fail before it binds.
fn refused_at_start(out: &str) {
    let mut recv = Proc::spawn(&["recv", "--listen", "127.0.0.1:0", "--out", out, "--once"]);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = recv.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            !recv
                .stderr
                .lock()
                .expect("lock")
                .iter()
                .any(|l| l.contains("listening on")),
            "started listening on an unwritable folder: {:?}",
            recv.stderr.lock().expect("lock")
        );
        assert!(start.elapsed() < T, "did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success(), "{status}");
    let line = recv.wait_stderr("udpix: error:", T);
    assert!(
        line.starts_with(&format!("udpix: error: cannot write in {out} (")),
        "{line}"
    );
    assert!(
        line.ends_with("): pick a folder you can write to with --out"),
        "{line}"
    );
}

#[test]
fn a_read_only_out_folder_is_refused_at_start() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("running as root, which ignores file modes: skipping (see the /proc variant)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().expect("tempdir");
    let ro = std::fs::Permissions::from_mode(0o555);
    std::fs::set_permissions(out.path(), ro).expect("chmod");
    refused_at_start(out.path().to_str().expect("utf8"));
    let rw = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(out.path(), rw).expect("chmod");
}

#[test]
fn a_folder_no_one_can_write_in_is_refused_at_start_even_for_root() {
    if !Path::new("/proc/self").is_dir() {
        eprintln!("no /proc here: skipping");
        return;
    }
    refused_at_start("/proc");
}
