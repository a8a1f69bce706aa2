//! isapi-host against the ISAPI contract, using the native (Python-free) fixture extension
//! tests/fixtures/native-extension: request data in, response framing out, pending and
//! asynchronous completion, server variables, the host's own errors, and its lifecycle.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::host::HOST_STOPPED;
use crate::support::{get, post, request, temp_dir, test_programs, win_path, Connection, Host, Response};

/// The fixture DLL, cross-built with the test programs.
fn fixture() -> PathBuf {
    test_programs().join("native_extension.dll")
}

fn host() -> Host {
    Host::start(&fixture(), &[])
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.header(name)
}

/// Asserts that the extension echoed `expected` exactly (without printing megabytes).
fn assert_echoed(r: &Response, expected: &[u8]) {
    assert!(
        r.body == expected,
        "echoed body differs (got {} bytes, want {})",
        r.body.len(),
        expected.len()
    );
}

/// A deterministic body that is not all one byte, so misplaced data shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn get_passes_method_path_and_query_to_the_extension() {
    let host = host();
    let r = get(&host.address, "/echo/a/b?x=1&y=two");
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "OK");
    assert_eq!(header(&r, "Content-Type"), Some("text/plain"));
    assert_eq!(header(&r, "Content-Length"), Some("24"));
    assert_eq!(r.text(), "GET /echo/a/b x=1&y=two\n");
}

#[test]
fn post_body_of_200_kib_is_echoed_exactly_through_preload_and_read_client() {
    let host = host();
    let body = pattern(200 * 1024);
    let r = post(&host.address, "/echo?big", &body);
    assert_eq!(r.status, 200);
    let mut expected = b"POST /echo big\n".to_vec();
    expected.extend_from_slice(&body);
    assert_eq!(header(&r, "Content-Length"), Some(expected.len().to_string().as_str()));
    assert_echoed(&r, &expected);
}

#[test]
fn chunked_request_body_is_decoded_for_the_extension() {
    let host = host();
    // Over the 48 KiB preload, so ReadClient has to decode chunks as well.
    let data = pattern(70 * 1024);
    let mut raw =
        b"PUT /echo/chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in data.chunks(30 * 1024 + 1) {
        raw.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let r = request(&host.address, &raw);
    assert_eq!(r.status, 200);
    let mut expected = b"PUT /echo/chunks \n".to_vec();
    expected.extend_from_slice(&data);
    assert_echoed(&r, &expected);
}

#[test]
fn keep_alive_carries_several_requests_on_one_connection() {
    let host = host();
    let mut c = Connection::open(&host.address);
    let first = c.exchange(b"GET /echo/1?a HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (first.status, first.text().as_str(), header(&first, "Connection")),
        (200, "GET /echo/1 a\n", None)
    );
    // No Content-Length from the extension: the host chunks it and keeps the connection.
    let second = c.exchange(b"GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(header(&second, "Transfer-Encoding"), Some("chunked"));
    assert_eq!(header(&second, "Content-Length"), None);
    assert_eq!(second.text(), "one\ntwo\nthree\n");
    let third = c.exchange(b"POST /echo/3 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(third.text(), "POST /echo/3 \nabc");
}

#[test]
fn http10_client_gets_a_close_delimited_body_when_the_extension_sends_no_length() {
    let host = host();
    let r = request(&host.address, b"GET /chunked HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "Connection"), Some("close"));
    assert_eq!(header(&r, "Transfer-Encoding"), None);
    assert_eq!(r.text(), "one\ntwo\nthree\n");
    // HTTP/1.0 with Content-Length and keep-alive asked for: kept, and said so.
    let mut c = Connection::open(&host.address);
    let kept = c.exchange(b"GET /echo/ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        (kept.text().as_str(), header(&kept, "Connection")),
        ("GET /echo/ka \n", Some("keep-alive"))
    );
    let last = c.exchange(b"GET /echo/again HTTP/1.0\r\n\r\n");
    assert_eq!(
        (last.text().as_str(), header(&last, "Connection")),
        ("GET /echo/again \n", Some("close"))
    );
}

#[test]
fn pending_request_completes_from_another_thread_after_done_with_session() {
    let host = host();
    let started = Instant::now();
    let r = get(&host.address, "/pending");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "answered before the extension's thread did"
    );
    assert_eq!(
        (r.status, header(&r, "Content-Length"), r.text().as_str()),
        (200, Some("12"), "pending done")
    );
}

#[test]
fn async_write_calls_the_registered_completion_which_ends_the_session() {
    let host = host();
    let r = get(&host.address, "/async");
    assert_eq!((r.status, r.text().as_str()), (200, "async done"));
}

#[test]
fn server_variables_answer_as_iis_does() {
    let host = Host::start(&fixture(), &["--vpath", "/"]);
    let var = |raw: &str| request(&host.address, raw.as_bytes());
    let r = var("GET /var?REQUEST_METHOD HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "GET"));
    let r = var("GET /var?QUERY_STRING HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "QUERY_STRING");
    let r = var("GET /var?HTTP_X_CUSTOM HTTP/1.1\r\nHost: t\r\nX-Custom: custom value\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "custom value");
    let r = var("GET /var?SERVER_PORT HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), host.port());
    let r = var("GET /var?APPL_MD_PATH HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "/LM/W3SVC/1/ROOT");
    // A wildcard script map: SCRIPT_NAME and PATH_INFO are both the whole path.
    let r = var("GET /var/deep/path?SCRIPT_NAME HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "/var/deep/path");
    // UNICODE_URL carries the percent-decoded non-ASCII path as UTF-16.
    let r = get(&host.address, "/uvar/caf%C3%A9/%E2%82%AC?URL");
    assert_eq!((r.status, r.text().as_str()), (200, "/uvar/café/€"));
    let r = var("GET /var?ALL_HTTP HTTP/1.1\r\nHost: t\r\nX-A-B: 1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "HTTP_HOST:t\nHTTP_X_A_B:1\nHTTP_CONNECTION:close\n");
}

#[test]
fn missing_server_variable_fails_with_invalid_index() {
    let host = host();
    let r = get(&host.address, "/var?NO_SUCH_VARIABLE");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "no NO_SUCH_VARIABLE: error 1413\n")
    );
}

#[test]
fn hse_status_error_without_headers_is_500() {
    let host = host();
    let r = get(&host.address, "/error");
    assert_eq!(r.status, 500);
    assert_eq!(r.reason, "Internal Server Error");
}

#[test]
fn success_without_headers_sends_dw_http_status_code() {
    let host = host();
    let r = get(&host.address, "/status");
    assert_eq!((r.status, r.body.len()), (204, 0));
}

#[test]
fn url_redirect_support_function_answers_302_with_location() {
    let host = host();
    let r = get(&host.address, "/redirect");
    assert_eq!(
        (r.status, header(&r, "Location"), header(&r, "Content-Length")),
        (302, Some("/echo/redirected"), Some("0"))
    );
}

#[test]
fn malformed_request_is_400_and_closes_the_connection() {
    let host = host();
    let r = request(&host.address, b"NOT A REQUEST AT ALL\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(header(&r, "Connection"), Some("close"));
}

#[test]
fn request_head_over_64_kib_is_431() {
    let host = host();
    let raw = format!(
        "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    let r = request(&host.address, raw.as_bytes());
    assert_eq!((r.status, header(&r, "Connection")), (431, Some("close")));
}

#[test]
fn request_outside_vpath_is_404_without_calling_the_extension() {
    let host = Host::start(&fixture(), &["--vpath", "/app"]);
    let outside = get(&host.address, "/other/echo");
    assert_eq!((outside.status, outside.text().as_str()), (404, "404 Not Found\n"));
    // Inside the application the extension answers (its own 404 text for an unknown path).
    let inside = get(&host.address, "/app/unknown");
    assert_eq!((inside.status, inside.text().as_str()), (404, "no such fixture path\n"));
}

#[test]
fn stdin_eof_stops_the_host_with_exit_0() {
    let host = host();
    assert_eq!(get(&host.address, "/echo").status, 200);
    let done = host.finish();
    let output = format!("stdout:\n{}\nstderr:\n{}", done.stdout, done.stderr);
    assert_eq!(done.code, 0, "{output}");
    assert!(
        done.stdout
            .lines()
            .any(|l| l == "isapi-host: extension \"native echo\""),
        "{output}"
    );
    assert!(
        done.stderr.lines().any(|l| l == "isapi-host: GET /echo 200 11"),
        "no request log line; {output}"
    );
    assert_eq!(done.stdout.lines().last(), Some(HOST_STOPPED), "{output}");
}

#[test]
fn dll_that_does_not_exist_exits_2_with_the_windows_error() {
    let dir = temp_dir();
    let missing = dir.path().join("missing.dll");
    let done = Host::run_refused(Host::command(&missing, &[]));
    let missing = win_path(&missing);
    assert_eq!(done.code, 2, "stderr:\n{}", done.stderr);
    assert_eq!(
        done.stderr.trim_end(),
        format!("isapi-host: cannot load {missing}: Windows error 126")
    );
    assert_eq!(done.stdout, "");
}

#[test]
fn get_extension_version_false_exits_3_with_the_message() {
    let dll = fixture();
    let mut command = Host::command(&dll, &[]);
    command.env("NATIVE_EXTENSION_REFUSE", "1");
    let done = Host::run_refused(command);
    assert_eq!(done.code, 3, "stderr:\n{}", done.stderr);
    let expected = format!(
        "isapi-host: GetExtensionVersion of {} returned FALSE; see the extension's log",
        win_path(&dll)
    );
    assert_eq!(done.stderr.trim_end(), expected);
}
