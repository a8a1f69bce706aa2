//! isapi.asgi's server side, natively (resources/isapi/asgi.py has the whole design): IIS's
//! threads hand requests to the event loop without taking the GIL, and request bodies and
//! responses move on a small pool of I/O threads that never hold it.
//!
//! - HttpExtensionProc (exports.rs asks [`dispatch`] first) puts the control block in a
//!   mailbox and returns HSE_STATUS_PENDING; the first event of an empty mailbox wakes the
//!   loop, which takes every event at once (`drain`). The wake is a completion packet
//!   posted to the proactor loop's own completion port: one call, where a byte on a socket
//!   the loop reads (the other way, for other loops) costs a send, a completion and a new
//!   receive (~150 µs a wake under Wine).
//! - An idle loop parks on `Shared::turn_changed` (a futex wait under Wine) instead of its
//!   completion port while it has no operation of its own under way; a request then wakes
//!   it with no completion packet, or is run by the IIS thread that brings it, which
//!   borrows the loop's turn (`Shared::borrow`): the request's task starts there, and a
//!   response that ends before a real wait returns its status from HttpExtensionProc.
//!   A hand-off to the loop's thread and back costs ~40 µs under Wine, several times a
//!   small request's own work. One thread at a time holds the turn (`Turn`), so asyncio's
//!   single-thread rule holds; requests arriving meanwhile queue as usual.
//! - Each request's I/O (ReadClient, the head, WriteClient, DoneWithSession) runs in order,
//!   on one I/O thread at a time, with no lock and no GIL held while the server call waits:
//!   a slow client holds up one I/O thread and its own request. Results reach the loop
//!   through the same mailbox.
//! - A response's first write (head and at most 16 KiB of body) and DoneWithSession run on
//!   the loop's thread when nothing of the request is queued: they land in empty send
//!   buffers and return without waiting for the client (ecb.rs's `keeps_gil` has the same
//!   rule), and a hand-off to another thread would cost more than the call.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_void, CStr};
use std::io::Write;
use std::mem::ManuallyDrop;
use std::net::TcpStream;
use std::os::windows::io::FromRawSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use windows_sys::core::BOOL;
use windows_sys::Win32::System::Iis::{
    EXTENSION_CONTROL_BLOCK, HSE_IO_SYNC, HSE_REQ_DONE_WITH_SESSION, HSE_REQ_IS_CONNECTED,
    HSE_REQ_SEND_RESPONSE_HEADER_EX, HSE_SEND_HEADER_EX_INFO, HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_STATUS_SUCCESS,
};

use crate::asgi_http::{self as wire, BadHeader, HeadBuilder};
use crate::cgi;
use crate::ecb::{field_bytes, last_error, ExtensionControlBlock};
use crate::server_variables::{ansi_bytes, utf16_text, with_scratch};

/// How much one ReadClient asks for: a receive() gets at most this much body.
const READ_CHUNK: usize = 64 * 1024;
/// The largest first write (head and body) made on the loop's thread.
const INLINE_WRITE: usize = 16 * 1024;
/// Body bytes queued for a client beyond which send() waits (the request's buffer bound),
/// and how far they must fall before it goes on.
const HIGH_WATER: usize = 256 * 1024;
const LOW_WATER: usize = 64 * 1024;
/// The most I/O threads: each one is blocked by at most one slow client at a time.
const MAX_IO_THREADS: usize = 64;

/// What `AsgiRequest.send` tells the Python side.
const SENT: i32 = 0;
const WAIT: i32 = 1;
const GONE: i32 = -1;
const IGNORED: i32 = 2;

/// A poisoned lock only means a panic elsewhere, already contained; the state stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The servers whose HttpExtensionProc calls are ASGI requests, by app (two frozen apps can
/// share this runtime), set by `AsgiServer.serve_natively` (when the script did not
/// override HttpExtensionProc).
static DISPATCH: RwLock<BTreeMap<usize, Arc<Shared>>> = RwLock::new(BTreeMap::new());

/// HttpExtensionProc's first question: if app `app`'s ASGI server takes requests natively,
/// the request goes to its mailbox (without the GIL), or runs on this thread with the loop
/// borrowed, and this is the status to return.
pub fn dispatch(app: usize, ecb: *mut EXTENSION_CONTROL_BLOCK) -> Option<u32> {
    let shared = DISPATCH.read().unwrap_or_else(|e| e.into_inner()).get(&app).cloned()?;
    if let Some(status) = shared.borrow(RawEcb(ecb)) {
        return Some(status);
    }
    Some(shared.accept(Incoming::Accepted(RawEcb(ecb))))
}

/// The control block IIS passed, used from the loop's thread and the I/O threads.
#[derive(Clone, Copy)]
struct RawEcb(*mut EXTENSION_CONTROL_BLOCK);
// SAFETY: the server's callbacks may be called from any thread (the ISAPI contract), and
// the block lives until DoneWithSession, after which a request makes no call (see `Io`).
unsafe impl Send for RawEcb {}
unsafe impl Sync for RawEcb {}

impl RawEcb {
    /// # Safety
    /// The session is live (DoneWithSession not made).
    unsafe fn block(&self) -> &EXTENSION_CONTROL_BLOCK {
        // SAFETY: upheld by the caller.
        unsafe { &*self.0 }
    }

    /// # Safety
    /// As [`block`](Self::block); `buffer` is what `request` expects.
    unsafe fn support(&self, request: u32, buffer: *mut c_void) -> Result<(), u32> {
        // SAFETY: upheld by the caller.
        let ecb = unsafe { self.block() };
        let f = ecb
            .ServerSupportFunction
            .expect("the server fills ServerSupportFunction");
        // SAFETY: as above; no size or data type for these requests.
        let ok = unsafe { f(ecb.ConnID, request, buffer, std::ptr::null_mut(), std::ptr::null_mut()) };
        crate::ecb::win32_result(ok)
    }

    /// SendResponseHeaders from `strings` (status, NUL, header block, NUL), keeping the
    /// connection.
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn send_head(&self, strings: &[u8], status_len: usize) -> Result<(), u32> {
        let mut info = HSE_SEND_HEADER_EX_INFO {
            pszStatus: strings.as_ptr(),
            pszHeader: strings[status_len + 1..].as_ptr(),
            cchStatus: status_len as u32,
            cchHeader: (strings.len() - status_len - 2) as u32,
            fKeepConn: 1,
        };
        // SAFETY: upheld by the caller; `info` and `strings` outlive the call.
        unsafe {
            self.support(
                HSE_REQ_SEND_RESPONSE_HEADER_EX,
                (&mut info as *mut HSE_SEND_HEADER_EX_INFO).cast(),
            )
        }
    }

    /// WriteClient, synchronously, until all of `data` is sent.
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn write(&self, data: &[u8]) -> Result<(), u32> {
        // SAFETY: upheld by the caller.
        let ecb = unsafe { self.block() };
        let f = ecb.WriteClient.expect("the server fills WriteClient");
        let mut sent = 0;
        while sent < data.len() {
            let rest = &data[sent..];
            let mut len = rest.len().min(u32::MAX as usize) as u32;
            // SAFETY: `rest` holds `len` readable bytes for the call.
            let ok = unsafe { f(ecb.ConnID, rest.as_ptr() as *mut c_void, &mut len, HSE_IO_SYNC) };
            crate::ecb::win32_result(ok)?;
            if len == 0 {
                // A synchronous write that sends nothing would loop for ever.
                return Err(windows_sys::Win32::Foundation::ERROR_NETNAME_DELETED);
            }
            sent += len as usize;
        }
        Ok(())
    }

    /// ReadClient: the next bytes of the body (0 at its end).
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn read(&self, buffer: &mut [u8]) -> Result<usize, u32> {
        // SAFETY: upheld by the caller.
        let ecb = unsafe { self.block() };
        let f = ecb.ReadClient.expect("the server fills ReadClient");
        let mut len = buffer.len() as u32;
        // SAFETY: `buffer` is writable for `len` bytes.
        let ok = unsafe { f(ecb.ConnID, buffer.as_mut_ptr().cast(), &mut len) };
        if ok == 0 {
            return Err(last_error());
        }
        Ok((len as usize).min(buffer.len()))
    }

    /// HSE_REQ_DONE_WITH_SESSION: the server may free the block once this returns.
    ///
    /// # Safety
    /// As [`block`](Self::block); nothing uses this block afterwards.
    unsafe fn done(&self, status: u32) {
        let mut status = status;
        // SAFETY: upheld by the caller. A failure leaves nothing to do: the request is over
        // for this side either way.
        let _ = unsafe { self.support(HSE_REQ_DONE_WITH_SESSION, (&mut status as *mut u32).cast()) };
    }

    /// HSE_REQ_IS_CONNECTED; a server that cannot say is taken at its word that it can
    /// still send.
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn is_connected(&self) -> bool {
        let mut answer: BOOL = 1;
        // SAFETY: upheld by the caller; `answer` is the BOOL the request fills.
        let asked = unsafe { self.support(HSE_REQ_IS_CONNECTED, (&mut answer as *mut BOOL).cast()) };
        asked.is_err() || answer != 0
    }

    /// dwHttpStatusCode, for the server's log line.
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn set_status(&self, code: u16) {
        // SAFETY: upheld by the caller; the extension owns this field during the session.
        unsafe { (*self.0).dwHttpStatusCode = u32::from(code) };
    }

    /// Answers 503 without the application (a request that came while shutting down) and
    /// returns the status that ends it.
    ///
    /// # Safety
    /// As [`block`](Self::block).
    unsafe fn refuse(&self) -> u32 {
        let body = b"503 Service Unavailable: the application is shutting down\n";
        let mut head = HeadBuilder::new();
        let _ = head.push(b"content-type", b"text/plain");
        head.add_length(body.len());
        let (strings, status_len) = head.finish(503);
        // SAFETY: upheld by the caller.
        unsafe {
            self.set_status(503);
            if self.send_head(&strings, status_len).is_ok() {
                let _ = self.write(body);
            }
        }
        HSE_STATUS_SUCCESS
    }
}

/// A request handed to the server: the control block HttpExtensionProc got (native
/// dispatch), or the object the script's HttpExtensionProc passed on.
enum Incoming {
    Accepted(RawEcb),
    Handed(Py<ExtensionControlBlock>),
}

/// What the loop has to handle.
enum Event {
    Request(Incoming),
    /// An I/O result: the asyncio future to resolve, and its value.
    Resolve(Py<PyAny>, Outcome),
}

/// The value a future is resolved with.
enum Outcome {
    /// None: the client is gone (a read), or the awaited moment came (idle, disconnect).
    Nothing,
    /// Whether the client is still there (a drained write buffer).
    Flag(bool),
    /// Body bytes and whether more follow (a read).
    Body(Vec<u8>, bool),
}

impl Outcome {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Outcome::Nothing => py.None(),
            Outcome::Flag(flag) => pyo3::types::PyBool::new(py, flag).to_owned().into_any().unbind(),
            Outcome::Body(data, more) => PyTuple::new(
                py,
                [
                    PyBytes::new(py, &data).into_any(),
                    pyo3::types::PyBool::new(py, more).to_owned().into_any(),
                ],
            )?
            .into_any()
            .unbind(),
        })
    }
}

/// How a poster wakes the loop.
#[derive(Clone, Copy)]
enum Wake {
    /// A completion packet for `overlapped` (the address the loop registered) on the loop's
    /// completion port.
    Port { port: usize, overlapped: usize },
    /// A byte on a socket (a raw SOCKET, which Python owns) whose other end the loop reads.
    Socket(u64),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Port { port, overlapped } => {
                // SAFETY: the port is open while it is set (see `Shared::wake`); a posted
                // packet's OVERLAPPED is only handed back to the loop, never dereferenced.
                // A failure can only mean the loop is gone, which closes everything.
                unsafe {
                    windows_sys::Win32::System::IO::PostQueuedCompletionStatus(
                        port as windows_sys::Win32::Foundation::HANDLE,
                        0,
                        0,
                        overlapped as *const windows_sys::Win32::System::IO::OVERLAPPED,
                    )
                };
            }
            Wake::Socket(socket) => {
                // SAFETY: as above; ManuallyDrop keeps this borrowed handle from being
                // closed here.
                let mut stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_socket(socket) });
                let _ = stream.write(&[0]);
            }
        }
    }
}

#[derive(Default)]
struct Mailbox {
    events: Vec<Event>,
    /// The loop was woken and has not drained since.
    wake_pending: bool,
    closed: bool,
    /// Who runs the loop's Python side now (see [`Turn`]).
    turn: Turn,
    /// While borrowed: the loop has work, and gets its turn back when the borrower ends.
    loop_wanted: bool,
    /// `unpark` came while the loop ran: work it scheduled may be after the loop computed
    /// its timeout, so the next `park` returns at once (the self-pipe byte that says so is
    /// not watched while parked).
    unparked: bool,
}

/// Whose turn it is to run the event loop's Python side. The loop's thread parks (waits on
/// `Shared::turn_changed`, not on its completion port) when it has nothing to do and no
/// operation of its own is under way; a parked loop is woken by a futex wait's wake
/// rather than a completion packet, and an IIS thread may borrow it (see `borrow`).
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Turn {
    #[default]
    Running,
    Parked,
    Borrowed,
}

/// The I/O threads' queue: requests with operations to run.
#[derive(Default)]
struct PoolState {
    ready: VecDeque<Arc<Core>>,
    idle: usize,
    threads: usize,
    stopping: bool,
}

/// What IIS's threads, the loop and the I/O threads share.
#[derive(Default)]
struct Shared {
    mailbox: Mutex<Mailbox>,
    /// How to wake the loop. Posters wake while holding the read lock, and `close` takes
    /// the write lock before Python may close the port or the socket.
    wake: RwLock<Option<Wake>>,
    accepting: AtomicBool,
    /// Requests taken and not yet ended with DoneWithSession.
    in_flight: AtomicUsize,
    idle_waiter: Mutex<Option<Py<PyAny>>>,
    pool: Mutex<PoolState>,
    work: Condvar,
    exited: Condvar,
    /// Signalled with the mailbox's lock when `Mailbox::turn` changes.
    turn_changed: Condvar,
    /// `AsgiServer.serve_inline`'s callable: runs a request on a borrowed loop.
    inline: RwLock<Option<Arc<Py<PyAny>>>>,
    /// The app whose server this is (see `apps`): its loop's and I/O threads' logs go there.
    app: usize,
}

impl Shared {
    /// Takes a request from HttpExtensionProc; returns the status to give back.
    fn accept(&self, incoming: Incoming) -> u32 {
        if self.accepting.load(Ordering::SeqCst) {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            match self.post(Event::Request(incoming)) {
                Ok(()) => return HSE_STATUS_PENDING,
                Err(Event::Request(incoming)) => {
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                    return refuse(incoming);
                }
                Err(Event::Resolve(..)) => unreachable!("a request was posted"),
            }
        }
        refuse(incoming)
    }

    /// Puts an event in the mailbox, waking the loop if it was empty; gives the event back
    /// once the server is closed.
    fn post(&self, event: Event) -> Result<(), Event> {
        let wake = {
            let mut mailbox = lock(&self.mailbox);
            if mailbox.closed {
                return Err(event);
            }
            mailbox.events.push(event);
            match mailbox.turn {
                Turn::Running => !std::mem::replace(&mut mailbox.wake_pending, true),
                Turn::Parked => {
                    mailbox.turn = Turn::Running;
                    self.turn_changed.notify_all();
                    false
                }
                Turn::Borrowed => {
                    mailbox.loop_wanted = true;
                    false
                }
            }
        };
        if wake {
            let target = self.wake.read().unwrap_or_else(|e| e.into_inner());
            if let Some(target) = *target {
                target.wake();
            }
        }
        Ok(())
    }

    /// Runs a request on this thread (IIS's) with the loop borrowed, when the loop is parked
    /// with an empty mailbox: the request's task starts here, and a response that ends
    /// before its first real wait returns its status with no thread hand-off. Otherwise
    /// (None) the caller posts the request as usual. See the file's header.
    fn borrow(self: &Arc<Self>, raw: RawEcb) -> Option<u32> {
        let runner = self.inline.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        if !self.accepting.load(Ordering::SeqCst) {
            return None;
        }
        {
            let mut mailbox = lock(&self.mailbox);
            if mailbox.turn != Turn::Parked || mailbox.closed || !mailbox.events.is_empty() {
                return None;
            }
            mailbox.turn = Turn::Borrowed;
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let outcome = crate::apps::serving(self.app, || {
            crate::interpreter::attach(|py| {
                let ecb = Py::new(py, ExtensionControlBlock::new(raw.0)).ok()?;
                let request = Py::new(py, AsgiRequest::new(ecb, raw, self.clone()).ok()?).ok()?;
                let core = request.get().core.clone();
                lock(&core.io).in_call = true;
                // The callable reports its own failures; one escaping it leaves the request to
                // the loop, woken below.
                let loop_needed = match runner.call1(py, (request,)) {
                    Ok(answer) => answer.is_truthy(py).unwrap_or(true),
                    Err(err) => {
                        crate::served::log(&format!(
                            "isapi.asgi: running a request on IIS's thread failed:\n{}",
                            crate::interpreter::describe(py, &err)
                        ));
                        true
                    }
                };
                let mut io = lock(&core.io);
                io.in_call = false;
                Some((io.held_done.take(), loop_needed))
            })
        });
        let (status, loop_needed) = match outcome {
            Some(outcome) => outcome,
            None => {
                // The request object could not be made: the request is posted instead.
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.give_back(true);
                return None;
            }
        };
        self.give_back(loop_needed);
        Some(status.unwrap_or(HSE_STATUS_PENDING))
    }

    /// Ends a borrow: the loop parks on, or runs if it has work.
    fn give_back(&self, loop_needed: bool) {
        let mut mailbox = lock(&self.mailbox);
        let run = loop_needed || mailbox.loop_wanted || !mailbox.events.is_empty() || mailbox.closed;
        mailbox.loop_wanted = false;
        if run {
            mailbox.turn = Turn::Running;
            self.turn_changed.notify_all();
        } else {
            // The parked loop sleeps on: its deadline has not come (it would have asked
            // for its turn), and waking it only to sleep again costs a thread switch.
            mailbox.turn = Turn::Parked;
        }
    }

    /// The loop's thread, with nothing to do: waits for an event, a wake or the timeout
    /// (None: none), and for any borrower to end. Returns at once if events wait.
    fn park(&self, timeout: Option<f64>) {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.clamp(0.0, 86_400.0)));
        let mut mailbox = lock(&self.mailbox);
        let unparked = std::mem::take(&mut mailbox.unparked);
        if unparked
            || mailbox.closed
            || mailbox.wake_pending
            || !mailbox.events.is_empty()
            || mailbox.turn != Turn::Running
        {
            return;
        }
        mailbox.turn = Turn::Parked;
        loop {
            let now = Instant::now();
            let due = deadline.is_some_and(|d| now >= d);
            match mailbox.turn {
                Turn::Running => return,
                Turn::Parked if due => {
                    mailbox.turn = Turn::Running;
                    return;
                }
                Turn::Borrowed if due => mailbox.loop_wanted = true,
                _ => {}
            }
            mailbox = match deadline {
                Some(d) if !due => {
                    self.turn_changed
                        .wait_timeout(mailbox, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                _ => self.turn_changed.wait(mailbox).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Another thread scheduled work on the loop (call_soon_threadsafe): a parked loop runs.
    fn unpark(&self) {
        let mut mailbox = lock(&self.mailbox);
        match mailbox.turn {
            Turn::Parked => {
                mailbox.turn = Turn::Running;
                self.turn_changed.notify_all();
            }
            Turn::Borrowed => mailbox.loop_wanted = true,
            Turn::Running => mailbox.unparked = true,
        }
    }

    /// A request was ended with DoneWithSession.
    fn finished_one(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            let waiter = lock(&self.idle_waiter).take();
            if let Some(waiter) = waiter {
                let _ = self.post(Event::Resolve(waiter, Outcome::Nothing));
            }
        }
    }

    /// Gives a request with queued operations to the I/O threads (starting one if every
    /// thread is busy and there are fewer than the most).
    fn schedule(self: &Arc<Self>, core: Arc<Core>) {
        let spawn = {
            let mut pool = lock(&self.pool);
            pool.ready.push_back(core);
            let spawn = pool.ready.len() > pool.idle && pool.threads < MAX_IO_THREADS && !pool.stopping;
            if spawn {
                pool.threads += 1;
            }
            spawn
        };
        self.work.notify_one();
        if spawn {
            let shared = self.clone();
            let started = std::thread::Builder::new()
                .name("isapi-asgi-io".into())
                .spawn(move || shared.io_thread());
            if started.is_err() {
                // The threads there are take the work; the request waits a little longer.
                lock(&self.pool).threads -= 1;
            }
        }
    }

    /// An I/O thread: runs the operations of one request after another until the pool
    /// stops (having run what was queued).
    fn io_thread(self: Arc<Self>) {
        crate::apps::adopt(self.app);
        loop {
            let core = {
                let mut pool = lock(&self.pool);
                loop {
                    if let Some(core) = pool.ready.pop_front() {
                        break Some(core);
                    }
                    if pool.stopping {
                        break None;
                    }
                    pool.idle += 1;
                    pool = self.work.wait(pool).unwrap_or_else(|e| e.into_inner());
                    pool.idle -= 1;
                }
            };
            let Some(core) = core else {
                lock(&self.pool).threads -= 1;
                self.exited.notify_all();
                return;
            };
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.run(&self)));
            if caught.is_err() {
                crate::served::log("internal error in the isapi-freeze runtime's ASGI I/O thread");
            }
        }
    }
}

/// Answers a request the server does not take (shutting down) with 503.
fn refuse(incoming: Incoming) -> u32 {
    match incoming {
        // SAFETY: HttpExtensionProc's block, live during this call.
        Incoming::Accepted(raw) => unsafe { raw.refuse() },
        Incoming::Handed(ecb) => match ecb.get().fields() {
            // SAFETY: the script's HttpExtensionProc is still running, so the block is live.
            Ok(block) => unsafe { RawEcb(block as *const _ as *mut _).refuse() },
            Err(_) => HSE_STATUS_ERROR,
        },
    }
}

/// One I/O operation of a request, in the order the application asked for them.
enum Op {
    Head(Vec<u8>, usize),
    Write(Vec<u8>),
    Read(Py<PyAny>),
    Done(u32),
}

/// A request's I/O state, shared by the loop and the I/O thread running its operations.
#[derive(Default)]
struct Io {
    ops: VecDeque<Op>,
    /// An I/O thread (or the loop, inline) is running this request's operations.
    busy: bool,
    /// DoneWithSession is queued or made: nothing more is queued.
    finished: bool,
    disconnected: bool,
    /// Body bytes queued and not yet written.
    queued_bytes: usize,
    drain_waiter: Option<Py<PyAny>>,
    disconnect_waiter: Option<Py<PyAny>>,
    /// Body bytes left to read (None: until a read gives none, for a chunked body).
    remaining: Option<u64>,
    /// The request runs inside HttpExtensionProc (a borrowed loop): its end is returned as
    /// the status rather than sent with DoneWithSession.
    in_call: bool,
    /// The status of an end reached during that call.
    held_done: Option<u32>,
}

/// What the loop and the I/O threads share of one request.
struct Core {
    raw: RawEcb,
    io: Mutex<Io>,
}

impl Core {
    /// Runs the queued operations until there are none (an I/O thread's turn).
    fn run(&self, shared: &Arc<Shared>) {
        loop {
            let (op, disconnected) = {
                let mut io = lock(&self.io);
                match io.ops.pop_front() {
                    Some(op) => (op, io.disconnected),
                    None => {
                        io.busy = false;
                        return;
                    }
                }
            };
            self.execute(shared, op, disconnected);
        }
    }

    /// Makes one server call. Operations run one at a time, in order, and Done is the last
    /// one queued: the session is live for all the others.
    fn execute(&self, shared: &Shared, op: Op, disconnected: bool) {
        match op {
            Op::Head(strings, status_len) => {
                // SAFETY: the session is live (see above).
                if !disconnected && unsafe { self.raw.send_head(&strings, status_len) }.is_err() {
                    self.lost(shared);
                }
            }
            Op::Write(data) => {
                // SAFETY: as above.
                if !disconnected && unsafe { self.raw.write(&data) }.is_err() {
                    self.lost(shared);
                }
                let waiter = {
                    let mut io = lock(&self.io);
                    io.queued_bytes -= data.len();
                    match io.queued_bytes <= LOW_WATER {
                        true => io.drain_waiter.take().map(|w| (w, !io.disconnected)),
                        false => None,
                    }
                };
                if let Some((waiter, connected)) = waiter {
                    let _ = shared.post(Event::Resolve(waiter, Outcome::Flag(connected)));
                }
            }
            Op::Read(future) => {
                let outcome = match disconnected {
                    true => Outcome::Nothing,
                    false => self.read_body(shared),
                };
                let _ = shared.post(Event::Resolve(future, outcome));
            }
            Op::Done(status) => {
                let held = {
                    let mut io = lock(&self.io);
                    if io.in_call {
                        io.held_done = Some(status);
                    }
                    io.in_call
                };
                if !held {
                    // SAFETY: as above; this is the request's last operation.
                    unsafe { self.raw.done(status) };
                }
                shared.finished_one();
            }
        }
    }

    /// One ReadClient of at most READ_CHUNK, within what is left of the body.
    fn read_body(&self, shared: &Shared) -> Outcome {
        let remaining = lock(&self.io).remaining;
        let want = remaining.map_or(READ_CHUNK, |left| left.min(READ_CHUNK as u64) as usize);
        if want == 0 {
            return Outcome::Body(Vec::new(), false);
        }
        let mut data = vec![0u8; want];
        // SAFETY: the session is live (a Read is queued before Done).
        let got = match unsafe { self.raw.read(&mut data) } {
            Ok(got) => got,
            Err(_) => {
                self.lost(shared);
                return Outcome::Nothing;
            }
        };
        data.truncate(got);
        let more = match remaining {
            // Fewer bytes than Content-Length said: the client left mid-body.
            Some(_) if got == 0 => {
                self.lost(shared);
                return Outcome::Nothing;
            }
            Some(left) => {
                let left = left - got as u64;
                lock(&self.io).remaining = Some(left);
                left > 0
            }
            None => got > 0,
        };
        Outcome::Body(data, more)
    }

    /// The client is gone: later sends fail, and whoever waits for it is told.
    fn lost(&self, shared: &Shared) {
        let (disconnect, drain) = {
            let mut io = lock(&self.io);
            io.disconnected = true;
            (io.disconnect_waiter.take(), io.drain_waiter.take())
        };
        if let Some(waiter) = disconnect {
            let _ = shared.post(Event::Resolve(waiter, Outcome::Nothing));
        }
        if let Some(waiter) = drain {
            let _ = shared.post(Event::Resolve(waiter, Outcome::Flag(false)));
        }
    }
}

/// The loop's side of the response.
#[derive(Default)]
struct Response {
    status: u16,
    /// From http.response.start, until the first body message sends it.
    head: Option<HeadBuilder>,
    /// The head was handed to the server (sent or queued).
    head_sent: bool,
    /// Body bytes were handed to the server.
    body_started: bool,
    /// The response is over (complete, failed or aborted): later messages are ignored.
    complete: bool,
}

/// One request as the Python side sees it: the scope, the body and the response.
#[pyclass(module = "_isapi_freeze", name = "AsgiRequest", frozen)]
pub struct AsgiRequest {
    ecb: Py<ExtensionControlBlock>,
    core: Arc<Core>,
    shared: Arc<Shared>,
    response: Mutex<Response>,
    method_is_head: bool,
}

impl AsgiRequest {
    fn new(ecb: Py<ExtensionControlBlock>, raw: RawEcb, shared: Arc<Shared>) -> PyResult<AsgiRequest> {
        let method_is_head = field_bytes(ecb.get().fields()?.lpszMethod) == b"HEAD";
        Ok(AsgiRequest {
            ecb,
            core: Arc::new(Core {
                raw,
                io: Mutex::new(Io::default()),
            }),
            shared,
            response: Mutex::new(Response::default()),
            method_is_head,
        })
    }

    /// Runs `ops` on this thread if nothing of the request is queued and they may (see the
    /// file's header), else queues them for an I/O thread. Returns whether the caller
    /// should wait for the queued bytes to drain.
    fn submit(&self, mut io: MutexGuard<'_, Io>, ops: Vec<Op>, first_write: bool) -> bool {
        if ops.iter().any(|op| matches!(op, Op::Done(_))) {
            io.finished = true;
        }
        let mut inline_bytes = 0;
        let inline = ops.iter().all(|op| match op {
            Op::Head(strings, _) => {
                inline_bytes += strings.len();
                true
            }
            Op::Write(data) => {
                inline_bytes += data.len();
                first_write
            }
            Op::Done(_) => true,
            Op::Read(_) => false,
        }) && inline_bytes <= INLINE_WRITE;
        for op in &ops {
            if let Op::Write(data) = op {
                io.queued_bytes += data.len();
            }
        }
        if inline && !io.busy && io.ops.is_empty() {
            io.busy = true;
            let disconnected = io.disconnected;
            drop(io);
            for op in ops {
                let disconnected = disconnected || lock(&self.core.io).disconnected;
                self.core.execute(&self.shared, op, disconnected);
            }
            lock(&self.core.io).busy = false;
            return false;
        }
        io.ops.extend(ops);
        let wait = io.queued_bytes > HIGH_WATER;
        if !io.busy {
            io.busy = true;
            drop(io);
            self.shared.schedule(self.core.clone());
        }
        wait
    }

    /// The end of the session is decided: the ECB object stops working now (the server may
    /// free the block as soon as DoneWithSession runs).
    fn retire_ecb(&self) {
        self.ecb.get().invalidate();
    }
}

/// A variable's bytes, read into `buffer`; None when the server has no such variable.
fn variable<'b>(ecb: &ExtensionControlBlock, name: &CStr, buffer: &'b mut Vec<u8>) -> PyResult<Option<&'b [u8]>> {
    Ok(match ecb.variable_into(name, buffer)? {
        Ok(len) => Some(ansi_bytes(&buffer[..len])),
        Err(_) => None,
    })
}

/// Bytes of the server as text: UTF-8 where they are that, else one char per byte.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => cgi::latin1_text(bytes),
    }
}

/// `(host, port)` from two variables, or None without the port.
fn endpoint<'py>(py: Python<'py>, host: Bound<'py, PyString>, port: Option<&[u8]>) -> PyResult<Bound<'py, PyAny>> {
    let port = port.and_then(|p| std::str::from_utf8(p).ok()?.parse::<u16>().ok());
    Ok(match port {
        Some(port) => (host, port).into_pyobject(py)?.into_any(),
        None => py.None().into_bound(py),
    })
}

/// The bytes of a header's name or value (bytes only, as the spec has them).
fn header_bytes<'a>(item: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    item.cast::<PyBytes>().ok().map(|b| b.as_bytes())
}

#[pymethods]
impl AsgiRequest {
    /// The HTTP connection scope: every key of the ASGI HTTP spec, `asgi` a copy of the
    /// given dict, `state` a shallow copy of the lifespan's (when given), and
    /// `extensions["isapi.ecb"]` the request's EXTENSION_CONTROL_BLOCK object.
    #[pyo3(signature = (asgi, state = None))]
    fn scope<'py>(
        &self,
        py: Python<'py>,
        asgi: &Bound<'py, PyDict>,
        state: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ecb = self.ecb.get();
        let scope = PyDict::new(py);
        scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
        scope.set_item(intern!(py, "asgi"), asgi.copy()?)?;
        let (method, query) = {
            let f = ecb.fields()?;
            (field_bytes(f.lpszMethod), field_bytes(f.lpszQueryString))
        };
        let method = match std::str::from_utf8(method) {
            // Interned: the same few methods for every request, compared by the router.
            Ok(m) if m.is_ascii() => PyString::intern(py, m),
            _ => PyString::new(py, &cgi::latin1_text(method)),
        };
        scope.set_item(intern!(py, "method"), method)?;
        scope.set_item(intern!(py, "query_string"), PyBytes::new(py, query))?;
        with_scratch(|buffer| -> PyResult<()> {
            let version = wire::http_version(variable(ecb, c"SERVER_PROTOCOL", buffer)?.unwrap_or(b""));
            scope.set_item(intern!(py, "http_version"), PyString::intern(py, version))?;
            let https = cgi::is_https(variable(ecb, c"HTTPS", buffer)?);
            let scheme = if https {
                intern!(py, "https")
            } else {
                intern!(py, "http")
            };
            scope.set_item(intern!(py, "scheme"), scheme)?;
            let path = match ecb.variable_into(c"UNICODE_PATH_INFO", buffer)? {
                Ok(len) => utf16_text(&buffer[..len]),
                Err(_) => text(field_bytes(ecb.fields()?.lpszPathInfo)).into_owned(),
            };
            let root_len = {
                let mount = cgi::mount_point(variable(ecb, c"APPL_MD_PATH", buffer)?.unwrap_or(b""));
                cgi::split_path(path.as_bytes(), mount).0.len()
            };
            let root = path.get(..root_len).unwrap_or("");
            scope.set_item(intern!(py, "root_path"), root)?;
            scope.set_item(intern!(py, "path"), &path)?;
            let raw_path = match variable(ecb, c"UNENCODED_URL", buffer)? {
                Some(url) if !url.is_empty() => PyBytes::new(py, wire::raw_path(url)),
                _ => PyBytes::new(py, path.as_bytes()),
            };
            scope.set_item(intern!(py, "raw_path"), raw_path)?;
            let headers = PyList::empty(py);
            let mut add = |name: &[u8], value: &[u8]| headers.append((PyBytes::new(py, name), PyBytes::new(py, value)));
            match variable(ecb, c"ALL_RAW", buffer)? {
                Some(raw) if !raw.is_empty() => wire::request_headers(raw, &mut add)?,
                _ => wire::all_http_headers(variable(ecb, c"ALL_HTTP", buffer)?.unwrap_or(b""), &mut add)?,
            }
            scope.set_item(intern!(py, "headers"), headers)?;
            // Each address becomes a Python string before the next variable reuses the
            // buffer (no copy of it on the heap).
            let remote = PyString::new(py, &text(variable(ecb, c"REMOTE_ADDR", buffer)?.unwrap_or(b"")));
            let client = endpoint(py, remote, variable(ecb, c"REMOTE_PORT", buffer)?)?;
            scope.set_item(intern!(py, "client"), client)?;
            let local = match variable(ecb, c"LOCAL_ADDR", buffer)? {
                Some(addr) if !addr.is_empty() => PyString::new(py, &text(addr)),
                _ => PyString::new(py, &text(variable(ecb, c"SERVER_NAME", buffer)?.unwrap_or(b""))),
            };
            let port = variable(ecb, c"SERVER_PORT", buffer)?.unwrap_or(cgi::default_port(https));
            scope.set_item(intern!(py, "server"), endpoint(py, local, Some(port))?)?;
            Ok(())
        })?;
        if let Some(state) = state {
            scope.set_item(intern!(py, "state"), state.copy()?)?;
        }
        let extensions = PyDict::new(py);
        extensions.set_item(intern!(py, "isapi.ecb"), self.ecb.clone_ref(py))?;
        scope.set_item(intern!(py, "extensions"), extensions)?;
        Ok(scope)
    }

    /// The first http.request message's (body, more_body): what the server read ahead.
    fn first_body<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let f = self.ecb.get().fields()?;
        let available = if f.lpbData.is_null() {
            &[][..]
        } else {
            // SAFETY: the server guarantees cbAvailable readable bytes at lpbData.
            unsafe { std::slice::from_raw_parts(f.lpbData, f.cbAvailable as usize) }
        };
        let (data, remaining) = match f.cbTotalBytes {
            cgi::UNKNOWN_LENGTH => (available, None),
            total => {
                let data = &available[..available.len().min(total as usize)];
                (data, Some(u64::from(total) - data.len() as u64))
            }
        };
        lock(&self.core.io).remaining = remaining;
        Ok((PyBytes::new(py, data), remaining != Some(0)))
    }

    /// Queues the next read of the body; `future` gets `(body, more_body)`, or None if the
    /// client left. False (nothing queued) once the response is over or the client gone.
    fn read(&self, future: Py<PyAny>) -> bool {
        let io = lock(&self.core.io);
        if io.finished || io.disconnected {
            return false;
        }
        self.submit(io, vec![Op::Read(future)], false);
        true
    }

    /// http.response.start: checks the status and headers and keeps the head until the
    /// first body message.
    fn start(&self, status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let code = match status.extract::<i64>() {
            Ok(code) if status.cast::<pyo3::types::PyInt>().is_ok() => code,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "the status must be an int, not {}",
                    status.repr()?
                )))
            }
        };
        let Ok(code) = u16::try_from(code)
            .map_err(drop)
            .and_then(|c| match (100..=999).contains(&c) {
                true => Ok(c),
                false => Err(()),
            })
        else {
            return Err(PyValueError::new_err(format!(
                "the status {code} is not an HTTP status code (100-999)"
            )));
        };
        let mut head = HeadBuilder::new();
        for header in headers.try_iter()? {
            let header = header?;
            // A tuple or a list of two bytes objects, read in place (each header as a Vec
            // would be a heap allocation per header).
            let pair = match (header.cast::<PyTuple>(), header.cast::<PyList>()) {
                (Ok(t), _) if t.len() == 2 => Some((t.get_item(0)?, t.get_item(1)?)),
                (_, Ok(l)) if l.len() == 2 => Some((l.get_item(0)?, l.get_item(1)?)),
                _ => header
                    .try_iter()
                    .ok()
                    .and_then(|items| items.collect::<PyResult<Vec<_>>>().ok())
                    .filter(|items| items.len() == 2)
                    .map(|mut items| {
                        let value = items.pop().expect("two items");
                        (items.pop().expect("two items"), value)
                    }),
            };
            let parts = pair
                .as_ref()
                .and_then(|(name, value)| Some((header_bytes(name)?, header_bytes(value)?)));
            let Some((name, value)) = parts else {
                return Err(PyTypeError::new_err(format!(
                    "each header must be a [name, value] pair of bytes, not {}",
                    header.repr()?
                )));
            };
            match head.push(name, value) {
                Ok(()) => {}
                Err(BadHeader::LineBreak) => {
                    return Err(PyValueError::new_err(format!(
                        "a response header contains a line break: {}",
                        header.repr()?
                    )))
                }
                Err(BadHeader::Name) => {
                    return Err(PyValueError::new_err(format!(
                        "a response header has no valid name: {}",
                        header.repr()?
                    )))
                }
            }
        }
        let mut response = lock(&self.response);
        if response.head_sent || response.head.is_some() {
            return Err(PyRuntimeError::new_err("http.response.start was already sent"));
        }
        response.status = code;
        response.head = Some(head);
        Ok(())
    }

    /// http.response.body: sends the head with the first one, then the body; the last one
    /// (`more` false) ends the session. Returns 0 (sent or queued), 1 (queued beyond the
    /// buffer bound: wait with `when_drained`), -1 (the client is gone) or 2 (ignored: the
    /// response is already over).
    fn send(&self, body: &Bound<'_, PyAny>, more: bool) -> PyResult<i32> {
        let data: Vec<u8> = match body.cast::<PyBytes>() {
            Ok(bytes) => bytes.as_bytes().to_vec(),
            Err(_) => match body.extract::<Vec<u8>>() {
                Ok(bytes) if !body.is_instance_of::<PyString>() => bytes,
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "the body must be bytes, not {}",
                        body.get_type().name()?
                    )))
                }
            },
        };
        let mut response = lock(&self.response);
        if response.complete {
            return Ok(IGNORED);
        }
        let io = lock(&self.core.io);
        if io.disconnected {
            return Ok(GONE);
        }
        let mut ops = Vec::with_capacity(3);
        if !response.head_sent {
            let Some(mut head) = response.head.take() else {
                return Err(PyRuntimeError::new_err(
                    "http.response.body was sent before http.response.start",
                ));
            };
            let status = response.status;
            if !more
                && !head.has_length()
                && !wire::has_no_body(status, if self.method_is_head { b"HEAD" } else { b"" })
            {
                // The whole body is here: its length, rather than chunks.
                head.add_length(data.len());
            }
            let (strings, status_len) = head.finish(status);
            // SAFETY: the session is live until the Done queued below or later.
            unsafe { self.core.raw.set_status(status) };
            response.head_sent = true;
            ops.push(Op::Head(strings, status_len));
        }
        let first_write = !response.body_started;
        if !data.is_empty() {
            response.body_started = true;
            ops.push(Op::Write(data));
        }
        if !more {
            response.complete = true;
            self.retire_ecb();
            ops.push(Op::Done(HSE_STATUS_SUCCESS));
        }
        if ops.is_empty() {
            return Ok(SENT);
        }
        Ok(match self.submit(io, ops, first_write) {
            true => WAIT,
            false => SENT,
        })
    }

    /// Resolves `future` (with whether the client is still there) once the queued body has
    /// drained below the bound; True, and nothing stored, if it already has.
    fn when_drained(&self, future: Py<PyAny>) -> bool {
        let mut io = lock(&self.core.io);
        if io.disconnected || io.queued_bytes <= LOW_WATER {
            return true;
        }
        io.drain_waiter = Some(future);
        false
    }

    /// Resolves `future` when the client leaves; True, and nothing stored, if it has or the
    /// response is over (the spec's http.disconnect after the response).
    fn wait_disconnect(&self, future: Py<PyAny>) -> bool {
        let mut io = lock(&self.core.io);
        if io.disconnected || io.finished {
            return true;
        }
        io.disconnect_waiter = Some(future);
        false
    }

    /// Asks the server whether the client is still connected (HSE_REQ_IS_CONNECTED), when
    /// no I/O of the request is under way (that I/O would tell); a client found gone
    /// resolves the disconnect waiter.
    fn probe(&self) -> bool {
        let mut io = lock(&self.core.io);
        if io.disconnected {
            return false;
        }
        if io.finished || io.busy || !io.ops.is_empty() {
            return true;
        }
        io.busy = true;
        drop(io);
        // SAFETY: live session (not finished), and no other call of this request runs.
        let connected = unsafe { self.core.raw.is_connected() };
        lock(&self.core.io).busy = false;
        if !connected {
            self.core.lost(&self.shared);
        }
        connected
    }

    /// Ends a failed request: `page` as a 500 response if no head went to the server yet
    /// (True), else the session ends with HSE_STATUS_ERROR, which closes the connection
    /// (False).
    fn fail(&self, page: &Bound<'_, PyBytes>) -> bool {
        let mut response = lock(&self.response);
        if response.complete {
            return response.head_sent;
        }
        response.complete = true;
        self.retire_ecb();
        let io = lock(&self.core.io);
        if response.head_sent {
            drop(response);
            self.abort_with(io);
            return false;
        }
        let mut head = HeadBuilder::new();
        let _ = head.push(b"content-type", b"text/html");
        head.add_length(page.as_bytes().len());
        let (strings, status_len) = head.finish(500);
        // SAFETY: live session: Done is queued below.
        unsafe { self.core.raw.set_status(500) };
        response.head_sent = true;
        let first_write = !response.body_started;
        drop(response);
        let ops = vec![
            Op::Head(strings, status_len),
            Op::Write(page.as_bytes().to_vec()),
            Op::Done(HSE_STATUS_SUCCESS),
        ];
        self.submit(io, ops, first_write);
        true
    }

    /// Ends the request with HSE_STATUS_ERROR (the server closes the connection); what was
    /// queued and not yet written is dropped.
    fn abort(&self) {
        let mut response = lock(&self.response);
        if response.complete {
            return;
        }
        response.complete = true;
        self.retire_ecb();
        drop(response);
        let io = lock(&self.core.io);
        self.abort_with(io);
    }

    /// Whether the head went to the server: after that, a failure can only close the
    /// connection.
    #[getter]
    fn head_sent(&self) -> bool {
        lock(&self.response).head_sent
    }

    /// Whether the response is over (complete, failed or aborted).
    #[getter]
    fn complete(&self) -> bool {
        lock(&self.response).complete
    }

    /// Whether the client is known to have left.
    #[getter]
    fn disconnected(&self) -> bool {
        lock(&self.core.io).disconnected
    }
}

impl Drop for AsgiRequest {
    /// A request the Python side let go of without ending it (a bug there) would keep IIS
    /// waiting for DoneWithSession: it ends with HSE_STATUS_ERROR, and the log says so.
    fn drop(&mut self) {
        let io = lock(&self.core.io);
        if io.finished {
            return;
        }
        crate::served::log("isapi.asgi: a request was dropped before its end: closing its connection");
        self.retire_ecb();
        self.abort_with(io);
    }
}

impl AsgiRequest {
    fn abort_with(&self, mut io: MutexGuard<'_, Io>) {
        if io.finished {
            return;
        }
        let mut dropped = 0;
        io.ops.retain(|op| match op {
            Op::Write(data) => {
                dropped += data.len();
                false
            }
            Op::Head(..) => false,
            Op::Read(_) | Op::Done(_) => true,
        });
        io.queued_bytes -= dropped;
        self.submit(io, vec![Op::Done(HSE_STATUS_ERROR)], false);
    }
}

/// The server of one ASGI extension: its mailbox, its I/O threads and the count of
/// requests in flight.
#[pyclass(module = "_isapi_freeze", name = "AsgiServer", frozen)]
pub struct AsgiServer {
    shared: Arc<Shared>,
}

#[pymethods]
impl AsgiServer {
    #[new]
    fn new() -> Self {
        let shared = Shared {
            app: crate::apps::current_index(),
            ..Shared::default()
        };
        shared.accepting.store(true, Ordering::SeqCst);
        AsgiServer {
            shared: Arc::new(shared),
        }
    }

    /// Wakes the loop with a completion packet for `overlapped` on the completion port
    /// `port` when the mailbox gets its first event.
    fn wake_by_port(&self, port: usize, overlapped: usize) {
        *self.shared.wake.write().unwrap_or_else(|e| e.into_inner()) = Some(Wake::Port { port, overlapped });
    }

    /// Wakes the loop with a byte on the socket `handle` (its other end is what the loop
    /// reads) when the mailbox gets its first event.
    fn wake_by_socket(&self, handle: u64) {
        *self.shared.wake.write().unwrap_or_else(|e| e.into_inner()) = Some(Wake::Socket(handle));
    }

    /// Lets IIS's threads run requests on the loop while it is parked: `runner(request)`
    /// is called with the loop borrowed and answers whether the loop must run afterwards.
    fn serve_inline(&self, runner: Py<PyAny>) {
        *self.shared.inline.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(runner));
    }

    /// The loop's thread has nothing to do: waits (without the GIL) until an event comes,
    /// `unpark` is called or `timeout` seconds pass (None: no limit), and no borrower runs.
    #[pyo3(signature = (timeout))]
    fn park(&self, py: Python<'_>, timeout: Option<f64>) {
        py.detach(|| self.shared.park(timeout));
    }

    /// Work was scheduled on the loop from another thread: a parked loop runs.
    fn unpark(&self, py: Python<'_>) {
        py.detach(|| self.shared.unpark());
    }

    /// Takes the extension's requests straight from HttpExtensionProc, without calling the
    /// script (and without the GIL).
    fn serve_natively(&self) {
        DISPATCH
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(crate::apps::current_index(), self.shared.clone());
    }

    /// Takes a request the script's HttpExtensionProc passes on; returns the HSE_STATUS_*
    /// to return (PENDING, or SUCCESS after a 503 while shutting down).
    fn hand(&self, ecb: Py<ExtensionControlBlock>) -> u32 {
        self.shared.accept(Incoming::Handed(ecb))
    }

    /// Every event since the last call: an `AsgiRequest` for each new request, a
    /// `(future, value)` pair for each I/O result.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // The loop's thread is the app's: what its code logs goes to the app's log.
        crate::apps::adopt(self.shared.app);
        let events = {
            let mut mailbox = lock(&self.shared.mailbox);
            mailbox.wake_pending = false;
            std::mem::take(&mut mailbox.events)
        };
        let out = PyList::empty(py);
        for event in events {
            match event {
                Event::Request(Incoming::Accepted(raw)) => {
                    let ecb = Py::new(py, ExtensionControlBlock::new(raw.0))?;
                    out.append(Py::new(py, AsgiRequest::new(ecb, raw, self.shared.clone())?)?)?;
                }
                Event::Request(Incoming::Handed(ecb)) => {
                    let raw = RawEcb(ecb.get().fields()? as *const _ as *mut _);
                    out.append(Py::new(py, AsgiRequest::new(ecb, raw, self.shared.clone())?)?)?;
                }
                Event::Resolve(future, outcome) => out.append((future, outcome.into_py(py)?))?,
            }
        }
        Ok(out)
    }

    /// From now on requests are answered 503 without the application.
    fn stop_accepting(&self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
    }

    /// Requests taken and not yet ended.
    #[getter]
    fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves `future` when no request is in flight; True, and nothing stored, if none is.
    fn when_idle(&self, future: Py<PyAny>) -> bool {
        let mut waiter = lock(&self.shared.idle_waiter);
        if self.shared.in_flight.load(Ordering::SeqCst) == 0 {
            return true;
        }
        *waiter = Some(future);
        false
    }

    /// Closes the server: HttpExtensionProc no longer reaches it, requests never drained
    /// get a 503, the loop is no longer woken (Python may close the port or socket), and the I/O
    /// threads finish what is queued and stop. Waits at most `timeout` seconds for them;
    /// returns how many are still running (blocked on a client).
    fn close(&self, py: Python<'_>, timeout: f64) -> usize {
        {
            let mut dispatch = DISPATCH.write().unwrap_or_else(|e| e.into_inner());
            dispatch.retain(|_, d| !Arc::ptr_eq(d, &self.shared));
        }
        self.shared.accepting.store(false, Ordering::SeqCst);
        let runner = self.shared.inline.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(runner);
        let events = {
            let mut mailbox = lock(&self.shared.mailbox);
            mailbox.closed = true;
            self.shared.turn_changed.notify_all();
            std::mem::take(&mut mailbox.events)
        };
        *self.shared.wake.write().unwrap_or_else(|e| e.into_inner()) = None;
        for event in events {
            if let Event::Request(incoming) = event {
                let raw = match &incoming {
                    Incoming::Accepted(raw) => Some(*raw),
                    Incoming::Handed(ecb) => ecb.get().fields().ok().map(|b| RawEcb(b as *const _ as *mut _)),
                };
                if let Incoming::Handed(ecb) = &incoming {
                    ecb.get().invalidate();
                }
                if let Some(raw) = raw {
                    // SAFETY: a pending request that never reached the application: its
                    // block is live until this DoneWithSession.
                    unsafe {
                        raw.refuse();
                        raw.done(HSE_STATUS_SUCCESS);
                    }
                }
                self.shared.finished_one();
            }
        }
        let shared = self.shared.clone();
        py.detach(move || {
            let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
            let mut pool = lock(&shared.pool);
            pool.stopping = true;
            shared.work.notify_all();
            while pool.threads > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pool = shared
                    .exited
                    .wait_timeout(pool, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            pool.threads
        })
    }
}
