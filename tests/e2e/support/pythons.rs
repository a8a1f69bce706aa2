//! The tested CPython versions besides the default one, which the whole suite runs on: each
//! one's embeddable runtime and `make sites`' packages for it. The versions are `make test`'s
//! PYTHONS (ISAPI_FREEZE_TEST_PYTHONS), else every tested one in stub/format/pythons.txt.

use std::path::PathBuf;

use isapi_freeze_format::pythons::{self, Python, Status};

use super::prerequisites::{default_python, site};
use super::repo;

/// The tested versions to run on, the default excepted.
pub fn other_pythons() -> Vec<Python> {
    let chosen: Vec<String> = match std::env::var("ISAPI_FREEZE_TEST_PYTHONS") {
        Ok(list) if !list.trim().is_empty() => list.split_whitespace().map(String::from).collect(),
        _ => pythons::supported()
            .iter()
            .filter(|p| p.status != Status::Untested)
            .map(Python::version)
            .collect(),
    };
    pythons::supported()
        .into_iter()
        .filter(|p| chosen.contains(&p.version()) && *p != default_python())
        .collect()
}

/// The default version, then the others.
pub fn every_python() -> Vec<Python> {
    std::iter::once(default_python()).chain(other_pythons()).collect()
}

/// The embeddable runtime `make python` fetched for `python`.
pub fn runtime_of(python: &Python) -> PathBuf {
    let dir = repo().join("target/python").join(python.abi_tag());
    assert!(
        dir.join(python.dll_name()).is_file(),
        "no Windows CPython {} in {}: run `make python` (or `make test`)",
        python.version(),
        dir.display()
    );
    dir
}

/// `make sites`' packages of `name` for `python`.
pub fn site_of(python: &Python, name: &str) -> PathBuf {
    if *python == default_python() {
        return site(name);
    }
    let dir = repo().join("target/site").join(python.abi_tag()).join(name);
    assert!(dir.join(".done").is_file(), "no {}: run `make sites`", dir.display());
    dir
}
