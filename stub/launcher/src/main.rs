//! `NAME.exe`, the launcher: made from the same script and archive as the loader, it runs
//! the script as `__main__` (a pywin32-style script's `install`/`remove` command line). It
//! carries no archive of its own: it first checks that the loader beside it holds the
//! archive of the same freeze, then loads the runtime DLL by full path from its own folder
//! and hands it its own module (whose config names the loader); the runtime returns the
//! exit code.

#[cfg(windows)]
fn main() {
    use std::os::windows::ffi::OsStrExt;

    use isapi_freeze_format::{exports, RUNTIME_DLL};
    use windows_sys::Win32::Foundation::GetLastError;
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleHandleW, GetProcAddress, LoadLibraryExW, LOAD_WITH_ALTERED_SEARCH_PATH,
    };

    let exe = std::env::current_exe().unwrap_or_default();
    let own_name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // SAFETY: GetModuleHandleW(NULL) is this executable's own handle, loaded for good.
    let checked = unsafe {
        let own = GetModuleHandleW(std::ptr::null());
        isapi_freeze_embedded::config(own, &exe.display().to_string())
            .and_then(|config| isapi_freeze_embedded::archive_of(own, &config, exe.parent().unwrap_or(&exe), &own_name))
    };
    // Checked before the runtime loads: an exe copied away alone lacks both, and the
    // archive's file is the one to name.
    if let Err(why) = checked {
        eprintln!("{why}");
        std::process::exit(1);
    }
    let runtime = exe.with_file_name(RUNTIME_DLL);
    let wide: Vec<u16> = runtime.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated; with a full path, LOAD_WITH_ALTERED_SEARCH_PATH makes
    // the runtime's folder (python3XY.dll's too) the first place its imports are looked for.
    let module = unsafe { LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), LOAD_WITH_ALTERED_SEARCH_PATH) };
    if module.is_null() {
        // SAFETY: reads this thread's last error, set by the failed call above.
        let code = unsafe { GetLastError() };
        eprintln!(
            "{}: cannot load {}: Windows error {code}; copy the whole output folder, which holds it and python3XY.dll",
            exe.display(),
            runtime.display()
        );
        std::process::exit(1);
    }
    let name: Vec<u8> = exports::RUN_MAIN.bytes().chain([0]).collect();
    // SAFETY: `module` is loaded and `name` NUL-terminated.
    let Some(raw) = (unsafe { GetProcAddress(module, name.as_ptr()) }) else {
        eprintln!(
            "{}: {} does not export {}: it is not the runtime of this launcher's isapi-freeze",
            exe.display(),
            runtime.display(),
            exports::RUN_MAIN
        );
        std::process::exit(1);
    };
    // SAFETY: the runtime defines this export with the contract's type (exports::RunMainFn);
    // GetModuleHandleW(NULL) is this executable's own handle, valid for the whole process.
    let code = unsafe {
        let run_main: exports::RunMainFn = std::mem::transmute(raw);
        run_main(GetModuleHandleW(std::ptr::null()))
    };
    std::process::exit(code);
}

#[cfg(not(windows))]
fn main() {
    eprintln!("isapi-freeze-launcher is a Windows program");
    std::process::exit(1);
}
