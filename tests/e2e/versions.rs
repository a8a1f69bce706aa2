//! The end-to-end core on every tested CPython besides the default one, which the whole
//! suite runs on: hello, the ECB and filter objects, the thread pool, WSGI under
//! wsgiref.validate, Flask, Django, pywin32's modules, isolation and a tampered archive. Each
//! app is frozen for the version with its own embeddable runtime and packages, served, and
//! must answer each request with the status and bytes the default version's build gives.
//! The versions are `make test`'s PYTHONS (ISAPI_FREEZE_TEST_PYTHONS), else every tested
//! one in stub/format/pythons.txt.

use std::path::PathBuf;

use isapi_freeze_format::pythons::Python;

use crate::support::{
    default_python, fixture, get, other_pythons, post, repo, runtime_of, site, site_of, Freeze, Frozen, Host, Response,
};

/// A request to compare: GET `path`, or POST `body` to it.
enum Ask {
    Get(&'static str),
    Post(&'static str, &'static [u8]),
}

fn ask(host: &Host, request: &Ask) -> Response {
    match request {
        Ask::Get(path) => get(&host.address, path),
        Ask::Post(path, body) => post(&host.address, path, body),
    }
}

/// Freezes the app with `freeze` for the default version and for each other one, serves
/// each, and checks every request is answered alike (status and body).
fn answers_alike(name: &str, freeze: impl Fn(Option<&Python>) -> Frozen, requests: &[Ask]) {
    let reference = freeze(None);
    let host = Host::start(&reference.dll(), &[]);
    let expected: Vec<(u16, String)> = requests
        .iter()
        .map(|r| {
            let response = ask(&host, r);
            (response.status, without_folder(&response.body, &reference))
        })
        .collect();
    drop(host);
    for python in other_pythons() {
        let frozen = freeze(Some(&python));
        let host = Host::start(&frozen.dll(), &[]);
        for (request, (status, body)) in requests.iter().zip(&expected) {
            let response = ask(&host, request);
            let what = match request {
                Ask::Get(path) | Ask::Post(path, _) => path,
            };
            assert_eq!(
                (response.status, without_folder(&response.body, &frozen)),
                (*status, body.clone()),
                "{name} on CPython {}: {what}",
                python.version()
            );
        }
    }
}

/// A body as text with the output's own temporary folder name taken out (paths differ
/// from one freeze to the other).
fn without_folder(body: &[u8], frozen: &Frozen) -> String {
    let folder = frozen
        .dist
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy();
    String::from_utf8_lossy(body).replace(folder.as_ref(), "TMP")
}

/// `script` frozen for `python` (None: the default), with `extra` options.
fn frozen(script: PathBuf, python: Option<&Python>, extra: &[String]) -> Frozen {
    let mut freeze = Freeze::script(script).args(extra.iter().cloned());
    if let Some(python) = python {
        freeze = freeze.python(runtime_of(python));
    }
    freeze.ok()
}

#[test]
fn hello_answers_alike_on_every_tested_python() {
    answers_alike(
        "hello",
        |python| frozen(repo().join("examples/hello/hello.py"), python, &[]),
        &[Ask::Get("/hello/world?name=versions"), Ask::Get("/")],
    );
}

#[test]
fn the_ecb_object_answers_alike_on_every_tested_python() {
    answers_alike(
        "ecb_app",
        |python| frozen(fixture("ecb_app/ecb_app.py"), python, &[]),
        &[
            Ask::Get("/status"),
            Ask::Get("/vars-default"),
            Ask::Get("/misc"),
            Ask::Get("/redirect"),
            Ask::Get("/done"),
        ],
    );
}

#[test]
fn the_thread_pool_answers_alike_on_every_tested_python() {
    answers_alike(
        "pool",
        |python| frozen(fixture("scripts/pool.py"), python, &[]),
        &[Ask::Get("/plain/1"), Ask::Get("/plain/2")],
    );
}

#[test]
fn wsgi_under_wsgiref_validate_answers_alike_on_every_tested_python() {
    answers_alike(
        "wsgi_probe",
        |python| frozen(fixture("scripts/wsgi_probe.py"), python, &[]),
        &[
            Ask::Post("/validated", b"line one\nrest of it"),
            Ask::Get("/write"),
            Ask::Get("/close"),
            Ask::Get("/native"),
        ],
    );
}

#[test]
fn a_pywin32_module_loads_with_its_dlls_on_every_tested_python() {
    let probe = crate::support::temp_dir();
    let script = probe.path().join("winapi.py");
    std::fs::write(
        &script,
        "import win32api, win32con, pywintypes\n\
         from isapi import isapicon\n\
         from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n\
         \x20   def HttpExtensionProc(self, ecb):\n\
         \x20       body = '\\n'.join([str(win32con.MB_OK), pywintypes.__file__.rsplit('\\\\', 1)[-1]]).encode()\n\
         \x20       ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\n\\r\\n', False)\n\
         \x20       ecb.WriteClient(body)\n\
         \x20       return isapicon.HSE_STATUS_SUCCESS\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .unwrap();
    for python in other_pythons() {
        let site = site_of(&python, "pywin32");
        let frozen = frozen(
            script.clone(),
            Some(&python),
            &["--path".into(), site.display().to_string()],
        );
        let dll = format!("pywintypes{}.dll", &python.abi_tag()[2..]);
        assert!(
            frozen.dist.join(&dll).is_file(),
            "{dll} missing for CPython {}",
            python.version()
        );
        let host = Host::start(&frozen.dll(), &[]);
        assert_eq!(
            get(&host.address, "/").text(),
            format!("0\n{dll}"),
            "CPython {}",
            python.version()
        );
    }
}

#[test]
fn flask_and_django_answer_alike_on_every_tested_python() {
    let with_site = |script: &'static str, name: &'static str| {
        move |python: Option<&Python>| {
            let site = match python {
                Some(python) => site_of(python, name),
                None => site(name),
            };
            frozen(
                repo().join(script),
                python,
                &["--path".to_string(), site.display().to_string(), "--strict".to_string()],
            )
        }
    };
    answers_alike(
        "flask",
        with_site("examples/flask_app/app.py", "flask"),
        &[
            Ask::Get("/?name=IIS"),
            Ask::Get("/static/style.css"),
            Ask::Post("/api/echo", b"{\"a\": [1, 2]}"),
        ],
    );
    answers_alike(
        "django",
        with_site("examples/django_app/django_app.py", "django"),
        &[
            Ask::Get("/notes/add?text=first"),
            Ask::Get("/static/admin/css/base.css"),
            Ask::Get("/time"),
        ],
    );
}

#[test]
fn a_tampered_archive_is_refused_on_every_tested_python() {
    for python in other_pythons() {
        let frozen = frozen(repo().join("examples/hello/hello.py"), Some(&python), &[]);
        let copy = frozen.copy();
        let dll = copy.dll();
        let mut bytes = std::fs::read(&dll).unwrap();
        // Flip a byte inside the embedded archive (a zip's local header signature is PK).
        let at = bytes
            .windows(4)
            .position(|w| w == b"PK\x03\x04")
            .expect("the archive is embedded")
            + 40;
        bytes[at] ^= 0xff;
        std::fs::write(&dll, bytes).unwrap();
        let refused = Host::run_refused(Host::command(&dll, &[]));
        assert_eq!(refused.code, 3, "CPython {}: {}", python.version(), refused.stderr);
        let log = copy.log();
        assert!(
            log.contains("was altered or damaged"),
            "CPython {}: {log}",
            python.version()
        );
    }
}

#[test]
fn a_module_a_version_removed_is_found_nowhere_not_a_crash() {
    // cgi left the standard library in 3.13; on the versions that still have it, it ships.
    let script = "import cgi\nfrom isapi.wsgi import factory\n\
                  def app(environ, start_response):\n\
                  \x20   start_response('200 OK', [])\n\
                  \x20   return [b'ok']\n\
                  __ExtensionFactory__ = factory(app)\n";
    for python in other_pythons().into_iter().chain([default_python()]) {
        let out = Freeze::source("oldstyle.py", script)
            .python(runtime_of(&python))
            .output();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "CPython {}: {err}", python.version());
        let warned = err.contains("found nowhere") && err.contains("  cgi (imported by oldstyle)");
        assert_eq!(
            warned,
            python.minor >= 13,
            "CPython {}: the cgi warning: {err}",
            python.version()
        );
    }
}

#[test]
fn the_filter_objects_answer_alike_on_every_tested_python() {
    let probe = crate::support::temp_dir();
    let script = probe.path().join("rewriter.py");
    std::fs::write(
        &script,
        "from isapi import isapicon, simple\n\
         class Filter(simple.SimpleFilter):\n\
         \x20   filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS | isapicon.SF_NOTIFY_SEND_RESPONSE\n\
         \x20   def HttpFilterProc(self, fc):\n\
         \x20       data = fc.GetData()\n\
         \x20       if fc.NotificationType == isapicon.SF_NOTIFY_PREPROC_HEADERS:\n\
         \x20           url = data.GetHeader(b'url')\n\
         \x20           if url.startswith(b'/old/'):\n\
         \x20               data.SetHeader('url', '/new/' + url[5:].decode())\n\
         \x20       else:\n\
         \x20           data.AddHeader('X-Filtered:', 'yes')\n\
         \x20       return isapicon.SF_STATUS_REQ_NEXT_NOTIFICATION\n\
         class Extension(simple.SimpleExtension):\n\
         \x20   def HttpExtensionProc(self, ecb):\n\
         \x20       ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\n\\r\\n', False)\n\
         \x20       ecb.WriteClient(ecb.GetServerVariable('URL') + b' ' + ecb.GetServerVariable('REQUEST_METHOD'))\n\
         \x20       return 0\n\
         def __FilterFactory__():\n    return Filter()\n\
         def __ExtensionFactory__():\n    return Extension()\n",
    )
    .unwrap();
    let answer = |python: Option<&Python>| {
        let frozen = frozen(script.clone(), python, &[]);
        let dll = frozen.dll();
        let host = Host::start(&dll, &["--filter", &crate::support::win_path(&dll)]);
        let response = get(&host.address, "/old/page");
        (
            response.status,
            response.text(),
            response.header("X-Filtered").map(String::from),
        )
    };
    let expected = answer(None);
    assert_eq!(expected.0, 200);
    assert_eq!(expected.1, "/new/page GET");
    assert_eq!(expected.2.as_deref(), Some("yes"));
    for python in other_pythons() {
        assert_eq!(answer(Some(&python)), expected, "CPython {}", python.version());
    }
}
