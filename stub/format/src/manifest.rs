//! manifest.json: every file of an output folder with its role, size and SHA-256, written by
//! the freezer last, read by `isapi-freeze verify`, by `SCRIPT.exe install` (resources/
//! isapi/install.py reads `files[].path` and `files[].sha256`) and by the tests. Version 1.

use serde::{Deserialize, Serialize};

/// The manifest's format version, in its `format` field.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// In path order; manifest.json itself and `logs/` are not listed.
    pub files: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path inside the output folder, `/`-separated.
    pub path: String,
    pub role: Role,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What a file of the output folder is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `_NAME.dll`: the ISAPI DLL that IIS loads, with the app archive inside.
    Loader,
    /// `NAME.exe`: runs the script as `__main__`, with the same archive inside.
    Launcher,
    /// The embedded-Python runtime both of them load.
    Runtime,
    /// `python3XY.dll`.
    PythonDll,
    /// `python3XY.zip`.
    Stdlib,
    /// An extension module or a DLL that one loads.
    Binary,
    /// A compiled module shipped as a file (`--files`).
    Module,
    /// A data file (`--data`, or of a package).
    Data,
}

impl Role {
    /// The name manifest.json and `--dry-run` use.
    pub fn name(self) -> &'static str {
        match self {
            Role::Loader => "loader",
            Role::Launcher => "launcher",
            Role::Runtime => "runtime",
            Role::PythonDll => "python-dll",
            Role::Stdlib => "stdlib",
            Role::Binary => "binary",
            Role::Module => "module",
            Role::Data => "data",
        }
    }
}

/// Why a manifest could not be read.
#[derive(Debug)]
pub struct ManifestError(pub String);

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// The pretty-printed JSON, with a final newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        json.push('\n');
        json
    }

    pub fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| ManifestError(format!("not a manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ManifestError(format!(
                "manifest format {} is not {MANIFEST_FORMAT}: it was written by another version of isapi-freeze",
                manifest.format
            )));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_names_roles_in_kebab_case() {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            files: vec![ManifestEntry {
                path: "_hello.dll".into(),
                role: Role::PythonDll,
                size: 3,
                sha256: "ab".repeat(32),
            }],
        };
        let json = manifest.to_json();
        assert!(json.contains("\"role\": \"python-dll\""), "{json}");
        assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
        assert_eq!(Role::PythonDll.name(), "python-dll");
        let err = Manifest::from_json("{\"format\": 2, \"files\": []}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "manifest format 2 is not 1: it was written by another version of isapi-freeze"
        );
    }
}
