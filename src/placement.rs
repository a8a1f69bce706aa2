//! Where every module and file of a freeze goes, decided once, here: the app archive (read
//! from memory), the standard-library zip (what Python imports before the archive's importer
//! exists), or a file of the output folder; and whether its bytes are compiled, copied, or
//! copied still compressed. Nothing is read or compiled here: the decisions are cheap, so
//! `--dry-run` prints them, and `assemble.rs` carries them out.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::compile::SourceFile;
use crate::config::RuntimeLayout;
use crate::discover::distributions::{is_build_leftover, TEST_FOLDERS};
use crate::discover::graph::{source_file, Graph};
use crate::discover::roots::{is_code_file, ModuleFile, RootFiles, RootKind, Roots};

/// Where a placed file ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// The app archive, embedded in the loader (the launcher reads it there) and imported from
    /// memory.
    AppArchive,
    /// python3XY.zip: Python imports `encodings` from it before the boot module runs (and,
    /// with `--full-stdlib`, the whole standard library of an installation).
    StdlibZip,
    /// A file of the output folder: extension modules and the DLLs they load (Windows
    /// loads them from disk), `--files` packages and `--data`.
    OutputFolder,
}

/// Where a placed file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    Path(PathBuf),
    /// A member of a zip file (the embeddable standard library).
    ZipMember(PathBuf, String),
}

impl FileSource {
    /// For messages and `--dry-run`.
    pub fn describe(&self) -> String {
        match self {
            FileSource::Path(path) => path.display().to_string(),
            FileSource::ZipMember(zip, member) => format!("{}/{member}", zip.display()),
        }
    }
}

/// How a placed file's bytes are made.
#[derive(Clone, Debug)]
pub enum Treatment {
    /// Python source, compiled to a .pyc by the build Python.
    Compile(SourceFile),
    /// Copied as it is.
    Copy(FileSource),
    /// A member of another zip, copied into a zip still compressed (the embeddable
    /// standard library's bytecode: inflating and deflating it again is the slowest step of
    /// a freeze).
    CopyCompressed { zip: PathBuf, member: String },
}

/// What a file of the output folder is, as manifest.json records it.
pub use isapi_freeze_format::manifest::Role;

/// One decision: `path` inside `place` (`/`-separated), made by `treatment`.
#[derive(Clone, Debug)]
pub struct Placement {
    pub path: String,
    pub place: Place,
    pub treatment: Treatment,
    /// For output-folder files: what it is.
    pub role: Role,
}

/// What the placement rules depend on besides the graph.
pub struct Rules<'a> {
    /// The script's module name: its source is checked for factories when compiled.
    pub script_module: &'a str,
    /// `--files`: packages shipped as plain files rather than in the archive.
    pub as_files: &'a [String],
    /// `--full-stdlib`: the whole standard library is placed separately (see
    /// [`whole_stdlib`]), so the graph's standard-library modules are not placed again.
    pub full_stdlib: bool,
    /// The runtime imports `encodings` from the archive (CPython 3.11-3.13, see
    /// `Python::encodings_in_archive`); else it must be in python3XY.zip.
    pub encodings_in_archive: bool,
}

/// Python imports these before the boot module's importer exists, unless the runtime can
/// put it in place first (`Rules::encodings_in_archive`).
fn needed_before_boot(path: &str) -> bool {
    path.starts_with("encodings/")
}

/// Places every module of `graph` and its package data.
pub fn place_modules(graph: &Graph, roots: &Roots, rules: &Rules) -> Vec<Placement> {
    let mut out = Vec::new();
    for (name, module) in &graph.modules {
        let as_file = rules
            .as_files
            .iter()
            .any(|p| name == p || name.starts_with(&format!("{p}.")));
        let (root, rel) = match &module.found.file {
            ModuleFile::Source { root, rel }
            | ModuleFile::Bytecode { root, rel }
            | ModuleFile::Extension { root, rel } => (Some(*root), rel.as_str()),
            ModuleFile::Builtin | ModuleFile::Namespace => (None, ""),
        };
        if let Some(root) = root {
            let kind = roots.roots[root].kind;
            let treatment = match &module.found.file {
                ModuleFile::Source { .. } => {
                    let mut source = source_file(roots, name, &module.found).expect("a source module has a file");
                    source.check_factories = name == rules.script_module;
                    Some((crate::discover::pyc_name(rel), Treatment::Compile(source)))
                }
                ModuleFile::Extension { .. } => {
                    let path = roots.path(root, rel).expect("extension modules are files on disk");
                    out.push(Placement {
                        path: rel.to_string(),
                        place: Place::OutputFolder,
                        treatment: Treatment::Copy(FileSource::Path(path)),
                        role: Role::Binary,
                    });
                    None
                }
                _ => Some((rel.to_string(), copy(roots, root, rel))),
            };
            if let Some((path, treatment)) = treatment {
                if let Some(placement) = decide(kind, as_file, path, treatment, Role::Module, rules) {
                    out.push(placement);
                }
            }
        }
        for (root, dir) in &module.found.package_dirs {
            let kind = roots.roots[*root].kind;
            if matches!(kind, RootKind::StdlibExtensions | RootKind::Runtime) {
                continue;
            }
            for rel in package_data(roots, *root, dir) {
                let treatment = copy(roots, *root, &rel);
                if let Some(placement) = decide(kind, as_file, rel, treatment, Role::Data, rules) {
                    out.push(placement);
                }
            }
        }
    }
    // A namespace package inside a package (a folder without __init__) shares its files with
    // the enclosing package's data: keep each destination once.
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert((p.place, p.path.clone())));
    out
}

/// For each standard-library extension module left out (graph.rs), a module of the same
/// name in the archive whose import fails with what to do: `--include` it. It is an
/// ImportError, so the standard library's `try: import _ssl` fallbacks work as without it.
pub fn left_out_stand_ins(left_out: &BTreeSet<String>) -> Vec<Placement> {
    left_out
        .iter()
        .map(|name| {
            let rel = format!("{}.py", name.replace('.', "/"));
            let text = format!(
                "raise ModuleNotFoundError(\n    \"No module named '{name}': isapi-freeze left this extension module out, as \"\n    \
                 \"only the standard library's optional or in-function imports name it; \"\n    \
                 \"freeze again with --include {name} to ship it\",\n    name=\"{name}\",\n)\n"
            );
            Placement {
                path: crate::discover::pyc_name(&rel),
                place: Place::AppArchive,
                treatment: Treatment::Compile(SourceFile {
                    path: PathBuf::from(format!("<left out>/{rel}")),
                    text: Some(text),
                    zip: None,
                    filename: rel,
                    check_factories: false,
                }),
                role: Role::Module,
            }
        })
        .collect()
}

/// The one rule: where a module or data file found in a root of `kind` goes.
fn decide(
    kind: RootKind,
    as_file: bool,
    path: String,
    treatment: Treatment,
    role: Role,
    rules: &Rules,
) -> Option<Placement> {
    let place = if as_file {
        Place::OutputFolder
    } else {
        match kind {
            RootKind::Stdlib if rules.full_stdlib => return None,
            RootKind::Stdlib if !rules.encodings_in_archive && needed_before_boot(&path) => Place::StdlibZip,
            // The app's and its packages' data files go where `__file__` says their package
            // is (the runtime puts those paths in the output folder): templates, locale,
            // static files are found as they are in development. Code stays in the archive.
            RootKind::Script | RootKind::App if role == Role::Data => Place::OutputFolder,
            _ => Place::AppArchive,
        }
    };
    // Bytecode of the embeddable zip goes into the app archive still compressed.
    let treatment = match treatment {
        Treatment::Copy(FileSource::ZipMember(zip, member))
            if place == Place::AppArchive && kind == RootKind::Stdlib =>
        {
            Treatment::CopyCompressed { zip, member }
        }
        other => other,
    };
    Some(Placement {
        path,
        place,
        treatment,
        role,
    })
}

fn copy(roots: &Roots, root: usize, rel: &str) -> Treatment {
    Treatment::Copy(match &roots.roots[root].files {
        RootFiles::Dir(dir) => FileSource::Path(dir.join(rel)),
        RootFiles::Listing { origin, .. } => FileSource::ZipMember(origin.clone(), rel.to_string()),
    })
}

/// The data files of the package in `dir`: files that are not code and do not belong to a
/// subpackage (a folder with its own `__init__`), which brings its own data if imported,
/// nor to a tests folder (numpy's have no `__init__`).
fn package_data(roots: &Roots, root: usize, dir: &str) -> Vec<String> {
    roots
        .files_outside_subpackages(root, dir)
        .into_iter()
        .filter(|rel| !is_code_file(rel) && !is_build_leftover(rel))
        .filter(|rel| {
            let inner = &rel[dir.len() + 1..];
            !inner.split('/').any(|part| TEST_FOLDERS.contains(&part))
        })
        .collect()
}

/// The files of the distributions the graph reached besides their modules and package
/// data, at their path in the site folder (the output folder stands for it): what their
/// code finds beside its packages (delvewheel's `numpy.libs/` DLLs, which numpy's
/// `__init__` adds to the DLL search path) and their metadata (`importlib.metadata`).
pub fn distribution_files(graph: &Graph, roots: &Roots) -> Vec<Placement> {
    let mut out = Vec::new();
    for &index in &graph.distributions {
        let distribution = &roots.distributions[index];
        let site = distribution.roots[0];
        for rel in &distribution.loose_files {
            let Some(path) = roots.path(site, rel).filter(|p| p.is_file()) else {
                continue;
            };
            let lower = rel.to_ascii_lowercase();
            let role = if lower.ends_with(".dll") || lower.ends_with(".pyd") {
                Role::Binary
            } else {
                Role::Data
            };
            out.push((rel.clone(), path, role));
        }
        for rel in &distribution.metadata {
            if let Some(path) = roots.path(site, rel).filter(|p| p.is_file()) {
                out.push((rel.clone(), path, Role::Data));
            }
        }
    }
    out.into_iter()
        .map(|(path, file, role)| Placement {
            path,
            place: Place::OutputFolder,
            treatment: Treatment::Copy(FileSource::Path(file)),
            role,
        })
        .collect()
}

/// `--full-stdlib`: the embeddable zip is copied as it is; an installation's Lib\ is
/// compiled into a new python3XY.zip.
pub fn whole_stdlib(runtime: &crate::config::PythonRuntime) -> Result<Vec<Placement>> {
    Ok(match runtime.layout {
        RuntimeLayout::Embeddable => vec![Placement {
            path: runtime.stdlib_zip_name(),
            place: Place::OutputFolder,
            treatment: Treatment::Copy(FileSource::Path(runtime.root.join(runtime.stdlib_zip_name()))),
            role: Role::Stdlib,
        }],
        RuntimeLayout::Installation => {
            let files = crate::discover::stdlib_files(&runtime.root.join("Lib"))?;
            let modules = files.modules.into_iter().map(|m| Placement {
                path: m.archive_name,
                place: Place::StdlibZip,
                treatment: Treatment::Compile(m.source),
                role: Role::Module,
            });
            let data = files.data.into_iter().map(|(path, file)| Placement {
                path,
                place: Place::StdlibZip,
                treatment: Treatment::Copy(FileSource::Path(file)),
                role: Role::Data,
            });
            modules.chain(data).collect()
        }
    })
}

/// Folders beside the script that a framework reads by convention, shipped when the app
/// imports that framework: Flask's `templates/` and `static/` (beside the module that
/// creates the app; a package's own are its package data), Bottle's `views/`.
const FRAMEWORK_FOLDERS: &[(&str, &[&str])] = &[("flask", &["templates", "static"]), ("bottle", &["views"])];

/// The framework folders beside the script, for the frameworks the graph holds: (path in
/// the output, file) for every file in them.
pub fn framework_folders(graph: &Graph, script_dir: &std::path::Path) -> Vec<Placement> {
    let mut out = Vec::new();
    for (framework, folders) in FRAMEWORK_FOLDERS {
        if !graph.modules.contains_key(*framework) {
            continue;
        }
        for folder in *folders {
            let dir = script_dir.join(folder);
            if !dir.is_dir() {
                continue;
            }
            for entry in walkdir::WalkDir::new(&dir).sort_by_file_name().into_iter().flatten() {
                if entry.file_type().is_file() {
                    let rel = entry.path().strip_prefix(script_dir).unwrap_or(entry.path());
                    out.push((rel.to_string_lossy().replace('\\', "/"), entry.path().to_path_buf()));
                }
            }
        }
    }
    output_files(out, Role::Data)
}

/// Files of the output folder copied from disk: (path in the output, file, role).
pub fn output_files(files: impl IntoIterator<Item = (String, PathBuf)>, role: Role) -> Vec<Placement> {
    files
        .into_iter()
        .map(|(path, file)| Placement {
            path,
            place: Place::OutputFolder,
            treatment: Treatment::Copy(FileSource::Path(file)),
            role,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::discover::graph::Module;
    use crate::discover::roots::{listing, Found, Root};

    fn roots() -> Roots {
        Roots {
            roots: vec![
                Root {
                    kind: RootKind::App,
                    files: listing(
                        Path::new("app"),
                        [
                            "pkg/__init__.py",
                            "pkg/templates/page.html",
                            "pkg/sub/__init__.py",
                            "pkg/sub/x.txt",
                            "pkg/__pycache__/a.pyc",
                        ]
                        .map(String::from),
                    ),
                },
                Root {
                    kind: RootKind::Stdlib,
                    files: listing(
                        Path::new("py.zip"),
                        ["json/__init__.pyc", "encodings/__init__.pyc"].map(String::from),
                    ),
                },
            ],
            builtins: BTreeSet::new(),
            abi_tag: "cp399".into(),
            distributions: Vec::new(),
            folders: Default::default(),
        }
    }

    fn graph() -> Graph {
        let module = |file, dirs: Vec<(usize, &str)>| Module {
            found: Found {
                file,
                package_dirs: dirs.into_iter().map(|(r, d)| (r, d.to_string())).collect(),
            },
            importers: BTreeSet::new(),
        };
        let mut graph = Graph::default();
        graph.modules.insert(
            "pkg".into(),
            module(
                ModuleFile::Source {
                    root: 0,
                    rel: "pkg/__init__.py".into(),
                },
                vec![(0, "pkg")],
            ),
        );
        for name in ["json", "encodings"] {
            graph.modules.insert(
                name.into(),
                module(
                    ModuleFile::Bytecode {
                        root: 1,
                        rel: format!("{name}/__init__.pyc"),
                    },
                    vec![(1, name)],
                ),
            );
        }
        graph
    }

    /// (path, place, how) of each placement, for comparing.
    fn summary(placements: &[Placement]) -> Vec<(String, Place, String)> {
        placements
            .iter()
            .map(|p| {
                let how = match &p.treatment {
                    Treatment::Compile(s) => format!("compile {}", s.path.display()),
                    Treatment::Copy(f) => format!("copy {}", f.describe()),
                    Treatment::CopyCompressed { zip, member } => format!("raw {}/{member}", zip.display()),
                };
                (p.path.clone(), p.place, how)
            })
            .collect()
    }

    #[test]
    fn modules_and_data_go_where_they_run_from() {
        let rules = Rules {
            script_module: "app",
            as_files: &[],
            full_stdlib: false,
            encodings_in_archive: false,
        };
        let placed = place_modules(&graph(), &roots(), &rules);
        assert_eq!(
            summary(&placed),
            [
                (
                    "encodings/__init__.pyc".to_string(),
                    Place::StdlibZip,
                    "copy py.zip/encodings/__init__.pyc".to_string()
                ),
                (
                    "json/__init__.pyc".to_string(),
                    Place::AppArchive,
                    "raw py.zip/json/__init__.pyc".to_string()
                ),
                (
                    "pkg/__init__.pyc".to_string(),
                    Place::AppArchive,
                    "compile app/pkg/__init__.py".to_string()
                ),
                (
                    "pkg/templates/page.html".to_string(),
                    Place::OutputFolder,
                    "copy app/pkg/templates/page.html".to_string()
                ),
            ]
        );
    }

    #[test]
    fn files_packages_go_to_the_output_folder_and_full_stdlib_places_none_of_the_graphs() {
        let as_files = ["pkg".to_string()];
        let rules = Rules {
            script_module: "app",
            as_files: &as_files,
            full_stdlib: true,
            encodings_in_archive: false,
        };
        let placed = place_modules(&graph(), &roots(), &rules);
        assert_eq!(
            summary(&placed),
            [
                (
                    "pkg/__init__.pyc".to_string(),
                    Place::OutputFolder,
                    "compile app/pkg/__init__.py".to_string()
                ),
                (
                    "pkg/templates/page.html".to_string(),
                    Place::OutputFolder,
                    "copy app/pkg/templates/page.html".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_reached_distribution_brings_its_loose_files_and_metadata() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/site-packages");
        let abi = "cp312";
        let roots = Roots {
            roots: vec![Root {
                kind: RootKind::App,
                files: RootFiles::Dir(site.clone()),
            }],
            builtins: BTreeSet::new(),
            abi_tag: abi.into(),
            distributions: crate::discover::distributions::read_site(&site, vec![0], &[], abi),
            folders: Default::default(),
        };
        let mut graph = Graph::default();
        let numpy = roots.distributions.iter().position(|d| d.name == "numpy").unwrap();
        graph.distributions.insert(numpy);
        let placed: Vec<(String, Place, Role, String)> = distribution_files(&graph, &roots)
            .into_iter()
            .map(|p| {
                let Treatment::Copy(source) = &p.treatment else {
                    panic!("{} is copied", p.path)
                };
                (p.path.clone(), p.place, p.role, source.describe())
            })
            .collect();
        let from = |rel: &str| site.join(rel).display().to_string();
        assert_eq!(
            placed,
            [
                (
                    "numpy.libs/libopenblas-63c8.dll".to_string(),
                    Place::OutputFolder,
                    Role::Binary,
                    from("numpy.libs/libopenblas-63c8.dll")
                ),
                (
                    "numpy-2.4.6.dist-info/METADATA".to_string(),
                    Place::OutputFolder,
                    Role::Data,
                    from("numpy-2.4.6.dist-info/METADATA")
                ),
                (
                    "numpy-2.4.6.dist-info/licenses/LICENSE.txt".to_string(),
                    Place::OutputFolder,
                    Role::Data,
                    from("numpy-2.4.6.dist-info/licenses/LICENSE.txt")
                ),
            ]
        );
    }
}
