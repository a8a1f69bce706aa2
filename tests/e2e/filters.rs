//! ISAPI filters end to end: Python filter scripts frozen with isapi-freeze, loaded by
//! isapi-host with `--filter`, and driven over HTTP under Wine. The suite script
//! (tests/fixtures/filters/filter_suite.py) defines a filter and an extension in one DLL.

use std::time::Duration;

use crate::support::{
    assert_contains, assert_in_order, fixture, get, repo, request, shared, win_path, Connection, Frozen, Host, Response,
};

/// A fresh copy of the suite's output (frozen once), so each test reads a log of its own.
fn suite() -> Frozen {
    shared(&fixture("filters/filter_suite.py")).copy()
}

/// isapi-host with the DLL as a filter and, if `extension`, also as the extension.
fn serve(dist: &Frozen, extension: bool) -> Host {
    let dll = win_path(&dist.dll());
    let mut args = vec!["--filter", &dll];
    if extension {
        args.push(&dll);
    }
    Host::from_command(Host::with_args(&args))
}

/// A fresh copy of the suite served as filter and extension (the copy lives as long as
/// the first half of the pair).
fn suite_served() -> (Frozen, Host) {
    let dist = suite();
    let host = serve(&dist, true);
    (dist, host)
}

#[test]
fn preproc_set_header_url_rewrites_what_the_extension_sees_and_added_response_header_arrives() {
    let (_dist, host) = suite_served();
    let r = get(&host.address, "/old/page?x=1");
    assert_eq!(r.status, 200, "{}", host.running.output());
    assert_eq!(r.text(), "url=/new/page query=x=1 added=yes\n");
    assert_eq!(r.header("X-Rewritten-From"), Some("/old/page?x=1"));
    // A URL the filter leaves alone reaches the extension unchanged, without the header.
    let r = get(&host.address, "/plain?y");
    assert_eq!(r.text(), "url=/plain query=y added=\n");
    assert_eq!(r.header("X-Rewritten-From"), None);
    host.stop();
}

#[test]
fn filter_answers_with_write_client_and_req_finished_and_the_connection_closes() {
    let dist = suite();
    // No extension at all: the filter answers, everything else gets the built-in 404.
    let host = serve(&dist, false);
    let mut c = Connection::open(&host.address);
    let r = c.get("/answer");
    assert_eq!((r.status, r.reason.as_str()), (203, "From Filter"));
    assert_eq!(r.text(), "answered by the filter\n");
    // SF_STATUS_REQ_FINISHED: the server disconnects after the filter's answer.
    assert!(
        c.closed_by_server(),
        "the connection stayed open after SF_STATUS_REQ_FINISHED"
    );
    let r = get(&host.address, "/elsewhere");
    assert_eq!(r.status, 404);
    let finished = host.stop();
    assert_contains(&finished.stderr, "isapi-host: GET /answer 203 ");
    assert_contains(&finished.stderr, "isapi-host: GET /elsewhere 404 0 (no extension)");
}

#[test]
fn log_fields_changed_by_the_filter_are_what_the_host_logs() {
    let (_dist, host) = suite_served();
    let r = get(&host.address, "/secret/file?token=abc");
    assert_eq!(r.status, 200);
    let r = get(&host.address, "/public?q=1");
    assert_eq!(r.status, 200);
    let finished = host.stop();
    let body_len = "url=/secret/file query=token=abc added=\n".len();
    assert_contains(&finished.stderr, &format!("isapi-host: GET /redacted 299 {body_len}"));
    assert!(!finished.stderr.contains("/secret"), "{}", finished.stderr);
    assert_contains(&finished.stderr, "isapi-host: GET /public?q=1 200 ");
}

#[test]
fn read_raw_data_and_send_raw_data_see_and_rewrite_the_bytes_on_the_wire() {
    let (dist, host) = suite_served();
    // READ_RAW_DATA rewrote the request line before it was parsed.
    let r = get(&host.address, "/raw-in?a");
    assert_eq!(r.text(), "url=/raw-rewritten query=a added=\n");
    // SEND_RAW_DATA rewrote the response body on its way out.
    let r = get(&host.address, "/echo?TOKEN-1234");
    assert_eq!(r.text(), "url=/echo query=TOKEN-XXXX added=\n");
    host.stop();
    assert_contains(&dist.log(), "READ_RAW_DATA saw b'GET /raw-in?a HTTP/1.1'");
}

#[test]
fn send_response_sees_the_status_and_edits_the_extension_headers() {
    let (_dist, host) = suite_served();
    let r = get(&host.address, "/x?hide");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Hide"), None);
    assert_eq!(r.header("X-Status-Seen"), Some("200"));
    host.stop();
}

#[test]
fn filter_context_is_kept_per_connection_and_released_at_end_of_net_session() {
    let (dist, host) = suite_served();
    let mut c = Connection::open(&host.address);
    for n in 1..=3 {
        let r = c.get(&format!("/count/{n}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Request-Number"), Some(n.to_string().as_str()));
    }
    drop(c);
    // A new connection starts with a fresh FilterContext.
    let r = get(&host.address, "/count/again");
    assert_eq!(r.header("X-Request-Number"), Some("1"));
    host.stop();
    let log = dist.log();
    assert_contains(&log, "end of net session after 3 counted requests");
    assert_contains(&log, "end of net session after 1 counted requests");
}

#[test]
fn return_value_none_goes_on_and_an_int_is_returned_to_the_server_as_is() {
    let (_dist, host) = suite_served();
    // None: SF_STATUS_REQ_NEXT_NOTIFICATION, the extension answers.
    assert_eq!(get(&host.address, "/none").status, 200);
    // An int that is no SF_STATUS_* value reaches the server unchanged, which refuses it.
    let r = get(&host.address, "/odd-int");
    assert_eq!(r.status, 500);
    let finished = host.stop();
    assert_contains(&finished.stderr, "returned 0x3039, which is no SF_STATUS_* value");
}

#[test]
fn exception_in_http_filter_proc_is_logged_fails_the_request_and_the_next_is_served() {
    let (dist, host) = suite_served();
    let r = get(&host.address, "/boom");
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "500 Internal Server Error: an ISAPI filter failed\n");
    let r = get(&host.address, "/old/after");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "url=/new/after query= added=yes\n");
    host.stop();
    let log = dist.log();
    assert_contains(
        &log,
        "HttpFilterProc failed for notification SF_NOTIFY_PREPROC_HEADERS:",
    );
    assert_contains(&log, "ValueError: boom from the filter");
}

#[test]
fn terminate_filter_is_called_at_shutdown() {
    let (dist, host) = suite_served();
    assert!(!dist.log().contains("TerminateFilter"));
    let finished = host.stop();
    assert_contains(&finished.stdout, "isapi-host: filter \"filter suite\"");
    assert_contains(&dist.log(), "stdout: TerminateFilter(0) called");
}

#[test]
fn example_filter_rewrites_legacy_urls_for_its_extension() {
    let dist = shared(&repo().join("examples/filter/rewrite.py")).copy();
    let host = serve(&dist, true);
    let mut c = Connection::open(&host.address);
    let r = c.get("/legacy/docs/page?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Rewritten-From"), Some("/legacy/docs/page?x=1"));
    assert_eq!(r.text(), "path: /docs/page\nquery: x=1\n");
    let r = c.get("/docs/page?x=1");
    assert_eq!(r.header("X-Rewritten-From"), None);
    assert_eq!(r.text(), "path: /docs/page\nquery: x=1\n");
    assert_eq!(c.get("/legacy/two").text(), "path: /two\nquery: \n");
    drop(c);
    host.stop();
    let log = dist.log();
    assert_contains(&log, "rewrote /legacy/docs/page?x=1 (rewrite 1 on this connection)");
    assert_contains(&log, "rewrote /legacy/two (rewrite 2 on this connection)");
}

/// A GET for `path` with extra header lines, the connection closed after it.
fn get_with(host: &Host, path: &str, headers: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    request(&host.address, raw.as_bytes())
}

/// The application's physical folder as the host reports it (the DLL's folder).
fn physical_root(dist: &Frozen) -> String {
    format!("{}\\", win_path(&dist.dist))
}

#[test]
fn url_map_physical_path_set_by_the_filter_is_the_extensions_path_translated() {
    let (dist, host) = suite_served();
    let root = physical_root(&dist);
    let r = get(&host.address, "/who/mapped/page?x");
    assert_eq!(r.status, 200, "{}", dist.log());
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
    host.stop();
}

#[test]
fn authentication_sees_basic_credentials_and_the_user_it_sets_is_the_extensions_user() {
    let (dist, host) = suite_served();
    // "alias:secret": the filter maps it to mapped-user / mapped-password.
    let r = get_with(&host, "/who/a", "Authorization: Basic YWxpYXM6c2VjcmV0\r\n");
    assert_eq!(r.status, 200, "{}", dist.log());
    let text = r.text();
    let auth = text.lines().skip(1).take(5).collect::<Vec<_>>().join("|");
    assert_eq!(
        auth,
        "AUTH_TYPE=Basic|AUTH_USER=mapped-user|REMOTE_USER=mapped-user|LOGON_USER=mapped-user|\
         AUTH_PASSWORD=mapped-password"
    );
    // AUTH_COMPLETE runs after authentication and sees the mapped user too.
    assert_contains(&text, "HTTP_X_AUTH_COMPLETE=status=200 reset=False user=mapped-user\n");
    // "bob:pw" passes through unchanged.
    let r = get_with(&host, "/who/b", "Authorization: Basic Ym9iOnB3\r\n");
    let text = r.text();
    let auth = text.lines().skip(1).take(5).collect::<Vec<_>>().join("|");
    assert_eq!(
        auth,
        "AUTH_TYPE=Basic|AUTH_USER=bob|REMOTE_USER=bob|LOGON_USER=bob|AUTH_PASSWORD=pw"
    );
    host.stop();
    let log = dist.log();
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
    let (dist, host) = suite_served();
    let r = get_with(&host, "/who/c", "X-Auth-In: lower case\r\n");
    assert_eq!(r.status, 200, "{}", dist.log());
    let text = r.text();
    // SetHeader replaced the client's header, AddHeader added one, HttpStatus was 200.
    assert_contains(&text, "\nHTTP_X_AUTH_IN=LOWER CASE\n");
    assert_contains(&text, "\nHTTP_X_AUTH_COMPLETE=status=200 reset=False user=\n");
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
    let finished = host.stop();
    assert_contains(
        &finished.stderr,
        "isapi-host: GET /who/reset 401 0 (authentication reset by a filter)",
    );
}

#[test]
fn access_denied_is_raised_for_the_extensions_401_with_the_mapped_path() {
    let (_dist, host) = suite_served();
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
    host.stop();
}

#[test]
fn read_next_makes_the_host_read_more_and_call_again_with_all_the_bytes() {
    let (dist, host) = suite_served();
    let mut c = Connection::open(&host.address);
    c.send(b"GET /partial?p HTTP/1.1\r\nHost: t\r\n");
    std::thread::sleep(Duration::from_millis(500));
    c.send(b"\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", dist.log());
    assert_eq!(r.text(), "url=/partial-joined-after-1 query=p added=\n");
    drop(c);
    host.stop();
    let log = dist.log();
    let first = "GET /partial?p HTTP/1.1\r\nHost: t\r\n".len();
    assert_contains(
        &log,
        &format!("READ_RAW_DATA holds {first} bytes of an incomplete head"),
    );
    assert_eq!(log.matches("READ_RAW_DATA holds").count(), 1, "{log}");
}

#[test]
fn disable_notifications_skips_them_for_the_rest_of_the_request_only() {
    let (dist, host) = suite_served();
    let mut c = Connection::open(&host.address);
    // /quiet disables SEND_RESPONSE, LOG and END_OF_REQUEST in PREPROC_HEADERS.
    let r = c.get("/quiet?mark");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Marked"), None);
    // The next request on the same connection gets them all again.
    let r = c.get("/loud?mark");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Marked"), Some("yes"));
    drop(c);
    let finished = host.stop();
    assert_contains(&finished.stderr, "isapi-host: GET /quiet?mark 200 ");
    assert_contains(&finished.stderr, "isapi-host: GET /loud-marked?mark 200 ");
    let log = dist.log();
    assert!(!log.contains("/quiet"), "{log}");
    assert_contains(&log, "END_OF_REQUEST /loud data=None");
}

#[test]
fn end_of_request_comes_after_the_response_and_before_log_for_every_request() {
    let (dist, host) = suite_served();
    let mut c = Connection::open(&host.address);
    for n in 1..=2 {
        assert_eq!(
            c.get(&format!("/eor/{n}?mark")).text(),
            format!("url=/eor/{n} query=mark added=\n")
        );
    }
    drop(c);
    host.stop();
    assert_in_order(
        &dist.log(),
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
    let (dist, host) = suite_served();
    let r = get(&host.address, "/reload-filter");
    assert_eq!(r.status, 200, "{}", dist.log());
    assert_eq!(r.header("X-Filter-Generation"), Some("2"));
    assert_eq!(r.text(), "url=/reload-filter query= added=\n");
    // The reloaded filter goes on serving.
    let r = get(&host.address, "/old/x");
    assert_eq!(r.text(), "url=/new/x query= added=yes\n");
    let before_stop = dist.log();
    assert_eq!(
        before_stop.matches("TerminateFilter(0) called").count(),
        1,
        "{before_stop}"
    );
    host.stop();
    let log = dist.log();
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
