//! The functions the loader and the launcher call: `isapi_freeze_attach` and the six ISAPI
//! entry points (for the loader), `isapi_freeze_run_main` (for the launcher). Each one
//! turns failures into a logged line and the status ISAPI expects; no panic or Python
//! exception crosses into IIS. The ISAPI work is done per app (`app_*`, taking the app's
//! index): the exports call them for this runtime's own app, `sharing` hands them to the
//! runtime of an app that joined this one's interpreter, and an app that joined another
//! runtime forwards its exports to that runtime's.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, HMODULE, TRUE};
use windows_sys::Win32::System::Iis::{
    EXTENSION_CONTROL_BLOCK, HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_VERSION_INFO, HSE_VERSION_MAJOR,
    HSE_VERSION_MINOR, HTTP_FILTER_CONTEXT, HTTP_FILTER_VERSION, SF_NOTIFY_END_OF_NET_SESSION,
    SF_STATUS_REQ_ERROR as SF_STATUS_REQ_ERROR_I32,
};

use crate::apps;
use crate::c_strings;
use crate::ecb::ExtensionControlBlock;
use crate::filter::{self, FilterContext};
use crate::interpreter::{self, describe, Started};
use crate::served::{self, ModuleKind};
use crate::version::{ExtensionVersion, FilterVersion};

/// The FilterVersion a script's GetFilterVersion finds preset: `HTTP_FILTER_REVISION` of
/// the Windows 10 SDK's httpfilt.h (10.0), as pywin32 312's loader, built with it, presets.
const HTTP_FILTER_REVISION: u32 = 0x000A_0000;
/// httpfilt.h's SF_STATUS_TYPE values the runtime answers itself.
const SF_STATUS_REQ_ERROR: u32 = SF_STATUS_REQ_ERROR_I32 as u32;

/// Runs `f`, turning a panic into `fallback` and a log line.
pub(crate) fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            served::log_error(&format!("internal error in the isapi-freeze runtime: {what}"));
            fallback
        }
    }
}

/// Calls `boot.<function>(*args)` with the GIL; a Python error is logged and gives None.
fn call_boot<'py>(
    py: Python<'py>,
    app: usize,
    function: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> Option<Bound<'py, PyAny>> {
    let boot = apps::get(app)?.boot.get()?;
    logged(py, function, boot.bind(py).call_method1(function, args))
}

/// A call's value, or None with its Python error logged as `function` failing.
fn logged<'py>(py: Python<'py>, function: &str, called: PyResult<Bound<'py, PyAny>>) -> Option<Bound<'py, PyAny>> {
    called
        .map_err(|e| served::log_error(&format!("{function} failed:\n{}", describe(py, &e))))
        .ok()
}

/// Calls the boot module's per-request function `pick` of app `app` (`name` for the log).
fn call_per_request<'py>(
    py: Python<'py>,
    app: usize,
    pick: fn(&apps::PerRequest) -> &Py<PyAny>,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> Option<Bound<'py, PyAny>> {
    let function = pick(apps::get(app)?.per_request.get()?);
    logged(py, name, function.bind(py).call1(args))
}

/// Calls the boot module's `function` (get_extension_version / get_filter_version) with
/// the version object `info`: whether the script's GetExtensionVersion or GetFilterVersion
/// returned a true value.
fn ask_version<T: pyo3::PyClass>(py: Python<'_>, app: usize, function: &str, info: &Py<T>) -> bool {
    call_boot(py, app, function, (info.clone_ref(py),)).is_some_and(|r| r.is_truthy().unwrap_or(false))
}

/// Tells the runtime which module it serves. The loader calls it once, before anything else.
///
/// # Safety
/// `module` is the loader's own module handle.
#[no_mangle]
pub unsafe extern "system" fn isapi_freeze_attach(module: HMODULE) -> BOOL {
    guarded(FALSE, || {
        served::set(module, ModuleKind::Dll);
        TRUE
    })
}

fn start_for_dll() -> Option<&'static Started> {
    interpreter::start(served::get()?).ok()
}

/// Whether app `app` is started here (its boot module ran).
fn booted(app: usize) -> bool {
    apps::get(app).is_some_and(|app| app.boot.get().is_some())
}

/// ISAPI GetExtensionVersion: starts Python (first call), calls the script's factory and its
/// GetExtensionVersion.
///
/// # Safety
/// `version` points to the HSE_VERSION_INFO the server passes.
#[no_mangle]
pub unsafe extern "system" fn GetExtensionVersion(version: *mut HSE_VERSION_INFO) -> BOOL {
    guarded(FALSE, || match start_for_dll() {
        None => FALSE,
        // SAFETY: forwarded as the server passed it.
        Some(Started::Joined(joined)) => unsafe { (joined.get_extension_version)(joined.app, version.cast()) },
        // SAFETY: as the server passed it.
        Some(Started::Here) => unsafe { app_get_extension_version(0, version.cast()) },
    })
}

/// GetExtensionVersion for app `app` of this runtime.
///
/// # Safety
/// `version` points to the HSE_VERSION_INFO the server passes.
pub unsafe extern "system" fn app_get_extension_version(app: usize, version: *mut c_void) -> BOOL {
    guarded(FALSE, || {
        apps::serving(app, || {
            // SAFETY: the server passes a writable HSE_VERSION_INFO, its own for this call.
            let version = unsafe { &mut *version.cast::<HSE_VERSION_INFO>() };
            version.dwExtensionVersion = (HSE_VERSION_MAJOR << 16) | HSE_VERSION_MINOR;
            if !booted(app) {
                return FALSE;
            }
            interpreter::attach(|py| {
                let Ok(info) = Py::new(py, ExtensionVersion::new()) else {
                    return FALSE;
                };
                let ok = ask_version(py, app, "get_extension_version", &info);
                // The setter kept the description shorter than the array.
                c_strings::copy_truncated(&mut version.lpszExtensionDesc, info.borrow(py).desc());
                BOOL::from(ok)
            })
        })
    })
}

/// ISAPI HttpExtensionProc: one request, handed to the script's HttpExtensionProc.
///
/// # Safety
/// `ecb` is the control block the server passes, valid until the session ends.
#[no_mangle]
pub unsafe extern "system" fn HttpExtensionProc(ecb: *mut EXTENSION_CONTROL_BLOCK) -> u32 {
    match interpreter::started() {
        // SAFETY: forwarded as the server passed it.
        Some(Started::Joined(joined)) => unsafe { (joined.http_extension_proc)(joined.app, ecb.cast()) },
        // SAFETY: as the server passed it.
        _ => unsafe { app_http_extension_proc(0, ecb.cast()) },
    }
}

/// HttpExtensionProc for app `app` of this runtime.
///
/// # Safety
/// `ecb` is the control block the server passes, valid until the session ends.
pub unsafe extern "system" fn app_http_extension_proc(app: usize, ecb: *mut c_void) -> u32 {
    let ecb = ecb.cast::<EXTENSION_CONTROL_BLOCK>();
    guarded(HSE_STATUS_ERROR, || {
        // An ASGI server taking requests natively queues them without the GIL.
        if let Some(status) = crate::asgi::dispatch(app, ecb) {
            return status;
        }
        apps::serving(app, || {
            interpreter::attach(|py| {
                let Ok(object) = Py::new(py, ExtensionControlBlock::new(ecb)) else {
                    return HSE_STATUS_ERROR;
                };
                let status = call_per_request(
                    py,
                    app,
                    |e| &e.http_extension_proc,
                    "http_extension_proc",
                    (object.clone_ref(py),),
                )
                .and_then(|r| r.extract::<u32>().ok())
                .unwrap_or(HSE_STATUS_ERROR);
                if status != HSE_STATUS_PENDING {
                    // The server may free the control block once we return.
                    object.get().invalidate();
                }
                status
            })
        })
    })
}

/// Calls the boot module's `function` (terminate_extension / terminate_filter) of app
/// `app`: FALSE only when the script's Terminate* returned a false value.
fn terminate(app: usize, function: &str, flags: u32) -> BOOL {
    if !booted(app) {
        return TRUE;
    }
    apps::serving(app, || {
        interpreter::attach(|py| match call_boot(py, app, function, (flags,)) {
            Some(r) if !r.is_truthy().unwrap_or(true) => FALSE,
            _ => TRUE,
        })
    })
}

/// ISAPI TerminateExtension.
///
/// # Safety
/// Called by the server with HSE_TERM_* flags.
#[no_mangle]
pub unsafe extern "system" fn TerminateExtension(flags: u32) -> BOOL {
    match interpreter::started() {
        // SAFETY: forwarded as the server passed it.
        Some(Started::Joined(joined)) => unsafe { (joined.terminate_extension)(joined.app, flags) },
        // SAFETY: no pointers.
        _ => unsafe { app_terminate_extension(0, flags) },
    }
}

/// TerminateExtension for app `app` of this runtime.
///
/// # Safety
/// Called with HSE_TERM_* flags.
pub unsafe extern "system" fn app_terminate_extension(app: usize, flags: u32) -> BOOL {
    guarded(TRUE, || terminate(app, "terminate_extension", flags))
}

/// ISAPI GetFilterVersion: starts Python (first call), calls the script's filter factory
/// and its GetFilterVersion.
///
/// # Safety
/// `version` points to the HTTP_FILTER_VERSION the server passes.
#[no_mangle]
pub unsafe extern "system" fn GetFilterVersion(version: *mut HTTP_FILTER_VERSION) -> BOOL {
    guarded(FALSE, || match start_for_dll() {
        None => FALSE,
        // SAFETY: forwarded as the server passed it.
        Some(Started::Joined(joined)) => unsafe { (joined.get_filter_version)(joined.app, version.cast()) },
        // SAFETY: as the server passed it.
        Some(Started::Here) => unsafe { app_get_filter_version(0, version.cast()) },
    })
}

/// GetFilterVersion for app `app` of this runtime.
///
/// # Safety
/// `version` points to the HTTP_FILTER_VERSION the server passes.
pub unsafe extern "system" fn app_get_filter_version(app: usize, version: *mut c_void) -> BOOL {
    guarded(FALSE, || {
        // SAFETY: the server passes a writable HTTP_FILTER_VERSION, its own for this call.
        let version = unsafe { &mut *version.cast::<HTTP_FILTER_VERSION>() };
        let server_version = version.dwServerFilterVersion;
        if !booted(app) {
            return FALSE;
        }
        apps::serving(app, || {
            interpreter::attach(|py| {
                let Ok(info) = Py::new(py, FilterVersion::new(server_version, HTTP_FILTER_REVISION)) else {
                    return FALSE;
                };
                let ok = ask_version(py, app, "get_filter_version", &info);
                let info = info.borrow(py);
                version.dwFilterVersion = info.filter_version;
                // As pywin32 does: END_OF_NET_SESSION is where a connection's FilterContext
                // object is released, so the runtime always asks for it.
                version.dwFlags = match ok {
                    true => info.flags | SF_NOTIFY_END_OF_NET_SESSION,
                    false => info.flags,
                };
                // The setter kept the description shorter than the array.
                c_strings::copy_truncated(&mut version.lpszFilterDesc, info.desc());
                BOOL::from(ok)
            })
        })
    })
}

/// ISAPI HttpFilterProc: one notification, handed to the script's HttpFilterProc with an
/// HTTP_FILTER_CONTEXT object; its return value goes back to the server.
///
/// # Safety
/// The arguments are those the server passes for a notification.
#[no_mangle]
pub unsafe extern "system" fn HttpFilterProc(
    context: *mut HTTP_FILTER_CONTEXT,
    notification: u32,
    data: *mut std::ffi::c_void,
) -> u32 {
    match interpreter::started() {
        // SAFETY: forwarded as the server passed them.
        Some(Started::Joined(joined)) => unsafe {
            (joined.http_filter_proc)(joined.app, context.cast(), notification, data)
        },
        // SAFETY: as the server passed them.
        _ => unsafe { app_http_filter_proc(0, context.cast(), notification, data) },
    }
}

/// HttpFilterProc for app `app` of this runtime.
///
/// # Safety
/// The arguments are those the server passes for a notification.
pub unsafe extern "system" fn app_http_filter_proc(
    app: usize,
    context: *mut c_void,
    notification: u32,
    data: *mut c_void,
) -> u32 {
    let context = context.cast::<HTTP_FILTER_CONTEXT>();
    guarded(SF_STATUS_REQ_ERROR, || {
        if context.is_null() || !booted(app) {
            return SF_STATUS_REQ_ERROR;
        }
        apps::serving(app, || {
            interpreter::attach(|py| {
                // SAFETY: the server passes a live context for this notification.
                let object = match Py::new(py, unsafe { FilterContext::new(context, notification, data) }) {
                    Ok(object) => object,
                    Err(_) => return SF_STATUS_REQ_ERROR,
                };
                let status = call_per_request(
                    py,
                    app,
                    |e| &e.http_filter_proc,
                    "http_filter_proc",
                    (object.clone_ref(py),),
                )
                .and_then(|r| r.extract::<u32>().ok())
                .unwrap_or(SF_STATUS_REQ_ERROR);
                // The server may reuse the context and the data once we return.
                object.get().invalidate();
                if notification == SF_NOTIFY_END_OF_NET_SESSION {
                    // SAFETY: the context is still the server's live one for this call.
                    unsafe { filter::release_connection_context(context) };
                }
                status
            })
        })
    })
}

/// ISAPI TerminateFilter.
///
/// # Safety
/// Called by the server with flags.
#[no_mangle]
pub unsafe extern "system" fn TerminateFilter(flags: u32) -> BOOL {
    match interpreter::started() {
        // SAFETY: forwarded as the server passed it.
        Some(Started::Joined(joined)) => unsafe { (joined.terminate_filter)(joined.app, flags) },
        // SAFETY: no pointers.
        _ => unsafe { app_terminate_filter(0, flags) },
    }
}

/// TerminateFilter for app `app` of this runtime.
///
/// # Safety
/// Called with flags.
pub unsafe extern "system" fn app_terminate_filter(app: usize, flags: u32) -> BOOL {
    guarded(TRUE, || terminate(app, "terminate_filter", flags))
}

/// The launcher's main: runs the script as `__main__` and returns the process exit code
/// (SystemExit's code, 1 after an uncaught exception or a failed start). `SCRIPT.exe trace`
/// follows the output directory's logs instead, without starting Python.
///
/// # Safety
/// `module` is the calling executable's module handle.
#[no_mangle]
pub unsafe extern "system" fn isapi_freeze_run_main(module: HMODULE) -> i32 {
    guarded(1, || {
        let served = served::set(module, ModuleKind::Exe);
        if std::env::args().nth(1).as_deref() == Some("trace") {
            eprintln!("following {}\\logs (Ctrl+C to stop)", served.dir.display());
            let stdout = std::io::stdout();
            let followed = isapi_freeze_diagnostics::trace::follow(&served.dir, 20, true, &mut stdout.lock());
            return i32::from(followed.is_err());
        }
        if let Err(why) = interpreter::start(served) {
            eprintln!("{}: cannot start: {why}", served.file_name);
            return 1;
        }
        let code = Python::attach(|py| {
            let boot = apps::get(0)
                .and_then(|app| app.boot.get())
                .expect("started above")
                .bind(py);
            match boot.call_method0("run_main") {
                Ok(_) => 0,
                Err(e) if e.is_instance_of::<pyo3::exceptions::PySystemExit>(py) => exit_code(py, &e),
                Err(e) => {
                    e.display(py);
                    1
                }
            }
        });
        // SAFETY: the GIL is held by this thread (an exe never released it); finalizing
        // flushes the standard streams and runs atexit handlers.
        let flushed = unsafe { pyo3::ffi::Py_FinalizeEx() };
        if code == 0 && flushed < 0 {
            120
        } else {
            code
        }
    })
}

/// The process exit code SystemExit asks for, as Python's own main computes it.
fn exit_code(py: Python<'_>, err: &PyErr) -> i32 {
    let Ok(code) = err.value(py).getattr("code") else {
        return 1;
    };
    if code.is_none() {
        return 0;
    }
    if let Ok(n) = code.extract::<i32>() {
        return n;
    }
    // Anything else is printed to stderr, and the exit code is 1.
    let _ = py
        .import("sys")
        .and_then(|sys| sys.getattr("stderr"))
        .and_then(|stderr| {
            stderr.call_method1(
                "write",
                (format!("{}\n", code.str().map(|s| s.to_string()).unwrap_or_default()),),
            )
        });
    1
}

// The loader and the launcher call these by the contract's names and types (stub/format's
// `exports`): a signature that drifts from it fails to compile here.
const _: (
    isapi_freeze_format::exports::AttachFn,
    isapi_freeze_format::exports::RunMainFn,
    isapi_freeze_format::exports::JoinFn,
) = (
    isapi_freeze_attach,
    isapi_freeze_run_main,
    crate::sharing::isapi_freeze_join,
);
