//! Layout and drawing. `draw` has no side effects; it reads the [`App`] and fills the frame.
//!
//! ```text
//! ┌Connection────────┐┌Stats──────────────────────┐
//! │ role, address,   ││ per image and session     │
//! │ passphrase, out, ││ figures, goodput sparkline │
//! │ [Listen], state  │└───────────────────────────┘
//! └──────────────────┘┌Preview────────────────────┐
//! ┌Files─────────────┐│ the image, half blocks    │
//! │ folder listing / ││ (or the chunk map while   │
//! │ received files   ││  it arrives)              │
//! └──────────────────┘└───────────────────────────┘
//! ┌Chunks──────────────────────────────────────────┐
//! │ time  image  chunk  bytes  what                │
//! └────────────────────────────────────────────────┘
//! ```
//! While an image is shown it is the hero: the Preview takes the whole height above a shorter
//! log and Stats shrinks (see [`layout`]).
//! Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] only a message asking for a larger terminal is drawn.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::app::{App, Hit, Pane};
use super::halfblock::ColorDepth;
use super::keymap::help_rows;
use super::panes;

/// Narrowest terminal the layout works in.
pub const MIN_WIDTH: u16 = 60;
/// Shortest terminal the layout works in.
pub const MIN_HEIGHT: u16 = 18;

/// Colours (or none, under NO_COLOR).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Image colour depth; `Mono` disables every colour.
    pub depth: ColorDepth,
    /// The preview is printed with a graphics protocol after the frame: leave its cells alone.
    pub graphics: bool,
    /// Height of a cell over its width, for half-block images (2 when the terminal won't say).
    pub cell_aspect: f64,
}

impl Theme {
    /// A style with `fg` unless colours are off.
    pub fn fg(&self, c: Color) -> Style {
        if self.depth == ColorDepth::Mono {
            Style::default()
        } else {
            Style::default().fg(c)
        }
    }

    /// The border block of a pane, highlighted when focused.
    pub fn block<'a>(&self, title: &'a str, focused: bool) -> Block<'a> {
        let b = Block::bordered().title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        if focused {
            b.border_type(BorderType::Thick)
                .border_style(self.fg(Color::Cyan))
        } else {
            b.border_style(self.fg(Color::DarkGray))
        }
    }
}

/// Cuts `text` to at most `room` characters, marking a cut with an ellipsis.
pub fn ellipsize(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(room.saturating_sub(1)).collect();
    if room > 0 {
        s.push('…');
    }
    s
}

/// The screen's regions.
pub struct Areas {
    /// Connection pane.
    pub connection: Rect,
    /// Files pane.
    pub files: Rect,
    /// Stats pane.
    pub stats: Rect,
    /// Preview pane.
    pub preview: Rect,
    /// Chunks pane.
    pub chunks: Rect,
}

/// Where the key hints go: on the bottom pane's lower border, costing the panes no row.
pub fn footer(area: Rect) -> Rect {
    Rect::new(
        area.x + 1,
        area.bottom().saturating_sub(1),
        area.width.saturating_sub(2),
        1,
    )
}

/// What the layout depends on besides the screen's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// The pane that fills the screen, if any.
    pub zoom: Option<Pane>,
    /// An image is in the Preview pane: it gets most of the screen.
    pub image: bool,
}

impl From<Option<Pane>> for Shape {
    /// The layout with no image shown.
    fn from(zoom: Option<Pane>) -> Self {
        Self { zoom, image: false }
    }
}

impl From<&App> for Shape {
    fn from(app: &App) -> Self {
        Self {
            zoom: app.zoomed(),
            image: app.preview.image.is_some(),
        }
    }
}

/// Where the preview's image goes (inside its border).
pub fn preview_inner(area: Rect, shape: impl Into<Shape>) -> Rect {
    let p = layout(area, shape).preview;
    Rect::new(
        p.x + 1,
        p.y + 1,
        p.width.saturating_sub(2),
        p.height.saturating_sub(2),
    )
}

/// Rows of the Stats pane in its compact form beside an image: a border and three lines of
/// the figures that matter most (the whole table is one `z` away).
pub const COMPACT_STATS_H: u16 = 5;

/// Splits the screen; wide terminals give the preview more room, and an image in the preview
/// gets most of the screen (see [`hero_layout`]). A zoomed pane takes the whole screen and the
/// others get no room (drawing into an empty area draws nothing).
pub fn layout(area: Rect, shape: impl Into<Shape>) -> Areas {
    let shape = shape.into();
    if let Some(pane) = shape.zoom {
        let only = |p: Pane| if p == pane { area } else { Rect::default() };
        return Areas {
            connection: only(Pane::Connection),
            files: only(Pane::Files),
            stats: only(Pane::Stats),
            preview: only(Pane::Preview),
            chunks: only(Pane::Chunks),
        };
    }
    if shape.image {
        return hero_layout(area);
    }
    // The chunk log grows with the terminal: a quarter of it, 4 to 14 lines of log.
    let log_h = (area.height / 4).clamp(6, 16);
    let [top, chunks] =
        Layout::vertical([Constraint::Min(10), Constraint::Length(log_h)]).areas(area);
    let left_w = if area.width >= 120 { 48 } else { 34 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(20)]).areas(top);
    let [connection, files] =
        Layout::vertical([Constraint::Length(CONNECTION_H), Constraint::Min(3)]).areas(left);
    // The figures' table (a header and its rows) in a border; tall screens add a sparkline.
    let table_h = panes::stats::ROWS + 3;
    let stats_h = if area.height >= 40 {
        table_h + 6
    } else {
        table_h
    };
    let [stats, preview] =
        Layout::vertical([Constraint::Length(stats_h), Constraint::Min(3)]).areas(right);
    Areas {
        connection,
        files,
        stats,
        preview,
        chunks,
    }
}

/// Rows of the Connection pane.
const CONNECTION_H: u16 = 9;

/// The layout while an image is shown: the preview takes the whole height above a shorter
/// chunk log, on the right of a column of the other panes.
///
/// ```text
/// wide (≥ 120 columns, ≥ 22 rows above the log)   narrower
/// ┌Connection──┐┌Preview──────────────┐        ┌Connection┐┌Stats, 3 lines──┐
/// └────────────┘│                     │        └──────────┘└────────────────┘
/// ┌Stats table─┐│      the image      │        ┌Files─────┐┌Preview─────────┐
/// └────────────┘│                     │        │          ││   the image    │
/// ┌Files───────┐│                     │        │          ││                │
/// └────────────┘└─────────────────────┘        └──────────┘└────────────────┘
/// ┌Chunks (a fifth of the screen, 3 to 8 lines)────────────────────────────┐
/// └────────────────────────────────────────────────────────────────────────┘
/// ```
fn hero_layout(area: Rect) -> Areas {
    let log_h = (area.height / 5).clamp(5, 10);
    let [top, chunks] =
        Layout::vertical([Constraint::Min(10), Constraint::Length(log_h)]).areas(area);
    let table_h = panes::stats::ROWS + 3;
    let wide = area.width >= 120 && top.height >= CONNECTION_H + table_h + 3;
    let left_w = if wide { 48 } else { 34 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(20)]).areas(top);
    if wide {
        let [connection, stats, files] = Layout::vertical([
            Constraint::Length(CONNECTION_H),
            Constraint::Length(table_h),
            Constraint::Min(3),
        ])
        .areas(left);
        return Areas {
            connection,
            files,
            stats,
            preview: right,
            chunks,
        };
    }
    let [connection, files] =
        Layout::vertical([Constraint::Length(CONNECTION_H), Constraint::Min(3)]).areas(left);
    let [stats, preview] =
        Layout::vertical([Constraint::Length(COMPACT_STATS_H), Constraint::Min(3)]).areas(right);
    Areas {
        connection,
        files,
        stats,
        preview,
        chunks,
    }
}

/// What the pointer at (`x`, `y`) is over, on a screen of `area` laid out for `shape` (pass
/// the [`App`]); `None` off the panes or on a screen too small to lay them out.
pub fn hit(area: Rect, shape: impl Into<Shape>, x: u16, y: u16) -> Option<Hit> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let a = layout(area, shape);
    let at = ratatui::layout::Position { x, y };
    [
        (Pane::Connection, a.connection),
        (Pane::Files, a.files),
        (Pane::Stats, a.stats),
        (Pane::Preview, a.preview),
        (Pane::Chunks, a.chunks),
    ]
    .into_iter()
    .find(|(_, r)| r.contains(at))
    .map(|(pane, r)| {
        let inside = y > r.y && y + 1 < r.bottom() && x > r.x && x + 1 < r.right();
        Hit {
            pane,
            row: inside.then(|| y - r.y - 1),
            rows: r.height.saturating_sub(2),
        }
    })
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "udpix needs at least {MIN_WIDTH}×{MIN_HEIGHT} characters; this terminal is {}×{}.\nEnlarge it, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let a = layout(area, app);
    panes::connection::render(
        frame,
        a.connection,
        app,
        theme,
        app.focus == Pane::Connection,
    );
    panes::files::render(frame, a.files, app, theme, app.focus == Pane::Files);
    panes::stats::render(frame, a.stats, app, theme, app.focus == Pane::Stats);
    panes::preview::render(frame, a.preview, app, theme, app.focus == Pane::Preview);
    panes::chunks::render(frame, a.chunks, app, theme, app.focus == Pane::Chunks);
    panes::footer::render(frame, footer(area), app, theme);
    if app.popups.help {
        draw_help(frame, area, app, theme);
    }
    if app.popups.error {
        draw_error(frame, area, app, theme);
    }
    if app.popups.confirm_quit {
        panes::confirm::render(frame, area, app, theme);
    }
}

/// The help's line on the mouse (not a key, so not in the key table).
const MOUSE_HELP: &str = "click picks, wheel scrolls, Shift-drag selects";

/// A box of `w`×`h` (at most the screen) in the middle of `area`, cleared.
fn popup(frame: &mut Frame, area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, r);
    r
}

/// The focused pane's keys first (as the footer names them), then every key.
fn draw_help(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let row = |k: &str, what: &str| {
        Line::from(vec![
            Span::styled(format!("{k:>18}  "), theme.fg(Color::Yellow)),
            Span::raw(what.to_owned()),
        ])
    };
    let heading = |t: String| {
        Line::from(Span::styled(
            t,
            Style::default().add_modifier(Modifier::BOLD),
        ))
    };
    let mut lines = vec![heading(format!("  Here ({})", pane_name(app)))];
    lines.extend(
        panes::footer::hints(app)
            .iter()
            .map(|(k, what)| row(k, what)),
    );
    lines.push(heading("  Every key".to_owned()));
    lines.extend(help_rows().iter().map(|(k, what)| row(k, what)));
    lines.push(row("mouse", MOUSE_HELP));
    let longest = lines.iter().map(Line::width).max().unwrap_or(0);
    let w = (longest as u16 + 2).clamp(40, area.width);
    let r = popup(frame, area, w, lines.len() as u16 + 2);
    // Scrolled no further than its last line at the bottom.
    let most = (lines.len() as u16).saturating_sub(r.height.saturating_sub(2));
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((app.popups.help_scroll.min(most), 0))
            .block(theme.block("Help: keys (↑↓ scroll, ? or Esc closes)", true)),
        r,
    );
}

fn pane_name(app: &App) -> &'static str {
    match app.focus {
        Pane::Connection if app.form.editing => "editing a field",
        Pane::Connection => "Connection",
        Pane::Files => "Files",
        Pane::Chunks => "Chunks",
        Pane::Stats => "Stats",
        Pane::Preview => "Preview",
    }
}

/// The error on screen, wrapped in full.
fn draw_error(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    // Escaped line by line: the text may quote the peer, and its line breaks are ours.
    let text = app
        .error_text()
        .lines()
        .map(|l| crate::display::safe(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let w = area.width.saturating_sub(8).clamp(40, 100);
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = text
        .lines()
        .map(|l| l.chars().count().div_ceil(inner).max(1))
        .sum();
    let r = popup(frame, area, w, rows as u16 + 2);
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.fg(Color::Red))
            .wrap(Wrap { trim: false })
            .block(theme.block("Error (e or Esc closes)", true)),
        r,
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use image::RgbImage;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::tui::app::{Role, Setup};

    const COLOUR: Theme = Theme {
        depth: ColorDepth::TrueColor,
        graphics: false,
        cell_aspect: 2.0,
    };

    fn astronaut() -> RgbImage {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/astronaut.png"
        );
        image::open(path).expect("shared testdata").to_rgb8()
    }

    /// A receiver showing `img` in its preview.
    fn showing(img: RgbImage) -> App {
        let (mut app, _) = App::new(Setup {
            role: Role::Receive,
            address: "0.0.0.0:7878".into(),
            other_address: String::new(),
            passphrase: None,
            generated: false,
            insecure: true,
            out_dir: "/data/in".into(),
            cwd: "/data".into(),
            autostart: false,
        });
        app.preview.title = "astronaut.png".into();
        app.preview.image = Some(Arc::new(img));
        app
    }

    fn frame(app: &App, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| draw(f, app, &COLOUR))
            .expect("draw")
            .buffer
            .clone()
    }

    /// The cells the image was drawn in (true-colour cells) inside `inner`: their bounding
    /// box.
    fn painted(buf: &Buffer, inner: Rect) -> Rect {
        let rgb = |c: Color| matches!(c, Color::Rgb(..));
        let cells: Vec<(u16, u16)> = inner
            .positions()
            .filter(|p| rgb(buf[*p].fg) || rgb(buf[*p].bg))
            .map(|p| (p.x, p.y))
            .collect();
        assert!(!cells.is_empty(), "no image drawn");
        let x0 = cells.iter().map(|c| c.0).min().unwrap_or(0);
        let x1 = cells.iter().map(|c| c.0).max().unwrap_or(0);
        let y0 = cells.iter().map(|c| c.1).min().unwrap_or(0);
        let y1 = cells.iter().map(|c| c.1).max().unwrap_or(0);
        Rect::new(x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    }

    #[test]
    fn an_image_gets_most_of_the_screen() {
        let app = showing(astronaut());
        for (w, h, min_rows, min_share) in
            [(120, 40, 28, 0.4), (80, 24, 12, 0.27), (160, 48, 36, 0.5)]
        {
            let area = Rect::new(0, 0, w, h);
            let inner = preview_inner(area, &app);
            let share = f64::from(inner.area()) / f64::from(area.area());
            assert!(
                inner.height >= min_rows && share >= min_share,
                "{w}×{h}: the preview has {}×{} cells ({share:.2} of the screen)",
                inner.width,
                inner.height
            );
            // The square photo fills the height it is given.
            let img = painted(&frame(&app, w, h), inner);
            assert!(
                img.height + 1 >= inner.height,
                "{w}×{h}: {img:?} in {inner:?}"
            );
        }
        // Without an image the other panes keep their room.
        let plain = preview_inner(Rect::new(0, 0, 120, 40), None);
        assert!(plain.height < 20, "{plain:?}");
    }

    #[test]
    fn the_image_is_centred_with_its_aspect_ratio_kept() {
        let wide = RgbImage::from_fn(640, 360, |x, y| image::Rgb([x as u8, y as u8, 90]));
        for (img, zoom) in [(astronaut(), false), (astronaut(), true), (wide, false)] {
            let (iw, ih) = img.dimensions();
            let mut app = showing(img);
            if zoom {
                app.focus = Pane::Preview;
                app.zoom = true;
            }
            for (w, h) in [(120, 40), (80, 24), (100, 30)] {
                let inner = preview_inner(Rect::new(0, 0, w, h), &app);
                let got = painted(&frame(&app, w, h), inner);
                let (left, right) = (got.x - inner.x, inner.right() - got.right());
                let (top, bottom) = (got.y - inner.y, inner.bottom() - got.bottom());
                assert!(
                    left.abs_diff(right) <= 1 && top.abs_diff(bottom) <= 1,
                    "{w}×{h}: {got:?} in {inner:?}"
                );
                // Cells are twice as high as wide.
                let want = f64::from(iw) / f64::from(ih);
                let drawn = f64::from(got.width) / (2.0 * f64::from(got.height));
                let cell = 1.0 / f64::from(got.width.min(got.height));
                assert!(
                    (drawn / want - 1.0).abs() <= 0.04 + cell,
                    "{w}×{h}: aspect {drawn:.3} for {want:.3} ({got:?})"
                );
            }
        }
    }

    #[test]
    fn the_hero_layout_tiles_the_screen_and_clicks_agree_with_it() {
        let app = showing(astronaut());
        for (w, h) in [
            (60, 18),
            (80, 24),
            (100, 30),
            (119, 40),
            (120, 40),
            (120, 26),
            (160, 48),
        ] {
            let area = Rect::new(0, 0, w, h);
            let a = layout(area, &app);
            let panes = [
                (Pane::Connection, a.connection),
                (Pane::Files, a.files),
                (Pane::Stats, a.stats),
                (Pane::Preview, a.preview),
                (Pane::Chunks, a.chunks),
            ];
            let covered: u32 = panes.iter().map(|(_, r)| r.area()).sum();
            assert_eq!(covered, area.area(), "{w}×{h}: {panes:?}");
            for (pane, r) in panes {
                assert!(r.height >= 3 && r.width >= 20, "{w}×{h}: {pane:?} {r:?}");
                let at = hit(area, &app, r.x + r.width / 2, r.y + r.height / 2);
                assert_eq!(at.map(|h| h.pane), Some(pane), "{w}×{h}");
            }
        }
    }
}
