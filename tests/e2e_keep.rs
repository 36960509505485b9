//! `udpix recv --latest NAME --keep N`: the newest verified image is always there under a
//! fixed name, whole, and only the newest N images of the run are kept.

mod common;

use common::{WAIT, json_lines, send, start_recv};

#[test]
fn the_latest_image_has_a_fixed_name_and_only_the_newest_are_kept() {
    let recv = start_recv("127.0.0.1:0", &["--latest", "latest.png", "--keep", "3"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let images: Vec<Vec<u8>> = (0..5)
        .map(|i| common::seeded_bytes(30_000 + i * 1_000, 70 + i as u64))
        .collect();
    let paths: Vec<std::path::PathBuf> = images
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = dir.path().join(format!("shot{i}.png"));
            std::fs::write(&p, d).expect("write");
            p
        })
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = send(recv.addr, &refs, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = recv.proc.wait_stdout_lines(5, WAIT);
    assert!(
        json_lines(&lines).iter().all(|j| j["ok"] == true),
        "{lines:?}"
    );
    // The receiver prints a file's line once it is kept; the latest follows right after.
    let latest = recv.out.path().join("latest.png");
    common::wait_for("latest.png to be the last image", WAIT, || {
        std::fs::read(&latest).ok().filter(|d| *d == images[4])
    });
    assert_eq!(
        common::files_in(recv.out.path()),
        ["latest.png", "shot2.png", "shot3.png", "shot4.png"],
        "the newest three and the latest, nothing else"
    );
}

#[test]
fn latest_takes_a_plain_name() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_udpix"))
        .args(["recv", "--latest", "../escape.png"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--latest takes a plain file name"), "{err}");
}
