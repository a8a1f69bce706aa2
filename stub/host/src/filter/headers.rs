//! The head a filter reads and edits through GetHeader, SetHeader and AddHeader: a
//! request's line and headers (PREPROC_HEADERS, AUTH_COMPLETE) or a response's status and
//! headers (SEND_RESPONSE). Pure, so what an edit does to a head is unit-tested anywhere.

use crate::http::{self, RequestHead};

/// The request line and headers filters can read and change, or the response head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Editable {
    /// "method", "url", "version" for a request; "status" for a response.
    specials: Vec<(&'static str, String)>,
    headers: Vec<(String, String)>,
}

impl Editable {
    /// A request head as PREPROC_HEADERS and AUTH_COMPLETE show it.
    pub fn request(head: &RequestHead) -> Editable {
        Editable {
            specials: vec![
                ("method", head.method.clone()),
                ("url", head.target.clone()),
                ("version", head.version.as_str().to_string()),
            ],
            headers: head.headers.clone(),
        }
    }

    /// A response head on the wire (status line, fields, blank line) as SEND_RESPONSE
    /// shows it: the status without `HTTP/1.1`, and the fields.
    pub fn response(head: &[u8]) -> Editable {
        let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(head.len());
        let status_line = String::from_utf8_lossy(&head[..line_end]);
        let status = status_line.split_once(' ').map(|(_, s)| s).unwrap_or("200 OK");
        let rest = head.get(line_end + 2..).unwrap_or_default();
        Editable {
            specials: vec![("status", status.to_string())],
            headers: http::parse_header_block(rest).fields,
        }
    }

    /// Whether `name` is one of the specials ("url", not "url:", which is a header): text,
    /// where headers are octets (`http::octets`).
    pub fn is_special(&self, name: &str) -> bool {
        self.specials.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// GetHeader: a special by its name, a header by its name with or without the colon;
    /// repeated headers joined with `,`.
    pub fn get(&self, name: &str) -> Option<String> {
        let (name, colon) = match name.strip_suffix(':') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if !colon {
            if let Some((_, v)) = self.specials.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Some(v.clone());
            }
        }
        http::header_value(&self.headers, name)
    }

    /// SetHeader (replace; an empty value removes the header) or AddHeader.
    pub fn set(&mut self, name: &str, value: &str, add: bool) -> bool {
        let (name, colon) = match name.strip_suffix(':') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if name.is_empty() || value.contains(['\r', '\n']) {
            return false;
        }
        if !colon {
            if let Some((_, v)) = self.specials.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                *v = value.to_string();
                return true;
            }
        }
        if !add {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if value.is_empty() {
                return true;
            }
        }
        self.headers.push((name.to_string(), value.to_string()));
        true
    }

    /// Header lines added after the filters' edits (AddResponseHeaders).
    pub fn add_fields(&mut self, fields: Vec<(String, String)>) {
        self.headers.extend(fields);
    }

    fn special(&self, name: &str) -> String {
        self.specials
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Puts an edited request head back into `head`: a method only if it is one word, the
    /// URL (re-split into path and query) only if it is an absolute path. Err with the URL
    /// when it is not; `head` then keeps everything but its new method.
    pub fn apply_to_request(self, head: &mut RequestHead) -> Result<(), String> {
        let method = self.special("method");
        if !method.is_empty() && method.bytes().all(|b| b.is_ascii_graphic()) {
            head.method = method;
        }
        let url = self.special("url");
        if url != head.target {
            let (raw_path, query) = url.split_once('?').unwrap_or((&url, ""));
            let Some(path) = http::normalize_path(raw_path).filter(|_| url.starts_with('/')) else {
                return Err(url);
            };
            head.path = path;
            head.query = query.to_string();
            head.target = url;
        }
        head.headers = self.headers;
        head.raw_headers = head.headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        Ok(())
    }

    /// An edited response head on the wire, with its status code; None if a filter left a
    /// status that is not one, and the head is then sent as it was.
    pub fn response_head(&self) -> Option<(u16, Vec<u8>)> {
        let (code, reason) = http::parse_status(&self.special("status"))?;
        Some((code, http::head_bytes(code, &reason, self.fields())))
    }

    fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn request(raw: &str) -> RequestHead {
        http::read_head(&mut Cursor::new(raw.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn specials_and_headers_are_told_apart_by_the_colon() {
        let head = request("GET /a?q=1 HTTP/1.1\r\nUrl: header\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
        let editable = Editable::request(&head);
        assert_eq!(editable.get("url").as_deref(), Some("/a?q=1"));
        assert_eq!(editable.get("URL:").as_deref(), Some("header"));
        assert_eq!(editable.get("method").as_deref(), Some("GET"));
        assert_eq!(editable.get("version").as_deref(), Some("HTTP/1.1"));
        assert_eq!(editable.get("x-a:").as_deref(), Some("1,2"));
        assert_eq!(editable.get("X-Missing:"), None);
        assert!(editable.is_special("Url") && !editable.is_special("url:"));
    }

    #[test]
    fn set_replaces_or_removes_and_add_appends() {
        let mut editable = Editable::request(&request("GET / HTTP/1.1\r\nX-A: 1\r\nX-A: 2\r\n\r\n"));
        assert!(editable.set("x-a:", "3", false));
        assert_eq!(editable.get("X-A:").as_deref(), Some("3"));
        assert!(editable.set("X-A:", "4", true));
        assert_eq!(editable.get("X-A:").as_deref(), Some("3,4"));
        assert!(editable.set("X-A:", "", false));
        assert_eq!(editable.get("X-A:"), None);
        // A value may not carry a line of its own, and a header needs a name.
        assert!(!editable.set("X-B:", "1\r\nX-C: 2", false));
        assert!(!editable.set(":", "1", false));
        assert_eq!(editable.get("X-B:"), None);
    }

    #[test]
    fn an_edited_request_goes_back_into_the_head() {
        let mut head = request("GET /old?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut editable = Editable::request(&head);
        editable.set("method", "POST", false);
        editable.set("url", "/new/../b%20c?y=2", false);
        editable.set("X-Added:", "v", true);
        editable.apply_to_request(&mut head).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(
            (head.target.as_str(), head.path.as_str(), head.query.as_str()),
            ("/new/../b%20c?y=2", "/b c", "y=2")
        );
        assert_eq!(head.raw_headers, "Host: h\r\nX-Added: v\r\n");
    }

    #[test]
    fn a_url_that_is_no_absolute_path_is_refused() {
        let mut head = request("GET /old HTTP/1.1\r\n\r\n");
        let mut editable = Editable::request(&head);
        editable.set("url", "relative", false);
        assert_eq!(editable.apply_to_request(&mut head), Err("relative".to_string()));
        assert_eq!(head.target, "/old");
        // A method with a space is not one: the old one stays.
        let mut editable = Editable::request(&head);
        editable.set("method", "GE T", false);
        editable.apply_to_request(&mut head).unwrap();
        assert_eq!(head.method, "GET");
    }

    #[test]
    fn a_response_head_is_edited_and_written_back() {
        let mut editable = Editable::response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n");
        assert_eq!(editable.get("status").as_deref(), Some("200 OK"));
        editable.set("status", "404 Gone Away", false);
        editable.set("X-A:", "", false);
        editable.add_fields(vec![("X-Late".into(), "\u{e9}".into())]);
        let (code, bytes) = editable.response_head().unwrap();
        assert_eq!(code, 404);
        assert_eq!(
            bytes,
            b"HTTP/1.1 404 Gone Away\r\nContent-Length: 2\r\nX-Late: \xe9\r\n\r\n"
        );
        editable.set("status", "fine", false);
        assert_eq!(editable.response_head(), None);
    }
}
