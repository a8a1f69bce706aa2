//! The ServerSupportFunction requests whose arguments are structures or buffers to size:
//! MapURLToPath, GetAnonymousToken, ExecURL and GetExecURLStatus. The pyclass in ecb.rs
//! gives them pywin32's names and argument forms.

use std::ffi::c_void;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Iis::{
    HSE_EXEC_URL_INFO, HSE_EXEC_URL_STATUS, HSE_REQ_EXEC_URL, HSE_REQ_GET_ANONYMOUS_TOKEN, HSE_REQ_GET_EXEC_URL_STATUS,
    HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN, HSE_REQ_MAP_URL_TO_PATH,
};

use crate::ecb::ExtensionControlBlock;
use crate::server_variables::ERROR_INSUFFICIENT_BUFFER;

/// MapURLToPath: the physical path the server maps `url` to.
pub fn map_url_to_path<'py>(ecb: &ExtensionControlBlock, py: Python<'py>, url: &str) -> PyResult<Bound<'py, PyBytes>> {
    // The URL goes in the buffer and the path comes back in it; grow it if asked to.
    let mut capacity = (url.len() + 1).max(4096);
    loop {
        let mut buffer = vec![0u8; capacity];
        buffer[..url.len()].copy_from_slice(url.as_bytes());
        let mut size = capacity as u32;
        match ecb.support(
            py,
            "HSE_REQ_MAP_URL_TO_PATH",
            HSE_REQ_MAP_URL_TO_PATH,
            buffer.as_mut_ptr() as *mut c_void,
            &mut size,
            std::ptr::null_mut(),
        ) {
            Ok(()) => {
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                return Ok(PyBytes::new(py, &buffer[..end]));
            }
            Err(e) if size as usize > capacity && is_insufficient_buffer(py, &e) => capacity = size as usize,
            Err(e) => return Err(e),
        }
    }
}

/// GetAnonymousToken: bytes use HSE_REQ_GET_ANONYMOUS_TOKEN, str the Unicode request.
pub fn anonymous_token(
    ecb: &ExtensionControlBlock,
    py: Python<'_>,
    metabase_path: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let (request, name, mut path): (u32, &str, Vec<u8>) = if let Ok(b) = metabase_path.cast::<PyBytes>() {
        (
            HSE_REQ_GET_ANONYMOUS_TOKEN,
            "HSE_REQ_GET_ANONYMOUS_TOKEN",
            b.as_bytes().iter().copied().chain([0]).collect(),
        )
    } else if let Ok(s) = metabase_path.cast::<PyString>() {
        let wide: Vec<u16> = s.to_str()?.encode_utf16().chain([0]).collect();
        (
            HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN,
            "HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN",
            wide.iter().flat_map(|u| u.to_le_bytes()).collect(),
        )
    } else {
        return Err(PyTypeError::new_err(format!(
            "must pass a string or unicode object (got {})",
            metabase_path.get_type().name()?
        )));
    };
    let mut token: HANDLE = std::ptr::null_mut();
    ecb.support(
        py,
        name,
        request,
        path.as_mut_ptr() as *mut c_void,
        // httpext.h passes the HANDLE out through lpdwSize for this request.
        &mut token as *mut HANDLE as *mut u32,
        std::ptr::null_mut(),
    )?;
    Ok(token as usize)
}

/// ExecURL's child request, its arguments converted: NUL-terminated strings, None for the
/// parent's.
pub struct ChildRequest {
    pub url: Option<Vec<u8>>,
    pub method: Option<Vec<u8>>,
    pub headers: Option<Vec<u8>>,
    pub flags: u32,
}

/// ExecURL: runs the child request.
pub fn exec_url(ecb: &ExtensionControlBlock, py: Python<'_>, mut child: ChildRequest) -> PyResult<()> {
    let ptr = |v: &mut Option<Vec<u8>>| v.as_mut().map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
    let mut request = HSE_EXEC_URL_INFO {
        pszUrl: ptr(&mut child.url),
        pszMethod: ptr(&mut child.method),
        pszChildHeaders: ptr(&mut child.headers),
        pUserInfo: std::ptr::null_mut(),
        pEntity: std::ptr::null_mut(),
        dwExecUrlFlags: child.flags,
    };
    ecb.support_value(py, "HSE_REQ_EXEC_URL", HSE_REQ_EXEC_URL, &mut request)
}

/// GetExecURLStatus: (uHttpStatusCode, uHttpSubStatus, dwWin32Error).
pub fn exec_url_status(ecb: &ExtensionControlBlock, py: Python<'_>) -> PyResult<(u16, u16, u32)> {
    let mut status = HSE_EXEC_URL_STATUS {
        uHttpStatusCode: 0,
        uHttpSubStatus: 0,
        dwWin32Error: 0,
    };
    ecb.support_value(
        py,
        "HSE_REQ_GET_EXEC_URL_STATUS",
        HSE_REQ_GET_EXEC_URL_STATUS,
        &mut status,
    )?;
    Ok((status.uHttpStatusCode, status.uHttpSubStatus, status.dwWin32Error))
}

/// Whether `err` is the ExtensionError for ERROR_INSUFFICIENT_BUFFER.
fn is_insufficient_buffer(py: Python<'_>, err: &PyErr) -> bool {
    err.value(py)
        .getattr("errno")
        .and_then(|e| e.extract::<u32>())
        .is_ok_and(|e| e == ERROR_INSUFFICIENT_BUFFER)
}
