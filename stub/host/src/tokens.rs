//! The security tokens IIS hands an extension (HSE_REQ_GET_IMPERSONATION_TOKEN and
//! HSE_REQ_GET_ANONYMOUS_TOKEN). The host has no IIS user accounts, so it answers as IIS
//! does for anonymous access run as the worker process identity: an impersonation copy of
//! the process token.

use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, HANDLE};
use windows_sys::Win32::Security::{
    DuplicateTokenEx, SecurityImpersonation, TokenImpersonation, TOKEN_ALL_ACCESS, TOKEN_DUPLICATE, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// A new impersonation token of the process's identity; the caller owns the handle.
fn duplicate_process_token() -> Result<HANDLE, u32> {
    let mut process_token: HANDLE = std::ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo handle; the out pointer is a local.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY, &mut process_token) } == 0 {
        // SAFETY: reads the calling thread's last-error value.
        return Err(unsafe { GetLastError() });
    }
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process_token` was opened with TOKEN_DUPLICATE; null attributes give the
    // default security descriptor; the out pointer is a local.
    let ok = unsafe {
        DuplicateTokenEx(
            process_token,
            TOKEN_ALL_ACCESS,
            std::ptr::null(),
            SecurityImpersonation,
            TokenImpersonation,
            &mut token,
        )
    };
    // SAFETY: reads the last error before CloseHandle can change it.
    let code = unsafe { GetLastError() };
    // SAFETY: `process_token` is ours and no longer needed.
    unsafe { CloseHandle(process_token) };
    if ok == 0 {
        return Err(code);
    }
    Ok(token)
}

/// HSE_REQ_GET_IMPERSONATION_TOKEN: IIS owns this handle (the extension must not close
/// it), so one token serves every request for the life of the process.
pub fn impersonation_token() -> Result<HANDLE, u32> {
    static TOKEN: OnceLock<Result<usize, u32>> = OnceLock::new();
    TOKEN
        .get_or_init(|| duplicate_process_token().map(|t| t as usize))
        .map(|t| t as HANDLE)
}

/// HSE_REQ_GET_ANONYMOUS_TOKEN(_W): the extension owns and closes this handle, so every
/// call gets its own.
pub fn anonymous_token() -> Result<HANDLE, u32> {
    duplicate_process_token()
}
