//! A small HTTP/1.1 client over a raw TCP stream: the tests need exact control of what is
//! sent (keep-alive, bodies, broken requests) and to see exactly what comes back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection, for several requests in a row.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(address: &str) -> Connection {
        let stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).unwrap();
    }

    /// Sends one request and reads its response.
    pub fn exchange(&mut self, raw: &[u8]) -> Response {
        self.send(raw);
        self.read_response()
    }

    /// GETs `path`, keeping the connection open for the next request.
    pub fn get(&mut self, path: &str) -> Response {
        self.exchange(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
    }

    /// Whether the server closed the connection: reading gives end of file.
    pub fn closed_by_server(&mut self) -> bool {
        matches!(self.reader.fill_buf(), Ok([]) | Err(_))
    }

    /// Reads one response (to a request that was not HEAD).
    pub fn read_response(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        assert!(version.starts_with("HTTP/1."), "bad status line {line:?}");
        let status: u16 = parts
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or_else(|_| panic!("bad status line {line:?}"));
        let reason = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap_or_else(|| panic!("bad header {h:?}"));
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = find("Content-Length") {
            body.resize(len.parse().unwrap(), 0);
            self.reader.read_exact(&mut body).unwrap();
        } else if find("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if status != 204 && status != 304 {
            self.reader.read_to_end(&mut body).unwrap();
        }
        Response {
            status,
            reason,
            headers,
            body,
        }
    }
}

/// Sends one request on a new connection and reads the response.
pub fn request(address: &str, raw: &[u8]) -> Response {
    Connection::open(address).exchange(raw)
}

pub fn get(address: &str, path: &str) -> Response {
    request(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// POSTs `body` as application/octet-stream on a new connection.
pub fn post(address: &str, path: &str, body: &[u8]) -> Response {
    post_as(address, path, "application/octet-stream", body)
}

/// POSTs `body` as `content_type` on a new connection.
pub fn post_as(address: &str, path: &str, content_type: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    request(address, &raw)
}
