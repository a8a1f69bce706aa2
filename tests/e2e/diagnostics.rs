//! Seeing what went wrong: the script's output and errors in the trace log, followed live
//! with `isapi-freeze trace` or `SCRIPT.exe trace`, and errors in the Windows Event Log.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    assert_contains, get, isapi_freeze, py_dll, run_windows, shared_with, temp_dir, win_path, windows_command, Freeze,
    Frozen, Host, Running,
};

const PRINTING: &str = "import win32traceutil\n\
from isapi.simple import SimpleExtension\n\
class E(SimpleExtension):\n    'printing'\n\
\x20   def HttpExtensionProc(self, ecb):\n\
\x20       print('handled', ecb.PathInfo.decode())\n\
\x20       ecb.SendResponseHeaders('200 OK', 'Content-Length: 2\\r\\n\\r\\n', True)\n\
\x20       ecb.WriteClient(b'ok')\n        return 1\n\
def __ExtensionFactory__():\n    return E()\n\
if __name__ == '__main__':\n    print('from the installer')\n";

/// A fresh copy of the printing script's output (frozen once), with logs of its own.
fn printing() -> Frozen {
    shared_with("diagnostics: printing.py", || {
        Freeze::source("printing.py", PRINTING).ok()
    })
    .copy()
}

/// `isapi-freeze trace DIST`, running.
fn trace(dist: &Path, extra: &[&str]) -> Running {
    let mut command = isapi_freeze();
    command
        .arg("trace")
        .arg(dist)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Running::start(command)
}

/// Waits for the next line `trace` prints, the log line of a handled request to `path`.
fn assert_traced(follower: &Running, path: &str) {
    let line = follower.wait_for_stdout("20", Duration::from_secs(30));
    assert!(line.ends_with(&format!("stdout: handled {path}")), "{line}");
}

#[test]
fn print_output_of_a_handler_is_followed_live_by_trace() {
    let printing = printing();
    let dist = &printing.dist;
    let host = Host::start(&printing.dll(), &[]);
    let follower = trace(dist, &[]);
    assert_eq!(get(&host.address, "/first").text(), "ok");
    assert_traced(&follower, "/first");
    assert_eq!(get(&host.address, "/second").text(), "ok");
    assert_traced(&follower, "/second");
}

#[test]
fn trace_without_follow_prints_the_last_lines_under_a_header() {
    let printing = printing();
    let dist = &printing.dist;
    let host = Host::start(&printing.dll(), &[]);
    for i in 0..3 {
        assert_eq!(get(&host.address, &format!("/n{i}")).text(), "ok");
    }
    let out = isapi_freeze()
        .args(["trace", dist.to_str().unwrap(), "--no-follow", "-n", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "==> logs/_printing.log <==");
    assert!(lines[1].ends_with("stdout: handled /n1"), "{text}");
    assert!(lines[2].ends_with("stdout: handled /n2"), "{text}");
}

#[test]
fn trace_refuses_a_folder_that_is_not_an_output() {
    let tmp = temp_dir();
    let out = isapi_freeze().arg("trace").arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {} is not an isapi-freeze output directory (it has no manifest.json); pass the --dist-dir of a freeze\n",
            tmp.path().display()
        )
    );
}

#[test]
fn the_installer_follows_the_same_logs_with_its_trace_command() {
    let printing = printing();
    let dist = &printing.dist;
    let host = Host::start(&printing.dll(), &[]);
    assert_eq!(get(&host.address, "/before").text(), "ok");
    let follower = Running::start({
        let mut c = windows_command(&printing.exe());
        c.arg("trace").current_dir(dist);
        c
    });
    assert_eq!(
        follower.wait_for_stdout("==> logs", Duration::from_secs(60)),
        "==> logs/_printing.log <=="
    );
    assert_traced(&follower, "/before");
    assert_eq!(get(&host.address, "/after").text(), "ok");
    assert_traced(&follower, "/after");
}

#[test]
fn win32traceutil_sends_the_installers_print_output_to_its_log() {
    let printing = printing();
    let finished = run_windows(&printing.exe(), &[], printing.dir());
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        finished.stdout, "",
        "print output goes to the trace log, not the console"
    );
    let log = printing.log_of("printing");
    assert!(log.trim_end().ends_with("stdout: from the installer"), "{log}");
}

#[test]
fn an_unhandled_error_is_logged_with_its_request_line_and_reported_to_the_event_log() {
    let failing = Freeze::source(
        "failing.py",
        "from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n    'failing'\n    def HttpExtensionProc(self, ecb):\n        raise KeyError('missing-thing')\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .ok();
    let mut command = Host::command(&failing.dll(), &[]);
    // Wine's ReportEventW prints error events on its `eventlog` debug channel.
    command.env("WINEDEBUG", "-all,err+eventlog");
    let host = Host::from_command(command);
    assert_eq!(get(&host.address, "/fail?q=1").status, 500);
    let finished = host.finish();
    let event = finished
        .stderr
        .lines()
        .find(|l| l.contains("err:eventlog:ReportEventW"))
        .unwrap_or_else(|| panic!("no event reported: {finished:?}"));
    let expected = format!(
        "L\"_failing.dll ({}): HttpExtensionProc failed for GET /fail?q=1:\\nTraceback (most recent call last):",
        win_path(&failing.dist).replace('\\', "\\\\")
    );
    assert_contains(event, &expected);
    // Wine's debug output cuts long strings, so the traceback's end is checked in the log.
    let log = failing.log();
    assert_contains(&log, "HttpExtensionProc failed for GET /fail?q=1:\nTraceback");
}

#[test]
fn a_loader_that_cannot_find_python_logs_why_and_reports_it() {
    let printing = printing();
    std::fs::remove_file(printing.dist.join(py_dll())).unwrap();
    let mut command = Host::command(&printing.dll(), &[]);
    command.env("WINEDEBUG", "-all,err+eventlog");
    let finished = Host::run_refused(command);
    assert_eq!(finished.code, 3, "{finished:?}");
    let log = printing.log();
    let expected = format!(
        "cannot start: cannot load {}\\{}: Windows error 126 (the file, or a DLL it needs, is missing)",
        win_path(&printing.dist),
        py_dll()
    );
    assert_contains(&log, &expected);
    assert!(
        finished.stderr.contains("err:eventlog:ReportEventW L\"_printing.dll"),
        "{finished:?}"
    );
}

#[test]
fn a_log_that_cannot_be_written_is_said_once_in_the_event_log_which_still_gets_the_errors() {
    let failing = Freeze::source(
        "unlogged.py",
        "from isapi.simple import SimpleExtension\n\
         print('starting, with nowhere to log it')\n\
         class E(SimpleExtension):\n    'unlogged'\n    def HttpExtensionProc(self, ecb):\n        print('about to fail')\n        raise KeyError('missing-thing')\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .ok();
    // A file where the logs folder should be: nothing can be written under it, as for a
    // worker identity without write rights (Wine enforces no ACLs).
    std::fs::write(failing.dist.join("logs"), "not a folder").unwrap();
    let mut command = Host::command(&failing.dll(), &[]);
    command.env("WINEDEBUG", "-all,err+eventlog");
    let host = Host::from_command(command);
    assert_eq!(get(&host.address, "/first").status, 500);
    assert_eq!(get(&host.address, "/second").status, 500);
    let finished = host.finish();
    let events: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|l| l.contains("err:eventlog:ReportEventW"))
        .collect();
    let dist = win_path(&failing.dist).replace('\\', "\\\\");
    // Wine's debug output cuts long strings: the message's end is a unit test of its own.
    let unwritable = format!("L\"_unlogged.dll ({dist}): cannot write the log {dist}\\\\logs\\\\_unlogged.log: ");
    assert_eq!(
        events.iter().filter(|e| e.contains("cannot write the log")).count(),
        1,
        "{events:#?}"
    );
    assert_contains(events[0], &unwritable);
    for path in ["/first", "/second"] {
        assert!(
            events
                .iter()
                .any(|e| e.contains(&format!("HttpExtensionProc failed for GET {path}:"))),
            "{path}: {events:#?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(failing.dist.join("logs")).unwrap(),
        "not a folder"
    );
}
