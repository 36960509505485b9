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
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind,
    MouseButton, MouseEventKind,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::{mpsc, watch};

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
    if mouse {
        capture_mouse();
    }
    let result = run_on(&mut terminal, opts, EventStream::new()).await;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    result
}

/// Turns mouse reporting on, and makes a panic turn it off again before ratatui's own hook
/// (installed by `ratatui::init`) restores the rest of the terminal.
fn capture_mouse() {
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        restore(info);
    }));
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
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
    let setup = Setup {
        role,
        address: opts
            .listen
            .clone()
            .or_else(|| opts.connect.clone())
            .or_else(|| opts.default_listen.clone())
            .unwrap_or_else(|| "0.0.0.0:7878".to_owned()),
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
                    Some(Ok(TermEvent::Resize(..))) => {
                        terminal.autoresize()?;
                        theme.cell_aspect = graphics::cell_aspect(); // the font may have changed
                        dirty = true;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    // The terminal's input ended: no key can come to quit with (and the
                    // stream must not be polled again).
                    None => return Ok(()),
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
    stops: Vec<watch::Sender<bool>>,
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
                            let _ = tx.send(Msg::Engine(Event::Notice(format!(
                                "no preview for {}: not an image udpix can draw",
                                path.display()
                            ))));
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
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP:PORT address"))?;
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
            let _ = self.tx.send(Msg::Engine(Event::Notice(note)));
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
        tokio::spawn(async move {
            if let Err(e) = engine::run_receiver(socket, options, publisher, stop_rx).await {
                let _ = tx.send(Msg::Failed(format!("receiver stopped: {e}")));
            }
        });
        self.subs.push(sub);
        self.stops.push(stop_tx);
        Ok(())
    }

    fn send(&mut self, to: String, files: Vec<(TransferId, PathBuf)>, passphrase: Option<String>) {
        let (publisher, sub) = engine::channel(4096);
        self.subs.push(sub);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = send_all(&to, files, passphrase, publisher).await;
            match result {
                Ok(failed) => {
                    if failed == 0 {
                        let note = "all files sent and verified".to_owned();
                        let _ = tx.send(Msg::Engine(Event::Notice(note)));
                    }
                    let _ = tx.send(Msg::SendFinished(failed));
                }
                Err(e) => {
                    let _ = tx.send(Msg::Failed(format!("{e:#}")));
                }
            }
        });
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
) -> anyhow::Result<usize> {
    let peer = engine::resolve(to).await?;
    let socket = engine::bind_for(peer)?;
    let config = SenderConfig {
        passphrase: passphrase.as_deref().map(Passphrase::new),
        ..SenderConfig::default()
    };
    let total = files.len();
    // Files are read ahead on a thread of their own; one login carries them all.
    let notices = publisher.clone();
    let (mut queue, _reader) = engine::read_ahead(files, config.clone(), move |path, e| {
        notices.notice(format!("cannot read {}: {e}", path.display()));
    });
    // A wrong passphrase fails every file alike, and the engine stops at the first such
    // failure rather than count another failed login at the receiver for each.
    let reports =
        engine::send_files(&socket, peer, config.clone(), &mut queue, publisher.clone()).await?;
    // Unreadable files, failed ones and those never sent all count.
    let delivered = reports.iter().filter(|r| r.result.is_ok()).count();
    let failures = total - delivered;
    Ok(failures)
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
