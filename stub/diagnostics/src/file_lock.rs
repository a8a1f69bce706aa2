//! A lock that makes each log line one indivisible append across processes. IIS runs two
//! workers on one output folder during an overlapped recycle (and N in a web garden), and
//! an append-only handle alone does not keep their lines apart: under Wine two processes'
//! writes were seen to interleave inside a line. Every writer takes an exclusive byte-range
//! lock (LockFileEx) on one byte far past any log's end before it writes, so readers
//! (`trace`) are never blocked.

use std::ffi::c_void;
use std::fs::File;
use std::os::windows::io::AsRawHandle;

/// OVERLAPPED from minwinbase.h; only the offset is used.
#[repr(C)]
struct Overlapped {
    internal: usize,
    internal_high: usize,
    offset: u32,
    offset_high: u32,
    event: *mut c_void,
}

const LOCKFILE_EXCLUSIVE_LOCK: u32 = 0x2;
/// Where the lock byte is: below 2^63, which Wine's locks (POSIX offsets) can express.
const LOCK_AT: u64 = 0x7fff_ffff_ffff_0000;

#[link(name = "kernel32")]
extern "system" {
    fn LockFileEx(
        file: *mut c_void,
        flags: u32,
        reserved: u32,
        low: u32,
        high: u32,
        overlapped: *mut Overlapped,
    ) -> i32;
    fn UnlockFileEx(file: *mut c_void, reserved: u32, low: u32, high: u32, overlapped: *mut Overlapped) -> i32;
}

fn overlapped() -> Overlapped {
    Overlapped {
        internal: 0,
        internal_high: 0,
        offset: LOCK_AT as u32,
        offset_high: (LOCK_AT >> 32) as u32,
        event: std::ptr::null_mut(),
    }
}

/// Runs `write` holding the lock; without it (a file system that refuses locks) it runs
/// anyway: a line that may interleave beats a line lost.
pub fn exclusively<T>(file: &File, write: impl FnOnce() -> T) -> T {
    let handle = file.as_raw_handle();
    let mut lock = overlapped();
    // SAFETY: `handle` is the open file's, valid while `file` is borrowed; the OVERLAPPED
    // lives across the synchronous call (no FILE_FLAG_OVERLAPPED: the call waits for the lock).
    let locked = unsafe { LockFileEx(handle, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut lock) } != 0;
    let result = write();
    if locked {
        let mut unlock = overlapped();
        // SAFETY: as above; the range is the one locked.
        unsafe { UnlockFileEx(handle, 0, 1, 0, &mut unlock) };
    }
    result
}
