//! What the freezer embedded in a loader DLL or a launcher exe, read back at run time from
//! the module's own resources in memory (Windows only, `resources`), and where those bytes
//! are in the module's file (`pe`, plain header arithmetic, tested on any host). The formats
//! themselves are `isapi-freeze-format`'s.

pub mod pe;
#[cfg(windows)]
mod resources;

#[cfg(windows)]
pub use resources::{archive, archive_of, config, Embedded};
