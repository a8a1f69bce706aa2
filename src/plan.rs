//! The plan: every file of the output folder and every member of the app archive and of the
//! standard-library zip, with where its bytes come from. Cheap (nothing is read or compiled
//! to make it), so `--dry-run` prints it; `assemble.rs` turns it into bytes and `execute.rs`
//! writes them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use isapi_freeze_format::{self as format, manifest::Role};

use crate::placement::{Place, Placement, Treatment};

/// How a file of the output folder is made.
#[derive(Clone, Debug)]
pub enum Contents {
    /// Compiled or copied, as placed.
    Placed(Treatment),
    /// A stub (the loader template) with the app archive and the config record embedded as
    /// resources.
    StubWithArchive(PathBuf),
    /// A stub (the launcher template) with the config record only, naming the loader as the
    /// file that holds the archive: the output carries the archive once.
    StubWithConfig(PathBuf),
    /// A zip of the [`Place::StdlibZip`] placements.
    StdlibZip,
}

#[derive(Clone, Debug)]
pub struct PlannedFile {
    /// Path inside the output folder, `/`-separated.
    pub path: String,
    pub role: Role,
    pub contents: Contents,
}

/// The output folder to write.
#[derive(Clone, Debug)]
pub struct Plan {
    pub dist_dir: PathBuf,
    /// The script's module name, recorded in the config record.
    pub script_module: String,
    /// python3XY.dll's file name, recorded in the config record.
    pub python_dll: String,
    /// The factories the script defines, for the config record.
    pub factories: Option<Vec<String>>,
    /// What `SCRIPT.exe install` does for a script without install code, for the record.
    pub install: crate::config::InstallDefaults,
    /// The app's own top-level modules, for the record.
    pub app_modules: Vec<String>,
    /// In path order.
    pub files: Vec<PlannedFile>,
    /// Members of the app archive, in path order.
    pub archive: Vec<Placement>,
    /// Members of python3XY.zip when the plan builds one, in path order.
    pub stdlib_zip: Vec<Placement>,
}

/// The fixed parts of an output: the stubs and the runtime's own files.
pub struct Frame<'a> {
    pub dist_dir: &'a Path,
    pub script_module: &'a str,
    pub loader_template: PathBuf,
    pub launcher_template: PathBuf,
    pub runtime_stub: PathBuf,
    pub python_dll: PathBuf,
    /// `python3XY.zip`: built from the StdlibZip placements, if any, unless an OutputFolder
    /// placement already copies one (`--full-stdlib` of an embeddable runtime).
    pub stdlib_zip_name: String,
    pub factories: Option<Vec<String>>,
    pub install: crate::config::InstallDefaults,
    pub app_modules: Vec<String>,
}

pub fn build_plan(frame: Frame, placements: Vec<Placement>) -> Result<Plan> {
    let python_dll = crate::config::file_name(&frame.python_dll);
    let mut files = vec![
        PlannedFile {
            path: format::loader_file_name(frame.script_module),
            role: Role::Loader,
            contents: Contents::StubWithArchive(frame.loader_template),
        },
        PlannedFile {
            path: format::launcher_file_name(frame.script_module),
            role: Role::Launcher,
            contents: Contents::StubWithConfig(frame.launcher_template),
        },
        copied(format::RUNTIME_DLL, Role::Runtime, frame.runtime_stub),
        copied(&python_dll, Role::PythonDll, frame.python_dll),
    ];
    let (mut archive, mut stdlib_zip) = (Vec::new(), Vec::new());
    for placement in placements {
        match placement.place {
            Place::AppArchive => archive.push(placement),
            Place::StdlibZip => stdlib_zip.push(placement),
            Place::OutputFolder => files.push(PlannedFile {
                path: placement.path,
                role: placement.role,
                contents: Contents::Placed(placement.treatment),
            }),
        }
    }
    // Nothing for it when the archive has `encodings` (the runtime then needs no zip) and the
    // standard library is not shipped whole.
    if !stdlib_zip.is_empty() && !files.iter().any(|f| f.path == frame.stdlib_zip_name) {
        files.push(PlannedFile {
            path: frame.stdlib_zip_name,
            role: Role::Stdlib,
            contents: Contents::StdlibZip,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // The same file placed twice (an extension module the app imports, and the runtime's
    // whole set with --full-stdlib) is one file.
    files.dedup_by(|a, b| a.path == b.path && same_copy(&a.contents, &b.contents));
    if let Some(pair) = files.windows(2).find(|w| w[0].path.eq_ignore_ascii_case(&w[1].path)) {
        bail!(
            "two files would be written to {} in the output ({} and {}); change a --data destination",
            pair[0].path,
            describe(&pair[0].contents),
            describe(&pair[1].contents)
        );
    }
    for members in [&mut archive, &mut stdlib_zip] {
        members.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = members.windows(2).find(|w| w[0].path == w[1].path) {
            bail!(
                "two files claim {} in the archive ({} and {}); remove or --exclude one",
                pair[0].path,
                origin(&pair[0].treatment),
                origin(&pair[1].treatment)
            );
        }
    }
    Ok(Plan {
        dist_dir: frame.dist_dir.to_path_buf(),
        script_module: frame.script_module.to_string(),
        python_dll,
        factories: frame.factories,
        install: frame.install,
        app_modules: frame.app_modules,
        files,
        archive,
        stdlib_zip,
    })
}

fn same_copy(a: &Contents, b: &Contents) -> bool {
    match (a, b) {
        (Contents::Placed(Treatment::Copy(a)), Contents::Placed(Treatment::Copy(b))) => a == b,
        _ => false,
    }
}

fn copied(path: &str, role: Role, file: PathBuf) -> PlannedFile {
    PlannedFile {
        path: path.to_string(),
        role,
        contents: Contents::Placed(Treatment::Copy(crate::placement::FileSource::Path(file))),
    }
}

/// Where a placed file's bytes come from, in words.
fn origin(treatment: &Treatment) -> String {
    match treatment {
        Treatment::Compile(source) => match &source.text {
            Some(_) => format!("compiled from isapi-freeze's {}", source.filename),
            None => format!("compiled from {}", source.path.display()),
        },
        Treatment::Copy(file) => format!("copy of {}", file.describe()),
        Treatment::CopyCompressed { zip, member } => format!("copy of {}/{member}", zip.display()),
    }
}

fn describe(contents: &Contents) -> String {
    match contents {
        Contents::Placed(treatment) => origin(treatment),
        Contents::StubWithArchive(template) => format!("{} with the app archive", template.display()),
        Contents::StubWithConfig(template) => format!("{} reading the loader's archive", template.display()),
        Contents::StdlibZip => "a zip of the standard library listed below".to_string(),
    }
}

impl Plan {
    /// The plan as `--dry-run` prints it: one line a file of the output, then one a member of
    /// each zip the freeze builds.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "would write {} ({} files):\n",
            self.dist_dir.display(),
            self.files.len() + 1
        );
        for file in &self.files {
            out.push_str(&format!(
                "  {:<28} {:<11} {}\n",
                file.path,
                file.role.name(),
                describe(&file.contents)
            ));
        }
        out.push_str(&format!(
            "  {:<28} {:<11} SHA-256 of every file above\n",
            format::MANIFEST,
            "manifest"
        ));
        let zips = [
            ("the app archive (in the loader)", &self.archive),
            ("the standard library zip", &self.stdlib_zip),
        ];
        for (what, members) in zips {
            if members.is_empty() {
                continue;
            }
            let count = match members.len() {
                1 => "1 member".to_string(),
                n => format!("{n} members"),
            };
            out.push_str(&format!("{what}, {count}:\n"));
            for member in members {
                out.push_str(&format!("  {:<40} {}\n", member.path, origin(&member.treatment)));
            }
        }
        out
    }

    /// Every source the plan compiles, wherever it goes.
    pub fn sources(&self) -> impl Iterator<Item = &crate::compile::SourceFile> {
        let placed = self.files.iter().filter_map(|f| match &f.contents {
            Contents::Placed(t) => Some(t),
            _ => None,
        });
        let members = self.archive.iter().chain(&self.stdlib_zip).map(|p| &p.treatment);
        placed.chain(members).filter_map(|t| match t {
            Treatment::Compile(source) => Some(source),
            _ => None,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::compile::SourceFile;
    use crate::placement::FileSource;

    pub fn frame(dist: &Path) -> Frame<'_> {
        Frame {
            dist_dir: dist,
            script_module: "hello",
            loader_template: "stubs/isapi_freeze_loader.dll".into(),
            launcher_template: "stubs/isapi-freeze-launcher.exe".into(),
            runtime_stub: "stubs/cp3/isapi_freeze_runtime.dll".into(),
            python_dll: "py/python3.dll".into(),
            stdlib_zip_name: "python3.zip".into(),
            factories: Some(vec!["__ExtensionFactory__".into()]),
            install: crate::config::InstallDefaults {
                site: "Default Web Site".into(),
                vpath: "/hello".into(),
            },
            app_modules: vec!["hello".into()],
        }
    }

    pub fn placements() -> Vec<Placement> {
        vec![
            Placement {
                path: "hello.pyc".into(),
                place: Place::AppArchive,
                treatment: Treatment::Compile(SourceFile {
                    path: "app/hello.py".into(),
                    text: None,
                    zip: None,
                    filename: "hello.py".into(),
                    check_factories: true,
                }),
                role: Role::Module,
            },
            Placement {
                path: "encodings/__init__.pyc".into(),
                place: Place::StdlibZip,
                treatment: Treatment::Copy(FileSource::ZipMember(
                    "py/python3.zip".into(),
                    "encodings/__init__.pyc".into(),
                )),
                role: Role::Module,
            },
            Placement {
                path: "_socket.pyd".into(),
                place: Place::OutputFolder,
                treatment: Treatment::Copy(FileSource::Path("py/_socket.pyd".into())),
                role: Role::Binary,
            },
        ]
    }

    #[test]
    fn plan_names_every_output_file() {
        let plan = build_plan(frame(Path::new("dist")), placements()).unwrap();
        let names: Vec<(&str, Role)> = plan.files.iter().map(|f| (f.path.as_str(), f.role)).collect();
        assert_eq!(
            names,
            [
                ("_hello.dll", Role::Loader),
                ("_socket.pyd", Role::Binary),
                ("hello.exe", Role::Launcher),
                ("isapi_freeze_runtime.dll", Role::Runtime),
                ("python3.dll", Role::PythonDll),
                ("python3.zip", Role::Stdlib),
            ]
        );
        assert_eq!(plan.archive.len(), 1);
        assert_eq!(plan.stdlib_zip.len(), 1);
        assert_eq!(plan.sources().count(), 1);
    }

    #[test]
    fn dry_run_description_lists_files_and_zip_members() {
        let plan = build_plan(frame(Path::new("dist")), placements()).unwrap();
        assert_eq!(
            plan.describe(),
            "would write dist (7 files):\n\
             \x20 _hello.dll                   loader      stubs/isapi_freeze_loader.dll with the app archive\n\
             \x20 _socket.pyd                  binary      copy of py/_socket.pyd\n\
             \x20 hello.exe                    launcher    stubs/isapi-freeze-launcher.exe reading the loader's archive\n\
             \x20 isapi_freeze_runtime.dll     runtime     copy of stubs/cp3/isapi_freeze_runtime.dll\n\
             \x20 python3.dll                  python-dll  copy of py/python3.dll\n\
             \x20 python3.zip                  stdlib      a zip of the standard library listed below\n\
             \x20 manifest.json                manifest    SHA-256 of every file above\n\
             the app archive (in the loader), 1 member:\n\
             \x20 hello.pyc                                compiled from app/hello.py\n\
             the standard library zip, 1 member:\n\
             \x20 encodings/__init__.pyc                   copy of py/python3.zip/encodings/__init__.pyc\n"
        );
    }

    #[test]
    fn two_sources_for_one_place_are_refused() {
        let mut twice = placements();
        twice.push(Placement {
            path: "hello.pyc".into(),
            place: Place::AppArchive,
            treatment: Treatment::Copy(FileSource::Path("site/hello.pyc".into())),
            role: Role::Module,
        });
        let err = build_plan(frame(Path::new("dist")), twice).unwrap_err().to_string();
        assert_eq!(
            err,
            "two files claim hello.pyc in the archive (compiled from app/hello.py and copy of site/hello.pyc); \
             remove or --exclude one"
        );
    }
}
