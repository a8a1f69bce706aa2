//! Authenticode signatures on the PE files the tool makes (`--sign FILE.pfx`): the loader
//! DLL, the launcher EXE and the runtime DLL, signed after every edit and before the output
//! is written, so that manifest.json describes the signed bytes and nothing unsigned is
//! left in place of a signed output. Files copied unchanged (python3XY.dll, .pyd files,
//! vcruntime) keep their publishers' signatures. Off Windows the signer is osslsigncode and
//! the certificate is checked first with openssl; on Windows it is signtool.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::Role;

use crate::assemble::{Bytes, Output};

/// Where the password comes from when no terminal can be asked: never the command line,
/// where other users of the machine can read it.
pub const PASSWORD_VARIABLE: &str = "ISAPI_FREEZE_SIGN_PASSWORD";

/// What signs, with which certificate.
pub struct Signer {
    tool: Tool,
    pfx: PathBuf,
    password: String,
    timestamp_url: Option<String>,
}

enum Tool {
    Osslsigncode(PathBuf),
    Signtool(PathBuf),
}

impl Signer {
    /// Finds the signing tool, gets the password and (off Windows) checks that the
    /// certificate opens with it, has not expired and may sign code: all before anything
    /// is frozen, so a bad certificate costs no build.
    pub fn resolve(pfx: &Path, timestamp_url: Option<String>) -> Result<Signer> {
        if !pfx.is_file() {
            bail!(
                "--sign {}: no such file (a PKCS#12 .pfx with the certificate and its key)",
                pfx.display()
            );
        }
        let tool = find_tool()?;
        let password = password(pfx)?;
        let signer = Signer {
            tool,
            pfx: pfx.to_path_buf(),
            password,
            timestamp_url,
        };
        if matches!(signer.tool, Tool::Osslsigncode(_)) {
            signer.check_certificate()?;
        }
        Ok(signer)
    }

    /// The certificate, read with openssl: the password opens it, it is valid now, and its
    /// extended key usage (when it has one) includes code signing.
    fn check_certificate(&self) -> Result<()> {
        let pem = self.openssl(&["pkcs12", "-nokeys", "-clcerts", "-in"], Some(&self.pfx), None)?;
        let pem = match pem {
            Ok(pem) => pem,
            Err(stderr) if stderr.contains("mac verify") || stderr.contains("Mac verify") => {
                bail!(
                    "the password does not open {} (from {PASSWORD_VARIABLE} or the prompt)",
                    self.pfx.display()
                )
            }
            Err(stderr) => bail!("openssl cannot read {}: {}", self.pfx.display(), stderr.trim()),
        };
        // -checkend 0 fails when the certificate is no longer valid now.
        if let Err(out) = self.openssl(&["x509", "-noout", "-enddate", "-checkend", "0"], None, Some(&pem))? {
            let end = out.lines().find_map(|l| l.strip_prefix("notAfter=")).unwrap_or("?");
            bail!(
                "the certificate in {} expired on {end}: a signature made with it now is not valid; \
                 renew it",
                self.pfx.display()
            );
        }
        let usage = self
            .openssl(&["x509", "-noout", "-ext", "extendedKeyUsage"], None, Some(&pem))?
            .unwrap_or_default();
        let usage = String::from_utf8_lossy(&usage);
        if usage.contains("Extended Key Usage") && !usage.contains("Code Signing") {
            bail!(
                "the certificate in {} may not sign code (its extended key usage is {}): use a \
                 code-signing certificate",
                self.pfx.display(),
                usage.lines().skip(1).map(str::trim).collect::<Vec<_>>().join(" ")
            );
        }
        Ok(())
    }

    /// Runs `openssl ARGS [FILE]` with the password in its environment (never on its
    /// command line) and `input` on stdin: Ok(stdout) or Err(stdout and stderr).
    fn openssl(&self, args: &[&str], file: Option<&Path>, input: Option<&[u8]>) -> Result<Result<Vec<u8>, String>> {
        let mut command = Command::new("openssl");
        command.args(args);
        if let Some(file) = file {
            command.arg(file).args(["-passin", "env:ISAPI_FREEZE_PFX_PASSWORD"]);
        }
        let mut child = command
            .env("ISAPI_FREEZE_PFX_PASSWORD", &self.password)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("checking the certificate needs openssl: install it (e.g. `apt-get install openssl`)")?;
        if let Some(input) = input {
            use std::io::Write;
            child.stdin.take().expect("piped").write_all(input)?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            Ok(Ok(out.stdout))
        } else {
            Ok(Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// `image` signed, as the file `name` (its description in the signature).
    pub fn sign(&self, name: &str, image: &[u8]) -> Result<Vec<u8>> {
        let work = tempfile::tempdir().context("a temporary folder for signing")?;
        let unsigned = work.path().join(format!("unsigned-{name}"));
        let signed = work.path().join(name);
        fs_err::write(&unsigned, image)?;
        let out = match &self.tool {
            Tool::Osslsigncode(tool) => {
                // The password goes through a file only this user can read, not argv.
                let pass = work.path().join("password");
                write_private(&pass, &self.password)?;
                let mut command = Command::new(tool);
                command
                    .arg("sign")
                    .arg("-pkcs12")
                    .arg(&self.pfx)
                    .arg("-readpass")
                    .arg(&pass)
                    .args(["-h", "sha256", "-n", name]);
                if let Some(url) = &self.timestamp_url {
                    command.args(["-ts", url]);
                }
                command.arg("-in").arg(&unsigned).arg("-out").arg(&signed).output()
            }
            Tool::Signtool(tool) => {
                // signtool takes the password only as /p: visible to the machine's other users
                // while it runs; an admin who minds imports the certificate into the store.
                fs_err::copy(&unsigned, &signed)?;
                let mut command = Command::new(tool);
                command
                    .args(["sign", "/fd", "sha256", "/d", name, "/f"])
                    .arg(&self.pfx)
                    .args(["/p", &self.password]);
                if let Some(url) = &self.timestamp_url {
                    command.args(["/tr", url, "/td", "sha256"]);
                }
                command.arg(&signed).output()
            }
        }
        .context("running the signing tool")?;
        if !out.status.success() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if let Some(url) = self.timestamp_url.as_deref().filter(|_| timestamp_failed(&text)) {
                bail!(
                    "signing {name}: the timestamp server {url} did not answer; check the URL and the network, \
                     or sign without --timestamp-url (the signature then ends with the certificate)"
                );
            }
            bail!("signing {name} failed:\n{}", text.trim_end());
        }
        Ok(fs_err::read(&signed)?)
    }
}

fn timestamp_failed(tool_output: &str) -> bool {
    let text = tool_output.to_ascii_lowercase();
    text.contains("timestamp") || text.contains("curl") || text.contains("connect")
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options.options_mut(), 0o600);
    use std::io::Write;
    options.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}

/// signtool on Windows, osslsigncode elsewhere.
fn find_tool() -> Result<Tool> {
    if cfg!(windows) {
        let tool = crate::wine::on_path("signtool.exe").context(
            "--sign needs signtool.exe (from the Windows SDK) on PATH: run from a Developer Command Prompt, \
             or add the SDK's bin\\x64 folder to PATH",
        )?;
        return Ok(Tool::Signtool(tool));
    }
    let tool = crate::wine::on_path("osslsigncode")
        .context("--sign needs osslsigncode on PATH: install it (e.g. `apt-get install osslsigncode`)")?;
    Ok(Tool::Osslsigncode(tool))
}

/// The password: from the environment, else asked on the terminal without echo.
fn password(pfx: &Path) -> Result<String> {
    if let Some(password) = std::env::var_os(PASSWORD_VARIABLE) {
        return password
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSWORD_VARIABLE} is not valid Unicode"));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "--sign {}: set {PASSWORD_VARIABLE} to the certificate's password (it is never taken from the \
             command line), or run on a terminal to be asked for it",
            pfx.display()
        );
    }
    eprint!("password for {}: ", pfx.display());
    let echo = Echo::off();
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The terminal's echo, off while it lives.
#[cfg(unix)]
struct Echo(bool);

#[cfg(unix)]
impl Echo {
    fn off() -> Echo {
        let done = Command::new("stty")
            .arg("-echo")
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
        Echo(done)
    }
}

#[cfg(unix)]
impl Drop for Echo {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("stty").arg("echo").stdin(Stdio::inherit()).status();
        }
    }
}

/// The console's echo, off while it lives: the mode it had, to put back.
#[cfg(windows)]
struct Echo(Option<u32>);

#[cfg(windows)]
impl Echo {
    fn off() -> Echo {
        use windows_sys::Win32::System::Console::{
            GetConsoleMode, GetStdHandle, SetConsoleMode, ENABLE_ECHO_INPUT, STD_INPUT_HANDLE,
        };
        // SAFETY: plain console calls on this process's standard input handle.
        unsafe {
            let input = GetStdHandle(STD_INPUT_HANDLE);
            let mut mode = 0;
            if GetConsoleMode(input, &mut mode) == 0 || SetConsoleMode(input, mode & !ENABLE_ECHO_INPUT) == 0 {
                return Echo(None);
            }
            Echo(Some(mode))
        }
    }
}

#[cfg(windows)]
impl Drop for Echo {
    fn drop(&mut self) {
        use windows_sys::Win32::System::Console::{GetStdHandle, SetConsoleMode, STD_INPUT_HANDLE};
        if let Some(mode) = self.0 {
            // SAFETY: as in `off`; the mode is the one read there.
            unsafe { SetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), mode) };
        }
    }
}

/// Signs the files of `output` that the tool made or owns (loader, launcher, runtime).
pub fn sign_output(output: &mut Output, signer: &Signer, say: &dyn Fn(String)) -> Result<()> {
    for file in &mut output.files {
        if !matches!(file.role, Role::Loader | Role::Launcher | Role::Runtime) {
            continue;
        }
        let image = match &file.bytes {
            Bytes::Made(bytes) => bytes.clone(),
            Bytes::CopyOf(path) => fs_err::read(path)?,
        };
        let name = file.path.rsplit('/').next().unwrap_or(&file.path);
        say(format!("signing {name} with {}", signer.pfx.display()));
        file.bytes = Bytes::Made(signer.sign(name, &image)?);
    }
    Ok(())
}
