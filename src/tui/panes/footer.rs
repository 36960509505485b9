//! The bottom line: the focused pane's main keys, what they would do now, and `?`. The same
//! list heads the help popup, so the two never disagree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, ConnState, Field, Pane, Role};
use crate::tui::view::Theme;

/// The keys that matter in the focused pane now, most useful first: (key, what it does).
pub fn hints(app: &App) -> Vec<(&'static str, String)> {
    let s = |t: &str| t.to_owned();
    if app.confirm_quit {
        return vec![("y", s("quit")), ("n Esc", s("go on"))];
    }
    if app.editing {
        let mut h = vec![
            ("Enter", s("done")),
            ("← → Home End", s("move")),
            ("Ctrl-U", s("clear")),
        ];
        if app.field == Field::Passphrase {
            h.push(("Ctrl-R", s(if app.reveal { "mask" } else { "show" })));
        }
        h.push(("↑ ↓", s("next field")));
        return h;
    }
    let mut h = match app.focus {
        Pane::Connection => connection(app),
        Pane::Files if app.role == Role::Receive => vec![
            ("↑ ↓", s("received images")),
            ("Enter", s("preview")),
            ("o", s("open")),
        ],
        Pane::Files => vec![
            ("↑ ↓", s("move")),
            ("Space", s("mark")),
            ("Enter", s("send")),
            ("→ ←", s("folder in / up")),
            ("o", s("open")),
        ],
        Pane::Chunks => vec![("↑ ↓ PgUp PgDn", s("scroll")), ("G", s("follow"))],
        Pane::Stats | Pane::Preview => vec![("← →", s("other image")), ("z", s("zoom"))],
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

fn connection(app: &App) -> Vec<(&'static str, String)> {
    let enter = match (app.field, app.role, app.busy()) {
        (Field::Role, ..) => "switch role",
        (Field::Action, _, true) => "stop",
        (Field::Action, Role::Receive, false) => "listen",
        (Field::Action, Role::Send, false) => "connect & send",
        _ => "edit",
    };
    let mut h = vec![("↑ ↓", "field".to_owned()), ("Enter", enter.to_owned())];
    if app.field.is_text(app.role) && !app.busy() {
        h.push(("type", "edit".to_owned()));
    }
    if app.field == Field::Passphrase {
        h.push((
            "Ctrl-R",
            if app.reveal { "mask" } else { "show" }.to_owned(),
        ));
    }
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
