//! The TUI's state and its pure update: messages in, state changed, side effects returned as
//! [`Command`]s for the runtime to carry out. No I/O here, so tests drive it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use image::RgbImage;

mod browser;
mod chunk_log;
mod form;
mod hints;
mod mouse;
mod popups;
mod preview;
mod received;
mod session;
mod transfers;

use browser::Browsed;
pub use browser::{BROWSE_IDS, BROWSE_SETTLE, Entry, FileBrowser};
pub use chunk_log::{ChunkLog, LOG_BURST, LOG_CAPACITY, LogKind, LogLine};
use form::Ask;
pub use form::{ConnectionForm, FIELD_MAX, Field};
pub use mouse::{Hit, WHEEL};
pub use popups::Popups;
pub use preview::Preview;
pub use session::SessionFigures;
pub use transfers::{HISTORY, MAX_TRANSFERS, SEND_IDS, TransferView, Transfers};

use super::keymap::{Action, dispatch};
use crate::engine::{Direction, Event, Report, Snapshot, TransferId};
use crate::proto::wire::Offer;

/// Lines or entries a PageUp / PageDown moves.
pub const PAGE: usize = 10;
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

/// Everything on screen.
#[derive(Debug, Clone)]
pub struct App {
    /// The Connection pane's settings.
    pub form: ConnectionForm,
    /// Focused pane.
    pub focus: Pane,
    /// Connection state.
    pub state: ConnState,
    /// The Files pane in the Send role.
    pub browser: FileBrowser,
    /// The chunk log.
    pub log: ChunkLog,
    /// The session's transfers, and the one shown.
    pub transfers: Transfers,
    /// Senders this receiver turned away for a wrong passphrase.
    pub failed_logins: u64,
    /// The image pane.
    pub preview: Preview,
    /// The popups over the panes.
    pub popups: Popups,
    /// The focused pane fills the screen.
    pub zoom: bool,
    /// Time since start (advanced by ticks).
    pub now: Duration,
    /// Set when the user quits.
    pub quit: bool,
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
    /// Cancel one file of the running send; the receiver is told, the others go on.
    CancelFile(TransferId),
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
            form: ConnectionForm::new(&setup),
            focus: Pane::Connection,
            state: ConnState::Idle,
            browser: FileBrowser::new(setup.cwd.clone()),
            log: ChunkLog::default(),
            transfers: Transfers::default(),
            failed_logins: 0,
            preview: Preview::default(),
            popups: Popups::default(),
            zoom: false,
            now: Duration::ZERO,
            quit: false,
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
                self.log.dropped = s.dropped_events;
                self.transfers.progress(s.transfers);
                Vec::new()
            }
            Msg::Tick(now) => {
                self.now = now;
                self.flush_log();
                let cmds = self.browse_tick();
                self.transfers.sample();
                cmds
            }
            Msg::Dir(path, entries) => {
                if self.browser.listed(path, entries) {
                    self.browse_moved();
                }
                Vec::new()
            }
            Msg::DirInfo(path, infos) => {
                self.browser.info(path, infos);
                Vec::new()
            }
            Msg::PreviewReady(id, img) => {
                self.preview.decoded(id, img);
                Vec::new()
            }
            Msg::Failed(e) => {
                self.state = ConnState::Error(e.clone());
                self.note("", e);
                Vec::new()
            }
            Msg::SendFinished(failed) => {
                self.on_send_finished(failed);
                Vec::new()
            }
            Msg::Listening(addr) => {
                self.on_listening(addr);
                Vec::new()
            }
            Msg::Paste(text) => {
                self.form.paste(&text);
                Vec::new()
            }
        }
    }

    /// Every file of the send was handled, `failed` of them not delivered.
    fn on_send_finished(&mut self, failed: usize) {
        self.transfers.send_ended();
        // A failure already in the state (say, a failed login) says more than a count.
        if matches!(self.state, ConnState::Cancelling(_)) {
            let text = format!("send cancelled: {}", files_not_delivered(failed));
            self.note("", text.clone());
            self.state = ConnState::Stopped(text);
        } else if failed == 0 {
            // Sent and verified: the marks have done their job. (A failure keeps
            // them, to send again.)
            self.browser.marked.clear();
            self.state = ConnState::Sent;
        } else if !matches!(self.state, ConnState::Error(_)) {
            self.state = ConnState::Error(format!(
                "{}; see the chunk log",
                crate::report::count(failed as u64, "file failed", "files failed")
            ));
        }
    }

    /// The receiver is bound: its real address replaces the one asked for.
    fn on_listening(&mut self, addr: SocketAddr) {
        if matches!(self.state, ConnState::Listening(_)) {
            // What the field asked for may be port 0: show where senders must go.
            let addr = addr.to_string();
            self.note("", format!("listening on {addr}"));
            self.form.address = addr.clone();
            self.state = ConnState::Listening(addr);
        }
    }

    /// A key goes to the first that takes it: Ctrl-C, the quit question, the field being
    /// edited, the help or error, typing into the form, then the key table (global keys, else
    /// the focused component's). So no key meant for a popup or a field reaches a pane.
    fn on_key(&mut self, k: KeyEvent) -> Vec<Command> {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return Vec::new();
        }
        if self.popups.confirm_quit {
            if self.popups.answer(k) {
                self.quit = true;
            }
            return Vec::new();
        }
        if self.form.editing {
            self.form.edit(k);
            return Vec::new();
        }
        if self.popups.help || self.popups.error {
            self.popups.scroll_or_close(&k);
            return Vec::new();
        }
        if self.focus == Pane::Connection && self.form.key(&k, self.busy()) {
            return Vec::new();
        }
        let Some(action) = dispatch(&k) else {
            return Vec::new();
        };
        match action {
            // Quitting mid-transfer cancels it: asked first.
            Action::Quit if self.transferring() => self.popups.confirm_quit = true,
            Action::Quit => self.quit = true,
            Action::Stop => return self.stop(),
            Action::CancelFile => return self.cancel_file(),
            Action::Details => self.popups.error = !self.error_text().is_empty(),
            Action::Help => self.popups.show_help(),
            Action::NextPane => self.focus = cycle(self.focus, 1),
            Action::PrevPane => self.focus = cycle(self.focus, PANES.len() - 1),
            Action::ToggleRole => self.toggle_role(),
            Action::Follow => self.log.follow(),
            Action::Zoom => self.zoom = !self.zoom,
            _ => return self.pane_action(action),
        }
        Vec::new()
    }

    fn toggle_role(&mut self) {
        let busy = self.busy();
        self.form.toggle_role(busy);
    }

    fn pane_action(&mut self, action: Action) -> Vec<Command> {
        match self.focus {
            Pane::Connection => self.connection_action(action),
            Pane::Files => self.files_action(action),
            Pane::Chunks => {
                self.log.action(action);
                Vec::new()
            }
            Pane::Stats | Pane::Preview => match self.transfers.step(action) {
                Some(id) => self.show_transfer(id),
                None => Vec::new(),
            },
        }
    }

    fn connection_action(&mut self, action: Action) -> Vec<Command> {
        let busy = self.busy();
        let ask = self.form.action(action, busy);
        self.on_ask(ask)
    }

    /// Does what the form asked for.
    fn on_ask(&mut self, ask: Option<Ask>) -> Vec<Command> {
        match ask {
            Some(Ask::Start) => self.start(),
            Some(Ask::Stop) => self.stop(),
            None => Vec::new(),
        }
    }

    fn files_action(&mut self, action: Action) -> Vec<Command> {
        if self.form.role == Role::Receive {
            return self.received_action(action);
        }
        let before = self.browser.selected;
        let cmds = match self.browser.action(action) {
            Browsed::Done(cmds) => cmds,
            Browsed::Send => self.start(),
        };
        if self.browser.selected != before {
            self.browse_moved();
        }
        cmds
    }

    /// The browser's cursor moved: in the Send role, preview the image once it rests there.
    fn browse_moved(&mut self) {
        if self.form.role == Role::Send {
            self.browser.rest(self.now);
        }
    }

    /// On each tick: the decode of a rested-on image, once.
    fn browse_tick(&mut self) -> Vec<Command> {
        let Some((id, path)) = self.browser.settled(self.now, self.preview.path.as_ref()) else {
            return Vec::new();
        };
        self.preview = Preview::of_file(id, path.clone());
        vec![Command::LoadPreview(id, path)]
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

    /// Cancels the one file of the running send that the Files pane highlights, or else
    /// the one Stats and Preview show.
    fn cancel_file(&mut self) -> Vec<Command> {
        if self.form.role != Role::Send || !self.transferring() {
            return Vec::new();
        }
        let id = match self.focus {
            Pane::Files => self
                .browser
                .highlighted()
                .and_then(|p| self.transfers.unfinished_send_of(p)),
            _ => self.transfers.current.filter(|id| {
                self.transfers
                    .by_id
                    .get(id)
                    .is_some_and(|t| t.direction == Direction::Send && t.result.is_none())
            }),
        };
        let Some(id) = id else {
            self.note("", "no file of the send here to cancel".to_owned());
            return Vec::new();
        };
        let name = self.transfers.name_of_send(id);
        self.note(&name, "cancelling this file; the others go on".to_owned());
        vec![Command::CancelFile(id)]
    }

    /// Listen or connect with the current fields.
    fn start(&mut self) -> Vec<Command> {
        if self.busy() {
            return Vec::new();
        }
        let passphrase = match self.form.login() {
            Ok(passphrase) => passphrase,
            Err(e) => {
                self.state = ConnState::Error(e);
                self.focus = Pane::Connection;
                return Vec::new();
            }
        };
        match self.form.role {
            Role::Receive => {
                self.state = ConnState::Listening(self.form.address.clone());
                vec![Command::Listen {
                    addr: self.form.address.clone(),
                    out: PathBuf::from(&self.form.out_dir),
                    passphrase,
                }]
            }
            Role::Send => self.start_send(passphrase),
        }
    }

    /// Sends the marked files, once the receiver's address is typed and files are marked.
    fn start_send(&mut self, passphrase: Option<String>) -> Vec<Command> {
        if self.form.address.trim().is_empty() {
            self.state = ConnState::Error(
                "type the receiver's address first (HOST or HOST:PORT)".to_owned(),
            );
            self.focus = Pane::Connection;
            self.form.field = Field::Address;
            return Vec::new();
        }
        if self.browser.marked.is_empty() {
            self.state = ConnState::Error(
                "choose files in the Files pane (Space marks, Enter sends)".to_owned(),
            );
            return Vec::new();
        }
        self.state = ConnState::Handshaking(self.form.address.clone());
        let marked = self.browser.marked.iter().cloned().collect();
        let files = self.transfers.number_sends(marked);
        vec![Command::Send {
            to: self.form.address.clone(),
            files,
            passphrase,
        }]
    }

    fn note(&mut self, image: &str, text: String) {
        self.log.note(self.now, image, text);
    }

    /// Moves this frame's chunk events into the log.
    fn flush_log(&mut self) {
        self.log.flush(self.now, &self.transfers.by_id);
    }

    fn show_transfer(&mut self, id: TransferId) -> Vec<Command> {
        self.transfers.current = Some(id);
        let Some(t) = self.transfers.by_id.get(&id) else {
            return Vec::new();
        };
        let arriving = t.direction == Direction::Receive && t.result.is_none();
        let chunks = arriving.then_some(t.offer.chunk_count);
        self.preview = Preview::of_transfer(id, t.offer.name.clone(), chunks);
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
            } => return self.on_started(id, direction, peer, offer),
            Event::Connected { peer, .. } => {
                if matches!(self.state, ConnState::Handshaking(_)) {
                    self.state = ConnState::Connected(peer.to_string());
                }
            }
            Event::Chunk(c) => {
                self.preview.chunk(c.id, c.chunk, c.what);
                if self.log.hold(c.id, c.chunk, c.what) {
                    self.flush_log();
                }
            }
            Event::Finished(r) => return self.on_finished(&r),
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

    /// A transfer started: it is logged and shown.
    fn on_started(
        &mut self,
        id: TransferId,
        direction: Direction,
        peer: SocketAddr,
        offer: Offer,
    ) -> Vec<Command> {
        let name = offer.name.clone();
        let chunks = offer.chunk_count;
        if direction == Direction::Send {
            self.state = ConnState::Handshaking(peer.to_string());
        }
        let path = self.transfers.start(id, direction, peer, offer, self.now);
        let verb = match direction {
            Direction::Send => "sending to",
            Direction::Receive => "receiving from",
        };
        self.note(&name, format!("{verb} {peer}: {chunks} chunks"));
        let map = (direction == Direction::Receive).then_some(chunks);
        self.preview = Preview::of_transfer(id, name, map);
        path.map_or_else(Vec::new, |p| vec![Command::LoadPreview(id, p)])
    }

    /// A transfer's verdict: logged, its figures final, the state and preview told.
    fn on_finished(&mut self, r: &Report) -> Vec<Command> {
        self.flush_log();
        let name = r.offer.name.clone();
        let text = match &r.result {
            Ok(()) => format!(
                "done: {} {}",
                crate::report::human_bytes(r.offer.size),
                crate::report::verdict_figures(r)
            ),
            Err(e) => format!("failed: {e}"),
        };
        self.note(&name, text);
        self.transfers.finish(r);
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
            && self.transfers.current == Some(r.id)
            && let Some(p) = &r.path
        {
            return vec![Command::LoadPreview(r.id, p.clone())];
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
        ) || !self.transfers.receiving_from().is_empty()
    }

    /// True while a popup (help, a question, an error) covers the panes.
    pub fn popup_open(&self) -> bool {
        self.popups.open()
    }

    /// The errors on screen, in full: the state's, and the shown transfer's if it failed
    /// otherwise. Empty when there is none.
    pub fn error_text(&self) -> String {
        let mut parts = Vec::new();
        if let ConnState::Error(e) = &self.state {
            parts.push(e.clone());
        }
        if let Some(t) = self.transfers.current_transfer()
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
