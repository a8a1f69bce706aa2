//! What the end-to-end tests run on: the Windows stubs (built by `make stubs`), the
//! Windows CPython (fetched by `make python`), Wine with the project's own prefix (made by
//! tests/wine/prefix.sh), and isapi-host processes serving on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Windows programs the CLI carries, as `make stubs` assembles them.
pub fn stubs() -> PathBuf {
    let dir = repo().join("target/stubs");
    assert!(
        dir.join("isapi-host.exe").is_file(),
        "no Windows stubs in {}: run `make stubs` (or `make test`)",
        dir.display()
    );
    dir
}

/// The Windows programs only the tests use (the native extension, pe-checksum).
pub fn test_programs() -> PathBuf {
    let dir = repo().join("target/x86_64-pc-windows-gnu/release");
    assert!(
        dir.join("pe-checksum.exe").is_file(),
        "no Windows test programs in {}: run `make stubs` (or `make test`)",
        dir.display()
    );
    dir
}

/// The supported CPython the whole suite runs on (stub/format/pythons.txt).
pub fn default_python() -> isapi_freeze_format::pythons::Python {
    isapi_freeze_format::pythons::default()
}

/// The embeddable Windows CPython of the default version that the tests freeze with.
pub fn windows_python() -> PathBuf {
    let python = default_python();
    let dir = repo().join("target/python").join(python.abi_tag());
    assert!(
        dir.join(python.dll_name()).is_file(),
        "no Windows CPython in {}: run `make python` (or `make test`)",
        dir.display()
    );
    dir
}

/// The isapi-freeze binary under test.
pub fn isapi_freeze() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isapi-freeze"));
    c.env("ISAPI_FREEZE_STUBS", stubs())
        .env_remove("ISAPI_FREEZE_PYTHON")
        .env_remove("ISAPI_FREEZE_BUILD_PYTHON");
    c
}

pub fn wine_prefix() -> PathBuf {
    repo().join("target/wine")
}

/// A command that runs a Windows program under Wine (directly on Windows), with all three
/// standard streams as pipes: an embedded CPython under Wine 8 cannot start with a regular
/// file as one of them.
pub fn windows_command(program: &Path) -> Command {
    wine_ready();
    let mut c = Command::new(wine());
    c.arg(program).env("WINEPREFIX", wine_prefix()).env("WINEDEBUG", "-all");
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Checks the prefix and starts Wine's services (once per test run).
pub fn wine_ready() {
    static START: Once = Once::new();
    let prefix = wine_prefix();
    START.call_once(|| {
        assert!(
            prefix.join("drive_c/windows/system32/bcryptprimitives.dll").is_file(),
            "no Wine prefix at {}: run `make wine-prefix` (or `make test`)",
            prefix.display()
        );
        // Wine's services start with the first program of a session and keep its output
        // pipes open; a throwaway first program keeps them away from the tests' pipes.
        let status = Command::new(wine())
            .args(["cmd.exe", "/c", "exit"])
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("Wine runs");
        assert!(status.success(), "Wine failed to start: {status}");
    });
}

pub fn wine() -> String {
    std::env::var("WINE").unwrap_or_else(|_| "/usr/lib/wine/wine64".into())
}

/// The path a Windows program under Wine sees for `path`.
pub fn win_path(path: &Path) -> String {
    format!("Z:{}", path.display().to_string().replace('/', "\\"))
}

/// A running Windows program; its output lines are collected as they arrive (stdout also on
/// a channel, to wait for a line). Nothing waits for end of file: Wine's helper processes
/// can hold a pipe open after the program exits.
pub struct Running {
    pub child: Child,
    stdout_lines: Receiver<String>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

/// What a finished program printed, and its exit code.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Running {
    pub fn start(mut command: Command) -> Running {
        let mut child = command.spawn().expect("the program starts");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let stdout_lines = lines(child.stdout.take().unwrap(), out.clone());
        let _ = lines(child.stderr.take().unwrap(), err.clone());
        Running {
            child,
            stdout_lines,
            out,
            err,
        }
    }

    /// Waits for a stdout line starting with `prefix`; panics with all output after `timeout`.
    pub fn wait_for_stdout(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "no line starting with {prefix:?} within {timeout:?}; output so far:\n{}",
                    self.output()
                ),
            }
        }
    }

    /// Everything printed so far: stdout, then stderr.
    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.out.lock().unwrap().join("\n"),
            self.err.lock().unwrap().join("\n")
        )
    }

    /// Closes stdin (isapi-host's signal to shut down) and waits for the exit.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the program did not exit within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers get the last lines shortly after the exit.
        std::thread::sleep(Duration::from_millis(300));
        Finished {
            code: status.code().unwrap_or(-1),
            stdout: self.out.lock().unwrap().join("\n"),
            stderr: self.err.lock().unwrap().join("\n"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static, seen: Arc<Mutex<Vec<String>>>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            seen.lock().unwrap().push(line.clone());
            // Nobody may listen any more; keep draining so that the program never blocks.
            let _ = tx.send(line);
        }
    });
    rx
}

/// Runs a Windows program to completion in `cwd`.
pub fn run_windows(program: &Path, args: &[&str], cwd: &Path) -> Finished {
    let mut command = windows_command(program);
    command.args(args).current_dir(cwd);
    Running::start(command).finish(Duration::from_secs(180))
}

/// isapi-host serving `dll` on an ephemeral loopback port; `address` is where it listens.
pub struct Host {
    pub running: Running,
    pub address: String,
}

pub const HOST_READY: &str = "isapi-host: listening on http://";

impl Host {
    pub fn start(dll: &Path, extra_args: &[&str]) -> Host {
        Host::start_from(&stubs().join("isapi-host.exe"), None, dll, extra_args)
    }

    /// Starts `host_exe` (a copy of isapi-host.exe anywhere) with `cwd` as its current folder.
    pub fn start_from(host_exe: &Path, cwd: Option<&Path>, dll: &Path, extra_args: &[&str]) -> Host {
        let mut command = Host::command(host_exe, dll, extra_args);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        Host::from_command(command)
    }

    /// The command that starts `host_exe` on `dll`, to adjust before `from_command`.
    pub fn command(host_exe: &Path, dll: &Path, extra_args: &[&str]) -> Command {
        let mut command = windows_command(host_exe);
        command
            .args(["--control-stdin", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .arg(win_path(dll));
        command
    }

    /// Starts isapi-host with `command` and waits until it listens.
    pub fn from_command(command: Command) -> Host {
        let running = Running::start(command);
        let line = running.wait_for_stdout(HOST_READY, Duration::from_secs(120));
        let address = line[HOST_READY.len()..].trim_end_matches('/').to_string();
        Host { running, address }
    }
}

/// A fresh temporary folder for one test.
pub fn temp_dir() -> tempfile::TempDir {
    let base = repo().join("target/e2e-tmp");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

/// How many files an output's manifest.json lists.
pub fn manifest_files(dist: &Path) -> usize {
    let text = std::fs::read_to_string(dist.join("manifest.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["files"].as_array().unwrap().len()
}
