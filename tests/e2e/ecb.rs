//! The EXTENSION_CONTROL_BLOCK object a frozen script gets: every pywin32 attribute and
//! method, proved over HTTP under Wine with tests/fixtures/ecb_app (each path of it
//! exercises one part of the API and answers what the script saw).

use crate::support::{
    fixture, get, post, post_as, request, shared_with, win_path, Connection, Freeze, Frozen, Host, Response,
};

/// One frozen ecb_app shared by every test here (with data.bin beside the DLL).
fn app() -> &'static Frozen {
    shared_with("ecb_app with data.bin", || {
        let app = Freeze::script(fixture("ecb_app/ecb_app.py")).ok();
        std::fs::write(app.dist.join("data.bin"), data()).unwrap();
        app
    })
}

fn data() -> Vec<u8> {
    (0..300u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn start() -> Host {
    Host::start(&app().dll(), &[])
}

/// The script's log (tracebacks of failed callbacks land there).
fn script_log() -> String {
    app().log()
}

fn ok_text(response: &Response) -> String {
    assert_eq!(response.status, 200, "{response:?}\nlog:\n{}", script_log());
    response.text()
}

/// Python's repr of a Windows path as bytes.
fn bytes_repr(path: &str) -> String {
    format!("b'{}'", path.replace('\\', "\\\\"))
}

#[test]
fn attributes_have_pywin32_types_and_the_request_values() {
    let host = start();
    let form = post_as(
        &host.address,
        "/attrs?a=1&b=%20",
        "application/x-www-form-urlencoded",
        b"name=value&x=1",
    );
    let text = ok_text(&form);
    let translated = bytes_repr(&format!("{}\\attrs", win_path(&app().dist)));
    assert_eq!(
        text,
        format!(
            "Version=0x80000\nTotalBytes=14\nAvailableBytes=14\nConnID=int True\nHttpStatusCode=200\n\
             Method=b'POST'\nQueryString=b'a=1&b=%20'\nPathInfo=b'/attrs'\nPathTranslated={translated}\n\
             ContentType=b'application/x-www-form-urlencoded'\nAvailableData=b'name=value&x=1'\n\
             LogData read: AttributeError: LogData attribute can only be set\n\
             Version write: AttributeError: attribute 'Version' of 'isapi.EXTENSION_CONTROL_BLOCK' objects is not writable\n"
        )
    );
    let finished = host.finish();
    assert!(
        finished.stderr.contains("isapi-host: POST /attrs?a=1&b=%20 200 ")
            && finished
                .stderr
                .lines()
                .any(|l| l.starts_with("isapi-host: POST /attrs") && l.ends_with(" logged-by-ecb-app")),
        "LogData missing from the request log line:\n{}",
        finished.stderr
    );
}

#[test]
fn http_status_code_set_by_the_script_is_the_default_response_status() {
    let host = start();
    let response = get(&host.address, "/status");
    assert_eq!(response.status, 202, "{response:?}");
    assert_eq!(
        response.text(),
        "no headers sent; status from HttpStatusCode\nHttpStatusCode=202 written=44\n"
    );
}

#[test]
fn server_variables_bytes_unicode_defaults_errors_and_values_over_64_kib() {
    let host = start();
    // 40000 characters are 80002 bytes as UTF-16: more than pywin32's 64 KiB buffer.
    let long = "y".repeat(40000);
    let raw = format!("GET /vars HTTP/1.1\r\nHost: x\r\nX-Long: {long}\r\nConnection: close\r\n\r\n");
    let text = ok_text(&request(&host.address, raw.as_bytes()));
    assert_eq!(
        text,
        "REQUEST_METHOD=b'GET'\nUNICODE_URL='/vars'\ndefault='fallback'\nlong=str 40000 True\nlong bytes=40000\n\
         missing: ExtensionError errno=1413 funcname=GetServerVariable\n"
    );
}

#[test]
fn get_server_variable_returns_an_explicit_none_default_for_a_missing_variable() {
    let host = start();
    let text = ok_text(&get(&host.address, "/vars-default"));
    assert_eq!(
        text,
        "None default=None\nzero default=0\nfound with None default=b'GET'\nunicode None default=None\n\
         three arguments: TypeError: GetServerVariable expected at most 2 arguments, got 3\n"
    );
}

#[test]
fn read_client_returns_the_body_after_available_data() {
    let host = start();
    let body: Vec<u8> = (0..400).flat_map(|_| 0..=255u8).collect();
    assert_eq!(
        ok_text(&post(&host.address, "/read", &body)),
        "available=49152 read=53248 total=102400 same=True\n"
    );
}

#[test]
fn is_keep_alive_and_is_keep_conn_follow_the_connection() {
    let host = start();
    let mut connection = Connection::open(&host.address);
    let kept = connection.exchange(b"GET /keep HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(ok_text(&kept), "IsKeepAlive=1 IsKeepConn=True\n");
    let closed = connection.exchange(b"GET /keep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(ok_text(&closed), "IsKeepAlive=0 IsKeepConn=False\n");
}

#[test]
fn impersonation_and_anonymous_tokens_are_impersonation_token_handles() {
    let host = start();
    // TokenType 2 is TokenImpersonation; the anonymous tokens belong to the script, which
    // closes them (CloseHandle returns 1).
    assert_eq!(
        ok_text(&get(&host.address, "/tokens")),
        "impersonation=int True type=2\nanonymous str=int True type=2\nanonymous bytes=int True type=2\nclosed=1,1\n\
         wrong type: TypeError: must pass a string or unicode object (got int)\n"
    );
}

#[test]
fn map_url_to_path_flush_flag_and_report_unhealthy() {
    let host = start();
    let text = ok_text(&get(&host.address, "/misc"));
    let root = win_path(&app().dist);
    let long_len = root.len() + 1 + 5000;
    assert_eq!(
        text,
        format!(
            "MapURLToPath={}\nMapURLToPath long={long_len}\n",
            bytes_repr(&format!("{root}\\some\\file.txt"))
        )
    );
    let finished = host.finish();
    assert!(
        finished
            .stderr
            .contains("isapi-host: the extension reports itself unhealthy: ecb-app feels unwell\n")
            && finished
                .stderr
                .contains("isapi-host: the extension reports itself unhealthy: \n"),
        "{}",
        finished.stderr
    );
}

#[test]
fn redirect_answers_302_with_the_location() {
    let host = start();
    let response = get(&host.address, "/redirect");
    assert_eq!(response.status, 302, "{response:?}");
    assert_eq!(response.header("Location"), Some("/elsewhere?x=1"));
}

#[test]
fn io_completion_is_called_with_the_byte_count_of_an_async_write() {
    let host = start();
    for (path, arg) in [("/async", "('ctx', 1)"), ("/async?old", "('ctx', 1)")] {
        let response = get(&host.address, path);
        assert_eq!(
            ok_text(&response),
            format!(
                "{}callback: cbIO=1000 dwError=0 arg={arg} same=True\n",
                "a".repeat(1000)
            ),
            "{path}"
        );
    }
}

#[test]
fn a_failing_io_completion_is_logged_and_ends_the_request() {
    let host = start();
    // HTTP/1.0, so the body ends with the connection: a request that ends with
    // HSE_STATUS_ERROR gets no final chunk.
    let response = request(&host.address, b"GET /async-failing HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(response.text(), "before the failing callback\n");
    // The server goes on answering.
    assert_eq!(
        ok_text(&get(&host.address, "/keep")),
        "IsKeepAlive=0 IsKeepConn=False\n"
    );
    let log = script_log();
    assert!(
        log.contains("the IOCompletion callback failed") && log.contains("ValueError: callback goes wrong on purpose"),
        "{log}"
    );
}

#[test]
fn exec_url_runs_the_child_through_the_extension_and_reports_its_status() {
    let host = start();
    let response = get(&host.address, "/exec");
    assert_eq!(response.status, 201, "{response:?}\n{}", script_log());
    assert_eq!(
        response.text(),
        "child: b'GET' b'/child' b'from=parent'\nparent: ExecURL status (201, 0, 0) arg='exec'\n"
    );
    assert_eq!(
        ok_text(&get(&host.address, "/exec-bad")),
        "info not None: ValueError: info and entity params must be None\n"
    );
}

#[test]
fn transmit_file_sends_the_file_between_head_and_tail() {
    let host = start();
    let data = data();
    let response = get(&host.address, "/transmit");
    let mut expected = b"HEAD>".to_vec();
    expected.extend_from_slice(&data);
    expected.extend_from_slice(b"<TAIL[cbIO=310 dwError=0 closed=True]");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(response.body, expected, "{}", response.text());

    // With HSE_IO_SEND_HEADERS the head is the header block and the status comes along.
    let response = get(&host.address, "/transmit?headers");
    let mut expected = data[10..110].to_vec();
    expected.extend_from_slice(b"<TAIL[cbIO=105 dwError=0 closed=True]");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("Content-Type"), Some("application/x-test"));
    assert_eq!(response.body, expected, "{}", response.text());
}

#[test]
fn after_done_with_session_everything_raises_and_the_server_keeps_answering() {
    let host = start();
    assert_eq!(ok_text(&get(&host.address, "/done")), "done\n");
    let report = ok_text(&get(&host.address, "/report"));
    let invalid = "RuntimeError: Invalid ECB (DoneWithSession has been called)";
    let names = [
        "Version",
        "TotalBytes",
        "AvailableBytes",
        "ConnID",
        "HttpStatusCode",
        "Method",
        "QueryString",
        "PathInfo",
        "PathTranslated",
        "ContentType",
        "AvailableData",
        "LogData",
        "set HttpStatusCode",
        "set LogData",
        "WriteClient",
        "write",
        "GetServerVariable",
        "ReadClient",
        "SendResponseHeaders",
        "SetFlushFlag",
        "Redirect",
        "MapURLToPath",
        "DoneWithSession",
        "close",
        "IsKeepAlive",
        "IsKeepConn",
        "GetImpersonationToken",
        "GetAnonymousToken",
        "ExecURL",
        "GetExecURLStatus",
        "IOCompletion",
        "ReqIOCompletion",
        "TransmitFile",
        "ReportUnhealthy",
    ];
    let expected: String = names.iter().map(|n| format!("{n}: {invalid}\n")).collect();
    assert_eq!(report, expected);

    // An ECB kept after HttpExtensionProc returned is just as dead.
    assert_eq!(ok_text(&get(&host.address, "/keep-ecb")), "kept\n");
    assert_eq!(
        ok_text(&get(&host.address, "/report?kept")),
        format!("{invalid}\n{invalid}\n")
    );
}
