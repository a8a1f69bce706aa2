//! Which of the standard library's extension modules (and the DLLs they load) an output
//! ships: those the app's code imports, anywhere, and not those only the standard
//! library's optional or in-function imports name; a left-out one fails to import naming
//! `--include`.

use crate::freeze::{hello_files, output_files};
use crate::support::{fixture, get, Freeze, Host};

/// hello's files with `more`, sorted.
fn hello_files_and(more: &[&str]) -> Vec<String> {
    let mut names = hello_files();
    names.retain(|n| !n.starts_with("_hello.") && n != "hello.exe");
    names.extend(more.iter().map(|n| n.to_string()));
    names.sort();
    names
}

#[test]
fn an_import_inside_the_scripts_function_ships_the_module_and_its_dlls() {
    let app = Freeze::script(fixture("scripts/lazy_ssl.py")).arg("--strict").ok();
    assert_eq!(
        output_files(&app.dist),
        hello_files_and(&[
            "_lazy_ssl.dll",
            "lazy_ssl.exe",
            "_socket.pyd",
            "_ssl.pyd",
            "libcrypto-3.dll",
            "libssl-3.dll",
        ])
    );
    let host = Host::start(&app.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "OpenSSL");
    host.stop();
}

#[test]
fn a_left_out_extension_module_fails_to_import_naming_include() {
    let app = Freeze::script(fixture("scripts/mp_queue.py")).ok();
    // multiprocessing's reduction imports socket; its queues, imported in a function,
    // import _multiprocessing.
    assert_eq!(
        output_files(&app.dist),
        hello_files_and(&["_mp_queue.dll", "mp_queue.exe", "_socket.pyd"])
    );
    let host = Host::start(&app.dll(), &[]);
    assert_eq!(
        get(&host.address, "/").text(),
        "ModuleNotFoundError _multiprocessing: No module named '_multiprocessing': isapi-freeze left \
         this extension module out, as only the standard library's optional or in-function \
         imports name it; freeze again with --include _multiprocessing to ship it"
    );
    host.stop();
}

#[test]
fn include_ships_a_left_out_extension_module() {
    let app = Freeze::script(fixture("scripts/mp_queue.py"))
        .args(["--include", "_multiprocessing"])
        .ok();
    assert_eq!(
        output_files(&app.dist),
        hello_files_and(&["_mp_queue.dll", "mp_queue.exe", "_socket.pyd", "_multiprocessing.pyd"])
    );
    let host = Host::start(&app.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "queued, got it back");
    host.stop();
}

#[test]
fn every_codec_works_as_the_standard_library_has_it() {
    // re's named characters and the idna codec need unicodedata, imported only in a
    // function or by a codec looked up by name; the bz2 codec needs _bz2.
    let app = Freeze::script(fixture("scripts/named_character.py")).ok();
    assert_eq!(
        output_files(&app.dist),
        hello_files_and(&["_named_character.dll", "named_character.exe"])
    );
    let host = Host::start(&app.dll(), &[]);
    assert_eq!(get(&host.address, "/").text(), "a-b xn--bcher-kva.example 11");
    host.stop();
}
