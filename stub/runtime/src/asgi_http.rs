//! The bytes of an ASGI exchange that need neither Windows nor Python: the scope's values
//! from server variables (HTTP version, raw path, request header lines as lowercased
//! pairs) and the response head from an application's status and header pairs (checked,
//! with the reason phrase ISAPI's status line needs). asgi.rs makes the server calls and
//! the Python objects; these rules are unit-tested on the build machine.

use crate::cgi::trim_ows;
use std::io::Write;

/// The scope's `http_version` for SERVER_PROTOCOL (`HTTP/1.1` -> `1.1`, `HTTP/2` -> `2`);
/// what the server did not say is taken as HTTP/1.1.
pub fn http_version(server_protocol: &[u8]) -> &'static str {
    match server_protocol.strip_prefix(b"HTTP/").unwrap_or(b"") {
        b"1.0" => "1.0",
        b"2" | b"2.0" => "2",
        b"3" | b"3.0" => "3",
        _ => "1.1",
    }
}

/// The scope's `raw_path`: the request target's path as sent (UNENCODED_URL, without its
/// query string).
pub fn raw_path(unencoded_url: &[u8]) -> &[u8] {
    match unencoded_url.iter().position(|&b| b == b'?') {
        Some(at) => &unencoded_url[..at],
        None => unencoded_url,
    }
}

/// Calls `add(name, value)` for each header line of ALL_RAW (the headers as sent), in
/// order, duplicates kept: the name lowercased (ASCII letters only; other bytes as sent),
/// the value without its optional whitespace. `name` is a buffer reused from line to line.
pub fn request_headers<E>(raw: &[u8], mut add: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E> {
    let mut name = Vec::with_capacity(32);
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let raw_name = trim_ows(&line[..colon]);
        if raw_name.is_empty() {
            continue;
        }
        name.clear();
        name.extend(raw_name.iter().map(u8::to_ascii_lowercase));
        add(&name, trim_ows(&line[colon + 1..]))?;
    }
    Ok(())
}

/// [`request_headers`] for ALL_HTTP (`HTTP_USER_AGENT:value` lines), when the server has no
/// ALL_RAW: the name is what follows `HTTP_`, lowercased, `_` as `-` (CGI lost the
/// original spelling).
pub fn all_http_headers<E>(all_http: &[u8], mut add: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E> {
    let mut name = Vec::with_capacity(32);
    for line in all_http.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Some(cgi) = line[..colon].strip_prefix(b"HTTP_").filter(|n| !n.is_empty()) else {
            continue;
        };
        name.clear();
        name.extend(
            cgi.iter()
                .map(|&b| if b == b'_' { b'-' } else { b.to_ascii_lowercase() }),
        );
        add(&name, trim_ows(&line[colon + 1..]))?;
    }
    Ok(())
}

/// Why a response header cannot be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum BadHeader {
    /// A CR, LF or NUL in the name or value: it would end the line (header injection).
    LineBreak,
    /// An empty name, or one with a colon, space or tab: not a header name.
    Name,
}

/// Builds the header block of a response from the application's (name, value) pairs, for
/// SendResponseHeaders: `Name: value\r\n` lines, as given, then the blank line.
#[derive(Debug, Default)]
pub struct HeadBuilder {
    block: Vec<u8>,
    has_length: bool,
}

impl HeadBuilder {
    pub fn new() -> Self {
        HeadBuilder {
            block: Vec::with_capacity(256),
            has_length: false,
        }
    }

    /// Adds one header line. `transfer-encoding` is dropped: the server frames the body
    /// itself (the ASGI spec has servers ignore it).
    pub fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), BadHeader> {
        let breaks = |b: &u8| matches!(b, b'\r' | b'\n' | 0);
        if name.iter().any(breaks) || value.iter().any(breaks) {
            return Err(BadHeader::LineBreak);
        }
        if name.is_empty() || name.iter().any(|b| matches!(b, b':' | b' ' | b'\t')) {
            return Err(BadHeader::Name);
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Ok(());
        }
        self.has_length |= name.eq_ignore_ascii_case(b"content-length");
        self.block.extend_from_slice(name);
        self.block.extend_from_slice(b": ");
        self.block.extend_from_slice(value);
        self.block.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Whether the application gave a Content-Length.
    pub fn has_length(&self) -> bool {
        self.has_length
    }

    /// Adds `Content-Length: n`.
    pub fn add_length(&mut self, n: usize) {
        // Written in place: under Wine each heap allocation costs ~90 ns.
        let _ = write!(self.block, "content-length: {n}\r\n");
        self.has_length = true;
    }

    /// The strings HSE_SEND_HEADER_EX_INFO points to, in one buffer: the status line's
    /// text (`200 OK`), a NUL, the header block ending with its blank line, a NUL; and the
    /// status text's length.
    pub fn finish(self, status: u16) -> (Vec<u8>, usize) {
        let reason = reason_phrase(status);
        let mut strings = Vec::with_capacity(reason.len() + self.block.len() + 16);
        let _ = write!(strings, "{status} {reason}");
        let status_len = strings.len();
        strings.push(0);
        strings.extend_from_slice(&self.block);
        strings.extend_from_slice(b"\r\n\0");
        (strings, status_len)
    }
}

/// Whether a response with this status, to this method, has no body for the server to
/// frame (so no Content-Length is added for it).
pub fn has_no_body(status: u16, method: &[u8]) -> bool {
    method == b"HEAD" || status < 200 || status == 204 || status == 304
}

/// The reason phrase of a status code (RFC 9110 and the registered others); `Unknown` for
/// a code without one (ISAPI's status line needs some text).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(collect: impl Fn(&mut dyn FnMut(&[u8], &[u8]) -> Result<(), ()>)) -> Vec<(String, String)> {
        let mut out = Vec::new();
        collect(&mut |n, v| {
            out.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
            Ok(())
        });
        out
    }

    #[test]
    fn http_versions_are_the_scope_spellings() {
        assert_eq!(http_version(b"HTTP/1.1"), "1.1");
        assert_eq!(http_version(b"HTTP/1.0"), "1.0");
        assert_eq!(http_version(b"HTTP/2"), "2");
        assert_eq!(http_version(b"HTTP/2.0"), "2");
        assert_eq!(http_version(b""), "1.1");
    }

    #[test]
    fn the_raw_path_stops_at_the_query() {
        assert_eq!(raw_path(b"/a%20b/c?x=%2F"), b"/a%20b/c");
        assert_eq!(raw_path(b"/plain"), b"/plain");
        assert_eq!(raw_path(b""), b"");
    }

    #[test]
    fn raw_header_lines_become_lowercased_pairs_in_order_with_repeats() {
        let raw = b"Host: x:81\r\nX-Probe: one\r\nx-probe:two \r\nX_Under: kept\r\nbroken line\r\n:novalue\r\n";
        let got = pairs(|add| request_headers(raw, add).unwrap());
        let want = [
            ("host", "x:81"),
            ("x-probe", "one"),
            ("x-probe", "two"),
            ("x_under", "kept"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn non_ascii_header_bytes_are_kept_as_sent() {
        let raw = b"X-Caf\xc9: caf\xe9\r\n";
        let mut got = Vec::new();
        request_headers(raw, |n, v| {
            got.push((n.to_vec(), v.to_vec()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got, vec![(b"x-caf\xc9".to_vec(), b"caf\xe9".to_vec())]);
    }

    #[test]
    fn all_http_names_become_dashed_lowercase() {
        let got = pairs(|add| all_http_headers(b"HTTP_USER_AGENT:curl\nHTTP_HOST:h\nOTHER:x\n", add).unwrap());
        assert_eq!(
            got,
            vec![("user-agent".into(), "curl".into()), ("host".into(), "h".into())]
        );
    }

    #[test]
    fn a_head_has_the_status_line_text_the_lines_and_the_blank_line() {
        let mut head = HeadBuilder::new();
        head.push(b"content-type", b"application/json").unwrap();
        head.push(b"Set-Cookie", b"a=1").unwrap();
        head.push(b"set-cookie", b"b=2").unwrap();
        head.push(b"transfer-encoding", b"chunked").unwrap();
        assert!(!head.has_length());
        head.add_length(13);
        let (strings, status_len) = head.finish(201);
        assert_eq!(&strings[..status_len], b"201 Created");
        assert_eq!(
            &strings[status_len..],
            b"\0content-type: application/json\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 13\r\n\r\n\0"
        );
    }

    #[test]
    fn headers_that_would_break_the_head_are_refused() {
        let mut head = HeadBuilder::new();
        assert_eq!(head.push(b"x", b"a\r\nInjected: 1"), Err(BadHeader::LineBreak));
        assert_eq!(head.push(b"x\n", b"a"), Err(BadHeader::LineBreak));
        assert_eq!(head.push(b"x", b"a\0"), Err(BadHeader::LineBreak));
        assert_eq!(head.push(b"", b"a"), Err(BadHeader::Name));
        assert_eq!(head.push(b"a b", b"a"), Err(BadHeader::Name));
        assert_eq!(head.push(b"a:b", b"a"), Err(BadHeader::Name));
        assert!(head.push(b"Content-Length", b"0").is_ok() && head.has_length());
    }

    #[test]
    fn bodiless_responses_are_known() {
        assert!(has_no_body(204, b"GET") && has_no_body(304, b"GET") && has_no_body(101, b"GET"));
        assert!(has_no_body(200, b"HEAD"));
        assert!(!has_no_body(200, b"GET") && !has_no_body(500, b"POST"));
        assert_eq!(reason_phrase(299), "Unknown");
    }
}
