//! Command-line interface: clap definitions; each subcommand lives in its own module.

pub mod bench;
pub mod demo;
pub mod manual;
pub mod netsim;
pub mod progress;
pub mod recv;
pub mod send;
pub mod show;
pub mod shutdown;
pub mod tui;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Set by `-q`: status lines and progress bars are left out.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `-q` for the whole run.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// True under `-q`: print only results and errors.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Printed by both sides when `--insecure` is on.
pub const INSECURE_WARNING: &str = "udpix: warning: --insecure: no login and no encryption; \
anyone who can reach the port can send files, and anyone on the path can read them";

/// Stream images between machines over UDP, fast on lossy links.
#[derive(Debug, Parser)]
#[command(name = "udpix", version, about, long_about = None, after_help = SETTINGS_HELP)]
pub struct Cli {
    /// What to do; without one, on a terminal, the full-screen UI opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// More diagnostics: -v info, -vv debug, -vvv trace ($RUST_LOG, when set, wins). On
    /// stderr, except in the TUI: there in $XDG_STATE_HOME/udpix/udpix.log
    /// (~/.local/state/udpix/udpix.log) or --log-file.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only results and errors: no status lines or progress bars, diagnostics at error level
    /// (a generated passphrase and the --insecure warning are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Write the diagnostics to this file (appended) instead of stderr or the TUI's log.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Read settings from this TOML file (it must exist) instead of
    /// ~/.config/udpix/config.toml [env: UDPIX_CONFIG].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// How settings are layered, shown under `udpix --help`.
const SETTINGS_HELP: &str = "\
Settings shared by recv, send and the TUI (listen, connect, out, image_protocol, colors, mouse)
come from, first match wins: the command line, then UDPIX_LISTEN, UDPIX_CONNECT, UDPIX_OUT,
UDPIX_IMAGE_PROTOCOL, UDPIX_COLORS, UDPIX_MOUSE, then the config file
($XDG_CONFIG_HOME/udpix/config.toml, else ~/.config/udpix/config.toml, or --config), then
the built-in defaults. `udpix config` prints each value and where it came from.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait for senders and write each image received into a folder.
    Recv(RecvArgs),
    /// Send image files to a receiver.
    Send(SendArgs),
    /// Run a UDP proxy that impairs traffic like a bad link (loss, delay, rate, ...).
    Netsim(Box<NetsimArgs>),
    /// Show udpix at work: receiver, lossy link and sender on loopback, in one process.
    Demo(DemoArgs),
    /// Measure transfer times against the link's limit over emulated links (loopback).
    Bench(BenchArgs),
    /// Open the full-screen terminal UI (receive and send, live chunks, stats, preview).
    Tui(TuiArgs),
    /// Print a completion script for a shell, e.g. `udpix completions bash > /etc/bash_completion.d/udpix`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `udpix man > ~/.local/share/man/man1/udpix.1`.
    Man,
    /// Print the settings in force (as config-file lines) and where each came from.
    Config,
}

/// `udpix completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `udpix recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Address and port to listen on, port 7878 if left out (use [::]:PORT for IPv6 and IPv4)
    /// [env: UDPIX_LISTEN; config: listen; default: 0.0.0.0:7878].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Folder to write received images into [env: UDPIX_OUT; config: out; default: .].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit after the first transfer: 0 if its image verified, 1 if it failed.
    #[arg(long)]
    pub once: bool,
    /// Print each verified image in the terminal below its line (kitty, iTerm2, sixel or
    /// half blocks, as --image-protocol says).
    #[arg(long)]
    pub show: bool,
    /// How --show draws [env: UDPIX_IMAGE_PROTOCOL; config: image_protocol; default: auto].
    #[arg(long, value_enum, requires = "show")]
    pub image_protocol: Option<udpix::config::ImageProtocol>,
    /// Also keep the newest verified image under this fixed name in --out (e.g.
    /// latest.jpg), replaced in one step, for a viewer or web page to watch.
    #[arg(long, value_name = "NAME", value_parser = latest_name)]
    pub latest: Option<String>,
    /// Keep only the newest N images this run received, deleting older ones (a stream).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
    /// Largest image accepted (e.g. 512MiB, 10MB).
    #[arg(long, env = "UDPIX_MAX_SIZE", default_value = "512MiB", value_parser = udpix::units::size)]
    pub max_size: u64,
    /// Most transfers served at once.
    #[arg(long, env = "UDPIX_MAX_SESSIONS", default_value_t = 64)]
    pub max_sessions: usize,
    /// Drop a transfer whose sender is silent this long (e.g. 10s).
    #[arg(long, env = "UDPIX_IDLE_TIMEOUT", default_value = "10s", value_parser = udpix::units::duration)]
    pub idle_timeout: std::time::Duration,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Logins one address may have in progress (answered, not yet confirmed); each is
    /// released when confirmed or after 2 s. Past 32 in all, senders must first return a
    /// cookie.
    #[arg(long, env = "UDPIX_MAX_HANDSHAKES", default_value_t = 4)]
    pub max_handshakes: usize,
    /// Transfers one address (an IPv4 address, an IPv6 /64) may have at once.
    #[arg(long, env = "UDPIX_MAX_SESSIONS_PER_ADDR", default_value_t = 8)]
    pub max_sessions_per_addr: usize,
    /// Drop a transfer that gains less than this over 10 s (e.g. 8kbit; 0 never drops).
    #[arg(long, env = "UDPIX_MIN_RATE", default_value = "8kbit", value_parser = rate_or_zero)]
    pub min_rate: f64,
    /// Most bookkeeping memory per transfer (e.g. 1MiB); bounds what tiny chunks could cost.
    #[arg(long, env = "UDPIX_MAX_SESSION_MEMORY", default_value = "1MiB", value_parser = udpix::units::size)]
    pub max_session_memory: u64,
    /// Failed logins from one address per minute before it is made to wait.
    #[arg(long, env = "UDPIX_MAX_FAILURES", default_value_t = 5)]
    pub max_failures: u32,
}

/// `udpix send`.
#[derive(Debug, Args)]
#[command(override_usage = "udpix send [OPTIONS] HOST[:PORT] FILE...\n       \
    udpix send [OPTIONS] FILE...   (the receiver from $UDPIX_CONNECT or the config file)")]
pub struct SendArgs {
    /// The receiver, HOST or HOST:PORT (port 7878 if left out; e.g. 192.0.2.7, [::1]:7878,
    /// camera.local), then the image files to send, one after another. HOST may be left out
    /// when $UDPIX_CONNECT or `connect` in the config file names the receiver and the first
    /// argument is an existing file.
    #[arg(required = true, value_name = "HOST FILE")]
    pub targets: Vec<String>,
    /// The receiver, resolved from `targets` and the settings (see `udpix::config::send_targets`).
    #[arg(skip)]
    pub to: String,
    /// The files, resolved from `targets`.
    #[arg(skip)]
    pub files: Vec<PathBuf>,
    /// Largest UDP payload in bytes; 1200 fits nearly every path.
    #[arg(long, env = "UDPIX_MTU", default_value_t = 1200, value_parser = clap::value_parser!(u16).range(64..=65507))]
    pub mtu: u16,
    /// Never send faster than this (e.g. 20mbit); unlimited by default.
    #[arg(long, env = "UDPIX_MAX_RATE", value_parser = udpix::units::rate)]
    pub max_rate: Option<f64>,
    /// Give up when the receiver does not answer for this long (e.g. 10s).
    #[arg(long, env = "UDPIX_TIMEOUT", default_value = "10s", value_parser = udpix::units::duration)]
    pub timeout: std::time::Duration,
    /// Keep going: watch the one folder given and send each image written into it from
    /// now on, once its writer has finished it, in the order they appear, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how long a file's size and time must stay the same before it counts
    /// as written (longer for writers that pause, e.g. over NFS).
    #[arg(long, default_value = "300ms", value_parser = udpix::units::duration, requires = "watch")]
    pub settle: std::time::Duration,
    /// Send the files given (or the images in the folder given) over and over, until
    /// Ctrl-C: a test stream, or a slide show.
    #[arg(long = "loop", conflicts_with = "watch")]
    pub repeat: bool,
    /// Queue a file every D (e.g. 100ms), as a camera takes its frames; with --loop or
    /// files given.
    #[arg(long, value_parser = udpix::units::duration, conflicts_with_all = ["watch", "fps"])]
    pub interval: Option<std::time::Duration>,
    /// Queue N files a second: --interval 1/N.
    #[arg(long, value_parser = fps, conflicts_with = "watch")]
    pub fps: Option<std::time::Duration>,
    /// Scale each image down (aspect kept) so neither side is longer than N pixels, and
    /// send that instead of the file's bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(16..))]
    pub max_dim: Option<u32>,
    /// Re-encode each image into this format before sending.
    #[arg(long, value_enum)]
    pub format: Option<udpix::reencode::Target>,
    /// JPEG quality when re-encoding into JPEG, 1 to 100 (default 85).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,
    /// A stream's image (--watch, --loop, --interval, --fps) not delivered within this long
    /// of being queued gives way as soon as a newer one is ready (the newest wins; the
    /// receiver keeps nothing of it).
    #[arg(long, value_parser = udpix::units::duration)]
    pub deadline: Option<std::time::Duration>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `udpix netsim`. Each impairment takes one value for both directions or `UP:DOWN`
/// (up = towards --to).
#[derive(Debug, Args)]
pub struct NetsimArgs {
    /// Where clients send their datagrams, HOST[:PORT] (port 7878 if left out).
    #[arg(long, value_parser = udpix::addr::listen)]
    pub listen: SocketAddr,
    /// Where the datagrams go (the real receiver), HOST[:PORT] (port 7878 if left out).
    #[arg(long, value_parser = udpix::addr::peer)]
    pub to: SocketAddr,
    /// Mean loss, e.g. 10% or 0.1 (or 10%:0 for up only).
    #[arg(long, default_value = "0")]
    pub loss: String,
    /// Mean loss burst in packets (Gilbert-Elliott; same mean loss). 1 = independent losses.
    #[arg(long, default_value = "1")]
    pub burst: String,
    /// One-way delay, e.g. 20ms.
    #[arg(long, default_value = "0ms")]
    pub delay: String,
    /// Extra random delay up to this much per packet, e.g. 5ms (reorders packets too).
    #[arg(long, default_value = "0ms")]
    pub jitter: String,
    /// Link rate, e.g. 20mbit (token bucket counting IP+UDP headers); unlimited by default.
    #[arg(long)]
    pub rate: Option<String>,
    /// Packets the rate-limited queue holds before dropping (drop-tail).
    #[arg(long, default_value = "100")]
    pub queue: String,
    /// Fraction of packets held back 1-5 ms so later ones overtake them.
    #[arg(long, default_value = "0")]
    pub reorder: String,
    /// Fraction of packets delivered twice.
    #[arg(long, default_value = "0")]
    pub duplicate: String,
    /// Fraction of packets with one bit flipped.
    #[arg(long, default_value = "0")]
    pub corrupt: String,
    /// Seed for every random choice (same seed, same fates).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print counters this often (e.g. 5s) as well as on exit.
    #[arg(long, value_parser = udpix::units::duration)]
    pub stats_interval: Option<std::time::Duration>,
}

/// `udpix demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Images to send (a generated 1024x768 PNG when none are given).
    pub files: Vec<PathBuf>,
    /// Where the receiver writes (a fresh folder under the system temp dir by default).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Mean loss on the emulated link, e.g. 10% or 0.1.
    #[arg(long, default_value = "10%", value_parser = udpix::units::probability)]
    pub loss: f64,
    /// Rate of the emulated link in Mbit/s.
    #[arg(long, default_value_t = 20.0)]
    pub rate_mbit: f64,
}

/// `udpix bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A small matrix that runs in seconds (what the test suite runs).
    #[arg(long)]
    pub quick: bool,
    /// Runs of each case; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: u32,
    /// Run only the cases whose name contains this (repeatable), e.g. --case 10%.
    #[arg(long)]
    pub case: Vec<String>,
    /// Seed of the first run; run K uses SEED + K.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object per case (and per run with --runs) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also print every run, not only the summary.
    #[arg(long)]
    pub runs: bool,
    /// Run the cases in the in-memory simulator (virtual time: exact, repeatable, fast)
    /// instead of over loopback sockets; the files of a case each get their own session.
    #[arg(long)]
    pub sim: bool,
    /// Largest UDP payload the sender uses (default: udpix send's).
    #[arg(long, value_parser = clap::value_parser!(u16).range(64..=65507))]
    pub mtu: Option<u16>,
}

/// Flags `recv` and `send` share.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Print one JSON object per image on stdout instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Read the shared passphrase from this file (else from $UDPIX_PASSPHRASE).
    #[arg(long, env = "UDPIX_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// No login, no encryption: anyone can send, anyone on the path can read. Both sides need it.
    #[arg(long)]
    pub insecure: bool,
}

/// `udpix tui`.
#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    /// Start receiving at once on this address (e.g. 0.0.0.0:7878). Without it the Receive
    /// role offers $UDPIX_LISTEN, the config file's `listen`, or 0.0.0.0:7878.
    #[arg(long, conflicts_with = "connect")]
    pub listen: Option<String>,
    /// Pre-fill the receiver to send to (HOST:PORT) and open in the Send role
    /// [env: UDPIX_CONNECT; config: connect].
    #[arg(long)]
    pub connect: Option<String>,
    /// Folder to write received images into [env: UDPIX_OUT; config: out; default: .].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How to draw the preview [env: UDPIX_IMAGE_PROTOCOL; config: image_protocol; default:
    /// auto].
    #[arg(long, value_enum)]
    pub image_protocol: Option<udpix::config::ImageProtocol>,
    /// Read the shared passphrase from this file (else from $UDPIX_PASSPHRASE, else type it).
    #[arg(long, env = "UDPIX_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// No login, no encryption (the other side must say so too).
    #[arg(long)]
    pub insecure: bool,
    /// Leave the mouse to the terminal (for selecting text without Shift).
    #[arg(long)]
    pub no_mouse: bool,
}

/// Fills in `udpix send`'s receiver and files from its arguments and the shared settings.
pub fn resolve_send(args: &mut SendArgs, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = udpix::config::resolve(&udpix::config::CliConfig {
        config: config_file,
        ..Default::default()
    })?;
    let (to, files) =
        udpix::config::send_targets(&args.targets, settings.connect.as_ref(), |p| p.is_file())
            .map_err(anyhow::Error::msg)?;
    tracing::info!(receiver = %to.value, from = %to.source, files = files.len(), "sending");
    args.to = to.value;
    args.files = files;
    Ok(())
}

/// A rate such as `8kbit`, or `0` for none.
fn rate_or_zero(s: &str) -> Result<f64, String> {
    if s.trim() == "0" {
        Ok(0.0)
    } else {
        udpix::units::rate(s)
    }
}

/// `--latest NAME`: a plain file name.
fn latest_name(s: &str) -> Result<String, String> {
    udpix::keep::check_latest_name(s).map(|()| s.to_owned())
}

/// `--fps N`: the interval between frames, for N from 0.001 to 1000 a second.
fn fps(s: &str) -> Result<std::time::Duration, String> {
    let n: f64 = s
        .parse()
        .map_err(|_| format!("--fps takes frames a second, like 10 or 0.5, not {s:?}"))?;
    if !(0.001..=1000.0).contains(&n) {
        return Err(format!(
            "--fps takes 0.001 to 1000 frames a second, not {n}"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(1.0 / n))
}
