//! The one integration-test binary. Each module proves one area end to end; everything
//! that needs Wine, the Windows stubs or the Windows CPython goes through `harness`.

mod apps;
mod diagnostics;
mod ecb;
mod filters;
mod freeze;
mod harness;
mod host;
mod http;
mod install;
mod reliability;
mod serve;
mod soak;
mod threads;
mod wsgi;
