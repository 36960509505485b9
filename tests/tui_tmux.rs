//! The real binary's TUI in a real terminal: a private tmux server per test, keys sent with
//! `send-keys`, the screen read with `capture-pane`. `.ci/run` installs tmux when missing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(60);

/// A tmux server of our own (its own socket name), killed on drop.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(cmd: &str, cwd: &Path, w: u16, h: u16) -> Tmux {
        let name = format!("udpix-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args(["-L", &name, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &w.to_string(), "-y", &h.to_string(), "-c"])
            .arg(cwd)
            .arg(cmd)
            .env("TERM", "xterm-256color")
            .env_remove("COLORTERM")
            .status()
            .expect("tmux must be installed (.ci/run installs it)");
        assert!(ok.success(), "tmux new-session failed");
        Tmux { name }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.name, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colour and style escape codes.
    fn screen_with_styles(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.name, "capture-pane", "-p", "-e", "-t", "0"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// True while the program in the pane has asked for mouse reports.
    fn mouse_reporting(&self) -> bool {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.name,
                "display",
                "-p",
                "-t",
                "0",
                "#{mouse_any_flag}",
            ])
            .output()
            .expect("display");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["-L", &self.name, "send-keys", "-t", "0", k])
                .status()
                .expect("send-keys");
            assert!(ok.success());
            std::thread::sleep(Duration::from_millis(80));
        }
    }

    fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "screen never showed {needles:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.name, "kill-server"])
            .status();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    while start.elapsed() < T {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.is_empty()
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn tui_receiver_with_headless_sender() {
    let out = tempfile::tempdir().expect("tempdir");
    let exit = out.path().join("exit-code");
    let port = free_udp_port();
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:{port} --out {out}/in; echo $? > {exit}; sleep 30",
        out = out.path().display(),
        exit = exit.display()
    );
    std::fs::create_dir(out.path().join("in")).expect("mkdir");
    let tmux = Tmux::start(&cmd, out.path(), 100, 30);
    tmux.wait_for(&["Connection", "listening"], T);
    let img = testdata().join("chelsea.png");
    let sent = send(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        &[&img],
        &[],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // The Stats heading marks the verified image and the session; the log has its figures.
    let screen = tmux.wait_for(&["chelsea.png ✓", "session 1/1 ✓", "done:", "lost"], T);
    assert!(screen.contains("recovered"), "{screen}");
    assert_eq!(
        std::fs::read(out.path().join("in/chelsea.png")).expect("received"),
        std::fs::read(&img).expect("original")
    );
    tmux.keys(&["?"]);
    tmux.wait_for(&["Help: keys"], T);
    tmux.keys(&["Escape", "q"]);
    assert_eq!(wait_file(&exit).trim(), "0", "q must exit 0");
    // The alternate screen is gone: the terminal shows the shell's screen again.
    std::thread::sleep(Duration::from_millis(200));
    let after = tmux.screen();
    assert!(
        !after.contains("Connection"),
        "terminal not restored:\n{after}"
    );
}

#[test]
fn tui_sender_with_headless_receiver() {
    let work = tempfile::tempdir().expect("tempdir");
    let recv_out = tempfile::tempdir().expect("tempdir");
    let recv_out_s = recv_out.path().to_str().expect("utf8").to_owned();
    let recv = Proc::spawn(&[
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--out",
        &recv_out_s,
        "--once",
    ]);
    let addr = listening_addr(&recv);
    let exit = work.path().join("exit-code");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --connect {addr}; echo $? > {exit}; sleep 30",
        exit = exit.display()
    );
    // Browse the shared test images: `..` first, then the images in name order.
    let tmux = Tmux::start(&cmd, &testdata(), 100, 30);
    tmux.wait_for(&["Files:", "chelsea.png", "240.5 kB 451×300"], T);
    tmux.keys(&["Tab", "Down", "Down", "Down"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for(&["chelsea.png ✓", "all files sent", "done:"], T);
    assert!(screen.contains("rtt, rate"), "{screen}");
    let (code, _, _) = recv.wait(T);
    assert_eq!(code, 0);
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
    let cmd = format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui; sleep 30");
    let tmux = Tmux::start(&cmd, work.path(), 80, 24);
    let s = tmux.wait_for(&["Connection", "Files", "Stats", "Preview", "Chunks"], T);
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    let small = Tmux::start(&cmd, work.path(), 40, 12);
    small.wait_for(&["needs at least"], T);
}

#[test]
fn a_panic_gives_the_terminal_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let exit = work.path().join("exit-code");
    let stty = work.path().join("stty");
    // UDPIX_DEBUG_PANIC (debug builds only) panics once the first frame is drawn.
    let cmd = format!(
        "RUST_BACKTRACE=0 UDPIX_DEBUG_PANIC=1 UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui; echo $? > {exit}; stty -a > {stty}; sleep 30",
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
    let screen = tmux.wait_for(&["panicking on purpose"], T);
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
    let cmd =
        format!("UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out .; sleep 30");
    // The same screen in colour, then under NO_COLOR.
    let coloured = Tmux::start(&cmd, work.path(), 100, 30);
    coloured.wait_for(&["Connection", "listening"], T);
    assert!(
        !colour_codes(&coloured.screen_with_styles()).is_empty(),
        "the colour run shows no colour: the check below would prove nothing"
    );
    let plain = Tmux::start(&format!("NO_COLOR=1 {cmd}"), work.path(), 100, 30);
    plain.wait_for(&["Connection", "listening"], T);
    let codes = colour_codes(&plain.screen_with_styles());
    assert!(codes.is_empty(), "colours under NO_COLOR: {codes:?}");
}

#[test]
fn a_click_focuses_a_pane_and_quitting_gives_the_mouse_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let exit = work.path().join("exit-code");
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui; echo $? > {exit}; sleep 30",
        exit = exit.display()
    );
    let tmux = Tmux::start(&cmd, work.path(), 100, 30);
    tmux.wait_for(&["┏ Connection", "┌ Chunks"], T);
    assert!(tmux.mouse_reporting(), "the TUI asks for mouse reports");
    // A left press and release on the Chunks pane (rows 23-29 of 30), as a terminal sends
    // them in SGR mode: ESC [ < button ; column ; row M/m, 1-based.
    for seq in ["\x1b[<0;11;26M", "\x1b[<0;11;26m"] {
        let ok = Command::new("tmux")
            .args(["-L", &tmux.name, "send-keys", "-l", "-t", "0", seq])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }
    tmux.wait_for(&["┌ Connection", "┏ Chunks"], T);
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
    let cmd = format!(
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out /proc; sleep 30"
    );
    let tmux = Tmux::start(&cmd, cwd.path(), 120, 30);
    let screen = tmux.wait_for(&["cannot write in /proc (", "pick a folder you can"], T);
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
        "UDPIX_PASSPHRASE={PASSPHRASE} {BIN} tui --listen 127.0.0.1:0 --out {}; sleep 30",
        out.path().display()
    );
    let tmux = Tmux::start(&cmd, cwd.path(), 120, 30);
    tmux.wait_for(
        &[
            "● listening",
            "removed 1 partial file left by an earlier run (.udpix-dead01.part)",
        ],
        T,
    );
    assert!(!dead.exists(), "the dead part file is still there");
}
