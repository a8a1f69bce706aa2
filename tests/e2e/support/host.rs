//! isapi-host under Wine, serving on an ephemeral loopback port: started on an extension
//! DLL (or any command that ends in isapi-host, such as `isapi-freeze serve`), waited for
//! until it listens, and stopped by closing its standard input (`--control-stdin`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::prerequisites::stubs;
use super::wine::{win_path, windows_command, Finished, Running};

/// Makes standard input isapi-host's control: its end (or a `quit` line) stops the host, a
/// `stats` line asks for figures, and `unload /VPATH` unloads one application.
const CONTROL_STDIN: &str = "--control-stdin";

/// What isapi-host prints once it accepts connections, followed by its address.
pub const HOST_READY: &str = "isapi-host: listening on http://";
/// isapi-host's last line on a clean shutdown.
pub const HOST_STOPPED: &str = "isapi-host: stopped";

/// How long a host may take to start (a first interpreter start under Wine is slow) and to
/// stop (requests in flight finish first).
const START: Duration = Duration::from_secs(120);
const STOP: Duration = Duration::from_secs(120);

/// isapi-host serving on loopback; `address` is where it listens.
pub struct Host {
    pub running: Running,
    pub address: String,
}

impl Host {
    /// isapi-host serving `dll`, with `extra` options before it.
    pub fn start(dll: &Path, extra: &[&str]) -> Host {
        Host::from_command(Host::command(dll, extra))
    }

    /// Starts `host_exe` (a copy of isapi-host.exe anywhere) with `cwd` as its current folder.
    pub fn start_from(host_exe: &Path, cwd: &Path, dll: &Path, extra: &[&str]) -> Host {
        let mut command = windows_command(host_exe);
        command
            .args([CONTROL_STDIN, "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg(win_path(dll))
            .current_dir(cwd);
        Host::from_command(command)
    }

    /// The command that serves `dll`, to adjust (environment, folder) before `from_command`,
    /// or to give `run_refused` when it must not come up.
    pub fn command(dll: &Path, extra: &[&str]) -> Command {
        let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        args.push(win_path(dll));
        Host::with_args(&args)
    }

    /// isapi-host listening on loopback with exactly `args` after `--listen` (filters
    /// without an extension, a DLL path that does not exist).
    pub fn with_args(args: &[impl AsRef<OsStr>]) -> Command {
        let mut command = windows_command(&stubs().join("isapi-host.exe"));
        command.args([CONTROL_STDIN, "--listen", "127.0.0.1:0"]).args(args);
        command
    }

    /// Starts `command` and waits until isapi-host listens.
    pub fn from_command(command: Command) -> Host {
        let running = Running::start(command);
        let line = running.wait_for_stdout(HOST_READY, START);
        let address = line[HOST_READY.len()..].trim_end_matches('/').to_string();
        Host { running, address }
    }

    /// Runs isapi-host where it must refuse to serve: what it said, once it exited.
    pub fn run_refused(command: Command) -> Finished {
        Running::start(command).finish(START)
    }

    /// Sends a control line (`stats`, `unload /VPATH`) and waits for the stdout line
    /// starting with `answer`: that line.
    pub fn control(&mut self, line: &str, answer: &str) -> String {
        use std::io::Write;
        let stdin = self.running.child.stdin.as_mut().expect("isapi-host's stdin is a pipe");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        self.running.wait_for_stdout(answer, STOP)
    }

    /// The port it listens on.
    pub fn port(&self) -> &str {
        self.address.rsplit(':').next().unwrap()
    }

    /// Closes its standard input and waits for the exit, whatever it is.
    pub fn finish(self) -> Finished {
        self.running.finish(STOP)
    }

    /// Stops it and asserts the clean shutdown: exit code 0, `isapi-host: stopped` last.
    pub fn stop(self) -> Finished {
        let finished = self.running.finish_until(STOP, Some(HOST_STOPPED));
        assert_eq!(finished.code, 0, "isapi-host failed:\n{finished:?}");
        assert_eq!(finished.stdout.lines().last(), Some(HOST_STOPPED), "{finished:?}");
        finished
    }
}
