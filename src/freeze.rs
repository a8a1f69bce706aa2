//! The freeze command from start to end: find the modules (discover/), decide where each
//! goes (placement.rs), plan the output (plan.rs), then print the plan (`--dry-run`) or
//! assemble and write it (assemble.rs, execute.rs). Progress goes to stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::Role;

use crate::compile::BuildPython;
use crate::config::FreezeConfig;
use crate::discover::graph::{self, Graph, GraphRequest};
use crate::discover::roots::{ModuleFile, RootKind, Roots};
use crate::discover::{self, dlls};
use crate::placement::{self, Place, Placement, Rules, Treatment};
use crate::plan::{self, Frame};
use crate::progress::{Counting, Mode, Progress};

pub fn freeze(mut config: FreezeConfig) -> Result<()> {
    let progress = Progress::new(Mode::detect(config.quiet));
    let say = |msg: String| progress.say(&msg);
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

    let roots = discover::build_roots(&config.script, &config.paths, &config.runtime)?;
    check_script_name(&config, &roots)?;
    say(format!("following the imports of {}", config.script.path.display()));
    let request = request(&config);
    let graph = graph::build(&roots, &mut Counting::new(&mut config.compiler, &progress), &request)?;
    progress.end_counter();
    report_missing(&config, &graph)?;
    say(found(&graph, &roots));
    if !graph.left_out.is_empty() {
        say(format!(
            "leaving out {} (only the standard library's optional or in-function imports name them; \
             --include NAME ships one)",
            graph.left_out.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }

    let rules = Rules {
        script_module: &config.script.module,
        as_files: &config.files,
        full_stdlib: config.full_stdlib,
        encodings_in_archive: config.runtime.python.encodings_in_archive(),
    };
    let mut placements = placement::place_modules(&graph, &roots, &rules);
    placements.extend(placement::left_out_stand_ins(&graph.left_out));
    let factories = check_factories(&config.script.path, &mut config.compiler, &placements)?;
    if config.full_stdlib {
        placements.extend(placement::whole_stdlib(&config.runtime)?);
        placements.extend(placement::output_files(
            discover::runtime_binaries(&config.runtime)?,
            Role::Binary,
        ));
    }
    placements.extend(placement::distribution_files(&graph, &roots));
    placements.extend(placement::framework_folders(&graph, &config.script.folder()));
    placements.extend(dll_placements(&config, &placements, &say)?);
    placements.extend(data_placements(&config)?);

    let plan = plan::build_plan(
        Frame {
            dist_dir: &config.dist_dir,
            script_module: &config.script.module,
            loader_template: config.stubs.loader(),
            launcher_template: config.stubs.launcher(),
            runtime_stub: config.stubs.runtime(&config.runtime)?,
            python_dll: config.runtime.dll.clone(),
            stdlib_zip_name: config.runtime.stdlib_zip_name(),
            factories,
            install: config.install.clone(),
            app_modules: app_modules(&config, &graph, &roots),
        },
        placements,
    )?;
    if config.dry_run {
        print!("{}", plan.describe());
        return Ok(());
    }
    let compiled = plan.sources().count();
    // On a terminal the counter says it.
    if compiled > 0 && progress.mode() != Mode::Terminal {
        say(format!("compiling {compiled} modules"));
    }
    let mut output = crate::assemble::assemble(&plan, &mut Counting::new(&mut config.compiler, &progress))?;
    if let Some(signer) = &config.signer {
        crate::sign::sign_output(&mut output, signer, &say)?;
    }
    let written = crate::execute::execute(&output).with_context(|| format!("writing {}", config.dist_dir.display()))?;
    crate::serve::FreezeRecord::write(&config.dist_dir, sources_to_watch(&config, &plan));
    say(format!(
        "wrote {} ({} files, {} written, {} removed): {} for IIS, {} to run the script",
        config.dist_dir.display(),
        output.files.len() + 1,
        written.written,
        written.removed,
        isapi_freeze_format::loader_file_name(&config.script.module),
        isapi_freeze_format::launcher_file_name(&config.script.module),
    ));
    Ok(())
}

/// What `serve --reload` watches: the script, the pyproject.toml beside it, and every file
/// of the app's that the output was made from (not the runtime's own).
fn sources_to_watch(config: &FreezeConfig, plan: &plan::Plan) -> Vec<PathBuf> {
    let not_the_apps = [&config.runtime.root, &config.stubs.dir];
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    files.insert(config.script.path.clone());
    if let Some(folder) = config.script.path.parent() {
        files.insert(folder.join("pyproject.toml"));
    }
    let placed = plan
        .archive
        .iter()
        .chain(&plan.stdlib_zip)
        .map(|p| &p.treatment)
        .chain(plan.files.iter().filter_map(|f| match &f.contents {
            plan::Contents::Placed(t) => Some(t),
            _ => None,
        }));
    for treatment in placed {
        let path = match treatment {
            Treatment::Compile(source) if source.text.is_none() && source.zip.is_none() => &source.path,
            Treatment::Copy(crate::placement::FileSource::Path(path)) => path,
            _ => continue,
        };
        if !not_the_apps.iter().any(|dir| path.starts_with(dir)) {
            files.insert(path.clone());
        }
    }
    let absolute: BTreeSet<PathBuf> = files.into_iter().filter_map(|f| std::path::absolute(f).ok()).collect();
    absolute.into_iter().collect()
}

/// What the import graph starts from: the runtime's own modules, the script, and what the
/// options add.
fn request(config: &FreezeConfig) -> GraphRequest {
    let mut roots = discover::runtime_module_names();
    roots.push(config.script.module.clone());
    roots.extend(config.includes.iter().cloned());
    roots.extend(config.files.iter().cloned());
    let mut packages = vec!["encodings".to_string()];
    packages.extend(config.packages.iter().cloned());
    // Every archive holds all our runtime modules, but the boot module is the one that
    // always runs; the others run when the app (or the boot module) imports them. The
    // codecs of `encodings` count as running: any code can look one up by name
    // (`.encode("idna")` imports encodings.idna, which needs unicodedata), and a codec that
    // fails to import is only "unknown", its ImportError swallowed by the lookup.
    let on_demand = discover::runtime_module_names()
        .into_iter()
        .filter(|name| name != discover::BOOT_MODULE)
        .collect();
    GraphRequest {
        roots,
        packages,
        excludes: config.excludes.clone(),
        whole_third_party: true,
        on_demand,
        leave_out_unused_extensions: !config.full_stdlib,
    }
}

/// The progress line after the scan.
fn found(graph: &Graph, roots: &Roots) -> String {
    let (mut app, mut stdlib, mut extensions) = (0, 0, 0);
    for module in graph.modules.values() {
        match &module.found.file {
            ModuleFile::Extension { .. } => extensions += 1,
            ModuleFile::Source { root, .. } | ModuleFile::Bytecode { root, .. } => {
                if roots.roots[*root].kind == RootKind::Stdlib {
                    stdlib += 1;
                } else {
                    app += 1;
                }
            }
            ModuleFile::Builtin | ModuleFile::Namespace => {}
        }
    }
    format!(
        "found {} modules: {app} of the app, {stdlib} of the standard library, {extensions} extension modules",
        graph.modules.len()
    )
}

/// The script must define a factory for IIS to call: the ones it defines, or None when a
/// star import keeps that from being known. Only the script is compiled here (the result is
/// cached, so the real compile finds it), so that `--dry-run` checks it too.
fn check_factories(
    script_path: &std::path::Path,
    compiler: &mut impl BuildPython,
    placements: &[Placement],
) -> Result<Option<Vec<String>>> {
    let script = placements.iter().find_map(|p| match &p.treatment {
        Treatment::Compile(source) if source.check_factories => Some(source.clone()),
        _ => None,
    });
    let Some(script) = script else { return Ok(None) };
    let factories = compiler.compile(&[script])?.remove(0).factories;
    if factories.as_ref().is_some_and(|found| found.is_empty()) {
        bail!(
            "{} defines neither __ExtensionFactory__ nor __FilterFactory__: IIS would have nothing to call. \
             Define `def __ExtensionFactory__(): return MyExtension()` (see isapi.simple)",
            script_path.display()
        );
    }
    Ok(factories)
}

/// The top-level modules and packages of the app and its third-party packages in the
/// archive: the runtime gives them paths in the output folder, where their data files are,
/// so that code opening files beside `__file__` finds them (the standard library's and
/// isapi-freeze's own keep their path inside the archive).
fn app_modules(config: &FreezeConfig, graph: &Graph, roots: &Roots) -> Vec<String> {
    graph
        .modules
        .iter()
        .filter(|(name, _)| !name.contains('.') && !config.files.contains(name))
        .filter(|(_, module)| {
            let root = match &module.found.file {
                ModuleFile::Source { root, .. } | ModuleFile::Bytecode { root, .. } => Some(*root),
                ModuleFile::Namespace => module.found.package_dirs.first().map(|(root, _)| *root),
                ModuleFile::Extension { .. } | ModuleFile::Builtin => None,
            };
            root.is_some_and(|r| matches!(roots.roots[r].kind, RootKind::Script | RootKind::App))
        })
        .map(|(name, _)| name.clone())
        .collect()
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

/// `--data SRC=DEST`: files and folders copied into the output folder.
fn data_placements(config: &FreezeConfig) -> Result<Vec<Placement>> {
    let mut out = Vec::new();
    for (src, dest) in &config.data {
        if src.is_file() {
            out.push((dest.clone(), src.clone()));
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
                out.push((format!("{dest}/{rel}"), entry.path().to_path_buf()));
            }
        }
    }
    Ok(placement::output_files(out, Role::Data))
}

/// The C runtime python3XY.dll needs, and every DLL the placed extension modules import
/// that Windows would not find (read from their PE import tables).
fn dll_placements(config: &FreezeConfig, placements: &[Placement], say: &impl Fn(String)) -> Result<Vec<Placement>> {
    let runtime = &config.runtime;
    let binaries: BTreeMap<&str, PathBuf> = placements
        .iter()
        .filter(|p| p.place == Place::OutputFolder && p.role == Role::Binary)
        .filter_map(|p| match &p.treatment {
            Treatment::Copy(crate::placement::FileSource::Path(path)) => Some((p.path.as_str(), path.clone())),
            _ => None,
        })
        .collect();
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in fs_err::read_dir(&runtime.root)? {
        let path = entry?.path();
        let name = crate::config::file_name(&path);
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("vcruntime") && lower.ends_with(".dll") && !binaries.contains_key(name.as_str()) {
            out.insert(name, path);
        }
    }
    let provided: BTreeSet<String> = binaries
        .keys()
        .map(|k| k.rsplit('/').next().unwrap_or(k).to_ascii_lowercase())
        .chain(out.keys().map(|k| k.to_ascii_lowercase()))
        .collect();
    // The DLLs a package ships of its own (numpy.libs) may load others in turn.
    let modules: Vec<PathBuf> = binaries
        .iter()
        .filter(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            lower.ends_with(".pyd") || lower.ends_with(".dll")
        })
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
    Ok(placement::output_files(out, Role::Binary))
}
