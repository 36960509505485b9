//! Clicks and the wheel: what a pointer event means where it landed (the view finds the pane
//! and row; the app decides).

use super::{App, Command, Pane, Role};

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
        if self.popups.help {
            self.popups.help = false;
            return Vec::new();
        }
        self.form.editing = false;
        self.focus = hit.pane;
        let Some(row) = hit.row.map(usize::from) else {
            return Vec::new();
        };
        match (hit.pane, self.form.role) {
            (Pane::Connection, _) => {
                let ask = self.form.click(row, self.busy());
                return self.on_ask(ask);
            }
            (Pane::Files, Role::Send) => return self.browser.click(row, hit.rows),
            (Pane::Files, Role::Receive) => {
                if let Some(id) = self.transfers.received_at(row, hit.rows) {
                    return self.show_transfer(id);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_wheel(&mut self, hit: Hit, down: bool) {
        match (hit.pane, self.form.role) {
            (Pane::Chunks, _) => self.log.wheel(down),
            (Pane::Files, Role::Send) => self.browser.wheel(down),
            _ => {}
        }
    }
}
