//! `isapi-freeze serve DIST`: runs isapi-host on the output's loader (under Wine off
//! Windows) the way people run a development server: until Ctrl+C or SIGTERM whatever its
//! standard input is, in a neutral working folder as IIS's worker, with the output's filter
//! loaded when the script has one, the app's log lines in the terminal, and with --reload a
//! new freeze and a restart on the same port when a source changes.
//!
//! isapi-host is controlled through its standard input (`--control-stdin`): closing the pipe
//! stops it cleanly. It runs in a process group of its own, so that the terminal's Ctrl+C
//! reaches only us and we stop it in order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::{StubConfig, CONFIG_RESOURCE_ID, RT_RCDATA};
use serde::{Deserialize, Serialize};

use crate::cli::ServeArgs;
use crate::config::Stubs;
use crate::pe::{find_resource, ResName};
use crate::wine::{windows_path, Wine};

/// Why the server is being stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// Ctrl+C, SIGTERM, or standard input ending with --stop-on-eof: stop for good.
    Quit,
    /// A watched file changed: freeze again.
    Changed(Vec<PathBuf>),
}

pub fn serve(args: ServeArgs, stubs: Option<&Path>) -> Result<i32> {
    let stubs = crate::config::find_stubs(stubs, &[isapi_freeze_format::HOST_EXE])?;
    let wine = if cfg!(windows) {
        None
    } else {
        let wine = Wine::find(args.wine.as_deref())?;
        let say = |line: String| eprintln!("{line}");
        wine.start_services(&say);
        wine.prepare_for(&stubs.dir, &say)?;
        Some(wine)
    };
    let record = if args.reload {
        Some(FreezeRecord::read(&args.dist)?)
    } else {
        None
    };

    let (events, stops) = mpsc::channel();
    let quit = events.clone();
    ctrlc::set_handler(move || {
        let _ = quit.send(Stop::Quit);
    })
    .context("cannot handle Ctrl+C and SIGTERM")?;
    if args.stop_on_eof {
        let quit = events.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = quit.send(Stop::Quit);
        });
    }
    if let Some(record) = &record {
        let changes = events.clone();
        let watched = record.watch.clone();
        eprintln!("watching {} files for changes (--reload)", watched.len());
        std::thread::spawn(move || watch(watched, changes));
    }
    follow_logs(&args.dist);

    let listening = Arc::new(Mutex::new(None));
    let mut host = Host::start(&args, &args.listen, &stubs, wine.as_ref(), &listening)?;
    loop {
        match wait(&mut host, &stops)? {
            Some(Stop::Changed(paths)) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                eprintln!("changed: {}; freezing again", names.join(", "));
                let record = record.as_ref().expect("changes are watched only with --reload");
                match record.freeze_again() {
                    Ok(()) => {
                        host.stop()?;
                        // The same address, also when --listen asked for any free port.
                        let address = listening.lock().ok().and_then(|a| a.clone());
                        let address = address.unwrap_or_else(|| args.listen.clone());
                        host = Host::start(&args, &address, &stubs, wine.as_ref(), &listening)?;
                    }
                    Err(e) => eprintln!("error: {e:#}\nthe last good build keeps serving"),
                }
            }
            Some(Stop::Quit) => {
                let code = host.stop()?;
                // The log follower polls: give it one more look at what the app wrote last
                // (TerminateExtension's output).
                std::thread::sleep(Duration::from_millis(500));
                return Ok(code);
            }
            None => {
                let code = host.exit_code();
                if code != 0 {
                    eprintln!(
                        "error: isapi-host stopped with exit code {code} (1: the address, 2: the DLL does not load, \
                         3: its GetExtensionVersion or GetFilterVersion failed; the log is in {})",
                        args.dist.join(isapi_freeze_format::LOG_DIR).display()
                    );
                }
                return Ok(code);
            }
        }
    }
}

/// Waits for a stop event or for the host to end by itself (None).
fn wait(host: &mut Host, stops: &Receiver<Stop>) -> Result<Option<Stop>> {
    loop {
        if host.child.try_wait()?.is_some() {
            return Ok(None);
        }
        match stops.recv_timeout(Duration::from_millis(200)) {
            Ok(stop) => return Ok(Some(stop)),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(Some(Stop::Quit)),
        }
    }
}

/// What isapi-host prints once it accepts connections.
const LISTENING: &str = "isapi-host: listening on http://";

/// A running isapi-host.
struct Host {
    child: Child,
    control: Arc<Mutex<Option<ChildStdin>>>,
}

impl Host {
    /// Starts isapi-host on `listen`; the address it reports goes into `listening`.
    fn start(
        args: &ServeArgs,
        listen: &str,
        stubs: &Stubs,
        wine: Option<&Wine>,
        listening: &Arc<Mutex<Option<String>>>,
    ) -> Result<Host> {
        let dll = find_loader(&args.dist)?;
        let config = loader_config(&dll)?;
        // Absolute: the host runs in another folder.
        let host = std::path::absolute(stubs.host())?;
        let mut command = match wine {
            Some(wine) => wine.command(&host),
            None => Command::new(&host),
        };
        command.arg("--control-stdin").arg("--listen").arg(listen);
        if let Some(vpath) = &args.vpath {
            command.arg("--vpath").arg(vpath);
        }
        // The limits the app will have on IIS once installed with the same options.
        if let Some(bytes) = args.max_body {
            command.arg("--max-body").arg(bytes.to_string());
        }
        if let Some(len) = args.max_query {
            command.arg("--max-query").arg(len.to_string());
        }
        if args.allow_double_escaping {
            command.arg("--allow-double-escaping");
        }
        if config.defines("__FilterFactory__") == Some(true) && !args.no_filter {
            command.arg("--filter").arg(windows_path(&dll));
        }
        if config.defines("__ExtensionFactory__") != Some(false) {
            command.arg(windows_path(&dll));
        }
        command.current_dir(neutral_folder(wine)?);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        // Pipes, never the terminal's handles: an embedded CPython under Wine cannot start
        // with a regular file as a standard stream. Relayed without waiting for end of file,
        // since Wine's helper processes may hold the pipes open.
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", host.display()))?;
        let out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let listening = listening.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix(LISTENING) {
                    if let Ok(mut at) = listening.lock() {
                        *at = Some(address.trim_end_matches('/').to_string());
                    }
                }
                println!("{line}");
            }
        });
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        let control = Arc::new(Mutex::new(child.stdin.take()));
        Ok(Host { child, control })
    }

    /// Closes the control pipe (isapi-host stops cleanly) and waits for the exit.
    fn stop(&mut self) -> Result<i32> {
        if let Ok(mut control) = self.control.lock() {
            if let Some(mut pipe) = control.take() {
                let _ = pipe.write_all(b"quit\n");
            }
        }
        self.child.wait()?;
        Ok(self.exit_code())
    }

    fn exit_code(&mut self) -> i32 {
        match self.child.try_wait() {
            Ok(Some(status)) => status.code().unwrap_or(1),
            _ => 1,
        }
    }
}

/// Where the host runs: a folder like IIS's worker's (`%windir%\system32\inetsrv`), never
/// the user's, so that an app opening files relative to the working folder fails here as it
/// would on IIS.
fn neutral_folder(wine: Option<&Wine>) -> Result<PathBuf> {
    let folder = match wine {
        Some(wine) => wine.prefix.join("drive_c/windows/system32"),
        None => PathBuf::from(std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into())).join("System32"),
    };
    if !folder.is_dir() {
        bail!("{} does not exist: the Wine prefix is not set up", folder.display());
    }
    Ok(folder)
}

/// Prints what the app writes to its logs (print output, tracebacks) as it happens.
fn follow_logs(dist: &Path) {
    let dist = dist.to_path_buf();
    // Each write takes stderr's lock on its own: holding it for the follower's life would
    // block every other line this command prints.
    struct Stderr;
    impl Write for Stderr {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::io::stderr().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            std::io::stderr().flush()
        }
    }
    std::thread::spawn(move || {
        let _ = isapi_freeze_diagnostics::trace::follow(&dist, 0, true, &mut Stderr);
    });
}

/// The config record of the loader `dll`: what the script defines.
fn loader_config(dll: &Path) -> Result<StubConfig> {
    let image = fs_err::read(dll)?;
    let bytes = find_resource(&image, &ResName::Id(RT_RCDATA), &ResName::Id(CONFIG_RESOURCE_ID), 0)
        .with_context(|| format!("reading {}", dll.display()))?
        .with_context(|| {
            format!(
                "{} has no isapi-freeze config: it was not made by isapi-freeze",
                dll.display()
            )
        })?;
    StubConfig::decode(&bytes).with_context(|| format!("reading {}", dll.display()))
}

/// Polls `files` and sends the changed ones.
fn watch(files: Vec<PathBuf>, changes: mpsc::Sender<Stop>) {
    let stamp = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Vec<Option<SystemTime>> = files.iter().map(|f| stamp(f)).collect();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut changed = Vec::new();
        for (file, last) in files.iter().zip(seen.iter_mut()) {
            let now = stamp(file);
            if now != *last {
                *last = now;
                changed.push(file.clone());
            }
        }
        if !changed.is_empty() && changes.send(Stop::Changed(changed)).is_err() {
            return;
        }
    }
}

/// How an output folder was last frozen, kept in the cache folder (never in the output):
/// what `serve --reload` runs again, and which files it watches.
#[derive(Debug, Serialize, Deserialize)]
pub struct FreezeRecord {
    /// The folder the freeze ran in.
    pub cwd: PathBuf,
    /// Its arguments, after the program name.
    pub args: Vec<String>,
    /// The script, the app's own sources and the shipped data files.
    pub watch: Vec<PathBuf>,
}

impl FreezeRecord {
    fn path(dist: &Path) -> Option<PathBuf> {
        crate::config::output_record(dist, ".json")
    }

    /// Remembers how `dist` was made (best effort: only --reload needs it).
    pub fn write(dist: &Path, watch: Vec<PathBuf>) {
        let (Some(path), Ok(cwd)) = (FreezeRecord::path(dist), std::env::current_dir()) else {
            return;
        };
        let record = FreezeRecord {
            cwd,
            args: std::env::args().skip(1).collect(),
            watch,
        };
        if let (Some(parent), Ok(json)) = (path.parent(), serde_json::to_string_pretty(&record)) {
            let _ = std::fs::create_dir_all(parent);
            let _ = std::fs::write(&path, json);
        }
    }

    fn read(dist: &Path) -> Result<FreezeRecord> {
        let path = FreezeRecord::path(dist).context("no cache folder: set HOME or ISAPI_FREEZE_CACHE")?;
        let text = std::fs::read_to_string(&path).map_err(|_| {
            anyhow::anyhow!(
                "--reload needs to know how {} was made, and this isapi-freeze did not make it: freeze it once \
                 (isapi-freeze SCRIPT.py --dist-dir {}), then serve it with --reload",
                dist.display(),
                dist.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged; freeze again", path.display()))
    }

    /// Runs the same freeze again, its output passed through.
    fn freeze_again(&self) -> Result<()> {
        let status = Command::new(std::env::current_exe()?)
            .args(&self.args)
            .current_dir(&self.cwd)
            .status()
            .context("cannot run isapi-freeze again")?;
        if !status.success() {
            bail!("the freeze failed ({status})");
        }
        Ok(())
    }
}

/// The one `_NAME.dll` of an output directory.
pub fn find_loader(dist: &Path) -> Result<PathBuf> {
    let entries = fs_err::read_dir(dist)
        .with_context(|| format!("{} is not an isapi-freeze output directory", dist.display()))?;
    let mut loaders: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = crate::config::file_name(&path);
        if name.starts_with('_') && name.to_ascii_lowercase().ends_with(".dll") {
            loaders.push(path);
        }
    }
    loaders.sort();
    match loaders.len() {
        1 => Ok(fs_err::canonicalize(&loaders[0])?),
        0 => bail!(
            "{} has no _NAME.dll: freeze a script into it first (isapi-freeze SCRIPT.py --dist-dir {})",
            dist.display(),
            dist.display()
        ),
        _ => bail!(
            "{} has several _NAME.dll files; it should hold the output of one freeze",
            dist.display()
        ),
    }
}
