//! isapi-wsgi's API (`import isapi_wsgi`) frozen with the CLI and served by isapi-host under
//! Wine: the CherryPy example written as isapi-wsgi's users wrote it, sub-applications by
//! the first path segment, SCRIPT_NAME from APPL_MD_PATH, the 500 page; and the boot
//! module's handling of a factory that returns a factory.

use std::time::Duration;

use crate::support::{assert_contains, get, repo, site, win_path, Freeze, Host, Response, ERROR_PAGE};

fn assert_answer(response: &Response, status: u16, body: &str) {
    assert_eq!(
        (response.status, response.text().as_str()),
        (status, body),
        "{response:?}"
    );
}

#[test]
fn cherrypy_example_runs_unchanged_on_the_thread_pool_handler() {
    // The README's command; a warning about CherryPy's fallback imports is not an error.
    let app = Freeze::script(repo().join("examples/cherrypy_app/app.py"))
        .path(site("cherrypy"))
        .ok();
    let host = Host::start(&app.dll(), &[]);
    // GetExtensionVersion gives IIS the handler's description, isapi-wsgi's words.
    let described = host
        .running
        .wait_for_stdout("isapi-host: extension ", Duration::from_secs(10));
    assert_eq!(
        described,
        "isapi-host: extension \"Python Thread Pool WSGI ISAPI Extension\""
    );

    let index = get(&host.address, "/");
    assert_answer(&index, 200, "Hello from CherryPy under ISAPI.\n");
    assert_eq!(index.header("Content-Type"), Some("text/html;charset=utf-8"));
    assert_answer(&get(&host.address, "/greet?name=IIS"), 200, "Hello, IIS!\n");
    // CherryPy pads an error page shorter than 513 bytes with spaces (for old Internet
    // Explorer, which showed its own page instead of a short one).
    let missing = get(&host.address, "/nope");
    assert_answer(&missing, 404, &format!("{:<513}", "no such page: /nope\n"));
    // CherryPy's access log goes to stdout, which is the extension's log.
    app.wait_for_log("CherryPy's access log", |log| {
        log.contains("\"GET /nope HTTP/1.1\" 404 513")
    });
    host.stop();
}

/// A script with isapi-wsgi sub-applications: each application answers with what it was
/// given; `boom` raises. HANDLER is filled in.
const SUBAPPS: &str = r#"import sys
if hasattr(sys, "isapidllhandle"):
    import win32traceutil
import isapi_wsgi

def show(name):
    def app(environ, start_response):
        keys = ("SCRIPT_NAME", "PATH_INFO", "IIS_EXTENSION_PATH", "WSGI_SUBAPP", "HTTPS", "wsgi.multithread")
        lines = [name] + [f"{key}={environ.get(key)}" for key in keys]
        # The paths are PEP 3333 native strings: the request's bytes, one char per byte.
        body = "\n".join(lines).encode("latin-1") + b"\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return app

def boom(environ, start_response):
    raise RuntimeError("isapi_wsgi probe failure " + environ["PATH_INFO"])

def __ExtensionFactory__():
    return HANDLER
"#;

/// What `show(name)` answers.
fn shown(name: &str, script_name: &str, path_info: &str, extension_path: &str, subapp: &str) -> String {
    format!(
        "{name}\nSCRIPT_NAME={script_name}\nPATH_INFO={path_info}\nIIS_EXTENSION_PATH={extension_path}\n\
         WSGI_SUBAPP={subapp}\nHTTPS=off\nwsgi.multithread=True\n"
    )
}

#[test]
fn sub_applications_are_chosen_by_the_first_path_segment() {
    let subapps = Freeze::source(
        "subapps.py",
        &SUBAPPS.replace("HANDLER", "isapi_wsgi.ISAPISimpleHandler(docs=show('docs'), boom=boom)"),
    )
    .ok();
    let host = Host::start(&subapps.dll(), &[]);
    let at = |path: &str| get(&host.address, path);
    assert_answer(&at("/docs/a/b"), 200, &shown("docs", "/docs", "/a/b", "", "docs"));
    assert_answer(&at("/docs"), 200, &shown("docs", "/docs", "", "", "docs"));
    // wsgiref's shift_path_info, as isapi-wsgi used: empty segments before the name go.
    assert_answer(&at("//docs/x"), 200, &shown("docs", "/docs", "/x", "", "docs"));
    // Names match exactly; with no root application, any other path is isapi-wsgi's 404.
    let other = at("/Docs/a");
    assert_answer(&other, 404, "Page not found");
    assert_eq!(other.reason, "Not Found");

    let failed = at("/boom/x?q=1");
    assert_answer(&failed, 500, ERROR_PAGE);
    assert_eq!(failed.header("Content-Type"), Some("text/html"));
    let log = subapps.wait_for_log("the failure's traceback", |log| {
        log.contains("RuntimeError: isapi_wsgi probe failure /x")
    });
    assert_contains(&log, "isapi.wsgi: the application failed on GET /boom/x?q=1:");
    assert_contains(&log, "Traceback (most recent call last):");
    // The extension goes on serving.
    assert_eq!(at("/docs").status, 200);
    host.stop();
}

#[test]
fn a_wildcard_map_at_a_vpath_gets_script_name_from_appl_md_path() {
    let mounted = Freeze::source(
        "mounted.py",
        &SUBAPPS.replace(
            "HANDLER",
            "isapi_wsgi.ISAPIThreadPoolHandler(show('root'), docs=show('docs'), boom=boom)",
        ),
    )
    .ok();
    // isapi-host serves as a wildcard map of an IIS application at /app: URL, SCRIPT_NAME
    // and PATH_INFO are all the whole path, APPL_MD_PATH is /LM/W3SVC/1/ROOT/app.
    let host = Host::start(&mounted.dll(), &["--vpath", "/app"]);
    let at = |path: &str| get(&host.address, path);
    assert_answer(&at("/app/x/y"), 200, &shown("root", "/app", "/x/y", "/app", "None"));
    assert_answer(&at("/app"), 200, &shown("root", "/app", "", "/app", "None"));
    assert_answer(&at("/app/"), 200, &shown("root", "/app", "/", "/app", "None"));
    // URL paths match in any letter case, as in IIS; SCRIPT_NAME keeps the client's.
    assert_answer(&at("/APP/x"), 200, &shown("root", "/APP", "/x", "/app", "None"));
    assert_answer(
        &at("/app/docs/z"),
        200,
        &shown("docs", "/app/docs", "/z", "/app", "docs"),
    );
    // The decoded path's UTF-8 bytes, as PEP 3333 wants them.
    assert_answer(
        &at("/app/docs/caf%C3%A9"),
        200,
        &shown("docs", "/app/docs", "/café", "/app", "docs"),
    );

    let failed = at("/app/boom/late");
    assert_answer(&failed, 500, ERROR_PAGE);
    mounted.wait_for_log("the failure's traceback", |log| {
        log.contains("isapi.wsgi: the application failed on GET /app/boom/late:")
            && log.contains("RuntimeError: isapi_wsgi probe failure /late")
    });
    host.stop();
}

#[test]
fn a_factory_that_returns_a_factory_is_called_once_more() {
    // Both slips at once: the extension factory returns isapi.wsgi.factory(app), which is
    // itself a factory; the filter factory returns the filter's class.
    let twice = Freeze::source(
        "twice.py",
        "from isapi import isapicon\n\
         from isapi.simple import SimpleFilter\n\
         from isapi.wsgi import factory\n\
         def app(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [b'served by ' + environ['PATH_INFO'].encode()]\n\
         class Tagger(SimpleFilter):\n\
         \x20   'tagging filter'\n\
         \x20   filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS\n\
         \x20   def HttpFilterProc(self, fc):\n\
         \x20       fc.AddResponseHeaders('X-Tagged: yes\\r\\n')\n\
         def __ExtensionFactory__():\n\
         \x20   return factory(app)\n\
         def __FilterFactory__():\n\
         \x20   return Tagger\n",
    )
    .ok();
    let dll = twice.dll();
    let host = Host::start(&dll, &["--filter", &win_path(&dll)]);
    let response = get(&host.address, "/x");
    assert_answer(&response, 200, "served by /x");
    assert_eq!(response.header("X-Tagged"), Some("yes"), "{response:?}");
    // Each slip is noted in the log when the DLL loads.
    twice.wait_for_log("both factories called once more", |log| {
        log.contains("__ExtensionFactory__() returned <function factory.<locals>.__ExtensionFactory__ at 0x")
            && log.contains("__FilterFactory__() returned <class 'twice.Tagger'>, a factory: called it once more")
    });
    host.stop();
}

#[test]
fn a_factory_that_returns_the_wsgi_application_fails_saying_what_to_write() {
    let appfactory = Freeze::source(
        "appfactory.py",
        "def application(environ, start_response):\n\
         \x20   start_response('200 OK', [])\n\
         \x20   return [b'never']\n\
         def __ExtensionFactory__():\n\
         \x20   return application\n",
    )
    .ok();
    let refused = Host::run_refused(Host::command(&appfactory.dll(), &[]));
    // The extension refused to load, so the host does not serve.
    assert_eq!(refused.code, 3, "{refused:?}");
    assert_contains(&refused.stderr, "GetExtensionVersion");
    let log = appfactory.wait_for_log("the error", |log| log.contains("TypeError"));
    assert_contains(
        &log,
        "TypeError: __ExtensionFactory__() returned <function application at 0x",
    );
    assert_contains(
        &log,
        ">, which has no GetExtensionVersion. For a WSGI application write \
         `__ExtensionFactory__ = isapi.wsgi.factory(application)`; else __ExtensionFactory__ \
         must return the extension object, e.g. `return MyExtension()`",
    );
}
