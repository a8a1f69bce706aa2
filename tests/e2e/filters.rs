//! ISAPI filters end to end: Python filter scripts frozen with isapi-freeze, loaded by
//! isapi-host with `--filter`, and driven over HTTP under Wine. The suite script
//! (tests/fixtures/filters/filter_suite.py) defines a filter and an extension in one DLL.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::freeze::freeze_ok;
use crate::harness::{repo, stubs, temp_dir, win_path, windows_command, Finished, Host, Running, HOST_READY};
use crate::http::{get, Connection};

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
    command.args(["--listen", "127.0.0.1:0", "--filter"]).arg(win_path(dll));
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
