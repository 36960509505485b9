//! End-to-end: the sender reads files from disk as it sends them, so its memory stays
//! bounded whatever the file's size, and it turns away what is not a regular file.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(120);

/// Runs `udpix` with `args` to its end; its exit code, stderr and peak resident memory in
/// KiB: the last `VmHWM` read before it exited (the high-water mark of its own address
/// space; `wait4`'s figure would include the test process's, which the child shared until
/// it ran udpix).
fn run_measured(args: &[&str]) -> (i32, String, u64) {
    let p = Proc::spawn(args);
    let mut peak = None;
    let deadline = std::time::Instant::now() + T;
    let pid = p.child.id();
    loop {
        // Read before the exit check, so a sample is taken even of a short run.
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(s) if s.contains("VmHWM:") => peak = Some(rss_kib(pid).1),
            _ => {}
        }
        if is_zombie_or_gone(pid) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "udpix did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, _, stderr) = p.wait(T);
    let peak = peak.expect("no memory figure was read while udpix ran");
    (code, stderr.join("\n"), peak)
}

/// The process has exited (it is a zombie, not yet reaped) or is gone.
fn is_zombie_or_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_file_larger_than_the_senders_memory_bound_streams_from_disk() {
    // 4x what the sender holds ahead (16 MiB), so a sender that reads it whole is caught.
    const SIZE: usize = 64 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large.bin");
    std::fs::write(&path, seeded_bytes(SIZE, 11)).expect("write");
    let recv = start_recv("127.0.0.1:0", &[]);
    let to = recv.addr.to_string();
    let file = path.to_str().expect("utf8");
    let (code, stderr, peak_kib) = run_measured(&["send", &to, file]);
    assert_eq!(code, 0, "{stderr}");
    let got = std::fs::read(recv.out.path().join("large.bin")).expect("received file");
    assert!(
        got == std::fs::read(&path).expect("read"),
        "content differs"
    );
    assert!(
        peak_kib < 48 << 10,
        "the sender of a {} MiB file peaked at {} MiB resident",
        SIZE >> 20,
        peak_kib >> 10
    );
}

#[test]
fn only_regular_files_are_sent_and_a_fifo_does_not_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe.png");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let image = testdata().join("chelsea.png");
    let recv = start_recv("127.0.0.1:0", &[]);
    let to = recv.addr.to_string();
    let s = |p: &Path| p.to_str().expect("utf8").to_owned();
    let (fifo_s, dir_s, image_s) = (s(&fifo), s(dir.path()), s(&image));
    let args = [
        "send",
        &to,
        "/dev/zero",
        &fifo_s,
        &dir_s,
        &image_s,
        "--json",
    ];
    // A sender that opens the FIFO waits for a writer forever: `wait` fails it.
    let (code, _, stderr) = Proc::spawn(&args).wait(T);
    let stderr = stderr.join("\n");
    for what in ["/dev/zero", "pipe.png"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(what) && l.contains("not a regular file")),
            "{what}: {stderr}"
        );
    }
    assert!(stderr.contains("it is a folder"), "{stderr}");
    // The one regular file among them still goes, byte-exact.
    let got = wait_for("chelsea.png to arrive", T, || {
        std::fs::read(recv.out.path().join("chelsea.png")).ok()
    });
    assert!(
        got == std::fs::read(&image).expect("read"),
        "content differs"
    );
    assert_eq!(code, 1, "some files could not be sent: {stderr}");
}
