//! ISAPI filters as IIS drives them: each `--filter` DLL is loaded by full path, asked
//! GetFilterVersion once, and told, per connection, the notifications it asked for
//! (httpfilt.h) at the points IIS raises them: READ_RAW_DATA on bytes read, PREPROC_HEADERS,
//! URL_MAP, AUTHENTICATION and AUTH_COMPLETE on a parsed request, ACCESS_DENIED before a
//! 401, SEND_RESPONSE before a response head, SEND_RAW_DATA on bytes written,
//! END_OF_REQUEST, LOG before the log line, END_OF_NET_SESSION when the connection closes.
//!
//! Where each part lives: chain.rs loads the filters and keeps them in notification order;
//! connection.rs holds one connection's filter state and raises notifications through the
//! chain; notifications.rs fills each notification's httpfilt.h struct and reads back what
//! the filters changed; callbacks.rs is what filters call back; streams.rs puts
//! READ_RAW_DATA and SEND_RAW_DATA on the socket. headers.rs, auth.rs and log.rs are the
//! pure parts (the head filters edit, Basic credentials, the log record), so they are
//! compiled and unit-tested on every platform.

mod auth;
mod headers;
mod log;

#[cfg(windows)]
mod callbacks;
#[cfg(windows)]
mod chain;
#[cfg(windows)]
mod connection;
#[cfg(windows)]
mod notifications;
#[cfg(windows)]
mod streams;

// What the server and the ECB use of filters; only the Windows build has them.
#[cfg(windows)]
pub use {
    auth::basic_credentials,
    chain::{Filter, Filters},
    connection::Connection,
    log::LogRecord,
    streams::{Incoming, Outgoing},
};

/// The filter revision this host speaks (httpfilt.h HTTP_FILTER_REVISION, 7.0).
#[cfg(windows)]
const HTTP_FILTER_REVISION: u32 = 0x0007_0000;

/// What a chain of notifications decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the request.
    Continue,
    /// A filter answered the request itself; keep the connection if `keep`.
    Finished { keep: bool },
    /// A filter failed: IIS answers 500 and closes.
    Error,
    /// READ_RAW_DATA only: the filter needs more bytes first.
    ReadNext,
    /// AUTH_COMPLETE set fResetAuth: the client must authenticate again (the host answers
    /// 401 with a Basic challenge).
    Denied,
}
