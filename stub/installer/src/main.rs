//! `SCRIPT.exe`: the install executable made from the same script and archive as the
//! loader. It links the runtime DLL (found beside it, as an exe's folder is searched first)
//! and hands it its own module, whose resources hold the archive; the runtime runs the
//! script as `__main__` and returns its exit code.

#[cfg(windows)]
fn main() {
    #[link(name = "isapi_freeze_runtime", kind = "raw-dylib")]
    extern "C" {
        fn isapi_freeze_run_main(module: *mut std::ffi::c_void) -> i32;
    }
    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleW(name: *const u16) -> *mut std::ffi::c_void;
    }
    // SAFETY: GetModuleHandleW(NULL) is this executable's own handle, valid for the life of
    // the process; the runtime export takes exactly that.
    let code = unsafe { isapi_freeze_run_main(GetModuleHandleW(std::ptr::null())) };
    std::process::exit(code);
}

#[cfg(not(windows))]
fn main() {
    eprintln!("isapi-freeze-installer is a Windows program");
    std::process::exit(1);
}
