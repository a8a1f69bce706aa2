//! Python's standard streams while a served DLL starts it. CPython opens file descriptors
//! 0-2 of its C runtime (ucrtbase) as sys.stdin/stdout/stderr and refuses to start when one
//! is a handle it cannot use (closed by the parent, or a regular file under Wine), which the
//! worker's handles are none of our choosing: IIS's w3wp.exe is a service with no console.
//! A served DLL never uses them (the boot module sends sys.stdout/stderr to the log), so
//! during the start they point at NUL, and afterwards each is put back as it was.

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

type Dup = unsafe extern "C" fn(i32) -> i32;
type Dup2 = unsafe extern "C" fn(i32, i32) -> i32;
type Close = unsafe extern "C" fn(i32) -> i32;
type OpenOsfhandle = unsafe extern "C" fn(isize, i32) -> i32;

/// The C runtime functions of the CRT Python uses (not the one this DLL links: the GNU
/// toolchain's msvcrt has a file descriptor table of its own).
struct Ucrt {
    dup: Dup,
    dup2: Dup2,
    close: Close,
    open_osfhandle: OpenOsfhandle,
}

impl Ucrt {
    /// None when ucrtbase is not loaded (python3XY.dll loads it) or lacks a function.
    fn find() -> Option<Ucrt> {
        let name: Vec<u16> = "ucrtbase.dll\0".encode_utf16().collect();
        // SAFETY: a NUL-terminated name; the module stays loaded (python3XY.dll imports it
        // and is never unloaded). Each symbol is a documented CRT function whose C
        // signature is the one it is cast to.
        unsafe {
            let module = GetModuleHandleW(name.as_ptr());
            if module.is_null() {
                return None;
            }
            let get = |symbol: &[u8]| GetProcAddress(module, symbol.as_ptr());
            Some(Ucrt {
                dup: std::mem::transmute::<unsafe extern "system" fn() -> isize, Dup>(get(b"_dup\0")?),
                dup2: std::mem::transmute::<unsafe extern "system" fn() -> isize, Dup2>(get(b"_dup2\0")?),
                close: std::mem::transmute::<unsafe extern "system" fn() -> isize, Close>(get(b"_close\0")?),
                open_osfhandle: std::mem::transmute::<unsafe extern "system" fn() -> isize, OpenOsfhandle>(get(
                    b"_open_osfhandle\0",
                )?),
            })
        }
    }
}

/// The three descriptors while they point at NUL; `restore` puts them back.
pub struct OnNul {
    ucrt: Ucrt,
    /// A duplicate of each original, or -1 where it had none to duplicate.
    saved: [i32; 3],
}

/// Points descriptors 0-2 at NUL. None (and nothing changed) if that cannot be done: Python
/// then starts with the handles as they are.
pub fn point_at_nul() -> Option<OnNul> {
    let ucrt = Ucrt::find()?;
    let nul: Vec<u16> = "NUL\0".encode_utf16().collect();
    // SAFETY: plain Win32 and CRT calls on descriptors 0-2 and ones made here; every
    // handle and descriptor made is owned here and closed or handed to the CRT.
    unsafe {
        let handle: HANDLE = CreateFileW(
            nul.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        );
        if handle == INVALID_HANDLE_VALUE {
            return None;
        }
        // The descriptor owns the handle from here on.
        let nul_fd = (ucrt.open_osfhandle)(handle as isize, 0);
        if nul_fd < 0 {
            windows_sys::Win32::Foundation::CloseHandle(handle);
            return None;
        }
        let mut saved = [-1; 3];
        for (fd, slot) in saved.iter_mut().enumerate() {
            *slot = (ucrt.dup)(fd as i32);
            (ucrt.dup2)(nul_fd, fd as i32);
        }
        (ucrt.close)(nul_fd);
        Some(OnNul { ucrt, saved })
    }
}

impl OnNul {
    /// Puts back each descriptor that had a handle. One that had none keeps NUL: closing it
    /// would free the number for the next file opened, and Python's sys.__stdout__ and
    /// sys.__stderr__ write to these numbers.
    pub fn restore(self) {
        for (fd, saved) in self.saved.into_iter().enumerate() {
            if saved >= 0 {
                // SAFETY: `saved` is a descriptor duplicated above and owned here.
                unsafe {
                    (self.ucrt.dup2)(saved, fd as i32);
                    (self.ucrt.close)(saved);
                }
            }
        }
    }
}
