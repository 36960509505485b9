//! The Chunks pane: the live per-chunk log, colour-coded, following the tail unless scrolled.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::display::safe;
use crate::engine::ChunkWhat;
use crate::figures::Fold;
use crate::tui::app::{App, LogKind};
use crate::tui::view::{Theme, ellipsize};

fn what(w: ChunkWhat) -> (&'static str, Color) {
    match w {
        ChunkWhat::Sent => ("sent", Color::Reset),
        ChunkWhat::Retransmitted => ("retransmitted", Color::Yellow),
        ChunkWhat::Lost => ("lost", Color::Red),
        ChunkWhat::Acked => ("acked", Color::Green),
        ChunkWhat::Received => ("received", Color::Green),
        ChunkWhat::Recovered => ("recovered", Color::Cyan),
        ChunkWhat::Duplicate => ("duplicate", Color::Magenta),
    }
}

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let rows = area.height.saturating_sub(2) as usize;
    let end = app.log.lines.len().saturating_sub(app.log.scroll);
    let start = end.saturating_sub(rows);
    let lines: Vec<Line> = app
        .log
        .lines
        .range(start..end)
        .map(|l| {
            let mut spans = vec![
                Span::styled(
                    format!("{:>7.2}s ", l.at.as_secs_f64()),
                    theme.fg(Color::DarkGray),
                ),
                Span::raw(format!("{:<18} ", ellipsize(&safe(&l.image), 18))),
            ];
            match &l.kind {
                LogKind::Chunk {
                    chunk,
                    bytes,
                    what: w,
                } => {
                    let (text, color) = what(*w);
                    spans.push(Span::raw(format!("#{chunk:<7} {bytes:>5} B  ")));
                    spans.push(Span::styled(text, theme.fg(color)));
                }
                LogKind::Summary(fold) => spans.extend(summary(fold, theme)),
                // Notes quote names and reasons from the other side.
                LogKind::Note(n) => spans.push(Span::raw(safe(n).into_owned())),
            }
            Line::from(spans)
        })
        .collect();
    let title = if app.log.scroll > 0 {
        format!("Chunks (scrolled {} up; End follows)", app.log.scroll)
    } else if app.log.dropped > 0 {
        format!(
            "Chunks ({} events skipped to keep up)",
            grouped(app.log.dropped as usize)
        )
    } else {
        "Chunks".to_owned()
    };
    frame.render_widget(
        Paragraph::new(lines).block(theme.block(&title, focused)),
        area,
    );
}

/// A fold line: `+97 chunks: 97 sent, 3 lost, 3 retransmitted, 90 acked`. Every count is of
/// distinct chunks of the one image (see [`Fold`]), each kind in its chunk lines' colour; a
/// kind that did not happen is not listed (so no `0 lost` claims what this side cannot see).
fn summary(fold: &Fold, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(
        format!("+{} chunks:", grouped(fold.chunks)),
        theme.fg(Color::LightBlue),
    )];
    for (i, (w, n)) in fold.kinds.iter().enumerate() {
        let (text, color) = what(*w);
        spans.push(Span::raw(if i == 0 { " " } else { ", " }));
        spans.push(Span::styled(
            format!("{} {text}", grouped(*n)),
            theme.fg(color),
        ));
    }
    spans
}

/// `1,234,567`: counts in the log are read at a glance.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        let g = super::grouped;
        assert_eq!(
            (g(0), g(999), g(1000), g(1234567)),
            ("0".into(), "999".into(), "1,000".into(), "1,234,567".into())
        );
    }
}
