//! Accepting connections and running each on its own thread: read a request head, answer
//! what IIS answers itself (400, 431, 404 outside the application), hand the rest to the
//! extension through ecb.rs, log one line, and keep the connection while HTTP allows.
//! Shutdown stops accepting, closes idle connections and waits for busy ones.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ecb::{self, Request};
use crate::extension::Extension;
use crate::filter::{self, Filters, Flow, Incoming, LogRecord, Outgoing};
use crate::http::{self, Body, Framing, HeadError, Version};
use crate::variables::{strip_vpath, RequestInfo};

/// At most this many connections are served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// IIS's default connectionTimeout: an idle or stalled client is dropped after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Unread request body the host reads and drops to reuse a connection; more closes it.
const DISCARD_LIMIT: u64 = 1024 * 1024;

/// One application: an extension served at a virtual path, from its DLL's folder.
pub struct App {
    pub vpath: String,
    pub physical_root: String,
    /// The loaded extension, or why it did not start (an `--app` that answers 500).
    pub extension: Result<Extension, String>,
    /// Set by `unload /VPATH`: the extension was terminated and freed; requests get 503.
    pub unloaded: AtomicBool,
}

pub struct Server {
    /// Empty when only filters are loaded: requests they do not answer get 404.
    apps: Vec<App>,
    filters: Arc<Filters>,
    /// The site's root application, as filters see it.
    vpath: String,
    physical_root: String,
    shutting_down: AtomicBool,
    connections: Mutex<Connections>,
    changed: Condvar,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Each open connection: a handle to close it with, and whether a request is in flight.
    open: HashMap<u64, (TcpStream, Arc<AtomicBool>)>,
}

impl Server {
    pub fn new(apps: Vec<App>, filters: Arc<Filters>, vpath: String, physical_root: String) -> Server {
        Server {
            apps,
            filters,
            vpath,
            physical_root,
            shutting_down: AtomicBool::new(false),
            connections: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    /// Every loaded extension (not unloaded), in the order of the command line.
    pub fn extensions(&self) -> impl Iterator<Item = &Extension> {
        self.apps
            .iter()
            .filter(|app| !app.unloaded.load(Ordering::SeqCst))
            .filter_map(|app| app.extension.as_ref().ok())
    }

    /// Unloads the extension of the application at `vpath` as IIS does when it removes an
    /// application from a worker that keeps serving the others: TerminateExtension
    /// (HSE_TERM_MUST_UNLOAD), then FreeLibrary. Its requests then get 503. It does not
    /// wait for the application's requests in flight: the caller sends none meanwhile.
    pub fn unload(&self, vpath: &str, flags: u32) -> Result<(), String> {
        let wanted = vpath.trim_end_matches('/');
        let app = self
            .apps
            .iter()
            .find(|app| app.vpath == wanted)
            .ok_or_else(|| format!("no application at {vpath}"))?;
        let extension = app
            .extension
            .as_ref()
            .map_err(|_| "its extension did not start".to_string())?;
        if app.unloaded.swap(true, Ordering::SeqCst) {
            return Err("it is unloaded already".into());
        }
        extension.terminate(flags);
        // SAFETY: `unloaded` is set, so no new request enters the extension, and the
        // caller sends none to it meanwhile.
        unsafe { extension.free() };
        Ok(())
    }

    /// The application that serves `path`: the one with the longest virtual path holding it.
    fn app_for(&self, path: &str) -> Option<&App> {
        self.apps
            .iter()
            .filter(|app| strip_vpath(&app.vpath, path).is_some())
            .max_by_key(|app| app.vpath.len())
    }

    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.connections().open.len()
    }

    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts until [`Server::shutdown`] is called; returns the connection threads still
    /// running, for the caller to join once they are done.
    pub fn serve(self: &Arc<Self>, listener: TcpListener) -> Vec<std::thread::JoinHandle<()>> {
        let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
        loop {
            threads.retain(|t| !t.is_finished());
            {
                let mut connections = self.connections();
                while connections.open.len() >= MAX_CONNECTIONS && !self.shutting_down.load(Ordering::SeqCst) {
                    connections = self.changed.wait(connections).unwrap_or_else(|e| e.into_inner());
                }
            }
            if self.shutting_down.load(Ordering::SeqCst) {
                return threads;
            }
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("isapi-host: accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if self.shutting_down.load(Ordering::SeqCst) {
                return threads;
            }
            let Ok(handle) = stream.try_clone() else {
                continue;
            };
            let busy = Arc::new(AtomicBool::new(false));
            let id = {
                let mut connections = self.connections();
                connections.next_id += 1;
                let id = connections.next_id;
                connections.open.insert(id, (handle, busy.clone()));
                id
            };
            let server = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("connection-{id}"))
                .spawn(move || {
                    server.connection(stream, &busy);
                    server.connections().open.remove(&id);
                    server.changed.notify_all();
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    eprintln!("isapi-host: cannot start a connection thread: {e}");
                    self.connections().open.remove(&id);
                }
            }
        }
    }

    /// Stops accepting (waking the accept loop with a connection of its own) and closes
    /// every connection that is waiting for its next request.
    pub fn shutdown(&self, listening: SocketAddr) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.changed.notify_all();
        let mut wake = listening;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(5));
        for (stream, busy) in self.connections().open.values() {
            if !busy.load(Ordering::SeqCst) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Waits up to `timeout` for the connections still serving a request; true if all ended.
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut connections = self.connections();
        while !connections.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            connections = self
                .changed
                .wait_timeout(connections, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn connection(&self, stream: TcpStream, busy: &AtomicBool) {
        let _ = stream.set_read_timeout(Some(CONNECTION_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let (Ok(remote), Ok(local), Ok(reader)) = (stream.peer_addr(), stream.local_addr(), stream.try_clone()) else {
            return;
        };
        let filters = filter::Connection::open(&self.filters, &stream, remote, local, &self.vpath, &self.physical_root);
        let mut reader = BufReader::with_capacity(16 * 1024, Incoming::new(reader, filters.clone()));
        loop {
            busy.store(false, Ordering::SeqCst);
            if self.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            // Wait for the first byte of the next request while counted as idle.
            match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(_) => busy.store(true, Ordering::SeqCst),
            }
            match self.request(&stream, reader, remote, local, filters.as_ref()) {
                Some(next) => reader = next,
                None => break,
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        if let Some(filters) = filters {
            filters.end_of_net_session();
        }
    }

    /// Serves one request; gives the reader back if the connection can carry another.
    fn request(
        &self,
        stream: &TcpStream,
        mut reader: ecb::Connection,
        remote: SocketAddr,
        local: SocketAddr,
        filters: Option<&Arc<filter::Connection>>,
    ) -> Option<ecb::Connection> {
        let plain = http::Exchange {
            version: Version::Http11,
            client_keep_alive: false,
            head_request: false,
        };
        let mut head = match http::read_head(&mut reader) {
            Ok(head) => head,
            Err(HeadError::Closed) => return None,
            Err(HeadError::Io(e)) => {
                eprintln!("isapi-host: reading a request from {remote}: {e}");
                return None;
            }
            Err(HeadError::Malformed(why)) => {
                if let Some(mut out) = Outgoing::plain(stream) {
                    respond(&mut out, 400, &format!("400 Bad Request: {why}\n"), plain);
                }
                eprintln!("isapi-host: - - 400 ({why})");
                linger(stream);
                return None;
            }
            Err(HeadError::TooLarge) => {
                if let Some(mut out) = Outgoing::plain(stream) {
                    respond(&mut out, 431, "431 Request Header Fields Too Large\n", plain);
                }
                eprintln!("isapi-host: - - 431");
                linger(stream);
                return None;
            }
        };
        let started = Instant::now();
        let flow = filters.map_or(Flow::Continue, |f| f.request_head(&mut head));
        let exchange = http::Exchange {
            version: head.version,
            client_keep_alive: head.client_keep_alive() && !self.shutting_down.load(Ordering::SeqCst),
            head_request: head.method == "HEAD",
        };
        let target = head.target.clone();
        let mut body = Body::new(reader, head.framing);
        let outgoing = || stream.try_clone().ok().map(|s| Outgoing::new(s, filters.cloned()));
        // What the log line says, before the LOG notification may change it.
        let (method, query) = (head.method.clone(), head.query.clone());
        let record = |status: u16, bytes: u64| LogRecord {
            client: remote.ip().to_string(),
            server: local.ip().to_string(),
            operation: method.clone(),
            target: target.split_once('?').map_or(target.as_str(), |(p, _)| p).to_string(),
            parameters: query.clone(),
            status: status.into(),
            bytes_sent: bytes.try_into().unwrap_or(u32::MAX),
            milliseconds: started.elapsed().as_millis().try_into().unwrap_or(u32::MAX),
            ..LogRecord::default()
        };

        match flow {
            Flow::Continue | Flow::ReadNext => {}
            Flow::Finished { keep } => {
                // A filter answered the request itself (WriteClient, SendResponseHeader).
                let sent = filters.map(|f| f.filter_response()).unwrap_or_default();
                self.log(filters, record(sent.status.unwrap_or(200), sent.bytes), "");
                return (keep && exchange.client_keep_alive && body.discard(DISCARD_LIMIT)).then(|| body.into_inner());
            }
            Flow::Denied => {
                // A filter reset the authentication: challenge the client, as IIS does
                // when Basic authentication fails.
                let challenge = [("WWW-Authenticate".to_string(), "Basic realm=\"isapi-host\"".to_string())];
                let text = "401 Unauthorized: a filter reset the authentication\n";
                let keep = outgoing().is_some_and(|mut out| respond_with(&mut out, 401, &challenge, text, exchange));
                self.log(filters, record(401, 0), " (authentication reset by a filter)");
                return (keep && body.discard(DISCARD_LIMIT)).then(|| body.into_inner());
            }
            Flow::Error => {
                let sent = filters.map(|f| f.filter_response()).unwrap_or_default();
                if sent.bytes == 0 {
                    if let Some(mut out) = outgoing() {
                        respond(
                            &mut out,
                            500,
                            "500 Internal Server Error: an ISAPI filter failed\n",
                            exchange,
                        );
                    }
                }
                self.log(filters, record(500, 0), "");
                linger(stream);
                return None;
            }
        }

        if let Some(rejection) = crate::request_filtering::check(&head) {
            // IIS refuses these before any ISAPI code runs; a body too large to read and
            // drop ends the connection.
            let exchange = http::Exchange {
                client_keep_alive: exchange.client_keep_alive && rejection.status != 413,
                ..exchange
            };
            let keep =
                outgoing().is_some_and(|mut out| respond(&mut out, rejection.status, &rejection.text(), exchange));
            let why = format!(
                " (request filtering: {}.{} {})",
                rejection.status, rejection.substatus, rejection.reason
            );
            self.log(filters, record(rejection.status, 0), &why);
            if keep && body.discard(DISCARD_LIMIT) {
                return Some(body.into_inner());
            }
            linger(stream);
            return None;
        }
        let Some(app) = self.app_for(&head.path) else {
            let keep = outgoing().is_some_and(|mut out| respond(&mut out, 404, "404 Not Found\n", exchange));
            let why = match self.apps.as_slice() {
                [] => " (no extension)".to_string(),
                [app] => format!(" (outside {})", app.vpath),
                _ => " (outside every application)".to_string(),
            };
            self.log(filters, record(404, 0), &why);
            return (keep && body.discard(DISCARD_LIMIT)).then(|| body.into_inner());
        };
        if app.unloaded.load(Ordering::SeqCst) {
            let text = "503 Service Unavailable: the application was unloaded\n";
            let keep = outgoing().is_some_and(|mut out| respond(&mut out, 503, text, exchange));
            self.log(filters, record(503, 0), " (unloaded)");
            return (keep && body.discard(DISCARD_LIMIT)).then(|| body.into_inner());
        }
        let Ok(extension) = &app.extension else {
            // IIS answers 500 for an application whose extension did not start.
            let text = "500 Internal Server Error: the application's ISAPI extension did not start\n";
            let keep = outgoing().is_some_and(|mut out| respond(&mut out, 500, text, exchange));
            self.log(filters, record(500, 0), " (extension not started)");
            return (keep && body.discard(DISCARD_LIMIT)).then(|| body.into_inner());
        };
        if head.expects_continue() && !body.is_done() {
            let mut writer = stream;
            if writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                return None;
            }
        }
        let writer = outgoing()?;
        let total_bytes = match head.framing {
            Framing::None => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        };
        let credentials = filter::basic_credentials(&head);
        let mut info = RequestInfo {
            credentials,
            ..RequestInfo::new(head, remote, local, &app.vpath, &app.physical_root)
        };
        if let Some(filters) = filters {
            filters.complete_info(&mut info);
        }
        let outcome = ecb::run(
            extension,
            Request {
                info,
                exchange,
                body,
                total_bytes,
                writer,
                socket: stream.try_clone().ok(),
            },
        );
        let log = if outcome.log_data.is_empty() {
            String::new()
        } else {
            format!(" {}", outcome.log_data)
        };
        self.log(filters, record(outcome.status, outcome.body_bytes), &log);
        if !outcome.keep_alive {
            return None;
        }
        let mut body = outcome.connection?;
        body.discard(DISCARD_LIMIT).then(|| body.into_inner())
    }
}

impl Server {
    /// END_OF_REQUEST and LOG for the filters, then the request's log line.
    fn log(&self, filters: Option<&Arc<filter::Connection>>, record: LogRecord, extra: &str) {
        let record = match filters {
            Some(filters) => filters.end_of_request(record),
            None => record,
        };
        eprintln!("isapi-host: {}{extra}", record.line());
    }
}

/// Sends a response the host makes itself; true if the connection may stay open.
fn respond(writer: &mut Outgoing, status: u16, text: &str, exchange: http::Exchange) -> bool {
    respond_with(writer, status, &[], text, exchange)
}

/// [`respond`] with header fields of its own.
fn respond_with(
    writer: &mut Outgoing,
    status: u16,
    fields: &[(String, String)],
    text: &str,
    exchange: http::Exchange,
) -> bool {
    let keep = exchange.client_keep_alive;
    let (mut head, body) = http::simple_response(status, fields, text, exchange, keep);
    writer.prepare_head(&mut head);
    let sent = writer.write_all(&head.bytes).and_then(|()| writer.write_all(&body));
    sent.is_ok() && head.keep_alive
}

/// Closes after an error answer without losing it: closing a socket with unread input makes
/// TCP send a reset, which can overtake the answer, so stop sending, then read and drop
/// what the client still sends for a short while.
fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 16 * 1024];
    let mut reader = stream;
    while Instant::now() < deadline {
        match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
}
