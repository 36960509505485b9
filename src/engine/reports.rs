//! The verdicts of one send, in bounded memory: a stream that runs for days counts all its
//! files but keeps the reports of only the newest [`KEPT`].

use std::collections::VecDeque;

use super::Report;
use super::lineup::LATE;
use crate::proto::sender::SendError;

/// Reports kept, the newest.
pub const KEPT: usize = 1024;

/// True when `r` is a stream's file that gave way to a newer one past its deadline.
pub fn gave_way(r: &Report) -> bool {
    r.result
        .as_ref()
        .is_err_and(|e| *e == SendError::Abandoned(LATE.to_owned()).to_string())
}

/// Every file's end, counted, and the newest reports.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    newest: VecDeque<Report>,
    ended: usize,
    delivered: usize,
    gave_way: usize,
}

impl Reports {
    /// One more file ended.
    pub fn push(&mut self, r: Report) {
        self.ended += 1;
        self.delivered += usize::from(r.result.is_ok());
        self.gave_way += usize::from(gave_way(&r));
        if self.newest.len() == KEPT {
            self.newest.pop_front();
        }
        self.newest.push_back(r);
    }

    /// Files ended, delivered or not.
    pub fn len(&self) -> usize {
        self.ended
    }

    /// True when no file ended.
    pub fn is_empty(&self) -> bool {
        self.ended == 0
    }

    /// Files the receiver verified.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// Files of a stream that gave way to a newer one past their deadline.
    pub fn gave_way(&self) -> usize {
        self.gave_way
    }

    /// The newest report.
    pub fn last(&self) -> Option<&Report> {
        self.newest.back()
    }

    /// The reports kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Report> {
        self.newest.iter()
    }
}

impl IntoIterator for Reports {
    type Item = Report;
    type IntoIter = std::collections::vec_deque::IntoIter<Report>;

    fn into_iter(self) -> Self::IntoIter {
        self.newest.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Direction, Report};
    use crate::proto::sender::{Sender, SenderConfig};

    fn report(id: u64, result: Result<(), String>) -> Report {
        Report {
            id,
            direction: Direction::Send,
            peer: "127.0.0.1:7878".parse().expect("addr"),
            offer: Sender::offer_for(&SenderConfig::default(), "x.png", b"x", "", None),
            path: None,
            stats: Default::default(),
            duration: Default::default(),
            result,
            ends_session: false,
        }
    }

    #[test]
    fn every_end_is_counted_and_only_the_newest_reports_are_kept() {
        let mut r = Reports::default();
        let late = Err(SendError::Abandoned(LATE.to_owned()).to_string());
        for id in 0..(KEPT as u64 + 10) {
            let result = match id % 3 {
                0 => Ok(()),
                1 => late.clone(),
                _ => Err("receiver could not store the file".to_owned()),
            };
            r.push(report(id, result));
        }
        let n = KEPT + 10;
        assert_eq!(r.len(), n);
        assert_eq!(r.delivered(), n.div_ceil(3));
        assert_eq!(r.gave_way(), (n + 1) / 3);
        assert_eq!(r.iter().count(), KEPT);
        assert_eq!(r.iter().next().map(|r| r.id), Some(10));
        assert_eq!(r.last().map(|r| r.id), Some(n as u64 - 1));
    }
}
