//! `isapi-freeze verify DIST`: checks a deployed output directory against its manifest.json
//! and names every file that differs, is missing, or was added (logs/ aside: the runtime
//! writes there).

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

pub fn verify(dist: &Path) -> Result<Report> {
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
        if rel != MANIFEST && !rel.starts_with(&format!("{LOG_DIR}/")) && !listed.contains(&rel) {
            report.unexpected.push(rel);
        }
    }
    Ok(report)
}

/// Prints the report; the exit code is 0 only for a clean directory.
pub fn run(dist: &Path) -> Result<i32> {
    let report = verify(dist)?;
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
