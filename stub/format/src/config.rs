//! The config record the freezer embeds beside the archive (resource
//! [`crate::CONFIG_RESOURCE_ID`]): what the loader needs before Python runs and what the
//! runtime needs to start it. `key=value` lines after a header line, readable in any
//! resource viewer; unknown keys are ignored so that an older stub reads a newer record.

use std::fmt;

/// What the loader needs to know before Python runs, stored as resource
/// [`CONFIG_RESOURCE_ID`]. Encoded as `key=value` lines after a header line, so that a
/// person can read it with any resource viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubConfig {
    /// File name of the Python DLL in the output directory, e.g. `python312.dll`.
    pub python_dll: String,
    /// Module name of the user's script inside the archive, e.g. `hello`.
    pub script_module: String,
    /// SHA-256 of the archive resource's bytes; checked before anything is imported.
    pub archive_sha256: [u8; 32],
    /// The factories the script defines (`__ExtensionFactory__`, `__FilterFactory__`), for
    /// tools that load the DLL (`serve` loads it as a filter too when it has a filter
    /// factory); None when the freezer could not tell (a star import).
    pub factories: Option<Vec<String>>,
    /// The IIS site `SCRIPT.exe install` uses for a script with no install code of its own.
    pub install_site: String,
    /// The virtual path it installs such a script under (starts with `/`).
    pub install_vpath: String,
    /// The app's own top-level modules (not packages, not the standard library's): the
    /// runtime gives them a `__file__` beside the script, where `--data` puts their files.
    pub app_modules: Vec<String>,
    /// The file beside this module whose resources hold the archive, when this module does
    /// not carry it: the launcher's record names the loader (`_hello.dll`), so that an
    /// output folder holds the archive once. Its record's `archive_sha256` must match.
    pub archive_in: Option<String>,
}

/// Version 2 added `archive_in`: a launcher without its own archive. A version 1 stub would
/// look for the archive in itself and fail less clearly, so it refuses the record instead.
const CONFIG_HEADER: &str = "isapi-freeze-config 2";

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
        let mut text = format!(
            "{CONFIG_HEADER}\npython_dll={}\nscript_module={}\narchive_sha256={}\n",
            self.python_dll,
            self.script_module,
            to_hex(&self.archive_sha256)
        );
        if let Some(factories) = &self.factories {
            text.push_str(&format!("factories={}\n", factories.join(",")));
        }
        text.push_str(&format!(
            "install_site={}\ninstall_vpath={}\napp_modules={}\n",
            self.install_site,
            self.install_vpath,
            self.app_modules.join(",")
        ));
        if let Some(module) = &self.archive_in {
            text.push_str(&format!("archive_in={module}\n"));
        }
        text.into_bytes()
    }

    /// Whether the script defines `factory`; None when unknown.
    pub fn defines(&self, factory: &str) -> Option<bool> {
        self.factories.as_ref().map(|f| f.iter().any(|name| name == factory))
    }

    pub fn decode(bytes: &[u8]) -> Result<StubConfig, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8)?;
        let mut lines = text.lines();
        if lines.next() != Some(CONFIG_HEADER) {
            return Err(ConfigError::BadHeader);
        }
        let (mut python_dll, mut script_module, mut digest, mut factories) = (None, None, None, None);
        let (mut install_site, mut install_vpath, mut app_modules, mut archive_in) = (None, None, Vec::new(), None);
        for line in lines.filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| ConfigError::BadLine(line.to_string()))?;
            match key {
                "python_dll" => python_dll = Some(value.to_string()),
                "script_module" => script_module = Some(value.to_string()),
                "archive_sha256" => digest = Some(from_hex(value).ok_or(ConfigError::BadDigest)?),
                "factories" => factories = Some(list(value)),
                "install_site" => install_site = Some(value.to_string()),
                "install_vpath" => install_vpath = Some(value.to_string()),
                "app_modules" => app_modules = list(value),
                "archive_in" => archive_in = Some(value.to_string()),
                // Unknown keys come from a newer freezer; an older stub can ignore them.
                _ => {}
            }
        }
        Ok(StubConfig {
            python_dll: python_dll.ok_or(ConfigError::Missing("python_dll"))?,
            script_module: script_module.ok_or(ConfigError::Missing("script_module"))?,
            archive_sha256: digest.ok_or(ConfigError::Missing("archive_sha256"))?,
            factories,
            install_site: install_site.ok_or(ConfigError::Missing("install_site"))?,
            install_vpath: install_vpath.ok_or(ConfigError::Missing("install_vpath"))?,
            app_modules,
            archive_in,
        })
    }
}

/// A comma-separated list of names (module and factory names have no commas).
fn list(value: &str) -> Vec<String> {
    value.split(',').filter(|f| !f.is_empty()).map(String::from).collect()
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
            python_dll: "python3XY.dll".into(),
            script_module: "hello".into(),
            archive_sha256: [0xab; 32],
            factories: Some(vec!["__ExtensionFactory__".into(), "__FilterFactory__".into()]),
            install_site: "Caf\u{e9} \"x\"".into(),
            install_vpath: "/hello".into(),
            app_modules: vec!["app".into(), "helper".into()],
            archive_in: Some("_hello.dll".into()),
        }
    }

    #[test]
    fn factories_are_optional_and_say_what_the_script_defines() {
        let mut config = sample();
        assert_eq!(config.defines("__FilterFactory__"), Some(true));
        config.factories = None;
        assert_eq!(StubConfig::decode(&config.encode()), Ok(config.clone()));
        assert_eq!(config.defines("__FilterFactory__"), None);
        config.factories = Some(vec![]);
        assert_eq!(StubConfig::decode(&config.encode()), Ok(config.clone()));
        assert_eq!(config.defines("__ExtensionFactory__"), Some(false));
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
                "isapi-freeze-config 2\npython_dll=python3XY.dll\nscript_module=hello\narchive_sha256={}\n\
                 factories=__ExtensionFactory__,__FilterFactory__\ninstall_site=Caf\u{e9} \"x\"\n\
                 install_vpath=/hello\napp_modules=app,helper\narchive_in=_hello.dll\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn config_rejects_damage() {
        assert_eq!(StubConfig::decode(b"nope\n"), Err(ConfigError::BadHeader));
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 2\npython_dll=x\nscript_module=y\n"),
            Err(ConfigError::Missing("archive_sha256"))
        );
        assert_eq!(
            StubConfig::decode(
                format!(
                    "isapi-freeze-config 2\npython_dll=x\nscript_module=y\narchive_sha256={}\n",
                    "ab".repeat(32)
                )
                .as_bytes()
            ),
            Err(ConfigError::Missing("install_site"))
        );
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 2\narchive_sha256=12\n"),
            Err(ConfigError::BadDigest)
        );
        assert_eq!(
            StubConfig::decode(b"isapi-freeze-config 2\ngarbage\n"),
            Err(ConfigError::BadLine("garbage".into()))
        );
    }
}
