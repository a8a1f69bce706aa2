//! What pywin32's ISAPI objects have in common, for ecb.rs, filter.rs and version.rs: string
//! arguments given as str (UTF-8) or bytes (None only where pywin32 takes it), the optional
//! `default` of GetServerVariable and GetHeader, and the `isapi.ExtensionError`/`FilterError`
//! a failed server call raises.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::c_strings::{self, CStringError};

impl From<CStringError<'_>> for PyErr {
    fn from(error: CStringError<'_>) -> PyErr {
        PyValueError::new_err(error.to_string())
    }
}

/// Bytes from a str (UTF-8) or bytes argument; anything else, None included, is a
/// TypeError, as pywin32's PyArg_ParseTuple raises for a string it needs.
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
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} must be str or bytes, not {}",
            type_name(value)
        )))
    }
}

/// [`bytes_of`] where pywin32 also takes None (its `z#` arguments): None is no bytes.
pub fn bytes_or_none(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    match value.is_none() {
        true => Ok(Vec::new()),
        false => bytes_of(value, what),
    }
}

/// A string attribute as pywin32's PyISAPIString_AsBytes takes it (LogData, the version
/// objects' descriptions): str (UTF-8) or bytes, else ValueError.
pub fn isapi_string(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    bytes_of(value, "")
        .map_err(|_| PyValueError::new_err(format!("Expected a string object (got {})", type_name(value))))
}

/// A name pywin32 parses with `s` (a server variable's): C cannot hold a NUL in it.
pub fn no_nul(name: &str) -> PyResult<()> {
    match name.contains('\0') {
        true => Err(PyValueError::new_err("embedded null character")),
        false => Ok(()),
    }
}

/// The name of `value`'s type, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// A str (UTF-8) or bytes argument as a NUL-terminated string; None stays None.
pub fn optional_c_string(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<Vec<u8>>> {
    if value.is_none() {
        return Ok(None);
    }
    let mut bytes = bytes_of(value, what)?;
    c_strings::without_nul(&bytes, what)?;
    bytes.push(0);
    Ok(Some(bytes))
}

/// The optional `default` argument (`*default` in the signature): None when none was
/// passed, since passing None is passing a default, as in pywin32. More than one is a
/// TypeError, whose text starts with `function` when the caller gives one.
pub fn optional_default<'py>(
    args: &Bound<'py, PyTuple>,
    function: Option<&str>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match args.len() {
        0 => Ok(None),
        1 => Ok(Some(args.get_item(0)?)),
        n => {
            let prefix = function.map(|f| format!("{f} ")).unwrap_or_default();
            Err(PyTypeError::new_err(format!(
                "{prefix}expected at most 2 arguments, got {}",
                n + 1
            )))
        }
    }
}

/// `isapi.<class>(errno, None, funcname)` (ExtensionError, FilterError): what pywin32
/// raises for a failed server call.
pub fn isapi_error(py: Python<'_>, class: &str, errno: u32, funcname: &str) -> PyErr {
    match py.import("isapi").and_then(|m| m.getattr(class)) {
        Ok(class) => match class.call1((errno, py.None(), funcname)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        Err(e) => e,
    }
}
