//! Two frozen apps in one process, as IIS makes them meet when a filter registered on a
//! site is loaded into the worker of another application: a second app for the same CPython
//! version shares the first one's interpreter, each keeping its own log, modules, factory
//! objects, reload and terminate; one for another version refuses with a message naming the
//! first app and what to do, in its log and the Event Log, and nothing panics. And
//! isapi-host's `--app`: several extensions under their virtual paths in one process.

use std::path::Path;

use isapi_freeze_format::pythons::{self, Python};

use crate::support::{assert_contains, default_python, get, runtime_of, test_programs, win_path, Freeze, Frozen, Host};

/// An app NAME that is both a filter (adding a header) and an extension answering
/// `NAME on X.Y`, frozen for `python`.
fn app(name: &str, python: &Python) -> Frozen {
    let script = format!(
        "import sys\n\
         from isapi import isapicon\n\
         from isapi.simple import SimpleExtension, SimpleFilter\n\
         class F(SimpleFilter):\n    '{name} filter'\n    filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS\n    \
             def HttpFilterProc(self, fc):\n        fc.AddHeader('X-{name}:', 'seen')\n\
         class E(SimpleExtension):\n    '{name} extension'\n    def HttpExtensionProc(self, ecb):\n        \
             body = ('{name} on %d.%d\\n' % sys.version_info[:2]).encode()\n        \
             ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body), True)\n        \
             ecb.WriteClient(body)\n        return isapicon.HSE_STATUS_SUCCESS\n\
         def __FilterFactory__():\n    return F()\n\
         def __ExtensionFactory__():\n    return E()\n"
    );
    Freeze::source(&format!("{name}.py"), &script)
        .python(runtime_of(python))
        .ok()
}

fn version(major: u32, minor: u32) -> Python {
    pythons::find(major, minor).expect("a supported CPython version")
}

/// `--filter A B` (A's filter, B's extension) with the Event Log shown on stderr: what
/// isapi-host said, once it refused to serve.
fn filter_then_extension(a: &Path, b: &Path) -> crate::support::Finished {
    let mut command = Host::with_args(&["--filter".to_string(), win_path(a), win_path(b)]);
    command.env("WINEDEBUG", "-all,err+eventlog");
    Host::run_refused(command)
}

/// The running Python's DLL as the refusal names it: A's, by its path.
fn python_dll_of(frozen: &Frozen, python: &Python) -> String {
    win_path(&frozen.dist.join(python.dll_name()))
}

#[test]
fn an_app_on_another_python_version_refuses_and_names_the_app_whose_python_runs() {
    let (v312, v313) = (version(3, 12), version(3, 13));
    let a = app("a", &v312);
    let b = app("b", &v313);
    let finished = filter_then_extension(&a.dll(), &b.dll());
    // isapi-host ends when an extension cannot start (its exit code 3): the filter ran first.
    assert_eq!(finished.code, 3, "{finished:?}");
    assert!(!finished.stderr.contains("panicked"), "{finished:?}");
    let log = b.log();
    assert_contains(&log, "cannot start Python: Python 3.12.");
    assert_contains(
        &log,
        &format!(
            " ({}) already runs in this process, started by the frozen app {} (Python 3.12); \
             one process runs one CPython version: give this app an application pool and a site of \
             its own (IIS loads a filter registered on a site, or server-wide, into every worker of \
             that site), or freeze both apps for one CPython version (this app is for 3.13)",
            python_dll_of(&a, &v312),
            win_path(&a.dll())
        ),
    );
    assert!(!log.contains("append_to_inittab"), "{log}");
    assert!(
        finished.stderr.contains("err:eventlog:ReportEventW L\"_b.dll"),
        "{finished:?}"
    );
}

/// An app NAME for the sharing tests: its filter adds `X-NAME: seen` to requests and logs
/// a line; its extension answers `NAME: helper W, X-a S` (W: the `helper` module it
/// imported, S: what A's filter added), logs a line, reloads on its first `?reload` (the
/// mark of it kept in a module that outlives the reload), and logs its
/// TerminateExtension. Each ships its own `helper.py` saying `helper`.
fn sharing_app(name: &str, helper: &str) -> Frozen {
    let script = format!(
        "import helper\n\
         from isapi import isapicon, InternalReloadException\n\
         from isapi.simple import SimpleExtension, SimpleFilter\n\
         class F(SimpleFilter):\n    '{name} filter'\n    filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS\n    \
             def HttpFilterProc(self, fc):\n        fc.GetData().AddHeader('X-{name}:', 'seen')\n        \
             print('{name} filter saw a request')\n\
         class E(SimpleExtension):\n    '{name} extension'\n    def HttpExtensionProc(self, ecb):\n        \
             if ecb.QueryString == b'reload' and not hasattr(isapicon, 'reloaded_{name}'):\n            \
             isapicon.reloaded_{name} = True\n            raise InternalReloadException\n        \
             seen = ecb.GetServerVariable('HTTP_X_A', b'-').decode()\n        \
             body = ('{name}: helper %s, X-a %s\\n' % (helper.WHO, seen)).encode()\n        \
             ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body), True)\n        \
             ecb.WriteClient(body)\n        print('{name} extension answered')\n        \
             return isapicon.HSE_STATUS_SUCCESS\n    \
             def TerminateExtension(self, status):\n        print('{name} extension terminated')\n        return True\n\
         def __FilterFactory__():\n    return F()\n\
         def __ExtensionFactory__():\n    print('{name} extension factory')\n    return E()\n"
    );
    Freeze::source(&format!("{name}.py"), &script)
        .file("helper.py", &format!("WHO = {helper:?}\n"))
        .ok()
}

#[test]
fn a_second_app_on_the_same_python_version_shares_the_interpreter_with_its_own_log() {
    let a = sharing_app("a", "of a");
    let b = sharing_app("b", "of b");
    // A's filter and B's extension, as IIS loads a site's filter into B's worker.
    let host = Host::from_command(Host::with_args(&[
        "--filter".to_string(),
        win_path(&a.dll()),
        win_path(&b.dll()),
    ]));
    let response = get(&host.address, "/anything");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "b: helper of b, X-a seen\n"),
        "a's log:\n{}\nb's log:\n{}",
        a.log(),
        b.log()
    );
    let finished = host.stop();
    assert!(!finished.stderr.contains("panicked"), "{finished:?}");
    let (a_log, b_log) = (a.log(), b.log());
    assert_contains(
        &b_log,
        &format!(
            "sharing the Python interpreter that the frozen app {} runs in this process",
            win_path(&a.dll())
        ),
    );
    assert_contains(
        &a_log,
        &format!(
            "the frozen app {} shares this app's Python interpreter",
            win_path(&b.dll())
        ),
    );
    // Each app's lines in its own log: its prints, its factory, its TerminateExtension.
    for (log, own, other) in [(&a_log, "a", "b"), (&b_log, "b", "a")] {
        assert!(!log.contains(&format!("stdout: {other} ")), "{own}'s log:\n{log}");
    }
    assert_contains(&a_log, "stdout: a filter saw a request");
    assert_contains(&b_log, "stdout: b extension factory");
    assert_contains(&b_log, "stdout: b extension answered");
    assert_contains(&b_log, "stdout: b extension terminated");
    // B's helper differs from A's: B's own copy, and the log says what cannot be kept apart.
    assert_contains(
        &b_log,
        &format!(
            "module helper: the frozen app {}'s copy is already imported; this app's import statements \
             get its own copy (as _isapi_freeze_app1.helper)",
            win_path(&a.dll())
        ),
    );
}

#[test]
fn two_extensions_shipping_a_module_of_one_name_each_serve_their_own() {
    let a = sharing_app("a", "of a");
    let b = sharing_app("b", "of b");
    let host = serve_apps(&[("/a", &a.dll()), ("/b", &b.dll())]);
    for _ in 0..2 {
        let from_a = get(&host.address, "/a/x");
        assert_eq!(
            (from_a.status, from_a.text().as_str()),
            (200, "a: helper of a, X-a -\n")
        );
        let from_b = get(&host.address, "/b/x");
        assert_eq!(
            (from_b.status, from_b.text().as_str()),
            (200, "b: helper of b, X-a -\n")
        );
    }
    // B's InternalReloadException reloads B's script (B's factory again), not A's.
    let reloaded = get(&host.address, "/b/x?reload");
    assert_eq!(
        (reloaded.status, reloaded.text().as_str()),
        (200, "b: helper of b, X-a -\n"),
        "b's log:\n{}",
        b.log()
    );
    let from_a = get(&host.address, "/a/x");
    assert_eq!(
        (from_a.status, from_a.text().as_str()),
        (200, "a: helper of a, X-a -\n")
    );
    let finished = host.stop();
    assert_contains(&finished.stdout, "isapi-host: extension \"a extension\" at /a\n");
    assert_contains(&finished.stdout, "isapi-host: extension \"b extension\" at /b\n");
    let (a_log, b_log) = (a.log(), b.log());
    assert_contains(&b_log, "b raised InternalReloadException: reloading it");
    assert_eq!(b_log.matches("stdout: b extension factory").count(), 2, "{b_log}");
    assert_eq!(a_log.matches("stdout: a extension factory").count(), 1, "{a_log}");
    assert!(!a_log.contains("InternalReloadException"), "{a_log}");
    assert_eq!(a_log.matches("stdout: a extension terminated").count(), 1, "{a_log}");
    assert_eq!(b_log.matches("stdout: b extension terminated").count(), 2, "{b_log}");
}

#[test]
fn a_joined_apps_thread_pool_workers_log_to_its_own_log() {
    let a = sharing_app("a", "of a");
    // B's requests run on its ThreadPoolExtension's worker threads, not IIS's.
    let b = Freeze::source(
        "pooled.py",
        "from isapi.threaded_extension import ThreadPoolExtension\n\
         class Extension(ThreadPoolExtension):\n\
         \x20   'pooled extension'\n\
         \x20   def Dispatch(self, ecb):\n\
         \x20       print('pooled worker answered')\n\
         \x20       if ecb.QueryString == b'fail':\n\
         \x20           raise ValueError('pooled worker failed')\n\
         \x20       body = b'pooled\\n'\n\
         \x20       ecb.SendResponseHeaders('200 OK', f'Content-Length: {len(body)}\\r\\n\\r\\n', True)\n\
         \x20       ecb.WriteClient(body)\n\
         \x20       ecb.DoneWithSession()\n\
         def __ExtensionFactory__():\n\
         \x20   return Extension()\n",
    )
    .ok();
    let mut command = Host::with_args(&[
        "--app".to_string(),
        format!("/a={}", win_path(&a.dll())),
        "--app".to_string(),
        format!("/b={}", win_path(&b.dll())),
    ]);
    command.env("WINEDEBUG", "-all,err+eventlog");
    let host = Host::from_command(command);
    let pooled = get(&host.address, "/b/x");
    assert_eq!((pooled.status, pooled.text().as_str()), (200, "pooled\n"));
    let failed = get(&host.address, "/b/x?fail");
    assert_eq!(failed.status, 500);
    let from_a = get(&host.address, "/a/x");
    assert_eq!(
        (from_a.status, from_a.text().as_str()),
        (200, "a: helper of a, X-a -\n")
    );
    let finished = host.stop();
    let (a_log, b_log) = (a.log_of("_a"), b.log_of("_pooled"));
    assert_eq!(b_log.matches("stdout: pooled worker answered").count(), 2, "{b_log}");
    assert_contains(&b_log, "ValueError: pooled worker failed");
    assert!(!a_log.contains("pooled worker"), "{a_log}");
    // B's error is reported in the Event Log under B's name, not A's.
    assert!(
        finished.stderr.contains("err:eventlog:ReportEventW L\"_pooled.dll"),
        "{finished:?}"
    );
    assert!(
        !finished.stderr.contains("err:eventlog:ReportEventW L\"_a.dll"),
        "{finished:?}"
    );
}

#[test]
fn two_apps_whose_scripts_have_one_name_each_run_their_own_script() {
    // Two teams' `hello.py`, each frozen into its own folder.
    let hello = |answer: &str| {
        Freeze::source(
            "hello.py",
            &format!(
                "from isapi.simple import SimpleExtension\n\
                 class Extension(SimpleExtension):\n\
                 \x20   def HttpExtensionProc(self, ecb):\n\
                 \x20       body = b'{answer}\\n'\n\
                 \x20       ecb.SendResponseHeaders('200 OK', 'Content-Length: %d\\r\\n\\r\\n' % len(body), True)\n\
                 \x20       ecb.WriteClient(body)\n\
                 \x20       return 1\n\
                 def __ExtensionFactory__():\n\
                 \x20   return Extension()\n"
            ),
        )
        .ok()
    };
    let (first, second) = (hello("first hello"), hello("second hello"));
    let host = serve_apps(&[("/first", &first.dll()), ("/second", &second.dll())]);
    for (path, answer) in [("/first/", "first hello\n"), ("/second/", "second hello\n")] {
        let response = get(&host.address, path);
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, answer),
            "second's log:\n{}",
            second.log()
        );
    }
    host.stop();
    assert_contains(
        &second.log(),
        &format!(
            "module hello: the frozen app {}'s copy is already imported; this app's import statements get \
             its own copy (as _isapi_freeze_app1.hello)",
            win_path(&first.dll())
        ),
    );
}

/// Serves A and B, each an extension; unloads `unloaded` (TerminateExtension, then
/// FreeLibrary of its DLL) and checks the other keeps serving its own answer.
fn unload_one_while_the_other_serves(unloaded: &str) {
    let a = sharing_app("a", "of a");
    let b = sharing_app("b", "of b");
    let mut host = serve_apps(&[("/a", &a.dll()), ("/b", &b.dll())]);
    let answer = |name: &str| format!("{name}: helper of {name}, X-a -\n");
    for name in ["a", "b"] {
        let response = get(&host.address, &format!("/{name}/x"));
        assert_eq!((response.status, response.text()), (200, answer(name)));
    }
    host.control(
        &format!("unload /{unloaded}"),
        &format!("isapi-host: unloaded /{unloaded}"),
    );
    let kept = if unloaded == "a" { "b" } else { "a" };
    for _ in 0..2 {
        let gone = get(&host.address, &format!("/{unloaded}/x"));
        assert_eq!(
            (gone.status, gone.text().as_str()),
            (503, "503 Service Unavailable: the application was unloaded\n")
        );
        let served = get(&host.address, &format!("/{kept}/x"));
        assert_eq!(
            (served.status, served.text()),
            (200, answer(kept)),
            "a's log:\n{}\nb's log:\n{}",
            a.log(),
            b.log()
        );
    }
    host.stop();
    // Each app's TerminateExtension ran once: the unloaded one's at its unload.
    for (frozen, name) in [(&a, "a"), (&b, "b")] {
        let log = frozen.log();
        assert_eq!(
            log.matches(&format!("stdout: {name} extension terminated")).count(),
            1,
            "{log}"
        );
    }
}

#[test]
fn unloading_the_app_whose_runtime_runs_python_leaves_the_other_serving() {
    unload_one_while_the_other_serves("a");
}

#[test]
fn unloading_the_app_that_joined_leaves_the_first_serving() {
    unload_one_while_the_other_serves("b");
}

/// isapi-host serving `apps` (`/VPATH`, DLL) with `--app`, as one IIS worker of a pool.
fn serve_apps(apps: &[(&str, &Path)]) -> Host {
    let args: Vec<String> = apps
        .iter()
        .flat_map(|(vpath, dll)| ["--app".to_string(), format!("{vpath}={}", win_path(dll))])
        .collect();
    Host::from_command(Host::with_args(&args))
}

#[test]
fn several_extensions_answer_under_their_virtual_paths_by_the_longest_prefix() {
    let a = app("a", &default_python());
    let native = test_programs().join("native_extension.dll");
    // The native fixture answers paths under /var: it serves /var, the frozen app /var/py.
    let host = serve_apps(&[("/var", &native), ("/var/py", &a.dll())]);
    let native_var = get(&host.address, "/var?APPL_MD_PATH");
    assert_eq!(
        (native_var.status, native_var.text().as_str()),
        (200, "/LM/W3SVC/1/ROOT/var")
    );
    let python = get(&host.address, "/var/py/anything");
    let expected = format!("a on {}\n", default_python().version());
    assert_eq!((python.status, python.text()), (200, expected));
    // A longer path that merely starts with `/var/py` is not inside /var/py.
    let beside = get(&host.address, "/var/pyx?APPL_MD_PATH");
    assert_eq!((beside.status, beside.text().as_str()), (200, "/LM/W3SVC/1/ROOT/var"));
    let outside = get(&host.address, "/elsewhere");
    assert_eq!((outside.status, outside.text().as_str()), (404, "404 Not Found\n"));
    let finished = host.stop();
    assert_contains(&finished.stdout, "isapi-host: extension \"native echo\" at /var\n");
    assert_contains(&finished.stdout, "isapi-host: extension \"a extension\" at /var/py\n");
}

#[test]
fn an_app_on_another_python_version_answers_500_while_the_first_keeps_serving() {
    let (v312, v313) = (version(3, 12), version(3, 13));
    let a = app("a", &v312);
    let b = app("b", &v313);
    let host = serve_apps(&[("/a", &a.dll()), ("/b", &b.dll())]);
    let refused = get(&host.address, "/b/x");
    assert_eq!(
        (refused.status, refused.text().as_str()),
        (
            500,
            "500 Internal Server Error: the application's ISAPI extension did not start\n"
        )
    );
    let served = get(&host.address, "/a/x");
    assert_eq!((served.status, served.text().as_str()), (200, "a on 3.12\n"));
    assert_contains(
        &b.log(),
        &format!(
            "started by the frozen app {} (Python 3.12); one process runs one CPython version",
            win_path(&a.dll())
        ),
    );
    let finished = host.stop();
    assert_contains(&finished.stderr, "isapi-host: /b: ");
    assert_contains(&finished.stdout, "isapi-host: extension \"a extension\" at /a\n");
}
