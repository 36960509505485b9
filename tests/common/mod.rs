//! Helpers for end-to-end tests: the real `udpix` binary on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_udpix");
/// The passphrase every test process gets through the environment.
pub const PASSPHRASE: &str = "e2e-test-passphrase";

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

/// A background process whose stderr is collected line by line.
pub struct Proc {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
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
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        Proc {
            child,
            stderr,
            stdout,
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

    /// Waits for exit and returns the code.
    pub fn wait(mut self, timeout: Duration) -> (i32, Vec<String>, Vec<String>) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50));
                let out = self.stdout.lock().expect("lock").clone();
                let err = self.stderr.lock().expect("lock").clone();
                return (status.code().unwrap_or(-1), out, err);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "process did not exit in {timeout:?}; stderr {:?}",
                    self.stderr.lock().expect("lock")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
    let out_s = out.path().to_str().expect("utf8 path").to_owned();
    let mut args = vec!["recv", "--listen", listen, "--out", &out_s, "--json"];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(&args);
    let addr = listening_addr(&proc);
    Recv { proc, addr, out }
}

/// The address a `udpix recv` process says it listens on.
pub fn listening_addr(p: &Proc) -> SocketAddr {
    let line = p.wait_stderr("listening on", Duration::from_secs(20));
    line.split("listening on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse address from {line:?}"))
}

/// A netsim proxy towards `to`, with extra impairment flags.
pub fn start_netsim(to: SocketAddr, flags: &[&str]) -> (Proc, SocketAddr) {
    let to_s = to.to_string();
    let mut args = vec!["netsim", "--listen", "127.0.0.1:0", "--to", &to_s];
    args.extend_from_slice(flags);
    let proc = Proc::spawn(&args);
    let line = proc.wait_stderr("udpix netsim:", Duration::from_secs(20));
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
