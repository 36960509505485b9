//! Where received images go. A file is assembled in a hidden temp file inside the output
//! folder, checked against the offered BLAKE3 hash, and only then given its name, never over
//! an existing file (`name (1).png` instead) and never outside the folder.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use thiserror::Error;

/// Longest sanitised file name kept, in bytes.
const MAX_NAME: usize = 200;
/// Most `name (N).ext` variants tried before giving up.
const MAX_VARIANTS: u32 = 10_000;

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
}

/// Makes an offered name safe to use as a single file name inside the output folder: keeps
/// only the last path component, drops control characters and leading dots, caps the length.
pub fn sanitize_name(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != ':')
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
        let temp = tempfile::Builder::new()
            .prefix(".udpix-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(io_err)?;
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
        assert_eq!(mode(&path), 0o666 & !umask());
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
}
