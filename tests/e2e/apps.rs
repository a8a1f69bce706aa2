//! Real applications frozen with their Windows packages (installed for win_amd64 by `make
//! sites`) and served over HTTP: Flask with a Jinja2 template and a static file, a pywin32
//! extension module with its DLLs, Django with templates, admin static files and sqlite3.

use std::path::Path;

use crate::support::{
    assert_contains, default_python, get, post_as, py_zip, repo, shared, site, temp_dir, windows_python, Freeze,
    Frozen, Host,
};

fn flask_app() -> Frozen {
    // No --data: the app factory's templates and static files ship as package data.
    Freeze::script(repo().join("examples/flask_app/app.py"))
        .path(site("flask"))
        .arg("--strict")
        .ok()
}

#[test]
fn flask_app_renders_its_template_serves_static_files_and_json() {
    let flask = flask_app();
    // markupsafe's C speedups are an extension module of an archived package.
    assert!(flask
        .dist
        .join(format!(
            "markupsafe/_speedups.{}-win_amd64.pyd",
            default_python().abi_tag()
        ))
        .is_file());
    let host = Host::start(&flask.dll(), &[]);

    let page = get(&host.address, "/?name=IIS");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        page.text(),
        "<!doctype html>\n<title>Hello from Flask on IIS</title>\n\
         <link rel=\"stylesheet\" href=\"/static/style.css\">\n<h1>Hello, IIS!</h1>"
    );

    let css = get(&host.address, "/static/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.text(), "h1 { color: teal; }\n");

    let json = post_as(&host.address, "/api/echo", "application/json", br#"{"a": [1, 2]}"#);
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert_eq!(json.text(), "{\"method\":\"POST\",\"received\":{\"a\":[1,2]}}\n");

    let missing = get(&host.address, "/nope");
    assert_eq!(missing.status, 404);
}

#[test]
fn markupsafe_uses_its_compiled_speedups_inside_the_frozen_app() {
    let speedups = Freeze::source(
        "speedups.py",
        "import markupsafe\nfrom isapi.wsgi import factory\n\
         def app(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [markupsafe._escape_inner.__module__.encode(), b' ', markupsafe.escape('<b>').encode()]\n\
         __ExtensionFactory__ = factory(app)\n",
    )
    .path(site("flask"))
    .ok();
    let host = Host::start(&speedups.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "markupsafe._speedups &lt;b&gt;");
}

#[test]
fn a_pywin32_module_loads_with_its_dlls_and_answers() {
    let winapi = Freeze::source(
        "winapi.py",
        "import win32api, win32con, pywintypes\n\
         from isapi import isapicon, wsgi  # only our isapi has wsgi\n\
         from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n    'pywin32 probe'\n\
         \x20   def HttpExtensionProc(self, ecb):\n\
         \x20       body = '\\n'.join([win32api.GetSystemDirectory(), str(win32con.MB_OK), pywintypes.__file__.rsplit('\\\\', 1)[-1]]).encode()\n\
         \x20       ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body), True)\n\
         \x20       ecb.WriteClient(body)\n        return isapicon.HSE_STATUS_SUCCESS\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .path(site("pywin32"))
    .ok();
    let pywintypes = format!("pywintypes{}.dll", &default_python().abi_tag()[2..]);
    assert_contains(&winapi.stderr, &format!("shipping {pywintypes}"));
    for file in ["win32api.pyd", pywintypes.as_str()] {
        assert!(winapi.dist.join(file).is_file(), "{file} missing");
    }
    // Our isapi package, not pywin32's, is the one in the archive.
    let host = Host::start(&winapi.dll(), &[]);
    let response = get(&host.address, "/");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), format!("C:\\windows\\system32\n0\n{pywintypes}"));
}

#[test]
fn django_app_writes_and_reads_sqlite_renders_templates_and_serves_admin_static_files() {
    let site = site("django");
    // No options but where Django is: settings, apps, data and tzdata are found.
    let django = Freeze::script(repo().join("examples/django_app/django_app.py"))
        .path(&site)
        .arg("--strict")
        .ok();
    let dist = &django.dist;
    assert!(
        dist.join("django/contrib/admin/static/admin/css/base.css").is_file(),
        "--files ships Django as files"
    );
    let host = Host::start(&django.dll(), &[]);

    for text in ["first", "second"] {
        let added = get(&host.address, &format!("/notes/add?text={text}"));
        assert_eq!((added.status, added.text().as_str()), (200, "added\n"));
    }
    let notes = get(&host.address, "/notes/");
    assert_eq!(notes.status, 200, "{}", notes.text());
    assert_eq!(notes.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        notes.text(),
        "<!doctype html>\n<title>Notes</title>\n<ul><li>first</li><li>second</li></ul>\n<p>Oui</p>\n"
    );
    assert!(
        dist.join("data/notes.sqlite3").is_file(),
        "the database is in the output's data folder"
    );

    let css = get(&host.address, "/static/admin/css/base.css");
    assert_eq!(css.status, 200);
    assert_eq!(
        css.body,
        std::fs::read(site.join("django/contrib/admin/static/admin/css/base.css")).unwrap()
    );

    assert_eq!(get(&host.address, "/time").text(), "2026-07-01T14:00:00+02:00\n");
}

#[test]
fn package_data_beside_the_packages_file_is_reachable_three_ways() {
    let reader = Freeze::source(
        "datareader.py",
        "import importlib.resources, pkgutil, os\nimport datapkg\nfrom isapi.wsgi import factory\n\
         def app(environ, start_response):\n\
         \x20   a = importlib.resources.files('datapkg').joinpath('files/greeting.txt').read_text()\n\
         \x20   b = pkgutil.get_data('datapkg', 'files/greeting.txt').decode()\n\
         \x20   c = datapkg.__spec__.loader.get_data(os.path.join(os.path.dirname(datapkg.__file__), 'files', 'greeting.txt')).decode()\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [('|'.join([a, b, c])).encode()]\n\
         __ExtensionFactory__ = factory(app)\n",
    )
    .file("lib/datapkg/__init__.py", "")
    .file("lib/datapkg/files/greeting.txt", "hello from the archive");
    let lib = reader.script_path().with_file_name("lib");
    let reader = reader.path(lib).ok();
    // The data is a file where the package's __file__ says it is; the code is not.
    assert_eq!(
        std::fs::read_to_string(reader.dist.join("datapkg/files/greeting.txt")).unwrap(),
        "hello from the archive"
    );
    assert!(
        !reader.dist.join("datapkg/__init__.pyc").exists(),
        "the code stays in the archive"
    );
    let host = Host::start(&reader.dll(), &[]);
    assert_eq!(
        get(&host.address, "/").text(),
        "hello from the archive|hello from the archive|hello from the archive"
    );
}

#[test]
fn an_unchanged_rebuild_asks_the_build_python_only_its_version() {
    let tmp = temp_dir();
    let log = tmp.path().join("python-calls.log");
    let wrapper = tmp.path().join("python3-counting");
    std::fs::write(
        &wrapper,
        // Logs each start, then each request line (the worker reads one per batch).
        format!(
            "#!/bin/sh\necho start >> '{0}'\ntee -a '{0}' | python3 \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = tmp.path().join("cached.py");
    std::fs::write(&script, "import json, email.parser\n__ExtensionFactory__ = None\n").unwrap();
    let cache = tmp.path().join("cache");
    let run = |dist: &str| {
        Freeze::script(&script)
            .dist_dir(tmp.path().join(dist))
            .arg("--build-python")
            .arg(&wrapper)
            .env("ISAPI_FREEZE_CACHE", &cache)
            .ok();
        let log_text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        let starts = log_text.lines().filter(|l| *l == "start").count();
        let requests: Vec<String> = log_text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(String::from)
            .collect();
        (starts, requests)
    };
    // Big batches are split between two workers; never more, whatever the batch count.
    let (starts, first) = run("one");
    assert!((1..=2).contains(&starts), "{starts} build Pythons started");
    assert!(
        first.len() > 2,
        "a first build compiles and scans ({} requests)",
        first.len()
    );
    assert_eq!(
        run("two"),
        (1, vec![r#"{"files":[]}"#.to_string()]),
        "the rebuild starts one build Python and only asks for the bytecode version"
    );
    assert_eq!(
        snapshot_bytes(&tmp.path().join("one/_cached.dll")),
        snapshot_bytes(&tmp.path().join("two/_cached.dll"))
    );
}

fn snapshot_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn strict_refuses_imports_found_nowhere_and_names_their_importers() {
    let freeze = Freeze::source(
        "needy.py",
        "import not_installed_anywhere\nfrom helper import thing\n__ExtensionFactory__ = None\n",
    )
    .file("helper.py", "import also_missing.sub\nthing = 1\n");
    let lenient = freeze.output();
    assert!(lenient.status.success());
    let warning = String::from_utf8_lossy(&lenient.stderr);
    assert_contains(
        &warning,
        "  also_missing (imported by helper)\n  not_installed_anywhere (imported by needy)\n",
    );
    let strict = freeze.arg("--strict").output();
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&strict.stderr).lines().last().unwrap(),
        "add their folder with --path, or --exclude them"
    );
    assert!(String::from_utf8_lossy(&strict.stderr).contains(
        "error: these modules are imported but found nowhere (--strict):\n  also_missing (imported by helper)"
    ));
}

#[test]
fn full_stdlib_ships_the_runtimes_whole_standard_library() {
    let script = repo().join("examples/hello/hello.py");
    let subset = &shared(&script).dist;
    let whole = Freeze::script(&script).arg("--full-stdlib").ok();
    let full = &whole.dist;
    let python = windows_python();
    assert_eq!(
        std::fs::read(full.join(py_zip())).unwrap(),
        std::fs::read(python.join(py_zip())).unwrap()
    );
    // Without it, the standard library the app imports is all in the archive.
    assert!(!subset.join(py_zip()).exists());
    assert!(full.join("winsound.pyd").is_file() && !subset.join("winsound.pyd").exists());
    // The archive has no `encodings` then: Python starts in one step and imports it from the
    // zip, as CPython 3.14's runtime always does.
    let host = Host::start(&whole.dll(), &[]);
    let response = get(&host.address, "/hello?x=1");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "method: GET\npath: /hello\nquery: x=1\nfrozen: dll\n");
}
