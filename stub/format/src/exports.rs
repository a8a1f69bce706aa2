//! The runtime DLL's exports: what the loader resolves with GetProcAddress and the launcher
//! calls, by name and signature. The runtime defines functions of exactly these types (its
//! `exports.rs` checks them against these aliases at compile time), and the freezer checks
//! that a runtime stub exports every name before it ships one.

use std::ffi::c_void;

/// Win32 `BOOL`.
pub type Bool = i32;

/// `isapi_freeze_attach(module)`: the loader tells the runtime which module it serves (its
/// own handle, whose resources hold the archive) before any ISAPI call. FALSE: refused.
pub const ATTACH: &str = "isapi_freeze_attach";
pub type AttachFn = unsafe extern "system" fn(module: *mut c_void) -> Bool;

/// `isapi_freeze_run_main(module)`: the launcher runs the script as `__main__` from the
/// archive in its own module `module`; returns the process exit code.
pub const RUN_MAIN: &str = "isapi_freeze_run_main";
pub type RunMainFn = unsafe extern "system" fn(module: *mut c_void) -> i32;

/// The six ISAPI entry points, which the loader forwards as they are (types from httpext.h
/// and httpfilt.h, with the structures passed as pointers).
pub const GET_EXTENSION_VERSION: &str = "GetExtensionVersion";
pub type GetExtensionVersionFn = unsafe extern "system" fn(version: *mut c_void) -> Bool;
pub const HTTP_EXTENSION_PROC: &str = "HttpExtensionProc";
pub type HttpExtensionProcFn = unsafe extern "system" fn(ecb: *mut c_void) -> u32;
pub const TERMINATE_EXTENSION: &str = "TerminateExtension";
pub type TerminateExtensionFn = unsafe extern "system" fn(flags: u32) -> Bool;
pub const GET_FILTER_VERSION: &str = "GetFilterVersion";
pub type GetFilterVersionFn = unsafe extern "system" fn(version: *mut c_void) -> Bool;
pub const HTTP_FILTER_PROC: &str = "HttpFilterProc";
pub type HttpFilterProcFn =
    unsafe extern "system" fn(context: *mut c_void, notification: u32, data: *mut c_void) -> u32;
pub const TERMINATE_FILTER: &str = "TerminateFilter";
pub type TerminateFilterFn = unsafe extern "system" fn(flags: u32) -> Bool;

/// Every export the runtime must have.
pub const ALL: [&str; 8] = [
    ATTACH,
    RUN_MAIN,
    GET_EXTENSION_VERSION,
    HTTP_EXTENSION_PROC,
    TERMINATE_EXTENSION,
    GET_FILTER_VERSION,
    HTTP_FILTER_PROC,
    TERMINATE_FILTER,
];
