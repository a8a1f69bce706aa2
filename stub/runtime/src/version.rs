//! The version-info objects passed to a script's GetExtensionVersion (HSE_VERSION_INFO) and
//! GetFilterVersion (HTTP_FILTER_VERSION), with pywin32's attribute names and types; the
//! runtime copies what the script set into the structs IIS passed (exports.rs).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use crate::c_strings;
use crate::pywin32::{isapi_string, type_name};

/// A description as the script set it (str is UTF-8 encoded), checked to fit an array of
/// `max` bytes with its NUL. None is no description: SimpleExtension and SimpleFilter set
/// the class's docstring, which a class without one has as None (pywin32 refuses it, and
/// with it the extension; README's row `no-docstring`).
fn checked_desc(value: &Bound<'_, PyAny>, max: usize, what: &str) -> PyResult<Vec<u8>> {
    if value.is_none() {
        return Ok(Vec::new());
    }
    let bytes = isapi_string(value)?;
    c_strings::description(&bytes, max, what)?;
    Ok(bytes)
}

/// FilterVersion and Flags as pywin32 takes them: an int (as a C long, kept as the DWORD
/// the struct holds), else ValueError.
fn dword(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    if !value.is_instance_of::<PyInt>() {
        return Err(PyValueError::new_err(format!(
            "{what} must be an int (got {})",
            type_name(value)
        )));
    }
    Ok(value.extract::<i64>()? as u32)
}

#[pyclass(name = "HSE_VERSION_INFO", module = "isapi")]
pub struct ExtensionVersion {
    desc: Vec<u8>,
}

impl ExtensionVersion {
    pub fn new() -> Self {
        ExtensionVersion { desc: Vec::new() }
    }
    pub fn desc(&self) -> &[u8] {
        &self.desc
    }
}

#[pymethods]
impl ExtensionVersion {
    /// The extension's description (bytes; str is accepted and UTF-8 encoded).
    #[getter(ExtensionDesc)]
    fn get_desc<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.desc)
    }
    #[setter(ExtensionDesc)]
    fn set_desc(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.desc = checked_desc(value, 256, "ExtensionDesc")?;
        Ok(())
    }
}

#[pyclass(name = "HTTP_FILTER_VERSION", module = "isapi")]
pub struct FilterVersion {
    server_filter_version: u32,
    /// FilterVersion, Flags and FilterDesc as the script leaves them.
    pub filter_version: u32,
    pub flags: u32,
    desc: Vec<u8>,
}

impl FilterVersion {
    pub fn new(server_filter_version: u32, filter_version: u32) -> Self {
        FilterVersion {
            server_filter_version,
            filter_version,
            flags: 0,
            desc: Vec::new(),
        }
    }
    pub fn desc(&self) -> &[u8] {
        &self.desc
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
        self.filter_version
    }
    #[setter(FilterVersion)]
    fn set_filter_version(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.filter_version = dword(value, "FilterVersion")?;
        Ok(())
    }
    #[getter(Flags)]
    fn get_flags(&self) -> u32 {
        self.flags
    }
    #[setter(Flags)]
    fn set_flags(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.flags = dword(value, "Flags")?;
        Ok(())
    }
    #[getter(FilterDesc)]
    fn get_desc<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.desc)
    }
    #[setter(FilterDesc)]
    fn set_desc(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.desc = checked_desc(value, 257, "FilterDesc")?;
        Ok(())
    }
}
