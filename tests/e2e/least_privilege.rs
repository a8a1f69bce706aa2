//! The rights `install` grants are enough, and nothing more is used: isapi-host runs as an
//! unprivileged user (support/worker.rs) on an output folder it may only read, except
//! `logs\` and the app's `data\`, which it may write (what `install` grants the application
//! pool's identity). Hello, Flask and Django (its SQLite database in `data\`) answer, the log
//! is written by the worker, and nothing else in the output changes: no `__pycache__`, no
//! temp files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::worker::{readable_by_worker, worker_command, worker_shell, writable_by_worker, WORKER};
use crate::support::{assert_contains, get, repo, site, stubs, win_path, Freeze, Frozen, Host};

/// Every file and folder of `dist` outside `logs` and `data`, with its size and change time.
fn snapshot(dist: &Path) -> Vec<(PathBuf, u64, i64)> {
    let mut out = Vec::new();
    let mut todo = vec![dist.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dist).unwrap().to_path_buf();
            if relative == Path::new("logs") || relative == Path::new("data") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path.clone());
            }
            out.push((relative, meta.len(), meta.ctime()));
        }
    }
    out.sort();
    out
}

/// The output as `install` leaves it: read and execute for the worker, modify on `logs\`
/// and on each of `writable` (folders of the output). Checks the model holds.
fn as_installed(frozen: &Frozen, writable: &[&str]) {
    let dist = &frozen.dist;
    readable_by_worker(dist);
    for folder in ["logs"].iter().chain(writable) {
        writable_by_worker(&dist.join(folder));
    }
    let refused = worker_shell(&format!("touch '{}/written-by-the-worker'", dist.display()));
    assert!(
        !refused.status.success(),
        "the worker must not write in the output folder"
    );
    let allowed = worker_shell(&format!(
        "touch '{0}/logs/probe' && rm '{0}/logs/probe'",
        dist.display()
    ));
    assert!(allowed.status.success(), "{allowed:?}");
}

/// isapi-host serving `frozen` as the worker.
fn serve_as_worker(frozen: &Frozen) -> Host {
    let mut command = worker_command(&stubs().join("isapi-host.exe"));
    command
        .args(["--control-stdin", "--listen", "127.0.0.1:0"])
        .arg(win_path(&frozen.dll()));
    Host::from_command(command)
}

/// The app's log: written, and by the worker.
fn worker_log(frozen: &Frozen, stem: &str) -> String {
    let path = frozen.dist.join(format!("logs/_{stem}.log"));
    let owner = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid();
    let worker_uid = worker_shell("id -u");
    assert_eq!(
        owner.to_string(),
        String::from_utf8_lossy(&worker_uid.stdout).trim(),
        "{} is written by {WORKER}",
        path.display()
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_script_serves_and_logs_as_a_worker_that_may_write_only_its_logs() {
    let frozen = Freeze::source(
        "restricted.py",
        "from isapi import isapicon\nfrom isapi.simple import SimpleExtension\n\
         import sys\n\
         class E(SimpleExtension):\n    'restricted'\n    def HttpExtensionProc(self, ecb):\n\
         \x20       print('serving', ecb.QueryString.decode())\n\
         \x20       body = b'no bytecode written: %r' % sys.dont_write_bytecode\n\
         \x20       ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\n\\r\\n', False)\n\
         \x20       ecb.WriteClient(body)\n\
         \x20       return isapicon.HSE_STATUS_SUCCESS\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .ok();
    as_installed(&frozen, &[]);
    let before = snapshot(&frozen.dist);
    let host = serve_as_worker(&frozen);
    let r = get(&host.address, "/?worker");
    assert_eq!((r.status, r.text().as_str()), (200, "no bytecode written: True"));
    host.stop();
    assert_eq!(snapshot(&frozen.dist), before, "nothing but logs\\ changed");
    assert_contains(&worker_log(&frozen, "restricted"), "stdout: serving worker");
}

#[test]
fn flask_serves_its_templates_and_static_files_as_a_worker_that_may_write_only_its_logs() {
    let flask = Freeze::script(repo().join("examples/flask_app/app.py"))
        .path(site("flask"))
        .arg("--strict")
        .ok();
    as_installed(&flask, &[]);
    let before = snapshot(&flask.dist);
    let host = serve_as_worker(&flask);
    let page = get(&host.address, "/?name=IIS");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.text(),
        "<!doctype html>\n<title>Hello from Flask on IIS</title>\n\
         <link rel=\"stylesheet\" href=\"/static/style.css\">\n<h1>Hello, IIS!</h1>"
    );
    let css = get(&host.address, "/static/style.css");
    assert_eq!((css.status, css.text().as_str()), (200, "h1 { color: teal; }\n"));
    host.stop();
    assert_eq!(snapshot(&flask.dist), before, "nothing but logs\\ changed");
}

#[test]
fn django_keeps_its_sqlite_database_in_data_as_a_worker_that_may_write_only_logs_and_data() {
    let django = Freeze::script(repo().join("examples/django_app/django_app.py"))
        .path(site("django"))
        .arg("--strict")
        .ok();
    as_installed(&django, &["data"]);
    let before = snapshot(&django.dist);
    let host = serve_as_worker(&django);
    for text in ["first", "second"] {
        let added = get(&host.address, &format!("/notes/add?text={text}"));
        assert_eq!((added.status, added.text().as_str()), (200, "added\n"));
    }
    let notes = get(&host.address, "/notes/");
    assert_eq!(
        (notes.status, notes.text().as_str()),
        (
            200,
            "<!doctype html>\n<title>Notes</title>\n<ul><li>first</li><li>second</li></ul>\n<p>Oui</p>\n"
        )
    );
    host.stop();
    assert_eq!(snapshot(&django.dist), before, "nothing but logs\\ and data\\ changed");
    let database = std::fs::metadata(django.dist.join("data/notes.sqlite3")).unwrap();
    assert_ne!(database.uid(), 0, "the worker made the database");
}
