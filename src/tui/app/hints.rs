//! The keys the screen offers now, gathered from the components: each names its own, and
//! App adds the global ones.

use super::{App, ConnState, Pane, Role};

impl App {
    /// The keys that matter now, most useful first: the popup's, the edited field's, or
    /// the focused component's, then the global ones the state allows. The footer and the
    /// head of the help are drawn from it.
    pub fn hints(&self) -> Vec<(&'static str, String)> {
        let s = |t: &str| t.to_owned();
        if self.popups.confirm_quit {
            return self.popups.hints();
        }
        if self.form.editing {
            return self.form.editing_hints();
        }
        let mut h = match self.focus {
            Pane::Connection => self.form.hints(self.busy()),
            Pane::Files if self.form.role == Role::Receive => self.transfers.received_hints(),
            Pane::Files => self.browser.hints(),
            Pane::Chunks => self.log.hints(),
            Pane::Stats | Pane::Preview => self.transfers.hints(),
        };
        match &self.state {
            ConnState::Listening(_) => h.push(("x", s("stop listening"))),
            ConnState::Handshaking(_) | ConnState::Connected(_) => {
                h.push(("x", s("cancel send")));
                h.push(("c", s("cancel file")));
            }
            _ => {}
        }
        if !self.error_text().is_empty() {
            h.push(("e", s("full error")));
        }
        h.extend([("Tab", s("next pane")), ("?", s("help")), ("q", s("quit"))]);
        h
    }
}
