//! The bottom line: the focused pane's main keys, what they would do now, and `?`. The same
//! list heads the help popup, so the two never disagree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::view::Theme;

/// The keys that matter in the focused pane now, most useful first: (key, what it does).
pub fn hints(app: &App) -> Vec<(&'static str, String)> {
    app.hints()
}

/// Draws the line; hints that do not fit are left out from the end, `?` kept.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let hints = hints(app);
    let mut spans = Vec::new();
    let mut used = 0;
    let width = usize::from(area.width);
    let help = " ? help";
    for (i, (key, what)) in hints.iter().enumerate() {
        let cell = format!(" {key} {what} ");
        let n = cell.chars().count();
        let last = i + 1 == hints.len();
        if used + n + if last { 0 } else { help.len() } > width {
            spans.push(Span::styled(help, theme.fg(Color::Yellow)));
            break;
        }
        used += n;
        spans.push(Span::styled(format!(" {key}"), theme.fg(Color::Yellow)));
        spans.push(Span::styled(format!(" {what} "), theme.fg(Color::DarkGray)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
