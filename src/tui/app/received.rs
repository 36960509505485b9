//! The Files pane in the Receive role: the list of received images. Its cursor is the
//! transfer shown in Stats and Preview, drawn as `▸`, so what Enter or `o` acts on is always
//! on screen.

use std::path::PathBuf;

use super::{App, Command, Direction, PAGE, TransferId, Transfers};
use crate::tui::keymap::Action;

/// What a key in the received list asks for.
pub(super) enum Picked {
    /// Show this transfer.
    Show(TransferId),
    /// Open this saved image, or (`None`) the folder images go to.
    Open(Option<PathBuf>),
    /// Nothing.
    Nothing,
}

impl Transfers {
    /// Received transfers in list order (oldest first).
    pub fn received_ids(&self) -> Vec<TransferId> {
        self.by_id
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

    /// The transfer on the list's `row` of `rows`, scrolled as the list draws it: just
    /// enough to show the cursor.
    pub(super) fn received_at(&self, row: usize, rows: u16) -> Option<TransferId> {
        let first = self
            .received_cursor()
            .unwrap_or(0)
            .saturating_sub(usize::from(rows).saturating_sub(1));
        self.received_ids().get(first + row).copied()
    }

    /// The received list's keys.
    pub(super) fn received_action(&self, action: Action) -> Picked {
        let ids = self.received_ids();
        let Some(last) = ids.len().checked_sub(1) else {
            return Picked::Nothing;
        };
        let at = self.received_cursor();
        let to = match action {
            Action::Up => at.map_or(last, |i| i.saturating_sub(1)),
            Action::Down => at.map_or(last, |i| (i + 1).min(last)),
            Action::PageUp => at.map_or(last, |i| i.saturating_sub(PAGE)),
            Action::PageDown => at.map_or(last, |i| (i + PAGE).min(last)),
            Action::Enter => at.unwrap_or(last),
            Action::Open => return Picked::Open(self.saved(at)),
            _ => return Picked::Nothing,
        };
        Picked::Show(ids[to])
    }

    /// Where the image on row `at` was saved, once it is.
    fn saved(&self, at: Option<usize>) -> Option<PathBuf> {
        at.and_then(|i| self.received_ids().get(i).copied())
            .and_then(|id| self.by_id.get(&id))
            .and_then(|t| t.path.clone())
    }

    /// The footer's keys when the Files pane has the focus in the Receive role.
    pub fn received_hints(&self) -> Vec<(&'static str, String)> {
        vec![
            ("↑ ↓", "received images".to_owned()),
            ("Enter", "preview".to_owned()),
            ("o", "open".to_owned()),
        ]
    }
}

impl App {
    /// The received list's keys: show a transfer, or open what it saved (else the folder).
    pub(super) fn received_action(&mut self, action: Action) -> Vec<Command> {
        match self.transfers.received_action(action) {
            Picked::Show(id) => self.show_transfer(id),
            Picked::Open(saved) => {
                let path = saved.unwrap_or_else(|| self.form.out_dir.clone().into());
                vec![Command::Open(path)]
            }
            Picked::Nothing => Vec::new(),
        }
    }
}
