//! The version-info objects passed to a script's GetExtensionVersion (HSE_VERSION_INFO) and
//! GetFilterVersion (HTTP_FILTER_VERSION), with pywin32's attribute names and types; the
//! runtime copies what the script set into the structs IIS passed.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// Bytes from a str (UTF-8) or bytes value, as pywin32 accepts for descriptions.
pub fn bytes_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    bytes_view(value, what).map(<[u8]>::to_vec)
}

/// [`bytes_of`] without the copy: the bytes object's own buffer, or the str's UTF-8 (which
/// CPython keeps with the object). Both are immutable and live as long as `value`, so they
/// can be read without the GIL while the caller holds `value`.
pub fn bytes_view<'a>(value: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    if let Ok(b) = value.cast::<PyBytes>() {
        Ok(b.as_bytes())
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(s.to_str()?.as_bytes())
    } else if value.is_none() {
        Ok(&[])
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be str or bytes"
        )))
    }
}

fn checked_desc(value: &Bound<'_, PyAny>, max: usize, what: &str) -> PyResult<Vec<u8>> {
    let bytes = bytes_of(value, what)?;
    if bytes.len() >= max {
        return Err(PyValueError::new_err(format!(
            "{what} must be shorter than {max} bytes"
        )));
    }
    if bytes.contains(&0) {
        return Err(PyValueError::new_err(format!("{what} cannot contain NUL")));
    }
    Ok(bytes)
}

#[pyclass(name = "HSE_VERSION_INFO", module = "isapi", frozen)]
pub struct ExtensionVersion {
    desc: Mutex<Vec<u8>>,
}

impl ExtensionVersion {
    pub fn new() -> Self {
        ExtensionVersion {
            desc: Mutex::new(Vec::new()),
        }
    }
    pub fn desc(&self) -> Vec<u8> {
        self.desc.lock().unwrap().clone()
    }
}

#[pymethods]
impl ExtensionVersion {
    /// The extension's description (bytes; str is accepted and UTF-8 encoded).
    #[getter(ExtensionDesc)]
    fn get_desc<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.desc())
    }
    #[setter(ExtensionDesc)]
    fn set_desc(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        *self.desc.lock().unwrap() = checked_desc(value, 256, "ExtensionDesc")?;
        Ok(())
    }
}

#[pyclass(name = "HTTP_FILTER_VERSION", module = "isapi", frozen)]
pub struct FilterVersion {
    server_filter_version: u32,
    state: Mutex<(u32, u32, Vec<u8>)>,
}

impl FilterVersion {
    pub fn new(server_filter_version: u32, filter_version: u32) -> Self {
        FilterVersion {
            server_filter_version,
            state: Mutex::new((filter_version, 0, Vec::new())),
        }
    }
    /// (FilterVersion, Flags, FilterDesc) as the script left them.
    pub fn values(&self) -> (u32, u32, Vec<u8>) {
        self.state.lock().unwrap().clone()
    }
}

#[pymethods]
impl FilterVersion {
    #[getter(ServerFilterVersion)]
    fn server_filter_version(&self) -> u32 {
        self.server_filter_version
    }
    #[getter(FilterVersion)]
    fn get_filter_version(&self) -> u32 {
        self.state.lock().unwrap().0
    }
    #[setter(FilterVersion)]
    fn set_filter_version(&self, value: u32) {
        self.state.lock().unwrap().0 = value;
    }
    #[getter(Flags)]
    fn get_flags(&self) -> u32 {
        self.state.lock().unwrap().1
    }
    #[setter(Flags)]
    fn set_flags(&self, value: u32) {
        self.state.lock().unwrap().1 = value;
    }
    #[getter(FilterDesc)]
    fn get_desc<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.state.lock().unwrap().2)
    }
    #[setter(FilterDesc)]
    fn set_desc(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.state.lock().unwrap().2 = checked_desc(value, 257, "FilterDesc")?;
        Ok(())
    }
}
