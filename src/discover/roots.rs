//! Where modules are looked for, in the order the frozen app's `sys.path` will have them:
//! isapi-freeze's own runtime files first (so our `isapi` always wins over pywin32's), the
//! script's folder and `--path` folders (our stand-ins for other projects' modules placed
//! among them, discover/mod.rs), then the target's standard library (its zip or Lib\
//! folder) and its extension modules. Files are classified for the Windows target
//! whatever this machine is: `NAME.cp3XY-win_amd64.pyd` and `NAME.pyd` are extension modules.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

/// What a root holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// isapi-freeze's own Python (resources/): the boot module, `isapi`, and stand-ins for
    /// `isapi_wsgi` and `win32traceutil`.
    Runtime,
    /// The script's folder: the app's own code.
    Script,
    /// `--path` folders (and site-packages): the app's third-party packages.
    App,
    /// The target's standard library.
    Stdlib,
    /// The target's own extension modules (the embeddable root, or DLLs\).
    StdlibExtensions,
}

/// A root's files: a folder on disk, or a listing of names (a zip, or embedded resources).
#[derive(Debug)]
pub enum RootFiles {
    Dir(PathBuf),
    /// `names` are `/`-separated paths inside `origin` (a zip file, or "resources").
    Listing {
        origin: PathBuf,
        names: BTreeSet<String>,
    },
}

#[derive(Debug)]
pub struct Root {
    pub kind: RootKind,
    pub files: RootFiles,
}

/// What a found module is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleFile {
    /// Python source (`rel` is `pkg/mod.py` or `pkg/__init__.py`) in root `root`.
    Source { root: usize, rel: String },
    /// Compiled bytecode with no source (the embeddable standard library).
    Bytecode { root: usize, rel: String },
    /// An extension module: a .pyd file, placed as a file in the output.
    Extension { root: usize, rel: String },
    /// Compiled into python3XY.dll.
    Builtin,
    /// A folder without `__init__` (PEP 420); it may span roots.
    Namespace,
}

/// A module found in the roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub file: ModuleFile,
    /// For a package: the (root, folder) pairs its submodules are looked for in.
    pub package_dirs: Vec<(usize, String)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RootError {
    #[error("two files claim module `{module}`: {first} and {second}; remove or rename one")]
    Conflict {
        module: String,
        first: String,
        second: String,
    },
    #[error(
        "{file} is built for {built}, but the target is {target}: install the package for the target \
             (pip install --platform win_amd64 --python-version {version} --only-binary=:all: --target DIR ...)"
    )]
    WrongTarget {
        file: String,
        built: String,
        target: String,
        version: String,
    },
}

pub struct Roots {
    pub roots: Vec<Root>,
    /// The target's built-in modules, read from its python3XY.dll.
    pub builtins: BTreeSet<String>,
    /// e.g. `cp312`.
    pub abi_tag: String,
    /// The distributions installed in the site folders, whose modules ship together.
    pub distributions: Vec<super::distributions::Distribution>,
    /// The folders of `Dir` roots looked in so far.
    pub folders: Folders,
}

/// The entries of folders, each read once. A module's lookup asks each root for half a
/// dozen names and, when none is there, reads the folder for extension modules built for
/// another Python: asked of the file system each time, that was ~30,000 stat calls and
/// ~7,000 folder reads for Django's ~600 modules, most of an unchanged rebuild.
#[derive(Debug, Default)]
pub struct Folders(Mutex<HashMap<PathBuf, Arc<Folder>>>);

/// A folder's files and subfolders by name (symbolic links as what they point to).
#[derive(Debug, Default)]
pub struct Folder {
    files: HashSet<String>,
    dirs: HashSet<String>,
}

impl Folders {
    fn get(&self, dir: &Path) -> Arc<Folder> {
        let mut read = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(folder) = read.get(dir) {
            return folder.clone();
        }
        let mut folder = Folder::default();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let kind = match entry.file_type() {
                Ok(kind) if kind.is_symlink() => std::fs::metadata(entry.path()).map(|m| m.file_type()).ok(),
                kind => kind.ok(),
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            match kind {
                Some(kind) if kind.is_dir() => folder.dirs.insert(name),
                Some(kind) if kind.is_file() => folder.files.insert(name),
                _ => false,
            };
        }
        let folder = Arc::new(folder);
        read.insert(dir.to_path_buf(), folder.clone());
        folder
    }

    /// The folder of `rel` (a `/`-separated path under `base`) and its last name.
    fn entry_of<'r>(&self, base: &Path, rel: &'r str) -> (Arc<Folder>, &'r str) {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        (self.get(&base.join(dir)), name)
    }
}

impl Roots {
    /// A readable location of `rel` in root `root`, for messages.
    pub fn display(&self, root: usize, rel: &str) -> String {
        match &self.roots[root].files {
            RootFiles::Dir(dir) => dir.join(rel).display().to_string(),
            RootFiles::Listing { origin, .. } => format!("{}/{rel}", origin.display()),
        }
    }

    /// The file of `rel` in root `root` on disk, when the root is a folder.
    pub fn path(&self, root: usize, rel: &str) -> Option<PathBuf> {
        match &self.roots[root].files {
            RootFiles::Dir(dir) => Some(dir.join(rel)),
            RootFiles::Listing { .. } => None,
        }
    }

    /// Whether root `root` has the file `rel`.
    pub fn has_file(&self, root: usize, rel: &str) -> bool {
        self.exists(root, rel)
    }

    fn exists(&self, root: usize, rel: &str) -> bool {
        match &self.roots[root].files {
            RootFiles::Dir(dir) => {
                let (folder, name) = self.folders.entry_of(dir, rel);
                folder.files.contains(name)
            }
            RootFiles::Listing { names, .. } => names.contains(rel),
        }
    }

    fn is_dir(&self, root: usize, rel: &str) -> bool {
        match &self.roots[root].files {
            RootFiles::Dir(dir) => {
                let (folder, name) = self.folders.entry_of(dir, rel);
                folder.dirs.contains(name)
            }
            RootFiles::Listing { names, .. } => {
                let prefix = format!("{rel}/");
                names
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|n| n.starts_with(&prefix))
            }
        }
    }

    /// Finds `fullname` (whose parent package, if any, is `parent`).
    pub fn find(&self, fullname: &str, parent: Option<&Found>) -> Result<Option<Found>, RootError> {
        let leaf = fullname.rsplit('.').next().unwrap_or(fullname);
        let places: Vec<(usize, String)> = match parent {
            Some(p) => p.package_dirs.clone(),
            None => {
                if self.builtins.contains(fullname) {
                    return Ok(Some(Found {
                        file: ModuleFile::Builtin,
                        package_dirs: vec![],
                    }));
                }
                (0..self.roots.len()).map(|r| (r, String::new())).collect()
            }
        };
        let mut namespace_dirs = Vec::new();
        for (root, dir) in places {
            let join = |name: &str| {
                if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                }
            };
            let kind = self.roots[root].kind;
            let mut candidates: Vec<(ModuleFile, Vec<(usize, String)>)> = Vec::new();
            if kind != RootKind::StdlibExtensions {
                for ext in ["py", "pyc"] {
                    let init = join(&format!("{leaf}/__init__.{ext}"));
                    if self.exists(root, &init) {
                        candidates.push((self.code_file(root, init, ext), vec![(root, join(leaf))]));
                        break;
                    }
                }
                for ext in ["py", "pyc"] {
                    let module = join(&format!("{leaf}.{ext}"));
                    if self.exists(root, &module) {
                        candidates.push((self.code_file(root, module, ext), vec![]));
                        break;
                    }
                }
            }
            for name in [format!("{leaf}.{}-win_amd64.pyd", self.abi_tag), format!("{leaf}.pyd")] {
                let rel = join(&name);
                if self.exists(root, &rel) {
                    candidates.push((ModuleFile::Extension { root, rel }, vec![]));
                    break;
                }
            }
            if candidates.is_empty() {
                self.check_foreign_extension(root, &dir, leaf)?;
            }
            match candidates.len() {
                0 => {
                    if kind != RootKind::StdlibExtensions && self.is_dir(root, &join(leaf)) {
                        namespace_dirs.push((root, join(leaf)));
                    }
                }
                1 => {
                    let (file, package_dirs) = candidates.remove(0);
                    return Ok(Some(Found { file, package_dirs }));
                }
                _ => {
                    let describe = |f: &ModuleFile| match f {
                        ModuleFile::Source { root, rel }
                        | ModuleFile::Bytecode { root, rel }
                        | ModuleFile::Extension { root, rel } => self.display(*root, rel),
                        _ => String::new(),
                    };
                    return Err(RootError::Conflict {
                        module: fullname.to_string(),
                        first: describe(&candidates[0].0),
                        second: describe(&candidates[1].0),
                    });
                }
            }
        }
        if namespace_dirs.is_empty() {
            Ok(None)
        } else {
            Ok(Some(Found {
                file: ModuleFile::Namespace,
                package_dirs: namespace_dirs,
            }))
        }
    }

    /// Refuses `leaf.TAG.pyd` built for another Python or platform, where the module would
    /// otherwise be reported missing without saying why.
    fn check_foreign_extension(&self, root: usize, dir: &str, leaf: &str) -> Result<(), RootError> {
        let prefix = if dir.is_empty() {
            format!("{leaf}.")
        } else {
            format!("{dir}/{leaf}.")
        };
        let names: Vec<String> = match &self.roots[root].files {
            RootFiles::Dir(base) => {
                let folder = self.folders.get(&base.join(dir));
                folder
                    .files
                    .iter()
                    .chain(&folder.dirs)
                    .filter(|name| name.starts_with(leaf))
                    .map(|name| {
                        if dir.is_empty() {
                            name.clone()
                        } else {
                            format!("{dir}/{name}")
                        }
                    })
                    .collect()
            }
            RootFiles::Listing { names, .. } => names
                .range(prefix.clone()..)
                .take_while(|n| n.starts_with(&prefix))
                .cloned()
                .collect(),
        };
        for name in names {
            let Some(tag) = name.strip_prefix(&prefix).and_then(|t| t.strip_suffix(".pyd")) else {
                continue;
            };
            if tag.contains('.') || tag.is_empty() {
                continue;
            }
            let (python, platform) = tag.split_once('-').unwrap_or((tag, ""));
            if python != self.abi_tag || platform != "win_amd64" {
                let describe = |python: &str, platform: &str| {
                    let version = python
                        .strip_prefix("cp3")
                        .map(|m| format!("CPython 3.{m}"))
                        .unwrap_or(python.to_string());
                    format!(
                        "{version} on {}",
                        if platform.is_empty() {
                            "an unknown platform"
                        } else {
                            platform
                        }
                    )
                };
                return Err(RootError::WrongTarget {
                    file: self.display(root, &name),
                    built: describe(python, platform),
                    target: describe(&self.abi_tag, "win_amd64"),
                    version: self
                        .abi_tag
                        .strip_prefix("cp")
                        .map(|v| format!("{}.{}", &v[..1], &v[1..]))
                        .unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    fn code_file(&self, root: usize, rel: String, ext: &str) -> ModuleFile {
        if ext == "py" {
            ModuleFile::Source { root, rel }
        } else {
            ModuleFile::Bytecode { root, rel }
        }
    }

    /// Every file under `dir` of `root` (relative to the root), sorted; `dir` "" is the root.
    pub fn files_under(&self, root: usize, dir: &str) -> Vec<String> {
        match &self.roots[root].files {
            RootFiles::Dir(base) => files_walked(base, dir, |_| true),
            RootFiles::Listing { names, .. } => {
                let prefix = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                names.iter().filter(|n| n.starts_with(&prefix)).cloned().collect()
            }
        }
    }

    /// The files of the package folder `dir` that are not inside one of its subpackages
    /// (a folder with its own `__init__.py` or `__init__.pyc`), sorted: the candidates for
    /// the package's data. A folder tree is walked once, skipping subpackages, rather than
    /// whole for each package of a large distribution (Django has hundreds).
    pub fn files_outside_subpackages(&self, root: usize, dir: &str) -> Vec<String> {
        let RootFiles::Dir(base) = &self.roots[root].files else {
            let prefix = format!("{dir}/");
            return self
                .files_under(root, dir)
                .into_iter()
                .filter(|rel| {
                    let inner = &rel[prefix.len()..];
                    let mut folder = dir.to_string();
                    let parts: Vec<&str> = inner.split('/').collect();
                    parts[..parts.len() - 1].iter().all(|part| {
                        folder = format!("{folder}/{part}");
                        !self.exists(root, &format!("{folder}/__init__.py"))
                            && !self.exists(root, &format!("{folder}/__init__.pyc"))
                    })
                })
                .collect();
        };
        files_walked(base, dir, |e| {
            e.depth() == 0
                || !e.file_type().is_dir()
                || !(e.path().join("__init__.py").is_file() || e.path().join("__init__.pyc").is_file())
        })
    }

    /// The submodule names directly inside a package folder (for `--package`).
    pub fn submodules(&self, root: usize, dir: &str) -> BTreeSet<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = BTreeSet::new();
        for rel in self.files_under(root, dir) {
            let rest = &rel[prefix.len()..];
            let mut parts = rest.split('/');
            let first = parts.next().unwrap_or_default();
            if parts.next().is_some() {
                // A folder: a subpackage if it has an __init__.
                if (rest.ends_with("/__init__.py") || rest.ends_with("/__init__.pyc")) && rest.matches('/').count() == 1
                {
                    out.insert(first.to_string());
                }
                continue;
            }
            if let Some(stem) = module_stem(first, &self.abi_tag) {
                if stem != "__init__" {
                    out.insert(stem.to_string());
                }
            }
        }
        out
    }
}

/// The module name a file in a package folder defines, for the Windows target.
pub fn module_stem<'a>(file: &'a str, abi_tag: &str) -> Option<&'a str> {
    if let Some(stem) = file.strip_suffix(".py").or_else(|| file.strip_suffix(".pyc")) {
        return Some(stem);
    }
    let stem = file.strip_suffix(".pyd")?;
    let tagged = format!(".{abi_tag}-win_amd64");
    Some(stem.strip_suffix(tagged.as_str()).unwrap_or(stem))
}

/// Whether a file is part of a package's code rather than its data.
pub fn is_code_file(rel: &str) -> bool {
    rel.ends_with(".py")
        || rel.ends_with(".pyc")
        || rel.ends_with(".pyd")
        || rel.ends_with(".so")
        || rel.contains("/__pycache__/")
        || rel.starts_with("__pycache__/")
}

/// A listing root for embedded files (isapi-freeze's resources).
pub fn listing(origin: &Path, names: impl IntoIterator<Item = String>) -> RootFiles {
    RootFiles::Listing {
        origin: origin.to_path_buf(),
        names: names.into_iter().collect(),
    }
}

/// The files under `base/dir`, relative to `base` with `/` separators, sorted; a folder
/// `enter` refuses is not walked into.
fn files_walked(base: &Path, dir: &str, enter: impl FnMut(&walkdir::DirEntry) -> bool) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(base.join(dir))
        .into_iter()
        .filter_entry(enter)
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            e.path()
                .strip_prefix(base)
                .ok()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(names: &[&str]) -> Roots {
        Roots {
            roots: vec![
                Root {
                    kind: RootKind::Runtime,
                    files: listing(Path::new("resources"), ["isapi/__init__.py".to_string()]),
                },
                Root {
                    kind: RootKind::App,
                    files: listing(Path::new("app"), names.iter().map(|s| s.to_string())),
                },
                Root {
                    kind: RootKind::Stdlib,
                    files: listing(
                        Path::new("python399.zip"),
                        ["json/__init__.pyc", "os.pyc"].map(String::from),
                    ),
                },
            ],
            builtins: ["sys".to_string()].into(),
            abi_tag: "cp399".into(),
            distributions: Vec::new(),
            folders: Default::default(),
        }
    }

    #[test]
    fn modules_are_found_in_root_order_and_classified() {
        let r = roots(&[
            "isapi/__init__.py",
            "mod.py",
            "pkg/__init__.py",
            "pkg/fast.cp399-win_amd64.pyd",
            "ns/x.py",
        ]);
        let isapi = r.find("isapi", None).unwrap().unwrap();
        assert_eq!(
            isapi.file,
            ModuleFile::Source {
                root: 0,
                rel: "isapi/__init__.py".into()
            },
            "ours wins"
        );
        assert_eq!(
            r.find("mod", None).unwrap().unwrap().file,
            ModuleFile::Source {
                root: 1,
                rel: "mod.py".into()
            }
        );
        let pkg = r.find("pkg", None).unwrap().unwrap();
        assert_eq!(pkg.package_dirs, vec![(1, "pkg".to_string())]);
        assert_eq!(
            r.find("pkg.fast", Some(&pkg)).unwrap().unwrap().file,
            ModuleFile::Extension {
                root: 1,
                rel: "pkg/fast.cp399-win_amd64.pyd".into()
            }
        );
        assert_eq!(
            r.find("json", None).unwrap().unwrap().file,
            ModuleFile::Bytecode {
                root: 2,
                rel: "json/__init__.pyc".into()
            }
        );
        assert_eq!(r.find("sys", None).unwrap().unwrap().file, ModuleFile::Builtin);
        assert_eq!(r.find("ns", None).unwrap().unwrap().file, ModuleFile::Namespace);
        assert_eq!(r.find("nope", None).unwrap(), None);
    }

    #[test]
    #[cfg(unix)]
    fn a_folder_on_disk_is_read_once_and_answers_as_the_file_system_does() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (rel, text) in [
            ("mod.py", ""),
            ("pkg/__init__.py", ""),
            ("ns/x.py", ""),
            ("old.cp39-win_amd64.pyd", ""),
        ] {
            std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
            std::fs::write(dir.join(rel), text).unwrap();
        }
        std::os::unix::fs::symlink(dir.join("mod.py"), dir.join("linked.py")).unwrap();
        std::os::unix::fs::symlink(dir.join("pkg"), dir.join("linkedpkg")).unwrap();
        let r = Roots {
            roots: vec![Root {
                kind: RootKind::App,
                files: RootFiles::Dir(dir.to_path_buf()),
            }],
            builtins: BTreeSet::new(),
            abi_tag: "cp311".into(),
            distributions: Vec::new(),
            folders: Default::default(),
        };
        let source = |rel: &str| ModuleFile::Source {
            root: 0,
            rel: rel.into(),
        };
        assert_eq!(r.find("mod", None).unwrap().unwrap().file, source("mod.py"));
        assert_eq!(r.find("linked", None).unwrap().unwrap().file, source("linked.py"));
        let pkg = r.find("linkedpkg", None).unwrap().unwrap();
        assert_eq!(pkg.file, source("linkedpkg/__init__.py"));
        assert_eq!(r.find("ns", None).unwrap().unwrap().file, ModuleFile::Namespace);
        assert_eq!(r.find("nope", None).unwrap(), None);
        assert_eq!(
            r.find("old", None).unwrap_err(),
            RootError::WrongTarget {
                file: dir.join("old.cp39-win_amd64.pyd").display().to_string(),
                built: "CPython 3.9 on win_amd64".into(),
                target: "CPython 3.11 on win_amd64".into(),
                version: "3.11".into(),
            }
        );
        // Read once: a file added since is not seen by this freeze's lookups.
        std::fs::write(dir.join("later.py"), "").unwrap();
        assert_eq!(r.find("later", None).unwrap(), None);
    }

    #[test]
    fn two_files_for_one_module_are_an_error() {
        let r = roots(&["dup.py", "dup/__init__.py"]);
        assert_eq!(
            r.find("dup", None).unwrap_err().to_string(),
            "two files claim module `dup`: app/dup/__init__.py and app/dup.py; remove or rename one"
        );
    }

    #[test]
    fn extension_modules_for_another_target_are_refused() {
        let r = roots(&[
            "lin.cpython-399-x86_64-linux-gnu.so",
            "old.cp310-win_amd64.pyd",
            "x86.cp399-win32.pyd",
        ]);
        assert_eq!(r.find("lin", None).unwrap(), None, "not a Windows file at all");
        assert_eq!(
            r.find("old", None).unwrap_err().to_string(),
            "app/old.cp310-win_amd64.pyd is built for CPython 3.10 on win_amd64, but the target is CPython 3.99 on \
             win_amd64: install the package for the target (pip install --platform win_amd64 --python-version 3.99 \
             --only-binary=:all: --target DIR ...)"
        );
        assert!(r
            .find("x86", None)
            .unwrap_err()
            .to_string()
            .contains("built for CPython 3.99 on win32"));
    }

    #[test]
    fn submodules_of_a_package_are_listed() {
        let r = roots(&[
            "p/__init__.py",
            "p/a.py",
            "p/b.cp399-win_amd64.pyd",
            "p/sub/__init__.py",
            "p/sub/deep.py",
            "p/data.txt",
        ]);
        let names: Vec<String> = r.submodules(1, "p").into_iter().collect();
        assert_eq!(names, ["a", "b", "sub"]);
    }
}
