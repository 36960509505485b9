//! The files taken from a send's queue and not yet offered, and the rule for a live stream
//! (`--deadline`): an image that cannot be delivered by its deadline gives way as soon as a
//! newer one is ready, so the newest wins. Without deadlines a file is taken only when the
//! session has room for it, as before; with them, every file ready is taken at once, so
//! that a newer one is known while an older one is still under way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

    /// The newest file waiting can make its deadline at the session's `pace`: worth giving
    /// way to. When it could not, or the pace is not known yet, a late file in flight goes
    /// on: a late image beats none.
    pub fn newer_in_time(&self, now: Instant, pace: Option<(f64, Duration)>) -> bool {
        pace.is_some()
            && self
                .waiting
                .back()
                .is_some_and(|o| !cannot_make_it(o, now, pace))
    }

    /// The waiting files that give way to a newer one behind them: those that cannot make
    /// their deadline (past it, or, at the session's `pace` of bytes a second and round
    /// trip, too large for the time left, so that sending them would only make the newer
    /// one late too), and the oldest beyond [`MAX_WAITING`].
    pub fn skip(&mut self, now: Instant, pace: Option<(f64, Duration)>) -> Vec<Outgoing> {
        let mut skipped = Vec::new();
        while self.waiting.len() > 1
            && (self.waiting.len() > MAX_WAITING || cannot_make_it(&self.waiting[0], now, pace))
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

/// `o` would miss its deadline if offered `now`: it has passed, or sending its bytes at
/// `pace` (bytes a second, and a round trip for the verdict) takes longer than what is left.
fn cannot_make_it(o: &Outgoing, now: Instant, pace: Option<(f64, Duration)>) -> bool {
    let Some(deadline) = o.deadline else {
        return false;
    };
    if deadline <= now {
        return true;
    }
    let Some((rate, rtt)) = pace.filter(|(rate, _)| *rate > 0.0) else {
        return false;
    };
    let needed = Duration::from_secs_f64(o.offer.size as f64 / rate) + rtt;
    now + needed > deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sender::{Sender, SenderConfig};

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
            l.skip(t + Duration::from_secs(1), None).is_empty(),
            "nothing newer"
        );
        assert_eq!(l.next_deadline(), None);
        l.got(Some(file(2, Some(t + Duration::from_secs(5)))));
        assert_eq!(l.next_deadline(), Some(t));
        assert!(
            l.skip(t - Duration::from_millis(1), None).is_empty(),
            "not late yet"
        );
        let skipped: Vec<u64> = l.skip(t, None).iter().map(|o| o.id).collect();
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
        let skipped = g.skip(Instant::now(), None);
        assert_eq!(skipped.len(), 19 - MAX_WAITING);
        assert_eq!(g.take().map(|o| o.id), Some(20 - MAX_WAITING as u64));
    }

    /// A file that the session's pace cannot deliver in the time left gives way to a newer
    /// one before it is offered, not at its deadline: else each next file would start with
    /// only what the one before left of its time, and none would arrive.
    #[test]
    fn a_file_too_large_for_the_time_left_gives_way_before_it_starts() {
        let t = Instant::now();
        // 3 bytes at 10 bytes a second: 0.3 s, plus a 0.1 s round trip.
        let pace = Some((10.0, Duration::from_millis(100)));
        let mut l = Lineup::default();
        l.got(Some(file(1, Some(t + Duration::from_millis(350)))));
        l.got(Some(file(2, Some(t + Duration::from_secs(5)))));
        let skipped: Vec<u64> = l.skip(t, pace).iter().map(|o| o.id).collect();
        assert_eq!(skipped, [1]);
        let mut l = Lineup::default();
        l.got(Some(file(1, Some(t + Duration::from_millis(450)))));
        l.got(Some(file(2, Some(t + Duration::from_secs(5)))));
        assert!(l.skip(t, pace).is_empty(), "it makes it");
        assert!(
            l.skip(t, Some((0.0, Duration::ZERO))).is_empty(),
            "no pace known yet"
        );
    }
}
