//! Real pixels where the terminal can show them: kitty, iTerm2 or sixel images, encoded by
//! ratatui-image and drawn through ratatui's buffer (so diffing, popups and tmux passthrough
//! behave), over the preview pane's half blocks once encoded. Until then, and everywhere else
//! (tmux without a graphics terminal outside, SSH without graphics, unknown terminals,
//! tests), the half-block preview drawn by the view is what shows; it is also what shows
//! while help covers the pane.
//!
//! Probing happens once, before the terminal enters raw mode and before the key reader
//! starts, because the probes read the terminal's answers from stdin. Nothing after that may
//! read stdin: the key reader owns it (so no viuer kitty "local" mode, no `Terminal::clear`).
//! Inside tmux nothing is asked on stdin at all: a detached or plain outer terminal never
//! answers, and an unanswered probe would keep reading the keys. tmux itself says what
//! terminal its client is.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use image::{DynamicImage, RgbImage};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::CellDiffOption;
use ratatui::layout::{Position, Rect, Size};
use ratatui::widgets::Widget;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{FilterType, FontSize, Image, Resize};

use super::app::{App, Pane};
pub use crate::config::ImageProtocol;

use super::view;

/// Resolves `auto` from the environment and, where the terminal is known to answer, a probe.
/// Never probes inside tmux or when stdout is not a terminal.
pub fn resolve(requested: ImageProtocol) -> ImageProtocol {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return ImageProtocol::Blocks;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    match requested {
        ImageProtocol::Blocks => ImageProtocol::Blocks,
        ImageProtocol::Kitty => kitty_or_blocks(),
        ImageProtocol::Iterm => ImageProtocol::Iterm,
        ImageProtocol::Sixel => {
            if viuer::is_sixel_supported() {
                ImageProtocol::Sixel
            } else {
                ImageProtocol::Blocks
            }
        }
        ImageProtocol::Auto => {
            if in_tmux() {
                tmux_outer_terminal()
            } else if env("TERM").starts_with("screen") {
                ImageProtocol::Blocks
            } else if env("TERM").contains("kitty") || std::env::var_os("KITTY_WINDOW_ID").is_some()
            {
                kitty_or_blocks()
            } else if viuer::is_iterm_supported() {
                // TERM_PROGRAM or LC_TERMINAL (which ssh passes on) names iTerm2, WezTerm...
                ImageProtocol::Iterm
            } else if std::env::var_os("XTERM_VERSION").is_some() && viuer::is_sixel_supported() {
                ImageProtocol::Sixel
            } else {
                ImageProtocol::Blocks
            }
        }
    }
}

/// Inside tmux (whose panes pass graphics on to the terminal outside, `allow-passthrough`).
fn in_tmux() -> bool {
    std::env::var_os("TMUX").is_some()
        || std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "tmux")
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"))
}

/// What the terminal outside tmux shows, as tmux knows it from its attached client (its
/// TERM, and the name it answered tmux's own query with); half blocks when no client is
/// attached or the terminal is not one known to draw images. Nothing is read from stdin.
fn tmux_outer_terminal() -> ImageProtocol {
    let Ok(out) = std::process::Command::new("tmux")
        .args([
            "display-message",
            "-p",
            "#{client_termname}|#{client_termtype}|#{client_termfeatures}",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return ImageProtocol::Blocks;
    };
    outer_protocol(&String::from_utf8_lossy(&out.stdout))
}

/// The protocol for tmux's `client_termname|client_termtype|client_termfeatures`.
pub fn outer_protocol(client: &str) -> ImageProtocol {
    let mut parts = client.trim().splitn(3, '|');
    let (name, kind, features) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let kind_lower = kind.to_ascii_lowercase();
    if name.contains("kitty") || kind_lower.starts_with("kitty") || kind_lower.contains("ghostty") {
        ImageProtocol::Kitty
    } else if kind.contains("iTerm2") || kind.contains("WezTerm") {
        ImageProtocol::Iterm
    } else if name.starts_with("foot")
        || kind_lower.starts_with("foot")
        || features.split(',').any(|f| f == "sixel")
    {
        ImageProtocol::Sixel
    } else {
        ImageProtocol::Blocks
    }
}

fn kitty_or_blocks() -> ImageProtocol {
    // Either answer means the protocol works; udpix always sends the pixels inline.
    match viuer::get_kitty_support() {
        viuer::KittySupport::Local | viuer::KittySupport::Remote => ImageProtocol::Kitty,
        viuer::KittySupport::None => ImageProtocol::Blocks,
    }
}

/// What a printed image's place on screen depends on. When it changes, the screen is wiped
/// and the image printed again: help covers it, a zoom moves it, another image replaces it,
/// and the first image must not be printed beside the text the pane showed before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scene {
    help: bool,
    zoom: Option<Pane>,
    image: Option<u64>,
}

impl Scene {
    /// The scene the app is about to draw.
    pub fn of(app: &App) -> Self {
        Self {
            help: app.popup_open(),
            zoom: app.zoomed(),
            image: app
                .preview
                .image
                .as_ref()
                .map(|_| app.preview.id.unwrap_or(0)),
        }
    }
}

/// Clears the screen (printed pixels included) and makes the next frame repaint every cell.
///
/// Not `Terminal::clear`: that asks the terminal where its cursor is and waits for the answer
/// on stdin, which the key reader owns, so it times out after two seconds and the UI dies.
/// A resize to the same size clears and forgets the previous frame without asking anything.
pub fn wipe<B: Backend>(terminal: &mut Terminal<B>) -> Result<(), B::Error> {
    let size = terminal.size()?;
    terminal.resize(Rect::from((Position::ORIGIN, size)))
}

/// Pixel size of one cell, when the terminal reports it (TIOCGWINSZ; xterm, kitty, WezTerm,
/// foot do). Needed to size a sixel in pixels and to keep the aspect ratio with any font.
fn cell_pixels() -> Option<(f64, f64)> {
    let ws = crossterm::terminal::window_size().ok()?;
    (ws.width > 0 && ws.height > 0 && ws.columns > 0 && ws.rows > 0).then(|| {
        (
            f64::from(ws.width) / f64::from(ws.columns),
            f64::from(ws.height) / f64::from(ws.rows),
        )
    })
}

/// Height over width of a cell: 2 unless the terminal reports its pixels otherwise.
pub fn cell_aspect() -> f64 {
    cell_pixels().map_or(2.0, |(w, h)| h / w)
}

/// The cell size assumed when the terminal reports none (most fonts are near 1:2).
const DEFAULT_CELL: FontSize = FontSize::new(8, 16);

/// The encoder set up by [`resolve`] (with the probed font), for [`Graphics::new`].
static PICKER: OnceLock<Picker> = OnceLock::new();

/// The ratatui-image encoder for `protocol` (none for half blocks), with the terminal's cell
/// size: from the kernel (TIOCGWINSZ) when the terminal reports pixels, else, outside tmux
/// and before the key reader starts, from the terminal's answer to ratatui-image's query.
fn picker_for(protocol: ImageProtocol) -> Option<Picker> {
    let kind = match protocol {
        ImageProtocol::Kitty => ProtocolType::Kitty,
        ImageProtocol::Iterm => ProtocolType::Iterm2,
        ImageProtocol::Sixel => ProtocolType::Sixel,
        ImageProtocol::Blocks | ImageProtocol::Auto => return None,
    };
    let font = cell_pixels()
        .map(|(w, h)| FontSize::new(w.round() as u16, h.round() as u16))
        .filter(|f| f.width > 0 && f.height > 0)
        .or_else(|| {
            (!in_tmux())
                .then(Picker::from_query_stdio)
                .and_then(Result::ok)
                .map(|p| p.font_size())
        })
        .unwrap_or(DEFAULT_CELL);
    // Also finds tmux (and turns its passthrough on) so that sequences are wrapped for it.
    #[allow(deprecated)] // the replacement always queries stdin, which must not happen here
    let mut picker = Picker::from_fontsize(font);
    picker.set_protocol_type(kind);
    Some(picker)
}

/// Resolves `requested` like [`resolve`] and sets up its encoder; call once, before the
/// terminal is taken over.
pub fn set_up(requested: ImageProtocol) -> ImageProtocol {
    let protocol = resolve(requested);
    if let Some(p) = picker_for(protocol) {
        let _ = PICKER.set(p);
    }
    protocol
}

/// The preview's image encoded for a graphics protocol, drawn over the view's half blocks.
/// Encoding (resizing, and sixel's colour quantising, which takes a while on a big pane) runs
/// on a background thread; until it is done for the pane as it is now, the half blocks show,
/// so a zoom, a resize or a new image never leaves the pane blank.
pub struct Graphics {
    picker: Option<Picker>,
    /// kitty outside tmux: placed directly ([`kitty_placement`]), not through ratatui-image's
    /// Unicode placeholders, which kitty draws only from 0.28 on (Debian 12 has 0.26).
    kitty_direct: bool,
    /// A direct kitty placement may be on screen (it lives above the text: delete it).
    placed: bool,
    /// The encoded image and what it was encoded for.
    shown: Option<(Key, Encoded)>,
    /// What the last encoding asked for was for.
    asked: Option<Key>,
    tx: mpsc::Sender<(Key, Option<Encoded>)>,
    rx: mpsc::Receiver<(Key, Option<Encoded>)>,
}

/// An image ready to draw.
enum Encoded {
    /// ratatui-image's (sixel, iTerm2, kitty placeholders in tmux).
    Lib(Protocol),
    /// A kitty transmit-and-place sequence for the first cell of `size` cells.
    Kitty { seq: String, size: Size },
}

impl Encoded {
    fn size(&self) -> Size {
        match self {
            Encoded::Lib(p) => p.size(),
            Encoded::Kitty { size, .. } => *size,
        }
    }
}

/// Deletes every kitty placement (and frees its pixels), without an answer.
const KITTY_DELETE_ALL: &str = "\x1b_Ga=d,d=A,q=2\x1b\\";

/// An image and the pane rect it is fitted to.
#[derive(Clone)]
struct Key {
    image: Arc<RgbImage>,
    area: Rect,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.image, &other.image) && self.area == other.area
    }
}

impl Graphics {
    /// For `protocol` with the encoder [`set_up`] made (or one with a default cell size);
    /// draws nothing for half blocks.
    pub fn new(protocol: ImageProtocol) -> Self {
        let picker = match protocol {
            ImageProtocol::Blocks | ImageProtocol::Auto => None,
            _ => PICKER.get().cloned().or_else(|| {
                #[allow(deprecated)]
                let mut p = Picker::from_fontsize(DEFAULT_CELL);
                p.set_protocol_type(match protocol {
                    ImageProtocol::Kitty => ProtocolType::Kitty,
                    ImageProtocol::Iterm => ProtocolType::Iterm2,
                    _ => ProtocolType::Sixel,
                });
                Some(p)
            }),
        };
        Self::with_picker(picker)
    }

    /// With this encoder (tests give one of their own).
    pub fn with_picker(picker: Option<Picker>) -> Self {
        let (tx, rx) = mpsc::channel();
        let kitty_direct = picker
            .as_ref()
            .is_some_and(|p| p.protocol_type() == ProtocolType::Kitty && !p.tmux_detected());
        Self {
            picker,
            kitty_direct,
            placed: false,
            shown: None,
            asked: None,
            tx,
            rx,
        }
    }

    /// Takes the encodings that finished; true when the one for the pane as it is now came
    /// (the frame must be drawn again to show it).
    pub fn poll(&mut self) -> bool {
        let mut arrived = false;
        while let Ok((key, proto)) = self.rx.try_recv() {
            if self.asked.as_ref() == Some(&key)
                && let Some(proto) = proto
            {
                self.shown = Some((key, proto));
                arrived = true;
            }
        }
        arrived
    }

    /// Blocks until the encoding asked for last is done (tests); false if none was asked for.
    pub fn wait(&mut self) -> bool {
        if self.asked.is_none() {
            return false;
        }
        while !self.poll() {
            match self.rx.recv() {
                Ok((key, Some(proto))) if self.asked.as_ref() == Some(&key) => {
                    self.shown = Some((key, proto));
                    return true;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Draws the image over the preview pane (after [`view::draw`], in the same frame) once it
    /// is encoded for the pane as it is; asks for that encoding when it is not. Nothing while
    /// help is open (the popup covers the pane; the half blocks show under it).
    pub fn render(&mut self, frame: &mut Frame, app: &App) {
        let drawn = self.draw(frame, app);
        if self.kitty_direct && self.placed && !drawn {
            // Before this frame reaches the terminal: the placement sits above the text.
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(KITTY_DELETE_ALL.as_bytes());
            let _ = out.flush();
        }
        self.placed = drawn;
    }

    /// [`Self::render`]'s drawing; true if the encoded image is in the frame.
    fn draw(&mut self, frame: &mut Frame, app: &App) -> bool {
        let Some(picker) = &self.picker else {
            return false;
        };
        let Some(img) = &app.preview.image else {
            return false;
        };
        let screen = frame.area();
        if app.popups.help || screen.width < view::MIN_WIDTH || screen.height < view::MIN_HEIGHT {
            return false;
        }
        let inner = view::preview_inner(screen, app);
        if inner.width < 2 || inner.height < 2 {
            return false;
        }
        let key = Key {
            image: img.clone(),
            area: inner,
        };
        if let Some((shown, proto)) = &self.shown
            && *shown == key
        {
            let at = centred(inner, proto.size());
            let buf = frame.buffer_mut();
            for p in inner.positions() {
                buf[p].reset();
            }
            match proto {
                Encoded::Lib(proto) => Image::new(proto).render(at, buf),
                Encoded::Kitty { seq, .. } => {
                    // Like ratatui-image's sixel: the sequence in the first cell, the cells it
                    // covers left alone by the diff.
                    let one = CellDiffOption::ForcedWidth(std::num::NonZeroU16::MIN);
                    for p in at.positions() {
                        buf[p].set_diff_option(CellDiffOption::Skip);
                    }
                    buf[at.as_position()].set_symbol(seq).set_diff_option(one);
                }
            }
            return true;
        }
        if self.asked.as_ref() != Some(&key) {
            self.asked = Some(key.clone());
            let (picker, tx, direct) = (picker.clone(), self.tx.clone(), self.kitty_direct);
            super::background(move || {
                let encoded = if direct {
                    kitty_placement(&picker, &key.image, key.area)
                } else {
                    encode(&picker, &key.image, key.area).map(Encoded::Lib)
                };
                let _ = tx.send((key, encoded));
            });
        }
        false
    }
}

/// The room `img` gets in `area`: enlarged at most twice (more would only be blurry).
fn room(picker: &Picker, img: &DynamicImage, area: Rect) -> Size {
    let natural = Resize::natural_size(img, picker.font_size());
    Size::new(
        area.width.min(natural.width.saturating_mul(2)).max(1),
        area.height.min(natural.height.saturating_mul(2)).max(1),
    )
}

/// Bytes of base64 per kitty escape sequence (the protocol's limit).
const KITTY_CHUNK: usize = 4096;

/// A kitty sequence that deletes the placements before it and shows `img` fitted into
/// `area`, its pixels inline (`t=d`, local and over SSH alike), scaled to the cells
/// (`c`, `r`) by kitty. `q=2`: kitty never answers (stdin is the key reader's); `C=1`: the
/// cursor stays, so an image at the bottom of the pane cannot scroll the screen.
fn kitty_placement(picker: &Picker, img: &RgbImage, area: Rect) -> Option<Encoded> {
    use base64::Engine;
    use std::fmt::Write;
    let dynimg = DynamicImage::ImageRgb8(img.clone());
    let font = picker.font_size();
    let resize = Resize::Scale(Some(FilterType::CatmullRom));
    let size = resize.size_for(&dynimg, font, room(picker, &dynimg, area));
    // No more pixels than the cells show: less to send over a slow SSH link.
    let (pw, ph) = (
        u32::from(size.width) * u32::from(font.width),
        u32::from(size.height) * u32::from(font.height),
    );
    let scale =
        (f64::from(pw) / f64::from(img.width())).min(f64::from(ph) / f64::from(img.height()));
    let small = image::imageops::resize(
        img,
        ((f64::from(img.width()) * scale).round() as u32).max(1),
        ((f64::from(img.height()) * scale).round() as u32).max(1),
        FilterType::CatmullRom,
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(small.as_raw());
    let mut seq = String::from(KITTY_DELETE_ALL);
    let chunks: Vec<&[u8]> = encoded.as_bytes().chunks(KITTY_CHUNK).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        if i == 0 {
            let _ = write!(
                seq,
                "\x1b_Ga=T,f=24,t=d,q=2,C=1,s={},v={},c={},r={},m={more};",
                small.width(),
                small.height(),
                size.width,
                size.height
            );
        } else {
            let _ = write!(seq, "\x1b_Gm={more};");
        }
        seq.push_str(std::str::from_utf8(chunk).ok()?);
        seq.push_str("\x1b\\");
    }
    Some(Encoded::Kitty { seq, size })
}

/// `img` encoded to fill as much of `area` as its aspect ratio allows, enlarged at most twice
/// (more would only be blurry).
fn encode(picker: &Picker, img: &RgbImage, area: Rect) -> Option<Protocol> {
    let img = DynamicImage::ImageRgb8(img.clone());
    let room = room(picker, &img, area);
    picker
        .new_protocol(img, room, Resize::Scale(Some(FilterType::CatmullRom)))
        .ok()
}

/// A rect of `size` in the middle of `area`.
fn centred(area: Rect, size: Size) -> Rect {
    let (w, h) = (size.width.min(area.width), size.height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::{ClearType, TestBackend, WindowSize};
    use ratatui::buffer::Cell;
    use ratatui::layout::Size;

    /// A terminal that cannot answer cursor queries, like one whose stdin the key reader owns.
    struct NoCursorQueries(TestBackend);

    impl Backend for NoCursorQueries {
        type Error = std::io::Error;
        fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(
            &mut self,
            c: I,
        ) -> std::io::Result<()> {
            self.0.draw(c).map_err(std::io::Error::other)
        }
        fn hide_cursor(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn show_cursor(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn get_cursor_position(&mut self) -> std::io::Result<Position> {
            Err(std::io::Error::other(
                "the cursor position could not be read",
            ))
        }
        fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> std::io::Result<()> {
            self.0.set_cursor_position(p).map_err(std::io::Error::other)
        }
        fn clear(&mut self) -> std::io::Result<()> {
            self.0.clear().map_err(std::io::Error::other)
        }
        fn clear_region(&mut self, t: ClearType) -> std::io::Result<()> {
            self.0.clear_region(t).map_err(std::io::Error::other)
        }
        fn size(&self) -> std::io::Result<Size> {
            self.0.size().map_err(std::io::Error::other)
        }
        fn window_size(&mut self) -> std::io::Result<WindowSize> {
            self.0.window_size().map_err(std::io::Error::other)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tmux_names_the_terminal_outside_it() {
        assert_eq!(
            outer_protocol(""),
            ImageProtocol::Blocks,
            "no client attached"
        );
        assert_eq!(outer_protocol("||"), ImageProtocol::Blocks);
        assert_eq!(
            outer_protocol("xterm-kitty|kitty(0.26.5)|256,RGB,title\n"),
            ImageProtocol::Kitty
        );
        assert_eq!(
            outer_protocol("xterm-256color|iTerm2 3.5.0|256,RGB"),
            ImageProtocol::Iterm
        );
        assert_eq!(
            outer_protocol("xterm-256color|WezTerm 20240203|RGB"),
            ImageProtocol::Iterm
        );
        assert_eq!(
            outer_protocol("foot|foot(1.16.2)|RGB"),
            ImageProtocol::Sixel
        );
        assert_eq!(
            outer_protocol("xterm|XTerm(379)|256,sixel,title"),
            ImageProtocol::Sixel
        );
        assert_eq!(
            outer_protocol("xterm-256color|XTerm(379)|256,title"),
            ImageProtocol::Blocks
        );
    }

    fn sixel_graphics() -> Graphics {
        #[allow(deprecated)]
        let mut p = Picker::from_fontsize(FontSize::new(8, 16));
        p.set_protocol_type(ProtocolType::Sixel);
        Graphics::with_picker(Some(p))
    }

    fn showing(img: RgbImage) -> App {
        let (mut app, _) = App::new(crate::tui::app::Setup {
            role: crate::tui::app::Role::Receive,
            address: "0.0.0.0:7878".into(),
            other_address: String::new(),
            passphrase: None,
            generated: false,
            insecure: true,
            out_dir: "/data/in".into(),
            cwd: "/data".into(),
            autostart: false,
        });
        app.preview.image = Some(Arc::new(img));
        app
    }

    /// One frame as the runtime draws it: the view, then the graphics over it.
    fn frame(
        t: &mut Terminal<TestBackend>,
        app: &App,
        gfx: &mut Graphics,
    ) -> ratatui::buffer::Buffer {
        let theme = view::Theme {
            depth: crate::tui::halfblock::ColorDepth::TrueColor,
            graphics: true,
            cell_aspect: 2.0,
        };
        t.draw(|f| {
            view::draw(f, app, &theme);
            gfx.render(f, app);
        })
        .expect("draw")
        .buffer
        .clone()
    }

    /// Where the sixel went: the cell whose symbol carries it.
    fn sixel_at(buf: &ratatui::buffer::Buffer) -> Option<Position> {
        buf.area
            .positions()
            .find(|p| buf[*p].symbol().contains("\x1bP"))
    }

    fn half_blocks_in(buf: &ratatui::buffer::Buffer, area: Rect) -> usize {
        area.positions()
            .filter(|p| matches!(buf[*p].bg, ratatui::style::Color::Rgb(..)))
            .count()
    }

    #[test]
    fn the_image_shows_at_once_in_half_blocks_then_as_a_centred_sixel() {
        let img = RgbImage::from_fn(960, 720, |x, y| image::Rgb([x as u8, y as u8, 77]));
        let mut app = showing(img);
        let mut gfx = sixel_graphics();
        let mut t = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        let screen = Rect::new(0, 0, 120, 40);
        for zoom in [false, true, false] {
            app.focus = Pane::Preview;
            app.zoom = zoom;
            let inner = view::preview_inner(screen, &app);
            // The first frame for this pane: half blocks, never a blank pane.
            let buf = frame(&mut t, &app, &mut gfx);
            assert!(sixel_at(&buf).is_none(), "zoom {zoom}: encoded already?");
            assert!(
                half_blocks_in(&buf, inner) > 100,
                "zoom {zoom}: the pane is blank"
            );
            assert!(gfx.wait(), "an encoding was asked for");
            let buf = frame(&mut t, &app, &mut gfx);
            let at = sixel_at(&buf).expect("the sixel is drawn");
            assert_eq!(
                half_blocks_in(&buf, inner),
                0,
                "no half blocks left beside it"
            );
            // It covers cells to its right and below (skipped by the diff); centred.
            let (_, proto) = gfx.shown.as_ref().expect("shown");
            let size = proto.size();
            let (left, right) = (at.x - inner.x, inner.right() - (at.x + size.width));
            let (top, bottom) = (at.y - inner.y, inner.bottom() - (at.y + size.height));
            assert!(
                left.abs_diff(right) <= 1 && top.abs_diff(bottom) <= 1,
                "zoom {zoom}: {size:?} at {at:?} in {inner:?}"
            );
            // 4:3 on 8×16-pixel cells: twice as many columns as rows, times 4/3.
            let aspect = f64::from(size.width) / (2.0 * f64::from(size.height));
            assert!((aspect / (4.0 / 3.0) - 1.0).abs() < 0.08, "{size:?}");
            assert!(size.width + 2 >= inner.width || size.height + 1 >= inner.height);
            // The next frame, unchanged, asks for nothing new.
            frame(&mut t, &app, &mut gfx);
            assert!(!gfx.poll());
        }
        // Help covers the pane: the half blocks show under it, no pixels.
        app.popups.help = true;
        let buf = frame(&mut t, &app, &mut gfx);
        assert!(sixel_at(&buf).is_none());
    }

    #[test]
    fn kitty_images_are_placed_inline_in_chunks_and_never_ask_for_an_answer() {
        #[allow(deprecated)]
        let mut p = Picker::from_fontsize(FontSize::new(8, 16));
        p.set_protocol_type(ProtocolType::Kitty);
        let mut gfx = Graphics::with_picker(Some(p));
        assert!(
            gfx.kitty_direct,
            "outside tmux kitty images are placed directly"
        );
        let app = showing(RgbImage::from_fn(960, 720, |x, y| {
            image::Rgb([x as u8, y as u8, 5])
        }));
        let mut t = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        frame(&mut t, &app, &mut gfx);
        assert!(gfx.wait());
        let buf = frame(&mut t, &app, &mut gfx);
        let inner = view::preview_inner(buf.area, &app);
        let at = buf
            .area
            .positions()
            .find(|p| buf[*p].symbol().contains("\x1b_G"))
            .expect("the placement is drawn");
        let seq = buf[at].symbol().to_owned();
        // Earlier placements go first; then the pixels, 4096 base64 characters a sequence.
        assert!(seq.starts_with(KITTY_DELETE_ALL), "{seq:.80}");
        let parts: Vec<&str> = seq[KITTY_DELETE_ALL.len()..]
            .split("\x1b\\")
            .filter(|p| !p.is_empty())
            .collect();
        let head = parts[0].split_once(';').expect("control;data").0;
        assert!(head.starts_with("\x1b_Ga=T,f=24,t=d,q=2,C=1,"), "{head}");
        let (_, encoded) = gfx.shown.as_ref().expect("shown");
        let size = encoded.size();
        assert!(head.contains(&format!(",c={},r={},m=1", size.width, size.height)));
        let (left, right) = (at.x - inner.x, inner.right() - (at.x + size.width));
        assert!(left.abs_diff(right) <= 1, "{size:?} at {at:?} in {inner:?}");
        use base64::Engine;
        let payload: String = parts
            .iter()
            .map(|p| p.split_once(';').map_or("", |(_, d)| d))
            .collect();
        assert!(parts[1..].iter().all(|p| p.starts_with("\x1b_Gm=")));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .expect("base64");
        let dim = |k: &str| -> usize {
            let v = head.split(',').find_map(|f| f.strip_prefix(k)).expect(k);
            v.parse().expect("a number")
        };
        assert_eq!(raw.len(), dim("s=") * dim("v=") * 3);
        assert!(parts.iter().all(|p| p.len() <= 4096 + 80));
    }

    #[test]
    fn half_blocks_mode_draws_no_graphics() {
        let app = showing(RgbImage::new(64, 64));
        let mut gfx = Graphics::new(ImageProtocol::Blocks);
        let mut t = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        let buf = frame(&mut t, &app, &mut gfx);
        assert!(sixel_at(&buf).is_none());
        assert!(!gfx.wait(), "nothing to encode");
    }

    #[test]
    fn wipe_clears_and_repaints_without_asking_for_the_cursor() {
        let mut t = Terminal::new(NoCursorQueries(TestBackend::new(20, 4))).expect("terminal");
        let text = |t: &Terminal<NoCursorQueries>| format!("{}", t.backend().0);
        t.draw(|f| f.render_widget("hello", f.area()))
            .expect("draw");
        assert!(text(&t).contains("hello"));
        assert!(t.clear().is_err(), "Terminal::clear asks for the cursor");
        wipe(&mut t).expect("wipe");
        assert!(!text(&t).contains("hello"), "wipe clears the screen");
        // The same frame again is fully repainted, not skipped as unchanged.
        t.draw(|f| f.render_widget("hello", f.area()))
            .expect("draw");
        assert!(text(&t).contains("hello"));
    }
}
