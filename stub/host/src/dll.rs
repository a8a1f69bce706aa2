//! Loading an ISAPI DLL as IIS does: `LoadLibraryExW(path, NULL, 0)` by full path, so the
//! DLL's own folder is searched for its dependencies, then finding the three entry points
//! every extension (httpext.h) and filter (httpfilt.h) exports. extension.rs and
//! filter/chain.rs load this way, and main reports a [`LoadError`] for both alike.

use std::ffi::CStr;
use std::fmt;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{FreeLibrary, GetLastError, HMODULE};
use windows_sys::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryExW};

/// An export's address as GetProcAddress gives it, before it gets its real signature.
type Farproc = unsafe extern "system" fn() -> isize;

/// Which ISAPI contract a DLL is loaded for: it names the exports and the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Extension,
    Filter,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Filter => "filter",
        }
    }

    /// The version call, the per-request (or per-notification) procedure, and the
    /// terminate call, which the contract makes optional.
    fn exports(self) -> [&'static CStr; 3] {
        match self {
            Kind::Extension => [c"GetExtensionVersion", c"HttpExtensionProc", c"TerminateExtension"],
            Kind::Filter => [c"GetFilterVersion", c"HttpFilterProc", c"TerminateFilter"],
        }
    }
}

/// Why an ISAPI DLL could not be started; main prints it and exits with [`LoadError::exit_code`].
#[derive(Debug)]
pub enum LoadError {
    /// LoadLibraryExW failed with this Windows error.
    Load { kind: Kind, path: PathBuf, code: u32 },
    /// The DLL lacks a required export.
    MissingExport {
        kind: Kind,
        path: PathBuf,
        name: &'static CStr,
    },
    /// GetExtensionVersion or GetFilterVersion returned FALSE.
    VersionRefused { kind: Kind, path: PathBuf },
}

impl LoadError {
    /// 2 when the DLL cannot be loaded as this kind at all, 3 when it refused to start.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Load { .. } | LoadError::MissingExport { .. } => 2,
            LoadError::VersionRefused { .. } => 3,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An extension is what the host is for, so only a filter is named as such.
        let what = |kind: Kind, path: &Path| match kind {
            Kind::Extension => path.display().to_string(),
            Kind::Filter => format!("filter {}", path.display()),
        };
        match self {
            LoadError::Load { kind, path, code } => {
                write!(f, "cannot load {}: Windows error {code}", what(*kind, path))
            }
            LoadError::MissingExport { kind, path, name } => write!(
                f,
                "cannot load {}: it does not export {}, so it is not an ISAPI {}",
                what(*kind, path),
                name.to_string_lossy(),
                kind.noun()
            ),
            LoadError::VersionRefused { kind, path } => write!(
                f,
                "{} of {} returned FALSE; see the {}'s log",
                kind.exports()[0].to_string_lossy(),
                path.display(),
                kind.noun()
            ),
        }
    }
}

/// A DLL's three entry points with the types its header gives them.
pub struct EntryPoints<Version, Proc, Terminate> {
    pub version: Version,
    pub proc_: Proc,
    pub terminate: Option<Terminate>,
}

/// A loaded DLL. It is not unloaded at shutdown: the process ends right after
/// TerminateExtension and TerminateFilter, and a request thread that outlived the shutdown
/// grace period may still be inside it (only a control line `unload /VPATH` frees one).
pub struct Dll {
    /// The full path it was loaded from.
    pub path: PathBuf,
    kind: Kind,
    module: HMODULE,
}

impl Dll {
    /// Loads the DLL at `path`, made absolute first as IIS always loads by full path.
    pub fn load(path: &Path, kind: Kind) -> Result<Dll, LoadError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call; a null
        // file handle and flags 0 are the documented plain load.
        let module = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), 0) };
        if module.is_null() {
            // SAFETY: reads the calling thread's last-error value, set by LoadLibraryExW.
            let code = unsafe { GetLastError() };
            return Err(LoadError::Load { kind, path, code });
        }
        Ok(Dll { path, kind, module })
    }

    /// The module handle, for [`free`] when the DLL is unloaded on request.
    pub fn module(&self) -> HMODULE {
        self.module
    }

    /// Finds the three exports of the DLL's kind; a missing version call or procedure
    /// means the DLL is not of this kind.
    ///
    /// # Safety
    /// `Version`, `Proc` and `Terminate` are the function pointer types httpext.h or
    /// httpfilt.h gives these exports (all "system" ABI).
    pub unsafe fn entry_points<Version: Copy, Proc: Copy, Terminate: Copy>(
        &self,
    ) -> Result<EntryPoints<Version, Proc, Terminate>, LoadError> {
        let [version, proc_, terminate] = self.kind.exports();
        let export = |name: &CStr| {
            // SAFETY: `module` is a loaded module handle and `name` is NUL-terminated.
            unsafe { GetProcAddress(self.module, name.as_ptr().cast()) }
        };
        let require = |name: &'static CStr| {
            export(name).ok_or_else(|| LoadError::MissingExport {
                kind: self.kind,
                path: self.path.clone(),
                name,
            })
        };
        // SAFETY: the caller names each export's real type.
        unsafe {
            Ok(EntryPoints {
                version: typed(require(version)?),
                proc_: typed(require(proc_)?),
                terminate: export(terminate).map(|t| typed(t)),
            })
        }
    }
}

/// An export's address as the function pointer type `F`.
///
/// # Safety
/// `F` is the export's real signature: a function pointer, which has the size of any other.
unsafe fn typed<F: Copy>(export: Farproc) -> F {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<Farproc>()) };
    // SAFETY: the sizes match (checked above) and the caller vouches for the signature.
    unsafe { std::mem::transmute_copy(&export) }
}

/// The description in a fixed-size array of HSE_VERSION_INFO or HTTP_FILTER_VERSION, as
/// text; a description without its NUL ends at the array's end instead of reading past it.
pub fn description(chars: &[i8]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// FreeLibrary: what IIS does with an extension's DLL after TerminateExtension when it
/// removes the application (isapi-host's `unload /VPATH`).
///
/// # Safety
/// `module` was returned by a LoadLibrary call of this process, no thread runs in it any
/// more, and nothing calls its exports afterwards.
pub unsafe fn free(module: HMODULE) {
    // SAFETY: as the caller promises.
    unsafe { FreeLibrary(module) };
}
