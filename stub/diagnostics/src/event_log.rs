//! Errors in the Windows Event Log (Application log, source [`crate::EVENT_SOURCE`]), where
//! IIS administrators look first when an application fails.

use std::ffi::c_void;

/// `EVENTLOG_ERROR_TYPE` from winnt.h.
const EVENTLOG_ERROR_TYPE: u16 = 0x0001;
/// The longest string one event may carry.
const MAX_EVENT_STRING: usize = 31_839;

#[link(name = "advapi32")]
extern "system" {
    fn RegisterEventSourceW(server: *const u16, source: *const u16) -> *mut c_void;
    fn ReportEventW(
        log: *mut c_void,
        kind: u16,
        category: u16,
        event_id: u32,
        user_sid: *mut c_void,
        num_strings: u16,
        data_size: u32,
        strings: *const *const u16,
        data: *const c_void,
    ) -> i32;
    fn DeregisterEventSource(log: *mut c_void) -> i32;
}

/// Reports `message` as the `%1` of `kind`'s event (its id names the text in the
/// loader's message table, which install registers for the source).
pub fn report_error(kind: crate::messages::EventKind, message: &str) {
    let source: Vec<u16> = crate::EVENT_SOURCE.encode_utf16().chain([0]).collect();
    let mut text: Vec<u16> = message.encode_utf16().take(MAX_EVENT_STRING).collect();
    text.push(0);
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the calls; the handle
    // is checked before use and released after.
    unsafe {
        let log = RegisterEventSourceW(std::ptr::null(), source.as_ptr());
        if log.is_null() {
            return;
        }
        let strings = [text.as_ptr()];
        ReportEventW(
            log,
            EVENTLOG_ERROR_TYPE,
            0,
            kind.id(),
            std::ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            std::ptr::null(),
        );
        DeregisterEventSource(log);
    }
}
