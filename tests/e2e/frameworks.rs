//! Framework apps frozen as a new user freezes them, with `--python` and `--path SITE` alone
//! under `--strict`, on every tested CPython: Bottle with its views/ beside the script and
//! FastAPI through a2wsgi, served with exact answers; numpy, whose modules imported from C
//! and delvewheel DLLs are checked in the output (Wine 8 cannot run numpy: its ucrtbase
//! lacks `crealf`). And the stand-ins for other projects' modules: an isapi_wsgi of the
//! app's own wins over ours, and win32traceutil has pywin32's functions.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use isapi_freeze_format::manifest::Role;
use isapi_freeze_format::pythons::Python;

use crate::support::{
    archive_members, every_python, get, manifest, post_as, repo, run_windows, runtime_of, site_of, windows_command,
    Freeze, Frozen, Host, Response, Running,
};

/// `script` frozen for `python` with only `--path` to `make sites`' `site_name` and
/// `--strict`; the freeze must not warn of anything.
fn frozen_strict(script: &Path, python: &Python, site_name: &str) -> Frozen {
    let frozen = Freeze::script(script)
        .python(runtime_of(python))
        .path(site_of(python, site_name))
        .arg("--strict")
        .ok();
    assert!(
        !frozen.stderr.contains("warning"),
        "CPython {}: the freeze warned:\n{}",
        python.version(),
        frozen.stderr
    );
    frozen
}

/// A request and the exact answer it must get.
struct Exchange {
    request: Ask,
    status: u16,
    content_type: &'static str,
    body: &'static str,
}

enum Ask {
    Get(&'static str),
    /// POST `body` as `application/json`.
    PostJson(&'static str, &'static str),
}

fn answer(host: &Host, request: &Ask) -> Response {
    match request {
        Ask::Get(path) => get(&host.address, path),
        Ask::PostJson(path, body) => post_as(&host.address, path, "application/json", body.as_bytes()),
    }
}

/// Serves `frozen` and checks every exchange: status, Content-Type and body, byte for byte.
fn serves_exactly(app: &str, python: &Python, frozen: &Frozen, exchanges: &[Exchange]) {
    let host = Host::start(&frozen.dll(), &[]);
    for exchange in exchanges {
        let response = answer(&host, &exchange.request);
        let what = match exchange.request {
            Ask::Get(path) | Ask::PostJson(path, _) => path,
        };
        assert_eq!(
            (
                response.status,
                response.header("Content-Type"),
                response.text().as_str()
            ),
            (exchange.status, Some(exchange.content_type), exchange.body),
            "{app} on CPython {}: {what}\nlog:\n{}",
            python.version(),
            frozen.log()
        );
    }
    let finished = host.stop();
    assert_eq!(finished.code, 0, "{app} on CPython {}: {finished:?}", python.version());
}

#[test]
fn bottle_renders_the_views_beside_the_script_on_every_tested_python() {
    let script = repo().join("examples/bottle_app/app.py");
    let html = "text/html; charset=UTF-8";
    let exchanges = [
        Exchange {
            request: Ask::Get("/?name=IIS"),
            status: 200,
            content_type: html,
            body: "<!doctype html>\n<title>Hello from Bottle on IIS</title>\n<h1>Hello, IIS!</h1>\n\n",
        },
        Exchange {
            request: Ask::Get("/?name=%3Cb%3E"),
            status: 200,
            content_type: html,
            body: "<!doctype html>\n<title>Hello from Bottle on IIS</title>\n<h1>Hello, &lt;b&gt;!</h1>\n\n",
        },
        Exchange {
            request: Ask::Get("/items/21"),
            status: 200,
            content_type: html,
            body: "<!doctype html>\n<title>Item 21</title>\n<p>21 doubled is 42.</p>\n\n",
        },
        Exchange {
            request: Ask::Get("/api/items/21"),
            status: 200,
            content_type: "application/json",
            body: r#"{"number": 21, "even": false}"#,
        },
        Exchange {
            request: Ask::Get("/nope"),
            status: 404,
            content_type: html,
            body: "no such page: /nope\n",
        },
    ];
    for python in every_python() {
        let bottle = frozen_strict(&script, &python, "bottle");
        // views/ ships beside where the script's __file__ says it is; nothing else of the
        // script's folder does.
        for view in ["index.tpl", "item.tpl", "layout.tpl"] {
            assert_eq!(
                std::fs::read(bottle.dist.join("views").join(view)).unwrap(),
                std::fs::read(repo().join("examples/bottle_app/views").join(view)).unwrap()
            );
        }
        assert!(!bottle.dist.join("requirements.txt").exists());
        serves_exactly("bottle", &python, &bottle, &exchanges);
    }
}

#[test]
fn fastapi_through_a2wsgi_answers_sync_and_async_routes_on_every_tested_python() {
    let script = repo().join("examples/fastapi_wsgi_app/app.py");
    let json = "application/json";
    let exchanges = [
        Exchange {
            request: Ask::Get("/items/21?q=iis"),
            status: 200,
            content_type: json,
            body: r#"{"item_id":21,"q":"iis"}"#,
        },
        Exchange {
            request: Ask::Get("/items/22"),
            status: 200,
            content_type: json,
            body: r#"{"item_id":22,"q":null}"#,
        },
        Exchange {
            request: Ask::PostJson("/items", r#"{"name": "lamp", "price": 10}"#),
            status: 200,
            content_type: json,
            body: r#"{"name":"lamp","price_with_tax":12.0}"#,
        },
        Exchange {
            request: Ask::Get("/items/abc"),
            status: 422,
            content_type: json,
            body: r#"{"detail":[{"type":"int_parsing","loc":["path","item_id"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}]}"#,
        },
        // The distributions' metadata ships: importlib.metadata answers as in development.
        Exchange {
            request: Ask::Get("/versions"),
            status: 200,
            content_type: json,
            body: r#"{"fastapi":"0.165.0","a2wsgi":"1.10.10"}"#,
        },
        Exchange {
            request: Ask::Get("/nope"),
            status: 404,
            content_type: json,
            body: r#"{"detail":"Not Found"}"#,
        },
    ];
    for python in every_python() {
        let fastapi = frozen_strict(&script, &python, "fastapi");
        // anyio imports its backend by a computed name: it ships with its distribution.
        let members = archive_members(&fastapi.dll());
        for module in ["anyio/_backends/_asyncio.pyc", "typing_extensions.pyc"] {
            assert!(
                members.iter().any(|m| m == module),
                "CPython {}: {module} missing",
                python.version()
            );
        }
        serves_exactly("fastapi", &python, &fastapi, &exchanges);
    }
}

/// A numpy app; run as the installer, it lists the folder numpy's `__init__` adds to the
/// DLL search path, found as numpy finds it but without running numpy (which Wine cannot).
const NUMPY_APP: &str = "from isapi.wsgi import factory\n\
def app(environ, start_response):\n\
\x20   import numpy\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [str(numpy.arange(4).sum()).encode()]\n\
__ExtensionFactory__ = factory(app)\n\
if __name__ == '__main__':\n\
\x20   import importlib.util, os\n\
\x20   init = importlib.util.find_spec('numpy').origin\n\
\x20   libs = os.path.join(os.path.dirname(init), os.pardir, 'numpy.libs')\n\
\x20   print(sorted(os.listdir(libs)))\n";

#[test]
fn numpy_ships_what_its_c_code_imports_and_its_delvewheel_dlls_on_every_tested_python() {
    for python in every_python() {
        let script = Freeze::source("numpy_app.py", NUMPY_APP);
        let numpy = frozen_strict(script.script_path(), &python, "numpy");
        let version = python.version();
        let members = archive_members(&numpy.dll());
        // Imported by numpy's C code, which no scan sees.
        assert!(
            members.iter().any(|m| m == "numpy/_core/_exceptions.pyc"),
            "CPython {version}: numpy._core._exceptions missing"
        );
        // Its tests stay out, code and data (numpy's tests folders have no __init__).
        assert!(
            !members.iter().any(|m| m.contains("/tests/")),
            "CPython {version}: numpy's tests shipped"
        );
        // numpy's __init__ adds `numpy.libs` beside its package folder to the DLL search
        // path: the DLLs are there, each once, as the site has them.
        let site_libs = site_of(&python, "numpy").join("numpy.libs");
        let mut expected: Vec<String> = std::fs::read_dir(&site_libs)
            .unwrap()
            .map(|e| format!("numpy.libs/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{} is empty", site_libs.display());
        let files = manifest(&numpy.dist).files;
        let shipped: Vec<String> = files
            .iter()
            .filter(|f| f.path.starts_with("numpy.libs/"))
            .map(|f| {
                assert_eq!(f.role, Role::Binary, "{}", f.path);
                f.path.clone()
            })
            .collect();
        assert_eq!(shipped, expected, "CPython {version}");
        for path in &expected {
            assert_eq!(
                std::fs::read(numpy.dist.join(path)).unwrap(),
                std::fs::read(site_libs.parent().unwrap().join(path)).unwrap()
            );
            let name = path.trim_start_matches("numpy.libs/");
            assert!(
                !files.iter().any(|f| f.path == name),
                "CPython {version}: {name} also at the output's root"
            );
        }
        assert!(
            files
                .iter()
                .any(|f| f.path.ends_with(".dist-info/METADATA") && f.path.starts_with("numpy-")),
            "CPython {version}: numpy's metadata missing"
        );
        assert!(
            !files.iter().any(|f| f.path.contains("/tests/")),
            "CPython {version}: numpy's test data shipped"
        );
        let listed = run_windows(&numpy.exe(), &[], numpy.dir());
        let names: Vec<String> = expected
            .iter()
            .map(|p| format!("'{}'", p.trim_start_matches("numpy.libs/")))
            .collect();
        assert_eq!(
            (listed.code, listed.stdout.clone()),
            (0, format!("[{}]", names.join(", "))),
            "CPython {version}: {listed:?}"
        );
    }
}

/// An extension that answers with `isapi_wsgi.WHO`, whichever isapi_wsgi the freeze took.
const ASKS_ISAPI_WSGI: &str = "import isapi_wsgi\n\
def app(environ, start_response):\n\
\x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
\x20   return [getattr(isapi_wsgi, 'WHO', 'isapi-freeze').encode()]\n\
def __ExtensionFactory__():\n\
\x20   return isapi_wsgi.ISAPISimpleHandler(app)\n";

#[test]
fn an_isapi_wsgi_beside_the_script_wins_over_ours_and_a_site_folders_does_not() {
    let own = Freeze::source("own_handler.py", ASKS_ISAPI_WSGI)
        .file(
            "isapi_wsgi.py",
            "from isapi.wsgi import factory\nWHO = 'the app'\n\
             def ISAPISimpleHandler(app):\n    return factory(app)\n",
        )
        .ok();
    let host = Host::start(&own.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "the app");
    drop(host);

    // The isapi-wsgi on PyPI is Python 2: installed in a site folder, it is not the one.
    let freeze = Freeze::source("site_handler.py", ASKS_ISAPI_WSGI).file("lib/isapi_wsgi.py", "print 'python 2'\n");
    let lib = freeze.script_path().with_file_name("lib");
    let site = freeze.path(lib).ok();
    let host = Host::start(&site.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "isapi-freeze");
}

const TRACER: &str = "import sys\n\
import win32traceutil\n\
from isapi.simple import SimpleExtension\n\
class E(SimpleExtension):\n\
\x20   def HttpExtensionProc(self, ecb):\n\
\x20       win32traceutil.SetupForPrint()\n\
\x20       print('printed after SetupForPrint', ecb.PathInfo.decode())\n\
\x20       ecb.SendResponseHeaders('200 OK', 'Content-Length: 2\\r\\n\\r\\n', True)\n\
\x20       ecb.WriteClient(b'ok')\n\
\x20       return 1\n\
def __ExtensionFactory__():\n\
\x20   return E()\n\
if __name__ == '__main__':\n\
\x20   if sys.argv[1:] == ['collect']:\n\
\x20       win32traceutil.RunAsCollector()\n\
\x20   else:\n\
\x20       win32traceutil.SetupForPrint()\n\
\x20       print('printed by the installer')\n";

#[test]
fn win32traceutil_has_pywin32s_setup_for_print_and_collector() {
    let tracer = Freeze::source("tracer.py", TRACER).ok();

    // SetupForPrint, called again, keeps print() going to the log, in the DLL and the exe.
    let host = Host::start(&tracer.dll(), &[]);
    assert_eq!(get(&host.address, "/probe").text(), "ok");
    tracer.wait_for_log("the handler's print", |log| {
        log.contains("stdout: printed after SetupForPrint /probe")
    });
    drop(host);
    let finished = run_windows(&tracer.exe(), &[], tracer.dir());
    assert_eq!((finished.code, finished.stdout.as_str()), (0, ""), "{finished:?}");
    assert!(tracer.log_of("tracer").contains("stdout: printed by the installer"));

    // RunAsCollector prints what the logs get from then on, on the console.
    let mut command = windows_command(&tracer.exe());
    command.arg("collect").current_dir(tracer.dir());
    let collector = Running::start(command);
    collector.wait_for_stdout("Collecting Python Trace Output...", Duration::from_secs(120));
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(tracer.dist.join("logs/_tracer.log"))
        .unwrap();
    log.write_all(b"a line another process wrote\n").unwrap();
    collector.wait_for_stdout("a line another process wrote", Duration::from_secs(60));
}
