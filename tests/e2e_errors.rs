//! Honest errors on both sides, with the real binary on loopback: a full disk, a folder that
//! turns read-only, a receiver that restarts mid-transfer, a wrong passphrase with many
//! files. The sender must be told what happened in words, never the receiver's local paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
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

fn recv_into(dir: &Path, extra: &[&str]) -> Recv {
    let out = dir.to_str().expect("utf8").to_owned();
    let mut args = vec!["recv", "--listen", "127.0.0.1:0", "--out", &out, "--json"];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(&args);
    let addr = listening_addr(&proc);
    Recv {
        proc,
        addr,
        // Not ours to clean: the caller owns `dir`.
        out: tempfile::tempdir().expect("tempdir"),
    }
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
    let recv = recv_into(fs.path(), &[]);
    let src = tempfile::tempdir().expect("tempdir");
    let file = random_file(src.path(), "big.bin", 4 << 20, 1);
    let out = send(recv.addr, &[&file], &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the receiver's disk is full"), "{err}");
    let local = fs.path().to_string_lossy().into_owned();
    assert!(
        !err.contains(&local),
        "the receiver's path reached the sender: {err}"
    );
    // The receiver's own report names the folder; nothing partial is left in it.
    recv.proc.wait_stdout_lines(1, T);
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
    let recv = recv_into(dir, &["--once"]);
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
    let out = send(recv.addr, &[&file], &[]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the receiver cannot write to its folder"),
        "{err}"
    );
    assert!(!err.contains(&*dir.to_string_lossy()), "{err}");
    // With --once the receiver ends with that failed transfer instead of waiting forever.
    let (code, _, rerr) = recv.proc.wait(T);
    assert_eq!(code, 1, "{rerr:?}");
}

#[test]
fn a_receiver_restarted_mid_transfer_is_reported_as_such() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let recv = recv_into(out_dir.path(), &[]);
    let port = recv.addr;
    // Through a 20 Mbit/s link an 8 MiB file takes over 3 s: time to restart the receiver.
    let (_net, via) = start_netsim(port, &["--rate", "20mbit"]);
    let src = tempfile::tempdir().expect("tempdir");
    let file = random_file(src.path(), "long.bin", 8 << 20, 3);
    let sender = std::thread::spawn(move || send(via, &[&file], &[]));
    // Wait for the transfer to be under way: its partial file appears.
    let start = std::time::Instant::now();
    while std::fs::read_dir(out_dir.path())
        .expect("ls")
        .next()
        .is_none()
    {
        assert!(start.elapsed() < T, "the transfer never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let Recv { mut proc, .. } = recv;
    proc.child.kill().expect("kill -9");
    let _ = proc.child.wait();
    let listen = port.to_string();
    let out_s = out_dir.path().to_str().expect("utf8").to_owned();
    let again = Proc::spawn(&["recv", "--listen", &listen, "--out", &out_s]);
    again.wait_stderr("listening on", T);
    let out = sender.join().expect("sender thread");
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
    let pid = recv.proc.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let summary = recv.proc.wait_stderr("images received", T);
    assert!(summary.contains(" 1 failed logins"), "{summary}");
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
