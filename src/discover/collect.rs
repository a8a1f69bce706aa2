//! From the import graph to files: which modules are compiled into the app archive or the
//! standard-library zip, which are copied as they are, which package data goes along, and
//! which extension modules and DLLs are placed as files in the output.

use std::path::PathBuf;

use super::graph::{source_file, Graph};
use super::roots::{is_code_file, ModuleFile, RootFiles, RootKind, Roots};
use super::ModuleSource;

/// Where the bytes of a copied file come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    Path(PathBuf),
    /// A member of a zip file (the embeddable standard library).
    ZipMember(PathBuf, String),
}

#[derive(Debug, Default)]
pub struct Collected {
    /// Modules compiled into the app archive (runtime modules, the script, the app's).
    pub app_sources: Vec<ModuleSource>,
    /// App archive members stored as they are: sourceless .pyc files and package data.
    pub app_files: Vec<(String, FileSource)>,
    /// Standard-library modules to compile (from an installation's Lib\).
    pub stdlib_sources: Vec<ModuleSource>,
    /// Standard-library zip members stored as they are (.pyc of the embeddable zip, data).
    pub stdlib_files: Vec<(String, FileSource)>,
    /// Extension modules placed in the output folder: (path in the output, file).
    pub extensions: Vec<(String, PathBuf)>,
    /// Modules of `--files` packages, compiled into the output folder as files.
    pub file_sources: Vec<ModuleSource>,
    /// Other files of `--files` packages (their data, sourceless .pyc), copied as they are.
    pub file_data: Vec<(String, FileSource)>,
}

/// `as_files`: the `--files` packages, shipped as plain files rather than in the archive.
pub fn collect(graph: &Graph, roots: &Roots, script_module: &str, as_files: &[String]) -> Collected {
    let mut out = Collected::default();
    for (name, module) in &graph.modules {
        let plain = as_files.iter().any(|p| name == p || name.starts_with(&format!("{p}.")));
        if plain {
            match &module.found.file {
                ModuleFile::Source { .. } => {
                    let source = source_file(roots, name, &module.found).expect("a source module has a file");
                    let ModuleFile::Source { rel, .. } = &module.found.file else {
                        unreachable!()
                    };
                    out.file_sources.push(ModuleSource {
                        source,
                        archive_name: super::pyc_name(rel),
                    });
                }
                ModuleFile::Bytecode { root, rel } => out.file_data.push((rel.clone(), file_source(roots, *root, rel))),
                ModuleFile::Extension { root, rel } => {
                    out.extensions.push((
                        rel.clone(),
                        roots.path(*root, rel).expect("extension modules are files"),
                    ));
                }
                ModuleFile::Builtin | ModuleFile::Namespace => {}
            }
            for (root, dir) in &module.found.package_dirs {
                for rel in package_data(roots, *root, dir) {
                    out.file_data.push((rel.clone(), file_source(roots, *root, &rel)));
                }
            }
            continue;
        }
        match &module.found.file {
            ModuleFile::Source { root, rel } => {
                let mut source = source_file(roots, name, &module.found).expect("a source module has a file");
                source.check_factories = name == script_module;
                let entry = ModuleSource {
                    source,
                    archive_name: super::pyc_name(rel),
                };
                match roots.roots[*root].kind {
                    RootKind::Stdlib => out.stdlib_sources.push(entry),
                    _ => out.app_sources.push(entry),
                }
            }
            ModuleFile::Bytecode { root, rel } => {
                let file = file_source(roots, *root, rel);
                match roots.roots[*root].kind {
                    RootKind::Stdlib => out.stdlib_files.push((rel.clone(), file)),
                    _ => out.app_files.push((rel.clone(), file)),
                }
            }
            ModuleFile::Extension { root, rel } => {
                let path = roots.path(*root, rel).expect("extension modules are files on disk");
                out.extensions.push((rel.clone(), path));
            }
            ModuleFile::Builtin | ModuleFile::Namespace => {}
        }
        for (root, dir) in &module.found.package_dirs {
            let kind = roots.roots[*root].kind;
            if kind == RootKind::StdlibExtensions {
                continue;
            }
            for rel in package_data(roots, *root, dir) {
                let file = file_source(roots, *root, &rel);
                match kind {
                    RootKind::Stdlib => out.stdlib_files.push((rel, file)),
                    _ => out.app_files.push((rel, file)),
                }
            }
        }
    }
    // A namespace package inside a package (a folder without __init__) shares its files with
    // the enclosing package's data: keep each destination once.
    for list in [&mut out.app_files, &mut out.stdlib_files, &mut out.file_data] {
        let mut seen = std::collections::BTreeSet::new();
        list.retain(|(name, _)| seen.insert(name.clone()));
    }
    out
}

fn file_source(roots: &Roots, root: usize, rel: &str) -> FileSource {
    match &roots.roots[root].files {
        RootFiles::Dir(dir) => FileSource::Path(dir.join(rel)),
        RootFiles::Listing { origin, .. } => FileSource::ZipMember(origin.clone(), rel.to_string()),
    }
}

/// The data files of the package in `dir`: files that are not code and do not belong to a
/// subpackage (a folder with its own `__init__`), which brings its own data if imported.
fn package_data(roots: &Roots, root: usize, dir: &str) -> Vec<String> {
    if roots.roots[root].kind == RootKind::Runtime {
        return Vec::new();
    }
    roots
        .files_under(root, dir)
        .into_iter()
        .filter(|rel| !is_code_file(rel))
        .filter(|rel| {
            let inner = &rel[dir.len() + 1..];
            let mut folder = dir.to_string();
            let parts: Vec<&str> = inner.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                folder = format!("{folder}/{part}");
                if roots.has_file(root, &format!("{folder}/__init__.py"))
                    || roots.has_file(root, &format!("{folder}/__init__.pyc"))
                {
                    return false;
                }
            }
            true
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::discover::graph::Module;
    use crate::discover::roots::{listing, Found, Root};

    #[test]
    fn modules_and_data_go_where_they_run_from() {
        let roots = Roots {
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
                    files: listing(Path::new("py.zip"), ["json/__init__.pyc"].map(String::from)),
                },
            ],
            builtins: BTreeSet::new(),
            abi_tag: "cp311".into(),
        };
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
        graph.modules.insert(
            "json".into(),
            module(
                ModuleFile::Bytecode {
                    root: 1,
                    rel: "json/__init__.pyc".into(),
                },
                vec![(1, "json")],
            ),
        );
        let collected = collect(&graph, &roots, "app", &[]);
        assert_eq!(
            collected
                .app_sources
                .iter()
                .map(|m| m.archive_name.as_str())
                .collect::<Vec<_>>(),
            ["pkg/__init__.pyc"]
        );
        assert_eq!(
            collected.app_files,
            [(
                "pkg/templates/page.html".to_string(),
                FileSource::ZipMember("app".into(), "pkg/templates/page.html".into())
            )]
        );
        assert_eq!(
            collected.stdlib_files,
            [(
                "json/__init__.pyc".to_string(),
                FileSource::ZipMember("py.zip".into(), "json/__init__.pyc".into())
            )]
        );
    }
}
