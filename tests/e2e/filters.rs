//! ISAPI filters end to end: Python filter scripts frozen with isapi-freeze, loaded by
//! isapi-host with `--filter`, and driven over HTTP under Wine. The suite script
//! (tests/fixtures/filters/filter_suite.py) defines a filter and an extension in one DLL.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::freeze::freeze_ok;
use crate::harness::{repo, stubs, temp_dir, win_path, windows_command, Finished, Host, Running, HOST_READY};
use crate::http::{get, request, Connection, Response};

/// A fresh copy of a frozen dist, so each test reads a log of its own.
struct Dist {
    _tmp: tempfile::TempDir,
    dll: PathBuf,
    log: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Freezes `script` once per test run; every call gets its own copy.
fn frozen(script: &Path, cache: &'static OnceLock<(tempfile::TempDir, PathBuf)>) -> Dist {
    let (_, master) = cache.get_or_init(|| {
        let tmp = temp_dir();
        let dist = tmp.path().join("dist");
        freeze_ok(script, &dist);
        (tmp, dist)
    });
    let tmp = temp_dir();
    let dir = tmp.path().join("dist");
    copy_dir(master, &dir);
    let _ = std::fs::remove_dir_all(dir.join("logs"));
    let stem = script.file_stem().unwrap().to_string_lossy().into_owned();
    Dist {
        dll: dir.join(format!("_{stem}.dll")),
        log: dir.join(format!("logs/_{stem}.log")),
        _tmp: tmp,
    }
}

fn suite() -> Dist {
    static CACHE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    frozen(&repo().join("tests/fixtures/filters/filter_suite.py"), &CACHE)
}

/// isapi-host with `dll` as a filter and, if `extension`, also as the extension.
fn serve(dll: &Path, extension: bool) -> Host {
    let mut command = windows_command(&stubs().join("isapi-host.exe"));
    command
        .args(["--control-stdin", "--listen", "127.0.0.1:0", "--filter"])
        .arg(win_path(dll));
    if extension {
        command.arg(win_path(dll));
    }
    let running = Running::start(command);
    let line = running.wait_for_stdout(HOST_READY, Duration::from_secs(120));
    let address = line[HOST_READY.len()..].trim_end_matches('/').to_string();
    Host { running, address }
}

fn stop(host: Host) -> Finished {
    let finished = host.running.finish(Duration::from_secs(60));
    assert_eq!(finished.code, 0, "isapi-host failed:\n{finished:?}");
    finished
}

fn log_text(dist: &Dist) -> String {
    std::fs::read_to_string(&dist.log).unwrap_or_default()
}

fn keep_alive_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

#[test]
fn preproc_set_header_url_rewrites_what_the_extension_sees_and_added_response_header_arrives() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/old/page?x=1");
    assert_eq!(r.status, 200, "{}", host.running.output());
    assert_eq!(r.text(), "url=/new/page query=x=1 added=yes\n");
    assert_eq!(r.header("X-Rewritten-From"), Some("/old/page?x=1"));
    // A URL the filter leaves alone reaches the extension unchanged, without the header.
    let r = get(&host.address, "/plain?y");
    assert_eq!(r.text(), "url=/plain query=y added=\n");
    assert_eq!(r.header("X-Rewritten-From"), None);
    stop(host);
}

#[test]
fn filter_answers_with_write_client_and_req_finished_and_the_connection_closes() {
    let dist = suite();
    // No extension at all: the filter answers, everything else gets the built-in 404.
    let host = serve(&dist.dll, false);
    let mut c = Connection::open(&host.address);
    c.send(&keep_alive_get("/answer"));
    let r = c.read_response();
    assert_eq!((r.status, r.reason.as_str()), (203, "From Filter"));
    assert_eq!(r.text(), "answered by the filter\n");
    // SF_STATUS_REQ_FINISHED: the server disconnects after the filter's answer.
    assert!(
        c.closed_by_server(),
        "the connection stayed open after SF_STATUS_REQ_FINISHED"
    );
    let r = get(&host.address, "/elsewhere");
    assert_eq!(r.status, 404);
    let finished = stop(host);
    assert!(
        finished.stderr.contains("isapi-host: GET /answer 203 "),
        "{}",
        finished.stderr
    );
    assert!(
        finished
            .stderr
            .contains("isapi-host: GET /elsewhere 404 0 (no extension)"),
        "{}",
        finished.stderr
    );
}

#[test]
fn log_fields_changed_by_the_filter_are_what_the_host_logs() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/secret/file?token=abc");
    assert_eq!(r.status, 200);
    let r = get(&host.address, "/public?q=1");
    assert_eq!(r.status, 200);
    let finished = stop(host);
    let body_len = "url=/secret/file query=token=abc added=\n".len();
    assert!(
        finished
            .stderr
            .contains(&format!("isapi-host: GET /redacted 299 {body_len}")),
        "{}",
        finished.stderr
    );
    assert!(!finished.stderr.contains("/secret"), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("isapi-host: GET /public?q=1 200 "),
        "{}",
        finished.stderr
    );
}

#[test]
fn read_raw_data_and_send_raw_data_see_and_rewrite_the_bytes_on_the_wire() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    // READ_RAW_DATA rewrote the request line before it was parsed.
    let r = get(&host.address, "/raw-in?a");
    assert_eq!(r.text(), "url=/raw-rewritten query=a added=\n");
    // SEND_RAW_DATA rewrote the response body on its way out.
    let r = get(&host.address, "/echo?TOKEN-1234");
    assert_eq!(r.text(), "url=/echo query=TOKEN-XXXX added=\n");
    stop(host);
    assert!(
        log_text(&dist).contains("READ_RAW_DATA saw b'GET /raw-in?a HTTP/1.1'"),
        "{}",
        log_text(&dist)
    );
}

#[test]
fn send_response_sees_the_status_and_edits_the_extension_headers() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/x?hide");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Hide"), None);
    assert_eq!(r.header("X-Status-Seen"), Some("200"));
    stop(host);
}

#[test]
fn filter_context_is_kept_per_connection_and_released_at_end_of_net_session() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let mut c = Connection::open(&host.address);
    for n in 1..=3 {
        c.send(&keep_alive_get(&format!("/count/{n}")));
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Request-Number"), Some(n.to_string().as_str()));
    }
    drop(c);
    // A new connection starts with a fresh FilterContext.
    let r = get(&host.address, "/count/again");
    assert_eq!(r.header("X-Request-Number"), Some("1"));
    stop(host);
    let log = log_text(&dist);
    assert!(log.contains("end of net session after 3 counted requests"), "{log}");
    assert!(log.contains("end of net session after 1 counted requests"), "{log}");
}

#[test]
fn return_value_none_goes_on_and_an_int_is_returned_to_the_server_as_is() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    // None: SF_STATUS_REQ_NEXT_NOTIFICATION, the extension answers.
    assert_eq!(get(&host.address, "/none").status, 200);
    // An int that is no SF_STATUS_* value reaches the server unchanged, which refuses it.
    let r = get(&host.address, "/odd-int");
    assert_eq!(r.status, 500);
    let finished = stop(host);
    assert!(
        finished
            .stderr
            .contains("returned 0x3039, which is no SF_STATUS_* value"),
        "{}",
        finished.stderr
    );
}

#[test]
fn exception_in_http_filter_proc_is_logged_fails_the_request_and_the_next_is_served() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/boom");
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "500 Internal Server Error: an ISAPI filter failed\n");
    let r = get(&host.address, "/old/after");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "url=/new/after query= added=yes\n");
    stop(host);
    let log = log_text(&dist);
    assert!(
        log.contains("HttpFilterProc failed for notification SF_NOTIFY_PREPROC_HEADERS:"),
        "{log}"
    );
    assert!(log.contains("ValueError: boom from the filter"), "{log}");
}

#[test]
fn terminate_filter_is_called_at_shutdown() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    assert!(!log_text(&dist).contains("TerminateFilter"));
    let finished = stop(host);
    assert!(
        finished.stdout.contains("isapi-host: filter \"filter suite\""),
        "{}",
        finished.stdout
    );
    assert!(
        log_text(&dist).contains("stdout: TerminateFilter(0) called"),
        "{}",
        log_text(&dist)
    );
}

#[test]
fn example_filter_rewrites_legacy_urls_for_its_extension() {
    static CACHE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let dist = frozen(&repo().join("examples/filter/rewrite.py"), &CACHE);
    let host = serve(&dist.dll, true);
    let mut c = Connection::open(&host.address);
    c.send(&keep_alive_get("/legacy/docs/page?x=1"));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Rewritten-From"), Some("/legacy/docs/page?x=1"));
    assert_eq!(r.text(), "path: /docs/page\nquery: x=1\n");
    c.send(&keep_alive_get("/docs/page?x=1"));
    let r = c.read_response();
    assert_eq!(r.header("X-Rewritten-From"), None);
    assert_eq!(r.text(), "path: /docs/page\nquery: x=1\n");
    c.send(&keep_alive_get("/legacy/two"));
    assert_eq!(c.read_response().text(), "path: /two\nquery: \n");
    drop(c);
    stop(host);
    let log = log_text(&dist);
    assert!(
        log.contains("rewrote /legacy/docs/page?x=1 (rewrite 1 on this connection)"),
        "{log}"
    );
    assert!(
        log.contains("rewrote /legacy/two (rewrite 2 on this connection)"),
        "{log}"
    );
}

/// A GET for `path` with extra header lines, the connection closed after it.
fn get_with(host: &Host, path: &str, headers: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    request(&host.address, raw.as_bytes())
}

/// The application's physical folder as the host reports it (the DLL's folder).
fn physical_root(dist: &Dist) -> String {
    format!("{}\\", win_path(dist.dll.parent().unwrap()))
}

/// Asserts that `steps` occur in `text` in this order.
fn assert_in_order(text: &str, steps: &[&str]) {
    let mut at = 0;
    for step in steps {
        let found = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (or out of order) in:\n{text}"));
        at += found + step.len();
    }
}

#[test]
fn url_map_physical_path_set_by_the_filter_is_the_extensions_path_translated() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let root = physical_root(&dist);
    let r = get(&host.address, "/who/mapped/page?x");
    assert_eq!(r.status, 200, "{}", log_text(&dist));
    // The filter saw the URL and the path the host mapped it to, then chose another.
    assert_eq!(
        r.header("X-Url-Map"),
        Some(format!("/who/mapped/page was {root}who\\mapped\\page").as_str())
    );
    assert_eq!(
        r.text(),
        "PATH_TRANSLATED=C:\\mapped\\page\nAUTH_TYPE=\nAUTH_USER=\nREMOTE_USER=\nLOGON_USER=\nAUTH_PASSWORD=\n\
         HTTP_X_AUTH_IN=\nHTTP_X_AUTH_COMPLETE=status=200 reset=False user=\n\
         ecb.PathTranslated=C:\\mapped\\page\n"
    );
    // A URL the filter leaves alone keeps the host's mapping.
    let r = get(&host.address, "/who/plain");
    assert_eq!(r.header("X-Url-Map"), None);
    assert!(
        r.text().starts_with(&format!("PATH_TRANSLATED={root}who\\plain\n")),
        "{}",
        r.text()
    );
    assert!(
        r.text().ends_with(&format!("ecb.PathTranslated={root}who\\plain\n")),
        "{}",
        r.text()
    );
    stop(host);
}

#[test]
fn authentication_sees_basic_credentials_and_the_user_it_sets_is_the_extensions_user() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    // "alias:secret": the filter maps it to mapped-user / mapped-password.
    let r = get_with(&host, "/who/a", "Authorization: Basic YWxpYXM6c2VjcmV0\r\n");
    assert_eq!(r.status, 200, "{}", log_text(&dist));
    let text = r.text();
    let auth = text.lines().skip(1).take(5).collect::<Vec<_>>().join("|");
    assert_eq!(
        auth,
        "AUTH_TYPE=Basic|AUTH_USER=mapped-user|REMOTE_USER=mapped-user|LOGON_USER=mapped-user|\
         AUTH_PASSWORD=mapped-password"
    );
    // AUTH_COMPLETE runs after authentication and sees the mapped user too.
    assert!(
        text.contains("HTTP_X_AUTH_COMPLETE=status=200 reset=False user=mapped-user\n"),
        "{text}"
    );
    // "bob:pw" passes through unchanged.
    let r = get_with(&host, "/who/b", "Authorization: Basic Ym9iOnB3\r\n");
    let text = r.text();
    let auth = text.lines().skip(1).take(5).collect::<Vec<_>>().join("|");
    assert_eq!(
        auth,
        "AUTH_TYPE=Basic|AUTH_USER=bob|REMOTE_USER=bob|LOGON_USER=bob|AUTH_PASSWORD=pw"
    );
    stop(host);
    let log = log_text(&dist);
    assert_in_order(
        &log,
        &[
            "AUTHENTICATION saw user=b'alias' password=b'secret'",
            "AUTHENTICATION saw user=b'bob' password=b'pw'",
        ],
    );
}

#[test]
fn auth_complete_edits_request_headers_and_reset_auth_answers_401_with_access_denied() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get_with(&host, "/who/c", "X-Auth-In: lower case\r\n");
    assert_eq!(r.status, 200, "{}", log_text(&dist));
    let text = r.text();
    // SetHeader replaced the client's header, AddHeader added one, HttpStatus was 200.
    assert!(text.contains("\nHTTP_X_AUTH_IN=LOWER CASE\n"), "{text}");
    assert!(
        text.contains("\nHTTP_X_AUTH_COMPLETE=status=200 reset=False user=\n"),
        "{text}"
    );
    // fResetAuth: the host challenges the client instead of running the extension, and
    // ACCESS_DENIED tells the filter why (SF_DENIED_LOGON | SF_DENIED_FILTER).
    let root = physical_root(&dist);
    let r = get_with(&host, "/who/reset", "Authorization: Basic Ym9iOnB3\r\n");
    assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"isapi-host\""));
    assert_eq!(
        r.header("X-Denied"),
        Some(format!("url=/who/reset path={root}who\\reset reason=5").as_str())
    );
    assert_eq!(r.text(), "401 Unauthorized: a filter reset the authentication\n");
    let finished = stop(host);
    assert!(
        finished
            .stderr
            .contains("isapi-host: GET /who/reset 401 0 (authentication reset by a filter)"),
        "{}",
        finished.stderr
    );
}

#[test]
fn access_denied_is_raised_for_the_extensions_401_with_the_mapped_path() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/who/mapped/locked?deny");
    assert_eq!((r.status, r.reason.as_str()), (401, "Denied"));
    // SF_DENIED_APPLICATION (8), and the physical path URL_MAP chose.
    assert_eq!(
        r.header("X-Denied"),
        Some("url=/who/mapped/locked path=C:\\mapped\\locked reason=8")
    );
    // A response that is no 401 raises no ACCESS_DENIED.
    let r = get(&host.address, "/who/open");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Denied"), None);
    stop(host);
}

#[test]
fn read_next_makes_the_host_read_more_and_call_again_with_all_the_bytes() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let mut c = Connection::open(&host.address);
    c.send(b"GET /partial?p HTTP/1.1\r\nHost: t\r\n");
    std::thread::sleep(Duration::from_millis(500));
    c.send(b"\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", log_text(&dist));
    assert_eq!(r.text(), "url=/partial-joined-after-1 query=p added=\n");
    drop(c);
    stop(host);
    let log = log_text(&dist);
    let first = "GET /partial?p HTTP/1.1\r\nHost: t\r\n".len();
    assert!(
        log.contains(&format!("READ_RAW_DATA holds {first} bytes of an incomplete head")),
        "{log}"
    );
    assert_eq!(log.matches("READ_RAW_DATA holds").count(), 1, "{log}");
}

#[test]
fn disable_notifications_skips_them_for_the_rest_of_the_request_only() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let mut c = Connection::open(&host.address);
    // /quiet disables SEND_RESPONSE, LOG and END_OF_REQUEST in PREPROC_HEADERS.
    c.send(&keep_alive_get("/quiet?mark"));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Marked"), None);
    // The next request on the same connection gets them all again.
    c.send(&keep_alive_get("/loud?mark"));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Marked"), Some("yes"));
    drop(c);
    let finished = stop(host);
    assert!(
        finished.stderr.contains("isapi-host: GET /quiet?mark 200 "),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("isapi-host: GET /loud-marked?mark 200 "),
        "{}",
        finished.stderr
    );
    let log = log_text(&dist);
    assert!(!log.contains("/quiet"), "{log}");
    assert!(log.contains("END_OF_REQUEST /loud data=None"), "{log}");
}

#[test]
fn end_of_request_comes_after_the_response_and_before_log_for_every_request() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let mut c = Connection::open(&host.address);
    for n in 1..=2 {
        c.send(&keep_alive_get(&format!("/eor/{n}?mark")));
        assert_eq!(c.read_response().text(), format!("url=/eor/{n} query=mark added=\n"));
    }
    drop(c);
    stop(host);
    assert_in_order(
        &log_text(&dist),
        &[
            "END_OF_REQUEST /eor/1 data=None",
            "LOG /eor/1 200",
            "END_OF_REQUEST /eor/2 data=None",
            "LOG /eor/2 200",
        ],
    );
}

#[test]
fn internal_reload_exception_in_the_filter_reloads_the_script_and_replays_the_notification() {
    let dist = suite();
    let host = serve(&dist.dll, true);
    let r = get(&host.address, "/reload-filter");
    assert_eq!(r.status, 200, "{}", log_text(&dist));
    assert_eq!(r.header("X-Filter-Generation"), Some("2"));
    assert_eq!(r.text(), "url=/reload-filter query= added=\n");
    // The reloaded filter goes on serving.
    let r = get(&host.address, "/old/x");
    assert_eq!(r.text(), "url=/new/x query= added=yes\n");
    let before_stop = log_text(&dist);
    assert_eq!(
        before_stop.matches("TerminateFilter(0) called").count(),
        1,
        "{before_stop}"
    );
    stop(host);
    let log = log_text(&dist);
    assert_in_order(
        &log,
        &[
            "filter_suite imported: generation 1",
            "raised InternalReloadException in its filter: reloading it",
            "TerminateFilter(0) called",
            "filter_suite imported: generation 2",
            "TerminateFilter(0) called",
        ],
    );
    assert!(!log.contains("Traceback"), "{log}");
}
