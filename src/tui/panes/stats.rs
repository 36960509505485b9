//! The Stats pane: one table, the image shown (✓ verified, … in progress, ✗ failed) beside
//! the whole session: chunks and success, datagrams, losses, recoveries and retransmissions,
//! bytes, goodput and elapsed time, RTT and send rate; below, when there is room, the image's
//! goodput as a sparkline.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, Table};

use crate::display::safe;
use crate::engine::Direction;
use crate::figures;
use crate::proto::stats::TransferStats;
use crate::report::{human_bytes, human_rate};
use crate::tui::app::{App, SessionFigures, TransferView};
use crate::tui::view::Theme;

/// Rows of figures (the table's header excluded); the layout gives the pane this many.
pub const ROWS: u16 = 7;

/// The colour of a loss figure ([`figures::loss_level`]): red only when the loss is notable,
/// none at all when nothing was lost.
fn loss_color(lost: u64, share: f64) -> Option<Color> {
    match figures::loss_level(lost, share) {
        figures::LossLevel::None => None,
        figures::LossLevel::Minor => Some(Color::Yellow),
        figures::LossLevel::Notable => Some(Color::Red),
    }
}

/// What one column shows beyond the counters: each computed in [`figures`] (or from it).
struct Derived {
    /// Lost datagrams in percent of those they are counted against.
    loss_percent: f64,
    /// Recovered chunks, as the side counts them.
    recovered: u64,
    bytes: String,
    goodput_bps: f64,
    elapsed: Duration,
    rtt_rate: Option<String>,
}

/// One column of figures, top to bottom, with a colour for those that have one.
fn column(s: &TransferStats, d: Derived) -> Vec<(String, Option<Color>)> {
    let loss = d.loss_percent;
    let repaired = d.recovered + s.retransmitted + s.duplicates > 0;
    vec![
        (
            format!(
                "{}/{} {:.1}%",
                s.chunks_done,
                s.chunks,
                figures::done_percent(s)
            ),
            None,
        ),
        (
            format!("{}↑ {}↓", s.datagrams_sent, s.datagrams_received),
            None,
        ),
        (figures::lost_text(s.lost, loss), loss_color(s.lost, loss)),
        (
            format!(
                "{} retx {} dup {}",
                d.recovered, s.retransmitted, s.duplicates
            ),
            repaired.then_some(Color::Cyan),
        ),
        (d.bytes, None),
        (
            format!("{} {}", short_rate(d.goodput_bps), short_time(d.elapsed)),
            None,
        ),
        (d.rtt_rate.unwrap_or_else(|| "–".to_owned()), None),
    ]
}

const LABELS: [&str; ROWS as usize] = [
    "chunks",
    "datagrams",
    "lost",
    "recovered",
    "bytes",
    "goodput",
    "rtt, rate",
];

/// `35.0/240.5 kB`: done of total, the unit said once when both share it.
fn bytes_of(done: u64, total: u64) -> String {
    let (d, t) = (human_bytes(done), human_bytes(total));
    match (d.split_once(' '), t.split_once(' ')) {
        (Some((dn, du)), Some((tn, tu))) if du == tu => format!("{dn}/{tn} {tu}"),
        _ => format!("{d}/{t}"),
    }
}

/// `8.4ms`, `41ms`, `2.5s`: short enough for the 80-column table.
fn short_time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1e3)
    }
}

/// `20.0 Mbit/s`, but `191 Mbit/s` rather than `191.4 Mbit/s`: the table is narrow.
fn short_rate(bps: f64) -> String {
    if (1e8..1e9).contains(&bps) {
        format!("{:.0} Mbit/s", bps / 1e6)
    } else {
        human_rate(bps)
    }
}

/// `41ms 20.0 Mbit/s`; `idle` when nothing is being sent.
fn rtt_rate(rtt: Duration, rate_bytes: f64) -> String {
    let bps = rate_bytes * 8.0;
    let rate = if bps <= 0.0 {
        "idle".to_owned()
    } else {
        short_rate(bps)
    };
    format!("{} {rate}", short_time(rtt))
}

/// The image's name and where it stands (the reason of a failure is in the chunk log). Short:
/// at 80 columns each heading has 16 cells.
fn image_heading(t: &TransferView) -> (String, Color) {
    let name = safe(&t.offer.name);
    match &t.result {
        None => (format!("{name} …"), Color::Yellow),
        Some(Ok(())) => (format!("{name} ✓"), Color::Green),
        Some(Err(_)) => (format!("{name} ✗"), Color::Red),
    }
}

/// The session's count of verified images: ✓ only once no transfer runs, … while one does.
fn session_heading(f: &SessionFigures) -> (String, Color) {
    let (mark, mut color) = if f.running() > 0 {
        ("…", Color::Yellow)
    } else {
        ("✓", Color::Green)
    };
    let mut text = format!("session {}/{} {mark}", f.verified, f.images);
    if f.failed > 0 {
        text.push_str(&format!(" {}✗", f.failed));
        color = Color::Red;
    }
    (text, color)
}

fn image_column(t: &TransferView) -> Vec<(String, Option<Color>)> {
    // The receiver has no RTT estimate or send rate of its own: the sender paces. A finished
    // send sends nothing more, as the session column says too.
    let rate = if t.result.is_none() {
        t.stats.send_rate
    } else {
        0.0
    };
    let rr = (t.direction == Direction::Send && t.stats.rtt > Duration::ZERO)
        .then(|| rtt_rate(t.stats.rtt, rate));
    column(
        &t.stats,
        Derived {
            loss_percent: t.loss_percent(),
            recovered: t.recovered(),
            bytes: bytes_of(t.done_bytes(), t.offer.size),
            goodput_bps: t.goodput_bps(),
            elapsed: t.elapsed,
            rtt_rate: rr,
        },
    )
}

fn session_column(f: &SessionFigures) -> Vec<(String, Option<Color>)> {
    let rr = (f.rtt > Duration::ZERO).then(|| rtt_rate(f.rtt, f.send_rate));
    column(
        &f.stats,
        Derived {
            loss_percent: f.loss_percent(),
            recovered: f.recovered,
            bytes: bytes_of(f.done_bytes, f.stats.bytes),
            goodput_bps: f.goodput_bps(),
            elapsed: f.elapsed,
            rtt_rate: rr,
        },
    )
}

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let block = theme.block("Stats", focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(t) = app.transfers.current_transfer() else {
        frame.render_widget(Paragraph::new("no transfer yet"), inner);
        return;
    };
    let figures = app.transfers.session();
    let image = image_column(t);
    if inner.height < ROWS + 1 {
        // Beside an image: the image's own figures, the most telling first, as many as fit.
        let lines = compact_lines(t, &figures, &image, inner.width, inner.height, theme);
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let session = session_column(&figures);
    let cell = |(text, color): &(String, Option<Color>)| {
        let style = color.map_or_else(Style::default, |c| theme.fg(c));
        Cell::from(Span::styled(text.clone(), style))
    };
    let rows: Vec<Row> = LABELS
        .iter()
        .zip(image.iter().zip(&session))
        .map(|(label, (i, s))| {
            Row::new(vec![
                Cell::from(Span::styled(*label, theme.fg(Color::DarkGray))),
                cell(i),
                cell(s),
            ])
        })
        .collect();
    let heading = |(text, color): (String, Color)| {
        Cell::from(Line::from(Span::styled(
            text,
            theme.fg(color).add_modifier(Modifier::BOLD),
        )))
    };
    let header = Row::new(vec![
        Cell::from(""),
        heading(image_heading(t)),
        heading(session_heading(&figures)),
    ]);
    let table_h = ROWS + 1;
    let spark_h = inner.height.saturating_sub(table_h + 1);
    let [table_area, _, spark] = Layout::vertical([
        Constraint::Length(table_h),
        Constraint::Length(u16::from(spark_h > 0)),
        Constraint::Length(spark_h),
    ])
    .areas(inner);
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .column_spacing(1);
    frame.render_widget(table, table_area);
    if spark_h > 0 {
        let data: Vec<u64> = t.history.iter().copied().collect();
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .style(theme.fg(Color::Green)),
            spark,
        );
    }
}

/// The order figures are given up in when the pane is short: the last go first.
const COMPACT_ORDER: [usize; ROWS as usize] = [0, 5, 2, 6, 3, 4, 1];

/// The figures of `image` (a [`column`]) flowed into `rows` lines of `width` cells, each item
/// on the first line with room for it, after the image's and the session's state; what fits
/// nowhere is left out (the whole table is one `z` away).
fn compact_lines(
    t: &TransferView,
    figures: &SessionFigures,
    image: &[(String, Option<Color>)],
    width: u16,
    rows: u16,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let bold = |(text, color): (String, Color)| {
        vec![Span::styled(
            text,
            theme.fg(color).add_modifier(Modifier::BOLD),
        )]
    };
    let mut items = vec![bold(image_heading(t)), bold(session_heading(figures))];
    for i in COMPACT_ORDER {
        let (text, color) = &image[i];
        items.push(vec![
            Span::styled(LABELS[i], theme.fg(Color::DarkGray)),
            Span::raw(" "),
            Span::styled(
                text.clone(),
                color.map_or_else(Style::default, |c| theme.fg(c)),
            ),
        ]);
    }
    let mut lines: Vec<(usize, Vec<Span<'static>>)> = vec![(0, Vec::new()); usize::from(rows)];
    let width = usize::from(width);
    for item in items {
        let w: usize = item.iter().map(|s| s.content.chars().count()).sum();
        let Some((used, spans)) = lines.iter_mut().find(|(used, _)| {
            let gap = if *used == 0 { 0 } else { 2 };
            used + gap + w <= width
        }) else {
            continue;
        };
        if *used > 0 {
            spans.push(Span::raw("  "));
            *used += 2;
        }
        *used += w;
        spans.extend(item);
    }
    lines.into_iter().map(|(_, s)| Line::from(s)).collect()
}

#[cfg(test)]
mod tests {
    use ratatui::style::Color;

    #[test]
    fn loss_is_red_only_when_notable() {
        assert_eq!(super::loss_color(0, 0.0), None);
        assert_eq!(super::loss_color(1, 0.4), Some(Color::Yellow));
        assert_eq!(
            super::loss_color(3, crate::figures::NOTABLE_LOSS),
            Some(Color::Red)
        );
    }
}
