//! The bottom line: the focused pane's main keys, what they would do now, and `?`. The same
//! list heads the help popup, so the two never disagree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, ConnState, Pane, Role};
use crate::tui::view::Theme;

/// The keys that matter in the focused pane now, most useful first: (key, what it does).
pub fn hints(app: &App) -> Vec<(&'static str, String)> {
    let s = |t: &str| t.to_owned();
    if app.popups.confirm_quit {
        return app.popups.hints();
    }
    if app.form.editing {
        return app.form.editing_hints();
    }
    let mut h = match app.focus {
        Pane::Connection => app.form.hints(app.busy()),
        Pane::Files if app.form.role == Role::Receive => app.transfers.received_hints(),
        Pane::Files => app.browser.hints(),
        Pane::Chunks => app.log.hints(),
        Pane::Stats | Pane::Preview => app.transfers.hints(),
    };
    match &app.state {
        ConnState::Listening(_) => h.push(("x", s("stop listening"))),
        ConnState::Handshaking(_) | ConnState::Connected(_) => h.push(("x", s("cancel send"))),
        _ => {}
    }
    if !app.error_text().is_empty() {
        h.push(("e", s("full error")));
    }
    h.extend([("Tab", s("next pane")), ("?", s("help")), ("q", s("quit"))]);
    h
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
