//! `NAME.exe` carries no archive: it runs the script from the archive in `_NAME.dll` beside
//! it. Proves that it does, that an exe copied away alone names the file it needs and where
//! it looked, and that a loader from another freeze is refused before anything runs.

use crate::support::{run_windows, shared_with, temp_dir, win_path, Freeze, Frozen};

/// A script whose `__main__` says where it runs from and exits with 3.
const MAIN: &str = "import sys\n\ndef __ExtensionFactory__():\n    return None\n\n\
if __name__ == '__main__':\n    print('main', sys.argv[1:], __loader__.__class__.__name__)\n    sys.exit(3)\n";

fn main_frozen() -> &'static Frozen {
    shared_with("launcher: main.py", || Freeze::source("main.py", MAIN).ok())
}

#[test]
fn the_exe_runs_the_script_from_the_dlls_archive() {
    let frozen = main_frozen();
    let finished = run_windows(&frozen.exe(), &["a", "b"], frozen.dir());
    assert_eq!(finished.code, 3, "{finished:?}");
    assert_eq!(finished.stderr, "", "{finished:?}");
    assert_eq!(
        finished.stdout.trim_end(),
        "main ['a', 'b'] ArchiveImporter",
        "{finished:?}"
    );
}

#[test]
fn the_exe_alone_names_the_dll_it_needs_and_where_it_looked() {
    let tmp = temp_dir();
    let exe = tmp.path().join("main.exe");
    std::fs::copy(main_frozen().exe(), &exe).unwrap();
    let finished = run_windows(&exe, &[], tmp.path());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(finished.stdout, "");
    assert_eq!(
        finished.stderr.trim_end(),
        format!(
            "main.exe runs the app archive in _main.dll beside it, but cannot open {} (Windows error 2): \
             copy the whole output folder",
            win_path(&tmp.path().join("_main.dll"))
        )
    );
}

#[test]
fn a_dll_from_another_freeze_is_refused() {
    let mixed = main_frozen().copy();
    let other = Freeze::source("main.py", &MAIN.replace("exit(3)", "exit(4)")).ok();
    std::fs::copy(other.dll(), mixed.dll()).unwrap();
    let finished = run_windows(&mixed.exe(), &[], mixed.dir());
    assert_eq!(finished.code, 1, "{finished:?}");
    assert_eq!(finished.stdout, "");
    assert_eq!(
        finished.stderr.trim_end(),
        "main.exe and _main.dll are from different freezes: copy the whole output folder"
    );
}
