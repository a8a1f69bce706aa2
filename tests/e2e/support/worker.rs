//! IIS's worker identity, modelled: the unprivileged user `isapi-worker` (made by `make
//! worker-prefix`, with a Wine prefix of its own) runs Windows programs; Linux permissions
//! stand for the ACLs `install` sets, since Wine enforces none. An output folder owned by
//! root and readable by all is "read and execute"; a folder given to the user is "modify".

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;

use super::prerequisites::worker_prefix;
use super::wine::wine;

pub const WORKER: &str = "isapi-worker";

/// `program ARGS...` as the worker user, with nothing of root's environment that says
/// where things are.
fn as_worker(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={WORKER}"),
        &format!("--regid={WORKER}"),
        "--clear-groups",
        "env",
        "-i",
        "HOME=/nonexistent",
        "PATH=/usr/bin:/bin",
        "WINEDEBUG=-all",
    ])
    .arg(format!("WINEPREFIX={}", worker_prefix().display()))
    .arg(program);
    c
}

/// A Windows program run under Wine as the worker, its three standard streams piped.
pub fn worker_command(program: &Path) -> Command {
    worker_wine_ready();
    let mut c = as_worker(&wine());
    c.arg(program);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// A Linux command run as the worker (to show what it may and may not do).
pub fn worker_shell(script: &str) -> std::process::Output {
    as_worker("/bin/sh").args(["-c", script]).output().unwrap()
}

/// Starts the worker's Wine services with a throwaway program, once per test run (as
/// support/wine.rs does for root's prefix).
fn worker_wine_ready() {
    static START: Once = Once::new();
    START.call_once(|| {
        let status = as_worker(&wine())
            .args(["cmd.exe", "/c", "exit"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "Wine failed to start as {WORKER}: {status}");
    });
}

/// Lets the worker reach `path` and read what is under it (read and execute): every folder
/// from `/` down is searchable; temp folders are made private (0700).
pub fn readable_by_worker(path: &Path) {
    for dir in path.ancestors() {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        if mode & 0o005 != 0o005 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o005)).unwrap();
        }
    }
    let status = Command::new("chmod").args(["-R", "a+rX"]).arg(path).status().unwrap();
    assert!(status.success());
}

/// Gives the worker `dir` (made if missing) to write in: "modify" in `install`'s terms.
pub fn writable_by_worker(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("chown")
        .args(["-R", &format!("{WORKER}:")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}
