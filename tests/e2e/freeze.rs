//! Freezing the hello example and serving it over real HTTP under Wine: what a user does
//! with `isapi-freeze hello.py` and `isapi-freeze serve`, and what the output must do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use sha2::{Digest, Sha256};

use crate::support::prerequisites::wine_prefix;
use crate::support::wine::{wine, wine_ready};
use crate::support::{
    assert_contains, default_python, get, isapi_freeze, post, py_dll, py_zip, repo, run_windows, shared, stubs,
    temp_dir, test_programs, win_path, windows_python, Connection, Freeze, Frozen, Host,
};

fn hello_script() -> PathBuf {
    repo().join("examples/hello/hello.py")
}

/// One frozen hello shared by the tests that only read it.
fn hello() -> &'static Frozen {
    shared(&hello_script())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs isapi-freeze with `args` (a subcommand and its arguments) in the checkout.
fn cli(args: &[&str]) -> Output {
    isapi_freeze()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("isapi-freeze runs")
}

#[test]
fn output_directory_is_self_contained() {
    let dist = &hello().dist;
    // Exactly what hello runs: no libcrypto, libssl, _socket or asyncio's modules, which
    // only the standard library's optional or in-function imports name. pyexpat is the
    // installer's (it parses applicationHost.config), _ctypes isapi's (error texts), select
    // subprocess's, unicodedata and _bz2 the idna and bz2 codecs' (any code can look a codec
    // up by name).
    assert_eq!(output_files(dist), hello_files());
    // No Python source of the app: only the archive inside the DLL has it, compiled.
    assert!(!dist.join("hello.py").exists());
}

/// The names of an output folder's files, sorted.
pub fn output_files(dist: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a freeze of hello writes, sorted.
pub fn hello_files() -> Vec<String> {
    let mut names: Vec<String> = [
        "_bz2.pyd",
        "_ctypes.pyd",
        "_hello.dll",
        "hello.exe",
        "isapi_freeze_runtime.dll",
        "libffi-8.dll",
        "manifest.json",
        "pyexpat.pyd",
        &py_dll(),
        "select.pyd",
        "unicodedata.pyd",
        "vcruntime140.dll",
        "vcruntime140_1.dll",
    ]
    .map(String::from)
    .to_vec();
    if !default_python().encodings_in_archive() {
        names.push(py_zip());
    }
    names.sort();
    names
}

#[test]
fn get_with_query_is_answered_by_the_script() {
    let host = Host::start(&hello().dll(), &[]);
    let response = get(&host.address, "/anything/here?x=1&y=two");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        response.text(),
        "method: GET\npath: /anything/here\nquery: x=1&y=two\nfrozen: dll\n"
    );
    host.stop();
}

#[test]
fn post_body_over_64_kib_is_read_back_by_the_script() {
    let host = Host::start(&hello().dll(), &[]);
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let response = post(&host.address, "/upload", &body);
    assert_eq!(response.status, 200, "{response:?}");
    let digest = isapi_freeze_format::to_hex(&Sha256::digest(&body));
    assert_eq!(
        response.text(),
        format!("method: POST\npath: /upload\nquery: \nbody: 200000 bytes, sha256 {digest}\nfrozen: dll\n")
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let host = Host::start(&hello().dll(), &[]);
    let mut connection = Connection::open(&host.address);
    for i in 0..3 {
        let response = connection.get(&format!("/n/{i}"));
        assert_eq!(
            response.text(),
            format!("method: GET\npath: /n/{i}\nquery: \nfrozen: dll\n")
        );
    }
}

#[test]
fn dll_loads_from_a_process_whose_folders_hold_no_python() {
    // isapi-host copied to a folder of its own, started in another empty folder: neither,
    // nor Wine's PATH (C:\windows\...), holds python3XY.dll, as with IIS's w3wp.exe.
    let tmp = temp_dir();
    let bin = tmp.path().join("bin");
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::copy(stubs().join("isapi-host.exe"), bin.join("isapi-host.exe")).unwrap();
    for dir in [&bin, &cwd] {
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !names.iter().any(|n| n.to_string_lossy().starts_with("python")),
            "{names:?}"
        );
    }
    let host = Host::start_from(&bin.join("isapi-host.exe"), &cwd, &hello().dll(), &[]);
    assert_eq!(get(&host.address, "/x").status, 200);
}

#[test]
fn installer_runs_the_script_as_main_and_exits_with_its_code() {
    let tmp = temp_dir();
    let finished = run_windows(&hello().exe(), &["install"], tmp.path());
    assert_eq!(finished.code, 0, "{finished:?}");
    assert_eq!(
        finished.stdout,
        "hello: serve this extension with `isapi-freeze serve DIST`"
    );

    let exits = Freeze::source(
        "exits.py",
        "import sys\n__ExtensionFactory__ = None\nif __name__ == '__main__':\n    print('argv', sys.argv[1:], sys.frozen)\n    sys.exit(7)\n",
    )
    .ok();
    let finished = run_windows(&exits.exe(), &["remove", "--verbose"], tmp.path());
    assert_eq!(finished.code, 7, "{finished:?}");
    assert_eq!(finished.stdout, "argv ['remove', '--verbose'] console_exe");
}

/// Where the archive resource's bytes sit in a frozen DLL's file.
fn archive_file_range(image: &[u8]) -> std::ops::Range<usize> {
    let pe = goblin::pe::PE::parse(image).unwrap();
    let rsrc = pe
        .sections
        .iter()
        .find(|s| s.name().ok() == Some(".rsrc"))
        .expect("a resource section");
    // The archive is the first resource and a zip: it starts with a local file header.
    let start = rsrc.pointer_to_raw_data as usize;
    let section = &image[start..start + rsrc.size_of_raw_data as usize];
    let at = section
        .windows(4)
        .position(|w| w == b"PK\x03\x04")
        .expect("a zip in the resource section");
    let end = section
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("the zip's end record")
        + 22;
    start + at..start + end
}

#[test]
fn tampered_archive_refuses_to_load_and_says_why() {
    let tampered = hello().copy();
    let dll = tampered.dll();
    let mut image = std::fs::read(&dll).unwrap();
    let range = archive_file_range(&image);
    image[range.start + range.len() / 2] ^= 0x01;
    std::fs::write(&dll, &image).unwrap();

    let finished = Host::run_refused(Host::command(&dll, &[]));
    assert_eq!(finished.code, 3, "{finished:?}");
    assert!(finished.stderr.contains("GetExtensionVersion"), "{finished:?}");
    let log = tampered.log();
    assert!(
        log.contains("the app archive in ") && log.contains("was altered or damaged"),
        "{log}"
    );
    assert_contains(&log, "refusing to run it");
    // hello.exe runs the same archive, from _hello.dll: its message names that file.
    let finished = run_windows(&tampered.exe(), &[], tampered.dir());
    assert_ne!(finished.code, 0, "{finished:?}");
    let dll_name = format!("the app archive in {} was altered or damaged", win_path(&dll));
    assert_contains(&finished.stderr, &dll_name);
}

#[test]
fn an_exception_in_the_handler_gives_a_500_and_a_logged_traceback() {
    let broken = Freeze::source(
        "broken.py",
        "from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n    'broken'\n    def HttpExtensionProc(self, ecb):\n        raise ValueError('boom ' + ecb.QueryString.decode())\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .ok();
    let host = Host::start(&broken.dll(), &[]);
    let response = get(&host.address, "/p?secret");
    assert_eq!(response.status, 500, "{response:?}");
    assert!(
        !response.text().contains("boom"),
        "the traceback must not reach the client: {}",
        response.text()
    );
    assert!(response.text().contains("Internal Server Error"));
    let log = broken.log();
    assert_contains(&log, "HttpExtensionProc failed for GET /p?secret:");
    assert_contains(&log, "ValueError: boom secret");
    // And the extension still answers.
    assert_eq!(get(&host.address, "/again?x").status, 500);
}

#[test]
fn the_interpreter_is_isolated_frozen_and_imports_from_the_archive() {
    // A module of the app whose name is also the standard library's: the app's wins, and is
    // the app's for __file__ too.
    let probe = Freeze::source(
        "probe.py",
        "import sys, isapi, threading\n\
         from isapi.simple import SimpleExtension\n\
         class E(SimpleExtension):\n    'probe'\n    def HttpExtensionProc(self, ecb):\n\
         \x20       import json, typing, code\n\
         \x20       facts = [repr(sys.frozen), str(sys.isapidllhandle > 0), repr(sys.flags.isolated), repr(sys.flags.ignore_environment),\n\
         \x20                repr(sys.path), isapi.__file__, repr(json.__spec__.loader.__class__.__name__), repr(sys.version_info[:2]),\n\
         \x20                __file__, typing.__file__, code.__file__ + ' ' + code.WHOSE]\n\
         \x20       body = '\\n'.join(facts).encode()\n\
         \x20       ecb.SendResponseHeaders('200 OK', 'Content-Type: text/plain\\r\\n\\r\\n')\n\
         \x20       ecb.WriteClient(body)\n        return 1\n\
         def __ExtensionFactory__():\n    return E()\n",
    )
    .file("code.py", "WHOSE = 'the app'\n")
    .ok();
    // Plant what a non-isolated Python would pick up: json.py in the current folder and on
    // PYTHONPATH, and a PYTHONHOME pointing at it.
    let planted = probe.dir().join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::write(
        planted.join("json.py"),
        "raise SystemExit('planted json.py was imported')\n",
    )
    .unwrap();
    // And DLLs of the same names as the output's: loaded by name from the search path
    // (the current folder is on it), these would fail the load.
    for dll in [py_dll().as_str(), "isapi_freeze_runtime.dll"] {
        std::fs::write(planted.join(dll), b"planted, not a DLL").unwrap();
    }
    let mut command = Host::command(&probe.dll(), &[]);
    command
        .current_dir(&planted)
        .env("PYTHONPATH", win_path(&planted))
        .env("PYTHONHOME", win_path(&planted));
    let host = Host::from_command(command);
    let response = get(&host.address, "/");
    let win_dist = win_path(&probe.dist);
    let lines: Vec<String> = response.text().lines().map(String::from).collect();
    assert_eq!(lines[0], "'dll'");
    assert_eq!(lines[1], "True");
    assert_eq!(lines[2], "1");
    assert_eq!(lines[3], "1");
    assert_eq!(
        lines[4],
        format!("{:?}", [format!("{win_dist}\\_probe.dll"), win_dist.clone()]).replace('"', "'")
    );
    assert_eq!(lines[5], format!("{win_dist}\\_probe.dll\\isapi\\__init__.pyc"));
    assert_eq!(lines[6], "'ArchiveImporter'");
    assert_eq!(lines[7], "(3, 11)");
    // The app's top-level modules are beside the script, where --data puts their files; the
    // standard library's are in the archive.
    assert_eq!(lines[8], format!("{win_dist}\\probe.pyc"));
    assert_eq!(lines[9], format!("{win_dist}\\_probe.dll\\typing.pyc"));
    assert_eq!(lines[10], format!("{win_dist}\\code.pyc the app"));
}

// Bad input: each gets a clear error naming the file and what to do, and writes nothing.

/// Runs `freeze` into a folder of its own and asserts the refusal: exit 1, the last line an
/// error with every `expected` part, and nothing written.
fn assert_refused(freeze: Freeze, expected: &[&str]) -> String {
    let tmp = temp_dir();
    let dist = tmp.path().join("dist");
    let out = freeze.dist_dir(&dist).output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{err}");
    for part in expected {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert!(!dist.exists(), "nothing may be written on error");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    err
}

#[test]
fn a_missing_script_is_refused() {
    assert_refused(
        Freeze::script("examples/nope.py"),
        &["script examples/nope.py does not exist"],
    );
}

#[test]
fn a_syntax_error_is_reported_with_file_and_line() {
    let freeze = Freeze::source("bad.py", "import os\n\ndef f(:\n    pass\n");
    let script = freeze.script_path().display().to_string();
    assert_refused(freeze, &[&format!("{script}:3:"), "SyntaxError"]);
}

#[test]
fn a_script_with_neither_factory_is_refused() {
    let freeze = Freeze::source("plain.py", "print('hi')\n");
    let script = freeze.script_path().display().to_string();
    assert_refused(
        freeze,
        &[&script, "defines neither __ExtensionFactory__ nor __FilterFactory__"],
    );
}

#[test]
fn a_python_folder_that_is_not_a_cpython_runtime_is_refused() {
    let tmp = temp_dir();
    assert_refused(
        Freeze::script(hello_script()).python(tmp.path()),
        &[&format!(
            "--python {} is not a Windows CPython runtime: it has no python3XY.dll",
            tmp.path().display()
        )],
    );
    // A Linux Python is not one either.
    let linux = tmp.path().join("linux");
    std::fs::create_dir(&linux).unwrap();
    std::fs::copy("/usr/bin/python3", linux.join(py_dll())).unwrap();
    assert_refused(
        Freeze::script(hello_script()).python(&linux),
        &[&format!("{}: not a PE file", py_dll())],
    );
}

#[test]
fn a_dry_run_lists_the_output_and_writes_nothing() {
    let python = windows_python();
    let freeze = Freeze::script(hello_script()).arg("--dry-run");
    let dist = freeze.dist();
    let out = freeze.output();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("would write {} (", dist.display())), "{text}");
    assert_contains(&text, "\n  _hello.dll ");
    assert_contains(&text, &format!("copy of {}/{}", python.display(), py_dll()));
    assert!(!dist.exists());
}

#[test]
fn a_regular_windows_installation_layout_is_accepted() {
    // An installation has python.exe, DLLs\ and Lib\ (sources): build one from the
    // embeddable binaries and this machine's 3.11 standard library sources.
    let tmp = temp_dir();
    let install = tmp.path().join("Python3XY");
    let embed = windows_python();
    std::fs::create_dir_all(install.join("DLLs")).unwrap();
    for entry in std::fs::read_dir(&embed).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".pyd")
            || ["libffi-8.dll", "libssl-3.dll", "libcrypto-3.dll", "sqlite3.dll"].contains(&name.as_str())
        {
            std::fs::copy(&path, install.join("DLLs").join(&name)).unwrap();
        } else if name.ends_with(".dll") || name.ends_with(".exe") {
            std::fs::copy(&path, install.join(&name)).unwrap();
        }
    }
    let stdlib = std::process::Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"])
        .output()
        .unwrap();
    let stdlib = PathBuf::from(String::from_utf8(stdlib.stdout).unwrap().trim());
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&stdlib)
        .arg(install.join("Lib"))
        .status()
        .unwrap();
    assert!(status.success());
    let installed = Freeze::script(hello_script()).python(&install).ok();
    assert_contains(&installed.stderr, "(Installation at");
    // From sources, too, hello ships only what it runs.
    assert_eq!(output_files(&installed.dist), hello_files());
    let host = Host::start(&installed.dll(), &[]);
    assert_eq!(
        get(&host.address, "/inst?1").text(),
        "method: GET\npath: /inst\nquery: 1\nfrozen: dll\n"
    );
}

#[test]
fn the_archive_is_a_pe_resource_with_its_digest_and_windows_agrees_on_the_checksum() {
    let dist = &hello().dist;
    let dll = std::fs::read(dist.join("_hello.dll")).unwrap();
    let exe = std::fs::read(dist.join("hello.exe")).unwrap();
    for (name, image) in [("_hello.dll", &dll), ("hello.exe", &exe)] {
        let pe = goblin::pe::PE::parse(image).unwrap();
        let last = pe.sections.last().unwrap();
        assert_eq!(
            last.name().unwrap(),
            ".rsrc",
            "{name}: the resources are in the last section"
        );
        let optional = pe.header.optional_header.unwrap();
        let table = *optional.data_directories.get_resource_table().unwrap();
        assert_eq!(table.virtual_address, last.virtual_address, "{name}");
        assert!(pe.resource_data.is_some(), "{name}: goblin reads the resource tree");
        // The file ends with that section: nothing is appended after the PE image.
        assert_eq!(
            image.len(),
            (last.pointer_to_raw_data + last.size_of_raw_data) as usize,
            "{name}"
        );
        // Windows' own checksum routine agrees with the header.
        let oracle = run_windows(
            &test_programs().join("pe-checksum.exe"),
            &[&win_path(&dist.join(name))],
            dist,
        );
        let (header, computed) = oracle.stdout.split_once(' ').unwrap();
        assert_eq!(
            header.strip_prefix("header=").unwrap(),
            computed.strip_prefix("computed=").unwrap(),
            "{name}: {oracle:?}"
        );
        assert_ne!(header, "header=00000000");
    }
    let archive = &dll[archive_file_range(&dll)];
    let config_at = dll.windows(21).rposition(|w| w == b"isapi-freeze-config 2").unwrap();
    let config = String::from_utf8_lossy(&dll[config_at..(config_at + 200).min(dll.len())]);
    let digest = isapi_freeze_format::to_hex(&Sha256::digest(archive));
    assert_contains(&config, &format!("archive_sha256={digest}\n"));
    assert_contains(&config, &format!("python_dll={}\nscript_module=hello\n", py_dll()));
    // The launcher carries no archive (no zip at all, and it is smaller than the archive
    // alone): its record names the loader's, by the same digest.
    let exe_pe = goblin::pe::PE::parse(&exe).unwrap();
    let rsrc = exe_pe.sections.iter().find(|s| s.name().ok() == Some(".rsrc")).unwrap();
    let rsrc = &exe[rsrc.pointer_to_raw_data as usize..(rsrc.pointer_to_raw_data + rsrc.size_of_raw_data) as usize];
    assert!(!rsrc.windows(4).any(|w| w == b"PK\x03\x04"), "hello.exe carries a zip");
    assert!(
        exe.len() < archive.len(),
        "hello.exe is {} bytes, the archive {}",
        exe.len(),
        archive.len()
    );
    let exe_config_at = exe.windows(21).rposition(|w| w == b"isapi-freeze-config 2").unwrap();
    let exe_config = String::from_utf8_lossy(&exe[exe_config_at..(exe_config_at + 400).min(exe.len())]);
    assert_contains(&exe_config, &format!("archive_sha256={digest}\n"));
    assert_contains(&exe_config, "\narchive_in=_hello.dll\n");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    // The standard library the app imports is in the archive, `encodings` too: the runtime
    // puts its importer in place before Python imports it, and ships no python3XY.zip.
    let stdlib_names = |path: &Path| -> BTreeSet<String> {
        let zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        zip.file_names().map(|n| n.unwrap().into_owned()).collect()
    };
    let stdlib = stdlib_names(&windows_python().join(py_zip()));
    let (from_stdlib, own): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| stdlib.contains(n));
    // The extension modules hello leaves out have stand-ins whose import names --include.
    let mut left_out = vec![
        "_asyncio.pyc",
        "_decimal.pyc",
        "_elementtree.pyc",
        "_hashlib.pyc",
        "_lzma.pyc",
        "_multiprocessing.pyc",
        "_overlapped.pyc",
        "_queue.pyc",
        "_socket.pyc",
        "_ssl.pyc",
    ];
    if default_python().minor >= 12 {
        // platform imports it from 3.12 on, in a try.
        left_out.push("_wmi.pyc");
    }
    left_out.sort();
    // Any other stand-in stays in `own`, which must then differ.
    let (stand_ins, own): (Vec<String>, Vec<String>) = own.into_iter().partition(|n| left_out.contains(&n.as_str()));
    assert_eq!(stand_ins, left_out);
    assert_eq!(
        own,
        [
            "_isapi_freeze_boot.pyc",
            "hello.pyc",
            "isapi/__init__.pyc",
            "isapi/_errorpage.pyc",
            "isapi/_iisconfig.pyc",
            "isapi/asgi.pyc",
            "isapi/install.pyc",
            "isapi/isapicon.pyc",
            "isapi/simple.pyc",
            "isapi/threaded_extension.pyc",
            "isapi/wsgi.pyc",
            "isapi_wsgi.pyc",
            "win32traceutil.pyc",
        ]
    );
    for module in ["importlib/__init__.pyc", "traceback.pyc", "json/__init__.pyc"] {
        assert!(from_stdlib.iter().any(|n| n == module), "{module} in {from_stdlib:?}");
    }
    let encodings: BTreeSet<&String> = stdlib.iter().filter(|n| n.starts_with("encodings/")).collect();
    let archived: BTreeSet<&String> = from_stdlib.iter().filter(|n| n.starts_with("encodings/")).collect();
    assert_eq!(archived, encodings);
    assert!(!dist.join(py_zip()).exists());
    let hello = zip.by_name("hello.pyc").unwrap();
    assert_eq!(hello.last_modified(), Some(zip::DateTime::default()));
}

#[test]
fn serve_runs_isapi_host_on_the_output_until_its_input_ends() {
    wine_ready();
    let mut command = isapi_freeze();
    command
        .args([
            "serve",
            hello().dist.to_str().unwrap(),
            "--stop-on-eof",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("WINEPREFIX", wine_prefix())
        .env("WINEDEBUG", "-all")
        .env("WINE", wine())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let host = Host::from_command(command);
    let response = get(&host.address, "/served?by=serve");
    assert_eq!(
        response.text(),
        "method: GET\npath: /served\nquery: by=serve\nfrozen: dll\n"
    );
    let finished = host.stop();
    assert!(
        finished
            .stdout
            .contains("isapi-host: extension \"isapi-freeze hello example\""),
        "{finished:?}"
    );
}

#[test]
fn serve_says_what_to_do_with_a_folder_that_is_not_an_output() {
    let tmp = temp_dir();
    let out = cli(&["serve", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} has no _NAME.dll: freeze a script into it first (isapi-freeze SCRIPT.py --dist-dir {})\n",
            tmp.path().display(),
            tmp.path().display()
        )
    );
}

#[test]
fn a_build_python_that_cannot_run_is_refused() {
    assert_refused(
        Freeze::script(hello_script())
            .arg("--build-python")
            .arg("/nonexistent/python3"),
        &["cannot run the build Python /nonexistent/python3; install Python 3.11 or pass --build-python PATH"],
    );
}

/// Every file of an output folder (logs aside) with its bytes, by relative path.
fn snapshot(dist: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dist.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dist).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_same_inputs_from_different_folders_give_byte_identical_output() {
    let tmp = temp_dir();
    let mut outputs = Vec::new();
    for place in ["zq-build-folder-one/build", "zq-build-folder-two/elsewhere/deeper"] {
        let folder = tmp.path().join(place);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(hello_script(), folder.join("hello.py")).unwrap();
        let frozen = Freeze::script(folder.join("hello.py"))
            .dist_dir(folder.join("dist"))
            .ok();
        outputs.push(snapshot(&frozen.dist));
    }
    assert_eq!(
        outputs[0].keys().collect::<Vec<_>>(),
        outputs[1].keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &outputs[0] {
        assert!(bytes == &outputs[1][name], "{name} differs between the two freezes");
    }
    // Nothing of the build folders is embedded.
    for (name, bytes) in &outputs[0] {
        let marker = b"zq-build-folder";
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "{name} holds the build path"
        );
    }
}

/// How many files an output's manifest.json lists.
fn manifest_files(dist: &Path) -> usize {
    let text = std::fs::read_to_string(dist.join("manifest.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["files"].as_array().unwrap().len()
}

#[test]
fn verify_names_every_file_that_differs_from_the_manifest() {
    let copy = hello().copy();
    let dist = &copy.dist;
    let verify = || cli(&["verify", dist.to_str().unwrap()]);
    let clean = verify();
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let files = manifest_files(dist);
    assert_eq!(
        String::from_utf8_lossy(&clean.stdout),
        format!("ok: {} files match {}/manifest.json\n", files, dist.display())
    );

    let changed = dist.join(py_dll());
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&changed, bytes).unwrap();
    std::fs::remove_file(dist.join("select.pyd")).unwrap();
    std::fs::write(dist.join("extra.txt"), "added on the server").unwrap();
    std::fs::create_dir_all(dist.join("logs")).unwrap();
    std::fs::write(dist.join("logs/_hello.log"), "logs are the runtime's").unwrap();
    let dirty = verify();
    assert_eq!(dirty.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&dirty.stdout),
        format!("changed: {}\nmissing: select.pyd\nunexpected: extra.txt\n", py_dll())
    );
    assert_eq!(
        stderr(&dirty),
        format!(
            "error: {} does not match its manifest (3 files differ); freeze and deploy it again\n",
            dist.display()
        )
    );
}

#[test]
fn a_script_named_like_a_standard_library_module_is_refused() {
    let freeze = Freeze::source("json.py", "def __ExtensionFactory__():\n    pass\n");
    let script = freeze.script_path().to_path_buf();
    assert_refused(
        freeze,
        &[&format!(
            "script {} has the name of the standard-library module `json`, which it would hide from every other module; \
             rename the script (e.g. to json_app.py)",
            script.display()
        )],
    );
}

#[test]
fn a_symbolic_link_loop_in_data_is_refused_with_its_place() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::os::unix::fs::symlink(&data, data.join("sub/back")).unwrap();
    assert_refused(
        Freeze::script(hello_script()).data(&format!("{}=assets", data.display())),
        &[
            &format!("cannot read --data {}", data.display()),
            &format!("a symbolic link loops back to {}", data.display()),
        ],
    );
}

/// A copy of `from` (a folder of files and folders of files) in a new temporary folder.
fn copied_folder(from: &Path, tmp: &Path, name: &str) -> PathBuf {
    let to = tmp.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        } else if path.is_dir() {
            copied_folder(&path, &to, path.file_name().unwrap().to_str().unwrap());
        }
    }
    to
}

#[test]
fn truncated_or_foreign_stubs_are_refused_and_nothing_is_written() {
    let tmp = temp_dir();
    for (file, damage, expected) in [
        (
            "isapi_freeze_loader.dll".to_string(),
            4096usize,
            "isapi_freeze_loader.dll: not a PE file: Malformed entity",
        ),
        (
            "isapi-freeze-launcher.exe".to_string(),
            300,
            "isapi-freeze-launcher.exe: not a PE file",
        ),
        (
            default_python().runtime_stub(),
            300,
            "isapi_freeze_runtime.dll is not a PE file",
        ),
    ] {
        let file = file.as_str();
        let stubs = copied_folder(&stubs(), tmp.path(), &format!("stubs-{file}"));
        let bytes = std::fs::read(stubs.join(file)).unwrap();
        std::fs::write(stubs.join(file), &bytes[..damage]).unwrap();
        assert_refused(Freeze::script(hello_script()).arg("--stubs").arg(&stubs), &[expected]);
    }
}

#[test]
fn a_damaged_windows_python_is_refused_and_nothing_is_written() {
    let tmp = temp_dir();
    for (file, expected) in [
        (py_zip(), format!("{} is not a zip file", py_zip())),
        (py_dll(), format!("{}: not a PE file", py_dll())),
    ] {
        let (file, expected) = (file.as_str(), expected.as_str());
        let python = copied_folder(&windows_python(), tmp.path(), &format!("py-{file}"));
        let bytes = std::fs::read(python.join(file)).unwrap();
        std::fs::write(python.join(file), &bytes[..200]).unwrap();
        assert_refused(Freeze::script(hello_script()).python(&python), &[expected]);
    }
}

#[test]
fn files_that_cannot_be_read_are_named_and_nothing_is_written() {
    // Root reads every file, so the freezer runs as `nobody` here (with Debian's own Python
    // 3.11 as the build Python: the usual one may sit in root's home).
    let tmp = temp_dir();
    let work = tmp.path();
    std::fs::set_permissions(work, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let write = |rel: &str, text: &str, mode: u32| {
        let path = work.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::set_permissions(
            path.parent().unwrap(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        path
    };
    let python = windows_python();
    let cases = [
        (
            "module",
            "import helper\n",
            "helper.py",
            "cannot read {}: PermissionError",
        ),
        ("data", "import pkg\n", "pkg/table.csv", "{}"),
        ("script", "", "", "{}"),
    ];
    for (name, imports, unreadable, expected) in cases {
        let script = write(
            &format!("{name}/app.py"),
            &format!("{imports}__ExtensionFactory__ = None\n"),
            0o644,
        );
        if name == "module" {
            write(&format!("{name}/helper.py"), "x = 1\n", 0o000);
        }
        if name == "data" {
            write(&format!("{name}/pkg/__init__.py"), "", 0o644);
            write(&format!("{name}/pkg/table.csv"), "a,b\n", 0o000);
        }
        if name == "script" {
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        }
        let bad = if unreadable.is_empty() {
            script.clone()
        } else {
            work.join(name).join(unreadable)
        };
        let dist = work.join(name).join("dist");
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_isapi-freeze"))
            .arg(&script)
            .args([
                "--python",
                python.to_str().unwrap(),
                "--build-python",
                "/usr/bin/python3",
                "--dist-dir",
            ])
            .arg(&dist)
            .arg("--stubs")
            .arg(stubs())
            .env("ISAPI_FREEZE_CACHE", "")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{name}: {err}");
        assert!(
            last.contains(&expected.replace("{}", &bad.display().to_string())),
            "{name}: {err}"
        );
        assert!(!dist.exists(), "{name}: nothing may be written");
    }
}

/// The states a counter drew on a terminal (`\r`, erase line, state), in order, for the
/// counter whose states start with `label`.
fn counter_states(terminal: &str, label: &str) -> Vec<String> {
    terminal
        .split('\r')
        .filter_map(|part| part.strip_prefix("\x1b[2K"))
        .map(|state| state.trim_end_matches('\n').to_string())
        .filter(|state| state.starts_with(label))
        .collect()
}

#[test]
fn progress_is_a_counter_on_a_terminal_plain_lines_in_a_pipe_and_nothing_when_quiet() {
    let tmp = temp_dir();
    let freeze = |dist: &str, extra: &str, terminal: bool| -> String {
        let command = format!(
            "'{}' '{}' --python '{}' --path '{}' --dist-dir '{}' {extra}",
            env!("CARGO_BIN_EXE_isapi-freeze"),
            repo().join("examples/flask_app/app.py").display(),
            windows_python().display(),
            crate::support::site("flask").display(),
            tmp.path().join(dist).display(),
        );
        let mut run = if terminal {
            // util-linux's `script` gives the command a pseudo-terminal and copies what it
            // writes there to stdout.
            let mut c = std::process::Command::new("script");
            c.args(["-qec", &command, "/dev/null"]);
            c
        } else {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &format!("{command} 2>&1")]);
            c
        };
        let out = run
            .env("ISAPI_FREEZE_STUBS", stubs())
            .env("TERM", "xterm")
            .env("ISAPI_FREEZE_CACHE", "")
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };

    let piped = freeze("piped", "", false);
    assert!(!piped.contains(['\r', '\x1b']), "{piped:?}");
    let total: usize = piped
        .lines()
        .find_map(|l| l.strip_prefix("compiling ")?.strip_suffix(" modules")?.parse().ok())
        .unwrap_or_else(|| panic!("no compiling line in {piped}"));
    assert!(total > 64, "the Flask example compiles more than one slice: {total}");

    let terminal = freeze("terminal", "", true);
    let compiled = counter_states(&terminal, "compiling ");
    let mut expected: Vec<String> = (0..total)
        .step_by(64)
        .chain([total])
        .map(|done| format!("compiling {done}/{total} modules"))
        .collect();
    expected.dedup();
    assert_eq!(compiled, expected, "{terminal:?}");
    assert!(
        !terminal.contains(&format!("compiling {total} modules")),
        "{terminal:?}"
    );
    let read = counter_states(&terminal, "following the imports: ");
    assert!(read.len() > 2, "{terminal:?}");
    // The counter's last state stays on its line, and the next message starts a line.
    assert_contains(&terminal, &format!("compiling {total}/{total} modules\r\nwrote "));
    assert_contains(&terminal, " modules read\r\nfound ");

    assert_eq!(freeze("quiet-piped", "--quiet", false), "");
    assert_eq!(freeze("quiet-terminal", "--quiet", true), "");
}
