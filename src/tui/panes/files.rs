//! The Files pane: a browser of the current folder (folders and images first, with size,
//! format and dimensions) for sending, and the list of received files.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

use crate::display::safe;
use crate::engine::Direction;
use crate::report::human_bytes;
use crate::tui::app::{App, Role};
use crate::tui::view::{Theme, ellipsize};

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    if app.form.role == Role::Receive {
        return render_received(frame, area, app, theme, focused);
    }
    let title = format!("Files: {}", safe(&app.browser.cwd.display().to_string()));
    let width = usize::from(area.width.saturating_sub(2));
    // Narrow panes leave out the format: the extension mostly says it.
    let with_format = width >= 44;
    let items: Vec<ListItem> = app
        .browser
        .entries
        .iter()
        .map(|e| {
            if e.is_dir {
                return ListItem::new(Line::from(Span::styled(
                    format!("  {}/", safe(&e.name)),
                    theme.fg(Color::Blue).add_modifier(Modifier::BOLD),
                )));
            }
            // Only a real mark is coloured: a coloured blank turns into a block when the
            // cursor's row is drawn reversed.
            let mark = if app.browser.marked.contains(&e.path) {
                Span::styled("✓ ", theme.fg(Color::Green))
            } else {
                Span::raw("  ")
            };
            let info = match &e.info {
                Some((fmt, Some((w, h)))) if with_format => {
                    format!("{} {w}×{h}", fmt.to_uppercase())
                }
                Some((_, Some((w, h)))) => format!("{w}×{h}"),
                Some((fmt, None)) if with_format => fmt.to_uppercase(),
                Some((_, None)) => String::new(),
                None => "…".to_owned(),
            };
            let meta = format!(" {} {info}", human_bytes(e.size));
            let meta = meta.trim_end();
            let room = width.saturating_sub(2 + meta.chars().count());
            let name = ellipsize(&safe(&e.name), room);
            let pad = room.saturating_sub(name.chars().count());
            ListItem::new(Line::from(vec![
                mark,
                Span::raw(name),
                Span::raw(" ".repeat(pad)),
                Span::styled(meta.to_owned(), theme.fg(Color::DarkGray)),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.browser.selected));
    let list = List::new(items)
        .block(theme.block(&title, focused))
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    frame.render_stateful_widget(list, area, &mut state);
}

fn render_received(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let items: Vec<ListItem> = app
        .transfers
        .by_id
        .iter()
        .filter(|(_, t)| t.direction == Direction::Receive)
        .map(|(id, t)| {
            let (sym, color) = match &t.result {
                None => ("…", Color::Yellow),
                Some(Ok(())) => ("✓", Color::Green),
                Some(Err(_)) => ("✗", Color::Red),
            };
            // The sender's name until the file is stored, then the stored one.
            let name = t.path.as_ref().and_then(|p| p.file_name()).map_or_else(
                || safe(&t.offer.name).into_owned(),
                |n| safe(&n.to_string_lossy()).into_owned(),
            );
            let current = if app.transfers.current == Some(*id) {
                "▸"
            } else {
                " "
            };
            ListItem::new(Line::from(vec![
                Span::raw(current),
                Span::styled(format!("{sym} "), theme.fg(color)),
                Span::raw(name),
                Span::styled(
                    format!("  {}", human_bytes(t.offer.size)),
                    theme.fg(Color::DarkGray),
                ),
            ]))
        })
        .collect();
    let title = format!("Files: received into {}", safe(&app.form.out_dir));
    if items.is_empty() {
        let list = List::new(vec![ListItem::new("  nothing received yet")]);
        frame.render_widget(list.block(theme.block(&title, focused)), area);
        return;
    }
    // Scrolled so the cursor's row is always in view.
    let mut state = ListState::default().with_selected(app.transfers.received_cursor());
    let list = List::new(items).block(theme.block(&title, focused));
    frame.render_stateful_widget(list, area, &mut state);
}
