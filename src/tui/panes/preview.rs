//! The Preview pane: the image, drawn with half blocks into the buffer (every terminal; with a
//! graphics protocol, until its encoding is ready), or, while an image is still arriving, a
//! map of the chunks that are in.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Paragraph;

use crate::display::safe;
use crate::tui::app::App;
use crate::tui::chunkmap::ChunkMap;
use crate::tui::halfblock::{self, ColorDepth};
use crate::tui::view::Theme;

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let dims = app
        .preview
        .id
        .and_then(|id| app.transfers.by_id.get(&id))
        .filter(|t| t.offer.width > 0)
        .map(|t| format!(" {}×{}", t.offer.width, t.offer.height))
        .unwrap_or_default();
    let title = if app.preview.title.is_empty() {
        "Preview".to_owned()
    } else {
        format!("Preview: {}{dims}", safe(&app.preview.title))
    };
    let block = theme.block(&title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(img) = &app.preview.image {
        // With a graphics protocol the runtime draws the encoded image over these half blocks
        // once it is ready: until then (a new image, a zoom, a resize) they show, never blank.
        if let Some(fitted) = app.preview.fitted.get(img, inner, theme.cell_aspect) {
            halfblock::draw(&fitted, inner, frame.buffer_mut(), theme.depth);
        }
        return;
    }
    if let Some(seen) = &app.preview.chunks {
        // The caption counts what the Stats pane counts (the engine's figures); the cells
        // follow each chunk as its event comes, a moment sooner.
        let done = app
            .preview
            .id
            .and_then(|id| app.transfers.by_id.get(&id))
            .map_or_else(|| seen.count(), |t| t.stats.chunks_done);
        draw_chunk_map(frame, inner, seen, done, theme);
        return;
    }
    frame.render_widget(Paragraph::new("the image shows here"), inner);
}

/// One cell per group of chunks: filled when every chunk of the group is in; the caption says
/// `done` are in.
fn draw_chunk_map(frame: &mut Frame, area: Rect, seen: &ChunkMap, done: u32, theme: &Theme) {
    let total = seen.total();
    let cells = u32::from(area.width) * u32::from(area.height.saturating_sub(1));
    if cells == 0 || total == 0 {
        return;
    }
    let per = total.div_ceil(cells).max(1);
    let buf = frame.buffer_mut();
    for i in 0..total.div_ceil(per) {
        let lo = i * per;
        let hi = (lo + per).min(total);
        let got = seen.count_in(lo, hi);
        let (x, y) = (
            area.x + (i % u32::from(area.width)) as u16,
            area.y + 1 + (i / u32::from(area.width)) as u16,
        );
        if let Some(cell) = buf.cell_mut((x, y)) {
            let full = got == hi - lo;
            if theme.depth == ColorDepth::Mono {
                cell.set_char(if full {
                    '█'
                } else if got > 0 {
                    '▒'
                } else {
                    '·'
                });
            } else {
                let color = if full {
                    Color::Green
                } else if got > 0 {
                    Color::Yellow
                } else {
                    Color::DarkGray
                };
                cell.set_char('▆').set_fg(color);
            }
        }
    }
    let caption = format!("{done}/{total} chunks in; the image shows once its hash verifies");
    frame.render_widget(Paragraph::new(caption), Rect { height: 1, ..area });
}
