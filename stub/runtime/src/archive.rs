//! The app archive, read in place from the served module's resource: its SHA-256 is checked
//! against the config record before anything in it is used (computed from the file, not
//! the mapping), then members are read from the mapped bytes on demand (no extraction, no
//! temporary files).

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use isapi_freeze_format::{self as format, StubConfig};
use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

use crate::member::{self, Packing};
use crate::served::ServedModule;

pub struct Archive {
    /// The config record it was verified against.
    config: StubConfig,
    bytes: &'static [u8],
    zip: Mutex<ZipArchive<Cursor<&'static [u8]>>>,
    names: Vec<String>,
}

/// Reads and verifies the served module's config and archive.
pub fn open(served: &ServedModule) -> Result<Archive, String> {
    let module = served.handle as *mut std::ffi::c_void;
    // SAFETY: the served module (the loader DLL or the launcher exe) stays loaded for as long
    // as this runtime runs: the runtime takes a reference on it (see `sharing::pin`), and
    // an exe's image is its process.
    let config = unsafe { isapi_freeze_embedded::config(module, &served.path.display().to_string())? };
    // SAFETY: as above; a launcher's archive is the loader's beside it, mapped for good.
    let embedded = unsafe { isapi_freeze_embedded::archive_of(module, &config, &served.dir, &served.file_name)? };
    let archive = embedded.bytes;
    // The file the archive is in: the loader's own, or the loader beside a launcher.
    let holder = match &config.archive_in {
        Some(name) => served.dir.join(name),
        None => served.path.clone(),
    };
    let what = holder.display();
    let offset = embedded.file_offset.ok_or_else(|| {
        format!("cannot check the app archive in {what}: its headers do not say where it is in the file")
    })?;
    let digest = file_digest(&holder, offset, archive.len() as u64)?;
    if digest != config.archive_sha256 {
        return Err(format!(
            "the app archive in {what} was altered or damaged: its SHA-256 is {} but {} was recorded when it was frozen; \
             refusing to run it. Freeze the script again and redeploy",
            format::to_hex(&digest),
            format::to_hex(&config.archive_sha256)
        ));
    }
    let zip =
        ZipArchive::new(Cursor::new(archive)).map_err(|e| format!("the app archive in {what} is not a zip: {e}"))?;
    let names = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    Ok(Archive {
        config,
        bytes: archive,
        zip: Mutex::new(zip),
        names,
    })
}

/// The SHA-256 of the `len` bytes at `offset` in `file`, the archive's bytes on disk.
///
/// Read with file reads through one reused buffer, so the OS's file cache holds them, not
/// this process: hashing the mapped resource would make every page of the archive resident
/// in the serving process (IIS's w3wp) for good, though the app imports a few modules of it.
/// So the check is about the file. The mapped resource is read-only and Windows keeps a
/// loaded module's file from being written, so both hold the same bytes; a file renamed away
/// and replaced after it was loaded is checked as the file now there.
///
/// Under Wine the saving needs `.rsrc` at a page-aligned file offset: Wine maps a section
/// from the file only then, and otherwise reads it whole into memory at load.
fn file_digest(file: &Path, offset: u64, len: u64) -> Result<[u8; 32], String> {
    const CHUNK: usize = 256 * 1024;
    let failed = |doing: &str, e: std::io::Error| {
        let why = match e.raw_os_error() {
            Some(code) => format!("Windows error {code}"),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => "the file ends before the archive does".to_owned(),
            None => e.to_string(),
        };
        format!(
            "cannot check the app archive in {}: {doing} it failed ({why})",
            file.display()
        )
    };
    let mut reader = File::open(file).map_err(|e| failed("opening", e))?;
    reader.seek(SeekFrom::Start(offset)).map_err(|e| failed("reading", e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let chunk = &mut buffer[..left.min(CHUNK as u64) as usize];
        reader.read_exact(chunk).map_err(|e| failed("reading", e))?;
        hasher.update(&chunk[..]);
        left -= chunk.len() as u64;
    }
    Ok(hasher.finalize().into())
}

impl Archive {
    /// The config record embedded beside the archive.
    pub fn config(&self) -> &StubConfig {
        &self.config
    }

    /// The archive as embedded (a zip).
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// A member's bytes, or None if there is no such member (see `member::unpack` for why
    /// it bypasses the zip crate's reader).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let failed = |why: &dyn std::fmt::Display| format!("reading {name} from the app archive: {why}");
        let (start, packed_size, size, packing) = {
            let mut zip = self.zip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let Some(index) = zip.index_for_name(name) else {
                return Ok(None);
            };
            let file = zip.by_index_raw(index).map_err(|e| failed(&e))?;
            if file.encrypted() {
                return Err(failed(&"it is encrypted"));
            }
            // `by_index_raw` has read the member's local header, which says where its data starts.
            let start = file
                .data_start()
                .ok_or_else(|| failed(&"its local header was not read"))?;
            let packing = match file.compression() {
                CompressionMethod::Stored => Packing::Stored,
                CompressionMethod::Deflated => Packing::Deflated,
                other => {
                    return Err(failed(&format_args!(
                        "it is compressed with {other}, which the runtime cannot read"
                    )))
                }
            };
            (start, file.compressed_size(), file.size(), packing)
        };
        let packed = usize::try_from(start)
            .ok()
            .zip(usize::try_from(packed_size).ok())
            .and_then(|(start, len)| self.bytes.get(start..start.checked_add(len)?))
            .ok_or_else(|| failed(&"its data runs past the end of the archive"))?;
        member::unpack(packed, packing, size)
            .map(Some)
            .map_err(|why| failed(&why))
    }

    /// The members of the top-level module or package `name` with their CRC-32s, sorted:
    /// what tells whether two apps ship the same module.
    fn module_members(&self, name: &str) -> Vec<(String, u32)> {
        let folder = format!("{name}/");
        let single = format!("{name}.pyc");
        let mut zip = self.zip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut members: Vec<(String, u32)> = self
            .names
            .iter()
            .filter(|n| n.starts_with(&folder) || **n == single)
            .filter_map(|n| zip.by_name(n).ok().map(|f| (n.clone(), f.crc32())))
            .collect();
        members.sort();
        members
    }

    /// Whether `other` ships the top-level module or package `name` with other contents
    /// than this archive (false when either does not ship it).
    pub fn differs_in(&self, other: &Archive, name: &str) -> bool {
        let (mine, theirs) = (self.module_members(name), other.module_members(name));
        !mine.is_empty() && !theirs.is_empty() && mine != theirs
    }
}
