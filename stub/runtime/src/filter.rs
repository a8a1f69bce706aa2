//! The HTTP_FILTER_CONTEXT object a script's HttpFilterProc receives, and what its GetData()
//! returns for each notification (httpfilt.h's structs), with pywin32's names and bytes/str
//! types. The objects wrap the pointers IIS passed for one notification; once
//! HttpFilterProc returns they are dropped and every use raises instead of touching memory
//! the server may have reused. FilterContext is a Python object kept in the connection's
//! `pFilterContext` and released after END_OF_NET_SESSION.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use windows_sys::core::BOOL;
use windows_sys::Win32::System::Iis::{
    HTTP_FILTER_ACCESS_DENIED, HTTP_FILTER_AUTHENT, HTTP_FILTER_AUTH_COMPLETE_INFO, HTTP_FILTER_CONTEXT,
    HTTP_FILTER_LOG, HTTP_FILTER_PREPROC_HEADERS, HTTP_FILTER_RAW_DATA, HTTP_FILTER_URL_MAP, SF_NOTIFY_ACCESS_DENIED,
    SF_NOTIFY_AUTHENTICATION, SF_NOTIFY_AUTH_COMPLETE, SF_NOTIFY_END_OF_NET_SESSION, SF_NOTIFY_END_OF_REQUEST,
    SF_NOTIFY_LOG, SF_NOTIFY_PREPROC_HEADERS, SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SEND_RAW_DATA,
    SF_NOTIFY_SEND_RESPONSE, SF_NOTIFY_URL_MAP, SF_REQ_DISABLE_NOTIFICATIONS, SF_REQ_SEND_RESPONSE_HEADER,
};

use crate::c_strings::{c_string, without_nul};
use crate::ecb::{c_bytes, last_error, server_variable_value, win32_result};
use crate::pywin32::{bytes_of, isapi_error, no_nul, optional_default};
use crate::server_variables::{ansi_bytes, read_grown};

// httpfilt.h declares the server's callbacks as typed function pointers; windows-sys
// stores them as isize (the struct refers to itself), so they are cast back to these.
type FnGetServerVariable =
    unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, *const u8, *mut c_void, *mut u32) -> BOOL;
type FnAddResponseHeaders = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, *const u8, u32) -> BOOL;
type FnWriteClient = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, *mut c_void, *mut u32, u32) -> BOOL;
type FnAllocMem = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, u32, u32) -> *mut c_void;
type FnServerSupport = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, i32, *mut c_void, usize, usize) -> BOOL;
type FnSetHeader = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, *const u8, *const u8) -> BOOL;
type FnGetUserToken = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, *mut *mut c_void) -> BOOL;

/// Turns a callback slot into its function pointer; None when the server left it empty.
///
/// # Safety
/// `slot` is 0 or a function of type `F` (a function pointer type).
unsafe fn callback<F: Copy>(slot: isize) -> Option<F> {
    if slot == 0 {
        return None;
    }
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<isize>());
    // SAFETY: upheld by the caller; function pointers are pointer-sized on Windows.
    Some(unsafe { std::mem::transmute_copy::<isize, F>(&slot) })
}

/// `isapi.FilterError(errno, None, funcname)`, as pywin32 raises for a failed call.
fn filter_error(py: Python<'_>, errno: u32, funcname: &str) -> PyErr {
    isapi_error(py, "FilterError", errno, funcname)
}

/// A raw pointer that may cross into a `py.detach` closure: the server's callbacks are
/// thread-safe and the context outlives the notification.
#[derive(Clone, Copy)]
struct Raw(*mut HTTP_FILTER_CONTEXT);
// SAFETY: see above; the pointer is only used while the notification is live.
unsafe impl Send for Raw {}

#[pyclass(name = "HTTP_FILTER_CONTEXT", module = "isapi", frozen)]
pub struct FilterContext {
    pfc: AtomicPtr<HTTP_FILTER_CONTEXT>,
    data: AtomicPtr<c_void>,
    /// Copied when the object is made: reading them needs no live context.
    #[pyo3(get, name = "NotificationType")]
    notification: u32,
    #[pyo3(get, name = "Revision")]
    revision: u32,
    /// A C int in pywin32 (0 or 1), as fIsSecurePort is a BOOL.
    #[pyo3(get, name = "fIsSecurePort")]
    secure: i32,
}

impl FilterContext {
    /// # Safety
    /// `pfc` is the live context IIS passed with this notification.
    pub unsafe fn new(pfc: *mut HTTP_FILTER_CONTEXT, notification: u32, data: *mut c_void) -> Self {
        // SAFETY: upheld by the caller.
        let (revision, secure) = unsafe { ((*pfc).Revision, i32::from((*pfc).fIsSecurePort != 0)) };
        FilterContext {
            pfc: AtomicPtr::new(pfc),
            data: AtomicPtr::new(data),
            notification,
            revision,
            secure,
        }
    }

    /// Drops the pointers: HttpFilterProc returned and the server owns them again.
    pub fn invalidate(&self) {
        self.pfc.store(std::ptr::null_mut(), Ordering::SeqCst);
        self.data.store(std::ptr::null_mut(), Ordering::SeqCst);
    }

    fn raw(&self) -> PyResult<Raw> {
        let ptr = self.pfc.load(Ordering::SeqCst);
        if ptr.is_null() {
            return Err(PyRuntimeError::new_err(
                "Invalid filter context (HttpFilterProc has returned)",
            ));
        }
        Ok(Raw(ptr))
    }

    fn fields(&self) -> PyResult<&HTTP_FILTER_CONTEXT> {
        let Raw(ptr) = self.raw()?;
        // SAFETY: live while the pointer is set (cleared when HttpFilterProc returns).
        Ok(unsafe { &*ptr })
    }

    /// The notification's struct, checked against the notification it belongs to.
    fn data<T>(&self, expected: &[u32]) -> PyResult<*mut T> {
        self.raw()?;
        if !expected.contains(&self.notification) {
            return Err(PyRuntimeError::new_err("this data belongs to another notification"));
        }
        let ptr = self.data.load(Ordering::SeqCst);
        if ptr.is_null() {
            return Err(PyRuntimeError::new_err(
                "the server passed no data with this notification",
            ));
        }
        Ok(ptr.cast())
    }

    /// Memory from the server's AllocMem: it lives until the connection ends, so pointers
    /// to it can be left in the notification's struct.
    fn alloc_copy(&self, bytes: &[u8]) -> PyResult<*mut u8> {
        let Raw(pfc) = self.raw()?;
        // SAFETY: the slot holds the server's PFN AllocMem (httpfilt.h).
        let alloc = unsafe { callback::<FnAllocMem>(self.fields()?.AllocMem) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no AllocMem"))?;
        // SAFETY: live context; the request size fits the bytes plus a NUL.
        let mem = unsafe { alloc(pfc, bytes.len() as u32 + 1, 0) }.cast::<u8>();
        if mem.is_null() {
            return Err(pyo3::exceptions::PyMemoryError::new_err("AllocMem failed"));
        }
        // SAFETY: `mem` has bytes.len() + 1 writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), mem, bytes.len());
            *mem.add(bytes.len()) = 0;
        }
        Ok(mem)
    }

    /// Calls a GetServerVariable-shaped function (GetServerVariable, GetHeader), growing the
    /// buffer on ERROR_INSUFFICIENT_BUFFER; Err(error code) on failure.
    fn get_value(&self, py: Python<'_>, name: &[u8], slot: isize) -> PyResult<Result<Vec<u8>, u32>> {
        let raw = self.raw()?;
        // SAFETY: GetServerVariable and GetHeader share this signature (httpfilt.h).
        let f = unsafe { callback::<FnGetServerVariable>(slot) }
            .ok_or_else(|| PyRuntimeError::new_err("the server left this function empty"))?;
        let cname = c_string(name, "name")?;
        Ok(py.detach(move || {
            let raw = raw;
            read_grown(|buffer, len| {
                // SAFETY: live notification; `buffer` has `*len` writable bytes and `cname`
                // is NUL-terminated.
                win32_result(unsafe { f(raw.0, cname.as_ptr(), buffer.as_mut_ptr().cast(), len) })
            })
        }))
    }
}

// The method names are pywin32's, which scripts call.
#[allow(non_snake_case)]
#[pymethods]
impl FilterContext {
    /// Any Python object kept for this connection (None until set).
    #[getter(FilterContext)]
    fn get_filter_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let kept = self.fields()?.pFilterContext;
        if kept.is_null() {
            return Ok(py.None());
        }
        // SAFETY: a non-null pFilterContext is the strong reference the setter stored.
        Ok(unsafe { Bound::from_borrowed_ptr(py, kept.cast()) }.unbind())
    }
    #[setter(FilterContext)]
    fn set_filter_context(&self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let Raw(pfc) = self.raw()?;
        let value = value.filter(|v| !v.is_none());
        // SAFETY: live context; pFilterContext belongs to this filter. The old value is a
        // strong reference we stored, released here; the new one is kept until replaced
        // or until END_OF_NET_SESSION (see `release_connection_context`).
        unsafe {
            let old = (*pfc).pFilterContext;
            (*pfc).pFilterContext = match value {
                Some(v) => v.into_ptr().cast(),
                None => std::ptr::null_mut(),
            };
            if !old.is_null() {
                pyo3::ffi::Py_DECREF(old.cast());
            }
        }
        Ok(())
    }

    /// The notification's data object (see the module header); None for END_OF_REQUEST and
    /// END_OF_NET_SESSION, which carry none.
    fn GetData(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        me.raw()?;
        let parent = slf.clone().unbind();
        Ok(match me.notification {
            SF_NOTIFY_URL_MAP => Py::new(py, UrlMap { fc: parent })?.into_any(),
            SF_NOTIFY_PREPROC_HEADERS => Py::new(py, PreprocHeaders { fc: parent })?.into_any(),
            SF_NOTIFY_SEND_RESPONSE => Py::new(py, SendResponse { fc: parent })?.into_any(),
            SF_NOTIFY_AUTH_COMPLETE => Py::new(py, AuthComplete { fc: parent })?.into_any(),
            SF_NOTIFY_LOG => Py::new(py, FilterLog { fc: parent })?.into_any(),
            SF_NOTIFY_READ_RAW_DATA | SF_NOTIFY_SEND_RAW_DATA => Py::new(py, RawData { fc: parent })?.into_any(),
            SF_NOTIFY_AUTHENTICATION => Py::new(py, Authent { fc: parent })?.into_any(),
            SF_NOTIFY_ACCESS_DENIED => Py::new(py, AccessDenied { fc: parent })?.into_any(),
            SF_NOTIFY_END_OF_REQUEST | SF_NOTIFY_END_OF_NET_SESSION => py.None(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "Don't understand data of type 0x{other:x}"
                )))
            }
        })
    }

    /// GetServerVariable(name[, default]): bytes, or str for `UNICODE_*` names; a missing
    /// variable gives `default` when one is passed (None too), else raises FilterError.
    #[pyo3(signature = (name, *default))]
    fn GetServerVariable<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let default = optional_default(default, None)?;
        no_nul(name)?;
        let slot = self.fields()?.GetServerVariable;
        match self.get_value(py, name.as_bytes(), slot)? {
            Ok(buffer) => Ok(server_variable_value(py, name, &buffer)),
            Err(err) => match default {
                Some(default) => Ok(default),
                None => Err(filter_error(py, err, "GetServerVariable")),
            },
        }
    }

    /// WriteClient(data[, reserved]): sends bytes straight to the client (str is UTF-8).
    #[pyo3(signature = (data, reserved = 0))]
    fn WriteClient(&self, py: Python<'_>, data: &Bound<'_, PyAny>, reserved: u32) -> PyResult<()> {
        let bytes = bytes_of(data, "data")?;
        let raw = self.raw()?;
        // SAFETY: the slot holds the server's PFN WriteClient.
        let f = unsafe { callback::<FnWriteClient>(self.fields()?.WriteClient) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no WriteClient"))?;
        let (ok, err) = py.detach(move || {
            let raw = raw;
            let mut len = bytes.len() as u32;
            // SAFETY: live notification; `bytes` outlives the synchronous call.
            let ok = unsafe { f(raw.0, bytes.as_ptr() as *mut c_void, &mut len, reserved) };
            (ok, last_error())
        });
        if ok == 0 {
            return Err(filter_error(py, err, "WriteClient"));
        }
        Ok(())
    }

    /// The same as WriteClient.
    #[pyo3(signature = (data, reserved = 0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, reserved: u32) -> PyResult<()> {
        self.WriteClient(py, data, reserved)
    }

    /// AddResponseHeaders(headers[, reserved]): "Name: value\r\n" lines for the response.
    #[pyo3(signature = (headers, reserved = 0))]
    fn AddResponseHeaders(&self, py: Python<'_>, headers: &Bound<'_, PyAny>, reserved: u32) -> PyResult<()> {
        let headers = c_string(&bytes_of(headers, "headers")?, "headers")?;
        let Raw(pfc) = self.raw()?;
        // SAFETY: the slot holds the server's PFN AddResponseHeaders.
        let f = unsafe { callback::<FnAddResponseHeaders>(self.fields()?.AddResponseHeaders) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no AddResponseHeaders"))?;
        // SAFETY: live notification; `headers` is NUL-terminated.
        if unsafe { f(pfc, headers.as_ptr(), reserved) } == 0 {
            return Err(filter_error(py, last_error(), "AddResponseHeaders"));
        }
        Ok(())
    }

    /// SendResponseHeader(status, header): a response head, e.g. ("401 Denied", "X: 1\r\n").
    fn SendResponseHeader(
        &self,
        py: Python<'_>,
        status: Option<Bound<'_, PyAny>>,
        header: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let status = status.map(|s| bytes_of(&s, "status")).transpose()?;
        let header = header.map(|h| bytes_of(&h, "header")).transpose()?;
        let status = status.map(|s| c_string(&s, "status")).transpose()?;
        let header = header.map(|h| c_string(&h, "header")).transpose()?;
        let raw = self.raw()?;
        // SAFETY: the slot holds the server's PFN ServerSupportFunction.
        let f = unsafe { callback::<FnServerSupport>(self.fields()?.ServerSupportFunction) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no ServerSupportFunction"))?;
        let (ok, err) = py.detach(move || {
            let raw = raw;
            let status_ptr = status.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
            let header_ptr = header.as_ref().map_or(std::ptr::null(), |h| h.as_ptr());
            // SAFETY: live notification; both strings are NUL-terminated (or null) and
            // outlive the synchronous call.
            let ok = unsafe {
                f(
                    raw.0,
                    SF_REQ_SEND_RESPONSE_HEADER,
                    status_ptr as *mut c_void,
                    header_ptr as usize,
                    0,
                )
            };
            (ok, last_error())
        });
        if ok == 0 {
            return Err(filter_error(py, err, "SendResponseHeader"));
        }
        Ok(())
    }

    /// DisableNotifications(flags): no more of these notifications for this request.
    fn DisableNotifications(&self, py: Python<'_>, flags: u32) -> PyResult<()> {
        let Raw(pfc) = self.raw()?;
        // SAFETY: the slot holds the server's PFN ServerSupportFunction.
        let f = unsafe { callback::<FnServerSupport>(self.fields()?.ServerSupportFunction) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no ServerSupportFunction"))?;
        // SAFETY: live notification; this request takes no buffers.
        if unsafe {
            f(
                pfc,
                SF_REQ_DISABLE_NOTIFICATIONS,
                std::ptr::null_mut(),
                flags as usize,
                0,
            )
        } == 0
        {
            return Err(filter_error(py, last_error(), "DisableNotifications"));
        }
        Ok(())
    }
}

/// Releases the connection's FilterContext object after END_OF_NET_SESSION.
///
/// # Safety
/// `pfc` is the live context of that notification.
pub unsafe fn release_connection_context(pfc: *mut HTTP_FILTER_CONTEXT) {
    // SAFETY: upheld by the caller; a non-null value is the reference the setter stored.
    unsafe {
        let kept = (*pfc).pFilterContext;
        (*pfc).pFilterContext = std::ptr::null_mut();
        if !kept.is_null() {
            pyo3::ffi::Py_DECREF(kept.cast());
        }
    }
}

// The header functions ---------------------------------------------------------------------

/// GetHeader/SetHeader/AddHeader sit first, in this order, in HTTP_FILTER_PREPROC_HEADERS,
/// HTTP_FILTER_SEND_RESPONSE (the same struct) and HTTP_FILTER_AUTH_COMPLETE_INFO.
fn header_slots(fc: &FilterContext) -> PyResult<(isize, isize, isize)> {
    let ptr = fc.data::<HTTP_FILTER_PREPROC_HEADERS>(&[
        SF_NOTIFY_PREPROC_HEADERS,
        SF_NOTIFY_SEND_RESPONSE,
        SF_NOTIFY_AUTH_COMPLETE,
    ])?;
    // SAFETY: live notification data of one of those layouts (same first three fields).
    let h = unsafe { &*ptr };
    Ok((h.GetHeader, h.SetHeader, h.AddHeader))
}

fn get_header<'py>(
    fc: &FilterContext,
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    default: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let default = optional_default(default, None)?;
    let name = bytes_of(name, "name")?;
    let (get, _, _) = header_slots(fc)?;
    match fc.get_value(py, &name, get)? {
        Ok(value) if !value.is_empty() => Ok(PyBytes::new(py, ansi_bytes(&value)).into_any()),
        result => match default {
            Some(default) => Ok(default),
            None => Err(filter_error(py, result.err().unwrap_or(0), "GetHeader")),
        },
    }
}

fn set_header(
    fc: &FilterContext,
    py: Python<'_>,
    name: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    add: bool,
) -> PyResult<()> {
    let name = c_string(&bytes_of(name, "name")?, "name")?;
    let value = c_string(&bytes_of(value, "value")?, "value")?;
    let (_, set, add_slot) = header_slots(fc)?;
    let Raw(pfc) = fc.raw()?;
    // SAFETY: SetHeader and AddHeader have this signature (httpfilt.h).
    let f = unsafe { callback::<FnSetHeader>(if add { add_slot } else { set }) }
        .ok_or_else(|| PyRuntimeError::new_err("the server left this function empty"))?;
    // SAFETY: live notification; both strings are NUL-terminated.
    if unsafe { f(pfc, name.as_ptr(), value.as_ptr()) } == 0 {
        let what = if add { "AddHeader" } else { "SetHeader" };
        return Err(filter_error(py, last_error(), what));
    }
    Ok(())
}

/// HTTP_FILTER_PREPROC_HEADERS: the request's headers before the server processes them.
/// Besides real headers ("Host:"), the names "method", "url" and "version" reach the
/// request line.
#[pyclass(name = "HTTP_FILTER_PREPROC_HEADERS", module = "isapi", frozen)]
pub struct PreprocHeaders {
    fc: Py<FilterContext>,
}

#[allow(non_snake_case)]
#[pymethods]
impl PreprocHeaders {
    #[pyo3(signature = (name, *default))]
    fn GetHeader<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        get_header(self.fc.get(), py, name, default)
    }
    fn SetHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, false)
    }
    fn AddHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, true)
    }
}

/// HTTP_FILTER_SEND_RESPONSE: the response's headers just before they are sent; the name
/// "status" reaches the status line.
#[pyclass(name = "HTTP_FILTER_SEND_RESPONSE", module = "isapi", frozen)]
pub struct SendResponse {
    fc: Py<FilterContext>,
}

#[allow(non_snake_case)]
#[pymethods]
impl SendResponse {
    #[pyo3(signature = (name, *default))]
    fn GetHeader<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        get_header(self.fc.get(), py, name, default)
    }
    fn SetHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, false)
    }
    fn AddHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, true)
    }
    /// The response's status code.
    #[getter(HttpStatus)]
    fn http_status(&self) -> PyResult<u32> {
        let ptr = self
            .fc
            .get()
            .data::<HTTP_FILTER_PREPROC_HEADERS>(&[SF_NOTIFY_SEND_RESPONSE])?;
        // SAFETY: live notification data.
        Ok(unsafe { (*ptr).HttpStatus })
    }
}

/// HTTP_FILTER_AUTH_COMPLETE_INFO: the request's headers once the user is known.
#[pyclass(name = "HTTP_FILTER_AUTH_COMPLETE_INFO", module = "isapi", frozen)]
pub struct AuthComplete {
    fc: Py<FilterContext>,
}

impl AuthComplete {
    fn info(&self) -> PyResult<*mut HTTP_FILTER_AUTH_COMPLETE_INFO> {
        self.fc.get().data(&[SF_NOTIFY_AUTH_COMPLETE])
    }
}

#[allow(non_snake_case)]
#[pymethods]
impl AuthComplete {
    #[pyo3(signature = (name, *default))]
    fn GetHeader<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        get_header(self.fc.get(), py, name, default)
    }
    fn SetHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, false)
    }
    fn AddHeader(&self, py: Python<'_>, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_header(self.fc.get(), py, name, value, true)
    }
    /// GetUserToken(): the impersonation token of the authenticated user, as an int.
    fn GetUserToken(&self, py: Python<'_>) -> PyResult<usize> {
        // SAFETY: live notification data.
        let slot = unsafe { (*self.info()?).GetUserToken };
        let Raw(pfc) = self.fc.get().raw()?;
        // SAFETY: the slot holds the server's PFN GetUserToken.
        let f = unsafe { callback::<FnGetUserToken>(slot) }
            .ok_or_else(|| PyRuntimeError::new_err("the server gave no GetUserToken"))?;
        let mut token: *mut c_void = std::ptr::null_mut();
        // SAFETY: live notification; `token` receives a handle.
        if unsafe { f(pfc, &mut token) } == 0 {
            return Err(filter_error(py, last_error(), "GetUserToken"));
        }
        Ok(token as usize)
    }
    #[getter(HttpStatus)]
    fn http_status(&self) -> PyResult<u32> {
        // SAFETY: live notification data.
        Ok(unsafe { (*self.info()?).HttpStatus })
    }
    #[getter(fResetAuth)]
    fn get_reset_auth(&self) -> PyResult<bool> {
        // SAFETY: live notification data.
        Ok(unsafe { (*self.info()?).fResetAuth } != 0)
    }
    #[setter(fResetAuth)]
    fn set_reset_auth(&self, value: bool) -> PyResult<()> {
        // SAFETY: live notification data; the filter may write this field.
        unsafe { (*self.info()?).fResetAuth = value as BOOL };
        Ok(())
    }
}

// The other notifications -----------------------------------------------------------------

/// HTTP_FILTER_URL_MAP: the URL and the physical path the server mapped it to (writable).
#[pyclass(name = "HTTP_FILTER_URL_MAP", module = "isapi", frozen)]
pub struct UrlMap {
    fc: Py<FilterContext>,
}

#[pymethods]
impl UrlMap {
    #[getter(URL)]
    fn url<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let map = self.fc.get().data::<HTTP_FILTER_URL_MAP>(&[SF_NOTIFY_URL_MAP])?;
        // SAFETY: live notification data.
        Ok(c_bytes(py, unsafe { (*map).pszURL }))
    }
    #[getter(PhysicalPath)]
    fn get_physical_path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let map = self.fc.get().data::<HTTP_FILTER_URL_MAP>(&[SF_NOTIFY_URL_MAP])?;
        // SAFETY: live notification data.
        Ok(c_bytes(py, unsafe { (*map).pszPhysicalPath }))
    }
    #[setter(PhysicalPath)]
    fn set_physical_path(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = c_string(&bytes_of(value, "PhysicalPath")?, "PhysicalPath")?;
        let map = self.fc.get().data::<HTTP_FILTER_URL_MAP>(&[SF_NOTIFY_URL_MAP])?;
        // SAFETY: live notification data; the copy stays within cbPathBuff bytes.
        unsafe {
            let capacity = (*map).cbPathBuff as usize;
            if value.len() > capacity || (*map).pszPhysicalPath.is_null() {
                return Err(PyValueError::new_err(format!(
                    "The string is too long - got {} chars, but max is {}",
                    value.len() - 1,
                    capacity.saturating_sub(1)
                )));
            }
            std::ptr::copy_nonoverlapping(value.as_ptr(), (*map).pszPhysicalPath, value.len());
        }
        Ok(())
    }
}

/// HTTP_FILTER_RAW_DATA: bytes as read from or about to be sent to the client (writable).
#[pyclass(name = "HTTP_FILTER_RAW_DATA", module = "isapi", frozen)]
pub struct RawData {
    fc: Py<FilterContext>,
}

#[pymethods]
impl RawData {
    #[getter(InData)]
    fn get_in_data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let raw = self
            .fc
            .get()
            .data::<HTTP_FILTER_RAW_DATA>(&[SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SEND_RAW_DATA])?;
        // SAFETY: live notification data: cbInData bytes at pvInData.
        unsafe {
            if (*raw).pvInData.is_null() {
                return Ok(py.None());
            }
            let data = std::slice::from_raw_parts((*raw).pvInData.cast::<u8>(), (*raw).cbInData as usize);
            Ok(PyBytes::new(py, data).into_any().unbind())
        }
    }
    /// Replaces the data (a copy in the server's per-connection memory).
    #[setter(InData)]
    fn set_in_data(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let Ok(bytes) = value.cast::<PyBytes>() else {
            return Err(PyTypeError::new_err(format!(
                "InData must be bytes (got {})",
                value.get_type().name()?
            )));
        };
        let bytes = bytes.as_bytes();
        let fc = self.fc.get();
        let raw = fc.data::<HTTP_FILTER_RAW_DATA>(&[SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SEND_RAW_DATA])?;
        let mem = fc.alloc_copy(bytes)?;
        // SAFETY: live notification data; `mem` holds the bytes and a NUL.
        unsafe {
            (*raw).pvInData = mem.cast();
            (*raw).cbInData = bytes.len() as u32;
            (*raw).cbInBuffer = bytes.len() as u32 + 1;
        }
        Ok(())
    }
}

/// HTTP_FILTER_AUTHENT: the user name and password the client sent (writable, within the
/// server's buffers).
#[pyclass(name = "HTTP_FILTER_AUTHENT", module = "isapi", frozen)]
pub struct Authent {
    fc: Py<FilterContext>,
}

impl Authent {
    fn get<'py>(&self, py: Python<'py>, password: bool) -> PyResult<Py<PyAny>> {
        let a = self.fc.get().data::<HTTP_FILTER_AUTHENT>(&[SF_NOTIFY_AUTHENTICATION])?;
        // SAFETY: live notification data.
        let s = unsafe {
            if password {
                (*a).pszPassword
            } else {
                (*a).pszUser
            }
        };
        if s.is_null() {
            return Ok(py.None());
        }
        Ok(c_bytes(py, s).into_any().unbind())
    }
    fn set(&self, value: &Bound<'_, PyAny>, password: bool) -> PyResult<()> {
        let what = if password { "Password" } else { "User" };
        let value = c_string(&bytes_of(value, what)?, what)?;
        let a = self.fc.get().data::<HTTP_FILTER_AUTHENT>(&[SF_NOTIFY_AUTHENTICATION])?;
        // SAFETY: live notification data; the copy stays within the server's buffer.
        unsafe {
            let (buffer, capacity) = if password {
                ((*a).pszPassword, (*a).cbPasswordBuff)
            } else {
                ((*a).pszUser, (*a).cbUserBuff)
            };
            if buffer.is_null() || value.len() > capacity as usize {
                return Err(PyValueError::new_err(format!(
                    "The value is too long - max size is {capacity}"
                )));
            }
            std::ptr::copy_nonoverlapping(value.as_ptr(), buffer, value.len());
        }
        Ok(())
    }
}

#[pymethods]
impl Authent {
    #[getter(User)]
    fn get_user(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, false)
    }
    #[setter(User)]
    fn set_user(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set(value, false)
    }
    #[getter(Password)]
    fn get_password(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, true)
    }
    #[setter(Password)]
    fn set_password(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set(value, true)
    }
}

/// HTTP_FILTER_ACCESS_DENIED: a 401 is about to be sent for this URL.
#[pyclass(name = "HTTP_FILTER_ACCESS_DENIED", module = "isapi", frozen)]
pub struct AccessDenied {
    fc: Py<FilterContext>,
}

impl AccessDenied {
    fn denied(&self) -> PyResult<*mut HTTP_FILTER_ACCESS_DENIED> {
        self.fc.get().data(&[SF_NOTIFY_ACCESS_DENIED])
    }
}

#[pymethods]
impl AccessDenied {
    #[getter(URL)]
    fn url<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        // SAFETY: live notification data.
        Ok(c_bytes(py, unsafe { (*self.denied()?).pszURL }))
    }
    #[getter(PhysicalPath)]
    fn physical_path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        // SAFETY: live notification data.
        Ok(c_bytes(py, unsafe { (*self.denied()?).pszPhysicalPath }))
    }
    /// SF_DENIED_* bits.
    #[getter(Reason)]
    fn reason(&self) -> PyResult<u32> {
        // SAFETY: live notification data.
        Ok(unsafe { (*self.denied()?).dwReason })
    }
}

/// HTTP_FILTER_LOG: what the server is about to log for the request; every field is
/// writable and what the filter leaves is what gets logged.
#[pyclass(name = "HTTP_FILTER_LOG", module = "isapi", frozen)]
pub struct FilterLog {
    fc: Py<FilterContext>,
}

impl FilterLog {
    fn log(&self) -> PyResult<*mut HTTP_FILTER_LOG> {
        self.fc.get().data(&[SF_NOTIFY_LOG])
    }
    /// Points one string field at a copy of `value` in the server's memory.
    fn set_text(
        &self,
        value: &Bound<'_, PyAny>,
        what: &str,
        field: fn(&mut HTTP_FILTER_LOG) -> &mut *const u8,
    ) -> PyResult<()> {
        let bytes = bytes_of(value, what)?;
        without_nul(&bytes, what)?;
        let log = self.log()?;
        let mem = self.fc.get().alloc_copy(&bytes)?;
        // SAFETY: live notification data; `mem` lives until the connection ends.
        unsafe { *field(&mut *log) = mem };
        Ok(())
    }
    fn text<'py>(&self, py: Python<'py>, field: fn(&HTTP_FILTER_LOG) -> *const u8) -> PyResult<Bound<'py, PyBytes>> {
        let log = self.log()?;
        // SAFETY: live notification data.
        Ok(c_bytes(py, field(unsafe { &*log })))
    }
    fn number(&self, field: fn(&HTTP_FILTER_LOG) -> u32) -> PyResult<u32> {
        // SAFETY: live notification data.
        Ok(field(unsafe { &*self.log()? }))
    }
    fn set_number(&self, value: u32, field: fn(&mut HTTP_FILTER_LOG) -> &mut u32) -> PyResult<()> {
        let log = self.log()?;
        // SAFETY: live notification data; the filter may write these fields.
        unsafe { *field(&mut *log) = value };
        Ok(())
    }
}

/// FilterLog's attributes, one pywin32 name per HTTP_FILTER_LOG field: a getter and a
/// setter each, alike but for the field (pyo3 wants a function for each). A setter is named
/// after its field, the getter after the attribute: macro_rules cannot make a new name.
macro_rules! filter_log_attributes {
    (text: $($text:ident => $text_field:ident),+; number: $($number:ident => $number_field:ident),+;) => {
        // The setters' argument is `v`, the name a TypeError gives ("argument 'v': ...").
        #[allow(non_snake_case)]
        #[pymethods]
        impl FilterLog {
            $(
                #[getter($text)]
                fn $text<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
                    self.text(py, |l| l.$text_field)
                }
                #[setter($text)]
                fn $text_field(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
                    self.set_text(v, stringify!($text), |l| &mut l.$text_field)
                }
            )+
            $(
                #[getter($number)]
                fn $number(&self) -> PyResult<u32> {
                    self.number(|l| l.$number_field)
                }
                #[setter($number)]
                fn $number_field(&self, v: u32) -> PyResult<()> {
                    self.set_number(v, |l| &mut l.$number_field)
                }
            )+
        }
    };
}

filter_log_attributes! {
    text:
        ClientHostName => pszClientHostName,
        ClientUserName => pszClientUserName,
        ServerName => pszServerName,
        Operation => pszOperation,
        Target => pszTarget,
        Parameters => pszParameters;
    number:
        HttpStatus => dwHttpStatus,
        Win32Status => dwWin32Status,
        BytesSent => dwBytesSent,
        BytesRecvd => dwBytesRecvd,
        TimeForProcessing => msTimeForProcessing;
}
