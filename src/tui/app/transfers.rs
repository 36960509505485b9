//! The transfers of this screen's session, the one shown in Stats and Preview, and the
//! figures of those folded away. Only the newest [`MAX_TRANSFERS`] are kept in full, so a
//! long session keeps exact figures in bounded memory.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::SessionFigures;
use crate::engine::{Direction, Progress, Report, TransferId};
use crate::proto::stats::TransferStats;
use crate::proto::wire::Offer;
use crate::tui::keymap::Action;

/// Ids of this screen's sends start here (the receiver numbers its transfers from 1).
pub const SEND_IDS: TransferId = 1 << 40;
/// Transfers kept in full (listed, browsable); older finished ones only count in the session.
pub const MAX_TRANSFERS: usize = 500;
/// Goodput samples kept for the sparkline.
pub const HISTORY: usize = 120;

/// A transfer as the screen shows it.
#[derive(Debug, Clone)]
pub struct TransferView {
    /// What was offered.
    pub offer: Offer,
    /// Which way.
    pub direction: Direction,
    /// Latest figures.
    pub stats: TransferStats,
    /// Screen time (since the TUI started) when it began.
    pub started_at: Duration,
    /// Time since it started.
    pub elapsed: Duration,
    /// The other side.
    pub peer: SocketAddr,
    /// `Some` once finished: Ok, or why not.
    pub result: Option<Result<(), String>>,
    /// The file on disk: where a received image went (once verified), or what a send reads.
    pub path: Option<PathBuf>,
    /// Goodput samples (bits per second) for the sparkline.
    pub history: VecDeque<u64>,
}

impl TransferView {
    /// Bytes of the image that are in (receiver) or acknowledged (sender).
    pub fn done_bytes(&self) -> u64 {
        crate::figures::done_bytes(
            self.stats.chunks_done,
            self.offer.chunk_size,
            self.offer.size,
        )
    }

    /// Image bits per second so far.
    pub fn goodput_bps(&self) -> f64 {
        crate::figures::goodput_bps(self.done_bytes(), self.elapsed)
    }
}

/// The session's transfers and which one is shown.
#[derive(Debug, Clone)]
pub struct Transfers {
    /// Transfers of this session, the newest [`MAX_TRANSFERS`].
    pub by_id: BTreeMap<TransferId, TransferView>,
    /// Transfer shown in Stats and Preview.
    pub current: Option<TransferId>,
    /// Figures of the older transfers, folded away to bound memory.
    folded: SessionFigures,
    /// Where the folded transfers' time ends.
    folded_until: Duration,
    /// Id for the next file sent.
    next_send_id: TransferId,
    /// Files asked to be sent whose transfer has not started yet.
    send_paths: BTreeMap<TransferId, PathBuf>,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            by_id: BTreeMap::new(),
            current: None,
            folded: SessionFigures::default(),
            folded_until: Duration::ZERO,
            next_send_id: SEND_IDS,
            send_paths: BTreeMap::new(),
        }
    }
}

impl Transfers {
    /// Gives each file to send the id its transfer's events will carry.
    pub(super) fn number_sends(&mut self, files: Vec<PathBuf>) -> Vec<(TransferId, PathBuf)> {
        files
            .into_iter()
            .map(|path| {
                let id = self.next_send_id;
                self.next_send_id += 1;
                self.send_paths.insert(id, path.clone());
                (id, path)
            })
            .collect()
    }

    /// The send's file at `path` that has not ended yet: waiting its turn, or being sent.
    pub(super) fn unfinished_send_of(&self, path: &std::path::Path) -> Option<TransferId> {
        let queued = self.send_paths.iter().find(|(_, p)| p.as_path() == path);
        queued.map(|(id, _)| *id).or_else(|| {
            self.by_id.iter().find_map(|(id, t)| {
                let running = t.direction == Direction::Send && t.result.is_none();
                (running && t.path.as_deref() == Some(path)).then_some(*id)
            })
        })
    }

    /// The name a send's file goes by: its offer's, or its file name before it started.
    pub(super) fn name_of_send(&self, id: TransferId) -> String {
        if let Some(t) = self.by_id.get(&id) {
            return t.offer.name.clone();
        }
        self.send_paths
            .get(&id)
            .map(|p| crate::engine::offered_name(p))
            .unwrap_or_default()
    }

    /// The send is over: files that could not be read never started.
    pub(super) fn send_ended(&mut self) {
        self.send_paths.clear();
    }

    /// A transfer started at `now`; it becomes the one shown. A send's file is on disk: its
    /// path is returned, to show it at once.
    pub(super) fn start(
        &mut self,
        id: TransferId,
        direction: Direction,
        peer: SocketAddr,
        offer: Offer,
        now: Duration,
    ) -> Option<PathBuf> {
        // What the offer says until the first figures arrive: the Stats pane and the
        // chunk map agree on the count from the start.
        let stats = TransferStats {
            bytes: offer.size,
            chunks: offer.chunk_count,
            ..TransferStats::default()
        };
        let path = self.send_paths.remove(&id);
        let view = TransferView {
            offer,
            direction,
            peer,
            stats,
            started_at: now,
            elapsed: Duration::ZERO,
            result: None,
            path: path.clone(),
            history: VecDeque::new(),
        };
        self.by_id.insert(id, view);
        self.fold_old();
        self.current = Some(id);
        path
    }

    /// Latest figures of the transfers in progress.
    pub(super) fn progress(&mut self, progress: Vec<Progress>) {
        for p in progress {
            // A snapshot read after a transfer's Finished can be older than it: the
            // report's figures are final.
            if let Some(t) = self.by_id.get_mut(&p.id)
                && t.result.is_none()
            {
                t.stats = p.stats;
                t.elapsed = p.elapsed;
            }
        }
    }

    /// A transfer's verdict and final figures.
    pub(super) fn finish(&mut self, r: &Report) {
        let Some(t) = self.by_id.get_mut(&r.id) else {
            return;
        };
        // A receiver whose session ended before its verdict (the sender closed
        // it) may no longer have its figures and report none: keep the last ones.
        if r.stats.chunks > 0 {
            t.stats = r.stats.clone();
        }
        // A verified file is all there, whatever the sender's acknowledgements
        // had counted when the verdict overtook them.
        if r.result.is_ok() {
            t.stats.chunks_done = t.stats.chunks;
        }
        t.elapsed = r.duration;
        t.result = Some(r.result.clone());
        if r.path.is_some() {
            t.path = r.path.clone();
        }
    }

    /// On each tick: a goodput sample of each transfer in progress, for the sparklines.
    pub(super) fn sample(&mut self) {
        for t in self.by_id.values_mut().filter(|t| t.result.is_none()) {
            let bps = t.goodput_bps() as u64;
            t.history.push_back(bps);
            if t.history.len() > HISTORY {
                t.history.pop_front();
            }
        }
    }

    /// The Stats and Preview panes' keys: the transfer before or after the one shown.
    pub(super) fn step(&self, action: Action) -> Option<TransferId> {
        let ids: Vec<TransferId> = self.by_id.keys().copied().collect();
        let cur = self
            .current
            .and_then(|c| ids.iter().position(|i| *i == c))?;
        let next = match action {
            Action::Up | Action::Left => cur.checked_sub(1),
            Action::Down | Action::Right => Some(cur + 1).filter(|n| *n < ids.len()),
            _ => None,
        };
        next.map(|n| ids[n])
    }

    /// The transfer shown in Stats and Preview.
    pub fn current_transfer(&self) -> Option<&TransferView> {
        self.current.and_then(|id| self.by_id.get(&id))
    }

    /// Receive transfers in progress and their peers, for the state line.
    pub fn receiving_from(&self) -> Vec<SocketAddr> {
        self.by_id
            .values()
            .filter(|t| t.direction == Direction::Receive && t.result.is_none())
            .map(|t| t.peer)
            .collect()
    }

    /// Session figures over every transfer, those folded away included.
    pub fn session(&self) -> SessionFigures {
        let mut f = self.folded.clone();
        let mut latest_send = None;
        for v in self.by_id.values() {
            f.add(v);
            if v.direction == Direction::Send {
                latest_send = Some(v.stats.rtt);
            }
        }
        f.rtt = latest_send.unwrap_or_default();
        // The union of the transfers' spans: concurrent transfers share their time.
        let mut spans: Vec<_> = self
            .by_id
            .values()
            .map(|v| (v.started_at, v.started_at + v.elapsed))
            .collect();
        spans.sort();
        let mut until = self.folded_until;
        for span in spans {
            f.add_time(&mut until, span);
        }
        f
    }

    /// Keeps at most [`MAX_TRANSFERS`] transfers in full: the oldest finished ones are
    /// folded into the session figures and leave the lists.
    fn fold_old(&mut self) {
        while self.by_id.len() > MAX_TRANSFERS {
            let Some(id) = self
                .by_id
                .iter()
                .find(|(_, t)| t.result.is_some())
                .map(|(id, _)| *id)
            else {
                return; // all in progress (the receiver caps those far lower)
            };
            let Some(v) = self.by_id.remove(&id) else {
                return;
            };
            self.folded.add(&v);
            let span = (v.started_at, v.started_at + v.elapsed);
            self.folded.add_time(&mut self.folded_until, span);
            if self.current == Some(id) {
                self.current = self.by_id.keys().next_back().copied();
            }
        }
    }

    /// The footer's keys when Stats or Preview has the focus.
    pub fn hints(&self) -> Vec<(&'static str, String)> {
        vec![("← →", "other image".to_owned()), ("z", "zoom".to_owned())]
    }
}
