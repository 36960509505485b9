//! Live progress bars on stderr (only when stderr is a terminal), fed from engine snapshots.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use udpix::display::safe;
use udpix::engine::{Snapshot, TransferId};
use udpix::report::human_rate;

/// One bar per transfer in progress.
pub struct Bars {
    multi: MultiProgress,
    bars: HashMap<TransferId, (ProgressBar, u64)>,
}

impl Bars {
    /// Bars drawn on stderr, hidden when it is not a terminal or under `-q`.
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() && !super::quiet() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
        }
    }

    /// A bar for a transfer that just started; `name` (the peer's, on a receiver) is shown
    /// display-safe.
    pub fn start(&mut self, id: TransferId, name: &str, bytes: u64, chunk_size: u16) {
        let bar = self.multi.add(ProgressBar::new(bytes));
        let style = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(safe(name).into_owned());
        self.bars.insert(id, (bar, u64::from(chunk_size)));
    }

    /// Moves the bars to the figures of `snap`.
    pub fn update(&self, snap: &Snapshot) {
        for p in &snap.transfers {
            if let Some((bar, chunk)) = self.bars.get(&p.id) {
                let done = (u64::from(p.stats.chunks_done) * chunk).min(p.stats.bytes);
                bar.set_position(done);
                let rate = done as f64 * 8.0 / p.elapsed.as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{}  lost {}  recovered {}",
                    human_rate(rate),
                    p.stats.lost,
                    p.stats.recovered
                ));
            }
        }
    }

    /// Removes a finished transfer's bar.
    pub fn finish(&mut self, id: TransferId) {
        if let Some((bar, _)) = self.bars.remove(&id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// Prints a line on stdout without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| println!("{line}"));
    }

    /// Runs `f`, which writes to the terminal, with the bars cleared meanwhile.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Prints a line on stderr without tearing the bars.
    pub fn eprintln(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bar_shows_the_peers_name_escaped() {
        let mut bars = super::Bars::new();
        bars.start(1, "evil\u{1b}[31m\nx\u{202e}.png", 10, 1);
        let prefix = bars.bars.get(&1).map(|(bar, _)| bar.prefix());
        assert_eq!(prefix.as_deref(), Some("evil\\e[31m\\nx\\u{202e}.png"));
        bars.finish(1);
        assert!(bars.bars.is_empty());
    }
}
