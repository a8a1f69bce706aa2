//! `pip install isapi-freeze`: the wheels `make wheels` writes install a CLI that finds its
//! Windows stubs by itself, with no --stubs and no ISAPI_FREEZE_STUBS. The Linux wheel goes
//! into a fresh venv through pip; the Windows one is laid out as pip does on Windows and run
//! under Wine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goblin::pe::header::COFF_MACHINE_X86_64;
use isapi_freeze_format::{pythons, HOST_EXE, LAUNCHER_TEMPLATE, LOADER_TEMPLATE};

use crate::support::{repo, temp_dir, win_path, windows_command, windows_python, Running};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where pip puts the stubs, relative to the environment's prefix (pyproject.toml's `data`).
const INSTALLED_STUBS: &str = "share/isapi-freeze/stubs";

/// The wheel of this version for `platform` (the end of its tag) in target/wheels.
fn wheel(platform: &str) -> PathBuf {
    let dir = repo().join("target/wheels");
    let prefix = format!("isapi_freeze-{VERSION}-py3-none-");
    let suffix = format!("{platform}.whl");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(&suffix)
        })
        .collect();
    match found.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "expected one {prefix}*{suffix} in {}, found {found:?}: run `make wheels` (or `make test`)",
            dir.display()
        ),
    }
}

/// The arguments that freeze examples/hello into `dist`, with paths spelled by `path`.
fn hello_args(dist: &Path, path: impl Fn(&Path) -> String) -> Vec<String> {
    vec![
        path(&repo().join("examples/hello/hello.py")),
        "--python".into(),
        path(&windows_python()),
        "--dist-dir".into(),
        path(dist),
    ]
}

#[test]
fn the_linux_wheel_installs_a_cli_that_freezes_without_being_told_where_its_stubs_are() {
    let wheel = wheel("_x86_64");
    assert!(
        wheel.to_string_lossy().contains("manylinux"),
        "{} is not a manylinux wheel",
        wheel.display()
    );
    let tmp = temp_dir();
    let venv = tmp.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel));
    assert!(
        venv.join(INSTALLED_STUBS).join(LOADER_TEMPLATE).is_file(),
        "pip did not put the stubs in {}",
        venv.join(INSTALLED_STUBS).display()
    );

    let cli = venv.join("bin/isapi-freeze");
    let version = run(Command::new(&cli).arg("--version"));
    assert_eq!(version.trim(), format!("isapi-freeze {VERSION}"));

    // From a folder that has nothing to do with the venv or the workspace: the CLI must find
    // its stubs from its own path, not from the working folder or target/stubs.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let dist = tmp.path().join("dist");
    let mut freeze = Command::new(&cli);
    freeze
        .args(hello_args(&dist, |p| p.display().to_string()))
        .current_dir(&elsewhere)
        .env_remove("ISAPI_FREEZE_STUBS")
        .env_remove("ISAPI_FREEZE_PYTHON")
        .env_remove("ISAPI_FREEZE_BUILD_PYTHON");
    run(&mut freeze);
    assert!(dist.join("_hello.dll").is_file(), "no _hello.dll in {}", dist.display());
}

#[test]
fn the_windows_wheel_holds_a_windows_cli_that_finds_its_stubs_once_installed() {
    let wheel = wheel("win_amd64");
    let tmp = temp_dir();
    let prefix = tmp.path().join("prefix");
    install_windows_wheel(&wheel, &prefix);

    let cli = prefix.join("Scripts/isapi-freeze.exe");
    let image = std::fs::read(&cli).unwrap_or_else(|e| panic!("{} has no isapi-freeze.exe: {e}", wheel.display()));
    let pe = goblin::pe::PE::parse(&image).expect("isapi-freeze.exe is a PE file");
    assert_eq!(pe.header.coff_header.machine, COFF_MACHINE_X86_64);
    assert!(!pe.is_lib, "isapi-freeze.exe is a program, not a DLL");
    let stubs = prefix.join(INSTALLED_STUBS);
    let mut carried: Vec<String> = [LOADER_TEMPLATE, LAUNCHER_TEMPLATE, HOST_EXE]
        .map(String::from)
        .to_vec();
    carried.extend(pythons::supported().iter().map(|p| p.runtime_stub()));
    for name in carried {
        assert!(
            stubs.join(&name).is_file(),
            "the Windows wheel lacks {INSTALLED_STUBS}/{name}"
        );
    }

    let version = windows(&cli, &["--version".into()], tmp.path());
    assert_eq!(version.trim(), format!("isapi-freeze {VERSION}"));

    // A whole freeze by the Windows CLI: it finds its stubs in PREFIX\share, and compiles with
    // the target runtime's own python.exe (there is no other Windows Python under Wine).
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let dist = tmp.path().join("dist");
    let mut args = hello_args(&dist, win_path);
    args.push("--build-python".into());
    args.push(win_path(&windows_python().join("python.exe")));
    windows(&cli, &args, &elsewhere);
    assert!(dist.join("_hello.dll").is_file(), "no _hello.dll in {}", dist.display());
}

/// Installs the Windows wheel into `prefix` the way pip does on Windows: its scripts go to
/// PREFIX\\Scripts, its data files to PREFIX.
fn install_windows_wheel(wheel: &Path, prefix: &Path) {
    let data = format!("isapi_freeze-{VERSION}.data/");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel).unwrap()).unwrap();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let Some(inside) = name.strip_prefix(&data) else {
            continue;
        };
        let to = if let Some(script) = inside.strip_prefix("scripts/") {
            prefix.join("Scripts").join(script)
        } else if let Some(file) = inside.strip_prefix("data/") {
            prefix.join(file)
        } else {
            panic!(
                "{name} in {}: the wheel should carry only scripts and data",
                wheel.display()
            );
        };
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::io::copy(&mut entry, &mut std::fs::File::create(&to).unwrap()).unwrap();
    }
}

#[test]
fn the_windows_cli_in_a_windows_virtual_environment_freezes_with_no_flags_and_serves() {
    // A Windows developer's Python (make winpython), a virtual environment made by it under
    // Wine, Flask installed into it, and isapi-freeze installed into it from the wheel.
    let installation = repo().join("target/python/winpython-cp312");
    assert!(
        installation.join(".done").is_file(),
        "run `make winpython` (or `make test`)"
    );
    let tmp = temp_dir();
    let venv = tmp.path().join("venv");
    windows(
        &installation.join("python.exe"),
        &["-m".into(), "venv".into(), "--without-pip".into(), win_path(&venv)],
        tmp.path(),
    );
    let flask = repo().join("target/site/cp312/flask");
    assert!(flask.join(".done").is_file(), "run `make sites` (or `make test`)");
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", flask.display()))
        .arg(venv.join("Lib/site-packages"))
        .status()
        .unwrap();
    assert!(status.success());
    install_windows_wheel(&wheel("win_amd64"), &venv);
    let project = tmp.path().join("project");
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo().join("examples/flask_app"))
        .arg(&project)
        .status()
        .unwrap();
    assert!(status.success());

    // `isapi-freeze app.py` in the activated environment: no --python, --path or --stubs.
    let cli = venv.join("Scripts/isapi-freeze.exe");
    let mut freeze = windows_command(&cli);
    freeze
        .arg("app.py")
        .current_dir(&project)
        .env("VIRTUAL_ENV", win_path(&venv))
        .env_remove("ISAPI_FREEZE_STUBS")
        .env_remove("ISAPI_FREEZE_PYTHON")
        .env_remove("ISAPI_FREEZE_BUILD_PYTHON");
    let frozen = Running::start(freeze).finish(Duration::from_secs(300));
    assert_eq!(frozen.code, 0, "{frozen:?}");
    assert!(
        frozen.stderr.contains(&format!(
            "using {}\\Scripts\\python.exe (the virtual environment {}): CPython 3.12.9 from {}, packages from {}\\Lib\\site-packages",
            win_path(&venv),
            win_path(&venv),
            win_path(&installation),
            win_path(&venv)
        )),
        "{frozen:?}"
    );
    let dist = project.join("dist");
    assert!(dist.join("python312.dll").is_file());

    // `isapi-freeze serve dist`, natively on "Windows".
    let mut serve = windows_command(&cli);
    serve
        .args(["serve", "dist", "--stop-on-eof", "--listen", "127.0.0.1:0"])
        .current_dir(&project)
        .env_remove("ISAPI_FREEZE_STUBS");
    let running = Running::start(serve);
    let ready = running.wait_for_stdout("isapi-host: listening on http://", Duration::from_secs(120));
    let address = ready["isapi-host: listening on http://".len()..].trim_end_matches('/');
    let page = crate::support::get(address, "/?name=Wine");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("<h1>Hello, Wine!</h1>"), "{}", page.text());
    let finished = running.finish(Duration::from_secs(60));
    assert_eq!(finished.code, 0, "{finished:?}");
}

/// Runs `command` to success and returns its stdout; on failure, panics with its output.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs the Windows `program` under Wine to success, without isapi-freeze's variables (Wine
/// passes the environment on), and returns its stdout.
fn windows(program: &Path, args: &[String], cwd: &Path) -> String {
    let mut command = windows_command(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("ISAPI_FREEZE_STUBS")
        .env_remove("ISAPI_FREEZE_PYTHON")
        .env_remove("ISAPI_FREEZE_BUILD_PYTHON");
    let finished = Running::start(command).finish(Duration::from_secs(120));
    assert_eq!(finished.code, 0, "{} {args:?} failed: {finished:?}", program.display());
    finished.stdout
}
