//! Clicks and the wheel: what a pointer event means where it landed (the view finds the pane
//! and row; the app decides).

use super::{App, Command, FIELDS, Field, Pane, Role};

/// Where a mouse event landed, as the view laid the screen out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The pane under the pointer.
    pub pane: Pane,
    /// The row inside the pane's border, `None` on the border itself.
    pub row: Option<u16>,
    /// Rows inside the border.
    pub rows: u16,
}

/// Rows the mouse wheel moves a list or the log per notch.
pub const WHEEL: usize = 3;

impl App {
    pub(super) fn on_click(&mut self, hit: Hit) -> Vec<Command> {
        if self.show_help {
            self.show_help = false;
            return Vec::new();
        }
        self.editing = false;
        self.focus = hit.pane;
        let Some(row) = hit.row.map(usize::from) else {
            return Vec::new();
        };
        match (hit.pane, self.role) {
            (Pane::Connection, _) => match FIELDS.get(row) {
                Some(Field::Role) => {
                    self.field = Field::Role;
                    self.toggle_role();
                }
                Some(Field::Action) => {
                    self.field = Field::Action;
                    return self.start();
                }
                Some(f) => self.field = *f,
                None => {}
            },
            (Pane::Files, Role::Send) => {
                // The list scrolls just enough to show the cursor (as ratatui draws it).
                let first = self
                    .selected
                    .saturating_sub(usize::from(hit.rows).saturating_sub(1));
                let index = first + row;
                if let Some(e) = self.entries.get(index) {
                    // A second click on a folder opens it; files are marked with Space.
                    if index == self.selected && e.is_dir {
                        let path = e.path.clone();
                        return self.enter_dir(path);
                    }
                    self.selected = index;
                }
            }
            (Pane::Files, Role::Receive) => {
                // Scrolled as the list draws it: just enough to show the cursor.
                let first = self
                    .received_cursor()
                    .unwrap_or(0)
                    .saturating_sub(usize::from(hit.rows).saturating_sub(1));
                let id = self.received_ids().get(first + row).copied();
                if let Some(id) = id {
                    return self.show_transfer(id);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_wheel(&mut self, hit: Hit, down: bool) {
        match (hit.pane, self.role) {
            (Pane::Chunks, _) => {
                let oldest = self.log.len().saturating_sub(1);
                self.log_scroll = if down {
                    self.log_scroll.saturating_sub(WHEEL)
                } else {
                    (self.log_scroll + WHEEL).min(oldest)
                };
            }
            (Pane::Files, Role::Send) if !self.entries.is_empty() => {
                self.selected = if down {
                    (self.selected + WHEEL).min(self.entries.len() - 1)
                } else {
                    self.selected.saturating_sub(WHEEL)
                };
            }
            _ => {}
        }
    }
}
