//! Loading one ISAPI extension DLL exactly as IIS does (`LoadLibraryExW(path, NULL, 0)` by
//! full path, then its three exports), and calling GetExtensionVersion and
//! TerminateExtension. HttpExtensionProc is called per request by ecb.rs.

use std::ffi::CStr;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::GetLastError;
use windows_sys::Win32::System::Iis::{EXTENSION_CONTROL_BLOCK, HSE_VERSION_INFO};
use windows_sys::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryExW};

/// Why an extension could not be started; main turns each into its message and exit code.
#[derive(Debug)]
pub enum LoadError {
    /// LoadLibraryExW failed with this Windows error.
    Load { path: PathBuf, code: u32 },
    /// The DLL lacks a required export.
    MissingExport { path: PathBuf, name: &'static str },
}

type GetExtensionVersion = unsafe extern "system" fn(*mut HSE_VERSION_INFO) -> windows_sys::core::BOOL;
pub type HttpExtensionProc = unsafe extern "system" fn(*mut EXTENSION_CONTROL_BLOCK) -> u32;
type TerminateExtension = unsafe extern "system" fn(u32) -> windows_sys::core::BOOL;

/// A loaded extension. It is never unloaded: the process ends right after
/// TerminateExtension, and a request thread that outlived the shutdown grace period may
/// still be inside the DLL.
pub struct Extension {
    pub path: PathBuf,
    get_extension_version: GetExtensionVersion,
    http_extension_proc: HttpExtensionProc,
    terminate_extension: Option<TerminateExtension>,
}

impl Extension {
    /// Loads the DLL at `path` (made absolute first: IIS always loads by full path, so the
    /// DLL's own folder is searched for its dependencies).
    pub fn load(path: &Path) -> Result<Extension, LoadError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call; a null
        // file handle and flags 0 are the documented plain load.
        let module = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), 0) };
        if module.is_null() {
            // SAFETY: reads the calling thread's last-error value, set by LoadLibraryExW.
            let code = unsafe { GetLastError() };
            return Err(LoadError::Load { path, code });
        }
        let export = |name: &'static CStr| {
            // SAFETY: `module` is a loaded module handle and `name` is NUL-terminated.
            unsafe { GetProcAddress(module, name.as_ptr().cast()) }
        };
        let missing = |name: &'static str| LoadError::MissingExport {
            path: path.clone(),
            name,
        };
        let version = export(c"GetExtensionVersion").ok_or_else(|| missing("GetExtensionVersion"))?;
        let proc_ = export(c"HttpExtensionProc").ok_or_else(|| missing("HttpExtensionProc"))?;
        // TerminateExtension is optional in the ISAPI contract.
        let terminate = export(c"TerminateExtension");
        type Farproc = unsafe extern "system" fn() -> isize;
        // SAFETY: httpext.h fixes these exports' signatures (PFN_GETEXTENSIONVERSION,
        // PFN_HTTPEXTENSIONPROC, PFN_TERMINATEEXTENSION); all use the "system" ABI, and
        // function pointers of any signature have the same size.
        let (get_extension_version, http_extension_proc, terminate_extension) = unsafe {
            (
                std::mem::transmute::<Farproc, GetExtensionVersion>(version),
                std::mem::transmute::<Farproc, HttpExtensionProc>(proc_),
                terminate.map(|t| std::mem::transmute::<Farproc, TerminateExtension>(t)),
            )
        };
        Ok(Extension {
            path,
            get_extension_version,
            http_extension_proc,
            terminate_extension,
        })
    }

    /// Calls GetExtensionVersion once; the extension's description, or None if it said FALSE.
    pub fn version(&self) -> Option<String> {
        let mut info = HSE_VERSION_INFO {
            dwExtensionVersion: 0,
            lpszExtensionDesc: [0; 256],
        };
        // SAFETY: `info` is a valid, writable HSE_VERSION_INFO for the duration of the call.
        let ok = unsafe { (self.get_extension_version)(&mut info) };
        if ok == 0 {
            return None;
        }
        // The description is a fixed 256-byte array; a missing NUL must not read past it.
        let bytes: Vec<u8> = info
            .lpszExtensionDesc
            .iter()
            .map(|&c| c as u8)
            .take_while(|&b| b != 0)
            .collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn http_extension_proc(&self) -> HttpExtensionProc {
        self.http_extension_proc
    }

    /// Calls TerminateExtension with `flags` (HSE_TERM_MUST_UNLOAD at shutdown).
    pub fn terminate(&self, flags: u32) {
        if let Some(terminate) = self.terminate_extension {
            // SAFETY: the export has the httpext.h signature; it takes flags by value.
            unsafe { terminate(flags) };
        }
    }
}
