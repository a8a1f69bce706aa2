//! `isapi-freeze serve` started the way people start a development server: with only PATH
//! and a HOME of its own (no WINEPREFIX: serve makes its own prefix there), standard input
//! from /dev/null, in the background, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{get, isapi_freeze, temp_dir, windows_python};

/// One HOME for this run's serve tests, new each run: the first serve sets up its prefix.
fn fresh_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(temp_dir).path()
}

/// Freezes `source` as NAME.py in a new folder; returns (folder, dist).
fn frozen(name: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = temp_dir();
    let script = tmp.path().join(format!("{name}.py"));
    std::fs::write(&script, source).unwrap();
    let dist = tmp.path().join("dist");
    let python = windows_python();
    // The same HOME as serve's: `serve --reload` finds how the output was made in the cache.
    let out = isapi_freeze()
        .args([
            script.to_str().unwrap(),
            "--python",
            python.to_str().unwrap(),
            "--dist-dir",
        ])
        .arg(&dist)
        .current_dir(tmp.path())
        .env("HOME", fresh_home())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, dist)
}

/// A running `isapi-freeze serve`, its output collected line by line.
struct Served {
    child: Child,
    address: String,
    lines: Arc<Mutex<Vec<String>>>,
    new_lines: Receiver<String>,
}

impl Served {
    /// Starts `serve DIST EXTRA...` in `cwd` with only PATH and HOME set, stdin /dev/null.
    fn start(dist: &Path, cwd: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_isapi-freeze"))
            .arg("serve")
            .arg(dist)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", fresh_home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, new_lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (lines, tx) = (lines.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut served = Served {
            child,
            address: String::new(),
            lines,
            new_lines,
        };
        let ready = served.wait_for("isapi-host: listening on http://", Duration::from_secs(180));
        served.address = ready["isapi-host: listening on http://".len()..]
            .trim_end_matches('/')
            .to_string();
        served
    }

    /// Waits for an output line containing `text`.
    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        loop {
            match self
                .new_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no line with {text:?} within {timeout:?}:\n{}", self.output()),
            }
        }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and returns the exit code.
    fn terminate(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_millis(300));
        (code, self.output())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The body of GET `path`, or None when the connection fails on the way (a server that is
/// restarting).
fn body_of(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

const TERMINATING: &str = r#"
from isapi import simple

class Extension(simple.SimpleExtension):
    def HttpExtensionProc(self, ecb):
        ecb.SendResponseHeaders("200 OK", "Content-Type: text/plain\r\n\r\n", False)
        ecb.WriteClient(b"hello")
        return 0

    def TerminateExtension(self, status):
        print("TerminateExtension ran")

def __ExtensionFactory__():
    return Extension()
"#;

#[test]
fn serve_in_the_background_with_no_input_runs_until_sigterm_and_stops_cleanly() {
    let (tmp, dist) = frozen("terminating", TERMINATING);
    let served = Served::start(&dist, tmp.path(), &[]);
    // Standard input was /dev/null from the start: still serving.
    std::thread::sleep(Duration::from_secs(1));
    let response = get(&served.address, "/anything");
    assert_eq!((response.status, response.text().as_str()), (200, "hello"));
    let (code, output) = served.terminate();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("isapi-host: stopped"), "{output}");
    // Each request's access line reaches the terminal too.
    assert!(output.contains("isapi-host: GET /anything 200"), "{output}");
    // The app's print output reaches the terminal as it happens, and the log file.
    assert!(output.contains("stdout: TerminateExtension ran"), "{output}");
    let log = std::fs::read_to_string(dist.join("logs/_terminating.log")).unwrap();
    assert!(log.contains("stdout: TerminateExtension ran"), "{log}");
}

const REWRITING: &str = r#"
from isapi import isapicon, simple

class Filter(simple.SimpleFilter):
    filter_flags = isapicon.SF_NOTIFY_PREPROC_HEADERS

    def HttpFilterProc(self, fc):
        headers = fc.GetData()
        url = headers.GetHeader(b"url")  # bytes, as pywin32 gives it
        if url.startswith(b"/old/"):
            headers.SetHeader("url", "/new/" + url[5:].decode())  # str, as pywin32 takes it
        return isapicon.SF_STATUS_REQ_NEXT_NOTIFICATION

class Extension(simple.SimpleExtension):
    def HttpExtensionProc(self, ecb):
        ecb.SendResponseHeaders("200 OK", "Content-Type: text/plain\r\n\r\n", False)
        ecb.WriteClient(ecb.GetServerVariable("URL"))
        return 0

def __FilterFactory__():
    return Filter()

def __ExtensionFactory__():
    return Extension()
"#;

#[test]
fn serve_loads_the_outputs_filter_unless_told_not_to() {
    let (tmp, dist) = frozen("rewriting", REWRITING);
    let served = Served::start(&dist, tmp.path(), &[]);
    assert_eq!(get(&served.address, "/old/page").text(), "/new/page");
    drop(served);
    let served = Served::start(&dist, tmp.path(), &["--no-filter"]);
    assert_eq!(get(&served.address, "/old/page").text(), "/old/page");
}

const RELATIVE: &str = r#"
import os
from isapi.wsgi import factory

def app(environ, start_response):
    if environ["PATH_INFO"] == "/cwd":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [os.getcwd().encode()]
    with open("views/page.tpl") as f:
        text = f.read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]

__ExtensionFactory__ = factory(app)
"#;

#[test]
fn serve_runs_the_app_in_a_neutral_folder_as_iis_does() {
    let (tmp, dist) = frozen("relative", RELATIVE);
    // The user's folder, where serve is started, has the file the app opens relative to
    // the working folder: on IIS the worker's folder is system32\inetsrv, so it must fail.
    std::fs::create_dir_all(tmp.path().join("views")).unwrap();
    std::fs::write(tmp.path().join("views/page.tpl"), "found").unwrap();
    let served = Served::start(&dist, tmp.path(), &[]);
    let cwd = get(&served.address, "/cwd").text();
    assert!(cwd.to_ascii_lowercase().ends_with("\\windows\\system32"), "{cwd}");
    let response = get(&served.address, "/page");
    assert_eq!(response.status, 500, "{}", response.text());
    served.wait_for("FileNotFoundError", Duration::from_secs(30));
}

const ENVIRON: &str = r#"
from isapi.wsgi import factory

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]

__ExtensionFactory__ = factory(app)
"#;

#[test]
fn serve_mounts_the_app_under_a_virtual_path() {
    let (tmp, dist) = frozen("mounted", ENVIRON);
    let served = Served::start(&dist, tmp.path(), &["--vpath", "/app"]);
    assert_eq!(get(&served.address, "/app/items/1").text(), "/app|/items/1");
    assert_eq!(get(&served.address, "/items/1").status, 404);
}

#[test]
fn serve_reload_freezes_again_on_a_change_and_keeps_the_last_good_server() {
    let version = |word: &str| {
        format!(
            "from isapi.wsgi import factory\n\
             def app(environ, start_response):\n\
             \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
             \x20   return [b'{word}']\n\
             __ExtensionFactory__ = factory(app)\n"
        )
    };
    let (tmp, dist) = frozen("reloading", &version("one"));
    let served = Served::start(&dist, tmp.path(), &["--reload"]);
    assert_eq!(get(&served.address, "/").text(), "one");
    // Same second as the first freeze on coarse clocks: move the time on.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(tmp.path().join("reloading.py"), version("two")).unwrap();
    served.wait_for("changed: ", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // While the server restarts, a request may be refused or reset: ask again.
        if body_of(&served.address, "/").as_deref() == Some("two") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never answered with the new code:\n{}",
            served.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A freeze that fails keeps the last good server running and says why.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(tmp.path().join("reloading.py"), "def broken(:\n").unwrap();
    served.wait_for("the last good build keeps serving", Duration::from_secs(120));
    assert_eq!(get(&served.address, "/").text(), "two");
}

const PATHS: &str = r#"
from isapi import simple

class Extension(simple.SimpleExtension):
    def HttpExtensionProc(self, ecb):
        ecb.SendResponseHeaders("200 OK", "Content-Type: text/plain\r\n\r\n", False)
        ecb.WriteClient(b"%s %d" % (ecb.PathInfo, ecb.TotalBytes))
        return 0

def __ExtensionFactory__():
    return Extension()
"#;

#[test]
fn serve_takes_the_request_limits_install_sets_on_iis() {
    let (tmp, dist) = frozen("limits", PATHS);
    let post = |address: &str, size: usize| crate::support::post(address, "/upload", &vec![b'x'; size]);
    let plus = "/a+b";

    // IIS's defaults: `+` in a path is refused.
    let defaults = Served::start(&dist, tmp.path(), &[]);
    assert_eq!(get(&defaults.address, plus).status, 404);
    assert_eq!(post(&defaults.address, 2048).status, 200);
    defaults.terminate();

    let lifted = Served::start(
        &dist,
        tmp.path(),
        &["--max-body", "1K", "--allow-double-escaping", "--max-query", "10"],
    );
    let through = get(&lifted.address, plus);
    assert_eq!((through.status, through.text().as_str()), (200, "/a+b 0"));
    let fits = post(&lifted.address, 1024);
    assert_eq!((fits.status, fits.text().as_str()), (200, "/upload 1024"));
    assert_eq!(post(&lifted.address, 1025).status, 413);
    assert_eq!(get(&lifted.address, "/?0123456789").status, 200);
    assert_eq!(get(&lifted.address, "/?0123456789a").status, 404);
    lifted.terminate();

    let refused = Command::new(env!("CARGO_BIN_EXE_isapi-freeze"))
        .args(["serve"])
        .arg(&dist)
        .args(["--max-body", "lots"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            "invalid value 'lots' for '--max-body <SIZE>': \"lots\" must be a number of bytes, or with K, M or G, \
             at most 4294967295 (IIS's uint)"
        ),
        "{refused:?}"
    );
}
