//! Rendering tests: the whole screen drawn into ratatui's TestBackend in typical states, at
//! 80×24 and 160×48, compared with insta snapshots in `tests/snapshots/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use udpix::engine::{ChunkEvent, ChunkWhat, Direction, Event, Progress, Report, Snapshot};
use udpix::proto::stats::TransferStats;
use udpix::proto::wire::Offer;
use udpix::tui::app::{App, Command, ConnState, Entry, Msg, Role, Setup};
use udpix::tui::halfblock::ColorDepth;
use udpix::tui::view::{Theme, draw};

const MONO: Theme = Theme {
    depth: ColorDepth::Mono,
    graphics: false,
    cell_aspect: 2.0,
};

fn setup(role: Role) -> Setup {
    Setup {
        role,
        address: "0.0.0.0:7878".into(),
        passphrase: Some("417-orbit-lantern-mosaic".into()),
        generated: false,
        insecure: false,
        out_dir: "/data/in".into(),
        cwd: PathBuf::from("/data/photos"),
        autostart: false,
    }
}

fn render(app: &App, w: u16, h: u16, theme: Theme) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, app, &theme)).expect("draw");
    t
}

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn offer(name: &str, size: u64) -> Offer {
    Offer {
        name: name.into(),
        size,
        chunk_size: 1166,
        chunk_count: size.div_ceil(1166) as u32,
        blake3: [0; 32],
        format: "png".into(),
        width: 451,
        height: 300,
    }
}

fn peer() -> SocketAddr {
    "192.0.2.7:40000".parse().expect("addr")
}

fn stats(done: u32, chunks: u32) -> TransferStats {
    TransferStats {
        bytes: 240_512,
        chunks,
        chunks_done: done,
        datagrams_sent: 40,
        datagrams_received: u64::from(done) + 12,
        lost: 12,
        retransmitted: 12,
        recovered: 11,
        duplicates: 1,
        rtt: Duration::from_millis(41),
        ..TransferStats::default()
    }
}

/// A receiver that got one image and is halfway through a second.
fn receiving_app() -> App {
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(Msg::Tick(Duration::from_millis(1500)));
    app.update(Msg::Engine(Event::Started {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer("chelsea.png", 240_512),
    }));
    for chunk in 0..30 {
        let what = if chunk % 7 == 3 {
            ChunkWhat::Recovered
        } else {
            ChunkWhat::Received
        };
        app.update(Msg::Engine(Event::Chunk(ChunkEvent { id: 1, chunk, what })));
    }
    app.update(Msg::Snapshot(Snapshot {
        transfers: vec![Progress {
            id: 1,
            name: "chelsea.png".into(),
            stats: stats(30, 207),
            elapsed: Duration::from_millis(400),
        }],
        ..Snapshot::default()
    }));
    app.update(Msg::Tick(Duration::from_millis(2000)));
    app
}

/// Finishes transfer 1; returns the commands the app asked for.
fn finish(app: &mut App) -> Vec<Command> {
    let mut o = offer("chelsea.png", 240_512);
    o.chunk_count = 207;
    let cmds = app.update(Msg::Engine(Event::Finished(Box::new(Report {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: o,
        path: Some(PathBuf::from("/data/in/chelsea.png")),
        stats: stats(207, 207),
        duration: Duration::from_millis(830),
        result: Ok(()),
        ends_session: false,
    }))));
    app.update(Msg::Tick(Duration::from_millis(2500)));
    cmds
}

fn gradient() -> image::RgbImage {
    image::RgbImage::from_fn(90, 60, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 4) as u8, 128])
    })
}

#[test]
fn receive_idle() {
    let (app, cmds) = App::new(setup(Role::Receive));
    assert_eq!(cmds, vec![Command::ReadDir(PathBuf::from("/data/photos"))]);
    insta::assert_snapshot!("receive_idle_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!("receive_idle_160x48", render(&app, 160, 48, MONO).backend());
}

#[test]
fn receive_listening_with_generated_passphrase() {
    let mut s = setup(Role::Receive);
    s.passphrase = None;
    let (mut app, _) = App::new(s);
    let cmds = app.update(key(KeyCode::Enter));
    assert!(
        matches!(&cmds[..], [Command::Listen { passphrase: Some(p), .. }] if p.split('-').count() == 4)
    );
    // The generated words are shown so they can be read out; replace them for a stable snapshot.
    assert!(app.passphrase_generated);
    app.passphrase = "123-alpha-bravo-charlie".into();
    insta::assert_snapshot!(
        "receive_listening_80x24",
        render(&app, 80, 24, MONO).backend()
    );
    insta::assert_snapshot!(
        "receive_listening_160x48",
        render(&app, 160, 48, MONO).backend()
    );
}

#[test]
fn receive_in_progress_shows_chunk_map_and_log() {
    let app = receiving_app();
    insta::assert_snapshot!(
        "receive_progress_80x24",
        render(&app, 80, 24, MONO).backend()
    );
    insta::assert_snapshot!(
        "receive_progress_160x48",
        render(&app, 160, 48, MONO).backend()
    );
}

#[test]
fn receive_done_with_half_block_preview() {
    let mut app = receiving_app();
    // Verified: the image replaces the chunk map.
    let cmds = finish(&mut app);
    assert_eq!(
        cmds,
        vec![Command::LoadPreview(
            1,
            PathBuf::from("/data/in/chelsea.png")
        )]
    );
    app.update(Msg::PreviewReady(1, gradient()));
    insta::assert_snapshot!("receive_done_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!("receive_done_160x48", render(&app, 160, 48, MONO).backend());
    // In colour the preview is '▀' cells with both colours set.
    let t = render(
        &app,
        80,
        24,
        Theme {
            depth: ColorDepth::TrueColor,
            graphics: false,
            cell_aspect: 2.0,
        },
    );
    let buf = t.backend().buffer();
    let halves = buf.content().iter().filter(|c| c.symbol() == "▀").count();
    assert!(halves > 100, "only {halves} half-block cells");
}

#[test]
fn send_role_file_browser() {
    let (mut app, _) = App::new(setup(Role::Send));
    let e = |name: &str, dir: bool, size: u64, info: Option<(&str, u32, u32)>| Entry {
        path: PathBuf::from("/data/photos").join(name),
        name: name.into(),
        is_dir: dir,
        size,
        info: info.map(|(f, w, h)| (f.to_owned(), Some((w, h)))),
    };
    app.update(Msg::Dir(
        PathBuf::from("/data/photos"),
        vec![
            e("..", true, 0, None),
            e("holiday", true, 0, None),
            e("astronaut.png", false, 791_555, Some(("png", 512, 512))),
            e("chelsea.png", false, 240_512, Some(("png", 451, 300))),
            e("rocket.jpg", false, 112_525, Some(("jpg", 640, 427))),
            e("notes.txt", false, 1_200, None),
        ],
    ));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' ')));
    insta::assert_snapshot!("send_files_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!("send_files_160x48", render(&app, 160, 48, MONO).backend());
    let cmds = app.update(key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            to: "0.0.0.0:7878".into(),
            files: vec![(SEND_ID, PathBuf::from("/data/photos/astronaut.png"))],
            passphrase: Some("417-orbit-lantern-mosaic".into()),
        }]
    );
}

#[test]
fn help_overlay_lists_every_key() {
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(key(KeyCode::Char('?')));
    assert!(app.show_help);
    let t = render(&app, 80, 24, MONO);
    insta::assert_snapshot!("help_80x24", t.backend());
    insta::assert_snapshot!("help_160x48", render(&app, 160, 48, MONO).backend());
    let text = format!("{}", t.backend());
    for (k, _) in udpix::tui::keymap::help_rows() {
        assert!(text.contains(&k), "help lacks {k}");
    }
    app.update(key(KeyCode::Esc));
    assert!(!app.show_help);
}

#[test]
fn too_small_terminal_says_so() {
    let (app, _) = App::new(setup(Role::Receive));
    insta::assert_snapshot!("too_small_50x15", render(&app, 50, 15, MONO).backend());
}

#[test]
fn failed_login_shows_in_connection_state() {
    let (mut app, _) = App::new(setup(Role::Send));
    app.update(Msg::Failed(
        "authentication failed: wrong passphrase?".into(),
    ));
    insta::assert_snapshot!(
        "send_auth_failed_80x24",
        render(&app, 80, 24, MONO).backend()
    );
    insta::assert_snapshot!(
        "send_auth_failed_160x48",
        render(&app, 160, 48, MONO).backend()
    );
}

#[test]
fn a_burst_of_chunk_events_is_summarised() {
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(Msg::Engine(Event::Started {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer("big.png", 5_000_000),
    }));
    for chunk in 0..1000 {
        app.update(Msg::Engine(Event::Chunk(ChunkEvent {
            id: 1,
            chunk,
            what: ChunkWhat::Received,
        })));
    }
    app.update(Msg::Tick(Duration::from_millis(100)));
    assert!(app.log.len() < 10, "log grew to {} lines", app.log.len());
    // Every event is accounted for, in summaries or lines of its own.
    use udpix::tui::app::LogKind;
    let counted: usize = app
        .log
        .iter()
        .map(|l| match l.kind {
            LogKind::Summary { count, .. } => count,
            LogKind::Chunk { .. } => 1,
            LogKind::Note(_) => 0,
        })
        .sum();
    assert_eq!(counted, 1000);
    let text = format!("{}", render(&app, 80, 24, MONO).backend());
    assert!(text.contains(" chunks (0 lost)"), "{text}");
}

fn frame_buffer(app: &App, theme: Theme) -> ratatui::buffer::Buffer {
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    t.draw(|f| draw(f, app, &theme))
        .expect("draw")
        .buffer
        .clone()
}

#[test]
fn graphics_mode_leaves_the_preview_cells_to_the_printed_image() {
    let mut app = receiving_app();
    finish(&mut app);
    app.update(Msg::PreviewReady(1, gradient()));
    let theme = Theme {
        depth: ColorDepth::TrueColor,
        graphics: true,
        cell_aspect: 2.0,
    };
    let buf = frame_buffer(&app, theme);
    let inner = udpix::tui::view::preview_inner(ratatui::layout::Rect::new(0, 0, 80, 24), None);
    let cell = &buf[(inner.x + 2, inner.y + 2)];
    assert_eq!(cell.diff_option, ratatui::buffer::CellDiffOption::Skip);
    // With the help open the half blocks come back, so the popup draws over text, not pixels.
    app.update(key(KeyCode::Char('?')));
    let skipped = frame_buffer(&app, theme)
        .content()
        .iter()
        .filter(|c| c.diff_option == ratatui::buffer::CellDiffOption::Skip)
        .count();
    assert_eq!(skipped, 0);
}

#[test]
fn chunk_log_scrolled_up_and_session_totals() {
    let mut app = receiving_app();
    finish(&mut app);
    app.update(Msg::Engine(Event::Started {
        id: 2,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer("rocket.jpg", 112_525),
    }));
    app.update(Msg::Tick(Duration::from_millis(3000)));
    // Focus the Chunks pane (Tab twice) and scroll up three lines.
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab));
    for _ in 0..3 {
        app.update(key(KeyCode::Up));
    }
    assert_eq!(app.log_scroll, 3);
    insta::assert_snapshot!(
        "chunks_scrolled_80x24",
        render(&app, 80, 24, MONO).backend()
    );
    insta::assert_snapshot!(
        "chunks_scrolled_160x48",
        render(&app, 160, 48, MONO).backend()
    );
    // New lines keep the view where the user put it; End follows the tail again.
    app.update(Msg::Engine(Event::Notice("a notice".into())));
    assert_eq!(app.log_scroll, 4);
    app.update(key(KeyCode::End));
    assert_eq!(app.log_scroll, 0);
    // A page at a time, never past the oldest line.
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.log_scroll, udpix::tui::app::PAGE);
    for _ in 0..100 {
        app.update(key(KeyCode::PageUp));
    }
    assert_eq!(app.log_scroll, app.log.len() - 1);
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.log_scroll, app.log.len() - 1 - udpix::tui::app::PAGE);
    app.update(key(KeyCode::End));
    // Stats on the first image, with the session covering both.
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Up));
    assert_eq!(app.current, Some(1));
    insta::assert_snapshot!(
        "stats_two_images_160x48",
        render(&app, 160, 48, MONO).backend()
    );
    insta::assert_snapshot!(
        "stats_two_images_80x24",
        render(&app, 80, 24, MONO).backend()
    );
}

/// A sender: marked a file, pressed Enter, logged in, half the chunks acknowledged.
fn sending_app() -> App {
    let (mut app, _) = App::new(setup(Role::Send));
    let photo = PathBuf::from("/data/photos/chelsea.png");
    app.update(Msg::Dir(
        PathBuf::from("/data/photos"),
        vec![Entry {
            path: photo.clone(),
            name: "chelsea.png".into(),
            is_dir: false,
            size: 240_512,
            info: Some(("png".into(), Some((451, 300)))),
        }],
    ));
    app.update(key(KeyCode::Tab));
    let cmds = app.update(key(KeyCode::Enter));
    assert!(
        matches!(&cmds[..], [Command::Send { files, .. }] if files == &[(SEND_ID, photo.clone())])
    );
    assert_eq!(app.state, ConnState::Handshaking("0.0.0.0:7878".into()));
    // The file being sent is on disk: its preview is loaded as the transfer starts.
    let cmds = app.update(Msg::Engine(Event::Started {
        id: SEND_ID,
        direction: Direction::Send,
        peer: peer(),
        offer: offer("chelsea.png", 240_512),
    }));
    assert_eq!(cmds, vec![Command::LoadPreview(SEND_ID, photo.clone())]);
    // (At 80 columns the state wraps; 160 fit it on one line.)
    let text = format!("{}", render(&app, 160, 48, MONO).backend());
    assert!(text.contains("handshaking with 192.0.2.7:40000"), "{text}");
    app.update(Msg::Engine(Event::Connected {
        id: SEND_ID,
        peer: peer(),
    }));
    for chunk in 0..100 {
        let what = match chunk % 10 {
            3 => ChunkWhat::Lost,
            4 => ChunkWhat::Retransmitted,
            _ => ChunkWhat::Sent,
        };
        app.update(Msg::Engine(Event::Chunk(ChunkEvent {
            id: SEND_ID,
            chunk,
            what,
        })));
        app.update(Msg::Tick(Duration::from_millis(
            1000 + 10 * u64::from(chunk),
        )));
    }
    let mut s = stats(100, 207);
    s.datagrams_sent = 112;
    s.datagrams_received = 60;
    s.send_rate = 2_500_000.0;
    app.update(Msg::Snapshot(Snapshot {
        transfers: vec![Progress {
            id: SEND_ID,
            name: "chelsea.png".into(),
            stats: s,
            elapsed: Duration::from_millis(600),
        }],
        ..Snapshot::default()
    }));
    app.update(Msg::PreviewReady(SEND_ID, gradient()));
    app.update(Msg::Tick(Duration::from_millis(2100)));
    app
}

const SEND_ID: u64 = udpix::tui::app::SEND_IDS;

#[test]
fn send_in_progress_shows_connection_rtt_rate_and_preview() {
    let app = sending_app();
    assert_eq!(app.state, ConnState::Connected("192.0.2.7:40000".into()));
    insta::assert_snapshot!("send_progress_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!(
        "send_progress_160x48",
        render(&app, 160, 48, MONO).backend()
    );
    let text = format!("{}", render(&app, 160, 48, MONO).backend());
    for needle in [
        "connected to 192.0.2.7:40000",
        "41ms 20.0 Mbit/s",
        "retransmitted",
        "lost",
        "100/207 48.3%",
    ] {
        assert!(text.contains(needle), "screen lacks {needle:?}:\n{text}");
    }
}

#[test]
fn a_failed_login_while_sending_stays_in_the_state_line() {
    let mut app = sending_app();
    let mut o = offer("chelsea.png", 240_512);
    o.chunk_count = 207;
    app.update(Msg::Engine(Event::Finished(Box::new(Report {
        id: SEND_ID,
        direction: Direction::Send,
        peer: peer(),
        offer: o,
        path: None,
        stats: stats(0, 207),
        duration: Duration::from_millis(300),
        result: Err("authentication failed: wrong passphrase?".into()),
        ends_session: false,
    }))));
    app.update(Msg::SendFinished(1));
    assert_eq!(
        app.state,
        ConnState::Error("authentication failed: wrong passphrase?".into())
    );
    // The role and fields are free again for another try.
    assert!(!app.busy());
}

#[test]
fn a_receiver_shows_who_it_is_connected_to() {
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.state, ConnState::Listening("0.0.0.0:7878".into()));
    app.update(Msg::Engine(Event::Started {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer("chelsea.png", 240_512),
    }));
    let text = format!("{}", render(&app, 160, 48, MONO).backend());
    assert!(text.contains("connected to 192.0.2.7:40000"), "{text}");
    finish(&mut app);
    let text = format!("{}", render(&app, 160, 48, MONO).backend());
    assert!(text.contains("● listening"), "{text}");
}

#[test]
fn editing_the_receiver_address() {
    let (mut app, _) = App::new(setup(Role::Send));
    // The Connection pane has focus and its Action row is selected: go up to the address.
    for _ in 0..3 {
        app.update(key(KeyCode::Up));
    }
    app.update(key(KeyCode::Enter));
    assert!(app.editing);
    for _ in 0..4 {
        app.update(key(KeyCode::Backspace));
    }
    for c in "9000".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    // While editing, q is text, not quit.
    app.update(key(KeyCode::Char('q')));
    assert!(!app.quit);
    app.update(key(KeyCode::Backspace));
    insta::assert_snapshot!("send_editing_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!("send_editing_160x48", render(&app, 160, 48, MONO).backend());
    app.update(key(KeyCode::Enter));
    assert!(!app.editing);
    assert_eq!(app.address, "0.0.0.0:9000");
}

#[test]
fn the_preview_uses_the_colours_the_terminal_has() {
    let mut app = receiving_app();
    finish(&mut app);
    app.update(Msg::PreviewReady(1, gradient()));
    let inner = udpix::tui::view::preview_inner(ratatui::layout::Rect::new(0, 0, 80, 24), None);
    let cells = |depth| {
        let buf = frame_buffer(
            &app,
            Theme {
                depth,
                graphics: false,
                cell_aspect: 2.0,
            },
        );
        let mut out = Vec::new();
        for y in inner.top()..inner.bottom() {
            for x in inner.left()..inner.right() {
                out.push(buf[(x, y)].clone());
            }
        }
        out
    };
    use ratatui::style::Color;
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
    let dir = PathBuf::from("/data/photos");
    let entries: Vec<Entry> = (0..3)
        .map(|i| Entry {
            path: dir.join(format!("p{i}.png")),
            name: format!("p{i}.png"),
            is_dir: false,
            size: 1000,
            info: None,
        })
        .collect();
    app.update(Msg::Dir(dir.clone(), entries));
    app.update(Msg::DirInfo(
        dir.clone(),
        vec![(dir.join("p1.png"), ("png".into(), Some((3, 4))))],
    ));
    // A batch for a folder the user has left changes nothing.
    app.update(Msg::DirInfo(
        PathBuf::from("/elsewhere"),
        vec![(dir.join("p2.png"), ("png".into(), Some((5, 6))))],
    ));
    let infos: Vec<_> = app.entries.iter().map(|e| e.info.clone()).collect();
    assert_eq!(infos, [None, Some(("png".into(), Some((3, 4)))), None]);
    let text = format!("{}", render(&app, 80, 24, MONO).backend());
    assert!(
        text.contains("p0.png") && text.contains("…") && text.contains("3×4"),
        "{text}"
    );
}

#[test]
fn a_long_session_keeps_a_bounded_list_and_exact_totals() {
    use udpix::tui::app::MAX_TRANSFERS;
    let (mut app, _) = App::new(setup(Role::Receive));
    let n = MAX_TRANSFERS as u64 + 300;
    for id in 1..=n {
        app.update(Msg::Tick(Duration::from_secs(id)));
        app.update(Msg::Engine(Event::Started {
            id,
            direction: Direction::Receive,
            peer: peer(),
            offer: offer("p.png", 2332),
        }));
        let mut o = offer("p.png", 2332);
        o.chunk_count = 2;
        let result = if id % 10 == 0 {
            Err("gone".to_owned())
        } else {
            Ok(())
        };
        app.update(Msg::Engine(Event::Finished(Box::new(Report {
            id,
            direction: Direction::Receive,
            peer: peer(),
            offer: o,
            path: None,
            stats: TransferStats {
                chunks: 2,
                chunks_done: 2,
                lost: 1,
                datagrams_received: 3,
                ..TransferStats::default()
            },
            duration: Duration::from_millis(500),
            result,
            ends_session: false,
        }))));
    }
    assert_eq!(app.transfers.len(), MAX_TRANSFERS);
    assert_eq!(
        app.transfers.keys().next(),
        Some(&301),
        "the oldest were folded away"
    );
    let s = app.session();
    assert_eq!(s.images as u64, n);
    assert_eq!(s.failed as u64, n / 10);
    assert_eq!(s.verified as u64, n - n / 10);
    assert_eq!(s.stats.lost, n);
    // Each receiver counts its 1 loss against 3 received + 1 never seen.
    assert_eq!(s.loss_base, 4 * n);
    assert_eq!(s.stats.bytes, 2332 * n);
    // One 0.5 s transfer per second: the folded time and the kept time add up.
    assert_eq!(s.elapsed, Duration::from_millis(500) * n as u32);
}

#[test]
fn clicks_and_the_wheel_land_where_the_panes_are_drawn() {
    use udpix::tui::app::{Hit, Pane, WHEEL};
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
    app.field = udpix::tui::app::Field::Role;
    let cmds = app.update(Msg::Click(hit(screen, None, 15, 5).expect("on the pane")));
    assert!(matches!(&cmds[..], [Command::Listen { .. }]), "{cmds:?}");

    // In the file browser a click selects, a second click on a folder opens it.
    let (mut app, _) = App::new(setup(Role::Send));
    let dir = PathBuf::from("/data/photos");
    let entries: Vec<Entry> = (0..30)
        .map(|i| Entry {
            path: dir.join(format!("f{i:02}")),
            name: format!("f{i:02}"),
            is_dir: i == 2,
            size: 1,
            info: Some((String::new(), None)),
        })
        .collect();
    app.update(Msg::Dir(dir.clone(), entries));
    let row3 = hit(screen, None, 10, 12).expect("files"); // Files starts at row 9: row 2 inside
    assert_eq!(row3.row, Some(2));
    assert!(app.update(Msg::Click(row3)).is_empty());
    assert_eq!((app.focus, app.selected), (Pane::Files, 2));
    assert_eq!(
        app.update(Msg::Click(row3)),
        vec![Command::ReadDir(dir.join("f02"))]
    );
    // The wheel moves the cursor; once the list scrolls, clicks count from its first row.
    app.update(Msg::Dir(
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
    ));
    for _ in 0..5 {
        app.update(Msg::Wheel(row3, true));
    }
    assert_eq!(app.selected, 5 * WHEEL);
    // 7 rows shown with the cursor (15) on the last: entries 9..=15; the click's row 2 is
    // whatever ratatui drew there.
    let t = render(&app, 80, 24, MONO);
    let drawn: String = (0..34)
        .map(|x| t.backend().buffer()[(x, 12)].symbol().to_owned())
        .collect();
    assert!(drawn.contains("g11"), "{drawn}");
    app.update(Msg::Click(row3));
    assert_eq!(app.selected, 11);

    // The wheel over the chunk log scrolls it; a click anywhere closes the help.
    let mut app = receiving_app();
    let log = hit(screen, None, 50, 20).expect("chunks");
    app.update(Msg::Wheel(log, false));
    assert_eq!(app.log_scroll, WHEEL);
    app.update(Msg::Wheel(log, true));
    assert_eq!(app.log_scroll, 0);
    app.update(key(KeyCode::Char('?')));
    app.update(Msg::Click(log));
    assert!(!app.show_help);
    assert_eq!(
        app.focus,
        Pane::Connection,
        "the closing click does nothing else"
    );
}

#[test]
fn a_wrong_passphrase_from_a_sender_does_not_stop_the_receiver() {
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(key(KeyCode::Enter));
    for _ in 0..2 {
        app.update(Msg::Engine(Event::Notice(
            "authentication failed from 192.0.2.9:5000: wrong passphrase? (repeated failures from that address are slowed down)".into(),
        )));
    }
    assert_eq!(app.state, ConnState::Listening("0.0.0.0:7878".into()));
    assert!(
        app.busy(),
        "still listening: the role and fields stay fixed"
    );
    let text = format!("{}", render(&app, 160, 48, MONO).backend());
    assert!(text.contains("● listening, 2 failed logins"), "{text}");
    assert!(
        text.contains("authentication failed from 192.0.2.9:5000"),
        "{text}"
    );
}

#[test]
fn z_zooms_the_focused_pane_to_the_whole_screen() {
    use udpix::tui::app::Pane;
    use udpix::tui::view::{hit, preview_inner};
    let mut app = receiving_app();
    finish(&mut app);
    app.update(Msg::PreviewReady(1, gradient()));
    // Shift-Tab from Connection reaches Preview; z zooms it.
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(app.focus, Pane::Preview);
    app.update(key(KeyCode::Char('z')));
    assert_eq!(app.zoomed(), Some(Pane::Preview));
    insta::assert_snapshot!("preview_zoomed_80x24", render(&app, 80, 24, MONO).backend());
    insta::assert_snapshot!(
        "preview_zoomed_160x48",
        render(&app, 160, 48, MONO).backend()
    );
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
    app.update(key(KeyCode::Tab));
    assert_eq!(app.zoomed(), Some(Pane::Connection));
    let text = format!("{}", render(&app, 80, 24, MONO).backend());
    assert!(
        text.contains("Connection") && !text.contains("Chunks"),
        "{text}"
    );
    app.update(key(KeyCode::Char('z')));
    assert_eq!(app.zoomed(), None);
}

#[test]
fn a_printed_image_is_redrawn_exactly_when_its_scene_changes() {
    use udpix::tui::graphics::Scene;
    let mut app = receiving_app();
    let chunk_map = Scene::of(&app);
    // New chunks and ticks leave a printed image alone.
    app.update(Msg::Engine(Event::Chunk(ChunkEvent {
        id: 1,
        chunk: 40,
        what: ChunkWhat::Received,
    })));
    app.update(Msg::Tick(Duration::from_millis(2200)));
    assert_eq!(Scene::of(&app), chunk_map);
    // The first image replaces the chunk map's text: wipe, or the text stays beside it.
    finish(&mut app);
    app.update(Msg::PreviewReady(1, gradient()));
    let image = Scene::of(&app);
    assert_ne!(image, chunk_map);
    // Help over it, and closed again.
    app.update(key(KeyCode::Char('?')));
    assert_ne!(Scene::of(&app), image);
    app.update(key(KeyCode::Esc));
    assert_eq!(Scene::of(&app), image);
    // A zoom moves it.
    app.update(key(KeyCode::Char('z')));
    assert_ne!(Scene::of(&app), image);
    app.update(key(KeyCode::Char('z')));
    // Another transfer takes the pane.
    app.update(Msg::Engine(Event::Started {
        id: 2,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer("rocket.jpg", 112_525),
    }));
    assert_ne!(Scene::of(&app), image);
}

/// A receiver fed text a hostile sender chose: a name with colours, a forged line and a bidi
/// override; a close reason with a title escape.
#[test]
fn peer_text_is_drawn_escaped() {
    let name = "evil\u{1b}[31m\nFAKE\u{202e}gnp.png";
    let shown = "evil\\e[31m\\nFAKE\\u{202e}gnp.png";
    let (mut app, _) = App::new(setup(Role::Receive));
    app.update(Msg::Tick(Duration::from_millis(1500)));
    app.update(Msg::Engine(Event::Started {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer(name, 240_512),
    }));
    for chunk in 0..3 {
        app.update(Msg::Engine(Event::Chunk(ChunkEvent {
            id: 1,
            chunk,
            what: ChunkWhat::Received,
        })));
    }
    app.update(Msg::Tick(Duration::from_millis(2000)));
    app.update(Msg::Engine(Event::Notice(format!(
        "refused {name} from {}: disk full\u{1b}[2J",
        peer()
    ))));
    app.update(Msg::Engine(Event::Finished(Box::new(Report {
        id: 1,
        direction: Direction::Receive,
        peer: peer(),
        offer: offer(name, 240_512),
        path: None,
        stats: stats(3, 207),
        duration: Duration::from_millis(500),
        result: Err("sender closed the session: bye\u{1b}]0;owned\u{7}".into()),
        ends_session: false,
    }))));
    let screen = render(&app, 160, 48, MONO);
    let text = format!("{}", screen.backend());
    let rows: Vec<&str> = text.lines().collect();
    let has = |needle: &str| rows.iter().filter(|r| r.contains(needle)).count();
    // The received list, the stats heading and the preview title, each on its row.
    assert!(has(&format!("✗ {shown}")) == 1, "files pane:\n{text}");
    assert!(
        has(&format!("{shown} ✗ failed")) == 1,
        "stats heading:\n{text}"
    );
    assert!(
        has(&format!("Preview: {shown}")) == 1,
        "preview title:\n{text}"
    );
    // The chunk log: the image column (cut to 18), and the notices quoted in full.
    assert!(has("evil\\e[31m\\nFAKE\\…") == 5, "chunk log:\n{text}");
    assert!(
        has(&format!(
            "refused {shown} from 192.0.2.7:40000: disk full\\e[2J"
        )) == 1,
        "notice:\n{text}"
    );
    assert!(
        has("failed: sender closed the session: bye\\e]0;owned\\x07") == 1,
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
    insta::assert_snapshot!("peer_text_escaped_160x48", screen.backend());
    insta::assert_snapshot!(
        "peer_text_escaped_80x24",
        render(&app, 80, 24, MONO).backend()
    );
    // A sender's state line quotes the receiver's refusal.
    let (mut sender, _) = App::new(setup(Role::Send));
    sender.update(Msg::Failed("refused: go away\u{1b}[5m\u{2066}".into()));
    let text = format!("{}", render(&sender, 160, 48, MONO).backend());
    assert!(
        text.lines()
            .any(|r| r.contains("State      refused: go away\\e[5m\\u{2066}")),
        "state line:\n{text}"
    );
}
