//! The connection's socket as the request loop reads and writes it: Incoming passes what
//! is read through READ_RAW_DATA, Outgoing passes response heads through ACCESS_DENIED and
//! SEND_RESPONSE and every write through SEND_RAW_DATA. Without filters both are the
//! plain socket.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use windows_sys::Win32::System::Iis::SF_NOTIFY_SEND_RAW_DATA;

use super::connection::Connection;
use super::Flow;
use crate::http::FramedHead;

/// The connection's incoming bytes, after READ_RAW_DATA.
pub struct Incoming {
    stream: TcpStream,
    /// The connection's filter state; None when no filter is loaded.
    connection: Option<Arc<Connection>>,
    pending: Vec<u8>,
    position: usize,
    closed: bool,
}

impl Incoming {
    pub fn new(stream: TcpStream, connection: Option<Arc<Connection>>) -> Incoming {
        Incoming {
            stream,
            connection,
            pending: Vec::new(),
            position: 0,
            closed: false,
        }
    }
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(connection) = self.connection.clone() else {
            return self.stream.read(buf);
        };
        while self.position >= self.pending.len() {
            if self.closed {
                return Ok(0);
            }
            let mut held = Vec::new();
            loop {
                let mut chunk = vec![0u8; 16 * 1024];
                let n = self.stream.read(&mut chunk)?;
                if n == 0 {
                    if held.is_empty() {
                        return Ok(0);
                    }
                    self.closed = true;
                    break;
                }
                held.extend_from_slice(&chunk[..n]);
                let (flow, data) = connection.read_raw(held);
                match flow {
                    Flow::Continue => {
                        held = data;
                        break;
                    }
                    Flow::ReadNext => held = data,
                    Flow::Finished { .. } => {
                        // The filter answered on its own; the connection ends here.
                        self.closed = true;
                        return Ok(0);
                    }
                    Flow::Error | Flow::Denied => {
                        return Err(io::Error::other("a filter failed on READ_RAW_DATA"));
                    }
                }
            }
            self.pending = held;
            self.position = 0;
        }
        let n = buf.len().min(self.pending.len() - self.position);
        buf[..n].copy_from_slice(&self.pending[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// The connection's outgoing bytes: response heads get SEND_RESPONSE (and ACCESS_DENIED),
/// every write gets SEND_RAW_DATA.
pub struct Outgoing {
    stream: TcpStream,
    /// As for [`Incoming`].
    connection: Option<Arc<Connection>>,
    /// A filter finished the request while a response was being sent: drop the rest.
    suppressed: bool,
}

impl Outgoing {
    pub fn new(stream: TcpStream, connection: Option<Arc<Connection>>) -> Outgoing {
        Outgoing {
            stream,
            connection,
            suppressed: false,
        }
    }

    /// A writer without filters, for what the host answers before a request is parsed.
    pub fn plain(stream: &TcpStream) -> Option<Outgoing> {
        stream.try_clone().ok().map(|s| Outgoing::new(s, None))
    }

    /// Lets the filters see and change a response head before it is written.
    pub fn prepare_head(&mut self, head: &mut FramedHead) {
        if let Some(connection) = &self.connection {
            if !connection.prepare_head(head) {
                self.suppressed = true;
                head.keep_alive = false;
            }
        }
    }
}

impl Write for Outgoing {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.suppressed {
            return Ok(data.len());
        }
        let Some(connection) = &self.connection else {
            return self.stream.write(data);
        };
        if !connection.filters.wanted(SF_NOTIFY_SEND_RAW_DATA) {
            return self.stream.write(data);
        }
        let (flow, out) = connection.raw(SF_NOTIFY_SEND_RAW_DATA, data.to_vec());
        match flow {
            Flow::Continue | Flow::ReadNext => {
                self.stream.write_all(&out)?;
                Ok(data.len())
            }
            Flow::Finished { .. } => {
                self.stream.write_all(&out)?;
                self.suppressed = true;
                Ok(data.len())
            }
            Flow::Error | Flow::Denied => Err(io::Error::other("a filter failed on SEND_RAW_DATA")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
