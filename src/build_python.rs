//! Which Python compiles the bytecode. Bytecode is version-specific, so it must be a Python
//! of the target's minor version: the one given (--build-python), else the first of these
//! that answers with the right version: `python3.X` on PATH, the `py -3.X` launcher
//! (Windows), a version manager's folder (pyenv, uv), and last the target runtime's own
//! python.exe (under Wine off Windows), which always has the right version. A Python of
//! another version is never used: the error names both versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::compile::{BuildPython, PythonCompiler};
use crate::config::PythonRuntime;

/// A candidate and how it was found, for the message.
struct Candidate {
    python: PathBuf,
    how: String,
    /// A Windows python.exe to run under Wine.
    under_wine: bool,
}

/// The build Python for `runtime`, started and checked; `say` gets the one line that says
/// which it is.
pub fn choose(given: Option<&Path>, runtime: &PythonRuntime, say: &dyn Fn(String)) -> Result<PythonCompiler> {
    if let Some(python) = given {
        let candidate = Candidate {
            python: python.to_path_buf(),
            how: "--build-python".into(),
            under_wine: !cfg!(windows) && python.extension().is_some_and(|e| e.eq_ignore_ascii_case("exe")),
        };
        let mut compiler = start(&candidate, say)?;
        crate::config::check_bytecode_version(&mut compiler, runtime)?;
        return Ok(compiler);
    }
    let (major, minor) = (runtime.version.0, runtime.version.1);
    let mut tried = Vec::new();
    for candidate in candidates(major, minor, runtime) {
        let mut compiler = match start(&candidate, say) {
            Ok(compiler) => compiler,
            Err(e) => {
                tried.push(format!("{} ({}): {e:#}", candidate.python.display(), candidate.how));
                continue;
            }
        };
        match compiler.version() {
            Ok(found) if crate::config::writes_bytecode_for(&found, runtime) => {
                say(format!(
                    "compiling with Python {} at {} ({})",
                    found.version.iter().map(u32::to_string).collect::<Vec<_>>().join("."),
                    candidate.python.display(),
                    candidate.how
                ));
                return Ok(compiler);
            }
            Ok(found) => tried.push(format!(
                "{} ({}): it is Python {}",
                candidate.python.display(),
                candidate.how,
                found.version.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
            )),
            Err(e) => tried.push(format!("{} ({}): {e}", candidate.python.display(), candidate.how)),
        }
    }
    bail!(
        "found no Python {major}.{minor} on this machine to compile bytecode for the target (CPython {major}.{minor}.{}); \
         looked for:\n  {}\ninstall Python {major}.{minor}, or pass --build-python PATH",
        runtime.version.2,
        tried.join("\n  ")
    )
}

fn start(candidate: &Candidate, say: &dyn Fn(String)) -> Result<PythonCompiler> {
    if candidate.under_wine {
        let wine = crate::wine::Wine::find(None)?;
        wine.start_services(say);
        Ok(PythonCompiler::under_wine(&candidate.python, wine))
    } else {
        Ok(PythonCompiler::new(&candidate.python))
    }
}

/// Where a Python `major.minor` may be, in the order they are tried.
fn candidates(major: u32, minor: u32, runtime: &PythonRuntime) -> Vec<Candidate> {
    let version = format!("{major}.{minor}");
    let mut out = Vec::new();
    let exe = if cfg!(windows) { ".exe" } else { "" };
    let on_path = crate::wine::on_path(&format!("python{version}{exe}")).map(|python| Candidate {
        python,
        how: format!("python{version} on PATH"),
        under_wine: false,
    });
    // A version manager's shim on PATH (pyenv's `shims/python3.X`) is a shell script that
    // runs a dozen processes to find the interpreter, ~0.2 s of every freeze: the manager's
    // own interpreter, found below, comes first.
    let is_shim = |c: &Candidate| {
        c.python
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "shims")
    };
    let (shim, on_path) = match on_path {
        Some(c) if is_shim(&c) => (Some(c), None),
        other => (None, other),
    };
    out.extend(on_path);
    if cfg!(windows) {
        if let Some(python) = py_launcher(&version) {
            out.push(Candidate {
                python,
                how: format!("py -{version}"),
                under_wine: false,
            });
        }
    }
    for (python, manager) in managed(&version) {
        out.push(Candidate {
            python,
            how: format!("{manager}'s Python {version}"),
            under_wine: false,
        });
    }
    out.extend(shim);
    let own = runtime.root.join("python.exe");
    if own.is_file() {
        out.push(Candidate {
            python: own,
            how: if cfg!(windows) {
                "the target runtime's own".into()
            } else {
                "the target runtime's own, under Wine".into()
            },
            under_wine: !cfg!(windows),
        });
    }
    out
}

/// `py -X.Y`'s interpreter (the Windows launcher).
fn py_launcher(version: &str) -> Option<PathBuf> {
    let out = Command::new("py")
        .args([&format!("-{version}"), "-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// Pythons `version` that version managers installed: pyenv (and pyenv-win), uv. Newest
/// patch release first.
fn managed(version: &str) -> Vec<(PathBuf, &'static str)> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    let uv_root = std::env::var_os("UV_PYTHON_INSTALL_DIR")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share/uv/python")));
    let mut out = Vec::new();
    let folders: [(Option<PathBuf>, &str, &str); 3] = [
        (pyenv_root.as_ref().map(|r| r.join("versions")), "", "pyenv"),
        (
            pyenv_root.as_ref().map(|r| r.join("pyenv-win/versions")),
            "",
            "pyenv-win",
        ),
        (uv_root, "cpython-", "uv"),
    ];
    for (folder, prefix, manager) in folders {
        let Some(Ok(entries)) = folder.map(std::fs::read_dir) else {
            continue;
        };
        let mut found: Vec<(Vec<u32>, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(prefix)?.strip_prefix(version)?;
                // `3.12.1` or uv's `3.12.1-linux-x86_64-gnu`; not `3.120`.
                let patch = rest.strip_prefix('.')?;
                let patch: String = patch.chars().take_while(char::is_ascii_digit).collect();
                let python = if cfg!(windows) {
                    e.path().join("python.exe")
                } else {
                    e.path().join("bin").join(format!("python{version}"))
                };
                python.is_file().then(|| (vec![patch.parse().unwrap_or(0)], python))
            })
            .collect();
        found.sort();
        out.extend(found.into_iter().rev().map(|(_, p)| (p, manager)));
    }
    out
}
