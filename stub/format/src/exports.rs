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

/// `isapi_freeze_join(contract, module, joined)`: how a second frozen app for the same
/// CPython version shares the interpreter another app's runtime already runs in this
/// process. The second app's runtime (which must not start a CPython of its own) calls the
/// first runtime's export with its loader's module; the first runtime verifies that app's
/// archive, runs its boot module and fills `joined` with the per-app entry points the second
/// runtime then forwards to. `contract` is [`JOIN_CONTRACT`]: a runtime that speaks another
/// one answers FALSE (after logging why in the joining app's log), never a crash.
pub const JOIN: &str = "isapi_freeze_join";
pub type JoinFn = unsafe extern "system" fn(contract: u32, module: *mut c_void, joined: *mut JoinedApp) -> Bool;
/// The version of [`JoinFn`] and [`JoinedApp`], and of what the joining app's boot module
/// (from its archive) expects of the runtime that runs it: bumped on any change of either.
pub const JOIN_CONTRACT: u32 = 1;

/// The entry points of an app served by another app's runtime, each taking the app's index
/// there (`app`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct JoinedApp {
    pub app: usize,
    pub get_extension_version: unsafe extern "system" fn(app: usize, version: *mut c_void) -> Bool,
    pub http_extension_proc: unsafe extern "system" fn(app: usize, ecb: *mut c_void) -> u32,
    pub terminate_extension: unsafe extern "system" fn(app: usize, flags: u32) -> Bool,
    pub get_filter_version: unsafe extern "system" fn(app: usize, version: *mut c_void) -> Bool,
    pub http_filter_proc:
        unsafe extern "system" fn(app: usize, context: *mut c_void, notification: u32, data: *mut c_void) -> u32,
    pub terminate_filter: unsafe extern "system" fn(app: usize, flags: u32) -> Bool,
}

/// Every export the runtime must have.
pub const ALL: [&str; 9] = [
    ATTACH,
    JOIN,
    RUN_MAIN,
    GET_EXTENSION_VERSION,
    HTTP_EXTENSION_PROC,
    TERMINATE_EXTENSION,
    GET_FILTER_VERSION,
    HTTP_FILTER_PROC,
    TERMINATE_FILTER,
];
