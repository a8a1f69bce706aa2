//! The apps this runtime serves in its one interpreter: its own (index 0, the module that
//! loaded it) and any frozen app for the same CPython version that joined it later (IIS
//! loads a site's filter into the workers of the site's other apps). Each keeps its own
//! archive, boot module, log and identity; the thread that runs an app's ISAPI call knows
//! which app it serves, so that logs and imports go to that app.

use std::cell::Cell;
use std::sync::{OnceLock, RwLock};

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::archive::Archive;
use crate::served::ServedModule;

pub struct App {
    pub index: usize,
    pub served: ServedModule,
    pub archive: Archive,
    /// The app's own instance of the boot module, once it ran.
    pub boot: OnceLock<Py<PyModule>>,
    /// Its functions called for every request, set with `boot`.
    pub per_request: OnceLock<PerRequest>,
}

/// The boot module's functions called for every request, looked up once: a lookup by name
/// makes a Python string each time.
pub struct PerRequest {
    pub http_extension_proc: Py<PyAny>,
    pub http_filter_proc: Py<PyAny>,
}

/// Apps live as long as the process: their boot modules and archives are referred to by
/// Python objects that may outlive an app's termination.
static APPS: RwLock<Vec<&'static App>> = RwLock::new(Vec::new());

thread_local! {
    /// The app whose call this thread runs (0 outside any call).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// Adds an app; returns it (its index is its place in the registry).
pub fn register(served: ServedModule, archive: Archive) -> &'static App {
    let mut apps = APPS.write().unwrap_or_else(|e| e.into_inner());
    let app: &'static App = Box::leak(Box::new(App {
        index: apps.len(),
        served,
        archive,
        boot: OnceLock::new(),
        per_request: OnceLock::new(),
    }));
    apps.push(app);
    app
}

pub fn get(index: usize) -> Option<&'static App> {
    APPS.read().unwrap_or_else(|e| e.into_inner()).get(index).copied()
}

pub fn all() -> Vec<&'static App> {
    APPS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The app whose call this thread runs, or the runtime's own app.
pub fn current() -> Option<&'static App> {
    get(CURRENT.with(Cell::get)).or_else(|| get(0))
}

pub fn current_index() -> usize {
    CURRENT.with(Cell::get)
}

/// From now on this thread works for app `index` (a worker thread of the app's thread
/// pool or ASGI loop): its logs go to that app's.
pub fn adopt(index: usize) {
    CURRENT.with(|c| c.set(index));
}

/// Runs `f` as a call of app `index`: logs and imports of this thread go to that app.
pub fn serving<R>(index: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(index)));
    f()
}
