//! The full-screen terminal UI. The runtime here owns the terminal and the engine tasks; the
//! [`app`] holds the state and decides, the [`view`] draws. The engine runs on its own tokio
//! tasks and is never waited on: each frame drains what the engine published (bounded
//! channels, dropped chunk events are only counted), then draws once, at most 30 times a second.

pub mod app;
pub mod chunkmap;
pub mod graphics;
pub mod halfblock;
pub mod keymap;
pub mod listing;
pub mod panes;
pub mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream, KeyEventKind, MouseButton, MouseEventKind,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::{mpsc, watch};

use crate::engine::service::{self, Files};
use crate::engine::{self, Event, ReceiveOptions, Subscriber, TransferId};
use crate::proto::crypto::Passphrase;
use crate::proto::receiver::ReceiverConfig;
use crate::proto::sender::SenderConfig;
use crate::store;
use app::{App, Command, Msg, Setup};
use graphics::ImageProtocol;
use halfblock::ColorDepth;
use view::Theme;

/// Frames per second at most.
const FPS: u64 = 30;
/// Engine events taken per frame at most (the rest wait for the next frame or are dropped
/// by the engine when its bounded channel is full).
const EVENTS_PER_FRAME: usize = 20_000;
/// Longest side of a decoded preview, in pixels (bounds memory; the pane is smaller anyway).
const PREVIEW_MAX: u32 = 800;

/// How the TUI starts.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Start listening on this address at once.
    pub listen: Option<String>,
    /// Pre-fill the receiver address and the Send role.
    pub connect: Option<String>,
    /// Listen address to pre-fill when neither of the above is given.
    pub default_listen: Option<String>,
    /// Output folder for received images.
    pub out: PathBuf,
    /// The passphrase from a file or the environment, if given.
    pub passphrase: Option<String>,
    /// No login or encryption.
    pub insecure: bool,
    /// Folder to browse first.
    pub cwd: PathBuf,
    /// How to draw the preview (resolved from `auto` before the terminal is taken over).
    pub image_protocol: ImageProtocol,
    /// Draw without colours (NO_COLOR or the config file's `colors = "never"`).
    pub no_color: bool,
    /// Take mouse clicks and the wheel.
    pub mouse: bool,
}

/// Runs the TUI until the user quits; the terminal is restored on return and on panic.
pub async fn run(mut opts: TuiOptions) -> anyhow::Result<()> {
    opts.image_protocol = graphics::set_up(opts.image_protocol);
    let mut terminal = ratatui::init();
    let mouse = opts.mouse;
    take_input_modes(mouse);
    let result = run_on(&mut terminal, opts, EventStream::new()).await;
    give_input_modes_back(mouse);
    ratatui::restore();
    result
}

/// Turns on bracketed paste (a paste arrives as one event, so it goes into a field and is
/// never read as keys) and mouse reporting, and makes a panic turn them off again before
/// ratatui's own hook (installed by `ratatui::init`) restores the rest of the terminal.
fn take_input_modes(mouse: bool) {
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        give_input_modes_back(mouse);
        restore(info);
    }));
    let _ = crossterm::execute!(std::io::stdout(), EnableBracketedPaste);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    }
}

fn give_input_modes_back(mouse: bool) {
    let _ = crossterm::execute!(std::io::stdout(), DisableBracketedPaste);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
}

/// Runs on any backend with any key source (tests drive it with a TestBackend).
pub async fn run_on<B: Backend, S>(
    terminal: &mut Terminal<B>,
    opts: TuiOptions,
    mut keys: S,
) -> anyhow::Result<()>
where
    S: futures_util::Stream<Item = std::io::Result<TermEvent>> + Unpin,
    B::Error: Send + Sync + 'static,
{
    let protocol = opts.image_protocol;
    let mut theme = Theme {
        depth: if opts.no_color {
            ColorDepth::Mono
        } else {
            ColorDepth::detect()
        },
        graphics: !matches!(protocol, ImageProtocol::Blocks | ImageProtocol::Auto),
        cell_aspect: graphics::cell_aspect(),
    };
    let mut gfx = graphics::Graphics::new(protocol);
    // What the printed image's place depended on at the last wipe.
    let mut scene = graphics::Scene::default();
    let role = if opts.listen.is_none() && opts.connect.is_some() {
        app::Role::Send
    } else {
        app::Role::Receive
    };
    let listen = opts
        .listen
        .clone()
        .or_else(|| opts.default_listen.clone())
        .unwrap_or_else(|| "0.0.0.0:7878".to_owned());
    let connect = opts.connect.clone().unwrap_or_default();
    let (address, other_address) = match role {
        app::Role::Receive => (listen, connect),
        app::Role::Send => (connect, listen),
    };
    let setup = Setup {
        role,
        address,
        other_address,
        passphrase: opts.passphrase.clone(),
        generated: false,
        insecure: opts.insecure,
        out_dir: opts.out.display().to_string(),
        cwd: opts.cwd.clone(),
        autostart: opts.listen.is_some(),
    };
    let (mut app, cmds) = App::new(setup);
    let mut rt = Runtime::new();
    rt.execute(cmds);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let panic_on_purpose = debug_panic_requested();
    // The screen as last drawn: mouse positions are read against it.
    let mut screen = ratatui::layout::Rect::default();
    loop {
        tokio::select! {
            ev = keys.next() => {
                match ev {
                    Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                        let cmds = app.update(Msg::Key(k));
                        rt.execute(cmds);
                        dirty = true;
                    }
                    Some(Ok(TermEvent::Mouse(m))) => {
                        let at = view::hit(screen, &app, m.column, m.row);
                        let msg = at.and_then(|hit| match m.kind {
                            MouseEventKind::Down(MouseButton::Left) => Some(Msg::Click(hit)),
                            MouseEventKind::ScrollUp => Some(Msg::Wheel(hit, false)),
                            MouseEventKind::ScrollDown => Some(Msg::Wheel(hit, true)),
                            _ => None,
                        });
                        if let Some(msg) = msg {
                            let cmds = app.update(msg);
                            rt.execute(cmds);
                            dirty = true;
                        }
                    }
                    Some(Ok(TermEvent::Paste(text))) => {
                        let cmds = app.update(Msg::Paste(text));
                        rt.execute(cmds);
                        dirty = true;
                    }
                    Some(Ok(TermEvent::Resize(..))) => {
                        terminal.autoresize()?;
                        theme.cell_aspect = graphics::cell_aspect(); // the font may have changed
                        dirty = true;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    // The terminal's input ended: no key can come to quit with (and the
                    // stream must not be polled again).
                    None => {
                        rt.shutdown().await;
                        return Ok(());
                    }
                }
            }
            Some(msg) = rt.rx.recv() => {
                // What the engines published before this message (a send's last Finished
                // before its "all sent") must be applied first.
                rt.drain_engine(&mut app);
                let cmds = app.update(msg);
                rt.execute(cmds);
                dirty = true;
            }
            _ = tick.tick() => {
                dirty |= rt.drain_engine(&mut app) | gfx.poll();
                let cmds = app.update(Msg::Tick(start.elapsed()));
                rt.execute(cmds);
                if dirty {
                    if theme.graphics {
                        // Help opened or closed, a zoom, another image: wipe the printed pixels
                        // (and the text the pane had) and let ratatui repaint every cell.
                        let now = graphics::Scene::of(&app);
                        if now != scene {
                            graphics::wipe(terminal)?;
                            scene = now;
                        }
                    }
                    let frame = terminal.draw(|f| {
                        view::draw(f, &app, &theme);
                        gfx.render(f, &app);
                    })?;
                    let area = frame.area;
                    screen = area;
                    dirty = false;
                    if panic_on_purpose {
                        panic!("UDPIX_DEBUG_PANIC is set: panicking on purpose to test terminal restore");
                    }
                }
            }
        }
        if app.quit {
            rt.shutdown().await;
            return Ok(());
        }
    }
}

/// Debug builds only: `UDPIX_DEBUG_PANIC` makes the UI panic once a frame is on screen, so a
/// test can check that a panic gives the terminal back (raw mode off, main screen, the message
/// readable). Release builds have no such switch.
fn debug_panic_requested() -> bool {
    cfg!(debug_assertions) && std::env::var_os("UDPIX_DEBUG_PANIC").is_some()
}

/// Carries out commands and owns what they start.
struct Runtime {
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    subs: Vec<Subscriber>,
    /// The running receiver's stop switch.
    stops: Vec<watch::Sender<bool>>,
    /// The running sends' cancel switches.
    cancels: Vec<engine::Canceller>,
    /// Engine tasks, waited for (briefly) on quit so their last words reach the peer.
    engines: Vec<tokio::task::JoinHandle<()>>,
    listing: listing::Current,
}

impl Runtime {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx,
            subs: Vec::new(),
            stops: Vec::new(),
            cancels: Vec::new(),
            engines: Vec::new(),
            listing: listing::Current::default(),
        }
    }

    /// Feeds what the engines published since the last frame; true if anything changed.
    fn drain_engine(&mut self, app: &mut App) -> bool {
        let mut changed = false;
        let mut follow_up = Vec::new();
        for sub in &mut self.subs {
            for _ in 0..EVENTS_PER_FRAME {
                let Ok(ev) = sub.events.try_recv() else { break };
                changed = true;
                follow_up.extend(app.update(Msg::Engine(ev)));
            }
            if sub.snapshot.has_changed().unwrap_or(false) {
                let snap = sub.snapshot.borrow_and_update().clone();
                app.update(Msg::Snapshot(snap));
                changed = true;
            }
        }
        // A finished send's engine is gone: once its last events are taken, so is its channel.
        self.subs
            .retain(|sub| !(sub.events.is_closed() && sub.events.is_empty()));
        self.execute(follow_up);
        changed
    }

    fn execute(&mut self, cmds: Vec<Command>) {
        for cmd in cmds {
            match cmd {
                Command::ReadDir(path) => {
                    let tx = self.tx.clone();
                    let cancel = self.listing.replace();
                    background(move || {
                        let entries = listing::list_dir(&path);
                        let _ = tx.send(Msg::Dir(path.clone(), entries.clone()));
                        listing::read_infos(&entries, &cancel, |batch| {
                            tx.send(Msg::DirInfo(path.clone(), batch)).is_ok()
                        });
                    });
                }
                Command::LoadPreview(id, path) => {
                    let tx = self.tx.clone();
                    background(move || match load_preview(&path) {
                        Some(img) => {
                            let _ = tx.send(Msg::PreviewReady(id, img));
                        }
                        None => {
                            let _ =
                                tx.send(Msg::Engine(Event::Notice(engine::Notice::Text(format!(
                                    "no preview for {}: not an image udpix can draw",
                                    path.display()
                                )))));
                        }
                    });
                }
                Command::Listen {
                    addr,
                    out,
                    passphrase,
                } => {
                    if let Err(e) = self.listen(&addr, out, passphrase) {
                        let _ = self.tx.send(Msg::Failed(e));
                    }
                }
                Command::Send {
                    to,
                    files,
                    passphrase,
                } => self.send(to, files, passphrase),
                Command::StopListening => self.stop_listening(),
                Command::Open(path) => open_with_desktop(path, self.tx.clone()),
                Command::CancelSend => self.cancel_sends(),
                Command::CancelFile(id) => self.cancel_file(id),
            }
        }
    }

    /// Starts a receiver; the error text goes to the Connection pane.
    fn listen(
        &mut self,
        addr: &str,
        out: PathBuf,
        passphrase: Option<String>,
    ) -> Result<(), String> {
        // HOST or HOST:PORT as on the command line (port 7878 if left out, 0 for any).
        let addr: SocketAddr = crate::addr::listen(addr).map_err(|e| e.to_string())?;
        if !out.is_dir() {
            return Err(format!("{} is not a folder", out.display()));
        }
        store::check_writable(&out)
            .map_err(|e| format!("{}: pick a folder you can write to", e.brief()))?;
        let socket = engine::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        if let Ok(bound) = socket.local_addr() {
            let _ = self.tx.send(Msg::Listening(bound));
        }
        // Before the receiver runs: what is locked now belongs to another receiver.
        let swept = match store::remove_stale_parts(&out) {
            Ok(removed) if removed.is_empty() => None,
            Ok(removed) => Some(store::stale_parts_notice(&removed)),
            Err(e) => Some(format!(
                "cannot look for partial files left in {}: {e}",
                out.display()
            )),
        };
        if let Some(note) = swept {
            let _ = self.tx.send(Msg::Engine(Event::Notice(note.into())));
        }
        let (publisher, sub) = engine::channel(4096);
        let (stop_tx, stop_rx) = watch::channel(false);
        let options = ReceiveOptions {
            config: ReceiverConfig {
                passphrase: passphrase.as_deref().map(Passphrase::new),
                ..ReceiverConfig::default()
            },
            out_dir: out,
        };
        let tx = self.tx.clone();
        self.engines.push(tokio::spawn(async move {
            if let Err(e) = engine::run_receiver(socket, options, publisher, stop_rx).await {
                let _ = tx.send(Msg::Failed(format!("receiver stopped: {e}")));
            }
        }));
        self.subs.push(sub);
        self.stops.push(stop_tx);
        Ok(())
    }

    /// The receiver tells its senders it stopped, and ends.
    fn stop_listening(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(true);
        }
    }

    /// Each running send tells its receiver it was cancelled, and ends.
    fn cancel_sends(&mut self) {
        for c in self.cancels.drain(..) {
            c.cancel("its user cancelled the send");
        }
    }

    /// One file of a send is given up: the send that has it tells its receiver, and goes
    /// on with the others (ids are unique across sends, so the others ignore it).
    fn cancel_file(&self, id: TransferId) {
        for c in &self.cancels {
            c.cancel_file(id, "its user cancelled this file");
        }
    }

    /// Quitting: stops and cancels everything, and gives the engines a moment to tell their
    /// peers (a CLOSE each) so the other side does not wait for its timeout.
    async fn shutdown(&mut self) {
        self.stop_listening();
        for c in self.cancels.drain(..) {
            c.cancel("its user quit udpix");
        }
        let all = futures_util::future::join_all(self.engines.drain(..));
        let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
    }

    fn send(&mut self, to: String, files: Vec<(TransferId, PathBuf)>, passphrase: Option<String>) {
        let (publisher, sub) = engine::channel(4096);
        self.subs.push(sub);
        self.cancels.retain(|c| !c.is_done());
        let (canceller, cancel) = engine::cancellation();
        self.cancels.push(canceller);
        let tx = self.tx.clone();
        self.engines.retain(|t| !t.is_finished());
        self.engines.push(tokio::spawn(async move {
            let result = send_all(&to, files, passphrase, publisher, cancel).await;
            match result {
                Ok(failed) => {
                    if failed == 0 {
                        let note = "all files sent and verified".to_owned();
                        let _ = tx.send(Msg::Engine(Event::Notice(note.into())));
                    }
                    let _ = tx.send(Msg::SendFinished(failed));
                }
                Err(e) => {
                    let _ = tx.send(Msg::Failed(format!("{e:#}")));
                }
            }
        }));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for s in &self.stops {
            let _ = s.send(true);
        }
    }
}

async fn send_all(
    to: &str,
    files: Vec<(TransferId, PathBuf)>,
    passphrase: Option<String>,
    publisher: engine::Publisher,
    cancel: engine::CancelSignal,
) -> anyhow::Result<usize> {
    let peer = crate::addr::resolve_peer(to).await?;
    let socket = engine::bind_for(peer)?;
    let config = SenderConfig {
        passphrase: passphrase.as_deref().map(Passphrase::new),
        ..SenderConfig::default()
    };
    // One login carries them all; a wrong passphrase fails every file alike, and the
    // engine stops at the first such failure rather than count a failed login for each.
    let notices = publisher.clone();
    let summary = service::send_all(
        &socket,
        peer,
        config,
        Files::Paths(files, engine::ReadOptions::default()),
        publisher,
        cancel,
        move |path, e| {
            notices.notice(format!("cannot read {}: {e}", path.display()));
        },
    )
    .await?;
    Ok(summary.failed())
}

/// Hands `path` to the desktop's opener (xdg-open, open), if there is a desktop; over SSH
/// there is none, and the log says where the file is instead.
fn open_with_desktop(path: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    let notice = |text: String| {
        let _ = tx.send(Msg::Engine(Event::Notice(text.into())));
    };
    let desktop = cfg!(target_os = "macos")
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !desktop {
        notice(format!(
            "no desktop to open it on (an SSH login?): it is at {}",
            path.display()
        ));
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let child = std::process::Command::new(opener)
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        // Reaped off the UI thread; the viewer may outlive it.
        Ok(mut child) => background(move || {
            let _ = child.wait();
        }),
        Err(e) => notice(format!(
            "cannot open {} with {opener}: {e} (is it installed?)",
            path.display()
        )),
    }
}

/// Runs UI work (image decoding, header reading) on a thread of its own at the lowest CPU
/// priority, so that on a busy machine the engine's threads are served first: a preview must
/// never slow a transfer down. Not tokio's blocking pool: the store verifies received files
/// there, and a lowered priority cannot be raised again without privileges.
pub fn background(work: impl FnOnce() + Send + 'static) {
    // Without a thread (the system is out of them) there is no preview; transfers go on.
    let _ = std::thread::Builder::new()
        .name("udpix-ui-work".to_owned())
        .spawn(move || {
            lower_this_threads_priority();
            work();
        });
}

/// Nice 19 for the calling thread only (Linux keeps a nice value per thread).
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Decodes an image for the preview, shrunk so its longest side is at most [`PREVIEW_MAX`].
pub fn load_preview(path: &Path) -> Option<image::RgbImage> {
    let img = image::open(path).ok()?;
    let img = if img.width().max(img.height()) > PREVIEW_MAX {
        img.thumbnail(PREVIEW_MAX, PREVIEW_MAX)
    } else {
        img
    };
    Some(img.to_rgb8())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn background_work_runs_at_the_lowest_priority_and_leaves_the_caller_alone() {
        // SAFETY: reads the nice value of a thread id; no memory is passed.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let before = nice();
        let (tx, rx) = std::sync::mpsc::channel();
        super::background(move || {
            let _ = tx.send(nice());
        });
        let worker = rx.recv().expect("the work ran");
        assert_eq!(worker, 19);
        assert_eq!(nice(), before, "the calling thread keeps its priority");
    }
}
