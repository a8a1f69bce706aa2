//! The installed distributions of a site folder, read from their metadata: which modules
//! each installs (`*.dist-info/RECORD`, else the top-level names of `top_level.txt`), and
//! which of its other files a server needs. A distribution is the unit third-party code
//! ships in: C code and computed names import modules no scan sees, from any of them.

use std::collections::BTreeSet;
use std::path::Path;

use super::roots::{is_code_file, module_stem};

/// Distributions that ship only what the import graph reaches. pywin32 installs some 300
/// independent modules in three folders of its `.pth` file, and Pythonwin (an MFC GUI); a
/// script imports the few it uses by name, each of which stands alone.
const BY_IMPORT_ONLY: &[&str] = &["pywin32"];

/// Subpackages and modules that are a distribution's tests, not its code.
pub const TEST_FOLDERS: &[&str] = &["tests", "test", "testing", "conftest"];

/// Files of a metadata folder that describe the install on this machine, not the
/// distribution: RECORD's hashes are of files the output does not have.
const LOCAL_METADATA: &[&str] = &["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"];

/// What a distribution's metadata says it installs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modules {
    /// Every module, by dotted name (from RECORD).
    Listed(BTreeSet<String>),
    /// Only top-level names (from top_level.txt): each ships as its whole folder.
    TopLevel(BTreeSet<String>),
}

/// One installed distribution of a site folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distribution {
    /// Its name as its metadata folder spells it (`typing_extensions`).
    pub name: String,
    /// The roots (the site folder, then the folders its `.pth` files add) its modules are
    /// found in, as indexes into the freeze's roots.
    pub roots: Vec<usize>,
    pub modules: Modules,
    /// Files outside its packages that it installs for its code to find: delvewheel's
    /// `numpy.libs/` DLLs. Paths relative to the site folder.
    pub loose_files: Vec<String>,
    /// Its metadata files that `importlib.metadata` reads (METADATA, entry points,
    /// licences), relative to the site folder.
    pub metadata: Vec<String>,
}

/// The paths a RECORD lists: the first field of each CSV line (quoted when it holds a
/// comma or a quote, as the csv module writes it).
pub fn record_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let path = match line.strip_prefix('"') {
            Some(rest) => {
                let mut path = String::new();
                let mut chars = rest.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            path.push('"');
                            continue;
                        }
                        break;
                    }
                    path.push(c);
                }
                path
            }
            None => line.split(',').next().unwrap_or_default().to_string(),
        };
        out.push(path.replace('\\', "/"));
    }
    out
}

/// The dotted module name of `rel` (a `/`-separated path relative to an import root), if
/// it is a module Windows can import: source, bytecode beside no source, or an extension
/// module for the target (`abi_tag`, e.g. `cp312`).
pub fn module_name(rel: &str, abi_tag: &str) -> Option<String> {
    let (folder, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    if rel.ends_with(".pyd") && !is_target_extension(file, abi_tag) {
        return None;
    }
    let stem = module_stem(file, abi_tag)?;
    let mut parts: Vec<&str> = if folder.is_empty() {
        Vec::new()
    } else {
        folder.split('/').collect()
    };
    if stem != "__init__" {
        parts.push(stem);
    }
    let valid = |p: &&str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
    };
    (!parts.is_empty() && parts.iter().all(valid)).then(|| parts.join("."))
}

/// `NAME.pyd`, or `NAME.TAG.pyd` with the target's own tag.
fn is_target_extension(file: &str, abi_tag: &str) -> bool {
    let stem = file.trim_end_matches(".pyd");
    match stem.split_once('.') {
        None => true,
        Some((_, tag)) => tag == format!("{abi_tag}-win_amd64"),
    }
}

/// Whether a module is part of a distribution's tests.
pub fn is_test_module(dotted: &str) -> bool {
    dotted.split('.').any(|part| TEST_FOLDERS.contains(&part))
}

/// Files nothing reads at run time: type stubs and markers, Cython declarations, C sources
/// and headers, import libraries.
pub fn is_build_leftover(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    name == "py.typed"
        || [".pyi", ".pxd", ".pyx", ".c", ".h", ".hpp", ".cpp", ".lib", ".a"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// The distribution whose metadata folder is `metadata_dir` (named `NAME-VERSION.dist-info`
/// or `.egg-info`), with the listed files: RECORD's paths when it has one, else None and
/// its top_level.txt names. `pth_folders` are the folders the site's `.pth` files add,
/// relative to the site: a module under one is named from there.
pub fn from_listing(
    metadata_dir: &str,
    record: Option<&str>,
    top_level: Option<&str>,
    pth_folders: &[String],
    abi_tag: &str,
) -> Option<(String, Modules, Vec<String>)> {
    let name = metadata_dir.split_once('-').map(|(n, _)| n).unwrap_or(metadata_dir);
    let name = name.trim_end_matches(".dist-info").trim_end_matches(".egg-info");
    if BY_IMPORT_ONLY.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        return None;
    }
    let Some(record) = record else {
        let names: BTreeSet<String> = top_level?
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.contains(['/', '\\']) && !TEST_FOLDERS.contains(n))
            .map(String::from)
            .collect();
        return Some((name.to_string(), Modules::TopLevel(names), Vec::new()));
    };
    let mut modules = BTreeSet::new();
    let mut files = Vec::new();
    for path in record_paths(record) {
        if path.split('/').any(|p| p == ".." || p == "__pycache__") || path.starts_with('/') {
            continue;
        }
        // Named from the deepest import root that holds it (a .pth folder, or the site).
        let base = pth_folders
            .iter()
            .filter(|f| path.starts_with(&format!("{f}/")))
            .max_by_key(|f| f.len());
        let rel = base.map_or(path.as_str(), |b| &path[b.len() + 1..]);
        match module_name(rel, abi_tag) {
            Some(module) if !is_test_module(&module) => {
                modules.insert(module);
            }
            Some(_) => {}
            None => files.push(path),
        }
    }
    Some((name.to_string(), Modules::Listed(modules), files))
}

/// Splits a distribution's other files into the ones its code finds beside its packages
/// (`loose_files`) and its metadata. A file inside a folder that holds modules is package
/// data, which ships with its package.
pub fn split_files(metadata_dir: &str, files: Vec<String>, modules: &Modules) -> (Vec<String>, Vec<String>) {
    let Modules::Listed(names) = modules else {
        return (Vec::new(), Vec::new());
    };
    let top_level: BTreeSet<&str> = names.iter().map(|n| n.split('.').next().unwrap_or(n)).collect();
    let mut loose = Vec::new();
    let mut metadata = Vec::new();
    for path in files {
        if is_build_leftover(&path) {
            continue;
        }
        let (first, rest) = path.split_once('/').unwrap_or(("", &path));
        if first == metadata_dir {
            if !LOCAL_METADATA.contains(&rest) {
                metadata.push(path);
            }
            continue;
        }
        // At the site's top level: .pth files, scripts and the like are no module's; code
        // that is no module of the target's (another Python's, a hook) is not data either.
        if first.is_empty() || top_level.contains(first) || path.ends_with(".pth") || is_code_file(&path) {
            continue;
        }
        loose.push(path);
    }
    (loose, metadata)
}

/// Every distribution installed in `site`, sorted by metadata folder. `roots` are the
/// indexes of the site's root and of its `.pth` folders' roots, `pth_folders` the latter's
/// paths relative to the site.
pub fn read_site(site: &Path, roots: Vec<usize>, pth_folders: &[String], abi_tag: &str) -> Vec<Distribution> {
    let mut folders: Vec<String> = std::fs::read_dir(site)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".dist-info") || n.ends_with(".egg-info"))
                .collect()
        })
        .unwrap_or_default();
    folders.sort();
    let mut out = Vec::new();
    for folder in folders {
        let read = |file: &str| std::fs::read_to_string(site.join(&folder).join(file)).ok();
        let (record, top_level) = (read("RECORD"), read("top_level.txt"));
        let Some((name, modules, files)) =
            from_listing(&folder, record.as_deref(), top_level.as_deref(), pth_folders, abi_tag)
        else {
            continue;
        };
        let (loose_files, metadata) = split_files(&folder, files, &modules);
        out.push(Distribution {
            name,
            roots: roots.clone(),
            modules,
            loose_files,
            metadata,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_are_the_first_field_quoted_or_not() {
        let record = "a/b.py,sha256=x,12\r\n\"odd,name.py\",sha256=y,3\n\"q\"\"uote.txt\",,\n\nplain,,\n";
        assert_eq!(record_paths(record), ["a/b.py", "odd,name.py", "q\"uote.txt", "plain"]);
    }

    #[test]
    fn module_names_follow_the_windows_target() {
        let name = |rel| module_name(rel, "cp312");
        assert_eq!(
            name("numpy/_core/_exceptions.py").as_deref(),
            Some("numpy._core._exceptions")
        );
        assert_eq!(name("anyio/_backends/__init__.py").as_deref(), Some("anyio._backends"));
        assert_eq!(name("typing_extensions.py").as_deref(), Some("typing_extensions"));
        assert_eq!(
            name("_cffi_backend.cp312-win_amd64.pyd").as_deref(),
            Some("_cffi_backend")
        );
        assert_eq!(name("win32api.pyd").as_deref(), Some("win32api"));
        assert_eq!(name("old.cp311-win_amd64.pyd"), None, "another Python's");
        assert_eq!(name("numpy.libs/x.dll"), None);
        assert_eq!(name("numpy/_pyinstaller/hook-numpy.py"), None, "no identifier");
        assert_eq!(name("pkg/data/table.json"), None);
        assert_eq!(name("pkg/stub.pyi"), None);
    }

    #[test]
    fn a_record_gives_every_module_but_tests_and_sorts_the_other_files() {
        let record = "\
numpy/__init__.py,sha256=a,1
numpy/__init__.pyi,sha256=a,1
numpy/_core/__init__.py,,
numpy/_core/_exceptions.py,,
numpy/_core/_multiarray_umath.cp312-win_amd64.pyd,,
numpy/_core/include/numpy/ndarraytypes.h,,
numpy/_core/tests/test_api.py,,
numpy/_core/tests/data/umath-validation-set-README.txt,,
numpy/testing/__init__.py,,
numpy/__pycache__/__init__.cpython-312.pyc,,
numpy/py.typed,,
numpy.libs/libscipy_openblas64_-63c8.dll,sha256=b,2
numpy.libs/npymath.lib,,
numpy.libs/old.cp311-win_amd64.pyd,,
numpy-2.4.6.dist-info/METADATA,,
numpy-2.4.6.dist-info/RECORD,,
numpy-2.4.6.dist-info/INSTALLER,,
numpy-2.4.6.dist-info/licenses/LICENSE.txt,,
../../bin/f2py,,
numpy-2.4.6-hook.pth,,
";
        let (name, modules, files) = from_listing("numpy-2.4.6.dist-info", Some(record), None, &[], "cp312").unwrap();
        assert_eq!(name, "numpy");
        assert_eq!(
            modules,
            Modules::Listed(
                [
                    "numpy",
                    "numpy._core",
                    "numpy._core._exceptions",
                    "numpy._core._multiarray_umath"
                ]
                .map(String::from)
                .into()
            )
        );
        let (loose, metadata) = split_files("numpy-2.4.6.dist-info", files, &modules);
        assert_eq!(loose, ["numpy.libs/libscipy_openblas64_-63c8.dll"]);
        assert_eq!(
            metadata,
            [
                "numpy-2.4.6.dist-info/METADATA",
                "numpy-2.4.6.dist-info/licenses/LICENSE.txt"
            ]
        );
    }

    #[test]
    fn modules_under_a_pth_folder_are_named_from_it() {
        let record = "pkgs/lib/helper.py,,\npkgs/lib/deep/__init__.py,,\npkgs/top.py,,\n";
        let pth = ["pkgs".to_string(), "pkgs/lib".to_string()];
        let (_, modules, _) = from_listing("multi-1.0.dist-info", Some(record), None, &pth, "cp312").unwrap();
        assert_eq!(
            modules,
            Modules::Listed(["deep", "helper", "top"].map(String::from).into())
        );
    }

    #[test]
    fn without_a_record_top_level_names_ship_whole_and_pywin32_is_left_to_the_graph() {
        let (name, modules, files) = from_listing(
            "legacy-0.1.egg-info",
            None,
            Some("legacy\nlegacy_c\ntests\n\n"),
            &[],
            "cp312",
        )
        .unwrap();
        assert_eq!(name, "legacy");
        assert_eq!(
            modules,
            Modules::TopLevel(["legacy", "legacy_c"].map(String::from).into())
        );
        assert!(files.is_empty());
        assert_eq!(from_listing("nothing-1.0.dist-info", None, None, &[], "cp312"), None);
        assert_eq!(
            from_listing(
                "pywin32-312.dist-info",
                Some("win32/win32api.pyd,,\n"),
                None,
                &[],
                "cp312"
            ),
            None
        );
    }

    /// tests/fixtures/site-packages: numpy (RECORD, with a delvewheel folder), legacy
    /// (top_level.txt only), multi (a module in a `.pth` folder), pywin32.
    fn fixture_site() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/site-packages")
    }

    #[test]
    fn a_site_folders_distributions_are_read_from_their_metadata() {
        let found = read_site(&fixture_site(), vec![4, 5], &["multi_lib".to_string()], "cp312");
        let summary: Vec<(&str, &Modules, &[String], &[String])> = found
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    &d.modules,
                    d.loose_files.as_slice(),
                    d.metadata.as_slice(),
                )
            })
            .collect();
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
        assert_eq!(
            summary,
            [
                ("legacy", &Modules::TopLevel(names(&["legacy"])), &[][..], &[][..]),
                (
                    "multi",
                    &Modules::Listed(names(&["helper", "multi_top"])),
                    &[][..],
                    &["multi-1.0.dist-info/METADATA".to_string()][..]
                ),
                (
                    "numpy",
                    &Modules::Listed(names(&["numpy", "numpy._core", "numpy._core._exceptions"])),
                    &["numpy.libs/libopenblas-63c8.dll".to_string()][..],
                    &[
                        "numpy-2.4.6.dist-info/METADATA".to_string(),
                        "numpy-2.4.6.dist-info/licenses/LICENSE.txt".to_string()
                    ][..]
                ),
            ],
            "pywin32 is left to the import graph"
        );
        assert!(found.iter().all(|d| d.roots == [4, 5]));
    }
}
