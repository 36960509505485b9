//! Honest errors on both sides, with the real binary on loopback: a full disk, a folder that
//! turns read-only, a receiver that restarts mid-transfer, a wrong passphrase with many
//! files. The sender must be told what happened in words, never the receiver's local paths.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: this machine does not let us mount a tmpfs");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A receiver writing into `dir` (the caller owns it).
fn recv_into(dir: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    start_recv_at(dir, "127.0.0.1:0", &args)
}

/// Forwards datagrams between one client and whatever address `upstream` holds at the
/// time, until `stop`: the receiver behind it can be replaced while the client sees one
/// address throughout.
fn switchable_relay(upstream: Arc<Mutex<SocketAddr>>, stop: Arc<AtomicBool>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let addr = sock.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut client: Option<SocketAddr> = None;
        // Every receiver the relay forwarded to: a late datagram of a replaced one still
        // goes to the client, as it would reach a sender talking to it directly.
        let mut receivers: Vec<SocketAddr> = Vec::new();
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let to = *upstream.lock().expect("lock");
            if !receivers.contains(&to) {
                receivers.push(to);
            }
            if receivers.contains(&from) {
                if let Some(c) = client {
                    let _ = sock.send_to(&buf[..n], c);
                }
            } else {
                client = Some(from);
                let _ = sock.send_to(&buf[..n], to);
            }
        }
    });
    addr
}

fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, seeded_bytes(len, seed)).expect("write");
    p
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_full_disk_is_told_to_the_sender_in_words() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let (recv, addr) = recv_into(fs.path(), &[]);
    let src = tempfile::tempdir().expect("tempdir");
    let file = random_file(src.path(), "big.bin", 4 << 20, 1);
    let out = send(addr, &[&file], &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the receiver's disk is full"), "{err}");
    let local = fs.path().to_string_lossy().into_owned();
    assert!(
        !err.contains(&local),
        "the receiver's path reached the sender: {err}"
    );
    // The receiver's own report names the folder; nothing partial is left in it.
    recv.wait_stdout_lines(1, T);
    let left: Vec<_> = std::fs::read_dir(fs.path())
        .expect("ls")
        .flatten()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_folder_that_turns_read_only_is_told_to_the_sender_in_words() {
    let tmpfs = Tmpfs::mount("8m");
    let plain = tempfile::tempdir().expect("tempdir");
    let dir = tmpfs.as_ref().map_or(plain.path(), Tmpfs::path);
    if tmpfs.is_none() && is_root() {
        eprintln!("skipped: as root without a tmpfs, no folder can be made read-only");
        return;
    }
    let (recv, addr) = recv_into(dir, &["--once"]);
    // Only after the receiver checked the folder at start.
    match &tmpfs {
        Some(fs) => fs.remount_read_only(),
        None => {
            use std::os::unix::fs::PermissionsExt;
            let ro = std::fs::Permissions::from_mode(0o555);
            std::fs::set_permissions(dir, ro).expect("chmod");
        }
    }
    let src = tempfile::tempdir().expect("tempdir");
    let file = random_file(src.path(), "x.png", 50_000, 2);
    let out = send(addr, &[&file], &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the receiver cannot write to its folder"),
        "{err}"
    );
    assert!(!err.contains(&*dir.to_string_lossy()), "{err}");
    // With --once the receiver ends with that failed transfer instead of waiting forever.
    let (code, _, rerr) = recv.wait(T);
    assert_eq!(code, 1, "{rerr:?}");
}

#[test]
fn a_receiver_restarted_mid_transfer_is_reported_as_such() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let (first, first_addr) = recv_into(out_dir.path(), &[]);
    // The sender talks to a relay, so the restarted receiver can listen on a port of its
    // own choosing yet answer at the address the sender knows.
    let upstream = Arc::new(Mutex::new(first_addr));
    let stop = Arc::new(AtomicBool::new(false));
    let via = switchable_relay(upstream.clone(), stop.clone());
    let src = tempfile::tempdir().expect("tempdir");
    // At 20 Mbit/s an 8 MiB file takes over 3 s: time to restart the receiver.
    let file = random_file(src.path(), "long.bin", 8 << 20, 3);
    let sender = std::thread::spawn(move || send(via, &[&file], &["--max-rate", "20mbit"]));
    // More than the first flight written means the sender had ACKs, which it believes only
    // after the receiver's ACCEPT: the login is through, the transfer under way. (The part
    // file alone exists from the offer on, before the ACCEPT may have left.)
    wait_for("1 MiB of the transfer written", T, || {
        (most_written(out_dir.path()) >= 1 << 20).then_some(())
    });
    let mut first = first;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let (_again, again_addr) = recv_into(out_dir.path(), &[]);
    *upstream.lock().expect("lock") = again_addr;
    let out = sender.join().expect("sender thread");
    stop.store(true, Ordering::Relaxed);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the receiver restarted or timed out and no longer knows this transfer"),
        "{err}"
    );
}

#[test]
fn a_wrong_passphrase_with_six_files_is_one_failed_login() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let src = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = (0..6)
        .map(|i| random_file(src.path(), &format!("f{i}.png"), 2000, 10 + i))
        .collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = Command::new(BIN)
        .arg("send")
        .arg(recv.addr.to_string())
        .args(&refs)
        .env("UDPIX_PASSPHRASE", "not-the-passphrase")
        .output()
        .expect("run send");
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert_eq!(err.matches("authentication failed").count(), 1, "{err}");
    assert!(err.contains("not sending the 5 remaining"), "{err}");
    let summary = stop_receiver(&recv.proc);
    assert_eq!(summary_count(&summary, " failed logins"), 1, "{summary}");
    assert_eq!(
        recv.proc
            .stderr
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains("authentication failed from"))
            .count(),
        1
    );
}

#[test]
fn a_passphrase_typed_with_other_case_and_spaces_logs_in() {
    let recv = start_recv("127.0.0.1:0", &["--once"]);
    let src = tempfile::tempdir().expect("tempdir");
    let file = random_file(src.path(), "ok.png", 5000, 20);
    // The receiver has "e2e-test-passphrase".
    let out = Command::new(BIN)
        .arg("send")
        .arg(recv.addr.to_string())
        .arg(&file)
        .env("UDPIX_PASSPHRASE", "E2E  test PASSPHRASE")
        .output()
        .expect("run send");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (code, _, _) = recv.proc.wait(T);
    assert_eq!(code, 0);
}
