//! The server's side of httpfilt.h: the callbacks a filter finds in its
//! HTTP_FILTER_CONTEXT (GetServerVariable, AddResponseHeaders, WriteClient, AllocMem,
//! ServerSupportFunction) and in the header notifications' structs (GetHeader, SetHeader,
//! AddHeader, GetUserToken). Each that needs its connection finds it through the registry
//! first, so a stale or foreign context fails with ERROR_INVALID_PARAMETER.

use std::ffi::{c_void, CStr};
use std::io::Write;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_INDEX, ERROR_INVALID_PARAMETER, ERROR_NETNAME_DELETED,
    ERROR_NOT_SUPPORTED, TRUE,
};
use windows_sys::Win32::System::Iis::{HTTP_FILTER_CONTEXT, SF_REQ_DISABLE_NOTIFICATIONS, SF_REQ_SEND_RESPONSE_HEADER};

use super::connection::{connection_of, Connection};
use crate::ecb::{fail, lock};
use crate::http;

/// Reads a NUL-terminated argument as text.
///
/// # Safety
/// `text` is null or NUL-terminated.
pub(super) unsafe fn arg(text: *const u8) -> Option<String> {
    // SAFETY: upheld by the caller.
    (!text.is_null()).then(|| String::from_utf8_lossy(unsafe { arg_bytes(text) }).into_owned())
}

/// The bytes of a NUL-terminated argument (header lines and values: kept byte for byte).
///
/// # Safety
/// `text` is non-null and NUL-terminated, and outlives the returned slice.
unsafe fn arg_bytes<'a>(text: *const u8) -> &'a [u8] {
    // SAFETY: upheld by the caller.
    unsafe { CStr::from_ptr(text.cast()) }.to_bytes()
}

/// GetServerVariable and GetHeader, which share a signature and a protocol: find the
/// connection and the name (ERROR_INVALID_PARAMETER when one is missing or not ours), look
/// the name up (ERROR_INVALID_INDEX when there is no such thing), and copy the answer out.
///
/// # Safety
/// The filter's arguments: `name` is null or NUL-terminated, `size` is null or valid, and
/// `buffer` is null or has `*size` writable bytes.
unsafe fn answer_lookup(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    buffer: *mut c_void,
    size: *mut u32,
    lookup: impl FnOnce(&Connection, &str) -> Option<Vec<u8>>,
) -> BOOL {
    let Some((connection, _)) = connection_of(pfc).filter(|_| !size.is_null()) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    // SAFETY: upheld by the caller.
    let Some(name) = (unsafe { arg(name) }) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    let Some(bytes) = lookup(&connection, &name) else {
        return fail(ERROR_INVALID_INDEX);
    };
    // SAFETY: upheld by the caller, and `size` is not null.
    unsafe { copy_out(&bytes, buffer, size) }
}

/// Copies `bytes` (NUL added) into a caller's buffer of `*size` bytes, the ISAPI way.
///
/// # Safety
/// `buffer` is null or has `*size` writable bytes; `size` is valid.
unsafe fn copy_out(bytes: &[u8], buffer: *mut c_void, size: *mut u32) -> BOOL {
    let needed = bytes.len() as u32 + 1;
    // SAFETY: upheld by the caller.
    unsafe {
        let capacity = *size;
        *size = needed;
        if buffer.is_null() || capacity < needed {
            return fail(ERROR_INSUFFICIENT_BUFFER);
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len());
        *buffer.cast::<u8>().add(bytes.len()) = 0;
    }
    TRUE
}

pub(super) unsafe extern "system" fn get_server_variable(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    buffer: *mut c_void,
    size: *mut u32,
) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { answer_lookup(pfc, name, buffer, size, server_variable) }
}

/// A server variable as GetServerVariable gives it: ANSI or header bytes, or UTF-16 for a
/// `UNICODE_` name (with the first byte of its two-byte NUL: copy_out adds the other).
fn server_variable(connection: &Connection, name: &str) -> Option<Vec<u8>> {
    let (unicode, base) = match name.get(..8) {
        Some(prefix) if prefix.eq_ignore_ascii_case("UNICODE_") => (true, &name[8..]),
        _ => (false, name),
    };
    let info = lock(&connection.state).info.clone();
    let value = match &info {
        Some(info) => info.server_variable(base),
        // Between requests only the connection's own variables exist.
        None => match base.to_ascii_uppercase().as_str() {
            "REMOTE_ADDR" | "REMOTE_HOST" => Some(connection.remote.ip().to_string()),
            "REMOTE_PORT" => Some(connection.remote.port().to_string()),
            "LOCAL_ADDR" => Some(connection.local.ip().to_string()),
            "SERVER_PORT" => Some(connection.local.port().to_string()),
            _ => None,
        },
    }?;
    if unicode {
        let wide = crate::ecb::variable_wide(base, &value);
        let mut bytes: Vec<u8> = wide.into_iter().flat_map(u16::to_le_bytes).collect();
        bytes.push(0);
        return Some(bytes);
    }
    Some(crate::ecb::variable_bytes(base, &value))
}

pub(super) unsafe extern "system" fn add_response_headers(
    pfc: *mut HTTP_FILTER_CONTEXT,
    headers: *const u8,
    _reserved: u32,
) -> BOOL {
    let Some((connection, _)) = connection_of(pfc).filter(|_| !headers.is_null()) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    // SAFETY: non-null, and the filter passes a NUL-terminated header block.
    let block = http::parse_header_block(unsafe { arg_bytes(headers) });
    for line in &block.rejected {
        eprintln!("isapi-host: dropped filter response header line {line:?}: not `Name: value`");
    }
    lock(&connection.state).added.extend(block.fields);
    TRUE
}

pub(super) unsafe extern "system" fn write_client(
    pfc: *mut HTTP_FILTER_CONTEXT,
    buffer: *mut c_void,
    bytes: *mut u32,
    _reserved: u32,
) -> BOOL {
    let Some((connection, _)) = connection_of(pfc).filter(|_| !bytes.is_null()) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    // SAFETY: `bytes` is valid; the buffer holds that many bytes.
    let data = unsafe {
        let len = *bytes as usize;
        if len == 0 {
            return TRUE;
        }
        if buffer.is_null() {
            return fail(ERROR_INVALID_PARAMETER);
        }
        std::slice::from_raw_parts(buffer.cast::<u8>(), len)
    };
    if lock(&connection.socket).write_all(data).is_err() {
        return fail(ERROR_NETNAME_DELETED);
    }
    let mut state = lock(&connection.state);
    if state.response.status.is_none() && state.response.bytes == 0 {
        // A filter answering on its own writes a whole response, status line first.
        let text = String::from_utf8_lossy(&data[..data.len().min(16)]).into_owned();
        state.response.status = text
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok());
    }
    state.response.bytes += data.len() as u64;
    TRUE
}

pub(super) unsafe extern "system" fn alloc_mem(
    pfc: *mut HTTP_FILTER_CONTEXT,
    size: u32,
    _reserved: u32,
) -> *mut c_void {
    let Some((connection, _)) = connection_of(pfc) else {
        return std::ptr::null_mut();
    };
    let mut block = vec![0u8; (size as usize).max(1)].into_boxed_slice();
    let ptr = block.as_mut_ptr();
    lock(&connection.state).memory.push(block);
    ptr.cast()
}

pub(super) unsafe extern "system" fn server_support_function(
    pfc: *mut HTTP_FILTER_CONTEXT,
    request: i32,
    data: *mut c_void,
    ul1: usize,
    _ul2: usize,
) -> BOOL {
    let Some((connection, index)) = connection_of(pfc) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    match request {
        SF_REQ_DISABLE_NOTIFICATIONS => {
            lock(&connection.state).disabled[index] |= ul1 as u32;
            TRUE
        }
        SF_REQ_SEND_RESPONSE_HEADER => {
            // pData: the status ("200 OK" if null); ul1: more header lines, or 0.
            // SAFETY: both are null or NUL-terminated strings (httpfilt.h).
            let status = unsafe { arg(data.cast()) };
            let extra: &[u8] = match ul1 {
                0 => b"",
                // SAFETY: as above.
                _ => unsafe { arg_bytes(ul1 as *const u8) },
            };
            let status = status.unwrap_or_else(|| "200 OK".to_string());
            let Some((code, reason)) = http::parse_status(&status) else {
                return fail(ERROR_INVALID_PARAMETER);
            };
            let block = http::parse_header_block(extra);
            let mut state = lock(&connection.state);
            let mut fields = block.fields;
            fields.extend(std::mem::take(&mut state.added));
            if !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case("Content-Length")) {
                // The body that follows has no length: only closing the connection ends it.
                fields.push(("Connection".into(), "close".into()));
            }
            let fields = fields.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let mut bytes = http::head_bytes(code, &reason, fields);
            bytes.extend_from_slice(&block.body);
            state.response.status = Some(code);
            state.response.bytes += bytes.len() as u64;
            drop(state);
            if lock(&connection.socket).write_all(&bytes).is_err() {
                return fail(ERROR_NETNAME_DELETED);
            }
            TRUE
        }
        _ => fail(ERROR_NOT_SUPPORTED),
    }
}

/// GetHeader for PREPROC_HEADERS, SEND_RESPONSE and AUTH_COMPLETE.
pub(super) unsafe extern "system" fn get_header(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    buffer: *mut c_void,
    size: *mut u32,
) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { answer_lookup(pfc, name, buffer, size, header) }
}

/// A header's bytes as they came; a special (the URL, the status) is text.
fn header(connection: &Connection, name: &str) -> Option<Vec<u8>> {
    let state = lock(&connection.state);
    let value = state.editable.get(name)?;
    Some(if state.editable.is_special(name) {
        crate::ecb::to_ansi(&value)
    } else {
        http::octet_bytes(&value)
    })
}

unsafe fn edit_header(pfc: *mut HTTP_FILTER_CONTEXT, name: *const u8, value: *const u8, add: bool) -> BOOL {
    let Some((connection, _)) = connection_of(pfc) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    // SAFETY: the filter passes NUL-terminated strings.
    let Some(name) = (unsafe { arg(name) }) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if value.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: `value` is non-null and NUL-terminated.
    let value = unsafe { arg_bytes(value) };
    let mut state = lock(&connection.state);
    // A special (the URL, the status) is text; a header's name must be a token, and its
    // value is kept byte for byte.
    let value = if state.editable.is_special(&name) {
        String::from_utf8_lossy(value).into_owned()
    } else if name.trim_end_matches(':').bytes().all(http::is_token_byte) {
        http::octets(value)
    } else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if state.editable.set(&name, &value, add) {
        TRUE
    } else {
        fail(ERROR_INVALID_PARAMETER)
    }
}

pub(super) unsafe extern "system" fn set_header(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    value: *const u8,
) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { edit_header(pfc, name, value, false) }
}

pub(super) unsafe extern "system" fn add_header(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    value: *const u8,
) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { edit_header(pfc, name, value, true) }
}

/// The host runs requests as itself and has no user token to give.
pub(super) unsafe extern "system" fn get_user_token(_pfc: *mut HTTP_FILTER_CONTEXT, _token: *mut *mut c_void) -> BOOL {
    fail(ERROR_NOT_SUPPORTED)
}
