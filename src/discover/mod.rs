//! Finds what the app is made of: the search roots (roots.rs) and the distributions
//! installed in them (distributions.rs), the import graph from the script (graph.rs) and the
//! DLLs extension modules need (dlls.rs); plus the whole-stdlib and whole-runtime listings
//! for --full-stdlib. Where each of them goes is placement.rs's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::compile::SourceFile;
use crate::config::Script;

pub mod distributions;
pub mod dlls;
pub mod graph;
pub mod roots;

include!(concat!(env!("OUT_DIR"), "/resources.rs"));

/// A module to compile and where its .pyc goes in an archive.
#[derive(Clone, Debug)]
pub struct ModuleSource {
    pub source: SourceFile,
    /// e.g. `isapi/simple.pyc`.
    pub archive_name: String,
}

/// The runtime module the loader and the launcher run first, whatever the app imports.
pub const BOOT_MODULE: &str = "_isapi_freeze_boot";

/// The names of isapi-freeze's own modules (resources/), all of which every archive holds.
pub fn runtime_module_names() -> Vec<String> {
    RESOURCES
        .iter()
        .map(|(rel, _)| {
            let dotted = rel.trim_end_matches(".py").replace('/', ".");
            dotted.strip_suffix(".__init__").map(String::from).unwrap_or(dotted)
        })
        .collect()
}

/// Where one of our resources is looked for, relative to the app's folders.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Precedence {
    /// Before everything: isapi-freeze's own (`isapi` wins over pywin32's), and
    /// win32traceutil even when pywin32 is on --path: pywin32's sends output to a trace
    /// buffer nobody can read on a server without Python; ours, to the log.
    Ours,
    /// A stand-in for another project's module that a module of the app's own, beside the
    /// script, replaces; a site folder's does not: the isapi-wsgi on PyPI is Python 2 only.
    AfterScript,
}

fn precedence(resource: &str) -> Precedence {
    match resource {
        "isapi_wsgi.py" => Precedence::AfterScript,
        _ => Precedence::Ours,
    }
}

/// The folders a site folder's `.pth` files add (as `site` does; `import` lines are skipped:
/// they run code at startup, which a frozen app does not).
fn pth_folders(site: &Path) -> Vec<PathBuf> {
    let mut pth: Vec<PathBuf> = std::fs::read_dir(site)
        .map(|e| {
            e.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pth"))
                .collect()
        })
        .unwrap_or_default();
    pth.sort();
    let mut out = Vec::new();
    for file in pth {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with("import ") || line.starts_with("import\t") {
                continue;
            }
            let dir = site.join(line.replace('\\', "/"));
            if dir.is_dir() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// The search roots for a freeze, in `sys.path` order (see roots.rs), with the
/// distributions installed in the site folders.
pub fn build_roots(script: &Script, paths: &[PathBuf], runtime: &crate::config::PythonRuntime) -> Result<roots::Roots> {
    use roots::{Root, RootFiles, RootKind};
    let resources = |wanted: Precedence| Root {
        kind: RootKind::Runtime,
        files: roots::listing(
            Path::new("resources"),
            RESOURCES
                .iter()
                .map(|(rel, _)| rel.to_string())
                .filter(move |rel| precedence(rel) == wanted),
        ),
    };
    let mut list = vec![resources(Precedence::Ours)];
    let script_dir = match script.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    list.push(Root {
        kind: RootKind::Script,
        files: RootFiles::Dir(script_dir),
    });
    list.push(resources(Precedence::AfterScript));
    let abi_tag = format!("cp{}{}", runtime.version.0, runtime.version.1);
    let mut installed = Vec::new();
    for dir in paths {
        add_site(&mut list, &mut installed, dir, &abi_tag);
    }
    let stdlib = match runtime.layout {
        crate::config::RuntimeLayout::Embeddable => {
            let zip_path = runtime.root.join(runtime.stdlib_zip_name());
            let file = fs_err::File::open(&zip_path)?;
            let zip =
                zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip file", zip_path.display()))?;
            let names = zip
                .file_names()
                .filter_map(|n| n.ok())
                .map(|n| n.into_owned())
                .collect::<Vec<_>>();
            roots::listing(&zip_path, names)
        }
        crate::config::RuntimeLayout::Installation => {
            let site = runtime.root.join("Lib").join("site-packages");
            if site.is_dir() {
                add_site(&mut list, &mut installed, &site, &abi_tag);
            }
            RootFiles::Dir(runtime.root.join("Lib"))
        }
    };
    list.push(Root {
        kind: RootKind::Stdlib,
        files: stdlib,
    });
    list.push(Root {
        kind: RootKind::StdlibExtensions,
        files: RootFiles::Dir(runtime.extension_dir.clone()),
    });
    let dll = fs_err::read(&runtime.dll)?;
    let mut builtins = crate::pe::python_builtin_modules(&dll)
        .with_context(|| format!("reading the built-in modules of {}", runtime.dll.display()))?;
    // The runtime adds its own built-in module before Python starts, and every CPython 3 has
    // its import system frozen in under these names (the boot module imports them).
    // `__main__` always exists (the script itself, run as __main__ by the launcher).
    builtins.extend(
        [
            "_isapi_freeze",
            "_frozen_importlib",
            "_frozen_importlib_external",
            "__main__",
        ]
        .map(String::from),
    );
    Ok(roots::Roots {
        roots: list,
        builtins: builtins.into_iter().collect(),
        abi_tag,
        distributions: installed,
        folders: Default::default(),
    })
}

/// A folder of packages (`--path`, or an installation's site-packages) as roots: itself,
/// then the folders its `.pth` files add; and the distributions installed in it.
fn add_site(list: &mut Vec<roots::Root>, installed: &mut Vec<distributions::Distribution>, site: &Path, abi_tag: &str) {
    use roots::{Root, RootFiles, RootKind};
    let extra = pth_folders(site);
    let first = list.len();
    let relative: Vec<String> = extra
        .iter()
        .filter_map(|d| d.strip_prefix(site).ok())
        .map(|d| d.to_string_lossy().replace('\\', "/"))
        .collect();
    list.push(Root {
        kind: RootKind::App,
        files: RootFiles::Dir(site.to_path_buf()),
    });
    list.extend(extra.into_iter().map(|d| Root {
        kind: RootKind::App,
        files: RootFiles::Dir(d),
    }));
    let indexes = (first..list.len()).collect();
    installed.extend(distributions::read_site(site, indexes, &relative, abi_tag));
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
                    zip: None,
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

pub fn pyc_name(py_name: &str) -> String {
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
    fn pth_files_add_their_folders_in_order() {
        let site = tempfile::tempdir().unwrap();
        for dir in ["win32/lib", "win32", "pythonwin"] {
            std::fs::create_dir_all(site.path().join(dir)).unwrap();
        }
        std::fs::write(
            site.path().join("pywin32.pth"),
            "# comment\nwin32\nwin32\\lib\npythonwin\nmissing\nimport pywin32_bootstrap\n",
        )
        .unwrap();
        let found: Vec<PathBuf> = pth_folders(site.path());
        assert_eq!(found, ["win32", "win32/lib", "pythonwin"].map(|d| site.path().join(d)));
    }

    #[test]
    fn runtime_modules_are_named_from_resources() {
        let names = runtime_module_names();
        for expected in [
            "_isapi_freeze_boot",
            "isapi",
            "isapi.isapicon",
            "isapi.simple",
            "win32traceutil",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} missing from {names:?}"
            );
        }
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
            "__pycache__/os.cpython-399.pyc",
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
