//! The Files pane in the Receive role: the list of received images. Its cursor is the
//! transfer shown in Stats and Preview, drawn as `▸`, so what Enter or `o` acts on is always
//! on screen.

use super::{App, Command, Direction, PAGE, TransferId};
use crate::tui::keymap::Action;

impl App {
    /// Received transfers in list order (oldest first).
    pub fn received_ids(&self) -> Vec<TransferId> {
        self.transfers
            .iter()
            .filter(|(_, t)| t.direction == Direction::Receive)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The cursor's row in the received list, if it is on one.
    pub fn received_cursor(&self) -> Option<usize> {
        let current = self.current?;
        self.received_ids().iter().position(|id| *id == current)
    }

    pub(super) fn received_action(&mut self, action: Action) -> Vec<Command> {
        let ids = self.received_ids();
        let Some(last) = ids.len().checked_sub(1) else {
            return Vec::new();
        };
        let at = self.received_cursor();
        let to = match action {
            Action::Up => at.map_or(last, |i| i.saturating_sub(1)),
            Action::Down => at.map_or(last, |i| (i + 1).min(last)),
            Action::PageUp => at.map_or(last, |i| i.saturating_sub(PAGE)),
            Action::PageDown => at.map_or(last, |i| (i + PAGE).min(last)),
            Action::Enter => at.unwrap_or(last),
            Action::Open => return self.open_received(at),
            _ => return Vec::new(),
        };
        self.show_transfer(ids[to])
    }

    /// Opens the highlighted image once it is saved, else the folder images go to.
    fn open_received(&mut self, at: Option<usize>) -> Vec<Command> {
        let saved = at
            .and_then(|i| self.received_ids().get(i).copied())
            .and_then(|id| self.transfers.get(&id))
            .and_then(|t| t.path.clone());
        let path = saved.unwrap_or_else(|| self.out_dir.clone().into());
        vec![Command::Open(path)]
    }
}
