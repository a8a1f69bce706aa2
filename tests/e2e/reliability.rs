//! Load, faults and bad input against a frozen threaded WSGI application
//! (tests/fixtures/scripts/reliability.py) under isapi-host: every answer exact under 32
//! concurrent clients with memory and handles levelling off, a large body streamed in
//! bounded memory, handlers that fail in every way followed by a correct answer, the
//! request timeout, header injection refused, invalid UTF-8, and tracebacks kept from
//! clients unless detail is turned on. The long runs are in benches/soak.rs.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::support::load::{echo_body, load, post_streamed, reset_peak, settled_figures};
use crate::support::{
    assert_contains, fixture, get, py_dll, py_zip, request, shared, win_path, Connection, Finished, Freeze, Frozen,
    Host, ERROR_PAGE,
};

/// The application, frozen once; tests look in its log only for lines they alone cause.
fn app() -> &'static Frozen {
    shared(&fixture("scripts/reliability.py"))
}

fn dll() -> PathBuf {
    app().dll()
}

/// The next request after a fault is answered, exactly.
fn assert_still_serving(address: &str, tag: &str) {
    let r = get(address, &format!("/echo?{tag}"));
    assert_eq!((r.status, r.body.clone()), (200, echo_body(tag)), "{r:?}");
}

#[test]
fn thirty_two_clients_get_every_answer_exactly_and_memory_and_handles_level_off() {
    let mut host = Host::start(&dll(), &[]);
    // Warm-up: the pool's threads, the interpreter's caches and the allocator's arenas fill.
    let warm = load(&host.address, "warm", 500, 32);
    assert_eq!((warm.wrong, warm.missing), (0, 0), "{warm:?}");
    let before = settled_figures(&mut host);
    let run = load(&host.address, "soak", 2_000, 32);
    // Threads of closed connections (and Wine's own helpers) may take a moment to end on a
    // busy machine: a leak stays, a straggler does not, so wait (bounded) for them.
    let mut after = settled_figures(&mut host);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (after.threads > before.threads + 4 || after.handles > before.handles + 32)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(500));
        after = settled_figures(&mut host);
    }
    assert_eq!((run.wrong, run.missing), (0, 0), "{run:?}");
    assert_eq!(after.requests - before.requests, 2_000, "{before:?} {after:?}");
    eprintln!(
        "soak: 2,000 requests at 32 connections in {:?}: {before:?} -> {after:?}",
        run.elapsed
    );
    // Levelling off: the 2,000 requests made 40 new connections per client slot (each
    // client closes after 50 requests). A leak of one handle or thread per connection
    // would add >= 1,280, one per request >= 2,000; the allowance covers the stats
    // request's own connection and Wine's lazily created handles.
    assert!(
        after.handles <= before.handles + 32,
        "handles grew: {before:?} -> {after:?}"
    );
    assert!(
        after.threads <= before.threads + 4,
        "threads grew: {before:?} -> {after:?}"
    );
    // 2,000 answers of ~1 KiB plus environs: a leak of the request or response (>= 2 KiB
    // each) would add >= 4 MiB; 8 MiB leaves room for the allocator's own rounding.
    assert!(
        after.rss_kib <= before.rss_kib + 8 * 1024,
        "resident memory grew: {before:?} -> {after:?}"
    );
    host.stop();
}

#[test]
fn bodies_from_0_bytes_to_64_mib_stream_through_wsgi_input_in_bounded_memory() {
    // 64 MiB is past IIS's default maxAllowedContentLength: lifted as a site would.
    let mut host = Host::start(&dll(), &["--max-body", "4294967295"]);
    for size in [0usize, 1, 48 * 1024, 48 * 1024 + 1, 1 << 20] {
        let (r, hex) = post_streamed(&host.address, size);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.text().starts_with(&format!("{size} bytes, ")), "{}", r.text());
        assert!(r.text().ends_with(&format!("sha256 {hex}\n")), "{}", r.text());
    }
    let before = settled_figures(&mut host);
    reset_peak(&host);
    let size = 64 << 20;
    let (r, hex) = post_streamed(&host.address, size);
    let after = settled_figures(&mut host);
    assert_eq!(
        r.text(),
        format!("{size} bytes, largest read 65536, sha256 {hex}\n"),
        "{r:?}"
    );
    eprintln!("64 MiB body: {before:?} -> {after:?}");
    // Held whole anywhere (host, runtime or application), even for a moment, the body
    // alone would add 64 MiB to the peak.
    assert!(
        after.peak_kib <= before.rss_kib + 16 * 1024,
        "memory grew with the body: {before:?} -> {after:?}"
    );
}

#[test]
fn handlers_that_raise_recurse_without_end_or_run_out_of_memory_get_a_500_and_the_next_request_is_served() {
    let host = Host::start(&dll(), &[]);
    for (path, error) in [
        ("/raise", "ValueError: reliability failure with secret-5678"),
        ("/recurse", "RecursionError: maximum recursion depth exceeded"),
        ("/memory", "MemoryError"),
    ] {
        let r = get(&host.address, path);
        assert_eq!((r.status, r.text().as_str()), (500, ERROR_PAGE), "{path}: {r:?}");
        app().wait_for_log(error, |log| {
            log.contains(&format!("isapi.wsgi: the application failed on GET {path}:")) && log.contains(error)
        });
        assert_still_serving(&host.address, &format!("after-{}", &path[1..]));
    }
}

#[test]
fn tracebacks_reach_the_client_only_when_error_detail_is_turned_on() {
    let host = Host::start(&dll(), &[]);
    let r = get(&host.address, "/raise");
    assert_eq!((r.status, r.text().as_str()), (500, ERROR_PAGE));
    drop(host);
    let mut command = Host::command(&dll(), &[]);
    command.env("ISAPI_FREEZE_ERROR_DETAIL", "1");
    let host = Host::from_command(command);
    let r = get(&host.address, "/raise");
    assert_eq!(r.status, 500, "{r:?}");
    let text = r.text();
    assert!(
        text.starts_with("<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><pre>Traceback (most recent call last):\n"),
        "{text}"
    );
    assert!(
        text.ends_with("ValueError: reliability failure with secret-5678\n</pre></body></html>"),
        "{text}"
    );
    assert_eq!(r.header("Content-Length"), Some(text.len().to_string().as_str()));
}

#[test]
fn a_handler_that_hangs_past_the_request_timeout_gets_503_and_the_server_goes_on() {
    let host = Host::start(&dll(), &["--request-timeout", "2"]);
    let mut hung = Connection::open(&host.address);
    hung.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = hung.read_response();
    assert_eq!(
        (r.status, r.header("Connection"), r.text().as_str()),
        (
            503,
            Some("close"),
            "503 Service Unavailable: the request took too long\n"
        ),
        "{r:?}"
    );
    assert!(hung.closed_by_server());
    assert_still_serving(&host.address, "after-timeout");
    // The handler is still waiting on its worker; once it returns, its late answer goes
    // nowhere and nothing breaks.
    assert_eq!(get(&host.address, "/release").text(), "released\n");
    app().wait_for_log("the hung handler ending", |log| {
        log.contains("hang ended, released=True")
    });
    assert_still_serving(&host.address, "after-release");
    let finished = host.stop();
    assert_contains(
        &finished.stderr,
        "isapi-host: GET /hang: no answer within the request timeout (2s): answered 503, connection closed",
    );
}

#[test]
fn a_client_leaving_mid_response_does_not_stop_the_server() {
    let host = Host::start(&dll(), &[]);
    let mut stream = TcpStream::connect(&host.address).unwrap();
    stream.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = vec![0u8; 1 << 20];
    stream.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    stream.shutdown(Shutdown::Both).unwrap();
    drop(stream);
    app().wait_for_log("the client leaving /big", |log| {
        log.contains("isapi.wsgi: GET /big: the client went away")
    });
    assert_still_serving(&host.address, "after-leaving");
}

#[test]
fn header_values_with_line_breaks_set_by_the_app_are_refused_and_never_sent() {
    let host = Host::start(&dll(), &[]);
    let r = get(&host.address, "/header-crlf");
    assert_eq!((r.status, r.text().as_str()), (500, ERROR_PAGE), "{r:?}");
    assert_eq!(r.header("X-Injected"), None);
    app().wait_for_log("the refused header", |log| {
        log.contains("ValueError: a header contains a line break: ('X-Note', 'a\\r\\nX-Injected: yes')")
    });
    // Straight through the control block, a bare CR: the host drops the line.
    let r = get(&host.address, "/ecb-header-cr");
    assert_eq!((r.status, r.text().as_str()), (200, "raw header block\n"), "{r:?}");
    assert_eq!((r.header("X-Injected"), r.header("X-Note")), (None, None), "{r:?}");
    let finished = host.finish();
    assert_contains(
        &finished.stderr,
        "isapi-host: dropped response header line \"X-Note: a\\rX-Injected: yes\": not `Name: value`",
    );
}

#[test]
fn invalid_utf8_in_paths_queries_and_headers_is_refused_or_passed_as_bytes_and_breaks_nothing() {
    let host = Host::start(&dll(), &[]);
    let r = request(
        &host.address,
        b"GET /paths/x?q=%FF%C3 HTTP/1.1\r\nHost: x\r\nX-Bytes: \xff\xfe\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The header's bytes reach WSGI as latin-1, as PEP 3333 says; the query stays encoded.
    assert_eq!(
        r.text(),
        "PATH_INFO='/paths/x'\nQUERY_STRING='q=%FF%C3'\nHTTP_X_BYTES='\u{ff}\u{fe}'\n\
         ecb.PathInfo=b'/paths/x'\nUNICODE_URL='/paths/x'\n"
    );
    // A path that decodes to something that is not UTF-8, or a request line that is not
    // ASCII at all, is the host's 400; the next request is served.
    let r = get(&host.address, "/paths/%FF%FE");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "400 Bad Request: bad percent-encoding in path\n"),
        "{r:?}"
    );
    let r = request(&host.address, b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "400 Bad Request: request line is not ASCII\n"),
        "{r:?}"
    );
    assert_still_serving(&host.address, "after-bytes");
}

#[test]
fn an_exception_in_get_extension_version_fails_the_load_and_the_log_says_why() {
    let app = Freeze::source(
        "failing_init.py",
        "from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n\
         \x20   def GetExtensionVersion(self, vi):\n\
         \x20       raise OSError('the configuration file is missing')\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .ok();
    let finished = Host::run_refused(Host::command(&app.dll(), &[]));
    assert_eq!(finished.code, 3, "{finished:?}");
    assert!(
        finished.stderr.contains("GetExtensionVersion of ")
            && finished.stderr.contains("returned FALSE; see the extension's log"),
        "{finished:?}"
    );
    let log = app.log();
    assert_contains(&log, "GetExtensionVersion of failing_init failed:\nTraceback");
    assert_contains(&log, "OSError: the configuration file is missing");
}

/// Starts isapi-host on a damaged output; it must exit (not crash, not serve).
fn refused(damaged: &Frozen) -> Finished {
    Host::run_refused(Host::command(&damaged.dll(), &[]))
}

#[test]
fn a_truncated_dll_a_missing_standard_library_or_a_foreign_runtime_refuse_to_load_and_say_why() {
    let damaged = app().copy();
    let whole = std::fs::read(damaged.dll()).unwrap();
    std::fs::write(damaged.dll(), &whole[..whole.len() / 2]).unwrap();
    let finished = refused(&damaged);
    assert_eq!(finished.code, 2, "{finished:?}");
    assert!(finished.stderr.contains("isapi-host: cannot load "), "{finished:?}");

    // With --full-stdlib the standard library, `encodings` too, is python3XY.zip (without,
    // the archive holds what the app imports and there is no such file).
    let damaged = Freeze::script(fixture("scripts/reliability.py"))
        .arg("--full-stdlib")
        .ok();
    std::fs::remove_file(damaged.dist.join(py_zip())).unwrap();
    let finished = refused(&damaged);
    assert_eq!(finished.code, 3, "{finished:?}");
    let log = damaged.log();
    let expected = format!(
        "cannot start Python: the standard library {}\\{} is missing: copy the whole output folder",
        win_path(&damaged.dist),
        py_zip()
    );
    assert_contains(&log, &expected);

    let damaged = app().copy();
    std::fs::copy(
        damaged.dist.join(py_dll()),
        damaged.dist.join("isapi_freeze_runtime.dll"),
    )
    .unwrap();
    let finished = refused(&damaged);
    assert_eq!(finished.code, 3, "{finished:?}");
    let log = damaged.log();
    assert_contains(
        &log,
        "cannot start: isapi_freeze_runtime.dll does not export isapi_freeze_attach: it does not match this loader",
    );
}
