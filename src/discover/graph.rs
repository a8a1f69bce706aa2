//! The import graph: starting from the script (and isapi-freeze's runtime modules), follow
//! every import transitively through the roots, as modulefinder does: `from x import y`
//! tries submodule `x.y`, relative imports resolve against the importing package, literal
//! `__import__`/`importlib.import_module` names count. The build Python only lists each
//! module's imports (in batches); resolving them is done here.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::roots::{Found, ModuleFile, RootError, RootKind, Roots};
use crate::compile::{BuildPython, CompileError, ImportRecord, SourceFile};

#[derive(Clone, Debug)]
pub struct Module {
    pub found: Found,
    /// The modules that import this one.
    pub importers: BTreeSet<String>,
}

impl Module {
    pub fn is_package(&self) -> bool {
        !self.found.package_dirs.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub modules: BTreeMap<String, Module>,
    /// Modules imported by app or runtime code but found nowhere, with their importers.
    pub missing: BTreeMap<String, BTreeSet<String>>,
    /// (importer, module) for imports that run when the importer is imported: not guarded
    /// by a try or a platform check, not inside a function.
    eager: BTreeSet<(String, String)>,
}

#[derive(Debug, Error)]
pub enum GraphError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Python(#[from] CompileError),
}

/// What to start from and what to leave out.
#[derive(Debug, Default)]
pub struct GraphRequest {
    /// Modules that must be in the output (the script, runtime modules, `--include`).
    pub roots: Vec<String>,
    /// Packages to include whole, every submodule (`--package`, and always `encodings`).
    pub packages: Vec<String>,
    /// Modules (and their submodules) to leave out (`--exclude`).
    pub excludes: Vec<String>,
    /// Ship third-party packages (found in `--path` folders) whole, as their distributions
    /// install them: C code and computed names import submodules the scan cannot see
    /// (numpy's `_core._exceptions`, anyio's `_backends`). Test folders stay out.
    pub whole_third_party: bool,
}

/// Modules that need another one on Windows without naming it in an import: zoneinfo reads
/// the IANA time zones from the tzdata package where the system has none (Windows), so
/// tzdata ships when it is installed.
const COMPANIONS: &[(&str, &str)] = &[("zoneinfo", "tzdata")];

/// Subpackages of a third-party package that are its tests, not its code.
const TEST_FOLDERS: &[&str] = &["tests", "test", "testing", "conftest"];

struct Wanted {
    name: String,
    importer: Option<String>,
    /// A `from package import name` that may be an attribute rather than a submodule, or
    /// a lazy import: missing is no error.
    optional: bool,
    /// Guarded, or inside a function: it does not run when the importer is imported.
    lazy: bool,
}

fn within(name: &str, package: &str) -> bool {
    name == package || (name.starts_with(package) && name.as_bytes().get(package.len()) == Some(&b'.'))
}

fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(p, _)| p)
}

pub fn build(roots: &Roots, python: &mut impl BuildPython, request: &GraphRequest) -> Result<Graph, GraphError> {
    let mut graph = Graph::default();
    let mut not_found: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<Wanted> = request
        .roots
        .iter()
        .chain(&request.packages)
        .map(|name| Wanted {
            name: name.clone(),
            importer: None,
            optional: false,
            lazy: false,
        })
        .collect();
    loop {
        let mut to_scan: Vec<String> = Vec::new();
        while let Some(wanted) = pending.pop() {
            if request.excludes.iter().any(|e| within(&wanted.name, e)) {
                continue;
            }
            let found = ensure(roots, &mut graph, &mut not_found, &wanted.name, &mut to_scan)?;
            if found {
                // What a module needs on Windows without importing it by name.
                for (module, companion) in COMPANIONS {
                    if wanted.name == *module {
                        pending.push(Wanted {
                            name: companion.to_string(),
                            importer: Some(wanted.name.clone()),
                            optional: true,
                            lazy: false,
                        });
                    }
                }
            }
            match (found, &wanted.importer) {
                (true, Some(importer)) => {
                    if let Some(m) = graph.modules.get_mut(&wanted.name) {
                        m.importers.insert(importer.clone());
                    }
                    if !wanted.lazy {
                        graph.eager.insert((importer.clone(), wanted.name.clone()));
                    }
                }
                // `import os.path`: a name a module sets itself in sys.modules, not a file.
                (false, Some(_))
                    if parent(&wanted.name).is_some_and(|p| graph.modules.get(p).is_some_and(|m| !m.is_package())) => {}
                // A submodule a standard-library package puts into sys.modules itself.
                (false, Some(importer)) if SET_BY_PACKAGE.iter().any(|(name, _)| *name == wanted.name) => {
                    let (_, module) = SET_BY_PACKAGE.iter().find(|(name, _)| *name == wanted.name).unwrap();
                    pending.push(Wanted {
                        name: module.to_string(),
                        importer: Some(importer.clone()),
                        optional: wanted.optional,
                        lazy: wanted.lazy,
                    });
                }
                (false, Some(importer)) if !wanted.optional => {
                    // Only the app's own imports are worth reporting: the standard library
                    // imports platform modules it guards itself.
                    let kind = importer_kind(roots, &graph, importer);
                    if matches!(kind, Some(RootKind::Script | RootKind::App | RootKind::Runtime)) {
                        graph
                            .missing
                            .entry(missing_name(&graph, &wanted.name))
                            .or_default()
                            .insert(importer.clone());
                    }
                }
                _ => {}
            }
        }
        // Whole packages: every submodule of a found package inside a requested one, and
        // of third-party packages.
        for name in to_scan.clone() {
            let module = &graph.modules[&name];
            // The app's own packages (in the script's folder) ship whole too: frameworks
            // import their modules by name (Django's apps, urls and views).
            let third_party = request.whole_third_party
                && module
                    .found
                    .package_dirs
                    .first()
                    .is_some_and(|(root, _)| matches!(roots.roots[*root].kind, RootKind::App | RootKind::Script));
            let requested = request.packages.iter().any(|p| within(&name, p));
            if module.is_package() && (requested || third_party) {
                for (root, dir) in module.found.package_dirs.clone() {
                    for sub in roots.submodules(root, &dir) {
                        if third_party && !requested && TEST_FOLDERS.contains(&sub.as_str()) {
                            continue;
                        }
                        pending.push(Wanted {
                            name: format!("{name}.{sub}"),
                            importer: None,
                            optional: false,
                            lazy: false,
                        });
                    }
                }
            }
        }
        let scannable: Vec<(String, SourceFile)> = to_scan
            .iter()
            .filter_map(|name| source_file(roots, name, &graph.modules[name].found).map(|s| (name.clone(), s)))
            .collect();
        if scannable.is_empty() && pending.is_empty() {
            break;
        }
        let sources: Vec<SourceFile> = scannable.iter().map(|(_, s)| s.clone()).collect();
        let imports = if sources.is_empty() {
            Vec::new()
        } else {
            python.scan(&sources)?
        };
        for ((name, _), records) in scannable.iter().zip(imports) {
            let is_package = graph.modules[name].is_package();
            // A third-party package's imports inside functions are its lazy, optional ones
            // (Django's `from PIL import Image` in ImageField): they run only if used.
            let own = importer_kind(roots, &graph, name) == Some(RootKind::Script);
            for mut record in records {
                record.guarded |= record.deferred && !own;
                pending.extend(resolve(name, is_package, &record));
            }
        }
    }
    keep_missing_of_required(&mut graph, request);
    Ok(graph)
}

/// Only imports that will run are worth a warning: those of modules the script (or an
/// `--include`) imports, directly or through others. A module shipped only because a whole
/// package was asked for (`--package django` brings every database backend) may import
/// what the app never installs, and runs only if the app uses it.
fn keep_missing_of_required(graph: &mut Graph, request: &GraphRequest) {
    let mut imports: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (importer, name) in &graph.eager {
        imports.entry(importer.as_str()).or_default().push(name.as_str());
    }
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<&str> = request.roots.iter().map(String::as_str).collect();
    while let Some(name) = todo.pop() {
        // A module counts with its parent packages, which Python imports first.
        let mut at = Some(name);
        while let Some(module) = at {
            if required.insert(module.to_string()) {
                todo.extend(imports.get(module).into_iter().flatten().copied());
            }
            at = parent(module);
        }
    }
    graph.missing.retain(|_, importers| {
        importers.retain(|i| required.contains(i));
        !importers.is_empty()
    });
}

/// Makes sure `name` and its parents are found; returns whether `name` is in the graph.
/// Newly found modules with code are added to `to_scan`.
fn ensure(
    roots: &Roots,
    graph: &mut Graph,
    not_found: &mut BTreeSet<String>,
    name: &str,
    to_scan: &mut Vec<String>,
) -> Result<bool, GraphError> {
    if graph.modules.contains_key(name) {
        return Ok(true);
    }
    if not_found.contains(name) || name.is_empty() {
        return Ok(false);
    }
    let parent_found = match parent(name) {
        Some(p) => {
            if !ensure(roots, graph, not_found, p, to_scan)? {
                not_found.insert(name.to_string());
                return Ok(false);
            }
            let parent_module = &graph.modules[p];
            if !parent_module.is_package() {
                not_found.insert(name.to_string());
                return Ok(false);
            }
            Some(parent_module.found.clone())
        }
        None => None,
    };
    match roots.find(name, parent_found.as_ref())? {
        Some(found) => {
            let scan = matches!(found.file, ModuleFile::Source { .. } | ModuleFile::Bytecode { .. });
            graph.modules.insert(
                name.to_string(),
                Module {
                    found,
                    importers: BTreeSet::new(),
                },
            );
            if scan || graph.modules[name].is_package() {
                to_scan.push(name.to_string());
            }
            Ok(true)
        }
        None => {
            not_found.insert(name.to_string());
            Ok(false)
        }
    }
}

/// The outermost missing name: `a` rather than `a.b` when `a` itself is missing.
fn missing_name(graph: &Graph, name: &str) -> String {
    let mut outer = name;
    while let Some(p) = parent(outer) {
        if graph.modules.contains_key(p) {
            break;
        }
        outer = p;
    }
    outer.to_string()
}

fn importer_kind(roots: &Roots, graph: &Graph, importer: &str) -> Option<RootKind> {
    match &graph.modules.get(importer)?.found.file {
        ModuleFile::Source { root, .. } | ModuleFile::Bytecode { root, .. } | ModuleFile::Extension { root, .. } => {
            Some(roots.roots[*root].kind)
        }
        _ => None,
    }
}

/// What to read to scan a module's imports (None for modules without code).
pub fn source_file(roots: &Roots, name: &str, found: &Found) -> Option<SourceFile> {
    let (root, rel) = match &found.file {
        ModuleFile::Source { root, rel } | ModuleFile::Bytecode { root, rel } => (*root, rel),
        _ => return None,
    };
    let filename = rel.clone();
    Some(match (&roots.roots[root].files, roots.path(root, rel)) {
        (_, Some(path)) => SourceFile {
            path,
            text: None,
            zip: None,
            filename,
            check_factories: false,
        },
        (super::roots::RootFiles::Listing { origin, .. }, None) if roots.roots[root].kind == RootKind::Runtime => {
            let text = super::RESOURCES
                .iter()
                .find(|(r, _)| *r == rel.as_str())
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_else(|| panic!("resource {rel} of {name} is embedded"));
            SourceFile {
                path: origin.join(rel),
                text: Some(text),
                zip: None,
                filename,
                check_factories: false,
            }
        }
        (super::roots::RootFiles::Listing { origin, .. }, None) => SourceFile {
            path: origin.join(rel),
            text: None,
            zip: Some((origin.clone(), rel.clone())),
            filename,
            check_factories: false,
        },
        (super::roots::RootFiles::Dir(_), None) => unreachable!("a folder root has paths"),
    })
}

/// Submodules that a standard-library package creates in sys.modules instead of a file, and
/// the module they are: from CPython 3.13, `collections/__init__` sets `collections.abc` to
/// `_collections_abc` (3.11 and 3.12 have a collections/abc.py).
const SET_BY_PACKAGE: &[(&str, &str)] = &[("collections.abc", "_collections_abc")];

/// The modules one import statement of `importer` asks for.
fn resolve(importer: &str, importer_is_package: bool, record: &ImportRecord) -> Vec<Wanted> {
    let target = if record.level == 0 {
        record.name.clone()
    } else {
        let mut base: Vec<&str> = importer.split('.').collect();
        if !importer_is_package {
            base.pop();
        }
        for _ in 1..record.level {
            if base.pop().is_none() {
                return Vec::new(); // beyond the top-level package: Python raises ImportError
            }
        }
        if base.is_empty() {
            return Vec::new();
        }
        let mut target = base.join(".");
        if !record.name.is_empty() {
            target.push('.');
            target.push_str(&record.name);
        }
        target
    };
    if target.is_empty() {
        return Vec::new();
    }
    let importer = Some(importer.to_string());
    let mut out = vec![Wanted {
        name: target.clone(),
        importer: importer.clone(),
        optional: record.guarded,
        lazy: record.guarded,
    }];
    for item in record.fromlist.iter().filter(|i| i.as_str() != "*") {
        out.push(Wanted {
            name: format!("{target}.{item}"),
            importer: importer.clone(),
            optional: true,
            lazy: record.guarded,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::compile::{BytecodeVersion, Compiled};
    use crate::discover::roots::{listing, Root, RootFiles};

    /// Imports given per archive path, instead of a Python parsing files.
    struct FakeScanner(BTreeMap<&'static str, Vec<ImportRecord>>);

    impl BuildPython for FakeScanner {
        fn interpreter(&self) -> &Path {
            Path::new("fake")
        }
        fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
            unreachable!()
        }
        fn compile(&mut self, _: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
            unreachable!()
        }
        fn scan(&mut self, files: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
            Ok(files
                .iter()
                .map(|f| self.0.get(f.filename.as_str()).cloned().unwrap_or_default())
                .collect())
        }
    }

    fn import(name: &str, level: u32, fromlist: &[&str]) -> ImportRecord {
        ImportRecord {
            name: name.into(),
            level,
            fromlist: fromlist.iter().map(|s| s.to_string()).collect(),
            dynamic: false,
            guarded: false,
            deferred: false,
        }
    }

    fn app_roots() -> Roots {
        Roots {
            roots: vec![
                Root {
                    kind: RootKind::App,
                    files: listing(
                        Path::new("app"),
                        [
                            "app.py",
                            "pkg/__init__.py",
                            "pkg/a.py",
                            "pkg/b.py",
                            "pkg/sub/__init__.py",
                            "pkg/sub/c.py",
                            "pkg/data.txt",
                        ]
                        .map(String::from),
                    ),
                },
                Root {
                    kind: RootKind::Stdlib,
                    files: listing(
                        Path::new("python3XY.zip"),
                        [
                            "os.pyc",
                            "json/__init__.pyc",
                            "json/decoder.pyc",
                            "collections/__init__.pyc",
                            "_collections_abc.pyc",
                        ]
                        .map(String::from),
                    ),
                },
            ],
            builtins: ["sys".to_string()].into(),
            abi_tag: "cp3XY".into(),
        }
    }

    #[test]
    fn imports_are_followed_transitively_with_relative_and_from_imports() {
        let mut scanner = FakeScanner(
            [
                (
                    "app.py",
                    vec![
                        import("pkg", 0, &["a"]),
                        import("json", 0, &[]),
                        import("sys", 0, &[]),
                        import("nowhere", 0, &[]),
                    ],
                ),
                (
                    "pkg/a.py",
                    vec![
                        import("", 1, &["b"]),
                        import("sub.c", 1, &[]),
                        import("os", 0, &["path"]),
                    ],
                ),
                ("pkg/sub/c.py", vec![import("a", 2, &["X"])]),
                (
                    "json/__init__.pyc",
                    vec![import("decoder", 1, &[]), import("_json", 0, &[])],
                ),
            ]
            .into(),
        );
        let request = GraphRequest {
            roots: vec!["app".into()],
            ..Default::default()
        };
        let graph = build(&app_roots(), &mut scanner, &request).unwrap();
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "app",
                "json",
                "json.decoder",
                "os",
                "pkg",
                "pkg.a",
                "pkg.b",
                "pkg.sub",
                "pkg.sub.c",
                "sys"
            ]
        );
        assert_eq!(graph.modules["pkg.b"].importers, ["pkg.a".to_string()].into());
        // Only the app's missing imports are reported; json's `_json` is the stdlib's business.
        assert_eq!(
            graph.missing,
            [("nowhere".to_string(), ["app".to_string()].into())].into()
        );
    }

    #[test]
    fn collections_abc_without_a_file_is_the_module_its_package_puts_there() {
        // CPython 3.13's zip has no collections/abc.pyc: collections/__init__ sets it.
        let mut scanner = FakeScanner([("app.py", vec![import("collections.abc", 0, &[])])].into());
        let request = GraphRequest {
            roots: vec!["app".into()],
            ..Default::default()
        };
        let graph = build(&app_roots(), &mut scanner, &request).unwrap();
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(names, ["_collections_abc", "app", "collections"]);
        assert!(graph.missing.is_empty(), "{:?}", graph.missing);
    }

    #[test]
    fn only_imports_that_will_run_are_reported_missing() {
        let lazy = |name: &str| ImportRecord {
            deferred: true,
            ..import(name, 0, &[])
        };
        let mut scanner = FakeScanner(
            [
                ("app.py", vec![import("pkg.a", 0, &[]), lazy("own_lazy")]),
                // pkg/a.py is imported; its function-level import is its own business.
                ("pkg/a.py", vec![lazy("third_party_lazy")]),
                // pkg/b.py only comes with the whole package: its imports may never run.
                ("pkg/b.py", vec![import("never_run", 0, &[])]),
            ]
            .into(),
        );
        let mut roots = app_roots();
        // The script's folder is the app's own code; pkg is a third-party package.
        roots.roots.insert(
            0,
            Root {
                kind: RootKind::Script,
                files: listing(Path::new("script"), ["app.py".to_string()]),
            },
        );
        let request = GraphRequest {
            roots: vec!["app".into()],
            packages: vec!["pkg".into()],
            ..Default::default()
        };
        let graph = build(&roots, &mut scanner, &request).unwrap();
        assert!(graph.modules.contains_key("pkg.b"), "the whole package ships");
        assert_eq!(
            graph.missing,
            [("own_lazy".to_string(), ["app".to_string()].into())].into()
        );
    }

    #[test]
    fn third_party_packages_ship_whole_but_their_tests_and_excludes() {
        let mut scanner = FakeScanner([("app.py", vec![import("pkg.a", 0, &[])])].into());
        let mut roots = app_roots();
        if let RootFiles::Listing { names, .. } = &mut roots.roots[0].files {
            names.insert("pkg/tests/__init__.py".into());
        }
        roots.roots.insert(
            0,
            Root {
                kind: RootKind::Script,
                files: listing(Path::new("script"), ["app.py".to_string()]),
            },
        );
        let request = GraphRequest {
            roots: vec!["app".into()],
            excludes: vec!["pkg.b".into()],
            whole_third_party: true,
            ..Default::default()
        };
        let graph = build(&roots, &mut scanner, &request).unwrap();
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(names, ["app", "pkg", "pkg.a", "pkg.sub", "pkg.sub.c"]);
    }

    #[test]
    fn whole_packages_and_excludes() {
        let mut scanner = FakeScanner([("app.py", vec![import("pkg", 0, &[])])].into());
        let request = GraphRequest {
            roots: vec!["app".into()],
            packages: vec!["pkg".into()],
            excludes: vec!["pkg.sub".into()],
            whole_third_party: false,
        };
        let graph = build(&app_roots(), &mut scanner, &request).unwrap();
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(names, ["app", "pkg", "pkg.a", "pkg.b"]);
    }

    #[test]
    fn relative_imports_resolve_against_the_package() {
        let names = |importer, is_package, record| -> Vec<(String, bool)> {
            resolve(importer, is_package, &record)
                .into_iter()
                .map(|w| (w.name, w.optional))
                .collect()
        };
        assert_eq!(names("p.m", false, import("x", 1, &[])), [("p.x".into(), false)]);
        assert_eq!(names("p", true, import("x", 1, &[])), [("p.x".into(), false)]);
        assert_eq!(
            names("p.q.m", false, import("", 2, &["y"])),
            [("p".into(), false), ("p.y".into(), true)]
        );
        assert_eq!(names("m", false, import("x", 1, &[])), []);
        assert_eq!(names("m", false, import("x.y", 0, &["*"])), [("x.y".into(), false)]);
    }
}
