//! Basic credentials (RFC 7617) from a request's Authorization header: what the host hands
//! AUTHENTICATION filters to check or change, and what AUTH_USER and the log report. Its
//! own small base64 decoder keeps isapi-host free of dependencies.

use crate::http::RequestHead;

/// User and password of a Basic Authorization header. The decoded bytes are read as UTF-8,
/// with U+FFFD for what is not; the password is everything after the first colon.
pub fn basic_credentials(head: &RequestHead) -> Option<(String, String)> {
    let value = head.header("Authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let text = String::from_utf8_lossy(&decoded).into_owned();
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 (`+`, `/`), leniently: `=` is skipped wherever it stands, so padding may
/// be missing. None for any other byte outside the alphabet, or for a last group of one
/// character, which cannot hold a whole byte.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|&b| b != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn authorization(value: &str) -> Option<(String, String)> {
        let raw = format!("GET / HTTP/1.1\r\nAuthorization: {value}\r\n\r\n");
        let head = crate::http::read_head(&mut Cursor::new(raw.into_bytes())).unwrap();
        basic_credentials(&head)
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        let cases: [(&str, &[u8]); 7] = [
            ("", b""),
            ("YQ==", b"a"),
            ("YWI=", b"ab"),
            ("YWJj", b"abc"),
            ("YQ", b"a"),
            ("+/+/", &[0xfb, 0xff, 0xbf]),
            ("AAECAwQFBgc=", &[0, 1, 2, 3, 4, 5, 6, 7]),
        ];
        for (text, bytes) in cases {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
        }
    }

    #[test]
    fn base64_refuses_foreign_bytes_and_a_lone_last_character() {
        for text in ["Y===", "YWJjZ", "YW-j", "YW j", "YQ==\u{e9}"] {
            assert_eq!(base64_decode(text), None, "{text}");
        }
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let cases = [
            ("Basic dXNlcjpwYXNz", "user", "pass"),
            ("basic dXNlcjpwYTpzcw==", "user", "pa:ss"),
            ("BASIC   Og==", "", ""),
            ("Basic dXNlcjo", "user", ""),
        ];
        for (value, user, password) in cases {
            let expected = Some((user.to_string(), password.to_string()));
            assert_eq!(authorization(value), expected, "{value}");
        }
    }

    #[test]
    fn basic_credentials_need_the_basic_scheme_a_colon_and_base64() {
        // "dXNlcnBhc3M=" is "userpass", without a colon.
        let refused = [
            "Basic dXNlcnBhc3M=",
            "Bearer dXNlcjpwYXNz",
            "Basic",
            "Basic dXNlcjpwYXNz!",
            "Basic d===",
        ];
        for value in refused {
            assert_eq!(authorization(value), None, "{value}");
        }
        let head = crate::http::read_head(&mut Cursor::new(b"GET / HTTP/1.1\r\n\r\n".to_vec())).unwrap();
        assert_eq!(basic_credentials(&head), None);
    }

    #[test]
    fn basic_credentials_that_are_not_utf8_are_read_lossily() {
        // "\xe9t\xe9:caf\xe9" (latin-1) and "\xc3\xa9:\xff" (UTF-8, then a stray byte).
        let latin1 = Some(("\u{fffd}t\u{fffd}".to_string(), "caf\u{fffd}".to_string()));
        assert_eq!(authorization("Basic 6XTpOmNhZuk="), latin1);
        let stray = Some(("\u{e9}".to_string(), "\u{fffd}".to_string()));
        assert_eq!(authorization("Basic w6k6/w=="), stray);
    }
}
