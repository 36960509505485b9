//! Where received images go. A file is assembled in a hidden temp file inside the output
//! folder, checked against the offered BLAKE3 hash, and only then given its name, never over
//! an existing file (`name (1).png` instead) and never outside the folder.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use thiserror::Error;

/// Longest sanitised file name kept, in bytes.
const MAX_NAME: usize = 200;
/// Most `name (N).ext` variants tried before giving up.
const MAX_VARIANTS: u32 = 10_000;
/// Temp files are `.udpix-XXXXXX.part`.
const PART_PREFIX: &str = ".udpix-";
/// See [`PART_PREFIX`].
const PART_SUFFIX: &str = ".part";
/// Names a notice about removed part files lists at most.
const NOTICE_NAMES: usize = 5;

/// Why an image could not be stored.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The assembled content does not hash to what the sender offered.
    #[error("content hash mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// Hash from the offer.
        expected: String,
        /// Hash of what arrived.
        actual: String,
    },
    /// The file system refused (full disk, permissions, missing folder...).
    #[error("cannot write in {dir}: {source}")]
    Io {
        /// The output folder.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl StoreError {
    /// What to tell the sender: what happened, never a local path.
    pub fn peer_reason(&self) -> String {
        match self {
            StoreError::HashMismatch { .. } => {
                "the assembled image does not match the offered hash; nothing was kept".into()
            }
            StoreError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                    "the receiver's disk is full".into()
                }
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    "the receiver cannot write to its folder".into()
                }
                io::ErrorKind::FileTooLarge => "the receiver's file system cannot hold a file \
                    this large"
                    .into(),
                _ => "the receiver could not store the file (an I/O error on its side)".into(),
            },
        }
    }

    /// The error in a few words, for a line that goes on to say what to do:
    /// `cannot write in /x/y (Permission denied)`.
    pub fn brief(&self) -> String {
        match self {
            StoreError::Io { dir, source } => {
                format!("cannot write in {} ({})", dir.display(), plain(source))
            }
            other => other.to_string(),
        }
    }
}

/// An I/O error's text up to its `(os error 13)`: without the code, and without the path
/// tempfile appends after it (the folder is said already).
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Checks at start-up that files can be created in `dir` (by making a temp file there and
/// removing it), so a read-only folder is reported at once rather than by refusing every image.
pub fn check_writable(dir: &Path) -> Result<(), StoreError> {
    tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .suffix(PART_SUFFIX)
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| StoreError::Io {
            dir: dir.to_owned(),
            source,
        })
}

/// Makes an offered name safe to use as a single file name inside the output folder: keeps
/// only the last path component, drops control and invisible format characters and leading
/// dots, caps the length.
pub fn sanitize_name(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        // Controls, and the invisible or direction-changing characters that would make a
        // name look like another in a listing (`cat\u{202e}gnp.png`).
        .filter(|c| !crate::display::needs_escape(*c) && *c != ':')
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let mut end = cleaned.len().min(MAX_NAME);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    let out = &cleaned[..end];
    if out.is_empty() {
        "image".to_owned()
    } else {
        out.to_owned()
    }
}

/// The n-th alternative of a name: `cat.png`, `cat (1).png`, `cat (2).png`...
fn variant(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// An image being received: a temp file of the final size, written at chunk offsets.
#[derive(Debug)]
pub struct IncomingFile {
    temp: NamedTempFile,
    dir: PathBuf,
}

impl IncomingFile {
    /// Creates the temp file in `dir`, sized `size` bytes.
    pub fn create(dir: &Path, size: u64) -> Result<Self, StoreError> {
        let io_err = |source| StoreError::Io {
            dir: dir.to_owned(),
            source,
        };
        // Locked from its first instant, so that no sweep (another receiver's start-up) takes
        // it for a part file left by a dead run; the lock goes with the descriptor.
        let folder = FolderLock::take(dir, false);
        let temp = tempfile::Builder::new()
            .prefix(PART_PREFIX)
            .suffix(PART_SUFFIX)
            .tempfile_in(dir)
            .map_err(io_err)?;
        match try_lock(temp.as_file()) {
            Ok(true) => {}
            Ok(false) => {
                let taken =
                    io::Error::new(io::ErrorKind::WouldBlock, "temp file locked by another");
                return Err(io_err(taken));
            }
            Err(e) => return Err(io_err(e)),
        }
        drop(folder);
        temp.as_file().set_len(size).map_err(io_err)?;
        Ok(Self {
            temp,
            dir: dir.to_owned(),
        })
    }

    /// Writes one chunk at its offset.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.temp
            .as_file()
            .write_all_at(data, offset)
            .map_err(|source| StoreError::Io {
                dir: self.dir.clone(),
                source,
            })
    }

    /// Hashes the assembled file; if it matches `expected`, gives it the first free variant
    /// of `name` in the folder and returns the final path. Otherwise the temp file is removed.
    pub fn finish(self, expected: &[u8; 32], name: &str) -> Result<PathBuf, StoreError> {
        self.verify(expected)?.persist(name)
    }

    /// Hashes the assembled file and makes it durable; slow for a large file, so the engine
    /// runs it off its thread. Nothing has a name yet: dropping the result removes the file.
    pub fn verify(self, expected: &[u8; 32]) -> Result<VerifiedFile, StoreError> {
        let io_err = |dir: &Path, source| StoreError::Io {
            dir: dir.to_owned(),
            source,
        };
        let actual = hash_file(self.temp.as_file()).map_err(|e| io_err(&self.dir, e))?;
        if actual.as_bytes() != expected {
            return Err(StoreError::HashMismatch {
                expected: blake3::Hash::from_bytes(*expected).to_hex().to_string(),
                actual: actual.to_hex().to_string(),
            });
        }
        // Private while unverified; now the mode any new file gets (as cp or scp would give).
        let mode = 0o666 & !umask();
        self.temp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(&self.dir, e))?;
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| io_err(&self.dir, e))?;
        Ok(VerifiedFile {
            temp: self.temp,
            dir: self.dir,
        })
    }
}

/// A file whose hash verified, still under its temp name.
#[derive(Debug)]
pub struct VerifiedFile {
    temp: NamedTempFile,
    dir: PathBuf,
}

impl VerifiedFile {
    /// Gives the file the first free variant of `name` in the folder (a rename: quick) and
    /// returns the final path.
    pub fn persist(self, name: &str) -> Result<PathBuf, StoreError> {
        let io_err = |dir: &Path, source| StoreError::Io {
            dir: dir.to_owned(),
            source,
        };
        let safe = sanitize_name(name);
        let mut temp = self.temp;
        for n in 0..MAX_VARIANTS {
            let path = self.dir.join(variant(&safe, n));
            match temp.persist_noclobber(&path) {
                Ok(_) => return Ok(path),
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => temp = e.file,
                Err(e) => return Err(io_err(&self.dir, e.error)),
            }
        }
        Err(io_err(
            &self.dir,
            io::Error::new(io::ErrorKind::AlreadyExists, "no free file name left"),
        ))
    }
}

/// `flock(LOCK_EX | LOCK_NB)` on `file`: true when taken, false when another open file
/// (in this process or another) holds a lock on it.
fn try_lock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: a system call on a descriptor `file` owns and keeps open; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(false),
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
}

/// A `flock` on the output folder itself: shared while a part file is created and locked,
/// exclusive while stale ones are swept, so a sweep never meets a part file in the instant
/// between its creation and its lock. Best effort: where the folder cannot be opened or
/// locked, only that instant is exposed. Released when dropped.
struct FolderLock {
    _held: Option<File>,
}

impl FolderLock {
    fn take(dir: &Path, exclusive: bool) -> Self {
        let Ok(folder) = File::open(dir) else {
            return Self { _held: None };
        };
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        loop {
            // SAFETY: a system call on a descriptor `folder` owns; no memory is passed. It
            // waits only while another receiver sweeps the folder, a few milliseconds.
            if unsafe { libc::flock(folder.as_raw_fd(), op) } == 0 {
                return Self {
                    _held: Some(folder),
                };
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Self { _held: None };
            }
        }
    }
}

/// Removes the part files that earlier runs left in `dir` (a receiver killed before it could
/// clean up): every `.udpix-*.part` whose lock can be taken. A running receiver holds the lock
/// of each part it writes, so one sharing the folder never loses a live part. Files that
/// cannot be opened or removed (another user's) are left alone. Returns the removed paths.
pub fn remove_stale_parts(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let _sweep = FolderLock::take(dir, true);
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let is_part = name
            .to_str()
            .and_then(|n| n.strip_prefix(PART_PREFIX))
            .is_some_and(|n| n.ends_with(PART_SUFFIX));
        let path = entry.path();
        if is_part && matches!(remove_if_unlocked(&path), Ok(true)) {
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Removes `path` if it is a regular file no one holds a lock on.
fn remove_if_unlocked(path: &Path) -> io::Result<bool> {
    if !std::fs::symlink_metadata(path)?.file_type().is_file() {
        return Ok(false);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !try_lock(&file)? {
        return Ok(false);
    }
    // Still the file that was locked under that name (not one renamed over it meanwhile).
    let (held, named) = (file.metadata()?, std::fs::symlink_metadata(path)?);
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        return Ok(false);
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

/// `removed 1 partial file left by an earlier run (.udpix-ab12.part)`: what a sweep did, for
/// the log (the names are the file system's; show the line display-safe).
pub fn stale_parts_notice(removed: &[PathBuf]) -> String {
    let mut names: Vec<String> = removed
        .iter()
        .take(NOTICE_NAMES)
        .map(|p| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect();
    if removed.len() > NOTICE_NAMES {
        names.push(format!("{} more", removed.len() - NOTICE_NAMES));
    }
    let what = match removed.len() {
        1 => "1 partial file left by an earlier run".to_owned(),
        n => format!("{n} partial files left by earlier runs"),
    };
    format!("removed {what} ({})", names.join(", "))
}

/// The process's file mode mask, read once without changing it (`umask(2)` can only swap
/// it, which would race other threads creating files); 022 where the kernel does not say.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_umask(&s))
            .unwrap_or(0o022)
    })
}

fn parse_umask(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
}

/// BLAKE3 of a whole file, read from its start.
pub fn hash_file(file: &File) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        // Positional reads: the temp file's cursor is not ours to rely on.
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_folder() {
        assert_eq!(sanitize_name("../../x.png"), "x.png");
        assert_eq!(sanitize_name("/etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\a\\cat.jpg"), "cat.jpg");
        assert_eq!(sanitize_name(".."), "image");
        assert_eq!(sanitize_name("../"), "image");
        assert_eq!(sanitize_name(".hidden"), "hidden");
        assert_eq!(sanitize_name("a\u{0}b\nc\u{1b}[31m.png"), "abc[31m.png");
        assert_eq!(sanitize_name("cat\u{202e}gnp.png"), "catgnp.png");
        assert_eq!(sanitize_name(""), "image");
        assert!(sanitize_name(&"é".repeat(300)).len() <= MAX_NAME);
    }

    #[test]
    fn variants_number_before_the_extension() {
        assert_eq!(variant("cat.png", 0), "cat.png");
        assert_eq!(variant("cat.png", 2), "cat (2).png");
        assert_eq!(variant("README", 1), "README (1)");
        assert_eq!(variant("a.tar.gz", 1), "a.tar (1).gz");
    }

    #[test]
    fn verified_file_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.png"), b"old").expect("write");
        let data = b"new content";
        let f = IncomingFile::create(dir.path(), data.len() as u64).expect("create");
        f.write_at(4, &data[4..]).expect("write");
        f.write_at(0, &data[..4]).expect("write");
        let path = f
            .finish(blake3::hash(data).as_bytes(), "../x.png")
            .expect("finish");
        assert_eq!(path, dir.path().join("x (1).png"));
        assert_eq!(std::fs::read(&path).expect("read"), data);
        assert_eq!(
            std::fs::read(dir.path().join("x.png")).expect("read"),
            b"old"
        );
    }

    #[test]
    fn a_verified_file_gets_the_mode_of_a_new_file() {
        assert_eq!(
            parse_umask("Name:\tudpix\nUmask:\t0027\nState:\tR\n"),
            Some(0o027)
        );
        assert_eq!(parse_umask("Name:\tudpix\n"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = IncomingFile::create(dir.path(), 3).expect("create");
        f.write_at(0, b"abc").expect("write");
        // While it arrives, only the owner can read it.
        let part = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .next()
            .expect("temp file");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&part.path()), 0o600);
        let path = f
            .finish(blake3::hash(b"abc").as_bytes(), "m.png")
            .expect("finish");
        // The kernel's own figure, not umask(): a broken umask() must not agree with itself.
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let mask = parse_umask(&status).expect("the kernel says the umask");
        assert_eq!(mode(&path), 0o666 & !mask);
    }

    #[test]
    fn hash_mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = IncomingFile::create(dir.path(), 3).expect("create");
        f.write_at(0, b"abc").expect("write");
        let err = f.finish(&[0; 32], "y.png").expect_err("must fail");
        assert!(matches!(err, StoreError::HashMismatch { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_sweep_removes_dead_parts_and_leaves_live_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = IncomingFile::create(dir.path(), 3).expect("create");
        let live_name = names_in(dir.path()).pop().expect("the live part");
        assert!(live_name.starts_with(PART_PREFIX) && live_name.ends_with(PART_SUFFIX));
        // What a receiver killed mid-transfer leaves: a part file nobody holds.
        let dead = dir.path().join(".udpix-dead01.part");
        std::fs::write(&dead, b"half an image").expect("write");
        // Not part files, or not ours to follow: all stay.
        std::fs::write(dir.path().join("keep.png"), b"png").expect("write");
        std::fs::write(dir.path().join(".udpix-x.partial"), b"x").expect("write");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("target.part");
        std::fs::write(&target, b"t").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join(".udpix-link.part")).expect("ln");

        let removed = remove_stale_parts(dir.path()).expect("sweep");
        assert_eq!(removed, vec![dead.clone()]);
        // The live part's name is random: it may sort anywhere among the others.
        let mut kept = vec![
            live_name,
            ".udpix-link.part".to_owned(),
            ".udpix-x.partial".to_owned(),
            "keep.png".to_owned(),
        ];
        kept.sort();
        assert_eq!(names_in(dir.path()), kept);
        assert!(target.exists());
        // The live transfer is untouched and completes.
        live.write_at(0, b"abc").expect("write");
        let path = live
            .finish(blake3::hash(b"abc").as_bytes(), "done.png")
            .expect("finish");
        assert_eq!(std::fs::read(path).expect("read"), b"abc");
        // Once finished (renamed) or dropped, nothing is left to sweep.
        let gone = IncomingFile::create(dir.path(), 3).expect("create");
        drop(gone);
        assert_eq!(
            remove_stale_parts(dir.path()).expect("sweep"),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn the_sweep_notice_names_what_went() {
        let one = [PathBuf::from("/o/.udpix-ab12.part")];
        assert_eq!(
            stale_parts_notice(&one),
            "removed 1 partial file left by an earlier run (.udpix-ab12.part)"
        );
        let many: Vec<PathBuf> = (0..7)
            .map(|i| PathBuf::from(format!("/o/.udpix-{i}.part")))
            .collect();
        let text = stale_parts_notice(&many);
        assert!(
            text.starts_with("removed 7 partial files left by earlier runs (.udpix-0.part, "),
            "{text}"
        );
        assert!(text.ends_with(".udpix-4.part, 2 more)"), "{text}");
    }

    #[test]
    fn a_folder_that_cannot_hold_files_fails_the_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        check_writable(dir.path()).expect("a fresh folder is writable");
        assert!(names_in(dir.path()).is_empty(), "the probe is removed");
        // Not a folder, a missing folder, and one no one may create files in (not even root).
        let file = dir.path().join("plain.txt");
        std::fs::write(&file, b"x").expect("write");
        let mut cases = vec![file, dir.path().join("missing")];
        if Path::new("/proc/self").is_dir() {
            cases.push(PathBuf::from("/proc"));
        }
        let missing = dir.path().join("missing");
        assert_eq!(
            check_writable(&missing).expect_err("missing").brief(),
            format!(
                "cannot write in {} (No such file or directory)",
                missing.display()
            )
        );
        for path in cases {
            let err = check_writable(&path).expect_err("cannot hold files");
            let brief = err.brief();
            assert!(
                brief.starts_with(&format!("cannot write in {} (", path.display())),
                "{brief}"
            );
            assert!(!brief.contains("os error"), "{brief}");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("running as root, which ignores file modes: skipping the read-only folder");
            return;
        }
        let ro = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let err = check_writable(ro.path()).expect_err("read-only folder");
        assert!(err.brief().contains("Permission denied"), "{}", err.brief());
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn the_peer_hears_what_happened_in_words_without_paths() {
        let io = |kind: io::ErrorKind| StoreError::Io {
            dir: PathBuf::from("/home/secret/pictures"),
            source: io::Error::from(kind),
        };
        let cases = [
            (
                io(io::ErrorKind::StorageFull),
                "the receiver's disk is full",
            ),
            (
                io(io::ErrorKind::QuotaExceeded),
                "the receiver's disk is full",
            ),
            (
                io(io::ErrorKind::PermissionDenied),
                "the receiver cannot write to its folder",
            ),
            (
                io(io::ErrorKind::ReadOnlyFilesystem),
                "the receiver cannot write to its folder",
            ),
            (
                io(io::ErrorKind::FileTooLarge),
                "cannot hold a file this large",
            ),
            (io(io::ErrorKind::Other), "an I/O error on its side"),
            (
                StoreError::HashMismatch {
                    expected: "a".repeat(64),
                    actual: "b".repeat(64),
                },
                "does not match the offered hash",
            ),
        ];
        for (err, says) in cases {
            let reason = err.peer_reason();
            assert!(reason.contains(says), "{err:?}: {reason}");
            assert!(
                !reason.contains("secret"),
                "a local path reached the peer: {reason}"
            );
        }
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_just_under_the_cap() {
        // Each prefix length puts the cap at another byte of a two- or three-byte character.
        for prefix in 0..3 {
            for ch in ["é", "€"] {
                let name = format!("{}{}", "a".repeat(prefix), ch.repeat(150));
                let cut = sanitize_name(&name);
                assert!(cut.len() <= MAX_NAME, "{prefix} {ch}: {} bytes", cut.len());
                assert!(
                    cut.len() > MAX_NAME - ch.len(),
                    "{prefix} {ch}: {} bytes",
                    cut.len()
                );
                assert!(name.starts_with(&cut));
            }
        }
    }

    #[test]
    fn a_name_of_only_an_extension_is_numbered_at_its_end() {
        // sanitize_name drops leading dots, but variant() must not split a bare extension.
        assert_eq!(variant(".png", 1), ".png (1)");
    }

    #[test]
    fn a_failed_rename_is_reported_as_itself_not_as_no_free_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("out");
        std::fs::create_dir(&folder).expect("mkdir");
        let f = IncomingFile::create(&folder, 3).expect("create");
        f.write_at(0, b"abc").expect("write");
        let verified = f.verify(blake3::hash(b"abc").as_bytes()).expect("verify");
        // The folder goes away between the verdict and the rename.
        std::fs::remove_dir_all(&folder).expect("rm");
        match verified.persist("x.png") {
            Err(StoreError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound, "{source}")
            }
            other => panic!("expected the rename's own error, got {other:?}"),
        }
    }

    #[test]
    fn a_file_locked_elsewhere_is_not_taken_and_not_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".udpix-held.part");
        std::fs::write(&path, b"x").expect("write");
        let holder = File::open(&path).expect("open");
        assert!(
            try_lock(&holder).expect("lock"),
            "a free file can be locked"
        );
        let other = File::open(&path).expect("open");
        assert!(
            !try_lock(&other).expect("no error, only a no"),
            "held by another open file"
        );
        assert!(!remove_if_unlocked(&path).expect("no error"), "held: kept");
        drop(holder);
        assert!(
            remove_if_unlocked(&path).expect("no error"),
            "released: removed"
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_shared_folder_lock_keeps_a_sweep_out_until_it_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = FolderLock::take(dir.path(), false);
        let probe = File::open(dir.path()).expect("open folder");
        assert!(
            !try_lock(&probe).expect("no error"),
            "the shared lock is held"
        );
        drop(shared);
        assert!(try_lock(&probe).expect("no error"), "released when dropped");
    }

    #[test]
    fn a_notice_of_exactly_as_many_as_it_names_adds_no_more() {
        let five: Vec<PathBuf> = (0..NOTICE_NAMES)
            .map(|i| PathBuf::from(format!("/o/.udpix-{i}.part")))
            .collect();
        let text = stale_parts_notice(&five);
        assert!(text.ends_with(".udpix-4.part)"), "{text}");
        assert!(!text.contains("more"), "{text}");
    }
}
