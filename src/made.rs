//! Zips and stubs made before, kept in the cache folder by the SHA-256 of everything they
//! are made from (this isapi-freeze's own binary included), so an unchanged rebuild reads
//! the app archive, the standard-library zip and the PE files back instead of compressing
//! and editing them again. The writers are deterministic, so a hit is the same bytes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::stamps::Stamp;

/// How many results of each kind are kept: enough for a few apps rebuilt in turn.
const KEEP: usize = 12;

/// The key of something made: fed every input, in order.
pub struct Key(Sha256);

impl Key {
    /// A key for `kind`, already covering the running binary (a rebuilt isapi-freeze may
    /// write different bytes).
    pub fn new(kind: &str) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        let exe = std::env::current_exe().ok();
        hasher.update(format!("{:?}", exe.as_deref().and_then(Stamp::of)).as_bytes());
        Key(hasher)
    }

    pub fn bytes(&mut self, data: &[u8]) {
        self.0.update((data.len() as u64).to_le_bytes());
        self.0.update(data);
    }

    /// A file known by its path and stamp (inputs too big to hash on every rebuild).
    pub fn file(&mut self, path: &Path) {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.bytes(absolute.to_string_lossy().as_bytes());
        self.bytes(format!("{:?}", Stamp::of(path)).as_bytes());
    }
}

/// A folder of made bytes for one kind of thing; None (no cache folder, or
/// `ISAPI_FREEZE_CACHE` set empty) makes every lookup a miss.
pub struct Made {
    dir: Option<PathBuf>,
}

impl Made {
    pub fn new(kind: &str) -> Made {
        let off = std::env::var_os("ISAPI_FREEZE_CACHE").is_some_and(|d| d.is_empty());
        let dir = if off {
            None
        } else {
            crate::config::cache_dir().map(|d| d.join("made").join(kind))
        };
        Made { dir }
    }

    /// The bytes made for `key`, or made now by `make` and kept.
    pub fn get_or_make<E>(&self, key: Key, make: impl FnOnce() -> Result<Vec<u8>, E>) -> Result<Vec<u8>, E> {
        let Some(dir) = &self.dir else { return make() };
        let path = dir.join(isapi_freeze_format::to_hex(&key.0.finalize()));
        if let Ok(bytes) = std::fs::read(&path) {
            // Used again: the newest to drop.
            if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                let _ = file.set_modified(std::time::SystemTime::now());
            }
            return Ok(bytes);
        }
        let bytes = make()?;
        self.keep(&path, &bytes);
        Ok(bytes)
    }

    /// Best effort: written under a temporary name and renamed, so a reader never sees half
    /// a file; the oldest results beyond [`KEEP`] are dropped.
    fn keep(&self, path: &Path, bytes: &[u8]) {
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let temp = path.with_extension(format!("{}.new", std::process::id()));
        if std::fs::write(&temp, bytes).is_err() || std::fs::rename(&temp, path).is_err() {
            let _ = std::fs::remove_file(&temp);
            return;
        }
        let Ok(read) = std::fs::read_dir(dir) else { return };
        let mut kept: Vec<(std::time::SystemTime, PathBuf)> = read
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if kept.len() > KEEP {
            kept.sort();
            for (_, old) in &kept[..kept.len() - KEEP] {
                let _ = std::fs::remove_file(old);
            }
        }
    }
}
