//! IIS server variables for one request, computed from the parsed request and where the
//! host listens, as text; the ISAPI layer (ecb.rs) turns them into ANSI or UTF-16 buffers.
//!
//! The host serves the DLL as IIS 7+ serves a *wildcard* script map (`path="*"`) on an
//! application at `--vpath`. Such a mapping has no script file in the URL, so IIS reports
//! the whole request path as URL, as PATH_INFO (AllowPathInfoForScriptMappings is false by
//! default, so PATH_INFO is never shortened) and as SCRIPT_NAME; where the application is
//! mounted is told by APPL_MD_PATH (`/LM/W3SVC/1/ROOT/app`). This is why WSGI adapters for
//! IIS (pywin32's isapi samples, isapi-wsgi, wfastcgi) derive the mount point themselves
//! instead of trusting SCRIPT_NAME. PATH_TRANSLATED maps PATH_INFO below the application's
//! physical folder, which for the host is the folder holding the DLL, unless an ISAPI
//! filter chose another path in URL_MAP; the AUTH_* variables follow the Basic credentials
//! as AUTHENTICATION filters left them.

use std::net::SocketAddr;

use crate::http::{self, Framing, RequestHead};

/// Everything the variables are made of; built once per request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub method: String,
    /// Decoded, normalised request path.
    pub path: String,
    pub query: String,
    /// The request-target as sent.
    pub raw_target: String,
    pub protocol: &'static str,
    pub headers: Vec<(String, String)>,
    pub raw_headers: String,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The application's virtual path: `/` or `/app`.
    pub vpath: String,
    /// The DLL's folder as Windows sees it, ending in `\`.
    pub physical_root: String,
    pub chunked: bool,
    /// The physical path an ISAPI filter set in URL_MAP; PATH_TRANSLATED then says it.
    pub translated: Option<String>,
    /// The user and password the request is authenticated as: from an `Authorization:
    /// Basic` header, as an AUTHENTICATION filter left them. None (or an empty user) is
    /// the anonymous user.
    pub credentials: Option<(String, String)>,
}

impl RequestInfo {
    /// A parsed request on a connection between `remote` and `local`, for the application
    /// at `vpath` whose folder is `physical_root`; no filter has chosen a path or a user yet.
    pub fn new(
        head: RequestHead,
        remote: SocketAddr,
        local: SocketAddr,
        vpath: &str,
        physical_root: &str,
    ) -> RequestInfo {
        RequestInfo {
            method: head.method,
            path: head.path,
            query: head.query,
            raw_target: head.target,
            protocol: head.version.as_str(),
            headers: head.headers,
            raw_headers: head.raw_headers,
            remote,
            local,
            vpath: vpath.to_string(),
            physical_root: physical_root.to_string(),
            chunked: head.framing == Framing::Chunked,
            translated: None,
            credentials: None,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        http::header_value(&self.headers, name)
    }

    /// The physical path of a URL path under the application (HSE_REQ_MAP_URL_TO_PATH,
    /// PATH_TRANSLATED). The DLL's folder is the application root and the only physical
    /// folder the host knows, so URLs outside the application map below it from `/`.
    pub fn map_url(&self, url: &str) -> String {
        let relative = strip_vpath(&self.vpath, url).unwrap_or(url);
        let relative = relative.trim_start_matches('/').replace('/', "\\");
        format!("{}{}", self.physical_root, relative)
    }

    /// Whether the variable `name` is made of request header bytes (kept as
    /// [`crate::http::octets`]), which GetServerVariable gives back as received.
    pub fn is_from_headers(name: &str) -> bool {
        let name = name.to_ascii_uppercase();
        matches!(
            name.as_str(),
            "ALL_RAW" | "ALL_HTTP" | "CONTENT_TYPE" | "CONTENT_LENGTH" | "SERVER_NAME"
        ) || name.starts_with("HTTP_")
    }

    /// The value of a server variable by IIS's name (case-insensitive), without the
    /// `UNICODE_` prefix; None for a name IIS would answer with ERROR_INVALID_INDEX.
    pub fn server_variable(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_uppercase();
        let value = match name.as_str() {
            "REQUEST_METHOD" => self.method.clone(),
            "URL" | "PATH_INFO" | "SCRIPT_NAME" => self.path.clone(),
            "QUERY_STRING" => self.query.clone(),
            "UNENCODED_URL" => self.raw_target.clone(),
            "PATH_TRANSLATED" => self.translated.clone().unwrap_or_else(|| self.map_url(&self.path)),
            "SERVER_NAME" => self.server_name(),
            "SERVER_PORT" => self.local.port().to_string(),
            "SERVER_PROTOCOL" => self.protocol.to_string(),
            "SERVER_SOFTWARE" => concat!("isapi-host/", env!("CARGO_PKG_VERSION")).to_string(),
            "GATEWAY_INTERFACE" => "CGI/1.1".to_string(),
            "REMOTE_ADDR" | "REMOTE_HOST" => self.remote.ip().to_string(),
            "REMOTE_PORT" => self.remote.port().to_string(),
            "LOCAL_ADDR" => self.local.ip().to_string(),
            "CONTENT_TYPE" => self.header("Content-Type").unwrap_or_default(),
            // A chunked body has no length up front; IIS leaves CONTENT_LENGTH empty then.
            "CONTENT_LENGTH" if self.chunked => String::new(),
            "CONTENT_LENGTH" => self.header("Content-Length").unwrap_or_else(|| "0".into()),
            "HTTPS" => "off".to_string(),
            "SERVER_PORT_SECURE" => "0".to_string(),
            // The host logs nobody on: the user is who the credentials name, and LOGON_USER
            // (the Windows account IIS would map them to) is that same name.
            "AUTH_TYPE" => self.user().map(|_| "Basic".to_string()).unwrap_or_default(),
            "AUTH_USER" | "REMOTE_USER" | "LOGON_USER" => self.user().map(|(u, _)| u.clone()).unwrap_or_default(),
            "AUTH_PASSWORD" => self.user().map(|(_, p)| p.clone()).unwrap_or_default(),
            "APPL_MD_PATH" => format!("/LM/W3SVC/1/ROOT{}", if self.vpath == "/" { "" } else { &self.vpath }),
            "APPL_PHYSICAL_PATH" => self.physical_root.clone(),
            "INSTANCE_ID" => "1".to_string(),
            "INSTANCE_META_PATH" => "/LM/W3SVC/1".to_string(),
            "ALL_HTTP" => self
                .headers_by_cgi_name()
                .into_iter()
                .map(|(n, v)| format!("{n}:{v}\n"))
                .collect(),
            "ALL_RAW" => self.raw_headers.clone(),
            _ => {
                let wanted = name.strip_prefix("HTTP_")?;
                return self
                    .headers_by_cgi_name()
                    .into_iter()
                    .find(|(n, _)| &n["HTTP_".len()..] == wanted)
                    .map(|(_, v)| v);
            }
        };
        Some(value)
    }

    /// The credentials of an authenticated (not anonymous) request.
    fn user(&self) -> Option<&(String, String)> {
        self.credentials.as_ref().filter(|(user, _)| !user.is_empty())
    }

    fn server_name(&self) -> String {
        let host = self.header("Host").unwrap_or_default();
        let name = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or_default().to_string()
        } else {
            host.split(':').next().unwrap_or_default().to_string()
        };
        if name.is_empty() {
            self.local.ip().to_string()
        } else {
            name
        }
    }

    /// `HTTP_NAME` -> value, one entry per header name in first-seen order, repeats joined.
    fn headers_by_cgi_name(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.headers {
            let cgi = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
            match out.iter_mut().find(|(n, _)| *n == cgi) {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(value);
                }
                None => out.push((cgi, value.clone())),
            }
        }
        out
    }
}

/// The part of `path` after the application's virtual path, or None when the path is
/// outside it. IIS matches URL paths case-insensitively.
pub fn strip_vpath<'a>(vpath: &str, path: &'a str) -> Option<&'a str> {
    if vpath == "/" {
        return Some(path);
    }
    let head = path.get(..vpath.len())?;
    if !head.eq_ignore_ascii_case(vpath) {
        return None;
    }
    let rest = &path[vpath.len()..];
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RequestInfo {
        RequestInfo {
            method: "GET".into(),
            path: "/app/a/b".into(),
            query: "q=1".into(),
            raw_target: "/app/a/b?q=1".into(),
            protocol: "HTTP/1.1",
            headers: vec![
                ("Host".into(), "example:81".into()),
                ("X-Custom".into(), "1".into()),
                ("x-custom".into(), "2".into()),
            ],
            raw_headers: "Host: example:81\r\n".into(),
            remote: "127.0.0.1:5000".parse().unwrap(),
            local: "127.0.0.1:81".parse().unwrap(),
            vpath: "/app".into(),
            physical_root: "C:\\site\\".into(),
            chunked: false,
            translated: None,
            credentials: None,
        }
    }

    #[test]
    fn a_parsed_request_becomes_the_info_variables_are_made_of() {
        let raw = "POST /app/a/b?q=1 HTTP/1.1\r\nHost: example:81\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = http::read_head(&mut std::io::Cursor::new(raw.as_bytes().to_vec())).unwrap();
        let made = RequestInfo::new(head, info().remote, info().local, "/app", "C:\\site\\");
        assert_eq!((made.method.as_str(), made.protocol), ("POST", "HTTP/1.1"));
        assert_eq!((made.path.as_str(), made.query.as_str()), ("/app/a/b", "q=1"));
        assert_eq!(made.raw_target, "/app/a/b?q=1");
        assert_eq!(made.raw_headers, "Host: example:81\r\nTransfer-Encoding: chunked\r\n");
        assert!(made.chunked && made.translated.is_none() && made.credentials.is_none());
        assert_eq!(
            made.server_variable("PATH_TRANSLATED").as_deref(),
            Some("C:\\site\\a\\b")
        );
        assert_eq!(made.server_variable("SERVER_PORT").as_deref(), Some("81"));
    }

    #[test]
    fn variables_follow_iis_for_a_wildcard_map() {
        let i = info();
        let v = |n: &str| i.server_variable(n);
        assert_eq!(v("SCRIPT_NAME").as_deref(), Some("/app/a/b"));
        assert_eq!(v("path_info").as_deref(), Some("/app/a/b"));
        assert_eq!(v("PATH_TRANSLATED").as_deref(), Some("C:\\site\\a\\b"));
        assert_eq!(v("APPL_MD_PATH").as_deref(), Some("/LM/W3SVC/1/ROOT/app"));
        assert_eq!(v("SERVER_NAME").as_deref(), Some("example"));
        assert_eq!(v("HTTP_X_CUSTOM").as_deref(), Some("1,2"));
        assert_eq!(
            v("ALL_HTTP").as_deref(),
            Some("HTTP_HOST:example:81\nHTTP_X_CUSTOM:1,2\n")
        );
        assert_eq!(v("CONTENT_LENGTH").as_deref(), Some("0"));
        assert_eq!(v("NO_SUCH_THING"), None);
        assert_eq!(v("HTTP_MISSING"), None);
        assert_eq!(v("AUTH_TYPE").as_deref(), Some(""));
        assert_eq!(v("AUTH_USER").as_deref(), Some(""));
    }

    #[test]
    fn filter_results_are_what_path_translated_and_the_auth_variables_say() {
        let mut i = info();
        i.translated = Some("D:\\elsewhere\\b".into());
        i.credentials = Some(("alice".into(), "pw".into()));
        let v = |n: &str| i.server_variable(n);
        assert_eq!(v("PATH_TRANSLATED").as_deref(), Some("D:\\elsewhere\\b"));
        assert_eq!(i.map_url("/app/c"), "C:\\site\\c");
        for name in ["AUTH_USER", "REMOTE_USER", "LOGON_USER"] {
            assert_eq!(v(name).as_deref(), Some("alice"), "{name}");
        }
        assert_eq!(v("AUTH_PASSWORD").as_deref(), Some("pw"));
        assert_eq!(v("AUTH_TYPE").as_deref(), Some("Basic"));
        i.credentials = Some((String::new(), String::new()));
        assert_eq!(i.server_variable("AUTH_TYPE").as_deref(), Some(""));
    }

    #[test]
    fn vpath_matching_is_by_whole_segments() {
        assert_eq!(strip_vpath("/app", "/APP/x"), Some("/x"));
        assert_eq!(strip_vpath("/app", "/app"), Some(""));
        assert_eq!(strip_vpath("/app", "/apple"), None);
        assert_eq!(strip_vpath("/", "/x"), Some("/x"));
    }
}
