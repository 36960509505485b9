//! `udpix send --watch`: images written into a folder while the sender runs arrive, each
//! once complete, byte for byte and in the order they were written, over a lossy link;
//! what was there before is not sent, nor are files still being written.

mod common;

use std::io::Write;
use std::path::Path;

use common::{Proc, WAIT, json_lines, start_netsim, start_recv};

/// Writes `data` into `dir/name` in two writes, as a camera writing a frame does: the
/// sender must not take the first part alone (the unit tests of `udpix::watch` place a
/// look at the folder between the two; here one may fall there or not).
fn write_in_two(dir: &Path, name: &str, data: &[u8]) {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    let half = data.len() / 2;
    f.write_all(&data[..half]).expect("write");
    f.write_all(&data[half..]).expect("write");
}

#[test]
fn images_written_into_a_watched_folder_arrive_in_order_through_loss() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let (_netsim, via) = start_netsim(recv.addr, &["--loss", "10%", "--seed", "11"]);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("before.png"), b"already there").expect("write");
    let dir_s = dir.path().to_str().expect("utf8");
    let via_s = via.to_string();
    let sender = Proc::spawn(&[
        "send", &via_s, dir_s, "--watch", "--settle", "100ms", "--json",
    ]);
    sender.wait_stderr("watching", WAIT);
    let images: Vec<Vec<u8>> = (0..30)
        .map(|i| common::seeded_bytes(20_000 + i * 3_000, 500 + i as u64))
        .collect();
    // Named out of order, so the order they arrive in is the order written, not by name.
    let name = |i: usize| format!("frame{:03}.png", (i * 7) % 30);
    for (i, img) in images.iter().enumerate() {
        // One after another, as a camera writes them: each once the one before arrived.
        common::wait_for("the image before to arrive", WAIT, || {
            (json_lines(&sender.stdout.lock().expect("lock")).len() >= i + i / 10).then_some(())
        });
        write_in_two(dir.path(), &name(i), img);
        // A hidden temp file renamed into place, as many writers do, counts once renamed.
        if i % 10 == 9 {
            let tmp = dir.path().join(".frame.tmp");
            std::fs::write(&tmp, img).expect("write");
            std::fs::rename(&tmp, dir.path().join(format!("copy{i:03}.png"))).expect("mv");
        }
    }
    let expected = images.len() + 3;
    let lines = recv.proc.wait_stdout_lines(expected, WAIT * 2);
    let got = json_lines(&lines);
    let names: Vec<String> = got
        .iter()
        .map(|j| j["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let frames: Vec<&String> = names.iter().filter(|n| n.starts_with("frame")).collect();
    let want: Vec<String> = (0..30).map(name).collect();
    assert_eq!(
        frames,
        want.iter().collect::<Vec<_>>(),
        "in the order written"
    );
    assert!(!names.iter().any(|n| n == "before.png"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
    for j in &got {
        assert_eq!(j["ok"], true, "{j}");
    }
    for (i, img) in images.iter().enumerate() {
        let written = std::fs::read(recv.out.path().join(name(i))).expect("frame received");
        assert!(written == *img, "{} differs", name(i));
    }
    for i in [9, 19, 29] {
        let written = std::fs::read(recv.out.path().join(format!("copy{i:03}.png"))).expect("copy");
        assert!(written == images[i], "copy{i:03}.png differs");
    }
    // Ctrl-C ends the watch, once the sender has every verdict: all was delivered.
    sender.wait_stdout_lines(expected, WAIT);
    sender.interrupt();
    let (code, out, err) = sender.wait(WAIT);
    assert_eq!(code, 130, "{err:?}");
    let sent = json_lines(&out);
    assert_eq!(sent.len(), expected, "{err:?}");
    assert!(sent.iter().all(|j| j["ok"] == true), "{out:?}");
}

#[test]
fn watch_takes_one_folder() {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    let f = file.path().to_str().expect("utf8");
    let out = common::send(
        "127.0.0.1:9".parse().expect("addr"),
        &[file.path()],
        &["--watch"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--watch takes a folder"), "{err}");
    assert!(err.contains(f), "{err}");
    let out = common::send(
        "127.0.0.1:9".parse().expect("addr"),
        &[file.path(), file.path()],
        &["--watch"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--watch takes one folder, not 2"), "{err}");
}

/// A stream faster than the link (`--deadline`): the images that cannot make it give way to
/// newer ones, nothing half-written is kept, each one kept is whole, the skipped ones are
/// reported as such, and the newest always arrives.
#[test]
fn a_stream_too_fast_for_its_link_stays_live_with_a_deadline() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let (_netsim, via) = start_netsim(recv.addr, &["--rate", "2mbit"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().to_str().expect("utf8");
    let via_s = via.to_string();
    let sender = Proc::spawn(&[
        "send",
        &via_s,
        dir_s,
        "--watch",
        "--settle",
        "50ms",
        "--deadline",
        "300ms",
        "--json",
    ]);
    sender.wait_stderr("watching", WAIT);
    // 100 kB every 100 ms is 8 Mbit/s, four times what the link carries: a camera pacing
    // its frames, not a wait for anything.
    let frames: Vec<Vec<u8>> = (0..20)
        .map(|i| common::seeded_bytes(100_000, 900 + i as u64))
        .collect();
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(dir.path().join(format!("cam{i:02}.png")), f).expect("write");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The newest arrives: nothing newer comes to take its place.
    let last = recv.out.path().join("cam19.png");
    common::wait_for("the newest frame", WAIT, || {
        std::fs::read(&last).ok().filter(|d| *d == frames[19])
    });
    // And the sender has its verdict: every frame reported before Ctrl-C.
    sender.wait_stdout_lines(20, WAIT);
    sender.interrupt();
    let (_, out, err) = sender.wait(WAIT);
    let sent = json_lines(&out);
    assert_eq!(sent.len(), 20, "every frame reported: {err:?}");
    let skipped = sent
        .iter()
        .filter(|j| {
            j["error"]
                .as_str()
                .is_some_and(|e| e.contains("past its deadline"))
        })
        .count();
    let delivered = sent.iter().filter(|j| j["ok"] == true).count();
    assert!(skipped > 0, "the link cannot carry all: {out:?}");
    let summary = format!(
        "udpix: stream: {delivered} delivered, {skipped} gave way to newer images, 0 failed"
    );
    assert!(
        err.iter().any(|l| l.starts_with(&summary)),
        "{summary}: {err:?}"
    );
    assert_eq!(skipped + delivered, 20, "{out:?}");
    // What the receiver kept is whole, and only what was delivered.
    let kept = common::files_in(recv.out.path());
    assert_eq!(kept.len(), delivered, "{kept:?}");
    for name in &kept {
        let i: usize = name[3..5].parse().expect("cam NN");
        let got = std::fs::read(recv.out.path().join(name)).expect("read");
        assert!(got == frames[i], "{name} differs");
    }
}

/// `--loop --fps N --deadline D`: the files given go round as a paced stream until Ctrl-C;
/// each image kept is a whole copy of one of them, and a paced send without `--loop` sends
/// each file once, in order.
#[test]
fn a_looped_paced_stream_sends_whole_copies_until_interrupted() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let (_netsim, via) = start_netsim(recv.addr, &["--rate", "4mbit"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = common::seeded_bytes(60_000, 1);
    let b = common::seeded_bytes(80_000, 2);
    std::fs::write(dir.path().join("a.png"), &a).expect("write");
    std::fs::write(dir.path().join("b.png"), &b).expect("write");
    let via_s = via.to_string();
    let dir_s = dir.path().to_str().expect("utf8");
    let sender = Proc::spawn(&[
        "send",
        &via_s,
        dir_s,
        "--loop",
        "--fps",
        "20",
        "--deadline",
        "200ms",
        "--json",
    ]);
    // Round and round: at least two of each.
    recv.proc.wait_stdout_lines(4, WAIT);
    sender.interrupt();
    let (code, out, err) = sender.wait(WAIT);
    assert_eq!(code, 130, "{err:?}");
    let sent = json_lines(&out);
    assert!(sent.len() >= 4, "{out:?}");
    // Each report names the file it sent, round and round the folder in name order.
    for (i, j) in sent.iter().enumerate() {
        let path = j["path"].as_str().unwrap_or_default();
        let want = if j["name"] == "a.png" {
            "a.png"
        } else {
            "b.png"
        };
        assert!(path.ends_with(want), "{i}: {j}");
    }
    for entry in std::fs::read_dir(recv.out.path()).expect("out").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let got = std::fs::read(entry.path()).expect("read");
        let want = if name.starts_with('a') { &a } else { &b };
        assert!(got == *want, "{name} is not a whole copy");
    }
    // Paced, once: each file, in order.
    let recv = start_recv("127.0.0.1:0", &[]);
    let paths = [dir.path().join("b.png"), dir.path().join("a.png")];
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = common::send(recv.addr, &refs, &["--interval", "50ms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = recv.proc.wait_stdout_lines(2, WAIT);
    let names: Vec<String> = json_lines(&lines)
        .iter()
        .map(|j| j["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["b.png", "a.png"]);
    let out = common::send(recv.addr, &refs, &["--deadline", "1s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--deadline is for a stream"), "{err}");
}
