//! The EXTENSION_CONTROL_BLOCK of one request and the four callbacks IIS gives an
//! extension (GetServerVariable, ReadClient, WriteClient, ServerSupportFunction).
//!
//! ConnID is a number, not a pointer: it keys a registry of live requests, so a callback
//! with a stale or foreign handle fails with ERROR_INVALID_PARAMETER instead of touching
//! freed memory. The control block and every string it points to stay allocated until the
//! request is finished: for HSE_STATUS_PENDING that is after HSE_REQ_DONE_WITH_SESSION
//! (from any thread) and after every asynchronous WriteClient's completion has returned.
//!
//! HSE_REQ_EXEC_URL runs a child request through the same extension (IIS would run it
//! through its whole pipeline; here the extension is the only handler there is), or, with
//! HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR, through the static file handler that comes
//! after it: the child gets its own control block and ConnID but shares the parent's
//! connection and response.

use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::core::{BOOL, PCSTR};
use windows_sys::Win32::Foundation::{
    GetLastError, SetLastError, ERROR_HANDLE_EOF, ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_INDEX,
    ERROR_INVALID_PARAMETER, ERROR_IO_PENDING, ERROR_NETNAME_DELETED, FALSE, HANDLE, TRUE,
};
use windows_sys::Win32::Globalization::{WideCharToMultiByte, CP_ACP};
use windows_sys::Win32::Storage::FileSystem::ReadFile;
use windows_sys::Win32::System::Iis::{
    EXTENSION_CONTROL_BLOCK, HCONN, HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR, HSE_EXEC_URL_INFO,
    HSE_EXEC_URL_NO_HEADERS, HSE_EXEC_URL_STATUS, HSE_IO_ASYNC, HSE_IO_DISCONNECT_AFTER_SEND, HSE_IO_SEND_HEADERS,
    HSE_REQ_CLOSE_CONNECTION, HSE_REQ_DONE_WITH_SESSION, HSE_REQ_EXEC_URL, HSE_REQ_GET_ANONYMOUS_TOKEN,
    HSE_REQ_GET_EXEC_URL_STATUS, HSE_REQ_GET_IMPERSONATION_TOKEN, HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN,
    HSE_REQ_IO_COMPLETION, HSE_REQ_IS_CONNECTED, HSE_REQ_IS_KEEP_CONN, HSE_REQ_MAP_URL_TO_PATH,
    HSE_REQ_REPORT_UNHEALTHY, HSE_REQ_SEND_RESPONSE_HEADER, HSE_REQ_SEND_RESPONSE_HEADER_EX,
    HSE_REQ_SEND_URL_REDIRECT_RESP, HSE_REQ_SET_FLUSH_FLAG, HSE_REQ_TRANSMIT_FILE, HSE_SEND_HEADER_EX_INFO,
    HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_STATUS_SUCCESS, HSE_TF_INFO, HSE_VERSION_MAJOR, HSE_VERSION_MINOR,
};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};

use crate::extension::{Extension, HttpExtensionProc};
use crate::filter::{Incoming, Outgoing};
use crate::http::{self, Body, BodyMode, FramedHead};
use crate::static_file;
use crate::tokens;
use crate::variables::RequestInfo;

/// IIS's default UploadReadAheadSize: how much of the body comes preloaded in lpbData.
pub const PRELOAD: usize = 48 * 1024;
/// cbTotalBytes when the length is not known up front (a chunked request body).
const UNKNOWN_LENGTH: u32 = 0xFFFF_FFFF;

pub type Connection = BufReader<Incoming>;
type IoCompletion = unsafe extern "system" fn(*mut EXTENSION_CONTROL_BLOCK, *mut c_void, u32, u32);

/// What the connection hands over for one request.
pub struct Request {
    pub info: RequestInfo,
    pub exchange: http::Exchange,
    pub body: Body<Connection>,
    pub total_bytes: Option<u64>,
    /// A second handle on the socket for writing, so ReadClient and WriteClient never wait
    /// for each other (through the filters' SEND_RESPONSE and SEND_RAW_DATA).
    pub writer: Outgoing,
    /// The connection's socket, which the request timeout closes.
    pub socket: Option<TcpStream>,
}

/// How a request ended, for the connection loop and the log line.
pub struct Outcome {
    pub status: u16,
    pub body_bytes: u64,
    pub keep_alive: bool,
    /// The connection's reader, back from the body, if the connection can go on.
    pub connection: Option<Body<Connection>>,
    pub log_data: String,
}

/// The host's side of one request, reached by the callbacks through ConnID.
struct Session {
    info: RequestInfo,
    exchange: http::Exchange,
    /// Shared with ExecURL children, which read the same body and write the same response.
    body: Arc<Mutex<Option<Body<Connection>>>>,
    out: Arc<Mutex<Output>>,
    lifecycle: Mutex<Lifecycle>,
    changed: Condvar,
    completion: Mutex<Option<(IoCompletion, usize)>>,
    ecb: AtomicPtr<EXTENSION_CONTROL_BLOCK>,
    close_requested: AtomicBool,
    http_extension_proc: HttpExtensionProc,
    /// The status of the response head this session sent, if it sent one.
    sent_status: Mutex<Option<u16>>,
    /// An ExecURL child run with HSE_EXEC_URL_NO_HEADERS: its head is not sent.
    suppress_headers: bool,
    /// What HSE_REQ_GET_EXEC_URL_STATUS answers once a child request has finished.
    exec_status: Mutex<Option<HSE_EXEC_URL_STATUS>>,
    /// HSE_REQ_SET_FLUSH_FLAG's last value. The host never buffers, so every write is
    /// flushed either way; it is kept for completeness.
    flush: AtomicBool,
    /// The client's socket for a top-level request (None for an ExecURL child), and when
    /// the request started: what the request timeout needs.
    socket: Option<TcpStream>,
    started: Instant,
    /// Set once the request timeout has answered and closed the connection.
    timed_out: AtomicBool,
}

#[derive(Default)]
struct Lifecycle {
    /// Set by HSE_REQ_DONE_WITH_SESSION, with the status it passed.
    done: Option<u32>,
    /// Asynchronous writes whose completion callback has not returned yet.
    async_in_flight: usize,
}

/// The response as sent so far.
struct Output {
    stream: Outgoing,
    head: Option<FramedHead>,
    body_bytes: u64,
    failed: bool,
}

static SESSIONS: LazyLock<Mutex<HashMap<usize, Arc<Session>>>> = LazyLock::new(Default::default);
static NEXT_CONN_ID: AtomicUsize = AtomicUsize::new(1);

/// How many control blocks the host has made (requests and ExecURL children).
pub fn requests_started() -> usize {
    NEXT_CONN_ID.load(Ordering::SeqCst) - 1
}

/// A poisoned lock only means another callback panicked; the data is still consistent
/// enough to finish the response, and a callback must never unwind into the extension.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn session(conn: HCONN) -> Option<Arc<Session>> {
    lock(&SESSIONS).get(&(conn as usize)).cloned()
}

/// Sets the thread's last error and returns FALSE, the ISAPI way to fail (extension and
/// filter callbacks alike).
pub(crate) fn fail(code: u32) -> BOOL {
    // SAFETY: SetLastError only writes the calling thread's error slot.
    unsafe { SetLastError(code) };
    FALSE
}

/// Text as the ANSI code page, as IIS returns non-UNICODE_ variables and ECB strings.
pub fn to_ansi(text: &str) -> Vec<u8> {
    if text.is_ascii() {
        return text.as_bytes().to_vec();
    }
    let wide: Vec<u16> = text.encode_utf16().collect();
    let Ok(wide_len) = i32::try_from(wide.len()) else {
        return text.as_bytes().to_vec();
    };
    // SAFETY: `wide` holds `wide_len` UTF-16 units; a null output with size 0 asks for the
    // needed size only.
    let needed = unsafe {
        WideCharToMultiByte(
            CP_ACP,
            0,
            wide.as_ptr(),
            wide_len,
            std::ptr::null_mut(),
            0,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    if needed <= 0 {
        return text.as_bytes().to_vec();
    }
    let mut out = vec![0u8; needed as usize];
    // SAFETY: `out` has room for exactly `needed` bytes, the size the first call reported.
    let written = unsafe {
        WideCharToMultiByte(
            CP_ACP,
            0,
            wide.as_ptr(),
            wide_len,
            out.as_mut_ptr(),
            needed,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    out.truncate(written.max(0) as usize);
    out
}

fn c_string(text: &str) -> Vec<u8> {
    nul_terminated(to_ansi(text))
}

fn nul_terminated(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.retain(|&b| b != 0);
    bytes.push(0);
    bytes
}

/// A server variable's value as GetServerVariable gives it (without a NUL): a variable made
/// of request headers has their bytes as received ([`http::octets`]), as IIS passes them;
/// the others are text in the ANSI code page, as IIS gives non-UNICODE_ variables.
pub fn variable_bytes(name: &str, value: &str) -> Vec<u8> {
    if RequestInfo::is_from_headers(name) {
        http::octet_bytes(value)
    } else {
        to_ansi(value)
    }
}

/// The same value for the `UNICODE_` name, as UTF-16 units (without a NUL): header bytes
/// read as UTF-8 where they are that, else one char per byte.
pub fn variable_wide(name: &str, value: &str) -> Vec<u16> {
    if RequestInfo::is_from_headers(name) {
        let bytes = http::octet_bytes(value);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            return text.encode_utf16().collect();
        }
    }
    value.encode_utf16().collect()
}

impl Session {
    fn wait_until(&self, mut ready: impl FnMut(&Lifecycle) -> bool) {
        let mut state = lock(&self.lifecycle);
        while !ready(&state) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn exchange(&self) -> http::Exchange {
        let mut exchange = self.exchange;
        exchange.client_keep_alive &= !self.close_requested.load(Ordering::SeqCst);
        exchange
    }

    /// dwHttpStatusCode as the extension left it.
    fn ecb_status(&self) -> u16 {
        let ecb = self.ecb.load(Ordering::SeqCst);
        // SAFETY: the control block outlives the session's registration and every callback
        // (see `run`); the extension may write the field, so read it without a reference.
        let code = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*ecb).dwHttpStatusCode)) };
        u16::try_from(code)
            .ok()
            .filter(|c| (100..=999).contains(c))
            .unwrap_or(200)
    }

    /// Sends the response head once; later attempts are an extension bug.
    fn send_head(&self, status: Option<&str>, header_block: &[u8], extension_keeps: bool) -> Result<(), u32> {
        let mut out = lock(&self.out);
        if self.suppress_headers && out.head.is_some() {
            // The parent answers the client; the child's head is dropped, its body kept.
            let code = status.and_then(http::parse_status).map(|(c, _)| c).unwrap_or(200);
            *lock(&self.sent_status) = Some(code);
            let block = http::parse_header_block(header_block);
            return out
                .write_body(&block.body)
                .map(|_| ())
                .map_err(|_| ERROR_NETNAME_DELETED);
        }
        if out.head.is_some() {
            eprintln!(
                "isapi-host: {} {}: the extension sent response headers twice",
                self.info.method, self.info.path
            );
            return Err(ERROR_INVALID_PARAMETER);
        }
        let (code, reason) = match status.map(|s| (s, http::parse_status(s))) {
            None => (200, "OK".to_string()),
            Some((_, Some(parsed))) => parsed,
            Some((s, None)) => {
                eprintln!("isapi-host: ignoring status {s:?}, which does not start with a 3-digit code");
                (200, "OK".to_string())
            }
        };
        let block = http::parse_header_block(header_block);
        for line in &block.rejected {
            eprintln!("isapi-host: dropped response header line {line:?}: not `Name: value`");
        }
        let head = http::frame_head(code, &reason, &block.fields, self.exchange(), extension_keeps);
        *lock(&self.sent_status) = Some(code);
        out.send_head(head);
        out.write_body(&block.body)
            .map(|_| ())
            .map_err(|_| ERROR_NETNAME_DELETED)
    }

    fn write(&self, data: &[u8]) -> io::Result<usize> {
        let mut out = lock(&self.out);
        if out.head.is_none() {
            // IIS sends a default head for body bytes written before any headers.
            let code = self.ecb_status();
            *lock(&self.sent_status) = Some(code);
            out.send_head(http::frame_head(
                code,
                http::reason_phrase(code),
                &[],
                self.exchange(),
                true,
            ));
        }
        out.write_body(data)
    }
}

impl Output {
    fn send_head(&mut self, mut head: FramedHead) {
        self.stream.prepare_head(&mut head);
        if self.stream.write_all(&head.bytes).is_err() {
            self.failed = true;
        }
        self.head = Some(head);
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mode = self.head.as_ref().map(|h| h.mode).unwrap_or(BodyMode::Empty);
        let result = match mode {
            BodyMode::Empty => Ok(()),
            BodyMode::Chunked => self.stream.write_all(&http::chunk(data)),
            BodyMode::Length(_) | BodyMode::Raw => self.stream.write_all(data),
        };
        match result {
            Ok(()) => {
                self.body_bytes += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// The whole response IIS sends for a request that ended without sending one: the
    /// status code the extension left (500 after HSE_STATUS_ERROR). Returns that code.
    fn send_default(&mut self, status: u32, ecb_status: u16, exchange: http::Exchange) -> u16 {
        let code = if status == HSE_STATUS_ERROR { 500 } else { ecb_status };
        let body = if code == 500 {
            "500 Internal Server Error: the ISAPI extension failed\n"
        } else {
            ""
        };
        let (head, body) = http::simple_response(code, &[], body, exchange, true);
        self.send_head(head);
        let _ = self.write_body(&body);
        code
    }

    /// Ends the response after the extension is done; false if the connection must close.
    fn finish(&mut self, status: u32, ecb_status: u16, exchange: http::Exchange) -> bool {
        let Some(head) = &self.head else {
            self.send_default(status, ecb_status, exchange);
            return self.head.as_ref().is_some_and(|h| h.keep_alive) && !self.failed;
        };
        let keep = head.keep_alive;
        let complete = match head.mode {
            _ if status == HSE_STATUS_ERROR => false,
            BodyMode::Empty => true,
            BodyMode::Chunked => self.stream.write_all(http::LAST_CHUNK).is_ok(),
            BodyMode::Length(n) => self.body_bytes == n,
            BodyMode::Raw => false,
        };
        keep && complete && !self.failed
    }
}

/// Runs one request through the extension and finishes its response.
pub fn run(extension: &Extension, request: Request) -> Outcome {
    let Request {
        info,
        exchange,
        mut body,
        total_bytes,
        writer,
        socket,
    } = request;
    let mut preload = vec![0u8; PRELOAD];
    let mut available = 0;
    while available < PRELOAD && !body.is_done() {
        match body.read(&mut preload[available..]) {
            Ok(0) => break,
            Ok(n) => available += n,
            Err(e) => {
                eprintln!(
                    "isapi-host: {} {}: reading the request body: {e}",
                    info.method, info.path
                );
                return Outcome {
                    status: 400,
                    body_bytes: 0,
                    keep_alive: false,
                    connection: None,
                    log_data: String::new(),
                };
            }
        }
    }
    preload.truncate(available);

    let session = Session::new(
        info,
        exchange,
        Arc::new(Mutex::new(Some(body))),
        Arc::new(Mutex::new(Output {
            stream: writer,
            head: None,
            body_bytes: 0,
            failed: false,
        })),
        extension.http_extension_proc(),
        false,
        socket,
    );
    let total = match total_bytes {
        Some(n) => u32::try_from(n).unwrap_or(UNKNOWN_LENGTH),
        None => UNKNOWN_LENGTH,
    };
    let ended = serve(&session, preload, total);

    let exchange = session.exchange();
    let mut out = lock(&session.out);
    let keep_alive = out.finish(ended.status, ended.ecb_status, exchange);
    let status_code = out.head.as_ref().map(|h| h.status).unwrap_or(500);
    let body_bytes = out.body_bytes;
    drop(out);
    let connection = lock(&session.body).take();
    Outcome {
        status: status_code,
        body_bytes,
        keep_alive,
        connection,
        log_data: ended.log_data,
    }
}

impl Session {
    fn new(
        info: RequestInfo,
        exchange: http::Exchange,
        body: Arc<Mutex<Option<Body<Connection>>>>,
        out: Arc<Mutex<Output>>,
        http_extension_proc: HttpExtensionProc,
        suppress_headers: bool,
        socket: Option<TcpStream>,
    ) -> Arc<Session> {
        Arc::new(Session {
            info,
            exchange,
            body,
            out,
            lifecycle: Mutex::new(Lifecycle::default()),
            changed: Condvar::new(),
            completion: Mutex::new(None),
            ecb: AtomicPtr::new(std::ptr::null_mut()),
            close_requested: AtomicBool::new(false),
            http_extension_proc,
            sent_status: Mutex::new(None),
            suppress_headers,
            exec_status: Mutex::new(None),
            flush: AtomicBool::new(false),
            socket,
            started: Instant::now(),
            timed_out: AtomicBool::new(false),
        })
    }
}

/// How the extension ended one session.
struct Ended {
    /// The HSE_STATUS_* it returned (or passed to HSE_REQ_DONE_WITH_SESSION).
    status: u32,
    ecb_status: u16,
    log_data: String,
}

/// Builds the control block of `session`, calls HttpExtensionProc and waits until the
/// session is over (DONE_WITH_SESSION for a pending one, and every completion returned).
fn serve(session: &Arc<Session>, mut preload: Vec<u8>, total_bytes: u32) -> Ended {
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::SeqCst);
    // The strings the control block points to; they live until the end of this function.
    let mut method = c_string(&session.info.method);
    let mut query = c_string(&session.info.query);
    let mut path_info = c_string(&session.info.path);
    let mut path_translated = c_string(&session.info.server_variable("PATH_TRANSLATED").unwrap_or_default());
    let content_type = session.info.server_variable("CONTENT_TYPE").unwrap_or_default();
    let mut content_type = nul_terminated(variable_bytes("CONTENT_TYPE", &content_type));
    let ecb = Box::into_raw(Box::new(EXTENSION_CONTROL_BLOCK {
        cbSize: std::mem::size_of::<EXTENSION_CONTROL_BLOCK>() as u32,
        dwVersion: (HSE_VERSION_MAJOR << 16) | HSE_VERSION_MINOR,
        ConnID: id as HCONN,
        dwHttpStatusCode: 200,
        lpszLogData: [0; 80],
        lpszMethod: method.as_mut_ptr(),
        lpszQueryString: query.as_mut_ptr(),
        lpszPathInfo: path_info.as_mut_ptr(),
        lpszPathTranslated: path_translated.as_mut_ptr(),
        cbTotalBytes: total_bytes,
        cbAvailable: preload.len() as u32,
        lpbData: preload.as_mut_ptr(),
        lpszContentType: content_type.as_mut_ptr(),
        GetServerVariable: Some(get_server_variable),
        WriteClient: Some(write_client),
        ReadClient: Some(read_client),
        ServerSupportFunction: Some(server_support_function),
    }));
    session.ecb.store(ecb, Ordering::SeqCst);
    lock(&SESSIONS).insert(id, session.clone());

    // SAFETY: `ecb` is a fully initialised control block whose pointers stay valid until
    // it is freed below, after the session is unregistered and no callback can run.
    let returned = unsafe { (session.http_extension_proc)(ecb) };
    let status = if returned == HSE_STATUS_PENDING {
        session.wait_until(|s| s.done.is_some());
        lock(&session.lifecycle).done.unwrap_or(HSE_STATUS_SUCCESS)
    } else {
        returned
    };
    lock(&SESSIONS).remove(&id);
    if session.timed_out.load(Ordering::SeqCst) && returned == HSE_STATUS_PENDING {
        // The extension may still hold this control block on one of its threads (it never
        // called DONE_WITH_SESSION): leak the block and its strings, a few hundred bytes,
        // rather than free memory it may still read. Its callbacks already fail (the
        // session is unregistered).
        std::mem::forget((method, query, path_info, path_translated, content_type, preload));
        return Ended {
            status: HSE_STATUS_ERROR,
            ecb_status: 503,
            log_data: String::new(),
        };
    }
    session.wait_until(|s| s.async_in_flight == 0);

    let ecb_status = session.ecb_status();
    // SAFETY: no callback can reach the block any more (unregistered, no async write in
    // flight); the extension's log text is read within its fixed 80 bytes.
    let log_data = unsafe {
        let log = &(*ecb).lpszLogData;
        let bytes: Vec<u8> = log.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    session.ecb.store(std::ptr::null_mut(), Ordering::SeqCst);
    // SAFETY: `ecb` came from Box::into_raw above and nothing refers to it any more.
    drop(unsafe { Box::from_raw(ecb) });
    drop((method, query, path_info, path_translated, content_type, preload));
    Ended {
        status,
        ecb_status,
        log_data,
    }
}

/// The `--request-timeout`: how long one request may take before the host answers it.
static REQUEST_TIMEOUT: OnceLock<Duration> = OnceLock::new();
/// How often the watchdog looks at the requests in flight.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(100);

/// Limits every request to `limit` from now on: a request not finished by then is answered
/// 503 (if nothing was sent yet), its connection is closed, and a pending session is
/// released as if it had called DONE_WITH_SESSION with HSE_STATUS_ERROR. A synchronous
/// HttpExtensionProc cannot be stopped: it keeps its thread until it returns, and what it
/// writes after the timeout fails as a write to a closed connection would.
pub fn set_request_timeout(limit: Duration) {
    if REQUEST_TIMEOUT.set(limit).is_ok() {
        std::thread::Builder::new()
            .name("request-timeout".into())
            .spawn(move || loop {
                std::thread::sleep(WATCHDOG_PERIOD);
                let late: Vec<Arc<Session>> = lock(&SESSIONS)
                    .values()
                    .filter(|s| s.socket.is_some() && s.started.elapsed() >= limit)
                    .cloned()
                    .collect();
                for session in late {
                    session.time_out(limit);
                }
            })
            .expect("the request-timeout thread starts");
    }
}

impl Session {
    fn time_out(&self, limit: Duration) {
        if self.timed_out.swap(true, Ordering::SeqCst) {
            return;
        }
        // A write blocked on a client that does not read holds the output: then there is
        // nothing to answer, and closing the socket below ends that write.
        let answered = match self.out.try_lock() {
            Ok(mut out) if out.head.is_none() => {
                let exchange = http::Exchange {
                    client_keep_alive: false,
                    ..self.exchange
                };
                let (head, body) = http::simple_response(
                    503,
                    &[],
                    "503 Service Unavailable: the request took too long\n",
                    exchange,
                    false,
                );
                out.send_head(head);
                let _ = out.write_body(&body);
                out.failed = true;
                *lock(&self.sent_status) = Some(503);
                " answered 503,"
            }
            Ok(mut out) => {
                out.failed = true;
                ""
            }
            Err(_) => "",
        };
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
        eprintln!(
            "isapi-host: {} {}: no answer within the request timeout ({}s):{answered} connection closed",
            self.info.method,
            self.info.path,
            limit.as_secs_f64()
        );
        lock(&self.lifecycle).done.get_or_insert(HSE_STATUS_ERROR);
        self.changed.notify_all();
    }
}

/// Calls the completion the extension registered (HSE_REQ_IO_COMPLETION, or the one given
/// with a request) from a new thread, as IIS calls it from its I/O threads; the session's
/// control block stays alive until it returns.
fn complete_async(session: &Arc<Session>, callback: Option<(IoCompletion, usize)>, bytes: u32, error: u32) {
    lock(&session.lifecycle).async_in_flight += 1;
    let session = session.clone();
    std::thread::spawn(move || {
        if let Some((callback, context)) = callback {
            let ecb = session.ecb.load(Ordering::SeqCst);
            // SAFETY: `serve` keeps the control block alive until `async_in_flight` is back
            // to 0, which happens only after the callback returns; the context is the
            // extension's own pointer, handed back untouched.
            unsafe { callback(ecb, context as *mut c_void, bytes, error) };
        }
        lock(&session.lifecycle).async_in_flight -= 1;
        session.changed.notify_all();
    });
}

/// `GetServerVariable`: the named variable, NUL-terminated, in ANSI or (with the `UNICODE_`
/// prefix) UTF-16; `*size` is the buffer size in, the bytes written (or needed) out.
unsafe extern "system" fn get_server_variable(conn: HCONN, name: PCSTR, buffer: *mut c_void, size: *mut u32) -> BOOL {
    let Some(session) = session(conn) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if name.is_null() || size.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller passes a NUL-terminated variable name (checked non-null above).
    let Ok(name) = (unsafe { CStr::from_ptr(name.cast()) }).to_str() else {
        return fail(ERROR_INVALID_INDEX);
    };
    let (unicode, base) = match name.get(..8) {
        Some(prefix) if prefix.eq_ignore_ascii_case("UNICODE_") => (true, &name[8..]),
        _ => (false, name),
    };
    let Some(value) = session.info.server_variable(base) else {
        return fail(ERROR_INVALID_INDEX);
    };
    let bytes: Vec<u8> = if unicode {
        variable_wide(base, &value)
            .into_iter()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    } else {
        nul_terminated(variable_bytes(base, &value))
    };
    let needed = bytes.len() as u32;
    // SAFETY: `size` is non-null and points to the caller's DWORD.
    let capacity = unsafe { *size };
    if buffer.is_null() || capacity < needed {
        // SAFETY: as above.
        unsafe { *size = needed };
        return fail(ERROR_INSUFFICIENT_BUFFER);
    }
    // SAFETY: the caller's buffer holds `capacity >= needed` bytes and cannot overlap ours.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len());
        *size = needed;
    }
    TRUE
}

/// `ReadClient`: the next part of the body after the preloaded bytes, synchronously;
/// `*size` is 0 at the end of the body.
unsafe extern "system" fn read_client(conn: HCONN, buffer: *mut c_void, size: *mut u32) -> BOOL {
    let Some(session) = session(conn) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if size.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: `size` is non-null and points to the caller's DWORD.
    let want = unsafe { *size } as usize;
    if want == 0 {
        return TRUE;
    }
    if buffer.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller's buffer is writable for `*size` bytes.
    let buffer = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), want) };
    let mut body = lock(&session.body);
    let result = match body.as_mut() {
        None => Ok(0),
        Some(body) => loop {
            match body.read(buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        },
    };
    match result {
        Ok(n) => {
            // SAFETY: as above.
            unsafe { *size = n as u32 };
            TRUE
        }
        Err(e) => {
            eprintln!(
                "isapi-host: {} {}: reading the request body: {e}",
                session.info.method, session.info.path
            );
            // A broken body leaves the connection in an unknown place: never reuse it.
            body.take();
            // SAFETY: as above.
            unsafe { *size = 0 };
            fail(ERROR_NETNAME_DELETED)
        }
    }
}

/// `WriteClient`: sends body bytes. With HSE_IO_ASYNC the write still happens now, and the
/// completion registered by HSE_REQ_IO_COMPLETION is called from another thread, as IIS
/// calls it from its I/O threads.
unsafe extern "system" fn write_client(conn: HCONN, buffer: *mut c_void, bytes: *mut u32, flags: u32) -> BOOL {
    let Some(session) = session(conn) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    if bytes.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: `bytes` is non-null and points to the caller's DWORD.
    let len = unsafe { *bytes } as usize;
    if len > 0 && buffer.is_null() {
        return fail(ERROR_INVALID_PARAMETER);
    }
    let data: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the caller's buffer holds `*bytes` readable bytes for this call.
        unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len) }
    };
    if flags & HSE_IO_ASYNC != 0 {
        let Some((callback, context)) = *lock(&session.completion) else {
            return fail(ERROR_INVALID_PARAMETER);
        };
        let (written, error) = match session.write(data) {
            Ok(n) => (n as u32, 0),
            Err(e) => (0, e.raw_os_error().map(|c| c as u32).unwrap_or(ERROR_NETNAME_DELETED)),
        };
        complete_async(&session, Some((callback, context)), written, error);
        return TRUE;
    }
    match session.write(data) {
        Ok(n) => {
            // SAFETY: as above.
            unsafe { *bytes = n as u32 };
            TRUE
        }
        Err(e) => fail(e.raw_os_error().map(|c| c as u32).unwrap_or(ERROR_NETNAME_DELETED)),
    }
}

/// Reads an optional NUL-terminated string argument.
///
/// # Safety
/// `text` is null or points to a NUL-terminated string.
unsafe fn optional_str(text: *const c_void) -> Option<Vec<u8>> {
    // SAFETY: upheld by the caller.
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text.cast()) }.to_bytes().to_vec())
}

/// Reads a counted string argument (HSE_SEND_HEADER_EX_INFO): `count` bytes, but no further
/// than a NUL, and the whole NUL-terminated string if the count is 0.
///
/// # Safety
/// `text` is null or points to `count` readable bytes or a NUL-terminated string.
unsafe fn counted_str(text: PCSTR, count: u32) -> Option<Vec<u8>> {
    if text.is_null() {
        return None;
    }
    if count == 0 {
        // SAFETY: upheld by the caller.
        return unsafe { optional_str(text.cast()) };
    }
    // SAFETY: upheld by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(text, count as usize) };
    Some(bytes.iter().copied().take_while(|&b| b != 0).collect())
}

/// Writes a token the host made into the extension's HANDLE, or fails with the error that
/// kept the host from making it.
///
/// # Safety
/// `out` is non-null and points to a writable HANDLE.
unsafe fn hand_out_token(token: Result<HANDLE, u32>, out: *mut HANDLE) -> BOOL {
    match token {
        Ok(token) => {
            // SAFETY: upheld by the caller.
            unsafe { *out = token };
            TRUE
        }
        Err(code) => fail(code),
    }
}

/// `ServerSupportFunction`: the requests an extension frozen by isapi-freeze uses.
unsafe extern "system" fn server_support_function(
    conn: HCONN,
    request: u32,
    buffer: *mut c_void,
    size: *mut u32,
    data_type: *mut u32,
) -> BOOL {
    let Some(session) = session(conn) else {
        return fail(ERROR_INVALID_PARAMETER);
    };
    match request {
        HSE_REQ_SEND_RESPONSE_HEADER => {
            // lpvBuffer: status string ("200 OK" if null); lpdwDataType: the header block.
            // SAFETY: both are null or NUL-terminated strings, per httpext.h.
            let (status, headers) = unsafe { (optional_str(buffer), optional_str(data_type.cast())) };
            let status = status.map(|s| String::from_utf8_lossy(&s).into_owned());
            match session.send_head(status.as_deref(), &headers.unwrap_or_default(), true) {
                Ok(()) => TRUE,
                Err(code) => fail(code),
            }
        }
        HSE_REQ_SEND_RESPONSE_HEADER_EX => {
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: lpvBuffer points to the extension's HSE_SEND_HEADER_EX_INFO, whose
            // strings are counted by cchStatus/cchHeader (httpext.h).
            let (status, headers, keep) = unsafe {
                let info = &*buffer.cast::<HSE_SEND_HEADER_EX_INFO>();
                (
                    counted_str(info.pszStatus, info.cchStatus),
                    counted_str(info.pszHeader, info.cchHeader),
                    info.fKeepConn != 0,
                )
            };
            let status = status.map(|s| String::from_utf8_lossy(&s).into_owned());
            match session.send_head(status.as_deref(), &headers.unwrap_or_default(), keep) {
                Ok(()) => TRUE,
                Err(code) => fail(code),
            }
        }
        HSE_REQ_SEND_URL_REDIRECT_RESP => {
            // SAFETY: lpvBuffer is the NUL-terminated target URL.
            let Some(url) = (unsafe { optional_str(buffer) }) else {
                return fail(ERROR_INVALID_PARAMETER);
            };
            if url.is_empty() || url.iter().any(|&b| b < 0x20 || b == 0x7f) {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // A header value: its bytes go out as the extension gave them.
            let url = http::octets(&url);
            let mut out = lock(&session.out);
            if out.head.is_some() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            let (head, body) = http::simple_response(302, &[("Location".into(), url)], "", session.exchange(), true);
            out.send_head(head);
            let _ = out.write_body(&body);
            TRUE
        }
        HSE_REQ_DONE_WITH_SESSION => {
            // lpvBuffer optionally points to the final HSE_STATUS_* of a pending request.
            let status = if buffer.is_null() {
                HSE_STATUS_SUCCESS
            } else {
                // SAFETY: non-null lpvBuffer points to a DWORD status (httpext.h).
                unsafe { *buffer.cast::<u32>() }
            };
            let mut state = lock(&session.lifecycle);
            state.done.get_or_insert(status);
            drop(state);
            session.changed.notify_all();
            TRUE
        }
        HSE_REQ_IS_KEEP_CONN | HSE_REQ_IS_CONNECTED => {
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            let answer = if request == HSE_REQ_IS_KEEP_CONN {
                session.exchange().client_keep_alive
            } else {
                !lock(&session.out).failed && !session.socket.as_ref().is_some_and(client_left)
            };
            // SAFETY: lpvBuffer points to the extension's BOOL for the answer.
            unsafe { *buffer.cast::<BOOL>() = if answer { TRUE } else { FALSE } };
            TRUE
        }
        HSE_REQ_CLOSE_CONNECTION => {
            session.close_requested.store(true, Ordering::SeqCst);
            TRUE
        }
        HSE_REQ_MAP_URL_TO_PATH => {
            if buffer.is_null() || size.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: lpvBuffer holds the NUL-terminated URL on entry and is `*size` bytes.
            let url = unsafe { optional_str(buffer) }.unwrap_or_default();
            let path = c_string(&session.info.map_url(&String::from_utf8_lossy(&url)));
            // SAFETY: `size` is non-null and points to the caller's DWORD.
            let capacity = unsafe { *size } as usize;
            // SAFETY: as above; the copy stays within the caller's `capacity` bytes.
            unsafe {
                *size = path.len() as u32;
                if capacity < path.len() {
                    return fail(ERROR_INSUFFICIENT_BUFFER);
                }
                std::ptr::copy_nonoverlapping(path.as_ptr(), buffer.cast::<u8>(), path.len());
            }
            TRUE
        }
        HSE_REQ_IO_COMPLETION => {
            // lpvBuffer: the callback (null unregisters); lpdwDataType: its context.
            let callback = if buffer.is_null() {
                None
            } else {
                // SAFETY: httpext.h passes a PFN_HSE_IO_COMPLETION in lpvBuffer; a data
                // pointer and a function pointer have the same size on Windows.
                Some(unsafe { std::mem::transmute::<*mut c_void, IoCompletion>(buffer) })
            };
            *lock(&session.completion) = callback.map(|c| (c, data_type as usize));
            TRUE
        }
        HSE_REQ_SET_FLUSH_FLAG => {
            // lpvBuffer is the flag itself (a BOOL passed as the pointer value).
            session.flush.store(!buffer.is_null(), Ordering::SeqCst);
            TRUE
        }
        HSE_REQ_GET_IMPERSONATION_TOKEN => {
            // lpvBuffer: the HANDLE out.
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: httpext.h passes a HANDLE* in lpvBuffer for this request.
            unsafe { hand_out_token(tokens::impersonation_token(), buffer.cast()) }
        }
        HSE_REQ_GET_ANONYMOUS_TOKEN | HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN => {
            // lpvBuffer: the metabase path (ANSI or UTF-16); lpdwSize: the HANDLE out.
            if buffer.is_null() || size.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: httpext.h passes a HANDLE* in lpdwSize for this request.
            unsafe { hand_out_token(tokens::anonymous_token(), size.cast()) }
        }
        HSE_REQ_REPORT_UNHEALTHY => {
            // SAFETY: lpvBuffer is null or the NUL-terminated reason.
            let reason = unsafe { optional_str(buffer) }.unwrap_or_default();
            eprintln!(
                "isapi-host: the extension reports itself unhealthy: {}",
                String::from_utf8_lossy(&reason)
            );
            TRUE
        }
        HSE_REQ_TRANSMIT_FILE => {
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: lpvBuffer points to the extension's HSE_TF_INFO, whose buffers stay
            // valid until the completion is called (httpext.h).
            let info = unsafe { *buffer.cast::<HSE_TF_INFO>() };
            transmit_file(&session, &info)
        }
        HSE_REQ_EXEC_URL => {
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            // SAFETY: lpvBuffer points to the extension's HSE_EXEC_URL_INFO; its strings are
            // null or NUL-terminated and are copied before this returns.
            let info = unsafe { &*buffer.cast::<HSE_EXEC_URL_INFO>() };
            exec_url(&session, info)
        }
        HSE_REQ_GET_EXEC_URL_STATUS => {
            if buffer.is_null() {
                return fail(ERROR_INVALID_PARAMETER);
            }
            let Some(status) = *lock(&session.exec_status) else {
                return fail(ERROR_INVALID_PARAMETER);
            };
            // SAFETY: lpvBuffer points to the extension's HSE_EXEC_URL_STATUS.
            unsafe { *buffer.cast::<HSE_EXEC_URL_STATUS>() = status };
            TRUE
        }
        _ => fail(ERROR_INVALID_PARAMETER),
    }
}

/// HSE_REQ_TRANSMIT_FILE: head (as a header block with HSE_IO_SEND_HEADERS, else as body
/// bytes), then `BytesToWrite` bytes of the file from `Offset` (0: to its end), then tail;
/// the completion gets the number of bytes sent.
fn transmit_file(session: &Arc<Session>, info: &HSE_TF_INFO) -> BOOL {
    // SAFETY: head and tail are null or hold HeadLength/TailLength bytes (httpext.h).
    let (head, tail) = unsafe {
        (
            counted_bytes(info.pHead, info.HeadLength),
            counted_bytes(info.pTail, info.TailLength),
        )
    };
    let mut sent: u64 = 0;
    if info.dwFlags & HSE_IO_SEND_HEADERS != 0 {
        // SAFETY: pszStatusCode is null or NUL-terminated.
        let status =
            unsafe { optional_str(info.pszStatusCode.cast()) }.map(|s| String::from_utf8_lossy(&s).into_owned());
        if let Err(code) = session.send_head(status.as_deref(), &head, true) {
            return fail(code);
        }
    } else if let Err(e) = session.write(&head) {
        return fail(e.raw_os_error().map(|c| c as u32).unwrap_or(ERROR_NETNAME_DELETED));
    } else {
        sent += head.len() as u64;
    }
    let mut offset = u64::from(info.Offset);
    let mut left = (info.BytesToWrite != 0).then_some(u64::from(info.BytesToWrite));
    let mut chunk = vec![0u8; 64 * 1024];
    while left != Some(0) {
        let want = left.map_or(chunk.len(), |n| n.min(chunk.len() as u64) as usize);
        let n = match read_at(info.hFile, offset, &mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(code) => return fail(code),
        };
        if let Err(e) = session.write(&chunk[..n]) {
            return fail(e.raw_os_error().map(|c| c as u32).unwrap_or(ERROR_NETNAME_DELETED));
        }
        offset += n as u64;
        sent += n as u64;
        left = left.map(|l| l - n as u64);
    }
    if let Err(e) = session.write(&tail) {
        return fail(e.raw_os_error().map(|c| c as u32).unwrap_or(ERROR_NETNAME_DELETED));
    }
    sent += tail.len() as u64;
    if info.dwFlags & HSE_IO_DISCONNECT_AFTER_SEND != 0 {
        session.close_requested.store(true, Ordering::SeqCst);
    }
    let callback = match info.pfnHseIO {
        Some(f) => Some((f as IoCompletion, info.pContext as usize)),
        None => *lock(&session.completion),
    };
    complete_async(session, callback, u32::try_from(sent).unwrap_or(u32::MAX), 0);
    TRUE
}

/// Reads a counted byte buffer argument.
///
/// # Safety
/// `data` is null or points to `len` readable bytes.
unsafe fn counted_bytes(data: *const c_void, len: u32) -> Vec<u8> {
    if data.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: upheld by the caller.
    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) }.to_vec()
}

/// HSE_REQ_EXEC_URL: runs the child request (URL, method and headers default to the
/// parent's) through the extension on another thread, writing to the parent's response;
/// when it ends, HSE_REQ_GET_EXEC_URL_STATUS reports its status and the parent's
/// completion is called.
fn exec_url(session: &Arc<Session>, info: &HSE_EXEC_URL_INFO) -> BOOL {
    // SAFETY: the strings are null or NUL-terminated (checked by the caller's contract).
    let (url, method, headers) = unsafe {
        (
            optional_str(info.pszUrl.cast()),
            optional_str(info.pszMethod.cast()),
            optional_str(info.pszChildHeaders.cast()),
        )
    };
    let mut child = session.info.clone();
    if let Some(url) = url {
        let url = String::from_utf8_lossy(&url).into_owned();
        if !url.starts_with('/') || url.chars().any(|c| c.is_control()) {
            return fail(ERROR_INVALID_PARAMETER);
        }
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let Some(path) = http::normalize_path(path) else {
            return fail(ERROR_INVALID_PARAMETER);
        };
        child.path = path;
        child.query = query.to_string();
        child.raw_target = url.clone();
        // A filter's URL_MAP answered for the parent's URL only.
        child.translated = None;
    }
    if let Some(method) = method {
        child.method = String::from_utf8_lossy(&method).into_owned();
    }
    if let Some(headers) = headers {
        // The child's headers replace the parent's.
        child.headers = http::parse_header_block(&headers).fields;
        child.raw_headers = http::octets(&headers);
    }
    // The child gets the parent's entity body: the preloaded part again, the rest from
    // the connection (what the parent has not read).
    let ecb = session.ecb.load(Ordering::SeqCst);
    // SAFETY: the parent's control block is alive during its own callback.
    let (preload, total) = unsafe {
        let e = &*ecb;
        let data = if e.lpbData.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(e.lpbData, e.cbAvailable as usize).to_vec()
        };
        (data, e.cbTotalBytes)
    };
    let child = Session::new(
        child,
        session.exchange(),
        session.body.clone(),
        session.out.clone(),
        session.http_extension_proc,
        info.dwExecUrlFlags & HSE_EXEC_URL_NO_HEADERS != 0,
        None,
    );
    *lock(&session.exec_status) = None;
    lock(&session.lifecycle).async_in_flight += 1;
    let parent = session.clone();
    // The extension steps aside: the next handler, IIS's static one, answers. Running the
    // extension again would only recurse (pywin32's redirector sample excludes pages so).
    let past_extension = info.dwExecUrlFlags & HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR != 0;
    std::thread::spawn(move || {
        let ended = match past_extension {
            true => serve_static(&child),
            false => serve(&child, preload, total),
        };
        let sent = *lock(&child.sent_status);
        let code = match sent {
            Some(code) => code,
            None => {
                let mut out = lock(&child.out);
                if out.head.is_none() {
                    out.send_default(ended.status, ended.ecb_status, child.exchange())
                } else if ended.status == HSE_STATUS_ERROR {
                    500
                } else {
                    ended.ecb_status
                }
            }
        };
        eprintln!(
            "isapi-host: {} {} {code} (ExecURL child of {} {})",
            child.info.method, child.info.raw_target, parent.info.method, parent.info.raw_target
        );
        *lock(&parent.exec_status) = Some(HSE_EXEC_URL_STATUS {
            uHttpStatusCode: code,
            uHttpSubStatus: 0,
            dwWin32Error: 0,
        });
        let callback = *lock(&parent.completion);
        if let Some((callback, context)) = callback {
            let ecb = parent.ecb.load(Ordering::SeqCst);
            // SAFETY: as in `complete_async`: the parent's block lives while this runs.
            unsafe { callback(ecb, context as *mut c_void, 0, 0) };
        }
        lock(&parent.lifecycle).async_in_flight -= 1;
        parent.changed.notify_all();
    });
    TRUE
}

/// An ExecURL child past the extension: the file its URL maps to (PATH_TRANSLATED), as
/// IIS's static file handler sends it, or its 404 or 405.
fn serve_static(child: &Arc<Session>) -> Ended {
    let path = child.info.server_variable("PATH_TRANSLATED").unwrap_or_default();
    let path = std::path::Path::new(&path);
    let answer = static_file::answer(&child.info.method, path, path.is_file());
    let sent = match answer {
        static_file::Answer::File {
            content_type,
            head_only,
        } => match std::fs::read(path) {
            Ok(data) => {
                let head = format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", data.len());
                let sent = child.send_head(Some("200 OK"), head.as_bytes(), true);
                let body = if head_only { &[][..] } else { &data[..] };
                sent.and_then(|()| child.write(body).map(|_| ()).map_err(|_| ERROR_NETNAME_DELETED))
                    .map(|()| 200)
            }
            Err(_) => child.send_static_error(404),
        },
        static_file::Answer::NotFound => child.send_static_error(404),
        static_file::Answer::MethodNotAllowed => child.send_static_error(405),
    };
    Ended {
        status: if sent.is_ok() {
            HSE_STATUS_SUCCESS
        } else {
            HSE_STATUS_ERROR
        },
        ecb_status: sent.unwrap_or(500),
        log_data: String::new(),
    }
}

impl Session {
    /// The static handler's error answer: `code` with a one-line text body.
    fn send_static_error(&self, code: u16) -> Result<u16, u32> {
        let body = format!("{code} {}\n", http::reason_phrase(code));
        let mut head = format!("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.len());
        if code == 405 {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let status = format!("{code} {}", http::reason_phrase(code));
        self.send_head(Some(&status), head.as_bytes(), true)?;
        self.write(body.as_bytes()).map_err(|_| ERROR_NETNAME_DELETED)?;
        Ok(code)
    }
}

/// Reads from `file` at `offset` (the extension's handle, opened for reading); Ok(0) at
/// its end. The handle may be opened for overlapped I/O (FILE_FLAG_OVERLAPPED, as httpext.h
/// advises for TransmitFile and pywin32's test sample does): then the read is waited for.
fn read_at(file: HANDLE, offset: u64, buffer: &mut [u8]) -> Result<usize, u32> {
    let mut overlapped: OVERLAPPED = Default::default();
    overlapped.Anonymous.Anonymous.Offset = offset as u32;
    overlapped.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    let mut read = 0u32;
    let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
    // SAFETY: `buffer` is writable for `len` bytes and `overlapped` outlives the call and
    // the wait below: a handle opened for synchronous I/O reads at the OVERLAPPED's offset
    // and waits, an overlapped one may return ERROR_IO_PENDING and finish in the background.
    let mut ok = unsafe { ReadFile(file, buffer.as_mut_ptr(), len, &mut read, &mut overlapped) };
    // SAFETY: reads the calling thread's last-error value.
    if ok == 0 && unsafe { GetLastError() } == ERROR_IO_PENDING {
        // SAFETY: the OVERLAPPED of the read in flight, which has no event: the file
        // handle itself is signalled when the read completes.
        ok = unsafe { GetOverlappedResult(file, &overlapped, &mut read, TRUE) };
    }
    if ok == 0 {
        // SAFETY: reads the calling thread's last-error value.
        let code = unsafe { GetLastError() };
        return if code == ERROR_HANDLE_EOF { Ok(0) } else { Err(code) };
    }
    Ok(read as usize)
}

/// Whether the client closed its side of the connection (HSE_REQ_IS_CONNECTED, as IIS
/// answers it for an extension waiting on something else than the client): the socket is
/// readable and has no byte to read, which is end of stream or an error. It never waits
/// and consumes nothing: a pipelined request waiting to be read means the client is there.
fn client_left(socket: &TcpStream) -> bool {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{ioctlsocket, select, FD_SET, FIONREAD, SOCKET, TIMEVAL};
    let raw = socket.as_raw_socket() as SOCKET;
    let mut readable = FD_SET {
        fd_count: 1,
        ..Default::default()
    };
    readable.fd_array[0] = raw;
    let now = TIMEVAL { tv_sec: 0, tv_usec: 0 };
    let mut waiting = 0u32;
    // SAFETY: `raw` is the connection's socket, open while its session is; the set and the
    // zero timeout (select returns at once) are ours for the call.
    unsafe {
        select(0, &mut readable, std::ptr::null_mut(), std::ptr::null_mut(), &now) == 1
            && ioctlsocket(raw, FIONREAD, &mut waiting) == 0
            && waiting == 0
    }
}
