//! The plan: every file of the output directory and where its bytes come from, computed
//! before anything is written. The loader and installer are built here in memory (archive
//! plus config embedded as resources); `--dry-run` prints the plan and `execute.rs` writes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use isapi_freeze_format::{self as format, StubConfig};
use serde::Serialize;

use crate::archive::{archive_bytes, archive_bytes_copying, ArchiveEntry, ZipCopy};
use crate::pe::{self, ResName, Resource};

/// What a file of the output is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `_SCRIPT.dll`: the ISAPI DLL that IIS loads, with the app archive inside.
    Loader,
    /// `SCRIPT.exe`: runs the script as `__main__`, with the same archive inside.
    Installer,
    /// The embedded-Python runtime both of them load.
    Runtime,
    PythonDll,
    Stdlib,
    /// An extension module or a DLL that one loads.
    Binary,
    /// A compiled module shipped as a file (`--files`).
    Module,
    /// A data file (`--data`, or of a `--files` package).
    Data,
}

#[derive(Clone, Debug)]
pub enum Contents {
    Copy(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct PlannedFile {
    /// Path inside the output directory, `/`-separated.
    pub path: String,
    pub role: Role,
    pub contents: Contents,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub dist_dir: PathBuf,
    pub files: Vec<PlannedFile>,
    /// SHA-256 of the app archive, as stored in the loader.
    pub archive_sha256: [u8; 32],
}

/// How the standard library reaches the output.
pub enum StdlibSource {
    /// The embeddable distribution's python3XY.zip, copied as is.
    Zip(PathBuf),
    /// Compiled from an installation's Lib\ into a new python3XY.zip.
    Entries(Vec<ArchiveEntry>),
}

pub struct PlanInputs<'a> {
    pub dist_dir: &'a Path,
    pub script_module: &'a str,
    pub app_entries: Vec<ArchiveEntry>,
    /// Members of other zips (the embeddable standard library) for the app archive.
    pub app_copies: Vec<ZipCopy<fs_err::File>>,
    pub loader_template: &'a [u8],
    pub installer_template: &'a [u8],
    pub runtime_stub: PathBuf,
    pub python_dll: PathBuf,
    /// `python3XY`.
    pub python_stem: String,
    pub stdlib: StdlibSource,
    pub binaries: Vec<(String, PathBuf)>,
    /// Other files of the output: `--files` packages and `--data`.
    pub extra: Vec<PlannedFile>,
}

pub fn build_plan(mut inputs: PlanInputs) -> Result<Plan> {
    let (archive, archive_sha256) =
        archive_bytes_copying(&inputs.app_entries, &mut inputs.app_copies).context("writing the app archive")?;
    let config = StubConfig {
        python_dll: format!("{}.dll", inputs.python_stem),
        script_module: inputs.script_module.to_string(),
        archive_sha256,
    };
    let resources = [
        rcdata(format::ARCHIVE_RESOURCE_ID, archive),
        rcdata(format::CONFIG_RESOURCE_ID, config.encode()),
    ];
    let loader =
        pe::add_resources(inputs.loader_template, &resources).context("embedding the archive in the loader stub")?;
    let installer = pe::add_resources(inputs.installer_template, &resources)
        .context("embedding the archive in the installer stub")?;

    let mut files = vec![
        PlannedFile {
            path: format!("_{}.dll", inputs.script_module),
            role: Role::Loader,
            contents: Contents::Bytes(loader),
        },
        PlannedFile {
            path: format!("{}.exe", inputs.script_module),
            role: Role::Installer,
            contents: Contents::Bytes(installer),
        },
        PlannedFile {
            path: format::RUNTIME_DLL.into(),
            role: Role::Runtime,
            contents: Contents::Copy(inputs.runtime_stub),
        },
        PlannedFile {
            path: config.python_dll.clone(),
            role: Role::PythonDll,
            contents: Contents::Copy(inputs.python_dll),
        },
    ];
    let stdlib_name = format!("{}.zip", inputs.python_stem);
    files.push(PlannedFile {
        path: stdlib_name,
        role: Role::Stdlib,
        contents: match inputs.stdlib {
            StdlibSource::Zip(path) => Contents::Copy(path),
            StdlibSource::Entries(entries) => {
                Contents::Bytes(archive_bytes(&entries).context("writing the standard library zip")?.0)
            }
        },
    });
    for (name, path) in inputs.binaries {
        files.push(PlannedFile {
            path: name,
            role: Role::Binary,
            contents: Contents::Copy(path),
        });
    }
    files.extend(inputs.extra);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = files.windows(2).find(|w| w[0].path.eq_ignore_ascii_case(&w[1].path)) {
        anyhow::bail!(
            "two files would be written to {} in the output ({} and {}); change a --data destination",
            pair[0].path,
            describe_contents(&pair[0].contents),
            describe_contents(&pair[1].contents)
        );
    }
    Ok(Plan {
        dist_dir: inputs.dist_dir.to_path_buf(),
        files,
        archive_sha256,
    })
}

fn describe_contents(contents: &Contents) -> String {
    match contents {
        Contents::Copy(path) => path.display().to_string(),
        Contents::Bytes(_) => "a built file".to_string(),
    }
}

fn rcdata(id: u16, data: Vec<u8>) -> Resource {
    Resource {
        kind: ResName::Id(format::RT_RCDATA),
        name: ResName::Id(id),
        language: format::RESOURCE_LANGUAGE,
        code_page: 0,
        data,
    }
}

impl Plan {
    /// The plan as `--dry-run` prints it: one line a file.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "would write {} ({} files):\n",
            self.dist_dir.display(),
            self.files.len() + 1
        );
        for file in &self.files {
            let origin = match &file.contents {
                Contents::Copy(path) => format!("copy of {}", path.display()),
                Contents::Bytes(bytes) => format!("{} bytes, built", bytes.len()),
            };
            let role = serde_json::to_value(file.role)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            out.push_str(&format!("  {:<28} {:<11} {origin}\n", file.path, role));
        }
        out.push_str(&format!(
            "  {:<28} {:<11} SHA-256 of every file above\n",
            "manifest.json", "manifest"
        ));
        out.push_str(&format!(
            "app archive SHA-256: {}\n",
            format::to_hex(&self.archive_sha256)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pe::tests::tiny_pe;

    fn inputs(dist: &Path) -> PlanInputs<'_> {
        PlanInputs {
            dist_dir: dist,
            script_module: "hello",
            app_entries: vec![ArchiveEntry {
                name: "hello.pyc".into(),
                data: b"pyc".to_vec(),
            }],
            app_copies: vec![],
            loader_template: Box::leak(tiny_pe().into_boxed_slice()),
            installer_template: Box::leak(tiny_pe().into_boxed_slice()),
            runtime_stub: "stubs/isapi_freeze_runtime.dll".into(),
            python_dll: "py/python311.dll".into(),
            python_stem: "python311".into(),
            stdlib: StdlibSource::Zip("py/python311.zip".into()),
            binaries: vec![("_socket.pyd".into(), "py/_socket.pyd".into())],
            extra: vec![],
        }
    }

    #[test]
    fn plan_names_every_output_file() {
        let plan = build_plan(inputs(Path::new("dist"))).unwrap();
        let names: Vec<(&str, Role)> = plan.files.iter().map(|f| (f.path.as_str(), f.role)).collect();
        assert_eq!(
            names,
            [
                ("_hello.dll", Role::Loader),
                ("_socket.pyd", Role::Binary),
                ("hello.exe", Role::Installer),
                ("isapi_freeze_runtime.dll", Role::Runtime),
                ("python311.dll", Role::PythonDll),
                ("python311.zip", Role::Stdlib),
            ]
        );
    }

    #[test]
    fn loader_and_installer_carry_the_same_archive_and_its_digest() {
        let plan = build_plan(inputs(Path::new("dist"))).unwrap();
        let bytes = |name: &str| match &plan.files.iter().find(|f| f.path == name).unwrap().contents {
            Contents::Bytes(b) => b.clone(),
            Contents::Copy(_) => panic!("{name} should be built"),
        };
        let kind = ResName::Id(format::RT_RCDATA);
        for file in ["_hello.dll", "hello.exe"] {
            let image = bytes(file);
            let archive = pe::find_resource(&image, &kind, &ResName::Id(format::ARCHIVE_RESOURCE_ID), 0)
                .unwrap()
                .unwrap();
            let config = pe::find_resource(&image, &kind, &ResName::Id(format::CONFIG_RESOURCE_ID), 0)
                .unwrap()
                .unwrap();
            let config = StubConfig::decode(&config).unwrap();
            let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&archive).into();
            assert_eq!(config.archive_sha256, digest);
            assert_eq!(config.archive_sha256, plan.archive_sha256);
            assert_eq!(config.script_module, "hello");
            assert_eq!(config.python_dll, "python311.dll");
        }
    }

    #[test]
    fn dry_run_description_lists_files_and_digest() {
        let plan = build_plan(inputs(Path::new("dist"))).unwrap();
        let text = plan.describe();
        assert!(text.starts_with("would write dist (7 files):\n"), "{text}");
        assert!(
            text.contains("\n  python311.dll                python-dll  copy of py/python311.dll\n"),
            "{text}"
        );
        assert!(text.contains("copy of py/python311.zip"), "{text}");
        assert!(
            text.contains(&format!(
                "app archive SHA-256: {}",
                format::to_hex(&plan.archive_sha256)
            )),
            "{text}"
        );
    }
}
