//! One ISAPI extension DLL, loaded as IIS loads it (dll.rs) with its three exports, and
//! the calls IIS makes outside requests: GetExtensionVersion at start and
//! TerminateExtension at shutdown. HttpExtensionProc is called per request by ecb.rs.

use std::path::{Path, PathBuf};

use windows_sys::Win32::System::Iis::{EXTENSION_CONTROL_BLOCK, HSE_VERSION_INFO};

use crate::dll::{self, Dll, EntryPoints, Kind, LoadError};

type GetExtensionVersion = unsafe extern "system" fn(*mut HSE_VERSION_INFO) -> windows_sys::core::BOOL;
pub type HttpExtensionProc = unsafe extern "system" fn(*mut EXTENSION_CONTROL_BLOCK) -> u32;
type TerminateExtension = unsafe extern "system" fn(u32) -> windows_sys::core::BOOL;

/// A loaded extension. It stays loaded until the process ends, unless a control line
/// unloads it (`unload /VPATH`, [`Extension::free`]).
pub struct Extension {
    pub path: PathBuf,
    /// The DLL's module handle, as an integer (a handle is not Sync).
    module: usize,
    entry_points: EntryPoints<GetExtensionVersion, HttpExtensionProc, TerminateExtension>,
}

impl Extension {
    /// Loads the DLL at `path` by full path and finds its exports.
    pub fn load(path: &Path) -> Result<Extension, LoadError> {
        let dll = Dll::load(path, Kind::Extension)?;
        // SAFETY: these are httpext.h's PFN_GETEXTENSIONVERSION, PFN_HTTPEXTENSIONPROC and
        // PFN_TERMINATEEXTENSION.
        let entry_points = unsafe { dll.entry_points() }?;
        Ok(Extension {
            module: dll.module() as usize,
            path: dll.path,
            entry_points,
        })
    }

    /// Calls GetExtensionVersion once: the extension's description, or the error for its
    /// answering FALSE.
    pub fn version(&self) -> Result<String, LoadError> {
        let mut info = HSE_VERSION_INFO {
            dwExtensionVersion: 0,
            lpszExtensionDesc: [0; 256],
        };
        // SAFETY: `info` is a valid, writable HSE_VERSION_INFO for the duration of the call.
        if unsafe { (self.entry_points.version)(&mut info) } == 0 {
            return Err(LoadError::VersionRefused {
                kind: Kind::Extension,
                path: self.path.clone(),
            });
        }
        Ok(dll::description(&info.lpszExtensionDesc))
    }

    pub fn http_extension_proc(&self) -> HttpExtensionProc {
        self.entry_points.proc_
    }

    /// FreeLibrary of the DLL, after [`Extension::terminate`].
    ///
    /// # Safety
    /// No request runs in the extension and none will: its exports are not called again.
    pub unsafe fn free(&self) {
        // SAFETY: loaded by `load`; the caller promises nothing runs in it any more.
        unsafe { dll::free(self.module as _) };
    }

    /// Calls TerminateExtension with `flags` (HSE_TERM_MUST_UNLOAD at shutdown).
    pub fn terminate(&self, flags: u32) {
        if let Some(terminate) = self.entry_points.terminate {
            // SAFETY: the export has the httpext.h signature; it takes flags by value.
            unsafe { terminate(flags) };
        }
    }
}
