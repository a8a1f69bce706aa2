//! What the last write of an output folder saw of each file: size, modification and change
//! times and inode, with the file's SHA-256. Kept in the cache folder (never in the output), so an
//! unchanged rebuild trusts a hash only while the file still has the stamp it was hashed with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    /// The inode's change time: no tool sets it back, as `touch -r` does the modification
    /// time, so an edit hidden that way still shows.
    pub ctime_ns: i128,
}

impl Stamp {
    /// The stamp of the file at `path`, None when it is not a regular file.
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Some(Stamp {
            size: meta.len(),
            mtime_ns,
            inode: inode(&meta),
            ctime_ns: ctime_ns(&meta),
        })
    }
}

impl Stamp {
    /// Whether the file was last changed over a second ago. Times tick coarsely (a few
    /// milliseconds on Linux), so an edit made in the same tick as a read leaves the stamp
    /// as it was; a stamp newer than that is not trusted for next time (as git does with
    /// "racily clean" index entries).
    pub fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        now - self.mtime_ns.max(self.ctime_ns) > 1_000_000_000
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(unix)]
fn ctime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128
}

#[cfg(not(unix))]
fn ctime_ns(_meta: &std::fs::Metadata) -> i128 {
    0
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

/// Absolute path -> (stamp, lower-case hex SHA-256), for the output's files and for the
/// files it copies.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stamps {
    files: BTreeMap<PathBuf, (Stamp, String)>,
}

impl Stamps {
    /// The record for `dist`, or an empty one (then every file is hashed).
    pub fn load(dist: &Path) -> Stamps {
        Stamps::load_record(record_path(dist).as_deref())
    }

    /// Best effort: a record that cannot be written only costs hashing next time.
    pub fn save(&self, dist: &Path) {
        self.save_record(record_path(dist).as_deref());
    }

    /// The record kept at `path` (see `load`).
    pub fn load_record(path: Option<&Path>) -> Stamps {
        path.and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the record to `path` (see `save`).
    pub fn save_record(&self, path: Option<&Path>) {
        let Some(path) = path else { return };
        if let (Some(parent), Ok(json)) = (path.parent(), serde_json::to_vec(self)) {
            let _ = std::fs::create_dir_all(parent);
            let temp = path.with_extension("json.new");
            if std::fs::write(&temp, json).is_ok() {
                let _ = std::fs::rename(&temp, path);
            }
        }
    }

    /// The hash recorded for `path` if the file still has the stamp it was hashed with.
    pub fn hash_of(&self, path: &Path, stamp: Option<Stamp>) -> Option<&str> {
        let (recorded, sha) = self.files.get(path)?;
        (Some(*recorded) == stamp).then_some(sha.as_str())
    }

    pub fn remember(&mut self, path: &Path, stamp: Option<Stamp>, sha256: &str) {
        if let Some(stamp) = stamp {
            self.files.insert(path.to_path_buf(), (stamp, sha256.to_string()));
        }
    }
}

/// Beside the freeze record of serve.rs, under the same key.
fn record_path(dist: &Path) -> Option<PathBuf> {
    crate::config::output_record(dist, ".stamps.json")
}
