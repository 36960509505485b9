//! One table of keys: the event loop dispatches through it and the `?` help is drawn from it,
//! so the two can never disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for; the app decides what it means in the focused pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave udpix.
    Quit,
    /// Show or hide the key help.
    Help,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PrevPane,
    /// Move up in a list or field set.
    Up,
    /// Move down.
    Down,
    /// A page up in a list or the chunk log.
    PageUp,
    /// A page down.
    PageDown,
    /// Move left (or toggle a choice).
    Left,
    /// Move right (or toggle a choice).
    Right,
    /// Activate: edit a field, start, open a folder, send the selection.
    Enter,
    /// Cancel editing, close a popup, or go to the parent folder.
    Back,
    /// Mark or unmark a file for sending.
    Mark,
    /// Switch between Receive and Send.
    ToggleRole,
    /// Jump to the end of the chunk log and follow it.
    Follow,
    /// Show the focused pane alone on the whole screen, or all panes again.
    Zoom,
    /// Stop listening, or cancel the running send (the other side is told).
    Stop,
    /// Cancel one file of the running send (the highlighted one, or the one shown); the
    /// rest go on.
    CancelFile,
    /// Open the highlighted image (or the folder) with the desktop's viewer.
    Open,
    /// Show the full text of the error on screen.
    Details,
}

/// One row of the table: a key, its modifiers, the action, and the help text.
pub struct Binding {
    /// The key.
    pub code: KeyCode,
    /// Required modifiers (exact match, Shift ignored for characters).
    pub mods: KeyModifiers,
    /// What it does.
    pub action: Action,
    /// Shown in the help popup.
    pub help: &'static str,
}

const fn b(code: KeyCode, mods: KeyModifiers, action: Action, help: &'static str) -> Binding {
    Binding {
        code,
        mods,
        action,
        help,
    }
}

const NONE: KeyModifiers = KeyModifiers::NONE;

/// Every key udpix answers to.
pub const BINDINGS: &[Binding] = &[
    b(KeyCode::Char('q'), NONE, Action::Quit, "quit"),
    b(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
        Action::Quit,
        "quit",
    ),
    b(
        KeyCode::Char('?'),
        NONE,
        Action::Help,
        "show or hide this help",
    ),
    b(KeyCode::Tab, NONE, Action::NextPane, "next pane"),
    b(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
        Action::PrevPane,
        "previous pane",
    ),
    b(KeyCode::Up, NONE, Action::Up, "move up / scroll up"),
    b(KeyCode::Char('k'), NONE, Action::Up, "move up / scroll up"),
    b(KeyCode::Down, NONE, Action::Down, "move down / scroll down"),
    b(
        KeyCode::Char('j'),
        NONE,
        Action::Down,
        "move down / scroll down",
    ),
    b(
        KeyCode::PageUp,
        NONE,
        Action::PageUp,
        "a page up (file list, chunk log)",
    ),
    b(
        KeyCode::PageDown,
        NONE,
        Action::PageDown,
        "a page down (file list, chunk log)",
    ),
    b(
        KeyCode::Left,
        NONE,
        Action::Left,
        "left / parent folder / toggle role",
    ),
    b(
        KeyCode::Char('h'),
        NONE,
        Action::Left,
        "left / parent folder / toggle role",
    ),
    b(
        KeyCode::Right,
        NONE,
        Action::Right,
        "right / open folder / toggle role",
    ),
    b(
        KeyCode::Char('l'),
        NONE,
        Action::Right,
        "right / open folder / toggle role",
    ),
    b(
        KeyCode::Enter,
        NONE,
        Action::Enter,
        "edit field, listen/connect, open folder, send",
    ),
    b(
        KeyCode::Esc,
        NONE,
        Action::Back,
        "stop editing, close popup, parent folder",
    ),
    b(
        KeyCode::Char(' '),
        NONE,
        Action::Mark,
        "mark or unmark a file to send",
    ),
    b(
        KeyCode::Char('x'),
        NONE,
        Action::Stop,
        "stop listening / cancel the send, telling the peer",
    ),
    b(
        KeyCode::Char('c'),
        NONE,
        Action::CancelFile,
        "cancel one file of the send, the rest go on",
    ),
    b(
        KeyCode::Char('o'),
        NONE,
        Action::Open,
        "open the image (or folder) in the desktop's viewer",
    ),
    b(
        KeyCode::Char('e'),
        NONE,
        Action::Details,
        "the error on screen in full",
    ),
    b(
        KeyCode::Char('r'),
        NONE,
        Action::ToggleRole,
        "switch Receive / Send",
    ),
    b(
        KeyCode::Char('z'),
        NONE,
        Action::Zoom,
        "focused pane alone on the screen, or all panes",
    ),
    b(
        KeyCode::Char('G'),
        NONE,
        Action::Follow,
        "chunk log: jump to the end and follow",
    ),
    b(
        KeyCode::End,
        NONE,
        Action::Follow,
        "chunk log: jump to the end and follow",
    ),
];

/// The action bound to `key`, if any.
pub fn dispatch(key: &KeyEvent) -> Option<Action> {
    let mods = key.modifiers - KeyModifiers::SHIFT;
    BINDINGS
        .iter()
        .find(|b| {
            b.code == key.code && (b.mods - KeyModifiers::SHIFT) == mods
                || matches!((b.code, key.code), (KeyCode::BackTab, KeyCode::BackTab))
        })
        .map(|b| b.action)
}

/// A key's name as the help shows it.
pub fn key_name(b: &Binding) -> String {
    let key = match b.code {
        KeyCode::Char(' ') => "Space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".to_owned(),
        KeyCode::BackTab => "Shift-Tab".to_owned(),
        KeyCode::Up => "↑".to_owned(),
        KeyCode::Down => "↓".to_owned(),
        KeyCode::Left => "←".to_owned(),
        KeyCode::Right => "→".to_owned(),
        KeyCode::Enter => "Enter".to_owned(),
        KeyCode::Esc => "Esc".to_owned(),
        KeyCode::End => "End".to_owned(),
        KeyCode::PageUp => "PgUp".to_owned(),
        KeyCode::PageDown => "PgDn".to_owned(),
        other => format!("{other:?}"),
    };
    if b.mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{key}")
    } else {
        key
    }
}

/// Help rows: all keys of an action joined, in table order, one row per action.
pub fn help_rows() -> Vec<(String, &'static str)> {
    let mut rows: Vec<(String, &'static str, Action)> = Vec::new();
    for b in BINDINGS {
        match rows.iter_mut().find(|r| r.2 == b.action) {
            Some(r) => r.0 = format!("{} {}", r.0, key_name(b)),
            None => rows.push((key_name(b), b.help, b.action)),
        }
    }
    rows.into_iter().map(|(k, h, _)| (k, h)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_help_row_dispatches() {
        for b in BINDINGS {
            let ev = KeyEvent::new(b.code, b.mods);
            assert_eq!(dispatch(&ev), Some(b.action), "{}", key_name(b));
        }
        assert!(help_rows().iter().any(|(k, _)| k.contains("Ctrl-c")));
    }
}
