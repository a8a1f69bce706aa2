//! The load both `make test` (a bounded run, tests/e2e/reliability.rs) and `make bench`
//! (benches/soak.rs, 100,000 requests) put on isapi-host: many keep-alive clients asking
//! tests/fixtures/scripts/reliability.py for answers whose every byte is checked, large
//! bodies streamed to it, and the serving process's figures (resident memory, threads from
//! /proc; Windows handles from isapi-host's `stats` line) to see that they level off.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::host::Host;
use super::http::{Connection, Response};

/// Every this many requests a client asks to close and opens a new connection, so that the
/// load also makes and ends connections (threads, sockets, handles).
pub const REQUESTS_PER_CONNECTION: usize = 50;

/// What the serving process holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// VmRSS of the Wine process that is isapi-host, in KiB.
    pub rss_kib: u64,
    /// VmHWM: the most it was resident since it started or [`reset_peak`], in KiB.
    pub peak_kib: u64,
    /// Its threads (Wine runs each Windows thread as a Linux thread).
    pub threads: u64,
    /// Windows handles, as GetProcessHandleCount counts them.
    pub handles: u64,
    /// Control blocks isapi-host made so far.
    pub requests: u64,
    /// Connections open at that moment.
    pub connections: u64,
}

/// The figures of `host` now: /proc for memory and threads, the `stats` line for handles.
pub fn figures(host: &mut Host) -> Figures {
    let stdin = host.running.child.stdin.as_mut().expect("isapi-host's stdin is a pipe");
    stdin.write_all(b"stats\n").unwrap();
    stdin.flush().unwrap();
    let line = host
        .running
        .wait_for_stdout("isapi-host: stats ", Duration::from_secs(30));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.running.child.id()))
        .expect("the serving process is alive");
    let proc_field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc status:\n{status}"))
    };
    Figures {
        rss_kib: proc_field("VmRSS:"),
        peak_kib: proc_field("VmHWM:"),
        threads: proc_field("Threads:"),
        handles: field("handles"),
        requests: field("requests"),
        connections: field("connections"),
    }
}

/// The figures once every connection of a finished load has closed (each client's last
/// request asked to close; the server ends those connection threads right after).
pub fn settled_figures(host: &mut Host) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = figures(host);
        if now.connections == 0 || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Restarts the peak (VmHWM) of `host` at its resident memory now (Linux's clear_refs 5),
/// so that the next figures show the most a following request needed even if it gave the
/// memory back before it ended.
pub fn reset_peak(host: &Host) {
    std::fs::write(format!("/proc/{}/clear_refs", host.running.child.id()), "5").expect("clear_refs can be written");
}

/// The exact body /echo answers for `query`.
pub fn echo_body(query: &str) -> Vec<u8> {
    let line = format!("echo {query}\n");
    line.repeat(1024 / line.len() + 1).into_bytes()
}

/// What one load run gave.
#[derive(Debug, Default)]
pub struct Load {
    /// Responses that were not exactly the expected 200 with the expected body.
    pub wrong: usize,
    /// Requests that got no response (connection error, timeout).
    pub missing: usize,
    pub elapsed: Duration,
}

/// Sends `total` /echo requests over `clients` concurrent keep-alive connections, with
/// query strings `tag-N` (N from 0), and checks every response byte for byte.
pub fn load(address: &str, tag: &str, total: usize, clients: usize) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let missing = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (next, wrong, missing) = (next.clone(), wrong.clone(), missing.clone());
            let (address, tag) = (address.to_string(), tag.to_string());
            std::thread::spawn(move || {
                let mut connection: Option<Connection> = None;
                let mut on_this = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= total {
                        break;
                    }
                    on_this += 1;
                    let last = on_this == REQUESTS_PER_CONNECTION;
                    let query = format!("{tag}-{n}");
                    let raw = format!(
                        "GET /echo?{query} HTTP/1.1\r\nHost: x\r\n{}\r\n",
                        if last { "Connection: close\r\n" } else { "" }
                    );
                    let address = address.clone();
                    let mut held = connection.take();
                    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut c = held.take().unwrap_or_else(|| Connection::open(&address));
                        c.send(raw.as_bytes());
                        let r = c.read_response();
                        (r, c)
                    }));
                    match answer {
                        Ok((response, c)) => {
                            if response.status != 200 || response.body != echo_body(&query) {
                                wrong.fetch_add(1, Ordering::SeqCst);
                            } else if !last {
                                connection = Some(c);
                            }
                        }
                        Err(_) => {
                            missing.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if last || connection.is_none() {
                        on_this = 0;
                        connection = None;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a load client thread");
    }
    Load {
        wrong: wrong.load(Ordering::SeqCst),
        missing: missing.load(Ordering::SeqCst),
        elapsed: started.elapsed(),
    }
}

/// The bytes of an N-byte body: a pattern that makes misplaced pieces show in the hash.
fn body_piece(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i % 251) as u8).collect()
}

/// POSTs `size` bytes to /hash, streamed from memory piece by piece: (the answer, the
/// SHA-256 of what was sent, in hex).
pub fn post_streamed(address: &str, size: usize) -> (Response, String) {
    let mut c = Connection::open(address);
    c.send(format!("POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n").as_bytes());
    let mut digest = Sha256::new();
    let piece = 1 << 20;
    let mut sent = 0;
    while sent < size {
        let chunk = body_piece(sent, piece.min(size - sent));
        digest.update(&chunk);
        c.send(&chunk);
        sent += chunk.len();
    }
    let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    (c.read_response(), hex)
}
