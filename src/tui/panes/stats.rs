//! The Stats pane: per image and for the session — chunks, datagrams, losses, recoveries,
//! bytes, elapsed time, goodput with a sparkline, RTT and send rate.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use crate::engine::Direction;
use crate::proto::stats::TransferStats;
use crate::report::{human_bytes, human_rate};
use crate::tui::app::App;
use crate::tui::view::Theme;

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn figures<'a>(s: &TransferStats, theme: &Theme) -> Vec<Line<'a>> {
    let total = s.datagrams_sent.max(s.datagrams_received + s.lost);
    let label = |t: &str| Span::styled(format!("{t:<10}"), theme.fg(Color::Gray));
    vec![
        Line::from(vec![
            label("chunks"),
            Span::raw(format!("{}/{}  ", s.chunks_done, s.chunks)),
            label("datagrams"),
            Span::raw(format!(
                "{} sent {} recv",
                s.datagrams_sent, s.datagrams_received
            )),
        ]),
        Line::from(vec![
            label("lost"),
            Span::styled(
                format!("{} ({:.1}%)  ", s.lost, pct(s.lost, total)),
                theme.fg(Color::Red),
            ),
            label("recovered"),
            Span::styled(format!("{}  ", s.recovered), theme.fg(Color::Cyan)),
            Span::raw(format!("retx {}  dup {}", s.retransmitted, s.duplicates)),
        ]),
        Line::from(vec![
            label("success"),
            Span::styled(
                format!("{:.1}%", pct(u64::from(s.chunks_done), u64::from(s.chunks))),
                theme.fg(Color::Green),
            ),
        ]),
    ]
}

/// Draws the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, focused: bool) {
    let block = theme.block("Stats", focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(t) = app.current_transfer() else {
        frame.render_widget(Paragraph::new("no transfer yet"), inner);
        return;
    };
    let s = &t.stats;
    let secs = t.elapsed.as_secs_f64().max(1e-3);
    let done = (u64::from(s.chunks_done) * u64::from(t.offer.chunk_size)).min(t.offer.size);
    let goodput = done as f64 * 8.0 / secs;
    let dims = if t.offer.width > 0 {
        format!(" {}×{}", t.offer.width, t.offer.height)
    } else {
        String::new()
    };
    let status = match &t.result {
        None => Span::styled("in progress", theme.fg(Color::Yellow)),
        Some(Ok(())) => Span::styled("verified ✓", theme.fg(Color::Green)),
        Some(Err(e)) => Span::styled(format!("failed: {e}"), theme.fg(Color::Red)),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(t.offer.name.clone(), theme.fg(Color::White)),
            Span::raw(format!("  {}{dims}  ", human_bytes(t.offer.size))),
            status,
        ]),
        Line::from(match t.direction {
            Direction::Send => format!(
                "{:<10}{:.1} s  goodput {}  rtt {:.1} ms  rate {}",
                "elapsed",
                secs,
                human_rate(goodput),
                s.rtt.as_secs_f64() * 1e3,
                human_rate(s.send_rate * 8.0)
            ),
            Direction::Receive => {
                format!(
                    "{:<10}{:.1} s  goodput {}",
                    "elapsed",
                    secs,
                    human_rate(goodput)
                )
            }
        }),
    ];
    lines.extend(figures(s, theme));
    let totals = app.totals();
    lines.push(Line::from(Span::styled(
        format!(
            "session: {} images, {}, {} lost, {} recovered",
            app.transfers.len(),
            human_bytes(totals.bytes),
            totals.lost,
            totals.recovered
        ),
        theme.fg(Color::DarkGray),
    )));
    let spark_h = inner.height.saturating_sub(lines.len() as u16).min(4);
    let [text, spark] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(spark_h)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
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
