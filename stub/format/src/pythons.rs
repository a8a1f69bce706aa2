//! The supported CPython versions, read from `pythons.txt` (the one list: the Makefile reads
//! the same file). The runtime stub uses version-specific APIs (PyConfig), so the tool
//! carries one runtime per version and picks it by the target's DLL version.

const LIST: &str = include_str!("../pythons.txt");

/// How far a version is supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Tested, and the version the whole test suite runs on.
    Default,
    /// Tested: the end-to-end core runs on it.
    Tested,
    /// Built and type-checked; no embeddable runtime in the test set yet.
    Untested,
}

/// One supported CPython minor version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Python {
    pub major: u32,
    pub minor: u32,
    pub status: Status,
    /// The PyPI requirement whose sdist holds the embeddable runtime the tests use.
    pub embeddable: Option<&'static str>,
}

impl Python {
    /// `3.12`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
    /// `python312`: the stem of the DLL, the stdlib zip and the `._pth` file.
    pub fn stem(&self) -> String {
        format!("python{}{}", self.major, self.minor)
    }
    /// `python312.dll`.
    pub fn dll_name(&self) -> String {
        format!("{}.dll", self.stem())
    }
    /// `cp312`: the ABI tag of extension modules and of the runtime stub's folder.
    pub fn abi_tag(&self) -> String {
        format!("cp{}{}", self.major, self.minor)
    }
    /// Where the runtime stub built for this version is, inside the stubs folder:
    /// `cp312/isapi_freeze_runtime.dll`.
    pub fn runtime_stub(&self) -> String {
        format!("{}/{}", self.abi_tag(), crate::RUNTIME_DLL)
    }
    /// Whether the runtime can import `encodings` from the app archive, so that no
    /// python3XY.zip is needed: CPython 3.11-3.13 start in two phases
    /// (`PyConfig._init_main`, `_Py_InitializeMain`), and the boot module's importer is in
    /// place between them, before Python imports `encodings`. 3.14 removed
    /// `_Py_InitializeMain`: its runtime starts in one step, importing `encodings` from
    /// python314.zip with zipimport.
    pub fn encodings_in_archive(&self) -> bool {
        self.major == 3 && self.minor <= 13
    }
}

/// Every supported version, oldest first.
pub fn supported() -> Vec<Python> {
    LIST.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&'static str> = line.split_whitespace().collect();
            let (major, minor) = fields[0]
                .split_once('.')
                .expect("pythons.txt: a version is MAJOR.MINOR");
            Python {
                major: major.parse().expect("pythons.txt: a number"),
                minor: minor.parse().expect("pythons.txt: a number"),
                status: match fields[1] {
                    "default" => Status::Default,
                    "tested" => Status::Tested,
                    "untested" => Status::Untested,
                    other => panic!("pythons.txt: unknown status {other}"),
                },
                embeddable: fields.get(2).copied().filter(|r| *r != "-"),
            }
        })
        .collect()
}

/// The supported version `major.minor`, if it is one.
pub fn find(major: u32, minor: u32) -> Option<Python> {
    supported().into_iter().find(|p| p.major == major && p.minor == minor)
}

/// The version the whole test suite runs on.
pub fn default() -> Python {
    supported()
        .into_iter()
        .find(|p| p.status == Status::Default)
        .expect("pythons.txt names a default version")
}

/// `3.11, 3.12, 3.13 and 3.14`, for messages.
pub fn listed() -> String {
    let versions: Vec<String> = supported().iter().map(Python::version).collect();
    match versions.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => versions.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_ordered_has_one_default_and_tested_versions_have_a_runtime() {
        let all = supported();
        assert!(all
            .windows(2)
            .all(|w| (w[0].major, w[0].minor) < (w[1].major, w[1].minor)));
        assert_eq!(all.iter().filter(|p| p.status == Status::Default).count(), 1);
        for p in &all {
            assert_eq!(p.status != Status::Untested, p.embeddable.is_some(), "{p:?}");
        }
        let first = all[0];
        assert_eq!(first.dll_name(), format!("python{}{}.dll", first.major, first.minor));
        assert_eq!(
            first.runtime_stub(),
            format!("cp{}{}/isapi_freeze_runtime.dll", first.major, first.minor)
        );
        assert_eq!(find(first.major, first.minor), Some(first));
        assert_eq!(find(3, 9), None);
        assert!(listed().contains(" and "), "{}", listed());
    }
}
