//! The popups over the panes: the key help, the full error, and the question before quitting
//! mid-transfer. While one is open it takes the keys, so no pane acts on a key the user meant
//! for the popup.

use crossterm::event::{KeyCode, KeyEvent};

use crate::tui::keymap::{Action, dispatch};

/// Which popups are open, and how far the help (or error) is scrolled.
#[derive(Debug, Clone, Default)]
pub struct Popups {
    /// Help popup open.
    pub help: bool,
    /// The full-error popup open.
    pub error: bool,
    /// Lines the help is scrolled down.
    pub help_scroll: u16,
    /// Asking whether to quit while a transfer runs.
    pub confirm_quit: bool,
}

impl Popups {
    /// True while a popup (help, a question, an error) covers the panes.
    pub fn open(&self) -> bool {
        self.help || self.confirm_quit || self.error
    }

    /// Opens the help at its top.
    pub(super) fn show_help(&mut self) {
        self.help = true;
        self.help_scroll = 0;
    }

    /// A key while asked whether to quit: true when the answer is yes.
    pub(super) fn answer(&mut self, k: KeyEvent) -> bool {
        match k.code {
            KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => return true,
            KeyCode::Char('n' | 'N') | KeyCode::Esc => self.confirm_quit = false,
            _ => {}
        }
        false
    }

    /// A key while the help or the error is open: it scrolls, or closes them.
    pub(super) fn scroll_or_close(&mut self, k: &KeyEvent) {
        let action = dispatch(k);
        match action {
            Some(Action::Down) => self.help_scroll = self.help_scroll.saturating_add(1),
            Some(Action::PageDown) => self.help_scroll = self.help_scroll.saturating_add(10),
            Some(Action::Up) => self.help_scroll = self.help_scroll.saturating_sub(1),
            Some(Action::PageUp) => self.help_scroll = self.help_scroll.saturating_sub(10),
            _ => {}
        }
        let close = matches!(
            action,
            Some(Action::Help | Action::Back | Action::Quit | Action::Details | Action::Enter)
        );
        if close {
            self.help = false;
            self.error = false;
        }
    }

    /// The footer's keys while the quit question is open.
    pub fn hints(&self) -> Vec<(&'static str, String)> {
        vec![("y", "quit".to_owned()), ("n Esc", "go on".to_owned())]
    }
}
