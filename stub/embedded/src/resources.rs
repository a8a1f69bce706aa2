//! The config record, which the loader reads before Python exists, and the app archive,
//! which the runtime verifies and imports from, in a module's resources. The launcher
//! carries no archive of its own: it reads the loader's beside it (`archive_in` of its
//! config record), mapped for its resources only.

use std::ffi::c_void;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use isapi_freeze_format::{StubConfig, ARCHIVE_RESOURCE_ID, CONFIG_RESOURCE_ID, RT_RCDATA};

use crate::pe;

type Handle = *mut c_void;

#[link(name = "kernel32")]
extern "system" {
    fn FindResourceW(module: Handle, name: *const u16, kind: *const u16) -> Handle;
    fn LoadResource(module: Handle, info: Handle) -> Handle;
    fn LockResource(data: Handle) -> *const c_void;
    fn SizeofResource(module: Handle, info: Handle) -> u32;
    fn LoadLibraryExW(file: *const u16, reserved: Handle, flags: u32) -> Handle;
    fn GetLastError() -> u32;
}

/// `LOAD_LIBRARY_AS_DATAFILE | LOAD_LIBRARY_AS_IMAGE_RESOURCE` from libloaderapi.h: maps a
/// module for its resources only (no code runs, no imports are loaded).
const AS_RESOURCES_ONLY: u32 = 0x2 | 0x20;

/// The config record of `module`, decoded; the error names `what` (the module's path).
///
/// # Safety
/// `module` must be the handle of a loaded module.
pub unsafe fn config(module: *mut c_void, what: &str) -> Result<StubConfig, String> {
    // SAFETY: the caller's promise; the bytes are only used during this call.
    let bytes = unsafe { rcdata(module, CONFIG_RESOURCE_ID) }
        .ok_or_else(|| format!("{what} has no isapi-freeze config resource: it was not made by isapi-freeze"))?;
    StubConfig::decode(bytes).map_err(|e| format!("{what}: {e}"))
}

/// The app archive's bytes in `module`'s mapped image.
///
/// # Safety
/// `module` must be the handle of a module that stays loaded for `'static` (the loader,
/// the launcher exe: neither is unloaded while Python runs).
pub unsafe fn archive(module: *mut c_void) -> Option<&'static [u8]> {
    // SAFETY: the caller's promise.
    unsafe { rcdata(module, ARCHIVE_RESOURCE_ID) }
}

/// An app archive found in a module's resources.
pub struct Embedded {
    /// Its bytes in the mapped module.
    pub bytes: &'static [u8],
    /// Where those bytes start in the file the module was mapped from, if its headers say.
    pub file_offset: Option<u64>,
}

/// The app archive of `module`, whose config record is `config`: its own resource, or, when
/// the record says `archive_in`, the resource of that file in `dir` (the module's folder),
/// after checking that the file's record has the same archive digest. `own_name` is the
/// module's file name, for the messages a user reads when the file is missing or foreign.
///
/// # Safety
/// As [`archive`].
pub unsafe fn archive_of(
    module: *mut c_void,
    config: &StubConfig,
    dir: &Path,
    own_name: &str,
) -> Result<Embedded, String> {
    let Some(holder_name) = &config.archive_in else {
        // SAFETY: the caller's promise.
        let bytes = unsafe { archive(module) }.ok_or_else(|| format!("{own_name} has no app archive resource"))?;
        // SAFETY: as above.
        return Ok(unsafe { located(module, bytes) });
    };
    let holder = dir.join(holder_name);
    let wide: Vec<u16> = holder.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated. The mapping is never freed, so the archive's bytes
    // stay valid for the rest of the process.
    let mapped = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), AS_RESOURCES_ONLY) };
    if mapped.is_null() {
        // SAFETY: reads this thread's last error, set by the failed call above.
        let code = unsafe { GetLastError() };
        return Err(format!(
            "{own_name} runs the app archive in {holder_name} beside it, but cannot open {} (Windows error {code}): \
             copy the whole output folder",
            holder.display()
        ));
    }
    let different = || format!("{own_name} and {holder_name} are from different freezes: copy the whole output folder");
    // SAFETY: `mapped` is a module mapped for its resources, for the rest of the process.
    let theirs = unsafe { config_of(mapped) }.ok_or_else(different)?;
    if theirs.archive_sha256 != config.archive_sha256 {
        return Err(different());
    }
    // SAFETY: as above.
    let bytes = unsafe { archive(mapped) }.ok_or_else(different)?;
    // SAFETY: as above.
    Ok(unsafe { located(mapped, bytes) })
}

/// `bytes`, a resource of `module`, with where they start in the module's file.
///
/// # Safety
/// `module` must be the handle of a loaded module, or of one mapped for its resources.
unsafe fn located(module: *mut c_void, bytes: &'static [u8]) -> Embedded {
    // A module mapped as a data file has handle bit 0 set, one mapped as an image resource
    // bit 1 (what AS_RESOURCES_ONLY gives, on Windows and Wine alike); either way the
    // mapping starts at the handle with those bits cleared.
    let handle = module as usize;
    let base = handle & !3;
    let address = bytes.as_ptr() as usize;
    let file_offset = if handle & 3 == 1 {
        // A data file is mapped flat, as it is on disk: the address is the file offset.
        address.checked_sub(base).map(|offset| offset as u64)
    } else {
        // An image (a loaded module, or an image resource) is laid out by sections: the
        // address is an RVA, which the section table turns into a file offset. The first
        // page of any mapping is readable, and SizeOfHeaders bytes are mapped in an image.
        // SAFETY: the caller's promise; the headers are read-only and mapped for good.
        let page = unsafe { std::slice::from_raw_parts(base as *const u8, pe::FIRST_PAGE) };
        pe::headers_size(page).and_then(|size| {
            // SAFETY: as above.
            let headers = unsafe { std::slice::from_raw_parts(base as *const u8, size.max(pe::FIRST_PAGE)) };
            let rva = u32::try_from(address.checked_sub(base)?).ok()?;
            pe::file_offset(headers, rva, u32::try_from(bytes.len()).ok()?)
        })
    };
    Embedded { bytes, file_offset }
}

/// The config record of `module`, if it has one that decodes.
///
/// # Safety
/// As [`config`].
unsafe fn config_of(module: *mut c_void) -> Option<StubConfig> {
    // SAFETY: the caller's promise.
    StubConfig::decode(unsafe { rcdata(module, CONFIG_RESOURCE_ID) }?).ok()
}

/// The bytes of resource `RT_RCDATA`/`id` of `module`, in the module's mapped image.
///
/// # Safety
/// As [`archive`].
unsafe fn rcdata(module: *mut c_void, id: u16) -> Option<&'static [u8]> {
    // MAKEINTRESOURCE: an integer id passed in the pointer's place.
    let info = FindResourceW(module, id as usize as *const u16, RT_RCDATA as usize as *const u16);
    if info.is_null() {
        return None;
    }
    let loaded = LoadResource(module, info);
    let data = LockResource(loaded) as *const u8;
    let len = SizeofResource(module, info) as usize;
    if data.is_null() {
        return None;
    }
    // SAFETY: LockResource points into the module's image, which holds `len` bytes of
    // this resource and stays mapped while the module is loaded (caller's promise).
    Some(std::slice::from_raw_parts(data, len))
}
