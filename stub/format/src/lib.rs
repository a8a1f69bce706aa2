//! The contract between the freezer (which writes an output folder) and the Windows programs
//! in it (which read it back): the resource ids and config record embedded in the loader and
//! the launcher, the runtime's export names and signatures, the output's file names, the
//! manifest, and the supported CPython versions. Only the contract: logging and resource
//! lookup live in their own crates. Dependency-free (serde only for the manifest, behind a
//! feature) so that both sides build it as is.

pub mod config;
pub mod exports;
#[cfg(feature = "manifest")]
pub mod manifest;
pub mod names;
pub mod pythons;

pub use config::{to_hex, ConfigError, StubConfig};
pub use names::*;

/// `RT_RCDATA` from winuser.h: raw application data.
pub const RT_RCDATA: u16 = 10;
/// Resource id (under `RT_RCDATA`) of the app archive, a zip of compiled modules.
pub const ARCHIVE_RESOURCE_ID: u16 = 1;
/// Resource id (under `RT_RCDATA`) of the [`StubConfig`] record.
pub const CONFIG_RESOURCE_ID: u16 = 2;
/// Language of both resources: `LANG_NEUTRAL`, which `FindResourceW` always falls back to.
pub const RESOURCE_LANGUAGE: u16 = 0;
