//! HTTP/1.x on the wire, without any ISAPI: reading a request head within IIS's limits,
//! decoding a request body (Content-Length or chunked) as a stream, and framing what an
//! extension answers (its header block, then Content-Length, chunked or close-delimited).
//! Pure and platform-independent so it is unit-tested on the build machine.

use std::io::{self, BufRead, Read};

/// The most a request line plus headers may take; more is answered with 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size or trailer line accepted in a chunked request body.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request-target exactly as sent (IIS's UNENCODED_URL).
    pub target: String,
    /// The path, percent-decoded and with dot segments removed, as http.sys hands it to IIS.
    pub path: String,
    /// The query string as sent, without the `?`.
    pub query: String,
    pub version: Version,
    /// In the order received; values trimmed.
    pub headers: Vec<(String, String)>,
    /// The header lines as received (for ALL_RAW), each ending in CRLF.
    pub raw_headers: String,
    pub framing: Framing,
}

impl RequestHead {
    /// The value of a header, as [`header_value`] finds it.
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(&self.headers, name)
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim_matches(OWS).eq_ignore_ascii_case(token)))
    }

    /// Whether the client wants the connection kept after this response.
    pub fn client_keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.has_token("Connection", "close"),
            Version::Http10 => self.has_token("Connection", "keep-alive"),
        }
    }

    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11 && self.has_token("Expect", "100-continue")
    }
}

#[derive(Debug)]
pub enum HeadError {
    /// The connection ended (or idled out) before a request began: not an error.
    Closed,
    /// 400: the request line or a header is not HTTP.
    Malformed(&'static str),
    /// 431: the head is over [`MAX_HEAD`].
    TooLarge,
    Io(io::Error),
}

/// Reads one request head. Empty lines before the request line are skipped (RFC 9112 2.2).
pub fn read_head(reader: &mut impl BufRead) -> Result<RequestHead, HeadError> {
    let mut used = 0usize;
    let mut line = Vec::new();
    let request_line = loop {
        line.clear();
        let n = read_line_limited(reader, &mut line, MAX_HEAD - used)?;
        if n == 0 {
            return if used == 0 {
                Err(HeadError::Closed)
            } else {
                Err(HeadError::Malformed("incomplete request"))
            };
        }
        used += n;
        let text = trim_eol(&line).ok_or(HeadError::Malformed("request line without line end"))?;
        if !text.is_empty() {
            break String::from_utf8(text.to_vec()).map_err(|_| HeadError::Malformed("request line is not ASCII"))?;
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("request line is not METHOD TARGET VERSION"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(HeadError::Malformed("bad method"));
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        _ => return Err(HeadError::Malformed("unsupported HTTP version")),
    };
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed("request target is not an absolute path"));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = normalize_path(raw_path).ok_or(HeadError::Malformed("bad percent-encoding in path"))?;

    let mut headers = Vec::new();
    let mut raw_headers = String::new();
    loop {
        line.clear();
        let n = read_line_limited(reader, &mut line, MAX_HEAD - used)?;
        if n == 0 {
            return Err(HeadError::Malformed("incomplete request"));
        }
        used += n;
        let text = trim_eol(&line).ok_or(HeadError::Malformed("header without line end"))?;
        if text.is_empty() {
            break;
        }
        if text[0] == b' ' || text[0] == b'\t' {
            return Err(HeadError::Malformed("obsolete header line folding"));
        }
        let colon = text
            .iter()
            .position(|&b| b == b':')
            .ok_or(HeadError::Malformed("header without colon"))?;
        let name = &text[..colon];
        if name.is_empty() || !name.iter().copied().all(is_token_byte) {
            return Err(HeadError::Malformed("bad header name"));
        }
        let value = &text[colon + 1..];
        if value
            .iter()
            .any(|&b| b == b'\r' || b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(HeadError::Malformed("control character in header value"));
        }
        let name = String::from_utf8(name.to_vec()).expect("token bytes are ASCII");
        let value = octets(value);
        raw_headers.push_str(&name);
        raw_headers.push(':');
        raw_headers.push_str(&octets(&text[colon + 1..]));
        raw_headers.push_str("\r\n");
        headers.push((name, value.trim_matches(OWS).to_string()));
    }
    let mut head = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        path,
        query: query.to_string(),
        version,
        headers,
        raw_headers,
        framing: Framing::None,
    };
    head.framing = request_framing(&head)?;
    Ok(head)
}

/// RFC 9112 6.3: Transfer-Encoding wins over Content-Length; anything but a final `chunked`
/// cannot be delimited, and differing Content-Length values are an attack, not a request.
fn request_framing(head: &RequestHead) -> Result<Framing, HeadError> {
    if let Some(te) = head.header("Transfer-Encoding") {
        let last = te.rsplit(',').next().unwrap_or_default().trim_matches(OWS);
        return if last.eq_ignore_ascii_case("chunked") && head.version == Version::Http11 {
            Ok(Framing::Chunked)
        } else {
            Err(HeadError::Malformed("unsupported Transfer-Encoding"))
        };
    }
    let mut length = None;
    for (_, v) in head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        for part in v.split(',') {
            let part = part.trim_matches(OWS);
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed("bad Content-Length"));
            }
            let n: u64 = part.parse().map_err(|_| HeadError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) | None => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

/// Reads through `\n`, but never more than `limit` bytes: a head over the limit is 431.
fn read_line_limited(reader: &mut impl BufRead, line: &mut Vec<u8>, limit: usize) -> Result<usize, HeadError> {
    let n = match reader.take(limit as u64).read_until(b'\n', line) {
        Ok(n) => n,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ) =>
        {
            return Err(HeadError::Closed)
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) && line.is_empty() => {
            return Err(HeadError::Closed)
        }
        Err(e) => return Err(HeadError::Io(e)),
    };
    if n == limit && line.last() != Some(&b'\n') {
        return Err(HeadError::TooLarge);
    }
    Ok(n)
}

/// The line without its CRLF (a bare LF is tolerated, RFC 9112 2.2); None if it has no end.
fn trim_eol(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\r') {
        return None;
    }
    Some(line)
}

/// The value of the header `name` (any case) among `fields`; repeated headers are joined
/// with `,` as IIS does, in requests and in the heads filters edit alike.
pub fn header_value(fields: &[(String, String)], name: &str) -> Option<String> {
    let mut values = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str());
    let first = values.next()?;
    Some(values.fold(first.to_string(), |all, v| all + "," + v))
}

/// HTTP's optional whitespace (RFC 9110): what is trimmed around header values and list
/// items. Not `str::trim`, which would also take the octets 0x85 and 0xA0 for spaces.
const OWS: [char; 2] = [' ', '\t'];

/// Header bytes as text, one char per byte (latin-1). Header names and values are kept so,
/// in requests and responses alike, and go back out byte for byte (`octet_bytes`): IIS
/// passes header bytes through, whatever their encoding.
pub fn octets(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The bytes of an [`octets`] string. A char beyond U+00FF, which only text the host makes
/// itself could hold, goes out as UTF-8.
pub fn octet_bytes(text: &str) -> Vec<u8> {
    match text.chars().map(|c| u8::try_from(c).ok()).collect::<Option<Vec<u8>>>() {
        Some(bytes) => bytes,
        None => text.as_bytes().to_vec(),
    }
}

pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Percent-decodes the path as UTF-8 and removes `.` and `..` segments, as http.sys does
/// before IIS sees the URL; None when the escapes are broken or do not decode to UTF-8.
pub fn normalize_path(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).ok()?;
    if decoded.contains('\0') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    for (n, segment) in segments.iter().enumerate() {
        let last = n + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    Some(format!("/{}", out.join("/")))
}

/// A request body as a stream, ending where its framing says; owns the connection's reader
/// so the ISAPI ReadClient callback can pull from it on any thread.
pub struct Body<R> {
    inner: R,
    state: BodyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    ChunkStart,
    ChunkData(u64),
    Done,
}

impl<R: BufRead> Body<R> {
    pub fn new(inner: R, framing: Framing) -> Body<R> {
        let state = match framing {
            Framing::None | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkStart,
        };
        Body { inner, state }
    }

    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Reads and drops what is left, up to `limit` bytes; true if the body was consumed, so
    /// the connection can carry the next request.
    pub fn discard(&mut self, limit: u64) -> bool {
        let mut left = limit;
        let mut buf = [0u8; 16 * 1024];
        while !self.is_done() {
            if left == 0 {
                return false;
            }
            let want = buf.len().min(left.try_into().unwrap_or(usize::MAX));
            match self.read(&mut buf[..want]) {
                Ok(0) if self.is_done() => break,
                Ok(0) | Err(_) => return false,
                Ok(n) => left -= n as u64,
            }
        }
        true
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn chunk_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = (&mut self.inner)
            .take(MAX_CHUNK_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "request body ended inside a chunk",
            ));
        }
        match trim_eol(&line) {
            Some(text) => String::from_utf8(text.to_vec()).map_err(|_| bad_chunk()),
            None => Err(bad_chunk()),
        }
    }
}

fn bad_chunk() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed chunked request body")
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                BodyState::Done => return Ok(0),
                BodyState::Length(left) | BodyState::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf.len().min(left.try_into().unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the client closed before the end of the body",
                        ));
                    }
                    let left = left - n as u64;
                    self.state = match self.state {
                        BodyState::Length(_) if left == 0 => BodyState::Done,
                        BodyState::Length(_) => BodyState::Length(left),
                        _ if left == 0 => {
                            if !self.chunk_line()?.is_empty() {
                                return Err(bad_chunk());
                            }
                            BodyState::ChunkStart
                        }
                        _ => BodyState::ChunkData(left),
                    };
                    return Ok(n);
                }
                BodyState::ChunkStart => {
                    let line = self.chunk_line()?;
                    let size = line.split(';').next().unwrap_or_default().trim();
                    if size.is_empty() || size.len() > 15 {
                        return Err(bad_chunk());
                    }
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad_chunk())?;
                    if size > 0 {
                        self.state = BodyState::ChunkData(size);
                        continue;
                    }
                    // The last chunk: skip trailer fields up to the empty line.
                    while !self.chunk_line()?.is_empty() {}
                    self.state = BodyState::Done;
                }
            }
        }
    }
}

/// How the response body goes on the wire once the head is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// No body may follow (HEAD, 1xx, 204, 304): writes are dropped.
    Empty,
    /// The extension declared Content-Length: bytes pass through.
    Length(u64),
    /// We add `Transfer-Encoding: chunked` and make each write one chunk.
    Chunked,
    /// The extension framed the body itself (its own Transfer-Encoding) or the client is
    /// HTTP/1.0: bytes pass through and the connection closes at the end.
    Raw,
}

/// What the request allows for the response.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub version: Version,
    pub client_keep_alive: bool,
    pub head_request: bool,
}

/// A response head ready for the wire, and how its body must be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedHead {
    pub bytes: Vec<u8>,
    pub mode: BodyMode,
    pub keep_alive: bool,
    pub status: u16,
}

/// The header block an extension sent, split into fields; lines that are not a proper
/// `Name: value` field are dropped (and reported) so a stray CR or LF inside a value can
/// never start a header or a body of its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    pub fields: Vec<(String, String)>,
    pub rejected: Vec<String>,
    /// Bytes after the blank line that ends the block: IIS sends them as the body's start.
    pub body: Vec<u8>,
}

pub fn parse_header_block(block: &[u8]) -> HeaderBlock {
    let mut out = HeaderBlock::default();
    let mut rest = block;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.body = rest.to_vec();
            break;
        }
        let field = line.iter().position(|&b| b == b':').and_then(|colon| {
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            let name_ok = !name.is_empty() && name.iter().copied().all(is_token_byte);
            let value_ok = !value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f);
            (name_ok && value_ok).then(|| (octets(name), octets(value).trim_matches(OWS).to_string()))
        });
        match field {
            Some(f) => out.fields.push(f),
            None => out.rejected.push(String::from_utf8_lossy(line).into_owned()),
        }
    }
    out
}

/// Splits an ISAPI status string (`"404 Not Found"`) into code and reason; None if it does
/// not start with a three-digit code.
pub fn parse_status(status: &str) -> Option<(u16, String)> {
    let status = status.trim();
    let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    if !(100..=999).contains(&code) {
        return None;
    }
    let reason = reason.trim();
    let reason = if reason.is_empty() || reason.bytes().any(|b| b < 0x20 || b == 0x7f) {
        reason_phrase(code)
    } else {
        reason
    };
    Some((code, reason.to_string()))
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Object Moved",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Frames a response: keeps the extension's fields (but not its hop-by-hop Connection
/// fields, which the host owns), then picks Content-Length pass-through, chunking (HTTP/1.1)
/// or close-delimited (HTTP/1.0), and says whether the connection can carry another request.
pub fn frame_head(
    status: u16,
    reason: &str,
    fields: &[(String, String)],
    exchange: Exchange,
    extension_keeps: bool,
) -> FramedHead {
    let mut keep = exchange.client_keep_alive && extension_keeps;
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut length = None;
    let mut own_framing = false;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("Connection") || name.eq_ignore_ascii_case("Keep-Alive") {
            if value
                .split(',')
                .any(|t| t.trim_matches(OWS).eq_ignore_ascii_case("close"))
            {
                keep = false;
            }
            continue;
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            match value.parse::<u64>() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                // A broken or conflicting length cannot frame anything: drop it and chunk.
                _ => continue,
            }
        }
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            own_framing = true;
        }
        out.push((name, value));
    }
    let no_body = exchange.head_request || status < 200 || status == 204 || status == 304;
    let mode = if no_body {
        BodyMode::Empty
    } else if own_framing {
        keep = false;
        BodyMode::Raw
    } else if let Some(n) = length {
        BodyMode::Length(n)
    } else if exchange.version == Version::Http11 {
        out.push(("Transfer-Encoding", "chunked"));
        BodyMode::Chunked
    } else {
        keep = false;
        BodyMode::Raw
    };
    if !keep {
        out.push(("Connection", "close"));
    } else if exchange.version == Version::Http10 {
        out.push(("Connection", "keep-alive"));
    }
    FramedHead {
        bytes: head_bytes(status, reason, out),
        mode,
        keep_alive: keep,
        status,
    }
}

/// A response head on the wire: the status line, each field's name and value as their
/// bytes ([`octet_bytes`]), and the blank line that ends the head.
pub fn head_bytes<'a>(status: u16, reason: &str, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut bytes = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (name, value) in fields {
        bytes.extend_from_slice(&octet_bytes(name));
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(&octet_bytes(value));
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// A complete response the host makes itself (errors, redirects): text body, Content-Length.
pub fn simple_response(
    status: u16,
    extra: &[(String, String)],
    body: &str,
    exchange: Exchange,
    keep: bool,
) -> (FramedHead, Vec<u8>) {
    let mut fields = extra.to_vec();
    // RFC 9110 8.6: no Content-Length on 1xx and 204.
    if status >= 200 && status != 204 {
        fields.push(("Content-Length".into(), body.len().to_string()));
    }
    if !body.is_empty() {
        fields.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
    }
    let head = frame_head(status, reason_phrase(status), &fields, exchange, keep);
    let body = if head.mode == BodyMode::Empty {
        Vec::new()
    } else {
        body.as_bytes().to_vec()
    };
    (head, body)
}

/// One chunk of a chunked body; empty data makes no chunk (it would end the body).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    let mut out = format!("{:X}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn head(raw: &str) -> Result<RequestHead, HeadError> {
        read_head(&mut Cursor::new(raw.as_bytes().to_vec()))
    }

    #[test]
    fn request_head_is_split_into_path_query_and_headers() {
        let h = head("GET /a/./b/../c%20d?x=1&y HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:  2 \r\n\r\n").unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.query.as_str()),
            ("GET", "/a/c d", "x=1&y")
        );
        assert_eq!(h.header("X-A").as_deref(), Some("1,2"));
        assert_eq!(h.raw_headers, "Host: h\r\nX-A: 1\r\nx-a:  2 \r\n");
        assert!(h.client_keep_alive());
        assert_eq!(h.framing, Framing::None);
    }

    #[test]
    fn header_bytes_go_through_byte_for_byte_in_requests_and_responses() {
        // UTF-8, latin-1 and bytes that are neither (0x81 has no char in Windows-1252).
        let raw = b"GET / HTTP/1.1\r\nX-Utf8: caf\xc3\xa9\r\nX-Latin: caf\xe9\r\nX-Odd: \x81\xff\r\n\r\n";
        let h = read_head(&mut Cursor::new(raw.to_vec())).unwrap();
        assert_eq!(
            octet_bytes(&h.raw_headers),
            b"X-Utf8: caf\xc3\xa9\r\nX-Latin: caf\xe9\r\nX-Odd: \x81\xff\r\n"
        );
        assert_eq!(octet_bytes(&h.header("X-Odd").unwrap()), b"\x81\xff");
        let block = parse_header_block(b"X-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n\r\n");
        let exchange = Exchange {
            version: Version::Http11,
            client_keep_alive: true,
            head_request: false,
        };
        let framed = frame_head(200, "OK", &block.fields, exchange, true);
        let sent = framed.bytes.as_slice();
        let has = |line: &[u8]| sent.windows(line.len()).any(|w| w == line);
        assert!(
            has(b"\r\nX-Latin: caf\xe9\r\n") && has(b"\r\nX-Utf8: caf\xc3\xa9\r\n"),
            "{}",
            sent.escape_ascii()
        );
        // Text the host makes itself beyond latin-1 goes out as UTF-8.
        assert_eq!(octet_bytes("\u{20ac}"), "\u{20ac}".as_bytes());
        // 0xA0 and 0x85 are bytes, not the spaces U+00A0 and U+0085: no length or framing
        // ends with one.
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5\xa0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\x85\r\n\r\n",
        ] {
            assert!(
                read_head(&mut Cursor::new(raw.to_vec())).is_err(),
                "{}",
                raw.escape_ascii()
            );
        }
    }

    #[test]
    fn broken_requests_are_malformed_and_huge_heads_too_large() {
        for raw in [
            "GET /\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(matches!(head(raw), Err(HeadError::Malformed(_))), "{raw:?}");
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(head(&big), Err(HeadError::TooLarge)));
        assert!(matches!(head(""), Err(HeadError::Closed)));
    }

    #[test]
    fn chunked_body_decodes_and_leaves_the_next_request() {
        let raw = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut body = Body::new(Cursor::new(raw.as_bytes().to_vec()), Framing::Chunked);
        let mut out = String::new();
        body.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
        let mut rest = String::new();
        body.into_inner().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn header_block_drops_lines_that_are_not_fields_and_keeps_trailing_body() {
        let block = parse_header_block(b"Content-Type: text/plain\r\nX-Bad\rInjected: 1\r\nbroken line\r\n\r\nbody");
        assert_eq!(
            block.fields,
            vec![("Content-Type".to_string(), "text/plain".to_string())]
        );
        assert_eq!(block.rejected.len(), 2);
        assert_eq!(block.body, b"body");
    }

    #[test]
    fn responses_without_length_are_chunked_for_http11_and_closed_for_http10() {
        let ex = Exchange {
            version: Version::Http11,
            client_keep_alive: true,
            head_request: false,
        };
        let f = frame_head(200, "OK", &[], ex, true);
        assert_eq!(f.mode, BodyMode::Chunked);
        assert_eq!(f.bytes, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let ex10 = Exchange {
            version: Version::Http10,
            client_keep_alive: false,
            head_request: false,
        };
        let f = frame_head(200, "OK", &[], ex10, true);
        assert_eq!((f.mode, f.keep_alive), (BodyMode::Raw, false));
        assert_eq!(f.bytes, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let fields = vec![("Content-Length".to_string(), "3".to_string())];
        let f = frame_head(200, "OK", &fields, ex, true);
        assert_eq!((f.mode, f.keep_alive), (BodyMode::Length(3), true));
    }

    #[test]
    fn status_strings_parse_like_iis() {
        assert_eq!(parse_status("404 Not Found"), Some((404, "Not Found".into())));
        assert_eq!(parse_status("302"), Some((302, "Object Moved".into())));
        assert_eq!(parse_status("OK"), None);
    }

    #[test]
    fn a_head_is_written_field_by_field_as_octets() {
        let fields = [
            ("X-Latin", "caf\u{e9}"),
            ("X-Made", "\u{2713}"),
            ("Content-Length", "0"),
        ];
        let mut expected = b"HTTP/1.1 201 Created\r\nX-Latin: caf\xe9\r\n".to_vec();
        // A char beyond U+00FF, which only the host's own text can hold, goes out as UTF-8.
        expected.extend_from_slice("X-Made: \u{2713}\r\nContent-Length: 0\r\n\r\n".as_bytes());
        assert_eq!(head_bytes(201, "Created", fields), expected);
    }
}
