//! Side by side with pywin32 312's own loader: pywin32's ISAPI samples as its wheel ships
//! them, and probes of every ECB and filter method (tests/fixtures/pywin32_probes), each
//! served by PyISAPI_loader.dll and by our freeze of the same script, through isapi-host
//! under Wine, on every tested CPython. Every difference in status, headers or body must be
//! one README lists in "Where we differ from pywin32 on purpose" (support::pywin32).

use crate::support::pywin32::{compare, pywin32_sample, upstream, Ask, Script, Serve, DELIBERATE, DELIBERATE_UNSEEN};
use crate::support::{assert_contains, assert_in_order, fixture, get, repo, site, win_path, Freeze, Host, ERROR_PAGE};

/// pywin32's redirector samples proxy https://www.python.org; here, a local upstream.
fn redirector(sample: &str) -> Script {
    let text = pywin32_sample(sample);
    let shipped = "proxy = \"https://www.python.org\"";
    assert_eq!(
        text.matches(shipped).count(),
        1,
        "{sample} no longer names its upstream so"
    );
    let local = format!("proxy = \"http://{}\"", upstream());
    Script::new(sample.trim_end_matches(".py"), text.replace(shipped, &local))
}

fn probe(name: &str) -> Script {
    let path = fixture(&format!("pywin32_probes/{name}.py"));
    Script::new(name, std::fs::read_to_string(path).unwrap())
}

#[test]
fn the_advanced_sample_answers_as_under_pywin32() {
    let script = Script::new("advanced", pywin32_sample("advanced.py"));
    let asks = [
        Ask::get("/AdvancedPythonSample/page"),
        Ask::get("/AdvancedPythonSample/ReportUnhealthy"),
        Ask::get("/AdvancedPythonSample/vars?HTTP_HOST&URL"),
        Ask::keep_alive("keep-alive", &["/first", "/second"]),
    ];
    compare(&script, &[Serve::default()], &asks);
}

#[test]
fn the_test_sample_answers_as_under_pywin32() {
    let script = Script::new("test", pywin32_sample("test.py"));
    let asks = [Ask::get("/PyISAPITest/page"), Ask::get("/PyISAPITest/test.py")];
    compare(&script, &[Serve::default()], &asks);
}

#[test]
fn the_redirector_sample_answers_as_under_pywin32() {
    let script = redirector("redirector.py").file("iisstart.htm", "<html>IIS's own start page</html>\n");
    let asks = [
        Ask::get("/proxied/page?q=1"),
        Ask::get("/iisstart.htm"),
        Ask::get("/welcome.png"),
        Ask::keep_alive("keep-alive", &["/one", "/iisstart.htm", "/two"]),
    ];
    compare(&script, &[Serve::default()], &asks);
}

#[test]
fn the_asynchronous_redirector_sample_answers_as_under_pywin32() {
    let asks = [Ask::get("/proxied/page")];
    compare(&redirector("redirector_asynch.py"), &[Serve::default()], &asks);
}

#[test]
fn the_redirector_with_a_filter_answers_as_under_pywin32() {
    let serve = Serve {
        filter: true,
        ..Serve::default()
    };
    let asks = [Ask::get("/page"), Ask::get("/python/page")];
    compare(&redirector("redirector_with_filter.py"), &[serve], &asks);
}

/// The ECB probe's requests: every route, with bodies of each framing and size.
fn ecb_asks() -> Vec<Ask> {
    let small = b"0123456789".to_vec();
    let large: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut asks = vec![
        Ask::raw(
            "GET /attributes",
            "GET /attributes?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nX-Custom: v\r\nConnection: close\r\n\r\n",
        ),
        Ask::post("POST /attributes", "/attributes?form", b"name=value&x=1"),
        Ask::post_chunked("POST chunked /attributes", "/attributes", &small, 4),
        Ask::raw("GET /variables", {
            let mut raw = b"GET /variables?q=caf%C3%A9 HTTP/1.1\r\nHost: x\r\nX-Custom: caf\xc3\xa9\r\n".to_vec();
            raw.extend_from_slice(format!("X-Long: {}\r\n", "l".repeat(20_000)).as_bytes());
            raw.extend_from_slice(b"Connection: close\r\n\r\n");
            raw
        }),
        Ask::get("/write"),
    ];
    for variant in [
        "str",
        "bytes",
        "keep-true",
        "keep-0",
        "keep-1",
        "keep-2",
        "keep-minus-1",
        "keep-None",
        "keep-str",
        "keep-float",
        "keyword",
        "no-blank-line",
        "no-headers",
        "status-only-code",
        "status-None",
        "headers-None",
        "one-argument",
        "with-body",
    ] {
        asks.push(Ask::get(&format!("/headers?{variant}")));
    }
    for mode in ["all", "total", "pieces", "minus-one", "zero", "types"] {
        let path = format!("/read?{mode}");
        asks.push(Ask::get(&path));
        asks.push(Ask::post(&format!("POST small {path}"), &path, &small));
        asks.push(Ask::post(&format!("POST large {path}"), &path, &large));
        asks.push(Ask::post_chunked(
            &format!("POST chunked {path}"),
            &path,
            &large,
            10_000,
        ));
    }
    asks.extend([
        Ask::get("/redirect?str"),
        Ask::get("/redirect?types"),
        Ask::raw(
            "GET /misc",
            "GET /misc HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        ),
        Ask::get("/done"),
        Ask::get("/stash?done"),
        Ask::get("/pending"),
        Ask::get("/async"),
        Ask::get("/stash?async"),
    ]);
    for exec in ["static", "missing", "same-url", "child"] {
        asks.push(Ask::get(&format!("/exec?{exec}")));
        asks.push(Ask::get_as(&format!("GET /stash?exec after {exec}"), "/stash?exec"));
    }
    asks.extend([
        Ask::keep_alive("keep-alive", &["/keep?1", "/keep?2", "/keep?3"]),
        Ask::keep_alive("keep-alive pending", &["/pending?keep", "/keep?after"]),
        Ask::get("/fail"),
        Ask::get("/fail-late"),
        Ask::get("/version"),
    ]);
    for value in [
        "none",
        "str",
        "float",
        "minus-one",
        "zero",
        "success",
        "keep-conn",
        "error",
        "true",
    ] {
        asks.push(Ask::get(&format!("/return?{value}")));
        asks.push(Ask::get(&format!("/return-after-answer?{value}")));
    }
    // Last: pywin32 leaves an OverflowError set in the thread after this one. (SystemExit
    // in HttpExtensionProc is not asked: pywin32's request never ends, README's
    // `system-exit`; system_exit_in_a_handler_is_answered_500 proves ours.)
    asks.push(Ask::get("/return?big"));
    asks
}

#[test]
fn the_ecb_probe_answers_as_under_pywin32() {
    let script = probe("ecb_probe").file("static.txt", "a static file\n");
    compare(&script, &[Serve::default()], &ecb_asks());
}

#[test]
fn the_thread_pool_probe_answers_as_under_pywin32() {
    let large: Vec<u8> = (0..150_000u32).map(|i| (i * 3 % 253) as u8).collect();
    let asks = [
        Ask::get("/ok"),
        Ask::post("POST /read", "/read", &large),
        Ask::post_chunked("POST chunked /read", "/read", &large, 8192),
        Ask::keep_alive("keep-alive", &["/keep", "/keep", "/ok"]),
        Ask::get("/raise"),
        Ask::get("/raise-late"),
        Ask::get("/exit"),
        Ask::get_as("GET /ok after /exit", "/ok"),
    ];
    compare(&probe("pool_probe"), &[Serve::default()], &asks);
}

#[test]
fn the_filter_probe_answers_as_under_pywin32() {
    let serves = ["PREPROC_HEADERS", "URL_MAP", "AUTHENTICATION", "READ_RAW_DATA"].map(|notification| Serve {
        label: notification,
        filter_only: true,
        env: vec![("PROBE_FILTER_NOTIFICATION", notification.to_string())],
        ..Serve::default()
    });
    let asks = [
        Ask::raw(
            "GET /probe/page",
            "GET /probe/page?q=1 HTTP/1.1\r\nHost: x\r\nX-Custom: v\r\n\
             Authorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n",
        ),
        Ask::get("/pass"),
    ];
    compare(&probe("filter_probe"), &serves, &asks);
}

/// README's table and the suite's list name the same deliberate differences.
#[test]
fn readme_lists_exactly_the_differences_the_suite_knows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let heading = "### Where we differ from pywin32 on purpose";
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let table = section
        .split("\n\n")
        .find(|part| part.trim_start().starts_with('|'))
        .unwrap_or_default();
    let mut in_readme: Vec<String> = table
        .lines()
        .skip(2)
        .filter_map(|row| row.split('|').nth(1))
        .map(|cell| cell.trim().trim_matches('`').to_string())
        .collect();
    in_readme.sort();
    let mut known: Vec<String> = DELIBERATE
        .iter()
        .map(|d| d.id.to_string())
        .chain(DELIBERATE_UNSEEN.iter().map(|id| id.to_string()))
        .collect();
    known.sort();
    known.dedup();
    assert_eq!(in_readme, known, "README's table and support::pywin32's lists differ");
}

/// The seed blog's idiom with pywin32 on `--path`: `import win32traceutil` inside the DLL
/// gets ours, whose output goes to DIST/logs (pywin32's goes to a trace buffer nobody reads
/// on a server without Python); and the runtime itself logs every failure's traceback, of
/// a request, a Dispatch or a filter, whatever the script then did to sys.stdout,
/// sys.stderr and logging.
#[test]
fn tracebacks_reach_the_log_whatever_the_script_did_to_its_output() {
    let script = "import io, logging, sys\n\
                  if hasattr(sys, 'isapidllhandle'):\n\
                  \x20   import win32traceutil\n\
                  print('printed after win32traceutil')\n\
                  sys.stdout = io.StringIO()\n\
                  sys.stderr = io.StringIO()\n\
                  logging.basicConfig(stream=io.StringIO(), level=logging.DEBUG, force=True)\n\
                  from isapi import isapicon, threaded_extension\n\
                  from isapi.simple import SimpleFilter\n\
                  class Pool(threaded_extension.ThreadPoolExtension):\n\
                  \x20   'pool'\n\
                  \x20   def Dispatch(self, ecb):\n\
                  \x20       raise ValueError('Dispatch fails for the log')\n\
                  class Filter(SimpleFilter):\n\
                  \x20   'filter'\n\
                  \x20   filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS\n\
                  \x20   def HttpFilterProc(self, fc):\n\
                  \x20       if fc.GetServerVariable('URL') == b'/filter':\n\
                  \x20           raise KeyError('the filter fails for the log')\n\
                  def __ExtensionFactory__():\n\
                  \x20   return Pool()\n\
                  def __FilterFactory__():\n\
                  \x20   return Filter()\n";
    let frozen = Freeze::source("traced.py", script).path(site("pywin32")).ok();
    let dll = win_path(&frozen.dll());
    let host = Host::start(&frozen.dll(), &["--filter", &dll]);
    assert_eq!(get(&host.address, "/dispatch").status, 500);
    assert_eq!(get(&host.address, "/filter").status, 500);
    drop(host);
    let log = frozen.log();
    assert_contains(&log, "stdout: printed after win32traceutil");
    assert!(
        !log.contains("win32trace remote collector"),
        "pywin32's win32traceutil ran:\n{log}"
    );
    assert_in_order(
        &log,
        &[
            "Dispatch failed for GET /dispatch:",
            "Traceback",
            "ValueError: Dispatch fails for the log",
        ],
    );
    assert_in_order(
        &log,
        &[
            "HttpFilterProc failed for notification SF_NOTIFY_PREPROC_HEADERS:",
            "KeyError: 'the filter fails for the log'",
        ],
    );

    let failing = "import io, sys\n\
                   sys.stderr = io.StringIO()\n\
                   from isapi.simple import SimpleExtension\n\
                   class E(SimpleExtension):\n\
                   \x20   'fails to start'\n\
                   \x20   def GetExtensionVersion(self, vi):\n\
                   \x20       raise OSError('GetExtensionVersion fails for the log')\n\
                   def __ExtensionFactory__():\n\
                   \x20   return E()\n";
    let frozen = Freeze::source("unstarted.py", failing).ok();
    let refused = Host::run_refused(Host::command(&frozen.dll(), &[]));
    assert_eq!(refused.code, 3, "{refused:?}");
    assert_in_order(
        &frozen.log(),
        &[
            "GetExtensionVersion of unstarted failed:",
            "OSError: GetExtensionVersion fails for the log",
        ],
    );
}

/// SystemExit out of HttpExtensionProc ends the request, not the server (README's row
/// `system-exit`: under pywin32 that request never ends).
#[test]
fn system_exit_in_a_handler_is_answered_500_and_the_server_goes_on() {
    let script = "import sys\n\
                  from isapi import isapicon\n\
                  from isapi.simple import SimpleExtension\n\
                  class E(SimpleExtension):\n\
                  \x20   'exits'\n\
                  \x20   def HttpExtensionProc(self, ecb):\n\
                  \x20       if ecb.PathInfo == b'/exit':\n\
                  \x20           sys.exit(3)\n\
                  \x20       ecb.SendResponseHeaders('200 OK', 'Content-Length: 2\\r\\n\\r\\n', False)\n\
                  \x20       ecb.WriteClient(b'ok')\n\
                  \x20       return isapicon.HSE_STATUS_SUCCESS\n\
                  def __ExtensionFactory__():\n\
                  \x20   return E()\n";
    let frozen = Freeze::source("exits.py", script).ok();
    let host = Host::start(&frozen.dll(), &[]);
    let exited = get(&host.address, "/exit");
    assert_eq!((exited.status, exited.body.as_slice()), (500, ERROR_PAGE.as_bytes()));
    assert_eq!(get(&host.address, "/after").text(), "ok");
    host.stop();
    assert_in_order(
        &frozen.log(),
        &["HttpExtensionProc failed for GET /exit:", "SystemExit: 3"],
    );
}
