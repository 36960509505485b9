//! The TUI's state and its pure update: messages in, state changed, side effects returned as
//! [`Command`]s for the runtime to carry out. No I/O here, so tests drive it directly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use image::RgbImage;

mod browse;
mod fields;
mod mouse;
mod received;
mod session;

pub use browse::{BROWSE_IDS, BROWSE_SETTLE};
pub use fields::FIELD_MAX;
pub use mouse::{Hit, WHEEL};
pub use session::SessionFigures;

use super::chunkmap::ChunkMap;
use super::keymap::{Action, dispatch};
use crate::engine::{ChunkWhat, Direction, Event, Snapshot, TransferId};
use crate::proto::stats::TransferStats;
use crate::proto::wire::Offer;

/// Lines the chunk log keeps; older ones are dropped.
pub const LOG_CAPACITY: usize = 2000;
/// Per frame, more chunk events than this are summarised in one line.
pub const LOG_BURST: usize = 40;
/// Ids of this screen's sends start here (the receiver numbers its transfers from 1).
pub const SEND_IDS: TransferId = 1 << 40;
/// Transfers kept in full (listed, browsable); older finished ones only count in the session.
pub const MAX_TRANSFERS: usize = 500;
/// Lines or entries a PageUp / PageDown moves.
pub const PAGE: usize = 10;
/// Goodput samples kept for the sparkline.
pub const HISTORY: usize = 120;

/// Which way this screen moves images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Listen and write what arrives.
    Receive,
    /// Connect and send files.
    Send,
}

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pane {
    /// Role, address, passphrase, folder, action, state.
    Connection,
    /// File browser (send) or received files (receive).
    Files,
    /// Per-chunk log.
    Chunks,
    /// Figures.
    Stats,
    /// The image.
    Preview,
}

const PANES: [Pane; 5] = [
    Pane::Connection,
    Pane::Files,
    Pane::Chunks,
    Pane::Stats,
    Pane::Preview,
];

/// Rows of the connection pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Receive or Send.
    Role,
    /// Listen address or receiver address.
    Address,
    /// The shared passphrase (masked).
    Passphrase,
    /// Where received images go.
    OutDir,
    /// The Listen / Connect button.
    Action,
}

const FIELDS: [Field; 5] = [
    Field::Role,
    Field::Address,
    Field::Passphrase,
    Field::OutDir,
    Field::Action,
];

/// What the connection is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Nothing started.
    Idle,
    /// Receiving: waiting for senders on this address.
    Listening(String),
    /// Sending: logging in and offering a file to this address.
    Handshaking(String),
    /// Sending: the receiver at this address accepted; data flows.
    Connected(String),
    /// Every file of the send was handled.
    Sent,
    /// Sending: cancelled, the receiver being told; ends when the engine does.
    Cancelling(String),
    /// Cancelled or stopped by the user; the text says what ended.
    Stopped(String),
    /// Something went wrong; the text says what.
    Error(String),
}

/// A file browser entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full path.
    pub path: PathBuf,
    /// Shown name.
    pub name: String,
    /// A folder (or `..`).
    pub is_dir: bool,
    /// Size in bytes (files).
    pub size: u64,
    /// Format and dimensions, once read off the UI thread.
    pub info: Option<(String, Option<(u32, u32)>)>,
}

/// One line of the chunk log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Seconds since the TUI started.
    pub at: Duration,
    /// Image name.
    pub image: String,
    /// What happened, e.g. a chunk or a summary.
    pub kind: LogKind,
}

/// What a log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogKind {
    /// One chunk event.
    Chunk {
        /// Chunk index.
        chunk: u32,
        /// Bytes in the chunk.
        bytes: u32,
        /// What happened.
        what: ChunkWhat,
    },
    /// Many chunk events of one transfer folded into one line.
    Summary(crate::figures::Fold),
    /// A transfer started or ended, or a notice.
    Note(String),
}

/// A transfer as the screen shows it.
#[derive(Debug, Clone)]
pub struct TransferView {
    /// What was offered.
    pub offer: Offer,
    /// Which way.
    pub direction: Direction,
    /// Latest figures.
    pub stats: TransferStats,
    /// Screen time (since the TUI started) when it began.
    pub started_at: Duration,
    /// Time since it started.
    pub elapsed: Duration,
    /// The other side.
    pub peer: SocketAddr,
    /// `Some` once finished: Ok, or why not.
    pub result: Option<Result<(), String>>,
    /// The file on disk: where a received image went (once verified), or what a send reads.
    pub path: Option<PathBuf>,
    /// Goodput samples (bits per second) for the sparkline.
    pub history: VecDeque<u64>,
}

impl TransferView {
    /// Bytes of the image that are in (receiver) or acknowledged (sender).
    pub fn done_bytes(&self) -> u64 {
        crate::figures::done_bytes(
            self.stats.chunks_done,
            self.offer.chunk_size,
            self.offer.size,
        )
    }

    /// Image bits per second so far.
    pub fn goodput_bps(&self) -> f64 {
        crate::figures::goodput_bps(self.done_bytes(), self.elapsed)
    }
}

/// The image pane's content.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// Caption.
    pub title: String,
    /// The decoded image (at most the preview size; fitted to the pane when drawn).
    pub image: Option<Arc<RgbImage>>,
    /// The image as last fitted into the pane in half blocks.
    pub fitted: super::halfblock::FitCache,
    /// Which transfer (or browse preview) it belongs to.
    pub id: Option<TransferId>,
    /// The file it shows, when it came from the file browser.
    pub path: Option<PathBuf>,
    /// Receive side before verification: the chunks seen so far.
    pub chunks: Option<ChunkMap>,
}

/// Everything on screen.
#[derive(Debug, Clone)]
pub struct App {
    /// Receive or Send.
    pub role: Role,
    /// Focused pane.
    pub focus: Pane,
    /// Selected connection field.
    pub field: Field,
    /// True while a text field takes the keys.
    pub editing: bool,
    /// The field being edited, with its cursor.
    pub input: tui_input::Input,
    /// Show the passphrase in clear (Ctrl-R).
    pub reveal: bool,
    /// Listen address (receive) or receiver address (send).
    pub address: String,
    /// The other role's address, swapped in when the role changes.
    pub other_address: String,
    /// Passphrase text (never drawn in clear except a generated one on the receiving side).
    pub passphrase: String,
    /// True when the passphrase was generated here (so it is shown to read out).
    pub passphrase_generated: bool,
    /// Run without login or encryption.
    pub insecure: bool,
    /// Output folder.
    pub out_dir: String,
    /// Connection state.
    pub state: ConnState,
    /// Folder being browsed.
    pub cwd: PathBuf,
    /// Its entries: folders first, then images.
    pub entries: Vec<Entry>,
    /// Cursor in the file list.
    pub selected: usize,
    /// Files marked for sending.
    pub marked: BTreeSet<PathBuf>,
    /// The chunk log (bounded).
    pub log: VecDeque<LogLine>,
    /// Lines scrolled up from the tail; 0 follows the tail.
    pub log_scroll: usize,
    /// Chunk events waiting to be logged this frame.
    pending: Vec<(TransferId, u32, ChunkWhat)>,
    /// Transfers of this session, the newest [`MAX_TRANSFERS`].
    pub transfers: BTreeMap<TransferId, TransferView>,
    /// Figures of the older transfers, folded away to bound memory.
    folded: SessionFigures,
    /// Where the folded transfers' time ends.
    folded_until: Duration,
    /// Transfer shown in Stats and Preview.
    pub current: Option<TransferId>,
    /// Chunk events the engine dropped because the UI lagged.
    pub dropped_events: u64,
    /// Senders this receiver turned away for a wrong passphrase.
    pub failed_logins: u64,
    /// The image pane.
    pub preview: Preview,
    /// Help popup open.
    pub show_help: bool,
    /// The full-error popup open.
    pub show_error: bool,
    /// Lines the help is scrolled down.
    pub help_scroll: u16,
    /// The focused pane fills the screen.
    pub zoom: bool,
    /// Time since start (advanced by ticks).
    pub now: Duration,
    /// Set when the user quits.
    pub quit: bool,
    /// Asking whether to quit while a transfer runs.
    pub confirm_quit: bool,
    /// Id for the next file sent.
    next_send_id: TransferId,
    /// Files asked to be sent whose transfer has not started yet.
    send_paths: BTreeMap<TransferId, PathBuf>,
    /// The browser's cursor rests on this image since then: previewed once it settles.
    browse: Option<(PathBuf, Duration)>,
    /// Id for the next browse preview.
    next_browse_id: TransferId,
}

/// Side effects the runtime carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start a receiver.
    Listen {
        /// Address to bind.
        addr: String,
        /// Output folder.
        out: PathBuf,
        /// Passphrase, or `None` for --insecure.
        passphrase: Option<String>,
    },
    /// Send files one after another.
    Send {
        /// Receiver address.
        to: String,
        /// Files, each with the id its transfer's events will carry.
        files: Vec<(TransferId, PathBuf)>,
        /// Passphrase, or `None` for --insecure.
        passphrase: Option<String>,
    },
    /// List a folder.
    ReadDir(PathBuf),
    /// Decode an image for the preview.
    LoadPreview(TransferId, PathBuf),
    /// Stop the receiver; it tells its senders.
    StopListening,
    /// Cancel the running send; the receiver is told.
    CancelSend,
    /// Open a file or folder with the desktop's viewer.
    Open(PathBuf),
}

/// Messages into [`App::update`].
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// A left click.
    Click(Hit),
    /// A wheel notch: `true` scrolls down (towards newer lines, later entries).
    Wheel(Hit, bool),
    /// An engine event.
    Engine(Event),
    /// Latest engine figures.
    Snapshot(Snapshot),
    /// Time passed (drives sparklines and the log clock).
    Tick(Duration),
    /// A folder listing arrived (images without their info yet).
    Dir(PathBuf, Vec<Entry>),
    /// Format and dimensions of some of a folder's images.
    DirInfo(PathBuf, Vec<(PathBuf, super::listing::Info)>),
    /// An image decoded for the preview.
    PreviewReady(TransferId, RgbImage),
    /// The runtime failed to start something.
    Failed(String),
    /// Every file of a send has been handled; this many failed.
    SendFinished(usize),
    /// The receiver is bound and serving on this address (its real port when 0 was asked).
    Listening(SocketAddr),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
}

/// Start-up values (from flags, config and defaults).
#[derive(Debug, Clone)]
pub struct Setup {
    /// Initial role.
    pub role: Role,
    /// Address field.
    pub address: String,
    /// The other role's address field (empty: to be typed).
    pub other_address: String,
    /// Passphrase, if given.
    pub passphrase: Option<String>,
    /// True when `passphrase` was generated here.
    pub generated: bool,
    /// No login or encryption.
    pub insecure: bool,
    /// Output folder.
    pub out_dir: String,
    /// Folder to browse.
    pub cwd: PathBuf,
    /// Start listening or connecting at once.
    pub autostart: bool,
}

impl App {
    /// A fresh screen; the commands load the first folder and maybe start the engine.
    pub fn new(setup: Setup) -> (Self, Vec<Command>) {
        let mut app = App {
            role: setup.role,
            focus: Pane::Connection,
            field: Field::Action,
            editing: false,
            input: tui_input::Input::default(),
            reveal: false,
            address: setup.address,
            other_address: setup.other_address,
            passphrase: setup.passphrase.unwrap_or_default(),
            passphrase_generated: setup.generated,
            insecure: setup.insecure,
            out_dir: setup.out_dir,
            state: ConnState::Idle,
            cwd: setup.cwd.clone(),
            entries: Vec::new(),
            selected: 0,
            marked: BTreeSet::new(),
            log: VecDeque::new(),
            log_scroll: 0,
            pending: Vec::new(),
            transfers: BTreeMap::new(),
            folded: SessionFigures::default(),
            folded_until: Duration::ZERO,
            current: None,
            dropped_events: 0,
            failed_logins: 0,
            preview: Preview::default(),
            show_help: false,
            show_error: false,
            help_scroll: 0,
            zoom: false,
            now: Duration::ZERO,
            quit: false,
            confirm_quit: false,
            next_send_id: SEND_IDS,
            send_paths: BTreeMap::new(),
            browse: None,
            next_browse_id: BROWSE_IDS,
        };
        let mut cmds = vec![Command::ReadDir(setup.cwd)];
        if setup.autostart && setup.role == Role::Receive {
            cmds.extend(app.start());
        }
        (app, cmds)
    }

    /// Applies one message.
    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        match msg {
            Msg::Key(k) => self.on_key(k),
            Msg::Click(hit) => self.on_click(hit),
            Msg::Wheel(hit, down) => {
                self.on_wheel(hit, down);
                Vec::new()
            }
            Msg::Engine(ev) => self.on_engine(ev),
            Msg::Snapshot(s) => {
                self.dropped_events = s.dropped_events;
                for p in s.transfers {
                    // A snapshot read after a transfer's Finished can be older than it: the
                    // report's figures are final.
                    if let Some(t) = self.transfers.get_mut(&p.id)
                        && t.result.is_none()
                    {
                        t.stats = p.stats;
                        t.elapsed = p.elapsed;
                    }
                }
                Vec::new()
            }
            Msg::Tick(now) => {
                self.now = now;
                self.flush_log();
                let cmds = self.browse_tick();
                for t in self.transfers.values_mut().filter(|t| t.result.is_none()) {
                    let bps = t.goodput_bps() as u64;
                    t.history.push_back(bps);
                    if t.history.len() > HISTORY {
                        t.history.pop_front();
                    }
                }
                cmds
            }
            Msg::Dir(path, entries) => {
                if path == self.cwd {
                    self.entries = entries;
                    self.selected = self.selected.min(self.entries.len().saturating_sub(1));
                    self.browse_moved();
                }
                Vec::new()
            }
            Msg::DirInfo(path, infos) => {
                if path == self.cwd {
                    // Batches come in list order: look from where the last one ended.
                    let mut at = 0;
                    for (p, info) in infos {
                        let n = self.entries.len();
                        if let Some(i) = (0..n)
                            .map(|k| (at + k) % n)
                            .find(|&i| self.entries[i].path == p)
                        {
                            self.entries[i].info = Some(info);
                            at = i;
                        }
                    }
                }
                Vec::new()
            }
            Msg::PreviewReady(id, img) => {
                if self.preview.id == Some(id) {
                    self.preview.image = Some(Arc::new(img));
                    self.preview.chunks = None;
                }
                Vec::new()
            }
            Msg::Failed(e) => {
                self.state = ConnState::Error(e.clone());
                self.note("", e);
                Vec::new()
            }
            Msg::SendFinished(failed) => {
                self.send_paths.clear(); // files that could not be read never started
                // A failure already in the state (say, a failed login) says more than a count.
                if matches!(self.state, ConnState::Cancelling(_)) {
                    let text = format!("send cancelled: {}", files_not_delivered(failed));
                    self.note("", text.clone());
                    self.state = ConnState::Stopped(text);
                } else if failed == 0 {
                    // Sent and verified: the marks have done their job. (A failure keeps
                    // them, to send again.)
                    self.marked.clear();
                    self.state = ConnState::Sent;
                } else if !matches!(self.state, ConnState::Error(_)) {
                    self.state = ConnState::Error(format!(
                        "{}; see the chunk log",
                        crate::report::count(failed as u64, "file failed", "files failed")
                    ));
                }
                Vec::new()
            }
            Msg::Paste(text) => {
                self.paste(&text);
                Vec::new()
            }
            Msg::Listening(addr) => {
                if matches!(self.state, ConnState::Listening(_)) {
                    // What the field asked for may be port 0: show where senders must go.
                    let addr = addr.to_string();
                    self.note("", format!("listening on {addr}"));
                    self.address = addr.clone();
                    self.state = ConnState::Listening(addr);
                }
                Vec::new()
            }
        }
    }

    fn on_key(&mut self, k: KeyEvent) -> Vec<Command> {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return Vec::new();
        }
        if self.confirm_quit {
            match k.code {
                KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => self.quit = true,
                KeyCode::Char('n' | 'N') | KeyCode::Esc => self.confirm_quit = false,
                _ => {}
            }
            return Vec::new();
        }
        if self.editing {
            self.edit(k);
            return Vec::new();
        }
        if self.show_help || self.show_error {
            let action = dispatch(&k);
            match action {
                Some(Action::Down) => self.help_scroll = self.help_scroll.saturating_add(1),
                Some(Action::PageDown) => self.help_scroll = self.help_scroll.saturating_add(10),
                Some(Action::Up) => self.help_scroll = self.help_scroll.saturating_sub(1),
                Some(Action::PageUp) => self.help_scroll = self.help_scroll.saturating_sub(10),
                _ => {}
            }
            let close = matches!(
                action,
                Some(Action::Help | Action::Back | Action::Quit | Action::Details | Action::Enter)
            );
            if close {
                self.show_help = false;
                self.show_error = false;
            }
            return Vec::new();
        }
        if self.focus == Pane::Connection {
            if k.code == KeyCode::Char('r') && k.modifiers.contains(KeyModifiers::CONTROL) {
                self.reveal = !self.reveal;
                return Vec::new();
            }
            if self.type_into_field(&k) {
                return Vec::new();
            }
        }
        let Some(action) = dispatch(&k) else {
            return Vec::new();
        };
        match action {
            // Quitting mid-transfer cancels it: asked first.
            Action::Quit if self.transferring() => self.confirm_quit = true,
            Action::Quit => self.quit = true,
            Action::Stop => return self.stop(),
            Action::Details => self.show_error = !self.error_text().is_empty(),
            Action::Help => {
                self.show_help = true;
                self.help_scroll = 0;
            }
            Action::NextPane => self.focus = cycle(self.focus, 1),
            Action::PrevPane => self.focus = cycle(self.focus, PANES.len() - 1),
            Action::ToggleRole => self.toggle_role(),
            Action::Follow => self.log_scroll = 0,
            Action::Zoom => self.zoom = !self.zoom,
            _ => return self.pane_action(action),
        }
        Vec::new()
    }

    fn toggle_role(&mut self) {
        if self.busy() {
            return; // the engine is running in this role
        }
        self.role = match self.role {
            Role::Receive => Role::Send,
            Role::Send => Role::Receive,
        };
        std::mem::swap(&mut self.address, &mut self.other_address);
        if self.passphrase_generated {
            self.passphrase.clear();
            self.passphrase_generated = false;
        }
    }

    fn pane_action(&mut self, action: Action) -> Vec<Command> {
        match self.focus {
            Pane::Connection => self.connection_action(action),
            Pane::Files => self.files_action(action),
            Pane::Chunks => {
                let oldest = self.log.len().saturating_sub(1);
                match action {
                    Action::Up => self.log_scroll = (self.log_scroll + 1).min(oldest),
                    Action::PageUp => self.log_scroll = (self.log_scroll + PAGE).min(oldest),
                    Action::Down => self.log_scroll = self.log_scroll.saturating_sub(1),
                    Action::PageDown => self.log_scroll = self.log_scroll.saturating_sub(PAGE),
                    _ => {}
                }
                Vec::new()
            }
            Pane::Stats | Pane::Preview => {
                let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
                if let Some(cur) = self.current.and_then(|c| ids.iter().position(|i| *i == c)) {
                    let next = match action {
                        Action::Up | Action::Left => cur.checked_sub(1),
                        Action::Down | Action::Right => Some(cur + 1).filter(|n| *n < ids.len()),
                        _ => None,
                    };
                    if let Some(n) = next {
                        return self.show_transfer(ids[n]);
                    }
                }
                Vec::new()
            }
        }
    }

    fn connection_action(&mut self, action: Action) -> Vec<Command> {
        let idx = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
        match action {
            Action::Up => self.field = FIELDS[idx.saturating_sub(1)],
            Action::Down => self.field = FIELDS[(idx + 1).min(FIELDS.len() - 1)],
            Action::Left | Action::Right if self.field == Field::Role => self.toggle_role(),
            Action::Enter => match self.field {
                Field::Role => self.toggle_role(),
                Field::Action if self.busy() => return self.stop(),
                Field::Action => return self.start(),
                _ => self.begin_edit(),
            },
            _ => {}
        }
        Vec::new()
    }

    fn files_action(&mut self, action: Action) -> Vec<Command> {
        if self.role == Role::Receive {
            return self.received_action(action);
        }
        let before = self.selected;
        let cmds = self.browser_action(action);
        if self.selected != before {
            self.browse_moved();
        }
        cmds
    }

    fn browser_action(&mut self, action: Action) -> Vec<Command> {
        let Some(entry) = self.entries.get(self.selected).cloned() else {
            return Vec::new();
        };
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(self.entries.len() - 1),
            Action::PageUp => self.selected = self.selected.saturating_sub(PAGE),
            Action::PageDown => self.selected = (self.selected + PAGE).min(self.entries.len() - 1),
            Action::Left | Action::Back => {
                if let Some(parent) = self.cwd.parent().map(PathBuf::from) {
                    return self.enter_dir(parent);
                }
            }
            Action::Right if entry.is_dir => return self.enter_dir(entry.path),
            Action::Mark if !entry.is_dir => {
                if !self.marked.remove(&entry.path) {
                    self.marked.insert(entry.path);
                }
                self.selected = (self.selected + 1).min(self.entries.len() - 1);
            }
            Action::Enter if entry.is_dir => return self.enter_dir(entry.path),
            Action::Enter => {
                if self.marked.is_empty() {
                    self.marked.insert(entry.path);
                }
                return self.start();
            }
            Action::Open => return vec![Command::Open(entry.path)],
            _ => {}
        }
        Vec::new()
    }

    fn enter_dir(&mut self, path: PathBuf) -> Vec<Command> {
        self.cwd = path.clone();
        self.selected = 0;
        self.entries.clear();
        vec![Command::ReadDir(path)]
    }

    /// Stops listening, or cancels the running send.
    fn stop(&mut self) -> Vec<Command> {
        match &self.state {
            ConnState::Listening(addr) => {
                let text = format!("stopped listening on {addr}");
                self.note("", text.clone());
                self.state = ConnState::Stopped(text);
                vec![Command::StopListening]
            }
            ConnState::Handshaking(addr) | ConnState::Connected(addr) => {
                let addr = addr.clone();
                self.note("", format!("cancelling the send to {addr}"));
                self.state = ConnState::Cancelling(addr);
                vec![Command::CancelSend]
            }
            _ => Vec::new(),
        }
    }

    /// Listen or connect with the current fields.
    fn start(&mut self) -> Vec<Command> {
        if self.busy() {
            return Vec::new();
        }
        let passphrase = if self.insecure {
            None
        } else if crate::proto::crypto::normalize(&self.passphrase).is_empty() {
            if self.role == Role::Receive {
                self.passphrase = crate::passphrase::generate();
                self.passphrase_generated = true;
                Some(self.passphrase.clone())
            } else {
                self.state = ConnState::Error("enter the receiver's passphrase first".to_owned());
                self.focus = Pane::Connection;
                self.field = Field::Passphrase;
                return Vec::new();
            }
        } else {
            Some(self.passphrase.clone())
        };
        match self.role {
            Role::Receive => {
                self.state = ConnState::Listening(self.address.clone());
                vec![Command::Listen {
                    addr: self.address.clone(),
                    out: PathBuf::from(&self.out_dir),
                    passphrase,
                }]
            }
            Role::Send => {
                if self.address.trim().is_empty() {
                    self.state = ConnState::Error(
                        "type the receiver's address first (HOST or HOST:PORT)".to_owned(),
                    );
                    self.focus = Pane::Connection;
                    self.field = Field::Address;
                    return Vec::new();
                }
                if self.marked.is_empty() {
                    self.state = ConnState::Error(
                        "choose files in the Files pane (Space marks, Enter sends)".to_owned(),
                    );
                    return Vec::new();
                }
                self.state = ConnState::Handshaking(self.address.clone());
                let files: Vec<(TransferId, PathBuf)> = self
                    .marked
                    .clone()
                    .into_iter()
                    .map(|path| {
                        let id = self.next_send_id;
                        self.next_send_id += 1;
                        self.send_paths.insert(id, path.clone());
                        (id, path)
                    })
                    .collect();
                vec![Command::Send {
                    to: self.address.clone(),
                    files,
                    passphrase,
                }]
            }
        }
    }

    fn name_of(&self, id: TransferId) -> String {
        self.transfers
            .get(&id)
            .map(|t| t.offer.name.clone())
            .unwrap_or_default()
    }

    fn note(&mut self, image: &str, text: String) {
        self.push_log(LogLine {
            at: self.now,
            image: image.to_owned(),
            kind: LogKind::Note(text),
        });
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
        if self.log_scroll > 0 {
            self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
        }
    }

    /// Moves this frame's chunk events into the log, folding a burst into one summary line.
    fn flush_log(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.len() > LOG_BURST {
            return self.fold_burst(&pending);
        }
        for (id, chunk, what) in pending {
            let (image, bytes) = match self.transfers.get(&id) {
                Some(t) => (
                    t.offer.name.clone(),
                    t.offer.chunk_len(chunk).unwrap_or(0) as u32,
                ),
                None => (String::new(), 0),
            };
            self.push_log(LogLine {
                at: self.now,
                image,
                kind: LogKind::Chunk { chunk, bytes, what },
            });
        }
    }

    fn show_transfer(&mut self, id: TransferId) -> Vec<Command> {
        self.current = Some(id);
        let Some(t) = self.transfers.get(&id) else {
            return Vec::new();
        };
        self.preview = Preview {
            title: t.offer.name.clone(),
            image: None,
            id: Some(id),
            chunks: (t.direction == Direction::Receive && t.result.is_none())
                .then(|| ChunkMap::new(t.offer.chunk_count)),
            ..Preview::default()
        };
        match (&t.path, t.direction) {
            (Some(p), _) => vec![Command::LoadPreview(id, p.clone())],
            _ => Vec::new(),
        }
    }

    fn on_engine(&mut self, ev: Event) -> Vec<Command> {
        match ev {
            Event::Started {
                id,
                direction,
                peer,
                offer,
            } => {
                let name = offer.name.clone();
                let chunks = offer.chunk_count;
                // What the offer says until the first figures arrive: the Stats pane and the
                // chunk map agree on the count from the start.
                let stats = TransferStats {
                    bytes: offer.size,
                    chunks,
                    ..TransferStats::default()
                };
                // A send's file is on disk: show it at once.
                let path = self.send_paths.remove(&id);
                if direction == Direction::Send {
                    self.state = ConnState::Handshaking(peer.to_string());
                }
                self.transfers.insert(
                    id,
                    TransferView {
                        offer,
                        direction,
                        peer,
                        stats,
                        started_at: self.now,
                        elapsed: Duration::ZERO,
                        result: None,
                        path: path.clone(),
                        history: VecDeque::new(),
                    },
                );
                self.fold_old_transfers();
                let verb = match direction {
                    Direction::Send => "sending to",
                    Direction::Receive => "receiving from",
                };
                self.note(&name, format!("{verb} {peer}: {chunks} chunks"));
                self.current = Some(id);
                self.preview = Preview {
                    title: name,
                    image: None,
                    id: Some(id),
                    chunks: (direction == Direction::Receive).then(|| ChunkMap::new(chunks)),
                    ..Preview::default()
                };
                return path.map_or_else(Vec::new, |p| vec![Command::LoadPreview(id, p)]);
            }
            Event::Connected { peer, .. } => {
                if matches!(self.state, ConnState::Handshaking(_)) {
                    self.state = ConnState::Connected(peer.to_string());
                }
            }
            Event::Chunk(c) => {
                if let Some(seen) = self.preview.chunks.as_mut()
                    && self.preview.id == Some(c.id)
                    && matches!(c.what, ChunkWhat::Received | ChunkWhat::Recovered)
                {
                    seen.insert(c.chunk);
                }
                self.pending.push((c.id, c.chunk, c.what));
                if self.pending.len() > 10 * LOG_BURST {
                    self.flush_log();
                }
            }
            Event::Finished(r) => {
                self.flush_log();
                let name = r.offer.name.clone();
                let text = match &r.result {
                    Ok(()) => format!(
                        "done: {} {}",
                        crate::report::human_bytes(r.offer.size),
                        crate::report::verdict_figures(&r)
                    ),
                    Err(e) => format!("failed: {e}"),
                };
                self.note(&name, text);
                if let Some(t) = self.transfers.get_mut(&r.id) {
                    // A receiver whose session ended before its verdict (the sender closed
                    // it) may no longer have its figures and report none: keep the last ones.
                    if r.stats.chunks > 0 {
                        t.stats = r.stats.clone();
                    }
                    // A verified file is all there, whatever the sender's acknowledgements
                    // had counted when the verdict overtook them.
                    if r.result.is_ok() {
                        t.stats.chunks_done = t.stats.chunks;
                    }
                    t.elapsed = r.duration;
                    t.result = Some(r.result.clone());
                    if r.path.is_some() {
                        t.path = r.path.clone();
                    }
                }
                if r.direction == Direction::Receive && r.result.is_ok() {
                    self.preview.chunks = None;
                }
                // A cancel's failures are what was asked for: the state says so at the end.
                if let (Direction::Send, Err(e)) = (r.direction, &r.result)
                    && !matches!(self.state, ConnState::Cancelling(_))
                {
                    self.state = ConnState::Error(e.clone());
                }
                // The verified image replaces the chunk map, if the user is looking at it.
                if r.direction == Direction::Receive
                    && r.result.is_ok()
                    && self.current == Some(r.id)
                    && let Some(p) = &r.path
                {
                    return vec![Command::LoadPreview(r.id, p.clone())];
                }
            }
            Event::Notice(n) => {
                // A sender that got the passphrase wrong: the receiver goes on listening.
                if matches!(n, crate::engine::Notice::AuthFailed { .. }) {
                    self.failed_logins += 1;
                }
                self.note("", n.to_string());
            }
        }
        Vec::new()
    }

    /// True while an engine runs in the current role (the role and fields are then fixed).
    pub fn busy(&self) -> bool {
        matches!(
            self.state,
            ConnState::Listening(_)
                | ConnState::Handshaking(_)
                | ConnState::Connected(_)
                | ConnState::Cancelling(_)
        )
    }

    /// True while quitting would cut a transfer short: a send runs, or a file is arriving.
    pub fn transferring(&self) -> bool {
        matches!(
            self.state,
            ConnState::Handshaking(_) | ConnState::Connected(_)
        ) || !self.receiving_from().is_empty()
    }

    /// Receive transfers in progress and their peers, for the state line.
    pub fn receiving_from(&self) -> Vec<SocketAddr> {
        self.transfers
            .values()
            .filter(|t| t.direction == Direction::Receive && t.result.is_none())
            .map(|t| t.peer)
            .collect()
    }

    /// True while a popup (help, a question, an error) covers the panes.
    pub fn popup_open(&self) -> bool {
        self.show_help || self.confirm_quit || self.show_error
    }

    /// The errors on screen, in full: the state's, and the shown transfer's if it failed
    /// otherwise. Empty when there is none.
    pub fn error_text(&self) -> String {
        let mut parts = Vec::new();
        if let ConnState::Error(e) = &self.state {
            parts.push(e.clone());
        }
        if let Some(t) = self.current_transfer()
            && let Some(Err(e)) = &t.result
            && !parts.contains(e)
        {
            parts.push(format!("{}: {e}", t.offer.name));
        }
        parts.join("\n\n")
    }

    /// The pane that fills the screen, if one does.
    pub fn zoomed(&self) -> Option<Pane> {
        self.zoom.then_some(self.focus)
    }

    /// The transfer shown in Stats and Preview.
    pub fn current_transfer(&self) -> Option<&TransferView> {
        self.current.and_then(|id| self.transfers.get(&id))
    }
}

fn files_not_delivered(n: usize) -> String {
    match n {
        1 => "1 file not delivered".to_owned(),
        n => format!("{n} files not delivered"),
    }
}

fn cycle(p: Pane, by: usize) -> Pane {
    let i = PANES.iter().position(|x| *x == p).unwrap_or(0);
    PANES[(i + by) % PANES.len()]
}
