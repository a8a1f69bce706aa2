//! Side by side with pywin32 312's own loader: pywin32's ISAPI samples as its wheel ships
//! them, and probes of every ECB and filter method (tests/fixtures/pywin32_probes), each
//! served by PyISAPI_loader.dll and by our freeze of the same script, through isapi-host
//! under Wine, on every tested CPython. Every difference in status, headers or body must be
//! one README lists in "Where we differ from pywin32 on purpose" (support::pywin32).

use crate::support::pywin32::{compare, pywin32_sample, upstream, Ask, Script, Serve, DELIBERATE, DELIBERATE_UNSEEN};
use crate::support::{assert_contains, assert_in_order, fixture, get, repo, site, win_path, Freeze, Host};

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

/// The ECB probe's requests: bodies of each framing and size, read every way.
fn ecb_asks() -> Vec<Ask> {
    let small = b"0123456789".to_vec();
    let large: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut asks = Vec::new();
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
