//! Windows programs run under Wine in the project's prefix: the command that starts one
//! with piped standard streams, and the running program whose output lines are collected
//! as they come (to wait for one, or to read all once it has exited).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::prerequisites::wine_prefix;

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

/// Starts Wine's services in the prefix (once per test run).
pub fn wine_ready() {
    static START: Once = Once::new();
    let prefix = wine_prefix();
    START.call_once(|| {
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
    pub fn finish(self, timeout: Duration) -> Finished {
        self.finish_until(timeout, None)
    }

    /// As `finish`; when the program should end its stdout with the line `last`, also waits
    /// (for a while) until that line has been read.
    pub fn finish_until(mut self, timeout: Duration, last: Option<&str>) -> Finished {
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
        // The readers get the last lines shortly after the exit; on a busy machine the line
        // expected last may take longer, then the other stream gets the usual time too.
        let settled = Instant::now() + Duration::from_secs(10);
        if let Some(last) = last {
            while self.out.lock().unwrap().last().map(String::as_str) != Some(last) && Instant::now() < settled {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
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
