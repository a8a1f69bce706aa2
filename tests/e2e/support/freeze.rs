//! Freezing for the tests: the isapi-freeze binary under test, a builder for the
//! `isapi-freeze SCRIPT --python .. --dist-dir ..` runs the tests repeat (script text in a
//! temp dir, extra options, success asserted), the frozen output with its log, and a cache
//! of outputs that several tests serve unchanged, frozen once per test run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::prerequisites::{stubs, windows_python};
use super::{repo, temp_dir};

/// The isapi-freeze binary under test, with the cross-built stubs and no Python taken from
/// the environment.
pub fn isapi_freeze() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isapi-freeze"));
    c.env("ISAPI_FREEZE_STUBS", stubs())
        .env_remove("ISAPI_FREEZE_PYTHON")
        .env_remove("ISAPI_FREEZE_BUILD_PYTHON");
    c
}

/// One freeze to run: the script, the Windows CPython (the test one unless changed), the
/// output folder (`dist` in a temp dir of its own unless changed) and any other options.
pub struct Freeze {
    tmp: TempDir,
    script: PathBuf,
    python: PathBuf,
    dist: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Freeze {
    /// Freezes the script at `script` (relative paths are from the checkout).
    pub fn script(script: impl AsRef<Path>) -> Freeze {
        Freeze::in_temp_dir(temp_dir(), script.as_ref().to_path_buf())
    }

    /// Writes `text` as the script `name` in a fresh temp dir and freezes that.
    pub fn source(name: &str, text: &str) -> Freeze {
        let tmp = temp_dir();
        let script = tmp.path().join(name);
        std::fs::write(&script, text).unwrap();
        Freeze::in_temp_dir(tmp, script)
    }

    fn in_temp_dir(tmp: TempDir, script: PathBuf) -> Freeze {
        Freeze {
            dist: tmp.path().join("dist"),
            tmp,
            script,
            python: windows_python(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Writes another file beside the script (a module it imports, a package's file).
    pub fn file(self, path: &str, text: &str) -> Freeze {
        let path = self.script.parent().unwrap().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// `--python DIR` instead of the test CPython.
    pub fn python(mut self, dir: impl AsRef<Path>) -> Freeze {
        self.python = dir.as_ref().to_path_buf();
        self
    }

    /// `--dist-dir DIR` instead of `dist` in the temp dir.
    pub fn dist_dir(mut self, dir: impl AsRef<Path>) -> Freeze {
        self.dist = dir.as_ref().to_path_buf();
        self
    }

    /// `--path DIR`: where imports are also looked for.
    pub fn path(self, dir: impl AsRef<Path>) -> Freeze {
        self.arg("--path").arg(dir.as_ref())
    }

    /// `--data SOURCE=DEST`.
    pub fn data(self, spec: &str) -> Freeze {
        self.arg("--data").arg(spec)
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Freeze {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: Into<OsString>>(mut self, args: impl IntoIterator<Item = I>) -> Freeze {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<OsString>) -> Freeze {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The script, as passed.
    pub fn script_path(&self) -> &Path {
        &self.script
    }

    /// The output folder it writes (or must not write).
    pub fn dist(&self) -> &Path {
        &self.dist
    }

    /// Runs isapi-freeze in the checkout, whatever the outcome.
    pub fn output(&self) -> Output {
        let mut command = isapi_freeze();
        command
            .arg(&self.script)
            .arg("--python")
            .arg(&self.python)
            .arg("--dist-dir")
            .arg(&self.dist)
            .args(&self.args)
            .current_dir(repo());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.output().expect("isapi-freeze runs")
    }

    /// Runs isapi-freeze; panics with its output unless it succeeded.
    pub fn ok(self) -> Frozen {
        let out = self.output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "freeze failed:\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        Frozen {
            tmp: self.tmp,
            name: stem(&self.script),
            dist: self.dist,
            stderr,
        }
    }
}

fn stem(script: &Path) -> String {
    script.file_stem().unwrap().to_string_lossy().into_owned()
}

/// A frozen output: `dist` holds `_NAME.dll`, `NAME.exe` and the rest.
pub struct Frozen {
    tmp: TempDir,
    name: String,
    pub dist: PathBuf,
    /// What isapi-freeze printed on stderr (its warnings and notes).
    pub stderr: String,
}

impl Frozen {
    /// The folder the freeze worked in (the script's, for `Freeze::source`): room for
    /// whatever else the test needs.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The extension (or filter) DLL, `_NAME.dll`.
    pub fn dll(&self) -> PathBuf {
        self.dist.join(format!("_{}.dll", self.name))
    }

    /// The installer, `NAME.exe`.
    pub fn exe(&self) -> PathBuf {
        self.dist.join(format!("{}.exe", self.name))
    }

    /// The DLL's log as written so far (empty if there is none yet).
    pub fn log(&self) -> String {
        self.log_of(&format!("_{}", self.name))
    }

    /// The log of `logs/STEM.log` so far (the installer's is `NAME`).
    pub fn log_of(&self, stem: &str) -> String {
        std::fs::read_to_string(self.dist.join("logs").join(format!("{stem}.log"))).unwrap_or_default()
    }

    /// Waits until the DLL's log satisfies `ready`; panics with the log after a minute.
    pub fn wait_for_log(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.log();
            if ready(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "the log never showed {what}:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A copy of the output in a fresh temp dir, without its logs: for a test that reads a
    /// log of its own, or damages the output.
    pub fn copy(&self) -> Frozen {
        let tmp = temp_dir();
        let dist = tmp.path().join("dist");
        for entry in walkdir::WalkDir::new(&self.dist).sort_by_file_name() {
            let entry = entry.unwrap();
            let relative = entry.path().strip_prefix(&self.dist).unwrap();
            if relative.starts_with("logs") {
                continue;
            }
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(dist.join(relative)).unwrap();
            } else {
                std::fs::copy(entry.path(), dist.join(relative)).unwrap();
            }
        }
        Frozen {
            tmp,
            name: self.name.clone(),
            dist,
            stderr: self.stderr.clone(),
        }
    }
}

/// `script` frozen with no options, once per test run, for the tests that serve it as it is.
pub fn shared(script: &Path) -> &'static Frozen {
    shared_with(&script.display().to_string(), || Freeze::script(script).ok())
}

/// The output `freeze` makes, made once per test run under `key`; tests that read logs
/// look only for lines they alone cause (or serve a `copy`).
pub fn shared_with(key: &str, freeze: impl FnOnce() -> Frozen) -> &'static Frozen {
    type Cache = Mutex<HashMap<String, &'static OnceLock<Frozen>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    // One slot per key, kept for the whole run; the map's lock is not held while freezing,
    // so that different outputs freeze in parallel.
    let slot = *CACHE
        .get_or_init(Cache::default)
        .lock()
        .unwrap()
        .entry(key.to_string())
        .or_insert_with(|| Box::leak(Box::default()));
    slot.get_or_init(freeze)
}
