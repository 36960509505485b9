//! The chunk log: one line per chunk event, bounded, and scrolled from its tail. Events of a
//! frame are held back and logged at the tick, so a burst becomes one summary line instead
//! of flooding the log (and the terminal).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{PAGE, TransferView, WHEEL};
use crate::engine::{ChunkWhat, TransferId};
use crate::figures::Fold;
use crate::tui::keymap::Action;

/// Lines the chunk log keeps; older ones are dropped.
pub const LOG_CAPACITY: usize = 2000;
/// Per frame, more chunk events than this are summarised in one line.
pub const LOG_BURST: usize = 40;

/// One line of the chunk log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Seconds since the TUI started.
    pub at: Duration,
    /// Image name.
    pub image: String,
    /// What happened, e.g. a chunk or a summary.
    pub kind: LogKind,
}

/// What a log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogKind {
    /// One chunk event.
    Chunk {
        /// Chunk index.
        chunk: u32,
        /// Bytes in the chunk.
        bytes: u32,
        /// What happened.
        what: ChunkWhat,
    },
    /// Many chunk events of one transfer folded into one line.
    Summary(Fold),
    /// A transfer started or ended, or a notice.
    Note(String),
}

/// The log's lines, how far it is scrolled, and the events not logged yet.
#[derive(Debug, Clone, Default)]
pub struct ChunkLog {
    /// The lines, oldest first (at most [`LOG_CAPACITY`]).
    pub lines: VecDeque<LogLine>,
    /// Lines scrolled up from the tail; 0 follows the tail.
    pub scroll: usize,
    /// Chunk events the engine dropped because the UI lagged.
    pub dropped: u64,
    /// Chunk events waiting to be logged this frame.
    pending: Vec<(TransferId, u32, ChunkWhat)>,
}

impl ChunkLog {
    /// Adds a line; a scrolled log keeps showing the same lines.
    pub(super) fn push(&mut self, line: LogLine) {
        if self.lines.len() >= LOG_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        if self.scroll > 0 {
            self.scroll = (self.scroll + 1).min(self.lines.len().saturating_sub(1));
        }
    }

    /// Adds a notice about `image` (empty: about no image).
    pub(super) fn note(&mut self, at: Duration, image: &str, text: String) {
        self.push(LogLine {
            at,
            image: image.to_owned(),
            kind: LogKind::Note(text),
        });
    }

    /// Holds a chunk event for the next flush: true when so many wait that they must be
    /// flushed now, to bound what a flood holds.
    pub(super) fn hold(&mut self, id: TransferId, chunk: u32, what: ChunkWhat) -> bool {
        self.pending.push((id, chunk, what));
        self.pending.len() > 10 * LOG_BURST
    }

    /// Moves the held chunk events into the log, folding a burst into one summary line.
    pub(super) fn flush(&mut self, at: Duration, transfers: &BTreeMap<TransferId, TransferView>) {
        let pending = std::mem::take(&mut self.pending);
        if pending.len() > LOG_BURST {
            return self.fold_burst(at, &pending, transfers);
        }
        for (id, chunk, what) in pending {
            let (image, bytes) = match transfers.get(&id) {
                Some(t) => (
                    t.offer.name.clone(),
                    t.offer.chunk_len(chunk).unwrap_or(0) as u32,
                ),
                None => (String::new(), 0),
            };
            self.push(LogLine {
                at,
                image,
                kind: LogKind::Chunk { chunk, bytes, what },
            });
        }
    }

    /// Folds a burst of chunk events into one log line per transfer (in the order each
    /// first appears), each counting that image's chunks, never more than it has.
    fn fold_burst(
        &mut self,
        at: Duration,
        pending: &[(TransferId, u32, ChunkWhat)],
        transfers: &BTreeMap<TransferId, TransferView>,
    ) {
        let mut ids = Vec::new();
        for (id, ..) in pending {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        for id in ids {
            let fold = Fold::of(
                pending
                    .iter()
                    .filter(|(i, ..)| *i == id)
                    .map(|(_, chunk, what)| (*chunk, *what)),
            );
            let image = transfers
                .get(&id)
                .map(|t| t.offer.name.clone())
                .unwrap_or_default();
            self.push(LogLine {
                at,
                image,
                kind: LogKind::Summary(fold),
            });
        }
    }

    /// The Chunks pane's keys: scrolling.
    pub(super) fn action(&mut self, action: Action) {
        let oldest = self.lines.len().saturating_sub(1);
        match action {
            Action::Up => self.scroll = (self.scroll + 1).min(oldest),
            Action::PageUp => self.scroll = (self.scroll + PAGE).min(oldest),
            Action::Down => self.scroll = self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll = self.scroll.saturating_sub(PAGE),
            _ => {}
        }
    }

    /// Back to the tail, following it.
    pub(super) fn follow(&mut self) {
        self.scroll = 0;
    }

    /// A wheel notch over the log: `down` towards newer lines.
    pub(super) fn wheel(&mut self, down: bool) {
        let oldest = self.lines.len().saturating_sub(1);
        self.scroll = if down {
            self.scroll.saturating_sub(WHEEL)
        } else {
            (self.scroll + WHEEL).min(oldest)
        };
    }

    /// The footer's keys when the Chunks pane has the focus.
    pub fn hints(&self) -> Vec<(&'static str, String)> {
        vec![
            ("↑ ↓ PgUp PgDn", "scroll".to_owned()),
            ("G", "follow".to_owned()),
        ]
    }
}
