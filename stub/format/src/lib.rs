//! The contract between the freezer (which writes a loader) and the stub (which reads it):
//! resource ids, the small config record stored beside the archive, and the names of
//! files in an output directory. Dependency-free so that both sides build it as is.

use std::fmt;

/// `RT_RCDATA` from winuser.h: raw application data.
pub const RT_RCDATA: u16 = 10;
/// Resource id (under `RT_RCDATA`) of the app archive, a zip of compiled modules.
pub const ARCHIVE_RESOURCE_ID: u16 = 1;
/// Resource id (under `RT_RCDATA`) of the [`StubConfig`] record.
pub const CONFIG_RESOURCE_ID: u16 = 2;
/// Language of both resources: `LANG_NEUTRAL`, which `FindResourceW` always falls back to.
pub const RESOURCE_LANGUAGE: u16 = 0;

/// The embedded-Python runtime DLL, copied into every output directory beside the loader.
/// The loader loads it by full path after loading `python3XY.dll` by full path.
pub const RUNTIME_DLL: &str = "isapi_freeze_runtime.dll";
/// The template of the ISAPI loader DLL, as the stub build names it.
pub const LOADER_TEMPLATE: &str = "isapi_freeze_loader.dll";
/// The template of the install executable, as the stub build names it.
pub const INSTALLER_TEMPLATE: &str = "isapi-freeze-installer.exe";
/// The HTTP server that drives an ISAPI DLL without IIS.
pub const HOST_EXE: &str = "isapi-host.exe";

/// The archive member that the runtime executes first: it installs the in-memory importer.
pub const BOOT_MODULE: &str = "_isapi_freeze_boot";

/// Folder (inside the output directory) where the loader and the runtime write their log.
pub const LOG_DIR: &str = "logs";

/// The log file of a loader or installer named `module_file_name` (e.g. `_hello.dll` ->
/// `logs/_hello.log`), relative to the output directory.
pub fn log_file_name(module_file_name: &str) -> String {
    let stem = module_file_name
        .rsplit_once('.')
        .map_or(module_file_name, |(stem, _)| stem);
    format!("{LOG_DIR}/{stem}.log")
}

/// Appends one timestamped line (`2026-11-21 08:01:02Z [pid 12] message`) to the log of
/// `module_file_name` in `output_dir`, creating the folder. Logging must never take a
/// request down, so failures are ignored.
pub fn append_log(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    use std::io::Write;
    let path = output_dir.join(log_file_name(module_file_name));
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else {
        return;
    };
    let line = format!(
        "{} [pid {}] {}\n",
        utc_timestamp(std::time::SystemTime::now()),
        std::process::id(),
        message.trim_end()
    );
    // One write call, so that lines from several threads do not interleave.
    let _ = file.write_all(line.as_bytes());
}

/// `YYYY-MM-DD HH:MM:SSZ` for a time after 1970, without a date library.
pub fn utc_timestamp(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What the loader needs to know before Python runs, stored as resource
/// [`CONFIG_RESOURCE_ID`]. Encoded as `key=value` lines after a header line, so that a
/// person can read it with any resource viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubConfig {
    /// File name of the Python DLL in the output directory, e.g. `python311.dll`.
    pub python_dll: String,
    /// Module name of the user's script inside the archive, e.g. `hello`.
    pub script_module: String,
    /// SHA-256 of the archive resource's bytes; checked before anything is imported.
    pub archive_sha256: [u8; 32],
}

const CONFIG_HEADER: &str = "isapi-freeze-config 1";

/// Why a config record could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    BadHeader,
    NotUtf8,
    BadLine(String),
    Missing(&'static str),
    BadDigest,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadHeader => write!(f, "the config record does not start with `{CONFIG_HEADER}`"),
            ConfigError::NotUtf8 => write!(f, "the config record is not UTF-8"),
            ConfigError::BadLine(line) => write!(f, "the config record has a malformed line `{line}`"),
            ConfigError::Missing(key) => write!(f, "the config record has no `{key}`"),
            ConfigError::BadDigest => write!(f, "the config record's archive_sha256 is not 64 hex digits"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl StubConfig {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{CONFIG_HEADER}\npython_dll={}\nscript_module={}\narchive_sha256={}\n",
            self.python_dll,
            self.script_module,
            to_hex(&self.archive_sha256)
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<StubConfig, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8)?;
        let mut lines = text.lines();
        if lines.next() != Some(CONFIG_HEADER) {
            return Err(ConfigError::BadHeader);
        }
        let (mut python_dll, mut script_module, mut digest) = (None, None, None);
        for line in lines.filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| ConfigError::BadLine(line.to_string()))?;
            match key {
                "python_dll" => python_dll = Some(value.to_string()),
                "script_module" => script_module = Some(value.to_string()),
                "archive_sha256" => digest = Some(from_hex(value).ok_or(ConfigError::BadDigest)?),
                // Unknown keys come from a newer freezer; an older stub can ignore them.
                _ => {}
            }
        }
        Ok(StubConfig {
            python_dll: python_dll.ok_or(ConfigError::Missing("python_dll"))?,
            script_module: script_module.ok_or(ConfigError::Missing("script_module"))?,
            archive_sha256: digest.ok_or(ConfigError::Missing("archive_sha256"))?,
        })
    }
}

/// Lower-case hex of a digest, as `sha256sum` prints it.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StubConfig {
        StubConfig {
            python_dll: "python311.dll".into(),
            script_module: "hello".into(),
            archive_sha256: [0xab; 32],
        }
    }

    #[test]
    fn config_round_trips() {
        assert_eq!(StubConfig::decode(&sample().encode()), Ok(sample()));
    }

    #[test]
    fn config_encoding_is_readable_text() {
        let text = String::from_utf8(sample().encode()).unwrap();
        assert_eq!(
            text,
            format!(
                "isapi-freeze-config 1\npython_dll=python311.dll\nscript_module=hello\narchive_sha256={}\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn config_rejects_damage() {
        assert_eq!(StubConfig::decode(b"nope\n"), Err(ConfigError::BadHeader));
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 1\npython_dll=x\nscript_module=y\n"),
            Err(ConfigError::Missing("archive_sha256"))
        );
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 1\narchive_sha256=12\n"),
            Err(ConfigError::BadDigest)
        );
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 1\ngarbage\n"),
            Err(ConfigError::BadLine("garbage".into()))
        );
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let at = |secs| utc_timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(at(1_795_250_461), "2026-11-21 08:41:01Z");
    }

    #[test]
    fn log_lines_are_appended() {
        let dir = std::env::temp_dir().join(format!("isapi-freeze-format-{}", std::process::id()));
        append_log(&dir, "_x.dll", "first\n");
        append_log(&dir, "_x.dll", "second");
        let text = std::fs::read_to_string(dir.join("logs/_x.log")).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split_once("] ").unwrap().1).collect();
        assert_eq!(lines, ["first", "second"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn log_file_is_named_after_the_module() {
        assert_eq!(log_file_name("_hello.dll"), "logs/_hello.log");
        assert_eq!(log_file_name("hello.exe"), "logs/hello.log");
        assert_eq!(log_file_name("noext"), "logs/noext.log");
    }
}

/// The event source name under which errors go to the Windows Event Log (Application).
pub const EVENT_SOURCE: &str = "isapi-freeze";

/// Logs an error: a line in the module's log, and an error event in the Windows Event Log
/// (Application log, source [`EVENT_SOURCE`]), where IIS administrators look first.
pub fn log_error(output_dir: &std::path::Path, module_file_name: &str, message: &str) {
    append_log(output_dir, module_file_name, message);
    #[cfg(windows)]
    event_log::report_error(&format!("{module_file_name} ({}): {message}", output_dir.display()));
}

#[cfg(windows)]
mod event_log {
    use std::ffi::c_void;

    /// `EVENTLOG_ERROR_TYPE` from winnt.h.
    const EVENTLOG_ERROR_TYPE: u16 = 0x0001;
    /// The longest string one event may carry.
    const MAX_EVENT_STRING: usize = 31_839;

    #[link(name = "advapi32")]
    extern "system" {
        fn RegisterEventSourceW(server: *const u16, source: *const u16) -> *mut c_void;
        fn ReportEventW(
            log: *mut c_void,
            kind: u16,
            category: u16,
            event_id: u32,
            user_sid: *mut c_void,
            num_strings: u16,
            data_size: u32,
            strings: *const *const u16,
            data: *const c_void,
        ) -> i32;
        fn DeregisterEventSource(log: *mut c_void) -> i32;
    }

    pub fn report_error(message: &str) {
        let source: Vec<u16> = super::EVENT_SOURCE.encode_utf16().chain([0]).collect();
        let mut text: Vec<u16> = message.encode_utf16().take(MAX_EVENT_STRING).collect();
        text.push(0);
        // SAFETY: both strings are NUL-terminated UTF-16 that outlive the calls; the handle
        // is checked before use and released after.
        unsafe {
            let log = RegisterEventSourceW(std::ptr::null(), source.as_ptr());
            if log.is_null() {
                return;
            }
            let strings = [text.as_ptr()];
            ReportEventW(
                log,
                EVENTLOG_ERROR_TYPE,
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
            DeregisterEventSource(log);
        }
    }
}

/// Finding this crate's records in a loaded module's memory (Windows only): the loader
/// reads the config before Python exists, the runtime reads the archive and the config.
#[cfg(windows)]
pub mod resource {
    use std::ffi::c_void;

    type Handle = *mut c_void;

    #[link(name = "kernel32")]
    extern "system" {
        fn FindResourceW(module: Handle, name: *const u16, kind: *const u16) -> Handle;
        fn LoadResource(module: Handle, info: Handle) -> Handle;
        fn LockResource(data: Handle) -> *const c_void;
        fn SizeofResource(module: Handle, info: Handle) -> u32;
    }

    /// The bytes of resource `RT_RCDATA`/`id` of `module`, in the module's mapped image:
    /// valid for as long as the module stays loaded.
    ///
    /// # Safety
    /// `module` must be the handle of a module that stays loaded for `'static` (the loader,
    /// the installer exe: neither is unloaded while Python runs).
    pub unsafe fn rcdata(module: *mut c_void, id: u16) -> Option<&'static [u8]> {
        // MAKEINTRESOURCE: an integer id passed in the pointer's place.
        let info = FindResourceW(
            module,
            id as usize as *const u16,
            super::RT_RCDATA as usize as *const u16,
        );
        if info.is_null() {
            return None;
        }
        let loaded = LoadResource(module, info);
        let data = LockResource(loaded) as *const u8;
        let len = SizeofResource(module, info) as usize;
        if data.is_null() {
            return None;
        }
        // SAFETY: LockResource points into the module's image, which holds `len` bytes of
        // this resource and stays mapped while the module is loaded (caller's promise).
        Some(std::slice::from_raw_parts(data, len))
    }
}

/// Following an output directory's logs live, as `tail -f` does: used by `isapi-freeze
/// trace DIST` and by `SCRIPT.exe trace` on the server. Prints the last lines of each
/// `logs/*.log`, then what is appended, with a `==> logs/NAME.log <==` header whenever the
/// file changes.
pub mod trace {
    use std::collections::BTreeMap;
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// Prints the last `lines` lines of every log in `output_dir/logs`, then, with `follow`,
    /// keeps printing what is appended (also to logs that appear later) until writing to
    /// `out` fails.
    pub fn follow(output_dir: &Path, lines: usize, follow: bool, out: &mut impl Write) -> io::Result<()> {
        let logs = output_dir.join(super::LOG_DIR);
        let mut offsets: BTreeMap<PathBuf, u64> = BTreeMap::new();
        let mut current: Option<PathBuf> = None;
        for path in log_files(&logs) {
            let text = std::fs::read(&path)?;
            let start = tail_start(&text, lines);
            if start < text.len() {
                header(out, &path, &mut current)?;
                out.write_all(&text[start..])?;
            }
            offsets.insert(path, text.len() as u64);
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        loop {
            std::thread::sleep(Duration::from_millis(200));
            for path in log_files(&logs) {
                let offset = offsets.entry(path.clone()).or_insert(0);
                let mut file = std::fs::File::open(&path)?;
                let len = file.metadata()?.len();
                if len < *offset {
                    *offset = 0; // truncated or replaced: start over
                }
                if len == *offset {
                    continue;
                }
                file.seek(SeekFrom::Start(*offset))?;
                let mut new = Vec::new();
                file.take(len - *offset).read_to_end(&mut new)?;
                // Only whole lines; a line being written is printed once it ends.
                let Some(end) = new.iter().rposition(|&b| b == b'\n') else {
                    continue;
                };
                header(out, &path, &mut current)?;
                out.write_all(&new[..=end])?;
                out.flush()?;
                *offset += end as u64 + 1;
            }
        }
    }

    fn log_files(logs: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "log"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn header(out: &mut impl Write, path: &Path, current: &mut Option<PathBuf>) -> io::Result<()> {
        if current.as_deref() != Some(path) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            writeln!(out, "==> {}/{name} <==", super::LOG_DIR)?;
            *current = Some(path.to_path_buf());
        }
        Ok(())
    }

    /// Where the last `lines` lines of `text` start.
    fn tail_start(text: &[u8], lines: usize) -> usize {
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let mut seen = 0;
        for (i, &b) in body.iter().enumerate().rev() {
            if b == b'\n' {
                seen += 1;
                if seen == lines {
                    return i + 1;
                }
            }
        }
        if lines == 0 {
            text.len()
        } else {
            0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn prints_the_last_lines_of_each_log_under_a_header() {
            let dir = std::env::temp_dir().join(format!("isapi-freeze-trace-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("logs")).unwrap();
            std::fs::write(dir.join("logs/_a.log"), "1\n2\n3\n").unwrap();
            std::fs::write(dir.join("logs/b.log"), "only\n").unwrap();
            std::fs::write(dir.join("logs/notes.txt"), "not a log\n").unwrap();
            let mut out = Vec::new();
            follow(&dir, 2, false, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "==> logs/_a.log <==\n2\n3\n==> logs/b.log <==\nonly\n"
            );
            std::fs::remove_dir_all(dir).unwrap();
        }

        #[test]
        fn tail_start_counts_lines_from_the_end() {
            assert_eq!(tail_start(b"a\nb\nc\n", 1), 4);
            assert_eq!(tail_start(b"a\nb\nc\n", 3), 0);
            assert_eq!(tail_start(b"a\nb\nc\n", 9), 0);
            assert_eq!(tail_start(b"a\nb\nc\n", 0), 6);
        }
    }
}
