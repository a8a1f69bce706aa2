//! The CGI variables of a WSGI environ, read from the control block in one call for
//! isapi.wsgi. resources/isapi/wsgi.py has the same rules in Python (what runs under
//! pywin32's loader); tests/e2e/wsgi.rs checks that the two agree on awkward requests.
//!
//! Values are PEP 3333 native strings: the server's bytes, one char per byte (latin-1).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::ecb::{ansi_bytes, field_bytes, utf16_text, ExtensionControlBlock};

/// cbTotalBytes of a body whose length is not known up front (chunked).
const UNKNOWN_LENGTH: u32 = 0xFFFF_FFFF;

/// Headers that become CGI variables without the HTTP_ prefix.
const UNPREFIXED: [&str; 2] = ["CONTENT_TYPE", "CONTENT_LENGTH"];

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn field(s: *const u8) -> String {
    latin1(field_bytes(s))
}

/// HTTP's optional whitespace (RFC 9110: SP and HTAB) around a name or value.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A server variable as text, or None when the server has no such variable.
fn variable(ecb: &ExtensionControlBlock, name: &str) -> PyResult<Option<String>> {
    Ok(ecb.variable(name)?.ok().map(|bytes| latin1(ansi_bytes(&bytes))))
}

/// The request path as PEP 3333 wants it: the decoded path's UTF-8 bytes, one char each.
fn request_path(ecb: &ExtensionControlBlock) -> PyResult<String> {
    if let Ok(raw) = ecb.variable("UNICODE_PATH_INFO")? {
        return Ok(latin1(utf16_text(&raw).as_bytes()));
    }
    Ok(field(ecb.fields()?.lpszPathInfo))
}

/// The application's URL path from APPL_MD_PATH (`/LM/W3SVC/1/ROOT/app` -> `/app`; the site
/// root gives "").
fn mount_point(appl_md_path: &str) -> &str {
    match appl_md_path.to_ascii_uppercase().find("/ROOT") {
        Some(at) => appl_md_path[at + "/ROOT".len()..].trim_end_matches('/'),
        None => "",
    }
}

/// (SCRIPT_NAME, PATH_INFO) for a request path under the mount point; URL paths match
/// ASCII-case-insensitively, as in IIS.
fn split_path<'a>(path: &'a str, mount: &str) -> (&'a str, &'a str) {
    if !mount.is_empty() && path.len() >= mount.len() && path.is_char_boundary(mount.len()) {
        let (head, rest) = path.split_at(mount.len());
        if head.eq_ignore_ascii_case(mount) && (rest.is_empty() || rest.starts_with('/')) {
            return (head, rest);
        }
    }
    ("", path)
}

/// (CGI name, value) of each request header: from ALL_RAW, the headers as sent, else from
/// ALL_HTTP. Names with `_` or non-ASCII characters are dropped, as CGI servers do, so that
/// a client cannot pass one off as another (X_User vs X-User).
fn request_headers(ecb: &ExtensionControlBlock) -> PyResult<Vec<(String, String)>> {
    let mut headers = Vec::new();
    if let Some(raw) = variable(ecb, "ALL_RAW")?.filter(|raw| !raw.is_empty()) {
        for line in raw.split('\n') {
            let Some((name, value)) = line.trim_end_matches('\r').split_once(':') else {
                continue;
            };
            let name = trim_ows(name);
            if name.is_empty() || name.contains('_') || !name.is_ascii() {
                continue;
            }
            headers.push((name.to_ascii_uppercase().replace('-', "_"), trim_ows(value).to_string()));
        }
        return Ok(headers);
    }
    for line in variable(ecb, "ALL_HTTP")?.unwrap_or_default().split('\n') {
        let Some((name, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        if let Some(name) = name.strip_prefix("HTTP_") {
            headers.push((name.to_string(), trim_ows(value).to_string()));
        }
    }
    Ok(headers)
}

/// The environ's CGI variables (every str-valued key, plus `wsgi.url_scheme`).
pub fn cgi_environ<'py>(py: Python<'py>, ecb: &ExtensionControlBlock) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    let text = |name: &str, default: &str| -> PyResult<String> {
        Ok(variable(ecb, name)?.unwrap_or_else(|| default.to_string()))
    };
    let path = request_path(ecb)?;
    let appl_md_path = text("APPL_MD_PATH", "")?;
    let (script_name, path_info) = split_path(&path, mount_point(&appl_md_path));
    let https = text("HTTPS", "off")?.eq_ignore_ascii_case("on");
    let (method, query, content_type, total) = {
        let f = ecb.fields()?;
        (
            field(f.lpszMethod),
            field(f.lpszQueryString),
            field(f.lpszContentType),
            f.cbTotalBytes,
        )
    };
    environ.set_item("REQUEST_METHOD", method)?;
    environ.set_item("SCRIPT_NAME", script_name)?;
    environ.set_item("PATH_INFO", path_info)?;
    environ.set_item("QUERY_STRING", query)?;
    environ.set_item("SERVER_NAME", text("SERVER_NAME", "")?)?;
    environ.set_item("SERVER_PORT", text("SERVER_PORT", if https { "443" } else { "80" })?)?;
    environ.set_item("SERVER_PROTOCOL", text("SERVER_PROTOCOL", "HTTP/1.1")?)?;
    environ.set_item("SERVER_SOFTWARE", text("SERVER_SOFTWARE", "")?)?;
    environ.set_item("GATEWAY_INTERFACE", "CGI/1.1")?;
    environ.set_item("REMOTE_ADDR", text("REMOTE_ADDR", "")?)?;
    environ.set_item("wsgi.url_scheme", if https { "https" } else { "http" })?;
    for name in ["REMOTE_PORT", "REMOTE_USER", "AUTH_TYPE"] {
        let value = text(name, "")?;
        if !value.is_empty() {
            environ.set_item(name, value)?;
        }
    }
    if !content_type.is_empty() {
        environ.set_item("CONTENT_TYPE", content_type)?;
    }
    let content_length = text("CONTENT_LENGTH", "")?;
    if !content_length.is_empty() && total != UNKNOWN_LENGTH {
        environ.set_item("CONTENT_LENGTH", content_length)?;
    }
    for (name, value) in request_headers(ecb)? {
        if UNPREFIXED.contains(&name.as_str()) {
            continue;
        }
        let key = format!("HTTP_{name}");
        let joined = match environ.get_item(&key)? {
            Some(earlier) => format!("{},{value}", earlier.extract::<String>()?),
            None => value,
        };
        environ.set_item(key, joined)?;
    }
    Ok(environ)
}
