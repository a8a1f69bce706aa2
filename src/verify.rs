//! `isapi-freeze verify DIST`: checks a deployed output directory against its manifest.json
//! and names every file that differs, is missing, or was added (logs/ and the app's data
//! folders aside: the runtime and the app write there).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use isapi_freeze_format::manifest::Manifest;
use isapi_freeze_format::{to_hex, LOG_DIR, MANIFEST};
use sha2::{Digest, Sha256};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub checked: usize,
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.unexpected.is_empty()
    }
}

/// Checks `dist` against its manifest; files under `logs/` and under each of `data_dirs`
/// (folders of the output the app writes in) are not the output's and are skipped.
pub fn verify(dist: &Path, data_dirs: &[String]) -> Result<Report> {
    let written_by_the_app: Vec<String> = std::iter::once(LOG_DIR.to_string())
        .chain(data_dirs.iter().map(|d| d.trim_matches(['/', '\\']).replace('\\', "/")))
        .map(|d| format!("{d}/"))
        .collect();
    let manifest_path = dist.join(MANIFEST);
    if !manifest_path.is_file() {
        bail!(
            "{} is not an isapi-freeze output directory (it has no {MANIFEST})",
            dist.display()
        );
    }
    let text = fs_err::read_to_string(&manifest_path)?;
    let manifest = Manifest::from_json(&text).with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut report = Report::default();
    let mut listed = BTreeSet::new();
    for file in &manifest.files {
        let (path, expected) = (file.path.as_str(), file.sha256.as_str());
        listed.insert(path.to_string());
        report.checked += 1;
        let full = dist.join(path);
        if !full.is_file() {
            report.missing.push(path.to_string());
            continue;
        }
        let mut hasher = Sha256::new();
        let mut input = fs_err::File::open(&full)?;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = input.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        if to_hex(&hasher.finalize()) != expected {
            report.changed.push(path.to_string());
        }
    }
    for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dist.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dist)?.to_string_lossy().replace('\\', "/");
        let apps = written_by_the_app.iter().any(|d| rel.starts_with(d.as_str()));
        if rel != MANIFEST && !apps && !listed.contains(&rel) {
            report.unexpected.push(rel);
        }
    }
    Ok(report)
}

/// Prints the report; the exit code is 0 only for a clean directory.
pub fn run(dist: &Path, data_dirs: &[String]) -> Result<i32> {
    let report = verify(dist, data_dirs)?;
    for (what, files) in [
        ("changed", &report.changed),
        ("missing", &report.missing),
        ("unexpected", &report.unexpected),
    ] {
        for file in files {
            println!("{what}: {file}");
        }
    }
    if report.is_clean() {
        println!("ok: {} files match {}", report.checked, dist.join(MANIFEST).display());
        Ok(0)
    } else {
        let problems = report.changed.len() + report.missing.len() + report.unexpected.len();
        eprintln!(
            "error: {} does not match its manifest ({problems} files differ); freeze and deploy it again",
            dist.display()
        );
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isapi_freeze_format::manifest::{ManifestEntry, Role, MANIFEST_FORMAT};

    /// An output with one listed file, a log, and what an app wrote into `data/`.
    fn output() -> tempfile::TempDir {
        let dist = tempfile::tempdir().unwrap();
        std::fs::write(dist.path().join("app.txt"), b"app").unwrap();
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            files: vec![ManifestEntry {
                path: "app.txt".into(),
                role: Role::Data,
                size: 3,
                sha256: to_hex(&Sha256::digest(b"app")),
            }],
        };
        std::fs::write(dist.path().join(MANIFEST), manifest.to_json()).unwrap();
        for (folder, file) in [("logs", "_app.log"), ("data", "notes.sqlite3")] {
            std::fs::create_dir(dist.path().join(folder)).unwrap();
            std::fs::write(dist.path().join(folder).join(file), b"written at run time").unwrap();
        }
        dist
    }

    #[test]
    fn the_logs_and_the_data_folders_named_are_the_apps_not_the_outputs() {
        let dist = output();
        let report = verify(dist.path(), &[]).unwrap();
        assert_eq!(report.unexpected, vec!["data/notes.sqlite3".to_string()]);
        let report = verify(dist.path(), &["data".into()]).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checked, 1);
        std::fs::write(dist.path().join("app.txt"), b"changed").unwrap();
        assert_eq!(
            verify(dist.path(), &["data/".into()]).unwrap().changed,
            vec!["app.txt".to_string()]
        );
    }
}
