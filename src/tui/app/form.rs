//! The Connection pane: role, address, passphrase and folder, edited as a form. On a text
//! row, typing edits it (no key typed there is lost or taken for a command), with a real
//! cursor (tui-input: ←/→, Home/End, Ctrl-U, Ctrl-W, Ctrl-K) and pasting; ↑/↓ finish the
//! field and move on, Enter, Tab and Esc finish it. Ctrl-R shows the passphrase in clear, or
//! masks it again. While an engine runs (`busy`) the fields are fixed.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

use super::{Role, Setup};
use crate::tui::keymap::Action;

/// Rows of the connection pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Receive or Send.
    Role,
    /// Listen address or receiver address.
    Address,
    /// The shared passphrase (masked).
    Passphrase,
    /// Where received images go.
    OutDir,
    /// The Listen / Connect button.
    Action,
}

const FIELDS: [Field; 5] = [
    Field::Role,
    Field::Address,
    Field::Passphrase,
    Field::OutDir,
    Field::Action,
];

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

/// The connection's settings and the state of their editing.
#[derive(Debug, Clone)]
pub struct ConnectionForm {
    /// Receive or Send.
    pub role: Role,
    /// Selected connection field.
    pub field: Field,
    /// True while a text field takes the keys.
    pub editing: bool,
    /// The field being edited, with its cursor.
    pub input: Input,
    /// Show the passphrase in clear (Ctrl-R).
    pub reveal: bool,
    /// Listen address (receive) or receiver address (send).
    pub address: String,
    /// The other role's address, swapped in when the role changes.
    pub other_address: String,
    /// Passphrase text (never drawn in clear except a generated one on the receiving side).
    pub passphrase: String,
    /// True when the passphrase was generated here (so it is shown to read out).
    pub passphrase_generated: bool,
    /// Run without login or encryption.
    pub insecure: bool,
    /// Output folder.
    pub out_dir: String,
}

/// What the form asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// Listen or connect with these settings.
    Start,
    /// Stop the engine.
    Stop,
}

impl ConnectionForm {
    /// The form as flags, config and defaults set it, its button selected.
    pub(super) fn new(setup: &Setup) -> Self {
        ConnectionForm {
            role: setup.role,
            field: Field::Action,
            editing: false,
            input: Input::default(),
            reveal: false,
            address: setup.address.clone(),
            other_address: setup.other_address.clone(),
            passphrase: setup.passphrase.clone().unwrap_or_default(),
            passphrase_generated: setup.generated,
            insecure: setup.insecure,
            out_dir: setup.out_dir.clone(),
        }
    }

    /// Switches Receive / Send, unless the engine runs in this role. Each role keeps its
    /// own address; a generated passphrase belongs to the receiver and goes.
    pub(super) fn toggle_role(&mut self, busy: bool) {
        if busy {
            return;
        }
        self.role = match self.role {
            Role::Receive => Role::Send,
            Role::Send => Role::Receive,
        };
        std::mem::swap(&mut self.address, &mut self.other_address);
        if self.passphrase_generated {
            self.passphrase.clear();
            self.passphrase_generated = false;
        }
    }

    /// A key on the pane before the key table: Ctrl-R, or typing into a text row. True when
    /// the key was taken.
    pub(super) fn key(&mut self, k: &KeyEvent, busy: bool) -> bool {
        if k.code == KeyCode::Char('r') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.reveal = !self.reveal;
            return true;
        }
        self.type_into_field(k, busy)
    }

    /// The pane's actions from the key table.
    pub(super) fn action(&mut self, action: Action, busy: bool) -> Option<Ask> {
        let idx = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
        match action {
            Action::Up => self.field = FIELDS[idx.saturating_sub(1)],
            Action::Down => self.field = FIELDS[(idx + 1).min(FIELDS.len() - 1)],
            Action::Left | Action::Right if self.field == Field::Role => self.toggle_role(busy),
            Action::Enter => match self.field {
                Field::Role => self.toggle_role(busy),
                Field::Action if busy => return Some(Ask::Stop),
                Field::Action => return Some(Ask::Start),
                _ => self.begin_edit(busy),
            },
            _ => {}
        }
        None
    }

    /// A click on the pane's `row`: selects it; the role row switches, the button starts.
    pub(super) fn click(&mut self, row: usize, busy: bool) -> Option<Ask> {
        match FIELDS.get(row) {
            Some(Field::Role) => {
                self.field = Field::Role;
                self.toggle_role(busy);
            }
            Some(Field::Action) => {
                self.field = Field::Action;
                return Some(Ask::Start);
            }
            Some(f) => self.field = *f,
            None => {}
        }
        None
    }

    /// The passphrase to start with, `None` without login. A receiver without one gets a
    /// generated one to read out; a sender cannot guess it: `Err`, the field selected.
    pub(super) fn login(&mut self) -> Result<Option<String>, String> {
        if self.insecure {
            return Ok(None);
        }
        if !crate::proto::crypto::normalize(&self.passphrase).is_empty() {
            return Ok(Some(self.passphrase.clone()));
        }
        if self.role == Role::Send {
            self.field = Field::Passphrase;
            return Err("enter the receiver's passphrase first".to_owned());
        }
        self.passphrase = crate::passphrase::generate();
        self.passphrase_generated = true;
        Ok(Some(self.passphrase.clone()))
    }

    fn field_text(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Address => Some(&mut self.address),
            Field::Passphrase => Some(&mut self.passphrase),
            Field::OutDir => Some(&mut self.out_dir),
            Field::Role | Field::Action => None,
        }
    }

    /// Starts editing the selected field, the cursor at its end.
    fn begin_edit(&mut self, busy: bool) {
        if !self.field.is_text(self.role) || busy {
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
    fn type_into_field(&mut self, k: &KeyEvent, busy: bool) -> bool {
        let printable = matches!(k.code, KeyCode::Char(_))
            && !k
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if !printable || !self.field.is_text(self.role) || busy {
            return false;
        }
        self.begin_edit(busy);
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

    /// The footer's keys while a field is edited.
    pub fn editing_hints(&self) -> Vec<(&'static str, String)> {
        let s = |t: &str| t.to_owned();
        let mut h = vec![
            ("Enter", s("done")),
            ("← → Home End", s("move")),
            ("Ctrl-U", s("clear")),
        ];
        if self.field == Field::Passphrase {
            h.push(("Ctrl-R", s(if self.reveal { "mask" } else { "show" })));
        }
        h.push(("↑ ↓", s("next field")));
        h
    }

    /// The footer's keys when the pane has the focus and no field is edited.
    pub fn hints(&self, busy: bool) -> Vec<(&'static str, String)> {
        let enter = match (self.field, self.role, busy) {
            (Field::Role, ..) => "switch role",
            (Field::Action, _, true) => "stop",
            (Field::Action, Role::Receive, false) => "listen",
            (Field::Action, Role::Send, false) => "connect & send",
            _ => "edit",
        };
        let mut h = vec![("↑ ↓", "field".to_owned()), ("Enter", enter.to_owned())];
        if self.field.is_text(self.role) && !busy {
            h.push(("type", "edit".to_owned()));
        }
        if self.field == Field::Passphrase {
            h.push((
                "Ctrl-R",
                if self.reveal { "mask" } else { "show" }.to_owned(),
            ));
        }
        h
    }
}
