//! Asynchronous I/O on the control block: IOCompletion (the callback IIS calls after an
//! async WriteClient or an ExecURL child), TransmitFile, and keeping the buffers of such
//! calls alive until their completion. IIS calls completions on its own threads, so each
//! one takes the GIL, calls the script's `callback(ecb, arg, cbIO, dwError)` and logs
//! whatever it raises.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{LazyLock, Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Iis::{
    EXTENSION_CONTROL_BLOCK, HSE_REQ_IO_COMPLETION, HSE_REQ_TRANSMIT_FILE, HSE_STATUS_ERROR, HSE_TF_INFO,
};

use crate::ecb::ExtensionControlBlock;
use crate::interpreter::describe;
use crate::served;

/// The completion a script registered for one request (keyed by ConnID), and the buffer of
/// its async WriteClient in flight (IIS allows one at a time), which must outlive the call.
struct Registered {
    ecb: Py<ExtensionControlBlock>,
    callback: Py<PyAny>,
    arg: Py<PyAny>,
    in_flight: Option<Vec<u8>>,
}

static REGISTERED: LazyLock<Mutex<HashMap<usize, Registered>>> = LazyLock::new(Default::default);

fn registered() -> MutexGuard<'static, HashMap<usize, Registered>> {
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// IOCompletion(callback[, arg]): registers `callback` for this request's async I/O.
pub fn set_completion(
    py: Python<'_>,
    ecb: &Bound<'_, ExtensionControlBlock>,
    callback: &Bound<'_, PyAny>,
    arg: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    if !callback.is_callable() {
        return Err(PyTypeError::new_err("first param must be callable"));
    }
    let conn = ecb.get().conn()?;
    let entry = Registered {
        ecb: ecb.clone().unbind(),
        callback: callback.clone().unbind(),
        arg: arg.map_or_else(|| py.None(), |a| a.clone().unbind()),
        in_flight: None,
    };
    // A previous registration is replaced; its objects are dropped with the GIL held.
    let previous = registered().insert(conn, entry);
    drop(previous);
    ecb.get().support(
        py,
        "HSE_REQ_IO_COMPLETION",
        HSE_REQ_IO_COMPLETION,
        io_completion as *mut c_void,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}

/// Drops the registration of a finished request (DoneWithSession); needs the GIL.
pub fn forget(conn: usize) {
    let entry = registered().remove(&conn);
    drop(entry);
}

/// Keeps `data` for an async WriteClient until its completion; returns where it now lives.
/// None when no completion is registered (the server would refuse the write anyway).
pub fn keep_for_async_write(conn: usize, data: Vec<u8>) -> Option<(*const u8, usize)> {
    let mut all = registered();
    let entry = all.get_mut(&conn)?;
    let kept = entry.in_flight.insert(data);
    Some((kept.as_ptr(), kept.len()))
}

/// Takes back the buffer of an async write the server refused.
pub fn release_async_write(conn: usize) {
    let buffer = registered().get_mut(&conn).and_then(|e| e.in_flight.take());
    drop(buffer);
}

/// Logs a failed callback the way the boot module logs a failed HttpExtensionProc.
fn log_failure(py: Python<'_>, what: &str, err: &PyErr) {
    served::log(&format!("{what}:\n{}", describe(py, err)));
}

/// Runs a completion's work with the GIL, on the server's thread that called it; a panic
/// stops here (it must not unwind into the server) and is logged as an internal error in
/// the runtime's `what`.
fn complete(what: &str, f: impl FnOnce(Python<'_>)) {
    if catch_unwind(AssertUnwindSafe(|| crate::interpreter::attach(f))).is_err() {
        served::log(&format!("internal error in the isapi-freeze runtime's {what}"));
    }
}

/// PFN_HSE_IO_COMPLETION registered by `set_completion`.
unsafe extern "system" fn io_completion(
    ecb: *mut EXTENSION_CONTROL_BLOCK,
    _context: *mut c_void,
    bytes: u32,
    error: u32,
) {
    if ecb.is_null() {
        return;
    }
    // SAFETY: IIS passes the request's live control block.
    let conn = unsafe { (*ecb).ConnID } as usize;
    complete("I/O completion", |py| {
        let found = registered().get_mut(&conn).map(|e| {
            (
                e.ecb.clone_ref(py),
                e.callback.clone_ref(py),
                e.arg.clone_ref(py),
                e.in_flight.take(),
            )
        });
        let Some((object, callback, arg, buffer)) = found else {
            served::log("an I/O completion arrived for a request with no IOCompletion callback");
            return;
        };
        // The write is over: its buffer may go.
        drop(buffer);
        if let Err(err) = callback.call1(py, (object.clone_ref(py), arg, bytes, error)) {
            log_failure(py, "the IOCompletion callback failed", &err);
            // As pywin32 does: no more callbacks, and the request ends with an error so
            // it cannot hang.
            forget(conn);
            let object = object.get();
            let _ = object.support(
                py,
                "HSE_REQ_IO_COMPLETION",
                HSE_REQ_IO_COMPLETION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            let _ = object.done_with_session(py, HSE_STATUS_ERROR);
        }
    });
}

/// What a TransmitFile completion needs, and the buffers HSE_TF_INFO points into.
struct Transmit {
    ecb: Py<ExtensionControlBlock>,
    callback: Py<PyAny>,
    arg: Py<PyAny>,
    _status: Vec<u8>,
    _head: Vec<u8>,
    _tail: Vec<u8>,
}

/// The arguments of TransmitFile after conversion.
pub struct TransmitArgs {
    pub file: usize,
    pub status: Vec<u8>,
    pub bytes_to_write: u32,
    pub offset: u32,
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    pub flags: u32,
}

/// TransmitFile: sends part of a file (with head and tail) through the server; `callback`
/// is called as `callback(ecb, param, cbIO, dwError)` when it is sent.
pub fn transmit_file(
    py: Python<'_>,
    ecb: &Bound<'_, ExtensionControlBlock>,
    callback: &Bound<'_, PyAny>,
    param: &Bound<'_, PyAny>,
    args: TransmitArgs,
) -> PyResult<()> {
    if !callback.is_callable() {
        return Err(PyTypeError::new_err("Callback is not callable"));
    }
    let mut status = args.status;
    status.push(0);
    let context = Box::new(Transmit {
        ecb: ecb.clone().unbind(),
        callback: callback.clone().unbind(),
        arg: param.clone().unbind(),
        _status: status,
        _head: args.head,
        _tail: args.tail,
    });
    let mut info = HSE_TF_INFO {
        pfnHseIO: Some(transmit_completion),
        pContext: std::ptr::null_mut(),
        hFile: args.file as HANDLE,
        pszStatusCode: context._status.as_ptr(),
        BytesToWrite: args.bytes_to_write,
        Offset: args.offset,
        pHead: context._head.as_ptr() as *mut c_void,
        HeadLength: context._head.len() as u32,
        pTail: context._tail.as_ptr() as *mut c_void,
        TailLength: context._tail.len() as u32,
        dwFlags: args.flags,
    };
    if info.HeadLength == 0 {
        info.pHead = std::ptr::null_mut();
    }
    if info.TailLength == 0 {
        info.pTail = std::ptr::null_mut();
    }
    // The boxed buffers do not move when the box becomes a raw pointer.
    let context = Box::into_raw(context);
    info.pContext = context.cast();
    let result = ecb
        .get()
        .support_value(py, "HSE_REQ_TRANSMIT_FILE", HSE_REQ_TRANSMIT_FILE, &mut info);
    if result.is_err() {
        // SAFETY: the server refused the request, so it will never call the completion
        // that would otherwise take the context back.
        drop(unsafe { Box::from_raw(context) });
    }
    result
}

/// The PFN_HSE_IO_COMPLETION of TransmitFile; its context is the boxed `Transmit`.
unsafe extern "system" fn transmit_completion(
    _ecb: *mut EXTENSION_CONTROL_BLOCK,
    context: *mut c_void,
    bytes: u32,
    error: u32,
) {
    if context.is_null() {
        return;
    }
    complete("TransmitFile completion", |py| {
        // SAFETY: `context` came from Box::into_raw in `transmit_file`, and the server
        // calls this completion once.
        let transmit = unsafe { Box::from_raw(context.cast::<Transmit>()) };
        let Transmit { ecb, callback, arg, .. } = *transmit;
        if let Err(err) = callback.call1(py, (ecb, arg, bytes, error)) {
            log_failure(py, "TransmitFile callback failed", &err);
        }
    });
}
