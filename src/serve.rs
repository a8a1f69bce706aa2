//! `isapi-freeze serve DIST`: runs isapi-host on the output's loader, under Wine when this
//! is not Windows. The host's output is relayed through pipes, because an embedded CPython
//! under Wine cannot start with a regular file as a standard stream.

use std::path::{Path, PathBuf};

use crate::wine::windows_path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::cli::ServeArgs;

pub fn serve(args: ServeArgs, stubs: Option<&Path>) -> Result<i32> {
    let dll = find_loader(&args.dist)?;
    let stubs = crate::config::find_stubs(stubs, &[isapi_freeze_format::HOST_EXE])?;
    let host = stubs.host();
    let mut command = if cfg!(windows) {
        Command::new(&host)
    } else {
        let wine = crate::wine::Wine::find(args.wine.as_deref())?;
        let say = |line: String| eprintln!("{line}");
        wine.start_services(&say);
        wine.prepare_for(&stubs.dir, &say)?;
        wine.command(&host)
    };
    command.arg("--listen").arg(&args.listen).arg(windows_path(&dll));
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", host.display()))?;
    // Relay without waiting for end of file: Wine's helper processes may hold the pipes open.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::stdout()));
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
    // isapi-host stops when its input ends: pass ours on, so that closing it (Ctrl+D, or the
    // end of a pipe) stops the server cleanly.
    let mut stdin = child.stdin.take().expect("piped");
    std::thread::spawn(move || std::io::copy(&mut std::io::stdin(), &mut stdin));
    let status = child.wait()?;
    Ok(status.code().unwrap_or(1))
}

/// The one `_NAME.dll` of an output directory.
pub fn find_loader(dist: &Path) -> Result<PathBuf> {
    let entries = fs_err::read_dir(dist)
        .with_context(|| format!("{} is not an isapi-freeze output directory", dist.display()))?;
    let mut loaders: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = crate::config::file_name(&path);
        if name.starts_with('_') && name.to_ascii_lowercase().ends_with(".dll") {
            loaders.push(path);
        }
    }
    loaders.sort();
    match loaders.len() {
        1 => Ok(fs_err::canonicalize(&loaders[0])?),
        0 => bail!(
            "{} has no _NAME.dll: freeze a script into it first (isapi-freeze SCRIPT.py --dist-dir {})",
            dist.display(),
            dist.display()
        ),
        _ => bail!(
            "{} has several _NAME.dll files; it should hold the output of one freeze",
            dist.display()
        ),
    }
}
