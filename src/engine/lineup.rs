//! The files taken from a send's queue and not yet offered, and the rule for a live stream
//! (`--deadline`): an image that cannot be delivered by its deadline gives way as soon as a
//! newer one is ready, so the newest wins. Without deadlines a file is taken only when the
//! session has room for it, as before; with them, every file ready is taken at once, so
//! that a newer one is known while an older one is still under way.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::mpsc;

use super::send::Outgoing;

/// Files waiting beyond this many are skipped, oldest first, deadline or not: a writer
/// faster than the link must not make the sender hold open files without end.
pub const MAX_WAITING: usize = 8;

/// Why a file past its deadline was not sent on (as the report and the receiver say).
pub const LATE: &str = "past its deadline, and a newer image was ready";

#[derive(Debug, Default)]
pub struct Lineup {
    waiting: VecDeque<Outgoing>,
    /// Files come with deadlines: take them as soon as they are ready.
    greedy: bool,
    /// The queue is closed and empty.
    pub exhausted: bool,
}

impl Lineup {
    /// True when the queue should be read now: the session wants a file and none is
    /// waiting, or files come with deadlines.
    pub fn wants(&self, session_wants: bool) -> bool {
        !self.exhausted && (self.greedy || (session_wants && self.waiting.is_empty()))
    }

    /// A stream whose first file (taken before the lineup) has a deadline: take files as
    /// soon as they are ready from the start.
    pub fn after(first: &Outgoing) -> Self {
        Lineup {
            greedy: first.deadline.is_some(),
            ..Lineup::default()
        }
    }

    /// One file from the queue, or its end (`None`).
    pub fn got(&mut self, o: Option<Outgoing>) {
        match o {
            Some(o) => {
                self.greedy |= o.deadline.is_some();
                self.waiting.push_back(o);
            }
            None => self.exhausted = true,
        }
    }

    /// Takes what the queue holds now, as [`Lineup::wants`] says.
    pub fn refill(&mut self, files: &mut mpsc::Receiver<Outgoing>, session_wants: bool) {
        while self.wants(session_wants) {
            match files.try_recv() {
                Ok(o) => self.got(Some(o)),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => self.got(None),
            }
        }
    }

    /// The next file to offer.
    pub fn take(&mut self) -> Option<Outgoing> {
        self.waiting.pop_front()
    }

    /// A newer file than any in flight is ready.
    pub fn newer_ready(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The waiting files that give way: those past their deadline with a newer one behind
    /// them, and the oldest beyond [`MAX_WAITING`].
    pub fn skip(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut skipped = Vec::new();
        while self.waiting.len() > 1
            && (self.waiting.len() > MAX_WAITING
                || self.waiting[0].deadline.is_some_and(|d| d <= now))
        {
            skipped.extend(self.waiting.pop_front());
        }
        skipped
    }

    /// When the next waiting file would give way (it has a newer one behind it).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.waiting.len() < 2 {
            return None;
        }
        self.waiting[0].deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sender::{Sender, SenderConfig};
    use std::time::Duration;

    fn file(id: u64, deadline: Option<Instant>) -> Outgoing {
        let offer = Sender::offer_for(&SenderConfig::default(), "x.png", b"abc", "", None);
        let mut o = Outgoing::bytes(id, offer, bytes::Bytes::from_static(b"abc"));
        o.deadline = deadline;
        o
    }

    #[test]
    fn a_late_file_gives_way_only_to_a_newer_one() {
        let t = Instant::now();
        let mut l = Lineup::default();
        l.got(Some(file(1, Some(t))));
        assert!(
            l.skip(t + Duration::from_secs(1)).is_empty(),
            "nothing newer"
        );
        assert_eq!(l.next_deadline(), None);
        l.got(Some(file(2, Some(t + Duration::from_secs(5)))));
        assert_eq!(l.next_deadline(), Some(t));
        assert!(
            l.skip(t - Duration::from_millis(1)).is_empty(),
            "not late yet"
        );
        let skipped: Vec<u64> = l.skip(t).iter().map(|o| o.id).collect();
        assert_eq!(skipped, [1]);
        assert_eq!(l.take().map(|o| o.id), Some(2));
    }

    #[test]
    fn without_deadlines_a_file_is_taken_only_when_the_session_wants_one() {
        let mut l = Lineup::default();
        assert!(!l.wants(false));
        assert!(l.wants(true));
        l.got(Some(file(1, None)));
        assert!(!l.wants(true), "one waits already");
        let mut g = Lineup::default();
        g.got(Some(file(1, Some(Instant::now()))));
        assert!(g.wants(false), "with deadlines, every file ready is taken");
        for id in 2..20 {
            g.got(Some(file(id, None)));
        }
        let skipped = g.skip(Instant::now());
        assert_eq!(skipped.len(), 19 - MAX_WAITING);
        assert_eq!(g.take().map(|o| o.id), Some(20 - MAX_WAITING as u64));
    }
}
