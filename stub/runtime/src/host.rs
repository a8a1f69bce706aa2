//! The module this runtime serves (the loader DLL or the installer exe): its handle, path
//! and folder, where its resources are read from and where its log is written.

use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::LibraryLoader::GetModuleFileNameW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// An ISAPI DLL inside IIS (or isapi-host).
    Dll,
    /// The install executable.
    Exe,
}

pub struct Host {
    /// The module handle, as an integer (it is `sys.isapidllhandle` for a DLL).
    pub handle: usize,
    pub kind: HostKind,
    pub path: PathBuf,
    pub dir: PathBuf,
    pub file_name: String,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Records the host module; the first call wins (one runtime serves one host).
pub fn set(module: HMODULE, kind: HostKind) -> &'static Host {
    HOST.get_or_init(|| {
        let mut buffer = vec![0u16; 32_768];
        // SAFETY: the buffer is writable for the length we pass; `module` is a loaded module.
        let len = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
        let path = PathBuf::from(std::ffi::OsString::from_wide(&buffer[..len]));
        Host {
            handle: module as usize,
            kind,
            dir: path.parent().map(PathBuf::from).unwrap_or_default(),
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
        }
    })
}

pub fn get() -> Option<&'static Host> {
    HOST.get()
}

/// Appends a line to the host's log (`logs\NAME.log` beside it): the trace log that
/// `isapi-freeze trace` follows.
pub fn log(message: &str) {
    if let Some(host) = HOST.get() {
        isapi_freeze_diagnostics::append_log(&host.dir, &host.file_name, message);
    }
}

/// Logs an error in the host's log and in the Windows Event Log.
pub fn log_error(message: &str) {
    if let Some(host) = HOST.get() {
        isapi_freeze_diagnostics::log_error(&host.dir, &host.file_name, message);
    }
}
