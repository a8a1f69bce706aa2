//! `_isapi_freeze`, the built-in module through which the boot module (Python, in the
//! archive) reaches the runtime: archive members, the log, and the ISAPI object types.

use pyo3::prelude::*;

#[pymodule]
pub mod _isapi_freeze {
    use pyo3::exceptions::{PyKeyError, PyOSError, PyRuntimeError};
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyDict};

    #[pymodule_export]
    use crate::asgi::{AsgiRequest, AsgiServer};
    #[pymodule_export]
    use crate::ecb::ExtensionControlBlock;
    #[pymodule_export]
    use crate::filter::{
        AccessDenied, AuthComplete, Authent, FilterContext, FilterLog, PreprocHeaders, RawData, SendResponse, UrlMap,
    };
    #[pymodule_export]
    use crate::version::{ExtensionVersion, FilterVersion};
    #[pymodule_export]
    use crate::work_queue::WorkQueue;
    #[pymodule_export]
    use crate::wsgi::{serve, WsgiResponse};

    /// The CGI variables of a WSGI environ for a request (isapi.wsgi).
    #[pyfunction]
    fn wsgi_cgi_environ<'py>(py: Python<'py>, ecb: PyRef<'py, ExtensionControlBlock>) -> PyResult<Bound<'py, PyDict>> {
        crate::wsgi::cgi_environ(py, &ecb)
    }

    /// App `app` of this runtime (each app's boot module knows its index).
    fn app_of(app: usize) -> PyResult<&'static crate::apps::App> {
        crate::apps::get(app).ok_or_else(|| PyRuntimeError::new_err(format!("no app {app} in this runtime")))
    }

    /// Every member name of app `app`'s archive.
    #[pyfunction]
    fn archive_names(app: usize) -> PyResult<Vec<String>> {
        Ok(app_of(app)?.archive.names().to_vec())
    }

    /// The bytes of one member of app `app`'s archive; KeyError if there is none.
    #[pyfunction]
    fn archive_read<'py>(py: Python<'py>, app: usize, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        match app_of(app)?.archive.read(name).map_err(PyOSError::new_err)? {
            Some(data) => Ok(PyBytes::new(py, &data)),
            None => Err(PyKeyError::new_err(name.to_string())),
        }
    }

    /// What was settled at freeze time, from app `app`'s config record: (the site and
    /// virtual path `SCRIPT.exe install` uses for a script without install code, the app's
    /// own top-level modules).
    #[pyfunction]
    fn freeze_options(app: usize) -> PyResult<(String, String, Vec<String>)> {
        let config = app_of(app)?.archive.config();
        Ok((
            config.install_site.clone(),
            config.install_vpath.clone(),
            config.app_modules.clone(),
        ))
    }

    /// The whole archive of app `app`, for readers that need a zip file (importlib.resources).
    #[pyfunction]
    fn archive_bytes<'py>(py: Python<'py>, app: usize) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, app_of(app)?.archive.bytes()))
    }

    /// The app whose ISAPI call this thread runs (0, the first app, outside any call).
    #[pyfunction]
    fn current_app() -> usize {
        crate::apps::current_index()
    }

    /// The top-level modules app `app` ships with other contents than an app that came
    /// before it in this process: (name, that app's path).
    #[pyfunction]
    fn clashing_modules(app: usize) -> Vec<(String, String)> {
        crate::sharing::clashing_modules(app)
    }

    /// Appends a line to the log of the app whose call this thread runs (logs\NAME.log in
    /// its output directory).
    #[pyfunction]
    fn log(message: &str) {
        crate::served::log(message);
    }

    /// Logs an error: a line in the app's log and an event in the Windows Event Log.
    #[pyfunction]
    fn log_error(message: &str) {
        crate::served::log_error(message);
    }

    /// The log file's full path, of the app whose call this thread runs.
    #[pyfunction]
    fn log_path() -> Option<String> {
        let served = &crate::apps::current()?.served;
        Some(
            served
                .dir
                .join(isapi_freeze_format::log_file_name(&served.file_name))
                .display()
                .to_string(),
        )
    }
}

pub fn register() {
    pyo3::append_to_inittab!(_isapi_freeze);
}
