//! Running Windows programs off Windows: the target's python.exe as a build Python, and
//! isapi-host for `serve`. Wine runs in a prefix of the tool's own (in the cache folder)
//! unless the user set WINEPREFIX, and its services are started by a throwaway program
//! first: they inherit the first program's standard handles and keep them open, which would
//! keep our pipes from ever ending.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

use anyhow::{bail, Result};

/// A Wine installation and the prefix it runs in.
#[derive(Clone, Debug)]
pub struct Wine {
    pub program: PathBuf,
    pub prefix: PathBuf,
    /// Whether the user chose the prefix (WINEPREFIX) rather than the tool.
    pub prefix_from_user: bool,
}

impl Wine {
    /// `given` (--wine or WINE), else `wine64` on PATH, else Debian's /usr/lib/wine/wine64,
    /// else `wine` on PATH.
    pub fn find(given: Option<&Path>) -> Result<Wine> {
        let program = match given {
            Some(path) if path.is_file() || on_path(&path.to_string_lossy()).is_some() => path.to_path_buf(),
            Some(path) => bail!("--wine {} does not exist", path.display()),
            None => on_path("wine64")
                .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
                .or_else(|| on_path("wine"))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "Wine is not installed, and this machine is not Windows: install it (Debian and Ubuntu: \
                         `apt-get install wine64`; Fedora: `dnf install wine`) or pass --wine PATH"
                    )
                })?,
        };
        let (prefix, prefix_from_user) = match std::env::var_os("WINEPREFIX").filter(|p| !p.is_empty()) {
            Some(prefix) => (PathBuf::from(prefix), true),
            None => match crate::config::cache_dir() {
                Some(cache) => (cache.join("wine"), false),
                None => bail!("cannot choose a Wine prefix: set HOME or WINEPREFIX"),
            },
        };
        Ok(Wine {
            program,
            prefix,
            prefix_from_user,
        })
    }

    /// A command that runs the Windows program `exe` under this Wine.
    pub fn command(&self, exe: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command.arg(exe);
        for (key, value) in self.environment() {
            command.env(key, value);
        }
        command
    }

    /// The environment every Wine program of ours gets: the prefix, no debug chatter, and no
    /// offer to install Mono or Gecko into a new prefix.
    pub fn environment(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("WINEPREFIX".into(), self.prefix.clone().into_os_string()),
            ("WINEDEBUG".into(), "-all".into()),
            ("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()),
        ]
    }

    /// Starts Wine's services (once per run) with a program whose handles are /dev/null, so
    /// that they never hold our programs' pipes open. A new prefix is made here, which takes
    /// a while the first time.
    pub fn start_services(&self, say: &dyn Fn(String)) {
        static START: Once = Once::new();
        START.call_once(|| {
            if !self.prefix.join("system.reg").is_file() {
                say(format!(
                    "setting up the Wine prefix {} (first time only)",
                    self.prefix.display()
                ));
                // Wine makes a missing prefix, but not the folders above it.
                let _ = std::fs::create_dir_all(&self.prefix);
            }
            let _ = self
                .command(Path::new("cmd.exe"))
                .args(["/c", "exit"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        });
    }
}

impl Wine {
    /// Gives the prefix what the Windows programs the tool carries need: Rust programs
    /// (isapi-host) import ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks (later
    /// Wine has its own, which is kept). Call after `start_services`, which makes the prefix.
    pub fn prepare_for(&self, stubs: &Path, say: &dyn Fn(String)) -> Result<()> {
        let system32 = self.prefix.join("drive_c/windows/system32");
        let target = system32.join("bcryptprimitives.dll");
        if target.is_file() {
            return Ok(());
        }
        let stand_in = stubs.join(isapi_freeze_format::WINE_PRNG_STAND_IN);
        let how = format!("cp {} {}", stand_in.display(), target.display());
        let whose = if self.prefix_from_user {
            "your WINEPREFIX"
        } else {
            "isapi-freeze's Wine prefix"
        };
        if !system32.is_dir() {
            bail!(
                "{whose} {} is not set up (it has no drive_c/windows/system32): run `WINEPREFIX={} wineboot -u`, \
                 then `{how}`",
                self.prefix.display(),
                self.prefix.display()
            );
        }
        if !stand_in.is_file() {
            bail!(
                "{whose} {} lacks bcryptprimitives.dll (Wine 8 has none), and the stubs folder {} has no stand-in for \
                 it; build the stubs with `make stubs`, or use Wine 9 or later",
                self.prefix.display(),
                stubs.display()
            );
        }
        std::fs::copy(&stand_in, &target).map_err(|e| {
            anyhow::anyhow!(
                "cannot add bcryptprimitives.dll to {whose} {} ({e}); run `{how}`",
                self.prefix.display()
            )
        })?;
        say(format!(
            "added a stand-in for bcryptprimitives.dll (Wine 8 lacks it) to {whose} {}",
            self.prefix.display()
        ));
        Ok(())
    }
}

/// The path a Windows program under Wine sees for `path`: Wine maps drive Z: to the root.
pub fn windows_path(path: &Path) -> String {
    if cfg!(windows) {
        path.display().to_string()
    } else {
        format!("Z:{}", path.display().to_string().replace('/', "\\"))
    }
}

/// The file `name` in a folder of PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
