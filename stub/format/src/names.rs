//! The names of the files in an output folder and in the stubs folder the CLI carries: the
//! loader is `_NAME.dll`, the launcher `NAME.exe`, their logs `logs/_NAME.log` and
//! `logs/NAME.log`, all derived from the script's module name.

/// The embedded-Python runtime DLL, copied into every output folder beside the loader. The
/// loader loads it by full path after loading `python3XY.dll` by full path.
pub const RUNTIME_DLL: &str = "isapi_freeze_runtime.dll";
/// The template of the ISAPI loader DLL, as the stub build names it.
pub const LOADER_TEMPLATE: &str = "isapi_freeze_loader.dll";
/// The template of the launcher executable (`NAME.exe`: runs the script as `__main__`, e.g.
/// to install it), as the stub build names it.
pub const LAUNCHER_TEMPLATE: &str = "isapi-freeze-launcher.exe";
/// The HTTP server that drives an ISAPI DLL without IIS (used by `isapi-freeze serve`).
pub const HOST_EXE: &str = "isapi-host.exe";
/// In the stubs folder: a stand-in for Windows' bcryptprimitives.dll (`ProcessPrng`, which
/// Rust programs import and Wine 8 lacks), put into the Wine prefix `serve` runs in.
pub const WINE_PRNG_STAND_IN: &str = "wine/bcryptprimitives.dll";

/// The archive member that the runtime executes first: it installs the in-memory importer.
pub const BOOT_MODULE: &str = "_isapi_freeze_boot";

/// manifest.json: every file of an output folder with its SHA-256 (see `manifest`).
pub const MANIFEST: &str = "manifest.json";

/// Folder (inside the output folder) where the loader and the runtime write their log.
pub const LOG_DIR: &str = "logs";

/// The ISAPI DLL IIS loads for the script module `module`: `_hello.dll`.
pub fn loader_file_name(module: &str) -> String {
    format!("_{module}.dll")
}

/// The launcher made from the script module `module`: `hello.exe`.
pub fn launcher_file_name(module: &str) -> String {
    format!("{module}.exe")
}

/// The log file of a loader or launcher named `module_file_name` (e.g. `_hello.dll` ->
/// `logs/_hello.log`), relative to the output folder.
pub fn log_file_name(module_file_name: &str) -> String {
    let stem = module_file_name
        .rsplit_once('.')
        .map_or(module_file_name, |(stem, _)| stem);
    format!("{LOG_DIR}/{stem}.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_files_are_named_after_the_script_module() {
        assert_eq!(loader_file_name("hello"), "_hello.dll");
        assert_eq!(launcher_file_name("hello"), "hello.exe");
        assert_eq!(log_file_name(&loader_file_name("hello")), "logs/_hello.log");
        assert_eq!(log_file_name(&launcher_file_name("hello")), "logs/hello.log");
        assert_eq!(log_file_name("noext"), "logs/noext.log");
    }
}
