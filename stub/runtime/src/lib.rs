//! `isapi_freeze_runtime.dll`: the embedded-Python runtime that the loader (`_SCRIPT.dll`)
//! and the launcher (`SCRIPT.exe`) load from their own folder. It verifies the app archive
//! embedded in the module it serves, starts CPython isolated, imports from the archive in
//! memory, and gives scripts pywin32's ISAPI objects.
//!
//! The rules on bytes and text (server variables, the WSGI environ and response head, C
//! strings, archive members' contents) need neither Windows nor Python: they build
//! everywhere and are unit-tested on the build machine. The rest is the Windows and pyo3
//! side that applies them.

// The pure modules are compiled (and unit-tested) everywhere; only Windows uses them all.
#![cfg_attr(not(windows), allow(dead_code))]

mod asgi_http;
mod c_strings;
mod cgi;
mod member;
mod response_head;
mod server_variables;

#[cfg(windows)]
mod apps;
#[cfg(windows)]
mod archive;
#[cfg(windows)]
mod asgi;
#[cfg(windows)]
mod crt_stdio;
#[cfg(windows)]
mod ecb;
#[cfg(windows)]
mod ecb_io;
#[cfg(windows)]
mod ecb_requests;
#[cfg(windows)]
mod exports;
#[cfg(windows)]
mod filter;
#[cfg(windows)]
mod interpreter;
#[cfg(windows)]
mod native;
#[cfg(windows)]
mod other_pythons;
#[cfg(windows)]
mod pywin32;
#[cfg(windows)]
mod served;
#[cfg(windows)]
mod sharing;
#[cfg(windows)]
mod version;
#[cfg(windows)]
mod work_queue;
#[cfg(windows)]
mod wsgi;
