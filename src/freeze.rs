//! The freeze command from start to end: discover, compile, plan, then print the plan
//! (`--dry-run`) or execute it. Progress goes to stderr.

use anyhow::{bail, Context, Result};

use crate::archive::ArchiveEntry;
use crate::compile::BytecodeCompiler;
use crate::config::{FreezeConfig, RuntimeLayout};
use crate::discover::{self, ModuleSource};
use crate::plan::{self, PlanInputs, StdlibSource};

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

    let mut modules = discover::app_modules(&config.script);
    modules.push(discover::install_options_module(&config.install));
    let (app_entries, factories) = compile(&mut config.compiler, &modules)?;
    check_factories(&config, factories)?;

    let stdlib = match config.runtime.layout {
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
    };

    let loader_template = fs_err::read(config.stubs.loader())?;
    let installer_template = fs_err::read(config.stubs.installer())?;
    let plan = plan::build_plan(PlanInputs {
        dist_dir: &config.dist_dir,
        script_module: &config.script.module,
        app_entries,
        loader_template: &loader_template,
        installer_template: &installer_template,
        runtime_stub: config.stubs.runtime(),
        python_dll: config.runtime.dll.clone(),
        python_stem: config.runtime.stem(),
        stdlib,
        binaries: discover::runtime_binaries(&config.runtime)?,
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
    compiler: &mut impl BytecodeCompiler,
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
