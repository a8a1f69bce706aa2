//! `[tool.isapi-freeze]` in a pyproject.toml beside the script: the same options as the
//! command line, under the same names. Paths in the file are relative to the file's folder.
//! The command line overrides single values and adds to lists (after the file's).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use toml::Value;

use crate::cli::FreezeArgs;

/// Applies the pyproject.toml beside `script`, if there is one with a `[tool.isapi-freeze]`.
pub fn apply_beside(script: &Path, args: &mut FreezeArgs) -> Result<()> {
    let folder = match script.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = folder.join("pyproject.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text = fs_err::read_to_string(&path)?;
    apply(&text, &folder, args).with_context(|| format!("in {}", path.display()))
}

/// Applies the `[tool.isapi-freeze]` table of `text` (a pyproject.toml in `folder`).
pub fn apply(text: &str, folder: &Path, args: &mut FreezeArgs) -> Result<()> {
    let document: toml::Table = text.parse().context("not valid TOML")?;
    let Some(table) = document.get("tool").and_then(|t| t.get("isapi-freeze")) else {
        return Ok(());
    };
    let table = table.as_table().context("[tool.isapi-freeze] is not a table")?;
    let path_of = |key: &str, value: &Value| -> Result<PathBuf> {
        let text = value.as_str().with_context(|| format!("`{key}` must be a string"))?;
        Ok(folder.join(text))
    };
    let list_of = |key: &str, value: &Value| -> Result<Vec<String>> {
        let items = value
            .as_array()
            .with_context(|| format!("`{key}` must be a list of strings"))?;
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .with_context(|| format!("`{key}` must be a list of strings"))
            })
            .collect()
    };
    let flag_of = |key: &str, value: &Value| -> Result<bool> {
        value
            .as_bool()
            .with_context(|| format!("`{key}` must be true or false"))
    };
    for (key, value) in table {
        match key.as_str() {
            "python" => {
                if args.python.is_none() {
                    args.python = Some(path_of(key, value)?);
                }
            }
            "build-python" => {
                if args.build_python.is_none() {
                    args.build_python = Some(path_of(key, value)?);
                }
            }
            "dist-dir" => {
                if args.dist_dir.is_none() {
                    args.dist_dir = Some(path_of(key, value)?);
                }
            }
            "site" => {
                if args.site.is_none() {
                    args.site = Some(value.as_str().context("`site` must be a string")?.to_string());
                }
            }
            "vpath" => {
                if args.vpath.is_none() {
                    args.vpath = Some(value.as_str().context("`vpath` must be a string")?.to_string());
                }
            }
            "path" => {
                let mut paths: Vec<PathBuf> = list_of(key, value)?.iter().map(|p| folder.join(p)).collect();
                paths.append(&mut args.paths);
                args.paths = paths;
            }
            "data" => {
                let mut data = Vec::new();
                for spec in list_of(key, value)? {
                    let Some((src, dest)) = spec.split_once('=') else {
                        bail!("`data` entry {spec:?}: write it as \"SRC=DEST\"");
                    };
                    data.push(format!("{}={dest}", folder.join(src).display()));
                }
                data.append(&mut args.data);
                args.data = data;
            }
            "include" => prepend(&mut args.includes, list_of(key, value)?),
            "exclude" => prepend(&mut args.excludes, list_of(key, value)?),
            "package" => prepend(&mut args.packages, list_of(key, value)?),
            "files" => prepend(&mut args.files, list_of(key, value)?),
            "full-stdlib" => args.full_stdlib |= flag_of(key, value)?,
            "strict" => args.strict |= flag_of(key, value)?,
            other => bail!(
                "[tool.isapi-freeze] has an unknown key `{other}`; the keys are python, build-python, dist-dir, path, \
                 include, exclude, package, data, files, full-stdlib, strict, site, vpath"
            ),
        }
    }
    Ok(())
}

fn prepend(list: &mut Vec<String>, mut first: Vec<String>) {
    first.append(list);
    *list = first;
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn args(cli: &[&str]) -> FreezeArgs {
        Cli::parse_from(std::iter::once("isapi-freeze").chain(cli.iter().copied())).freeze
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
        let mut a = args(&["app.py", "--path", "/more", "--site", "Public", "--package", "extra"]);
        apply(text, Path::new("/proj"), &mut a).unwrap();
        assert_eq!(a.python, Some(PathBuf::from("/proj/../py")));
        assert_eq!(a.paths, [PathBuf::from("/proj/site"), PathBuf::from("/more")]);
        assert_eq!(a.packages, ["django.contrib.admin", "extra"]);
        assert_eq!(a.data, ["/proj/templates=templates"]);
        assert!(a.full_stdlib);
        assert_eq!(a.site.as_deref(), Some("Public"), "the command line wins");
        assert_eq!(a.dist_dir, None);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors() {
        let mut a = args(&["app.py"]);
        let err = apply("[tool.isapi-freeze]\npaths = [\"x\"]\n", Path::new("."), &mut a)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[tool.isapi-freeze] has an unknown key `paths`"),
            "{err}"
        );
        let err = apply("[tool.isapi-freeze]\nstrict = \"yes\"\n", Path::new("."), &mut a)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "`strict` must be true or false");
        assert!(
            apply("[project]\nname = 1\n", Path::new("."), &mut a).is_ok(),
            "no table, nothing to do"
        );
    }
}
