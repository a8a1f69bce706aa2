//! Turns command-line values into checked facts: the script, the Windows Python runtime
//! (its layout and version, read from the runtime itself), the stubs, and the build Python.
//! Every error says what was wrong, where, and what to do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use goblin::pe::PE;
use isapi_freeze_format::{self as format, pythons};

use crate::cli::FreezeArgs;
use crate::compile::{parse_magic, BuildPython, Cached, PythonCompiler};

/// Everything a freeze needs, resolved.
pub struct FreezeConfig {
    pub script: Script,
    /// `--path` folders, checked to exist.
    pub paths: Vec<PathBuf>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub packages: Vec<String>,
    pub full_stdlib: bool,
    pub strict: bool,
    /// `--data`: (file or folder, path in the output).
    pub data: Vec<(PathBuf, String)>,
    /// `--files`: packages shipped as plain files.
    pub files: Vec<String>,
    pub runtime: PythonRuntime,
    pub stubs: Stubs,
    pub dist_dir: PathBuf,
    pub compiler: Cached<PythonCompiler>,
    pub dry_run: bool,
    pub quiet: bool,
    /// `--sign`: what signs the PE files the tool makes.
    pub signer: Option<crate::sign::Signer>,
    /// What `SCRIPT.exe install` does for a script without install code.
    pub install: InstallDefaults,
}

/// The freeze-time defaults of `SCRIPT.exe install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallDefaults {
    pub site: String,
    /// Starts with `/`.
    pub vpath: String,
}

#[derive(Debug)]
pub struct Script {
    pub path: PathBuf,
    /// The module name: the file stem (`hello` for hello.py).
    pub module: String,
}

impl Script {
    /// The folder the script is in (`.` for a bare file name).
    pub fn folder(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// `--python 3.12`: a supported version rather than a folder (a folder of that name wins).
fn version_spec(spec: &Path) -> Result<Option<pythons::Python>> {
    let text = spec.to_string_lossy();
    let Some((major, minor)) = text.split_once('.') else {
        return Ok(None);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Ok(None);
    };
    if spec.is_dir() {
        return Ok(None);
    }
    pythons::find(major, minor).map(Some).with_context(|| {
        format!(
            "--python {text}: isapi-freeze does not support CPython {major}.{minor}; the supported versions are {}",
            pythons::listed()
        )
    })
}

/// How a Windows CPython is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RuntimeLayout {
    /// The embeddable distribution: python3XY.dll, python3XY.zip and .pyd files in one folder.
    Embeddable,
    /// A regular installation: python.exe, python3XY.dll, DLLs\ and Lib\.
    Installation,
}

#[derive(Debug)]
pub struct PythonRuntime {
    pub root: PathBuf,
    pub layout: RuntimeLayout,
    /// python3XY.dll.
    pub dll: PathBuf,
    /// From the DLL's version resource.
    pub version: (u32, u32, u32),
    /// The supported version it is (stub/format/pythons.txt).
    pub python: pythons::Python,
    /// The bytecode magic of the runtime's own compiled standard library, where it has one.
    pub magic: Option<[u8; 4]>,
    /// The folder holding the extension modules (.pyd) and the DLLs they use.
    pub extension_dir: PathBuf,
}

impl PythonRuntime {
    pub fn dll_name(&self) -> String {
        file_name(&self.dll)
    }

    /// `python3XY.zip`, the standard library's zip.
    pub fn stdlib_zip_name(&self) -> String {
        format!("{}.zip", self.python.stem())
    }
}

/// The Windows programs a freeze copies, built from stub/ for x86_64-pc-windows: the loader,
/// the launcher and isapi-host, and one runtime per supported CPython (`cp3XY/`).
pub struct Stubs {
    pub dir: PathBuf,
}

impl Stubs {
    pub fn loader(&self) -> PathBuf {
        self.dir.join(format::LOADER_TEMPLATE)
    }
    pub fn launcher(&self) -> PathBuf {
        self.dir.join(format::LAUNCHER_TEMPLATE)
    }
    pub fn host(&self) -> PathBuf {
        self.dir.join(format::HOST_EXE)
    }
    /// The runtime stub built for `runtime`'s CPython, checked: it links that version's
    /// DLL and exports what the loader and the launcher call.
    pub fn runtime(&self, runtime: &PythonRuntime) -> Result<PathBuf> {
        let path = self.dir.join(runtime.python.runtime_stub());
        if !path.is_file() {
            bail!(
                "the stubs folder {} has no runtime for CPython {} ({} is missing); build it with `make stubs` \
                 or use the stubs of an isapi-freeze release",
                self.dir.display(),
                runtime.python.version(),
                path.display()
            );
        }
        check_runtime_stub(&path, runtime)?;
        Ok(path)
    }
}

impl FreezeConfig {
    pub fn resolve(args: FreezeArgs) -> Result<FreezeConfig> {
        let script_path = args
            .script
            .clone()
            .context("no script given: run `isapi-freeze SCRIPT.py --python DIR` (see --help)")?;
        let script = resolve_script(&script_path)?;
        let quiet = args.quiet;
        // First: a certificate that cannot sign must not cost a build.
        let signer = match &args.sign {
            Some(pfx) => Some(crate::sign::Signer::resolve(pfx, args.timestamp_url.clone())?),
            None => None,
        };
        let say = move |message: String| {
            if !quiet {
                eprintln!("{message}");
            }
        };
        let mut paths = args.paths.clone();
        let mut build_python = args.build_python.clone();
        let runtime = match &args.python {
            Some(spec) => match version_spec(spec)? {
                Some(python) => probe_runtime(&crate::fetch::embeddable_runtime(&python, quiet, &say)?)?,
                None => probe_runtime(spec)?,
            },
            None => {
                let env = crate::environment::active()?;
                let python = env.check()?;
                build_python.get_or_insert_with(|| env.executable.clone());
                if env.windows {
                    say(format!(
                        "using {} ({}): CPython {} from {}, packages from {}",
                        env.executable.display(),
                        env.found_by,
                        env.version_text(),
                        env.base_prefix.display(),
                        env.site_packages
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    paths.extend(env.site_packages.iter().cloned());
                    probe_runtime(&env.base_prefix)?
                } else {
                    say(format!(
                        "using {} ({}) for its version, {}: its packages are Linux builds, so pass the app's \
                         requirements with -r FILE",
                        env.executable.display(),
                        env.found_by,
                        env.version_text()
                    ));
                    probe_runtime(&crate::fetch::embeddable_runtime(&python, quiet, &say)?)?
                }
            }
        };
        let stubs = find_stubs(args.stubs.as_deref(), &FREEZE_STUBS)?;
        stubs.runtime(&runtime)?;
        let site = args.site.clone().unwrap_or_else(|| "Default Web Site".to_string());
        let install = install_defaults(&site, args.vpath.as_deref(), &script.module)?;
        let mut dependencies = Vec::new();
        if let Some(folder) = script.path.parent() {
            let folder = if folder.as_os_str().is_empty() {
                Path::new(".")
            } else {
                folder
            };
            dependencies = crate::fetch::project_dependencies(folder)?;
        }
        if !args.requirements.is_empty() || !dependencies.is_empty() {
            for file in &args.requirements {
                if !file.is_file() {
                    bail!("-r {} does not exist", file.display());
                }
            }
            paths.push(crate::fetch::windows_packages(
                &args.requirements,
                &dependencies,
                &runtime.python,
                quiet,
                &say,
            )?);
        }
        let build_python = crate::build_python::choose(build_python.as_deref(), &runtime, &say)?;
        let dist_dir = args.dist_dir.unwrap_or_else(|| PathBuf::from("dist"));
        let compiler = Cached::new(
            build_python,
            Cached::<PythonCompiler>::default_dir(),
            output_record(&dist_dir, ".sources.json"),
        );
        for dir in &paths {
            if !dir.is_dir() {
                bail!("--path {} is not a folder", dir.display());
            }
        }
        Ok(FreezeConfig {
            script,
            paths,
            includes: args.includes,
            excludes: args.excludes,
            packages: args.packages,
            full_stdlib: args.full_stdlib,
            strict: args.strict,
            data: args.data.iter().map(|d| parse_data(d)).collect::<Result<_>>()?,
            files: args.files,
            runtime,
            stubs,
            dist_dir,
            compiler,
            dry_run: args.dry_run,
            quiet: args.quiet,
            signer,
            install,
        })
    }
}

fn install_defaults(site: &str, vpath: Option<&str>, module: &str) -> Result<InstallDefaults> {
    if site.trim().is_empty() {
        bail!("--site is empty: name an IIS site, e.g. --site \"Default Web Site\"");
    }
    if site.chars().any(char::is_control) {
        bail!("--site {site:?} has a control character (a line break?); IIS site names have none");
    }
    let vpath = match vpath {
        None => format!("/{module}"),
        Some(v) => {
            let trimmed = v.trim_matches('/');
            let bad_part = !trimmed.is_empty()
                && trimmed
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..");
            if bad_part || v.contains(['\\', '?', '*', ':', '"', '<', '>', '|']) || v.chars().any(char::is_control) {
                bail!("--vpath {v:?} is not a virtual path: write it as /NAME or /NAME/SUB");
            }
            format!("/{trimmed}")
        }
    };
    Ok(InstallDefaults {
        site: site.to_string(),
        vpath,
    })
}

/// `SRC=DEST` of `--data`: SRC must exist; DEST is a relative path inside the output.
fn parse_data(spec: &str) -> Result<(PathBuf, String)> {
    let Some((src, dest)) = spec.split_once('=') else {
        bail!("--data {spec}: write it as SRC=DEST, e.g. --data templates=templates");
    };
    let dest = dest.replace('\\', "/");
    let dest = dest.trim_matches('/');
    if dest.is_empty()
        || dest
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        bail!("--data {spec}: DEST must be a relative path inside the output folder, without `..`");
    }
    let src = PathBuf::from(src);
    if !src.exists() {
        bail!("--data {spec}: {} does not exist", src.display());
    }
    Ok((src, dest.to_string()))
}

fn resolve_script(path: &Path) -> Result<Script> {
    if !path.is_file() {
        bail!("script {} does not exist or is not a file", path.display());
    }
    if path.extension().and_then(|e| e.to_str()) != Some("py") {
        bail!("script {} is not a .py file", path.display());
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if stem.contains('.') {
        bail!(
            "script {}: a module name cannot contain a dot; rename it (e.g. to {}.py)",
            path.display(),
            stem.replace('.', "_")
        );
    }
    let is_identifier = stem.chars().next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && stem.chars().all(|c| c == '_' || c.is_alphanumeric());
    if !is_identifier {
        bail!(
            "script {}: `{stem}` is not a valid Python module name; rename the file",
            path.display()
        );
    }
    if stem == "isapi" || stem == format::BOOT_MODULE {
        bail!(
            "script {}: `{stem}` is the name of isapi-freeze's runtime package; rename the script",
            path.display()
        );
    }
    Ok(Script {
        path: path.to_path_buf(),
        module: stem.to_string(),
    })
}

/// Reads layout and version from a Windows CPython folder.
pub fn probe_runtime(root: &Path) -> Result<PythonRuntime> {
    let not_runtime = |why: &str| {
        anyhow::anyhow!(
            "--python {} is not a Windows CPython runtime: {why}. Pass the folder of an embeddable \
             distribution (python3XY.dll beside python3XY.zip) or of an installation (python.exe, DLLs\\, Lib\\)",
            root.display()
        )
    };
    if !root.is_dir() {
        return Err(not_runtime("no such folder"));
    }
    let mut dlls: Vec<(PathBuf, u32)> = Vec::new();
    for entry in fs_err::read_dir(root)? {
        let path = entry?.path();
        let name = file_name(&path).to_ascii_lowercase();
        let minor = name
            .strip_prefix("python3")
            .and_then(|rest| rest.strip_suffix(".dll"))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok());
        if let Some(minor) = minor {
            dlls.push((path, minor));
        }
    }
    dlls.sort();
    let (dll, minor) = match dlls.as_slice() {
        [] => return Err(not_runtime("it has no python3XY.dll")),
        [one] => one.clone(),
        many => {
            let names: Vec<String> = many.iter().map(|(p, _)| file_name(p)).collect();
            return Err(not_runtime(&format!(
                "it has several Python DLLs ({})",
                names.join(", ")
            )));
        }
    };
    let bytes = fs_err::read(&dll)?;
    let version = dll_version(&bytes).map_err(|why| not_runtime(&format!("{}: {why}", file_name(&dll))))?;
    if version.0 != 3 || version.1 != minor {
        return Err(not_runtime(&format!(
            "{} says it is version {}.{}.{}, which does not match its name",
            file_name(&dll),
            version.0,
            version.1,
            version.2
        )));
    }
    let python = pythons::find(version.0, version.1).ok_or_else(|| {
        anyhow::anyhow!(
            "--python {} is CPython {}.{}.{}, which isapi-freeze does not support; the supported versions are {}",
            root.display(),
            version.0,
            version.1,
            version.2,
            pythons::listed()
        )
    })?;
    let stem = python.stem();
    let zip = root.join(format!("{stem}.zip"));
    let (layout, magic, extension_dir) = if zip.is_file() {
        (RuntimeLayout::Embeddable, stdlib_zip_magic(&zip)?, root.to_path_buf())
    } else if root.join("Lib").join("os.py").is_file() {
        let cached = root
            .join("Lib")
            .join("__pycache__")
            .join(format!("os.cpython-{}.pyc", python.abi_tag().trim_start_matches("cp")));
        let magic = match fs_err::read(&cached) {
            Ok(pyc) if pyc.len() >= 4 => Some([pyc[0], pyc[1], pyc[2], pyc[3]]),
            _ => None,
        };
        (RuntimeLayout::Installation, magic, root.join("DLLs"))
    } else {
        return Err(not_runtime(&format!(
            "it has {} but neither {stem}.zip nor Lib\\os.py",
            file_name(&dll)
        )));
    };
    Ok(PythonRuntime {
        root: root.to_path_buf(),
        layout,
        dll,
        version,
        python,
        magic,
        extension_dir,
    })
}

/// The file version in a Python DLL's version resource: Python writes
/// major.minor.(micro*1000 + level*10 + serial).build.
fn dll_version(bytes: &[u8]) -> std::result::Result<(u32, u32, u32), String> {
    let pe = PE::parse(bytes).map_err(|e| format!("not a PE file ({e})"))?;
    if !pe.is_64 {
        return Err(
            "it is a 32-bit DLL, and isapi-freeze supports only 64-bit (x86_64) CPython; \
                    use the 64-bit Windows installer or embeddable zip"
                .into(),
        );
    }
    let fixed = pe
        .resource_data
        .and_then(|r| r.version_info)
        .and_then(|v| v.fixed_info)
        .ok_or("it has no version resource")?;
    let ms = fixed.file_version_ms;
    let ls = fixed.file_version_ls;
    Ok((ms >> 16, ms & 0xffff, (ls >> 16) / 1000))
}

fn stdlib_zip_magic(zip_path: &Path) -> Result<Option<[u8; 4]>> {
    let file = fs_err::File::open(zip_path)?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip file", zip_path.display()))?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .filter(|n| n.ends_with(".pyc"))
        .map(|n| n.into_owned())
        .min();
    let Some(name) = name else { return Ok(None) };
    let mut entry = zip.by_name(&name)?;
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut entry, &mut magic)
        .with_context(|| format!("reading {name} in {}", zip_path.display()))?;
    Ok(Some(magic))
}

/// The stubs every freeze copies into the output (plus the runtime of the target's version).
const FREEZE_STUBS: [&str; 2] = [format::LOADER_TEMPLATE, format::LAUNCHER_TEMPLATE];

/// Finds the folder holding `required` stubs: --stubs / ISAPI_FREEZE_STUBS, else the first
/// complete one of the places an isapi-freeze build or install puts them, relative to this
/// program's own path (on Linux with symbolic links resolved, so pipx's ~/.local/bin link
/// leads to its venv).
pub fn find_stubs(given: Option<&Path>, required: &[&str]) -> Result<Stubs> {
    let complete = |dir: &Path| required.iter().all(|name| dir.join(name).is_file());
    if let Some(dir) = given {
        if !complete(dir) {
            bail!(
                "--stubs {} does not hold the Windows stubs ({}); build them with `make stubs`",
                dir.display(),
                required.join(", ")
            );
        }
        return Ok(Stubs { dir: dir.to_path_buf() });
    }
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let exe_dir = exe.parent().unwrap_or(Path::new("."));
    // The wheel's data files (pyproject.toml) install under the environment's prefix: the
    // program is in PREFIX/bin or PREFIX\Scripts, the stubs in PREFIX/share/isapi-freeze/stubs.
    // Windows' per-user scheme puts scripts one level deeper (%APPDATA%\Python\Python3XY\Scripts)
    // than its data (%APPDATA%\Python).
    let installed = exe_dir
        .ancestors()
        .skip(1)
        .take(2)
        .map(|prefix| prefix.join("share").join("isapi-freeze").join("stubs"));
    // `stubs` beside the program (an unpacked release), else the workspace's target/stubs
    // from target/{debug,release}/isapi-freeze or target/debug/deps/e2e-* (the tests).
    let beside = exe_dir.ancestors().take(3).map(|dir| dir.join("stubs"));
    let candidates: Vec<PathBuf> = installed.chain(beside).collect();
    if let Some(dir) = candidates.iter().find(|d| complete(d)) {
        return Ok(Stubs { dir: dir.clone() });
    }
    bail!(
        "cannot find the Windows stubs ({}); looked in {}. Reinstall isapi-freeze, build them with \
         `make stubs`, or pass --stubs DIR",
        required.join(", "),
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A runtime stub must link the target's Python DLL and export every name of the contract.
fn check_runtime_stub(path: &Path, runtime: &PythonRuntime) -> Result<()> {
    let bytes = fs_err::read(path)?;
    let pe = PE::parse(&bytes).with_context(|| format!("{} is not a PE file", path.display()))?;
    let linked: Vec<&str> = pe
        .libraries
        .iter()
        .copied()
        .filter(|lib| lib.to_ascii_lowercase().starts_with("python3"))
        .collect();
    let wanted = runtime.dll_name();
    if !linked.iter().any(|lib| lib.eq_ignore_ascii_case(&wanted)) {
        bail!(
            "the runtime stub {} was built for {} but --python {} is CPython {}.{}.{} ({wanted}); \
             the stubs folder is damaged: build it again with `make stubs`",
            path.display(),
            linked.join(", "),
            runtime.root.display(),
            runtime.version.0,
            runtime.version.1,
            runtime.version.2,
        );
    }
    let exported: Vec<&str> = pe.exports.iter().filter_map(|e| e.name).collect();
    let missing: Vec<&str> = format::exports::ALL
        .iter()
        .copied()
        .filter(|name| !exported.contains(name))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the runtime stub {} does not export {}: it is not from this isapi-freeze; build the stubs again \
             with `make stubs`",
            path.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Whether a build Python of `found` writes the bytecode `runtime` reads: the same minor
/// version, and the same magic where the runtime's own compiled stdlib shows it.
pub fn writes_bytecode_for(found: &crate::compile::BytecodeVersion, runtime: &PythonRuntime) -> bool {
    let same_version =
        found.version.first() == Some(&runtime.version.0) && found.version.get(1) == Some(&runtime.version.1);
    let same_magic = match (runtime.magic, parse_magic(&found.magic)) {
        (Some(target), Some(build)) => target == build,
        _ => true,
    };
    same_version && same_magic
}

/// The build Python must write the bytecode the target reads.
pub fn check_bytecode_version(compiler: &mut impl BuildPython, runtime: &PythonRuntime) -> Result<()> {
    let found = compiler.version().with_context(|| {
        format!(
            "cannot run the build Python {}; install Python {}.{} or pass --build-python PATH",
            compiler.interpreter().display(),
            runtime.version.0,
            runtime.version.1
        )
    })?;
    let (major, minor) = (runtime.version.0, runtime.version.1);
    if !writes_bytecode_for(&found, runtime) {
        bail!(
            "the build Python {} is {} (bytecode magic {}), but the target runtime {} is CPython {major}.{minor}.{}{}: \
             bytecode must match. Pass --build-python with a Python {major}.{minor}",
            compiler.interpreter().display(),
            found.version.iter().map(u32::to_string).collect::<Vec<_>>().join("."),
            found.magic,
            runtime.root.display(),
            runtime.version.2,
            runtime.magic.map(|m| format!(" (magic {})", format::to_hex(&m))).unwrap_or_default(),
        );
    }
    Ok(())
}

/// The tool's cache folder (bytecode, scans, its Wine prefix, fetched runtimes):
/// `$ISAPI_FREEZE_CACHE`, else `%LOCALAPPDATA%\isapi-freeze` on Windows, else
/// `$XDG_CACHE_HOME/isapi-freeze`, else `~/.cache/isapi-freeze`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("ISAPI_FREEZE_CACHE") {
        return Some(dir);
    }
    if cfg!(windows) {
        return var("LOCALAPPDATA").map(|d| d.join("isapi-freeze"));
    }
    let base = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("isapi-freeze"))
}

/// A record the tool keeps about the output folder `dist` in the cache (`outputs/`, keyed
/// by the folder's absolute path), its name ending in `suffix`: serve's freeze record,
/// the rebuild's file stamps.
pub fn output_record(dist: &Path, suffix: &str) -> Option<PathBuf> {
    let dist = std::path::absolute(dist).ok()?;
    let key = isapi_freeze_format::to_hex(&<sha2::Sha256 as sha2::Digest>::digest(
        dist.to_string_lossy().as_bytes(),
    ));
    Some(cache_dir()?.join("outputs").join(format!("{}{suffix}", &key[..32])))
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn install_defaults_normalise_the_virtual_path_and_refuse_bad_ones() {
        let ok = |vpath: Option<&str>| install_defaults("Default Web Site", vpath, "hello").unwrap().vpath;
        assert_eq!(ok(None), "/hello");
        assert_eq!(ok(Some("tools/hello/")), "/tools/hello");
        assert_eq!(ok(Some("/")), "/");
        for bad in ["/a//b", "/../x", "/a\\b", "/x*"] {
            let err = install_defaults("Default Web Site", Some(bad), "hello").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--vpath {bad:?} is not a virtual path: write it as /NAME or /NAME/SUB")
            );
        }
        assert!(install_defaults(" ", None, "hello").is_err());
    }

    use super::*;

    /// README's table of versions is pythons.txt's, row for row.
    #[test]
    fn readme_lists_every_supported_version() {
        let readme = include_str!("../README.md");
        let mut table = String::from("| CPython | status |\n|---|---|\n");
        for python in pythons::supported() {
            let status = match python.status {
                pythons::Status::Default => "supported and tested (the version `make test` runs the whole suite on)",
                pythons::Status::Tested => "supported and tested",
                pythons::Status::Untested => {
                    "built with the others, untested until its embeddable runtime is in the test set"
                }
            };
            table.push_str(&format!("| {} | {status} |\n", python.version()));
        }
        assert!(readme.contains(&table), "README.md's version table should be:\n{table}");
    }

    #[test]
    fn script_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, "").unwrap();
            p
        };
        assert_eq!(resolve_script(&write("hello.py")).unwrap().module, "hello");
        let err = resolve_script(&write("my.app.py")).unwrap_err().to_string();
        assert!(
            err.contains("cannot contain a dot") && err.contains("my_app.py"),
            "{err}"
        );
        let err = resolve_script(&write("9lives.py")).unwrap_err().to_string();
        assert!(err.contains("not a valid Python module name"), "{err}");
        let err = resolve_script(&dir.path().join("missing.py")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = resolve_script(&write("notes.txt")).unwrap_err().to_string();
        assert!(err.contains("not a .py file"), "{err}");
    }

    /// A build Python that reports a fixed bytecode version and compiles nothing.
    struct FakeCompiler(crate::compile::BytecodeVersion);

    impl BuildPython for FakeCompiler {
        fn interpreter(&self) -> &Path {
            Path::new("/opt/python3.12/bin/python3")
        }
        fn version(&mut self) -> Result<crate::compile::BytecodeVersion, crate::compile::CompileError> {
            Ok(self.0.clone())
        }
        fn compile(
            &mut self,
            _: &[crate::compile::SourceFile],
        ) -> Result<Vec<crate::compile::Compiled>, crate::compile::CompileError> {
            unreachable!("the version check compiles nothing")
        }
        fn scan(
            &mut self,
            _: &[crate::compile::SourceFile],
        ) -> Result<Vec<Vec<crate::compile::ImportRecord>>, crate::compile::CompileError> {
            unreachable!("the version check scans nothing")
        }
    }

    fn target_runtime(magic: Option<[u8; 4]>) -> PythonRuntime {
        PythonRuntime {
            root: "C:/Python3XY".into(),
            layout: RuntimeLayout::Embeddable,
            dll: "C:/Python3XY/python3XY.dll".into(),
            version: (3, 11, 9),
            python: pythons::find(3, 11).unwrap(),
            magic,
            extension_dir: "C:/Python3XY".into(),
        }
    }

    fn fake(magic: &str, version: &[u32]) -> FakeCompiler {
        FakeCompiler(crate::compile::BytecodeVersion {
            magic: magic.into(),
            version: version.to_vec(),
        })
    }

    #[test]
    fn a_build_python_of_another_version_is_refused() {
        let err = check_bytecode_version(
            &mut fake("cb0d0d0a", &[3, 12, 1]),
            &target_runtime(Some([0xa7, 0x0d, 0x0d, 0x0a])),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "the build Python /opt/python3.12/bin/python3 is 3.12.1 (bytecode magic cb0d0d0a), but the target runtime \
             C:/Python3XY is CPython 3.11.9 (magic a70d0d0a): bytecode must match. Pass --build-python with a Python 3.11"
        );
    }

    #[test]
    fn same_version_with_another_magic_is_refused_and_a_match_passes() {
        let target = target_runtime(Some([0xa7, 0x0d, 0x0d, 0x0a]));
        assert!(check_bytecode_version(&mut fake("a60d0d0a", &[3, 11, 0]), &target).is_err());
        assert!(check_bytecode_version(&mut fake("a70d0d0a", &[3, 11, 7]), &target).is_ok());
        // Without a compiled stdlib to read the target's magic from, the version decides.
        assert!(check_bytecode_version(&mut fake("a70d0d0a", &[3, 11, 7]), &target_runtime(None)).is_ok());
        assert!(check_bytecode_version(&mut fake("a70d0d0a", &[3, 10, 7]), &target_runtime(None)).is_err());
    }

    #[test]
    fn a_folder_without_python_dll_is_not_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe_runtime(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("is not a Windows CPython runtime: it has no python3XY.dll"),
            "{err}"
        );
        let dll = pythons::default().dll_name();
        std::fs::write(dir.path().join(&dll), b"MZ nope").unwrap();
        let err = probe_runtime(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("{dll}: not a PE file")), "{err}");
    }
}
