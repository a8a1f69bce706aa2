//! Freezing again into an output folder made before: only what changed is written, what the
//! app no longer ships goes, a file edited in the output is put back, and what the app
//! wrote there (logs\, its data folder) stays. Checked by inode and modification time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::support::{temp_dir, Freeze, Frozen};

/// Every file under `dist` (`/`-separated) with its inode and modification time.
fn snapshot(dist: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dist.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                folders.push(path);
            } else {
                let name = path.strip_prefix(dist).unwrap().to_string_lossy().into_owned();
                let inode = std::os::unix::fs::MetadataExt::ino(&meta);
                files.insert(name, (inode, meta.modified().unwrap()));
            }
        }
    }
    files
}

/// The files whose inode or modification time differ, and those only one side has.
fn changed(before: &BTreeMap<String, (u64, SystemTime)>, after: &BTreeMap<String, (u64, SystemTime)>) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The line that says what the write did.
fn wrote(frozen: &Frozen) -> String {
    let line = frozen.stderr.lines().find(|l| l.starts_with("wrote ")).unwrap();
    line[line.find('(').unwrap()..line.find(')').unwrap() + 1].to_string()
}

#[test]
fn a_rebuild_writes_only_what_changed_and_keeps_logs_and_data() {
    let tmp = temp_dir();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let script = app.join("rebuilt.py");
    std::fs::write(&script, "import helper\n__ExtensionFactory__ = None\n").unwrap();
    std::fs::write(app.join("helper.py"), "x = 1\n").unwrap();
    std::fs::write(app.join("greeting.txt"), "hello").unwrap();
    std::fs::write(app.join("farewell.txt"), "bye").unwrap();
    let dist = tmp.path().join("dist");
    let cache = tmp.path().join("cache");
    let freeze = |data: &[&str]| {
        let mut freeze = Freeze::script(&script)
            .dist_dir(&dist)
            .env("ISAPI_FREEZE_CACHE", &cache);
        for spec in data {
            freeze = freeze.data(spec);
        }
        freeze.ok()
    };
    let both = [
        format!("{}=greeting.txt", app.join("greeting.txt").display()),
        format!("{}=texts/farewell.txt", app.join("farewell.txt").display()),
    ];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    let first = freeze(&both);
    let files = wrote(&first);
    std::fs::create_dir_all(dist.join("logs")).unwrap();
    std::fs::write(dist.join("logs/_rebuilt.log"), "a line\n").unwrap();
    std::fs::create_dir_all(dist.join("data")).unwrap();
    std::fs::write(dist.join("data/notes.sqlite3"), "rows").unwrap();

    let before = snapshot(&dist);
    let again = freeze(&both);
    assert_eq!(changed(&before, &snapshot(&dist)), Vec::<String>::new());
    assert!(files.ends_with(" written, 0 removed)"), "{files}");
    assert!(wrote(&again).ends_with(", 0 written, 0 removed)"), "{}", wrote(&again));

    // A changed module changes the archive: the DLL, the EXE and the manifest, nothing else.
    std::fs::write(app.join("helper.py"), "x = 2\n").unwrap();
    let before = snapshot(&dist);
    let rebuilt = freeze(&both);
    assert_eq!(
        changed(&before, &snapshot(&dist)),
        ["_rebuilt.dll", "manifest.json", "rebuilt.exe"]
    );
    assert!(
        wrote(&rebuilt).ends_with(", 3 written, 0 removed)"),
        "{}",
        wrote(&rebuilt)
    );

    // A data file changed in the output is put back; one the app no longer ships goes,
    // with the folder it leaves empty.
    std::fs::write(dist.join("greeting.txt"), "HELLO").unwrap();
    let before = snapshot(&dist);
    let fewer = freeze(&both[..1]);
    assert_eq!(
        changed(&before, &snapshot(&dist)),
        ["greeting.txt", "manifest.json", "texts/farewell.txt"]
    );
    assert_eq!(std::fs::read_to_string(dist.join("greeting.txt")).unwrap(), "hello");
    assert!(!dist.join("texts").exists());
    assert!(wrote(&fewer).ends_with(", 2 written, 1 removed)"), "{}", wrote(&fewer));
    assert_eq!(
        std::fs::read_to_string(dist.join("logs/_rebuilt.log")).unwrap(),
        "a line\n"
    );
    assert_eq!(
        std::fs::read_to_string(dist.join("data/notes.sqlite3")).unwrap(),
        "rows"
    );
}
