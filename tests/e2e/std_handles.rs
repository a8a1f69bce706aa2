//! Whatever standard handles the worker process has, the frozen DLL starts and serves: IIS's
//! w3wp.exe is a service with no console, and a server started in the background may have
//! its output on a file or on nothing that can be written. isapi-host is run with stdout and
//! stderr that cannot be written, and with all three on NUL, on a regular file and on pipes;
//! the script's print() goes to its log in every case, and the host keeps serving after
//! writing its own lines. (A descriptor closed on the Linux side is no model of Windows:
//! Wine reuses the number for its own files, its wineserver socket among them.)

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::prerequisites::wine_prefix;
use crate::support::wine::{wine, wine_ready};
use crate::support::{assert_contains, get, stubs, win_path, Freeze, Frozen, Response};

const SCRIPT: &str = r#"
from isapi import isapicon
from isapi.simple import SimpleExtension

print("loaded with any standard handles")

class Extension(SimpleExtension):
    def HttpExtensionProc(self, ecb):
        print("answering", ecb.QueryString.decode())
        ecb.SendResponseHeaders("200 OK", "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\n", True)
        ecb.WriteClient(b"served")
        return isapicon.HSE_STATUS_SUCCESS

def __ExtensionFactory__():
    return Extension()
"#;

/// A loopback port nobody listens on now: the host's own output may be closed, so it
/// cannot say which port it picked.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The standard handles isapi-host is started with.
enum Handles<'a> {
    /// stdout and stderr open for reading only: every write fails.
    Unwritable,
    Nul,
    File(&'a Path),
    Pipes,
}

/// isapi-host serving `dll` on `port` with `handles` as its stdin, stdout and stderr, as a
/// service manager or a shell in the background would start it.
fn host(dll: &Path, port: u16, handles: &Handles) -> Child {
    wine_ready();
    let mut command = Command::new(wine());
    command
        .arg(stubs().join("isapi-host.exe"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg(win_path(dll))
        .env("WINEPREFIX", wine_prefix())
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::null());
    match handles {
        Handles::Unwritable => {
            let read_only = || std::fs::File::open("/dev/null").unwrap();
            command.stdout(read_only()).stderr(read_only());
        }
        Handles::Nul => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Handles::File(path) => {
            let file = std::fs::File::create(path).unwrap();
            command.stdout(file.try_clone().unwrap()).stderr(file);
        }
        // Its few lines fit in the pipes' buffers, unread.
        Handles::Pipes => {
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    command.spawn().unwrap()
}

/// GET `path` once the host answers (it cannot say when it listens).
fn get_when_up(child: &mut Child, port: u16, path: &str) -> Response {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return get(&format!("127.0.0.1:{port}"), path);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("isapi-host exited before serving {path}: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "isapi-host never listened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn serve_twice(frozen: &Frozen, case: &str, handles: &Handles) {
    let port = free_port();
    let mut child = host(&frozen.dll(), port, handles);
    for n in 1..=2 {
        let r = get_when_up(&mut child, port, &format!("/?{case}-{n}"));
        assert_eq!((r.status, r.text().as_str()), (200, "served"), "{case}, request {n}");
    }
    assert_eq!(child.try_wait().unwrap(), None, "{case}: the host is still running");
    if let Handles::File(path) = handles {
        // The access line is written once the answer is sent.
        let line = format!("isapi-host: GET /?{case}-2 200 6");
        let start = Instant::now();
        while !std::fs::read_to_string(path).unwrap().contains(&line) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {line:?} in {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = frozen.wait_for_log(&format!("{case}'s second request"), |log| {
        log.contains(&format!("answering {case}-2"))
    });
    assert!(!log.contains("cannot start Python"), "{case}: {log}");
    assert_contains(&log, &format!("answering {case}-1"));
}

#[test]
fn the_dll_starts_and_serves_with_standard_handles_unwritable_on_nul_on_a_file_or_on_pipes() {
    let frozen = Freeze::source("handles.py", SCRIPT).ok();
    let output = frozen.dir().join("host-output.txt");
    let cases = [
        ("unwritable", Handles::Unwritable),
        ("nul", Handles::Nul),
        ("file", Handles::File(&output)),
        ("pipes", Handles::Pipes),
    ];
    for (case, handles) in &cases {
        serve_twice(&frozen, case, handles);
    }
    let log = frozen.log();
    assert_eq!(
        log.matches("loaded with any standard handles").count(),
        cases.len(),
        "{log}"
    );
    // The host's own lines went to the file, the access lines after the first included.
    let written = std::fs::read_to_string(&output).unwrap();
    assert_contains(&written, "isapi-host: listening on http://127.0.0.1:");
    assert_contains(&written, "isapi-host: GET /?file-2 200 6");
}
