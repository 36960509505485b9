//! `-v`, `-q`, `RUST_LOG` and `--log-file`, through the real binary: diagnostics on stderr
//! for subcommands, in a file for the TUI, `RUST_LOG` over the flags, and `-q` leaving only
//! results and errors.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_udpix");

/// `udpix` with HOME and the XDG folders in `home` and no `UDPIX_*` or `RUST_LOG` from the
/// caller, plus `env`.
fn udpix(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("UDPIX_") || k == "RUST_LOG" || k.starts_with("XDG_") || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Reads `child`'s stderr on a thread until a line containing `needle` arrives, and returns
/// that line and a receiver of the lines after it. Kills the child and fails the test if the
/// line does not come within a minute (generous, for a loaded machine; it returns as soon as
/// the line is there) or stderr ends first.
fn stderr_line(
    child: &mut std::process::Child,
    needle: &str,
) -> (String, std::sync::mpsc::Receiver<String>) {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return (line, rx),
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no stderr line with {needle:?} ({e}); got {seen:?}");
            }
        }
    }
}

fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let out = udpix(home, args, env).output().expect("run udpix");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// A config file in `home`, so that resolving it logs "config file read".
fn config_file(home: &Path) -> String {
    let path = home.join("c.toml");
    std::fs::write(&path, "out = \"/x\"\n").expect("write");
    path.to_str().expect("utf8").to_owned()
}

#[test]
fn verbose_logs_to_stderr_and_the_default_is_silent() {
    let home = tempfile::tempdir().expect("tempdir");
    let conf = config_file(home.path());
    let env = [("UDPIX_CONFIG", conf.as_str())];
    let (out, err) = run(home.path(), &["config"], &env);
    assert!(out.status.success());
    assert_eq!(err, "", "warnings only by default");
    let (out, err) = run(home.path(), &["-v", "config"], &env);
    assert!(out.status.success());
    assert!(
        err.contains("INFO") && err.contains("config file read"),
        "{err}"
    );
    assert!(err.contains(&conf), "{err}");
    // -v is info: no debug events.
    assert!(!err.contains("DEBUG"), "{err}");
    let (_, err) = run(home.path(), &["-vv", "config"], &[]);
    assert!(
        err.contains("DEBUG") && err.contains("no config file"),
        "{err}"
    );
}

#[test]
fn rust_log_overrides_the_flags() {
    let home = tempfile::tempdir().expect("tempdir");
    let conf = config_file(home.path());
    let (_, err) = run(
        home.path(),
        &["-vv", "config"],
        &[("UDPIX_CONFIG", &conf), ("RUST_LOG", "off")],
    );
    assert_eq!(err, "", "RUST_LOG=off beats -vv");
    let (_, err) = run(
        home.path(),
        &["-q", "config"],
        &[("UDPIX_CONFIG", &conf), ("RUST_LOG", "udpix=info")],
    );
    assert!(err.contains("config file read"), "RUST_LOG beats -q: {err}");
}

#[test]
fn log_file_takes_the_diagnostics_off_stderr() {
    let home = tempfile::tempdir().expect("tempdir");
    let conf = config_file(home.path());
    let log = home.path().join("logs/udpix.log");
    let (out, err) = run(
        home.path(),
        &["-v", "--log-file", log.to_str().expect("utf8"), "config"],
        &[("UDPIX_CONFIG", &conf)],
    );
    assert!(out.status.success(), "{err}");
    assert_eq!(err, "");
    let text = std::fs::read_to_string(&log).expect("log file made, folder and all");
    assert!(text.contains("config file read"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text:?}"
    );
}

#[test]
fn the_tui_logs_to_a_file_under_the_state_folder() {
    // Without a terminal the TUI exits 2 after reading its settings, which it logs.
    let home = tempfile::tempdir().expect("tempdir");
    let conf = config_file(home.path());
    let state = home.path().join("state");
    let (out, err) = run(
        home.path(),
        &["-v", "tui"],
        &[
            ("UDPIX_CONFIG", &conf),
            ("XDG_STATE_HOME", state.to_str().expect("utf8")),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("config file read"),
        "the TUI's log is not on stderr: {err}"
    );
    let text = std::fs::read_to_string(state.join("udpix/udpix.log")).expect("TUI log");
    assert!(text.contains("config file read"), "{text}");
    // Without XDG_STATE_HOME: under ~/.local/state.
    let (_, _) = run(home.path(), &["-v", "tui"], &[("UDPIX_CONFIG", &conf)]);
    let text = std::fs::read_to_string(home.path().join(".local/state/udpix/udpix.log"))
        .expect("TUI log under HOME");
    assert!(text.contains("config file read"), "{text}");
}

#[test]
fn quiet_leaves_results_and_errors() {
    let home = tempfile::tempdir().expect("tempdir");
    // An error is still told.
    let (out, err) = run(
        home.path(),
        &["-q", "recv", "--insecure", "--out", "/nonexistent/udpix-in"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("/nonexistent/udpix-in"), "{err}");

    // A transfer: the receiver's status lines and summary go, its result line stays. Its
    // log (RUST_LOG beats -q) says when it is bound and where.
    let inbox = home.path().join("in");
    std::fs::create_dir(&inbox).expect("mkdir");
    let mut receiver = udpix(
        home.path(),
        &[
            "-q",
            "recv",
            "--once",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--out",
            inbox.to_str().expect("utf8"),
        ],
        &[("RUST_LOG", "udpix=info")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn recv");
    let (line, rest) = stderr_line(&mut receiver, "socket bound");
    let at = line.find("local=").expect("local=") + "local=".len();
    let addr = line[at..]
        .split_whitespace()
        .next()
        .expect("addr")
        .to_owned();
    let image = home.path().join("q.png");
    image::RgbImage::from_pixel(3, 3, image::Rgb([1, 2, 3]))
        .save(&image)
        .expect("write png");
    let (sent, send_err) = run(
        home.path(),
        &["send", "--insecure", &addr, image.to_str().expect("utf8")],
        &[],
    );
    if !sent.status.success() {
        let _ = receiver.kill();
    }
    assert!(sent.status.success(), "{send_err}");
    let mut stdout = String::new();
    receiver
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    assert!(receiver.wait().expect("wait").success());
    // The thread ends at end of file, after the receiver exits.
    let seen: Vec<String> = rest.iter().collect();
    let seen = seen.join("\n");
    assert!(
        stdout.contains("q.png"),
        "the result line stays: {stdout:?}"
    );
    assert!(!seen.contains("listening on"), "{seen}");
    assert!(
        !seen.contains("images received") && !seen.contains("image received"),
        "{seen}"
    );
}
