//! isapi.wsgi's hot path, natively: the CGI variables of a WSGI environ, read from the
//! control block in one call, `start_response` with the response it starts
//! (`WsgiResponse`), and the request loop around the application (`serve`).
//! resources/isapi/wsgi.py has the same rules in Python (what runs under pywin32's
//! loader); tests/e2e/wsgi.rs checks that the two agree, request by request.
//!
//! Values are PEP 3333 native strings: the server's bytes, one char per byte (latin-1).

use std::ffi::CStr;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::cgi;
use crate::ecb::{field_bytes, ExtensionControlBlock};
use crate::response_head::{self as head, NotLatin1, StatusShape};
use crate::server_variables::{ansi_bytes, utf16_text, with_scratch};

/// Bytes as a PEP 3333 native string: one char per byte (latin-1).
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    PyString::new(py, &cgi::latin1_text(bytes))
}

/// The CGI variables whose last value [`Strings`] keeps, one slot each.
#[derive(Clone, Copy)]
enum Slot {
    Method,
    ScriptName,
    PathInfo,
    QueryString,
    ServerName,
    ServerPort,
    ServerProtocol,
    ServerSoftware,
    RemoteAddr,
    RemotePort,
    RemoteUser,
    AuthType,
    ContentType,
    ContentLength,
}
const SLOTS: usize = Slot::ContentLength as usize + 1;

/// How many header names [`Recent`] keeps: a client sending made-up names cannot make it
/// grow without bound.
const MAX_HEADER_KEYS: usize = 256;

/// A value's bytes and the string made of them.
type Made = (Vec<u8>, Py<PyString>);

/// By `HTTP_*` key: the key as a string (interned when ASCII), and the key's last value.
type HeaderStrings = std::collections::HashMap<Vec<u8>, (Py<PyString>, Option<Made>)>;

/// The strings of recent requests' environ values. From one request to the next most of
/// them are the same (the server's name and port, the method, Host, User-Agent), and
/// comparing bytes costs less than making a string (and, for a key, hashing it).
struct Recent {
    /// The last value of each [`Slot`].
    values: [Option<Made>; SLOTS],
    headers: Option<HeaderStrings>,
}

static RECENT: std::sync::Mutex<Recent> = std::sync::Mutex::new(Recent {
    values: [const { None }; SLOTS],
    headers: None,
});

/// The environ's strings for one request: reused from [`RECENT`] when the bytes match. The
/// lock is only tried: a request that finds it taken (code run from within this one, such
/// as a finalizer) makes its strings afresh.
struct Strings(Option<std::sync::MutexGuard<'static, Recent>>);

impl Strings {
    fn new() -> Self {
        Strings(RECENT.try_lock().ok())
    }

    /// `bytes` as a native string for the variable in `slot`.
    fn value<'py>(&mut self, py: Python<'py>, slot: Slot, bytes: &[u8]) -> Bound<'py, PyString> {
        match &mut self.0 {
            Some(recent) => reuse(py, &mut recent.values[slot as usize], bytes),
            None => latin1(py, bytes),
        }
    }

    /// (key, value) as native strings for a request header's `HTTP_*` key and value.
    fn header<'py>(
        &mut self,
        py: Python<'py>,
        key: &[u8],
        value: &[u8],
    ) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
        let Some(recent) = &mut self.0 else {
            return (latin1(py, key), latin1(py, value));
        };
        let headers = recent.headers.get_or_insert_with(Default::default);
        if let Some((key, last)) = headers.get_mut(key) {
            let value = reuse(py, last, value);
            return (key.bind(py).clone(), value);
        }
        if headers.len() >= MAX_HEADER_KEYS {
            return (latin1(py, key), latin1(py, value));
        }
        // Interned, as the literals of the application's code are: its lookups then find
        // the key by identity. Only what is kept is interned (an interned string may live
        // for ever).
        let key_string = match std::str::from_utf8(key) {
            Ok(ascii) if key.is_ascii() => PyString::intern(py, ascii),
            _ => latin1(py, key),
        };
        let mut last = None;
        let value = reuse(py, &mut last, value);
        headers.insert(key.to_vec(), (key_string.clone().unbind(), last));
        (key_string, value)
    }
}

/// The string in `slot` if it was made of `bytes`, else a new one, kept in `slot` for next
/// time (in the slot's buffer: no allocation once it is big enough).
fn reuse<'py>(py: Python<'py>, slot: &mut Option<Made>, bytes: &[u8]) -> Bound<'py, PyString> {
    if let Some((last, string)) = slot {
        if last.as_slice() == bytes {
            return string.bind(py).clone();
        }
        let made = latin1(py, bytes);
        last.clear();
        last.extend_from_slice(bytes);
        *string = made.clone().unbind();
        return made;
    }
    let made = latin1(py, bytes);
    *slot = Some((bytes.to_vec(), made.clone().unbind()));
    made
}

/// The server variables of one request, read into one buffer (the thread's scratch buffer,
/// see `server_variables::with_scratch`).
struct Variables<'a> {
    ecb: &'a ExtensionControlBlock,
    buffer: &'a mut Vec<u8>,
}

impl Variables<'_> {
    /// A variable's bytes (without the NUL), or None when the server has no such variable.
    fn get(&mut self, name: &CStr) -> PyResult<Option<&[u8]>> {
        Ok(match self.ecb.variable_into(name, self.buffer)? {
            Ok(len) => Some(ansi_bytes(&self.buffer[..len])),
            Err(_) => None,
        })
    }
}

/// The request path as PEP 3333 wants it: the decoded path's UTF-8 bytes.
fn request_path(v: &mut Variables) -> PyResult<Vec<u8>> {
    if let Ok(len) = v.ecb.variable_into(c"UNICODE_PATH_INFO", v.buffer)? {
        return Ok(utf16_text(&v.buffer[..len]).into_bytes());
    }
    Ok(field_bytes(v.ecb.fields()?.lpszPathInfo).to_vec())
}

/// Adds an `HTTP_*` variable for each request header: from ALL_RAW, the headers as sent,
/// else from ALL_HTTP (see `cgi::raw_headers` for which lines count).
fn add_request_headers(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    variables: &mut Variables,
    strings: &mut Strings,
) -> PyResult<()> {
    let mut add = |key: &[u8], value: &[u8]| add_header(py, environ, strings, key, value);
    // Each read reuses the one buffer: ALL_HTTP is read only when ALL_RAW gave nothing.
    if let Some(raw) = variables.get(c"ALL_RAW")?.filter(|raw| !raw.is_empty()) {
        return cgi::raw_headers(raw, &mut add);
    }
    cgi::all_http_headers(variables.get(c"ALL_HTTP")?.unwrap_or_default(), &mut add)
}

/// environ[key] = value, or `,value` appended to an earlier one: a header sent twice gets
/// its values joined with commas.
fn add_header(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    strings: &mut Strings,
    key: &[u8],
    value: &[u8],
) -> PyResult<()> {
    let (key, value) = strings.header(py, key, value);
    match environ.get_item(&key)? {
        Some(earlier) => {
            let joined = format!("{},{}", earlier.extract::<String>()?, value.to_str()?);
            environ.set_item(key, joined)
        }
        None => environ.set_item(key, value),
    }
}

/// The environ's CGI variables (every str-valued key, plus `wsgi.url_scheme`). Keys are
/// interned strings: made and hashed once per process, not once per request.
pub fn cgi_environ<'py>(py: Python<'py>, ecb: &ExtensionControlBlock) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    add_cgi_variables(py, &environ, ecb)?;
    Ok(environ)
}

/// Adds the CGI variables of [`cgi_environ`] to `environ`.
fn add_cgi_variables(py: Python<'_>, environ: &Bound<'_, PyDict>, ecb: &ExtensionControlBlock) -> PyResult<()> {
    with_scratch(|buffer| add_cgi_variables_with(py, environ, &mut Variables { ecb, buffer }))
}

/// [`add_cgi_variables`], with the server variables read through `v`.
fn add_cgi_variables_with(py: Python<'_>, environ: &Bound<'_, PyDict>, v: &mut Variables) -> PyResult<()> {
    use Slot::*;
    let ecb = v.ecb;
    let mut strings = Strings::new();
    let path = request_path(v)?;
    let mount = cgi::mount_point(v.get(c"APPL_MD_PATH")?.unwrap_or_default());
    let (script_name, path_info) = cgi::split_path(&path, mount);
    let https = cgi::is_https(v.get(c"HTTPS")?);
    let (method, query, content_type, total) = {
        let f = ecb.fields()?;
        (
            field_bytes(f.lpszMethod),
            field_bytes(f.lpszQueryString),
            field_bytes(f.lpszContentType),
            f.cbTotalBytes,
        )
    };
    let mut set =
        |key: &Bound<'_, PyString>, slot: Slot, value: &[u8]| environ.set_item(key, strings.value(py, slot, value));
    set(intern!(py, "REQUEST_METHOD"), Method, method)?;
    set(intern!(py, "SCRIPT_NAME"), ScriptName, script_name)?;
    set(intern!(py, "PATH_INFO"), PathInfo, path_info)?;
    set(intern!(py, "QUERY_STRING"), QueryString, query)?;
    set(
        intern!(py, "SERVER_NAME"),
        ServerName,
        v.get(c"SERVER_NAME")?.unwrap_or(b""),
    )?;
    let port = cgi::default_port(https);
    set(
        intern!(py, "SERVER_PORT"),
        ServerPort,
        v.get(c"SERVER_PORT")?.unwrap_or(port),
    )?;
    let protocol = v.get(c"SERVER_PROTOCOL")?.unwrap_or(b"HTTP/1.1");
    set(intern!(py, "SERVER_PROTOCOL"), ServerProtocol, protocol)?;
    set(
        intern!(py, "SERVER_SOFTWARE"),
        ServerSoftware,
        v.get(c"SERVER_SOFTWARE")?.unwrap_or(b""),
    )?;
    environ.set_item(intern!(py, "GATEWAY_INTERFACE"), intern!(py, "CGI/1.1"))?;
    set(
        intern!(py, "REMOTE_ADDR"),
        RemoteAddr,
        v.get(c"REMOTE_ADDR")?.unwrap_or(b""),
    )?;
    let scheme = if https {
        intern!(py, "https")
    } else {
        intern!(py, "http")
    };
    environ.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    for (key, slot, name) in [
        (intern!(py, "REMOTE_PORT"), RemotePort, c"REMOTE_PORT"),
        (intern!(py, "REMOTE_USER"), RemoteUser, c"REMOTE_USER"),
        (intern!(py, "AUTH_TYPE"), AuthType, c"AUTH_TYPE"),
    ] {
        if let Some(value) = v.get(name)?.filter(|value| !value.is_empty()) {
            set(key, slot, value)?;
        }
    }
    if !content_type.is_empty() {
        set(intern!(py, "CONTENT_TYPE"), ContentType, content_type)?;
    }
    if let Some(length) = cgi::content_length(v.get(c"CONTENT_LENGTH")?, total) {
        set(intern!(py, "CONTENT_LENGTH"), ContentLength, length)?;
    }
    add_request_headers(py, environ, v, &mut strings)
}

/// `start_response` and the response it starts, for isapi.wsgi: the status and header
/// lines the application gave, sent with its first non-empty block of body (or at the end).
/// `isapi.wsgi._Response` is the same in Python (what runs under pywin32's loader);
/// tests/e2e/wsgi.rs checks that the two answer every probe route alike.
#[pyclass(module = "_isapi_freeze", name = "WsgiResponse")]
pub struct WsgiResponse {
    ecb: Py<ExtensionControlBlock>,
    #[pyo3(get)]
    status: Option<Py<PyString>>,
    /// The header lines as they will be sent, without the blank line that ends them.
    header_block: String,
    #[pyo3(get)]
    headers_sent: bool,
}

/// The text of a Python str (or str subclass); None for anything else, or a str that has no
/// UTF-8 form (a lone surrogate).
fn text_of<'a>(value: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    value.cast::<PyString>().ok()?.to_str().ok()
}

/// The error Python's own encoder gives for `s.encode("latin-1")` (UnicodeEncodeError, with
/// the char and its position), for text that has a char outside latin-1.
fn latin1_error(py: Python<'_>, NotLatin1(s): NotLatin1<'_>) -> PyErr {
    match PyString::new(py, s).call_method1("encode", ("latin-1",)) {
        Err(error) => error,
        Ok(_) => unreachable!("{s:?} has a char outside latin-1, so encode raised"),
    }
}

/// `status[:3]`.
fn code_of<'py>(status: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    status.get_item(pyo3::types::PySlice::new(status.py(), 0, 3, 1))
}

#[pymethods]
impl WsgiResponse {
    #[new]
    fn new(ecb: Py<ExtensionControlBlock>) -> Self {
        WsgiResponse {
            ecb,
            status: None,
            header_block: String::new(),
            headers_sent: false,
        }
    }

    /// start_response(status, headers, exc_info=None): returns the write callable.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // Short borrows only: the checks below run Python code (a headers generator, repr)
        // that may look at this object.
        let (headers_sent, started) = {
            let this = slf.borrow();
            (this.headers_sent, this.status.is_some())
        };
        match exc_info.filter(|e| !e.is_none()) {
            Some(info) if headers_sent => {
                let error = info.get_item(1)?.call_method1("with_traceback", (info.get_item(2)?,))?;
                return Err(PyErr::from_value(error));
            }
            Some(_) => {}
            None if started => {
                return Err(pyo3::exceptions::PyAssertionError::new_err(
                    "start_response was already called (without exc_info)",
                ));
            }
            None => {}
        }
        let Ok(status) = status.cast::<PyString>() else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "the status must be a str, not {}",
                status.get_type().name()?
            )));
        };
        let well_formed = match head::status_shape(status.to_str()?) {
            StatusShape::NnnReason => true,
            StatusShape::Malformed => false,
            // str.isdigit's idea of a digit, beyond ASCII.
            StatusShape::AskIsDigit => code_of(status)?.call_method0("isdigit")?.is_truthy()?,
        };
        if !well_formed {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "the status {} is not 'NNN Reason'",
                status.repr()?
            )));
        }
        // A list first, as the twin makes one (`headers` may be an iterator, which fails
        // before any check then). Then one pass, as cheap as it can be (this runs for every
        // response): each header is checked for its type at once, as the twin's first loop
        // does, and the first one with a line break is refused after them all, as its
        // second check does.
        let headers = match headers.is_exact_instance_of::<PyList>() {
            true => headers.clone(),
            false => py.get_type::<PyList>().call1((headers,))?,
        };
        let mut block = String::with_capacity(128);
        let mut broken = None;
        for header in headers.try_iter()? {
            let header = header?;
            let pair = header.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
            let pair = pair.and_then(|t| Some((t.get_item(0).ok()?, t.get_item(1).ok()?)));
            let texts = pair
                .as_ref()
                .and_then(|(name, value)| Some((text_of(name)?, text_of(value)?)));
            let Some((name, value)) = texts else {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "each header must be a (str, str) tuple, not {}",
                    header.repr()?
                )));
            };
            if broken.is_none() && head::breaks_line(name, value) {
                broken = Some(header.clone());
            }
            head::push_header_line(&mut block, name, value);
        }
        if let Some(header) = broken {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "a header contains a line break: {}",
                header.repr()?
            )));
        }
        let mut this = slf.borrow_mut();
        this.status = Some(status.clone().unbind());
        this.header_block = block;
        drop(this);
        slf.getattr(intern!(py, "write"))
    }

    /// Whether the application set Content-Length (names match case-insensitively).
    fn has_length(&self) -> bool {
        head::has_length(&self.header_block)
    }

    /// Adds a Content-Length header line.
    fn add_length(&mut self, length: usize) {
        head::add_length(&mut self.header_block, length);
    }

    fn send_headers(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(status) = self.status.as_ref().map(|s| s.bind(py).clone()) else {
            return Err(pyo3::exceptions::PyAssertionError::new_err(
                "the application returned without calling start_response",
            ));
        };
        let text = status.to_str()?;
        let (strings, status_len) = head::header_strings(text, &self.header_block).map_err(|e| latin1_error(py, e))?;
        let code: u32 = match head::status_code(text) {
            Some(code) => code,
            None => py
                .get_type::<pyo3::types::PyInt>()
                .call1((code_of(&status)?,))?
                .extract()?,
        };
        let ecb = self.ecb.bind(py).borrow();
        ecb.set_status(code)?;
        self.headers_sent = true;
        ecb.send_header_strings(py, &strings, status_len, true)
    }

    /// The write callable start_response returns.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let Ok(bytes) = data.cast::<pyo3::types::PyBytes>() else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "the application must write bytes, not {}",
                data.get_type().name()?
            )));
        };
        if !self.headers_sent {
            self.send_headers(py)?;
        }
        if !bytes.as_bytes().is_empty() {
            self.ecb.bind(py).borrow().WriteClient(py, data, 0)?;
        }
        Ok(())
    }
}

/// One request through a WSGI application, natively: `isapi.wsgi._respond`'s twin
/// (that one runs under pywin32's loader). The environ is `base` (the keys that are the
/// same for every request) with the request's CGI variables, `wsgi.input` (`input_class(ecb)`)
/// and `isapi.ecb`; the response goes out through `response`. Errors are raised, for
/// `isapi.wsgi._serve` to log and answer.
#[pyfunction]
#[pyo3(name = "wsgi_serve")]
pub fn serve(
    py: Python<'_>,
    app: &Bound<'_, PyAny>,
    ecb: &Bound<'_, ExtensionControlBlock>,
    response: &Bound<'_, WsgiResponse>,
    base: &Bound<'_, PyDict>,
    input_class: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // In the Python twin's order: the CGI variables, the constant keys, the input stream.
    let environ = PyDict::new(py);
    add_cgi_variables(py, &environ, &ecb.borrow())?;
    environ.update(base.as_mapping())?;
    environ.set_item(intern!(py, "wsgi.input"), input_class.call1((ecb,))?)?;
    environ.set_item(intern!(py, "isapi.ecb"), ecb)?;
    let result = app.call1((environ, response))?;
    let sent = send_result(py, &result, response);
    // `finally: close = getattr(result, "close", None); if close is not None: close()`. A
    // plain list or tuple (what most applications return) has no close(), and asking it
    // costs an AttributeError.
    let plain = result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
    let close = match plain {
        true => None,
        false => result
            .getattr_opt(intern!(py, "close"))?
            .filter(|close| !close.is_none()),
    };
    let Some(close) = close else {
        return sent;
    };
    match sent {
        Ok(()) => close.call0().map(drop),
        // As in a `finally:` block, the sending's error is the exception being handled while
        // close() runs: one that close() raises gets it as its context, chained as Python
        // chains it, and close() sees it in sys.exception().
        Err(error) => {
            let error = error.into_value(py);
            while_handling(error.bind(py).as_any(), || close.call0())?;
            Err(PyErr::from_value(error.into_bound(py).into_any()))
        }
    }
}

/// Runs `f` with `exception` as the exception being handled (`sys.exception()`), then puts
/// back the one that was.
fn while_handling<R>(exception: &Bound<'_, PyAny>, f: impl FnOnce() -> R) -> R {
    // SAFETY: the GIL is held (`exception` is bound to it). PyErr_GetHandledException returns
    // a new reference or NULL; PyErr_SetHandledException takes its own reference, so the
    // one from Get is released after Set.
    unsafe {
        let previous = pyo3::ffi::PyErr_GetHandledException();
        pyo3::ffi::PyErr_SetHandledException(exception.as_ptr());
        let out = f();
        pyo3::ffi::PyErr_SetHandledException(previous);
        if !previous.is_null() {
            pyo3::ffi::Py_DecRef(previous);
        }
        out
    }
}

/// Sends what the application returned: each block of body as it comes, the headers with
/// the first non-empty one (or at the end).
fn send_result(py: Python<'_>, result: &Bound<'_, PyAny>, response: &Bound<'_, WsgiResponse>) -> PyResult<()> {
    // One block and no length (as wsgiref does): the length is known, so the response need
    // not be chunked. The twin's `isinstance(result, (list, tuple)) and len(result) == 1 and
    // response.status and not response.headers_sent and not response.has_length()`, in that
    // order, then `len(result[0])`.
    let sequence = result.is_exact_instance_of::<PyList>()
        || result.is_exact_instance_of::<PyTuple>()
        || result.is_instance(&py.get_type::<PyList>())?
        || result.is_instance(&py.get_type::<PyTuple>())?;
    if sequence && result.len()? == 1 {
        let wanted = {
            let this = response.borrow();
            this.status.is_some() && !this.headers_sent && !this.has_length()
        };
        if wanted {
            let len = result.get_item(0)?.len()?;
            response.borrow_mut().add_length(len);
        }
    }
    for data in result.try_iter()? {
        let data = data?;
        let Ok(bytes) = data.cast::<pyo3::types::PyBytes>() else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "the application must yield bytes, not {}",
                data.get_type().name()?
            )));
        };
        if !bytes.as_bytes().is_empty() {
            response.borrow_mut().write(py, &data)?;
        }
    }
    let mut this = response.borrow_mut();
    if !this.headers_sent {
        if !this.has_length() {
            this.add_length(0);
        }
        this.send_headers(py)?;
    }
    Ok(())
}
