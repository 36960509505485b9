//! The invariants a user checks by eye between the figures udpix shows (docs/FIGURES.md):
//! transfers run through the in-memory simulator with loss placed or seeded, and the figures
//! read the way the front ends read them (`udpix::figures`, the CLI's line, the TUI's frame).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rand::{Rng, SeedableRng, rngs::StdRng};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use udpix::engine::{self, ChunkEvent, ChunkWhat, Direction, Event, Progress, Report, Snapshot};
use udpix::figures::{self, Fold};
use udpix::proto::sender::SenderConfig;
use udpix::proto::stats::TransferStats;
use udpix::sim::{LinkSpec, SimResult, run_transfer_dropping};
use udpix::tui::app::{App, Command, LogKind, Msg, Role, Setup};
use udpix::tui::halfblock::ColorDepth;
use udpix::tui::view::{Theme, draw};

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

fn link() -> LinkSpec {
    LinkSpec {
        delay: Duration::from_millis(10),
        rate: Some(2_500_000.0),
        queue: 100,
        ..LinkSpec::default()
    }
}

fn peer() -> SocketAddr {
    "192.0.2.7:40000".parse().expect("addr")
}

/// The report a front end gets for one side of a simulated transfer.
fn report(d: &[u8], r: &SimResult, direction: Direction) -> Report {
    let stats = match direction {
        Direction::Send => r.sender.clone(),
        Direction::Receive => r.receiver.clone().expect("receiver figures"),
    };
    Report {
        id: 1,
        direction,
        peer: peer(),
        offer: engine::offer_file(&SenderConfig::default(), "x.png", d),
        path: None,
        stats,
        duration: r.elapsed,
        result: r.outcome.clone().map(|_| ()).map_err(|e| e.to_string()),
        ends_session: false,
    }
}

/// For a verified image every chunk whose first copy was lost is counted recovered, by each
/// side and on the CLI's line: rebuilt from repair symbols (the tail) as well as sent again.
#[test]
fn every_lost_chunk_of_a_verified_image_is_recovered() {
    let d = data(120_000, 1);
    let chunks = engine::offer_file(&SenderConfig::default(), "x.png", &d).chunk_count;
    let tail: Vec<u32> = (chunks - 3..chunks).collect();
    for lost in [vec![5, 9, 10, 40], tail, vec![0, 17, chunks - 1]] {
        let r = run_transfer_dropping(&d, link(), &lost, 3);
        assert!(r.outcome.is_ok(), "{lost:?}: {:?}", r.outcome);
        assert!(r.received == d);
        let rx = report(&d, &r, Direction::Receive);
        let n = lost.len() as u64;
        assert_eq!(figures::missing(&rx.stats), 0, "{lost:?}");
        assert_eq!(
            figures::recovered(&rx.stats, Direction::Receive),
            n,
            "{lost:?}: {:?}",
            rx.stats
        );
        assert_eq!(figures::chunks_lost(&rx.stats, Direction::Receive), n);
        let line = udpix::report::human_line(&rx);
        assert!(line.contains(&format!(", {n} chunks recovered")), "{line}");
        // The sender lost sight of no chunk it does not count recovered.
        let s = &r.sender;
        assert_eq!(figures::missing(s), 0);
        assert_eq!(
            figures::chunks_lost(s, Direction::Send),
            figures::recovered(s, Direction::Send)
        );
    }
}

/// Loss is counted in datagrams (offers, acknowledgements' answers and repair symbols too),
/// so with random loss it is no chunk count: the figure says it is datagrams.
#[test]
fn loss_is_told_in_datagrams_beside_the_recovered_chunks() {
    let d = data(100_000, 2);
    for seed in 0..4 {
        let lossy = LinkSpec {
            loss: 0.1,
            ..link()
        };
        let r = udpix::sim::run_transfer(
            &d,
            lossy.clone(),
            lossy,
            SenderConfig::default(),
            udpix::proto::receiver::ReceiverConfig::default(),
            seed,
            Duration::from_secs(60),
        );
        assert!(r.outcome.is_ok(), "seed {seed}");
        for dir in [Direction::Send, Direction::Receive] {
            let rep = report(&d, &r, dir);
            let s = &rep.stats;
            let text = figures::lost_text(s.lost, figures::loss_percent(s, dir));
            assert!(text.contains(" dgram"), "{text}");
            assert_eq!(figures::missing(s), 0);
            assert!(figures::recovered(s, dir) <= u64::from(s.chunks), "{s:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The TUI's frame.

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

fn setup(role: Role) -> Setup {
    Setup {
        role,
        address: match role {
            Role::Receive => "0.0.0.0:7878".into(),
            Role::Send => "192.0.2.1:7878".into(),
        },
        other_address: String::new(),
        passphrase: Some("417-orbit-lantern-mosaic".into()),
        generated: false,
        insecure: false,
        out_dir: "/data/in".into(),
        cwd: PathBuf::from("/data/photos"),
        autostart: false,
    }
}

/// Applies a message; a listen is answered at once, as the runtime does.
fn feed(app: &mut App, msg: Msg) {
    for cmd in app.update(msg) {
        if let Command::Listen { addr, .. } = cmd {
            feed(app, Msg::Listening(addr.parse().expect("an IP:PORT")));
        }
    }
}

fn terminal(app: &App, theme: Theme) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    t.draw(|f| draw(f, app, &theme)).expect("draw");
    t
}

fn text(app: &App) -> String {
    format!("{}", terminal(app, MONO).backend())
}

/// A listening receiver.
fn receiver() -> App {
    let (mut app, _) = App::new(setup(Role::Receive));
    feed(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    app
}

/// `id` starts: an image of `len` bytes in its offer's chunks.
fn start(app: &mut App, id: u64, direction: Direction, len: usize) -> u32 {
    let offer = engine::offer_file(
        &SenderConfig::default(),
        &format!("img{id}.png"),
        &data(len, id),
    );
    let chunks = offer.chunk_count;
    feed(
        app,
        Msg::Engine(Event::Started {
            id,
            direction,
            peer: peer(),
            offer,
        }),
    );
    chunks
}

fn chunk(app: &mut App, id: u64, chunk: u32, what: ChunkWhat) {
    feed(
        app,
        Msg::Engine(Event::Chunk(ChunkEvent { id, chunk, what })),
    );
}

/// The engine's figures for `id`.
fn progress(app: &mut App, id: u64, stats: TransferStats) {
    let snap = Snapshot {
        transfers: vec![Progress {
            id,
            name: format!("img{id}.png"),
            stats,
            elapsed: Duration::from_millis(300),
        }],
        ..Snapshot::default()
    };
    feed(app, Msg::Snapshot(snap));
}

/// The sender's log of a lossy 97-chunk send, all in one frame: each chunk sent and
/// acknowledged, a third lost and sent again four times, so far more events than chunks. No fold line
/// counts more chunks than the image has, nor more of any kind.
#[test]
fn a_fold_line_never_counts_more_chunks_than_the_image_has() {
    let (mut app, _) = App::new(setup(Role::Send));
    let chunks = start(&mut app, 1, Direction::Send, 97 * 1100);
    assert!(chunks >= 90, "{chunks}");
    for c in 0..chunks {
        chunk(&mut app, 1, c, ChunkWhat::Sent);
    }
    // A third of them lost four times over: more lost events than the image has chunks.
    for _ in 0..4 {
        for c in (0..chunks).step_by(3) {
            chunk(&mut app, 1, c, ChunkWhat::Lost);
            chunk(&mut app, 1, c, ChunkWhat::Retransmitted);
        }
    }
    for c in 0..chunks {
        chunk(&mut app, 1, c, ChunkWhat::Acked);
    }
    feed(&mut app, Msg::Tick(Duration::from_millis(100)));
    let folds: Vec<&Fold> = app
        .log
        .lines
        .iter()
        .filter_map(|l| match &l.kind {
            LogKind::Summary(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(!folds.is_empty(), "nothing folded");
    for f in &folds {
        assert!(f.chunks <= chunks as usize, "{f:?}");
        for (w, n) in &f.kinds {
            assert!(*n <= f.chunks, "{w:?} {f:?}");
        }
    }
    // And so the line drawn: `+N chunks` with N at most the image's.
    let screen = text(&app);
    for line in screen.lines() {
        if let Some(at) = line.find(" chunks:") {
            let n: String = line[..at]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .filter(|c| *c != ',')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let n: u32 = n.parse().expect("a count");
            assert!(n <= chunks, "{line}");
        }
    }
}

/// One image verified, the next still arriving: the session is not marked done (✓).
#[test]
fn the_session_is_never_done_while_a_transfer_runs() {
    let mut app = receiver();
    start(&mut app, 1, Direction::Receive, 5_000);
    let done = TransferStats {
        chunks: 5,
        chunks_done: 5,
        ..TransferStats::default()
    };
    let offer = engine::offer_file(&SenderConfig::default(), "img1.png", &data(5_000, 1));
    feed(
        &mut app,
        Msg::Engine(Event::Finished(Box::new(Report {
            id: 1,
            direction: Direction::Receive,
            peer: peer(),
            stats: TransferStats {
                bytes: offer.size,
                chunks: offer.chunk_count,
                chunks_done: offer.chunk_count,
                ..done
            },
            offer,
            path: Some(PathBuf::from("/data/in/img1.png")),
            duration: Duration::from_millis(200),
            result: Ok(()),
            ends_session: false,
        }))),
    );
    let finished = text(&app);
    assert!(finished.contains("session 1/1 ✓"), "{finished}");
    start(&mut app, 2, Direction::Receive, 50_000);
    feed(&mut app, Msg::Tick(Duration::from_millis(300)));
    let screen = text(&app);
    assert!(screen.contains("session 1/2"), "{screen}");
    assert!(!screen.contains("session 1/2 ✓"), "{screen}");
}

/// The colour of the Stats pane's loss figure in the image's column.
fn loss_colours(app: &App) -> Vec<Color> {
    let t = terminal(app, COLOUR);
    let buf = t.backend().buffer();
    let mut colours = Vec::new();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_owned())
            .collect();
        let Some(at) = row.find("lost ") else {
            continue;
        };
        let x0 = row[..at].chars().count() as u16 + 5;
        // The figures on that row: every non-blank cell after the label.
        for x in x0..buf.area.width {
            let cell = &buf[(x, y)];
            if cell.symbol().chars().any(|c| c.is_ascii_digit()) {
                colours.push(cell.fg);
            }
        }
    }
    colours
}

/// No loss is not drawn as a warning, in the image's column or the session's, while some loss
/// is (so the check can tell).
#[test]
fn zero_loss_is_not_drawn_in_a_warning_colour() {
    let mut app = receiver();
    let chunks = start(&mut app, 1, Direction::Receive, 50_000);
    let clean = TransferStats {
        bytes: 50_000,
        chunks,
        chunks_done: chunks / 2,
        datagrams_received: u64::from(chunks / 2),
        ..TransferStats::default()
    };
    progress(&mut app, 1, clean.clone());
    let colours = loss_colours(&app);
    assert!(!colours.is_empty(), "no loss row drawn:\n{}", text(&app));
    for c in &colours {
        assert!(![Color::Red, Color::Yellow].contains(c), "{colours:?}");
    }
    progress(&mut app, 1, TransferStats { lost: 9, ..clean });
    assert!(loss_colours(&app).contains(&Color::Red), "{}", text(&app));
}

/// `45/453`: the count before a slash, as the Stats pane (`45/453 9.9%`) and the Preview's
/// caption (`45/453 chunks in`) both print it.
fn counts(screen: &str, after: &str, total: u32) -> Vec<u32> {
    let needle = format!("/{total}{after}");
    screen
        .lines()
        .filter_map(|l| {
            let at = l.find(&needle)?;
            let digits: String = l[..at]
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.chars().rev().collect::<String>().parse().ok()
        })
        .collect()
}

/// Chunk events run ahead of the engine's last figures (122 in, the figures say 45): the
/// Stats pane and the Preview's caption still say the same in the one frame.
#[test]
fn stats_and_preview_show_the_same_progress_in_one_frame() {
    let mut app = receiver();
    let chunks = start(&mut app, 1, Direction::Receive, 453 * 1100);
    let mut stats = TransferStats {
        bytes: 453 * 1100,
        chunks,
        ..TransferStats::default()
    };
    for (events, figures_say) in [(122, 45), (300, 290), (chunks, chunks)] {
        let from = stats.chunks_done;
        for c in from..events {
            chunk(&mut app, 1, c, ChunkWhat::Received);
        }
        stats.chunks_done = figures_say;
        progress(&mut app, 1, stats.clone());
        feed(
            &mut app,
            Msg::Tick(Duration::from_millis(u64::from(events))),
        );
        let screen = text(&app);
        let stats_pane = counts(&screen, " ", chunks);
        let preview = counts(&screen, " chunks in", chunks);
        assert!(!preview.is_empty(), "{screen}");
        assert!(!stats_pane.is_empty(), "{screen}");
        for n in stats_pane.iter().chain(&preview) {
            assert_eq!(*n, figures_say, "{screen}");
        }
    }
}

/// The demo's two lines of one image: the sender's time holds the receiver's, and its line
/// says how much of it that was, the parts adding up to the time printed.
#[test]
fn the_senders_time_holds_the_receivers() {
    let share = udpix::report::sender_share(Duration::from_millis(440), Duration::from_millis(190));
    assert_eq!(
        share,
        "; receiver's part 0.19 s, +0.25 s login, offer and verdict's return"
    );
}
