//! isapi-freeze: freezes a Python ISAPI extension or filter into a self-contained directory
//! for IIS. `main` only parses, dispatches and reports; the work lives in the modules below.

mod archive;
mod assemble;
mod build_python;
mod cli;
mod compile;
mod config;
mod discover;
mod environment;
mod execute;
mod fetch;
mod freeze;
mod made;
mod package;
mod pe;
mod placement;
mod plan;
mod progress;
mod pyproject;
mod serve;
mod sign;
mod stamps;
mod trace;
mod verify;
mod wine;

use clap::Parser;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = cli::Cli::parse_from(&argv);
    let result = match cli.command {
        Some(cli::Command::Serve(args)) => serve::serve(args, cli.freeze.stubs.as_deref()),
        Some(cli::Command::Trace(args)) => trace::trace(args),
        Some(cli::Command::Verify(args)) => verify::run(&args.dist, &args.data_dirs),
        Some(cli::Command::Package(args)) => package::run(args),
        None => pyproject::merge_beside(&argv, cli.freeze)
            .and_then(config::FreezeConfig::resolve)
            .and_then(freeze::freeze)
            .map(|()| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
