//! What the end-to-end tests share, one file per concern: the prerequisites `make test`
//! prepares (said once when missing), Windows programs under Wine, isapi-host, the HTTP
//! client, the load generator, and freezing. Test modules import from here, never from
//! each other; benches/soak.rs uses it too.

pub mod archive;
pub mod assertions;
pub mod freeze;
pub mod host;
pub mod http;
pub mod iis_schema;
pub mod load;
pub mod prerequisites;
pub mod pythons;
pub mod pywin32;
pub mod wine;
pub mod worker;

use std::path::PathBuf;

pub use archive::{archive_members, manifest};
pub use assertions::{assert_contains, assert_in_order};
pub use freeze::{isapi_freeze, shared, shared_with, Freeze, Frozen};
pub use host::Host;
pub use http::{get, post, post_as, request, Connection, Response};
pub use prerequisites::{default_python, py_dll, py_zip, site, stubs, test_programs, windows_python};
pub use pythons::{every_python, other_pythons, runtime_of, site_of};
pub use wine::{run_windows, win_path, windows_command, Finished, Running};

/// The generic page isapi.wsgi answers a failed request with (details only in the log).
pub const ERROR_PAGE: &str = "<html><head><title>500 Internal Server Error</title></head><body>\
<h1>Internal Server Error</h1><p>The application failed to handle this request. \
The details are in the application's log.</p></body></html>";

/// The checkout the tests run in.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under tests/fixtures.
pub fn fixture(path: &str) -> PathBuf {
    repo().join("tests/fixtures").join(path)
}

/// A fresh temporary folder for one test, under target/ (Wine sees it as Z:\...).
pub fn temp_dir() -> tempfile::TempDir {
    let base = repo().join("target/e2e-tmp");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}
