//! Whether another Python already runs in this process when a served DLL is about to start
//! its own. IIS loads a site's filters into every worker of the site, so two frozen apps, or
//! a frozen app and pywin32's loader, can meet in one worker: a frozen app of the same CPython
//! version is joined (`sharing`); anything else makes the second app refuse with a message
//! naming the first, instead of a panic inside pyo3 or two CPythons side by side.

use std::ffi::{c_char, c_int, CStr};
use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use pyo3::ffi;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, HMODULE};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleFileNameW, GetModuleHandleExW, GetModuleHandleW, GetProcAddress, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
    GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
};
use windows_sys::Win32::System::ProcessStatus::K32EnumProcessModules;
use windows_sys::Win32::System::Threading::{
    CreateMutexW, GetCurrentProcess, GetCurrentProcessId, ReleaseMutex, WaitForSingleObject, INFINITE,
};

/// The export by which one runtime tells another, loaded later into the same process,
/// which app it serves (see [`isapi_freeze_serving`]).
const SERVING_EXPORT: &[u8] = b"isapi_freeze_serving\0";

/// What [`isapi_freeze_serving`] answers once this runtime's Python runs: UTF-16, NUL-ended.
static SERVING: OnceLock<Vec<u16>> = OnceLock::new();

/// The app this runtime serves with a running Python, as `PATH (Python X.Y)`, NUL-terminated
/// UTF-16; null while its Python has not started. Read by another app's runtime to say
/// whose Python it found (a process-wide marker that no child process inherits).
#[no_mangle]
pub extern "system" fn isapi_freeze_serving() -> *const u16 {
    SERVING.get().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Records that this runtime's Python runs for `served_path`, for [`isapi_freeze_serving`].
pub fn mark_running(served_path: &std::path::Path, python_dll: &str) {
    let text = format!("{} (Python {})", served_path.display(), version_of_dll(python_dll));
    let _ = SERVING.set(text.encode_utf16().chain([0]).collect());
}

/// A mutex of this process that every runtime in it (whatever its version, whichever copy)
/// holds from the check for a running Python until its own Python runs and is marked.
pub struct StartLock(HANDLE);

impl StartLock {
    /// Waits for the process's start lock; None if Windows cannot make it (then the check
    /// still runs, only without protection from a simultaneous start).
    pub fn take() -> Option<StartLock> {
        // SAFETY: GetCurrentProcessId has no preconditions.
        let name = format!("Local\\isapi-freeze-python-start-{}", unsafe { GetCurrentProcessId() });
        let wide: Vec<u16> = name.encode_utf16().chain([0]).collect();
        // SAFETY: `wide` is NUL-terminated; default security; not owned on creation.
        let mutex = unsafe { CreateMutexW(std::ptr::null(), 0, wide.as_ptr()) };
        if mutex.is_null() {
            return None;
        }
        // SAFETY: `mutex` is a valid handle; an abandoned mutex (a thread that died holding
        // it) is owned by this thread as well, which is what we want.
        unsafe { WaitForSingleObject(mutex, INFINITE) };
        Some(StartLock(mutex))
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        // SAFETY: this thread owns the mutex (taken in `take`) and the handle is ours.
        unsafe {
            ReleaseMutex(self.0);
            CloseHandle(self.0);
        }
    }
}

/// `python313.dll` -> `3.13`.
fn version_of_dll(python_dll: &str) -> String {
    let digits: String = python_dll
        .trim_start_matches("python")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.split_at_checked(1) {
        Some((major, minor)) if !minor.is_empty() => format!("{major}.{minor}"),
        _ => python_dll.to_string(),
    }
}

fn module_path(module: HMODULE) -> PathBuf {
    let mut buffer = vec![0u16; 32_768];
    // SAFETY: the buffer is writable for the length we pass; `module` is loaded.
    let len = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    PathBuf::from(std::ffi::OsString::from_wide(&buffer[..len]))
}

/// Every module loaded in this process.
fn loaded_modules() -> Vec<HMODULE> {
    let mut modules: Vec<HMODULE> = vec![std::ptr::null_mut(); 1024];
    loop {
        let bytes = (modules.len() * std::mem::size_of::<HMODULE>()) as u32;
        let mut needed = 0u32;
        // SAFETY: `modules` is writable for `bytes` bytes; GetCurrentProcess is a pseudo-handle.
        let ok = unsafe { K32EnumProcessModules(GetCurrentProcess(), modules.as_mut_ptr(), bytes, &mut needed) };
        if ok == 0 {
            return Vec::new();
        }
        let count = needed as usize / std::mem::size_of::<HMODULE>();
        if count <= modules.len() {
            modules.truncate(count);
            return modules;
        }
        modules.resize(count, std::ptr::null_mut());
    }
}

/// `python3XY.dll` (any case), the name every CPython DLL has; not `python3.dll`, the
/// stable-ABI forwarder.
fn is_python_dll(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.strip_prefix("python3")
        .and_then(|rest| rest.strip_suffix(".dll"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A Python DLL's running version (`3.12.7`), asked through its own exports; None when it
/// is loaded but not initialized.
fn running_version(module: HMODULE) -> Option<String> {
    type IsInitialized = unsafe extern "C" fn() -> c_int;
    type GetVersion = unsafe extern "C" fn() -> *const c_char;
    // SAFETY: `module` is a loaded CPython DLL, whose Py_IsInitialized and Py_GetVersion have
    // these C signatures and may be called at any time, from any thread, without the GIL.
    unsafe {
        let is_initialized: IsInitialized =
            std::mem::transmute(GetProcAddress(module, c"Py_IsInitialized".as_ptr().cast())?);
        if is_initialized() == 0 {
            return None;
        }
        let get_version: GetVersion = std::mem::transmute(GetProcAddress(module, c"Py_GetVersion".as_ptr().cast())?);
        Some(first_word(get_version()))
    }
}

/// The first word of a C string (Py_GetVersion's `3.12.7 (tags/v3.12.7:...) [MSC ...]`).
///
/// # Safety
/// `text` is null or a NUL-terminated string.
unsafe fn first_word(text: *const c_char) -> String {
    if text.is_null() {
        return "?".into();
    }
    let text = CStr::from_ptr(text).to_string_lossy();
    text.split_whitespace().next().unwrap_or("?").to_string()
}

/// This runtime DLL's own module.
fn own_module() -> HMODULE {
    let mut module: HMODULE = std::ptr::null_mut();
    // SAFETY: FROM_ADDRESS takes any address inside this module (a static of ours);
    // UNCHANGED_REFCOUNT means nothing to release; `module` is a valid out-pointer.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            &SERVING as *const _ as *const u16,
            &mut module,
        );
    }
    module
}

/// A frozen app's runtime, running the interpreter this app can share.
pub struct SharingHost {
    /// That runtime's module.
    pub runtime: HMODULE,
    /// The app it serves, as its `isapi_freeze_serving` says: `PATH (Python X.Y)`.
    pub app: String,
}

/// None when no Python runs in this process (this app starts its own); the frozen app's
/// runtime to join when one of the same CPython version (`python_dll`, the one this runtime
/// was built for) runs; else fails, saying what runs and what to do: another CPython
/// version, or a Python that no frozen app started (pywin32's loader, another embedder).
pub fn shareable_or_refuse(python_dll: &str) -> Result<Option<SharingHost>, String> {
    let wanted = version_of_dll(python_dll);
    let wide: Vec<u16> = python_dll.encode_utf16().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated; the handle is not released (none is taken).
    let ours = unsafe { GetModuleHandleW(wide.as_ptr()) };
    // SAFETY: Py_IsInitialized may be called at any time, before or after initialization.
    let same = (unsafe { ffi::Py_IsInitialized() } != 0).then(|| {
        // SAFETY: Py_GetVersion returns a static NUL-terminated string.
        let version = unsafe { first_word(ffi::Py_GetVersion()) };
        (version, module_path(ours))
    });
    let me = own_module();
    let mut other = None;
    let mut frozen_apps = Vec::new();
    let mut pywin32 = None;
    for module in loaded_modules() {
        let path = module_path(module);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if module != ours && other.is_none() && is_python_dll(&name) {
            other = running_version(module).map(|version| (version, path.clone()));
        }
        if name.to_ascii_lowercase().starts_with("pyisapi_loader") {
            pywin32 = Some(path.clone());
        }
        if module == me {
            continue;
        }
        // SAFETY: the export, where a module has it, is `isapi_freeze_serving` above: no
        // arguments, a pointer to a NUL-terminated UTF-16 string or null, valid while that
        // runtime stays loaded (it is: its app is running).
        unsafe {
            if let Some(serving) = GetProcAddress(module, SERVING_EXPORT.as_ptr()) {
                let serving: extern "system" fn() -> *const u16 = std::mem::transmute(serving);
                let text = serving();
                if !text.is_null() {
                    let len = (0..).take_while(|&i| *text.add(i) != 0).count();
                    let app = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
                    frozen_apps.push(SharingHost { runtime: module, app });
                }
            }
        }
    }
    let Some((version, dll)) = same.clone().or(other) else {
        return Ok(None);
    };
    let same_version = version.starts_with(&format!("{wanted}."));
    // Only a frozen app's runtime can take another app in; with pywin32's loader in the
    // process as well, its Python may be that one: no sharing then.
    if same_version && pywin32.is_none() && !frozen_apps.is_empty() {
        return Ok(Some(frozen_apps.swap_remove(0)));
    }
    let who = if !frozen_apps.is_empty() {
        let apps: Vec<&str> = frozen_apps.iter().map(|host| host.app.as_str()).collect();
        format!("the frozen app {}", apps.join(" and the frozen app "))
    } else if let Some(loader) = pywin32 {
        format!("pywin32's ISAPI loader {}", loader.display())
    } else {
        "a program or DLL that embeds Python (not a frozen app, not pywin32's ISAPI loader)".to_string()
    };
    let what_to_do = if same_version {
        "only frozen apps share one interpreter: give this app an application pool and a site of \
         its own (IIS loads a filter registered on a site, or server-wide, into every worker of that site)"
            .to_string()
    } else {
        format!(
            "one process runs one CPython version: give this app an application pool and a site of \
             its own (IIS loads a filter registered on a site, or server-wide, into every worker of \
             that site), or freeze both apps for one CPython version (this app is for {wanted})"
        )
    };
    Err(format!(
        "Python {version} ({}) already runs in this process, started by {who}; {what_to_do}",
        dll.display()
    ))
}
