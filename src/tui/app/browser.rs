//! The Files pane in the Send role: a folder's images, the cursor, and the files marked to
//! send. It also previews the highlighted image before it is sent; the decode waits until
//! the cursor rests a moment, so holding a key down through a folder of large photos decodes
//! only where it stops.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::{Command, PAGE, TransferId, WHEEL};
use crate::tui::keymap::Action;
use crate::tui::listing::Info;

/// A file browser entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full path.
    pub path: PathBuf,
    /// Shown name.
    pub name: String,
    /// A folder (or `..`).
    pub is_dir: bool,
    /// Size in bytes (files).
    pub size: u64,
    /// Format and dimensions, once read off the UI thread.
    pub info: Option<(String, Option<(u32, u32)>)>,
}

/// How long the cursor rests on an image before it is decoded.
pub const BROWSE_SETTLE: Duration = Duration::from_millis(120);
/// Ids of browse previews start here, apart from transfers' ids.
pub const BROWSE_IDS: TransferId = 1 << 50;

/// The folder browsed, its listing, the cursor and the marks.
#[derive(Debug, Clone)]
pub struct FileBrowser {
    /// Folder being browsed.
    pub cwd: PathBuf,
    /// Its entries: folders first, then images.
    pub entries: Vec<Entry>,
    /// Cursor in the file list.
    pub selected: usize,
    /// Files marked for sending.
    pub marked: BTreeSet<PathBuf>,
    /// The cursor rests on this image since then: previewed once it settles.
    resting: Option<(PathBuf, Duration)>,
    /// Id for the next browse preview.
    next_preview_id: TransferId,
}

/// What a key in the browser asks of the app.
pub(super) enum Browsed {
    /// Done here; these are for the runtime.
    Done(Vec<Command>),
    /// Send the marked files.
    Send,
}

impl FileBrowser {
    /// A browser of `cwd`, its listing not read yet.
    pub(super) fn new(cwd: PathBuf) -> Self {
        FileBrowser {
            cwd,
            entries: Vec::new(),
            selected: 0,
            marked: BTreeSet::new(),
            resting: None,
            next_preview_id: BROWSE_IDS,
        }
    }

    /// A listing arrived: kept if it is still the folder browsed. True when it was.
    pub(super) fn listed(&mut self, path: PathBuf, entries: Vec<Entry>) -> bool {
        if path != self.cwd {
            return false;
        }
        self.entries = entries;
        self.selected = self.selected.min(self.entries.len().saturating_sub(1));
        true
    }

    /// Format and dimensions of some of the folder's images.
    pub(super) fn info(&mut self, path: PathBuf, infos: Vec<(PathBuf, Info)>) {
        if path != self.cwd {
            return;
        }
        // Batches come in list order: look from where the last one ended.
        let mut at = 0;
        for (p, info) in infos {
            let n = self.entries.len();
            if let Some(i) = (0..n)
                .map(|k| (at + k) % n)
                .find(|&i| self.entries[i].path == p)
            {
                self.entries[i].info = Some(info);
                at = i;
            }
        }
    }

    /// The Files pane's keys.
    pub(super) fn action(&mut self, action: Action) -> Browsed {
        let Some(entry) = self.entries.get(self.selected).cloned() else {
            return Browsed::Done(Vec::new());
        };
        let last = self.entries.len() - 1;
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(PAGE),
            Action::PageDown => self.selected = (self.selected + PAGE).min(last),
            Action::Left | Action::Back => {
                if let Some(parent) = self.cwd.parent().map(PathBuf::from) {
                    return Browsed::Done(self.enter_dir(parent));
                }
            }
            Action::Right | Action::Enter if entry.is_dir => {
                return Browsed::Done(self.enter_dir(entry.path));
            }
            Action::Mark if !entry.is_dir => {
                if !self.marked.remove(&entry.path) {
                    self.marked.insert(entry.path);
                }
                self.selected = (self.selected + 1).min(last);
            }
            Action::Enter => {
                if self.marked.is_empty() {
                    self.marked.insert(entry.path);
                }
                return Browsed::Send;
            }
            Action::Open => return Browsed::Done(vec![Command::Open(entry.path)]),
            _ => {}
        }
        Browsed::Done(Vec::new())
    }

    fn enter_dir(&mut self, path: PathBuf) -> Vec<Command> {
        self.cwd = path.clone();
        self.selected = 0;
        self.entries.clear();
        vec![Command::ReadDir(path)]
    }

    /// A click on the list's `row` of `rows`: the cursor goes there; a second click on a
    /// folder opens it (files are marked with Space).
    pub(super) fn click(&mut self, row: usize, rows: u16) -> Vec<Command> {
        // The list scrolls just enough to show the cursor (as ratatui draws it).
        let first = self
            .selected
            .saturating_sub(usize::from(rows).saturating_sub(1));
        let index = first + row;
        if let Some(e) = self.entries.get(index) {
            if index == self.selected && e.is_dir {
                let path = e.path.clone();
                return self.enter_dir(path);
            }
            self.selected = index;
        }
        Vec::new()
    }

    /// A wheel notch over the list: `down` towards later entries.
    pub(super) fn wheel(&mut self, down: bool) {
        if self.entries.is_empty() {
            return;
        }
        self.selected = if down {
            (self.selected + WHEEL).min(self.entries.len() - 1)
        } else {
            self.selected.saturating_sub(WHEEL)
        };
    }

    /// The cursor moved at `now`: preview the image under it once it rests there.
    pub(super) fn rest(&mut self, now: Duration) {
        self.resting = self
            .entries
            .get(self.selected)
            .filter(|e| !e.is_dir)
            .map(|e| (e.path.clone(), now));
    }

    /// The image the cursor has rested on long enough, with an id for its preview, once;
    /// none if it is the one `shown` already.
    pub(super) fn settled(
        &mut self,
        now: Duration,
        shown: Option<&PathBuf>,
    ) -> Option<(TransferId, PathBuf)> {
        let (path, since) = self.resting.as_ref()?;
        if now.saturating_sub(*since) < BROWSE_SETTLE {
            return None;
        }
        let path = path.clone();
        self.resting = None;
        if shown == Some(&path) {
            return None;
        }
        let id = self.next_preview_id;
        self.next_preview_id += 1;
        Some((id, path))
    }

    /// The file under the cursor (not a folder).
    pub(super) fn highlighted(&self) -> Option<&std::path::Path> {
        self.entries
            .get(self.selected)
            .filter(|e| !e.is_dir)
            .map(|e| e.path.as_path())
    }

    /// The footer's keys when the Files pane has the focus in the Send role.
    pub fn hints(&self) -> Vec<(&'static str, String)> {
        let s = |t: &str| t.to_owned();
        vec![
            ("↑ ↓", s("move")),
            ("Space", s("mark")),
            ("Enter", s("send")),
            ("→ ←", s("folder in / up")),
            ("o", s("open")),
        ]
    }
}
