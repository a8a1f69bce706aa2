//! `_SCRIPT.dll`, the ISAPI DLL that IIS loads. It imports nothing of Python: IIS's worker
//! process would not find python3XY.dll. On the first ISAPI call it loads, by full path from
//! its own folder, the Python DLL named in its config resource and then the runtime DLL,
//! and from then on forwards every ISAPI entry point to the runtime.

#![cfg(windows)]

use std::ffi::c_void;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use isapi_freeze_format::{self as format, exports};
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{GetLastError, FALSE, HMODULE};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleFileNameW, GetModuleHandleExW, GetProcAddress, LoadLibraryExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
    GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT, LOAD_WITH_ALTERED_SEARCH_PATH,
};

use windows_sys::Win32::System::Iis::{HSE_STATUS_ERROR, SF_STATUS_REQ_ERROR};

type Ptr = *mut c_void;

/// The runtime's entry points, resolved once (names and types: the contract's `exports`).
struct Runtime {
    get_extension_version: exports::GetExtensionVersionFn,
    http_extension_proc: exports::HttpExtensionProcFn,
    terminate_extension: exports::TerminateExtensionFn,
    get_filter_version: exports::GetFilterVersionFn,
    http_filter_proc: exports::HttpFilterProcFn,
    terminate_filter: exports::TerminateFilterFn,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// This DLL's own module handle and path.
fn own_module() -> (HMODULE, PathBuf) {
    let mut module: HMODULE = std::ptr::null_mut();
    // SAFETY: FROM_ADDRESS takes any address inside this module (a static of ours) and
    // UNCHANGED_REFCOUNT means nothing to release; `module` is a valid out-pointer.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            &RUNTIME as *const _ as *const u16,
            &mut module,
        );
    }
    let mut buffer = vec![0u16; 32_768];
    // SAFETY: the buffer is writable for its whole length, which we pass.
    let len = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    (module, PathBuf::from(std::ffi::OsString::from_wide(&buffer[..len])))
}

fn load_library(path: &Path) -> Result<HMODULE, String> {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated. LOAD_WITH_ALTERED_SEARCH_PATH with a full path makes
    // the DLL's own folder the first place its imports are looked for.
    let module = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), LOAD_WITH_ALTERED_SEARCH_PATH) };
    if module.is_null() {
        // SAFETY: reads this thread's last error, set by the failed call above.
        let code = unsafe { GetLastError() };
        let hint = if code == 126 {
            " (the file, or a DLL it needs, is missing)"
        } else {
            ""
        };
        return Err(format!("cannot load {}: Windows error {code}{hint}", path.display()));
    }
    Ok(module)
}

fn load_runtime() -> Result<Runtime, String> {
    let (module, path) = own_module();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // SAFETY: `module` is this DLL, loaded while any of its entry points can run.
    let config = unsafe { isapi_freeze_embedded::config(module, &path.display().to_string()) }?;
    load_library(&dir.join(&config.python_dll))?;
    let runtime = load_library(&dir.join(format::RUNTIME_DLL))?;

    // SAFETY: each export has the contract's type for its name (stub/format's `exports`).
    unsafe {
        let attach: exports::AttachFn = export(runtime, exports::ATTACH)?;
        if attach(module) == FALSE {
            return Err(format!(
                "{} refused to start; the reason is logged above",
                format::RUNTIME_DLL
            ));
        }
        Ok(Runtime {
            get_extension_version: export(runtime, exports::GET_EXTENSION_VERSION)?,
            http_extension_proc: export(runtime, exports::HTTP_EXTENSION_PROC)?,
            terminate_extension: export(runtime, exports::TERMINATE_EXTENSION)?,
            get_filter_version: export(runtime, exports::GET_FILTER_VERSION)?,
            http_filter_proc: export(runtime, exports::HTTP_FILTER_PROC)?,
            terminate_filter: export(runtime, exports::TERMINATE_FILTER)?,
        })
    }
}

/// The export `name` of `module` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the export's true function pointer type.
unsafe fn export<F: Copy>(module: HMODULE, name: &str) -> Result<F, String> {
    type RawFn = unsafe extern "system" fn() -> isize;
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<RawFn>(),
        "a function pointer type"
    );
    let cname: Vec<u8> = name.bytes().chain([0]).collect();
    // SAFETY: `module` is loaded and `cname` NUL-terminated.
    let raw: RawFn = unsafe { GetProcAddress(module, cname.as_ptr()) }.ok_or_else(|| {
        format!(
            "{} does not export {name}: it does not match this loader",
            format::RUNTIME_DLL
        )
    })?;
    // SAFETY: same size (asserted), and the caller promises the type.
    Ok(unsafe { std::mem::transmute_copy::<RawFn, F>(&raw) })
}

/// The runtime, loading it on first use; a failure is logged once and remembered.
fn runtime() -> Option<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            let loaded = load_runtime();
            if let Err(why) = &loaded {
                let (_, path) = own_module();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                isapi_freeze_diagnostics::log_error(&dir, &name, &format!("cannot start: {why}"));
            }
            loaded
        })
        .as_ref()
        .ok()
}

/// ISAPI: called once when IIS loads the extension. FALSE makes IIS refuse requests for it.
///
/// # Safety
/// `version` is the HSE_VERSION_INFO IIS passes.
#[no_mangle]
pub unsafe extern "system" fn GetExtensionVersion(version: Ptr) -> BOOL {
    match runtime() {
        Some(rt) => (rt.get_extension_version)(version),
        None => FALSE,
    }
}

/// ISAPI: one request.
///
/// # Safety
/// `ecb` is the EXTENSION_CONTROL_BLOCK IIS passes.
#[no_mangle]
pub unsafe extern "system" fn HttpExtensionProc(ecb: Ptr) -> u32 {
    match runtime() {
        Some(rt) => (rt.http_extension_proc)(ecb),
        None => HSE_STATUS_ERROR,
    }
}

/// ISAPI: IIS is unloading the extension.
///
/// # Safety
/// Called by IIS with HSE_TERM_* flags.
#[no_mangle]
pub unsafe extern "system" fn TerminateExtension(flags: u32) -> BOOL {
    match RUNTIME.get() {
        Some(Ok(rt)) => (rt.terminate_extension)(flags),
        _ => 1,
    }
}

/// ISAPI filter: called once when IIS loads the filter.
///
/// # Safety
/// `version` is the HTTP_FILTER_VERSION IIS passes.
#[no_mangle]
pub unsafe extern "system" fn GetFilterVersion(version: Ptr) -> BOOL {
    match runtime() {
        Some(rt) => (rt.get_filter_version)(version),
        None => FALSE,
    }
}

/// ISAPI filter: one notification.
///
/// # Safety
/// The arguments are those IIS passes for a notification.
#[no_mangle]
pub unsafe extern "system" fn HttpFilterProc(context: Ptr, notification: u32, data: Ptr) -> u32 {
    match runtime() {
        Some(rt) => (rt.http_filter_proc)(context, notification, data),
        None => SF_STATUS_REQ_ERROR as u32,
    }
}

/// ISAPI filter: IIS is unloading the filter.
///
/// # Safety
/// Called by IIS with flags.
#[no_mangle]
pub unsafe extern "system" fn TerminateFilter(flags: u32) -> BOOL {
    match RUNTIME.get() {
        Some(Ok(rt)) => (rt.terminate_filter)(flags),
        _ => 1,
    }
}
