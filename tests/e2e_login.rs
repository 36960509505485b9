//! The login under attack, with the real binary on loopback: handshake floods from one and
//! from many addresses, blind spoofing in the honest sender's name, a passphrase guesser, and
//! a sender that knows the passphrase hogging sessions. Each attacker speaks the protocol
//! through the library over plain sockets. Loopback accepts any 127.x.y.z source, so the
//! attackers bind 127.0.0.2..=127.0.0.50 to be distinct addresses to the receiver, while the
//! honest `udpix send` comes from 127.0.0.1.
//!
//! Figures (attack rate, honest send times, the receiver's CPU time and peak memory) are
//! printed, never asserted: `cargo test --test e2e_login -- --nocapture --test-threads=1`.

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use udpix::proto::crypto::{Pake, Passphrase};
use udpix::proto::sender::{SendError, Sender, SenderConfig, SenderEvent};
use udpix::proto::wire::{self, Body, Header, kind};

/// Safety bound on any wait for the receiver.
const T: Duration = Duration::from_secs(60);
/// HELLO_REPLYs one address may have outstanding: `--max-handshakes` (4) without a cookie
/// and as many with one.
const OUTSTANDING_PER_ADDR: u64 = 2 * 4;
/// How long an unconfirmed HELLO_REPLY counts against its address.
const HOLD_SECS: f64 = 2.0;

// ---------------------------------------------------------------------------------------
// Helpers

/// A socket on 127.0.0.`last`: an address of its own, as far as the receiver can tell.
fn bind_on(last: u8) -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::new(127, 0, 0, last), 0)).expect("bind a loopback address")
}

fn hello_datagram(session: u64, pake: &[u8; wire::PAKE_LEN], cookie: Vec<u8>) -> Vec<u8> {
    let h = Header {
        kind: kind::HELLO,
        session,
        pn: 0,
    };
    wire::encode_vec(
        &h,
        &Body::Hello {
            pake: *pake,
            cookie,
        },
    )
}

fn confirm_datagram(session: u64, confirm: [u8; wire::CONFIRM_LEN], token: Vec<u8>) -> Vec<u8> {
    let h = Header {
        kind: kind::CONFIRM,
        session,
        pn: 1,
    };
    wire::encode_vec(&h, &Body::Confirm { confirm, token })
}

/// A SPAKE2 message under a passphrase the receiver does not know.
fn stranger_pake(i: u64) -> Pake {
    Pake::start(&Passphrase::new(&format!("not the passphrase {i}")))
}

/// CPU time (user + system) a process has used so far, in seconds (clock ticks of 100 Hz).
/// Panics when it cannot be read, rather than print a figure it never measured.
fn cpu_secs(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path} to measure CPU time: {e}"));
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no field {} in {path}: {stat}", i + 3))
    };
    (field(11) + field(12)) as f64 / 100.0
}

/// Peak resident memory of a process so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    rss_kib(pid).1
}

/// The smallest shared test image.
fn smallest_image() -> PathBuf {
    test_images()
        .into_iter()
        .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))
        .expect("test images")
}

/// The path of the `n`th (from 1) image the receiver reports saved, from its JSON lines.
fn nth_saved(recv: &Recv, n: usize) -> PathBuf {
    let start = Instant::now();
    loop {
        let lines = recv.proc.stdout.lock().expect("lock").clone();
        let saved: Vec<serde_json::Value> = json_lines(&lines)
            .into_iter()
            .filter(|j| j["ok"] == true)
            .collect();
        if let Some(j) = saved.get(n - 1) {
            return PathBuf::from(j["path"].as_str().expect("path in the JSON line"));
        }
        assert!(
            start.elapsed() < T,
            "the receiver reported {} saved images, expected {n}: {lines:?}",
            saved.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `img` with `udpix send` from 127.0.0.1, `n` times in a row, starting one every
/// `gap` at most (so they meet every phase of an attack); each must succeed and land
/// byte-exact. `before` images were saved by this receiver already. Returns the wall time
/// of each send.
fn honest_sends(recv: &Recv, img: &Path, n: usize, before: usize, gap: Duration) -> Vec<Duration> {
    let want = std::fs::read(img).expect("read the image");
    let mut times = Vec::new();
    for i in 0..n {
        let start = Instant::now();
        let out = send(recv.addr, &[img], &[]);
        times.push(start.elapsed());
        assert!(
            out.status.success(),
            "honest send {} of {n} failed: {}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        let path = nth_saved(recv, before + i + 1);
        assert!(
            std::fs::read(&path).expect("read what arrived") == want,
            "{} differs from {}",
            path.display(),
            img.display()
        );
        if i + 1 < n {
            // Pacing the honest sender, not waiting for anything.
            std::thread::sleep(gap.saturating_sub(start.elapsed()));
        }
    }
    times
}

/// `median 0.021 s, max 0.040 s (each: [21, 40, 19] ms)`.
fn median_max(times: &[Duration]) -> String {
    let mut v = times.to_vec();
    v.sort();
    match (v.get(v.len() / 2), v.last()) {
        (Some(m), Some(x)) => format!(
            "median {:.3} s, max {:.3} s (each: {:?} ms)",
            m.as_secs_f64(),
            x.as_secs_f64(),
            times.iter().map(Duration::as_millis).collect::<Vec<_>>()
        ),
        _ => "no sends".to_owned(),
    }
}

/// Stderr lines of the receiver containing `needle`.
fn stderr_count(recv: &Recv, needle: &str) -> usize {
    recv.proc
        .stderr
        .lock()
        .expect("lock")
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits until the receiver's stderr has at least `n` lines containing `needle`.
fn wait_stderr_count(recv: &Recv, needle: &str, n: usize, timeout: Duration) {
    let start = Instant::now();
    while stderr_count(recv, needle) < n {
        assert!(
            start.elapsed() < timeout,
            "expected {n} stderr lines with {needle:?}; got {:?}",
            recv.proc.stderr.lock().expect("lock")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// A handshake flood that returns cookies and never confirms

/// What the flood counted, live.
#[derive(Default)]
struct Live {
    replies: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct FloodTally {
    /// HELLOs without a cookie (fresh sessions).
    hellos: u64,
    /// HELLOs repeated with the cookie of a RETRY.
    cookie_hellos: u64,
    /// HELLO_REPLYs received: key exchanges the receiver computed for us.
    replies: u64,
    retries: u64,
    refused: u64,
    elapsed: Duration,
}

impl FloodTally {
    fn rate(&self) -> f64 {
        (self.hellos + self.cookie_hellos) as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

/// Sends genuine HELLOs (each a fresh session and SPAKE2 message under a wrong passphrase)
/// from `sockets` in turn, `rate` a second in all, until `stop`. It reads its replies and
/// returns every RETRY's cookie in a repeated HELLO, and never confirms.
fn flood(
    to: SocketAddr,
    sockets: Vec<UdpSocket>,
    rate: f64,
    stop: Arc<AtomicBool>,
    live: Arc<Live>,
) -> std::thread::JoinHandle<FloodTally> {
    std::thread::spawn(move || {
        for s in &sockets {
            s.set_nonblocking(true).expect("nonblocking");
        }
        let mut t = FloodTally::default();
        let mut sent: HashMap<u64, [u8; wire::PAKE_LEN]> = HashMap::new();
        let mut buf = vec![0u8; 4096];
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            while t.hellos < due {
                let sock = &sockets[(t.hellos % sockets.len() as u64) as usize];
                let session = rand::random::<u64>() | 1;
                let pake = stranger_pake(t.hellos).message();
                let _ = sock.send_to(&hello_datagram(session, &pake, Vec::new()), to);
                sent.insert(session, pake);
                t.hellos += 1;
            }
            for sock in &sockets {
                while let Ok((n, _)) = sock.recv_from(&mut buf) {
                    let Ok(p) = wire::decode(&buf[..n]) else {
                        continue;
                    };
                    match p.body {
                        Body::Retry { cookie } => {
                            t.retries += 1;
                            live.retries.fetch_add(1, Ordering::Relaxed);
                            if let Some(pake) = sent.get(&p.header.session) {
                                let d = hello_datagram(p.header.session, pake, cookie);
                                let _ = sock.send_to(&d, to);
                                t.cookie_hellos += 1;
                            }
                        }
                        Body::HelloReply { .. } => {
                            t.replies += 1;
                            live.replies.fetch_add(1, Ordering::Relaxed);
                        }
                        Body::Refuse { .. } => t.refused += 1,
                        _ => {}
                    }
                }
            }
            // Pacing the flood's loop (its rate is set above), not waiting for anything.
            std::thread::sleep(Duration::from_millis(1));
        }
        t.elapsed = start.elapsed();
        t
    })
}

/// Waits until `cond` holds of the flood's live counters.
fn wait_for_flood(live: &Live, what: &str, cond: impl Fn(u64, u64) -> bool) {
    let start = Instant::now();
    while !cond(
        live.replies.load(Ordering::Relaxed),
        live.retries.load(Ordering::Relaxed),
    ) {
        assert!(start.elapsed() < T, "the flood never got {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Most HELLO_REPLYs `addresses` that never confirm can get within `elapsed`: each holds
/// at most [`OUTSTANDING_PER_ADDR`] at a time, each for [`HOLD_SECS`] (one second of slack
/// for the receiver's clock).
fn reply_bound(addresses: u64, elapsed: Duration) -> u64 {
    let holds = ((elapsed.as_secs_f64() + 1.0) / HOLD_SECS).ceil() as u64 + 1;
    addresses * OUTSTANDING_PER_ADDR * holds
}

/// Runs five honest sends under a flood from the addresses 127.0.0.`first`..=`last` at
/// `rate` HELLOs a second, and prints what it cost.
fn honest_sends_under_flood(name: &str, first: u8, last: u8, rate: f64) {
    let recv = start_recv("127.0.0.1:0", &[]);
    let pid = recv.proc.child.id();
    let img = smallest_image();
    let sockets: Vec<UdpSocket> = (first..=last).map(bind_on).collect();
    let addresses = sockets.len() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Live::default());
    let cpu_before = cpu_secs(pid);
    let attack = flood(recv.addr, sockets, rate, stop.clone(), live.clone());
    // Under way: every attacking address used its budget without a cookie and was asked for
    // one (with many addresses, past 32 outstanding everyone is).
    wait_for_flood(&live, "its budget filled", |replies, retries| {
        replies >= addresses.min(8) * 4 && retries > 0
    });
    let times = honest_sends(&recv, &img, 5, 0, Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let t = attack.join().expect("flood thread");
    let cpu = cpu_secs(pid) - cpu_before;
    let hwm = peak_rss_kib(pid);
    let summary = stop_receiver(&recv.proc);
    eprintln!(
        "[{name}] attack: {addresses} addresses, {:.0} datagrams/s achieved over {:.1} s \
         ({} HELLOs, {} with a returned cookie; got {} HELLO_REPLYs, {} RETRYs, {} REFUSEs)",
        t.rate(),
        t.elapsed.as_secs_f64(),
        t.hellos,
        t.cookie_hellos,
        t.replies,
        t.retries,
        t.refused
    );
    eprintln!(
        "[{name}] honest: {}/5 sends of {} succeeded, wall time per send {}",
        times.len(),
        img.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        median_max(&times)
    );
    eprintln!(
        "[{name}] receiver: {cpu:.2} s CPU over the attack ({:.0} % of one core), peak RSS {hwm} KiB",
        100.0 * cpu / t.elapsed.as_secs_f64().max(1e-3)
    );
    eprintln!("[{name}] {summary}");
    // The defence itself: the receiver did key exchanges for the flood only within each
    // address's budget, not one per HELLO.
    let bound = reply_bound(addresses, t.elapsed);
    assert!(
        t.replies <= bound,
        "{} key exchanges for {} HELLOs from {addresses} addresses in {:?}; the budget allows {bound}",
        t.replies,
        t.hellos + t.cookie_hellos,
        t.elapsed
    );
    assert!(
        t.retries > 0,
        "the receiver never asked the flood for a cookie"
    );
}

#[test]
fn a_handshake_flood_from_one_address_leaves_honest_senders_alone() {
    honest_sends_under_flood("one-address flood", 2, 2, 200.0);
}

#[test]
fn a_handshake_flood_from_49_addresses_leaves_honest_senders_alone() {
    honest_sends_under_flood("49-address flood", 2, 50, 1000.0);
}

// ---------------------------------------------------------------------------------------
// Blind spoofing

#[test]
fn blind_spoofing_from_the_senders_own_address_cannot_throttle_it() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let pid = recv.proc.child.id();
    let cpu_before = cpu_secs(pid);
    let to = recv.addr;
    // From the honest sender's own address (another port): forged HELLOs, each followed by a
    // CONFIRM with a junk token, sent without reading a single reply. 50 pairs first, then
    // more (100 a second) while the honest sender logs in.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (fifty_tx, fifty) = mpsc::channel();
    let spoofer = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut pairs = 0u64;
        while pairs < 50 || !stop2.load(Ordering::Relaxed) {
            let session = rand::random::<u64>() | 1;
            let pake = stranger_pake(pairs).message();
            sock.send_to(&hello_datagram(session, &pake, Vec::new()), to)
                .expect("send HELLO");
            let token: Vec<u8> = std::iter::repeat_with(rand::random::<u8>)
                .take(92)
                .collect();
            let confirm: [u8; wire::CONFIRM_LEN] = rand::random();
            sock.send_to(&confirm_datagram(session, confirm, token), to)
                .expect("send CONFIRM");
            pairs += 1;
            if pairs == 50 {
                let _ = fifty_tx.send(());
            }
            if pairs >= 50 {
                // Pacing: 100 pairs a second once the first 50 are out.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        (sock, pairs)
    });
    fifty.recv_timeout(T).expect("the first 50 pairs went out");
    // Those went out first, so the receiver takes them before the honest sender's HELLO.
    let img = smallest_image();
    let times = honest_sends(&recv, &img, 1, 0, Duration::ZERO);
    stop.store(true, Ordering::Relaxed);
    let (sock, pairs) = spoofer.join().expect("spoofer thread");
    let cpu = cpu_secs(pid) - cpu_before;
    let hwm = peak_rss_kib(pid);
    let summary = stop_receiver(&recv.proc);
    eprintln!(
        "[blind spoofing] honest send amid {pairs} forged HELLO+CONFIRM pairs from its own \
         address: {}; receiver {cpu:.2} s CPU, peak RSS {hwm} KiB; {summary}",
        median_max(&times)
    );
    assert_eq!(summary_count(&summary, " failed logins"), 0, "{summary}");
    assert_eq!(summary_count(&summary, " throttled"), 0, "{summary}");
    assert_eq!(summary_count(&summary, " images received"), 1, "{summary}");
    // Read only now, after the fact: the receiver did answer the forged HELLOs. It has
    // stopped, so whatever it sent is in the socket's buffer already.
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 2048];
    let mut answers = 0;
    while sock.recv_from(&mut buf).is_ok() {
        answers += 1;
    }
    assert!(answers > 0, "the forged HELLOs were never answered");
}

// ---------------------------------------------------------------------------------------
// A passphrase guesser

#[derive(Debug, Default)]
struct GuessTally {
    datagrams: u64,
    hellos: u64,
    confirms: u64,
    /// CONFIRMs answered REFUSE code 9: guesses the receiver looked at.
    evaluated: u64,
    /// CONFIRMs answered REFUSE code 8: refused unread, the address being throttled.
    throttled_confirms: u64,
    /// HELLOs answered REFUSE code 8.
    throttled_hellos: u64,
    /// CONFIRMs never answered.
    unanswered: u64,
    elapsed: Duration,
}

struct Attempt {
    pake: Option<Pake>,
    msg: [u8; wire::PAKE_LEN],
    confirmed: bool,
}

/// A PING for a session the receiver never heard of: it answers with a clear CLOSE
/// (unknown session), after answering everything this socket sent before.
fn marker_datagram(session: u64) -> Vec<u8> {
    let h = Header {
        kind: kind::PING,
        session,
        pn: 0,
    };
    wire::encode_vec(&h, &Body::Ping)
}

/// Guesses the passphrase from 127.0.0.3 for `span`, as fast as the receiver answers: a
/// batch of HELLOs (returning any cookie), then a CONFIRM under each reply's keys, each
/// step once the last is answered: a marker the receiver answers after whatever it
/// answers of the step (a HELLO over budget gets nothing) tells when. At most 1,000 HELLOs
/// a second. Sets `throttled` once the receiver first refuses it as throttled.
fn guess(to: SocketAddr, span: Duration, throttled: &AtomicBool) -> GuessTally {
    const BATCH: usize = 8;
    let sock = bind_on(3);
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut t = GuessTally::default();
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    while start.elapsed() < span {
        // Pace: no more than 1,000 HELLOs a second.
        let ahead = Duration::from_secs_f64(t.hellos as f64 / 1000.0);
        if let Some(wait) = ahead.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let mut batch: HashMap<u64, Attempt> = HashMap::new();
        for _ in 0..BATCH {
            let session = rand::random::<u64>() | 1;
            let pake = Pake::start(&Passphrase::new(&format!("guess {}", t.hellos)));
            let msg = pake.message();
            let _ = sock.send_to(&hello_datagram(session, &msg, Vec::new()), to);
            t.hellos += 1;
            t.datagrams += 1;
            batch.insert(
                session,
                Attempt {
                    pake: Some(pake),
                    msg,
                    confirmed: false,
                },
            );
        }
        // Collect the replies, then confirm each; then collect the verdicts.
        for round in 0..2 {
            let mut replies: Vec<(u64, [u8; wire::PAKE_LEN], Vec<u8>)> = Vec::new();
            // Until the answer to a marker sent after the last datagram of this step.
            let mut marker = None;
            let deadline = Instant::now() + T;
            loop {
                let m = *marker.get_or_insert_with(|| {
                    let m = rand::random::<u64>() | 1;
                    let _ = sock.send_to(&marker_datagram(m), to);
                    m
                });
                assert!(
                    Instant::now() < deadline,
                    "the receiver never answered a marker"
                );
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(p) = wire::decode(&buf[..n]) else {
                    continue;
                };
                let session = p.header.session;
                if session == m {
                    break;
                }
                let Some(a) = batch.get_mut(&session) else {
                    continue;
                };
                match p.body {
                    Body::HelloReply { pake, token } if a.pake.is_some() => {
                        replies.push((session, pake, token));
                    }
                    Body::Retry { cookie } if a.pake.is_some() => {
                        let _ = sock.send_to(&hello_datagram(session, &a.msg, cookie), to);
                        t.datagrams += 1;
                        // Its answer comes after the marker already sent: another one.
                        marker = None;
                    }
                    Body::Refuse { code, .. } => {
                        match (a.confirmed, code) {
                            (true, wire::reason::AUTH_FAILED) => t.evaluated += 1,
                            (true, wire::reason::THROTTLED) => t.throttled_confirms += 1,
                            (false, wire::reason::THROTTLED) => t.throttled_hellos += 1,
                            other => panic!("unexpected refusal {other:?}"),
                        }
                        if code == wire::reason::THROTTLED {
                            throttled.store(true, Ordering::Relaxed);
                        }
                        batch.remove(&session);
                    }
                    _ => {}
                }
            }
            if round == 0 {
                for (session, server, token) in replies {
                    let Some(a) = batch.get_mut(&session) else {
                        continue;
                    };
                    let Some(pake) = a.pake.take() else { continue };
                    let keys = pake
                        .finish(session, &server, &a.msg, &server)
                        .expect("the receiver's SPAKE2 message is well formed");
                    let d = confirm_datagram(session, keys.client_confirm(), token);
                    let _ = sock.send_to(&d, to);
                    a.confirmed = true;
                    t.confirms += 1;
                    t.datagrams += 1;
                }
                // Unanswered HELLOs (dropped over budget) are given up.
                batch.retain(|_, a| a.confirmed);
            }
        }
        t.unanswered += batch.len() as u64;
    }
    t.elapsed = start.elapsed();
    t
}

/// Guesses evaluated within the first hour by the throttle's schedule: `--max-failures`
/// (5) freely, then one after each wait, doubling from 1 s up to 600 s.
fn guesses_in_first_hour() -> u64 {
    let (mut at, mut wait, mut n) = (0u64, 1u64, 5u64);
    while at + wait <= 3600 {
        at += wait;
        n += 1;
        wait = (wait * 2).min(600);
    }
    n
}

#[test]
fn a_guesser_gets_a_few_guesses_and_each_is_logged() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let pid = recv.proc.child.id();
    let to = recv.addr;
    let throttled = Arc::new(AtomicBool::new(false));
    let flag = throttled.clone();
    let cpu_before = cpu_secs(pid);
    let guesser = std::thread::spawn(move || guess(to, Duration::from_secs(15), &flag));
    // Meanwhile, once the guesser is throttled, honest sends from 127.0.0.1 go through.
    let start = Instant::now();
    // (Or once it is done: never being throttled is for the assertions below to report.)
    while !throttled.load(Ordering::Relaxed) && !guesser.is_finished() {
        assert!(start.elapsed() < T, "the guesser never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    let img = smallest_image();
    let times = honest_sends(&recv, &img, 5, 0, Duration::from_secs(2));
    let t = guesser.join().expect("guesser thread");
    let cpu = cpu_secs(pid) - cpu_before;
    let hwm = peak_rss_kib(pid);
    let secs = t.elapsed.as_secs_f64();
    let per_minute = t.evaluated as f64 * 60.0 / secs;
    eprintln!(
        "[guesser] attack: {:.0} datagrams/s achieved over {secs:.1} s ({} HELLOs, {} CONFIRMs); \
         CONFIRMs answered: {} evaluated (code 9), {} throttled unread (code 8); \
         {} HELLOs refused as throttled; {} CONFIRMs unanswered",
        t.datagrams as f64 / secs,
        t.hellos,
        t.confirms,
        t.evaluated,
        t.throttled_confirms,
        t.throttled_hellos,
        t.unanswered
    );
    eprintln!(
        "[guesser] {per_minute:.1} guesses evaluated per minute over these {secs:.0} s; \
         linear extrapolation {:.0} per hour (an overestimate: the waits keep doubling); \
         the throttle's schedule allows {} in the first hour and 6 an hour after",
        per_minute * 60.0,
        guesses_in_first_hour()
    );
    eprintln!(
        "[guesser] honest: {}/5 sends succeeded, wall time per send {}",
        times.len(),
        median_max(&times)
    );
    eprintln!(
        "[guesser] receiver: {cpu:.2} s CPU over the attack ({:.0} % of one core), peak RSS {hwm} KiB",
        100.0 * cpu / secs
    );
    assert!(
        t.evaluated >= 5,
        "the guesser never got its free guesses: {t:?}"
    );
    // 5 free, then one after each wait of 1, 2, 4, 8 s...: 9 in 15 s; 16 leaves room.
    assert!(
        t.evaluated <= 16,
        "{} guesses evaluated in {secs:.1} s from one address: {t:?}",
        t.evaluated
    );
    assert!(
        t.throttled_confirms > 0,
        "replies collected before the throttle bought guesses: {t:?}"
    );
    assert_eq!(t.unanswered, 0, "every CONFIRM is answered: {t:?}");
    // Every guess evaluated is logged, once.
    let needle = "authentication failed from 127.0.0.3:";
    wait_stderr_count(&recv, needle, t.evaluated as usize, T);
    let summary = stop_receiver(&recv.proc);
    eprintln!("[guesser] {summary}");
    let logged = stderr_count(&recv, needle);
    assert_eq!(
        logged as u64, t.evaluated,
        "one log line per guess evaluated"
    );
}

// ---------------------------------------------------------------------------------------
// A session hog that knows the passphrase

enum HogNews {
    Accepted(usize),
    Ended(usize, Result<String, SendError>),
}

/// Logs in `count` transfers from 127.0.0.4 with the real passphrase and tiny chunks, and
/// lets one DATA of each through every 3 s: each session gets almost nothing. Runs until
/// every transfer ended or `stop`.
fn hog(
    to: SocketAddr,
    count: usize,
    stop: Arc<AtomicBool>,
    news: mpsc::Sender<HogNews>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sock = bind_on(4);
        let data = seeded_bytes(100_000, 44);
        let now = Instant::now();
        let mut hogs: Vec<Sender> = (0..count)
            .map(|k| {
                let config = SenderConfig {
                    max_datagram: 120,
                    idle_timeout: Duration::from_secs(120),
                    passphrase: Some(Passphrase::new(PASSPHRASE)),
                    ..SenderConfig::default()
                };
                let offer = Sender::offer_for(&config, "hog.png", &data, "", None);
                Sender::new(
                    now,
                    config,
                    0x4000 + k as u64,
                    offer,
                    Bytes::copy_from_slice(&data),
                )
            })
            .collect();
        let by_session: HashMap<u64, usize> = hogs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.session(), i))
            .collect();
        let mut let_through: Vec<Option<Instant>> = vec![None; count];
        let mut buf = Vec::new();
        let mut rx = vec![0u8; 65_536];
        let tell = |i: usize, s: &mut Sender| {
            while let Some(ev) = s.poll_event() {
                let n = match ev {
                    SenderEvent::Accepted { .. } => HogNews::Accepted(i),
                    SenderEvent::Failed { error, .. } => HogNews::Ended(i, Err(error)),
                    SenderEvent::Delivered { message, .. } => HogNews::Ended(i, Ok(message)),
                    _ => continue,
                };
                let _ = news.send(n);
            }
        };
        while !stop.load(Ordering::Relaxed) && !hogs.iter().all(Sender::is_finished) {
            let now = Instant::now();
            for (i, s) in hogs.iter_mut().enumerate() {
                while s.poll_transmit(now, &mut buf) {
                    let is_data = wire::decode_header(&buf)
                        .is_ok_and(|h| matches!(h.kind, kind::DATA | kind::DATA_RETX));
                    if is_data {
                        if let_through[i].is_some_and(|t| now < t + Duration::from_secs(3)) {
                            continue;
                        }
                        let_through[i] = Some(now);
                    }
                    let _ = sock.send_to(&buf, to);
                }
                tell(i, s);
            }
            let wait = hogs
                .iter()
                .filter_map(Sender::poll_timeout)
                .min()
                .map_or(Duration::from_millis(20), |t| {
                    t.saturating_duration_since(Instant::now())
                })
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            sock.set_read_timeout(Some(wait)).expect("timeout");
            if let Ok((n, _)) = sock.recv_from(&mut rx) {
                let session = wire::decode_header(&rx[..n]).map(|h| h.session);
                if let Some(&i) = session.ok().and_then(|s| by_session.get(&s)) {
                    hogs[i].handle(Instant::now(), &mut rx[..n]);
                }
            }
            let now = Instant::now();
            for (i, s) in hogs.iter_mut().enumerate() {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
                tell(i, s);
            }
        }
    })
}

#[test]
fn a_logged_in_hog_gets_eight_sessions_and_loses_the_stalled_ones() {
    // Nine sessions in all: if one address could take them all, nobody else would get in.
    let recv = start_recv("127.0.0.1:0", &["--max-sessions", "9"]);
    let pid = recv.proc.child.id();
    let cpu_before = cpu_secs(pid);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, news) = mpsc::channel();
    let hogger = hog(recv.addr, 12, stop.clone(), tx);
    let mut accepted = Vec::new();
    let mut ended: HashMap<usize, Result<String, SendError>> = HashMap::new();
    let next = |timeout: Duration| {
        news.recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("a hog's session neither ended nor was accepted: {e}"))
    };
    // Every login is answered: ACCEPT, or a refusal.
    while accepted.len() + ended.len() < 12 {
        match next(T) {
            HogNews::Accepted(i) => accepted.push(i),
            HogNews::Ended(i, r) => {
                ended.insert(i, r);
            }
        }
    }
    assert!(
        accepted.len() <= 8,
        "{} sessions accepted from one address",
        accepted.len()
    );
    for (i, r) in &ended {
        assert!(
            matches!(r, Err(SendError::Refused(wire::reason::BUSY, reason)) if reason.contains("from this address")),
            "hog {i}: {r:?}"
        );
    }
    // Meanwhile a sender from another address gets in.
    let img = smallest_image();
    let times = honest_sends(&recv, &img, 1, 0, Duration::ZERO);
    // The stalled sessions are dropped with a sealed CLOSE saying why.
    while ended.len() < 12 {
        match next(T) {
            HogNews::Ended(i, r) => {
                ended.insert(i, r);
            }
            HogNews::Accepted(i) => panic!("hog {i} accepted late"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    hogger.join().expect("hog thread");
    for i in &accepted {
        let r = &ended[i];
        assert!(
            matches!(r, Err(SendError::Closed(why)) if why.contains("too little progress")),
            "hog {i}: {r:?}"
        );
    }
    let needle = "too little progress";
    wait_stderr_count(&recv, needle, accepted.len(), T);
    // stdout and stderr are read by different threads: the JSON lines may come later.
    let failed_json = || -> Vec<serde_json::Value> {
        json_lines(&recv.proc.stdout.lock().expect("lock").clone())
            .into_iter()
            .filter(|j| j["ok"] == false)
            .collect()
    };
    let failures = wait_for("a JSON line per dropped session", T, || {
        let f = failed_json();
        (f.len() >= accepted.len()).then_some(f)
    });
    assert_eq!(failures.len(), accepted.len(), "{failures:?}");
    for j in &failures {
        assert!(
            j["error"].as_str().is_some_and(|e| e.contains(needle)),
            "{j}"
        );
        assert!(
            j["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.4:")),
            "{j}"
        );
    }
    let cpu = cpu_secs(pid) - cpu_before;
    let hwm = peak_rss_kib(pid);
    let summary = stop_receiver(&recv.proc);
    eprintln!(
        "[session hog] {} of 12 accepted, {} refused; stalled ones dropped {:.1} s after the start; \
         honest send {}; receiver {cpu:.2} s CPU, peak RSS {hwm} KiB; {summary}",
        accepted.len(),
        12 - accepted.len(),
        start.elapsed().as_secs_f64(),
        median_max(&times)
    );
    assert!(start.elapsed() < T, "took {:?}", start.elapsed());
}
