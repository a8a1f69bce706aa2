//! ISAPI filters as IIS drives them: each `--filter` DLL is loaded by full path, asked
//! GetFilterVersion once, and told, per connection, the notifications it asked for
//! (httpfilt.h) at the points IIS raises them: READ_RAW_DATA on bytes read, PREPROC_HEADERS,
//! URL_MAP, AUTHENTICATION and AUTH_COMPLETE on a parsed request, ACCESS_DENIED before a
//! 401, SEND_RESPONSE before a response head, SEND_RAW_DATA on bytes written,
//! END_OF_REQUEST, LOG before the log line, END_OF_NET_SESSION when the connection closes.
//!
//! Every connection has one HTTP_FILTER_CONTEXT per filter (so `pFilterContext` lives as
//! long as the connection) whose ServerContext is a number keying a registry, as ConnID
//! does for extensions: a callback with a stale context fails instead of touching freed
//! memory. AllocMem blocks live until the connection ends.

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_INDEX, ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, FALSE, TRUE,
};
use windows_sys::Win32::System::Iis::{
    HTTP_FILTER_ACCESS_DENIED, HTTP_FILTER_AUTHENT, HTTP_FILTER_AUTH_COMPLETE_INFO, HTTP_FILTER_CONTEXT,
    HTTP_FILTER_LOG, HTTP_FILTER_PREPROC_HEADERS, HTTP_FILTER_RAW_DATA, HTTP_FILTER_URL_MAP, HTTP_FILTER_VERSION,
    SF_DENIED_APPLICATION, SF_DENIED_FILTER, SF_DENIED_LOGON, SF_MAX_PASSWORD, SF_MAX_USERNAME,
    SF_NOTIFY_ACCESS_DENIED, SF_NOTIFY_AUTHENTICATION, SF_NOTIFY_AUTH_COMPLETE, SF_NOTIFY_END_OF_NET_SESSION,
    SF_NOTIFY_END_OF_REQUEST, SF_NOTIFY_LOG, SF_NOTIFY_NONSECURE_PORT, SF_NOTIFY_ORDER_HIGH, SF_NOTIFY_ORDER_MEDIUM,
    SF_NOTIFY_PREPROC_HEADERS, SF_NOTIFY_READ_RAW_DATA, SF_NOTIFY_SECURE_PORT, SF_NOTIFY_SEND_RAW_DATA,
    SF_NOTIFY_SEND_RESPONSE, SF_NOTIFY_URL_MAP, SF_REQ_DISABLE_NOTIFICATIONS, SF_REQ_SEND_RESPONSE_HEADER,
    SF_STATUS_REQ_ERROR, SF_STATUS_REQ_FINISHED, SF_STATUS_REQ_FINISHED_KEEP_CONN, SF_STATUS_REQ_HANDLED_NOTIFICATION,
    SF_STATUS_REQ_NEXT_NOTIFICATION, SF_STATUS_REQ_READ_NEXT,
};

use crate::dll::{self, Dll, EntryPoints, Kind, LoadError};
use crate::ecb::{fail, lock};
use crate::http::{self, FramedHead, RequestHead};
use crate::variables::RequestInfo;

/// The filter revision this host speaks (httpfilt.h HTTP_FILTER_REVISION, 7.0).
const HTTP_FILTER_REVISION: u32 = 0x0007_0000;
/// Room for a physical path in URL_MAP (MAX_PATH is too small for Wine's Z:\ paths).
const PATH_BUFFER: usize = 1024;

type GetFilterVersion = unsafe extern "system" fn(*mut HTTP_FILTER_VERSION) -> BOOL;
type HttpFilterProc = unsafe extern "system" fn(*mut HTTP_FILTER_CONTEXT, u32, *mut c_void) -> u32;
type TerminateFilter = unsafe extern "system" fn(u32) -> BOOL;

/// One loaded filter. Like extensions, it is never unloaded.
pub struct Filter {
    pub path: PathBuf,
    pub description: String,
    flags: u32,
    entry_points: EntryPoints<GetFilterVersion, HttpFilterProc, TerminateFilter>,
}

impl Filter {
    /// Loads the DLL by full path and calls GetFilterVersion.
    pub fn load(path: &Path) -> Result<Filter, LoadError> {
        let dll = Dll::load(path, Kind::Filter)?;
        // SAFETY: these are httpfilt.h's signatures for the three exports.
        let entry_points: EntryPoints<GetFilterVersion, _, _> = unsafe { dll.entry_points() }?;
        let mut info = HTTP_FILTER_VERSION {
            dwServerFilterVersion: HTTP_FILTER_REVISION,
            dwFilterVersion: 0,
            lpszFilterDesc: [0; 257],
            dwFlags: 0,
        };
        // SAFETY: `info` is a writable HTTP_FILTER_VERSION for the call.
        if unsafe { (entry_points.version)(&mut info) } == 0 {
            return Err(LoadError::VersionRefused {
                kind: Kind::Filter,
                path: dll.path,
            });
        }
        Ok(Filter {
            path: dll.path,
            description: dll::description(&info.lpszFilterDesc),
            flags: info.dwFlags,
            entry_points,
        })
    }

    fn priority(&self) -> u8 {
        if self.flags & SF_NOTIFY_ORDER_HIGH != 0 {
            2
        } else if self.flags & SF_NOTIFY_ORDER_MEDIUM != 0 {
            1
        } else {
            0
        }
    }

    /// Whether the filter asked for `kind` on a plain-HTTP port (no port flag means both).
    fn wants(&self, kind: u32) -> bool {
        let ports = self.flags & (SF_NOTIFY_SECURE_PORT | SF_NOTIFY_NONSECURE_PORT);
        self.flags & kind != 0 && (ports == 0 || ports & SF_NOTIFY_NONSECURE_PORT != 0)
    }
}

/// The loaded filters in notification order: by SF_NOTIFY_ORDER_*, then load order.
#[derive(Default)]
pub struct Filters {
    list: Vec<Filter>,
}

impl Filters {
    pub fn new(mut list: Vec<Filter>) -> Filters {
        list.sort_by_key(|f| std::cmp::Reverse(f.priority()));
        Filters { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Filter> {
        self.list.iter()
    }

    fn wanted(&self, kind: u32) -> bool {
        self.list.iter().any(|f| f.wants(kind))
    }

    /// Calls each filter's TerminateFilter (at shutdown).
    pub fn terminate(&self, flags: u32) {
        for filter in &self.list {
            if let Some(terminate) = filter.entry_points.terminate {
                // SAFETY: the export has the httpfilt.h signature; it takes flags by value.
                unsafe { terminate(flags) };
            }
        }
    }
}

/// What a chain of notifications decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the request.
    Continue,
    /// A filter answered the request itself; keep the connection if `keep`.
    Finished { keep: bool },
    /// A filter failed: IIS answers 500 and closes.
    Error,
    /// READ_RAW_DATA only: the filter needs more bytes first.
    ReadNext,
    /// AUTH_COMPLETE set fResetAuth: the client must authenticate again (the host answers
    /// 401 with a Basic challenge).
    Denied,
}

/// The request line and headers filters can read and change (PREPROC_HEADERS,
/// AUTH_COMPLETE), or the response head (SEND_RESPONSE).
#[derive(Clone, Default)]
struct Editable {
    /// "method", "url", "version" for a request; "status" for a response.
    specials: Vec<(&'static str, String)>,
    headers: Vec<(String, String)>,
}

impl Editable {
    /// Whether `name` is one of the specials ("url", not "url:", which is a header): text,
    /// where headers are octets (`http::octets`).
    fn is_special(&self, name: &str) -> bool {
        self.specials.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn get(&self, name: &str) -> Option<String> {
        let (name, colon) = match name.strip_suffix(':') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if !colon {
            if let Some((_, v)) = self.specials.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Some(v.clone());
            }
        }
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// SetHeader (replace; an empty value removes the header) or AddHeader.
    fn set(&mut self, name: &str, value: &str, add: bool) -> bool {
        let (name, colon) = match name.strip_suffix(':') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if name.is_empty() || value.contains(['\r', '\n']) {
            return false;
        }
        if !colon {
            if let Some((_, v)) = self.specials.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                *v = value.to_string();
                return true;
            }
        }
        if !add {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if value.is_empty() {
                return true;
            }
        }
        self.headers.push((name.to_string(), value.to_string()));
        true
    }

    fn special(&self, name: &str) -> String {
        self.specials
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// What filters did to the response on their own (WriteClient, SendResponseHeader).
#[derive(Default, Clone, Copy)]
pub struct FilterResponse {
    pub status: Option<u16>,
    pub bytes: u64,
}

#[derive(Default)]
struct State {
    /// AllocMem blocks, freed at the end of the connection.
    memory: Vec<Box<[u8]>>,
    /// Per filter: notifications disabled for the rest of this request.
    disabled: Vec<u32>,
    /// The notification being raised (for the header callbacks).
    current: u32,
    editable: Editable,
    /// For GetServerVariable.
    info: Option<RequestInfo>,
    /// AddResponseHeaders lines waiting for the next response head.
    added: Vec<(String, String)>,
    response: FilterResponse,
    /// The physical path a URL_MAP filter chose for this request.
    translated: Option<String>,
    /// The request's Basic credentials, as AUTHENTICATION filters left them.
    credentials: Option<(String, String)>,
    /// SF_DENIED_* for an ACCESS_DENIED raised on this request's 401.
    denied_reason: u32,
}

/// One connection's filter state; reached from callbacks through the registry.
pub struct Connection {
    id: usize,
    filters: Arc<Filters>,
    /// One context per filter, allocated once so pointers to them stay valid.
    contexts: *mut HTTP_FILTER_CONTEXT,
    socket: Mutex<TcpStream>,
    state: Mutex<State>,
    remote: SocketAddr,
    local: SocketAddr,
    vpath: String,
    physical_root: String,
    ended: AtomicBool,
}

// SAFETY: `contexts` is owned by the connection (freed in Drop) and only handed to filters
// during notifications, which the ISAPI contract lets run on any thread.
unsafe impl Send for Connection {}
// SAFETY: as above; everything else is behind mutexes or atomics.
unsafe impl Sync for Connection {}

static CONNECTIONS: LazyLock<Mutex<HashMap<usize, Arc<Connection>>>> = LazyLock::new(Default::default);
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The connection and filter index a context pointer belongs to.
fn connection_of(pfc: *mut HTTP_FILTER_CONTEXT) -> Option<(Arc<Connection>, usize)> {
    if pfc.is_null() {
        return None;
    }
    // SAFETY: a non-null context from a filter is one we handed out; its ServerContext is
    // the connection id, which is checked against the registry before any other use.
    let id = unsafe { (*pfc).ServerContext } as usize;
    let connection = lock(&CONNECTIONS).get(&id).cloned()?;
    let offset = (pfc as usize).checked_sub(connection.contexts as usize)?;
    let size = std::mem::size_of::<HTTP_FILTER_CONTEXT>();
    let index = offset / size;
    (offset % size == 0 && index < connection.filters.list.len()).then_some((connection, index))
}

fn c_str(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NULs removed")
}

/// Reads a NUL-terminated argument as text.
///
/// # Safety
/// `text` is null or NUL-terminated.
unsafe fn arg(text: *const u8) -> Option<String> {
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

/// The connection and the name of a GetServerVariable or GetHeader call, or None when an
/// argument is missing or not ours (the call then fails with ERROR_INVALID_PARAMETER).
///
/// # Safety
/// `name` is null or NUL-terminated.
unsafe fn lookup_args(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    size: *mut u32,
) -> Option<(Arc<Connection>, String)> {
    let (connection, _) = connection_of(pfc)?;
    if size.is_null() {
        return None;
    }
    // SAFETY: upheld by the caller.
    Some((connection, unsafe { arg(name) }?))
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

impl Connection {
    /// The filter state of a new connection, or None when no filter is loaded.
    pub fn open(
        filters: &Arc<Filters>,
        stream: &TcpStream,
        remote: SocketAddr,
        local: SocketAddr,
        vpath: &str,
        physical_root: &str,
    ) -> Option<Arc<Connection>> {
        if filters.is_empty() {
            return None;
        }
        let socket = stream.try_clone().ok()?;
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let contexts: Box<[HTTP_FILTER_CONTEXT]> = (0..filters.list.len())
            .map(|_| HTTP_FILTER_CONTEXT {
                cbSize: std::mem::size_of::<HTTP_FILTER_CONTEXT>() as u32,
                Revision: HTTP_FILTER_REVISION,
                ServerContext: id as *mut c_void,
                ulReserved: 0,
                fIsSecurePort: FALSE,
                pFilterContext: std::ptr::null_mut(),
                GetServerVariable: get_server_variable as *const () as isize,
                AddResponseHeaders: add_response_headers as *const () as isize,
                WriteClient: write_client as *const () as isize,
                AllocMem: alloc_mem as *const () as isize,
                ServerSupportFunction: server_support_function as *const () as isize,
            })
            .collect();
        let connection = Arc::new(Connection {
            id,
            filters: filters.clone(),
            contexts: Box::into_raw(contexts).cast(),
            socket: Mutex::new(socket),
            state: Mutex::new(State {
                disabled: vec![0; filters.list.len()],
                ..State::default()
            }),
            remote,
            local,
            vpath: vpath.to_string(),
            physical_root: physical_root.to_string(),
            ended: AtomicBool::new(false),
        });
        lock(&CONNECTIONS).insert(id, connection.clone());
        Some(connection)
    }

    /// Raises one notification through the filters that want it, in order.
    fn notify(&self, kind: u32, data: *mut c_void) -> Flow {
        lock(&self.state).current = kind;
        for (index, filter) in self.filters.list.iter().enumerate() {
            if !filter.wants(kind) || lock(&self.state).disabled[index] & kind != 0 {
                continue;
            }
            // SAFETY: `index` is within the contexts array, which lives as long as `self`.
            let pfc = unsafe { self.contexts.add(index) };
            // SAFETY: the context and `data` are valid for the call (the caller keeps the
            // notification struct alive); the export has the httpfilt.h signature.
            let status = unsafe { (filter.entry_points.proc_)(pfc, kind, data) } as i32;
            match status {
                SF_STATUS_REQ_NEXT_NOTIFICATION => continue,
                SF_STATUS_REQ_HANDLED_NOTIFICATION => return Flow::Continue,
                SF_STATUS_REQ_FINISHED => return Flow::Finished { keep: false },
                SF_STATUS_REQ_FINISHED_KEEP_CONN => return Flow::Finished { keep: true },
                SF_STATUS_REQ_READ_NEXT if kind == SF_NOTIFY_READ_RAW_DATA => return Flow::ReadNext,
                SF_STATUS_REQ_ERROR => {
                    eprintln!(
                        "isapi-host: filter {} returned SF_STATUS_REQ_ERROR for notification {kind:#x}",
                        filter.path.display()
                    );
                    return Flow::Error;
                }
                other => {
                    eprintln!(
                        "isapi-host: filter {} returned {other:#x}, which is no SF_STATUS_* value",
                        filter.path.display()
                    );
                    return Flow::Error;
                }
            }
        }
        Flow::Continue
    }

    /// READ_RAW_DATA on bytes just read: the bytes the server goes on with, and the flow.
    fn read_raw(&self, data: Vec<u8>) -> (Flow, Vec<u8>) {
        if !self.filters.wanted(SF_NOTIFY_READ_RAW_DATA) {
            return (Flow::Continue, data);
        }
        self.raw(SF_NOTIFY_READ_RAW_DATA, data)
    }

    fn raw(&self, kind: u32, mut data: Vec<u8>) -> (Flow, Vec<u8>) {
        let mut raw = HTTP_FILTER_RAW_DATA {
            pvInData: data.as_mut_ptr().cast(),
            cbInData: data.len() as u32,
            cbInBuffer: data.len() as u32,
            dwReserved: 0,
        };
        let flow = self.notify(kind, (&mut raw as *mut HTTP_FILTER_RAW_DATA).cast());
        let out = if raw.pvInData.is_null() {
            Vec::new()
        } else {
            // SAFETY: the filter leaves pvInData pointing at cbInData bytes: our buffer or
            // AllocMem memory, both alive here.
            unsafe { std::slice::from_raw_parts(raw.pvInData.cast::<u8>(), raw.cbInData as usize) }.to_vec()
        };
        (flow, out)
    }

    fn info_for(&self, head: &RequestHead, state: &State) -> RequestInfo {
        RequestInfo {
            method: head.method.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            raw_target: head.target.clone(),
            protocol: head.version.as_str(),
            headers: head.headers.clone(),
            raw_headers: head.raw_headers.clone(),
            remote: self.remote,
            local: self.local,
            vpath: self.vpath.clone(),
            physical_root: self.physical_root.clone(),
            chunked: head.framing == http::Framing::Chunked,
            translated: state.translated.clone(),
            credentials: state.credentials.clone(),
        }
    }

    /// Refreshes what GetServerVariable answers from, after a notification changed it.
    fn refresh_info(&self, head: &RequestHead) {
        let mut state = lock(&self.state);
        let info = self.info_for(head, &state);
        state.info = Some(info);
    }

    /// What the filters decided for the request the extension then sees: the physical path
    /// (URL_MAP) and the credentials (AUTHENTICATION, AUTH_COMPLETE).
    pub fn complete_info(&self, info: &mut RequestInfo) {
        let state = lock(&self.state);
        info.translated = state.translated.clone();
        info.credentials = state.credentials.clone();
    }

    /// Puts a request head where the header callbacks edit it.
    fn load_head(&self, head: &RequestHead) {
        let mut state = lock(&self.state);
        state.editable = Editable {
            specials: vec![
                ("method", head.method.clone()),
                ("url", head.target.clone()),
                ("version", head.version.as_str().to_string()),
            ],
            headers: head.headers.clone(),
        };
        let info = self.info_for(head, &state);
        state.info = Some(info);
    }

    /// Takes the edited head back; false if the filter left a URL that is not one.
    fn store_head(&self, head: &mut RequestHead) -> bool {
        let editable = lock(&self.state).editable.clone();
        let method = editable.special("method");
        if !method.is_empty() && method.bytes().all(|b| b.is_ascii_graphic()) {
            head.method = method;
        }
        let url = editable.special("url");
        if url != head.target {
            let (raw_path, query) = url.split_once('?').unwrap_or((&url, ""));
            let Some(path) = http::normalize_path(raw_path).filter(|_| url.starts_with('/')) else {
                eprintln!("isapi-host: a filter set the URL to {url:?}, which is not an absolute path");
                return false;
            };
            head.path = path;
            head.query = query.to_string();
            head.target = url;
        }
        head.headers = editable.headers;
        head.raw_headers = head.headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        self.refresh_info(head);
        true
    }

    /// The notifications of a parsed request, in IIS's order: PREPROC_HEADERS (which may
    /// change the request line and headers), URL_MAP, AUTHENTICATION, AUTH_COMPLETE.
    pub fn request_head(&self, head: &mut RequestHead) -> Flow {
        {
            let mut state = lock(&self.state);
            state.response = FilterResponse::default();
            state.added.clear();
            state.translated = None;
            state.credentials = basic_credentials(head);
            state.denied_reason = SF_DENIED_APPLICATION;
        }
        self.load_head(head);
        if self.filters.wanted(SF_NOTIFY_PREPROC_HEADERS) {
            let mut preproc = HTTP_FILTER_PREPROC_HEADERS {
                GetHeader: get_header as *const () as isize,
                SetHeader: set_header as *const () as isize,
                AddHeader: add_header as *const () as isize,
                HttpStatus: 0,
                dwReserved: 0,
            };
            let flow = self.notify(
                SF_NOTIFY_PREPROC_HEADERS,
                (&mut preproc as *mut HTTP_FILTER_PREPROC_HEADERS).cast(),
            );
            if !self.store_head(head) {
                return Flow::Error;
            }
            if flow != Flow::Continue {
                return flow;
            }
            // The filter may have changed the Authorization header.
            lock(&self.state).credentials = basic_credentials(head);
            self.refresh_info(head);
        }
        if self.filters.wanted(SF_NOTIFY_URL_MAP) {
            let url = c_str(&head.path);
            let mapped = lock(&self.state)
                .info
                .as_ref()
                .map(|i| i.map_url(&head.path))
                .unwrap_or_default();
            let mut physical = mapped.clone().into_bytes();
            physical.resize(PATH_BUFFER, 0);
            let mut map = HTTP_FILTER_URL_MAP {
                pszURL: url.as_ptr().cast(),
                pszPhysicalPath: physical.as_mut_ptr(),
                cbPathBuff: PATH_BUFFER as u32,
            };
            let flow = self.notify(SF_NOTIFY_URL_MAP, (&mut map as *mut HTTP_FILTER_URL_MAP).cast());
            let chosen = if std::ptr::eq(map.pszPhysicalPath, physical.as_ptr()) {
                // Our buffer, written in place; a path without its NUL ends at the buffer's end.
                let end = physical.iter().position(|&b| b == 0).unwrap_or(PATH_BUFFER);
                String::from_utf8_lossy(&physical[..end]).into_owned()
            } else {
                // SAFETY: the filter pointed pszPhysicalPath at a NUL-terminated string of its
                // own that lives through the notification.
                unsafe { arg(map.pszPhysicalPath) }.unwrap_or_default()
            };
            if chosen != mapped {
                lock(&self.state).translated = Some(chosen);
                self.refresh_info(head);
            }
            if flow != Flow::Continue {
                return flow;
            }
        }
        if self.filters.wanted(SF_NOTIFY_AUTHENTICATION) {
            let (user, password) = basic_credentials(head).unwrap_or_default();
            let mut user_buffer = vec![0u8; SF_MAX_USERNAME as usize];
            let mut password_buffer = vec![0u8; SF_MAX_PASSWORD as usize];
            for (text, buffer) in [(&user, &mut user_buffer), (&password, &mut password_buffer)] {
                let n = text.len().min(buffer.len() - 1);
                buffer[..n].copy_from_slice(&text.as_bytes()[..n]);
            }
            let mut authent = HTTP_FILTER_AUTHENT {
                pszUser: user_buffer.as_mut_ptr(),
                cbUserBuff: SF_MAX_USERNAME,
                pszPassword: password_buffer.as_mut_ptr(),
                cbPasswordBuff: SF_MAX_PASSWORD,
            };
            let flow = self.notify(
                SF_NOTIFY_AUTHENTICATION,
                (&mut authent as *mut HTTP_FILTER_AUTHENT).cast(),
            );
            // The filter writes within the buffers; a value without its NUL ends at their end.
            let text = |buffer: &[u8]| {
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                String::from_utf8_lossy(&buffer[..end]).into_owned()
            };
            let credentials = (text(&user_buffer), text(&password_buffer));
            lock(&self.state).credentials = (!credentials.0.is_empty()).then_some(credentials);
            self.refresh_info(head);
            if flow != Flow::Continue {
                return flow;
            }
        }
        if self.filters.wanted(SF_NOTIFY_AUTH_COMPLETE) {
            self.load_head(head);
            let mut complete = HTTP_FILTER_AUTH_COMPLETE_INFO {
                GetHeader: get_header as *const () as isize,
                SetHeader: set_header as *const () as isize,
                AddHeader: add_header as *const () as isize,
                GetUserToken: get_user_token as *const () as isize,
                HttpStatus: 200,
                fResetAuth: FALSE,
                dwReserved: 0,
            };
            let flow = self.notify(
                SF_NOTIFY_AUTH_COMPLETE,
                (&mut complete as *mut HTTP_FILTER_AUTH_COMPLETE_INFO).cast(),
            );
            if !self.store_head(head) {
                return Flow::Error;
            }
            if flow != Flow::Continue {
                return flow;
            }
            if complete.fResetAuth != FALSE {
                let mut state = lock(&self.state);
                state.credentials = None;
                state.denied_reason = SF_DENIED_LOGON | SF_DENIED_FILTER;
                return Flow::Denied;
            }
        }
        Flow::Continue
    }

    /// ACCESS_DENIED (for a 401) and SEND_RESPONSE on a response head about to be sent, then
    /// the AddResponseHeaders lines; false if a filter finished the request instead.
    fn prepare_head(&self, head: &mut FramedHead) -> bool {
        let line_end = head
            .bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(head.bytes.len());
        let status_line = String::from_utf8_lossy(&head.bytes[..line_end]).into_owned();
        let status_text = status_line
            .split_once(' ')
            .map(|(_, s)| s)
            .unwrap_or("200 OK")
            .to_string();
        let rest = head.bytes.get(line_end + 2..).unwrap_or_default();
        let fields = http::parse_header_block(rest).fields;
        if head.status == 401 && self.filters.wanted(SF_NOTIFY_ACCESS_DENIED) {
            let (info, reason) = {
                let state = lock(&self.state);
                (state.info.clone(), state.denied_reason)
            };
            let url = c_str(&info.as_ref().map(|i| i.path.clone()).unwrap_or_default());
            let physical = c_str(
                &info
                    .and_then(|i| i.server_variable("PATH_TRANSLATED"))
                    .unwrap_or_default(),
            );
            let mut denied = HTTP_FILTER_ACCESS_DENIED {
                pszURL: url.as_ptr().cast(),
                pszPhysicalPath: physical.as_ptr().cast(),
                dwReason: if reason == 0 { SF_DENIED_APPLICATION } else { reason },
            };
            match self.notify(
                SF_NOTIFY_ACCESS_DENIED,
                (&mut denied as *mut HTTP_FILTER_ACCESS_DENIED).cast(),
            ) {
                Flow::Continue | Flow::ReadNext => {}
                _ => return false,
            }
        }
        lock(&self.state).editable = Editable {
            specials: vec![("status", status_text.clone())],
            headers: fields,
        };
        if self.filters.wanted(SF_NOTIFY_SEND_RESPONSE) {
            let mut response = HTTP_FILTER_PREPROC_HEADERS {
                GetHeader: get_header as *const () as isize,
                SetHeader: set_header as *const () as isize,
                AddHeader: add_header as *const () as isize,
                HttpStatus: head.status as u32,
                dwReserved: 0,
            };
            match self.notify(
                SF_NOTIFY_SEND_RESPONSE,
                (&mut response as *mut HTTP_FILTER_PREPROC_HEADERS).cast(),
            ) {
                Flow::Continue | Flow::ReadNext => {}
                _ => return false,
            }
        }
        let mut state = lock(&self.state);
        let added = std::mem::take(&mut state.added);
        let mut editable = std::mem::take(&mut state.editable);
        drop(state);
        editable.headers.extend(added);
        let status = editable.special("status");
        if let Some((code, reason)) = http::parse_status(&status) {
            head.status = code;
            let mut bytes = format!("HTTP/1.1 {code} {reason}\r\n").into_bytes();
            for (name, value) in &editable.headers {
                bytes.extend_from_slice(&http::octet_bytes(&format!("{name}: {value}\r\n")));
            }
            bytes.extend_from_slice(b"\r\n");
            head.bytes = bytes;
        }
        true
    }

    /// What the filters sent themselves during this request.
    pub fn filter_response(&self) -> FilterResponse {
        lock(&self.state).response
    }

    /// END_OF_REQUEST, then LOG: the record the filters leave is what gets logged.
    pub fn end_of_request(&self, mut record: LogRecord) -> LogRecord {
        if self.filters.wanted(SF_NOTIFY_END_OF_REQUEST) {
            let _ = self.notify(SF_NOTIFY_END_OF_REQUEST, std::ptr::null_mut());
        }
        if self.filters.wanted(SF_NOTIFY_LOG) {
            if record.user.is_empty() {
                let state = lock(&self.state);
                record.user = state.credentials.as_ref().map(|(u, _)| u.clone()).unwrap_or_default();
            }
            let texts = [
                &record.client,
                &record.user,
                &record.server,
                &record.operation,
                &record.target,
                &record.parameters,
            ]
            .map(|t| c_str(t));
            let mut log = HTTP_FILTER_LOG {
                pszClientHostName: texts[0].as_ptr().cast(),
                pszClientUserName: texts[1].as_ptr().cast(),
                pszServerName: texts[2].as_ptr().cast(),
                pszOperation: texts[3].as_ptr().cast(),
                pszTarget: texts[4].as_ptr().cast(),
                pszParameters: texts[5].as_ptr().cast(),
                dwHttpStatus: record.status,
                dwWin32Status: record.win32_status,
                dwBytesSent: record.bytes_sent,
                dwBytesRecvd: record.bytes_received,
                msTimeForProcessing: record.milliseconds,
            };
            let _ = self.notify(SF_NOTIFY_LOG, (&mut log as *mut HTTP_FILTER_LOG).cast());
            // SAFETY: the filter leaves each field null or pointing at a NUL-terminated
            // string: ours (alive here) or AllocMem memory (alive until the connection ends).
            let read = |p: *const u8| unsafe { arg(p) }.unwrap_or_default();
            record = LogRecord {
                client: read(log.pszClientHostName),
                user: read(log.pszClientUserName),
                server: read(log.pszServerName),
                operation: read(log.pszOperation),
                target: read(log.pszTarget),
                parameters: read(log.pszParameters),
                status: log.dwHttpStatus,
                win32_status: log.dwWin32Status,
                bytes_sent: log.dwBytesSent,
                bytes_received: log.dwBytesRecvd,
                milliseconds: log.msTimeForProcessing,
            };
        }
        let mut state = lock(&self.state);
        state.disabled.iter_mut().for_each(|d| *d = 0);
        state.added.clear();
        state.info = None;
        record
    }

    /// END_OF_NET_SESSION, then the connection's memory is freed (once).
    pub fn end_of_net_session(&self) {
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.filters.wanted(SF_NOTIFY_END_OF_NET_SESSION) {
            lock(&self.state).disabled.iter_mut().for_each(|d| *d = 0);
            let _ = self.notify(SF_NOTIFY_END_OF_NET_SESSION, std::ptr::null_mut());
        }
        lock(&CONNECTIONS).remove(&self.id);
        lock(&self.state).memory.clear();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.contexts, self.filters.list.len());
        // SAFETY: `contexts` came from Box::into_raw of a boxed slice of this length, and
        // the connection (hence every use of it) is gone.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// User and password of a Basic Authorization header.
pub fn basic_credentials(head: &RequestHead) -> Option<(String, String)> {
    let value = head.header("Authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let text = String::from_utf8_lossy(&decoded).into_owned();
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|&b| b != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

/// One log line's fields (HTTP_FILTER_LOG), before and after the LOG notification.
#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    pub client: String,
    pub user: String,
    pub server: String,
    pub operation: String,
    pub target: String,
    pub parameters: String,
    pub status: u32,
    pub win32_status: u32,
    pub bytes_sent: u32,
    pub bytes_received: u32,
    pub milliseconds: u32,
}

impl LogRecord {
    /// `METHOD TARGET[?QUERY] STATUS BYTES`, the host's log line.
    pub fn line(&self) -> String {
        let query = if self.parameters.is_empty() {
            String::new()
        } else {
            format!("?{}", self.parameters)
        };
        format!(
            "{} {}{query} {} {}",
            self.operation, self.target, self.status, self.bytes_sent
        )
    }
}

// Reading and writing the connection ---------------------------------------------------------

/// The connection's incoming bytes, after READ_RAW_DATA.
pub struct Incoming {
    stream: TcpStream,
    filters: Option<Arc<Connection>>,
    pending: Vec<u8>,
    position: usize,
    closed: bool,
}

impl Incoming {
    pub fn new(stream: TcpStream, filters: Option<Arc<Connection>>) -> Incoming {
        Incoming {
            stream,
            filters,
            pending: Vec::new(),
            position: 0,
            closed: false,
        }
    }
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(filters) = self.filters.clone() else {
            return self.stream.read(buf);
        };
        while self.position >= self.pending.len() {
            if self.closed {
                return Ok(0);
            }
            let mut held = Vec::new();
            loop {
                let mut chunk = vec![0u8; 16 * 1024];
                let n = self.stream.read(&mut chunk)?;
                if n == 0 {
                    if held.is_empty() {
                        return Ok(0);
                    }
                    self.closed = true;
                    break;
                }
                held.extend_from_slice(&chunk[..n]);
                let (flow, data) = filters.read_raw(held);
                match flow {
                    Flow::Continue => {
                        held = data;
                        break;
                    }
                    Flow::ReadNext => held = data,
                    Flow::Finished { .. } => {
                        // The filter answered on its own; the connection ends here.
                        self.closed = true;
                        return Ok(0);
                    }
                    Flow::Error | Flow::Denied => {
                        return Err(io::Error::other("a filter failed on READ_RAW_DATA"));
                    }
                }
            }
            self.pending = held;
            self.position = 0;
        }
        let n = buf.len().min(self.pending.len() - self.position);
        buf[..n].copy_from_slice(&self.pending[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// The connection's outgoing bytes: response heads get SEND_RESPONSE (and ACCESS_DENIED),
/// every write gets SEND_RAW_DATA.
pub struct Outgoing {
    stream: TcpStream,
    filters: Option<Arc<Connection>>,
    /// A filter finished the request while a response was being sent: drop the rest.
    suppressed: bool,
}

impl Outgoing {
    pub fn new(stream: TcpStream, filters: Option<Arc<Connection>>) -> Outgoing {
        Outgoing {
            stream,
            filters,
            suppressed: false,
        }
    }

    /// A writer without filters, for what the host answers before a request is parsed.
    pub fn plain(stream: &TcpStream) -> Option<Outgoing> {
        stream.try_clone().ok().map(|s| Outgoing::new(s, None))
    }

    /// Lets the filters see and change a response head before it is written.
    pub fn prepare_head(&mut self, head: &mut FramedHead) {
        if let Some(filters) = &self.filters {
            if !filters.prepare_head(head) {
                self.suppressed = true;
                head.keep_alive = false;
            }
        }
    }
}

impl Write for Outgoing {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.suppressed {
            return Ok(data.len());
        }
        let Some(filters) = &self.filters else {
            return self.stream.write(data);
        };
        if !filters.filters.wanted(SF_NOTIFY_SEND_RAW_DATA) {
            return self.stream.write(data);
        }
        let (flow, out) = filters.raw(SF_NOTIFY_SEND_RAW_DATA, data.to_vec());
        match flow {
            Flow::Continue | Flow::ReadNext => {
                self.stream.write_all(&out)?;
                Ok(data.len())
            }
            Flow::Finished { .. } => {
                self.stream.write_all(&out)?;
                self.suppressed = true;
                Ok(data.len())
            }
            Flow::Error | Flow::Denied => Err(io::Error::other("a filter failed on SEND_RAW_DATA")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

// The server's callbacks (httpfilt.h) -------------------------------------------------------------

unsafe extern "system" fn get_server_variable(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    buffer: *mut c_void,
    size: *mut u32,
) -> BOOL {
    // SAFETY: the filter passes a NUL-terminated name.
    let Some((connection, name)) = (unsafe { lookup_args(pfc, name, size) }) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    let (unicode, base) = match name.get(..8) {
        Some(prefix) if prefix.eq_ignore_ascii_case("UNICODE_") => (true, &name[8..]),
        _ => (false, name.as_str()),
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
    };
    let Some(value) = value else {
        return fail(ERROR_INVALID_INDEX);
    };
    if unicode {
        let wide = crate::ecb::variable_wide(base, &value);
        let bytes: Vec<u8> = wide.into_iter().chain([0]).flat_map(u16::to_le_bytes).collect();
        // SAFETY: as for copy_out; the UTF-16 text carries its own NUL, so drop ours.
        return unsafe { copy_out(&bytes[..bytes.len() - 1], buffer, size) };
    }
    let bytes = crate::ecb::variable_bytes(base, &value);
    // SAFETY: the filter's buffer holds `*size` bytes.
    unsafe { copy_out(&bytes, buffer, size) }
}

unsafe extern "system" fn add_response_headers(
    pfc: *mut HTTP_FILTER_CONTEXT,
    headers: *const u8,
    _reserved: u32,
) -> BOOL {
    let Some((connection, _)) = connection_of(pfc) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    // SAFETY: the filter passes a NUL-terminated header block.
    if headers.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: non-null and NUL-terminated (the filter's block).
    let block = http::parse_header_block(unsafe { arg_bytes(headers) });
    for line in &block.rejected {
        eprintln!("isapi-host: dropped filter response header line {line:?}: not `Name: value`");
    }
    lock(&connection.state).added.extend(block.fields);
    TRUE
}

unsafe extern "system" fn write_client(
    pfc: *mut HTTP_FILTER_CONTEXT,
    buffer: *mut c_void,
    bytes: *mut u32,
    _reserved: u32,
) -> BOOL {
    let Some((connection, _)) = connection_of(pfc) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if bytes.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
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
        return fail(windows_sys::Win32::Foundation::ERROR_NETNAME_DELETED);
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

unsafe extern "system" fn alloc_mem(pfc: *mut HTTP_FILTER_CONTEXT, size: u32, _reserved: u32) -> *mut c_void {
    let Some((connection, _)) = connection_of(pfc) else {
        return std::ptr::null_mut();
    };
    let mut block = vec![0u8; (size as usize).max(1)].into_boxed_slice();
    let ptr = block.as_mut_ptr();
    lock(&connection.state).memory.push(block);
    ptr.cast()
}

unsafe extern "system" fn server_support_function(
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
            let mut bytes = format!("HTTP/1.1 {code} {reason}\r\n").into_bytes();
            let has_length = fields.iter().any(|(n, _)| n.eq_ignore_ascii_case("Content-Length"));
            for (name, value) in &fields {
                bytes.extend_from_slice(&http::octet_bytes(&format!("{name}: {value}\r\n")));
            }
            if !has_length {
                // The body that follows has no length: only closing the connection ends it.
                bytes.extend_from_slice(b"Connection: close\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&block.body);
            state.response.status = Some(code);
            state.response.bytes += bytes.len() as u64;
            drop(state);
            if lock(&connection.socket).write_all(&bytes).is_err() {
                return fail(windows_sys::Win32::Foundation::ERROR_NETNAME_DELETED);
            }
            TRUE
        }
        _ => fail(ERROR_NOT_SUPPORTED),
    }
}

/// GetHeader for PREPROC_HEADERS, SEND_RESPONSE and AUTH_COMPLETE.
unsafe extern "system" fn get_header(
    pfc: *mut HTTP_FILTER_CONTEXT,
    name: *const u8,
    buffer: *mut c_void,
    size: *mut u32,
) -> BOOL {
    // SAFETY: the filter passes a NUL-terminated name.
    let Some((connection, name)) = (unsafe { lookup_args(pfc, name, size) }) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    let (value, special) = {
        let state = lock(&connection.state);
        (state.editable.get(&name), state.editable.is_special(&name))
    };
    let Some(value) = value else {
        return fail(ERROR_INVALID_INDEX);
    };
    // A header's bytes as they came; a special (the URL, the status) is text.
    let bytes = if special {
        crate::ecb::to_ansi(&value)
    } else {
        http::octet_bytes(&value)
    };
    // SAFETY: the filter's buffer holds `*size` bytes.
    unsafe { copy_out(&bytes, buffer, size) }
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

unsafe extern "system" fn set_header(pfc: *mut HTTP_FILTER_CONTEXT, name: *const u8, value: *const u8) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { edit_header(pfc, name, value, false) }
}

unsafe extern "system" fn add_header(pfc: *mut HTTP_FILTER_CONTEXT, name: *const u8, value: *const u8) -> BOOL {
    // SAFETY: the filter's arguments, passed on.
    unsafe { edit_header(pfc, name, value, true) }
}

/// The host runs requests as itself and has no user token to give.
unsafe extern "system" fn get_user_token(_pfc: *mut HTTP_FILTER_CONTEXT, _token: *mut *mut c_void) -> BOOL {
    fail(ERROR_NOT_SUPPORTED)
}
