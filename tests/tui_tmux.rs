//! The real binary's TUI in a real terminal: a private tmux server per test (its socket and
//! configuration in the test's own temporary folder), keys sent with `send-keys`, the screen
//! read with `capture-pane`. `.ci/run` installs tmux when missing.
//!
//! Nothing here sleeps to let something happen: each step waits, with a generous timeout, for
//! what shows that it did (a screen, a file, a line). Keys are sent so that they cannot run
//! together into another key: only keys whose bytes cannot start an escape sequence go out
//! back to back, and Escape goes alone, the next key only once the screen shows its effect
//! (an Esc followed at once by `q` reads as Alt-q).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_udpix");
const PASSPHRASE: &str = "e2e-test-passphrase";

/// Generous: a loaded two-core machine may be slow, and a passing run never waits this long.
const T: Duration = Duration::from_secs(60);
/// How often a screen or a file is looked at while waiting for it.
const POLL: Duration = Duration::from_millis(50);

/// The shared CC0 test images.
fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata")
}

/// A tmux server of our own, killed on drop; its socket and configuration live in `dir`.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Runs `cmd` in a `w`×`h` terminal. The pane outlives the command (`remain-on-exit`), so
    /// what it left on screen can still be read.
    fn start(cmd: &str, cwd: &Path, w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\n").expect("tmux.conf");
        let tmux = Tmux { dir };
        let ok = tmux
            .command()
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d"])
            .args(["-x", &w.to_string(), "-y", &h.to_string(), "-c"])
            .arg(cwd)
            .arg(cmd)
            .env("TERM", "xterm-256color")
            .env_remove("COLORTERM")
            .status()
            .expect("tmux must be installed (.ci/run installs it)");
        assert!(ok.success(), "tmux new-session failed");
        tmux
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.dir.path().join("socket"));
        c
    }

    fn capture(&self, styles: bool) -> String {
        let mut c = self.command();
        c.args(["capture-pane", "-p", "-t", "0"]);
        if styles {
            c.arg("-e");
        }
        let out = c.output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.capture(false)
    }

    /// The screen with its colour and style escape codes.
    fn screen_with_styles(&self) -> String {
        self.capture(true)
    }

    /// True while the program in the pane has asked for mouse reports.
    fn mouse_reporting(&self) -> bool {
        let out = self
            .command()
            .args(["display", "-p", "-t", "0", "#{mouse_any_flag}"])
            .output()
            .expect("display");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Sends keys none of which can start an escape sequence (characters, Tab, Enter, Space),
    /// so however the program's reads split them, each is read as itself.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(
                k.chars().count() == 1 && !k.starts_with('\x1b')
                    || ["Tab", "Enter", "Space"].contains(k),
                "{k:?} is an escape sequence: send it with `escape` (or use a key that is not)"
            );
        }
        let ok = self
            .command()
            .args(["send-keys", "-t", "0"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    /// Sends bytes as they are (a mouse report, say).
    fn literal(&self, bytes: &str) {
        let ok = self
            .command()
            .args(["send-keys", "-l", "-t", "0", bytes])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    /// Sends Escape alone and waits until `gone` is off the screen: only then can the next key
    /// not be read as part of it.
    fn escape(&self, gone: &str) {
        let ok = self
            .command()
            .args(["send-keys", "-t", "0", "Escape"])
            .status()
            .expect("send-keys");
        assert!(ok.success());
        self.wait_until(&format!("{gone:?} gone"), |s| !s.contains(gone));
    }

    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(start.elapsed() < T, "the screen never showed {what}:\n{s}");
            std::thread::sleep(POLL);
        }
    }

    fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_until(&format!("{needles:?}"), |s| {
            needles.iter().all(|n| s.contains(n))
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// Waits for a file the shell in the pane writes (an exit code, `stty` output).
fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    while start.elapsed() < T {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        std::thread::sleep(POLL);
    }
    panic!("{} never appeared", path.display());
}

/// The port in `…127.0.0.1:PORT…` on a screen.
fn port_after(screen: &str, prefix: &str) -> u16 {
    screen
        .split(prefix)
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no port after {prefix:?} on:\n{screen}"))
}

/// A headless `udpix` process; its stderr lines arrive on a channel.
struct Headless {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Headless {
    fn spawn(args: &[&str]) -> Headless {
        let mut child = Command::new(BIN)
            .args(args)
            .env("UDPIX_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn udpix");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Headless {
            child,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_line(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = T.saturating_sub(start.elapsed());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no stderr line with {needle:?}; got {:?}", self.seen),
            }
        }
    }

    /// Waits for the exit; its code.
    fn wait(mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < T, "udpix did not exit: {:?}", self.seen);
            // Polling for the exit; its stderr lines are kept meanwhile.
            match self.stderr.recv_timeout(POLL) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
            }
        }
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tui_receiver_with_headless_sender() {
    let out = tempfile::tempdir().expect("tempdir");
    let exit = out.path().join("exit-code");
    // Port 0: the system picks a free one, and the screen says which.
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out {out}/in; echo $? > {exit}",
        out = out.path().display(),
        exit = exit.display()
    );
    std::fs::create_dir(out.path().join("in")).expect("mkdir");
    let tmux = Tmux::start(&cmd, out.path(), 100, 30);
    let screen = tmux.wait_for(&["Connection", "● listening", "listening on 127.0.0.1:"]);
    let port = port_after(&screen, "Listen on  127.0.0.1:");
    assert_eq!(port, port_after(&screen, "listening on 127.0.0.1:"));
    let img = testdata().join("chelsea.png");
    let sent = Command::new(BIN)
        .args(["send", &format!("127.0.0.1:{port}")])
        .arg(&img)
        .env("UDPIX_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output()
        .expect("run udpix send");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // The Stats heading marks the verified image and the session; the log has its figures.
    let screen = tmux.wait_for(&["chelsea.png ✓", "session 1/1 ✓", "done:", "lost"]);
    assert!(screen.contains("recovered"), "{screen}");
    assert_eq!(
        std::fs::read(out.path().join("in/chelsea.png")).expect("received"),
        std::fs::read(&img).expect("original")
    );
    tmux.keys(&["?"]);
    tmux.wait_for(&["Help: keys"]);
    tmux.escape("Help: keys");
    tmux.keys(&["q"]);
    assert_eq!(wait_file(&exit).trim(), "0", "q must exit 0");
    // The alternate screen is gone: the terminal shows the main screen again.
    tmux.wait_until("the main screen again", |s| !s.contains("Connection"));
}

#[test]
fn tui_sender_with_headless_receiver() {
    let work = tempfile::tempdir().expect("tempdir");
    let recv_out = tempfile::tempdir().expect("tempdir");
    let recv_out_s = recv_out.path().to_str().expect("utf8").to_owned();
    let mut recv = Headless::spawn(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--out",
        &recv_out_s,
        "--once",
    ]);
    let line = recv.wait_line("listening on");
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse address from {line:?}"));
    let exit = work.path().join("exit-code");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --connect {addr}; echo $? > {exit}",
        exit = exit.display()
    );
    // Browse the shared test images: `..` first, then the images in name order.
    let tmux = Tmux::start(&cmd, &testdata(), 100, 30);
    tmux.wait_for(&["Files:", "chelsea.png", "240.5 kB 451×300"]);
    // To the Files pane, down to chelsea.png (j, not ↓: an arrow is an escape sequence), mark
    // it; the mark shows the right file was picked before Enter sends it.
    tmux.keys(&["Tab", "j", "j", "j", "Space"]);
    tmux.wait_for(&["✓ chelsea.png"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for(&["chelsea.png ✓", "all files sent", "done:"]);
    assert!(screen.contains("rtt, rate"), "{screen}");
    assert_eq!(recv.wait(), 0);
    assert_eq!(
        std::fs::read(recv_out.path().join("chelsea.png")).expect("received"),
        std::fs::read(testdata().join("chelsea.png")).expect("original")
    );
    tmux.keys(&["q"]);
    assert_eq!(wait_file(&exit).trim(), "0");
}

#[test]
fn tui_fits_80x24_and_explains_a_tiny_terminal() {
    let work = tempfile::tempdir().expect("tempdir");
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui");
    let tmux = Tmux::start(&cmd, work.path(), 80, 24);
    let s = tmux.wait_for(&["Connection", "Files", "Stats", "Preview", "Chunks"]);
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    let small = Tmux::start(&cmd, work.path(), 40, 12);
    small.wait_for(&["needs at least"]);
}

#[test]
fn a_panic_gives_the_terminal_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let exit = work.path().join("exit-code");
    let stty = work.path().join("stty");
    // UDPIX_DEBUG_PANIC (debug builds only) panics once the first frame is drawn.
    let cmd = format!(
        "RUST_BACKTRACE=0 UDPIX_DEBUG_PANIC=1 UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui; echo $? > {exit}; stty -a > {stty}",
        exit = exit.display(),
        stty = stty.display()
    );
    let tmux = Tmux::start(&cmd, work.path(), 100, 30);
    assert_eq!(wait_file(&exit).trim(), "101", "a panic exits with 101");
    let modes = wait_file(&stty);
    // Cooked mode again: line editing and echo on.
    for mode in [" icanon", " echo ", " icrnl"] {
        assert!(modes.contains(mode), "tty left without{mode}:\n{modes}");
    }
    // The main screen is back and the panic message can be read on it.
    let screen = tmux.wait_for(&["panicking on purpose"]);
    assert!(
        !tmux.mouse_reporting(),
        "mouse reporting left on after the panic"
    );
    assert!(
        !screen.contains("Connection"),
        "alternate screen left up:\n{screen}"
    );
}

/// SGR parameter lists in `screen` that set a colour (30-37, 38;..., 40-47, 48;..., 90-107).
fn colour_codes(screen: &str) -> Vec<String> {
    screen
        .split("\x1b[")
        .skip(1)
        .filter_map(|s| s.split_once('m').map(|(p, _)| p.to_owned()))
        .filter(|p| {
            p.split(';').any(|n| {
                n.parse::<u32>().is_ok_and(|n| {
                    (30..=49).contains(&n) && n != 39 && n != 49 || (90..=107).contains(&n)
                })
            })
        })
        .collect()
}

#[test]
fn no_color_draws_without_colours() {
    let work = tempfile::tempdir().expect("tempdir");
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out .");
    // The same screen in colour, then under NO_COLOR.
    let coloured = Tmux::start(&cmd, work.path(), 100, 30);
    coloured.wait_for(&["Connection", "listening"]);
    assert!(
        !colour_codes(&coloured.screen_with_styles()).is_empty(),
        "the colour run shows no colour: the check below would prove nothing"
    );
    let plain = Tmux::start(&format!("NO_COLOR=1 {cmd}"), work.path(), 100, 30);
    plain.wait_for(&["Connection", "listening"]);
    let codes = colour_codes(&plain.screen_with_styles());
    assert!(codes.is_empty(), "colours under NO_COLOR: {codes:?}");
}

#[test]
fn a_click_focuses_a_pane_and_quitting_gives_the_mouse_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let exit = work.path().join("exit-code");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui; echo $? > {exit}",
        exit = exit.display()
    );
    let tmux = Tmux::start(&cmd, work.path(), 100, 30);
    tmux.wait_for(&["┏ Connection", "┌ Chunks"]);
    assert!(tmux.mouse_reporting(), "the TUI asks for mouse reports");
    // A left press and release on the Chunks pane (rows 23-29 of 30), as a terminal sends
    // them in SGR mode: ESC [ < button ; column ; row M/m, 1-based. Each report is complete
    // in itself.
    tmux.literal("\x1b[<0;11;26M\x1b[<0;11;26m");
    tmux.wait_for(&["┌ Connection", "┏ Chunks"]);
    tmux.keys(&["q"]);
    assert_eq!(wait_file(&exit).trim(), "0");
    assert!(
        !tmux.mouse_reporting(),
        "mouse reporting left on after exit"
    );
}

#[test]
fn listen_refuses_a_folder_no_one_can_write_in() {
    // No one can create files in /proc, not even root (which ignores a read-only mode).
    if !Path::new("/proc/self").is_dir() {
        eprintln!("no /proc here: skipping");
        return;
    }
    let cwd = tempfile::tempdir().expect("tempdir");
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out /proc");
    let tmux = Tmux::start(&cmd, cwd.path(), 120, 30);
    let screen = tmux.wait_for(&["cannot write in /proc (", "pick a folder you can"]);
    assert!(!screen.contains("● listening"), "{screen}");
}

#[test]
fn listen_removes_the_part_files_dead_receivers_left() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    // What a killed receiver leaves: a part file nobody holds the lock of.
    let dead = out.path().join(".udpix-dead01.part");
    std::fs::write(&dead, b"half an image").expect("write");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out {}",
        out.path().display()
    );
    let tmux = Tmux::start(&cmd, cwd.path(), 120, 30);
    tmux.wait_for(&[
        "● listening",
        "removed 1 partial file left by an earlier run (.udpix-dead01.part)",
    ]);
    assert!(!dead.exists(), "the dead part file is still there");
}

// ---------------------------------------------------------------------------------------------
// Stop, cancel, and quitting mid-transfer: the other side is told at once. Its own timeout is
// set far beyond these waits, so only the message can explain its prompt verdict.

/// Seeded noise: bytes that no codec shrinks, for a transfer that lasts at 2 Mbit/s.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A TUI listening in a fresh folder, and a headless sender slowly sending it 4 MiB.
fn tui_receiving(work: &Path) -> (Tmux, Headless, PathBuf) {
    let exit = work.join("exit-code");
    std::fs::create_dir(work.join("in")).expect("mkdir");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out {w}/in; echo $? > {e}",
        w = work.display(),
        e = exit.display()
    );
    let tmux = Tmux::start(&cmd, work, 120, 40);
    let screen = tmux.wait_for(&["listening on 127.0.0.1:"]);
    let port = port_after(&screen, "listening on 127.0.0.1:");
    let big = work.join("big.bin");
    std::fs::write(&big, noise(4 << 20)).expect("write");
    let sender = Headless::spawn(&[
        "send",
        &format!("127.0.0.1:{port}"),
        big.to_str().expect("utf8"),
        "--max-rate",
        "2mbit",
        "--timeout",
        "10m",
    ]);
    // The Stats heading, which stays (the log's note scrolls away under the chunks).
    tmux.wait_for(&["big.bin", "session 0/1"]);
    (tmux, sender, exit)
}

#[test]
fn stopping_the_tui_receiver_tells_the_sender_and_quitting_first_asks() {
    let work = tempfile::tempdir().expect("tempdir");
    let (tmux, mut sender, exit) = tui_receiving(work.path());
    // q mid-transfer asks; n goes on.
    tmux.keys(&["q"]);
    tmux.wait_for(&["Quit udpix?", "the sender is told"]);
    tmux.keys(&["n"]);
    tmux.wait_until("the question gone", |s| !s.contains("Quit udpix?"));
    // x stops listening: the sender hears of it at once.
    tmux.keys(&["x"]);
    sender.wait_line("cancelled by the receiver: the receiver was stopped");
    assert_eq!(sender.wait(), 1);
    tmux.wait_for(&["stopped listening on 127.0.0.1:", "[ Listen ]"]);
    // Nothing runs now: q quits without asking.
    tmux.keys(&["q"]);
    assert_eq!(wait_file(&exit).trim(), "0");
    wait_empty(&work.path().join("in"));
}

#[test]
fn quitting_the_tui_mid_transfer_tells_the_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (tmux, mut sender, exit) = tui_receiving(work.path());
    tmux.keys(&["q"]);
    tmux.wait_for(&["Quit udpix?"]);
    tmux.keys(&["y"]);
    assert_eq!(wait_file(&exit).trim(), "0");
    sender.wait_line("cancelled by the receiver: the receiver was stopped");
    assert_eq!(sender.wait(), 1);
}

/// A headless receiver writing into `out`, behind a 2 Mbit/s netsim link (the TUI sends at
/// full speed: the link makes a send last); the address to send to is the link's.
fn receiver_behind_a_slow_link(out: &Path) -> (Headless, Headless, String) {
    let mut recv = Headless::spawn(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--out",
        out.to_str().expect("utf8"),
        "--idle-timeout",
        "10m",
    ]);
    let line = recv.wait_line("listening on");
    let to = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("an address")
        .to_owned();
    let mut netsim = Headless::spawn(&[
        "netsim",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to,
        "--rate",
        "2mbit",
    ]);
    let banner = netsim.wait_line("udpix netsim:");
    let via = banner
        .trim_start_matches("udpix netsim: ")
        .split(' ')
        .next()
        .expect("netsim's address")
        .to_owned();
    (recv, netsim, via)
}

#[test]
fn cancelling_a_tui_send_tells_the_receiver() {
    let work = tempfile::tempdir().expect("tempdir");
    let in_dir = tempfile::tempdir().expect("tempdir");
    let (mut recv, _netsim, via) = receiver_behind_a_slow_link(in_dir.path());
    // An image the file browser lists: seeded noise as a 1024×1024 PNG (about 3 MB).
    let img = image::RgbImage::from_raw(1024, 1024, noise(1024 * 1024 * 3)).expect("image");
    img.save(work.path().join("noise.png")).expect("png");
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --connect {via}");
    let tmux = Tmux::start(&cmd, work.path(), 120, 40);
    tmux.wait_for(&["Files:", "noise.png"]);
    tmux.keys(&["Tab", "j", "Space"]);
    tmux.wait_for(&["✓ noise.png"]);
    tmux.keys(&["Enter"]);
    // Accepted: data flows.
    tmux.wait_for(&["[ Cancel the send ]", "● connected to"]);
    tmux.keys(&["x"]);
    recv.wait_line("cancelled by the sender: its user cancelled the send");
    tmux.wait_for(&["send cancelled: 1 file not delivered"]);
    wait_empty(in_dir.path());
}

/// `c` on the file being sent cancels it alone: the receiver is told and keeps nothing of
/// it, and the next marked file still arrives, over the same login.
#[test]
fn cancelling_one_file_of_a_tui_send_lets_the_others_arrive() {
    let work = tempfile::tempdir().expect("tempdir");
    let in_dir = tempfile::tempdir().expect("tempdir");
    let (mut recv, _netsim, via) = receiver_behind_a_slow_link(in_dir.path());
    let img = image::RgbImage::from_raw(1024, 1024, noise(1024 * 1024 * 3)).expect("image");
    img.save(work.path().join("noise.png")).expect("png");
    let tiny = testdata().join("chelsea.png");
    std::fs::copy(&tiny, work.path().join("tiny.png")).expect("copy");
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --connect {via}");
    let tmux = Tmux::start(&cmd, work.path(), 120, 40);
    tmux.wait_for(&["Files:", "noise.png", "tiny.png"]);
    // Mark both (Space moves down), back up to noise.png, send.
    tmux.keys(&["Tab", "j", "Space", "Space", "k"]);
    tmux.wait_for(&["✓ noise.png", "✓ tiny.png"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["[ Cancel the send ]", "● connected to", "c cancel file"]);
    tmux.keys(&["c"]);
    recv.wait_line("cancelled by the sender: its user cancelled this file");
    // The receiver renames a file into place only once its hash verified.
    let want = std::fs::read(&tiny).expect("chelsea");
    let start = Instant::now();
    while std::fs::read(in_dir.path().join("tiny.png")).ok().as_ref() != Some(&want) {
        assert!(start.elapsed() < T, "tiny.png never arrived whole");
        std::thread::sleep(POLL);
    }
    tmux.wait_for(&[
        "State      cancelled: its user cancelled this",
        "session 1/2 ✓ 1✗",
    ]);
    let names: Vec<String> = std::fs::read_dir(in_dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tiny.png"], "only the file not cancelled is kept");
}

/// Waits until nothing is left in `dir` (a cancelled transfer's part file goes with it).
fn wait_empty(dir: &Path) {
    let start = Instant::now();
    while std::fs::read_dir(dir).expect("dir").next().is_some() {
        assert!(start.elapsed() < T, "{} still holds files", dir.display());
        std::thread::sleep(POLL);
    }
}

/// `udpix recv --show` in a plain terminal (no graphics protocol: tmux without one outside)
/// prints each verified image in half blocks below its line, aspect kept.
#[test]
fn recv_show_prints_each_verified_image_below_its_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("in");
    std::fs::create_dir(&out).expect("mkdir");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} recv --once --show --listen 127.0.0.1:0 --out {}",
        out.display()
    );
    let tmux = Tmux::start(&cmd, work.path(), 100, 40);
    let screen = tmux.wait_for(&["listening on 127.0.0.1:"]);
    let port = port_after(&screen, "listening on 127.0.0.1:");
    let image = testdata().join("astronaut.png");
    let sender = Headless::spawn(&[
        "send",
        &format!("127.0.0.1:{port}"),
        image.to_str().expect("utf8"),
    ]);
    assert_eq!(sender.wait(), 0);
    // --once exits once the image is printed; the pane keeps what it left.
    let screen = tmux.wait_until("the image's last row", |s| {
        s.lines().filter(|l| is_block_row(l)).count() >= 24
    });
    let lines: Vec<&str> = screen.lines().collect();
    let line = lines
        .iter()
        .position(|l| l.starts_with("received astronaut.png"))
        .unwrap_or_else(|| panic!("no summary line:\n{screen}"));
    let first = (line..lines.len())
        .find(|&i| is_block_row(lines[i]))
        .expect("image rows");
    // The 512×512 image in at most 24 rows of 100 columns: 24 rows of 48 columns.
    let rows: Vec<&str> = lines[first..]
        .iter()
        .copied()
        .take_while(|l| is_block_row(l))
        .collect();
    assert_eq!(rows.len(), 24, "{screen}");
    assert!(
        rows.iter().all(|r| r.trim_end().chars().count() == 48),
        "{screen}"
    );
    // Drawn in colour, and not one colour: the picture, not a block of paint.
    let colours = colour_codes(&tmux.screen_with_styles());
    let distinct: std::collections::HashSet<_> = colours.iter().collect();
    assert!(distinct.len() > 20, "{distinct:?}");
}

/// A row of half blocks and nothing else.
fn is_block_row(line: &str) -> bool {
    let t = line.trim_end();
    !t.is_empty() && t.chars().all(|c| matches!(c, '▄' | '▀' | ' '))
}
