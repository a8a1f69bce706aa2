//! The Event Log's message table: the event ids the runtime and loader report with, their
//! `%1` texts, and the `RT_MESSAGETABLE` resource bytes the freezer puts into the loader,
//! so that Event Viewer shows each event's text without "the description cannot be found".

/// `RT_MESSAGETABLE` from winuser.h.
pub const RT_MESSAGETABLE: u16 = 11;
/// The resource id of the table (the message compiler's, and the one Windows reads).
pub const MESSAGE_TABLE_ID: u16 = 1;
/// `MESSAGE_RESOURCE_UNICODE` from winnt.h: entry text is UTF-16.
const MESSAGE_RESOURCE_UNICODE: u16 = 0x0001;

/// What an event reports; its id is the event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventKind {
    /// Anything not below, e.g. a log that cannot be written.
    Error = 1,
    /// The extension or filter could not start (Python, the archive, Get*Version).
    StartFailure = 2,
    /// HttpExtensionProc failed for a request.
    RequestError = 3,
    /// HttpFilterProc failed for a notification.
    FilterError = 4,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Error,
        EventKind::StartFailure,
        EventKind::RequestError,
        EventKind::FilterError,
    ];

    pub fn id(self) -> u32 {
        self as u32
    }

    /// The message text; `%1` is the one string each event carries.
    pub fn text(self) -> &'static str {
        match self {
            EventKind::Error => "%1",
            EventKind::StartFailure => "The ISAPI application could not start: %1",
            EventKind::RequestError => "A request failed: %1",
            EventKind::FilterError => "The ISAPI filter failed: %1",
        }
    }

    /// The kind of an error message. The callers begin each message with what failed (an
    /// ISAPI entry point, or "cannot start"), so the kind is read from there rather than
    /// passed along every caller.
    pub fn of(message: &str) -> EventKind {
        let first = message.split_whitespace().next().unwrap_or("");
        match first {
            "cannot" if message.starts_with("cannot start") => EventKind::StartFailure,
            "GetExtensionVersion" | "GetFilterVersion" => EventKind::StartFailure,
            "HttpExtensionProc" => EventKind::RequestError,
            "HttpFilterProc" => EventKind::FilterError,
            _ => EventKind::Error,
        }
    }
}

/// The `MESSAGE_RESOURCE_DATA` of [`EventKind::ALL`]: one block of consecutive ids, each
/// entry a length, flags and NUL-terminated UTF-16 text (with the CR LF the message
/// compiler ends each message with), padded to 4 bytes.
pub fn message_table() -> Vec<u8> {
    let low = EventKind::ALL[0].id();
    let high = EventKind::ALL[EventKind::ALL.len() - 1].id();
    let mut out = Vec::new();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&low.to_le_bytes());
    out.extend_from_slice(&high.to_le_bytes());
    // The entries follow the one block: 4 bytes of count and 12 of block.
    out.extend_from_slice(&16u32.to_le_bytes());
    for kind in EventKind::ALL {
        let mut text: Vec<u8> = format!("{}\r\n", kind.text())
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        while (text.len() + 4) % 4 != 0 {
            text.push(0);
        }
        let length = u16::try_from(text.len() + 4).expect("a short message");
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&MESSAGE_RESOURCE_UNICODE.to_le_bytes());
        out.extend_from_slice(&text);
    }
    out
}

/// The text of event `id` in a `MESSAGE_RESOURCE_DATA`, as FormatMessage finds it; None
/// if the table has no such id or is malformed.
pub fn find_message(table: &[u8], id: u32) -> Option<String> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(table.get(at..at + 4)?.try_into().ok()?));
    let u16_at = |at: usize| Some(u16::from_le_bytes(table.get(at..at + 2)?.try_into().ok()?));
    let blocks = u32_at(0)? as usize;
    for block in 0..blocks {
        let at = 4 + block * 12;
        let (low, high, mut entry) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)? as usize);
        if !(low..=high).contains(&id) {
            continue;
        }
        for _ in low..id {
            entry += usize::from(u16_at(entry)?);
        }
        let length = usize::from(u16_at(entry)?);
        let text = table.get(entry + 4..entry + length)?;
        if u16_at(entry + 2)? & MESSAGE_RESOURCE_UNICODE == 0 {
            return Some(String::from_utf8_lossy(text).trim_end_matches('\0').to_string());
        }
        let units: Vec<u16> = text.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        return Some(String::from_utf16_lossy(&units).trim_end_matches('\0').to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_each_kinds_text_under_its_id() {
        let table = message_table();
        assert_eq!(table.len() % 4, 0);
        for kind in EventKind::ALL {
            assert_eq!(find_message(&table, kind.id()), Some(format!("{}\r\n", kind.text())));
        }
        assert_eq!(find_message(&table, 0), None);
        assert_eq!(find_message(&table, 5), None);
    }

    #[test]
    fn a_messages_kind_is_what_failed() {
        assert_eq!(EventKind::of("cannot start: no python311.dll"), EventKind::StartFailure);
        assert_eq!(
            EventKind::of("GetExtensionVersion failed:\nboom"),
            EventKind::StartFailure
        );
        assert_eq!(
            EventKind::of("HttpExtensionProc failed:\nboom"),
            EventKind::RequestError
        );
        assert_eq!(EventKind::of("HttpFilterProc failed:\nboom"), EventKind::FilterError);
        assert_eq!(EventKind::of("cannot write the log"), EventKind::Error);
        assert_eq!(EventKind::of(""), EventKind::Error);
    }
}
