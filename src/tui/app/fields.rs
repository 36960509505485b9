//! The Connection pane's text fields, edited as a form: on a text row, typing edits it (no
//! key typed there is lost or taken for a command), with a real cursor (tui-input: ←/→,
//! Home/End, Ctrl-U, Ctrl-W, Ctrl-K) and pasting; ↑/↓ finish the field and move on, Enter,
//! Tab and Esc finish it. Ctrl-R shows the passphrase in clear, or masks it again.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

use super::{App, FIELDS, Field, Role};

/// Longest text a field takes.
pub const FIELD_MAX: usize = 256;

impl Field {
    /// True for the rows that hold text the user types.
    pub fn is_text(self, role: Role) -> bool {
        match self {
            Field::Address | Field::Passphrase => true,
            // A sender writes nothing: its row shows `-`.
            Field::OutDir => role == Role::Receive,
            Field::Role | Field::Action => false,
        }
    }
}

impl App {
    fn field_text(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Address => Some(&mut self.address),
            Field::Passphrase => Some(&mut self.passphrase),
            Field::OutDir => Some(&mut self.out_dir),
            Field::Role | Field::Action => None,
        }
    }

    /// Starts editing the selected field, the cursor at its end.
    pub(super) fn begin_edit(&mut self) {
        if !self.field.is_text(self.role) || self.busy() {
            return;
        }
        let value = self.field_text().map(|t| t.clone()).unwrap_or_default();
        if self.field == Field::Passphrase && self.passphrase_generated {
            // A generated phrase is the receiver's to read out, not to edit in place.
            self.passphrase_generated = false;
        }
        self.input = Input::new(value);
        self.editing = true;
    }

    /// A key on a text row that is not being edited: a printable character starts editing
    /// with it. True when the key was taken.
    pub(super) fn type_into_field(&mut self, k: &KeyEvent) -> bool {
        let printable = matches!(k.code, KeyCode::Char(_))
            && !k
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if !printable || !self.field.is_text(self.role) || self.busy() {
            return false;
        }
        self.begin_edit();
        self.edit(*k);
        true
    }

    /// A key while editing.
    pub(super) fn edit(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Enter | KeyCode::Esc | KeyCode::Tab | KeyCode::BackTab => {
                self.editing = false;
            }
            KeyCode::Up | KeyCode::Down => {
                self.editing = false;
                let idx = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
                let next = if k.code == KeyCode::Up {
                    idx.saturating_sub(1)
                } else {
                    (idx + 1).min(FIELDS.len() - 1)
                };
                self.field = FIELDS[next];
            }
            KeyCode::Char('r') if ctrl => self.reveal = !self.reveal,
            _ => {
                let full = self.input.value().chars().count() >= FIELD_MAX;
                if !(full && matches!(k.code, KeyCode::Char(_))) {
                    self.input.handle_event(&TermEvent::Key(k));
                }
                self.store_input();
            }
        }
    }

    /// Pasted text: into the field being edited (line breaks dropped), else nowhere, so a
    /// paste can never be read as commands.
    pub(super) fn paste(&mut self, text: &str) {
        if !self.editing {
            return;
        }
        for c in text.chars().filter(|c| !c.is_control()) {
            if self.input.value().chars().count() >= FIELD_MAX {
                break;
            }
            self.input.handle(InputRequest::InsertChar(c));
        }
        self.store_input();
    }

    fn store_input(&mut self) {
        let value = self.input.value().to_owned();
        if let Some(text) = self.field_text() {
            *text = value;
        }
        if self.field == Field::Passphrase {
            self.passphrase_generated = false;
        }
    }
}
