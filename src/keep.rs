//! What a receiver keeps of a stream of images (`udpix recv --latest NAME --keep N`): a
//! fixed-name copy of the newest verified image, replaced atomically so a web page or an
//! image viewer watching it never reads half a file, and only the newest N images this
//! run received.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

/// Whether `name` can be the fixed name: one plain file name in the output folder.
pub fn check_latest_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && !name.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(format!(
            "--latest takes a plain file name in --out (like latest.jpg), not {name:?}"
        ))
    }
}

/// The receiver's keeping of its verified images.
#[derive(Debug)]
pub struct Keeper {
    dir: PathBuf,
    latest: Option<String>,
    keep: Option<usize>,
    /// The images this run kept, oldest first: at most `keep` of them.
    kept: VecDeque<PathBuf>,
}

impl Keeper {
    /// Keeps in `dir` a copy of the newest image as `latest`, and at most `keep` images.
    pub fn new(dir: &Path, latest: Option<String>, keep: Option<usize>) -> Self {
        Self {
            dir: dir.to_owned(),
            latest,
            keep,
            kept: VecDeque::new(),
        }
    }

    /// An image was verified and saved at `path`: it becomes the latest, and the oldest
    /// beyond `keep` are deleted. Returns the paths deleted.
    pub fn saved(&mut self, path: &Path) -> io::Result<Vec<PathBuf>> {
        if let Some(name) = &self.latest {
            replace_with(&self.dir.join(name), path)?;
        }
        let Some(keep) = self.keep else {
            return Ok(Vec::new());
        };
        self.kept.push_back(path.to_owned());
        let mut gone = Vec::new();
        while self.kept.len() > keep {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            match std::fs::remove_file(&old) {
                Ok(()) => gone.push(old),
                // Moved or deleted by someone else: nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(gone)
    }
}

/// Puts a copy of `source` at `target` in one step: a hard link (or, where the filesystem
/// has none, a copy) under a hidden temporary name beside it, renamed over `target`.
fn replace_with(target: &Path, source: &Path) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".udpix-latest-")
        .tempfile_in(dir)?
        .into_temp_path();
    // The temporary name is ours; a link needs it free.
    std::fs::remove_file(&tmp)?;
    if std::fs::hard_link(source, &tmp).is_err() {
        std::fs::copy(source, &tmp)?;
    }
    tmp.persist(target).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_is_replaced_whole_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut k = Keeper::new(dir.path(), Some("latest.png".into()), Some(2));
        let mut saved = Vec::new();
        for i in 0..4u8 {
            let p = dir.path().join(format!("img{i}.png"));
            std::fs::write(&p, vec![i; 100 + usize::from(i)]).expect("write");
            let gone = k.saved(&p).expect("kept");
            saved.push(p);
            let latest = std::fs::read(dir.path().join("latest.png")).expect("latest");
            assert_eq!(latest, vec![i; 100 + usize::from(i)]);
            let i = usize::from(i);
            let expect = if i >= 2 {
                vec![saved[i - 2].clone()]
            } else {
                Vec::new()
            };
            assert_eq!(gone, expect, "after img{i}");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["img2.png", "img3.png", "latest.png"],
            "no temp file left"
        );
    }

    #[test]
    fn the_latest_name_is_a_plain_file_name() {
        assert!(check_latest_name("latest.jpg").is_ok());
        for bad in ["", ".", "..", "a/b.png", "../x.png", "x\n.png"] {
            assert!(check_latest_name(bad).is_err(), "{bad:?}");
        }
    }
}
