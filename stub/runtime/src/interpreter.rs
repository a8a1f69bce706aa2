//! Starting CPython once per process, isolated: no environment variables, no user site, no
//! current directory; `sys.path` is the app archive (added by the boot module), the
//! runtime's stdlib zip and the output directory. The boot module comes from the archive.
//! A served DLL releases the GIL after start so that IIS threads can take it per call.
//! A frozen app that joins later (`sharing`) runs its own boot module in the same one.

use std::os::windows::ffi::OsStrExt;
use std::sync::{Mutex, OnceLock};

use isapi_freeze_format as format;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyModule};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

use crate::served::{ModuleKind, ServedModule};

/// How this runtime's app runs once started.
pub enum Started {
    /// In this runtime's interpreter: the app is index 0 of `apps`.
    Here,
    /// In the interpreter another frozen app's runtime runs in this process (same CPython
    /// version): every ISAPI call goes to that runtime's entry points for this app.
    Joined(isapi_freeze_format::exports::JoinedApp),
}

static STARTED: OnceLock<Result<Started, String>> = OnceLock::new();
/// Serializes the first start: two IIS threads may make the first calls at once.
static STARTING: Mutex<()> = Mutex::new(());

/// Starts Python for `served` the first time it is called; later calls get the same result.
pub fn start(served: &'static ServedModule) -> Result<&'static Started, &'static str> {
    let _guard = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    STARTED
        .get_or_init(|| {
            let started = start_now(served);
            if let Err(why) = &started {
                crate::served::log_error(&format!("cannot start Python: {why}"));
            }
            started
        })
        .as_ref()
        .map_err(String::as_str)
}

pub fn started() -> Option<&'static Started> {
    STARTED.get().and_then(|s| s.as_ref().ok())
}

fn start_now(served: &ServedModule) -> Result<Started, String> {
    let archive = crate::archive::open(served)?;
    let config = archive.config().clone();
    // Without it CPython stops with "failed to get the Python codec of the filesystem
    // encoding", which does not say what is wrong.
    // Without `encodings` in the archive, the freezer writes python3XY.zip only when it
    // has something to hold (--full-stdlib).
    let stdlib = served
        .dir
        .join(format!("{}.zip", config.python_dll.trim_end_matches(".dll")));
    let encodings_in_archive = archive.has(ENCODINGS);
    let stdlib = match stdlib.is_file() {
        true => Some(stdlib),
        false if encodings_in_archive => None,
        false => {
            return Err(format!(
                "the standard library {} is missing: copy the whole output folder (`isapi-freeze verify` lists what differs)",
                stdlib.display()
            ))
        }
    };
    // Held until this app is marked running: two apps' first requests may start them at once,
    // and each runtime's own STARTING lock does not see the other's.
    let _exclusive = (served.kind == ModuleKind::Dll).then(crate::other_pythons::StartLock::take);
    if served.kind == ModuleKind::Dll {
        // Before anything of pyo3's: adding `_isapi_freeze` to a running interpreter's
        // inittab panics, and a second CPython version beside the first must not start.
        // A frozen app of the same version already running takes this app into its own.
        if let Some(host) = crate::other_pythons::shareable_or_refuse(&config.python_dll)? {
            return crate::sharing::join(&host, served).map(Started::Joined);
        }
    }
    crate::native::register();
    if served.kind == ModuleKind::Dll {
        // Another app may come to share this interpreter; it may import from this app's
        // archive (on sys.path) after this app's loader is unloaded.
        crate::sharing::pin(served.handle as _);
    }
    let app = crate::apps::register(served.clone(), archive);
    let main_phase = if encodings_in_archive {
        Some(initialize_main_export(&config.python_dll)?)
    } else {
        None
    };
    // SAFETY: called once per process (under STARTING, guarded by STARTED), before any
    // other use of the Python C API.
    let boot = unsafe { initialize(served, stdlib.as_deref(), app, main_phase)? };
    Python::attach(|py| run_boot(py, app, boot).map_err(|e| describe(py, &e)))?;
    if served.kind == ModuleKind::Dll {
        // SAFETY: this thread holds the GIL since initialization; releasing it lets any
        // thread take it with PyGILState_Ensure. The thread state is never resumed.
        unsafe { ffi::PyEval_SaveThread() };
        crate::other_pythons::mark_running(&served.path, &config.python_dll);
    }
    Ok(Started::Here)
}

fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    s.encode_wide().chain([0]).collect()
}

unsafe fn check(status: ffi::PyStatus, what: &str) -> Result<(), String> {
    if ffi::PyStatus_Exception(status) == 0 {
        return Ok(());
    }
    let msg = if status.err_msg.is_null() {
        "unknown error".to_string()
    } else {
        std::ffi::CStr::from_ptr(status.err_msg).to_string_lossy().into_owned()
    };
    Err(format!("{what}: {msg}"))
}

/// The freezer puts the `encodings` package in the archive for the CPython versions whose
/// start can be split (see `initialize`).
const ENCODINGS: &str = "encodings/__init__.pyc";

/// CPython's second start-up phase (`_Py_InitializeMain`): a private, provisional API of
/// CPython 3.8-3.13 (PEP 587), looked up by name so that a Python without it is an error
/// that says so, not a DLL that does not load.
type InitializeMain = unsafe extern "C" fn() -> ffi::PyStatus;

fn initialize_main_export(python_dll: &str) -> Result<InitializeMain, String> {
    let name: Vec<u16> = python_dll.encode_utf16().chain([0]).collect();
    // SAFETY: both names are NUL-terminated; python3XY.dll is loaded (the loader loaded it
    // before this runtime, whose imports need it) and stays loaded.
    let found = unsafe {
        let module = GetModuleHandleW(name.as_ptr());
        GetProcAddress(module, c"_Py_InitializeMain".as_ptr().cast())
    };
    // SAFETY: CPython's declaration: `PyStatus _Py_InitializeMain(void)`.
    found
        .map(|f| unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, InitializeMain>(f) })
        .ok_or_else(|| {
            format!(
                "{python_dll} has no _Py_InitializeMain, which this app's runtime needs to import `encodings` from the \
                 app archive: freeze the app again with isapi-freeze for this CPython version"
            )
        })
}

/// Starts CPython. With `main` (the app archive holds `encodings`), in two phases: the core
/// (built-in and frozen modules only), then the boot module runs and puts its importer for
/// `encodings` in place (`early`), then the main phase, whose first import is `encodings`,
/// read from the archive in memory. Without, in one step, `encodings` coming from
/// python3XY.zip by zipimport (which under Wine opens the zip again for every module).
/// `sys.path` is `stdlib` (python3XY.zip, where there is one) and the output folder; the
/// boot module adds the archive. Returns the boot module when it already ran.
///
/// # Safety
/// Once per process, before any other Python API call.
unsafe fn initialize(
    served: &ServedModule,
    stdlib: Option<&std::path::Path>,
    app: &crate::apps::App,
    main: Option<InitializeMain>,
) -> Result<Option<Py<PyModule>>, String> {
    let mut pyconfig = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
    ffi::PyConfig_InitIsolatedConfig(pyconfig.as_mut_ptr());
    let mut pyconfig = pyconfig.assume_init();
    let result = (|| {
        let is_exe = served.kind == ModuleKind::Exe;
        // Inside IIS, signals and the C stdio modes belong to the worker process.
        pyconfig.install_signal_handlers = is_exe as i32;
        pyconfig.configure_c_stdio = is_exe as i32;
        pyconfig.site_import = 0;
        pyconfig.write_bytecode = 0;
        pyconfig.user_site_directory = 0;
        pyconfig.pathconfig_warnings = 0;
        pyconfig.parse_argv = 0;
        pyconfig.safe_path = 1;
        if main.is_some() {
            pyconfig._init_main = 0;
        }
        let home = wide(served.dir.as_os_str());
        check(
            ffi::PyConfig_SetString(&mut pyconfig, &mut pyconfig.home, home.as_ptr()),
            "setting home",
        )?;
        let program = wide(served.path.as_os_str());
        check(
            ffi::PyConfig_SetString(&mut pyconfig, &mut pyconfig.program_name, program.as_ptr()),
            "setting program name",
        )?;
        if is_exe {
            check(
                ffi::PyConfig_SetString(&mut pyconfig, &mut pyconfig.executable, program.as_ptr()),
                "setting executable",
            )?;
        }
        if !is_exe {
            // The served DLL's std streams are NUL until the boot module turns stdout and
            // stderr into the log: UTF-8 spares importing the ANSI code page's codec.
            let utf8 = wide(std::ffi::OsStr::new("utf-8"));
            check(
                ffi::PyConfig_SetString(&mut pyconfig, &mut pyconfig.stdio_encoding, utf8.as_ptr()),
                "setting the standard streams' encoding",
            )?;
        }
        pyconfig.module_search_paths_set = 1;
        for path in stdlib.into_iter().chain([served.dir.as_path()]) {
            let w = wide(path.as_os_str());
            check(
                ffi::PyWideStringList_Append(&mut pyconfig.module_search_paths, w.as_ptr()),
                "setting sys.path",
            )?;
        }
        let args: Vec<Vec<u16>> = if is_exe {
            std::env::args_os().map(|a| wide(&a)).collect()
        } else {
            vec![program.clone()]
        };
        let mut argv: Vec<*const u16> = args.iter().map(|a| a.as_ptr()).collect();
        check(
            ffi::PyConfig_SetArgv(&mut pyconfig, argv.len() as _, argv.as_mut_ptr()),
            "setting sys.argv",
        )?;
        // A served DLL's Python starts whatever the worker's std handles are.
        let on_nul = if is_exe { None } else { crate::crt_stdio::point_at_nul() };
        let started = check(ffi::Py_InitializeFromConfig(&pyconfig), "initializing Python").and_then(|()| {
            let Some(main) = main else { return Ok(None) };
            // SAFETY: the core phase is done and this thread holds the GIL it took.
            let py = Python::assume_attached();
            let boot = exec_boot(py, app)
                .and_then(|boot| {
                    boot.call_method1("early", (served.path.display().to_string(),))?;
                    Ok(boot.unbind())
                })
                .map_err(|e| format!("starting Python: {e}"))?;
            check(main(), "initializing Python")?;
            Ok(Some(boot))
        });
        // After the main phase, which makes sys.stdin, stdout and stderr of these handles.
        if let Some(on_nul) = on_nul {
            on_nul.restore();
        }
        started
    })();
    ffi::PyConfig_Clear(&mut pyconfig);
    result
}

/// Calls the `start` of `app`'s boot module (`executed`, or executed now). The first app's is
/// `sys.modules["_isapi_freeze_boot"]`; an app that joined later keeps its instance to itself
/// (its importer, its script, its factory objects).
pub fn run_boot(py: Python<'_>, app: &crate::apps::App, executed: Option<Py<PyModule>>) -> PyResult<()> {
    let module = match executed {
        Some(module) => module.into_bound(py),
        None => exec_boot(py, app)?,
    };
    let kind = match app.served.kind {
        ModuleKind::Dll => "dll",
        ModuleKind::Exe => "exe",
    };
    module.call_method1(
        "start",
        (
            kind,
            &app.archive.config().script_module,
            app.served.path.display().to_string(),
            app.served.handle,
            app.index,
        ),
    )?;
    let _ = app.per_request.set(crate::apps::PerRequest {
        http_extension_proc: module.getattr("http_extension_proc")?.unbind(),
        http_filter_proc: module.getattr("http_filter_proc")?.unbind(),
    });
    let _ = app.boot.set(module.unbind());
    Ok(())
}

/// Executes the boot module from `app`'s archive, in a module of the app's own (the first
/// app's in sys.modules). It needs only built-in and frozen modules: it may run between
/// CPython's two start-up phases.
fn exec_boot<'py>(py: Python<'py>, app: &crate::apps::App) -> PyResult<Bound<'py, PyModule>> {
    let name = format!("{}.pyc", format::BOOT_MODULE);
    let pyc = app
        .archive
        .read(&name)
        .map_err(pyo3::exceptions::PyOSError::new_err)?
        .ok_or_else(|| pyo3::exceptions::PyImportError::new_err(format!("the app archive has no {name}")))?;
    // importlib.util's MAGIC_NUMBER, from the frozen module that defines it: the importlib
    // package is in the archive, which the boot module has not opened yet.
    let magic = py.import("_frozen_importlib_external")?.getattr("MAGIC_NUMBER")?;
    let magic = magic.cast::<PyBytes>()?.as_bytes();
    if pyc.len() < 16 || &pyc[..4] != magic {
        return Err(pyo3::exceptions::PyImportError::new_err(format!(
            "{name} was compiled for another Python version (bytecode magic {:02x?}, this Python's {:02x?})",
            &pyc[..pyc.len().min(4)],
            magic
        )));
    }
    let code = py
        .import("marshal")?
        .call_method1("loads", (PyBytes::new(py, &pyc[16..]),))?;
    let module = PyModule::new(py, format::BOOT_MODULE)?;
    if app.index == 0 {
        py.import("sys")?
            .getattr("modules")?
            .set_item(format::BOOT_MODULE, &module)?;
    }
    py.import("builtins")?.getattr("exec")?.call1((code, module.dict()))?;
    Ok(module)
}

/// A Python thread state kept for the life of an OS thread that calls in (IIS's worker
/// threads, isapi-host's connection threads): made once with PyGILState_Ensure and parked
/// with the GIL released, so that each call only resumes it instead of creating and
/// destroying one, as a bare `Python::attach` on a thread without one would.
///
/// It is released at the thread's exit by a fiber-local storage callback, not a
/// thread-local destructor: those run from the DLL's TLS callback under the loader lock,
/// and waiting for the GIL there deadlocks with a thread that holds the GIL and waits for
/// the loader lock (GetProcAddress, GetModuleHandle, starting a thread...). The loader
/// runs FLS callbacks before it takes the lock.
static ANCHOR_SLOT: OnceLock<u32> = OnceLock::new();

/// FLS_OUT_OF_INDEXES from winbase.h.
const FLS_OUT_OF_INDEXES: u32 = u32::MAX;

#[link(name = "ntdll")]
extern "system" {
    /// Whether the process is exiting: its other threads are gone, and one of them may
    /// have held the GIL.
    fn RtlDllShutdownInProgress() -> u8;
}

/// The FLS callback: `value` is the thread's PyGILState_STATE (plus one, so never null).
unsafe extern "system" fn release_anchor(value: *const std::ffi::c_void) {
    // SAFETY: the thread state made in `attach` is this thread's, parked without the GIL:
    // take the GIL with it, then let PyGILState_Release delete it. A served DLL never
    // finalizes Python. At process exit the other threads were killed, maybe holding the
    // GIL: the state is left as it is.
    unsafe {
        if value.is_null() || RtlDllShutdownInProgress() != 0 || ffi::Py_IsInitialized() == 0 {
            return;
        }
        let state = ffi::PyGILState_GetThisThreadState();
        if !state.is_null() {
            ffi::PyEval_RestoreThread(state);
            let gil_state = if value as usize - 1 == ffi::PyGILState_STATE::PyGILState_LOCKED as usize {
                ffi::PyGILState_STATE::PyGILState_LOCKED
            } else {
                ffi::PyGILState_STATE::PyGILState_UNLOCKED
            };
            ffi::PyGILState_Release(gil_state);
        }
    }
}

/// The FLS slot whose value marks a thread that has its parked thread state.
fn anchor_slot() -> u32 {
    use windows_sys::Win32::System::Threading::FlsAlloc;
    // SAFETY: the callback has FlsAlloc's signature and lives as long as the runtime,
    // which is never unloaded once Python started (`sharing::pin`).
    *ANCHOR_SLOT.get_or_init(|| unsafe { FlsAlloc(Some(release_anchor)) })
}

/// `Python::attach` for ISAPI calls into a started served DLL (see [`ANCHOR_SLOT`]).
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    use windows_sys::Win32::System::Threading::{FlsGetValue, FlsSetValue};
    // SAFETY: Py_IsInitialized may be called at any time. A call before the interpreter
    // started (a server calling HttpExtensionProc without GetExtensionVersion) panics, which
    // the entry points turn into their error status, as `Python::attach` would.
    assert!(unsafe { ffi::Py_IsInitialized() } != 0, "Python is not started");
    let slot = anchor_slot();
    // SAFETY: FLS calls on a slot of ours (or FLS_OUT_OF_INDEXES, checked first).
    if slot != FLS_OUT_OF_INDEXES && unsafe { FlsGetValue(slot) }.is_null() {
        // SAFETY: Python is initialized (the caller started it) and this thread holds no
        // GIL: Ensure makes its thread state and takes the GIL, SaveThread parks it.
        unsafe {
            let state = ffi::PyGILState_Ensure();
            ffi::PyEval_SaveThread();
            FlsSetValue(slot, (state as usize + 1) as *const std::ffi::c_void);
        }
    }
    Python::attach(f)
}

/// A Python exception as text with its traceback, for the log.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.clone_ref(py).into_value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}
