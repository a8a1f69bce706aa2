//! `[tool.isapi-freeze]` in a pyproject.toml beside the script. The command line's clap
//! definition (cli.rs) is the one schema: each key of the table is the long name of a freeze
//! option, turned into `--key=value` arguments and parsed by clap together with the real
//! command line, so a key cannot exist in one and not the other. Paths in the file are
//! relative to the file's folder; the command line overrides single values and adds to lists
//! (after the file's).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, ValueHint};
use toml::Value;

use crate::cli::{Cli, FreezeArgs};

/// Options that make sense only for one run, never in a project file.
const COMMAND_LINE_ONLY: &[&str] = &["dry-run", "quiet", "stubs", "help", "version"];

/// The freeze options of `argv` (the whole command line, program name first) with those of
/// the pyproject.toml beside the script, if it has a `[tool.isapi-freeze]` table.
pub fn merge_beside(argv: &[OsString], args: FreezeArgs) -> Result<FreezeArgs> {
    let Some(script) = &args.script else {
        return Ok(args);
    };
    let folder = match script.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = folder.join("pyproject.toml");
    if !path.is_file() {
        return Ok(args);
    }
    let text = fs_err::read_to_string(&path)?;
    merge(&text, &folder, argv)
        .with_context(|| format!("in {}", path.display()))
        .map(|merged| merged.unwrap_or(args))
}

/// `argv` with the `[tool.isapi-freeze]` table of `text` (a pyproject.toml in `folder`), or
/// None when the file has no such table.
pub fn merge(text: &str, folder: &Path, argv: &[OsString]) -> Result<Option<FreezeArgs>> {
    let document: toml::Table = text.parse().context("not valid TOML")?;
    let Some(table) = document.get("tool").and_then(|t| t.get("isapi-freeze")) else {
        return Ok(None);
    };
    let table = table.as_table().context("[tool.isapi-freeze] is not a table")?;
    let command = Cli::command();
    let given = command.clone().try_get_matches_from(argv)?;
    let mut file_args: Vec<OsString> = Vec::new();
    for (key, value) in table {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !COMMAND_LINE_ONLY.contains(&key.as_str()))
        else {
            bail!(
                "[tool.isapi-freeze] has an unknown key `{key}`; the keys are {}",
                file_keys().join(", ")
            );
        };
        let on_command_line = matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let option = |value: &str| -> OsString {
            let mut text = OsString::from(format!("--{key}="));
            text.push(relative_to(folder, key, arg.get_value_hint(), value));
            text
        };
        match arg.get_action() {
            ArgAction::Append => {
                let items = value
                    .as_array()
                    .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                    .with_context(|| format!("`{key}` must be a list of strings"))?;
                file_args.extend(items.into_iter().map(option));
            }
            ArgAction::SetTrue => {
                let flag = value
                    .as_bool()
                    .with_context(|| format!("`{key}` must be true or false"))?;
                if flag && !on_command_line {
                    file_args.push(format!("--{key}").into());
                }
            }
            _ => {
                let text = value.as_str().with_context(|| format!("`{key}` must be a string"))?;
                if !on_command_line {
                    file_args.push(option(text));
                }
            }
        }
    }
    // The file's options first: lists keep the file's entries before the command line's.
    let merged = argv
        .iter()
        .take(1)
        .cloned()
        .chain(file_args)
        .chain(argv.iter().skip(1).cloned());
    let matches = command.try_get_matches_from(merged)?;
    Ok(Some(Cli::from_arg_matches(&matches)?.freeze))
}

/// The keys a `[tool.isapi-freeze]` table may have: the freeze options' long names.
pub fn file_keys() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !COMMAND_LINE_ONLY.contains(long))
        .map(String::from)
        .collect()
}

/// A path value of the file made relative to the file's folder: options whose value is a
/// path, and the SRC of `data`'s SRC=DEST. Other values stay as written.
fn relative_to(folder: &Path, key: &str, hint: ValueHint, value: &str) -> OsString {
    let is_version = value
        .split_once('.')
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
    match hint {
        // `python = "3.12"` names a version, not a folder.
        _ if key == "python" && is_version => value.into(),
        ValueHint::DirPath | ValueHint::FilePath | ValueHint::AnyPath | ValueHint::ExecutablePath => {
            folder.join(value).into_os_string()
        }
        _ if key == "data" => match value.split_once('=') {
            Some((src, dest)) => {
                let mut text = folder.join(src).into_os_string();
                text.push(format!("={dest}"));
                text
            }
            None => value.into(),
        },
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cli: &[&str]) -> Vec<OsString> {
        std::iter::once("isapi-freeze")
            .chain(cli.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn merged(text: &str, cli: &[&str]) -> Result<FreezeArgs> {
        Ok(merge(text, Path::new("/proj"), &argv(cli))?.expect("a [tool.isapi-freeze] table"))
    }

    #[test]
    fn the_file_sets_options_and_the_command_line_wins_or_adds() {
        let text = r#"
            [project]
            name = "app"
            [tool.isapi-freeze]
            python = "../py"
            path = ["site"]
            package = ["django.contrib.admin"]
            data = ["templates=templates"]
            full-stdlib = true
            site = "Intranet"
        "#;
        let a = merged(
            text,
            &["app.py", "--path", "/more", "--site", "Public", "--package", "extra"],
        )
        .unwrap();
        assert_eq!(a.python, Some(PathBuf::from("/proj/../py")));
        assert_eq!(a.paths, [PathBuf::from("/proj/site"), PathBuf::from("/more")]);
        assert_eq!(a.packages, ["django.contrib.admin", "extra"]);
        assert_eq!(a.data, ["/proj/templates=templates"]);
        assert!(a.full_stdlib);
        assert_eq!(a.site.as_deref(), Some("Public"), "the command line wins");
        assert_eq!(a.dist_dir, None);
        assert_eq!(a.script, Some(PathBuf::from("app.py")));
    }

    #[test]
    fn a_flag_set_in_both_places_is_set_once() {
        let a = merged("[tool.isapi-freeze]\nstrict = true\n", &["app.py", "--strict"]).unwrap();
        assert!(a.strict);
        let a = merged("[tool.isapi-freeze]\nstrict = false\n", &["app.py"]).unwrap();
        assert!(!a.strict);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors() {
        let err = merged("[tool.isapi-freeze]\npaths = [\"x\"]\n", &["app.py"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "[tool.isapi-freeze] has an unknown key `paths`; the keys are {}",
                file_keys().join(", ")
            )
        );
        let err = merged("[tool.isapi-freeze]\nstrict = \"yes\"\n", &["app.py"])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`strict` must be true or false");
        let err = merged("[tool.isapi-freeze]\npath = \"site\"\n", &["app.py"])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`path` must be a list of strings");
        let err = merged("[tool.isapi-freeze]\ndry-run = true\n", &["app.py"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[tool.isapi-freeze] has an unknown key `dry-run`"),
            "{err}"
        );
        assert!(
            merge("[project]\nname = 1\n", Path::new("."), &argv(&["app.py"]))
                .unwrap()
                .is_none(),
            "no table, nothing to do"
        );
    }

    #[test]
    fn every_freeze_option_but_the_one_run_ones_is_a_file_key() {
        let keys = file_keys();
        for key in [
            "python",
            "build-python",
            "dist-dir",
            "path",
            "include",
            "exclude",
            "package",
            "data",
            "files",
            "full-stdlib",
            "strict",
            "site",
            "vpath",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        for key in COMMAND_LINE_ONLY {
            assert!(!keys.iter().any(|k| k == key), "{key} must stay on the command line");
        }
    }
}
