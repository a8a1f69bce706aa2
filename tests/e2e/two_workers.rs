//! IIS's overlapped recycle (and a web garden) runs two worker processes on one output folder
//! at once: both write its log, both use the app's data. Two isapi-host processes serve the
//! same output under load: every request's log line is there once and whole (long lines,
//! so that an interleaved write would show), and a SQLite database in the data folder
//! takes every insert from both.

use std::collections::BTreeMap;

use crate::support::load::load;
use crate::support::{get, Freeze, Host};

/// A WSGI app that logs one long line per request (its query, 4 KiB of filler, its end) and
/// answers /echo as support/load.rs expects; /add inserts the query into SQLite in data\,
/// /count says how many rows there are.
const SCRIPT: &str = r#"
import os, sqlite3, sys
from isapi.wsgi import factory

DATA = os.path.join(os.path.dirname(__file__), "data")
os.makedirs(DATA, exist_ok=True)
DATABASE = os.path.join(DATA, "rows.sqlite3")

def connect():
    # SQLite's own locking keeps two processes' writes apart; wait for it rather than fail.
    db = sqlite3.connect(DATABASE, timeout=60)
    db.execute("CREATE TABLE IF NOT EXISTS row (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    return db

def app(environ, start_response):
    query = environ["QUERY_STRING"]
    path = environ["PATH_INFO"]
    if path == "/echo":
        print(f"begin {query} {'.' * 4096} end {query}")
        line = f"echo {query}\n"
        body = (line * (1024 // len(line) + 1)).encode("latin-1")
    elif path == "/add":
        with connect() as db:
            db.execute("INSERT INTO row (text) VALUES (?)", (query,))
        body = b"added\n"
    else:
        with connect() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM row").fetchone()
        body = b"%d\n" % count
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

__ExtensionFactory__ = factory(app)
"#;

#[test]
fn two_hosts_on_one_output_write_whole_log_lines_and_share_sqlite() {
    let frozen = Freeze::source("shared.py", SCRIPT).ok();
    let first = Host::start(&frozen.dll(), &[]);
    let second = Host::start(&frozen.dll(), &[]);
    const EACH: usize = 400;
    let (a, b) = std::thread::scope(|scope| {
        let (one, two) = (&first.address, &second.address);
        let a = scope.spawn(move || load(one, "first", EACH, 4));
        let b = scope.spawn(move || load(two, "second", EACH, 4));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.wrong, a.missing, b.wrong, b.missing), (0, 0, 0, 0), "{a:?} {b:?}");

    std::thread::scope(|scope| {
        for (address, tag) in [(&first.address, "first"), (&second.address, "second")] {
            scope.spawn(move || {
                for n in 0..50 {
                    let r = get(address, &format!("/add?{tag}-{n}"));
                    assert_eq!((r.status, r.text().as_str()), (200, "added\n"));
                }
            });
        }
    });
    for host in [&first, &second] {
        let r = get(&host.address, "/count");
        assert_eq!((r.status, r.text().as_str()), (200, "100\n"));
    }
    first.stop();
    second.stop();

    let log = frozen.log();
    let filler = ".".repeat(4096);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("stdout: ")) {
        let text = line.split_once("stdout: ").unwrap().1;
        let query = text
            .strip_prefix("begin ")
            .and_then(|rest| rest.split_once(' '))
            .filter(|(query, rest)| *rest == format!("{filler} end {query}"))
            .unwrap_or_else(|| {
                panic!(
                    "a line that is not whole ({} bytes): {:.120} ... {}",
                    line.len(),
                    line,
                    &line[line.len().saturating_sub(120)..]
                )
            })
            .0;
        *seen.entry(query.to_string()).or_default() += 1;
    }
    for tag in ["first", "second"] {
        for n in 0..EACH {
            assert_eq!(seen.get(&format!("{tag}-{n}")), Some(&1), "{tag}-{n}");
        }
    }
    assert_eq!(seen.len(), 2 * EACH);
}
