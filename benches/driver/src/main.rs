//! isapi-bench-driver: the in-process benchmark driver. It loads an ISAPI extension DLL as
//! IIS does (`LoadLibraryExW` by full path, GetExtensionVersion), then calls
//! HttpExtensionProc with real-layout EXTENSION_CONTROL_BLOCKs whose four callbacks it
//! implements itself (server variables from a fixed table, an empty request body, responses
//! collected in memory), from C client threads in a closed loop for S seconds. A request that returns
//! HSE_STATUS_PENDING is finished when HSE_REQ_DONE_WITH_SESSION arrives, from any thread.
//!
//! Usage: `isapi-bench-driver DLL [--path /P] [--seconds S] [--clients C] [--warmup W]`
//! prints one JSON object: the cold start (LoadLibrary to the first complete response, and
//! its LoadLibrary and GetExtensionVersion parts),
//! the first response as sent, and for the timed requests their rate and latency
//! percentiles. Without Windows it only says so.

#[cfg(not(windows))]
fn main() {
    eprintln!("isapi-bench-driver: runs on Windows only (build it for x86_64-pc-windows-gnu and run it under Wine)");
    std::process::exit(1);
}

#[cfg(windows)]
fn main() {
    windows_main::main()
}

#[cfg(windows)]
mod windows_main {
    use std::ffi::{c_void, CStr, CString};
    use std::io::Write;
    use std::os::windows::ffi::OsStrExt;
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    use windows_sys::core::{BOOL, PCSTR};
    use windows_sys::Win32::Foundation::HANDLE;
    use windows_sys::Win32::Foundation::{
        SetLastError, ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_INDEX, ERROR_INVALID_PARAMETER, FALSE, TRUE,
    };
    use windows_sys::Win32::Security::{
        DuplicateTokenEx, SecurityImpersonation, TokenImpersonation, TOKEN_ALL_ACCESS, TOKEN_DUPLICATE, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Iis::{
        EXTENSION_CONTROL_BLOCK, HCONN, HSE_IO_ASYNC, HSE_REQ_DONE_WITH_SESSION, HSE_REQ_GET_IMPERSONATION_TOKEN,
        HSE_REQ_IO_COMPLETION, HSE_REQ_IS_KEEP_CONN, HSE_REQ_SEND_RESPONSE_HEADER, HSE_REQ_SEND_RESPONSE_HEADER_EX,
        HSE_REQ_SET_FLUSH_FLAG, HSE_SEND_HEADER_EX_INFO, HSE_STATUS_PENDING, HSE_TERM_MUST_UNLOAD, HSE_VERSION_INFO,
    };
    use windows_sys::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryExW};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    type GetExtensionVersion = unsafe extern "system" fn(*mut HSE_VERSION_INFO) -> BOOL;
    type HttpExtensionProc = unsafe extern "system" fn(*mut EXTENSION_CONTROL_BLOCK) -> u32;
    type TerminateExtension = unsafe extern "system" fn(u32) -> BOOL;
    type IoCompletion = unsafe extern "system" fn(*mut EXTENSION_CONTROL_BLOCK, *mut c_void, u32, u32);

    struct Options {
        dll: String,
        path: String,
        seconds: f64,
        clients: usize,
        warmup: usize,
    }

    fn usage(message: &str) -> ! {
        eprintln!(
            "isapi-bench-driver: {message}\nUsage: isapi-bench-driver DLL [--path /P] [--seconds S] [--clients C] [--warmup W]"
        );
        std::process::exit(1)
    }

    fn parse() -> Options {
        let mut options = Options {
            dll: String::new(),
            path: "/".into(),
            seconds: 0.0,
            clients: 1,
            warmup: 0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
            let number = |text: String| {
                text.parse::<usize>()
                    .unwrap_or_else(|_| usage(&format!("{text:?} is not a number")))
            };
            match arg.as_str() {
                "--path" => options.path = value(),
                "--seconds" => {
                    let text = value();
                    options.seconds = text
                        .parse()
                        .unwrap_or_else(|_| usage(&format!("{text:?} is not a number")));
                }
                "--clients" => options.clients = number(value()).max(1),
                "--warmup" => options.warmup = number(value()),
                _ if arg.starts_with('-') => usage(&format!("unknown option {arg}")),
                _ => options.dll = arg,
            }
        }
        if options.dll.is_empty() {
            usage("missing DLL");
        }
        options
    }

    /// One request: the control block first, so that its address is the request's.
    #[repr(C)]
    struct Request {
        ecb: EXTENSION_CONTROL_BLOCK,
        path: String,
        query: String,
        _strings: Vec<CString>,
        response: Mutex<Response>,
        done: Mutex<bool>,
        finished: Condvar,
        completion: Mutex<Option<(IoCompletion, usize)>>,
    }

    #[derive(Default)]
    struct Response {
        head: Vec<u8>,
        body: Vec<u8>,
    }

    impl Request {
        fn new(target: &str) -> Box<Request> {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let strings: Vec<CString> = ["GET", query, path, "C:\\inetpub\\wwwroot", ""]
                .iter()
                .map(|s| CString::new(*s).unwrap())
                .collect();
            let ecb = EXTENSION_CONTROL_BLOCK {
                cbSize: std::mem::size_of::<EXTENSION_CONTROL_BLOCK>() as u32,
                dwVersion: 8 << 16,
                ConnID: std::ptr::null_mut(),
                dwHttpStatusCode: 200,
                lpszLogData: [0; 80],
                lpszMethod: strings[0].as_ptr() as *mut u8,
                lpszQueryString: strings[1].as_ptr() as *mut u8,
                lpszPathInfo: strings[2].as_ptr() as *mut u8,
                lpszPathTranslated: strings[3].as_ptr() as *mut u8,
                cbTotalBytes: 0,
                cbAvailable: 0,
                lpbData: std::ptr::null_mut(),
                lpszContentType: strings[4].as_ptr() as *mut u8,
                GetServerVariable: Some(get_server_variable),
                WriteClient: Some(write_client),
                ReadClient: Some(read_client),
                ServerSupportFunction: Some(server_support_function),
            };
            let mut request = Box::new(Request {
                ecb,
                path: path.into(),
                query: query.into(),
                _strings: strings,
                response: Mutex::new(Response::default()),
                done: Mutex::new(false),
                finished: Condvar::new(),
                completion: Mutex::new(None),
            });
            request.ecb.ConnID = (&*request as *const Request) as HCONN;
            request
        }

        /// Calls the extension and waits for the request to finish.
        fn run(&mut self, extension: HttpExtensionProc) {
            // SAFETY: the control block and everything it points to live as long as `self`,
            // which outlives the call and, for HSE_STATUS_PENDING, the DONE_WITH_SESSION wait.
            let status = unsafe { extension(&mut self.ecb) };
            if status == HSE_STATUS_PENDING {
                let mut done = self.done.lock().unwrap();
                while !*done {
                    done = self.finished.wait(done).unwrap();
                }
            }
        }

        /// Makes a finished request ready to run again: the driver reuses one per client
        /// thread, so that its own allocations do not contend with the extension's for the
        /// process heap.
        fn reset(&mut self) {
            self.ecb.dwHttpStatusCode = 200;
            self.ecb.lpszLogData = [0; 80];
            let response = self.response.get_mut().unwrap();
            response.head.clear();
            response.body.clear();
            *self.done.get_mut().unwrap() = false;
            *self.completion.get_mut().unwrap() = None;
        }

        /// A server variable's value, without the NUL: no allocation per call.
        fn variable(&self, name: &[u8]) -> Option<&[u8]> {
            Some(match name {
                b"REQUEST_METHOD" => b"GET",
                b"PATH_INFO" | b"URL" => self.path.as_bytes(),
                b"SCRIPT_NAME" => b"",
                b"APPL_MD_PATH" => b"/LM/W3SVC/1/ROOT",
                b"QUERY_STRING" => self.query.as_bytes(),
                b"SERVER_NAME" | b"REMOTE_ADDR" | b"LOCAL_ADDR" | b"REMOTE_HOST" => b"127.0.0.1",
                b"SERVER_PORT" => b"80",
                b"REMOTE_PORT" => b"50000",
                b"SERVER_PROTOCOL" => b"HTTP/1.1",
                b"SERVER_SOFTWARE" => b"isapi-bench-driver",
                b"SERVER_PORT_SECURE" => b"0",
                b"HTTPS" => b"off",
                b"CONTENT_LENGTH" => b"0",
                b"CONTENT_TYPE" | b"AUTH_TYPE" | b"REMOTE_USER" | b"LOGON_USER" => b"",
                b"HTTP_HOST" => b"127.0.0.1",
                b"ALL_HTTP" => b"HTTP_HOST:127.0.0.1\n",
                b"ALL_RAW" => b"Host: 127.0.0.1\r\n",
                _ => return None,
            })
        }

        fn finish(&self) {
            *self.done.lock().unwrap() = true;
            self.finished.notify_all();
        }
    }

    /// The request behind a ConnID.
    ///
    /// # Safety
    /// `conn` must be the ConnID of a Request still running, as the extension passes it.
    unsafe fn request<'a>(conn: HCONN) -> &'a Request {
        // SAFETY: ConnID is the address of the boxed Request (set in Request::new).
        unsafe { &*(conn as *const Request) }
    }

    unsafe extern "system" fn get_server_variable(
        conn: HCONN,
        name: PCSTR,
        buffer: *mut c_void,
        size: *mut u32,
    ) -> BOOL {
        // SAFETY: the extension passes its ConnID, a NUL-terminated name and a buffer of *size bytes.
        unsafe {
            let request = request(conn);
            let name = CStr::from_ptr(name.cast()).to_bytes();
            // UNICODE_X is X as UTF-16 (the values here are ASCII); both end in a NUL.
            let (plain, wide) = match name.strip_prefix(b"UNICODE_") {
                Some(plain) => (plain, true),
                None => (name, false),
            };
            let Some(value) = request.variable(plain) else {
                SetLastError(ERROR_INVALID_INDEX);
                return FALSE;
            };
            let unit = if wide { 2 } else { 1 };
            let needed = (value.len() + 1) * unit;
            let room = *size as usize;
            *size = needed as u32;
            if needed > room || buffer.is_null() {
                SetLastError(ERROR_INSUFFICIENT_BUFFER);
                return FALSE;
            }
            let out = std::slice::from_raw_parts_mut(buffer as *mut u8, needed);
            for (i, &byte) in value.iter().chain(&[0]).enumerate() {
                out[i * unit] = byte;
                if wide {
                    out[i * unit + 1] = 0;
                }
            }
            TRUE
        }
    }

    unsafe extern "system" fn read_client(_conn: HCONN, _buffer: *mut c_void, size: *mut u32) -> BOOL {
        // SAFETY: `size` is the extension's in/out byte count; the request has no body.
        unsafe { *size = 0 };
        TRUE
    }

    unsafe extern "system" fn write_client(conn: HCONN, buffer: *mut c_void, size: *mut u32, flags: u32) -> BOOL {
        // SAFETY: the extension passes its ConnID and `*size` readable bytes at `buffer`.
        unsafe {
            let request = request(conn);
            let data = std::slice::from_raw_parts(buffer as *const u8, *size as usize);
            request.response.lock().unwrap().body.extend_from_slice(data);
            if flags & HSE_IO_ASYNC != 0 {
                if let Some((callback, context)) = *request.completion.lock().unwrap() {
                    let ecb = &request.ecb as *const EXTENSION_CONTROL_BLOCK as *mut EXTENSION_CONTROL_BLOCK;
                    callback(ecb, context as *mut c_void, *size, 0);
                }
            }
        }
        TRUE
    }

    unsafe extern "system" fn server_support_function(
        conn: HCONN,
        code: u32,
        buffer: *mut c_void,
        size: *mut u32,
        data_type: *mut u32,
    ) -> BOOL {
        // SAFETY: the arguments are what httpext.h documents for each request handled here.
        unsafe {
            let request = request(conn);
            let text = |p: *const u8| {
                if p.is_null() {
                    Vec::new()
                } else {
                    CStr::from_ptr(p.cast()).to_bytes().to_vec()
                }
            };
            match code {
                HSE_REQ_SEND_RESPONSE_HEADER => {
                    let mut head = b"HTTP/1.1 ".to_vec();
                    let status = text(buffer as *const u8);
                    head.extend_from_slice(if status.is_empty() { b"200 OK" } else { &status });
                    head.extend_from_slice(b"\r\n");
                    head.extend_from_slice(&text(data_type as *const u8));
                    request.response.lock().unwrap().head = head;
                }
                HSE_REQ_SEND_RESPONSE_HEADER_EX => {
                    let info = &*(buffer as *const HSE_SEND_HEADER_EX_INFO);
                    let mut head = b"HTTP/1.1 ".to_vec();
                    head.extend_from_slice(&text(info.pszStatus));
                    head.extend_from_slice(b"\r\n");
                    head.extend_from_slice(&text(info.pszHeader));
                    request.response.lock().unwrap().head = head;
                }
                HSE_REQ_DONE_WITH_SESSION => request.finish(),
                HSE_REQ_IO_COMPLETION => {
                    let callback: Option<IoCompletion> = std::mem::transmute(buffer);
                    *request.completion.lock().unwrap() = callback.map(|c| (c, data_type as usize));
                }
                HSE_REQ_IS_KEEP_CONN => *(buffer as *mut BOOL) = TRUE,
                HSE_REQ_GET_IMPERSONATION_TOKEN => *(buffer as *mut HANDLE) = impersonation_token(),
                HSE_REQ_SET_FLUSH_FLAG => {}
                _ => {
                    let _ = size;
                    SetLastError(ERROR_INVALID_PARAMETER);
                    return FALSE;
                }
            }
        }
        TRUE
    }

    /// HSE_REQ_GET_IMPERSONATION_TOKEN's answer (pywin32's ThreadPoolExtension impersonates
    /// it on its worker): an impersonation copy of the process token, one for the process,
    /// owned by the "server" as in IIS.
    fn impersonation_token() -> HANDLE {
        static TOKEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *TOKEN.get_or_init(|| {
            let mut process: HANDLE = std::ptr::null_mut();
            let mut token: HANDLE = std::ptr::null_mut();
            // SAFETY: a pseudo handle of this process and local out pointers; the process
            // token handle stays open for the life of the process (one handle).
            unsafe {
                OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY, &mut process);
                DuplicateTokenEx(
                    process,
                    TOKEN_ALL_ACCESS,
                    std::ptr::null(),
                    SecurityImpersonation,
                    TokenImpersonation,
                    &mut token,
                );
            }
            token as usize
        }) as HANDLE
    }

    fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
        sorted[index].as_secs_f64() * 1e6
    }

    fn json_string(bytes: &[u8]) -> String {
        let mut out = String::from("\"");
        for c in String::from_utf8_lossy(bytes).chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    pub fn main() {
        let options = parse();
        let wide: Vec<u16> = std::path::Path::new(&options.dll)
            .as_os_str()
            .encode_wide()
            .chain([0])
            .collect();
        let start = Instant::now();
        // SAFETY: `wide` is a NUL-terminated path; loading runs the DLL's initialisation.
        let module = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), 0) };
        if module.is_null() {
            eprintln!(
                "isapi-bench-driver: cannot load {}: Windows error {}",
                options.dll,
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            );
            std::process::exit(2);
        }
        let loaded = start.elapsed();
        // SAFETY: the names are NUL-terminated; each export has httpext.h's signature.
        let (version, proc_, terminate) = unsafe {
            let get = |name: &[u8]| GetProcAddress(module, name.as_ptr());
            let (Some(v), Some(p), t) = (
                get(b"GetExtensionVersion\0"),
                get(b"HttpExtensionProc\0"),
                get(b"TerminateExtension\0"),
            ) else {
                eprintln!("isapi-bench-driver: {} is not an ISAPI extension", options.dll);
                std::process::exit(2);
            };
            type Export = unsafe extern "system" fn() -> isize;
            (
                std::mem::transmute::<Export, GetExtensionVersion>(v),
                std::mem::transmute::<Export, HttpExtensionProc>(p),
                t.map(|t| std::mem::transmute::<Export, TerminateExtension>(t)),
            )
        };
        // SAFETY: an all-zero HSE_VERSION_INFO is valid; the extension fills it in.
        let mut info: HSE_VERSION_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a writable HSE_VERSION_INFO.
        if unsafe { version(&mut info) } == FALSE {
            eprintln!("isapi-bench-driver: GetExtensionVersion returned FALSE");
            std::process::exit(3);
        }
        let initialised = start.elapsed();
        let mut first = Request::new(&options.path);
        first.run(proc_);
        let cold = start.elapsed();
        let first_response = {
            let response = first.response.lock().unwrap();
            let mut bytes = response.head.clone();
            bytes.extend_from_slice(&response.body);
            bytes
        };

        for _ in 0..options.warmup {
            Request::new(&options.path).run(proc_);
        }
        let duration = Duration::from_secs_f64(options.seconds);
        let timed = Instant::now();
        let clients: Vec<_> = (0..options.clients)
            .map(|_| {
                let path = options.path.clone();
                std::thread::spawn(move || {
                    let mut latencies = Vec::with_capacity(1 << 20);
                    let mut request = Request::new(&path);
                    while timed.elapsed() < duration {
                        let began = Instant::now();
                        request.reset();
                        request.run(proc_);
                        latencies.push(began.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        let elapsed = timed.elapsed().as_secs_f64();
        latencies.sort();
        let rps = if elapsed > 0.0 {
            latencies.len() as f64 / elapsed
        } else {
            0.0
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{{\"cold_start_ms\": {:.3}, \"load_ms\": {:.3}, \"version_ms\": {:.3}, \"first_response\": {}, \"requests\": {}, \"clients\": {}, \"seconds\": {:.4}, \"rps\": {:.1}, \"p50_us\": {:.1}, \"p99_us\": {:.1}}}",
            cold.as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3,
            (initialised - loaded).as_secs_f64() * 1e3,
            json_string(&first_response),
            latencies.len(),
            options.clients,
            elapsed,
            rps,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
        );
        let _ = stdout.flush();
        drop(stdout);
        if let Some(terminate) = terminate {
            // SAFETY: no request is in flight any more.
            unsafe { terminate(HSE_TERM_MUST_UNLOAD) };
        }
        std::process::exit(0);
    }
}
