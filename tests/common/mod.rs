//! Helpers for end-to-end tests: the real `udpix` binary on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_udpix");
/// The passphrase every test process gets through the environment.
pub const PASSPHRASE: &str = "e2e-test-passphrase";
/// How long any helper here waits for an event before it fails the test: generous, for a
/// slow and loaded machine; waits end as soon as the event happens.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `cond` until it returns `Some`, failing the test with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        // Polling inside a wait with a timeout, not a guess that something happened.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The shared CC0 test images.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata")
}

/// Every test image (not the README).
pub fn test_images() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("../shared/testdata must exist beside the checkout")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "expected the shared test images, found {v:?}");
    v
}

/// Seeded pseudo-random bytes.
pub fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A background process whose stdout and stderr are collected line by line.
pub struct Proc {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// The threads collecting stdout and stderr: they end at end of file.
    readers: Vec<JoinHandle<()>>,
}

fn collect(r: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    })
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Self::spawn_env(args, &[("UDPIX_PASSPHRASE", PASSPHRASE)])
    }

    /// Spawns with extra environment variables (an empty value removes the variable).
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn udpix");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
        ];
        Proc {
            child,
            stderr,
            stdout,
            readers,
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .stderr
                .lock()
                .expect("lock")
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no stderr line with {needle:?}; got {:?}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stdout has `n` lines.
    pub fn wait_stdout_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.stdout.lock().expect("lock").clone();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                start.elapsed() < timeout,
                "expected {n} stdout lines, got {lines:?}; stderr {:?}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for exit and for the end of its output; returns the exit code, stdout and
    /// stderr.
    pub fn wait(mut self, timeout: Duration) -> (i32, Vec<String>, Vec<String>) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "process did not exit in {timeout:?}; stderr {:?}",
                    self.stderr.lock().expect("lock")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Every line it wrote is collected once both pipes reach end of file.
        for reader in std::mem::take(&mut self.readers) {
            wait_for("the end of the process's output", timeout, || {
                reader.is_finished().then_some(())
            });
            reader.join().expect("output reader");
        }
        let out = self.stdout.lock().expect("lock").clone();
        let err = self.stderr.lock().expect("lock").clone();
        (status.code().unwrap_or(-1), out, err)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT, as Ctrl-C in its terminal would.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            rc,
            0,
            "kill -{sig} {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A receiver on an ephemeral loopback port writing into a fresh temp folder.
pub struct Recv {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub out: tempfile::TempDir,
}

pub fn start_recv(listen: &str, extra: &[&str]) -> Recv {
    let out = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (proc, addr) = start_recv_at(out.path(), listen, &args);
    Recv { proc, addr, out }
}

/// `udpix recv --listen listen --out out` plus `extra`, once it listens.
pub fn start_recv_at(out: &Path, listen: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    let out_s = out.to_str().expect("utf8 path");
    let mut args = vec!["recv", "--listen", listen, "--out", out_s];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(&args);
    let addr = listening_addr(&proc);
    (proc, addr)
}

/// The address a `udpix recv` process says it listens on.
pub fn listening_addr(p: &Proc) -> SocketAddr {
    let line = p.wait_stderr("listening on", WAIT);
    line.split("listening on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse address from {line:?}"))
}

/// Stops a receiver with SIGTERM, waits for it to exit and returns its summary line
/// (`udpix: N images received, ...`).
pub fn stop_receiver(p: &Proc) -> String {
    p.terminate();
    p.wait_stderr(" failed; dropped ", WAIT)
}

/// A word without its plural `s`, and without the punctuation after it.
fn singular(w: &str) -> &str {
    let w = w.trim_end_matches([',', ';']);
    w.strip_suffix('s').unwrap_or(w)
}

/// The number just before `what` in a receiver's summary line (`3 failed logins`); `what`
/// in the plural also finds the singular (`1 failed login`).
pub fn summary_count(summary: &str, what: &str) -> u64 {
    let want: Vec<&str> = what.split_whitespace().map(singular).collect();
    let words: Vec<&str> = summary.split_whitespace().collect();
    (0..words.len())
        .find_map(|i| {
            let after = words.get(i + 1..i + 1 + want.len())?;
            let same = after.iter().map(|w| singular(w)).eq(want.iter().copied());
            same.then(|| words[i].parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no count of {what:?} in {summary:?}"))
}

/// What the kernel says of a UDP socket (`/proc/net/udp`, `/proc/net/udp6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketState {
    /// Bytes waiting in its receive buffer.
    pub rx_queue: u64,
    /// Datagrams dropped because its receive buffer was full.
    pub drops: u64,
}

/// The kernel's view of the UDP socket bound to `addr` (on this machine, in this network
/// namespace). Panics when there is no such socket or `/proc` cannot be read.
pub fn udp_socket_state(addr: SocketAddr) -> UdpSocketState {
    let (table, local) = match addr {
        SocketAddr::V4(a) => (
            "/proc/net/udp",
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(a.ip().octets()),
                a.port()
            ),
        ),
        SocketAddr::V6(a) => {
            let o = a.ip().octets();
            let words: String = o
                .chunks(4)
                .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
                .collect();
            ("/proc/net/udp6", format!("{words}:{:04X}", a.port()))
        }
    };
    let text = std::fs::read_to_string(table)
        .unwrap_or_else(|e| panic!("cannot read {table} to see the socket {addr}: {e}"));
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&local.as_str()))
        .unwrap_or_else(|| panic!("no socket {addr} ({local}) in {table}"));
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let rx_queue = row
        .get(4)
        .and_then(|q| q.split(':').nth(1))
        .and_then(hex)
        .unwrap_or_else(|| panic!("no rx_queue in {row:?}"));
    let drops = row
        .last()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no drops in {row:?}"));
    UdpSocketState { rx_queue, drops }
}

/// Waits until the receiver at `addr` has read every datagram sent to it before this call:
/// a PING for a session it never heard of, which it answers (clear CLOSE, unknown session),
/// comes back; then its receive buffer is empty. Returns the socket's state then.
pub fn wait_received_all(addr: SocketAddr) -> UdpSocketState {
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::1]:0".parse().expect("addr")
    } else {
        "127.0.0.1:0".parse().expect("addr")
    };
    let probe = std::net::UdpSocket::bind(bind).expect("bind a probe");
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let session = 0x7072_6f62_6521_0000 | u64::from(std::process::id() & 0xffff);
    let ping = udpix::proto::wire::encode_vec(
        &udpix::proto::wire::Header {
            kind: udpix::proto::wire::kind::PING,
            session,
            pn: 0,
        },
        &udpix::proto::wire::Body::Ping,
    );
    let mut buf = [0u8; 2048];
    wait_for(&format!("{addr} to answer a probe"), WAIT, || {
        // Sent again while unanswered: a full buffer may drop it.
        probe.send_to(&ping, addr).expect("send a probe");
        let (n, from) = probe.recv_from(&mut buf).ok()?;
        let h = udpix::proto::wire::decode_header(&buf[..n]).ok()?;
        (from == addr && h.session == session).then_some(())
    });
    wait_for(&format!("{addr} to read its receive buffer"), WAIT, || {
        let st = udp_socket_state(addr);
        (st.rx_queue == 0).then_some(st)
    })
}

/// Datagrams the kernel dropped machine-wide before any socket saw them (the per-CPU
/// backlog of loopback was full), from `/proc/net/softnet_stat`.
pub fn backlog_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_else(|e| panic!("cannot read /proc/net/softnet_stat: {e}"));
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|d| u64::from_str_radix(d, 16).ok())
                .unwrap_or_else(|| panic!("bad softnet_stat line {l:?}"))
        })
        .sum()
}

/// A process's current and peak resident memory (`VmRSS`, `VmHWM`) in KiB. Panics when they
/// cannot be read: a check of memory that read nothing would pass whatever happened.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path} to measure memory: {e}"));
    let field = |k: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {path}: {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A netsim proxy towards `to`, with extra impairment flags.
pub fn start_netsim(to: SocketAddr, flags: &[&str]) -> (Proc, SocketAddr) {
    let to_s = to.to_string();
    let mut args = vec!["netsim", "--listen", "127.0.0.1:0", "--to", &to_s];
    args.extend_from_slice(flags);
    let proc = Proc::spawn(&args);
    let line = proc.wait_stderr("udpix netsim:", WAIT);
    let addr = line
        .trim_start_matches("udpix netsim: ")
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse netsim address from {line:?}"));
    (proc, addr)
}

/// Runs `udpix send` to completion.
pub fn send(to: SocketAddr, files: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("send").arg(to.to_string());
    for f in files {
        cmd.arg(f);
    }
    cmd.args(extra).stdin(Stdio::null());
    cmd.env("UDPIX_PASSPHRASE", PASSPHRASE);
    cmd.output().expect("run udpix send")
}

/// Parses JSON lines.
pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// Bytes on disk in the largest file of `dir` (allocated blocks: a part file is created at
/// full length but sparse, so this is what has been written so far).
pub fn most_written(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.blocks() * 512)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
