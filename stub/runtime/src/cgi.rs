//! The CGI variables of a WSGI environ, from the server's bytes: request header lines
//! (ALL_RAW or ALL_HTTP) into `HTTP_*` keys, the mount point and the SCRIPT_NAME/PATH_INFO
//! split, and the rules for HTTPS, SERVER_PORT and CONTENT_LENGTH. wsgi.rs turns what these
//! give into Python strings; resources/isapi/wsgi.py has the same rules in Python.

use std::borrow::Cow;

/// cbTotalBytes of a body whose length is not known up front (chunked).
pub const UNKNOWN_LENGTH: u32 = 0xFFFF_FFFF;

/// Headers that become CGI variables without the HTTP_ prefix (from their own variables).
const UNPREFIXED: [&[u8]; 2] = [b"CONTENT_TYPE", b"CONTENT_LENGTH"];

const HTTP_PREFIX: &[u8] = b"HTTP_";

/// Bytes as a PEP 3333 native string's text: one char per byte (latin-1). ASCII, what
/// nearly every value is, is borrowed as it is.
pub fn latin1_text(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        Cow::Borrowed(std::str::from_utf8(bytes).expect("ASCII is UTF-8"))
    } else {
        Cow::Owned(bytes.iter().map(|&b| b as char).collect())
    }
}

/// HTTP's optional whitespace (RFC 9110: SP and HTAB) around a name or value; other bytes,
/// 0x85 and 0xA0 too, are not whitespace here.
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// A line without the CRs it ends with.
fn trim_crs(line: &[u8]) -> &[u8] {
    &line[..line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1)]
}

/// The application's URL path from APPL_MD_PATH (`/LM/W3SVC/1/ROOT/app` -> `/app`; the site
/// root gives "").
pub fn mount_point(appl_md_path: &[u8]) -> &[u8] {
    match appl_md_path.windows(5).position(|w| w.eq_ignore_ascii_case(b"/ROOT")) {
        Some(at) => {
            let rest = &appl_md_path[at + "/ROOT".len()..];
            &rest[..rest.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1)]
        }
        None => b"",
    }
}

/// (SCRIPT_NAME, PATH_INFO) for a request path under the mount point; URL paths match
/// ASCII-case-insensitively, as in IIS.
pub fn split_path<'a>(path: &'a [u8], mount: &[u8]) -> (&'a [u8], &'a [u8]) {
    if !mount.is_empty() && path.len() >= mount.len() {
        let (head, rest) = path.split_at(mount.len());
        if head.eq_ignore_ascii_case(mount) && (rest.is_empty() || rest[0] == b'/') {
            return (head, rest);
        }
    }
    (b"", path)
}

/// Whether the HTTPS variable says the request came over TLS.
pub fn is_https(https: Option<&[u8]>) -> bool {
    https.is_some_and(|v| v.eq_ignore_ascii_case(b"on"))
}

/// SERVER_PORT when the server has none: the scheme's.
pub fn default_port(https: bool) -> &'static [u8] {
    if https {
        b"443"
    } else {
        b"80"
    }
}

/// CONTENT_LENGTH as the environ has it: the variable's value unless it is empty or the
/// body's length is not known up front (cbTotalBytes `UNKNOWN_LENGTH`: a chunked body).
pub fn content_length(value: Option<&[u8]>, total_bytes: u32) -> Option<&[u8]> {
    value.filter(|l| !l.is_empty() && total_bytes != UNKNOWN_LENGTH)
}

/// Calls `add(key, value)` for each request header line of ALL_RAW (the headers as sent):
/// the key is HTTP_ and the name, upper case, `-` as `_`; the value loses its optional
/// whitespace. Names with `_` or non-ASCII characters are dropped, as CGI servers do, so
/// that a client cannot pass one off as another (X_User vs X-User); so are Content-Type and
/// Content-Length, which have their own variables. A line keeps its bytes (latin-1 or not).
pub fn raw_headers<E>(raw: &[u8], mut add: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E> {
    // The key being built, reused from line to line.
    let mut key = HTTP_PREFIX.to_vec();
    for line in raw.split(|&b| b == b'\n') {
        let line = trim_crs(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim_ows(&line[..colon]);
        if name.is_empty() || name.contains(&b'_') || !name.is_ascii() {
            continue;
        }
        key.truncate(HTTP_PREFIX.len());
        key.extend(
            name.iter()
                .map(|&b| if b == b'-' { b'_' } else { b.to_ascii_uppercase() }),
        );
        if !is_unprefixed(&key) {
            add(&key, trim_ows(&line[colon + 1..]))?;
        }
    }
    Ok(())
}

/// [`raw_headers`] for ALL_HTTP, whose lines are already `HTTP_NAME:value` (other lines are
/// not headers).
pub fn all_http_headers<E>(all_http: &[u8], mut add: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E> {
    for line in all_http.split(|&b| b == b'\n') {
        let line = trim_crs(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let key = &line[..colon];
        if key.starts_with(HTTP_PREFIX) && !is_unprefixed(key) {
            add(key, trim_ows(&line[colon + 1..]))?;
        }
    }
    Ok(())
}

/// Whether an `HTTP_*` key is one of the [`UNPREFIXED`] headers.
fn is_unprefixed(key: &[u8]) -> bool {
    UNPREFIXED.contains(&&key[HTTP_PREFIX.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        raw_headers::<()>(block, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    fn all_http(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        all_http_headers::<()>(block, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    fn pairs(list: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn raw_header_names_become_http_keys() {
        assert_eq!(
            raw(b"Host: example.test\r\nX-Forwarded-For: 10.0.0.1\r\naccept-LANGUAGE: en\r\n\r\n"),
            pairs(&[
                (b"HTTP_HOST", b"example.test"),
                (b"HTTP_X_FORWARDED_FOR", b"10.0.0.1"),
                (b"HTTP_ACCEPT_LANGUAGE", b"en"),
            ])
        );
    }

    #[test]
    fn raw_values_lose_sp_and_htab_only() {
        assert_eq!(
            raw(b"A: \t v w \t\r\nB:\xa0x\xa0\r\nC: \x85y\x85 \r\n"),
            pairs(&[
                (b"HTTP_A", b"v w"),
                (b"HTTP_B", b"\xa0x\xa0"),
                (b"HTTP_C", b"\x85y\x85")
            ])
        );
    }

    #[test]
    fn raw_names_lose_their_whitespace_and_values_keep_colons() {
        assert_eq!(
            raw(b" Host \t: a:8080\r\nReferer: http://x/\r\n"),
            pairs(&[(b"HTTP_HOST", b"a:8080"), (b"HTTP_REFERER", b"http://x/")])
        );
    }

    #[test]
    fn a_line_loses_every_trailing_cr() {
        assert_eq!(
            raw(b"A: 1\r\r\r\nB: 2\nC: 3\r"),
            pairs(&[(b"HTTP_A", b"1"), (b"HTTP_B", b"2"), (b"HTTP_C", b"3")])
        );
        // A CR inside a value is the client's.
        assert_eq!(raw(b"A: 1\r2\r\n"), pairs(&[(b"HTTP_A", b"1\r2")]));
    }

    #[test]
    fn names_that_could_pass_for_others_are_dropped() {
        assert_eq!(
            raw(b"X_User: evil\r\nX-User: ok\r\nX-\xc3\xa9: no\r\n: empty\r\n \t: blank\r\nno colon\r\n"),
            pairs(&[(b"HTTP_X_USER", b"ok")])
        );
    }

    #[test]
    fn content_type_and_length_are_left_to_their_own_variables() {
        assert_eq!(
            raw(b"Content-Type: text/plain\r\ncontent-length: 5\r\nContent-Language: de\r\n"),
            pairs(&[(b"HTTP_CONTENT_LANGUAGE", b"de")])
        );
        assert_eq!(
            all_http(b"HTTP_CONTENT_TYPE:text/plain\nHTTP_CONTENT_LENGTH:5\nHTTP_CONTENT_MD5:x\n"),
            pairs(&[(b"HTTP_CONTENT_MD5", b"x")])
        );
    }

    #[test]
    fn values_keep_their_bytes_latin1_or_not() {
        assert_eq!(
            raw(b"X-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\nX-Odd: \x81\r\n"),
            pairs(&[
                (b"HTTP_X_LATIN", b"caf\xe9"),
                (b"HTTP_X_UTF8", b"caf\xc3\xa9"),
                (b"HTTP_X_ODD", b"\x81"),
            ])
        );
    }

    #[test]
    fn a_header_sent_twice_is_given_twice() {
        assert_eq!(
            raw(b"Accept: a\r\nAccept: b\r\n"),
            pairs(&[(b"HTTP_ACCEPT", b"a"), (b"HTTP_ACCEPT", b"b")])
        );
    }

    #[test]
    fn all_http_lines_are_taken_as_they_are() {
        assert_eq!(
            all_http(b"HTTP_HOST:a\r\nHTTP_USER_AGENT: b c \r\nSERVER_NAME:x\nHTTP_NOCOLON\nHTTP_X-Y:z\n"),
            pairs(&[(b"HTTP_HOST", b"a"), (b"HTTP_USER_AGENT", b"b c"), (b"HTTP_X-Y", b"z")])
        );
    }

    #[test]
    fn an_error_from_add_stops_the_walk() {
        let mut seen = 0;
        let result = raw_headers(b"A: 1\r\nB: 2\r\n", |_, _| {
            seen += 1;
            Err("stop")
        });
        assert_eq!((result, seen), (Err("stop"), 1));
    }

    #[test]
    fn latin1_maps_each_byte_to_one_char() {
        assert!(matches!(latin1_text(b"plain"), Cow::Borrowed("plain")));
        assert_eq!(latin1_text(b"caf\xe9"), "caf\u{e9}");
        assert_eq!(latin1_text(b"caf\xc3\xa9"), "caf\u{c3}\u{a9}");
        assert_eq!(latin1_text(b"\x81\xff"), "\u{81}\u{ff}");
    }

    #[test]
    fn the_mount_point_is_the_path_after_root() {
        assert_eq!(mount_point(b"/LM/W3SVC/1/ROOT/app"), b"/app");
        assert_eq!(mount_point(b"/LM/W3SVC/1/ROOT/app/sub//"), b"/app/sub");
        assert_eq!(mount_point(b"/lm/w3svc/1/root/App"), b"/App");
        assert_eq!(mount_point(b"/LM/W3SVC/1/ROOT"), b"");
        assert_eq!(mount_point(b"/LM/W3SVC/1/ROOT/"), b"");
        assert_eq!(mount_point(b""), b"");
        assert_eq!(mount_point(b"/LM/W3SVC/1"), b"");
    }

    #[test]
    fn a_path_under_the_mount_point_splits_at_it() {
        assert_eq!(split_path(b"/app/x/y", b"/app"), (&b"/app"[..], &b"/x/y"[..]));
        assert_eq!(split_path(b"/APP/x", b"/app"), (&b"/APP"[..], &b"/x"[..]));
        assert_eq!(split_path(b"/app", b"/app"), (&b"/app"[..], &b""[..]));
    }

    #[test]
    fn a_path_elsewhere_is_all_path_info() {
        assert_eq!(split_path(b"/application", b"/app"), (&b""[..], &b"/application"[..]));
        assert_eq!(split_path(b"/ap", b"/app"), (&b""[..], &b"/ap"[..]));
        assert_eq!(split_path(b"/x", b""), (&b""[..], &b"/x"[..]));
        // Case-insensitive for ASCII only: 0xC9 is not 0xE9's upper case here.
        assert_eq!(split_path(b"/\xc9", b"/\xe9"), (&b""[..], &b"/\xc9"[..]));
    }

    #[test]
    fn https_port_and_content_length_rules() {
        assert!(is_https(Some(b"on")));
        assert!(is_https(Some(b"ON")));
        assert!(!is_https(Some(b"off")));
        assert!(!is_https(Some(b"on ")));
        assert!(!is_https(None));
        assert_eq!(default_port(true), b"443");
        assert_eq!(default_port(false), b"80");
        assert_eq!(content_length(Some(b"5"), 5), Some(&b"5"[..]));
        assert_eq!(content_length(Some(b""), 0), None);
        assert_eq!(content_length(None, 0), None);
        // A chunked body has no length up front, whatever the variable says.
        assert_eq!(content_length(Some(b"5"), UNKNOWN_LENGTH), None);
        // The value is passed on as the server gave it, digits or not.
        assert_eq!(
            content_length(Some("\u{665}".as_bytes()), 1),
            Some("\u{665}".as_bytes())
        );
    }

    #[test]
    fn trim_ows_edges() {
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b"\ta b\t"), b"a b");
        assert_eq!(trim_ows(b"\xa05\xa0"), b"\xa05\xa0");
        assert_eq!(trim_ows(b"\x855"), b"\x855");
        assert_eq!(trim_ows(b"\r5\n"), b"\r5\n");
    }
}
