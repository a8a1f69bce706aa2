//! The app archive, read in place from the served module's resource: its SHA-256 is checked
//! against the config record before anything in it is used, then members are read from
//! the mapped bytes on demand (no extraction, no temporary files).

use std::io::{Cursor, Read};
use std::sync::{Mutex, OnceLock};

use isapi_freeze_format::{self as format, StubConfig};
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use crate::served::ServedModule;

pub struct Archive {
    /// The config record it was verified against.
    config: StubConfig,
    bytes: &'static [u8],
    zip: Mutex<ZipArchive<Cursor<&'static [u8]>>>,
    names: Vec<String>,
}

static ARCHIVE: OnceLock<Archive> = OnceLock::new();

/// Reads and verifies the served module's config and archive; returns the config.
pub fn open(served: &ServedModule) -> Result<StubConfig, String> {
    let module = served.handle as *mut std::ffi::c_void;
    // SAFETY: the served module (the loader DLL or the launcher exe) stays loaded for as long
    // as this runtime runs: the loader never frees it, and an exe's image is its process.
    let (config, archive) = unsafe {
        (
            isapi_freeze_embedded::config(module, &served.path.display().to_string())?,
            isapi_freeze_embedded::archive(module),
        )
    };
    let what = served.path.display();
    let archive = archive.ok_or_else(|| format!("{what} has no app archive resource"))?;
    let digest: [u8; 32] = Sha256::digest(archive).into();
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
    let _ = ARCHIVE.set(Archive {
        config: config.clone(),
        bytes: archive,
        zip: Mutex::new(zip),
        names,
    });
    Ok(config)
}

pub fn get() -> Option<&'static Archive> {
    ARCHIVE.get()
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

    /// A member's bytes, or None if there is no such member.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let mut zip = self.zip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = match zip.by_name(name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(format!("reading {name} from the app archive: {e}")),
        };
        let mut data = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut data)
            .map_err(|e| format!("reading {name} from the app archive: {e}"))?;
        Ok(Some(data))
    }
}
