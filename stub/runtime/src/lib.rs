//! `isapi_freeze_runtime.dll`: the embedded-Python runtime that the loader (`_SCRIPT.dll`)
//! and the installer (`SCRIPT.exe`) load from their own folder. It verifies the app archive
//! embedded in the module it serves, starts CPython isolated, imports from the archive in
//! memory, and gives scripts pywin32's ISAPI objects.

#![cfg(windows)]

mod archive;
mod ecb;
mod ecb_io;
mod ecb_requests;
mod exports;
mod filter;
mod interpreter;
mod native;
mod served;
mod version;
mod work_queue;
mod wsgi;
