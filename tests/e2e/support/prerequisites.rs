//! What the end-to-end tests run on, which `make test` prepares before `cargo test`: the
//! Windows stubs and test programs, the Windows CPython, Wine with the project's prefix,
//! and the Windows packages of the real-app tests. All are checked together, once per run,
//! so that on a fresh checkout what is missing is said once, with the command that makes it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use isapi_freeze_format::pythons::{self, Python};

use super::repo;

/// Where `make stubs` assembles the Windows programs the CLI carries, as the CLI finds them.
const STUBS: &str = "target/stubs";
/// Where `make stubs` cross-builds the Windows programs only the tests use.
const TEST_PROGRAMS: &str = "target/x86_64-pc-windows-gnu/release";
/// Where `make python` unpacks each embeddable Windows CPython, by ABI tag.
const PYTHONS: &str = "target/python";
/// Where `make wine-prefix` makes the Wine prefix.
const WINE_PREFIX: &str = "target/wine";
/// Where `make worker-prefix` makes the Wine prefix of the unprivileged worker user.
const WORKER_PREFIX: &str = "target/wine-worker";
/// Where `make sites` installs the Windows packages, by ABI tag, one folder each.
const SITES: &str = "target/site";
const SITE_NAMES: [&str; 7] = ["flask", "pywin32", "django", "cherrypy", "bottle", "fastapi", "numpy"];

/// libtest's own exit status for a failed run: what runs the tests (`make test`, CI) sees a
/// failure, never a pass.
const FAILED: i32 = 101;

/// One thing to have, the file that shows it is there, and the make target that makes it.
struct Prerequisite {
    what: &'static str,
    proof: PathBuf,
    make: &'static str,
}

fn prerequisites() -> Vec<Prerequisite> {
    let mut all = Vec::new();
    // An explicit $WINE may be a command name on PATH: only the default is checked.
    if std::env::var_os("WINE").is_none() {
        all.push(Prerequisite {
            what: "Wine",
            proof: PathBuf::from(super::wine::wine()),
            make: "deps",
        });
    }
    let python = default_python();
    let stubs = repo().join(STUBS);
    let carried = [
        "isapi_freeze_loader.dll".to_string(),
        "isapi-freeze-launcher.exe".into(),
        "isapi-host.exe".into(),
        python.runtime_stub(),
    ];
    let carried = carried.iter().map(|file| stubs.join(file));
    let for_tests = ["native_extension.dll", "pe-checksum.exe"].map(|file| repo().join(TEST_PROGRAMS).join(file));
    all.extend(carried.chain(for_tests).map(|proof| Prerequisite {
        what: "the Windows stubs and test programs",
        proof,
        make: "stubs",
    }));
    all.push(Prerequisite {
        what: "the Windows CPython",
        proof: windows_python_dir().join(python.dll_name()),
        make: "python",
    });
    all.push(Prerequisite {
        what: "the Wine prefix",
        proof: repo()
            .join(WINE_PREFIX)
            .join("drive_c/windows/system32/bcryptprimitives.dll"),
        make: "wine-prefix",
    });
    all.push(Prerequisite {
        what: "the unprivileged worker user and its Wine prefix",
        proof: repo()
            .join(WORKER_PREFIX)
            .join("drive_c/windows/system32/bcryptprimitives.dll"),
        make: "worker-prefix",
    });
    for name in SITE_NAMES {
        all.push(Prerequisite {
            what: "the Windows packages of the real-app tests",
            proof: site_dir(name).join(".done"),
            make: "sites",
        });
    }
    all
}

/// Checks every prerequisite, the first time a test needs one. If any is missing, prints
/// once what is missing and what to run, and ends the test run with a failure: every
/// end-to-end test needs them, and 139 panics would bury the one message that matters.
pub fn ensure() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let missing: Vec<Prerequisite> = prerequisites().into_iter().filter(|p| !p.proof.exists()).collect();
        if missing.is_empty() {
            return;
        }
        // Straight to the process's stderr: libtest keeps what a test prints with eprintln!
        // for that test's report, and this concerns the whole run.
        let _ = std::io::stderr().write_all(message(&missing).as_bytes());
        std::process::exit(FAILED);
    });
}

fn message(missing: &[Prerequisite]) -> String {
    let mut text =
        String::from("\nerror: the end-to-end tests cannot run: this checkout lacks what `make test` prepares:\n");
    let mut targets: Vec<&str> = Vec::new();
    // One line for each thing to make, naming the first of its files found missing.
    for p in missing {
        if targets.contains(&p.make) {
            continue;
        }
        targets.push(p.make);
        let shown = p.proof.strip_prefix(repo()).unwrap_or(&p.proof);
        text.push_str(&format!("  - {} (no {}): make {}\n", p.what, shown.display(), p.make));
    }
    text.push_str(&format!(
        "Run `make test`, which prepares them and runs every test; or prepare them once with\n\
         `make {}`, then run `cargo test` again.\n\n",
        targets.join(" ")
    ));
    text
}

/// The Windows programs the CLI carries (loader, launcher, isapi-host, runtimes).
pub fn stubs() -> PathBuf {
    ensure();
    repo().join(STUBS)
}

/// The Windows programs only the tests use (the native extension, pe-checksum).
pub fn test_programs() -> PathBuf {
    ensure();
    repo().join(TEST_PROGRAMS)
}

/// The supported CPython the whole suite runs on (stub/format/pythons.txt).
pub fn default_python() -> Python {
    pythons::default()
}

/// The embeddable Windows CPython of the default version, that the tests freeze with.
pub fn windows_python() -> PathBuf {
    ensure();
    windows_python_dir()
}

fn windows_python_dir() -> PathBuf {
    repo().join(PYTHONS).join(default_python().abi_tag())
}

/// The project's Wine prefix.
pub fn wine_prefix() -> PathBuf {
    ensure();
    repo().join(WINE_PREFIX)
}

/// The Wine prefix of the unprivileged worker user (support/worker.rs).
pub fn worker_prefix() -> PathBuf {
    ensure();
    repo().join(WORKER_PREFIX)
}

/// A folder of Windows packages for `--path` (one of `SITE_NAMES`), for the default
/// CPython.
pub fn site(name: &str) -> PathBuf {
    ensure();
    assert!(
        SITE_NAMES.contains(&name),
        "{name} is not one of `make sites`: {SITE_NAMES:?}"
    );
    site_dir(name)
}

fn site_dir(name: &str) -> PathBuf {
    repo().join(SITES).join(default_python().abi_tag()).join(name)
}

/// `python3XY.dll` of the default test CPython.
pub fn py_dll() -> String {
    default_python().dll_name()
}

/// `python3XY.zip` of the default test CPython.
pub fn py_zip() -> String {
    format!("{}.zip", default_python().stem())
}
