//! Two frozen apps for one CPython version in one process share one interpreter: the first
//! app's runtime runs it, and the second app's runtime, instead of starting a CPython of its
//! own, hands its app to the first (`isapi_freeze_join`, stub/format's `exports::JOIN`) and
//! forwards its ISAPI calls there. The first runtime serves it as an app of its own: its
//! archive verified and imported from, its boot module, log, factory objects and reload.

use std::ffi::c_void;

use isapi_freeze_format::exports::{self, JoinFn, JoinedApp, JOIN_CONTRACT};
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, HMODULE, TRUE};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleHandleExW, GetProcAddress, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
};

use crate::apps;
use crate::interpreter::{self, describe, Started};
use crate::other_pythons::SharingHost;
use crate::served::{self, ModuleKind, ServedModule};

/// Takes a reference on `module` so that it stays loaded for the life of the process: an
/// app's archive is read in place from its loader's resources, and a runtime that serves
/// other apps must outlive its own app's FreeLibrary.
pub fn pin(module: HMODULE) {
    let mut pinned: HMODULE = std::ptr::null_mut();
    // SAFETY: a module handle is its base address, an address inside it; without
    // UNCHANGED_REFCOUNT the call adds a reference, which is never released on purpose.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
            module as *const u16,
            &mut pinned,
        );
    }
}

/// The joining side: hands `served` (this runtime's app) to the runtime of `host`.
pub fn join(host: &SharingHost, served: &ServedModule) -> Result<JoinedApp, String> {
    let name: Vec<u8> = exports::JOIN.bytes().chain([0]).collect();
    // SAFETY: `host.runtime` is a loaded runtime (it answered isapi_freeze_serving); the name
    // is NUL-terminated.
    let Some(export) = (unsafe { GetProcAddress(host.runtime, name.as_ptr()) }) else {
        return Err(format!(
            "the frozen app {} runs Python in this process, and its isapi-freeze runtime is older than \
             this one and cannot share its interpreter: freeze both apps with one isapi-freeze version, \
             or give this app an application pool of its own",
            host.app
        ));
    };
    pin(host.runtime);
    // SAFETY: the export named JOIN has the contract's type (stub/format's `exports`).
    let join: JoinFn = unsafe { std::mem::transmute(export) };
    let mut joined = std::mem::MaybeUninit::<JoinedApp>::uninit();
    // SAFETY: `served.handle` is our loader's module; `joined` is written on TRUE only.
    let ok = unsafe { join(JOIN_CONTRACT, served.handle as *mut c_void, joined.as_mut_ptr()) };
    if ok == FALSE {
        return Err(format!(
            "the frozen app {} runs Python in this process and did not take this app into its \
             interpreter; the reason is logged above",
            host.app
        ));
    }
    // SAFETY: the host filled it, returning TRUE.
    Ok(unsafe { joined.assume_init() })
}

/// The serving side: another frozen app's runtime hands its app (its loader `module`) to
/// this runtime, whose interpreter runs. Fills `joined` with that app's entry points.
///
/// # Safety
/// `module` is the joining app's loader module; `joined` is writable.
#[no_mangle]
pub unsafe extern "system" fn isapi_freeze_join(contract: u32, module: *mut c_void, joined: *mut JoinedApp) -> BOOL {
    crate::exports::guarded(FALSE, || {
        let served = served::describe(module, ModuleKind::Dll);
        let refuse = |served: &ServedModule, why: String| {
            isapi_freeze_diagnostics::log_error(&served.dir, &served.file_name, &format!("cannot start Python: {why}"));
            FALSE
        };
        if contract != JOIN_CONTRACT {
            return refuse(
                &served,
                format!(
                    "the frozen app {} runs Python in this process with an isapi-freeze runtime of another \
                     version (sharing contract {JOIN_CONTRACT}, this app's {contract}): freeze both apps \
                     with one isapi-freeze version, or give this app an application pool of its own",
                    first_app_path()
                ),
            );
        }
        if !matches!(interpreter::started(), Some(Started::Here)) {
            return refuse(
                &served,
                "the runtime asked to share its interpreter does not run one".to_string(),
            );
        }
        pin(module);
        let archive = match crate::archive::open(&served) {
            Ok(archive) => archive,
            Err(why) => return refuse(&served, why),
        };
        let ours = apps::get(0).map(|app| app.archive.config().python_dll.clone());
        if ours.as_deref() != Some(archive.config().python_dll.as_str()) {
            return refuse(
                &served,
                format!(
                    "it is frozen for {} but the interpreter running in this process is {}",
                    archive.config().python_dll,
                    ours.unwrap_or_default()
                ),
            );
        }
        let app = apps::register(served, archive);
        let booted = apps::serving(app.index, || {
            interpreter::attach(|py| interpreter::run_boot(py, app, None).map_err(|e| describe(py, &e)))
        });
        if let Err(why) = booted {
            return refuse(&app.served, why);
        }
        let first = first_app_path();
        apps::serving(app.index, || {
            served::log(&format!(
                "sharing the Python interpreter that the frozen app {first} runs in this process"
            ))
        });
        apps::serving(0, || {
            served::log(&format!(
                "the frozen app {} shares this app's Python interpreter",
                app.served.path.display()
            ))
        });
        // SAFETY: the caller passes a writable JoinedApp.
        unsafe {
            joined.write(JoinedApp {
                app: app.index,
                get_extension_version: crate::exports::app_get_extension_version,
                http_extension_proc: crate::exports::app_http_extension_proc,
                terminate_extension: crate::exports::app_terminate_extension,
                get_filter_version: crate::exports::app_get_filter_version,
                http_filter_proc: crate::exports::app_http_filter_proc,
                terminate_filter: crate::exports::app_terminate_filter,
            })
        };
        TRUE
    })
}

fn first_app_path() -> String {
    apps::get(0)
        .map(|app| app.served.path.display().to_string())
        .unwrap_or_default()
}

/// The Python-side view for the boot module of app `index`: the top-level modules it ships
/// with other contents than an app that was here before it, each with that app's path.
pub fn clashing_modules(index: usize) -> Vec<(String, String)> {
    let Some(app) = apps::get(index) else {
        return Vec::new();
    };
    let mut clashes = Vec::new();
    for name in &app.archive.config().app_modules {
        let earlier = apps::all()
            .into_iter()
            .take(index)
            .find(|other| other.archive.differs_in(&app.archive, name));
        if let Some(other) = earlier {
            clashes.push((name.clone(), other.served.path.display().to_string()));
        }
    }
    clashes
}
