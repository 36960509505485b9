//! Real pixels where the terminal can show them: kitty or iTerm2 images (written here) and
//! sixel (encoded by viuer), printed over the preview pane after ratatui has drawn the frame.
//! Everywhere else (tmux, SSH without graphics, unknown terminals, tests) the half-block
//! preview drawn into the buffer is used; it is also what shows while help covers the pane.
//!
//! Probing happens once, before the terminal enters raw mode and before the key reader
//! starts, because the probes read the terminal's answers from stdin. Nothing after that may
//! read stdin: the key reader owns it (so no viuer kitty "local" mode, no `Terminal::clear`).

use std::io::Write;

use image::{DynamicImage, RgbImage};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::{Position, Rect};

use super::app::{App, Pane};
pub use crate::config::ImageProtocol;

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
            if std::env::var_os("TMUX").is_some() || env("TERM").starts_with("screen") {
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

/// The cell viuer assumes when it turns a sixel size in cells into pixels (6 wide, 12 high).
const VIUER_SIXEL_CELL: (f64, f64) = (6.0, 12.0);
/// Widest sixel viuer draws, in pixels (an xterm workaround of viuer's).
const VIUER_SIXEL_MAX_WIDTH: f64 = 1000.0;

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

/// The size, in cells, to ask for so that an image of `image` pixels fills as much
/// of `area` as its aspect ratio allows on cells of `cell` pixels. kitty and iTerm2 scale the
/// image to the cells they are given; viuer's sixel is drawn at 6×12 pixels per cell, so its
/// cells are converted. One row is left free: viuer ends a sixel with a newline, which must
/// not scroll the screen.
pub fn fit_cells(
    protocol: ImageProtocol,
    image: (u32, u32),
    area: Rect,
    cell: (f64, f64),
) -> (u32, u32) {
    let (iw, ih) = (f64::from(image.0.max(1)), f64::from(image.1.max(1)));
    let rows = f64::from(area.height.saturating_sub(1).max(1));
    let (room_w, room_h) = (f64::from(area.width) * cell.0, rows * cell.1);
    // Never enlarge a small image past twice its size: it would only get blurry.
    let scale = (room_w / iw).min(room_h / ih).min(2.0);
    let (mut w, mut h) = (iw * scale, ih * scale);
    let unit = if protocol == ImageProtocol::Sixel {
        if w > VIUER_SIXEL_MAX_WIDTH {
            h *= VIUER_SIXEL_MAX_WIDTH / w;
            w = VIUER_SIXEL_MAX_WIDTH;
        }
        VIUER_SIXEL_CELL
    } else {
        cell
    };
    let cells = |px: f64, per: f64| ((px / per).floor() as u32).max(1);
    (cells(w, unit.0), cells(h, unit.1))
}

/// Bytes of base64 per kitty escape sequence (the protocol's limit).
const KITTY_CHUNK: usize = 4096;

/// Writes `img` at cell (`x`, `y`) over `cells` (columns, rows) with the kitty graphics
/// protocol, its pixels inline (`t=d`), which works in a local kitty and over SSH alike.
/// Not viuer: in a local kitty it passes a temp file and then waits for an answer on stdin,
/// which the key reader owns. `q=2` asks kitty never to answer; `C=1` leaves the cursor where
/// it was, so an image at the bottom of the pane cannot scroll the screen.
pub fn write_kitty(
    out: &mut impl Write,
    img: &RgbImage,
    x: u16,
    y: u16,
    cells: (u32, u32),
) -> std::io::Result<()> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(img.as_raw());
    write!(out, "\x1b[{};{}H", y + 1, x + 1)?;
    let chunks: Vec<&[u8]> = encoded.as_bytes().chunks(KITTY_CHUNK).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        if i == 0 {
            write!(
                out,
                "\x1b_Ga=T,f=24,t=d,q=2,C=1,s={},v={},c={},r={},m={more};",
                img.width(),
                img.height(),
                cells.0,
                cells.1
            )?;
        } else {
            write!(out, "\x1b_Gm={more};")?;
        }
        out.write_all(chunk)?;
        out.write_all(b"\x1b\\")?;
    }
    Ok(())
}

/// Writes `img` at cell (`x`, `y`) over `cells` (columns, rows) as an iTerm2 inline image
/// (also WezTerm, mintty, rio), a PNG in one escape sequence. Not viuer: when it does not
/// itself recognise the terminal (over SSH `TERM_PROGRAM` is not passed on) it prints its own
/// half blocks over the UI instead. No newline after it, so the screen cannot scroll.
pub fn write_iterm(
    out: &mut impl Write,
    img: &RgbImage,
    x: u16,
    y: u16,
    cells: (u32, u32),
) -> std::io::Result<()> {
    use base64::Engine;
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(std::io::Error::other)?;
    write!(
        out,
        "\x1b[{};{}H\x1b]1337;File=inline=1;preserveAspectRatio=1;size={};width={};height={}:",
        y + 1,
        x + 1,
        png.len(),
        cells.0,
        cells.1
    )?;
    out.write_all(
        base64::engine::general_purpose::STANDARD
            .encode(&png)
            .as_bytes(),
    )?;
    out.write_all(b"\x07")
}

/// Remembers where an image was printed, so it is printed again only after an erase (a
/// [`Scene`] change, a resize) or when its place moves.
#[derive(Debug, Default)]
pub struct Overlay {
    shown: Option<Rect>,
}

impl Overlay {
    /// Removes a kitty image (kitty images live above the text and survive a clear).
    pub fn erase(&mut self, protocol: ImageProtocol) {
        if protocol == ImageProtocol::Kitty && self.shown.is_some() {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b_Ga=d\x1b\\");
            let _ = out.flush();
        }
        self.shown = None;
    }

    /// Prints `img` fitted into `area` unless it is already there.
    pub fn show(&mut self, protocol: ImageProtocol, img: &RgbImage, area: Rect) {
        if protocol == ImageProtocol::Blocks || area.width < 2 || area.height < 2 {
            return;
        }
        if self.shown == Some(area) {
            return;
        }
        self.erase(protocol);
        let cell = cell_pixels().unwrap_or(VIUER_SIXEL_CELL);
        let (width, height) = fit_cells(protocol, img.dimensions(), area, cell);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[?2026h"); // synchronized update: no tearing
        if protocol == ImageProtocol::Sixel {
            drop(out);
            let config = viuer::Config {
                absolute_offset: true,
                x: area.x,
                y: area.y as i16,
                width: Some(width),
                height: Some(height),
                restore_cursor: true,
                use_kitty: false,
                use_iterm: false,
                use_sixel: true,
                ..viuer::Config::default()
            };
            let _ = viuer::print(&DynamicImage::ImageRgb8(img.clone()), &config);
            out = std::io::stdout().lock();
        } else {
            // No more pixels than the cells show: less to send over a slow SSH link.
            let (pw, ph) = (
                (f64::from(width) * cell.0) as u32,
                (f64::from(height) * cell.1) as u32,
            );
            let small;
            let img = if pw < img.width() && ph < img.height() && pw > 0 && ph > 0 {
                small = image::imageops::thumbnail(img, pw, ph);
                &small
            } else {
                img
            };
            let _ = match protocol {
                ImageProtocol::Kitty => write_kitty(&mut out, img, area.x, area.y, (width, height)),
                _ => write_iterm(&mut out, img, area.x, area.y, (width, height)),
            };
        }
        let _ = out.write_all(b"\x1b[?2026l");
        let _ = out.flush();
        self.shown = Some(area);
    }
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
    fn images_fill_the_pane_with_their_aspect_ratio_on_any_font() {
        let area = Rect::new(50, 10, 60, 21); // 20 usable rows
        // xterm with 10×20-pixel cells: 600×400 room. A 600×400 photo fills the width.
        let (w, h) = fit_cells(ImageProtocol::Sixel, (600, 400), area, (10.0, 20.0));
        assert_eq!((w, h), (100, 33)); // 600×396 pixels at viuer's 6×12 per cell
        // kitty scales to cells: 60 columns of 10 px, 20 rows of 20 px.
        assert_eq!(
            fit_cells(ImageProtocol::Kitty, (600, 400), area, (10.0, 20.0)),
            (60, 20)
        );
        // A tall image is bounded by the rows; its width follows the real cell shape.
        assert_eq!(
            fit_cells(ImageProtocol::Kitty, (400, 800), area, (8.0, 16.0)),
            (20, 20)
        );
        // Small cells (5×10) must not make a sixel overflow: 300×200 pixels of room.
        let (w, h) = fit_cells(ImageProtocol::Sixel, (600, 400), area, (5.0, 10.0));
        assert!(
            f64::from(w) * 6.0 <= 300.0 && f64::from(h) * 12.0 <= 200.0,
            "{w}×{h}"
        );
        // Wide rooms stay within viuer's 1000-pixel sixel width, aspect kept.
        let wide = Rect::new(0, 0, 200, 60);
        let (w, h) = fit_cells(ImageProtocol::Sixel, (2000, 1000), wide, (10.0, 20.0));
        assert_eq!((w, h), (166, 41));
        // A tiny image is enlarged at most twice.
        assert_eq!(
            fit_cells(ImageProtocol::Iterm, (14, 25), area, (10.0, 20.0)),
            (2, 2)
        );
    }

    #[test]
    fn kitty_images_go_inline_in_chunks_and_never_ask_for_an_answer() {
        // 60×40 RGB = 7200 bytes = 9600 base64 characters: three chunks.
        let img = RgbImage::from_pixel(60, 40, image::Rgb([1, 2, 3]));
        let mut out = Vec::new();
        write_kitty(&mut out, &img, 4, 9, (30, 10)).expect("write");
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("\x1b[10;5H\x1b_Ga=T,f=24,t=d,q=2,C=1,s=60,v=40,c=30,r=10,m=1;"));
        let parts: Vec<&str> = text.split("\x1b\\").filter(|p| !p.is_empty()).collect();
        assert_eq!(parts.len(), 3, "{text:.200}");
        assert!(parts[1].starts_with("\x1b_Gm=1;") && parts[2].starts_with("\x1b_Gm=0;"));
        let payload: String = parts
            .iter()
            .map(|p| p.rsplit_once(';').map_or("", |(_, d)| d))
            .collect();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .expect("base64");
        assert_eq!(raw, img.as_raw().as_slice());
    }

    #[test]
    fn iterm_images_are_one_png_sequence_at_the_pane() {
        let img = RgbImage::from_fn(30, 20, |x, y| image::Rgb([x as u8 * 8, y as u8 * 12, 7]));
        let mut out = Vec::new();
        write_iterm(&mut out, &img, 2, 5, (15, 5)).expect("write");
        let text = String::from_utf8(out).expect("ascii");
        let (head, payload) = text.split_once(':').expect("header and data");
        assert!(head.starts_with("\x1b[6;3H\x1b]1337;File=inline=1;preserveAspectRatio=1;size="));
        assert!(head.ends_with(";width=15;height=5"), "{head}");
        let payload = payload.strip_suffix('\x07').expect("ends with BEL");
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .expect("base64");
        assert!(head.contains(&format!("size={};", png.len())));
        let back = image::load_from_memory(&png).expect("a PNG").to_rgb8();
        assert_eq!(back, img);
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
