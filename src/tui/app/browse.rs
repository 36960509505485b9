//! The Files pane in the Send role previews the highlighted image before it is sent. The
//! decode waits until the cursor rests a moment, so holding a key down through a folder of
//! large photos decodes only where it stops.

use std::path::PathBuf;
use std::time::Duration;

use super::{App, Command, Preview, Role, TransferId};

/// How long the cursor rests on an image before it is decoded.
pub const BROWSE_SETTLE: Duration = Duration::from_millis(120);
/// Ids of browse previews start here, apart from transfers' ids.
pub const BROWSE_IDS: TransferId = 1 << 50;

impl App {
    /// The cursor moved: preview the image under it once it rests there.
    pub(super) fn browse_moved(&mut self) {
        if self.role != Role::Send {
            return;
        }
        self.browse = self
            .entries
            .get(self.selected)
            .filter(|e| !e.is_dir)
            .map(|e| (e.path.clone(), self.now));
    }

    /// On each tick: the decode of a rested-on image, once.
    pub(super) fn browse_tick(&mut self) -> Vec<Command> {
        let Some((path, since)) = &self.browse else {
            return Vec::new();
        };
        if self.now.saturating_sub(*since) < BROWSE_SETTLE {
            return Vec::new();
        }
        let path: PathBuf = path.clone();
        self.browse = None;
        if self.preview.path.as_ref() == Some(&path) {
            return Vec::new();
        }
        let id = self.next_browse_id;
        self.next_browse_id += 1;
        self.preview = Preview {
            title: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            id: Some(id),
            path: Some(path.clone()),
            ..Preview::default()
        };
        vec![Command::LoadPreview(id, path)]
    }
}
