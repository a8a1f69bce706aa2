//! The one integration-test binary. Each module proves one area end to end; what they share
//! (Wine, the stubs, the Windows CPython, isapi-host, HTTP, freezing) is in `support`, which
//! also says once, before anything runs under Wine, what `make test` has yet to prepare.

mod apps;
mod asgi;
mod diagnostics;
mod ecb;
mod environment;
mod filters;
mod frameworks;
mod freeze;
mod host;
mod iis;
mod install;
mod isapi_wsgi;
mod launcher;
mod least_privilege;
mod pywin32;
mod rebuild;
mod reliability;
mod serve;
mod shipped;
mod signing;
mod std_handles;
mod support;
mod threads;
mod two_apps;
mod two_workers;
mod versions;
mod wheels;
mod wsgi;
