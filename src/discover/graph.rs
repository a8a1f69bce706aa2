//! The import graph: starting from the script (and isapi-freeze's runtime modules), follow
//! every import transitively through the roots, as modulefinder does: `from x import y`
//! tries submodule `x.y`, relative imports resolve against the importing package, literal
//! `__import__`/`importlib.import_module` names count. The build Python only lists each
//! module's imports (in batches); resolving them is done here. The standard library's
//! extension modules that no import that runs reaches are left out (`left_out`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use thiserror::Error;

use super::distributions::{is_test_module, Modules, TEST_FOLDERS};
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
    /// The distributions (indexes into `Roots::distributions`) the graph reached, which
    /// ship whole.
    pub distributions: BTreeSet<usize>,
    /// (importer, module) for imports that run when the importer is imported: not guarded
    /// by a try or a platform check, not inside a function.
    eager: BTreeSet<(String, String)>,
    /// importer -> the modules it imports whenever it runs: every import of the app's, its
    /// packages' and our runtime's code; the standard library's unguarded top-level ones.
    runs: BTreeMap<String, BTreeSet<String>>,
    /// Standard-library extension modules left out: only the standard library's own
    /// optional or in-function imports name them (`hashlib`'s `try: import _hashlib`), so
    /// nothing that runs needs them; with their DLLs they are most of an output's size.
    pub left_out: BTreeSet<String>,
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
    /// Ship third-party code whole: every module of each distribution the graph reaches
    /// (by its metadata), and every submodule of the app's own packages and of packages
    /// no metadata describes. C code and computed names import modules the scan cannot see
    /// (numpy's `_core._exceptions`, anyio's `_backends`). Tests stay out.
    pub whole_third_party: bool,
    /// Modules (and their submodules) among `roots` and `packages` that ship but run only
    /// when something imports them: our runtime modules the app may not use (isapi.asgi).
    pub on_demand: Vec<String>,
    /// Leave out the standard-library extension modules nothing that runs imports.
    pub leave_out_unused_extensions: bool,
}

/// Modules that need another one on Windows without naming it in an import: zoneinfo reads
/// the IANA time zones from the tzdata package where the system has none (Windows), so
/// tzdata ships when it is installed.
const COMPANIONS: &[(&str, &str)] = &[("zoneinfo", "tzdata")];

struct Wanted {
    name: String,
    importer: Option<String>,
    /// A `from package import name` that may be an attribute rather than a submodule, or
    /// a lazy import: missing is no error.
    optional: bool,
    /// Guarded, or inside a function: it does not run when the importer is imported.
    lazy: bool,
    /// It runs whenever the importer runs, as far as shipping extension modules goes (see
    /// `Graph::runs`).
    runs: bool,
    /// In an `except ImportError` handler: the modules of its `try`; this one runs only
    /// if one of them is missing.
    fallback_of: Vec<String>,
}

impl Wanted {
    /// A module that must ship, wanted by no import.
    fn required(name: String) -> Wanted {
        Wanted {
            name,
            importer: None,
            optional: false,
            lazy: false,
            runs: true,
            fallback_of: Vec::new(),
        }
    }
}

fn within(name: &str, package: &str) -> bool {
    name == package || (name.starts_with(package) && name.as_bytes().get(package.len()) == Some(&b'.'))
}

fn parent(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(p, _)| p)
}

pub fn build(roots: &Roots, python: &mut impl BuildPython, request: &GraphRequest) -> Result<Graph, GraphError> {
    let mut graph = Graph::default();
    let owners = Owners::new(roots);
    let mut not_found: BTreeSet<String> = BTreeSet::new();
    // Missing imports in `except ImportError` handlers, decided once the graph is whole.
    let mut fallbacks: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut pending: Vec<Wanted> = request
        .roots
        .iter()
        .chain(&request.packages)
        .map(|name| Wanted::required(name.clone()))
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
                            optional: true,
                            importer: Some(wanted.name.clone()),
                            ..Wanted::required(companion.to_string())
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
                    if wanted.runs {
                        graph
                            .runs
                            .entry(importer.clone())
                            .or_default()
                            .insert(wanted.name.clone());
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
                        ..wanted
                    });
                }
                (false, Some(importer)) if !wanted.optional => {
                    // Only the app's own imports are worth reporting: the standard library
                    // imports platform modules it guards itself.
                    let kind = importer_kind(roots, &graph, importer);
                    if matches!(kind, Some(RootKind::Script | RootKind::App | RootKind::Runtime)) {
                        if wanted.fallback_of.is_empty() {
                            graph
                                .missing
                                .entry(missing_name(&graph, &wanted.name))
                                .or_default()
                                .insert(importer.clone());
                        } else {
                            fallbacks.push((wanted.name.clone(), importer.clone(), wanted.fallback_of));
                        }
                    }
                }
                _ => {}
            }
        }
        if request.whole_third_party {
            pending.extend(reach_distributions(roots, &owners, &mut graph, &to_scan));
        }
        // Whole packages: every submodule of a found package inside a requested one, and
        // of the app's packages and third-party ones no metadata lists.
        for name in to_scan.clone() {
            let module = &graph.modules[&name];
            let third_party = request.whole_third_party
                && module.found.package_dirs.first().is_some_and(|(root, _)| {
                    match roots.roots[*root].kind {
                        // The app's own packages ship whole too: frameworks import their
                        // modules by name (Django's apps, urls and views).
                        RootKind::Script => true,
                        RootKind::App => !owners.listed(&name, *root),
                        _ => false,
                    }
                });
            let requested = request.packages.iter().any(|p| within(&name, p));
            if module.is_package() && (requested || third_party) {
                for (root, dir) in module.found.package_dirs.clone() {
                    for sub in roots.submodules(root, &dir) {
                        if third_party && !requested && TEST_FOLDERS.contains(&sub.as_str()) {
                            continue;
                        }
                        pending.push(Wanted::required(format!("{name}.{sub}")));
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
            let kind = importer_kind(roots, &graph, name);
            let own = kind == Some(RootKind::Script);
            // The standard library's optional and in-function imports are its own business;
            // all the others may run when the app does.
            let not_stdlib = matches!(kind, Some(RootKind::Script | RootKind::App | RootKind::Runtime));
            for mut record in records {
                let runs = not_stdlib || !(record.guarded || record.deferred);
                record.guarded |= record.deferred && !own;
                pending.extend(
                    resolve(name, is_package, &record)
                        .into_iter()
                        .map(|w| Wanted { runs, ..w }),
                );
            }
        }
    }
    // A fallback import runs only when an import of its `try` fails.
    for (name, importer, tried) in fallbacks {
        if tried.iter().any(|t| !graph.modules.contains_key(t)) {
            let outer = missing_name(&graph, &name);
            graph.missing.entry(outer).or_default().insert(importer);
        }
    }
    keep_missing_of_required(&mut graph, request);
    if request.leave_out_unused_extensions {
        leave_out_unused_extensions(roots, &mut graph, request);
    }
    Ok(graph)
}

/// Optional imports of the standard library's that are worth their size when the module
/// runs: C accelerators whose pure-Python fallbacks are much slower (asyncio's tasks and
/// futures, queue's SimpleQueue, decimal), and ssl for http.client, which
/// defines HTTPSConnection (urllib's https) only if ssl imports. hashlib's _hashlib (and
/// OpenSSL's 6 MB) ships when the app uses what only it has (compile_worker.py).
const RUNS_WITH: &[(&str, &str)] = &[
    ("asyncio", "_asyncio"),
    ("queue", "_queue"),
    ("decimal", "_decimal"),
    ("http.client", "ssl"),
];

/// Drops the standard library's extension modules that no import that runs reaches, from
/// what runs: the script, `--include`s and `--package`s, the app's and third-party code
/// (shipped whole, imported by computed names), and the runtime modules they import.
fn leave_out_unused_extensions(roots: &Roots, graph: &mut Graph, request: &GraphRequest) {
    let on_demand = |name: &str| request.on_demand.iter().any(|p| within(name, p));
    let mut todo: Vec<String> = graph
        .modules
        .keys()
        .filter(|name| !on_demand(name))
        .filter(|name| {
            request.roots.contains(name)
                || request.packages.iter().any(|p| within(name, p))
                || matches!(
                    importer_kind(roots, graph, name),
                    Some(RootKind::Script | RootKind::App)
                )
        })
        .cloned()
        .collect();
    let mut reached: BTreeSet<String> = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        if let Some(p) = parent(&name) {
            todo.push(p.to_string());
        }
        todo.extend(graph.runs.get(&name).into_iter().flatten().cloned());
        todo.extend(
            RUNS_WITH
                .iter()
                .filter(|(module, _)| *module == name)
                .map(|(_, with)| with.to_string()),
        );
    }
    let unused: Vec<String> = graph
        .modules
        .iter()
        .filter(|(name, module)| {
            !reached.contains(*name)
                && matches!(module.found.file, ModuleFile::Extension { root, .. }
                    if roots.roots[root].kind == RootKind::StdlibExtensions)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in unused {
        graph.modules.remove(&name);
        graph.left_out.insert(name);
    }
}

/// Which distribution each module of the site folders belongs to, by root.
struct Owners {
    /// (root, module) -> distribution, for distributions that list their modules.
    listed: HashMap<(usize, String), usize>,
    /// (root, package) for every package above a listed module: a namespace package whose
    /// parts distributions list ships by those lists, not by its folder.
    listed_packages: HashSet<(usize, String)>,
    /// (root, top-level name) -> distribution, for those that give only top-level names.
    top_level: HashMap<(usize, String), usize>,
}

impl Owners {
    fn new(roots: &Roots) -> Owners {
        let mut owners = Owners {
            listed: HashMap::new(),
            listed_packages: HashSet::new(),
            top_level: HashMap::new(),
        };
        for (index, distribution) in roots.distributions.iter().enumerate() {
            for &root in &distribution.roots {
                match &distribution.modules {
                    Modules::Listed(names) => {
                        for name in names {
                            owners.listed.insert((root, name.clone()), index);
                            let mut at = parent(name);
                            while let Some(package) = at {
                                owners.listed_packages.insert((root, package.to_string()));
                                at = parent(package);
                            }
                        }
                    }
                    Modules::TopLevel(names) => {
                        for name in names {
                            owners.top_level.insert((root, name.clone()), index);
                        }
                    }
                }
            }
        }
        owners
    }

    /// The distribution of `name` found in `root`.
    fn owner(&self, name: &str, root: usize) -> Option<usize> {
        let top = name.split('.').next().unwrap_or(name);
        self.listed
            .get(&(root, name.to_string()))
            .or_else(|| self.top_level.get(&(root, top.to_string())))
            .copied()
    }

    /// Whether a distribution's list says what of package `name` ships.
    fn listed(&self, name: &str, root: usize) -> bool {
        let key = (root, name.to_string());
        self.listed.contains_key(&key) || self.listed_packages.contains(&key)
    }
}

/// The distributions newly found `modules` belong to: each one reached ships every module
/// it lists (but its tests), or its top-level names, whose folders ship whole.
fn reach_distributions(roots: &Roots, owners: &Owners, graph: &mut Graph, modules: &[String]) -> Vec<Wanted> {
    let mut out = Vec::new();
    for name in modules {
        let root = match &graph.modules[name].found.file {
            ModuleFile::Source { root, .. }
            | ModuleFile::Bytecode { root, .. }
            | ModuleFile::Extension { root, .. } => *root,
            ModuleFile::Builtin | ModuleFile::Namespace => continue,
        };
        let Some(index) = owners.owner(name, root) else {
            continue;
        };
        if !graph.distributions.insert(index) {
            continue;
        }
        let names = match &roots.distributions[index].modules {
            Modules::Listed(names) | Modules::TopLevel(names) => names,
        };
        out.extend(
            names
                .iter()
                .filter(|n| !is_test_module(n))
                .map(|n| Wanted::required(n.clone())),
        );
    }
    out
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
/// Newly found modules are added to `to_scan` (those with code are scanned).
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
            graph.modules.insert(
                name.to_string(),
                Module {
                    found,
                    importers: BTreeSet::new(),
                },
            );
            to_scan.push(name.to_string());
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

/// The absolute name of an import of `name` at `level` in `importer` (None beyond the
/// top-level package, where Python raises ImportError).
fn absolute(importer: &str, importer_is_package: bool, name: &str, level: u32) -> Option<String> {
    if level == 0 {
        return (!name.is_empty()).then(|| name.to_string());
    }
    let mut base: Vec<&str> = importer.split('.').collect();
    if !importer_is_package {
        base.pop();
    }
    for _ in 1..level {
        base.pop()?;
    }
    if base.is_empty() {
        return None;
    }
    let mut target = base.join(".");
    if !name.is_empty() {
        target.push('.');
        target.push_str(name);
    }
    Some(target)
}

/// The modules one import statement of `importer` asks for.
fn resolve(importer: &str, importer_is_package: bool, record: &ImportRecord) -> Vec<Wanted> {
    let Some(target) = absolute(importer, importer_is_package, &record.name, record.level) else {
        return Vec::new();
    };
    let fallback_of: Vec<String> = record
        .fallback_of
        .iter()
        .filter_map(|(name, level)| absolute(importer, importer_is_package, name, *level))
        .collect();
    let importer = Some(importer.to_string());
    let mut out = vec![Wanted {
        name: target.clone(),
        importer: importer.clone(),
        optional: record.guarded,
        lazy: record.guarded,
        runs: true,
        fallback_of: fallback_of.clone(),
    }];
    for item in record.fromlist.iter().filter(|i| i.as_str() != "*") {
        out.push(Wanted {
            name: format!("{target}.{item}"),
            importer: importer.clone(),
            optional: true,
            lazy: record.guarded,
            runs: true,
            fallback_of: fallback_of.clone(),
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
            fallback_of: Vec::new(),
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
            distributions: Vec::new(),
            folders: Default::default(),
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

    /// A site folder with distributions: numpy (a package, an extension module and tests),
    /// two halves of namespace package `ns`, cffi (a package and a top-level extension
    /// module), `legacy` described only by top_level.txt, and `loose` with no metadata.
    fn site_roots() -> Roots {
        use crate::discover::distributions::Distribution;
        let listed = |name: &str, modules: &[&str]| Distribution {
            name: name.into(),
            roots: vec![1],
            modules: Modules::Listed(modules.iter().map(|m| m.to_string()).collect()),
            loose_files: vec![],
            metadata: vec![],
        };
        let mut distributions = vec![
            listed(
                "numpy",
                &[
                    "numpy",
                    "numpy._core",
                    "numpy._core._exceptions",
                    "numpy._core._multiarray",
                ],
            ),
            listed("ns_a", &["ns.a"]),
            listed("ns_b", &["ns.b"]),
            listed("cffi", &["cffi", "_cffi_backend"]),
        ];
        distributions.push(Distribution {
            modules: Modules::TopLevel(["legacy".to_string()].into()),
            ..listed("legacy", &[])
        });
        Roots {
            roots: vec![
                Root {
                    kind: RootKind::Script,
                    files: listing(Path::new("script"), ["app.py".to_string()]),
                },
                Root {
                    kind: RootKind::App,
                    files: listing(
                        Path::new("site"),
                        [
                            "numpy/__init__.py",
                            "numpy/_core/__init__.py",
                            "numpy/_core/_exceptions.py",
                            "numpy/_core/_multiarray.cp3XY-win_amd64.pyd",
                            "numpy/_core/tests/test_api.py",
                            "ns/a/__init__.py",
                            "ns/b/__init__.py",
                            "cffi/__init__.py",
                            "_cffi_backend.cp3XY-win_amd64.pyd",
                            "legacy/__init__.py",
                            "legacy/sub.py",
                            "loose/__init__.py",
                            "loose/inner.py",
                        ]
                        .map(String::from),
                    ),
                },
                Root {
                    kind: RootKind::Stdlib,
                    files: listing(Path::new("python3XY.zip"), ["json/__init__.pyc".to_string()]),
                },
            ],
            builtins: ["sys".to_string()].into(),
            abi_tag: "cp3XY".into(),
            distributions,
            folders: Default::default(),
        }
    }

    #[test]
    fn a_distribution_the_graph_reaches_ships_every_module_it_lists() {
        let mut scanner = FakeScanner(
            [
                (
                    "app.py",
                    vec![
                        import("numpy", 0, &[]),
                        import("ns.a", 0, &[]),
                        import("cffi", 0, &[]),
                        import("legacy", 0, &[]),
                        import("loose", 0, &[]),
                    ],
                ),
                ("numpy/__init__.py", vec![import("_core._multiarray", 1, &[])]),
            ]
            .into(),
        );
        let request = GraphRequest {
            roots: vec!["app".into()],
            excludes: vec!["legacy.sub".into()],
            whole_third_party: true,
            ..Default::default()
        };
        let graph = build(&site_roots(), &mut scanner, &request).unwrap();
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "_cffi_backend",
                "app",
                "cffi",
                "legacy",
                "loose",
                "loose.inner",
                "ns",
                "ns.a",
                "numpy",
                "numpy._core",
                "numpy._core._exceptions",
                "numpy._core._multiarray",
            ],
            "ns.b is another distribution's; tests and --exclude stay out"
        );
        assert_eq!(graph.distributions, [0, 1, 3, 4].into());
        assert!(graph.missing.is_empty(), "{:?}", graph.missing);
    }

    #[test]
    fn a_fallback_import_is_missing_only_when_what_it_replaces_is() {
        let tried = |name: &str| ImportRecord {
            guarded: true,
            ..import(name, 0, &[])
        };
        let fallback = |name: &str, of: &str| ImportRecord {
            fallback_of: vec![(of.to_string(), 0)],
            ..import(name, 0, &[])
        };
        let mut scanner = FakeScanner(
            [(
                "app.py",
                vec![
                    tried("json"),
                    fallback("simplejson", "json"),
                    tried("fast_parser"),
                    fallback("slow_parser", "fast_parser"),
                ],
            )]
            .into(),
        );
        let request = GraphRequest {
            roots: vec!["app".into()],
            ..Default::default()
        };
        let graph = build(&site_roots(), &mut scanner, &request).unwrap();
        assert_eq!(
            graph.missing,
            [("slow_parser".to_string(), ["app".to_string()].into())].into()
        );
    }

    #[test]
    fn extension_modules_only_the_stdlibs_optional_or_lazy_imports_name_are_left_out() {
        let deferred = |name: &str| ImportRecord {
            deferred: true,
            ..import(name, 0, &[])
        };
        let guarded = |name: &str| ImportRecord {
            guarded: true,
            ..import(name, 0, &[])
        };
        let mut scanner = FakeScanner(
            [
                // The script's own import in a function counts: it runs when called.
                (
                    "app.py",
                    vec![
                        import("hashlib", 0, &[]),
                        import("re", 0, &[]),
                        deferred("ssl"),
                        import("queue", 0, &[]),
                    ],
                ),
                ("hashlib.pyc", vec![guarded("_hashlib")]),
                // An accelerator ships with its module (RUNS_WITH).
                ("queue.pyc", vec![guarded("_queue")]),
                ("re.pyc", vec![deferred("unicodedata")]),
                ("ssl.pyc", vec![import("_ssl", 0, &[])]),
                // A runtime module the app does not import: its imports do not run.
                ("isapi/asgi.py", vec![import("_asyncio", 0, &[])]),
            ]
            .into(),
        );
        let mut roots = app_roots();
        roots.roots.insert(
            0,
            Root {
                kind: RootKind::Runtime,
                files: listing(
                    Path::new("resources"),
                    ["isapi/__init__.py", "isapi/asgi.py"].map(String::from),
                ),
            },
        );
        roots.roots.push(Root {
            kind: RootKind::Stdlib,
            files: listing(
                Path::new("zip"),
                ["hashlib.pyc", "queue.pyc", "re.pyc", "ssl.pyc"].map(String::from),
            ),
        });
        roots.roots.push(Root {
            kind: RootKind::StdlibExtensions,
            files: listing(
                Path::new("dlls"),
                [
                    "_asyncio.pyd",
                    "_hashlib.pyd",
                    "_queue.pyd",
                    "_ssl.pyd",
                    "unicodedata.pyd",
                ]
                .map(String::from),
            ),
        });
        let request = GraphRequest {
            roots: vec!["app".into(), "isapi".into(), "isapi.asgi".into()],
            on_demand: vec!["isapi".into()],
            leave_out_unused_extensions: true,
            ..Default::default()
        };
        let graph = build(&roots, &mut scanner, &request).unwrap();
        let left_out: Vec<&str> = graph.left_out.iter().map(String::as_str).collect();
        assert_eq!(left_out, ["_asyncio", "_hashlib", "unicodedata"]);
        let names: Vec<&str> = graph.modules.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "_queue",
                "_ssl",
                "app",
                "hashlib",
                "isapi",
                "isapi.asgi",
                "queue",
                "re",
                "ssl"
            ]
        );

        // Asked for by name, one ships.
        let request = GraphRequest {
            roots: vec!["app".into(), "unicodedata".into()],
            leave_out_unused_extensions: true,
            ..Default::default()
        };
        let graph = build(&roots, &mut scanner, &request).unwrap();
        assert!(graph.modules.contains_key("unicodedata"));
        assert!(!graph.left_out.contains("unicodedata"));
    }

    #[test]
    fn whole_packages_and_excludes() {
        let mut scanner = FakeScanner([("app.py", vec![import("pkg", 0, &[])])].into());
        let request = GraphRequest {
            roots: vec!["app".into()],
            packages: vec!["pkg".into()],
            excludes: vec!["pkg.sub".into()],
            ..Default::default()
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
