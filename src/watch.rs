//! Watching a folder for new images (`udpix send --watch`): a camera or a script writes
//! files into it, and each one is given to the sender once its writer has finished with it
//! (its size and modification time stopped changing), in the order they appeared, without
//! sending half-written files or the ones that were there before.
//!
//! Polling, not inotify: it works the same on every filesystem (NFS, FUSE, bind mounts
//! into containers), and a camera's one image a second costs nothing to poll for.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

/// How often the folder is listed at most: a third of the settle time, so a file is given
/// soon after it settled, but never more often than this.
pub const MIN_POLL: Duration = Duration::from_millis(10);

/// How often the folder is listed at least.
pub const MAX_POLL: Duration = Duration::from_millis(100);

/// What a file looked like at one listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    size: u64,
    modified: Option<SystemTime>,
}

/// A file seen changing: what it last looked like, since when, and when it first appeared.
#[derive(Debug)]
struct Candidate {
    version: Version,
    since: Instant,
    appeared: u64,
}

/// The state of one watched folder: what was given already (or was there at the start),
/// and what is still being written. Both hold only names the folder still has, so memory
/// follows the folder's size, not the watch's length.
#[derive(Debug)]
pub struct FolderWatch {
    dir: PathBuf,
    settle: Duration,
    done: HashMap<OsString, Version>,
    writing: HashMap<OsString, Candidate>,
    appeared: u64,
}

impl FolderWatch {
    /// Starts watching `dir`: the files in it now are not new, unless they change later.
    pub fn new(dir: &Path, settle: Duration) -> std::io::Result<Self> {
        let done = list(dir)?.into_iter().collect();
        Ok(Self {
            dir: dir.to_owned(),
            settle,
            done,
            writing: HashMap::new(),
            appeared: 0,
        })
    }

    /// One look at the folder at `now`: the files written since, in the order they first
    /// appeared (a file that changes after it was given is given again, as a new image).
    pub fn scan(&mut self, now: Instant) -> std::io::Result<Vec<PathBuf>> {
        let listed: HashMap<OsString, Version> = list(&self.dir)?.into_iter().collect();
        self.done.retain(|name, _| listed.contains_key(name));
        self.writing.retain(|name, _| listed.contains_key(name));
        let mut new = Vec::new();
        for (name, version) in &listed {
            if self.done.get(name) == Some(version) {
                continue;
            }
            match self.writing.get_mut(name) {
                Some(c) if c.version == *version => {}
                Some(c) => {
                    c.version = *version;
                    c.since = now;
                }
                None => new.push((version.modified, name.clone(), *version)),
            }
        }
        // Several new in one listing: the one written first came first (names break ties
        // of a coarse clock).
        new.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, name, version) in new {
            self.appeared += 1;
            let c = Candidate {
                version,
                since: now,
                appeared: self.appeared,
            };
            self.writing.insert(name, c);
        }
        let mut ready: Vec<(u64, OsString)> = self
            .writing
            .iter()
            .filter(|(_, c)| c.version.size > 0 && now.duration_since(c.since) >= self.settle)
            .map(|(name, c)| (c.appeared, name.clone()))
            .collect();
        ready.sort();
        Ok(ready
            .into_iter()
            .map(|(_, name)| {
                if let Some(c) = self.writing.remove(&name) {
                    self.done.insert(name.clone(), c.version);
                }
                self.dir.join(name)
            })
            .collect())
    }
}

/// The regular files of `dir` worth sending, with what they look like now. Hidden files and
/// the names writers and downloaders give files in progress are left out: such a file is
/// renamed once complete, and then it counts.
fn list(dir: &Path) -> std::io::Result<Vec<(OsString, Version)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if in_progress_name(&name.to_string_lossy()) {
            continue;
        }
        // Followed, so a link to an image counts; gone meanwhile is no error.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() {
            let version = Version {
                size: meta.len(),
                modified: meta.modified().ok(),
            };
            files.push((name, version));
        }
    }
    Ok(files)
}

/// Hidden, or named as a file still being written (`x.jpg.part`, `x.tmp`, `x~`).
fn in_progress_name(name: &str) -> bool {
    const SUFFIXES: [&str; 7] = [
        "~",
        ".tmp",
        ".temp",
        ".part",
        ".partial",
        ".crdownload",
        ".swp",
    ];
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// `files` as a stream, each with its id: one every `pace` (as a camera takes frames; a
/// tick missed while the sender is busy is skipped, not made up), or as fast as they are
/// taken; over and over with `repeat`, until the receiving end is dropped.
pub fn paced(
    files: Vec<PathBuf>,
    pace: Option<Duration>,
    repeat: bool,
) -> mpsc::Receiver<(u64, PathBuf)> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut tick = pace.map(|p| {
            let mut t = tokio::time::interval(p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        });
        let rounds = if repeat { usize::MAX } else { 1 };
        let all = files
            .iter()
            .cycle()
            .take(files.len().saturating_mul(rounds));
        for (id, path) in (0u64..).zip(all) {
            if let Some(t) = &mut tick {
                t.tick().await;
            }
            if tx.send((id, path.clone())).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The new files of a watched folder, each with its id, and the thread watching it.
pub type Watching = (
    mpsc::Receiver<(u64, PathBuf)>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Watches `dir` on a blocking thread, giving each new file (see [`FolderWatch::scan`],
/// unchanged for `settle`) with the next id from `first_id`, until the receiving end is
/// dropped. The thread ends with the error that stopped it (the folder went away, say), or
/// `Ok` when nobody listens.
pub fn watch(dir: &Path, settle: Duration, first_id: u64) -> std::io::Result<Watching> {
    let mut w = FolderWatch::new(dir, settle)?;
    let poll = (settle / 3).clamp(MIN_POLL, MAX_POLL);
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::task::spawn_blocking(move || {
        let mut id = first_id;
        loop {
            for path in w.scan(Instant::now())? {
                if tx.blocking_send((id, path)).is_err() {
                    return Ok(());
                }
                id += 1;
            }
            if tx.is_closed() {
                return Ok(());
            }
            std::thread::sleep(poll);
        }
    });
    Ok((rx, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(300);

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_new_file_is_given_once_it_stopped_changing_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("old.png"), b"there before").expect("write");
        let t0 = Instant::now();
        let mut w = FolderWatch::new(dir.path(), SETTLE).expect("watch");
        std::fs::write(dir.path().join("new.png"), b"half").expect("write");
        assert!(w.scan(t0).expect("scan").is_empty(), "seen, not settled");
        // Written on before it settled: the wait starts again.
        std::fs::write(dir.path().join("new.png"), b"half and the rest").expect("write");
        let t1 = t0 + SETTLE - Duration::from_millis(1);
        assert!(w.scan(t1).expect("scan").is_empty());
        assert!(w.scan(t1 + SETTLE / 2).expect("scan").is_empty());
        assert_eq!(names(&w.scan(t1 + SETTLE).expect("scan")), ["new.png"]);
        assert!(
            w.scan(t1 + SETTLE * 4).expect("scan").is_empty(),
            "given twice"
        );
    }

    #[test]
    fn files_come_in_the_order_they_appeared_and_in_progress_names_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        let mut w = FolderWatch::new(dir.path(), SETTLE).expect("watch");
        for (i, name) in ["c.png", "a.png", "b.png"].iter().enumerate() {
            std::fs::write(dir.path().join(name), b"image").expect("write");
            w.scan(t0 + Duration::from_millis(i as u64)).expect("scan");
        }
        for name in [".hidden.png", "d.png.part", "e.tmp", "f.png~"] {
            std::fs::write(dir.path().join(name), b"not yet").expect("write");
        }
        std::fs::write(dir.path().join("empty.png"), b"").expect("write");
        let got = w.scan(t0 + SETTLE * 2).expect("scan");
        assert_eq!(names(&got), ["c.png", "a.png", "b.png"]);
        // Renamed once complete, it counts.
        std::fs::rename(dir.path().join("d.png.part"), dir.path().join("d.png")).expect("mv");
        w.scan(t0 + SETTLE * 3).expect("scan");
        assert_eq!(names(&w.scan(t0 + SETTLE * 5).expect("scan")), ["d.png"]);
    }

    #[test]
    fn a_file_rewritten_after_it_was_given_is_given_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        let mut w = FolderWatch::new(dir.path(), SETTLE).expect("watch");
        let latest = dir.path().join("latest.jpg");
        std::fs::write(&latest, b"frame 1").expect("write");
        w.scan(t0).expect("scan");
        assert_eq!(names(&w.scan(t0 + SETTLE).expect("scan")), ["latest.jpg"]);
        std::fs::write(&latest, b"frame two").expect("write");
        w.scan(t0 + SETTLE * 2).expect("scan");
        assert_eq!(
            names(&w.scan(t0 + SETTLE * 3).expect("scan")),
            ["latest.jpg"]
        );
        // Deleted, it is forgotten: memory follows the folder.
        std::fs::remove_file(&latest).expect("rm");
        w.scan(t0 + SETTLE * 4).expect("scan");
        assert!(w.done.is_empty() && w.writing.is_empty());
    }
}
