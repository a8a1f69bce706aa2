//! What the freezer embedded in a loader DLL or a launcher exe, read back at run time from
//! the module's own resources in memory (Windows only): the config record, which the loader
//! reads before Python exists, and the app archive, which the runtime verifies and imports
//! from. The formats themselves are `isapi-freeze-format`'s.

#![cfg(windows)]

use std::ffi::c_void;

use isapi_freeze_format::{StubConfig, ARCHIVE_RESOURCE_ID, CONFIG_RESOURCE_ID, RT_RCDATA};

type Handle = *mut c_void;

#[link(name = "kernel32")]
extern "system" {
    fn FindResourceW(module: Handle, name: *const u16, kind: *const u16) -> Handle;
    fn LoadResource(module: Handle, info: Handle) -> Handle;
    fn LockResource(data: Handle) -> *const c_void;
    fn SizeofResource(module: Handle, info: Handle) -> u32;
}

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
