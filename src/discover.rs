//! Finds what goes into the output: the script and isapi-freeze's own runtime package for
//! the app archive, and, for a Windows installation (rather than the embeddable
//! distribution), the standard library sources to compile into python3XY.zip.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::compile::SourceFile;
use crate::config::Script;

include!(concat!(env!("OUT_DIR"), "/resources.rs"));

/// A module to compile and where its .pyc goes in an archive.
#[derive(Clone, Debug)]
pub struct ModuleSource {
    pub source: SourceFile,
    /// e.g. `isapi/simple.pyc`.
    pub archive_name: String,
}

/// The app archive's modules: the runtime package and boot module, then the script.
pub fn app_modules(script: &Script) -> Vec<ModuleSource> {
    let mut modules: Vec<ModuleSource> = RESOURCES
        .iter()
        .map(|(rel, bytes)| ModuleSource {
            source: SourceFile {
                path: PathBuf::from("resources").join(rel),
                text: Some(String::from_utf8_lossy(bytes).into_owned()),
                filename: rel.to_string(),
                check_factories: false,
            },
            archive_name: pyc_name(rel),
        })
        .collect();
    let filename = format!("{}.py", script.module);
    modules.push(ModuleSource {
        archive_name: pyc_name(&filename),
        source: SourceFile {
            path: script.path.clone(),
            text: None,
            filename,
            check_factories: true,
        },
    });
    modules
}

/// The module through which `SCRIPT.exe install` learns the freeze-time defaults
/// (`--site`, `--vpath`) for a script with no install code of its own.
pub fn install_options_module(install: &crate::config::InstallDefaults) -> ModuleSource {
    let filename = format!("{INSTALL_OPTIONS_MODULE}.py");
    let text = format!(
        "\"\"\"isapi-freeze's freeze-time install options.\"\"\"\nSITE = {}\nVPATH = {}\n",
        python_str(&install.site),
        python_str(&install.vpath)
    );
    ModuleSource {
        archive_name: pyc_name(&filename),
        source: SourceFile {
            path: PathBuf::from(&filename),
            text: Some(text),
            filename,
            check_factories: false,
        },
    }
}

/// The archive module holding the freeze-time install options.
pub const INSTALL_OPTIONS_MODULE: &str = "_isapi_freeze_options";

/// A Python string literal for any text.
fn python_str(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            ' '..='~' if c != '"' && c != '\\' => out.push(c),
            _ => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Folders of an installation's Lib\ that a server never imports.
const STDLIB_SKIPPED: &[&str] = &[
    "site-packages",
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "__pycache__",
    "lib2to3/tests",
];

/// An installation's standard library: sources to compile, and other files to store as is.
pub struct StdlibFiles {
    pub modules: Vec<ModuleSource>,
    pub data: Vec<(String, PathBuf)>,
}

pub fn stdlib_files(lib_dir: &Path) -> Result<StdlibFiles> {
    let mut modules = Vec::new();
    let mut data = Vec::new();
    let walker = walkdir::WalkDir::new(lib_dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let rel = e
                .path()
                .strip_prefix(lib_dir)
                .unwrap_or(e.path())
                .to_string_lossy()
                .replace('\\', "/");
            !(e.file_type().is_dir() && STDLIB_SKIPPED.contains(&rel.as_str()))
        });
    for entry in walker {
        let entry = entry.with_context(|| format!("reading the standard library in {}", lib_dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(lib_dir)?.to_string_lossy().replace('\\', "/");
        if rel.ends_with(".py") {
            modules.push(ModuleSource {
                archive_name: pyc_name(&rel),
                source: SourceFile {
                    path: entry.path().to_path_buf(),
                    text: None,
                    filename: rel,
                    check_factories: false,
                },
            });
        } else if !rel.ends_with(".pyc") {
            data.push((rel, entry.path().to_path_buf()));
        }
    }
    Ok(StdlibFiles { modules, data })
}

fn pyc_name(py_name: &str) -> String {
    format!("{}.pyc", py_name.strip_suffix(".py").unwrap_or(py_name))
}

/// The runtime's binaries a server needs beside python3XY.dll: the C runtime DLLs, the
/// extension modules and the DLLs they load (sorted by name).
pub fn runtime_binaries(runtime: &crate::config::PythonRuntime) -> Result<Vec<(String, PathBuf)>> {
    let mut found = std::collections::BTreeMap::new();
    for dir in [&runtime.root, &runtime.extension_dir] {
        for entry in fs_err::read_dir(dir)? {
            let path = entry?.path();
            let name = crate::config::file_name(&path);
            let lower = name.to_ascii_lowercase();
            let wanted = if dir == &runtime.root && runtime.root != runtime.extension_dir {
                lower.starts_with("vcruntime") && lower.ends_with(".dll")
            } else {
                is_shipped_extension_file(&lower)
            };
            if wanted && path.is_file() {
                found.insert(name, path);
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// Extension modules and their DLLs; not the Python DLLs themselves (shipped on their own)
/// nor Tk, which a server has no use for.
fn is_shipped_extension_file(lower: &str) -> bool {
    let is_binary = lower.ends_with(".pyd") || lower.ends_with(".dll");
    let is_python_dll = lower.starts_with("python3") && lower.ends_with(".dll");
    let is_tk = lower.starts_with("_tkinter") || lower.starts_with("tcl") || lower.starts_with("tk");
    is_binary && !is_python_dll && !is_tk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_archive_holds_runtime_package_boot_module_and_script() {
        let script = Script {
            path: "x/hello.py".into(),
            module: "hello".into(),
        };
        let names: Vec<String> = app_modules(&script).into_iter().map(|m| m.archive_name).collect();
        for expected in [
            "_isapi_freeze_boot.pyc",
            "isapi/__init__.pyc",
            "isapi/isapicon.pyc",
            "isapi/simple.pyc",
            "hello.pyc",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} missing from {names:?}"
            );
        }
        assert_eq!(names.last().unwrap(), "hello.pyc");
    }

    #[test]
    fn install_options_are_python_string_literals() {
        let module = install_options_module(&crate::config::InstallDefaults {
            site: "Caf\u{e9} \"x\"".into(),
            vpath: "/hello".into(),
        });
        assert_eq!(module.archive_name, "_isapi_freeze_options.pyc");
        assert_eq!(
            module.source.text.unwrap(),
            "\"\"\"isapi-freeze's freeze-time install options.\"\"\"\n\
             SITE = \"Caf\\U000000e9 \\U00000022x\\U00000022\"\nVPATH = \"/hello\"\n"
        );
    }

    #[test]
    fn stdlib_walk_skips_tests_and_site_packages() {
        let dir = tempfile::tempdir().unwrap();
        for rel in [
            "os.py",
            "json/__init__.py",
            "test/test_os.py",
            "site-packages/x.py",
            "lib2to3/Grammar.txt",
            "__pycache__/os.cpython-311.pyc",
        ] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let files = stdlib_files(dir.path()).unwrap();
        let modules: Vec<&str> = files.modules.iter().map(|m| m.archive_name.as_str()).collect();
        assert_eq!(modules, ["json/__init__.pyc", "os.pyc"]);
        let data: Vec<&str> = files.data.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(data, ["lib2to3/Grammar.txt"]);
    }
}
