//! The Connection pane: role, address, passphrase, output folder, the start button, the state.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::display::safe;
use crate::tui::app::{App, ConnState, Field, Role};
use crate::tui::view::Theme;

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let width = usize::from(area.width.saturating_sub(2 + 11 + 1));
    let row = |field: Field, label: &str, value: String| {
        let selected = focused && app.form.field == field;
        let label = Span::styled(format!("{label:<11}"), theme.fg(Color::DarkGray));
        if selected && app.form.editing {
            return Line::from([vec![label], editing_spans(app, width)].concat());
        }
        let mut style = Style::default();
        if selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        Line::from(vec![label, Span::styled(safe(&value).into_owned(), style)])
    };
    let role = match app.form.role {
        Role::Receive => "◀ Receive ▶",
        Role::Send => "◀ Send ▶",
    };
    let pass = if app.form.insecure {
        "(none: --insecure)".to_owned()
    } else if app.form.passphrase.is_empty() {
        match app.form.role {
            Role::Receive => "(generated on Listen)".to_owned(),
            Role::Send => "(type the receiver's)".to_owned(),
        }
    } else if app.form.passphrase_generated || app.form.reveal {
        app.form.passphrase.clone()
    } else {
        "•".repeat(app.form.passphrase.chars().count().min(16))
    };
    let action = match (&app.state, app.form.role) {
        (ConnState::Listening(_), _) => "[ Stop listening ]",
        (ConnState::Handshaking(_) | ConnState::Connected(_), _) => "[ Cancel the send ]",
        (ConnState::Cancelling(_), _) => "[ cancelling… ]",
        (_, Role::Receive) => "[ Listen ]",
        (_, Role::Send) => "[ Connect & send ]",
    };
    let (state, color) = match &app.state {
        ConnState::Idle => ("idle".to_owned(), Color::Reset),
        ConnState::Listening(_) => {
            let text = match app.transfers.receiving_from()[..] {
                [] => "● listening".to_owned(),
                [peer] => format!("● connected to {peer}"),
                ref peers => format!("● connected to {} senders", peers.len()),
            };
            match app.failed_logins {
                0 => (text, Color::Green),
                1 => (format!("{text}, 1 failed login"), Color::Yellow),
                n => (format!("{text}, {n} failed logins"), Color::Yellow),
            }
        }
        ConnState::Handshaking(a) if app.form.insecure => {
            (format!("● offering to {a}"), Color::Yellow)
        }
        ConnState::Handshaking(a) => (format!("● handshaking with {a}"), Color::Yellow),
        ConnState::Connected(a) => (format!("● connected to {a}"), Color::Green),
        ConnState::Sent => ("all files sent".to_owned(), Color::Green),
        ConnState::Cancelling(a) => (format!("cancelling: telling {a}"), Color::Yellow),
        ConnState::Stopped(text) => (text.clone(), Color::Reset),
        ConnState::Error(e) => (e.clone(), Color::Red),
    };
    let address_label = match app.form.role {
        Role::Receive => "Listen on",
        Role::Send => "Receiver",
    };
    let out = match app.form.role {
        Role::Receive => app.form.out_dir.clone(),
        Role::Send => "-".to_owned(),
    };
    let lines = vec![
        row(Field::Role, "Role", role.to_owned()),
        row(
            Field::Address,
            address_label,
            match (app.form.role, app.form.address.is_empty(), app.form.editing) {
                (Role::Send, true, false) => "(type HOST or HOST:PORT)".to_owned(),
                _ => app.form.address.clone(),
            },
        ),
        row(Field::Passphrase, "Passphrase", pass),
        row(Field::OutDir, "Output", out),
        row(Field::Action, "", action.to_owned()),
        Line::from(vec![
            Span::styled("State      ", theme.fg(Color::DarkGray)),
            // An error can quote the receiver (a refusal's reason).
            Span::styled(safe(&state).into_owned(), theme.fg(color)),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(theme.block("Connection", focused)),
        area,
    );
}

/// The field being edited: its text scrolled to keep the cursor in view, the cursor drawn
/// as a reversed cell (or a bar at the end). A masked passphrase stays masked.
fn editing_spans(app: &App, width: usize) -> Vec<Span<'static>> {
    let masked = app.form.field == Field::Passphrase && !app.form.reveal;
    let text: Vec<char> = if masked {
        vec!['•'; app.form.input.value().chars().count()]
    } else {
        safe(app.form.input.value()).chars().collect()
    };
    // `safe` may lengthen the text (an escaped control): the cursor then goes to the end.
    let cursor = if text.len() == app.form.input.value().chars().count() {
        app.form.input.cursor()
    } else {
        text.len()
    };
    let scroll = cursor.saturating_sub(width.saturating_sub(1));
    let before: String = text[scroll..cursor].iter().collect();
    let at = text.get(cursor).map(char::to_string);
    let after: String = text.get(cursor + 1..).unwrap_or(&[]).iter().collect();
    let mut spans = vec![Span::raw(before)];
    match at {
        Some(c) => spans.push(Span::styled(
            c,
            Style::default().add_modifier(Modifier::REVERSED),
        )),
        None => spans.push(Span::raw("▏")),
    }
    spans.push(Span::raw(after));
    spans
}
