//! The question asked before quitting cuts a transfer short.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::view::Theme;

/// Draws the question in the middle of `area`.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let what = if app.transfers.receiving_from().is_empty() {
        "A send is running: quitting cancels it (the receiver is told)."
    } else {
        "An image is arriving: quitting stops the receiver (the sender is told)."
    };
    let w = 50.min(area.width);
    let h = 6.min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines = vec![
        Line::from(what),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", theme.fg(Color::Yellow)),
            Span::raw(" quit   "),
            Span::styled("n", theme.fg(Color::Yellow)),
            Span::raw(" / Esc go on"),
        ]),
    ];
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(theme.block("Quit udpix?", true)),
        popup,
    );
}
