//! From the plan to bytes: every source the plan compiles goes to the build Python in one
//! batch, then the app archive and the standard-library zip are written in memory and the
//! archive and its config record are embedded in the loader; the launcher gets the record
//! only, naming the loader as the archive's holder, so the output carries the archive once.
//! Nothing is written to the output here; `execute.rs` does that with the result.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use isapi_freeze_diagnostics::messages;
use isapi_freeze_format::{self as format, manifest::Role, StubConfig};

use crate::archive::{archive_bytes, archive_bytes_copying, ArchiveEntry, ZipCopy};
use crate::compile::{BuildPython, SourceReader};
use crate::made::{Key, Made};
use crate::pe::{self, ResName, Resource};
use crate::placement::{FileSource, Placement, Treatment};
use crate::plan::{Contents, Plan};

/// The output, ready to write.
pub struct Output {
    pub dist_dir: PathBuf,
    pub files: Vec<OutputFile>,
}

pub struct OutputFile {
    /// Path inside the output folder, `/`-separated.
    pub path: String,
    pub role: Role,
    pub bytes: Bytes,
}

pub enum Bytes {
    Made(Vec<u8>),
    /// A file copied as it is, read while it is written.
    CopyOf(PathBuf),
}

pub fn assemble(plan: &Plan, compiler: &mut impl BuildPython) -> Result<Output> {
    let sources: Vec<_> = plan.sources().cloned().collect();
    let compiled = compiler.compile(&sources)?;
    // Compiled bytecode by the source's (path, archive file name): each source is unique.
    let pyc: HashMap<(PathBuf, String), Vec<u8>> = sources
        .into_iter()
        .zip(compiled)
        .map(|(source, result)| ((source.path, source.filename), result.pyc))
        .collect();
    let mut reader = SourceReader::default();
    let mut bytes_of = |treatment: &Treatment| -> Result<Bytes> {
        Ok(match treatment {
            Treatment::Compile(source) => Bytes::Made(
                pyc.get(&(source.path.clone(), source.filename.clone()))
                    .cloned()
                    .expect("every source was compiled"),
            ),
            Treatment::Copy(FileSource::Path(path)) => Bytes::CopyOf(path.clone()),
            Treatment::Copy(FileSource::ZipMember(zip, member)) | Treatment::CopyCompressed { zip, member } => {
                Bytes::Made(reader.read_zip_member(zip, member)?)
            }
        })
    };

    let (archive, archive_sha256) = zip_of(&plan.archive, &mut bytes_of).context("writing the app archive")?;
    let config = StubConfig {
        python_dll: plan.python_dll.clone(),
        script_module: plan.script_module.clone(),
        archive_sha256,
        factories: plan.factories.clone(),
        install_site: plan.install.site.clone(),
        install_vpath: plan.install.vpath.clone(),
        app_modules: plan.app_modules.clone(),
        archive_in: None,
    };
    // The Event Log's texts for the ids the stubs report with: install registers the loader
    // as the event source's message file.
    let message_table = Resource {
        kind: ResName::Id(messages::RT_MESSAGETABLE),
        name: ResName::Id(messages::MESSAGE_TABLE_ID),
        language: format::RESOURCE_LANGUAGE,
        code_page: 0,
        data: messages::message_table(),
    };
    let launcher_config = StubConfig {
        archive_in: Some(format::loader_file_name(&plan.script_module)),
        ..config.clone()
    };
    let loader_resources = [
        rcdata(format::ARCHIVE_RESOURCE_ID, archive),
        rcdata(format::CONFIG_RESOURCE_ID, config.encode()),
        message_table.clone(),
    ];
    let launcher_resources = [
        rcdata(format::CONFIG_RESOURCE_ID, launcher_config.encode()),
        message_table,
    ];
    let mut files = Vec::with_capacity(plan.files.len());
    for file in &plan.files {
        let bytes = match &file.contents {
            Contents::Placed(treatment) => bytes_of(treatment)?,
            Contents::StubWithArchive(template) => {
                Bytes::Made(stub_with(template, &loader_resources, "embedding the archive in")?)
            }
            Contents::StubWithConfig(template) => Bytes::Made(stub_with(
                template,
                &launcher_resources,
                "embedding the config record in",
            )?),
            Contents::StdlibZip => Bytes::Made(
                zip_of(&plan.stdlib_zip, &mut bytes_of)
                    .context("writing the standard library zip")?
                    .0,
            ),
        };
        files.push(OutputFile {
            path: file.path.clone(),
            role: file.role,
            bytes,
        });
    }
    Ok(Output {
        dist_dir: plan.dist_dir.clone(),
        files,
    })
}

/// A zip of `members` and its SHA-256; members copied compressed come straight from their
/// zip, the others are made by `bytes_of`.
fn zip_of(
    members: &[Placement],
    bytes_of: &mut impl FnMut(&Treatment) -> Result<Bytes>,
) -> Result<(Vec<u8>, [u8; 32])> {
    let mut entries = Vec::new();
    let mut copied: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for member in members {
        match &member.treatment {
            Treatment::CopyCompressed { zip, member: name } if *name == member.path => {
                copied.entry(zip.clone()).or_default().push(name.clone());
            }
            treatment => {
                let data = match bytes_of(treatment)? {
                    Bytes::Made(data) => data,
                    Bytes::CopyOf(path) => fs_err::read(path)?,
                };
                entries.push(ArchiveEntry {
                    name: member.path.clone(),
                    data,
                });
            }
        }
    }
    let mut key = Key::new("zip");
    for entry in &entries {
        key.bytes(entry.name.as_bytes());
        key.bytes(&entry.data);
    }
    for (path, members) in &copied {
        key.file(path);
        for member in members {
            key.bytes(member.as_bytes());
        }
    }
    let bytes = Made::new("zips").get_or_make(key, || -> Result<Vec<u8>> {
        if copied.is_empty() {
            return Ok(archive_bytes(&entries)?.0);
        }
        let mut copies = Vec::new();
        for (path, members) in copied {
            let zip = zip::ZipArchive::new(fs_err::File::open(&path)?)
                .with_context(|| format!("{} is not a zip file", path.display()))?;
            copies.push(ZipCopy { zip, members });
        }
        Ok(archive_bytes_copying(&entries, &mut copies)?.0)
    })?;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
    Ok((bytes, digest))
}

/// The stub `template` with `resources` added, from the cache of made files when the same
/// stub got the same resources before. The archive resource is known by its digest, which
/// the config record among them holds.
fn stub_with(template: &Path, resources: &[Resource], what: &str) -> Result<Vec<u8>> {
    let mut key = Key::new("stub");
    key.file(template);
    for resource in resources
        .iter()
        .filter(|r| r.name != ResName::Id(format::ARCHIVE_RESOURCE_ID))
    {
        key.bytes(
            format!(
                "{:?} {:?} {} {}",
                resource.kind, resource.name, resource.language, resource.code_page
            )
            .as_bytes(),
        );
        key.bytes(&resource.data);
    }
    Made::new("stubs").get_or_make(key, || -> Result<Vec<u8>> {
        let image = fs_err::read(template)?;
        pe::add_resources(&image, resources).with_context(|| format!("{what} {}", template.display()))
    })
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::compile::{BytecodeVersion, CompileError, Compiled, ImportRecord, SourceFile};
    use crate::pe::tests::tiny_pe;
    use crate::plan::{build_plan, tests::frame};

    /// A build Python whose bytecode is `pyc:` and the file name.
    struct Echo;

    impl BuildPython for Echo {
        fn interpreter(&self) -> &Path {
            Path::new("echo")
        }
        fn version(&mut self) -> Result<BytecodeVersion, CompileError> {
            unreachable!()
        }
        fn compile(&mut self, files: &[SourceFile]) -> Result<Vec<Compiled>, CompileError> {
            Ok(files
                .iter()
                .map(|f| Compiled {
                    pyc: format!("pyc:{}", f.filename).into_bytes(),
                    factories: None,
                })
                .collect())
        }
        fn scan(&mut self, _: &[SourceFile]) -> Result<Vec<Vec<ImportRecord>>, CompileError> {
            unreachable!()
        }
    }

    #[test]
    fn the_loader_carries_the_archive_and_the_launcher_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let stub = tmp.path().join("stub.dll");
        std::fs::write(&stub, tiny_pe()).unwrap();
        let zip = tmp.path().join("python3.zip");
        {
            let mut w = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
            w.start_file("encodings/__init__.pyc", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, b"enc").unwrap();
            w.finish().unwrap();
        }
        let mut frame = frame(Path::new("dist"));
        frame.loader_template = stub.clone();
        frame.launcher_template = stub;
        let mut placements = crate::plan::tests::placements();
        placements.retain(|p| p.role != Role::Binary);
        placements[1].treatment = Treatment::Copy(FileSource::ZipMember(zip, "encodings/__init__.pyc".into()));
        let plan = build_plan(frame, placements).unwrap();
        let output = assemble(&plan, &mut Echo).unwrap();
        let made = |name: &str| match &output.files.iter().find(|f| f.path == name).unwrap().bytes {
            Bytes::Made(b) => b.clone(),
            Bytes::CopyOf(_) => panic!("{name} should be made"),
        };
        let kind = ResName::Id(format::RT_RCDATA);
        let config_of = |image: &[u8]| {
            let config = pe::find_resource(image, &kind, &ResName::Id(format::CONFIG_RESOURCE_ID), 0)
                .unwrap()
                .unwrap();
            StubConfig::decode(&config).unwrap()
        };
        let loader = made("_hello.dll");
        let archive = pe::find_resource(&loader, &kind, &ResName::Id(format::ARCHIVE_RESOURCE_ID), 0)
            .unwrap()
            .unwrap();
        let config = config_of(&loader);
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&archive).into();
        assert_eq!(config.archive_sha256, digest);
        assert_eq!(config.script_module, "hello");
        assert_eq!(config.python_dll, "python3.dll");
        assert_eq!(config.archive_in, None);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
        let mut pyc = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("hello.pyc").unwrap(), &mut pyc).unwrap();
        assert_eq!(pyc, "pyc:hello.py");
        // The launcher's record is the loader's, naming the loader as the archive's holder.
        let launcher = made("hello.exe");
        assert_eq!(
            pe::find_resource(&launcher, &kind, &ResName::Id(format::ARCHIVE_RESOURCE_ID), 0).unwrap(),
            None
        );
        assert_eq!(
            config_of(&launcher),
            StubConfig {
                archive_in: Some("_hello.dll".into()),
                ..config
            }
        );
        let mut stdlib = zip::ZipArchive::new(std::io::Cursor::new(made("python3.zip"))).unwrap();
        let mut enc = String::new();
        std::io::Read::read_to_string(&mut stdlib.by_name("encodings/__init__.pyc").unwrap(), &mut enc).unwrap();
        assert_eq!(enc, "enc");
    }
}
