//! isapi.wsgi, frozen and served over HTTP under Wine: the examples/wsgi application's
//! documented answers, and the PEP 3333 behaviours the probe application
//! (tests/fixtures/scripts/wsgi_probe.py) shows: environ, mount point, streamed input and
//! output, wsgiref.validate, close(), errors and clients that go away.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{
    assert_contains, fixture, get, post, repo, request, shared, Connection, Freeze, Frozen, Host, Response, ERROR_PAGE,
};

fn example() -> &'static Frozen {
    shared(&repo().join("examples/wsgi/wsgi_hello.py"))
}

/// The probe, frozen once; each test looks for log lines only it causes.
fn probe_app() -> &'static Frozen {
    shared(&fixture("scripts/wsgi_probe.py"))
}

fn probe() -> Host {
    Host::start(&probe_app().dll(), &[])
}

/// Sends `raw` and reads until the server closes: (head, one char per byte as sent; body
/// bytes as sent on the wire).
fn raw_exchange(address: &str, raw: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(raw).unwrap();
    let mut all = Vec::new();
    // A reset after the data (the server ending a broken response) still leaves the data.
    let _ = stream.read_to_end(&mut all);
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&all)));
    let head = all[..end].iter().map(|&b| char::from(b)).collect();
    (head, all[end + 4..].to_vec())
}

fn sha256_hex(data: &[u8]) -> String {
    isapi_freeze_format::to_hex(&Sha256::digest(data))
}

#[test]
fn example_app_gives_its_documented_answers() {
    let host = Host::start(&example().dll(), &[]);
    let check = |r: &Response, status: u16, text: &str| {
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"), "{r:?}");
        assert_eq!(
            r.header("Content-Length"),
            Some(text.len().to_string().as_str()),
            "{r:?}"
        );
        assert_eq!(r.text(), text);
    };
    check(
        &get(&host.address, "/"),
        200,
        "Hello from a WSGI application under ISAPI.\n",
    );
    check(
        &get(&host.address, "/where?a=1"),
        200,
        "SCRIPT_NAME: \nPATH_INFO: /where\nQUERY_STRING: a=1\n",
    );
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    check(
        &post(&host.address, "/upload", &body),
        200,
        &format!("received 100000 bytes, sha256 {}\n", sha256_hex(&body)),
    );
    check(&get(&host.address, "/missing"), 404, "no such page: GET /missing\n");
}

#[test]
fn example_app_mounted_at_a_vpath_gets_script_name_and_the_rest_as_path_info() {
    let host = Host::start(&example().dll(), &["--vpath", "/app"]);
    let where_ = get(&host.address, "/app/where?b=2");
    assert_eq!(
        where_.text(),
        "SCRIPT_NAME: /app\nPATH_INFO: /where\nQUERY_STRING: b=2\n"
    );
    let root = get(&host.address, "/app");
    assert_eq!(root.text(), "Hello from a WSGI application under ISAPI.\n");
    let root_slash = get(&host.address, "/app/");
    assert_eq!(root_slash.text(), "Hello from a WSGI application under ISAPI.\n");
}

#[test]
fn environ_carries_cgi_variables_headers_and_wsgi_keys() {
    let host = probe();
    let port = host.port();
    let r = request(
        &host.address,
        b"GET /env?q=1&r=%20 HTTP/1.1\r\nHost: probe.example:8080\r\nX-Probe: one\r\nX-Probe: two\r\n\
X_Probe_Underscore: spoof\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let expected = format!(
        "REQUEST_METHOD='GET'\nSCRIPT_NAME=''\nPATH_INFO='/env'\nQUERY_STRING='q=1&r=%20'\n\
CONTENT_TYPE absent\nCONTENT_LENGTH='0'\nSERVER_NAME='probe.example'\nSERVER_PORT='{port}'\n\
SERVER_PROTOCOL='HTTP/1.1'\nREMOTE_ADDR='127.0.0.1'\nHTTP_HOST='probe.example:8080'\n\
HTTP_X_PROBE='one,two'\nHTTP_X_PROBE_UNDERSCORE absent\nwsgi.url_scheme='http'\n\
wsgi.multithread=True\nwsgi.multiprocess=False\nwsgi.run_once=False\nwsgi.version=(1, 0)\n"
    );
    assert_eq!(r.text(), expected);
}

#[test]
fn two_mib_post_streams_through_wsgi_input_in_pieces() {
    let host = probe();
    let body: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i * 13 % 256) as u8).collect();
    let r = post(&host.address, "/hash", &body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.text(),
        format!("2097152 bytes, largest read 32768, sha256 {}\n", sha256_hex(&body))
    );
}

#[test]
fn chunked_request_body_reaches_wsgi_input_whole() {
    let host = probe();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8).collect();
    let mut raw = b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in body.chunks(70_000) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = request(&host.address, &raw);
    assert_eq!(
        r.text(),
        format!("300000 bytes, largest read 32768, sha256 {}\n", sha256_hex(&body))
    );
}

#[test]
fn readline_readlines_and_iteration_split_a_multi_line_body() {
    let host = probe();
    let r = post(&host.address, "/lines", b"alpha\nbravo charlie\n\nlast without newline");
    assert_eq!(
        r.text(),
        "first b'alpha\\n'\ncapped b'brav'\nrest b'o charlie\\n'\niter b'\\n'\n\
iter b'last without newline'\nafter end b'' b''\n"
    );
}

#[test]
fn wsgiref_validator_accepts_what_the_adapter_does() {
    let host = probe();
    let r = post(&host.address, "/validated", b"line one\nrest of it");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "validated: line one\n|rest of it\n");
    let log = probe_app().log();
    assert!(!log.contains("WSGIWarning"), "{log}");
    // (Other tests' routes fail on purpose with AssertionErrors of their own.)
    assert!(!log.contains("failed on POST /validated"), "{log}");
}

#[test]
fn generator_response_goes_out_chunk_by_chunk_as_produced() {
    let host = probe();
    let (head, body) = raw_exchange(
        &host.address,
        b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_contains(&head, "\r\nTransfer-Encoding: chunked");
    assert!(!head.contains("Content-Length"), "{head}");
    let expected: String = (0..5).map(|n| format!("8\r\nchunk {n}\n\r\n")).collect::<String>() + "0\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&body), expected);
}

#[test]
fn write_callable_output_precedes_the_returned_body() {
    let host = probe();
    let r = get(&host.address, "/write");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "written by write(), then returned\n");
}

#[test]
fn close_of_the_returned_iterable_is_called() {
    let host = probe();
    let r = get(&host.address, "/close");
    assert_eq!(r.text(), "closing body\n");
    probe_app().wait_for_log("close() being called", |log| log.contains("close() called for /close"));
}

#[test]
fn application_exception_gives_a_generic_500_and_the_traceback_only_in_the_log() {
    let host = probe();
    let mut connection = Connection::open(&host.address);
    let failed = connection.get("/boom");
    assert_eq!((failed.status, failed.reason.as_str()), (500, "Internal Server Error"));
    assert_eq!(failed.header("Content-Type"), Some("text/html"));
    assert_eq!(failed.text(), ERROR_PAGE);
    // The connection stays usable, and the application serves the next request.
    assert_eq!(connection.get("/write").text(), "written by write(), then returned\n");
    let log = probe_app().log();
    assert_contains(&log, "isapi.wsgi: the application failed on GET /boom:");
    assert_contains(&log, "RuntimeError: wsgi probe failure with secret-1234");
}

#[test]
fn exception_after_the_response_started_ends_the_connection() {
    let host = probe();
    let (head, body) = raw_exchange(&host.address, b"GET /boom-late HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // The part sent before the error, then the end of the connection instead of the last
    // chunk, so the client knows the response is incomplete.
    let body = String::from_utf8_lossy(&body);
    assert!(body.eq_ignore_ascii_case("b\r\nfirst part\n\r\n"), "{body:?}");
    let log = probe_app().wait_for_log("the late failure", |log| {
        log.contains("RuntimeError: wsgi probe late failure")
    });
    assert_contains(&log, "isapi.wsgi: the application failed on GET /boom-late:");
    assert_eq!(get(&host.address, "/write").status, 200);
}

#[test]
fn client_leaving_mid_body_does_not_stop_the_server() {
    let host = probe();
    let mut stream = TcpStream::connect(&host.address).unwrap();
    stream
        .write_all(b"POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    stream.write_all(&vec![7u8; 100 * 1024]).unwrap();
    stream.shutdown(Shutdown::Both).unwrap();
    drop(stream);
    probe_app().wait_for_log("the body read failing", |log| {
        log.contains("isapi.wsgi: the application failed on POST /hash:")
            && log.contains("isapi.wsgi.ClientDisconnected")
    });
    let next = get(&host.address, "/write");
    assert_eq!(next.status, 200, "{next:?}");
    assert_eq!(next.text(), "written by write(), then returned\n");
}

#[test]
fn factory_serves_on_the_server_thread_unless_asked_for_workers() {
    for (call, expected) in [
        ("factory(app)", "multithread=True worker=False\n"),
        ("factory(app, threaded=True)", "multithread=True worker=True\n"),
    ] {
        let app = Freeze::source(
            "inline_wsgi.py",
            &format!(
                "import threading\n\
                 from isapi.wsgi import factory\n\
                 def app(environ, start_response):\n\
                 \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
                 \x20   worker = threading.current_thread().name.startswith('isapi-worker')\n\
                 \x20   return [f\"multithread={{environ['wsgi.multithread']}} worker={{worker}}\\n\".encode()]\n\
                 __ExtensionFactory__ = {call}\n"
            ),
        )
        .ok();
        let host = Host::start(&app.dll(), &[]);
        let r = get(&host.address, "/");
        assert_eq!(r.status, 200, "{call}: {r:?}");
        // A one-block body gets a Content-Length, so the response is not chunked.
        assert_eq!(
            r.header("Content-Length"),
            Some(expected.len().to_string().as_str()),
            "{call}: {r:?}"
        );
        assert_eq!(r.text(), expected, "{call}");
    }
}

/// The environ's CGI variables as the probe's `/agree` route lists them, with the client's
/// port (which changes every time) replaced by `N`.
fn agreed_environ(host: &Host, raw: &[u8]) -> String {
    let r = request(&host.address, raw);
    assert_eq!(r.status, 200, "{r:?}");
    let listing = r.body.escape_ascii().to_string();
    let at = listing.find("REMOTE_PORT=\\'").expect("REMOTE_PORT listed") + "REMOTE_PORT=\\'".len();
    let digits = listing[at..].chars().take_while(char::is_ascii_digit).count();
    assert!(digits > 0, "{listing}");
    format!("{}N{}", &listing[..at], &listing[at + digits..])
}

#[test]
fn each_request_gets_its_own_values_though_the_runtime_reuses_repeated_ones() {
    // The runtime keeps the strings of the last request's values and reuses them when the
    // bytes are the same: a value that changes, comes back, or goes away must show as it
    // is in each request.
    let host = probe();
    let first = b"GET /agree?q=1 HTTP/1.1\r\nHost: one.example\r\nX-Thing: 1\r\nConnection: close\r\n\r\n";
    let second = b"POST /agree/b?q=22 HTTP/1.1\r\nHost: two.example\r\nX-Thing: 22\r\nX-Other: o\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";
    let wanted_first = [
        "HTTP_HOST=\\'one.example\\'",
        "HTTP_X_THING=\\'1\\'",
        "QUERY_STRING=\\'q=1\\'",
        "REQUEST_METHOD=\\'GET\\'",
        "PATH_INFO=\\'/agree\\'",
        "SERVER_NAME=\\'one.example\\'",
    ];
    let wanted_second = [
        "HTTP_HOST=\\'two.example\\'",
        "HTTP_X_THING=\\'22\\'",
        "HTTP_X_OTHER=\\'o\\'",
        "QUERY_STRING=\\'q=22\\'",
        "REQUEST_METHOD=\\'POST\\'",
        "PATH_INFO=\\'/agree/b\\'",
        "SERVER_NAME=\\'two.example\\'",
    ];
    for (raw, wanted) in [
        (&first[..], &wanted_first[..]),
        (second, &wanted_second),
        (first, &wanted_first),
    ] {
        let listing = agreed_environ(&host, raw);
        assert!(listing.starts_with("agree\\n"), "{listing}");
        for line in wanted {
            assert!(listing.contains(&format!("\\n{line}\\n")), "{line} in {listing}");
        }
        assert_eq!(listing.contains("HTTP_X_OTHER"), raw == second, "{listing}");
    }
}

#[test]
fn native_and_python_cgi_environ_agree_on_awkward_requests() {
    // The runtime builds the CGI variables natively; isapi.wsgi's Python version is what
    // runs under pywin32's loader. The route lists the native ones and first says whether
    // the Python ones are the same. The header value's bytes (C2 A0, a UTF-8 no-break space)
    // arrive as sent, one char each; the last, 0xA0, is what str.strip() would have taken
    // for whitespace.
    let root = probe();
    let port = root.port();
    let listing = agreed_environ(
        &root,
        b"POST /agree/caf%C3%A9?x=%FF&y HTTP/1.1\r\nHost: h.example\r\nX-Tab:\t  tabbed value \t\r\n\
X-Latin: caf\xc2\xa0\r\nX_Under: no\r\nX-Dup: a\r\nx-dup: b\r\nContent-Type: text/x\r\n\
Content-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(
        listing,
        format!(
            "agree\\nCONTENT_LENGTH=\\'3\\'\\nCONTENT_TYPE=\\'text/x\\'\\nGATEWAY_INTERFACE=\\'CGI/1.1\\'\\n\
HTTP_CONNECTION=\\'close\\'\\nHTTP_HOST=\\'h.example\\'\\nHTTP_X_DUP=\\'a,b\\'\\nHTTP_X_LATIN=\\'caf\\xc2\\\\xa0\\'\\n\
HTTP_X_TAB=\\'tabbed value\\'\\nPATH_INFO=\\'/agree/caf\\xc3\\xa9\\'\\nQUERY_STRING=\\'x=%FF&y\\'\\n\
REMOTE_ADDR=\\'127.0.0.1\\'\\nREMOTE_PORT=\\'N\\'\\nREQUEST_METHOD=\\'POST\\'\\nSCRIPT_NAME=\\'\\'\\n\
SERVER_NAME=\\'h.example\\'\\nSERVER_PORT=\\'{port}\\'\\nSERVER_PROTOCOL=\\'HTTP/1.1\\'\\n\
SERVER_SOFTWARE=\\'isapi-host/0.1.0\\'\\nwsgi.url_scheme=\\'http\\'\\n"
        )
    );
    // Mounted at /app, asked for in other case: SCRIPT_NAME keeps the request's spelling.
    let mounted = Host::start(&probe_app().dll(), &["--vpath", "/app"]);
    let port = mounted.port();
    let listing = agreed_environ(
        &mounted,
        b"GET /APP/agree HTTP/1.1\r\nHost: m.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        listing,
        format!(
            "agree\\nCONTENT_LENGTH=\\'0\\'\\nGATEWAY_INTERFACE=\\'CGI/1.1\\'\\nHTTP_CONNECTION=\\'close\\'\\n\
HTTP_HOST=\\'m.example\\'\\nPATH_INFO=\\'/agree\\'\\nQUERY_STRING=\\'\\'\\nREMOTE_ADDR=\\'127.0.0.1\\'\\n\
REMOTE_PORT=\\'N\\'\\nREQUEST_METHOD=\\'GET\\'\\nSCRIPT_NAME=\\'/APP\\'\\nSERVER_NAME=\\'m.example\\'\\n\
SERVER_PORT=\\'{port}\\'\\nSERVER_PROTOCOL=\\'HTTP/1.1\\'\\nSERVER_SOFTWARE=\\'isapi-host/0.1.0\\'\\n\
wsgi.url_scheme=\\'http\\'\\n"
        )
    );
    // A chunked body has no length: no CONTENT_LENGTH.
    let port = root.port();
    let listing = agreed_environ(
        &root,
        b"POST /agree HTTP/1.1\r\nHost: c.example\r\nTransfer-Encoding: chunked\r\n\
Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(
        listing,
        format!(
            "agree\\nGATEWAY_INTERFACE=\\'CGI/1.1\\'\\nHTTP_CONNECTION=\\'close\\'\\nHTTP_HOST=\\'c.example\\'\\n\
HTTP_TRANSFER_ENCODING=\\'chunked\\'\\nPATH_INFO=\\'/agree\\'\\nQUERY_STRING=\\'\\'\\nREMOTE_ADDR=\\'127.0.0.1\\'\\n\
REMOTE_PORT=\\'N\\'\\nREQUEST_METHOD=\\'POST\\'\\nSCRIPT_NAME=\\'\\'\\nSERVER_NAME=\\'c.example\\'\\n\
SERVER_PORT=\\'{port}\\'\\nSERVER_PROTOCOL=\\'HTTP/1.1\\'\\nSERVER_SOFTWARE=\\'isapi-host/0.1.0\\'\\n\
wsgi.url_scheme=\\'http\\'\\n"
        )
    );
}

/// The exception that ended a failed request for `path`, as the log's last traceback line
/// for it says (the frames differ between the native and the Python start_response).
fn logged_error(path: &str) -> Option<String> {
    logged_traceback(path)?.last().cloned()
}

/// The lines of the traceback logged for a failed request to `path` (without the log's
/// prefixes): up to the next request's failure, or a line the probe printed (`probe: `).
fn logged_traceback(path: &str) -> Option<Vec<String>> {
    let log = probe_app().log();
    let marker = format!("isapi.wsgi: the application failed on GET {path}:");
    let after = &log[log.find(&marker)? + marker.len()..];
    let lines = after
        .lines()
        .skip(1)
        .take_while(|l| !l.contains("isapi.wsgi:") && !l.contains("stderr: probe: "))
        .map(|line| line.split_once("stderr: ").map_or(line, |(_, rest)| rest).to_string());
    Some(lines.collect())
}

#[test]
fn native_and_python_request_loops_answer_every_route_alike() {
    // The runtime's request loop and start_response are native (wsgi_serve, WsgiResponse);
    // isapi.wsgi's Python ones are what runs under pywin32's loader. Each route asked for
    // at /ROUTE (native) and /py/ROUTE (Python) must put the same bytes on the wire and,
    // when the application fails, log the same error.
    let host = probe();
    // Under isapi-freeze's runtime the native ones are there to compare with.
    assert_eq!(get(&host.address, "/native").text(), "native: True\n");
    let exchange = |path: &str| {
        raw_exchange(
            &host.address,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let error_page = |length: usize| {
        format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: {length}")
    };
    let expected: &[(&str, &str, &[u8], Option<&str>)] = &[
        ("/write", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked", b"", None),
        ("/empty", "HTTP/1.1 204 No Content\r\nX-Empty: yes\r\nContent-Length: 0", b"", None),
        (
            "/latin1-headers",
            "HTTP/1.1 200 OK\r\nX-Latin: caf\u{e9}\r\ncontent-LENGTH: 3",
            b"abc",
            None,
        ),
        (
            "/non-ascii-headers",
            "HTTP/1.1 200 OK\r\nLocation: /caf\u{e9}\r\nX-Name: Zo\u{eb} M\u{fc}ller\r\nContent-Length: 3",
            b"ok\n",
            None,
        ),
        (
            "/replaced",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nContent-Length: 24",
            b"replaced after an error\n",
            None,
        ),
        ("/bad-status", "", b"", Some("ValueError: the status '200OK' is not 'NNN Reason'")),
        (
            "/bad-header",
            "",
            b"",
            Some("TypeError: each header must be a (str, str) tuple, not ('X-Count', 1)"),
        ),
        (
            "/line-break",
            "",
            b"",
            Some("ValueError: a header contains a line break: ('X-Note', 'a\\r\\nInjected: 1')"),
        ),
        (
            "/generated-line-break",
            "",
            b"",
            Some("ValueError: a header contains a line break: ('X-Note', 'a\\r\\nInjected: 1')"),
        ),
        (
            "/twice",
            "",
            b"",
            Some("AssertionError: start_response was already called (without exc_info)"),
        ),
        (
            "/no-start",
            "",
            b"",
            Some("AssertionError: the application returned without calling start_response"),
        ),
        ("/str-body", "", b"", Some("TypeError: the application must yield bytes, not str")),
        (
            "/not-latin1",
            "",
            b"",
            Some("UnicodeEncodeError: 'latin-1' codec can't encode character '\\u20ac' in position 8: ordinal not in range(256)"),
        ),
        (
            "/unicode-digits",
            "",
            b"",
            Some("UnicodeEncodeError: 'latin-1' codec can't encode characters in position 0-2: ordinal not in range(256)"),
        ),
        ("/reraised", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked", b"8\r\nstarted\n\r\n", Some("KeyError: 'too late'")),
        ("/tuple", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11", b"tuple body\n", None),
        (
            "/list-with-close",
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7",
            b"listed\n",
            None,
        ),
        (
            "/close-fails",
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked",
            b"5\r\npart\n\r\n",
            Some("RuntimeError: close failed"),
        ),
        ("/body-and-close-fail", "", b"", Some("RuntimeError: close failed")),
        (
            "/close-none",
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked",
            b"9\r\nno close\n\r\n0\r\n\r\n",
            None,
        ),
        ("/close-chains", "", b"", Some("RuntimeError: cleanup failed")),
        // The environ's keys in order: the CGI variables, the request headers, the wsgi.*
        // keys, the input stream, the control block.
        (
            "/keys",
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 318",
            b"REQUEST_METHOD\nSCRIPT_NAME\nPATH_INFO\nQUERY_STRING\nSERVER_NAME\nSERVER_PORT\nSERVER_PROTOCOL\n\
SERVER_SOFTWARE\nGATEWAY_INTERFACE\nREMOTE_ADDR\nwsgi.url_scheme\nREMOTE_PORT\nCONTENT_LENGTH\nHTTP_HOST\n\
HTTP_CONNECTION\nwsgi.version\nwsgi.errors\nwsgi.multithread\nwsgi.multiprocess\nwsgi.run_once\n\
wsgi.file_wrapper\nwsgi.input\nisapi.ecb\n",
            None,
        ),
    ];
    for &(route, head, body, error) in expected {
        let native = exchange(route);
        let python = exchange(&format!("/py{route}"));
        assert_eq!(native, python, "{route}: native, then Python");
        let (native_head, native_body) = native;
        match error {
            Some(error) => {
                assert_eq!(logged_error(route).as_deref(), Some(error), "{route}");
                assert_eq!(
                    logged_error(&format!("/py{route}")).as_deref(),
                    Some(error),
                    "/py{route}"
                );
            }
            None => assert_eq!(logged_error(route), None, "{route}"),
        }
        if head.is_empty() {
            // A failure before the response started: the generic 500 page.
            assert_eq!(
                native_head,
                format!("{}\r\nConnection: close", error_page(ERROR_PAGE.len())),
                "{route}"
            );
            assert_eq!(native_body, ERROR_PAGE.as_bytes(), "{route}");
        } else if route == "/write" {
            assert_eq!(native_head, format!("{head}\r\nConnection: close"), "{route}");
            assert!(
                String::from_utf8_lossy(&native_body).contains("written by write(), "),
                "{route}: {native_body:?}"
            );
        } else {
            assert_eq!(native_head, format!("{head}\r\nConnection: close"), "{route}");
            assert_eq!(native_body, body, "{route}");
        }
    }
    // A list subclass gets a length like a list, and its close() is still called.
    let log = probe_app().log();
    for path in ["/list-with-close", "/py/list-with-close"] {
        assert!(log.contains(&format!("close() called for {path}\n")), "{path}: {log}");
    }
    // close() runs as in a `finally:` block: it sees the body's error as the one being
    // handled, and an error of its own chains after it, with what close() itself handled.
    for path in ["/close-chains", "/py/close-chains"] {
        assert!(
            log.contains(&format!(
                "probe: close() for {path} saw ValueError('the body failed')\n"
            )),
            "{path}: {log}"
        );
        let traceback = logged_traceback(path).unwrap();
        let at = |line: &str| traceback.iter().position(|l| l == line);
        let (body, flush, cleanup) = (
            at("ValueError: the body failed"),
            at("OSError: flush failed"),
            at("RuntimeError: cleanup failed"),
        );
        assert!(
            body.is_some() && body < flush && flush < cleanup,
            "{path}: {traceback:?}"
        );
    }
    // When both the body and close() fail, close()'s error is raised with the body's as its
    // context, as a `finally:` does.
    for path in ["/body-and-close-fail", "/py/body-and-close-fail"] {
        let traceback = logged_traceback(path).unwrap();
        assert!(
            traceback.contains(&"ValueError: the body failed".to_string()),
            "{path}: {traceback:?}"
        );
        assert!(
            traceback.contains(&"During handling of the above exception, another exception occurred:".to_string()),
            "{path}: {traceback:?}"
        );
    }
}

#[test]
fn a_client_that_stops_reading_does_not_hold_up_other_requests() {
    // The runtime keeps the GIL through a response's first small write (it lands in empty
    // buffers) but must release it for the writes after, which can wait on a client that
    // does not read: meanwhile other requests run Python.
    let host = probe();
    let mut stalled = TcpStream::connect(&host.address).unwrap();
    stalled.write_all(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    stalled.read_exact(&mut first).unwrap();
    assert!(
        first.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    // Poll until the count of writes done stops moving short of the end: the flooding
    // thread is waiting in WriteClient. Each answer is a request served meanwhile.
    let count = || get(&host.address, "/flood-count").text().parse::<u32>().unwrap();
    let mut last = count();
    let mut still = 0;
    while still < 5 {
        std::thread::sleep(Duration::from_millis(200));
        let now = count();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    assert!(
        last < 513,
        "the whole flood went out to a client that read 512 bytes: {last}"
    );
    let other = get(&host.address, "/write");
    assert_eq!(other.text(), "written by write(), then returned\n");
    drop(stalled);
}
