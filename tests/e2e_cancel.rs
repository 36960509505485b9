//! Ctrl-C on either side of a running transfer tells the other side at once, which says who
//! cancelled; nothing half-written is left. Each side's own timeout is set far beyond the
//! tests' waits, so only the cancel message can explain the other side's prompt verdict.

mod common;

use common::{Proc, WAIT, most_written, seeded_bytes, start_recv, wait_for};

/// A file big enough to be mid-transfer for many seconds at 2 Mbit/s.
fn slow_file(dir: &std::path::Path) -> String {
    let file = dir.join("big.bin");
    std::fs::write(&file, seeded_bytes(4 << 20, 11)).expect("write");
    file.to_str().expect("utf8").to_owned()
}

/// Waits until the receiver has written more than the first flight: data is flowing.
fn wait_mid_transfer(out: &std::path::Path) {
    wait_for("128 KiB of the transfer written", WAIT, || {
        (most_written(out) >= 128 << 10).then_some(())
    });
}

#[test]
fn ctrl_c_of_send_tells_the_receiver_at_once() {
    let recv = start_recv("127.0.0.1:0", &["--idle-timeout", "10m"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = slow_file(dir.path());
    let to = recv.addr.to_string();
    let sender = Proc::spawn(&["send", &to, &f, "--max-rate", "2mbit"]);
    wait_mid_transfer(recv.out.path());
    sender.interrupt();
    let line = recv
        .proc
        .wait_stderr("cancelled by the sender: udpix send was interrupted", WAIT);
    assert!(line.contains("big.bin"), "{line}");
    let (code, _, err) = sender.wait(WAIT);
    assert_eq!(code, 130, "{err:?}");
    assert!(err.iter().any(|l| l.contains("interrupted")), "{err:?}");
    // The partial file went with the transfer.
    wait_for("the partial file removed", WAIT, || {
        std::fs::read_dir(recv.out.path())
            .expect("out")
            .next()
            .is_none()
            .then_some(())
    });
}

#[test]
fn ctrl_c_of_recv_tells_the_sender_at_once() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = slow_file(dir.path());
    let to = recv.addr.to_string();
    let sender = Proc::spawn(&["send", &to, &f, "--max-rate", "2mbit", "--timeout", "10m"]);
    wait_mid_transfer(recv.out.path());
    recv.proc.interrupt();
    let (code, _, err) = sender.wait(WAIT);
    assert_eq!(code, 1, "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("cancelled by the receiver: the receiver was stopped")),
        "{err:?}"
    );
    let (code, _, _) = recv.proc.wait(WAIT);
    assert_eq!(code, 130);
}
