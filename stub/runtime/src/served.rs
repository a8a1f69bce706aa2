//! The module this runtime serves: the loader DLL (`_SCRIPT.dll`, inside IIS or isapi-host)
//! or the launcher exe (`SCRIPT.exe`) that loaded it. Its resources hold the config and the
//! app archive, its folder the rest of the output, and its log is written beside it. An
//! app that joined this runtime's interpreter (`sharing`) is a served module too, in `apps`.

use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::LibraryLoader::GetModuleFileNameW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// An ISAPI DLL inside IIS (or isapi-host).
    Dll,
    /// The launcher executable (`SCRIPT.exe`).
    Exe,
}

#[derive(Clone)]
pub struct ServedModule {
    /// The module handle, as an integer (it is `sys.isapidllhandle` for a DLL).
    pub handle: usize,
    pub kind: ModuleKind,
    pub path: PathBuf,
    pub dir: PathBuf,
    pub file_name: String,
}

/// The module that loaded this runtime (its app is index 0 of `apps`).
static SERVED: OnceLock<ServedModule> = OnceLock::new();

/// Records the module that loaded this runtime; the first call wins.
pub fn set(module: HMODULE, kind: ModuleKind) -> &'static ServedModule {
    SERVED.get_or_init(|| describe(module, kind))
}

/// The served module `module` (this runtime's own, or an app that joined it).
pub fn describe(module: HMODULE, kind: ModuleKind) -> ServedModule {
    let mut buffer = vec![0u16; 32_768];
    // SAFETY: the buffer is writable for the length we pass; `module` is a loaded module.
    let len = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    let path = PathBuf::from(std::ffi::OsString::from_wide(&buffer[..len]));
    ServedModule {
        handle: module as usize,
        kind,
        dir: path.parent().map(PathBuf::from).unwrap_or_default(),
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path,
    }
}

pub fn get() -> Option<&'static ServedModule> {
    SERVED.get()
}

/// The module whose log this thread writes: the app whose call it runs, else this
/// runtime's own.
fn logging() -> Option<&'static ServedModule> {
    crate::apps::current().map(|app| &app.served).or_else(|| SERVED.get())
}

/// Appends a line to the served module's log (`logs\NAME.log` beside it): the trace log
/// that `isapi-freeze trace` follows.
pub fn log(message: &str) {
    if let Some(served) = logging() {
        isapi_freeze_diagnostics::append_log(&served.dir, &served.file_name, message);
    }
}

/// Logs an error in the served module's log and in the Windows Event Log.
pub fn log_error(message: &str) {
    if let Some(served) = logging() {
        isapi_freeze_diagnostics::log_error(&served.dir, &served.file_name, message);
    }
}
