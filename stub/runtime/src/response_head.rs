//! What WSGI's `start_response` accepts and sends, as text rules without Python: the status
//! line's shape, header lines and the check for line breaks, Content-Length detection, and
//! SendResponseHeaders' latin-1 strings. wsgi.rs's WsgiResponse applies them; the Python
//! twin (`isapi.wsgi._Response`) has the same rules, and tests/e2e/wsgi.rs compares the two.

use std::fmt::Write;

/// What a status given to start_response looks like, as far as its text can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusShape {
    /// `NNN Reason`: three ASCII digits and a space (the reason may be empty).
    NnnReason,
    /// Not `NNN Reason`: shorter than four chars, no space after the code, or a code of
    /// ASCII chars that are not all digits.
    Malformed,
    /// A code with non-ASCII chars and a space after it: whether they are digits is
    /// Python's `str.isdigit` call (it takes Unicode digits such as '٢', as the twin does).
    AskIsDigit,
}

/// The shape of `status` (the twin's `len(status) < 4 or not status[:3].isdigit() or
/// status[3] != " "`, with the isdigit left to Python only for non-ASCII codes).
pub fn status_shape(status: &str) -> StatusShape {
    let mut chars = status.chars();
    let code = [chars.next(), chars.next(), chars.next()];
    if chars.next() != Some(' ') {
        return StatusShape::Malformed;
    }
    // A space fourth means the three before it are there.
    let code = code.map(|c| c.expect("a fourth char follows three"));
    if !code.iter().all(char::is_ascii) {
        StatusShape::AskIsDigit
    } else if code.iter().all(char::is_ascii_digit) {
        StatusShape::NnnReason
    } else {
        StatusShape::Malformed
    }
}

/// The status code of a status of [`StatusShape::NnnReason`]; None when the code is not
/// ASCII (Python's `int()` reads Unicode digits).
pub fn status_code(status: &str) -> Option<u32> {
    status.get(..3).and_then(|digits| digits.parse().ok())
}

/// Appends the header line `name: value` to a header block.
pub fn push_header_line(block: &mut String, name: &str, value: &str) {
    block.push_str(name);
    block.push_str(": ");
    block.push_str(value);
    block.push_str("\r\n");
}

/// Whether a header's name or value holds a CR or LF: sent, it would end the line early
/// and let what follows pass for another header.
pub fn breaks_line(name: &str, value: &str) -> bool {
    name.contains(['\r', '\n']) || value.contains(['\r', '\n'])
}

/// Whether a header block sets Content-Length (names match ASCII-case-insensitively, with
/// the colon right after the name, as the twin's `"\ncontent-length:" in block.lower()`).
pub fn has_length(block: &str) -> bool {
    // Compared as bytes: a line may have a multi-byte char where the name would end.
    block.split("\r\n").any(|line| {
        line.as_bytes()
            .get(..15)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"content-length:"))
    })
}

/// Appends a Content-Length line to a header block.
pub fn add_length(block: &mut String, length: usize) {
    write!(block, "Content-Length: {length}\r\n").expect("a String takes any text");
}

/// The text that has a char outside latin-1, so that the caller can raise the error Python's
/// own encoder gives for it.
#[derive(Debug, PartialEq, Eq)]
pub struct NotLatin1<'a>(pub &'a str);

/// Appends `s.encode("latin-1")` to `out`.
pub fn push_latin1<'a>(out: &mut Vec<u8>, s: &'a str) -> Result<(), NotLatin1<'a>> {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    for c in s.chars() {
        out.push(u8::try_from(u32::from(c)).map_err(|_| NotLatin1(s))?);
    }
    Ok(())
}

/// SendResponseHeaders' strings in one buffer (one allocation: this runs for every
/// response): the status, a NUL, the header block with the blank line that ends it, a NUL;
/// and the status's length. Both are encoded first, so that a status or header outside
/// latin-1 fails before anything is sent and the client still gets the error page.
pub fn header_strings<'a>(status: &'a str, block: &'a str) -> Result<(Vec<u8>, usize), NotLatin1<'a>> {
    let mut strings = Vec::with_capacity(status.len() + block.len() + 4);
    push_latin1(&mut strings, status)?;
    let status_len = strings.len();
    strings.push(0);
    push_latin1(&mut strings, block)?;
    strings.extend_from_slice(b"\r\n\0");
    Ok((strings, status_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_three_digits_and_a_space() {
        assert_eq!(status_shape("200 OK"), StatusShape::NnnReason);
        assert_eq!(status_shape("404 "), StatusShape::NnnReason);
        assert_eq!(status_shape("999 \u{e9}t\u{e9}"), StatusShape::NnnReason);
    }

    #[test]
    fn other_statuses_are_malformed() {
        for status in [
            "", "2", "200", "200OK", "20 OK", "2OO OK", "+20 OK", " 200 OK", "200\tOK", "abcd",
        ] {
            assert_eq!(status_shape(status), StatusShape::Malformed, "{status:?}");
        }
        // No space fourth: malformed without asking Python about the code.
        assert_eq!(status_shape("\u{662}\u{660}\u{660}OK"), StatusShape::Malformed);
    }

    #[test]
    fn a_non_ascii_code_is_left_to_str_isdigit() {
        // Arabic-Indic 200, superscript two, and a letter: Python tells digits from others.
        assert_eq!(status_shape("\u{662}\u{660}\u{660} OK"), StatusShape::AskIsDigit);
        assert_eq!(status_shape("\u{b2}00 OK"), StatusShape::AskIsDigit);
        assert_eq!(status_shape("2\u{e9}0 OK"), StatusShape::AskIsDigit);
    }

    #[test]
    fn the_code_of_an_ascii_status() {
        assert_eq!(status_code("200 OK"), Some(200));
        assert_eq!(status_code("007 Bond"), Some(7));
        assert_eq!(status_code("\u{662}\u{660}\u{660} OK"), None);
        assert_eq!(status_code("2\u{e9}0 OK"), None);
    }

    #[test]
    fn header_lines_and_line_breaks() {
        let mut block = String::new();
        push_header_line(&mut block, "Content-Type", "text/plain");
        push_header_line(&mut block, "X-Empty", "");
        assert_eq!(block, "Content-Type: text/plain\r\nX-Empty: \r\n");
        assert!(!breaks_line("X-Note", "a b\t\u{85}\u{2028}"));
        assert!(breaks_line("X-Note", "a\r\nInjected: 1"));
        assert!(breaks_line("X-Note", "a\rb"));
        assert!(breaks_line("X-Note", "a\nb"));
        assert!(breaks_line("X\nNote", "a"));
    }

    #[test]
    fn content_length_is_found_in_any_case() {
        assert!(has_length("Content-Length: 5\r\n"));
        assert!(has_length("X-A: 1\r\ncontent-LENGTH:5\r\n"));
        assert!(!has_length("X-Content-Length: 5\r\n"));
        assert!(!has_length("Content-Length : 5\r\n"));
        assert!(!has_length("Content-Type: text/plain\r\n"));
        assert!(!has_length(""));
    }

    #[test]
    fn a_multibyte_char_where_the_name_ends_is_no_length() {
        // Byte 15 falls inside the 'é' (it panicked when compared as str).
        assert!(!has_length("Content-Lengt\u{e9}h: 1\r\n"));
        assert!(!has_length("Content-Length\u{e9}: 1\r\n"));
    }

    #[test]
    fn add_length_appends_a_line() {
        let mut block = "X-A: 1\r\n".to_string();
        add_length(&mut block, 0);
        add_length(&mut block, 1234567);
        assert_eq!(block, "X-A: 1\r\nContent-Length: 0\r\nContent-Length: 1234567\r\n");
        assert!(has_length(&block));
    }

    #[test]
    fn latin1_text_encodes_one_byte_per_char() {
        let mut out = Vec::new();
        push_latin1(&mut out, "ascii ").unwrap();
        push_latin1(&mut out, "caf\u{e9} \u{ff}\u{80}").unwrap();
        assert_eq!(out, b"ascii caf\xe9 \xff\x80");
    }

    #[test]
    fn text_outside_latin1_is_refused_whole() {
        let mut out = Vec::new();
        assert_eq!(push_latin1(&mut out, "a\u{100}"), Err(NotLatin1("a\u{100}")));
        assert_eq!(push_latin1(&mut out, "\u{20ac}"), Err(NotLatin1("\u{20ac}")));
    }

    #[test]
    fn header_strings_are_status_nul_block_blank_line_nul() {
        let (strings, status_len) = header_strings("200 OK", "Content-Type: text/plain\r\n").unwrap();
        assert_eq!(strings, b"200 OK\0Content-Type: text/plain\r\n\r\n\0");
        assert_eq!(status_len, 6);
        let (strings, status_len) = header_strings("200 Caf\u{e9}", "").unwrap();
        assert_eq!(strings, b"200 Caf\xe9\0\r\n\0");
        assert_eq!(status_len, 8);
    }

    #[test]
    fn header_strings_name_the_text_outside_latin1() {
        assert_eq!(
            header_strings("200 \u{2713}", "A: b\r\n"),
            Err(NotLatin1("200 \u{2713}"))
        );
        assert_eq!(
            header_strings("200 OK", "A: \u{2713}\r\n"),
            Err(NotLatin1("A: \u{2713}\r\n"))
        );
    }
}
