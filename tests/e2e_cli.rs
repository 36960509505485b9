//! The command line's edges, with the real binary: what it says when it is used wrong
//! (no terminal, a bad address, a missing file, a bare number for a duration), the
//! addresses it accepts, the lines it prints and the JSON it writes.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

fn joined(lines: &[String]) -> String {
    lines.join("\n")
}

/// Runs `udpix args` to its end with no terminal (stdin is null, output is collected).
fn run(args: &[&str]) -> (i32, Vec<String>, Vec<String>) {
    Proc::spawn(args).wait(T)
}

#[test]
fn tui_without_a_terminal_is_a_usage_error_not_a_panic() {
    let (code, _, err) = run(&["tui"]);
    let err = joined(&err);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("udpix tui needs a terminal"), "{err}");
    assert!(err.contains("udpix recv / udpix send"), "{err}");
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let (code, _, err) = run(&["tui", "--config", "/nonexistent/udpix-config.toml"]);
    let err = joined(&err);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/udpix-config.toml"), "{err}");
    assert!(!err.contains("needs a terminal"), "{err}");
}

#[test]
fn a_missing_passphrase_file_says_why_once() {
    let img = testdata().join("chessboard_GRAY.png");
    let f = img.to_str().expect("utf8");
    for args in [
        vec![
            "send",
            "127.0.0.1:9",
            f,
            "--passphrase-file",
            "/nonexistent/pw",
        ],
        vec![
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--passphrase-file",
            "/nonexistent/pw",
        ],
    ] {
        let (code, _, err) = run(&args);
        let err = joined(&err);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("/nonexistent/pw"), "{args:?}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_bare_number_is_not_a_duration() {
    let img = testdata().join("chessboard_GRAY.png");
    let f = img.to_str().expect("utf8");
    for args in [
        vec![
            "netsim",
            "--listen",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--delay",
            "20",
        ],
        vec![
            "netsim",
            "--listen",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--jitter",
            "5",
        ],
        vec![
            "netsim",
            "--listen",
            "127.0.0.1:0",
            "--to",
            "127.0.0.1:9",
            "--stats-interval",
            "5",
        ],
        vec!["send", "127.0.0.1:9", f, "--timeout", "10"],
        vec!["recv", "--listen", "127.0.0.1:0", "--idle-timeout", "10"],
    ] {
        let (code, _, err) = run(&args);
        let err = joined(&err);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("give a unit"), "{args:?}: {err}");
    }
}

#[test]
fn port_zero_cannot_be_sent_to() {
    let img = testdata().join("chessboard_GRAY.png");
    let (code, _, err) = run(&["send", "127.0.0.1:0", img.to_str().expect("utf8")]);
    let err = joined(&err);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("port 0 cannot be sent to"), "{err}");
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn an_address_without_a_port_means_7878() {
    // The one test that needs the default port itself; when something else holds it, the
    // refusal still shows which address was meant.
    let out = tempfile::tempdir().expect("tempdir");
    let out_s = out.path().to_str().expect("utf8");
    let recv = Proc::spawn(&["recv", "--listen", "127.0.0.1", "--out", out_s, "--once"]);
    let line = wait_for("the receiver to listen or fail", T, || {
        let err = recv.stderr.lock().expect("lock");
        err.iter()
            .find(|l| l.contains("listening on") || l.contains("error"))
            .cloned()
    });
    assert!(line.contains("127.0.0.1:7878"), "{line}");
    if line.contains("cannot listen") {
        eprintln!("skipped the transfer: port 7878 is in use here");
        return;
    }
    let img = testdata().join("chessboard_GRAY.png");
    let sent = std::process::Command::new(BIN)
        .args(["send", "127.0.0.1"])
        .arg(&img)
        .env("UDPIX_PASSPHRASE", PASSPHRASE)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run udpix send");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (code, _, err) = recv.wait(T);
    assert_eq!(code, 0, "{err:?}");
}

#[test]
fn ipv6_literals_with_and_without_a_port_are_addresses() {
    if let Err(e) = UdpSocket::bind("[::1]:0") {
        eprintln!("skipped: no IPv6 loopback (binding [::1]:0 failed: {e})");
        return;
    }
    let recv = start_recv("[::1]:0", &[]);
    assert!(recv.addr.is_ipv6());
    let img = testdata().join("rocket.jpg");
    let to = format!("[::1]:{}", recv.addr.port());
    let out = std::process::Command::new(BIN)
        .args(["send", &to])
        .arg(&img)
        .env("UDPIX_PASSPHRASE", PASSPHRASE)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run udpix send");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `[::1]` alone is [::1]:7878, whether or not the port is free.
    let out_dir = tempfile::tempdir().expect("tempdir");
    let p = Proc::spawn(&[
        "recv",
        "--listen",
        "[::1]",
        "--out",
        out_dir.path().to_str().expect("utf8"),
    ]);
    let line = wait_for("the receiver to listen or fail", T, || {
        let err = p.stderr.lock().expect("lock");
        err.iter()
            .find(|l| l.contains("listening on") || l.contains("error"))
            .cloned()
    });
    assert!(line.contains("[::1]:7878"), "{line}");
}

#[test]
fn netsim_takes_host_names_and_prints_a_readable_banner() {
    // localhost may resolve to ::1 or 127.0.0.1: the receiver listens on both where it can.
    let listen = if UdpSocket::bind("[::]:0").is_ok() {
        "[::]:0"
    } else {
        "127.0.0.1:0"
    };
    let recv = start_recv(listen, &[]);
    let to = format!("localhost:{}", recv.addr.port());
    let netsim = Proc::spawn(&[
        "netsim",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to,
        "--rate",
        "20mbit",
        "--delay",
        "20ms",
        "--loss",
        "10%:0",
    ]);
    let banner = netsim.wait_stderr("udpix netsim:", T);
    assert!(!banner.contains("LinkSpec"), "{banner}");
    assert!(!banner.contains('{'), "{banner}");
    for part in [
        "20 Mbit/s",
        "20 ms delay",
        "10 % loss",
        "queue 100 packets",
        "up",
        "down",
    ] {
        assert!(banner.contains(part), "{part:?} in {banner}");
    }
    let proxy: std::net::SocketAddr = banner
        .trim_start_matches("udpix netsim: ")
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner}"));
    let img = testdata().join("chessboard_GRAY.png");
    let out = send(proxy, &[&img], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recv.proc.wait_stdout_lines(1, T);
}

#[test]
fn one_image_is_one_image() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let img = testdata().join("chessboard_GRAY.png");
    let out = send(recv.addr, &[&img], &[]);
    assert!(out.status.success());
    recv.proc.wait_stdout_lines(1, T);
    let summary = stop_receiver(&recv.proc);
    assert!(
        summary.contains("udpix: 1 image received, 0 failed"),
        "{summary}"
    );
    assert!(summary.contains(" 0 failed logins"), "{summary}");
    assert_eq!(summary_count(&summary, " images received"), 1, "{summary}");
}

#[test]
fn the_remaining_file_after_a_wrong_passphrase_is_one_file() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let img = testdata().join("chessboard_GRAY.png");
    let out = std::process::Command::new(BIN)
        .arg("send")
        .arg(recv.addr.to_string())
        .args([&img, &img])
        .env("UDPIX_PASSPHRASE", "not-the-passphrase")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run udpix send");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("not sending the 1 remaining file:"), "{err}");
}

/// A text file named like an image.
fn text_named_png(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("notes.png");
    std::fs::write(&p, "not an image, only notes\n").expect("write");
    p
}

#[test]
fn json_has_an_object_for_an_unreadable_file_and_nulls_for_unknown_figures() {
    let recv = start_recv("127.0.0.1:0", &["--max-size", "1000"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = text_named_png(dir.path());
    let big = testdata().join("astronaut.png");
    let missing = Path::new("/nonexistent/nope.png");
    let out = send(recv.addr, &[missing, &big, &notes], &["--json"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let objects = json_lines(&lines);
    assert_eq!(objects.len(), 3, "{stdout}");
    let by_name = |n: &str| {
        objects
            .iter()
            .find(|o| o["name"] == n)
            .unwrap_or_else(|| panic!("no object for {n}: {stdout}"))
    };
    let gone = by_name("nope.png");
    assert_eq!(gone["ok"], false, "{gone}");
    assert!(
        gone["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot read")),
        "{gone}"
    );
    assert_eq!(gone["path"], "/nonexistent/nope.png", "{gone}");
    assert!(gone["goodput_bps"].is_null(), "{gone}");
    assert!(gone["rtt_ms"].is_null(), "{gone}");
    // Every object has the same fields.
    let keys = |o: &serde_json::Value| {
        let mut k: Vec<String> = o.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let refused = by_name("astronaut.png");
    assert_eq!(keys(gone), keys(refused));
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(refused["goodput_bps"].is_null(), "{refused}");
    // Content, not the name, says what a file is.
    let text = by_name("notes.png");
    assert_eq!(text["ok"], true, "{text}");
    assert_ne!(text["format"], "png", "{text}");
    assert!(
        text["goodput_bps"].as_f64().is_some_and(|g| g > 0.0),
        "{text}"
    );
}

#[test]
fn json_rtt_is_null_when_no_answer_came() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let img = testdata().join("chessboard_GRAY.png");
    let out = send(
        silent.local_addr().expect("addr"),
        &[&img],
        &["--json", "--timeout", "1s"],
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let objects = json_lines(&lines);
    assert_eq!(objects.len(), 1, "{stdout}");
    assert_eq!(objects[0]["ok"], false, "{stdout}");
    assert!(objects[0]["rtt_ms"].is_null(), "{stdout}");
    assert!(objects[0]["goodput_bps"].is_null(), "{stdout}");
    drop(silent);
}

/// What a demo left in its temp folder.
fn left_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .expect("read tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_demo_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmp_s = tmp.path().to_str().expect("utf8");
    let (code, _, err) = Proc::spawn_env(&["demo", "--loss", "0"], &[("TMPDIR", tmp_s)]).wait(T);
    assert_eq!(code, 0, "{err:?}");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new(), "{err:?}");
}

#[test]
fn an_interrupted_demo_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmp_s = tmp.path().to_str().expect("utf8");
    // A slow link, so the transfer is still under way when the signal comes.
    let demo = Proc::spawn_env(&["demo", "--rate-mbit", "0.05"], &[("TMPDIR", tmp_s)]);
    demo.wait_stderr("udpix demo: receiver on", T);
    assert!(
        !left_in(tmp.path()).is_empty(),
        "the demo writes under TMPDIR"
    );
    demo.terminate();
    let (code, _, err) = demo.wait(T);
    assert_eq!(code, 130, "{err:?}");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new(), "{err:?}");
}

#[test]
fn the_readme_asks_for_the_rust_the_crate_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("rust-version in Cargo.toml");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(
        readme.contains(&format!("Rust toolchain ({version} or newer)")),
        "README.md must ask for Rust {version}"
    );
    assert!(readme.contains("cargo install --path ."), "README.md");
}

#[test]
fn completions_and_the_manual_page_know_the_subcommands() {
    let (code, out, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err:?}");
    let script = joined(&out);
    assert!(
        script.contains("recv") && script.contains("netsim"),
        "{script}"
    );
    assert!(script.contains("--passphrase-file"), "{script}");
    let (code, out, err) = run(&["man"]);
    assert_eq!(code, 0, "{err:?}");
    let page = joined(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    for sub in [
        "recv",
        "send",
        "netsim",
        "demo",
        "bench",
        "tui",
        "completions",
    ] {
        assert!(page.contains(sub), "{sub} in the manual page: {page}");
    }
    let (code, _, err) = run(&["completions", "no-such-shell"]);
    assert_eq!(code, 2, "{err:?}");
}
