//! Rendering tests: the whole screen drawn into ratatui's TestBackend, compared with insta
//! snapshots in `tests/snapshots/`: the text in monochrome at 80×24 and 160×48, and, where
//! colour carries meaning (the chunk log, the loss figures, the focused pane), the screen in
//! colour with a map of every cell's colour and modifiers under each row (`*_styles_*`).
//!
//! The screens are reached the way the real TUI reaches them: by keys, and by what the engines
//! publish. The engines' part is recorded from the real protocol cores (a sender and a
//! receiver) talking over a deterministic simulated link on a virtual clock, turned into events
//! exactly as `engine::send` and `engine::run_receiver` publish them, and replayed frame by
//! frame in the order `tui::run_on` reads them: the engine's events, then its latest snapshot,
//! then the frame's tick. No field of the app is set by hand (but a generated passphrase,
//! random, swapped for one the generator could have made), and every replayed frame is checked
//! for figures that disagree. One test drives `run_on` itself, with a real receive on loopback.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rand::SeedableRng;
use rand::rngs::StdRng;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use udpix::engine::{
    self, ChunkEvent, ChunkWhat, Direction, Event, Notice, Progress, Report, Snapshot, TransferId,
};
use udpix::proto::crypto::Passphrase;
use udpix::proto::receiver::{FileKey, Receiver, ReceiverConfig, ReceiverEvent};
use udpix::proto::sender::{Sender, SenderConfig, SenderEvent};
use udpix::proto::stats::TransferStats;
use udpix::sim::{Link, LinkSpec};
use udpix::tui::app::{App, Command, ConnState, Entry, LogKind, Msg, Pane, Role, Setup};
use udpix::tui::halfblock::ColorDepth;
use udpix::tui::view::{Theme, draw};

const MONO: Theme = Theme {
    depth: ColorDepth::Mono,
    graphics: false,
    cell_aspect: 2.0,
};

const COLOUR: Theme = Theme {
    depth: ColorDepth::TrueColor,
    graphics: false,
    cell_aspect: 2.0,
};

/// The passphrase both sides share.
const PASS: &str = "417-orbit-lantern-mosaic";
const OUT: &str = "/data/in";
const PHOTOS: &str = "/data/photos";
const SEND_ID: TransferId = udpix::tui::app::SEND_IDS;
/// What the runtime's frame interval comes to (30 frames a second, in whole milliseconds).
const FRAME: Duration = Duration::from_millis(1000 / 30);

/// The receiver: it listens on 0.0.0.0:7878 and is reached at this address.
fn receiver_addr() -> SocketAddr {
    "192.0.2.1:7878".parse().expect("addr")
}

/// The sender, as the receiver sees it.
fn sender_addr() -> SocketAddr {
    "192.0.2.7:40000".parse().expect("addr")
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(name)
}

fn image_bytes(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).expect("../shared/testdata must exist beside the checkout")
}

fn setup(role: Role) -> Setup {
    Setup {
        role,
        address: match role {
            Role::Receive => "0.0.0.0:7878".into(),
            Role::Send => receiver_addr().to_string(),
        },
        other_address: String::new(),
        passphrase: Some(PASS.into()),
        generated: false,
        insecure: false,
        out_dir: OUT.into(),
        cwd: PathBuf::from(PHOTOS),
        autostart: false,
    }
}

fn render(app: &App, w: u16, h: u16, theme: Theme) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, app, &theme)).expect("draw");
    t
}

fn mono(app: &App, w: u16, h: u16) -> String {
    format!("{}", render(app, w, h, MONO).backend())
}

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

// ---------------------------------------------------------------------------------------------
// The style map.

/// The screen drawn in colour: each row of text, and under it one character per cell for the
/// cell's colour and modifiers, explained by the legend that ends the map. Blank cells show
/// blank unless something on them is visible (a background, reversed video).
fn styles(app: &App, w: u16, h: u16) -> String {
    style_map(render(app, w, h, COLOUR).backend().buffer())
}

fn style_map(buf: &Buffer) -> String {
    let mut legend: BTreeMap<char, String> = BTreeMap::new();
    // Styles without a letter of their own, numbered as they first appear.
    let mut others: Vec<(Color, Color, Modifier)> = Vec::new();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let (mut text, mut codes) = (String::new(), String::new());
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            text.push_str(cell.symbol());
            let (code, meaning) = style_code(cell, &mut others);
            codes.push(code);
            legend.entry(code).or_insert(meaning);
        }
        out.push_str(&format!("{y:>2} {text}\n   {}\n", codes.trim_end()));
    }
    out.push_str("legend:\n");
    for (code, meaning) in legend.iter().filter(|(c, _)| **c != ' ') {
        out.push_str(&format!("  {code}  {meaning}\n"));
    }
    out
}

fn style_code(
    cell: &ratatui::buffer::Cell,
    others: &mut Vec<(Color, Color, Modifier)>,
) -> (char, String) {
    let pixel = |c: Color| matches!(c, Color::Rgb(..) | Color::Indexed(_));
    if pixel(cell.fg) || pixel(cell.bg) {
        return ('#', "image pixels (RGB colours)".into());
    }
    let bold = cell.modifier.contains(Modifier::BOLD);
    let rest = cell.modifier - Modifier::BOLD;
    if cell.bg == Color::Reset && rest.is_empty() {
        if cell.symbol().trim().is_empty() {
            return (' ', String::new());
        }
        let named = match cell.fg {
            Color::Reset => Some(('.', "default colour")),
            Color::Red => Some(('r', "red")),
            Color::Green => Some(('g', "green")),
            Color::Yellow => Some(('y', "yellow")),
            Color::Blue => Some(('b', "blue")),
            Color::Magenta => Some(('m', "magenta")),
            Color::Cyan => Some(('c', "cyan")),
            Color::DarkGray => Some(('d', "dark grey")),
            Color::LightBlue => Some(('l', "light blue")),
            _ => None,
        };
        if let Some((c, name)) = named {
            return match (bold, c) {
                (false, _) => (c, name.into()),
                (true, '.') => ('*', "default colour, bold".into()),
                (true, _) => (c.to_ascii_uppercase(), format!("{name}, bold")),
            };
        }
    }
    let key = (cell.fg, cell.bg, cell.modifier);
    let i = others.iter().position(|k| *k == key).unwrap_or_else(|| {
        others.push(key);
        others.len() - 1
    });
    let code = char::from_digit(i as u32, 10).expect("at most 10 other styles");
    (
        code,
        format!("fg {:?}, bg {:?}, {:?}", cell.fg, cell.bg, cell.modifier),
    )
}

// ---------------------------------------------------------------------------------------------
// Recordings: what the engines publish during a real transfer on a simulated link.

/// One thing the TUI's runtime reads, as an engine or the runtime itself produced it.
#[derive(Debug, Clone)]
enum Out {
    /// On the engine's event channel.
    Event(Event),
    /// On the engine's figures channel, a `watch`: a frame reads only the latest.
    Snapshot(Snapshot),
    /// The runtime's own message (the end of a send), after the engine's last event.
    Runtime(Msg),
}

/// What one engine published, at virtual times since the transfer began.
type Timeline = Vec<(Duration, Out)>;

/// The same transfer seen from both ends.
#[derive(Debug, Clone, Default)]
struct Recording {
    receiver: Timeline,
    sender: Timeline,
}

/// One transfer to record.
struct Scenario {
    /// The file: its name is offered as is.
    name: &'static str,
    data: Vec<u8>,
    /// The id the receiving engine gives it (its transfers are numbered from 1).
    receiver_id: TransferId,
    sender_pass: &'static str,
    /// Chunks whose first copy the link loses on the way to the receiver.
    lose_first: &'static [u32],
    /// Chunks whose first copy the link delays by [`LATE`]: declared lost and sent again,
    /// the copy that arrives second is a duplicate.
    delay_first: &'static [u32],
    /// The sender gives up, with this reason, once this many chunks are acknowledged.
    cancel: Option<(u32, &'static str)>,
}

/// How late a delayed first copy arrives.
const LATE: Duration = Duration::from_millis(80);

/// How often an engine publishes figures (`engine::STATS_INTERVAL`).
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

fn snapshot_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.duration_since(t) >= SNAPSHOT_EVERY)
}

/// `engine::run_receiver` without its socket and clock.
struct ReceiveEngine {
    core: Receiver,
    id: TransferId,
    /// The session being received: its key, start, offer and the bytes placed so far.
    incoming: Option<(FileKey, Instant, udpix::proto::wire::Offer, Vec<u8>)>,
    to_verify: Vec<FileKey>,
    last_snapshot: Option<Instant>,
    out: Timeline,
    start: Instant,
}

impl ReceiveEngine {
    fn publish(&mut self, now: Instant, out: Out) {
        self.out.push((now - self.start, out));
    }

    /// The loop's top: verdicts first (they arrive on a channel while it waits), transmit,
    /// the core's events, figures when due.
    fn turn(&mut self, now: Instant, down: &mut impl FnMut(Instant, Vec<u8>)) {
        for key in std::mem::take(&mut self.to_verify) {
            self.conclude(now, key);
        }
        while let Some(t) = self.core.poll_transmit(now) {
            down(now, t.payload);
        }
        self.apply_events(now);
        if snapshot_due(self.last_snapshot, now) {
            self.last_snapshot = Some(now);
            let transfers = self
                .incoming
                .iter()
                .map(|(key, started, offer, _)| Progress {
                    id: self.id,
                    name: offer.name.clone(),
                    stats: self.core.session_stats(key).unwrap_or_default(),
                    elapsed: now - *started,
                })
                .collect();
            let snap = Snapshot {
                transfers,
                endpoint: self.core.stats().clone(),
                dropped_events: 0,
            };
            self.publish(now, Out::Snapshot(snap));
        }
    }

    /// One datagram: the core, what it decided (a new session's Started before its first
    /// chunk), then the chunk.
    fn feed(&mut self, now: Instant, mut d: Vec<u8>) {
        let placement = self
            .core
            .handle(now, sender_addr(), &mut d)
            .map(|p| (p.chunk, p.offset as usize, p.data.to_vec(), p.recovered));
        self.apply_events(now);
        if let Some((chunk, offset, data, recovered)) = placement
            && let Some((_, _, _, file)) = self.incoming.as_mut()
        {
            file[offset..offset + data.len()].copy_from_slice(&data);
            let what = if recovered {
                ChunkWhat::Recovered
            } else {
                ChunkWhat::Received
            };
            let ev = Event::Chunk(ChunkEvent {
                id: self.id,
                chunk,
                what,
            });
            self.publish(now, Out::Event(ev));
        }
    }

    fn apply_events(&mut self, now: Instant) {
        while let Some(ev) = self.core.poll_event() {
            let out = match ev {
                ReceiverEvent::Accepted { key, offer } => {
                    let size = offer.size as usize;
                    self.incoming = Some((key, now, offer.clone(), vec![0; size]));
                    Event::Started {
                        id: self.id,
                        direction: Direction::Receive,
                        peer: key.peer,
                        offer,
                    }
                }
                ReceiverEvent::Duplicate { chunk, .. } => Event::Chunk(ChunkEvent {
                    id: self.id,
                    chunk,
                    what: ChunkWhat::Duplicate,
                }),
                ReceiverEvent::Repaired {
                    chunk,
                    offset,
                    data,
                    ..
                } => {
                    let Some((_, _, _, file)) = self.incoming.as_mut() else {
                        continue;
                    };
                    let off = offset as usize;
                    file[off..off + data.len()].copy_from_slice(&data);
                    Event::Chunk(ChunkEvent {
                        id: self.id,
                        chunk,
                        what: ChunkWhat::Recovered,
                    })
                }
                ReceiverEvent::Complete { key } => {
                    self.to_verify.push(key);
                    continue;
                }
                ReceiverEvent::Failed { key, reason } => {
                    let Some((_, started, offer, _)) = self.incoming.take() else {
                        continue;
                    };
                    let stats = self.core.session_stats(&key).unwrap_or_default();
                    self.finished(key, started, offer, None, stats, now, Err(reason))
                }
                ReceiverEvent::AuthFailed { peer } => Event::Notice(Notice::AuthFailed { peer }),
                ReceiverEvent::Refused { peer, reason } => {
                    Event::Notice(Notice::Refused { peer, reason })
                }
            };
            self.publish(now, Out::Event(out));
        }
    }

    /// The hash check's verdict (the engine hashes on another thread; here at once).
    fn conclude(&mut self, now: Instant, key: FileKey) {
        let Some((_, started, offer, file)) = self.incoming.take() else {
            return;
        };
        assert_eq!(
            blake3::hash(&file).as_bytes(),
            &offer.blake3,
            "the file arrived"
        );
        self.core
            .finish(now, key, Ok(format!("saved as {}", offer.name)));
        let stats = self.core.session_stats(&key).unwrap_or_default();
        let path = Path::new(OUT).join(&offer.name);
        let ev = self.finished(key, started, offer, Some(path), stats, now, Ok(()));
        self.publish(now, Out::Event(ev));
    }

    #[allow(clippy::too_many_arguments)]
    fn finished(
        &self,
        key: FileKey,
        started: Instant,
        offer: udpix::proto::wire::Offer,
        path: Option<PathBuf>,
        stats: TransferStats,
        now: Instant,
        result: Result<(), String>,
    ) -> Event {
        Event::Finished(Box::new(Report {
            id: self.id,
            direction: Direction::Receive,
            peer: key.peer,
            offer,
            path,
            stats,
            duration: now - started,
            result,
            ends_session: false,
        }))
    }
}

/// A datagram on the simulated wire: (delivery time, sequence, to the receiver, bytes).
type InFlight = (Instant, u64, bool, Vec<u8>);

/// Runs a scenario to its end: `engine::send` (and the TUI runtime's `send_all` after it) on
/// one side, `engine::run_receiver` on the other, over a 2.4 Mbit/s link with 15 ms of delay
/// each way, losing and duplicating exactly the datagrams the scenario names.
fn record(sc: &Scenario) -> Recording {
    let start = Instant::now();
    let mut now = start;
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(sc.sender_pass)),
        ..SenderConfig::default()
    };
    let offer = engine::offer_file(&config, sc.name, &sc.data);
    let mut sender = Sender::new(
        now,
        config,
        0x5eed_1e55,
        offer.clone(),
        Bytes::copy_from_slice(&sc.data),
    );
    let mut rx = ReceiveEngine {
        core: Receiver::new(ReceiverConfig {
            passphrase: Some(Passphrase::new(PASS)),
            cookie_secret: [7; 32],
            ..ReceiverConfig::default()
        }),
        id: sc.receiver_id,
        incoming: None,
        to_verify: Vec::new(),
        last_snapshot: None,
        out: Vec::new(),
        start,
    };
    let link = LinkSpec {
        delay: Duration::from_millis(15),
        rate: Some(300_000.0),
        queue: 1000,
        ..LinkSpec::default()
    };
    let (mut up, mut down) = (Link::new(link.clone()), Link::new(link));
    let mut rng = StdRng::seed_from_u64(7);
    let mut flight: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut sent: Timeline = Vec::new();
    let at = |t: Instant| t - start;
    sent.push((
        Duration::ZERO,
        Out::Event(Event::Started {
            id: SEND_ID,
            direction: Direction::Send,
            peer: receiver_addr(),
            offer: offer.clone(),
        }),
    ));
    let mut sender_snapshot: Option<Instant> = None;
    let mut sender_done = false;
    let mut cancelled = false;
    let mut buf = Vec::new();
    loop {
        // The sending engine's turn: transmit, publish what the core said, figures, verdict.
        if !sender_done {
            if let Some((after, reason)) = sc.cancel
                && !cancelled
                && sender.stats().chunks_done >= after
            {
                sender.cancel(reason);
                cancelled = true;
            }
            while sender.poll_transmit(now, &mut buf) {
                // The datagram's chunk, if any, is the last event the transmit queued.
                let (mut lose, mut delay) = (false, Duration::ZERO);
                while let Some(ev) = sender.poll_event() {
                    if let SenderEvent::ChunkSent {
                        chunk,
                        retransmit: false,
                        ..
                    } = ev
                    {
                        lose = sc.lose_first.contains(&chunk);
                        if sc.delay_first.contains(&chunk) {
                            delay = LATE;
                        }
                    }
                    sent.extend(sender_out(ev).map(|o| (at(now), o)));
                }
                for (when, _) in up.admit(now, buf.len() + 28, &mut rng) {
                    if !lose {
                        seq += 1;
                        flight.push(Reverse((when + delay, seq, true, buf.clone())));
                    }
                }
            }
            while let Some(ev) = sender.poll_event() {
                sent.extend(sender_out(ev).map(|o| (at(now), o)));
            }
            if sender.is_finished() || snapshot_due(sender_snapshot, now) {
                sender_snapshot = Some(now);
                let snap = Snapshot {
                    transfers: vec![Progress {
                        id: SEND_ID,
                        name: offer.name.clone(),
                        stats: sender.stats(),
                        elapsed: now - start,
                    }],
                    ..Snapshot::default()
                };
                sent.push((at(now), Out::Snapshot(snap)));
            }
            if sender.is_finished() {
                let result = match sender.outcome() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("transfer ended without a verdict".to_owned()),
                };
                let ends_session = matches!(sender.outcome(), Some(Err(e)) if e.ends_session());
                let failed = result.is_err();
                let report = Report {
                    id: SEND_ID,
                    direction: Direction::Send,
                    peer: receiver_addr(),
                    offer: offer.clone(),
                    path: None,
                    stats: sender.stats(),
                    duration: now - start,
                    result,
                    ends_session,
                };
                sent.push((at(now), Out::Event(Event::Finished(Box::new(report)))));
                // `send_all` returns: the runtime says so.
                if !failed {
                    let note = Event::Notice(Notice::Text("all files sent and verified".into()));
                    sent.push((at(now), Out::Runtime(Msg::Engine(note))));
                }
                sent.push((
                    at(now),
                    Out::Runtime(Msg::SendFinished(usize::from(failed))),
                ));
                sender_done = true;
            }
        }
        // The receiving engine's turn.
        rx.turn(now, &mut |when, payload: Vec<u8>| {
            for (t, _) in down.admit(when, payload.len() + 28, &mut rng) {
                seq += 1;
                flight.push(Reverse((t, seq, false, payload.clone())));
            }
        });
        if sender_done && flight.is_empty() && rx.incoming.is_none() && rx.to_verify.is_empty() {
            break;
        }
        assert!(
            at(now) < Duration::from_secs(60),
            "the scenario never ended"
        );
        // The next moment anything happens: a delivery, a timer, an engine's figures.
        let snapshots = [
            sender_snapshot
                .filter(|_| !sender_done)
                .map(|t| t + SNAPSHOT_EVERY),
            rx.last_snapshot.map(|t| t + SNAPSHOT_EVERY),
        ];
        let timers = [
            sender.poll_timeout().filter(|_| !sender_done),
            rx.core.poll_timeout(),
        ];
        let next = flight
            .peek()
            .map(|Reverse((t, ..))| *t)
            .into_iter()
            .chain(snapshots.into_iter().flatten())
            .chain(timers.into_iter().flatten())
            .min()
            .expect("something is always due");
        now = now.max(next);
        while flight.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            let Some(Reverse((_, _, to_receiver, mut d))) = flight.pop() else {
                break;
            };
            if to_receiver {
                rx.feed(now, d);
            } else if !sender_done {
                sender.handle(now, &mut d);
            }
        }
        if !sender_done && sender.poll_timeout().is_some_and(|t| t <= now) {
            sender.handle_timeout(now);
        }
        if rx.core.poll_timeout().is_some_and(|t| t <= now) {
            rx.core.handle_timeout(now);
        }
    }
    Recording {
        receiver: rx.out,
        sender: sent,
    }
}

/// What `engine::send` publishes for a core event.
fn sender_out(ev: SenderEvent) -> Option<Out> {
    let chunk = |chunk, what| {
        Out::Event(Event::Chunk(ChunkEvent {
            id: SEND_ID,
            chunk,
            what,
        }))
    };
    Some(match ev {
        SenderEvent::ChunkSent {
            chunk: c,
            retransmit: true,
            ..
        } => chunk(c, ChunkWhat::Retransmitted),
        SenderEvent::ChunkSent { chunk: c, .. } => chunk(c, ChunkWhat::Sent),
        SenderEvent::ChunkLost { chunk: c, .. } => chunk(c, ChunkWhat::Lost),
        SenderEvent::ChunkAcked { chunk: c, .. } => chunk(c, ChunkWhat::Acked),
        SenderEvent::Accepted { .. } => Out::Event(Event::Connected {
            id: SEND_ID,
            peer: receiver_addr(),
        }),
        SenderEvent::Delivered { .. } | SenderEvent::Failed { .. } => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Replaying recordings into the app, as `tui::run_on` does.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Applies a message and carries out the commands the runtime answers at once: a listen
/// binds and reports where, a preview is decoded (the test image of that name). Returns the
/// commands.
fn feed(app: &mut App, msg: Msg) -> Vec<Command> {
    let cmds = app.update(msg);
    for cmd in &cmds {
        match cmd {
            Command::Listen { addr, .. } => {
                feed(app, Msg::Listening(addr.parse().expect("an IP:PORT")));
            }
            Command::LoadPreview(id, path) => {
                let name = path.file_name().expect("a file name").to_string_lossy();
                let img = udpix::tui::load_preview(&testdata(&name)).expect("a test image");
                feed(app, Msg::PreviewReady(*id, img));
            }
            Command::Send { .. }
            | Command::ReadDir(_)
            | Command::StopListening
            | Command::CancelSend
            | Command::CancelFile(_)
            | Command::Open(_) => {}
        }
    }
    cmds
}

/// The next frame's time on the app's clock.
fn next_frame(app: &App) -> Duration {
    let n = app.now.as_nanos() / FRAME.as_nanos() + 1;
    FRAME * u32::try_from(n).expect("a short test")
}

/// Frames with nothing from an engine, up to `until`.
fn wait(app: &mut App, until: Duration) {
    while next_frame(app) <= until {
        let t = next_frame(app);
        feed(app, Msg::Tick(t));
    }
}

/// A recording played into an app from `from` on the app's clock, a frame at a time.
struct Replay {
    timeline: Timeline,
    from: Duration,
    next: usize,
}

impl Replay {
    fn new(timeline: &Timeline, from: Duration) -> Replay {
        Replay {
            timeline: timeline.clone(),
            from,
            next: 0,
        }
    }

    fn ended(&self) -> bool {
        self.next >= self.timeline.len()
    }

    /// One frame: what the engine published up to it, then its latest figures, then the tick.
    fn frame(&mut self, app: &mut App) {
        let t = next_frame(app);
        let mut latest = None;
        while let Some((at, out)) = self.timeline.get(self.next)
            && self.from + *at <= t
        {
            match out.clone() {
                Out::Event(ev) => {
                    feed(app, Msg::Engine(ev));
                }
                Out::Snapshot(s) => latest = Some(s),
                Out::Runtime(msg) => {
                    // The runtime drains the engine before its own message.
                    if let Some(s) = latest.take() {
                        feed(app, Msg::Snapshot(s));
                    }
                    feed(app, msg);
                }
            }
            self.next += 1;
        }
        if let Some(s) = latest {
            feed(app, Msg::Snapshot(s));
        }
        feed(app, Msg::Tick(t));
        consistent(app);
    }

    /// Frames until `done` holds after one.
    fn until(&mut self, app: &mut App, done: impl Fn(&App) -> bool) {
        loop {
            assert!(
                !self.ended(),
                "the recording ended before the state was reached"
            );
            self.frame(app);
            if done(app) {
                return;
            }
        }
    }

    /// Frames until everything is played.
    fn play_out(&mut self, app: &mut App) {
        while !self.ended() {
            self.frame(app);
        }
    }
}

/// What holds on every frame of a real session: a screen whose figures contradict each other,
/// or that shows a state beside a transfer it cannot coexist with, fails here whichever frame
/// it is on.
fn consistent(app: &App) {
    for (id, t) in &app.transfers.by_id {
        let s = &t.stats;
        assert_eq!(
            (s.chunks, s.bytes),
            (t.offer.chunk_count, t.offer.size),
            "transfer {id}: the figures count another image than the offer"
        );
        assert!(s.chunks_done <= s.chunks, "transfer {id}: {s:?}");
        match &t.result {
            Some(Ok(())) => assert_eq!(s.chunks_done, s.chunks, "transfer {id} verified"),
            Some(Err(_)) => {}
            None => assert!(app.busy(), "transfer {id} runs, state {:?}", app.state),
        }
    }
    if let (Some(map), Some(id)) = (&app.preview.chunks, app.preview.id) {
        assert_eq!(
            Some(map.total()),
            app.transfers.by_id.get(&id).map(|t| t.stats.chunks),
            "the chunk map and the Stats pane count different chunks"
        );
    }
}

/// chelsea.png on the lossy link: chunks 20, 21 (a burst), 64 and 150 lose their first copy
/// on the way to the receiver, chunk 90's arrives late (after its retransmission was sent).
static LOSSY: LazyLock<Recording> = LazyLock::new(|| {
    record(&Scenario {
        name: "chelsea.png",
        data: image_bytes("chelsea.png"),
        receiver_id: 1,
        sender_pass: PASS,
        lose_first: &[20, 21, 64, 150],
        delay_first: &[90],
        cancel: None,
    })
});

/// rocket.jpg, the receiver's second transfer, on the same link without a loss.
static CLEAN: LazyLock<Recording> = LazyLock::new(|| {
    record(&Scenario {
        name: "rocket.jpg",
        data: image_bytes("rocket.jpg"),
        receiver_id: 2,
        sender_pass: PASS,
        lose_first: &[],
        delay_first: &[],
        cancel: None,
    })
});

/// A sender that has the passphrase wrong.
static WRONG_PASSPHRASE: LazyLock<Recording> = LazyLock::new(|| {
    record(&Scenario {
        name: "chelsea.png",
        data: image_bytes("chelsea.png"),
        receiver_id: 1,
        sender_pass: "wrong-horse-battery-staple",
        lose_first: &[],
        delay_first: &[],
        cancel: None,
    })
});

/// What a hostile sender chose: a name with colours, a forged line and a bidi override.
const EVIL_NAME: &str = "evil\u{1b}[31m\nFAKE\u{202e}gnp.png";

/// A hostile sender: that name, and after three chunks a close reason with a title escape.
static HOSTILE: LazyLock<Recording> = LazyLock::new(|| {
    record(&Scenario {
        name: EVIL_NAME,
        data: image_bytes("chelsea.png"),
        receiver_id: 1,
        sender_pass: PASS,
        lose_first: &[],
        delay_first: &[],
        cancel: Some((3, "bye\u{1b}]0;owned\u{7}")),
    })
});

/// The chunk log's last `n` lines.
fn tail(app: &App, n: usize) -> Vec<&LogKind> {
    let skip = app.log.lines.len().saturating_sub(n);
    app.log.lines.iter().skip(skip).map(|l| &l.kind).collect()
}

fn shows(app: &App, n: usize, what: ChunkWhat) -> bool {
    tail(app, n)
        .iter()
        .any(|k| matches!(k, LogKind::Chunk { what: w, .. } if *w == what))
}

/// A receiver: Listen pressed at 0.5 s, chelsea.png arriving from 1.5 s on the lossy link.
/// Returned on the first frame whose last four log lines show a recovered chunk; the replay
/// goes on from there.
fn receiving() -> (App, Replay) {
    let (mut app, cmds) = App::new(setup(Role::Receive));
    assert_eq!(cmds, vec![Command::ReadDir(PathBuf::from(PHOTOS))]);
    wait(&mut app, ms(500));
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert!(matches!(&cmds[..], [Command::Listen { .. }]), "{cmds:?}");
    let mut replay = Replay::new(&LOSSY.receiver, ms(1500));
    replay.until(&mut app, |app| shows(app, 4, ChunkWhat::Recovered));
    (app, replay)
}

fn receiving_app() -> App {
    receiving().0
}

/// The receiver once chelsea.png is verified and its preview decoded.
fn received() -> (App, Replay) {
    let (mut app, mut replay) = receiving();
    replay.play_out(&mut app);
    (app, replay)
}

fn received_app() -> App {
    received().0
}

/// A sender: chelsea.png listed, Tab to the Files pane, Enter at 1.0 s sends it over the lossy
/// link. Returned when the sender's log shows a loss in its last four lines; the replay goes on
/// from there.
fn sending() -> (App, Replay) {
    let (mut app, _) = App::new(setup(Role::Send));
    let photo = PathBuf::from(PHOTOS).join("chelsea.png");
    feed(&mut app, chelsea_listing(false));
    feed(
        &mut app,
        Msg::DirInfo(
            PathBuf::from(PHOTOS),
            vec![(
                photo.clone(),
                engine::image_info_path(&testdata("chelsea.png")),
            )],
        ),
    );
    wait(&mut app, ms(1000));
    feed(&mut app, key(KeyCode::Tab));
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(&cmds[..], [Command::Send { files, .. }] if files == &[(SEND_ID, photo.clone())]),
        "{cmds:?}"
    );
    assert_eq!(
        app.state,
        ConnState::Handshaking(receiver_addr().to_string())
    );
    let mut replay = Replay::new(&LOSSY.sender, app.now);
    // The file being sent is on disk: its preview shows as the transfer starts, while the
    // login is still under way.
    replay.until(&mut app, |app| !app.transfers.by_id.is_empty());
    assert!(app.preview.image.is_some());
    let text = mono(&app, 160, 48);
    assert!(text.contains("handshaking with 192.0.2.1:7878"), "{text}");
    // Before the first figures the Stats pane counts the offer's chunks.
    assert!(text.contains("chunks    0/207 0.0%"), "{text}");
    replay.until(&mut app, |app| shows(app, 4, ChunkWhat::Lost));
    (app, replay)
}

// ---------------------------------------------------------------------------------------------
// Screens.

#[test]
fn receive_idle() {
    let (app, cmds) = App::new(setup(Role::Receive));
    assert_eq!(cmds, vec![Command::ReadDir(PathBuf::from(PHOTOS))]);
    insta::assert_snapshot!("receive_idle_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("receive_idle_160x48", mono(&app, 160, 48));
}

#[test]
fn receive_listening_with_generated_passphrase() {
    let mut s = setup(Role::Receive);
    s.passphrase = None;
    let (mut app, _) = App::new(s);
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(&cmds[..], [Command::Listen { passphrase: Some(p), .. }] if p.split('-').count() == 4)
    );
    assert_eq!(app.state, ConnState::Listening("0.0.0.0:7878".into()));
    // The generated words are shown so they can be read out. They are random: for a stable
    // snapshot, show another phrase the generator could have made.
    assert!(app.form.passphrase_generated);
    let stable = "123-orbit-velvet-harbor";
    let words = udpix::passphrase::word_list();
    assert!(stable.split('-').skip(1).all(|w| words.contains(&w)));
    app.form.passphrase = stable.into();
    insta::assert_snapshot!("receive_listening_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("receive_listening_160x48", mono(&app, 160, 48));
    // The focused pane's border and title, the selected row reversed, the state in green.
    insta::assert_snapshot!("receive_listening_styles_80x24", styles(&app, 80, 24));
}

#[test]
fn receive_in_progress_shows_chunk_map_and_log() {
    let app = receiving_app();
    assert_eq!(
        app.state,
        ConnState::Listening("0.0.0.0:7878".into()),
        "a receiver goes on listening while it receives"
    );
    insta::assert_snapshot!("receive_progress_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("receive_progress_160x48", mono(&app, 160, 48));
    // Received green, recovered cyan, the loss figures coloured by how much was lost.
    insta::assert_snapshot!("receive_progress_styles_80x24", styles(&app, 80, 24));
}

#[test]
fn receive_done_with_half_block_preview() {
    let app = received_app();
    // Verified: the image replaces the chunk map.
    let t = &app.transfers.by_id[&1];
    assert_eq!(t.result, Some(Ok(())));
    assert_eq!(t.path.as_deref(), Some(Path::new("/data/in/chelsea.png")));
    assert!(app.preview.image.is_some() && app.preview.chunks.is_none());
    insta::assert_snapshot!("receive_done_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("receive_done_160x48", mono(&app, 160, 48));
    insta::assert_snapshot!("receive_done_styles_80x24", styles(&app, 80, 24));
    // In colour the preview is '▀' cells with both colours set.
    let t = render(&app, 80, 24, COLOUR);
    let buf = t.backend().buffer();
    let halves = buf.content().iter().filter(|c| c.symbol() == "▀").count();
    assert!(halves > 100, "only {halves} half-block cells");
}

#[test]
fn send_role_file_browser() {
    let (mut app, _) = App::new(setup(Role::Send));
    let e = |name: &str, dir: bool, size: u64, info: Option<(&str, u32, u32)>| Entry {
        path: PathBuf::from(PHOTOS).join(name),
        name: name.into(),
        is_dir: dir,
        size,
        info: info.map(|(f, w, h)| (f.to_owned(), Some((w, h)))),
    };
    feed(
        &mut app,
        Msg::Dir(
            PathBuf::from(PHOTOS),
            vec![
                e("..", true, 0, None),
                e("holiday", true, 0, None),
                e("astronaut.png", false, 791_555, Some(("png", 512, 512))),
                e("chelsea.png", false, 240_512, Some(("png", 451, 300))),
                e("rocket.jpg", false, 112_525, Some(("jpg", 640, 427))),
                e("notes.txt", false, 1_200, None),
            ],
        ),
    );
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Down));
    feed(&mut app, key(KeyCode::Down));
    feed(&mut app, key(KeyCode::Char(' ')));
    insta::assert_snapshot!("send_files_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("send_files_160x48", mono(&app, 160, 48));
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            to: receiver_addr().to_string(),
            files: vec![(SEND_ID, PathBuf::from("/data/photos/astronaut.png"))],
            passphrase: Some(PASS.into()),
        }]
    );
}

/// `c` cancels the one file of the send the cursor is on, whether it is being sent or
/// waits its turn; on a file not in the send, or with no send running, it does nothing.
#[test]
fn c_cancels_the_highlighted_file_of_the_send_alone() {
    let (mut app, _) = App::new(setup(Role::Send));
    let photo = |name: &str| PathBuf::from(PHOTOS).join(name);
    let e = |name: &str| Entry {
        path: photo(name),
        name: name.into(),
        is_dir: false,
        size: 1000,
        info: Some(("png".to_owned(), Some((10, 10)))),
    };
    let listing = vec![e("astronaut.png"), e("chelsea.png"), e("rocket.jpg")];
    feed(&mut app, Msg::Dir(PathBuf::from(PHOTOS), listing));
    feed(&mut app, key(KeyCode::Tab));
    let c = || key(KeyCode::Char('c'));
    assert!(feed(&mut app, c()).is_empty(), "nothing is being sent");
    // Mark a and b, send them.
    feed(&mut app, key(KeyCode::Char(' ')));
    feed(&mut app, key(KeyCode::Char(' ')));
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(&cmds[..], [Command::Send { files, .. }] if files.len() == 2),
        "{cmds:?}"
    );
    let (a, b) = (SEND_ID, SEND_ID + 1);
    // astronaut starts; chelsea waits its turn. The cursor is on rocket (Space moved it).
    let offer = |name: &str| engine::offer_file(&SenderConfig::default(), name, b"0123456789");
    feed(
        &mut app,
        Msg::Engine(Event::Started {
            id: a,
            direction: Direction::Send,
            peer: receiver_addr(),
            offer: offer("astronaut.png"),
        }),
    );
    assert!(
        feed(&mut app, c()).is_empty(),
        "rocket.jpg is not in the send"
    );
    feed(&mut app, key(KeyCode::Up));
    assert_eq!(feed(&mut app, c()), vec![Command::CancelFile(b)], "waiting");
    feed(&mut app, key(KeyCode::Up));
    assert_eq!(
        feed(&mut app, c()),
        vec![Command::CancelFile(a)],
        "being sent"
    );
    // From the Stats pane: the transfer shown.
    app.focus = Pane::Stats;
    assert_eq!(feed(&mut app, c()), vec![Command::CancelFile(a)]);
    // astronaut ended: nothing of it is left to cancel.
    let report = Report {
        id: a,
        direction: Direction::Send,
        peer: receiver_addr(),
        offer: offer("astronaut.png"),
        path: None,
        stats: TransferStats::default(),
        duration: ms(10),
        result: Err("cancelled: its user cancelled this file".into()),
        ends_session: false,
    };
    feed(&mut app, Msg::Engine(Event::Finished(Box::new(report))));
    assert!(feed(&mut app, c()).is_empty(), "astronaut ended");
    app.focus = Pane::Files;
    assert!(feed(&mut app, c()).is_empty(), "astronaut ended");
}

#[test]
fn help_overlay_lists_every_key() {
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(&mut app, key(KeyCode::Char('?')));
    assert!(app.popups.help);
    let t = mono(&app, 80, 24);
    insta::assert_snapshot!("help_80x24", t);
    insta::assert_snapshot!("help_160x48", mono(&app, 160, 48));
    // The focused pane's keys come first.
    let first = t.lines().position(|l| l.contains("Here (Connection)"));
    let every = t.lines().position(|l| l.contains("Every key"));
    assert!(first.is_some() && first < every, "{t}");
    // On a small screen the rest is a scroll away: every key is reachable.
    let mut seen = t.clone();
    for _ in 0..40 {
        feed(&mut app, key(KeyCode::Down));
        seen.push_str(&mono(&app, 80, 24));
    }
    assert!(app.popups.help, "scrolling keeps the help open");
    for (k, what) in udpix::tui::keymap::help_rows() {
        assert!(
            seen.contains(&k) && seen.contains(what),
            "help lacks {k}: {what}"
        );
    }
    assert!(seen.contains("Shift-drag selects"));
    feed(&mut app, key(KeyCode::Esc));
    assert!(!app.popups.help);
}

#[test]
fn too_small_terminal_says_so() {
    let (app, _) = App::new(setup(Role::Receive));
    insta::assert_snapshot!("too_small_50x15", mono(&app, 50, 15));
}

/// A sender whose passphrase is wrong: the receiver's refusal ends the send, and the state
/// line keeps saying why.
#[test]
fn a_failed_login_shows_in_the_state_line() {
    let (mut app, _) = App::new(setup(Role::Send));
    feed(&mut app, chelsea_listing(true));
    wait(&mut app, ms(1000));
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Enter));
    let mut replay = Replay::new(&WRONG_PASSPHRASE.sender, app.now);
    replay.play_out(&mut app);
    let ConnState::Error(e) = &app.state else {
        panic!("state {:?}", app.state);
    };
    assert!(e.contains("passphrase"), "{e}");
    // The role and fields are free again for another try, the file still marked for it.
    assert!(!app.busy());
    assert!(
        app.browser
            .marked
            .contains(&PathBuf::from(PHOTOS).join("chelsea.png")),
        "a failed login must not unmark the files"
    );
    insta::assert_snapshot!("send_auth_failed_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("send_auth_failed_160x48", mono(&app, 160, 48));
}

#[test]
fn a_burst_of_chunk_events_is_summarised() {
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(&mut app, key(KeyCode::Enter));
    // What a receiver publishes in one frame of a fast transfer: the start, then its chunks.
    let data = vec![7u8; 5_000_000];
    let offer = engine::offer_file(&SenderConfig::default(), "big.png", &data);
    feed(
        &mut app,
        Msg::Engine(Event::Started {
            id: 1,
            direction: Direction::Receive,
            peer: sender_addr(),
            offer,
        }),
    );
    for chunk in 0..1000 {
        feed(
            &mut app,
            Msg::Engine(Event::Chunk(ChunkEvent {
                id: 1,
                chunk,
                what: ChunkWhat::Received,
            })),
        );
    }
    feed(&mut app, Msg::Tick(ms(100)));
    assert!(
        app.log.lines.len() < 10,
        "log grew to {} lines",
        app.log.lines.len()
    );
    // Every event is accounted for, in summaries or lines of its own.
    let counted: usize = app
        .log
        .lines
        .iter()
        .map(|l| match &l.kind {
            LogKind::Summary(fold) => fold.events,
            LogKind::Chunk { .. } => 1,
            LogKind::Note(_) => 0,
        })
        .sum();
    assert_eq!(counted, 1000);
    // Each fold counts distinct chunks of the one image, and claims no loss a receiver
    // cannot see: the folds' received chunks add up to the 1000 that came.
    let folds: Vec<_> = app
        .log
        .lines
        .iter()
        .filter_map(|l| match &l.kind {
            LogKind::Summary(fold) => Some(fold.clone()),
            _ => None,
        })
        .collect();
    assert!(!folds.is_empty());
    let received: usize = folds
        .iter()
        .flat_map(|f| f.kinds.iter())
        .map(|(w, n)| {
            assert_eq!(*w, ChunkWhat::Received, "{folds:?}");
            n
        })
        .sum();
    let single: usize = app
        .log
        .lines
        .iter()
        .filter(|l| matches!(l.kind, LogKind::Chunk { .. }))
        .count();
    assert_eq!(received + single, 1000);
    let text = mono(&app, 80, 24);
    assert!(text.contains(" chunks: 401 received"), "{text}");
}

/// The frame as drawn (the backend's copy lacks the cells a frame leaves to the printed image).
fn frame_buffer(app: &App, theme: Theme) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    t.draw(|f| draw(f, app, &theme))
        .expect("draw")
        .buffer
        .clone()
}

#[test]
fn graphics_mode_draws_half_blocks_until_the_encoded_image_covers_them() {
    // The view never leaves the pane blank for the printed image to fill (the runtime's
    // `graphics::Graphics` draws the encoded image over these cells once it is ready): a
    // zoom, a resize or a new image shows the half blocks at once.
    let app = received_app();
    let theme = Theme {
        graphics: true,
        ..COLOUR
    };
    let buf = frame_buffer(&app, theme);
    let inner = udpix::tui::view::preview_inner(ratatui::layout::Rect::new(0, 0, 80, 24), &app);
    let cell = &buf[(inner.x + inner.width / 2, inner.y + inner.height / 2)];
    assert!(matches!(cell.bg, Color::Rgb(..)), "{cell:?}");
    let skipped = buf
        .content()
        .iter()
        .filter(|c| c.diff_option == ratatui::buffer::CellDiffOption::Skip)
        .count();
    assert_eq!(skipped, 0);
}

/// A receiver in its second transfer: chelsea.png verified, rocket.jpg from 0.5 s later on a
/// clean link, played until a third of it is in.
fn second_transfer() -> App {
    let (mut app, _) = received();
    let mut replay = Replay::new(&CLEAN.receiver, next_frame(&app) + ms(500));
    replay.until(&mut app, |app| {
        app.transfers
            .by_id
            .get(&2)
            .is_some_and(|t| t.stats.chunks_done * 3 >= t.offer.chunk_count)
    });
    app
}

#[test]
fn chunk_log_scrolled_up_and_session_totals() {
    let mut app = second_transfer();
    // Focus the Chunks pane (Tab twice) and scroll up three lines.
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    for _ in 0..3 {
        feed(&mut app, key(KeyCode::Up));
    }
    assert_eq!(app.log.scroll, 3);
    insta::assert_snapshot!("chunks_scrolled_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("chunks_scrolled_160x48", mono(&app, 160, 48));
    // The focused log; a transfer with nothing lost has nothing red.
    insta::assert_snapshot!("chunks_scrolled_styles_80x24", styles(&app, 80, 24));
    // New lines keep the view where the user put it; End follows the tail again.
    feed(
        &mut app,
        Msg::Engine(Event::Notice(Notice::Refused {
            peer: "192.0.2.9:5000".parse().expect("addr"),
            reason: "receiver is busy with 64 transfers; try again later".into(),
        })),
    );
    assert_eq!(app.log.scroll, 4);
    feed(&mut app, key(KeyCode::End));
    assert_eq!(app.log.scroll, 0);
    // A page at a time, never past the oldest line.
    feed(&mut app, key(KeyCode::PageUp));
    assert_eq!(app.log.scroll, udpix::tui::app::PAGE);
    for _ in 0..100 {
        feed(&mut app, key(KeyCode::PageUp));
    }
    assert_eq!(app.log.scroll, app.log.lines.len() - 1);
    feed(&mut app, key(KeyCode::PageDown));
    assert_eq!(
        app.log.scroll,
        app.log.lines.len() - 1 - udpix::tui::app::PAGE
    );
    feed(&mut app, key(KeyCode::End));
    // Stats on the first image, with the session covering both.
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Up));
    assert_eq!(app.transfers.current, Some(1));
    insta::assert_snapshot!("stats_two_images_160x48", mono(&app, 160, 48));
    insta::assert_snapshot!("stats_two_images_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("stats_two_images_styles_80x24", styles(&app, 80, 24));
}

#[test]
fn send_in_progress_shows_connection_rtt_rate_and_preview() {
    let (mut app, mut replay) = sending();
    assert_eq!(app.state, ConnState::Connected(receiver_addr().to_string()));
    insta::assert_snapshot!("send_progress_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("send_progress_160x48", mono(&app, 160, 48));
    // Lost in red in the log; the loss figures; the focused Files pane.
    insta::assert_snapshot!("send_progress_styles_80x24", styles(&app, 80, 24));
    let text = mono(&app, 160, 48);
    for needle in ["connected to 192.0.2.1:7878", "rtt, rate ", "lost"] {
        assert!(text.contains(needle), "screen lacks {needle:?}:\n{text}");
    }
    // On to the repairs, the log zoomed (Tab to it, z) to show them beside the losses.
    replay.until(&mut app, |app| shows(app, 8, ChunkWhat::Retransmitted));
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Char('z')));
    assert_eq!(app.zoomed(), Some(Pane::Chunks));
    assert!(shows(&app, 22, ChunkWhat::Lost));
    insta::assert_snapshot!("send_log_zoomed_styles_80x24", styles(&app, 80, 24));
}

#[test]
fn a_send_ends_with_all_files_sent() {
    let (mut app, mut replay) = sending();
    replay.play_out(&mut app);
    assert_eq!(app.state, ConnState::Sent);
    assert!(!app.busy());
    let t = &app.transfers.by_id[&SEND_ID];
    assert_eq!(t.result, Some(Ok(())));
    assert_eq!(t.stats.chunks_done, t.offer.chunk_count);
    let text = mono(&app, 160, 48);
    assert!(text.contains("all files sent and verified"), "{text}");
}

#[test]
fn a_receiver_shows_who_it_is_connected_to() {
    let (mut app, mut replay) = receiving();
    let text = mono(&app, 160, 48);
    assert!(text.contains("● connected to 192.0.2.7:40000"), "{text}");
    replay.play_out(&mut app);
    let text = mono(&app, 160, 48);
    assert!(text.contains("● listening"), "{text}");
}

#[test]
fn editing_the_receiver_address() {
    let (mut app, _) = App::new(setup(Role::Send));
    // The Connection pane has focus and its Action row is selected: go up to the address.
    for _ in 0..3 {
        feed(&mut app, key(KeyCode::Up));
    }
    feed(&mut app, key(KeyCode::Enter));
    assert!(app.form.editing);
    for _ in 0..4 {
        feed(&mut app, key(KeyCode::Backspace));
    }
    for c in "9000".chars() {
        feed(&mut app, key(KeyCode::Char(c)));
    }
    // While editing, q is text, not quit.
    feed(&mut app, key(KeyCode::Char('q')));
    assert!(!app.quit);
    feed(&mut app, key(KeyCode::Backspace));
    insta::assert_snapshot!("send_editing_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("send_editing_160x48", mono(&app, 160, 48));
    feed(&mut app, key(KeyCode::Enter));
    assert!(!app.form.editing);
    assert_eq!(app.form.address, "192.0.2.1:9000");
}

#[test]
fn the_preview_uses_the_colours_the_terminal_has() {
    let app = received_app();
    let inner = udpix::tui::view::preview_inner(ratatui::layout::Rect::new(0, 0, 80, 24), &app);
    let cells = |depth| {
        let buf = frame_buffer(&app, Theme { depth, ..COLOUR });
        let mut out = Vec::new();
        for y in inner.top()..inner.bottom() {
            for x in inner.left()..inner.right() {
                out.push(buf[(x, y)].clone());
            }
        }
        out
    };
    // Each depth: the kind of colour every half-block cell must use, on both of its halves.
    let rgb = |c: Color| matches!(c, Color::Rgb(..));
    let indexed = |c: Color| matches!(c, Color::Indexed(_));
    let basic = |c: Color| !rgb(c) && !indexed(c) && c != Color::Reset;
    let kinds: [(ColorDepth, &dyn Fn(Color) -> bool); 3] = [
        (ColorDepth::TrueColor, &rgb),
        (ColorDepth::Indexed256, &indexed),
        (ColorDepth::Basic16, &basic),
    ];
    for (depth, kind) in kinds {
        let halves: Vec<_> = cells(depth)
            .into_iter()
            .filter(|c| c.symbol() == "▀")
            .collect();
        assert!(halves.len() > 50, "{depth:?}: {} half blocks", halves.len());
        assert!(
            halves.iter().all(|c| kind(c.fg) && kind(c.bg)),
            "{depth:?} used another kind of colour"
        );
    }
    // NO_COLOR: no colour anywhere on screen, the image in shades.
    let mono = frame_buffer(&app, MONO);
    assert!(
        mono.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
    assert!(mono.content().iter().any(|c| c.symbol() == "▒"));
}

#[test]
fn image_details_fill_in_as_they_are_read() {
    let (mut app, _) = App::new(setup(Role::Send));
    let dir = PathBuf::from(PHOTOS);
    let entries: Vec<Entry> = (0..3)
        .map(|i| Entry {
            path: dir.join(format!("p{i}.png")),
            name: format!("p{i}.png"),
            is_dir: false,
            size: 1000,
            info: None,
        })
        .collect();
    feed(&mut app, Msg::Dir(dir.clone(), entries));
    feed(
        &mut app,
        Msg::DirInfo(
            dir.clone(),
            vec![(dir.join("p1.png"), ("png".into(), Some((3, 4))))],
        ),
    );
    // A batch for a folder the user has left changes nothing.
    feed(
        &mut app,
        Msg::DirInfo(
            PathBuf::from("/elsewhere"),
            vec![(dir.join("p2.png"), ("png".into(), Some((5, 6))))],
        ),
    );
    let infos: Vec<_> = app.browser.entries.iter().map(|e| e.info.clone()).collect();
    assert_eq!(infos, [None, Some(("png".into(), Some((3, 4)))), None]);
    let text = mono(&app, 80, 24);
    assert!(
        text.contains("p0.png") && text.contains("…") && text.contains("3×4"),
        "{text}"
    );
}

#[test]
fn a_long_session_keeps_a_bounded_list_and_exact_totals() {
    use udpix::tui::app::MAX_TRANSFERS;
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(&mut app, key(KeyCode::Enter));
    let n = MAX_TRANSFERS as u64 + 300;
    let offer = engine::offer_file(&SenderConfig::default(), "p.png", &[9; 2332]);
    assert_eq!(offer.chunk_count, 2);
    for id in 1..=n {
        feed(&mut app, Msg::Tick(Duration::from_secs(id)));
        feed(
            &mut app,
            Msg::Engine(Event::Started {
                id,
                direction: Direction::Receive,
                peer: sender_addr(),
                offer: offer.clone(),
            }),
        );
        let result = if id % 10 == 0 {
            Err("gone".to_owned())
        } else {
            Ok(())
        };
        feed(
            &mut app,
            Msg::Engine(Event::Finished(Box::new(Report {
                id,
                direction: Direction::Receive,
                peer: sender_addr(),
                offer: offer.clone(),
                path: None,
                stats: TransferStats {
                    bytes: 2332,
                    chunks: 2,
                    chunks_done: 2,
                    lost: 1,
                    datagrams_received: 3,
                    ..TransferStats::default()
                },
                duration: ms(500),
                result,
                ends_session: false,
            }))),
        );
    }
    assert_eq!(app.transfers.by_id.len(), MAX_TRANSFERS);
    assert_eq!(
        app.transfers.by_id.keys().next(),
        Some(&301),
        "the oldest were folded away"
    );
    let s = app.transfers.session();
    assert_eq!(s.images as u64, n);
    assert_eq!(s.failed as u64, n / 10);
    assert_eq!(s.verified as u64, n - n / 10);
    assert_eq!(s.stats.lost, n);
    // Each receiver counts its 1 loss against 3 received + 1 never seen.
    assert_eq!(s.loss_base, 4 * n);
    assert_eq!(s.stats.bytes, 2332 * n);
    // One 0.5 s transfer per second: the folded time and the kept time add up.
    assert_eq!(s.elapsed, ms(500) * n as u32);
}

#[test]
fn clicks_and_the_wheel_land_where_the_panes_are_drawn() {
    use udpix::tui::app::{Hit, WHEEL};
    use udpix::tui::view::hit;
    let screen = ratatui::layout::Rect::new(0, 0, 80, 24);
    // 80x24: Connection is rows 0-8 of the left 34 columns, its fields from row 1.
    assert_eq!(
        hit(screen, None, 5, 0),
        Some(Hit {
            pane: Pane::Connection,
            row: None,
            rows: 7
        })
    );
    assert_eq!(
        hit(screen, None, 5, 5).map(|h| (h.pane, h.row)),
        Some((Pane::Connection, Some(4)))
    );
    assert_eq!(
        hit(screen, None, 50, 20).map(|h| (h.pane, h.row)),
        Some((Pane::Chunks, Some(1)))
    );
    assert_eq!(hit(screen, None, 50, 3).map(|h| h.pane), Some(Pane::Stats));
    assert_eq!(
        hit(screen, None, 50, 14).map(|h| h.pane),
        Some(Pane::Preview)
    );
    assert_eq!(hit(screen, None, 10, 12).map(|h| h.pane), Some(Pane::Files));
    assert_eq!(hit(screen, None, 90, 5), None);
    assert_eq!(
        hit(ratatui::layout::Rect::new(0, 0, 50, 15), None, 5, 5),
        None
    );

    // A click on [ Listen ] listens.
    let mut s = setup(Role::Receive);
    s.passphrase = None;
    let (mut app, _) = App::new(s);
    for _ in 0..4 {
        feed(&mut app, key(KeyCode::Up));
    }
    assert_eq!(app.form.field, udpix::tui::app::Field::Role);
    let cmds = feed(
        &mut app,
        Msg::Click(hit(screen, None, 15, 5).expect("on the pane")),
    );
    assert!(matches!(&cmds[..], [Command::Listen { .. }]), "{cmds:?}");

    // In the file browser a click selects, a second click on a folder opens it.
    let (mut app, _) = App::new(setup(Role::Send));
    let dir = PathBuf::from(PHOTOS);
    let entries: Vec<Entry> = (0..30)
        .map(|i| Entry {
            path: dir.join(format!("f{i:02}")),
            name: format!("f{i:02}"),
            is_dir: i == 2,
            size: 1,
            info: Some((String::new(), None)),
        })
        .collect();
    feed(&mut app, Msg::Dir(dir.clone(), entries));
    let row3 = hit(screen, None, 10, 12).expect("files"); // Files starts at row 9: row 2 inside
    assert_eq!(row3.row, Some(2));
    assert!(feed(&mut app, Msg::Click(row3)).is_empty());
    assert_eq!((app.focus, app.browser.selected), (Pane::Files, 2));
    assert_eq!(
        feed(&mut app, Msg::Click(row3)),
        vec![Command::ReadDir(dir.join("f02"))]
    );
    // The wheel moves the cursor; once the list scrolls, clicks count from its first row.
    feed(
        &mut app,
        Msg::Dir(
            dir.join("f02"),
            (0..30)
                .map(|i| Entry {
                    path: dir.join(format!("g{i:02}")),
                    name: format!("g{i:02}"),
                    is_dir: false,
                    size: 1,
                    info: Some((String::new(), None)),
                })
                .collect(),
        ),
    );
    for _ in 0..5 {
        feed(&mut app, Msg::Wheel(row3, true));
    }
    assert_eq!(app.browser.selected, 5 * WHEEL);
    // 7 rows shown with the cursor (15) on the last: entries 9..=15; the click's row 2 is
    // whatever ratatui drew there.
    let t = render(&app, 80, 24, MONO);
    let drawn: String = (0..34)
        .map(|x| t.backend().buffer()[(x, 12)].symbol().to_owned())
        .collect();
    assert!(drawn.contains("g11"), "{drawn}");
    feed(&mut app, Msg::Click(row3));
    assert_eq!(app.browser.selected, 11);

    // The wheel over the chunk log scrolls it; a click anywhere closes the help.
    let mut app = receiving_app();
    let log = hit(screen, None, 50, 20).expect("chunks");
    feed(&mut app, Msg::Wheel(log, false));
    assert_eq!(app.log.scroll, WHEEL);
    feed(&mut app, Msg::Wheel(log, true));
    assert_eq!(app.log.scroll, 0);
    feed(&mut app, key(KeyCode::Char('?')));
    feed(&mut app, Msg::Click(log));
    assert!(!app.popups.help);
    assert_eq!(
        app.focus,
        Pane::Connection,
        "the closing click does nothing else"
    );
}

#[test]
fn a_wrong_passphrase_from_a_sender_does_not_stop_the_receiver() {
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(&mut app, key(KeyCode::Enter));
    // Two tries from a sender with the wrong passphrase.
    for from in [ms(1000), ms(3000)] {
        Replay::new(&WRONG_PASSPHRASE.receiver, from).play_out(&mut app);
    }
    assert_eq!(app.state, ConnState::Listening("0.0.0.0:7878".into()));
    assert!(
        app.busy(),
        "still listening: the role and fields stay fixed"
    );
    assert!(app.transfers.by_id.is_empty(), "no transfer started");
    let text = mono(&app, 160, 48);
    assert!(text.contains("● listening, 2 failed logins"), "{text}");
    assert!(
        text.contains("authentication failed from 192.0.2.7:40000"),
        "{text}"
    );
}

#[test]
fn z_zooms_the_focused_pane_to_the_whole_screen() {
    use udpix::tui::view::{hit, preview_inner};
    let mut app = received_app();
    // Shift-Tab from Connection reaches Preview; z zooms it.
    feed(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(app.focus, Pane::Preview);
    feed(&mut app, key(KeyCode::Char('z')));
    assert_eq!(app.zoomed(), Some(Pane::Preview));
    insta::assert_snapshot!("preview_zoomed_80x24", mono(&app, 80, 24));
    insta::assert_snapshot!("preview_zoomed_160x48", mono(&app, 160, 48));
    let screen = ratatui::layout::Rect::new(0, 0, 80, 24);
    assert_eq!(
        preview_inner(screen, app.zoomed()),
        ratatui::layout::Rect::new(1, 1, 78, 22)
    );
    assert_eq!(
        hit(screen, app.zoomed(), 70, 20).map(|h| h.pane),
        Some(Pane::Preview),
        "everything on screen is the zoomed pane"
    );
    // Tab moves the zoom along with the focus; z again shows every pane.
    feed(&mut app, key(KeyCode::Tab));
    assert_eq!(app.zoomed(), Some(Pane::Connection));
    let text = mono(&app, 80, 24);
    assert!(
        text.contains("Connection") && !text.contains("Chunks"),
        "{text}"
    );
    feed(&mut app, key(KeyCode::Char('z')));
    assert_eq!(app.zoomed(), None);
}

#[test]
fn a_printed_image_is_redrawn_exactly_when_its_scene_changes() {
    use udpix::tui::graphics::Scene;
    let (mut app, mut replay) = receiving();
    let chunk_map = Scene::of(&app);
    // New chunks and ticks leave a printed image alone.
    let chunks = app.preview.chunks.as_ref().map(|m| m.count());
    for _ in 0..3 {
        replay.frame(&mut app);
    }
    assert_ne!(app.preview.chunks.as_ref().map(|m| m.count()), chunks);
    assert_eq!(Scene::of(&app), chunk_map);
    // The first image replaces the chunk map's text: wipe, or the text stays beside it.
    replay.play_out(&mut app);
    let image = Scene::of(&app);
    assert_ne!(image, chunk_map);
    // Help over it, and closed again.
    feed(&mut app, key(KeyCode::Char('?')));
    assert_ne!(Scene::of(&app), image);
    feed(&mut app, key(KeyCode::Esc));
    assert_eq!(Scene::of(&app), image);
    // A zoom moves it.
    feed(&mut app, key(KeyCode::Char('z')));
    assert_ne!(Scene::of(&app), image);
    feed(&mut app, key(KeyCode::Char('z')));
    // Another transfer takes the pane.
    let mut next = Replay::new(&CLEAN.receiver, next_frame(&app));
    next.until(&mut app, |app| app.transfers.by_id.contains_key(&2));
    assert_ne!(Scene::of(&app), image);
}

/// A receiver fed text a hostile sender chose: a name with colours, a forged line and a bidi
/// override; a close reason with a title escape.
#[test]
fn peer_text_is_drawn_escaped() {
    let shown = "evil\\e[31m\\nFAKE\\u{202e}gnp.png";
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(&mut app, key(KeyCode::Enter));
    Replay::new(&HOSTILE.receiver, ms(1500)).play_out(&mut app);
    let screen = render(&app, 160, 48, MONO);
    let text = format!("{}", screen.backend());
    let rows: Vec<&str> = text.lines().collect();
    let has = |needle: &str| rows.iter().filter(|r| r.contains(needle)).count();
    // The received list, the stats heading and the preview title, each on its row.
    assert!(has(&format!("✗ {shown}")) == 1, "files pane:\n{text}");
    assert!(has(&format!("{shown} ✗ ")) == 1, "stats heading:\n{text}");
    assert!(
        has(&format!("Preview: {shown}")) == 1,
        "preview title:\n{text}"
    );
    // The chunk log: the image column (cut to 18) on every line of the transfer, and the
    // notes quoted in full.
    let lines = app
        .log
        .lines
        .iter()
        .filter(|l| l.image == EVIL_NAME)
        .count();
    assert!(lines >= 3, "{lines} log lines");
    assert_eq!(
        has("evil\\e[31m\\nFAKE\\…"),
        lines.min(10),
        "chunk log:\n{text}"
    );
    assert!(
        has("failed: cancelled by the sender: bye\\e]0;owned\\x07") == 1,
        "failure:\n{text}"
    );
    // Nothing raw reaches a cell (ratatui would drop the controls, hiding what was sent).
    assert!(!text.contains("evil[31m"), "{text}");
    for cell in screen.backend().buffer().content() {
        assert!(
            !cell.symbol().chars().any(udpix::display::needs_escape),
            "raw {:?} in a cell",
            cell.symbol()
        );
    }
    insta::assert_snapshot!("peer_text_escaped_160x48", text);
    insta::assert_snapshot!("peer_text_escaped_80x24", mono(&app, 80, 24));
    // A sender's state line quotes the receiver's refusal.
    let (mut sender, _) = App::new(setup(Role::Send));
    feed(&mut sender, chelsea_listing(true));
    feed(&mut sender, key(KeyCode::Tab));
    feed(&mut sender, key(KeyCode::Enter));
    // What `engine::send` publishes when the offer is refused, then the end of the send.
    let config = SenderConfig {
        passphrase: Some(Passphrase::new(PASS)),
        ..SenderConfig::default()
    };
    let offer = engine::offer_file(&config, "chelsea.png", &image_bytes("chelsea.png"));
    let refused = udpix::proto::sender::SendError::Refused(0, "go away\u{1b}[5m\u{2066}".into());
    for msg in [
        Msg::Engine(Event::Started {
            id: SEND_ID,
            direction: Direction::Send,
            peer: receiver_addr(),
            offer: offer.clone(),
        }),
        Msg::Engine(Event::Finished(Box::new(Report {
            id: SEND_ID,
            direction: Direction::Send,
            peer: receiver_addr(),
            stats: TransferStats {
                bytes: offer.size,
                chunks: offer.chunk_count,
                datagrams_sent: 3,
                datagrams_received: 2,
                ..TransferStats::default()
            },
            offer,
            path: None,
            duration: ms(40),
            result: Err(refused.to_string()),
            ends_session: false,
        }))),
        Msg::SendFinished(1),
    ] {
        feed(&mut sender, msg);
    }
    let text = mono(&sender, 160, 48);
    assert!(
        text.lines()
            .any(|r| r.contains("State      receiver refused the image:")),
        "state line:\n{text}"
    );
    assert!(
        text.lines()
            .any(|r| r.contains("failed: receiver refused the image: go away\\e[5m\\u{2066}")),
        "chunk log:\n{text}"
    );
}

#[test]
fn a_snapshot_read_after_the_report_leaves_the_final_figures() {
    // The engine published figures, then the transfer's end; a frame reads the events first
    // and the (older) figures after them.
    let (mut app, mut replay) = receiving();
    let Some(Out::Snapshot(old)) = LOSSY
        .receiver
        .iter()
        .rev()
        .map(|(_, o)| o)
        .find(|o| matches!(o, Out::Snapshot(s) if !s.transfers.is_empty()))
        .cloned()
    else {
        panic!("no figures of the transfer");
    };
    replay.play_out(&mut app);
    let done = app.transfers.by_id[&1].stats.clone();
    assert_eq!(done.chunks_done, done.chunks);
    feed(&mut app, Msg::Snapshot(old));
    assert_eq!(app.transfers.by_id[&1].stats, done);
}

// ---------------------------------------------------------------------------------------------
// The real loop.

/// A TestBackend that shows each frame it flushes to whoever watches.
struct Watched {
    inner: TestBackend,
    frames: tokio::sync::watch::Sender<String>,
}

impl ratatui::backend::Backend for Watched {
    type Error = std::convert::Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<ratatui::layout::Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        self.frames.send_replace(self.inner.to_string());
        Ok(())
    }
}

/// Generous: a loaded two-core machine may be slow, and a passing run never waits this long.
const T: Duration = Duration::from_secs(60);

/// Waits for a frame on which `ok` holds; returns it.
async fn frame_where(
    frames: &mut tokio::sync::watch::Receiver<String>,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let found = tokio::time::timeout(T, async {
        loop {
            {
                let frame = frames.borrow_and_update();
                if ok(&frame) {
                    return frame.clone();
                }
            }
            frames.changed().await.expect("the UI is gone");
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no frame {what}; the last:\n{}", *frames.borrow()))
}

/// `tui::run_on` as `tui::run` drives it, on a TestBackend: keys from a stream, a real
/// receiver on loopback, a real sender sending it an image, and q to quit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_receives_a_real_image_and_quits_on_q() {
    use crossterm::event::Event as TermEvent;
    use udpix::tui::{TuiOptions, graphics::ImageProtocol, run_on};
    let out = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    let (frames_tx, mut frames) = tokio::sync::watch::channel(String::new());
    let mut terminal = Terminal::new(Watched {
        inner: TestBackend::new(100, 30),
        frames: frames_tx,
    })
    .expect("terminal");
    let (keys, keys_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<TermEvent>>();
    let key_stream = Box::pin(futures_util::stream::unfold(keys_rx, |mut rx| async move {
        rx.recv().await.map(|k| (k, rx))
    }));
    let press = move |c: KeyCode| {
        keys.send(Ok(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE))))
            .expect("the UI takes keys");
    };
    let opts = TuiOptions {
        listen: Some("127.0.0.1:0".into()),
        connect: None,
        default_listen: None,
        out: out.path().to_owned(),
        passphrase: Some(PASS.into()),
        insecure: false,
        cwd: cwd.path().to_owned(),
        image_protocol: ImageProtocol::Blocks,
        no_color: true,
        mouse: false,
    };
    let out_dir = out.path().to_owned();
    let script = tokio::spawn(async move {
        // Listening at once (--listen), on the port the system picked.
        let frame = frame_where(&mut frames, "listening", |f| {
            f.contains("● listening") && f.contains("listening on 127.0.0.1:")
        })
        .await;
        let port: u16 = frame
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .expect("a port on screen");
        // Keys reach the app: the help opens and closes, Tab moves the focus.
        press(KeyCode::Char('?'));
        frame_where(&mut frames, "with the help", |f| f.contains("Help: keys")).await;
        press(KeyCode::Esc);
        frame_where(&mut frames, "without the help", |f| {
            !f.contains("Help: keys")
        })
        .await;
        press(KeyCode::Tab);
        frame_where(&mut frames, "with Files focused", |f| {
            f.contains("┏ Files") && f.contains("┌ Connection")
        })
        .await;
        // A real sender on loopback.
        let peer: SocketAddr = ([127, 0, 0, 1], port).into();
        let data = image_bytes("chelsea.png");
        let config = SenderConfig {
            passphrase: Some(Passphrase::new(PASS)),
            ..SenderConfig::default()
        };
        let offer = engine::offer_file(&config, "chelsea.png", &data);
        let (publisher, _events) = engine::channel(4096);
        let socket = engine::bind_for(peer).expect("a socket");
        let report = engine::send(
            &socket,
            peer,
            config,
            offer,
            Bytes::from(data.clone()),
            1,
            publisher,
        )
        .await
        .expect("the send ran");
        assert_eq!(report.result, Ok(()));
        let frame = frame_where(&mut frames, "with the verified image", |f| {
            f.contains("chelsea.png ✓") && f.contains("session 1/1 ✓") && f.contains("done:")
        })
        .await;
        assert!(frame.contains("● listening"), "{frame}");
        assert_eq!(
            std::fs::read(out_dir.join("chelsea.png")).expect("saved"),
            data
        );
        press(KeyCode::Char('q'));
        press
    });
    let ui = run_on(&mut terminal, opts, key_stream);
    tokio::pin!(ui);
    tokio::pin!(script);
    tokio::select! {
        r = &mut ui => {
            r.expect("run_on ends without an error");
            // It ended: only the script's q may have ended it, after every check.
            let _keys = tokio::time::timeout(T, &mut script).await.expect("the script ends").expect("the script");
        }
        s = &mut script => {
            let _keys_still_open = s.expect("the script");
            let r = tokio::time::timeout(T, ui).await.expect("q ends run_on");
            r.expect("run_on ends without an error");
        }
    }
}

/// The photos folder as the file browser lists it: chelsea.png alone, read as an image or
/// not yet.
fn chelsea_listing(with_info: bool) -> Msg {
    Msg::Dir(
        PathBuf::from(PHOTOS),
        vec![Entry {
            path: PathBuf::from(PHOTOS).join("chelsea.png"),
            name: "chelsea.png".into(),
            is_dir: false,
            size: 240_512,
            info: with_info.then(|| engine::image_info_path(&testdata("chelsea.png"))),
        }],
    )
}

// ---------------------------------------------------------------------------------------------
// Stop, cancel and quitting mid-transfer.

#[test]
fn quitting_while_an_image_arrives_asks_first() {
    let mut app = receiving_app();
    assert!(app.transferring());
    feed(&mut app, key(KeyCode::Char('q')));
    assert!(!app.quit, "q mid-transfer must ask, not quit");
    assert!(app.popups.confirm_quit);
    let text = mono(&app, 80, 24);
    assert!(text.contains("Quit udpix?"), "{text}");
    assert!(text.contains("the sender is told"), "{text}");
    // n goes on, with nothing stopped.
    let cmds = feed(&mut app, key(KeyCode::Char('n')));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert!(!app.quit && !app.popups.confirm_quit);
    assert!(matches!(app.state, ConnState::Listening(_)));
    // Keys other than the answers do nothing while asked.
    feed(&mut app, key(KeyCode::Char('q')));
    feed(&mut app, key(KeyCode::Char('r')));
    assert!(app.popups.confirm_quit && !app.quit);
    assert_eq!(app.form.role, Role::Receive);
    feed(&mut app, key(KeyCode::Char('y')));
    assert!(app.quit);
}

#[test]
fn quitting_when_nothing_runs_needs_no_answer() {
    let (mut app, _) = App::new(setup(Role::Receive));
    assert!(!app.transferring());
    feed(&mut app, key(KeyCode::Char('q')));
    assert!(app.quit && !app.popups.confirm_quit);
}

#[test]
fn x_stops_listening_and_the_state_says_so() {
    let mut app = receiving_app();
    let text = mono(&app, 160, 48);
    assert!(text.contains("[ Stop listening ]"), "{text}");
    let cmds = feed(&mut app, key(KeyCode::Char('x')));
    assert_eq!(cmds, vec![Command::StopListening]);
    assert_eq!(
        app.state,
        ConnState::Stopped("stopped listening on 0.0.0.0:7878".into())
    );
    assert!(!app.busy(), "stopped: the role and fields may change again");
    let text = mono(&app, 160, 48);
    assert!(text.contains("stopped listening on 0.0.0.0:7878"), "{text}");
    assert!(text.contains("[ Listen ]"), "{text}");
    // A second x has nothing left to stop.
    assert!(feed(&mut app, key(KeyCode::Char('x'))).is_empty());
}

#[test]
fn cancelling_a_send_waits_for_the_engine_then_says_what_was_not_delivered() {
    let (mut app, _) = sending();
    let cmds = feed(&mut app, key(KeyCode::Char('x')));
    assert_eq!(cmds, vec![Command::CancelSend]);
    assert_eq!(
        app.state,
        ConnState::Cancelling(receiver_addr().to_string())
    );
    assert!(
        app.busy(),
        "the engine still runs until it has told the receiver"
    );
    assert!(feed(&mut app, key(KeyCode::Char('x'))).is_empty());
    // The engine's verdict on the file comes first: a failure, as asked for.
    let t = &app.transfers.by_id[&SEND_ID];
    let report = engine::Report {
        id: SEND_ID,
        direction: engine::Direction::Send,
        peer: receiver_addr(),
        offer: t.offer.clone(),
        path: None,
        stats: t.stats.clone(),
        duration: ms(300),
        result: Err("cancelled: its user cancelled the send".into()),
        ends_session: true,
    };
    feed(&mut app, Msg::Engine(Event::Finished(Box::new(report))));
    assert!(matches!(app.state, ConnState::Cancelling(_)));
    feed(&mut app, Msg::SendFinished(1));
    assert_eq!(
        app.state,
        ConnState::Stopped("send cancelled: 1 file not delivered".into())
    );
    let text = mono(&app, 160, 48);
    assert!(
        text.contains("send cancelled: 1 file not delivered"),
        "{text}"
    );
}

#[test]
fn enter_on_the_action_button_stops_what_runs() {
    let mut app = receiving_app();
    app.focus = udpix::tui::app::Pane::Connection;
    app.form.field = udpix::tui::app::Field::Action;
    let cmds = feed(&mut app, key(KeyCode::Enter));
    assert_eq!(cmds, vec![Command::StopListening]);
}

// ---------------------------------------------------------------------------------------------
// No hidden state: each pane acts on what it shows.

#[test]
fn the_empty_received_list_ignores_keys_meant_for_a_list() {
    let (mut app, _) = App::new(setup(Role::Receive));
    // The browser has entries, but the Receive role's Files pane does not show them.
    feed(&mut app, chelsea_listing(true));
    feed(&mut app, key(KeyCode::Tab));
    assert_eq!(app.focus, udpix::tui::app::Pane::Files);
    for k in [
        KeyCode::Down,
        KeyCode::Down,
        KeyCode::Enter,
        KeyCode::Char(' '),
    ] {
        let cmds = feed(&mut app, key(k));
        assert!(cmds.is_empty(), "{k:?} gave {cmds:?}");
    }
    assert_eq!(app.form.role, Role::Receive);
    assert!(
        app.browser.marked.is_empty(),
        "marked {:?}",
        app.browser.marked
    );
    assert_eq!(app.state, ConnState::Idle);
}

#[test]
fn the_received_list_moves_previews_and_opens_what_it_shows() {
    let mut app = second_transfer();
    feed(&mut app, key(KeyCode::Tab));
    assert_eq!(app.transfers.received_ids(), vec![1, 2]);
    assert_eq!(
        app.transfers.current,
        Some(2),
        "the newest transfer is shown"
    );
    let cursor_row = |app: &App| {
        mono(app, 160, 48)
            .lines()
            .find(|l| l.contains('▸'))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(
        cursor_row(&app).contains("rocket.jpg"),
        "{}",
        cursor_row(&app)
    );
    // Up: chelsea.png, saved, previews from its file.
    let cmds = feed(&mut app, key(KeyCode::Up));
    let saved = app.transfers.by_id[&1].path.clone().expect("saved");
    assert_eq!(cmds, vec![Command::LoadPreview(1, saved.clone())]);
    assert_eq!(app.transfers.current, Some(1));
    assert!(
        cursor_row(&app).contains("chelsea.png"),
        "{}",
        cursor_row(&app)
    );
    assert!(mono(&app, 160, 48).contains("Preview: chelsea.png"));
    // Up at the top stays; o opens the saved file.
    feed(&mut app, key(KeyCode::Up));
    assert_eq!(app.transfers.current, Some(1));
    assert_eq!(
        feed(&mut app, key(KeyCode::Char('o'))),
        vec![Command::Open(saved)]
    );
    // Down: rocket.jpg, still arriving: its chunk map, nothing to load; o opens the folder.
    let cmds = feed(&mut app, key(KeyCode::Down));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(app.transfers.current, Some(2));
    assert!(app.preview.chunks.is_some());
    assert_eq!(
        feed(&mut app, key(KeyCode::Char('o'))),
        vec![Command::Open(PathBuf::from(OUT))]
    );
}

#[test]
fn the_highlighted_file_previews_before_it_is_sent() {
    let (mut app, _) = App::new(setup(Role::Send));
    feed(&mut app, chelsea_listing(true));
    // Not at once: a cursor passing over an image does not decode it.
    let cmds = app.update(Msg::Tick(ms(50)));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert!(app.preview.image.is_none());
    wait(&mut app, ms(50) + udpix::tui::app::BROWSE_SETTLE);
    let photo = PathBuf::from(PHOTOS).join("chelsea.png");
    assert_eq!(app.preview.path.as_ref(), Some(&photo));
    assert!(
        app.preview.image.is_some(),
        "decoded once the cursor rested"
    );
    assert!(app.transfers.by_id.is_empty(), "nothing was sent");
    let text = mono(&app, 160, 48);
    assert!(text.contains("Preview: chelsea.png"), "{text}");
    // Resting longer decodes nothing again.
    let before = app.preview.id;
    wait(&mut app, ms(2000));
    assert_eq!(app.preview.id, before);
}

#[test]
fn each_role_keeps_its_own_address() {
    let (mut app, _) = App::new(setup(Role::Receive));
    assert_eq!(app.form.address, "0.0.0.0:7878");
    feed(&mut app, key(KeyCode::Char('r')));
    assert_eq!(app.form.role, Role::Send);
    assert_eq!(app.form.address, "", "a listen address is no receiver");
    let text = mono(&app, 160, 48);
    assert!(
        text.contains("Receiver   (type HOST or HOST:PORT)"),
        "{text}"
    );
    // Sending with no address asks for one, in its field.
    app.browser
        .marked
        .insert(PathBuf::from(PHOTOS).join("chelsea.png"));
    app.focus = udpix::tui::app::Pane::Connection;
    app.form.field = udpix::tui::app::Field::Action;
    assert!(feed(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(matches!(&app.state, ConnState::Error(e) if e.contains("receiver's address")));
    assert_eq!(app.form.field, udpix::tui::app::Field::Address);
    // There, typing types (r is no command on a text row).
    for c in "rx:1".chars() {
        feed(&mut app, key(KeyCode::Char(c)));
    }
    assert_eq!(app.form.address, "rx:1");
    feed(&mut app, key(KeyCode::Enter));
    feed(&mut app, key(KeyCode::Up));
    assert_eq!(app.form.field, udpix::tui::app::Field::Role);
    feed(&mut app, key(KeyCode::Char('r')));
    assert_eq!(app.form.role, Role::Receive);
    assert_eq!(app.form.address, "0.0.0.0:7878");
    feed(&mut app, key(KeyCode::Char('r')));
    assert_eq!(app.form.address, "rx:1", "the receiver typed is kept");
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

#[test]
fn text_fields_have_a_cursor_line_editing_paste_and_a_passphrase_reveal() {
    let (mut app, _) = App::new(setup(Role::Send));
    // Down from the Receiver row (editing or not) goes to the passphrase, and what is typed
    // there lands in it: nothing is taken for a command (q would have quit).
    app.form.field = udpix::tui::app::Field::Address;
    feed(&mut app, key(KeyCode::Enter));
    assert!(app.form.editing);
    feed(&mut app, key(KeyCode::Down));
    assert!(!app.form.editing);
    assert_eq!(app.form.field, udpix::tui::app::Field::Passphrase);
    feed(&mut app, ctrl('u'));
    assert_eq!(
        app.form.passphrase, PASS,
        "Ctrl-U outside editing changes nothing"
    );
    feed(&mut app, key(KeyCode::Char('q')));
    assert!(!app.quit, "q typed into a field must not quit");
    assert!(app.form.editing);
    assert_eq!(app.form.passphrase, format!("{PASS}q"));
    // Ctrl-U clears the line; a paste goes in whole, its line break dropped.
    feed(&mut app, ctrl('u'));
    assert_eq!(app.form.passphrase, "");
    feed(&mut app, Msg::Paste("correct horse\n".into()));
    assert_eq!(app.form.passphrase, "correct horse");
    // The cursor moves: Home, then typing inserts at the start.
    feed(&mut app, key(KeyCode::Home));
    feed(&mut app, key(KeyCode::Char('>')));
    assert_eq!(app.form.passphrase, ">correct horse");
    // Masked, with the cursor on the second cell; Ctrl-R shows it in clear.
    let row = |app: &App| {
        mono(app, 160, 48)
            .lines()
            .find(|l| l.contains("Passphrase"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(row(&app).contains("••••••••••••••"), "{}", row(&app));
    assert!(!row(&app).contains("horse"), "{}", row(&app));
    feed(&mut app, ctrl('r'));
    assert!(row(&app).contains(">correct horse"), "{}", row(&app));
    feed(&mut app, key(KeyCode::Enter));
    assert!(!app.form.editing);
    assert!(row(&app).contains(">correct horse"), "{}", row(&app));
    feed(&mut app, ctrl('r'));
    assert!(!row(&app).contains("horse"), "{}", row(&app));
    // A paste while no field is being edited goes nowhere.
    feed(&mut app, Msg::Paste("qqq".into()));
    assert_eq!(app.form.passphrase, ">correct horse");
    assert!(!app.quit);
}

// ---------------------------------------------------------------------------------------------
// Discoverable: the footer, and errors in full.

fn bottom_line(app: &App, w: u16, h: u16) -> String {
    mono(app, w, h)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_footer_names_the_focused_panes_keys_and_always_help() {
    let mut app = received_app();
    let line = bottom_line(&app, 160, 48);
    assert!(
        line.contains("Enter stop") && line.contains("x stop listening"),
        "{line}"
    );
    feed(&mut app, key(KeyCode::Tab));
    let line = bottom_line(&app, 160, 48);
    assert!(
        line.contains("↑ ↓ received images  Enter preview  o open"),
        "{line}"
    );
    feed(&mut app, key(KeyCode::Tab));
    let line = bottom_line(&app, 160, 48);
    assert!(line.contains("G follow"), "{line}");
    // The narrowest screen still shows where the rest is.
    let line = bottom_line(&app, 60, 18);
    assert!(line.contains("? help"), "{line}");
    // Editing shows the field's keys instead.
    let (mut app, _) = App::new(setup(Role::Send));
    app.form.field = udpix::tui::app::Field::Passphrase;
    feed(&mut app, key(KeyCode::Char('a')));
    let line = bottom_line(&app, 160, 48);
    assert!(
        line.contains("Ctrl-U clear") && line.contains("Ctrl-R show"),
        "{line}"
    );
}

#[test]
fn e_shows_the_error_in_full() {
    let (mut app, _) = App::new(setup(Role::Send));
    let long = "the receiver refused the offer: its disk is full (4.0 kB free, 240.5 kB needed); \
                free some space there or send to another folder with --out";
    feed(&mut app, Msg::Failed(long.into()));
    let text = mono(&app, 80, 24);
    assert!(
        !text.contains("another folder with --out"),
        "the state line cuts it: {text}"
    );
    assert!(bottom_line(&app, 80, 24).contains("e full error"));
    feed(&mut app, key(KeyCode::Char('e')));
    assert!(app.popups.error);
    let text = mono(&app, 80, 24).replace(['│', '┃', '"'], "");
    let joined: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(joined.contains("its disk is full"), "{text}");
    assert!(joined.contains("another folder with --out"), "{text}");
    feed(&mut app, key(KeyCode::Esc));
    assert!(!app.popups.error);
    // No error: e does nothing.
    let (mut app, _) = App::new(setup(Role::Send));
    feed(&mut app, key(KeyCode::Char('e')));
    assert!(!app.popups.error);
}
