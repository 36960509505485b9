//! The Preview pane's content: a transfer's image (its chunk map until it is verified), or
//! the image the file browser rests on. Every new subject starts from scratch, so nothing of
//! the image shown before lingers.

use std::path::PathBuf;
use std::sync::Arc;

use image::RgbImage;

use super::TransferId;
use crate::engine::ChunkWhat;
use crate::tui::chunkmap::ChunkMap;
use crate::tui::halfblock::FitCache;

/// The image pane's content.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// Caption.
    pub title: String,
    /// The decoded image (at most the preview size; fitted to the pane when drawn).
    pub image: Option<Arc<RgbImage>>,
    /// The image as last fitted into the pane in half blocks.
    pub fitted: FitCache,
    /// Which transfer (or browse preview) it belongs to.
    pub id: Option<TransferId>,
    /// The file it shows, when it came from the file browser.
    pub path: Option<PathBuf>,
    /// Receive side before verification: the chunks seen so far.
    pub chunks: Option<ChunkMap>,
}

impl Preview {
    /// A transfer's preview; `chunks` (its count) draws a chunk map until the image comes.
    pub(super) fn of_transfer(id: TransferId, title: String, chunks: Option<u32>) -> Self {
        Preview {
            title,
            id: Some(id),
            chunks: chunks.map(ChunkMap::new),
            ..Preview::default()
        }
    }

    /// A preview of the file the browser rests on.
    pub(super) fn of_file(id: TransferId, path: PathBuf) -> Self {
        Preview {
            title: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            id: Some(id),
            path: Some(path),
            ..Preview::default()
        }
    }

    /// A chunk of transfer `id` arrived: marked on its chunk map, if that is shown.
    pub(super) fn chunk(&mut self, id: TransferId, chunk: u32, what: ChunkWhat) {
        if let Some(seen) = self.chunks.as_mut()
            && self.id == Some(id)
            && matches!(what, ChunkWhat::Received | ChunkWhat::Recovered)
        {
            seen.insert(chunk);
        }
    }

    /// An image decoded for preview `id`: shown, if that is still the subject.
    pub(super) fn decoded(&mut self, id: TransferId, img: RgbImage) {
        if self.id == Some(id) {
            self.image = Some(Arc::new(img));
            self.chunks = None;
        }
    }
}
