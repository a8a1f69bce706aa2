//! Reading server variables, without Windows: the buffer that grows to the size the server
//! asks for, the per-thread scratch buffer values are read into, the variable's name as a C
//! string on the stack, and the decoders of ANSI and `UNICODE_*` values. ecb.rs and
//! filter.rs make the server calls; this is what stays the same whichever server answers.

use std::cell::RefCell;
use std::ffi::CStr;

/// `ERROR_INSUFFICIENT_BUFFER` (winerror.h): the server's answer when a value does not fit.
pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;

/// How many times a server may answer ERROR_INSUFFICIENT_BUFFER with a bigger size before
/// the read gives up (the contract has it answer once, with the size it needs).
const GROW_ATTEMPTS: usize = 4;

/// The size a read starts with: every common variable fits.
const FIRST_SIZE: usize = 1024;

/// Reads a value through a GetServerVariable-shaped server function, growing the buffer to
/// the size the server asks for: the bytes it wrote, or the Windows error it failed with.
/// `call(buffer, &mut len)` is the server call: `len` goes in as the buffer's size and comes
/// back as what was written (or, with ERROR_INSUFFICIENT_BUFFER, the size needed).
pub fn read_grown(call: impl FnMut(&mut [u8], &mut u32) -> Result<(), u32>) -> Result<Vec<u8>, u32> {
    let mut buffer = Vec::new();
    read_grown_into(&mut buffer, call).map(|len| {
        buffer.truncate(len);
        buffer
    })
}

/// [`read_grown`] into `buffer`, reused: the value is `buffer[..n]` for the `n` returned. The
/// buffer keeps its length (at least 1 KiB, zeroed when it grows), so a reuse writes no
/// bytes of its own.
pub fn read_grown_into(
    buffer: &mut Vec<u8>,
    mut call: impl FnMut(&mut [u8], &mut u32) -> Result<(), u32>,
) -> Result<usize, u32> {
    let mut size = buffer.len().max(FIRST_SIZE);
    for _ in 0..GROW_ATTEMPTS {
        if buffer.len() < size {
            buffer.resize(size, 0);
        }
        let mut len = size as u32;
        match call(&mut buffer[..size], &mut len) {
            // A server that claims more than the buffer holds is not believed.
            Ok(()) => return Ok((len as usize).min(size)),
            Err(ERROR_INSUFFICIENT_BUFFER) if len as usize > size => size = len as usize,
            Err(err) => return Err(err),
        }
    }
    Err(ERROR_INSUFFICIENT_BUFFER)
}

/// A `UNICODE_*` variable's UTF-16 bytes (with or without their NUL) as text, decoded in
/// one pass (the WSGI environ reads its path so, for every request). An odd last byte is
/// dropped and a lone surrogate becomes U+FFFD.
pub fn utf16_text(buffer: &[u8]) -> String {
    let whole = &buffer[..buffer.len() & !1];
    let units = whole.strip_suffix(&[0, 0]).unwrap_or(whole).chunks_exact(2);
    char::decode_utf16(units.map(|c| u16::from_le_bytes([c[0], c[1]])))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// An ANSI variable's bytes without the terminating NUL.
pub fn ansi_bytes(buffer: &[u8]) -> &[u8] {
    buffer.strip_suffix(&[0]).unwrap_or(buffer)
}

/// Names shorter than this (every server variable's) are made into C strings on the stack.
const SHORT_NAME: usize = 64;

/// Calls `f` with `name` as a C string; a NUL in the name ends it, as it would for a C
/// caller. Names that fit (every server variable's) are made on the stack.
pub fn with_c_name<R>(name: &str, f: impl FnOnce(&CStr) -> R) -> R {
    let mut short = [0u8; SHORT_NAME];
    if name.len() < short.len() {
        short[..name.len()].copy_from_slice(name.as_bytes());
        return f(CStr::from_bytes_until_nul(&short).expect("ends with a NUL"));
    }
    let long: Vec<u8> = name.bytes().chain([0]).collect();
    f(CStr::from_bytes_until_nul(&long).expect("ends with a NUL"))
}

/// The largest scratch buffer a thread keeps between calls.
const SCRATCH_KEPT: usize = 64 * 1024;

thread_local! {
    /// The buffer server variables are read into before they become Python objects: one per
    /// thread, so that a read allocates nothing once it is big enough.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with this thread's scratch buffer (a fresh one if a call further up the stack
/// holds it, or the thread's storage is already gone).
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let borrowed = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            let out = (f.take().expect("called once"))(&mut buffer);
            // A rare huge value (a long header block) is not kept by every server thread.
            if buffer.capacity() > SCRATCH_KEPT {
                *buffer = Vec::new();
            }
            Some(out)
        }
        Err(_) => None,
    });
    match borrowed {
        Ok(Some(out)) => out,
        // Held up the stack, or the thread is ending and its storage is gone.
        _ => (f.take().expect("not called yet"))(&mut Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server holding `value` that answers as GetServerVariable does, counting its calls.
    fn server<'a>(value: &'a [u8], calls: &'a mut usize) -> impl FnMut(&mut [u8], &mut u32) -> Result<(), u32> + 'a {
        move |buffer, len| {
            *calls += 1;
            assert_eq!(*len as usize, buffer.len(), "len goes in as the buffer's size");
            if value.len() > buffer.len() {
                *len = value.len() as u32;
                return Err(ERROR_INSUFFICIENT_BUFFER);
            }
            buffer[..value.len()].copy_from_slice(value);
            *len = value.len() as u32;
            Ok(())
        }
    }

    #[test]
    fn a_short_value_is_read_in_one_call_into_1_kib() {
        let mut calls = 0;
        let mut buffer = Vec::new();
        assert_eq!(read_grown_into(&mut buffer, server(b"GET\0", &mut calls)), Ok(4));
        assert_eq!(&buffer[..4], b"GET\0");
        assert_eq!(buffer.len(), 1024);
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_long_value_grows_the_buffer_to_the_size_the_server_asks_for() {
        let value = vec![b'x'; 5000];
        let mut calls = 0;
        assert_eq!(read_grown(server(&value, &mut calls)), Ok(value.clone()));
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_reused_buffer_keeps_its_length_and_is_not_rezeroed() {
        let mut buffer = vec![7u8; 2048];
        let mut calls = 0;
        assert_eq!(read_grown_into(&mut buffer, server(b"ab", &mut calls)), Ok(2));
        assert_eq!(buffer.len(), 2048);
        assert_eq!(&buffer[..4], b"ab\x07\x07");
    }

    #[test]
    fn the_servers_error_is_returned() {
        // ERROR_INVALID_INDEX: no such variable.
        assert_eq!(read_grown(|_, _| Err(1413)), Err(1413));
        // Too small, but not asking for more: the error stands.
        assert_eq!(
            read_grown(|_, _| Err(ERROR_INSUFFICIENT_BUFFER)),
            Err(ERROR_INSUFFICIENT_BUFFER)
        );
    }

    #[test]
    fn a_server_that_keeps_asking_for_more_is_given_up_on() {
        let mut calls = 0;
        let result = read_grown(|buffer, len| {
            calls += 1;
            *len = buffer.len() as u32 * 2;
            Err(ERROR_INSUFFICIENT_BUFFER)
        });
        assert_eq!(result, Err(ERROR_INSUFFICIENT_BUFFER));
        assert_eq!(calls, GROW_ATTEMPTS);
    }

    #[test]
    fn a_length_past_the_buffer_is_cut_to_the_buffer() {
        let result = read_grown(|buffer, len| {
            buffer.fill(b'y');
            *len = u32::MAX;
            Ok(())
        });
        assert_eq!(result.map(|v| v.len()), Ok(1024));
    }

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn utf16_values_decode_with_or_without_their_nul() {
        let mut with_nul = utf16("/caf\u{e9}/\u{65e5}\u{1f600}");
        assert_eq!(utf16_text(&with_nul), "/caf\u{e9}/\u{65e5}\u{1f600}");
        with_nul.extend([0, 0]);
        assert_eq!(utf16_text(&with_nul), "/caf\u{e9}/\u{65e5}\u{1f600}");
        assert_eq!(utf16_text(&[0, 0]), "");
        assert_eq!(utf16_text(b""), "");
    }

    #[test]
    fn utf16_drops_an_odd_byte_and_replaces_a_lone_surrogate() {
        assert_eq!(utf16_text(&[b'a', 0, b'b']), "a");
        assert_eq!(utf16_text(&[b'a', 0, 0x00, 0xD8, b'b', 0]), "a\u{fffd}b");
        // Only the one terminating NUL goes.
        assert_eq!(utf16_text(&[b'a', 0, 0, 0, 0, 0]), "a\0");
    }

    #[test]
    fn ansi_values_lose_one_terminating_nul() {
        assert_eq!(ansi_bytes(b"on\0"), b"on");
        assert_eq!(ansi_bytes(b"on"), b"on");
        assert_eq!(ansi_bytes(b"\xe9\0\0"), b"\xe9\0");
        assert_eq!(ansi_bytes(b""), b"");
    }

    #[test]
    fn names_become_c_strings_on_the_stack_or_not() {
        assert_eq!(with_c_name("ALL_RAW", |c| c.to_owned()), c"ALL_RAW".to_owned());
        let long = "HTTP_".to_string() + &"X".repeat(100);
        assert_eq!(with_c_name(&long, |c| c.to_bytes().len()), 105);
        let edge = "Y".repeat(SHORT_NAME - 1);
        assert_eq!(with_c_name(&edge, |c| c.to_bytes().len()), SHORT_NAME - 1);
        let edge = "Y".repeat(SHORT_NAME);
        assert_eq!(with_c_name(&edge, |c| c.to_bytes().len()), SHORT_NAME);
    }

    #[test]
    fn a_nul_ends_the_name_as_for_a_c_caller() {
        assert_eq!(
            with_c_name("REMOTE_ADDR\0X", |c| c.to_owned()),
            c"REMOTE_ADDR".to_owned()
        );
        let long = "A".repeat(70) + "\0B";
        assert_eq!(with_c_name(&long, |c| c.to_bytes().len()), 70);
    }

    #[test]
    fn the_scratch_buffer_is_kept_between_calls() {
        with_scratch(|buffer| {
            buffer.clear();
            buffer.extend_from_slice(b"kept");
        });
        assert_eq!(with_scratch(|buffer| buffer.clone()), b"kept");
    }

    #[test]
    fn a_nested_call_gets_a_fresh_buffer() {
        with_scratch(|outer| {
            outer.clear();
            outer.push(1);
            with_scratch(|inner| {
                assert!(inner.is_empty());
                inner.push(2);
            });
            assert_eq!(outer, &[1]);
        });
    }

    #[test]
    fn a_scratch_buffer_grown_past_64_kib_is_dropped() {
        with_scratch(|buffer| buffer.resize(SCRATCH_KEPT + 1, 0));
        assert_eq!(with_scratch(|buffer| buffer.capacity()), 0);
        with_scratch(|buffer| buffer.resize(SCRATCH_KEPT, 0));
        assert!(with_scratch(|buffer| buffer.capacity()) >= SCRATCH_KEPT);
    }
}
