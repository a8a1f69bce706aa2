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

    /// Every member name of the app archive.
    #[pyfunction]
    fn archive_names() -> PyResult<Vec<String>> {
        let archive = crate::archive::get().ok_or_else(|| PyRuntimeError::new_err("no app archive is open"))?;
        Ok(archive.names().to_vec())
    }

    /// The bytes of one archive member; KeyError if there is none.
    #[pyfunction]
    fn archive_read<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let archive = crate::archive::get().ok_or_else(|| PyRuntimeError::new_err("no app archive is open"))?;
        match archive.read(name).map_err(PyOSError::new_err)? {
            Some(data) => Ok(PyBytes::new(py, &data)),
            None => Err(PyKeyError::new_err(name.to_string())),
        }
    }

    /// What was settled at freeze time, from the config record: (the site and virtual path
    /// `SCRIPT.exe install` uses for a script without install code, the app's own top-level
    /// modules).
    #[pyfunction]
    fn freeze_options() -> PyResult<(String, String, Vec<String>)> {
        let archive = crate::archive::get().ok_or_else(|| PyRuntimeError::new_err("no app archive is open"))?;
        let config = archive.config();
        Ok((
            config.install_site.clone(),
            config.install_vpath.clone(),
            config.app_modules.clone(),
        ))
    }

    /// The whole app archive, for readers that need a zip file (importlib.resources).
    #[pyfunction]
    fn archive_bytes<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let archive = crate::archive::get().ok_or_else(|| PyRuntimeError::new_err("no app archive is open"))?;
        Ok(PyBytes::new(py, archive.bytes()))
    }

    /// Appends a line to the extension's log (logs\NAME.log in the output directory).
    #[pyfunction]
    fn log(message: &str) {
        crate::served::log(message);
    }

    /// Logs an error: a line in the extension's log and an event in the Windows Event Log.
    #[pyfunction]
    fn log_error(message: &str) {
        crate::served::log_error(message);
    }

    /// The log file's full path.
    #[pyfunction]
    fn log_path() -> Option<String> {
        let served = crate::served::get()?;
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
