//! isapi.asgi, frozen and served over HTTP under Wine: a FastAPI app
//! (tests/fixtures/scripts/asgi_fastapi.py) with JSON, path and query parameters, a 10 MiB
//! upload, a stream that reaches the client chunk by chunk, clients that leave, lifespan
//! state, background tasks and errors before and after the response started; a Starlette
//! app and a raw ASGI app; a failed startup, unload with a request that never ends, and
//! `serve` and `install` of an ASGI script. The FastAPI app also runs on every tested
//! CPython.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::prerequisites::wine_prefix;
use crate::support::wine::{wine, wine_ready};
use crate::support::{
    assert_contains, assert_in_order, default_python, fixture, get, isapi_freeze, other_pythons, post, post_as, repo,
    request, run_windows, runtime_of, shared_with, site_of, temp_dir, win_path, Freeze, Frozen, Host, Response,
    ERROR_PAGE,
};

/// The FastAPI probe, frozen once; each test looks for log lines only it causes.
fn fastapi_app() -> &'static Frozen {
    shared_with("asgi: asgi_fastapi.py", || {
        Freeze::script(fixture("scripts/asgi_fastapi.py"))
            .path(site_of(&default_python(), "fastapi"))
            .arg("--strict")
            .ok()
    })
}

fn fastapi_host() -> Host {
    Host::start(&fastapi_app().dll(), &[])
}

/// A raw ASGI application (standard library only): it refuses the lifespan scope, so the
/// server goes on without the protocol.
const RAW: &str = r#"
import asyncio
from isapi.asgi import factory

async def app(scope, receive, send):
    assert scope["type"] == "http", "no lifespan here"
    path = scope["path"]
    if path == "/echo":
        body, messages = b"", 0
        while True:
            message = await receive()
            messages += 1
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        text = "%s %s %s: %d bytes in %d messages, sha256 %s" % (
            scope["method"], path, scope["query_string"].decode(), len(body), messages,
            __import__("hashlib").sha256(body).hexdigest())
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"text/plain"), (b"x-multi", b"1"), (b"x-multi", b"2")]})
        await send({"type": "http.response.body", "body": text.encode()})
    elif path in ("/thread", "/thread/after-a-wait"):
        # Which thread runs the app: an idle loop is borrowed by the server's thread; what
        # comes after a real wait runs on the loop's own.
        import threading
        if path == "/thread/after-a-wait":
            await asyncio.sleep(0)
        name = threading.current_thread().name
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": name.encode()})
    elif path == "/silent":
        return
    elif path == "/badheader":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\ninjected: 1")]})
        await send({"type": "http.response.body", "body": b"never sent"})
    elif path == "/hang":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
        await asyncio.Event().wait()
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"no such page: " + path.encode()})

__ExtensionFactory__ = factory(app, shutdown_timeout=1.0)
"#;

fn raw_app() -> &'static Frozen {
    shared_with("asgi: raw_asgi.py", || Freeze::source("raw_asgi.py", RAW).ok())
}

/// Sends `raw` on a new connection and reads until the server closes it (a reset after the
/// data still leaves the data): the head, and the body's bytes as sent on the wire.
fn until_closed(address: &str, raw: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(raw).unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&all)));
    (
        String::from_utf8_lossy(&all[..end]).into_owned(),
        all[end + 4..].to_vec(),
    )
}

/// A response read as it arrives: its head, then one chunk of its chunked body at a time.
struct Streamed {
    reader: BufReader<TcpStream>,
    head: String,
}

impl Streamed {
    fn get(address: &str, path: &str) -> Streamed {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        Streamed { reader, head }
    }

    /// The next chunk's bytes (empty for the last chunk).
    fn chunk(&mut self) -> Vec<u8> {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).unwrap();
        assert_eq!(&data[size..], b"\r\n");
        data.truncate(size);
        data
    }
}

/// GETs `path` until its body satisfies `ready` (what the app records after a request has
/// ended); panics with the last body after a minute.
fn wait_for_body(address: &str, path: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(address, path).text();
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never answered as expected: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sha256_hex(data: &[u8]) -> String {
    isapi_freeze_format::to_hex(&Sha256::digest(data))
}

#[test]
fn fastapi_answers_json_with_path_query_and_body_parameters() {
    let host = fastapi_host();
    let item = get(&host.address, "/items/42?q=hi&limit=3");
    assert_eq!(item.status, 200, "{}", item.text());
    assert_eq!(item.header("Content-Type"), Some("application/json"));
    assert_eq!(
        item.text(),
        r#"{"item_id":42,"q":"hi","page":{"limit":3,"offset":0},"greeting":"hello from the lifespan"}"#
    );
    let created = post_as(
        &host.address,
        "/items",
        "application/json",
        br#"{"name": "pen", "price": 1.25, "tags": ["office"]}"#,
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(
        created.text(),
        r#"{"received":{"name":"pen","price":1.25,"tags":["office"]},"double":2.5}"#
    );
    let invalid = post_as(&host.address, "/items", "application/json", br#"{"name": "pen"}"#);
    assert_eq!(invalid.status, 422, "{}", invalid.text());
    assert_contains(&invalid.text(), r#""loc":["body","price"]"#);
    // A plain def runs on a worker thread, not on the event loop.
    assert_eq!(
        get(&host.address, "/sync").text(),
        r#"{"sync":true,"loop_thread":false}"#
    );
    let missing = get(&host.address, "/nope");
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, r#"{"detail":"Not Found"}"#)
    );
}

#[test]
fn the_example_app_gives_its_documented_answers() {
    let example = shared_with("asgi: examples/fastapi_app", || {
        Freeze::script(repo().join("examples/fastapi_app/app.py"))
            .path(site_of(&default_python(), "fastapi"))
            .arg("--strict")
            .ok()
    });
    let host = Host::start(&example.dll(), &[]);
    let hello = get(&host.address, "/");
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("Content-Type"), Some("application/json"));
    assert_eq!(hello.text(), r#"{"message":"Hello from FastAPI on IIS"}"#);
    assert_eq!(get(&host.address, "/items/42?q=x").text(), r#"{"item_id":42,"q":"x"}"#);
    assert_eq!(get(&host.address, "/items/abc").status, 422);
    let priced = post_as(
        &host.address,
        "/items",
        "application/json",
        br#"{"name": "pen", "price": 2.5}"#,
    );
    assert_eq!(
        (priced.status, priced.text().as_str()),
        (200, r#"{"name":"pen","price":2.5,"with_tax":3.0}"#)
    );
    let mut events = Streamed::get(&host.address, "/events");
    assert_contains(&events.head, "content-type: text/event-stream");
    for i in 0..3 {
        assert_eq!(events.chunk(), format!("data: tick {i}\n\n").as_bytes());
    }
    assert_eq!(events.chunk(), b"");
}

#[test]
fn the_scope_has_every_field_of_the_http_spec() {
    let host = fastapi_host();
    let port = host.port();
    let r = request(
        &host.address,
        b"GET /scope/a%20b/c?x=%2F&y=1 HTTP/1.1\r\nHost: probe.example\r\nX-Probe: one\r\nx-probe: two\r\n\
Connection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        format!(
            r#"{{"type":"http","asgi":{{"version":"3.0","spec_version":"2.4"}},"http_version":"1.1","method":"GET","scheme":"http","path":"/scope/a b/c","raw_path":"/scope/a%20b/c","query_string":"x=%2F&y=1","root_path":"","headers":[["host","probe.example"],["x-probe","one"],["x-probe","two"],["connection","close"]],"client":["127.0.0.1",true],"server":["127.0.0.1",{port}],"state":["greeting"],"ecb":"EXTENSION_CONTROL_BLOCK","rest":"a b/c"}}"#
        )
    );
}

#[test]
fn mounted_at_a_vpath_the_root_path_is_where_and_routes_match_below_it() {
    let host = Host::start(&fastapi_app().dll(), &["--vpath", "/app"]);
    let r = get(&host.address, "/APP/scope/x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_contains(&r.text(), r#""path":"/APP/scope/x","raw_path":"/APP/scope/x","#);
    assert_contains(&r.text(), r#""root_path":"/APP","#);
    assert_contains(&r.text(), r#""rest":"x"}"#);
    let item = get(&host.address, "/app/items/7");
    assert_eq!(item.status, 200, "{}", item.text());
    assert_contains(&item.text(), r#"{"item_id":7,"#);
}

#[test]
fn a_ten_mib_upload_is_read_in_chunks() {
    let host = fastapi_host();
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = sha256_hex(&body);
    let check = |r: &Response| {
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert_contains(&text, r#"{"bytes":10485760,"chunks":"#);
        assert_contains(&text, &format!(r#""sha256":"{digest}"}}"#));
        // Read as the application asked, 64 KiB at most at a time: never the whole body.
        let field = |name: &str| -> u64 {
            let at = text.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
            text[at..].split([',', '}']).next().unwrap().parse().unwrap()
        };
        assert!(field("chunks") > 100, "{text}");
        assert!(field("largest") <= 64 * 1024, "{text}");
    };
    check(&post(&host.address, "/upload", &body));
    // The same body chunked (no length up front).
    let mut raw =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in body.chunks(300_000) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    check(&request(&host.address, &raw));
}

#[test]
fn a_streaming_response_reaches_the_client_chunk_by_chunk_as_the_app_makes_them() {
    let host = fastapi_host();
    let mut stream = Streamed::get(&host.address, "/lockstep/one?n=3");
    assert!(stream.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", stream.head);
    assert_contains(&stream.head, "content-type: text/event-stream");
    // Each event is read before the app may make the next one: the app waits for the
    // release request below, so nothing else can be on its way.
    assert_eq!(stream.chunk(), b"data: event 0\n\n");
    assert_eq!(get(&host.address, "/lockstep/one/next").status, 200);
    assert_eq!(stream.chunk(), b"data: event 1\n\n");
    assert_eq!(get(&host.address, "/lockstep/one/next").status, 200);
    assert_eq!(stream.chunk(), b"data: event 2\n\n");
    assert_eq!(stream.chunk(), b"", "the last chunk ends the response");
}

#[test]
fn a_client_that_leaves_mid_stream_is_seen_by_the_app_and_the_next_request_is_served() {
    let host = fastapi_host();
    // Writing: the app streams every 50 ms while waiting in receive().
    let mut streaming = Streamed::get(&host.address, "/raw/forever");
    assert_eq!(streaming.chunk(), b"tick\n");
    drop(streaming);
    let seen = wait_for_body(&host.address, "/events", |b| b.contains(r#""path":"/raw/forever""#));
    assert_contains(&seen, r#"{"path":"/raw/forever","receive":"http.disconnect""#);
    // Quiet: after one chunk the app only waits in receive(); the server finds the client
    // gone by asking (HSE_REQ_IS_CONNECTED).
    let mut quiet = Streamed::get(&host.address, "/raw/quiet");
    assert_eq!(quiet.chunk(), b"tick\n");
    drop(quiet);
    let seen = wait_for_body(&host.address, "/events", |b| b.contains(r#""path":"/raw/quiet""#));
    assert_contains(&seen, r#"{"path":"/raw/quiet","receive":"http.disconnect"}"#);
    let next = get(&host.address, "/items/1");
    assert_eq!(next.status, 200, "{}", next.text());
}

#[test]
fn a_client_that_does_not_read_holds_up_only_its_own_response() {
    let host = fastapi_host();
    let mut slow = TcpStream::connect(&host.address).unwrap();
    slow.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    for i in 0..5 {
        let r = get(&host.address, &format!("/items/{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The app's sends stop once the socket's buffers and the server's 256 KiB are full:
    // what it got past send() stops growing far below the 64 MiB it has to send.
    let sent = || -> u64 {
        let events = get(&host.address, "/events").text();
        let at = events.find(r#""big_sent":"#).unwrap() + r#""big_sent":"#.len();
        events[at..].trim_end_matches('}').parse().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = sent();
    let stalled = loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = sent();
        if now == last && now > 0 {
            break now;
        }
        assert!(Instant::now() < deadline, "the app never stopped sending: {now} bytes");
        last = now;
    };
    assert!(
        stalled < 32 << 20,
        "{stalled} bytes queued for a client that reads nothing"
    );
    drop(slow);
    assert_eq!(get(&host.address, "/items/9").status, 200, "the next request is served");
}

#[test]
fn an_exception_before_the_response_gives_the_500_page_and_the_traceback_in_the_log() {
    let host = fastapi_host();
    let r = get(&host.address, "/fail/before");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.text(), ERROR_PAGE);
    let log = fastapi_app().wait_for_log("the traceback", |l| l.contains("boom before the response"));
    assert_in_order(
        &log,
        &[
            "stderr: isapi.asgi: the application failed on GET /fail/before:",
            "Traceback (most recent call last):",
            "RuntimeError: boom before the response",
        ],
    );
    assert_eq!(get(&host.address, "/items/2").status, 200, "the next request is served");
}

#[test]
fn an_exception_after_the_response_started_closes_the_connection_and_logs_the_traceback() {
    let host = fastapi_host();
    let (head, body) = until_closed(&host.address, b"GET /fail/after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_contains(&head, "Transfer-Encoding: chunked");
    // The first chunk, then the end of the connection: no last chunk.
    assert_eq!(body, b"B\r\nfirst part\n\r\n");
    let log = fastapi_app().wait_for_log("the traceback", |l| l.contains("boom after the response started"));
    assert_in_order(
        &log,
        &[
            "stderr: isapi.asgi: the application failed on GET /fail/after:",
            "Traceback (most recent call last):",
            "RuntimeError: boom after the response started",
        ],
    );
    assert_eq!(get(&host.address, "/items/3").status, 200, "the next request is served");
}

#[test]
fn background_tasks_run_after_the_response() {
    let host = fastapi_host();
    let r = post(&host.address, "/background?note=after-the-response", b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"queued":"after-the-response"}"#)
    );
    wait_for_body(&host.address, "/events", |b| {
        b.contains(r#""background":["after-the-response"]"#)
    });
}

#[test]
fn lifespan_startup_runs_at_load_and_shutdown_at_unload_after_the_requests() {
    let app = fastapi_app().copy();
    let host = Host::start(&app.dll(), &[]);
    assert_eq!(get(&host.address, "/items/5").status, 200);
    host.stop();
    let log = app.log();
    assert_in_order(
        &log,
        &[
            "stdout: asgi_fastapi: lifespan startup",
            "stdout: asgi_fastapi: lifespan shutdown",
        ],
    );
    // The proactor's completion port wakes the loop, not the slower socket.
    assert!(!log.contains("woken through a socket"), "{log}");
}

#[test]
fn a_failed_lifespan_startup_refuses_the_load_with_its_message_in_the_log() {
    let failing = Freeze::source(
        "failing_startup.py",
        r#"
import contextlib
from fastapi import FastAPI
from isapi.asgi import factory

@contextlib.asynccontextmanager
async def lifespan(app):
    raise RuntimeError("the database is unreachable")
    yield

app = FastAPI(lifespan=lifespan)
__ExtensionFactory__ = factory(app)
"#,
    )
    .path(site_of(&default_python(), "fastapi"))
    .ok();
    let finished = Host::run_refused(Host::command(&failing.dll(), &[]));
    assert_eq!(finished.code, 3, "{finished:?}");
    assert_contains(&finished.stderr, "GetExtensionVersion of");
    assert_in_order(
        &failing.log(),
        &[
            "isapi.asgi: the application's lifespan startup failed: Traceback (most recent call last):",
            "RuntimeError: the database is unreachable",
        ],
    );
    // A raw application's own message, as it sent it.
    let refusing = Freeze::source(
        "refusing_startup.py",
        r#"
from isapi.asgi import factory

async def app(scope, receive, send):
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no configuration file"})

__ExtensionFactory__ = factory(app)
"#,
    )
    .ok();
    let finished = Host::run_refused(Host::command(&refusing.dll(), &[]));
    assert_eq!(finished.code, 3, "{finished:?}");
    assert_contains(
        &refusing.log(),
        "isapi.asgi: the application's lifespan startup failed: no configuration file\n",
    );
}

#[test]
fn a_starlette_app_gets_its_lifespan_state_and_routes() {
    let starlette = Freeze::source(
        "starlette_app.py",
        r#"
import contextlib
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from isapi.asgi import factory

async def hello(request):
    return PlainTextResponse(f"hello {request.path_params['name']}, count {request.state.count}")

async def echo(request):
    return JSONResponse({"got": await request.json(), "query": dict(request.query_params)})

@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"count": 7}

app = Starlette(routes=[Route("/hello/{name}", hello), Route("/echo", echo, methods=["POST"])], lifespan=lifespan)
__ExtensionFactory__ = factory(app)
"#,
    )
    .path(site_of(&default_python(), "fastapi"))
    .ok();
    let host = Host::start(&starlette.dll(), &[]);
    let hello = get(&host.address, "/hello/iis");
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(hello.text(), "hello iis, count 7");
    let echo = post_as(&host.address, "/echo?a=1", "application/json", br#"[1, "two"]"#);
    assert_eq!(echo.text(), r#"{"got":[1,"two"],"query":{"a":"1"}}"#);
}

#[test]
fn a_raw_asgi_app_streams_the_body_in_and_sends_its_headers_as_given() {
    let app = raw_app();
    let host = Host::start(&app.dll(), &[]);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let r = post(&host.address, "/echo?a=1", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("POST /echo a=1: 300000 bytes in "), "{text}");
    assert!(text.ends_with(&format!(", sha256 {}", sha256_hex(&body))), "{text}");
    assert!(
        !text.contains(" in 1 messages"),
        "the body came in several messages: {text}"
    );
    let multi: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "x-multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["1", "2"]);
    // Without Content-Length from the app, the length of a body sent in one message.
    assert_eq!(r.header("content-length"), Some(text.len().to_string().as_str()));
    // The application refused the lifespan scope: served without the protocol.
    assert_contains(
        &app.log(),
        "isapi.asgi: the application does not take the lifespan protocol (AssertionError: no lifespan here); serving without it",
    );
}

#[test]
fn an_idle_loop_runs_the_request_on_the_servers_thread_and_a_wait_moves_it_to_the_loop() {
    let app = raw_app();
    let host = Host::start(&app.dll(), &[]);
    let on = |path: &str| {
        let r = get(&host.address, path);
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    // Until the loop has parked after its startup, requests go through its mailbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    while on("/thread") == "isapi-asgi-loop" {
        assert!(Instant::now() < deadline, "no request ran on the server's thread");
        std::thread::sleep(Duration::from_millis(50));
    }
    // From then on, one client's requests find the loop idle every time: each runs on the
    // host's thread (a thread Python did not start), and ends there.
    for _ in 0..5 {
        let name = on("/thread");
        assert!(name.starts_with("Dummy-"), "{name}");
    }
    // A request that awaits a real wait goes on in the loop's thread.
    assert_eq!(on("/thread/after-a-wait"), "isapi-asgi-loop");
    // And a request that reads its body on the borrowed loop is answered as ever.
    let echo = post(&host.address, "/echo", b"borrowed");
    assert_eq!(
        (
            echo.status,
            echo.text().starts_with("POST /echo : 8 bytes in 1 messages")
        ),
        (201, true)
    );
}

#[test]
fn a_raw_app_without_a_response_or_with_a_broken_header_gets_the_500_page() {
    let app = raw_app();
    let host = Host::start(&app.dll(), &[]);
    let silent = get(&host.address, "/silent");
    assert_eq!((silent.status, silent.text().as_str()), (500, ERROR_PAGE));
    let bad = get(&host.address, "/badheader");
    assert_eq!((bad.status, bad.text().as_str()), (500, ERROR_PAGE));
    assert!(bad.header("injected").is_none());
    let log = app.wait_for_log("both failures", |l| l.contains("/badheader"));
    assert_contains(
        &log,
        "isapi.asgi: the application returned without a response to GET /silent\n",
    );
    assert_in_order(
        &log,
        &[
            "isapi.asgi: the application failed on GET /badheader:",
            "ValueError: a response header contains a line break: (b'x-bad', b'a\\r\\ninjected: 1')",
        ],
    );
}

#[test]
fn a_subclass_that_overrides_http_extension_proc_gets_every_request() {
    let counting = Freeze::source(
        "counting_asgi.py",
        r#"
from isapi.asgi import ASGIExtension

class Counting(ASGIExtension):
    "counting ASGI extension"
    seen = 0

    def HttpExtensionProc(self, ecb):
        Counting.seen += 1
        return ASGIExtension.HttpExtensionProc(self, ecb)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    ecb = scope["extensions"]["isapi.ecb"]
    text = "seen %d, %s" % (Counting.seen, ecb.GetServerVariable("REQUEST_METHOD").decode())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text.encode()})

def __ExtensionFactory__():
    return Counting(app)
"#,
    )
    .ok();
    let host = Host::start(&counting.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "seen 1, GET");
    assert_eq!(post(&host.address, "/", b"x").text(), "seen 2, POST");
    let finished = host.stop();
    assert_contains(&finished.stdout, "isapi-host: extension \"counting ASGI extension\"");
}

#[test]
fn a_response_that_never_completes_is_ended_at_unload() {
    let app = raw_app().copy();
    let host = Host::start(&app.dll(), &["--shutdown-grace", "1"]);
    let mut hanging = Streamed::get(&host.address, "/hang");
    assert_eq!(hanging.chunk(), b"waiting\n");
    let finished = host.stop();
    assert_contains(
        &finished.stderr,
        "isapi-host: requests still running after 1s; unloading anyway",
    );
    // The connection was closed without the last chunk.
    let mut rest = Vec::new();
    let _ = hanging.reader.read_to_end(&mut rest);
    assert_eq!(rest, b"");
    assert_contains(
        &app.log(),
        "isapi.asgi: 1 request(s) still running after 1 s at unload: ending them\n",
    );
}

#[test]
fn serve_and_install_take_an_asgi_script_like_any_other() {
    let app = raw_app();
    wine_ready();
    let mut command = isapi_freeze();
    command
        .args([
            "serve",
            app.dist.to_str().unwrap(),
            "--stop-on-eof",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("WINEPREFIX", wine_prefix())
        .env("WINEDEBUG", "-all")
        .env("WINE", wine())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let host = Host::from_command(command);
    let r = get(&host.address, "/missing");
    assert_eq!((r.status, r.text().as_str()), (404, "no such page: /missing"));
    let finished = host.stop();
    assert_contains(
        &finished.stdout,
        "isapi-host: extension \"ASGI application (isapi.asgi)\"",
    );

    let tmp = temp_dir();
    let config = tmp.path().join("applicationHost.config");
    let original = std::fs::read(fixture("iis/applicationHost.config")).unwrap();
    std::fs::write(&config, &original).unwrap();
    let config_arg = win_path(&config);
    let installed = run_windows(&app.exe(), &["install", "--config", &config_arg], tmp.path());
    assert_eq!(installed.code, 0, "{installed:?}");
    assert_contains(
        &installed.stdout,
        "Configured Virtual Directory: /raw_asgi\nInstallation complete.",
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert_contains(&text, "scriptProcessor=\"");
    assert_contains(&text, "_raw_asgi.dll");
    let removed = run_windows(&app.exe(), &["remove", "--config", &config_arg], tmp.path());
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(std::fs::read(&config).unwrap(), original, "remove gives the file back");
}

#[test]
fn the_fastapi_app_answers_alike_on_every_tested_python() {
    let reference = fastapi_host();
    let asks = ["/items/9?q=v", "/sync", "/fail/before"];
    let expected: Vec<(u16, String)> = asks
        .iter()
        .map(|path| {
            let r = get(&reference.address, path);
            (r.status, r.text())
        })
        .collect();
    drop(reference);
    for python in other_pythons() {
        let frozen = Freeze::script(fixture("scripts/asgi_fastapi.py"))
            .python(runtime_of(&python))
            .path(site_of(&python, "fastapi"))
            .arg("--strict")
            .ok();
        let host = Host::start(&frozen.dll(), &[]);
        for (path, want) in asks.iter().zip(&expected) {
            let got = get(&host.address, path);
            assert_eq!(&(got.status, got.text()), want, "CPython {}: {path}", python.version());
        }
        assert!(
            !frozen.log().contains("woken through a socket"),
            "CPython {}: {}",
            python.version(),
            frozen.log()
        );
        let upload = post(&host.address, "/upload", &[7u8; 200_000]);
        assert_contains(&upload.text(), r#"{"bytes":200000,"#);
        assert_contains(&upload.text(), &sha256_hex(&[7u8; 200_000]));
    }
}
