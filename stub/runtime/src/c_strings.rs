//! The NUL-terminated strings the server takes from a script: refused when they hold a NUL
//! (C would cut them there) or, for a description, when they do not fit; copied, cut to fit,
//! into the fixed arrays of HSE_VERSION_INFO, HTTP_FILTER_VERSION and the control block's
//! LogData. The pyo3 side raises ValueError with these errors' text.

use std::fmt;

/// Why a value cannot be the C string the server takes; `what` names the argument or
/// attribute, as the script's ValueError says.
#[derive(Debug, PartialEq, Eq)]
pub enum CStringError<'a> {
    /// A NUL inside: the server would see only what comes before it.
    Nul { what: &'a str },
    /// A description of `max` bytes or more: it would not fit its array with the NUL.
    TooLong { what: &'a str, max: usize },
}

impl fmt::Display for CStringError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CStringError::Nul { what } => write!(f, "{what} cannot contain NUL"),
            // pywin32's words, which name the array's size.
            CStringError::TooLong { max, .. } => write!(f, "String is too long - max of {max} chars"),
        }
    }
}

/// `bytes` when it holds no NUL.
pub fn without_nul<'b, 'a>(bytes: &'b [u8], what: &'a str) -> Result<&'b [u8], CStringError<'a>> {
    match bytes.contains(&0) {
        true => Err(CStringError::Nul { what }),
        false => Ok(bytes),
    }
}

/// `bytes` and a terminating NUL, when it holds none of its own.
pub fn c_string<'a>(bytes: &[u8], what: &'a str) -> Result<Vec<u8>, CStringError<'a>> {
    without_nul(bytes, what)?;
    Ok(bytes.iter().copied().chain([0]).collect())
}

/// A description for an array of `max` bytes (ExtensionDesc: 256, FilterDesc: 257): shorter
/// than that, to leave room for the NUL, and without a NUL of its own.
pub fn description<'a>(bytes: &[u8], max: usize, what: &'a str) -> Result<(), CStringError<'a>> {
    if bytes.len() >= max {
        return Err(CStringError::TooLong { what, max });
    }
    without_nul(bytes, what).map(drop)
}

/// Copies `bytes` into a fixed `CHAR` array (windows-sys declares them as i8) as a C
/// string: cut to leave room for the NUL that ends it. Bytes past the NUL are left as they
/// are.
pub fn copy_truncated(field: &mut [i8], bytes: &[u8]) {
    let Some(room) = field.len().checked_sub(1) else {
        return;
    };
    let n = bytes.len().min(room);
    for (dst, &src) in field.iter_mut().zip(&bytes[..n]) {
        *dst = src as i8;
    }
    field[n] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_refused_with_the_argument_named() {
        assert_eq!(without_nul(b"abc", "name"), Ok(&b"abc"[..]));
        let err = without_nul(b"a\0c", "name").unwrap_err();
        assert_eq!(err.to_string(), "name cannot contain NUL");
        assert_eq!(
            c_string(b"\0", "headers").unwrap_err().to_string(),
            "headers cannot contain NUL"
        );
    }

    #[test]
    fn a_c_string_gets_its_nul() {
        assert_eq!(c_string(b"X-A: 1\r\n", "headers").unwrap(), b"X-A: 1\r\n\0");
        assert_eq!(c_string(b"", "url").unwrap(), b"\0");
        assert_eq!(c_string(b"caf\xe9", "url").unwrap(), b"caf\xe9\0");
    }

    #[test]
    fn a_description_must_leave_room_for_the_nul() {
        assert_eq!(description(&[b'a'; 255], 256, "ExtensionDesc"), Ok(()));
        let err = description(&[b'a'; 256], 256, "ExtensionDesc").unwrap_err();
        assert_eq!(err.to_string(), "String is too long - max of 256 chars");
        assert_eq!(description(&[b'a'; 256], 257, "FilterDesc"), Ok(()));
        assert_eq!(description(b"", 257, "FilterDesc"), Ok(()));
    }

    #[test]
    fn a_description_is_checked_for_length_before_nul() {
        let err = description(&[0; 300], 256, "ExtensionDesc").unwrap_err();
        assert_eq!(
            err,
            CStringError::TooLong {
                what: "ExtensionDesc",
                max: 256
            }
        );
        let err = description(b"a\0", 256, "ExtensionDesc").unwrap_err();
        assert_eq!(err.to_string(), "ExtensionDesc cannot contain NUL");
    }

    #[test]
    fn a_copy_is_cut_to_leave_room_for_the_nul() {
        let mut log_data = [b'#' as i8; 80];
        copy_truncated(&mut log_data, &[b'x'; 100]);
        assert!(log_data[..79].iter().all(|&c| c == b'x' as i8));
        assert_eq!(log_data[79], 0);

        let mut field = [b'#' as i8; 8];
        copy_truncated(&mut field, b"ab\xe9");
        assert_eq!(field, [b'a' as i8, b'b' as i8, 0xe9u8 as i8, 0, 35, 35, 35, 35]);

        let mut field = [b'#' as i8; 4];
        copy_truncated(&mut field, b"");
        assert_eq!(field, [0, 35, 35, 35]);
    }

    #[test]
    fn an_empty_array_is_left_alone() {
        copy_truncated(&mut [], b"abc");
    }
}
