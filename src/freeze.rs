//! The freeze command from start to end: discover, compile, plan, then print the plan
//! (`--dry-run`) or execute it. Progress goes to stderr.

use anyhow::{bail, Context, Result};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::archive::{ArchiveEntry, ZipCopy};
use crate::compile::{BuildPython, SourceReader};
use crate::config::{FreezeConfig, RuntimeLayout};
use crate::discover::collect::{collect, Collected, FileSource};
use crate::discover::graph::{self, Graph, GraphRequest};
use crate::discover::roots::{RootKind, Roots};
use crate::discover::{self, dlls, ModuleSource};
use crate::plan::{self, Contents, PlanInputs, PlannedFile, Role, StdlibSource};

pub fn freeze(mut config: FreezeConfig) -> Result<()> {
    let quiet = config.quiet;
    let say = |msg: String| {
        if !quiet {
            eprintln!("{msg}");
        }
    };
    let rt = &config.runtime;
    say(format!(
        "freezing {} with CPython {}.{}.{} ({:?} at {})",
        config.script.path.display(),
        rt.version.0,
        rt.version.1,
        rt.version.2,
        rt.layout,
        rt.root.display()
    ));

    let mut roots = discover::build_roots(&config.script, &config.paths, &config.runtime)?;
    // Generated below rather than found: the freeze-time install options.
    roots.builtins.insert(discover::INSTALL_OPTIONS_MODULE.to_string());
    check_script_name(&config, &roots)?;
    let mut wanted = discover::runtime_module_names();
    wanted.push(config.script.module.clone());
    wanted.extend(config.includes.iter().cloned());
    wanted.extend(config.files.iter().cloned());
    let mut packages = vec!["encodings".to_string()];
    packages.extend(config.packages.iter().cloned());
    let request = GraphRequest {
        roots: wanted,
        packages,
        excludes: config.excludes.clone(),
    };
    say(format!("following the imports of {}", config.script.path.display()));
    let graph = graph::build(&roots, &mut config.compiler, &request)?;
    report_missing(&config, &graph)?;
    let collected = collect(&graph, &roots, &config.script.module, &config.files);
    say(format!(
        "found {} modules: {} of the app, {} of the standard library, {} extension modules",
        graph.modules.len(),
        collected.app_sources.len() + collected.app_files.iter().filter(|(n, _)| n.ends_with(".pyc")).count(),
        collected.stdlib_sources.len()
            + collected
                .stdlib_files
                .iter()
                .filter(|(n, _)| n.ends_with(".pyc"))
                .count(),
        collected.extensions.len()
    ));

    let mut files = FileReader::default();
    let mut app_sources = collected.app_sources.clone();
    // The app's own top-level modules (`name.pyc` at the archive's root), sorted.
    let app_modules: BTreeSet<String> = app_sources
        .iter()
        .map(|m| m.archive_name.as_str())
        .chain(collected.app_files.iter().map(|(name, _)| name.as_str()))
        .filter_map(|name| name.strip_suffix(".pyc").filter(|m| !m.contains('/')))
        .map(String::from)
        .collect();
    let app_modules: Vec<String> = app_modules.into_iter().collect();
    app_sources.push(discover::install_options_module(&config.install, &app_modules));
    let (mut app_entries, factories) = compile(&mut config.compiler, &app_sources)?;
    check_factories(&config, factories)?;
    for (name, source) in &collected.app_files {
        app_entries.push(ArchiveEntry {
            name: name.clone(),
            data: files.read(source)?,
        });
    }

    let mut app_copies = Vec::new();
    let stdlib = if config.full_stdlib {
        // Everything stays in python3XY.zip: a package taken from the archive would look for
        // its submodules only there, and the whole standard library is shipped for the
        // imports the scan cannot see (`importlib.import_module(name)`).
        full_stdlib(&mut config, &say)?
    } else {
        // The standard library the app uses goes into the app archive, where it is read
        // from memory: Python's own zipimport opens python3XY.zip again for every module it
        // loads, which was a third of a Flask app's cold start. Only what Python needs
        // before the archive's importer is installed (the `encodings` package) stays in
        // python3XY.zip.
        if !collected.stdlib_sources.is_empty() {
            say(format!(
                "compiling {} standard-library modules",
                collected.stdlib_sources.len()
            ));
        }
        let (stdlib_entries, _) = compile(&mut config.compiler, &collected.stdlib_sources)?;
        let before_boot = |name: &str| name.starts_with("encodings/");
        let mut stdlib_zip_entries = Vec::new();
        for entry in stdlib_entries {
            if before_boot(&entry.name) {
                stdlib_zip_entries.push(entry);
            } else {
                app_entries.push(entry);
            }
        }
        // Members of the embeddable zip go in still compressed.
        let mut copied: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (name, source) in &collected.stdlib_files {
            match source {
                FileSource::ZipMember(zip, member) if !before_boot(name) && member == name => {
                    copied.entry(zip.clone()).or_default().push(member.clone());
                }
                _ => {
                    let entry = ArchiveEntry {
                        name: name.clone(),
                        data: files.read(source)?,
                    };
                    if before_boot(name) {
                        stdlib_zip_entries.push(entry);
                    } else {
                        app_entries.push(entry);
                    }
                }
            }
        }
        for (path, members) in copied {
            let zip = zip::ZipArchive::new(fs_err::File::open(&path)?)
                .with_context(|| format!("{} is not a zip file", path.display()))?;
            app_copies.push(ZipCopy { zip, members });
        }
        StdlibSource::Entries(stdlib_zip_entries)
    };
    let binaries = binaries(&config, &collected, &say)?;
    let extra = plain_files(&mut config, &collected, &mut files)?;

    let loader_template = fs_err::read(config.stubs.loader())?;
    let installer_template = fs_err::read(config.stubs.installer())?;
    let plan = plan::build_plan(PlanInputs {
        dist_dir: &config.dist_dir,
        script_module: &config.script.module,
        app_entries,
        app_copies,
        loader_template: &loader_template,
        installer_template: &installer_template,
        runtime_stub: config.stubs.runtime(),
        python_dll: config.runtime.dll.clone(),
        python_stem: config.runtime.stem(),
        stdlib,
        binaries,
        extra,
    })?;

    if config.dry_run {
        print!("{}", plan.describe());
        return Ok(());
    }
    crate::execute::execute(&plan).with_context(|| format!("writing {}", config.dist_dir.display()))?;
    say(format!(
        "wrote {} ({} files): _{}.dll for IIS, {}.exe to run the script",
        config.dist_dir.display(),
        plan.files.len() + 1,
        config.script.module,
        config.script.module
    ));
    Ok(())
}

/// Compiles modules into archive entries, and returns the factory names found in the one
/// module that asked for that check.
fn compile(
    compiler: &mut impl BuildPython,
    modules: &[ModuleSource],
) -> Result<(Vec<ArchiveEntry>, Option<Vec<String>>)> {
    let sources: Vec<_> = modules.iter().map(|m| m.source.clone()).collect();
    let compiled = compiler.compile(&sources)?;
    let mut factories = None;
    let mut entries = Vec::with_capacity(modules.len());
    for (module, result) in modules.iter().zip(compiled) {
        if module.source.check_factories {
            factories = result.factories;
        }
        entries.push(ArchiveEntry {
            name: module.archive_name.clone(),
            data: result.pyc,
        });
    }
    Ok((entries, factories))
}

fn check_factories(config: &FreezeConfig, factories: Option<Vec<String>>) -> Result<()> {
    if let Some(found) = factories {
        if found.is_empty() {
            bail!(
                "{} defines neither __ExtensionFactory__ nor __FilterFactory__: IIS would have nothing to call. \
                 Define `def __ExtensionFactory__(): return MyExtension()` (see isapi.simple)",
                config.script.path.display()
            );
        }
    }
    Ok(())
}

/// A script named like a standard-library module would shadow it for everything else.
fn check_script_name(config: &FreezeConfig, roots: &Roots) -> Result<()> {
    let module = &config.script.module;
    let stdlib = roots
        .roots
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.kind, RootKind::Stdlib | RootKind::StdlibExtensions));
    let shadows = roots.builtins.contains(module)
        || stdlib.into_iter().any(|(i, _)| {
            ["py", "pyc"].iter().any(|ext| {
                roots.has_file(i, &format!("{module}.{ext}")) || roots.has_file(i, &format!("{module}/__init__.{ext}"))
            }) || roots.has_file(i, &format!("{module}.pyd"))
        });
    if shadows {
        bail!(
            "script {} has the name of the standard-library module `{module}`, which it would hide from every \
             other module; rename the script (e.g. to {module}_app.py)",
            config.script.path.display()
        );
    }
    Ok(())
}

/// Reports imports of the app's that were found nowhere; with --strict they are an error.
fn report_missing(config: &FreezeConfig, graph: &Graph) -> Result<()> {
    if graph.missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = graph
        .missing
        .iter()
        .map(|(name, importers)| {
            format!(
                "  {name} (imported by {})",
                importers.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    if config.strict {
        bail!(
            "these modules are imported but found nowhere (--strict):\n{}\nadd their folder with --path, or --exclude them",
            lines.join("\n")
        );
    }
    if !config.quiet {
        eprintln!(
            "warning: these modules are imported but found nowhere; the app fails if it runs those imports:\n{}",
            lines.join("\n")
        );
    }
    Ok(())
}

/// The whole standard library (--full-stdlib).
fn full_stdlib(config: &mut FreezeConfig, say: &impl Fn(String)) -> Result<StdlibSource> {
    Ok(match config.runtime.layout {
        RuntimeLayout::Embeddable => {
            StdlibSource::Zip(config.runtime.root.join(format!("{}.zip", config.runtime.stem())))
        }
        RuntimeLayout::Installation => {
            let lib = config.runtime.root.join("Lib");
            let files = discover::stdlib_files(&lib)?;
            say(format!(
                "compiling the standard library: {} modules from {}",
                files.modules.len(),
                lib.display()
            ));
            let (mut entries, _) = compile(&mut config.compiler, &files.modules)?;
            for (name, path) in files.data {
                entries.push(ArchiveEntry {
                    name,
                    data: fs_err::read(&path)?,
                });
            }
            StdlibSource::Entries(entries)
        }
    })
}

/// The files of `--files` packages (compiled) and of `--data`, for the output folder.
fn plain_files(config: &mut FreezeConfig, collected: &Collected, reader: &mut FileReader) -> Result<Vec<PlannedFile>> {
    let mut out = Vec::new();
    let (compiled, _) = compile(&mut config.compiler, &collected.file_sources)?;
    for entry in compiled {
        out.push(PlannedFile {
            path: entry.name,
            role: Role::Module,
            contents: Contents::Bytes(entry.data),
        });
    }
    for (path, source) in &collected.file_data {
        let contents = match source {
            FileSource::Path(p) => Contents::Copy(p.clone()),
            FileSource::ZipMember(..) => Contents::Bytes(reader.read(source)?),
        };
        out.push(PlannedFile {
            path: path.clone(),
            role: Role::Data,
            contents,
        });
    }
    for (src, dest) in &config.data {
        if src.is_file() {
            out.push(PlannedFile {
                path: dest.clone(),
                role: Role::Data,
                contents: Contents::Copy(src.clone()),
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(src).follow_links(true).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                let looped = e
                    .loop_ancestor()
                    .map(|a| format!(" (a symbolic link loops back to {})", a.display()));
                anyhow::anyhow!(
                    "cannot read --data {}: {e}{}; remove the loop or pass the folders separately",
                    src.display(),
                    looped.unwrap_or_default()
                )
            })?;
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(src)?.to_string_lossy().replace('\\', "/");
                out.push(PlannedFile {
                    path: format!("{dest}/{rel}"),
                    role: Role::Data,
                    contents: Contents::Copy(entry.path().to_path_buf()),
                });
            }
        }
    }
    Ok(out)
}

/// Extension modules and every DLL they need, placed as files: (path in the output, file).
fn binaries(config: &FreezeConfig, collected: &Collected, say: &impl Fn(String)) -> Result<Vec<(String, PathBuf)>> {
    let runtime = &config.runtime;
    let mut out: BTreeMap<String, PathBuf> = collected.extensions.iter().cloned().collect();
    if config.full_stdlib {
        out.extend(discover::runtime_binaries(runtime)?);
    }
    // python3XY.dll needs the C runtime beside it.
    for entry in fs_err::read_dir(&runtime.root)? {
        let path = entry?.path();
        let name = crate::config::file_name(&path);
        if name.to_ascii_lowercase().starts_with("vcruntime") && name.to_ascii_lowercase().ends_with(".dll") {
            out.insert(name, path);
        }
    }
    let provided: BTreeSet<String> = out
        .keys()
        .map(|k| k.rsplit('/').next().unwrap_or(k).to_ascii_lowercase())
        .collect();
    let modules: Vec<PathBuf> = out
        .iter()
        .filter(|(name, _)| name.ends_with(".pyd"))
        .map(|(_, p)| p.clone())
        .collect();
    let mut search: Vec<PathBuf> = Vec::new();
    for dir in std::iter::once(config.script.path.parent().map(PathBuf::from).unwrap_or_default())
        .chain(config.paths.iter().cloned())
    {
        search.push(dir.clone());
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut extra: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir() && (p.extension().is_some_and(|e| e == "libs") || p.ends_with("pywin32_system32"))
                })
                .collect();
            extra.sort();
            search.extend(extra);
        }
    }
    search.push(runtime.extension_dir.clone());
    search.push(runtime.root.clone());
    let deps = dlls::dependencies(&modules, &search, &runtime.dll_name(), &provided)?;
    for (name, path) in deps.ship {
        say(format!(
            "shipping {name} (needed by an extension module) from {}",
            path.display()
        ));
        out.insert(crate::config::file_name(&path), path);
    }
    if !deps.unresolved.is_empty() && !config.quiet {
        for (dll, users) in &deps.unresolved {
            eprintln!(
                "warning: {dll} is needed by {} but was not found beside it or in the runtime; it must be on the server",
                users.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(out.into_iter().collect())
}

/// Reads copied files, opening each zip once.
#[derive(Default)]
struct FileReader(SourceReader);

impl FileReader {
    fn read(&mut self, source: &FileSource) -> Result<Vec<u8>> {
        Ok(match source {
            FileSource::Path(path) => fs_err::read(path)?,
            FileSource::ZipMember(zip_path, member) => self.0.read_zip_member(zip_path, member)?,
        })
    }
}
