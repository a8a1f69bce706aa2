//! The EXTENSION_CONTROL_BLOCK object a script's HttpExtensionProc receives, with pywin32's
//! names, argument forms and bytes/str types. It wraps the pointer IIS passed; once the
//! session is done (DoneWithSession, or HttpExtensionProc returned without PENDING) the
//! pointer is dropped and every use raises instead of touching freed memory. Asynchronous
//! I/O (IOCompletion, TransmitFile) lives in ecb_io.rs.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{GetLastError, HANDLE};
use windows_sys::Win32::System::Iis::{
    EXTENSION_CONTROL_BLOCK, HSE_IO_ASYNC, HSE_IO_SYNC, HSE_REQ_DONE_WITH_SESSION, HSE_REQ_GET_IMPERSONATION_TOKEN,
    HSE_REQ_IS_KEEP_CONN, HSE_REQ_REPORT_UNHEALTHY, HSE_REQ_SEND_RESPONSE_HEADER_EX, HSE_REQ_SEND_URL_REDIRECT_RESP,
    HSE_REQ_SET_FLUSH_FLAG, HSE_SEND_HEADER_EX_INFO, HSE_STATUS_SUCCESS,
};

use crate::c_strings;
use crate::ecb_io::{self, TransmitArgs};
use crate::ecb_requests::{self, ChildRequest};
use crate::pywin32::{
    bytes_of, bytes_or_none, bytes_view, isapi_error, isapi_string, no_nul, optional_c_string, optional_default,
};
use crate::server_variables::{ansi_bytes, read_grown_into, utf16_text, with_c_name, with_scratch};

#[pyclass(name = "EXTENSION_CONTROL_BLOCK", module = "isapi", frozen)]
pub struct ExtensionControlBlock {
    ecb: AtomicPtr<EXTENSION_CONTROL_BLOCK>,
    /// Whether a status line and headers (or any body) went out; the error path only sends
    /// its own 500 response when nothing did.
    response_started: AtomicBool,
    /// Whether WriteClient was called: until then the send buffers are empty, so a small
    /// synchronous write or the headers go out without waiting for the client, and those
    /// calls keep the GIL (see `keeps_gil`).
    body_started: AtomicBool,
}

/// A raw pointer that may cross into a `py.detach` closure: the server's callbacks are
/// thread-safe per the ISAPI contract, and the ECB outlives the call.
#[derive(Clone, Copy)]
struct Raw(*mut EXTENSION_CONTROL_BLOCK);
// SAFETY: see above; the pointer is only dereferenced while the session is live.
unsafe impl Send for Raw {}

impl ExtensionControlBlock {
    pub fn new(ecb: *mut EXTENSION_CONTROL_BLOCK) -> Self {
        ExtensionControlBlock {
            ecb: AtomicPtr::new(ecb),
            response_started: AtomicBool::new(false),
            body_started: AtomicBool::new(false),
        }
    }

    /// Drops the pointer (the server may free the control block from now on) and the
    /// request's IOCompletion registration. Called with the GIL held.
    pub fn invalidate(&self) {
        let ptr = self.ecb.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !ptr.is_null() {
            // SAFETY: the block is still live: the server frees it only after this call.
            ecb_io::forget(unsafe { (*ptr).ConnID } as usize);
        }
    }

    /// ConnID of the live request.
    pub(crate) fn conn(&self) -> PyResult<usize> {
        Ok(self.fields()?.ConnID as usize)
    }

    /// DoneWithSession's work: ends the session and makes the object unusable.
    pub(crate) fn done_with_session(&self, py: Python<'_>, status: u32) -> PyResult<()> {
        let mut status = status;
        let conn = self.conn()?;
        ecb_io::forget(conn);
        let result = self.support_value(py, "HSE_REQ_DONE_WITH_SESSION", HSE_REQ_DONE_WITH_SESSION, &mut status);
        self.ecb.store(std::ptr::null_mut(), Ordering::SeqCst);
        result
    }

    pub fn response_started(&self) -> bool {
        self.response_started.load(Ordering::SeqCst)
    }

    fn raw(&self) -> PyResult<Raw> {
        let ptr = self.ecb.load(Ordering::SeqCst);
        if ptr.is_null() {
            return Err(PyRuntimeError::new_err("Invalid ECB (DoneWithSession has been called)"));
        }
        Ok(Raw(ptr))
    }

    /// A copy of the fixed fields (the control block is live while the pointer is set).
    pub(crate) fn fields(&self) -> PyResult<&EXTENSION_CONTROL_BLOCK> {
        let Raw(ptr) = self.raw()?;
        // SAFETY: the server keeps the control block alive until the session ends, and the
        // pointer is cleared before that.
        Ok(unsafe { &*ptr })
    }

    /// `isapi.ExtensionError(errno, None, funcname)`, as pywin32 raises for a failed call.
    fn server_error(py: Python<'_>, errno: u32, funcname: &str) -> PyErr {
        isapi_error(py, "ExtensionError", errno, funcname)
    }

    /// A server variable as pywin32 returns it (bytes, or str for `UNICODE_*` names), or
    /// the Windows error that GetServerVariable failed with.
    ///
    /// The GIL stays held: GetServerVariable is a lookup in the server's memory that never
    /// blocks nor calls back into an extension or filter. Releasing the GIL here would hand
    /// it to another thread for every variable a request reads (a WSGI environ reads a
    /// dozen), each hand-off a kernel wait and wake.
    pub(crate) fn variable_value<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Result<Bound<'py, PyAny>, u32>> {
        with_c_name(name, |cname| {
            with_scratch(|buffer| {
                let value = self.variable_into(cname, buffer)?;
                Ok(value.map(|len| server_variable_value(py, name, &buffer[..len])))
            })
        })
    }

    /// [`variable_value`](Self::variable_value)'s bytes, into a buffer the caller reuses
    /// across variables (the WSGI environ reads a dozen per request): no allocation once it
    /// is big enough.
    pub(crate) fn variable_into(&self, name: &CStr, buffer: &mut Vec<u8>) -> PyResult<Result<usize, u32>> {
        let ecb = self.fields()?;
        let f = ecb.GetServerVariable.expect("the server fills GetServerVariable");
        Ok(read_grown_into(buffer, |buffer, len| {
            // SAFETY: live session; `buffer` holds `*len` writable bytes and `name` is
            // NUL-terminated.
            win32_result(unsafe { f(ecb.ConnID, name.as_ptr().cast(), buffer.as_mut_ptr().cast(), len) })
        }))
    }

    /// Calls ServerSupportFunction(request, buffer, size, data_type) with the GIL released.
    pub(crate) fn support(
        &self,
        py: Python<'_>,
        name: &str,
        request: u32,
        buffer: *mut c_void,
        size: *mut u32,
        data_type: *mut u32,
    ) -> PyResult<()> {
        self.support_with(py, name, request, buffer, size, data_type, true)
    }

    /// [`support`](Self::support) with `value` as lpvBuffer and no size or data type: the
    /// shape of most support requests.
    pub(crate) fn support_value<T>(&self, py: Python<'_>, name: &str, request: u32, value: &mut T) -> PyResult<()> {
        self.support(
            py,
            name,
            request,
            value as *mut T as *mut c_void,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }

    /// SendResponseHeaders' request, from `strings`: the status, a NUL, the header block and
    /// a NUL (one buffer, one allocation: this runs for every response).
    pub(crate) fn send_header_strings(
        &self,
        py: Python<'_>,
        strings: &[u8],
        status_len: usize,
        keep_alive: bool,
    ) -> PyResult<()> {
        debug_assert!(strings[status_len] == 0 && strings.last() == Some(&0));
        let mut info = HSE_SEND_HEADER_EX_INFO {
            pszStatus: strings.as_ptr(),
            pszHeader: strings[status_len + 1..].as_ptr(),
            cchStatus: status_len as u32,
            cchHeader: (strings.len() - status_len - 2) as u32,
            fKeepConn: keep_alive as i32,
        };
        self.response_started.store(true, Ordering::SeqCst);
        let release = !keeps_gil(self.body_started.load(Ordering::SeqCst), false, 0);
        self.support_with(
            py,
            "HSE_REQ_SEND_RESPONSE_HEADER_EX",
            HSE_REQ_SEND_RESPONSE_HEADER_EX,
            &mut info as *mut _ as *mut c_void,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            release,
        )
    }

    /// [`support`](Self::support), with the GIL released around the call or not.
    #[allow(clippy::too_many_arguments)]
    fn support_with(
        &self,
        py: Python<'_>,
        name: &str,
        request: u32,
        buffer: *mut c_void,
        size: *mut u32,
        data_type: *mut u32,
        release: bool,
    ) -> PyResult<()> {
        let raw = self.raw()?;
        let (buffer, size, data_type) = (buffer as usize, size as usize, data_type as usize);
        let call = move || {
            let raw = raw;
            // SAFETY: the session is live (checked above); the buffers belong to the caller's
            // frame, which waits for this call.
            unsafe {
                let ecb = &*raw.0;
                let f = ecb
                    .ServerSupportFunction
                    .expect("the server fills ServerSupportFunction");
                let ok = f(
                    ecb.ConnID,
                    request,
                    buffer as *mut c_void,
                    size as *mut u32,
                    data_type as *mut u32,
                );
                (ok, last_error())
            }
        };
        let (ok, err) = if release { py.detach(call) } else { call() };
        if ok == 0 {
            return Err(Self::server_error(py, err, &format!("ServerSupportFunction({name})")));
        }
        Ok(())
    }
}

/// The largest first write that keeps the GIL (see `keeps_gil`).
const KEEP_GIL_WRITE: usize = 16 * 1024;

/// Whether a call that sends (the headers, or `len` bytes of body) keeps the GIL: only
/// before any body went out, and for a synchronous write of at most 16 KiB. Such a call
/// lands in empty send buffers and returns without waiting for the client, and
/// releasing the GIL around it would hand the GIL to another thread twice per request
/// under load (each hand-off a kernel wait and wake: 8 clients in process ~15k -> ~40k
/// requests/s). Later writes, which can wait for a slow client, release it, as pywin32
/// does for all of them. A filter the server calls back on this thread during the send
/// (SF_NOTIFY_SEND_RESPONSE, SEND_RAW_DATA) takes the GIL again on the same thread.
fn keeps_gil(body_started: bool, asynchronous: bool, len: usize) -> bool {
    !body_started && !asynchronous && len <= KEEP_GIL_WRITE
}

/// A server variable's value as pywin32 returns it: str (from UTF-16) for `UNICODE_*`
/// names, else bytes without the terminating NUL. Shared by the ECB and filter contexts.
pub fn server_variable_value<'py>(py: Python<'py>, name: &str, buffer: &[u8]) -> Bound<'py, PyAny> {
    if name.starts_with("UNICODE_") {
        return PyString::new(py, &utf16_text(buffer)).into_any();
    }
    PyBytes::new(py, ansi_bytes(buffer)).into_any()
}

/// A BOOL that a server function returned, with the calling thread's last error when it
/// is FALSE (read at once, before anything else can set it).
pub fn win32_result(ok: BOOL) -> Result<(), u32> {
    match ok {
        0 => Err(last_error()),
        _ => Ok(()),
    }
}

/// The calling thread's last-error value.
pub fn last_error() -> u32 {
    // SAFETY: GetLastError only reads a per-thread value.
    unsafe { GetLastError() }
}

/// The bytes of one of the server's string fields (the control block's lpszMethod, a
/// notification's pszURL, ...): "" for NULL.
pub fn field_bytes<'a>(s: *const u8) -> &'a [u8] {
    if s.is_null() {
        return b"";
    }
    // SAFETY: the server sets these fields to NUL-terminated strings that live as long as
    // the control block or notification, which the caller has checked is live.
    unsafe { CStr::from_ptr(s.cast()) }.to_bytes()
}

/// A string field as bytes (see `field_bytes`).
pub fn c_bytes<'py>(py: Python<'py>, s: *const u8) -> Bound<'py, PyBytes> {
    PyBytes::new(py, field_bytes(s))
}

// The method names are pywin32's, which scripts call.
#[allow(non_snake_case)]
#[pymethods]
impl ExtensionControlBlock {
    #[getter(Version)]
    fn version(&self) -> PyResult<u32> {
        Ok(self.fields()?.dwVersion)
    }
    /// cbTotalBytes as pywin32 gives it, a C int: -1 (0xFFFFFFFF) when the length is not
    /// known up front (a chunked body), so that `TotalBytes > 0` means a known length.
    #[getter(TotalBytes)]
    fn total_bytes(&self) -> PyResult<i32> {
        Ok(self.fields()?.cbTotalBytes as i32)
    }
    #[getter(AvailableBytes)]
    fn available_bytes(&self) -> PyResult<i32> {
        Ok(self.fields()?.cbAvailable as i32)
    }
    #[getter(ConnID)]
    fn conn_id(&self) -> PyResult<usize> {
        Ok(self.fields()?.ConnID as usize)
    }
    #[getter(HttpStatusCode)]
    fn get_status(&self) -> PyResult<u32> {
        Ok(self.fields()?.dwHttpStatusCode)
    }
    #[setter(HttpStatusCode)]
    pub(crate) fn set_status(&self, value: u32) -> PyResult<()> {
        let Raw(ptr) = self.raw()?;
        // SAFETY: live control block; the extension owns this field during the session.
        unsafe { (*ptr).dwHttpStatusCode = value };
        Ok(())
    }
    #[getter(Method)]
    fn method<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(c_bytes(py, self.fields()?.lpszMethod))
    }
    #[getter(QueryString)]
    fn query_string<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(c_bytes(py, self.fields()?.lpszQueryString))
    }
    #[getter(PathInfo)]
    fn path_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(c_bytes(py, self.fields()?.lpszPathInfo))
    }
    #[getter(PathTranslated)]
    fn path_translated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(c_bytes(py, self.fields()?.lpszPathTranslated))
    }
    #[getter(ContentType)]
    fn content_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(c_bytes(py, self.fields()?.lpszContentType))
    }
    /// The part of the body the server read ahead (cbAvailable bytes of lpbData).
    #[getter(AvailableData)]
    fn available_data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let ecb = self.fields()?;
        if ecb.lpbData.is_null() || ecb.cbAvailable == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        // SAFETY: the server guarantees cbAvailable readable bytes at lpbData.
        Ok(PyBytes::new(py, unsafe {
            std::slice::from_raw_parts(ecb.lpbData, ecb.cbAvailable as usize)
        }))
    }
    /// What pywin32 answers for `print`'s old softspace protocol (`print >> ecb`).
    #[getter(softspace)]
    fn softspace(&self) -> i32 {
        1
    }
    #[getter(LogData)]
    fn get_log_data(&self) -> PyResult<()> {
        self.raw()?;
        Err(PyAttributeError::new_err("LogData attribute can only be set"))
    }
    /// Text for the server's log line (at most 79 bytes are kept, as the field has 80).
    #[setter(LogData)]
    fn set_log_data(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = isapi_string(value)?;
        let Raw(ptr) = self.raw()?;
        // SAFETY: live control block; lpszLogData is an array owned by it.
        c_strings::copy_truncated(unsafe { &mut (*ptr).lpszLogData }, &bytes);
        Ok(())
    }

    /// GetServerVariable(name[, default]): bytes, or str for `UNICODE_*` names. A missing
    /// variable returns `default` whenever one is passed (None too, as in pywin32), else
    /// raises ExtensionError.
    #[pyo3(signature = (name, *default))]
    fn GetServerVariable<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let default = optional_default(default, Some("GetServerVariable"))?;
        no_nul(name)?;
        match self.variable_value(py, name)? {
            Ok(value) => Ok(value),
            Err(err) => match default {
                Some(default) => Ok(default),
                None => Err(Self::server_error(py, err, "GetServerVariable")),
            },
        }
    }

    /// WriteClient(data[, flags]): sends body bytes (str is UTF-8 encoded); returns the count.
    #[pyo3(signature = (data, flags = 0))]
    pub(crate) fn WriteClient(&self, py: Python<'_>, data: &Bound<'_, PyAny>, flags: u32) -> PyResult<u32> {
        let bytes = bytes_view(data, "data")?;
        let raw = self.raw()?;
        let conn = self.conn()?;
        let flags = if flags == 0 { HSE_IO_SYNC } else { flags };
        self.response_started.store(true, Ordering::SeqCst);
        let asynchronous = flags & HSE_IO_ASYNC != 0;
        // An async write's buffer must live until its completion: the registration keeps a
        // copy. A synchronous one sends from `data` itself, which the caller holds.
        let (ptr, len) = match asynchronous.then(|| ecb_io::keep_for_async_write(conn, bytes.to_vec())) {
            Some(Some((ptr, len))) => (ptr as usize, len),
            _ => (bytes.as_ptr() as usize, bytes.len()),
        };
        let call = move || {
            let raw = raw;
            let mut len = len as u32;
            // SAFETY: live session; the buffer (`data`'s, held by the caller for this call,
            // or the copy kept for an async write) outlives the call.
            unsafe {
                let ecb = &*raw.0;
                let f = ecb.WriteClient.expect("the server fills WriteClient");
                let ok = f(ecb.ConnID, ptr as *mut c_void, &mut len, flags);
                (ok, last_error(), len)
            }
        };
        let body_started = self.body_started.swap(true, Ordering::SeqCst);
        let (ok, err, written) = if keeps_gil(body_started, asynchronous, len) {
            call()
        } else {
            py.detach(call)
        };
        if ok == 0 {
            if asynchronous {
                ecb_io::release_async_write(conn);
            }
            return Err(Self::server_error(py, err, "WriteClient"));
        }
        Ok(written)
    }

    /// The same as WriteClient.
    #[pyo3(signature = (data, flags = 0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, flags: u32) -> PyResult<u32> {
        self.WriteClient(py, data, flags)
    }

    /// ReadClient([nbytes]): reads body bytes beyond AvailableData, until `nbytes` (default:
    /// all the rest) or the end. `nbytes` is a C long as in pywin32, taken as a DWORD: a
    /// negative count (-1) reads to the end of the body.
    #[pyo3(signature = (*nbytes))]
    fn ReadClient<'py>(&self, py: Python<'py>, nbytes: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyBytes>> {
        let ecb = self.fields()?;
        let wanted = match nbytes.len() {
            0 => ecb.cbTotalBytes.saturating_sub(ecb.cbAvailable),
            1 => nbytes.get_item(0)?.extract::<i32>()? as u32,
            n => {
                return Err(PyTypeError::new_err(format!(
                    "ReadClient expected at most 1 argument, got {n}"
                )))
            }
        } as usize;
        let raw = self.raw()?;
        let (ok, err, data) = py.detach(move || {
            let raw = raw;
            let mut data = Vec::with_capacity(wanted.min(1 << 20));
            while data.len() < wanted {
                let mut chunk = vec![0u8; (wanted - data.len()).min(64 * 1024)];
                let mut len = chunk.len() as u32;
                // SAFETY: live session; `chunk` has `len` writable bytes.
                let (ok, err) = unsafe {
                    let ecb = &*raw.0;
                    let f = ecb.ReadClient.expect("the server fills ReadClient");
                    (f(ecb.ConnID, chunk.as_mut_ptr() as *mut c_void, &mut len), last_error())
                };
                if ok == 0 {
                    return (ok, err, data);
                }
                if len == 0 {
                    break;
                }
                data.extend_from_slice(&chunk[..len as usize]);
            }
            (1, 0, data)
        });
        if ok == 0 {
            return Err(Self::server_error(py, err, "ReadClient"));
        }
        Ok(PyBytes::new(py, &data))
    }

    /// SendResponseHeaders(status, headers[, keepAlive]): `status` like "200 OK", `headers`
    /// a block of "Name: value\r\n" lines ending with a blank line. keepAlive is a C BOOL
    /// as in pywin32: any int (pywin32's own samples pass 0 and 1), nonzero meaning true.
    #[pyo3(signature = (status, headers, keepAlive = 0))]
    pub(crate) fn SendResponseHeaders(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        keepAlive: i32,
    ) -> PyResult<()> {
        let status = bytes_view(status, "status")?;
        let headers = bytes_view(headers, "headers")?;
        // Both NUL-terminated, on the stack when they fit: under Wine a heap allocation and
        // its free cost ~0.2 us, a tenth of what the runtime adds to a small request.
        let len = status.len() + headers.len() + 2;
        let mut on_stack = [0u8; 1024];
        let mut on_heap = Vec::new();
        let strings: &mut [u8] = if len <= on_stack.len() {
            &mut on_stack[..len]
        } else {
            on_heap.resize(len, 0);
            &mut on_heap
        };
        strings[..status.len()].copy_from_slice(status);
        strings[status.len() + 1..len - 1].copy_from_slice(headers);
        (strings[status.len()], strings[len - 1]) = (0, 0);
        self.send_header_strings(py, strings, status.len(), keepAlive != 0)
    }

    /// Redirect(url): a 302 response to `url`.
    fn Redirect(&self, py: Python<'_>, url: &str) -> PyResult<()> {
        let mut url: Vec<u8> = url.bytes().chain([0]).collect();
        let mut len = (url.len() - 1) as u32;
        self.response_started.store(true, Ordering::SeqCst);
        self.support(
            py,
            "HSE_REQ_SEND_URL_REDIRECT_RESP",
            HSE_REQ_SEND_URL_REDIRECT_RESP,
            url.as_mut_ptr() as *mut c_void,
            &mut len,
            std::ptr::null_mut(),
        )
    }

    /// IsKeepAlive(): whether the client asked for a persistent connection (1 or 0).
    fn IsKeepAlive(&self, py: Python<'_>) -> PyResult<u32> {
        let value = self.GetServerVariable(py, "HTTP_CONNECTION", &PyTuple::new(py, [PyBytes::new(py, b"")])?)?;
        let value = value
            .cast::<PyBytes>()
            .map(|b| b.as_bytes().to_vec())
            .unwrap_or_default();
        Ok(value.eq_ignore_ascii_case(b"keep-alive") as u32)
    }

    /// DoneWithSession([status]): ends a request for which HttpExtensionProc returned
    /// HSE_STATUS_PENDING. The object is unusable afterwards.
    #[pyo3(signature = (status = HSE_STATUS_SUCCESS))]
    fn DoneWithSession(&self, py: Python<'_>, status: u32) -> PyResult<()> {
        self.done_with_session(py, status)
    }

    /// The same as DoneWithSession.
    #[pyo3(signature = (status = HSE_STATUS_SUCCESS))]
    fn close(&self, py: Python<'_>, status: u32) -> PyResult<()> {
        self.DoneWithSession(py, status)
    }

    /// SetFlushFlag(flag): HSE_REQ_SET_FLUSH_FLAG, whether IIS flushes each write (a C BOOL:
    /// any int, as in pywin32).
    fn SetFlushFlag(&self, py: Python<'_>, flag: i32) -> PyResult<()> {
        self.support(
            py,
            "HSE_REQ_SET_FLUSH_FLAG",
            HSE_REQ_SET_FLUSH_FLAG,
            // The flag travels as the pointer value itself (httpext.h).
            (flag != 0) as usize as *mut c_void,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }

    /// MapURLToPath(url): the physical path IIS maps `url` to, as bytes.
    fn MapURLToPath<'py>(&self, py: Python<'py>, url: &str) -> PyResult<Bound<'py, PyBytes>> {
        ecb_requests::map_url_to_path(self, py, url)
    }

    /// IsKeepConn(): whether the server keeps the connection open after this response.
    fn IsKeepConn(&self, py: Python<'_>) -> PyResult<bool> {
        let mut answer: i32 = 0;
        self.support_value(py, "HSE_REQ_IS_KEEP_CONN", HSE_REQ_IS_KEEP_CONN, &mut answer)?;
        Ok(answer != 0)
    }

    /// GetImpersonationToken(): the request's impersonation token handle (owned by the
    /// server: do not close it).
    fn GetImpersonationToken(&self, py: Python<'_>) -> PyResult<usize> {
        let mut token: HANDLE = std::ptr::null_mut();
        self.support_value(
            py,
            "HSE_REQ_GET_IMPERSONATION_TOKEN",
            HSE_REQ_GET_IMPERSONATION_TOKEN,
            &mut token,
        )?;
        Ok(token as usize)
    }

    /// GetAnonymousToken(metabase_path): the anonymous user's token for that path; a str
    /// path uses the Unicode request. The caller owns (and closes) the handle.
    fn GetAnonymousToken(&self, py: Python<'_>, metabase_path: &Bound<'_, PyAny>) -> PyResult<usize> {
        ecb_requests::anonymous_token(self, py, metabase_path)
    }

    /// ExecURL(url, method, clientHeaders, info, entity, flags): runs a child request; url,
    /// method and headers may be None (the parent's). `info` and `entity` must be None.
    /// The child runs asynchronously: register IOCompletion first and return
    /// HSE_STATUS_PENDING; the completion is called when the child has finished.
    // pywin32's six positional arguments.
    #[allow(clippy::too_many_arguments)]
    fn ExecURL(
        &self,
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        method: &Bound<'_, PyAny>,
        clientHeaders: &Bound<'_, PyAny>,
        info: &Bound<'_, PyAny>,
        entity: &Bound<'_, PyAny>,
        flags: u32,
    ) -> PyResult<()> {
        self.response_started.store(true, Ordering::SeqCst);
        if !info.is_none() || !entity.is_none() {
            return Err(PyValueError::new_err("info and entity params must be None"));
        }
        let child = ChildRequest {
            url: optional_c_string(url, "url")?,
            method: optional_c_string(method, "method")?,
            headers: optional_c_string(clientHeaders, "clientHeaders")?,
            flags,
        };
        ecb_requests::exec_url(self, py, child)
    }

    /// GetExecURLStatus(): (uHttpStatusCode, uHttpSubStatus, dwWin32Error) of the child
    /// request ExecURL ran.
    fn GetExecURLStatus(&self, py: Python<'_>) -> PyResult<(u16, u16, u32)> {
        ecb_requests::exec_url_status(self, py)
    }

    /// IOCompletion(func[, arg]): `func(ecb, arg, cbIO, dwError)` is called (on a server
    /// thread) when an async WriteClient or an ExecURL child completes. If it raises, the
    /// error is logged and the session ends with HSE_STATUS_ERROR.
    #[pyo3(signature = (func, arg = None))]
    fn IOCompletion(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        arg: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        ecb_io::set_completion(py, slf, func, arg)
    }

    /// The same as IOCompletion (its name in early pywin32 builds).
    #[pyo3(signature = (func, arg = None))]
    fn ReqIOCompletion(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        arg: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        ecb_io::set_completion(py, slf, func, arg)
    }

    /// TransmitFile(callback, param, hFile, statusCode, BytesToWrite, Offset, head, tail,
    /// flags): sends a file (an open Win32 handle) with optional head and tail bytes;
    /// `callback(ecb, param, cbIO, dwError)` is called when it has been sent.
    #[allow(clippy::too_many_arguments)]
    fn TransmitFile(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        param: &Bound<'_, PyAny>,
        hFile: u64,
        statusCode: &Bound<'_, PyAny>,
        BytesToWrite: u32,
        Offset: u32,
        head: &Bound<'_, PyAny>,
        tail: &Bound<'_, PyAny>,
        flags: u32,
    ) -> PyResult<()> {
        let args = TransmitArgs {
            file: hFile as usize,
            status: bytes_of(statusCode, "statusCode")?,
            bytes_to_write: BytesToWrite,
            offset: Offset,
            head: bytes_or_none(head, "head")?,
            tail: bytes_or_none(tail, "tail")?,
            flags,
        };
        slf.get().response_started.store(true, Ordering::SeqCst);
        ecb_io::transmit_file(py, slf, callback, param, args)
    }

    /// ReportUnhealthy([reason]): tells the server this worker should be recycled.
    #[pyo3(signature = (reason = None))]
    fn ReportUnhealthy(&self, py: Python<'_>, reason: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut reason = match reason {
            Some(r) => optional_c_string(r, "reason")?,
            None => None,
        };
        self.support(
            py,
            "HSE_REQ_REPORT_UNHEALTHY",
            HSE_REQ_REPORT_UNHEALTHY,
            reason
                .as_mut()
                .map_or(std::ptr::null_mut(), |r| r.as_mut_ptr() as *mut c_void),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }

    /// Whether a response was started through this object (isapi-freeze's own attribute).
    #[getter(_response_started)]
    fn get_response_started(&self) -> bool {
        self.response_started()
    }
}
