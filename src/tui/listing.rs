//! Folder listings for the Files pane, read off the UI thread: names and sizes first (one
//! `read_dir`, shown at once), then each file's format and dimensions from its first bytes,
//! in small batches so the first screenful fills in while a large folder is still being
//! read. Only the formats of [`crate::formats::DECODED`] are claimed, by content: a text
//! file named `notes.png` has no format, a PNG named `photo` is a PNG. A listing stops
//! reading as soon as the user moves to another folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::app::Entry;

/// Entries listed at most; a bigger folder shows its first ones.
pub const MAX_ENTRIES: usize = 5000;
/// Image headers read per batch sent to the UI.
pub const INFO_BATCH: usize = 16;

/// Format and dimensions of a file, as the Files pane shows them.
pub type Info = (String, Option<(u32, u32)>);

/// True for the file names the browser groups with the images: an extension of a format
/// udpix decodes. (Their labels still come from their content.)
pub fn is_image(path: &Path) -> bool {
    crate::formats::has_decoded_extension(path)
}

/// Lists a folder without opening any file: `..`, folders, files named as images, then other
/// files, each group by name; hidden entries left out. Every file's info is left to
/// [`read_infos`].
pub fn list_dir(path: &Path) -> Vec<Entry> {
    let mut dirs = Vec::new();
    let mut images = Vec::new();
    let mut others = Vec::new();
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten().take(MAX_ENTRIES) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let p = e.path();
            let meta = std::fs::metadata(&p).ok(); // follows symlinks, as a shell does
            let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
            let image = !is_dir && is_image(&p);
            let entry = Entry {
                path: p,
                name,
                is_dir,
                size: meta.as_ref().map_or(0, |m| m.len()),
                info: None,
            };
            match (is_dir, image) {
                (true, _) => dirs.push(entry),
                (false, true) => images.push(entry),
                (false, false) => others.push(entry),
            }
        }
    }
    for v in [&mut dirs, &mut images, &mut others] {
        v.sort_by_key(|e| e.name.to_lowercase());
    }
    let mut out = Vec::with_capacity(dirs.len() + images.len() + others.len() + 1);
    if let Some(parent) = path.parent() {
        out.push(Entry {
            path: parent.to_owned(),
            name: "..".to_owned(),
            is_dir: true,
            size: 0,
            info: None,
        });
    }
    out.extend(dirs);
    out.extend(images);
    out.extend(others);
    out
}

/// Format and dimensions from the file's first bytes, whatever its name says: a text file
/// named `notes.png` has no format, and only formats udpix decodes are named.
pub fn info_by_content(path: &Path) -> Info {
    crate::formats::info_path(path)
}

/// Reads the headers of the entries that still lack an info, in list order, handing them
/// over `INFO_BATCH` at a time; returns early (false) once `cancel` is set or `deliver`
/// reports the UI gone.
pub fn read_infos(
    entries: &[Entry],
    cancel: &AtomicBool,
    mut deliver: impl FnMut(Vec<(PathBuf, Info)>) -> bool,
) -> bool {
    let mut batch = Vec::with_capacity(INFO_BATCH);
    for e in entries.iter().filter(|e| !e.is_dir && e.info.is_none()) {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        batch.push((e.path.clone(), info_by_content(&e.path)));
        if batch.len() == INFO_BATCH && !deliver(std::mem::take(&mut batch)) {
            return false;
        }
    }
    batch.is_empty() || deliver(batch)
}

/// The cancel flag of the listing in progress; starting another cancels it.
#[derive(Debug, Default)]
pub struct Current(Option<Arc<AtomicBool>>);

impl Current {
    /// Cancels the previous listing and returns the new one's flag.
    pub fn replace(&mut self) -> Arc<AtomicBool> {
        if let Some(old) = self.0.take() {
            old.store(true, Ordering::Relaxed);
        }
        let flag = Arc::new(AtomicBool::new(false));
        self.0 = Some(flag.clone());
        flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32) {
        image::RgbImage::new(w, h).save(path).expect("write png");
    }

    #[test]
    fn lists_folders_then_images_then_others_and_reads_headers_in_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
        std::fs::write(dir.path().join(".hidden.png"), b"x").expect("write");
        for i in 0..40 {
            png(&dir.path().join(format!("img{i:02}.png")), i + 1, 2);
        }
        let entries = list_dir(dir.path());
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names[..3], ["..", "sub", "img00.png"]);
        assert_eq!(names.last(), Some(&"notes.txt"));
        assert!(!names.contains(&".hidden.png"));
        assert_eq!(entries.len(), 1 + 1 + 40 + 1);
        // Every file waits for its header to be read, whatever its name.
        assert!(entries.iter().all(|e| e.info.is_none()));

        let cancel = AtomicBool::new(false);
        let mut batches = Vec::new();
        assert!(read_infos(&entries, &cancel, |b| {
            batches.push(b);
            true
        }));
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [16, 16, 9]
        );
        assert_eq!(
            batches[2].last(),
            Some(&(dir.path().join("notes.txt"), (String::new(), None)))
        );
        assert_eq!(
            batches[0][3],
            (
                dir.path().join("img03.png"),
                ("png".to_owned(), Some((4, 2)))
            )
        );

        // Leaving the folder stops the reading at the next file.
        let mut seen = 0;
        let done = read_infos(&entries, &cancel, |b| {
            seen += b.len();
            cancel.store(true, Ordering::Relaxed);
            true
        });
        assert!(!done);
        assert_eq!(seen, INFO_BATCH);
    }

    #[test]
    fn a_file_is_labelled_by_its_content_not_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.png"), "only text, not an image\n").expect("write");
        // A PNG under a JPEG's name, and one with no extension.
        image::RgbImage::new(3, 2)
            .save_with_format(dir.path().join("photo.jpg"), image::ImageFormat::Png)
            .expect("write png");
        image::RgbImage::new(1, 4)
            .save_with_format(dir.path().join("scan"), image::ImageFormat::Png)
            .expect("write png");
        // A TIFF: image knows its magic bytes but udpix does not decode it.
        std::fs::write(
            dir.path().join("old.tiff"),
            b"MM\0*\0\0\0\x08\0\0\0\0\0\0\0\0",
        )
        .expect("write tiff");
        let entries = list_dir(dir.path());
        let cancel = AtomicBool::new(false);
        let mut infos = Vec::new();
        assert!(read_infos(&entries, &cancel, |b| {
            infos.extend(b);
            true
        }));
        infos.sort();
        assert_eq!(
            infos,
            [
                (dir.path().join("notes.png"), (String::new(), None)),
                (dir.path().join("old.tiff"), (String::new(), None)),
                (
                    dir.path().join("photo.jpg"),
                    ("png".to_owned(), Some((3, 2)))
                ),
                (dir.path().join("scan"), ("png".to_owned(), Some((1, 4)))),
            ]
        );
        // Grouped by name among the images only when the name is a decoded format's.
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["..", "notes.png", "photo.jpg", "old.tiff", "scan"]);
    }

    #[test]
    fn a_new_listing_cancels_the_previous_one() {
        let mut current = Current::default();
        let first = current.replace();
        let second = current.replace();
        assert!(first.load(Ordering::Relaxed));
        assert!(!second.load(Ordering::Relaxed));
    }
}
